//! # standin: the SDK
//!
//! Run an agent's command in an isolated Linux sandbox whose only way out is a network
//! boundary standin owns. This crate is the facade over the layers below it:
//! [`standin_policy`] (pure model), [`standin_sandbox`] (namespaces and hardening) and
//! [`standin_boundary`] (the host-side network boundary).
//!
//! ```no_run
//! # async fn demo() -> Result<(), standin::Error> {
//! let sandbox = standin::Sandbox::builder("agent").create().await?;
//! let out = sandbox.exec("uname", ["-n"]).await?;
//! assert_eq!(out.code, 0);
//! sandbox.stop();
//! # Ok(()) }
//! ```
//!
//! Sandboxes are created by re-executing a helper binary (the sandbox's stage1). By default
//! that is the current executable, which must then call [`run_helper_if_requested`] first
//! thing in `main`; or point [`SandboxBuilder::helper`] at the `standin` binary.

mod builder;
mod error;
mod network;
mod sandbox;
mod secret;

pub use builder::SandboxBuilder;
pub use error::Error;
pub use network::{NetworkBuilder, parse_resolver};
pub use sandbox::{ExecOutput, Sandbox};
pub use secret::{
    SecretBuilder, SecretEntry, SecretInjection, SecretValue, ViolationAction,
    ViolationActionBuilder, ViolationPolicy,
};
pub use standin_boundary::limits::raise_descriptor_limit;
pub use standin_boundary::{Event, EventKind};
pub use standin_policy::egress::{Action, Rule};
pub use standin_policy::{EnvSpec, MountSpec};
pub use standin_sandbox::{MainPipes, StdioSpec};

/// If this process was started as a standin helper (stage1 or the exec helper), run that role
/// and never return. Call it first thing in `main` of any binary that creates sandboxes with
/// the default helper.
pub fn run_helper_if_requested() {
    standin_sandbox::helper::run_if_requested();
}
