//! [`Remote`]: a handle on a detached sandbox, talking to its supervisor.

use super::SandboxState;
use super::home::{Record, SandboxDir};
use super::protocol::{Live, Reply, Request, failure};
use super::recipe::ValueText;
use crate::Error;
use crate::SecretValue;
use crate::sandbox::launch::{Launched, Task};
use standin_sandbox::channel;
use std::os::fd::{AsFd, OwnedFd};

/// A detached sandbox, as found by name.
#[derive(Debug, Clone)]
pub(crate) struct Remote {
    pub(crate) record: Record,
    dir: SandboxDir,
}

/// A task a supervisor started for us: its exit code arrives on the connection.
#[derive(Debug)]
pub(crate) struct RemoteRun {
    sock: OwnedFd,
}

impl RemoteRun {
    /// Block until the task ends.
    pub(crate) fn wait(self) -> Result<i32, Error> {
        match receive(&self.sock)? {
            Reply::Exited { code } => Ok(code),
            other => Err(unexpected(&other)),
        }
    }
}

impl Remote {
    /// The running sandbox called `name`.
    pub(crate) fn connect(name: &str) -> Result<Remote, Error> {
        let dir = SandboxDir::of(name)?;
        if !dir.path.is_dir() {
            return Err(Error::config(format!(
                "there is no sandbox named {name:?}; `standin ls` lists them"
            )));
        }
        let record = dir.read_record()?;
        match dir.state(&record) {
            SandboxState::Running => Ok(Remote { record, dir }),
            SandboxState::Exited => Err(Error::config(format!(
                "sandbox {name:?} has exited (code {}); `standin logs {name}` shows its output, `standin rm {name}` removes it",
                record.exit.as_ref().map_or(0, |e| e.code)
            ))),
            SandboxState::Dead => Err(Error::config(format!(
                "the supervisor of sandbox {name:?} died, and the sandbox with it; `standin rm {name}` removes what is left"
            ))),
        }
    }

    fn channel(&self) -> Result<OwnedFd, Error> {
        channel::connect(&self.dir.control()).map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!(
                    "cannot reach the supervisor of sandbox {:?} ({e}); `standin ls` shows its state",
                    self.record.name
                ),
            ))
        })
    }

    fn ask(&self, req: &Request, fds: &[std::os::fd::BorrowedFd<'_>]) -> Result<OwnedFd, Error> {
        let sock = self.channel()?;
        channel::send(sock.as_fd(), req, fds)?;
        Ok(sock)
    }

    /// Start `task` with these streams; the pty's master when it asked for one.
    pub(crate) fn launch(
        &self,
        task: Task,
        stdio: [OwnedFd; 3],
    ) -> Result<(Launched, Option<OwnedFd>), Error> {
        let fds: Vec<_> = stdio.iter().map(|f| f.as_fd()).collect();
        let sock = self.ask(&Request::Run { task }, &fds)?;
        drop(stdio);
        match receive_with_fds(&sock)? {
            (Reply::Started, fds) => {
                Ok((Launched::Remote(RemoteRun { sock }), fds.into_iter().next()))
            }
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// The main command's exit code, once it has ended.
    pub(crate) fn wait(&self) -> Result<i32, Error> {
        match self.ask(&Request::Wait, &[]) {
            Ok(sock) => match receive(&sock) {
                Ok(Reply::Exited { code }) => Ok(code),
                Ok(other) => Err(unexpected(&other)),
                Err(_) => self.recorded_exit(),
            },
            Err(_) => self.recorded_exit(),
        }
    }

    /// Stop it (see [`Request::Stop`]); the main command's exit code.
    pub(crate) fn stop(&self, grace: std::time::Duration) -> Result<i32, Error> {
        let grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        match self.ask(&Request::Stop { grace_ms }, &[]) {
            Ok(sock) => match receive(&sock) {
                Ok(Reply::Exited { code }) => Ok(code),
                Ok(other) => Err(unexpected(&other)),
                Err(_) => self.recorded_exit(),
            },
            Err(_) => self.recorded_exit(),
        }
    }

    /// Replace a secret's value in the supervisor's boundary.
    pub(crate) fn update_secret(&self, env: &str, value: &SecretValue) -> Result<(), Error> {
        let req = Request::UpdateSecret {
            env: env.to_owned(),
            value: ValueText::of(value),
        };
        let sock = self.ask(&req, &[])?;
        match receive(&sock)? {
            Reply::Done => Ok(()),
            Reply::Failed { problems, message } => Err(super::protocol::failure(problems, message)),
            other => Err(unexpected(&other)),
        }
    }

    /// Live figures.
    pub(crate) fn inspect(&self) -> Result<Live, Error> {
        let sock = self.ask(&Request::Inspect, &[])?;
        match receive(&sock)? {
            Reply::Live(live) => Ok(live),
            other => Err(unexpected(&other)),
        }
    }

    /// The exit code in the record (the supervisor has gone).
    fn recorded_exit(&self) -> Result<i32, Error> {
        let record = self.dir.read_record()?;
        record.exit.map(|e| e.code).ok_or_else(|| {
            Error::Io(std::io::Error::other(format!(
                "the supervisor of sandbox {:?} is gone without recording an exit",
                self.record.name
            )))
        })
    }
}

/// Stop the running sandbox at `dir` (for `rm -f`), if it is still running.
pub(crate) fn stop_at(dir: &SandboxDir) -> Result<(), Error> {
    let sock = channel::connect(&dir.control())?;
    channel::send(sock.as_fd(), &Request::Stop { grace_ms: 0 }, &[])?;
    receive(&sock).map(drop)
}

fn receive(sock: &OwnedFd) -> Result<Reply, Error> {
    receive_with_fds(sock).map(|(r, _)| r)
}

fn receive_with_fds(sock: &OwnedFd) -> Result<(Reply, Vec<OwnedFd>), Error> {
    match channel::recv::<Reply>(sock)? {
        Some((Reply::Failed { problems, message }, _)) => Err(failure(problems, message)),
        Some(reply) => Ok(reply),
        None => Err(Error::Io(std::io::Error::other(
            "the sandbox's supervisor closed the connection",
        ))),
    }
}

fn unexpected(reply: &Reply) -> Error {
    Error::Io(std::io::Error::other(format!(
        "unexpected answer from the sandbox's supervisor: {reply:?}"
    )))
}
