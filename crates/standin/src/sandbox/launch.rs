//! Running one thing inside a sandbox, attached or detached alike: a [`Task`] started with
//! three descriptors as its standard streams gives a [`Launched`], whose exit code is the
//! task's. [`start`] and [`Pending::finish`] run one to its end with pipes, feeding stdin and
//! gathering the output.

use crate::Error;
use serde::{Deserialize, Serialize};
use standin_sandbox::files::FileOp;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

/// What to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Task {
    /// A command, with variables set over the sandbox's environment.
    Command {
        /// Program and arguments.
        argv: Vec<String>,
        /// Extra variables.
        env: Vec<(String, String)>,
        /// A pty of this size (rows, columns) as its terminal, instead of the streams.
        #[serde(default)]
        tty: Option<(u16, u16)>,
    },
    /// A file operation.
    Files(FileOp),
}

/// A started task.
#[derive(Debug)]
pub(crate) enum Launched {
    /// The exec helper, a child of this process.
    Local(std::process::Child),
    /// A task a detached sandbox's supervisor started for us.
    Remote(crate::detached::client::RemoteRun),
}

impl Launched {
    /// Block until the task ends; its exit code (128+N if killed by signal N).
    pub(crate) fn wait(self) -> Result<i32, Error> {
        match self {
            Launched::Local(mut child) => Ok(super::local::exit_code(child.wait()?)),
            Launched::Remote(run) => run.wait(),
        }
    }
}

/// Where a task's stdin comes from.
pub(crate) enum Input {
    /// Nothing (`/dev/null`).
    Null,
    /// These bytes.
    Bytes(Vec<u8>),
    /// Whatever this writes (it runs on its own thread).
    Writer(Box<dyn FnOnce(std::io::PipeWriter) -> std::io::Result<()> + Send>),
}

/// Where a task's stdout goes.
pub(crate) enum Output {
    /// Gathered, up to this many bytes (more fails the call).
    Collect(u64),
    /// Read by this (on the calling thread).
    Reader(Box<dyn FnOnce(std::io::PipeReader) -> std::io::Result<()> + Send>),
}

/// What a task produced.
#[derive(Debug)]
pub(crate) struct Collected {
    pub(crate) code: i32,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

/// Most stderr kept from a task whose stderr is collected (the rest is read and dropped).
pub(crate) const MAX_STDERR: u64 = 1 << 20;

/// A started task whose streams are ours: [`Pending::finish`] runs it to its end.
pub(crate) struct Pending {
    launched: Launched,
    input: Input,
    stdin: Option<std::io::PipeWriter>,
    stdout: std::io::PipeReader,
    stderr: std::io::PipeReader,
}

/// Start a task with pipes: `launch` starts it with (stdin, stdout, stderr). Quick: only
/// spawning (or asking the supervisor to spawn) happens here.
pub(crate) fn start(
    launch: impl FnOnce([OwnedFd; 3]) -> Result<(Launched, Option<OwnedFd>), Error>,
    input: Input,
) -> Result<Pending, Error> {
    let (in_r, stdin): (OwnedFd, Option<std::io::PipeWriter>) = match input {
        Input::Null => (std::fs::File::open("/dev/null")?.into(), None),
        _ => {
            let (r, w) = std::io::pipe()?;
            (r.into(), Some(w))
        }
    };
    let (stdout, out_w) = std::io::pipe()?;
    let (stderr, err_w) = std::io::pipe()?;
    // Our copies of the task's ends go with the call: the task alone holds them after it.
    let (launched, _) = launch([in_r, out_w.into(), err_w.into()])?;
    Ok(Pending {
        launched,
        input,
        stdin,
        stdout,
        stderr,
    })
}

impl Pending {
    /// Feed stdin, read stdout as `output` says, gather stderr, and wait (blocking).
    pub(crate) fn finish(self, output: Output) -> Result<Collected, Error> {
        let Pending {
            launched,
            input,
            stdin,
            stdout,
            stderr,
        } = self;
        let feeder = match (input, stdin) {
            (Input::Bytes(bytes), Some(mut w)) => Some(std::thread::spawn(move || {
                // A task that does not read all of its stdin is not an error of ours.
                let _ = w.write_all(&bytes);
                Ok(())
            })),
            (Input::Writer(f), Some(w)) => Some(std::thread::spawn(move || f(w))),
            _ => None,
        };
        let stderr = std::thread::spawn(move || read_capped_lossy(stderr, MAX_STDERR));
        let stdout = match output {
            Output::Collect(limit) => {
                standin_sandbox::files::read_capped(stdout, limit, "the output").map(Some)
            }
            Output::Reader(f) => f(stdout).map(|()| None),
        };
        let code = launched.wait()?;
        let stderr = stderr.join().unwrap_or_default();
        let fed = feeder.map(|f| f.join());
        if code != 0 {
            // The task's own failure explains what our ends of the pipes saw; what it did
            // write is its output all the same.
            return Ok(Collected {
                code,
                stdout: stdout.ok().flatten().unwrap_or_default(),
                stderr,
            });
        }
        let stdout = stdout.map_err(Error::Io)?;
        if let Some(Ok(Err(e))) = fed {
            return Err(Error::Io(e));
        }
        Ok(Collected {
            code,
            stdout: stdout.unwrap_or_default(),
            stderr,
        })
    }
}

/// Up to `limit` bytes of `r`, the rest read and dropped.
fn read_capped_lossy(mut r: impl Read, limit: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = r.by_ref().take(limit).read_to_end(&mut buf);
    let _ = std::io::copy(&mut r, &mut std::io::sink());
    buf
}
