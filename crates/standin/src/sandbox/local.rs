//! [`Local`]: a sandbox this process supervises, with its boundary.

use super::launch::{Launched, Task};
use crate::Error;
use crate::SecretValue;
use crate::builder::SandboxBuilder;
use crate::stdio::{MainPipes, StdioSpec};
use standin_boundary::{
    Boundary, BoundaryConfig, CaptureListeners, Event, EventAction, EventKind, EventProtocol,
    EventSink,
};
use standin_policy::guest_env;
use standin_sandbox::spec::{ExecSpec, Job};
use standin_sandbox::{CaptureSockets, SandboxProcess};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A sandbox this process supervises: it holds the boundary and the real values, and
/// dropping it stops the sandbox.
#[derive(Debug)]
pub(crate) struct Local {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) hostname: String,
    env: Vec<(String, String)>,
    pub(crate) process: Arc<SandboxProcess>,
    pub(crate) pipes: Option<MainPipes>,
    terminated: Arc<AtomicBool>,
    cwd: PathBuf,
    user: Option<String>,
    boundary: Option<Boundary>,
    /// Where this sandbox's events go (the boundary holds a clone).
    events: EventSink,
    /// Whether the end of the main command has been recorded.
    exit_recorded: AtomicBool,
    /// The image layers this sandbox stacks, held so no `rmi`/`prune` removes them.
    pub(crate) image: Option<crate::image::ResolvedImage>,
}

impl Local {
    /// Replace secret `env`'s value in this sandbox's boundary.
    pub(crate) fn update_secret(&self, env: &str, value: SecretValue) -> Result<(), Error> {
        let Some(boundary) = &self.boundary else {
            return Err(Error::config(format!(
                "update_secret({env:?}): this sandbox has no network boundary (network disabled)"
            )));
        };
        boundary
            .update_secret(env, value)
            .map_err(|e| Error::config(e.to_string()))
    }

    pub(crate) async fn create(mut b: SandboxBuilder) -> Result<Local, Error> {
        let image = b.image.resolve().await?;
        let mut spec = b.spec(image.as_ref())?;
        let exec_env = b.environment(&spec.hostname, image.as_ref());
        let cwd = crate::builder::working_dir(image.as_ref());
        let user = image.as_ref().and_then(|i| i.record.config.user.clone());
        let id = sandbox_id();
        // Before anything starts: an events file that cannot be written is a setup error.
        let events = b.network.take_sink(&id, &b.name).map_err(Error::config)?;
        let secrets = b.network.take_secret_set()?;
        let settings = b.network.boundary_settings()?;
        let intercept = b.network.enabled && !secrets.is_empty();
        let ca = if intercept {
            let ca = standin_boundary::SandboxCa::generate(&id)?;
            spec.trust_ca_pem = Some(ca.cert_pem());
            Some(Arc::new(ca))
        } else {
            None
        };
        let secrets = Arc::new(secrets);
        let helper = crate::helper::resolve(b.helper.take())?;
        let stdio = std::mem::take(&mut b.stdio).into_runtime();
        let start_spec = spec.clone();
        let (process, capture, pipes) =
            tokio::task::spawn_blocking(move || SandboxProcess::start(&start_spec, &helper, stdio))
                .await
                .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        let process = Arc::new(process);
        let terminated = Arc::new(AtomicBool::new(false));
        let hook = {
            let process = Arc::downgrade(&process);
            let terminated = terminated.clone();
            standin_boundary::TerminateHook(Some(Arc::new(move || {
                terminated.store(true, Ordering::Release);
                // Wait for the whole sandbox to be gone before the boundary resets the
                // offending connection: nothing in it may act on the reset.
                if let Some(p) = process.upgrade()
                    && !p.kill_and_wait(std::time::Duration::from_secs(2))
                {
                    tracing::error!("the sandbox did not die within 2 s of SIGKILL");
                }
            })))
        };
        let boundary = match capture {
            Some(sockets) => {
                if settings.dns_upstreams.is_empty() {
                    tracing::warn!(
                        "no DNS upstream (none given, none in /etc/resolv.conf): every lookup in the sandbox will fail"
                    );
                }
                Some(Boundary::start(
                    listeners(sockets),
                    BoundaryConfig {
                        sandbox_id: id.clone(),
                        sandbox_addrs: standin_sandbox::netns::sandbox_addresses(),
                        events: events.clone(),
                        secrets: intercept.then(|| secrets.clone()),
                        refusal: secrets.on_violation.respond.unwrap_or_default(),
                        ca: ca.clone(),
                        on_terminate: hook,
                        ..settings
                    },
                )?)
            }
            None => None,
        };
        tracing::debug!(sandbox = %b.name, init_pid = process.init_pid(), "sandbox ready");
        let mut started = Event::new(&id, EventKind::SandboxStarted, EventProtocol::None);
        started.action = EventAction::Record;
        started.detail = Some(match b.image.reference.as_ref() {
            Some(r) => format!("image {r}"),
            None => "host root".to_owned(),
        });
        events.emit(started);
        Ok(Local {
            id,
            name: b.name.clone(),
            hostname: spec.hostname.clone(),
            env: exec_env,
            process,
            pipes: Some(pipes.into()),
            terminated,
            cwd,
            user,
            boundary,
            events,
            exit_recorded: AtomicBool::new(false),
            image,
        })
    }

    /// The job a [`Task`] becomes in this sandbox: a command gets the sandbox's environment
    /// (with `env` over it), working directory and user; a file operation its user.
    pub(crate) fn job(&self, task: Task) -> Result<Job, Error> {
        match task {
            Task::Command {
                argv,
                env: extra,
                tty,
            } => {
                if argv.is_empty() || argv[0].is_empty() || argv.iter().any(|a| a.contains('\0')) {
                    return Err(Error::config(
                        "exec: give a program name; arguments cannot contain NUL",
                    ));
                }
                let mut env = self.env.clone();
                for (k, v) in &extra {
                    standin_policy::env_spec::validate_name_strict(k)
                        .map_err(|e| Error::config(format!("exec env {k:?}: {e}")))?;
                    if v.contains('\0') {
                        return Err(Error::config(format!(
                            "exec env {k:?}: value contains a NUL byte"
                        )));
                    }
                    guest_env::set(&mut env, k, v);
                }
                Ok(Job::Command(ExecSpec {
                    argv,
                    env,
                    cwd: self.cwd.clone(),
                    user: self.user.clone(),
                    tty,
                }))
            }
            Task::Files(op) => Ok(Job::Files {
                op,
                user: self.user.clone(),
            }),
        }
    }

    /// Start `task` with the given standard streams (or, for a command with `tty`, on a pty
    /// whose master is returned).
    pub(crate) fn launch(
        &self,
        task: Task,
        stdio: [OwnedFd; 3],
    ) -> Result<(Launched, Option<OwnedFd>), Error> {
        let job = self.job(task)?;
        let [stdin, stdout, stderr] = stdio;
        let spec = standin_sandbox::StdioSpec {
            stdin: Some(stdin.into()),
            stdout: Some(stdout.into()),
            stderr: Some(stderr.into()),
        };
        let (child, pty) = self.process.run_with_pty(&job, spec)?;
        Ok((Launched::Local(child), pty))
    }

    /// See [`Sandbox::spawn`](crate::Sandbox::spawn).
    pub(crate) fn spawn(
        &self,
        argv: Vec<String>,
        extra_env: &[(String, String)],
        stdio: StdioSpec,
    ) -> Result<std::process::Child, Error> {
        let job = self.job(Task::Command {
            argv,
            env: extra_env.to_vec(),
            tty: None,
        })?;
        Ok(self.process.run(&job, stdio.into_runtime())?)
    }

    /// See [`Sandbox::wait`](crate::Sandbox::wait).
    pub(crate) async fn wait(&self) -> Result<i32, Error> {
        let process = self.process.clone();
        let code = tokio::task::spawn_blocking(move || process.wait())
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?
            .map_err(Error::from)?;
        if !self.exit_recorded.swap(true, Ordering::AcqRel) {
            self.record_exit(code);
        }
        Ok(code)
    }

    /// The exit event, then one event per limit the sandbox reached.
    fn record_exit(&self, code: i32) {
        if !self.events.is_active() {
            return;
        }
        let event = |kind| {
            let mut e = Event::new(&self.id, kind, EventProtocol::None);
            e.action = EventAction::Record;
            e
        };
        let mut exited = event(EventKind::SandboxExited);
        exited.exit_code = Some(code);
        self.events.emit(exited);
        let Some(usage) = self.process.limit_usage() else {
            return;
        };
        let limits: crate::ResourceLimits = self.process.limits().into();
        let usage: crate::LimitUsage = usage.into();
        let cpu = (usage.cpu_throttled > 0).then(|| {
            format!(
                "the CPU limit held the sandbox back in {} periods of 100 ms",
                usage.cpu_throttled
            )
        });
        let hits = [
            (
                standin_boundary::Limit::Memory,
                crate::limits::memory_message(&limits, &usage),
            ),
            (
                standin_boundary::Limit::Pids,
                crate::limits::pids_message(&limits, &usage),
            ),
            (standin_boundary::Limit::Cpu, cpu),
        ];
        for (limit, detail) in hits {
            let Some(detail) = detail else { continue };
            let mut e = event(EventKind::LimitHit);
            e.limit = Some(limit);
            e.detail = Some(detail);
            self.events.emit(e);
        }
    }

    /// Whether the sandbox was killed by a block-and-terminate secret violation.
    pub(crate) fn terminated_by_violation(&self) -> bool {
        self.terminated.load(Ordering::Acquire)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        self.process.kill();
    }
}

/// The runtime's capture sockets as the boundary's listeners.
pub(crate) fn listeners(s: CaptureSockets) -> CaptureListeners {
    CaptureListeners {
        relay_v4: s.relay_v4,
        relay_v6: s.relay_v6,
        dns_udp_v4: s.dns_udp_v4,
        dns_udp_v6: s.dns_udp_v6,
        dns_tcp_v4: s.dns_tcp_v4,
        dns_tcp_v6: s.dns_tcp_v6,
    }
}

pub(crate) fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or(status.signal().map(|s| 128 + s))
        .unwrap_or(125)
}

/// 12 random hex digits.
pub(crate) fn sandbox_id() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 6];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
