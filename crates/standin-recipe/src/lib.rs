//! # standin-recipe: builder calls recorded by the language bindings, replayed in Rust
//!
//! The TypeScript and Python packages are thin: their builders only *record* the calls made
//! on them, in order, as a recipe (JSON: `{"name", "helper", "calls": [[method, ...args],
//! ...]}`; a nested builder such as `secret(s => …)` records its own list as the argument).
//! This crate replays a recipe onto the SDK's `SandboxBuilder`, `NetworkBuilder`,
//! `SecretBuilder` and `ViolationActionBuilder`, so that no policy, default or validation
//! exists twice and every error is the SDK's own text.
//!
//! Only the arguments' types are checked here (a number where a host belongs is reported
//! naming the call as the caller wrote it); what a valid host, size or name is stays the
//! SDK's to decide. Each language keeps its own method names ([`Language`]).
//!
//! Secret values arrive inside the recipe. The parsed copies are zeroized once the builders
//! hold theirs; the caller zeroizes the recipe text.

#![forbid(unsafe_code)]

mod entry;
mod language;
mod replay;

pub use entry::{event_json, secret_entry_json};
pub use language::Language;
pub use replay::{EventListener, sandbox_builder};
