//! # standin-policy: the pure model layer
//!
//! Everything standin decides, expressed as plain data and pure functions, with no I/O, no
//! syscalls and no async. The sandbox runtime and the network boundary consult this crate;
//! they never embed policy of their own. That keeps every decision unit- and property-testable
//! without namespaces, and keeps the rules reviewable in one place.
//!
//! Today it holds:
//! - [`ip_class`]: which class an address belongs to (public, private, loopback, metadata…),
//!   the vocabulary of the egress policy;
//! - [`limits`]: the grammar and defaults of the resource limits (`--memory`, `--cpus`,
//!   `--pids`, `--disk`);
//! - [`mount_spec`]: the `HOST:GUEST[:ro]` bind-mount grammar of `--mount`;
//! - [`env_spec`]: the `K=V` / `K` grammar of `--env`, and the checks on variable names;
//! - [`guest_env`]: the environment a sandboxed command starts with (built from scratch);
//! - [`egress`]: the egress policy (rules on domains, CIDRs, groups, protocols and ports,
//!   first match wins), DNS-as-egress and rebind decisions, and the pin table.
//!
//! - [`secrets`]: the secret model (placeholders, allowed hosts, injection scopes, violation
//!   actions), the per-destination decision, and the streaming placeholder scanner and
//!   substituter the boundary runs on sandbox traffic.

#![forbid(unsafe_code)]

pub mod egress;
pub mod env_spec;
pub mod guest_env;
pub mod ip_class;
pub mod limits;
pub mod mount_spec;
pub mod secrets;

pub use env_spec::{EnvSpec, EnvSpecError};
pub use ip_class::IpClass;
pub use mount_spec::{MountSpec, MountSpecError};
