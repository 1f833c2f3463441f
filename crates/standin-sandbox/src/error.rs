//! Errors of the sandbox runtime.

use std::io;
use thiserror::Error;

/// Everything that can go wrong creating, entering or stopping a sandbox.
#[derive(Debug, Error)]
pub enum SandboxError {
    /// The helper binary could not be started.
    #[error("cannot start the sandbox helper {path}: {source}")]
    Spawn {
        /// Helper path.
        path: String,
        /// Cause.
        source: io::Error,
    },
    /// A step of the sandbox setup failed inside the sandbox.
    #[error("sandbox setup failed while {stage}: {message}")]
    Setup {
        /// Which step.
        stage: String,
        /// Details and, when known, how to fix it.
        message: String,
    },
    /// The uid/gid maps could not be written.
    #[error("cannot write the sandbox's uid/gid maps: {0}")]
    IdMap(String),
    /// The control channel broke or carried something unexpected.
    #[error("sandbox control channel: {0}")]
    Protocol(String),
    /// A resource limit that was asked for cannot be enforced on this host.
    #[error("{0}")]
    Limits(String),
    /// The sandbox's configuration does not fit the control channel (says why and what to do).
    #[error("{0}")]
    TooLarge(String),
    /// The sandbox is no longer running.
    #[error("the sandbox has stopped")]
    Stopped,
    /// Other I/O failure on the supervisor side.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// Cause.
        source: io::Error,
    },
}

impl SandboxError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> SandboxError {
        let context = context.into();
        move |source| SandboxError::Io { context, source }
    }
}
