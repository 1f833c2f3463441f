//! [`SandboxBuilder`]: describe a sandbox, then `create()` it.

use crate::Error;
use crate::image::{ImageChoice, ResolvedImage};
use crate::network::NetworkBuilder;
use crate::sandbox::Sandbox;
use crate::stdio::StdioSpec;
use standin_image::{ImageRef, PullPolicy, PullProgress};
use standin_policy::limits::{self, Limits};
use standin_policy::{EnvSpec, MountSpec, env_spec, guest_env};
use standin_sandbox::cgroup::Controller;
use standin_sandbox::spec::{
    CA_BUNDLE, CA_FILE, ExecSpec, ImageRoot, NetworkMode, ResourceLimits, RootSource, SandboxSpec,
    WORKSPACE,
};
use std::path::PathBuf;
use std::sync::Arc;

/// Builder for a [`Sandbox`]. Invalid input is remembered and reported by
/// [`create`](SandboxBuilder::create), naming the call at fault.
///
/// ```no_run
/// # async fn demo() -> Result<(), standin::Error> {
/// let sandbox = standin::Sandbox::builder("agent")
///     .hostname("agent-1")
///     .workdir("/srv/agent") // read-write at /workspace
///     .env("MODE", "ci")
///     .network(|n| n.rule("deny@*.internal.example"))
///     .command(["python3", "agent.py"])
///     .create()
///     .await?;
/// let code = sandbox.wait().await?;
/// # let _ = code;
/// # Ok(()) }
/// ```
///
/// Every invalid call is reported at once:
///
/// ```no_run
/// # async fn demo() {
/// let err = standin::Sandbox::builder("agent")
///     .env("BAD NAME", "x")
///     .command(Vec::<String>::new())
///     .create()
///     .await
///     .unwrap_err();
/// match err {
///     standin::Error::Config { problems } => assert_eq!(problems.len(), 2),
///     other => panic!("{other}"),
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct SandboxBuilder {
    pub(crate) name: String,
    pub(crate) hostname: Option<String>,
    pub(crate) root: RootSource,
    pub(crate) workdir: Option<PathBuf>,
    pub(crate) mounts: Vec<MountSpec>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) network: NetworkBuilder,
    pub(crate) command: Option<Vec<String>>,
    pub(crate) use_image_command: bool,
    pub(crate) image: ImageChoice,
    pub(crate) helper: Option<PathBuf>,
    pub(crate) stdio: StdioSpec,
    pub(crate) limits: Limits,
    pub(crate) detached: bool,
    pub(crate) errors: Vec<String>,
}

impl SandboxBuilder {
    pub(crate) fn new(name: &str) -> SandboxBuilder {
        SandboxBuilder {
            name: name.to_owned(),
            hostname: None,
            root: RootSource::Host,
            workdir: None,
            mounts: Vec::new(),
            env: Vec::new(),
            network: NetworkBuilder::default(),
            command: None,
            use_image_command: false,
            image: ImageChoice::default(),
            helper: None,
            stdio: StdioSpec::default(),
            limits: Limits::default(),
            detached: false,
            errors: Vec::new(),
        }
    }

    /// The sandbox's hostname (default: `standin`).
    pub fn hostname(mut self, hostname: &str) -> Self {
        let ok = !hostname.is_empty()
            && hostname.len() <= 64
            && hostname
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if ok {
            self.hostname = Some(hostname.to_owned());
        } else {
            self.errors.push(format!(
                "hostname({hostname:?}): use 1 to 64 characters from a-z, 0-9, '-' and '.'"
            ));
        }
        self
    }

    /// Bind this host directory read-write at `/workspace` (the working directory). Without
    /// it, `/workspace` is a fresh empty directory that disappears with the sandbox.
    pub fn workdir(mut self, dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        match std::fs::canonicalize(&dir) {
            Ok(abs) if abs.is_dir() => match writable_by_sandbox(&abs) {
                Ok(()) => self.workdir = Some(abs),
                Err(e) => self.errors.push(format!("workdir({}): {e}", dir.display())),
            },
            Ok(_) => self
                .errors
                .push(format!("workdir({}): not a directory", dir.display())),
            Err(e) => self.errors.push(format!("workdir({}): {e}", dir.display())),
        }
        self
    }

    /// Use a prepared root filesystem directory instead of the host's system directories.
    pub fn rootfs(mut self, dir: impl Into<PathBuf>) -> Self {
        if self.image.reference.is_some() {
            self.errors
                .push("image(…) and rootfs(…): choose one root filesystem".into());
        }
        let dir = dir.into();
        match std::fs::canonicalize(&dir) {
            Ok(abs) if abs.join("usr").is_dir() || abs.join("bin").exists() => {
                self.root = RootSource::Dir(abs)
            }
            Ok(abs) => self.errors.push(format!(
                "rootfs({}): {} has neither usr/ nor bin/; point it at a root filesystem tree",
                dir.display(),
                abs.display()
            )),
            Err(e) => self.errors.push(format!("rootfs({}): {e}", dir.display())),
        }
        self
    }

    /// Add a bind mount. Two mounts at one guest path, or one at `/workspace` together with
    /// [`workdir`](Self::workdir), are refused by `create()` (one would hide the other).
    pub fn mount(mut self, mount: MountSpec) -> Self {
        if !mount.host.exists() {
            self.errors.push(format!(
                "mount({}): host path does not exist",
                mount.host.display()
            ));
        } else if let Some(earlier) = self.mounts.iter().find(|m| m.guest == mount.guest) {
            self.errors.push(format!(
                "mount({}:{}): {} is already mounted from {}; one guest path takes one mount",
                mount.host.display(),
                mount.guest.display(),
                mount.guest.display(),
                earlier.host.display()
            ));
        } else {
            self.mounts.push(mount);
        }
        self
    }

    /// Set an environment variable for every command in the sandbox.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        if let Err(e) = env_spec::validate_name_strict(name) {
            self.errors.push(format!("env({name:?}, …): {e}"));
        } else if value.contains('\0') {
            self.errors
                .push(format!("env({name:?}, …): value contains a NUL byte"));
        } else {
            guest_env::set(&mut self.env, name, value);
        }
        self
    }

    /// Apply a parsed `--env` argument; `NAME` alone copies the host's value (if any).
    pub fn env_spec(self, spec: EnvSpec) -> Self {
        match spec {
            EnvSpec::Set { name, value } => self.env(&name, &value),
            EnvSpec::Inherit { name } => match std::env::var(&name) {
                Ok(value) => self.env(&name, &value),
                Err(_) => self,
            },
        }
    }

    /// Configure the network: egress rules, DNS, events, or none at all.
    pub fn network(mut self, configure: impl FnOnce(NetworkBuilder) -> NetworkBuilder) -> Self {
        self.network = configure(std::mem::take(&mut self.network));
        self
    }

    /// The secrets' environment entries: `(variable, placeholder)` (see
    /// [`NetworkBuilder::placeholders`]).
    pub fn placeholders(&self) -> Vec<(String, String)> {
        self.network.placeholders()
    }

    /// Add a secret (same as [`NetworkBuilder::secret`]): the sandbox sees only its
    /// placeholder, and TLS interception is turned on.
    pub fn secret(
        self,
        configure: impl FnOnce(crate::SecretBuilder) -> crate::SecretBuilder,
    ) -> Self {
        self.network(|n| n.secret(configure))
    }

    /// One-line secret: placeholder `$MSB_<env>`, substituted only for `allowed_host`, in
    /// headers and Basic credentials.
    pub fn secret_env(self, env: &str, value: &str, allowed_host: &str) -> Self {
        self.network(|n| n.secret_env(env, value, allowed_host))
    }

    /// Loopback only: nothing leaves the sandbox. Same as `network(|n| n.enabled(false))`.
    pub fn no_network(self) -> Self {
        self.network(|n| n.enabled(false))
    }

    /// The main command. The sandbox lives as long as it runs; without one, the sandbox idles
    /// until [`Sandbox::stop`] (use [`Sandbox::exec`] to run commands).
    pub fn command<I, S>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let argv: Vec<String> = argv.into_iter().map(Into::into).collect();
        if argv.is_empty() || argv[0].is_empty() {
            self.errors
                .push("command([]): give at least a program name".into());
        } else if argv.iter().any(|a| a.contains('\0')) {
            self.errors
                .push("command(…): arguments cannot contain NUL bytes".into());
        } else {
            self.command = Some(argv);
        }
        self
    }

    /// Standard streams of the main command (default: inherited from this process).
    pub fn stdio(mut self, stdio: StdioSpec) -> Self {
        self.stdio = stdio;
        self
    }

    /// The helper binary sandboxes are started with: a `standin` binary of this SDK's
    /// version. Default, in this order: `STANDIN_BIN`; this program, when it called
    /// [`crate::run_helper_if_requested`] first thing in `main`; `standin` next to this
    /// program's executable; `standin` on `PATH`.
    pub fn helper(mut self, path: impl Into<PathBuf>) -> Self {
        self.helper = Some(path.into());
        self
    }

    /// Run the sandbox on an OCI image (`python:3.12-slim`, `ghcr.io/org/app@sha256:…`):
    /// its layers, read-only, under a writable layer that disappears with the sandbox. The
    /// image's `Env` comes before [`env`](Self::env), its `WorkingDir` is the working
    /// directory (default `/workspace`) and its `User` runs every command. The image is
    /// pulled when `create()` needs it (see [`pull_policy`](Self::pull_policy)). Replaces
    /// [`rootfs`](Self::rootfs).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), standin::Error> {
    /// let sb = standin::Sandbox::builder("agent")
    ///     .image("python:3.12-slim")
    ///     .pull_policy(standin::PullPolicy::Missing)
    ///     .create()
    ///     .await?;
    /// let out = sb.exec("python3", ["--version"]).await?;
    /// # let _ = out;
    /// # Ok(()) }
    /// ```
    pub fn image(mut self, reference: &str) -> Self {
        match ImageRef::parse(reference) {
            Ok(r) => {
                self.image.reference = Some(r);
                if matches!(self.root, RootSource::Dir(_)) {
                    self.errors
                        .push("image(…) and rootfs(…): choose one root filesystem".into());
                }
            }
            Err(e) => self.errors.push(format!("image({reference:?}): {e}")),
        }
        self
    }

    /// When `create()` contacts the registry: [`PullPolicy::Missing`] (default) only when
    /// the image is not in the local store, [`PullPolicy::Always`] every time (a moved tag
    /// is followed), [`PullPolicy::Never`] not at all.
    pub fn pull_policy(mut self, policy: PullPolicy) -> Self {
        self.image.policy = policy;
        self
    }

    /// Trust the CA certificates in this PEM file for registry TLS, besides the host's roots
    /// (repeatable).
    pub fn registry_ca(mut self, pem_file: impl Into<PathBuf>) -> Self {
        self.image.registry.extra_cas.push(pem_file.into());
        self
    }

    /// Reach this registry (`host[:port]`) over plain HTTP. Only this one; use it for test
    /// registries.
    pub fn insecure_registry(mut self, host: &str) -> Self {
        self.image.registry.insecure.push(host.to_owned());
        self
    }

    /// Report pull progress to `progress`.
    pub fn pull_progress(mut self, progress: Arc<dyn PullProgress>) -> Self {
        self.image.progress = Some(progress);
        self
    }

    /// The image's default command (`Entrypoint` then `Cmd`) when no command was given.
    /// Used by `standin run --image IMAGE` without a command; the SDK's default is an idle
    /// sandbox.
    pub fn image_command_if_none(mut self) -> Self {
        self.use_image_command = true;
        self
    }

    /// Memory limit: `512M`, `2G`, … or `unlimited` (default: 4 GiB, or half the host's
    /// memory when that is less). The sandbox's processes and its writable space (a tmpfs)
    /// count together; at the limit the kernel kills the largest process in the sandbox.
    pub fn memory(mut self, size: &str) -> Self {
        match limits::parse_memory(size) {
            Ok(l) => self.limits.memory = l,
            Err(e) => self.errors.push(format!("memory({size:?}): {}", e.problem)),
        }
        self
    }

    /// CPU limit, in CPUs: `0.5`, `2`, … or `unlimited` (the default).
    pub fn cpus(mut self, cpus: &str) -> Self {
        match limits::parse_cpus(cpus) {
            Ok(l) => self.limits.cpus = l,
            Err(e) => self.errors.push(format!("cpus({cpus:?}): {}", e.problem)),
        }
        self
    }

    /// Limit on processes and threads together: `256`, … or `unlimited` (default: 4096).
    /// At the limit, `fork` and thread creation fail with `EAGAIN`.
    pub fn pids(mut self, pids: &str) -> Self {
        match limits::parse_pids(pids) {
            Ok(l) => self.limits.pids = l,
            Err(e) => self.errors.push(format!("pids({pids:?}): {}", e.problem)),
        }
        self
    }

    /// Limit on everything the sandbox can write (`/tmp`, `/dev/shm`, `/workspace` unless
    /// it is a host directory, an image's writable layer), together: `1G`, … or `unlimited`
    /// (default: half the memory limit). At the limit, writes fail with `ENOSPC`.
    pub fn disk(mut self, size: &str) -> Self {
        match limits::parse_disk(size) {
            Ok(l) => self.limits.disk = l,
            Err(e) => self.errors.push(format!("disk({size:?}): {}", e.problem)),
        }
        self
    }

    /// Detach the sandbox from this process: a supervisor process of its own holds the
    /// boundary and the real values, the main command's output goes to a log, and the
    /// sandbox runs until its main command ends or it is stopped, whatever becomes of this
    /// process. The builder's name must be unique among this user's detached sandboxes
    /// (see [`validate_name`](crate::detached::validate_name)); reattach with
    /// [`Sandbox::get`]. Dropping a detached handle does not stop the sandbox. Callbacks
    /// (`on_event`, `stdio`) cannot follow it: use an events file and the log.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), standin::Error> {
    /// let sb = standin::Sandbox::builder("agent-7")
    ///     .detached(true)
    ///     .create()
    ///     .await?;
    /// drop(sb); // still running
    /// let sb = standin::Sandbox::get("agent-7").await?;
    /// sb.exec("true", Vec::<String>::new()).await?;
    /// sb.stop();
    /// # Ok(()) }
    /// ```
    pub fn detached(mut self, detached: bool) -> Self {
        self.detached = detached;
        self
    }

    /// Create the sandbox (and start its main command, if any).
    ///
    /// Finds the helper binary first (see [`helper`](Self::helper)) and fails at once when
    /// there is none. The first call also raises this process's soft descriptor limit to its
    /// hard limit ([`crate::raise_descriptor_limit`]): every connection through a boundary
    /// holds two descriptors here.
    pub async fn create(mut self) -> Result<Sandbox, Error> {
        static RAISED: std::sync::Once = std::sync::Once::new();
        RAISED.call_once(|| {
            let _ = crate::raise_descriptor_limit();
        });
        let mut problems = self.errors.clone();
        problems.extend(self.network.errors.iter().cloned());
        if self.detached
            && let Err(e) = crate::detached::validate_name(&self.name)
        {
            problems.push(e);
        }
        if !problems.is_empty() {
            return Err(Error::Config { problems });
        }
        self.helper = Some(crate::helper::resolve(self.helper.take())?);
        if self.detached {
            return crate::detached::create(self).await;
        }
        crate::sandbox::Local::create(self)
            .await
            .map(Sandbox::attached)
    }

    pub(crate) fn spec(&self, image: Option<&ResolvedImage>) -> Result<SandboxSpec, Error> {
        let hostname = self
            .hostname
            .clone()
            .unwrap_or_else(|| "standin".to_owned());
        let root = match image {
            Some(i) => RootSource::Image(ImageRoot {
                layers: i.lease.dirs.clone(),
                copy: crate::image::copy_requested()?,
                working_dir: i
                    .record
                    .config
                    .working_dir
                    .as_deref()
                    .filter(|w| w.starts_with('/'))
                    .map(PathBuf::from),
            }),
            None => self.root.clone(),
        };
        let mut command = self.command.clone();
        if command.is_none()
            && self.use_image_command
            && let Some(i) = image
        {
            let argv = i.record.config.default_command();
            if argv.is_empty() {
                return Err(Error::config(format!(
                    "{} has no Entrypoint or Cmd: give a command",
                    i.record.reference
                )));
            }
            command = Some(argv);
        }
        if self.workdir.is_some()
            && let Some(m) = self
                .mounts
                .iter()
                .find(|m| m.guest == std::path::Path::new("/workspace"))
        {
            return Err(Error::config(format!(
                "workdir({}) and mount({}:/workspace) both give /workspace; keep one",
                self.workdir
                    .as_deref()
                    .unwrap_or(std::path::Path::new(""))
                    .display(),
                m.host.display()
            )));
        }
        Ok(SandboxSpec {
            hostname: hostname.clone(),
            root,
            workdir: self.workdir.clone(),
            mounts: self.mounts.clone(),
            network: if self.network.enabled {
                NetworkMode::Captured
            } else {
                NetworkMode::None
            },
            command: command.map(|argv| ExecSpec {
                argv,
                env: self.environment(&hostname, image),
                cwd: working_dir(image),
                user: image.and_then(|i| i.record.config.user.clone()),
                tty: None,
            }),
            etc_files: Vec::new(),
            trust_ca_pem: None,
            limits: self.resource_limits(),
        })
    }

    /// The limits, with defaults for this host.
    fn resource_limits(&self) -> ResourceLimits {
        let r = self.limits.resolve(host_memory());
        ResourceLimits {
            memory: r.memory,
            cpu_millis: r.cpu_millis,
            pids: r.pids,
            disk: r.disk,
            required: [
                (Controller::Memory, r.explicit.memory),
                (Controller::Cpu, r.explicit.cpus),
                (Controller::Pids, r.explicit.pids),
            ]
            .into_iter()
            .filter_map(|(c, on)| on.then_some(c))
            .collect(),
        }
    }

    /// Base environment plus the user's variables.
    pub(crate) fn environment(
        &self,
        hostname: &str,
        image: Option<&ResolvedImage>,
    ) -> Vec<(String, String)> {
        let term = std::env::var("TERM").ok();
        let mut env = guest_env::base(term.as_deref(), hostname);
        if image.is_some_and(|i| i.record.config.user.is_some()) {
            // The image's user has its own home (filled in from its passwd entry).
            env.retain(|(k, _)| !matches!(k.as_str(), "HOME" | "USER" | "LOGNAME"));
        }
        for kv in image.map(|i| i.record.config.env.as_slice()).unwrap_or(&[]) {
            if let Some((k, v)) = kv.split_once('=')
                && !k.is_empty()
            {
                guest_env::set(&mut env, k, v);
            }
        }
        for (k, v) in &self.env {
            guest_env::set(&mut env, k, v);
        }
        for s in &self.network.secrets {
            guest_env::set(&mut env, &s.env_var, &s.placeholder);
        }
        if self.intercepts() {
            for (k, v) in standin_policy::guest_env::ca_variables(CA_BUNDLE, CA_FILE) {
                guest_env::set(&mut env, k, v);
            }
        }
        env
    }

    /// Whether the boundary intercepts TLS (any secret, network on).
    pub(crate) fn intercepts(&self) -> bool {
        self.network.enabled && !self.network.secrets.is_empty()
    }
}

/// The image's `WorkingDir`, else `/workspace`.
pub(crate) fn working_dir(image: Option<&ResolvedImage>) -> PathBuf {
    image
        .and_then(|i| i.record.config.working_dir.as_deref())
        .filter(|w| w.starts_with('/'))
        .map_or_else(|| PathBuf::from(WORKSPACE), PathBuf::from)
}

/// Rootless, the sandbox's root is the caller's own uid, so it can write only a directory the
/// caller owns (or a world-writable one); anything else would only fail later, inside the
/// workload, with a confusing "Permission denied": say so up front. As root, a writable
/// directory is bound through an idmapped mount that makes its owner the sandbox's root
/// (`standin_sandbox` `host_bind`), and stage1 reports a filesystem that cannot do that.
fn writable_by_sandbox(dir: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let uid = standin_sandbox::idmap::IdMaps::for_current_user().host_root_uid();
    let meta = std::fs::metadata(dir).map_err(|e| e.to_string())?;
    let world_writable = meta.mode() & 0o003 == 0o003;
    if meta.uid() == uid || world_writable {
        return Ok(());
    }
    Err(format!(
        "this directory belongs to uid {}, and the sandbox's root is you (uid {uid}), so it \
         could not write there; use a directory you own, or run standin as root (which binds \
         any directory so that what the sandbox writes belongs to the directory's owner)",
        meta.uid(),
    ))
}

/// The host's memory in bytes (`MemTotal`), or 4 GiB when it cannot be read.
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            kib.checked_mul(1024)
        })
        .unwrap_or(4 << 30)
}
