//! Command-line grammar.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// standin: run agent code in a sandbox whose only way out is a secret-aware network boundary.
#[derive(Debug, Parser)]
#[command(name = "standin", version, about)]
pub(crate) struct Cli {
    /// Log filter for standin's own diagnostics on stderr (error, warn, info, debug, trace, or
    /// a tracing filter such as `standin_boundary=debug`).
    #[arg(long, global = true, default_value = "warn", value_name = "LEVEL", value_parser = log_filter)]
    pub log_level: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run COMMAND in a fresh sandbox and exit with its exit code (128+N if killed by signal N);
    /// with -d, leave it running in the background and print its name.
    Run(Box<RunArgs>),
    /// List detached sandboxes: name, id, state, root, age, limits.
    #[command(alias = "ps")]
    Ls(LsArgs),
    /// Run COMMAND in a running detached sandbox, with this terminal's streams; exit with its
    /// exit code.
    Exec(ExecArgs),
    /// Print the output of a detached sandbox's main command.
    Logs(LogsArgs),
    /// Stop detached sandboxes: SIGTERM to the main command, SIGKILL to everything after the
    /// grace period.
    Stop(StopArgs),
    /// Remove stopped detached sandboxes (their records and logs).
    Rm(RmArgs),
    /// Show a detached sandbox as JSON: its configuration (never a secret value), state and
    /// resource use.
    Inspect(NameArg),
    /// Copy files and directories between the host and a sandbox: `cp HOST_PATH NAME:PATH` or
    /// `cp NAME:PATH HOST_PATH`. Modes are kept; paths inside resolve in the sandbox's root.
    Cp(CpArgs),
    /// Manage a detached sandbox's secrets.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Pull an image from its registry into the local store.
    Pull(PullArgs),
    /// List the images in the local store.
    Images,
    /// Remove an image from the local store (and the layers no other image uses).
    Rmi(RmiArgs),
    /// Manage the local image store.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Show the four outcomes (substitute, block, pass through, block and terminate) in real
    /// sandboxes against a fake internet built in private network namespaces (needs root; no
    /// internet).
    Demo,
    /// Measure what the boundary costs on this machine: the same HTTPS workloads directly and
    /// through a sandbox with a secret substituted in every request (needs root; no internet).
    Bench(BenchArgs),
    /// Serve an existing network namespace (a Kubernetes pod's) as its boundary: the same
    /// DNS, egress policy, interception, substitution and violation actions as `run`, for
    /// processes of other uids in the namespace (docs/DEPLOY.md). `boundary init` installs
    /// the capture rules; `boundary env` prints the app container's environment.
    Boundary(Box<BoundaryArgs>),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct BoundaryArgs {
    #[command(subcommand)]
    pub command: Option<BoundaryCommand>,

    #[command(flatten)]
    pub serve: BoundaryServeArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BoundaryCommand {
    /// Install the capture rules in the current (or --netns) network namespace, exempting
    /// --uid, then exit (an init container's job; needs CAP_NET_ADMIN).
    Init(BoundaryInitArgs),
    /// Print the environment the app container needs: each secret's placeholder and the CA
    /// variables pointing at the bundle the boundary publishes.
    Env(BoundaryEnvArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BoundaryServeArgs {
    /// The configuration (the same TOML as `run --config`; its [sandbox] section is not
    /// used). Secret values come from files (value_file), as Kubernetes mounts Secrets.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Serve the network namespace at PATH (/proc/PID/ns/net, /run/netns/NAME) instead of
    /// the current one (needs CAP_SYS_ADMIN; a pod sidecar leaves it out).
    #[arg(long, value_name = "PATH")]
    pub netns: Option<std::path::PathBuf>,

    /// The uid the capture rules exempt: this process's own (the default). A different value
    /// is refused, since this boundary's own connections would then be captured.
    #[arg(long, value_name = "UID")]
    pub uid: Option<u32>,

    /// Answer GET /livez and GET /readyz on ADDR (for example 0.0.0.0:15021).
    #[arg(long, value_name = "ADDR")]
    pub health: Option<std::net::SocketAddr>,

    /// Install the capture rules before serving (when no init container did; needs
    /// CAP_NET_ADMIN).
    #[arg(long)]
    pub install_rules: bool,

    /// Where the events go: a file, or - for standard output (the default, unless the
    /// config names a file: JSON lines on stdout, the Kubernetes logging convention).
    #[arg(long, value_name = "PATH")]
    pub events: Option<std::path::PathBuf>,

    /// Directory only the boundary reads (the CA's key, the termination marker).
    #[arg(long, value_name = "DIR", default_value = "/var/run/standin/state")]
    pub state_dir: std::path::PathBuf,

    /// Directory shared with the app, where ca.pem and ca-bundle.pem are published.
    #[arg(long, value_name = "DIR", default_value = "/var/run/standin/ca")]
    pub ca_dir: std::path::PathBuf,

    /// The public roots the published bundle starts from.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/ssl/certs/ca-certificates.crt"
    )]
    pub system_bundle: std::path::PathBuf,

    /// How often value files are read again for a changed secret, in seconds (Kubernetes
    /// updates mounted Secrets in place; SIGHUP reads them at once).
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub reload_secs: u64,

    /// The pod's name in events (default: $HOSTNAME, which Kubernetes sets to it).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct BoundaryInitArgs {
    /// The boundary's uid: its traffic is not captured (the sidecar's runAsUser).
    #[arg(long, value_name = "UID")]
    pub uid: u32,

    /// Install in the network namespace at PATH instead of the current one.
    #[arg(long, value_name = "PATH")]
    pub netns: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct BoundaryEnvArgs {
    /// The configuration the boundary serves.
    #[arg(long, value_name = "FILE")]
    pub config: std::path::PathBuf,

    /// The directory the app mounts the boundary's published CA files at.
    #[arg(long, value_name = "DIR", default_value = "/var/run/standin/ca")]
    pub ca_dir: std::path::PathBuf,

    /// Output: yaml (a container's `env:` list) or env (NAME=VALUE lines).
    #[arg(long, value_name = "FORMAT", default_value = "yaml", value_parser = ["yaml", "env"])]
    pub format: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SecretCommand {
    /// Replace secret ENV's value in running sandbox NAME (rotation), reading the new value
    /// from standard input (one trailing newline dropped). The placeholder stays the same.
    Set(SecretSetArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SecretSetArgs {
    /// The sandbox's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The secret's environment variable name.
    #[arg(value_name = "ENV")]
    pub env: String,
}

#[derive(Debug, Args)]
pub(crate) struct LsArgs {
    /// Print JSON (one array of objects) instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Remove the records of exited sandboxes and of those whose supervisor died, then list.
    #[arg(long)]
    pub prune: bool,
}

#[derive(Debug, Args)]
pub(crate) struct NameArg {
    /// The sandbox's name.
    #[arg(value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// Give the command a terminal of its own (a pty inside the sandbox), relayed to this
    /// one in raw mode: job control, window size, Ctrl-C and Ctrl-Z reach the command.
    #[arg(long, short = 't')]
    pub tty: bool,

    /// Keep stdin attached (always the case; accepted for Docker's `-it`).
    #[arg(long, short = 'i')]
    pub interactive: bool,

    /// Set K=V for the command, or copy this process's value of K (repeatable).
    #[arg(long, short = 'e', value_name = "K=V|K")]
    pub env: Vec<String>,

    /// The sandbox's name.
    #[arg(value_name = "NAME")]
    pub name: String,

    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// Keep printing new output until the sandbox ends.
    #[arg(long, short = 'f')]
    pub follow: bool,

    /// The sandbox's name.
    #[arg(value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Args)]
pub(crate) struct StopArgs {
    /// Seconds between SIGTERM and SIGKILL.
    #[arg(long, short = 't', default_value_t = 10, value_name = "SECS")]
    pub time: u64,

    /// The sandboxes' names.
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// Stop running sandboxes first (at once, with SIGKILL).
    #[arg(long, short = 'f')]
    pub force: bool,

    /// The sandboxes' names.
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CpArgs {
    /// What to copy: a host path, or NAME:PATH in a sandbox.
    #[arg(value_name = "SRC")]
    pub src: String,

    /// Where to: NAME:PATH in a sandbox, or a host path (into it when it is a directory).
    #[arg(value_name = "DEST")]
    pub dest: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ImageCommand {
    /// Remove layers no image uses (and leftovers of interrupted pulls).
    Prune,
}

/// How to reach registries (shared by `pull` and `run`).
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct RegistryArgs {
    /// Also trust the CA certificates in this PEM file for registry TLS (repeatable).
    #[arg(long, value_name = "FILE")]
    pub registry_ca: Vec<PathBuf>,

    /// Reach this registry (HOST[:PORT]) over plain HTTP; every other registry stays HTTPS
    /// (repeatable).
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PullArgs {
    /// The image: [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST] (python:3.12 means
    /// docker.io/library/python:3.12).
    #[arg(value_name = "IMAGE")]
    pub image: String,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RmiArgs {
    /// The images to remove.
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Run only these workloads (comma-separated): keepalive, newconn, newhost, bulk, dns,
    /// startup, idle, images. Default: all of them.
    #[arg(long, value_delimiter = ',', value_name = "WORKLOAD")]
    pub only: Vec<crate::bench::Workload>,

    /// How many idle connections the memory measurement opens through the boundary.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub idle: u32,

    /// Seconds each throughput run lasts.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    pub secs: f64,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Leave the sandbox running in the background under a supervisor of its own, print its
    /// name once it is ready, and exit (see `standin ls`, `exec`, `logs`, `stop`, `rm`).
    #[arg(long, short = 'd', conflicts_with = "tty")]
    pub detach: bool,

    /// Give COMMAND a terminal of its own (a pty inside the sandbox), relayed to this one in
    /// raw mode: job control, window size, Ctrl-C and Ctrl-Z reach the command.
    #[arg(long, short = 't')]
    pub tty: bool,

    /// Keep stdin attached (always the case; accepted for Docker's `-it`).
    #[arg(long, short = 'i')]
    pub interactive: bool,

    /// Name the sandbox (unique among this user's detached sandboxes; 1 to 63 characters from
    /// a-z A-Z 0-9 _ . -). Default with -d: `sb-` and its id.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Bind HOST_DIR read-write at /workspace, the working directory (default: a fresh empty
    /// directory, removed afterwards).
    #[arg(long, value_name = "HOST_DIR")]
    pub workdir: Option<PathBuf>,

    /// Bind a host path into the sandbox: HOST:GUEST, HOST:GUEST:ro or HOST:GUEST:rw
    /// (repeatable).
    #[arg(long, value_name = "HOST:GUEST[:ro]")]
    pub mount: Vec<String>,

    /// Set K=V in the sandbox, or copy the host's value of K (repeatable). Nothing else is
    /// inherited from standin's environment.
    #[arg(long, value_name = "K=V|K")]
    pub env: Vec<String>,

    /// Use a prepared root filesystem directory instead of the host's system directories.
    #[arg(long, value_name = "DIR", conflicts_with = "image")]
    pub rootfs: Option<PathBuf>,

    /// Run on this OCI image (pulled when missing); without a COMMAND, run the image's
    /// Entrypoint and Cmd.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,

    /// When to contact the registry: missing (default), always, never.
    #[arg(long, value_name = "POLICY")]
    pub pull: Option<standin::PullPolicy>,

    #[command(flatten)]
    pub registry: RegistryArgs,

    /// Memory limit for the sandbox's processes and its writable space together: 512M, 2G,
    /// … or unlimited (default: 4G, or half the host's memory when less). At the limit the
    /// kernel kills the largest process in the sandbox.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,

    /// CPU limit in CPUs: 0.5, 2, … or unlimited (the default).
    #[arg(long, value_name = "N")]
    pub cpus: Option<String>,

    /// Limit on processes and threads together: 256, … or unlimited (default: 4096).
    #[arg(long, value_name = "N")]
    pub pids: Option<String>,

    /// Limit on everything the sandbox can write (/tmp, /dev/shm, /workspace unless
    /// --workdir, an image's writable layer), together: 1G, … or unlimited (default: half
    /// the memory limit).
    #[arg(long, value_name = "SIZE")]
    pub disk: Option<String>,

    /// Give the sandbox loopback only: no way out at all.
    #[arg(long)]
    pub no_network: bool,

    /// Hostname inside the sandbox.
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,

    /// Egress rule, first match wins (repeatable):
    /// allow|deny@TARGET[:tcp|udp[:PORTS]]; TARGET is an IP, CIDR, [IPv6], domain, *.domain,
    /// any, or a group (public, private, loopback, link-local, metadata, multicast, host).
    /// Rules come before the built-in allow@public.
    #[arg(long, value_name = "RULE")]
    pub net_rule: Vec<String>,

    /// What happens to traffic no rule matches (default: deny).
    #[arg(long, value_name = "ACTION")]
    pub net_default: Option<crate::config::DefaultAction>,

    /// DNS resolver to forward to: ADDR, ADDR:PORT or [IPV6]:PORT (repeatable; default: the
    /// host's /etc/resolv.conf).
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub dns_upstream: Vec<String>,

    /// Close relayed connections idle (no byte either way) for SECS seconds (default: 900).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: Option<u64>,

    /// Reset new connections beyond N open at once through the boundary (default: 8192).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub max_connections: Option<u64>,

    /// Append audit events to FILE (created with mode 0600), one JSON object per line: every
    /// decision (denied connections and queries, rebind blocks, upstream failures, secret
    /// violations of every action, substitutions, passthroughs) and the sandbox's start,
    /// exit, termination and limit hits. Schema: docs/EVENTS.md.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,

    /// What --events records: `decisions` (default) or `all` (also every allowed
    /// connection).
    #[arg(long, value_name = "LEVEL")]
    pub events_level: Option<EventsLevelArg>,

    /// The format of --events: `jsonl` (standin's schema, default) or `ocsf` (OCSF 1.3).
    #[arg(long, value_name = "FORMAT")]
    pub events_format: Option<EventsFormatArg>,

    /// Give the sandbox a secret: NAME holds the placeholder $MSB_NAME inside the sandbox, and
    /// the real value (read from standin's own environment variable NAME, or from
    /// --secret-file) is substituted only for these hosts (`*.domain` patterns allowed), in
    /// headers and Basic credentials, on verified TLS. Repeatable. Turns on TLS interception.
    #[arg(long, value_name = "NAME@HOST[,HOST...]")]
    pub secret: Vec<String>,

    /// Read the value of secret NAME from PATH (trailing newline dropped) instead of from
    /// standin's environment. Values never come from argv.
    #[arg(long, value_name = "NAME=PATH")]
    pub secret_file: Vec<String>,

    /// What happens when a placeholder is headed somewhere it may not become real:
    /// block (default), block-and-log, or block-and-terminate (kill the whole sandbox; standin
    /// then exits with status 99).
    #[arg(long, value_name = "ACTION")]
    pub on_secret_violation: Option<String>,

    /// A host (or `*.domain`) that may receive placeholders unchanged, as inert data, instead
    /// of a block (sandbox-wide, repeatable). It never receives a real value.
    #[arg(long, value_name = "HOST")]
    pub secret_passthrough: Vec<String>,

    /// Declare secret NAME an AWS credential: its value is the secret access key, and
    /// ACCESS_KEY_ID (public) names it. SigV4 requests signed with that key ID are signed
    /// afresh with the real key for NAME's hosts; the key itself is never sent. Repeatable.
    #[arg(long, value_name = "NAME=ACCESS_KEY_ID")]
    pub secret_aws_key_id: Vec<String>,

    /// Secret NAME's hosts must receive it: a request to one of them without NAME's
    /// placeholder (or its AWS signature) is refused. Repeatable.
    #[arg(long, value_name = "NAME")]
    pub secret_require: Vec<String>,

    /// Give secret NAME a placeholder shaped like its token (`ghp_MSBNAMExxx…`: the value's
    /// public prefix and length) for clients that check token formats. Repeatable.
    #[arg(long, value_name = "NAME")]
    pub secret_shaped: Vec<String>,

    /// How a blocked HTTP request (secret violation, egress denial) is answered: reset (the
    /// default: a connection reset) or forbidden (a 403 from the boundary naming the rule;
    /// nothing reaches the destination; other streams are still reset).
    #[arg(long, value_name = "reset|forbidden")]
    pub violation_response: Option<String>,

    /// Also trust the CA certificates in this PEM file when verifying upstream TLS (besides
    /// the host's system roots). Repeatable.
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Vec<PathBuf>,

    /// Read settings from a TOML file first (see docs/NETWORK.md and docs/SECRETS.md); flags
    /// add to it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The command and its arguments (after `--`); optional with --image.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `--events-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum EventsLevelArg {
    /// Every decision (the default).
    Decisions,
    /// Decisions and every allowed connection.
    All,
}

/// `--events-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum EventsFormatArg {
    /// standin's own JSON lines.
    Jsonl,
    /// OCSF 1.3 JSON lines.
    Ocsf,
}

/// `--log-level`: a level, or comma-separated `target=level` directives. Anything else is
/// refused (tracing would read a bare word as a target name and log nothing).
fn log_filter(s: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let bad = || {
        format!(
            "{s:?} is not a log level: give one of {} or target=level directives such as standin_boundary=debug",
            LEVELS.join(", ")
        )
    };
    if s.is_empty() {
        return Err(bad());
    }
    for directive in s.split(',') {
        let level = match directive.rsplit_once('=') {
            Some((target, level)) if !target.is_empty() => level,
            Some(_) => return Err(bad()),
            None => directive,
        };
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(bad());
        }
    }
    Ok(s.to_owned())
}
