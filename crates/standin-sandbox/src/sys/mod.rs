//! The syscall layer: every `unsafe` block of standin lives under this module (the crate
//! denies `unsafe_code` everywhere else; every other crate forbids it).
//!
//! Each function wraps exactly one kernel interface that `nix`/`caps`/`landlock` do not cover
//! (or cover without the flags we need), keeps its `unsafe` to the FFI call itself, and returns
//! `std::io::Result`. Everything above this module is safe Rust.

pub(crate) mod fdpass;
pub(crate) mod mount;
pub(crate) mod pidfd;
pub(crate) mod process;
