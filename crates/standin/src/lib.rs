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
//! Sandboxes are created by starting a helper binary (the sandbox's stage1): the `standin`
//! binary of this SDK's version, found through [`HELPER_ENV`] (`STANDIN_BIN`), next to this
//! program's executable, or on `PATH`; or this program itself, when it calls
//! [`run_helper_if_requested`] first thing in a plain `fn main`. `#[tokio::main]` programs
//! need nothing else; anything missing or misplaced makes `create()` fail at once, saying
//! what to do. The first `create()` raises the descriptor limit
//! ([`raise_descriptor_limit`]).

#![forbid(unsafe_code)]

mod builder;
pub mod detached;
mod error;
mod event;
mod helper;
mod image;
mod limits;
mod network;
pub mod pod;
mod sandbox;
mod secret;
mod stdio;

pub use builder::SandboxBuilder;
pub use detached::{SandboxInfo, SandboxState};
pub use error::{Error, NetworkError, RuntimeError};
pub use event::{
    Event, EventAction, EventKind, EventLocation, EventProtocol, EventsFormat, EventsLevel,
    LimitName, PlaceholderForm,
};
pub use helper::HELPER_ENV;
pub use image::image_store;
pub use limits::{LimitUsage, ResourceLimits, limit_messages};
pub use network::{NetworkBuilder, parse_resolver};
pub use sandbox::{
    ExecOutput, FileEntry, FileKind, MAX_EXEC_OUTPUT, MAX_READ_BYTES, Sandbox, SandboxFs,
    TerminalExec,
};
pub use secret::{
    DangerousSecretBuilder, DangerousViolationActionBuilder, Refusal, SecretBuilder,
    SecretInjection, SecretValue, ViolationAction, ViolationActionBuilder, ViolationPolicy,
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

/// If this process was started as a standin helper (stage1, the exec helper, a detached
/// sandbox's supervisor), run that role and never return; otherwise return at once.
///
/// Optional: without it, sandboxes are started with the `standin` binary (see
/// [`HELPER_ENV`] and the order in which it is looked for). Calling it first thing in a plain
/// `fn main` (before any thread or async runtime starts) makes this program its own helper,
/// so it needs no `standin` binary. Called later (inside `#[tokio::main]`), creating a sandbox
/// fails at once, saying so.
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
    helper::note_dispatch();
}

/// The async runtime a supervisor runs on: two workers (the boundary's tasks are short; more
/// threads only add wake-ups on small machines).
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}
