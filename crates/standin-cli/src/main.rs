//! The `standin` command-line tool.
//!
//! `standin run [OPTIONS] -- COMMAND [ARGS...]` runs COMMAND in a fresh sandbox and exits
//! with its exit code. The same binary also serves as the sandbox's helper (stage1 and the
//! exec helper), selected by a hidden first argument before any CLI parsing happens.

#![forbid(unsafe_code)]

mod bench;
mod boundary;
mod cli;
mod config;
mod demo;
mod images;
mod progress;
mod sandboxes;
mod secrets;
mod terminal;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command, EventsFormatArg, EventsLevelArg, RunArgs};
use standin::{EnvSpec, MountSpec, NetworkBuilder, Sandbox};

fn main() {
    standin::run_helper_if_requested();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("__bench-client") {
        std::process::exit(bench::client::main(&args[2..]));
    }
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => {
            let args = *args;
            init_logging(&cli.log_level);
            // Each connection through the boundary holds two descriptors here.
            if let Err(e) = standin::raise_descriptor_limit() {
                tracing::warn!(error = %e, "cannot raise the descriptor limit");
            }
            run(args)
        }
        Command::Bench(args) => {
            init_logging(if cli.log_level == "warn" {
                "error"
            } else {
                &cli.log_level
            });
            bench::run(&args)
        }
        Command::Pull(args) => {
            init_logging(&cli.log_level);
            with_runtime(images::pull(&args))
        }
        Command::Ls(args) => report(sandboxes::ls(&args)),
        Command::Exec(args) => {
            init_logging(&cli.log_level);
            with_runtime(sandboxes::exec(args))
        }
        Command::Logs(args) => report(sandboxes::logs(&args)),
        Command::Stop(args) => with_runtime(sandboxes::stop(args)),
        Command::Rm(args) => with_runtime(sandboxes::rm(args)),
        Command::Inspect(args) => with_runtime(sandboxes::inspect(args)),
        Command::Secret(cli::SecretCommand::Set(args)) => with_runtime(sandboxes::secret_set(args)),
        Command::Cp(args) => {
            init_logging(&cli.log_level);
            with_runtime(sandboxes::cp(args))
        }
        Command::Images => report(images::list()),
        Command::Rmi(args) => report(images::rmi(&args)),
        Command::Image(cli::ImageCommand::Prune) => report(images::prune()),
        Command::Boundary(args) => {
            init_logging(&cli.log_level);
            if let Err(e) = standin::raise_descriptor_limit() {
                tracing::warn!(error = %e, "cannot raise the descriptor limit");
            }
            boundary::main(*args)
        }
        Command::Demo => {
            // The demo prints the boundary's events itself; logs only on request.
            init_logging(if cli.log_level == "warn" {
                "off"
            } else {
                &cli.log_level
            });
            demo::run()
        }
    };
    std::process::exit(code);
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into files or pipes.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// Exit code when standin itself fails before the command could run.
const EXIT_STANDIN_FAILED: i32 = 125;
/// Exit code when a block-and-terminate secret violation killed the sandbox.
pub const EXIT_SECRET_TERMINATED: i32 = 99;

/// The async runtime every subcommand uses: two workers (the boundary's tasks are short;
/// more threads only add wake-ups on small machines).
pub fn new_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

fn report(r: anyhow::Result<i32>) -> i32 {
    r.unwrap_or_else(|e| {
        eprintln!("standin: {e:#}");
        EXIT_STANDIN_FAILED
    })
}

fn with_runtime(f: impl std::future::Future<Output = anyhow::Result<i32>>) -> i32 {
    match new_runtime() {
        Ok(rt) => report(rt.block_on(f)),
        Err(e) => {
            eprintln!("standin: cannot start the async runtime: {e}");
            EXIT_STANDIN_FAILED
        }
    }
}

fn run(args: RunArgs) -> i32 {
    let runtime = match new_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("standin: cannot start the async runtime: {e}");
            return EXIT_STANDIN_FAILED;
        }
    };
    match runtime.block_on(run_async(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("standin: {e:#}");
            EXIT_STANDIN_FAILED
        }
    }
}

async fn run_async(args: RunArgs) -> anyhow::Result<i32> {
    use tokio::signal::unix::{SignalKind, signal};
    let cfg = match &args.config {
        Some(path) => config::Config::load(path)?,
        None => config::Config::default(),
    };
    let sb = &cfg.sandbox;
    let image = args.image.as_ref().or(sb.image.as_ref());
    let name = match (&args.name, args.detach) {
        (Some(n), _) => n.clone(),
        (None, true) => sandboxes::generated_name(),
        (None, false) => "run".to_owned(),
    };
    if let Err(e) = standin::detached::validate_name(&name) {
        anyhow::bail!("--name: {e}");
    }
    let mut builder = Sandbox::builder(&name).detached(args.detach);
    if args.tty {
        // The command (or the image's) runs on a terminal of the sandbox's own: the sandbox
        // idles, the command is exec'd on a pty, and the sandbox stops when it ends.
        if args.command.is_empty() && image.is_none() {
            anyhow::bail!(
                "-t: give the command to run after `--` (for example `standin run -it -- bash`), or --image IMAGE to run the image's own command"
            );
        }
    } else if !args.command.is_empty() {
        builder = builder.command(args.command.clone());
    } else if image.is_some() {
        builder = builder.image_command_if_none();
    } else if !args.detach {
        anyhow::bail!(
            "give the command to run after `--` (for example `standin run -- sh -c 'echo hi'`), or --image IMAGE to run the image's own command"
        );
    }
    if let Some(image) = image {
        builder = builder.image(image);
        let policy = match (args.pull, sb.pull.as_deref()) {
            (Some(p), _) => p,
            (None, Some(p)) => p
                .parse()
                .map_err(|e: String| anyhow::anyhow!("config [sandbox] pull: {e}"))?,
            (None, None) => standin::PullPolicy::Missing,
        };
        builder = builder.pull_policy(policy);
        let reg =
            images::registry_options(&args.registry, &sb.registry_cas, &sb.insecure_registries);
        for ca in reg.extra_cas {
            builder = builder.registry_ca(ca);
        }
        for host in reg.insecure {
            builder = builder.insecure_registry(&host);
        }
        if let Some(p) = images::progress() {
            builder = builder.pull_progress(p);
        }
    }
    if let Some(dir) = args.workdir.as_ref().or(sb.workdir.as_ref()) {
        builder = builder.workdir(dir);
    }
    if let Some(dir) = args.rootfs.as_ref().or(sb.rootfs.as_ref()) {
        builder = builder.rootfs(dir);
    }
    if let Some(h) = args.hostname.as_ref().or(sb.hostname.as_ref()) {
        builder = builder.hostname(h);
    }
    builder = limits(builder, &args, sb)?;
    for m in sb.mounts.iter().chain(&args.mount) {
        builder = builder.mount(MountSpec::parse(m)?);
    }
    for e in sb.env.iter().chain(&args.env) {
        builder = builder.env_spec(EnvSpec::parse(e)?);
    }
    builder = configure_network(builder, &cfg, &args, secrets::Values::Read)?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let sandbox = builder.create().await?;
    for w in sandbox.limit_warnings() {
        eprintln!("standin: warning: {w}");
    }
    if args.detach {
        println!("{}", sandbox.name());
        return Ok(0);
    }
    if args.tty {
        let argv = if args.command.is_empty() {
            sandbox.image_command().with_context(|| {
                format!(
                    "{} has no Entrypoint or Cmd: give the command to run after `--`",
                    image.map_or("the image", |i| i.as_str())
                )
            })?
        } else {
            args.command.clone()
        };
        let exec = sandbox
            .exec_with_tty(argv, Vec::new(), terminal::size())
            .await?;
        let code = terminal::relay(exec).await?;
        sandbox.stop();
        let _ = sandbox.wait().await;
        return Ok(code);
    }
    // SIGHUP: read the secrets' value files again and rotate those that changed.
    let mut sighup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut files = secrets::ValueFiles::new(secrets::value_files(&cfg, &args));
    let wait = sandbox.wait();
    tokio::pin!(wait);
    let code = loop {
        tokio::select! {
            code = &mut wait => {
                let code = code?;
                if sandbox.terminated_by_violation() {
                    eprintln!("standin: the sandbox was terminated after a secret violation (block-and-terminate); discard its outputs");
                    return Ok(EXIT_SECRET_TERMINATED);
                }
                break code;
            }
            _ = sighup.recv() => files.reload(&sandbox).await,
            _ = sigint.recv() => { sandbox.stop(); let _ = sandbox.wait().await; break 128 + libc_sig::SIGINT }
            _ = sigterm.recv() => { sandbox.stop(); let _ = sandbox.wait().await; break 128 + libc_sig::SIGTERM }
        }
    };
    for m in sandbox.limit_messages() {
        eprintln!("standin: {m}");
    }
    Ok(code)
}

/// The network part of `cfg` and `args` (policy, DNS, events, secrets) applied to `builder`:
/// shared by `run` and `boundary`.
pub(crate) fn configure_network(
    mut builder: standin::SandboxBuilder,
    cfg: &config::Config,
    args: &RunArgs,
    values: secrets::Values,
) -> anyhow::Result<standin::SandboxBuilder> {
    let net = &cfg.network;
    let enabled = !args.no_network && net.enabled.unwrap_or(true);
    let default = args.net_default.or(net.default);
    let events = args.events.clone().or(net.events.clone());
    let events_level = args.events_level.or(net.events_level);
    let events_format = args.events_format.or(net.events_format);
    if events.is_none() && (events_level.is_some() || events_format.is_some()) {
        anyhow::bail!(
            "events_level and events_format say how to write the events file, and no events file is given: add events = \"PATH\" under [network] (or --events PATH)"
        );
    }
    let idle_timeout = args.idle_timeout.or(net.idle_timeout_secs);
    let max_connections = args.max_connections.or(net.max_connections);
    builder = builder.network(|mut n| {
        n = n.enabled(enabled);
        for r in net.rules.iter().chain(&args.net_rule) {
            n = n.rule(r);
        }
        if let Some(d) = default {
            n = n.default_action(match d {
                config::DefaultAction::Allow => standin::Action::Allow,
                config::DefaultAction::Deny => standin::Action::Deny,
            });
        }
        for u in net.dns_upstreams.iter().chain(&args.dns_upstream) {
            n = n.dns_upstream(u);
        }
        if let Some(secs) = idle_timeout {
            n = n.idle_timeout(std::time::Duration::from_secs(secs));
        }
        if let Some(max) = max_connections {
            n = n.max_connections(usize::try_from(max).unwrap_or(usize::MAX));
        }
        if let Some(on) = net.rebind_protection {
            n = n.rebind_protection(on);
        }
        if let Some(path) = events {
            n = n.events_file(path);
        }
        n = n.events_level(match events_level {
            Some(EventsLevelArg::All) => standin::EventsLevel::All,
            _ => standin::EventsLevel::Decisions,
        });
        n = n.events_format(match events_format {
            Some(EventsFormatArg::Ocsf) => standin::EventsFormat::Ocsf,
            _ => standin::EventsFormat::Jsonl,
        });
        n
    });
    let mut secret_err = None;
    builder = builder.network(|n| {
        let fallback = NetworkBuilder::default();
        match secrets::apply_with(n, cfg, args, values) {
            Ok(n) => n,
            Err(e) => {
                secret_err = Some(e);
                fallback
            }
        }
    });
    if let Some(e) = secret_err {
        return Err(e);
    }
    Ok(builder)
}

/// `--memory`, `--cpus`, `--pids`, `--disk` (or the config's), checked here so that an error
/// names the flag or the config key.
fn limits(
    builder: standin::SandboxBuilder,
    args: &RunArgs,
    sb: &config::SandboxSection,
) -> anyhow::Result<standin::SandboxBuilder> {
    use standin::SandboxBuilder as B;
    use standin_policy::limits::{parse_cpus, parse_disk, parse_memory, parse_pids};
    let b = limit(
        builder,
        "memory",
        &args.memory,
        &sb.memory,
        parse_memory,
        B::memory,
    )?;
    let b = limit(b, "cpus", &args.cpus, &sb.cpus, parse_cpus, B::cpus)?;
    let b = limit(b, "pids", &args.pids, &sb.pids, parse_pids, B::pids)?;
    limit(b, "disk", &args.disk, &sb.disk, parse_disk, B::disk)
}

/// One limit: the flag's value, else the config's, checked with `parse`, then applied.
fn limit<T>(
    builder: standin::SandboxBuilder,
    name: &str,
    flag: &Option<String>,
    file: &Option<config::LimitText>,
    parse: fn(&str) -> Result<T, standin_policy::limits::LimitError>,
    apply: fn(standin::SandboxBuilder, &str) -> standin::SandboxBuilder,
) -> anyhow::Result<standin::SandboxBuilder> {
    let (text, origin) = match (flag, file) {
        (Some(t), _) => (t.clone(), format!("--{name}")),
        (None, Some(t)) => (t.to_string(), format!("config [sandbox] {name}")),
        (None, None) => return Ok(builder),
    };
    if let Err(e) = parse(&text) {
        anyhow::bail!("{origin} {text}: {}", e.problem);
    }
    Ok(apply(builder, &text))
}

mod libc_sig {
    pub(crate) const SIGINT: i32 = 2;
    pub(crate) const SIGTERM: i32 = 15;
}
