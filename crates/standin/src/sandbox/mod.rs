//! [`Sandbox`]: a running sandbox, and what can be done with it: run commands, move files,
//! read its limits, stop it.
//!
//! A handle is either *attached* (this process supervises the sandbox: it holds the boundary
//! and the real values, and dropping the handle stops the sandbox) or *detached* (a
//! supervisor process of its own does, reached over its control socket; see
//! [`crate::detached`]). Every method works on both unless it says otherwise.

mod files;
pub(crate) mod launch;
pub(crate) mod local;

use crate::Error;
use crate::SecretValue;
use crate::builder::SandboxBuilder;
use crate::detached::client::Remote;
use crate::limits::{LimitUsage, ResourceLimits};
use crate::stdio::{MainPipes, StdioSpec};
use launch::{Input, Output, Task};
pub(crate) use local::Local;
use std::os::fd::OwnedFd;

pub use files::{FileEntry, FileKind, MAX_READ_BYTES, SandboxFs};

/// A running sandbox. Dropping an attached handle stops the sandbox (every process inside is
/// killed); dropping a detached one does not.
#[derive(Debug)]
pub struct Sandbox {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Local(Box<Local>),
    Remote(Box<Remote>),
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

    /// stderr as UTF-8 (lossy).
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// A command running on a terminal of its own, from [`Sandbox::exec_with_tty`].
#[derive(Debug)]
pub struct TerminalExec {
    terminal: OwnedFd,
    launched: launch::Launched,
}

impl TerminalExec {
    /// The terminal's master end: what is written to it is the command's input, what is
    /// read from it the command's output (reads fail with `EIO` once the command and
    /// everything it started have closed the terminal).
    pub fn terminal(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.terminal.as_fd()
    }

    /// Tell the command the terminal's new size (it gets `SIGWINCH`).
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), Error> {
        let size = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&self.terminal, size).map_err(|e| Error::Io(e.into()))
    }

    /// Wait for the command to end; its exit code.
    pub async fn wait(self) -> Result<i32, Error> {
        let launched = self.launched;
        blocking(move || launched.wait()).await
    }
}

/// Most output [`Sandbox::exec`] gathers from one stream.
pub const MAX_EXEC_OUTPUT: u64 = 1 << 30;

impl Sandbox {
    /// Start describing a sandbox called `name` (used in logs and events; the name a detached
    /// sandbox is found by).
    pub fn builder(name: &str) -> SandboxBuilder {
        SandboxBuilder::new(name)
    }

    pub(crate) fn attached(local: Local) -> Sandbox {
        Sandbox {
            inner: Inner::Local(Box::new(local)),
        }
    }

    pub(crate) fn detached(remote: Remote) -> Sandbox {
        Sandbox {
            inner: Inner::Remote(Box::new(remote)),
        }
    }

    /// Reattach to the detached sandbox called `name` (see
    /// [`SandboxBuilder::detached`]). Fails when there is none, or when it is no longer
    /// running (its record stays until [`Sandbox::remove`]).
    pub async fn get(name: &str) -> Result<Sandbox, Error> {
        let name = name.to_owned();
        let remote = blocking(move || Remote::connect(&name)).await?;
        Ok(Sandbox::detached(remote))
    }

    /// Every detached sandbox of this user (running, exited, or whose supervisor died),
    /// sorted by name.
    pub fn list() -> Result<Vec<crate::detached::SandboxInfo>, Error> {
        crate::detached::list()
    }

    /// Remove the record (and logs) of the detached sandbox `name`. A running one is refused
    /// unless `force`, which kills it first.
    pub async fn remove(name: &str, force: bool) -> Result<(), Error> {
        let name = name.to_owned();
        blocking(move || crate::detached::remove(&name, force)).await
    }

    /// Whether this handle is detached (the sandbox outlives it).
    pub fn is_detached(&self) -> bool {
        matches!(self.inner, Inner::Remote(_))
    }

    /// The sandbox's unique id (as it appears in events).
    pub fn id(&self) -> &str {
        match &self.inner {
            Inner::Local(l) => &l.id,
            Inner::Remote(r) => &r.record.id,
        }
    }

    /// The sandbox's name.
    pub fn name(&self) -> &str {
        match &self.inner {
            Inner::Local(l) => &l.name,
            Inner::Remote(r) => &r.record.name,
        }
    }

    /// The sandbox's hostname.
    pub fn hostname(&self) -> &str {
        match &self.inner {
            Inner::Local(l) => &l.hostname,
            Inner::Remote(r) => &r.record.hostname,
        }
    }

    /// The default command of the image this sandbox runs (its `Entrypoint` then `Cmd`):
    /// what `standin run -it --image IMAGE` runs on the terminal when no command is given.
    /// `None` without an image, for an image that has neither, and on a detached handle.
    pub fn image_command(&self) -> Option<Vec<String>> {
        match &self.inner {
            Inner::Local(l) => l
                .image
                .as_ref()
                .map(|i| i.record.config.default_command())
                .filter(|argv| !argv.is_empty()),
            Inner::Remote(_) => None,
        }
    }

    /// Host PID of the sandbox's init (its PID 1).
    pub fn init_pid(&self) -> i32 {
        match &self.inner {
            Inner::Local(l) => l.process.init_pid(),
            Inner::Remote(r) => r.record.init_pid,
        }
    }

    /// Start `task` with these streams (blocking); the pty's master when it asked for one.
    pub(crate) fn launch(
        &self,
        task: Task,
        stdio: [OwnedFd; 3],
    ) -> Result<(launch::Launched, Option<OwnedFd>), Error> {
        match &self.inner {
            Inner::Local(l) => l.launch(task, stdio),
            Inner::Remote(r) => r.launch(task, stdio),
        }
    }

    /// Run `task` to its end.
    pub(crate) async fn collect(
        &self,
        task: Task,
        input: Input,
        output: Output,
    ) -> Result<launch::Collected, Error> {
        let pending = launch::start(|fds| self.launch(task, fds), input)?;
        blocking(move || pending.finish(output)).await
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
        let task = Task::Command {
            argv,
            env: Vec::new(),
            tty: None,
        };
        let out = self
            .collect(task, Input::Null, Output::Collect(MAX_EXEC_OUTPUT))
            .await?;
        Ok(ExecOutput {
            code: out.code,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// Run `argv` inside the sandbox with extra variables, its standard streams being these
    /// descriptors (for example this process's own, as `standin exec` does); returns its exit
    /// code once it has ended.
    pub async fn exec_with_stdio(
        &self,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        stdio: [OwnedFd; 3],
    ) -> Result<i32, Error> {
        let (launched, _) = self.launch(
            Task::Command {
                argv,
                env,
                tty: None,
            },
            stdio,
        )?;
        blocking(move || launched.wait()).await
    }

    /// Run `argv` inside the sandbox on a new pseudo-terminal of the sandbox's own, `rows`
    /// by `cols`, as its controlling terminal: job control works, and Ctrl-C or Ctrl-Z
    /// written to the terminal reach it as signals. Write its input to, and read its output
    /// from, [`TerminalExec::terminal`]; [`TerminalExec::wait`] gives its exit code.
    pub async fn exec_with_tty(
        &self,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        (rows, cols): (u16, u16),
    ) -> Result<TerminalExec, Error> {
        let null = || -> Result<OwnedFd, Error> { Ok(std::fs::File::open("/dev/null")?.into()) };
        let (launched, pty) = self.launch(
            Task::Command {
                argv,
                env,
                tty: Some((rows, cols)),
            },
            [null()?, null()?, null()?],
        )?;
        let terminal = pty.ok_or_else(|| {
            Error::Io(std::io::Error::other(
                "the sandbox did not hand over a terminal",
            ))
        })?;
        Ok(TerminalExec { terminal, launched })
    }

    /// Start `argv` inside the sandbox with extra environment variables and the given stdio
    /// (unset streams: stdin null, stdout and stderr piped). The returned child's exit status
    /// is the command's. Attached sandboxes only (use [`exec_with_stdio`](Self::exec_with_stdio)
    /// on a detached one).
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
        match &self.inner {
            Inner::Local(l) => l.spawn(argv, extra_env, stdio),
            Inner::Remote(_) => Err(Error::config(
                "spawn: this handle is detached; use exec or exec_with_stdio",
            )),
        }
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
        match &self.inner {
            Inner::Local(l) => l.wait().await,
            Inner::Remote(r) => {
                let r = r.clone();
                blocking(move || r.wait()).await
            }
        }
    }

    /// Replace secret `env`'s value without restarting the sandbox (rotation). The
    /// placeholder stays the same; requests already being rewritten finish with the old
    /// value, later ones get the new one; responses are scrubbed of both for a grace period
    /// (`standin_boundary::RETIRED_VALUE_GRACE`); a `secret-rotated` event is emitted (never
    /// the value). Works on attached and detached handles alike.
    ///
    /// ```no_run
    /// # async fn demo(sb: standin::Sandbox) -> Result<(), standin::Error> {
    /// sb.update_secret("OPENAI_API_KEY", "sk-new-…").await?;
    /// # Ok(()) }
    /// ```
    pub async fn update_secret(&self, env: &str, value: impl Into<Vec<u8>>) -> Result<(), Error> {
        let value = SecretValue::new(value);
        match &self.inner {
            Inner::Local(l) => l.update_secret(env, value),
            Inner::Remote(r) => {
                let (r, env) = (r.clone(), env.to_owned());
                blocking(move || r.update_secret(&env, &value)).await
            }
        }
    }

    /// Limits that could not be enforced on this host (only defaults can be skipped: a limit
    /// given explicitly that cannot be enforced fails `create`).
    pub fn limit_warnings(&self) -> &[String] {
        match &self.inner {
            Inner::Local(l) => l.process.warnings(),
            Inner::Remote(r) => &r.record.warnings,
        }
    }

    /// What the limits did: once [`wait`](Sandbox::wait) has returned on an attached handle;
    /// so far, on a detached one.
    pub fn limit_usage(&self) -> Option<LimitUsage> {
        match &self.inner {
            Inner::Local(l) => l.process.limit_usage().map(Into::into),
            Inner::Remote(r) => r.inspect().ok().and_then(|live| live.usage),
        }
    }

    /// The limits in force (defaults applied).
    pub fn limits(&self) -> ResourceLimits {
        match &self.inner {
            Inner::Local(l) => l.process.limits().into(),
            Inner::Remote(r) => r.record.limits,
        }
    }

    /// One message per limit the sandbox reached, naming it and how to raise it; empty when no
    /// limit was reached (or, attached, before [`wait`](Sandbox::wait) has returned).
    pub fn limit_messages(&self) -> Vec<String> {
        self.limit_usage()
            .map(|u| crate::limits::limit_messages(&self.limits(), &u))
            .unwrap_or_default()
    }

    /// Whether the sandbox was killed by a block-and-terminate secret violation.
    pub fn terminated_by_violation(&self) -> bool {
        match &self.inner {
            Inner::Local(l) => l.terminated_by_violation(),
            Inner::Remote(r) => r
                .inspect()
                .map(|live| live.terminated_by_violation)
                .unwrap_or(false),
        }
    }

    /// Stop the sandbox now: every process inside is killed. Idempotent.
    pub fn stop(&self) {
        match &self.inner {
            Inner::Local(l) => l.process.kill(),
            Inner::Remote(r) => {
                let _ = r.stop(std::time::Duration::ZERO);
            }
        }
    }

    /// Stop the sandbox gracefully: SIGTERM to its main command, then, after `grace`, every
    /// process killed (a sandbox without a main command ends at once). Returns the main
    /// command's exit code.
    pub async fn stop_gracefully(&self, grace: std::time::Duration) -> Result<i32, Error> {
        match &self.inner {
            Inner::Local(l) => {
                l.process.terminate();
                let process = l.process.clone();
                let ended = blocking(move || Ok(process.wait_ended(grace))).await?;
                if !ended {
                    l.process.kill();
                }
                l.wait().await
            }
            Inner::Remote(r) => {
                let r = r.clone();
                blocking(move || r.stop(grace)).await
            }
        }
    }

    /// The main command's pipes, for the streams set to `Stdio::piped()` in
    /// [`SandboxBuilder::stdio`]; `None` after the first call, and on a detached handle (a
    /// detached sandbox's output goes to its log).
    pub fn take_main_pipes(&mut self) -> Option<MainPipes> {
        match &mut self.inner {
            Inner::Local(l) => l.pipes.take(),
            Inner::Remote(_) => None,
        }
    }
}

/// Run blocking work off the async runtime's workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?
}
