//! The messages of a detached sandbox's two channels: the setup socket (creator ⇄ new
//! supervisor) and the control socket (any client ⇄ supervisor), one JSON message per
//! `SOCK_SEQPACKET` datagram (`standin_sandbox::channel`).

use crate::limits::LimitUsage;
use crate::sandbox::launch::Task;
use serde::{Deserialize, Serialize};

/// Supervisor → creator, on the setup socket (after the [`Recipe`](super::recipe::Recipe)).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Setup {
    /// The sandbox is running; its control socket is listening.
    Ready,
    /// It could not be created.
    Failed {
        /// Configuration problems (empty when it failed otherwise).
        problems: Vec<String>,
        /// What went wrong otherwise.
        message: String,
    },
}

/// Client → supervisor.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Start a task; its stdin, stdout and stderr ride along. Answered with `Started`, then
    /// `Exited` once it ends; closing the connection first kills it.
    Run {
        /// What to run.
        task: Task,
    },
    /// Answer `Exited` once the main command (or the sandbox) has ended.
    Wait,
    /// SIGTERM to the main command, SIGKILL to everything after `grace_ms`; answered with
    /// `Exited`.
    Stop {
        /// Milliseconds to wait between the two.
        grace_ms: u64,
    },
    /// Answered with `Live`.
    Inspect,
    /// Replace a secret's value (rotation); answered with `Done`.
    UpdateSecret {
        /// The secret's env name.
        env: String,
        /// The new value.
        value: super::recipe::ValueText,
    },
}

/// Supervisor → client.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The task is running.
    Started,
    /// The task, or the main command, ended with this code.
    Exited {
        /// Exit code (128+N for signal N).
        code: i32,
    },
    /// Live figures.
    Live(Live),
    /// The request was carried out.
    Done,
    /// The request failed.
    Failed {
        /// Configuration problems (empty when it failed otherwise).
        problems: Vec<String>,
        /// What went wrong.
        message: String,
    },
}

/// What `inspect` adds to the record: figures read now.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Live {
    /// What the cgroup recorded so far, with memory and processes in use now.
    pub usage: Option<LimitUsage>,
    /// Whether a block-and-terminate violation killed the sandbox.
    pub terminated_by_violation: bool,
    /// The main command's exit code, once it has ended.
    pub exited: Option<i32>,
}

impl Reply {
    /// A failure as a reply.
    pub(crate) fn failed(e: &crate::Error) -> Reply {
        match e {
            crate::Error::Config { problems } => Reply::Failed {
                problems: problems.clone(),
                message: String::new(),
            },
            other => Reply::Failed {
                problems: Vec::new(),
                message: other.to_string(),
            },
        }
    }
}

/// A failure reply as an error.
pub(crate) fn failure(problems: Vec<String>, message: String) -> crate::Error {
    if problems.is_empty() {
        crate::Error::Io(std::io::Error::other(message))
    } else {
        crate::Error::Config { problems }
    }
}
