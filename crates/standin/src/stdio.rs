//! [`StdioSpec`] and [`MainPipes`]: the standard streams of a command in the sandbox.

use std::process::{ChildStderr, ChildStdin, ChildStdout, Stdio};

/// Standard streams for the main command ([`SandboxBuilder::stdio`](crate::SandboxBuilder::stdio))
/// or a spawned one ([`Sandbox::spawn`](crate::Sandbox::spawn)). An unset stream takes the
/// call's default.
///
/// ```
/// use std::process::Stdio;
/// let stdio = standin::StdioSpec::default()
///     .stdout(Stdio::piped())
///     .stderr(Stdio::null());
/// # let _ = stdio;
/// ```
#[derive(Debug, Default)]
pub struct StdioSpec {
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
}

impl StdioSpec {
    /// The command's stdin.
    pub fn stdin(mut self, stdin: Stdio) -> Self {
        self.stdin = Some(stdin);
        self
    }

    /// The command's stdout.
    pub fn stdout(mut self, stdout: Stdio) -> Self {
        self.stdout = Some(stdout);
        self
    }

    /// The command's stderr.
    pub fn stderr(mut self, stderr: Stdio) -> Self {
        self.stderr = Some(stderr);
        self
    }

    /// Whether no stream was set.
    pub(crate) fn is_default(&self) -> bool {
        self.stdin.is_none() && self.stdout.is_none() && self.stderr.is_none()
    }

    pub(crate) fn into_runtime(self) -> standin_sandbox::StdioSpec {
        standin_sandbox::StdioSpec {
            stdin: self.stdin,
            stdout: self.stdout,
            stderr: self.stderr,
        }
    }
}

/// The main command's ends of the streams set to [`Stdio::piped`] in
/// [`SandboxBuilder::stdio`](crate::SandboxBuilder::stdio).
#[derive(Debug)]
#[non_exhaustive]
pub struct MainPipes {
    /// Writes to the command's stdin.
    pub stdin: Option<ChildStdin>,
    /// Reads the command's stdout.
    pub stdout: Option<ChildStdout>,
    /// Reads the command's stderr.
    pub stderr: Option<ChildStderr>,
}

impl From<standin_sandbox::MainPipes> for MainPipes {
    fn from(p: standin_sandbox::MainPipes) -> MainPipes {
        MainPipes {
            stdin: p.stdin,
            stdout: p.stdout,
            stderr: p.stderr,
        }
    }
}
