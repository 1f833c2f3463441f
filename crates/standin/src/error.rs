//! The SDK's error type.

use std::fmt;
use thiserror::Error;

/// Errors from building, creating or using a sandbox.
///
/// Match on the variant to tell a mistake in the configuration (fix the builder calls) from a
/// failure of the host (missing tools, permissions, resources). The text of each error says
/// what went wrong and how to fix it; it is meant for people and may change.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// Builder calls were given something invalid. Every problem found is listed, each
    /// naming the call at fault and how to fix it.
    #[error("invalid sandbox configuration: {}", .problems.join("; "))]
    Config {
        /// One entry per problem.
        problems: Vec<String>,
    },
    /// The sandbox could not be created, entered or waited for (namespaces, mounts, the
    /// helper binary, the tools the network setup needs).
    #[error(transparent)]
    Runtime(RuntimeError),
    /// No usable helper binary (the `standin` binary a sandbox is started with), or this
    /// program cannot serve as its own. The text says how to provide one.
    #[error("{0}")]
    Helper(String),
    /// The network boundary (DNS, the relay, TLS interception, the sandbox CA) could not start.
    #[error(transparent)]
    Network(NetworkError),
    /// The image could not be pulled, stored or found. Its text says what to do (log in,
    /// add a CA, pick another tag, free disk space, …).
    #[error(transparent)]
    Image(#[from] standin_image::ImageError),
    /// I/O on the host side.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// A helper error.
    pub(crate) fn helper(message: impl Into<String>) -> Error {
        Error::Helper(message.into())
    }

    /// A configuration error with one problem.
    pub(crate) fn config(problem: impl Into<String>) -> Error {
        Error::Config {
            problems: vec![problem.into()],
        }
    }
}

/// A failure of the sandbox runtime. Its text says what failed and how to fix it.
#[derive(Error)]
#[error(transparent)]
pub struct RuntimeError(standin_sandbox::SandboxError);

impl fmt::Debug for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl From<standin_sandbox::SandboxError> for Error {
    fn from(e: standin_sandbox::SandboxError) -> Error {
        Error::Runtime(RuntimeError(e))
    }
}

/// A failure to start the network boundary. Its text says what failed.
#[derive(Error)]
#[error("{0}")]
pub struct NetworkError(Box<dyn std::error::Error + Send + Sync>);

impl fmt::Debug for NetworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl From<standin_boundary::BoundaryError> for Error {
    fn from(e: standin_boundary::BoundaryError) -> Error {
        Error::Network(NetworkError(Box::new(e)))
    }
}

impl From<standin_boundary::CaError> for Error {
    fn from(e: standin_boundary::CaError) -> Error {
        Error::Network(NetworkError(Box::new(e)))
    }
}
