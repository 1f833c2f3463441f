//! [`Sandbox`]: a running sandbox, its boundary, and commands run inside it.

use crate::Error;
use crate::builder::SandboxBuilder;
use crate::limits::{LimitUsage, ResourceLimits};
use crate::stdio::{MainPipes, StdioSpec};
use standin_boundary::{Boundary, BoundaryConfig, CaptureListeners};
use standin_policy::guest_env;
use standin_sandbox::spec::ExecSpec;
use standin_sandbox::{CaptureSockets, SandboxProcess};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A running sandbox. Dropping it stops it (every process inside is killed).
#[derive(Debug)]
pub struct Sandbox {
    id: String,
    name: String,
    hostname: String,
    env: Vec<(String, String)>,
    process: Arc<SandboxProcess>,
    pipes: Option<MainPipes>,
    terminated: Arc<AtomicBool>,
    cwd: PathBuf,
    user: Option<String>,
    _boundary: Option<Boundary>,
    /// The image layers this sandbox stacks, held so no `rmi`/`prune` removes them.
    _image: Option<crate::image::ResolvedImage>,
}

/// Output of a finished [`Sandbox::exec`].
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// Exit code (128+N if killed by signal N).
    pub code: i32,
    /// Captured stdout.
    pub stdout: Vec<u8>,
    /// Captured stderr.
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// stdout as UTF-8 (lossy).
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

impl Sandbox {
    /// Start describing a sandbox called `name` (used in logs and events).
    pub fn builder(name: &str) -> SandboxBuilder {
        SandboxBuilder::new(name)
    }

    pub(crate) async fn create(mut b: SandboxBuilder) -> Result<Sandbox, Error> {
        let image = b.image.resolve().await?;
        let mut spec = b.spec(image.as_ref())?;
        let exec_env = b.environment(&spec.hostname, image.as_ref());
        let cwd = crate::builder::working_dir(image.as_ref());
        let user = image.as_ref().and_then(|i| i.record.config.user.clone());
        let id = sandbox_id();
        let secrets = standin_policy::secrets::SecretSet {
            entries: std::mem::take(&mut b.network.secrets),
            on_violation: b.network.on_violation.clone(),
        };
        secrets
            .validate()
            .map_err(|e| Error::config(e.to_string()))?;
        let mut upstream_cas = Vec::new();
        for path in &b.network.upstream_cas {
            upstream_cas.extend(
                standin_boundary::read_ca_file(path)
                    .map_err(|e| Error::config(format!("upstream_ca: {e}")))?,
            );
        }
        let intercept = b.network.enabled && !secrets.is_empty();
        let ca = if intercept {
            let ca = standin_boundary::SandboxCa::generate(&id)?;
            spec.trust_ca_pem = Some(ca.cert_pem());
            Some(Arc::new(ca))
        } else {
            None
        };
        let secrets = Arc::new(secrets);
        let helper = match b.helper.take() {
            Some(h) => h,
            None => std::env::current_exe()?,
        };
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
                let events = b.network.take_sink().map_err(Error::config)?;
                let dns_upstreams = if b.network.dns_upstreams.is_empty() {
                    std::fs::read_to_string("/etc/resolv.conf")
                        .map(|t| standin_boundary::upstreams_from_resolv_conf(&t))
                        .unwrap_or_default()
                } else {
                    b.network.dns_upstreams.clone()
                };
                if dns_upstreams.is_empty() {
                    tracing::warn!(
                        "no DNS upstream (none given, none in /etc/resolv.conf): every lookup in the sandbox will fail"
                    );
                }
                Some(Boundary::start(
                    listeners(sockets),
                    BoundaryConfig {
                        sandbox_id: id.clone(),
                        sandbox_addrs: standin_sandbox::netns::sandbox_addresses(),
                        policy: b.network.policy(),
                        dns_upstreams,
                        events,
                        secrets: intercept.then(|| secrets.clone()),
                        ca: ca.clone(),
                        upstream_cas,
                        on_terminate: hook,
                        idle_timeout: b
                            .network
                            .idle_timeout
                            .unwrap_or(BoundaryConfig::default().idle_timeout),
                        max_connections: b
                            .network
                            .max_connections
                            .unwrap_or(BoundaryConfig::default().max_connections),
                        ..BoundaryConfig::default()
                    },
                )?)
            }
            None => None,
        };
        tracing::debug!(sandbox = %b.name, init_pid = process.init_pid(), "sandbox ready");
        Ok(Sandbox {
            id,
            name: b.name.clone(),
            hostname: spec.hostname.clone(),
            env: exec_env,
            process,
            pipes: Some(pipes.into()),
            terminated,
            cwd,
            user,
            _boundary: boundary,
            _image: image,
        })
    }

    /// The sandbox's unique id (as it appears in events).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The sandbox's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Host PID of the sandbox's init (its PID 1).
    pub fn init_pid(&self) -> i32 {
        self.process.init_pid()
    }

    /// Run `program` with `args` inside the sandbox and collect its output.
    ///
    /// ```no_run
    /// # async fn demo(sandbox: &standin::Sandbox) -> Result<(), standin::Error> {
    /// let out = sandbox.exec("python3", ["-c", "print(2 + 2)"]).await?;
    /// assert_eq!((out.code, out.stdout_str().trim()), (0, "4"));
    /// # Ok(()) }
    /// ```
    pub async fn exec<I, S>(&self, program: &str, args: I) -> Result<ExecOutput, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut argv = vec![program.to_owned()];
        argv.extend(args.into_iter().map(Into::into));
        let child = self.spawn(argv, &[], StdioSpec::default())?;
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        Ok(ExecOutput {
            code: exit_code(out.status),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// Start `argv` inside the sandbox with extra environment variables and the given stdio
    /// (unset streams: stdin null, stdout and stderr piped). The returned child's exit status
    /// is the command's.
    ///
    /// ```no_run
    /// # fn demo(sandbox: &standin::Sandbox) -> Result<(), standin::Error> {
    /// use std::io::Write;
    /// let mut child = sandbox.spawn(
    ///     vec!["sh".into(), "-c".into(), "wc -c".into()],
    ///     &[("LANG".into(), "C.UTF-8".into())],
    ///     standin::StdioSpec::default().stdin(std::process::Stdio::piped()),
    /// )?;
    /// child.stdin.take().unwrap().write_all(b"hello")?;
    /// let out = child.wait_with_output()?;
    /// assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5");
    /// # Ok(()) }
    /// ```
    pub fn spawn(
        &self,
        argv: Vec<String>,
        extra_env: &[(String, String)],
        stdio: StdioSpec,
    ) -> Result<std::process::Child, Error> {
        if argv.is_empty() || argv.iter().any(|a| a.contains('\0')) {
            return Err(Error::config(
                "exec: give a program name; arguments cannot contain NUL",
            ));
        }
        let mut env = self.env.clone();
        for (k, v) in extra_env {
            guest_env::set(&mut env, k, v);
        }
        let spec = ExecSpec {
            argv,
            env,
            cwd: self.cwd.clone(),
            user: self.user.clone(),
        };
        Ok(self.process.exec(&spec, stdio.into_runtime())?)
    }

    /// Wait for the main command to finish; returns its exit code (128+N if killed by signal
    /// N, 137 if the sandbox was stopped).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), standin::Error> {
    /// let sandbox = standin::Sandbox::builder("job")
    ///     .command(["sh", "-c", "exit 3"])
    ///     .create()
    ///     .await?;
    /// assert_eq!(sandbox.wait().await?, 3);
    /// # Ok(()) }
    /// ```
    pub async fn wait(&self) -> Result<i32, Error> {
        let process = self.process.clone();
        tokio::task::spawn_blocking(move || process.wait())
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))?
            .map_err(Error::from)
    }

    /// Limits that could not be enforced on this host (only defaults can be skipped: a limit
    /// given explicitly that cannot be enforced fails `create`).
    pub fn limit_warnings(&self) -> &[String] {
        self.process.warnings()
    }

    /// What the limits did, once [`wait`](Sandbox::wait) has returned: processes killed at
    /// the memory limit, forks refused at the pids limit, CPU periods throttled.
    pub fn limit_usage(&self) -> Option<LimitUsage> {
        self.process.limit_usage().map(Into::into)
    }

    /// The limits in force (defaults applied).
    pub fn limits(&self) -> ResourceLimits {
        self.process.limits().into()
    }

    /// One message per limit the sandbox reached, naming it and how to raise it; empty
    /// before [`wait`](Sandbox::wait) has returned or when no limit was reached.
    pub fn limit_messages(&self) -> Vec<String> {
        self.limit_usage()
            .map(|u| crate::limits::limit_messages(&self.limits(), &u))
            .unwrap_or_default()
    }

    /// Whether the sandbox was killed by a block-and-terminate secret violation.
    pub fn terminated_by_violation(&self) -> bool {
        self.terminated.load(Ordering::Acquire)
    }

    /// Stop the sandbox now: every process inside is killed. Idempotent.
    pub fn stop(&self) {
        self.process.kill();
    }

    /// The main command's pipes, for the streams set to `Stdio::piped()` in
    /// [`SandboxBuilder::stdio`]; `None` after the first call.
    pub fn take_main_pipes(&mut self) -> Option<MainPipes> {
        self.pipes.take()
    }

    /// The sandbox's hostname.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.process.kill();
    }
}

fn listeners(s: CaptureSockets) -> CaptureListeners {
    CaptureListeners {
        relay_v4: s.relay_v4,
        relay_v6: s.relay_v6,
        dns_udp_v4: s.dns_udp_v4,
        dns_udp_v6: s.dns_udp_v6,
        dns_tcp_v4: s.dns_tcp_v4,
        dns_tcp_v6: s.dns_tcp_v6,
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or(status.signal().map(|s| 128 + s))
        .unwrap_or(125)
}

/// 12 random hex digits.
fn sandbox_id() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 6];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
