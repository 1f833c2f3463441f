//! # standin-sandbox: the sandbox runtime
//!
//! Runs a command in a fresh set of Linux namespaces (user, mount, PID, UTS, IPC, network,
//! cgroup) whose only way out is the network capture this crate installs, and hands the
//! capture's listening sockets to the host side. This is the only standin crate with
//! `unsafe`; all of it sits in `sys` (the crate denies `unsafe_code` elsewhere).
//!
//! ## Process model
//!
//! ```text
//! supervisor (your process / `standin`; multi-threaded; owns the boundary and the secrets)
//!  ├─ stage1      re-exec'd helper, single-threaded: user ns + maps, other namespaces,
//!  │   │          network capture + listeners (sent back over SCM_RIGHTS), then PID ns
//!  │   └─ init    PID 1: root filesystem, hostname, forks the main command, reaps
//!  │       └─ workload   caps dropped, securebits locked, no_new_privs, landlock, seccomp
//!  └─ exec helper re-exec'd per `exec`: setns(pidfd of init) into every namespace, forks
//!      └─ command  hardened exactly like the workload
//! ```
//!
//! Lifetime: init's exit kills the PID namespace; stage1 kills init when the supervisor's end
//! of the control socket hangs up (any supervisor death, SIGKILL included); init has
//! `PDEATHSIG=SIGKILL` against stage1. Namespaces are only referenced by these processes and
//! by the listener descriptors the supervisor holds, so nothing outlives the supervisor.
//!
//! Entry points: [`SandboxProcess`] (host side) and [`helper::run_if_requested`] (to be
//! called first thing in the helper binary's `main`).

#![deny(unsafe_code)]

pub(crate) mod capture_rules;
pub mod cgroup;
pub mod channel;
pub(crate) mod enter;
pub(crate) mod error;
pub mod files;
pub(crate) mod harden;
pub mod helper;
mod host_bind;
pub mod idmap;
pub(crate) mod image_root;
pub(crate) mod init;
pub(crate) mod layer_copy;
pub mod netns;
pub(crate) mod protocol;
pub(crate) mod rootfs;
pub(crate) mod scratch;
pub(crate) mod seccomp;
pub mod spec;
pub(crate) mod stage1;
pub(crate) mod supervisor;
#[allow(
    unsafe_code,
    reason = "the syscall layer: every unsafe block of standin is here, each with its SAFETY comment"
)]
pub(crate) mod sys;
pub(crate) mod user;
pub(crate) mod workload;

pub use cgroup::LimitUsage;
pub use error::SandboxError;
pub use netns::CaptureSockets;
pub use spec::{ExecSpec, ImageRoot, Job, NetworkMode, ResourceLimits, RootSource, SandboxSpec};
pub use supervisor::{MainPipes, SandboxProcess, StdioSpec};
