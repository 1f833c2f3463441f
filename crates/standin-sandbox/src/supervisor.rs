//! The host side of a sandbox: start it, exec into it, stop it, wait for it.
//!
//! [`SandboxProcess::start`] re-executes a helper binary (normally standin itself) as stage1
//! with a control socket at fd 3 and an empty environment, answers its uid-map request,
//! receives the capture listeners and init's PID, and returns once the sandbox is ready.
//! With limits, the sandbox's cgroup is created first and handed to stage1 ([`crate::cgroup`]).
//! Stopping is `pidfd_send_signal(init, SIGKILL)`: the kernel then kills every process in the
//! sandbox's PID namespace. If the supervisor itself dies, stage1 sees the control socket hang
//! up and does the same.

use crate::cgroup::{LimitUsage, SandboxCgroup};
use crate::enter::EnterRequest;
use crate::error::SandboxError;
use crate::helper::{ENTER_ARG, STAGE1_ARG};
use crate::idmap::IdMaps;
use crate::netns::CaptureSockets;
use crate::protocol::{self, FromSandbox, ToSandbox};
use crate::spec::{ExecSpec, Job, NetworkMode, ResourceLimits, SandboxSpec};
use crate::sys::pidfd;
use crate::sys::process::pass_fd;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

/// The descriptor number at which helpers find their control socket or pidfd (the exec
/// helper finds the cgroup's join-file descriptors right after it).
pub(crate) const HELPER_FD: i32 = 3;
/// Descriptors passed to a helper are first copied to numbers at least this high.
const PASS_FLOOR: i32 = 64;

/// Standard streams for the main command or an exec'd command.
#[derive(Debug, Default)]
pub struct StdioSpec {
    /// stdin.
    pub stdin: Option<Stdio>,
    /// stdout.
    pub stdout: Option<Stdio>,
    /// stderr.
    pub stderr: Option<Stdio>,
}

/// A running sandbox.
#[derive(Debug)]
pub struct SandboxProcess {
    helper: PathBuf,
    spec: SandboxSpec,
    ctrl: OwnedFd,
    init_pidfd: OwnedFd,
    init_pid: i32,
    stage1: Mutex<Child>,
    id_maps: IdMaps,
    cgroup: Option<SandboxCgroup>,
    warnings: Vec<String>,
    usage: Mutex<Option<LimitUsage>>,
    /// Set by [`kill`](SandboxProcess::kill): nothing more may start inside, even before
    /// the kernel has finished killing what runs there.
    killed: std::sync::atomic::AtomicBool,
}

/// Pipes of the main command, when requested with `Stdio::piped()`.
#[derive(Debug)]
pub struct MainPipes {
    /// stdin of the main command.
    pub stdin: Option<std::process::ChildStdin>,
    /// stdout of the main command.
    pub stdout: Option<std::process::ChildStdout>,
    /// stderr of the main command.
    pub stderr: Option<std::process::ChildStderr>,
}

impl SandboxProcess {
    /// Create a sandbox and start its main command (if the spec has one).
    ///
    /// Blocks until the sandbox is ready (a few milliseconds). Returns the capture listeners
    /// when the network is captured: the caller must serve them (or drop them, which makes
    /// every connection fail).
    pub fn start(
        spec: &SandboxSpec,
        helper: &Path,
        stdio: StdioSpec,
    ) -> Result<(SandboxProcess, Option<CaptureSockets>, MainPipes), SandboxError> {
        let (cgroup, warnings) = SandboxCgroup::create(&spec.limits)?;
        let (ours, theirs) = crate::sys::fdpass::seqpacket_pair()
            .map_err(SandboxError::io("creating the control socket"))?;
        let mut cmd = Command::new(helper);
        cmd.arg(STAGE1_ARG)
            .arg(crate::helper::HELPER_VERSION)
            .env_clear();
        cmd.stdin(stdio.stdin.unwrap_or_else(Stdio::inherit));
        cmd.stdout(stdio.stdout.unwrap_or_else(Stdio::inherit));
        cmd.stderr(stdio.stderr.unwrap_or_else(Stdio::inherit));
        let raw = theirs.as_raw_fd();
        pass_fd(&mut cmd, raw, HELPER_FD);
        let mut child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            path: helper.display().to_string(),
            source,
        })?;
        drop(theirs);
        let pipes = MainPipes {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
        };
        let stage1_pid = child.id() as i32;
        let id_maps = IdMaps::for_current_user();

        let fail_early = |child: &mut Child, e: SandboxError| {
            let _ = child.kill();
            let _ = child.wait();
            e
        };
        let handshake = (|| {
            let (hand, fds) = match &cgroup {
                Some(c) => {
                    let (hand, fds) = c.hand_off();
                    (Some(hand), fds)
                }
                None => (None, Vec::new()),
            };
            let msg = ToSandbox::Spec {
                spec: Box::new(spec.clone()),
                cgroup: hand,
            };
            if let Err(e) = protocol::send(ours.as_fd(), &msg, &fds) {
                // Nothing was sent (the configuration is too large): stage1 is still waiting
                // for it, and is killed with this error.
                if e.kind() == std::io::ErrorKind::InvalidInput {
                    return Err(SandboxError::TooLarge(e.to_string()));
                }
                // stage1 may have refused to start, and said why, before hanging up.
                return Err(match expect(&ours, |_| false) {
                    Err(refused @ SandboxError::Setup { .. }) => refused,
                    _ => SandboxError::Protocol(e.to_string()),
                });
            }
            expect(&ours, |m| matches!(m, FromSandbox::NeedMaps))?;
            id_maps
                .write(stage1_pid)
                .map_err(|e| SandboxError::IdMap(e.to_string()))?;
            send(&ours, &ToSandbox::MapsWritten)?;
            let capture = if spec.network == NetworkMode::Captured {
                let fds = expect(&ours, |m| matches!(m, FromSandbox::Capture))?;
                Some(CaptureSockets::from_vec(fds).ok_or_else(|| {
                    SandboxError::Protocol("wrong number of capture descriptors".into())
                })?)
            } else {
                None
            };
            // stage1 reports init's PID after forking it, and init reports Ready when the
            // sandbox is built: two processes writing to the same channel, so the two messages
            // can arrive in either order.
            // InitStarted carries init's pidfd, opened by stage1 (its parent) before init could
            // have been reaped: a PID alone could already be stale here.
            let (mut init_pid, mut init_pidfd, mut ready) = (0, None, false);
            while init_pidfd.is_none() || !ready {
                let mut started = None;
                let have_init = init_pidfd.is_some();
                let fds = expect(&ours, |m| match m {
                    FromSandbox::InitStarted { init_pid: p } if !have_init => {
                        started = Some(*p);
                        true
                    }
                    FromSandbox::Ready if !ready => {
                        ready = true;
                        true
                    }
                    _ => false,
                })?;
                if let Some(p) = started {
                    init_pid = p;
                    init_pidfd = Some(fds.into_iter().next().ok_or_else(|| {
                        SandboxError::Protocol("InitStarted without init's pidfd".into())
                    })?);
                }
            }
            let init_pidfd = init_pidfd.ok_or_else(|| SandboxError::Protocol("no init".into()))?;
            Ok::<_, SandboxError>((capture, init_pid, init_pidfd))
        })();
        let (capture, init_pid, init_pidfd) = match handshake {
            Ok(v) => v,
            Err(e) => return Err(fail_early(&mut child, e)),
        };
        Ok((
            SandboxProcess {
                helper: helper.to_owned(),
                spec: spec.clone(),
                ctrl: ours,
                init_pidfd,
                init_pid,
                stage1: Mutex::new(child),
                id_maps,
                cgroup,
                warnings,
                usage: Mutex::new(None),
                killed: std::sync::atomic::AtomicBool::new(false),
            },
            capture,
            pipes,
        ))
    }

    /// Host PID of the sandbox's init.
    pub fn init_pid(&self) -> i32 {
        self.init_pid
    }

    /// The uid/gid maps in force.
    pub fn id_maps(&self) -> IdMaps {
        self.id_maps
    }

    /// Limits that could not be enforced on this host (defaults only: a limit the user gave
    /// that cannot be enforced fails [`SandboxProcess::start`] instead).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// What the sandbox's cgroup recorded, once [`SandboxProcess::wait`] has returned (`None`
    /// before, or without a cgroup).
    pub fn limit_usage(&self) -> Option<LimitUsage> {
        self.usage.lock().ok().and_then(|g| *g)
    }

    /// The limits in force.
    pub fn limits(&self) -> ResourceLimits {
        self.spec.limits.clone()
    }

    /// Ask the sandbox to end: SIGTERM goes to its main command (a sandbox without one ends
    /// at once). Follow with [`kill`](Self::kill) if it has not ended after a grace period.
    pub fn terminate(&self) {
        let _ = pidfd::send_signal(self.init_pidfd.as_fd(), libc::SIGTERM);
    }

    /// What the sandbox's cgroup has recorded so far, with the memory and processes in use
    /// now (`None` without a cgroup).
    pub fn usage_now(&self) -> Option<LimitUsage> {
        self.cgroup.as_ref().map(SandboxCgroup::usage)
    }

    /// Kill every process of the sandbox at once. Idempotent.
    pub fn kill(&self) {
        self.killed
            .store(true, std::sync::atomic::Ordering::Release);
        let _ = pidfd::send_signal(self.init_pidfd.as_fd(), libc::SIGKILL);
    }

    /// Wait (up to `timeout`, however long) for the sandbox to end; whether it did.
    ///
    /// init's pidfd becomes readable only once the kernel has killed the rest of the PID
    /// namespace, so on `true` no process of the sandbox can run another instruction.
    pub fn wait_ended(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut fds = [nix::poll::PollFd::new(
            self.init_pidfd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
                Ok(n) if n > 0 => return true,
                Ok(_) if left.is_zero() => return false,
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return false,
            }
        }
    }

    /// Kill every process of the sandbox and wait (up to `timeout`) until they are gone
    /// (see [`wait_ended`](Self::wait_ended)).
    pub fn kill_and_wait(&self, timeout: std::time::Duration) -> bool {
        self.kill();
        self.wait_ended(timeout)
    }

    /// Block until the sandbox ends; returns the main command's exit code (128+N if it was
    /// killed by signal N; 137 if the sandbox was killed).
    pub fn wait(&self) -> Result<i32, SandboxError> {
        let mut code = None;
        loop {
            match protocol::recv::<FromSandbox>(&self.ctrl) {
                Ok(Some((FromSandbox::Exited { code: c, usage }, _))) => {
                    code = Some(c);
                    if let Ok(mut g) = self.usage.lock() {
                        *g = usage;
                    }
                    break;
                }
                Ok(Some((FromSandbox::Failed { stage, message }, _))) => {
                    return Err(SandboxError::Setup { stage, message });
                }
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
        let status = self
            .stage1
            .lock()
            .map_err(|_| SandboxError::Protocol("stage1 lock poisoned".into()))?
            .wait()
            .map_err(SandboxError::io("waiting for stage1"))?;
        // Removed now rather than on drop: the sandbox has ended, and a caller may look.
        if let Some(c) = &self.cgroup {
            c.remove();
        }
        use std::os::unix::process::ExitStatusExt;
        Ok(code
            .or(status.code())
            .or(status.signal().map(|s| 128 + s))
            .unwrap_or(crate::init::EXIT_SETUP_FAILED))
    }

    /// Start `exec` inside the sandbox; the returned child is the exec helper, whose exit status
    /// is the command's.
    pub fn exec(&self, exec: &ExecSpec, stdio: StdioSpec) -> Result<Child, SandboxError> {
        self.run(&Job::Command(exec.clone()), stdio)
    }

    /// Start `job` (a command or a file operation) inside the sandbox; the returned child is
    /// the exec helper, whose exit status is the job's.
    pub fn run(&self, job: &Job, stdio: StdioSpec) -> Result<Child, SandboxError> {
        self.run_with_pty(job, stdio).map(|(child, _)| child)
    }

    /// Like [`run`](Self::run); when `job` is a command with `tty` set, also returns the
    /// master end of the pty made for it inside the sandbox (its stdin, stdout and stderr;
    /// `stdio` is then ignored).
    pub fn run_with_pty(
        &self,
        job: &Job,
        stdio: StdioSpec,
    ) -> Result<(Child, Option<OwnedFd>), SandboxError> {
        if self.killed.load(std::sync::atomic::Ordering::Acquire)
            || self.wait_ended(std::time::Duration::ZERO)
        {
            return Err(SandboxError::Stopped);
        }
        let wants_pty = matches!(job, Job::Command(e) if e.tty.is_some());
        // Copies above every descriptor number the helper is given, so that placing one at its
        // number cannot overwrite another before it is placed.
        let high = |fd: BorrowedFd<'_>| {
            rustix::io::fcntl_dupfd_cloexec(fd, PASS_FLOOR)
                .map_err(|e| SandboxError::io("duplicating a descriptor")(e.into()))
        };
        let procs = self
            .cgroup
            .as_ref()
            .map(SandboxCgroup::procs)
            .unwrap_or_default()
            .into_iter()
            .map(high)
            .collect::<Result<Vec<OwnedFd>, _>>()?;
        let req = EnterRequest {
            job: job.clone(),
            sandbox: self.spec.clone(),
            cgroup_fds: procs.len(),
        };
        let json =
            serde_json::to_string(&req).map_err(|e| SandboxError::Protocol(e.to_string()))?;
        let pidfd = high(self.init_pidfd.as_fd())?;
        let pty_pair = if wants_pty {
            let (ours, theirs) = crate::sys::fdpass::seqpacket_pair()
                .map_err(SandboxError::io("creating the pty socket"))?;
            Some((ours, high(theirs.as_fd())?))
        } else {
            None
        };
        let mut cmd = Command::new(&self.helper);
        cmd.arg(ENTER_ARG).arg(json).env_clear();
        cmd.stdin(stdio.stdin.unwrap_or_else(Stdio::null));
        cmd.stdout(stdio.stdout.unwrap_or_else(Stdio::piped));
        cmd.stderr(stdio.stderr.unwrap_or_else(Stdio::piped));
        let raw = pidfd.as_raw_fd();
        pass_fd(&mut cmd, raw, HELPER_FD);
        for (i, p) in procs.iter().enumerate() {
            pass_fd(&mut cmd, p.as_raw_fd(), HELPER_FD + 1 + i as i32);
        }
        if let Some((_, theirs)) = &pty_pair {
            pass_fd(
                &mut cmd,
                theirs.as_raw_fd(),
                HELPER_FD + 1 + procs.len() as i32,
            );
        }
        let mut child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            path: self.helper.display().to_string(),
            source,
        })?;
        drop(pidfd);
        drop(procs);
        let master = match pty_pair {
            None => None,
            Some((ours, theirs)) => {
                drop(theirs);
                let mut buf = [0u8; 8];
                match crate::sys::fdpass::recv(ours.as_fd(), &mut buf) {
                    Ok((_, fds)) if fds.len() == 1 => fds.into_iter().next(),
                    _ => {
                        // The helper said why on its stderr; its status tells the caller.
                        let _ = child.wait();
                        return Err(SandboxError::Protocol(
                            "the exec helper could not make a terminal (see its stderr)".into(),
                        ));
                    }
                }
            }
        };
        Ok((child, master))
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        self.kill();
        if let Ok(mut child) = self.stage1.lock() {
            let _ = child.wait();
        }
        // Then the cgroup goes with its field (`SandboxCgroup`'s drop).
    }
}

fn send(sock: &OwnedFd, msg: &ToSandbox) -> Result<(), SandboxError> {
    protocol::send(sock.as_fd(), msg, &[]).map_err(|e| SandboxError::Protocol(e.to_string()))
}

/// Receive the next message; it must satisfy `want`, else it is an error (a `Failed` message
/// becomes a [`SandboxError::Setup`]).
fn expect(
    sock: &OwnedFd,
    mut want: impl FnMut(&FromSandbox) -> bool,
) -> Result<Vec<OwnedFd>, SandboxError> {
    match protocol::recv::<FromSandbox>(sock) {
        Ok(Some((FromSandbox::Failed { stage, message }, _))) => {
            Err(SandboxError::Setup { stage, message })
        }
        Ok(Some((msg, fds))) if want(&msg) => Ok(fds),
        Ok(Some((msg, _))) => Err(SandboxError::Protocol(format!(
            "unexpected message {msg:?}"
        ))),
        Ok(None) => Err(SandboxError::Protocol(
            "the sandbox helper exited during setup (see its stderr)".into(),
        )),
        Err(e) => Err(SandboxError::Protocol(e.to_string())),
    }
}
