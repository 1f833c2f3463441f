//! The SDK's error type.

use thiserror::Error;

/// Errors from building, creating or using a sandbox.
#[derive(Debug, Error)]
pub enum Error {
    /// A builder call was given something invalid; the message says what and how to fix it.
    #[error("invalid sandbox configuration: {0}")]
    Config(String),
    /// The runtime could not create or enter the sandbox.
    #[error(transparent)]
    Sandbox(#[from] standin_sandbox::SandboxError),
    /// The network boundary could not start.
    #[error(transparent)]
    Boundary(#[from] standin_boundary::BoundaryError),
    /// I/O on the host side.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
