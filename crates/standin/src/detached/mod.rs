//! Detached sandboxes: named sandboxes that outlive the process that created them.
//!
//! [`SandboxBuilder::detached`](crate::SandboxBuilder::detached) starts a small supervisor
//! process per sandbox (the helper binary, as `__standin-supervise`); the creator hands it
//! the configuration, real secret values included, over a socketpair (never through a
//! file), and it creates the sandbox, holds the boundary and the values, and serves a
//! control socket. [`Sandbox::get`](crate::Sandbox::get) reattaches to it by name, from any
//! process of the same user; `standin exec`, `stop`, `logs`, `inspect` and `rm` are built on
//! the same calls.
//!
//! State lives in `<state dir>/sandboxes/<name>/` (see [`home`]): a record without secret
//! values, the output log, the control socket, and a lock the supervisor holds, so a
//! supervisor that died is told apart from a running one without trusting a PID.

pub(crate) mod client;
pub(crate) mod home;
pub(crate) mod log;
pub(crate) mod protocol;
pub(crate) mod recipe;
pub(crate) mod supervisor;

use crate::Error;
use crate::builder::SandboxBuilder;
use crate::limits::{LimitUsage, ResourceLimits};
use crate::sandbox::Sandbox;
use home::SandboxDir;
use serde::Serialize;
use standin_sandbox::channel;
use std::os::fd::AsFd;
use zeroize::Zeroizing;

pub use home::{MAX_NAME_LEN, validate_name};
pub use log::MAX_LOG_PART;
pub use protocol::Live;

/// Where a detached sandbox is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxState {
    /// Its supervisor is alive, and so is the sandbox.
    Running,
    /// Its main command ended (or it was stopped); the record and logs remain.
    Exited,
    /// Its supervisor died without recording an end (the sandbox died with it).
    Dead,
}

impl SandboxState {
    /// `running`, `exited` or `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxState::Running => "running",
            SandboxState::Exited => "exited",
            SandboxState::Dead => "dead",
        }
    }
}

/// A detached sandbox as `standin ls` and `standin inspect` show it. Never holds a secret
/// value.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct SandboxInfo {
    /// Its name.
    pub name: String,
    /// Its id (as in events).
    pub id: String,
    /// Where it is in its life.
    pub state: SandboxState,
    /// The image reference, the rootfs directory, or `host`.
    pub root: String,
    /// The main command, if it has one.
    pub command: Option<Vec<String>>,
    /// When it was created, in seconds since the epoch.
    pub created: u64,
    /// The limits in force.
    pub limits: ResourceLimits,
    /// Defaults that could not be enforced on this host.
    pub warnings: Vec<String>,
    /// The main command's exit code, once exited.
    pub exit_code: Option<i32>,
    /// When it exited, in seconds since the epoch.
    pub finished: Option<u64>,
    /// What the limits recorded, once exited.
    pub usage: Option<LimitUsage>,
    /// Whether a block-and-terminate violation killed it.
    pub terminated_by_violation: bool,
    /// Host PID of its supervisor.
    pub supervisor_pid: u32,
    /// Host PID of its init.
    pub init_pid: i32,
    /// The configuration it was created with, secrets without their values.
    pub config: serde_json::Value,
    /// The main command's output log (the previous part, if any, beside it with `.1`).
    pub log: std::path::PathBuf,
}

impl SandboxInfo {
    fn of(dir: &SandboxDir, r: home::Record) -> SandboxInfo {
        let state = dir.state(&r);
        SandboxInfo {
            name: r.name,
            id: r.id,
            state,
            root: r.root,
            command: r.command,
            created: r.created,
            limits: r.limits,
            warnings: r.warnings,
            exit_code: r.exit.as_ref().map(|e| e.code),
            finished: r.exit.as_ref().map(|e| e.finished),
            usage: r.exit.as_ref().and_then(|e| e.usage),
            terminated_by_violation: r.exit.as_ref().is_some_and(|e| e.terminated_by_violation),
            supervisor_pid: r.supervisor_pid,
            init_pid: r.init_pid,
            config: r.config,
            log: dir.output_log(),
        }
    }

    /// The sandbox called `name`, whatever its state.
    pub fn find(name: &str) -> Result<SandboxInfo, Error> {
        let dir = SandboxDir::of(name)?;
        if !dir.path.is_dir() {
            return Err(Error::config(format!(
                "there is no sandbox named {name:?}; `standin ls` lists them"
            )));
        }
        dir.read_record().map(|r| SandboxInfo::of(&dir, r))
    }
}

/// Every detached sandbox of this user, sorted by name. A directory without a readable
/// record (a creation that failed half-way) is shown as dead.
pub(crate) fn list() -> Result<Vec<SandboxInfo>, Error> {
    let root = home::sandboxes_dir();
    let entries = match std::fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(home::io_error(format!("reading {}", root.display()), e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(dir) = SandboxDir::of(&name) else {
            continue;
        };
        match dir.read_record() {
            Ok(r) => out.push(SandboxInfo::of(&dir, r)),
            Err(_) if !dir.supervised() => out.push(SandboxInfo {
                name: name.clone(),
                id: String::new(),
                state: SandboxState::Dead,
                root: String::new(),
                command: None,
                created: 0,
                limits: ResourceLimits::default(),
                warnings: Vec::new(),
                exit_code: None,
                finished: None,
                usage: None,
                terminated_by_violation: false,
                supervisor_pid: 0,
                init_pid: 0,
                config: serde_json::Value::Null,
                log: dir.output_log(),
            }),
            // Being created right now.
            Err(_) => {}
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Remove the sandbox `name` (see [`Sandbox::remove`]).
pub(crate) fn remove(name: &str, force: bool) -> Result<(), Error> {
    let dir = SandboxDir::of(name)?;
    if !dir.path.is_dir() {
        return Err(Error::config(format!(
            "there is no sandbox named {name:?}; `standin ls` lists them"
        )));
    }
    if dir.supervised() {
        if !force {
            return Err(Error::config(format!(
                "sandbox {name:?} is running; stop it first (`standin stop {name}`) or force it (`standin rm -f {name}`)"
            )));
        }
        client::stop_at(&dir)?;
        // The supervisor removes its socket and records the exit, then lets go of the lock.
        let lock = std::fs::File::open(dir.lock_path())?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockShared)
            .map_err(|e| Error::Io(e.into()))?;
    }
    home::remove_dir(&dir.path)
}

/// Create a detached sandbox from `b` (see [`SandboxBuilder::detached`]).
pub(crate) async fn create(mut b: SandboxBuilder) -> Result<Sandbox, Error> {
    let mut problems = Vec::new();
    if !b.network.listeners.is_empty() {
        problems.push(
            "on_event(…): a callback cannot follow a detached sandbox; use events_file(…)".into(),
        );
    }
    if !b.stdio.is_default() {
        problems.push(
            "stdio(…): a detached sandbox's output goes to its log (`standin logs NAME`)".into(),
        );
    }
    if !problems.is_empty() {
        return Err(Error::Config { problems });
    }
    let dir = SandboxDir::claim(&b.name)?;
    let made = async {
        // Pulled here, so progress and errors reach the caller; held until the supervisor
        // holds it too.
        let image = b.image.resolve().await?;
        let helper = crate::helper::resolve(b.helper.take())?;
        let mut recipe = recipe::Recipe::of(&mut b);
        recipe.helper = Some(helper.clone());
        let wire = Zeroizing::new(serde_json::to_vec(&recipe).map_err(std::io::Error::other)?);
        drop(recipe);
        let dir2 = dir.clone();
        crate::sandbox::blocking(move || spawn_supervisor(&dir2, &helper, &wire)).await?;
        drop(image);
        client::Remote::connect(&b.name).map(Sandbox::detached)
    }
    .await;
    if made.is_err() {
        let _ = home::remove_dir(&dir.path);
    }
    made
}

/// Start the supervisor and hand it the recipe; returns once the sandbox is running.
fn spawn_supervisor(dir: &SandboxDir, helper: &std::path::Path, wire: &[u8]) -> Result<(), Error> {
    use std::os::unix::process::CommandExt;
    let (ours, theirs) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| Error::Io(e.into()))?;
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.supervisor_log())?;
    let mut cmd = std::process::Command::new(helper);
    cmd.arg(supervisor::SUPERVISE_ARG)
        .arg(&dir.path)
        .env_clear()
        .env("STANDIN_HOME", standin_image::state_dir())
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    for var in ["PATH", "TERM", "HOME", "RUST_LOG", "STANDIN_IMAGE_ROOT"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    standin_sandbox::helper::pass_descriptor(&mut cmd, theirs.as_fd(), supervisor::SETUP_FD);
    let mut child = cmd.spawn().map_err(|e| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("starting the supervisor {}: {e}", helper.display()),
        ))
    })?;
    drop(theirs);
    channel::send_bytes(ours.as_fd(), wire, &[])?;
    let answer = channel::recv::<protocol::Setup>(&ours);
    let result = match answer {
        Ok(Some((protocol::Setup::Ready, _))) => Ok(()),
        Ok(Some((protocol::Setup::Failed { problems, message }, _))) => {
            Err(protocol::failure(problems, message))
        }
        Ok(None) | Err(_) => {
            let tail = std::fs::read_to_string(dir.supervisor_log()).unwrap_or_default();
            Err(Error::Io(std::io::Error::other(format!(
                "the supervisor exited during setup: {}",
                tail.trim()
            ))))
        }
    };
    match result {
        Ok(()) => {
            // Reaped when it ends, so no zombie is left in a long-lived creator.
            std::thread::spawn(move || child.wait());
            Ok(())
        }
        Err(e) => {
            let _ = child.wait();
            Err(e)
        }
    }
}
