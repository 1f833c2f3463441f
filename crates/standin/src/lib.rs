//! # standin: the SDK
//!
//! Run an agent's command in an isolated Linux sandbox whose only way out is a network
//! boundary standin owns. This crate is the facade over the layers below it:
//! [`standin_policy`] (pure model), [`standin_sandbox`] (namespaces and hardening) and
//! [`standin_boundary`] (the host-side network boundary).
//!
//! ```no_run
//! # async fn demo() -> Result<(), standin::Error> {
//! let key = std::env::var("OPENAI_API_KEY").unwrap_or_default();
//! let sandbox = standin::Sandbox::builder("agent")
//!     // Inside, OPENAI_API_KEY is `$MSB_OPENAI_API_KEY`; the boundary puts the real value
//!     // in requests to api.openai.com only.
//!     .secret_env("OPENAI_API_KEY", &key, "api.openai.com")
//!     .network(|n| n.on_secret_violation(|v| v.block_and_log()))
//!     .create()
//!     .await?;
//! let out = sandbox.exec("python3", ["agent.py"]).await?;
//! println!("exit {}: {}", out.code, out.stdout_str());
//! sandbox.stop();
//! # Ok(()) }
//! ```
//!
//! Sandboxes are created by re-executing a helper binary (the sandbox's stage1). By default
//! that is the current executable, which must then call [`run_helper_if_requested`] first
//! thing in `main`; or point [`SandboxBuilder::helper`] at the `standin` binary.

#![forbid(unsafe_code)]

mod builder;
pub mod detached;
mod error;
mod event;
mod image;
mod limits;
mod network;
mod sandbox;
mod secret;
mod stdio;

pub use builder::SandboxBuilder;
pub use detached::{SandboxInfo, SandboxState};
pub use error::{Error, NetworkError, RuntimeError};
pub use event::{Event, EventAction, EventKind, EventLocation, EventProtocol, PlaceholderForm};
pub use image::image_store;
pub use limits::{LimitUsage, ResourceLimits, limit_messages};
pub use network::{NetworkBuilder, parse_resolver};
pub use sandbox::{
    ExecOutput, FileEntry, FileKind, MAX_EXEC_OUTPUT, MAX_READ_BYTES, Sandbox, SandboxFs,
    TerminalExec,
};
pub use secret::{
    DangerousSecretBuilder, DangerousViolationActionBuilder, SecretBuilder, SecretInjection,
    SecretValue, ViolationAction, ViolationActionBuilder, ViolationPolicy,
};
pub use standin_image::{
    ImageError, ImageRecord, ImageRef, PullPolicy, PullProgress, Puller, RegistryOptions, Store,
    host_platform,
};
pub use standin_policy::egress::{Action, Rule};
pub use standin_policy::limits::{Bytes, Cpus};
pub use standin_policy::{EnvSpec, MountSpec};
pub use stdio::{MainPipes, StdioSpec};

/// Raise this process's soft descriptor limit (`RLIMIT_NOFILE`) to its hard limit; returns
/// the limit now in force. Every connection through a sandbox's boundary holds two
/// descriptors in this process, so a program running busy sandboxes should call this once at
/// start (the `standin` binary does).
pub fn raise_descriptor_limit() -> std::io::Result<u64> {
    standin_boundary::raise_descriptor_limit()
}

/// If this process was started as a standin helper (stage1 or the exec helper), run that role
/// and never return. Call it first thing in `main` of any binary that creates sandboxes with
/// the default helper.
pub fn run_helper_if_requested() {
    standin_sandbox::helper::run_if_requested();
    let mut args = std::env::args_os().skip(1);
    if args
        .next()
        .is_some_and(|a| a == detached::supervisor::SUPERVISE_ARG)
    {
        let dir = args
            .next()
            .map(std::path::PathBuf::from)
            .unwrap_or_default();
        detached::supervisor::main(dir)
    }
}

/// The async runtime a supervisor runs on: two workers (the boundary's tasks are short; more
/// threads only add wake-ups on small machines).
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}
