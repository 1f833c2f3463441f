//! # standin-image: OCI images for sandboxes
//!
//! Pulls images from any OCI registry (OCI image index and manifest, Docker v2 schema 2
//! manifest and manifest list), keeps each layer unpacked once in a local store keyed by its
//! diff ID, and hands a sandbox the layer directories it stacks with overlayfs.
//!
//! ```text
//! ImageRef::parse("python:3.12")          reference: Docker's short-name rules
//!   → Puller::ensure(&ref, PullPolicy)    pull: registry (oci-client), auth files
//!       → unpack_blob per layer           blob: decompress + hash ‖ unpack: hostile-tar rules
//!       → Store::publish_layer, put_record store: locks, atomic rename
//!   → Store::lease(&record)               layer dirs for overlayfs, held while it runs
//! ```
//!
//! Layers are hostile input: see [`unpack`] for the rules and [`limits`] for the bounds. No
//! `unsafe` here; the syscalls go through `rustix`.

#![forbid(unsafe_code)]

mod auth;
mod blob;
mod error;
mod home;
pub mod limits;
mod lock;
mod pull;
mod record;
mod reference;
mod registry;
mod store;
mod tree;
pub mod unpack;

pub use auth::{auth_files, credentials_for};
pub use blob::unpack_blob;
pub use error::{ImageError, LayerRefusal};
pub use home::state_dir;
pub use lock::FileLock;
pub use pull::{PARALLEL_LAYERS, PullPolicy, PullProgress, Puller, Quiet};
pub use record::{ImageRecord, LayerRecord, RunConfig};
pub use reference::ImageRef;
pub use registry::{RegistryOptions, host_platform};
pub use store::{LayerLease, Store};
pub use unpack::Ownership;
