//! What a sandbox is made of: the plain-data description the supervisor hands to stage1.
//!
//! It travels over the control socket as JSON. It never carries a real secret value: the
//! environment holds placeholders only, and values stay in the supervisor's memory.

use serde::{Deserialize, Serialize};
use standin_policy::MountSpec;
use std::path::PathBuf;

/// Where the sandbox's root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum RootSource {
    /// Assembled from the host's system directories (read-only `/usr`, the usr-merged links,
    /// and a curated `/etc`).
    #[default]
    Host,
    /// A prepared root filesystem directory; every top-level entry is bound read-only.
    Dir(PathBuf),
    /// Image layers (bottom first), stacked read-only by overlayfs under a writable layer
    /// that disappears with the sandbox.
    Image(ImageRoot),
}

/// The layers of an image root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRoot {
    /// Unpacked layer directories, bottom first. They must share one parent directory (the
    /// image store's), whose path contains none of `:`, `,` or `\\`.
    pub layers: Vec<PathBuf>,
    /// Copy the layers into a tmpfs instead of stacking them with overlayfs (which is also
    /// what happens, with a warning, when overlayfs cannot be mounted).
    #[serde(default)]
    pub copy: bool,
    /// The image's `WorkingDir` (absolute), created at start when its layers lack it, as
    /// Docker does: the main command and every exec start there.
    #[serde(default)]
    pub working_dir: Option<PathBuf>,
}

/// How the sandbox reaches the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum NetworkMode {
    /// All TCP and DNS captured to listeners that the host side owns; everything else rejected.
    #[default]
    Captured,
    /// Loopback only.
    None,
}

/// A full sandbox description.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// Hostname inside the sandbox (its own UTS namespace).
    pub hostname: String,
    /// Root filesystem source.
    pub root: RootSource,
    /// Host directory bound read-write at `/workspace`; `None` gives a fresh, empty tmpfs that
    /// disappears with the sandbox.
    pub workdir: Option<PathBuf>,
    /// Extra bind mounts.
    pub mounts: Vec<MountSpec>,
    /// Network mode.
    pub network: NetworkMode,
    /// The main command. `None` keeps the sandbox idle until stopped (for `exec`).
    pub command: Option<ExecSpec>,
    /// Extra files to place in the sandbox's `/etc` (path relative to `/etc`, contents).
    pub etc_files: Vec<(String, String)>,
    /// A CA certificate (PEM) the sandbox must trust: written to [`CA_FILE`], appended to the
    /// system bundle in [`CA_BUNDLE`], and that bundle is laid over the distribution bundle
    /// files that exist, so clients that ignore environment variables trust it too.
    #[serde(default)]
    pub trust_ca_pem: Option<String>,
    /// Resource limits.
    #[serde(default)]
    pub limits: ResourceLimits,
}

impl SandboxSpec {
    /// Whether the workload can write a host directory (the workdir, a read-write mount):
    /// what it writes there outlives the sandbox and belongs to a host user.
    pub fn shares_writable_host_dirs(&self) -> bool {
        self.workdir.is_some() || self.mounts.iter().any(|m| !m.read_only)
    }
}

/// Resource limits, resolved (`None`: unlimited). Memory, CPU and pids are enforced by a
/// cgroup per sandbox ([`crate::cgroup`]); disk by the size of the one tmpfs that holds
/// everything the sandbox can write.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResourceLimits {
    /// Bytes of memory (the sandbox's processes and its tmpfs pages together).
    pub memory: Option<u64>,
    /// Thousandths of a CPU.
    pub cpu_millis: Option<u32>,
    /// Processes and threads.
    pub pids: Option<u32>,
    /// Bytes of writable space: `/tmp`, `/workspace` (unless a host directory), `/dev/shm`
    /// and an image's writable layer, together.
    pub disk: Option<u64>,
    /// The cgroup limits that must be enforced (the user gave them): the sandbox does not
    /// start when one cannot be. The others (defaults) are enforced where the host allows,
    /// with a warning naming each that is not.
    #[serde(default)]
    pub required: Vec<crate::cgroup::Controller>,
}

/// The sandbox CA alone, inside the sandbox.
pub const CA_FILE: &str = "/etc/standin/ca.pem";
/// The system bundle plus the sandbox CA, inside the sandbox.
pub const CA_BUNDLE: &str = "/etc/standin/ca-bundle.pem";
/// Distribution CA bundle files (relative to `/etc`) that are replaced by [`CA_BUNDLE`].
pub const SYSTEM_BUNDLES: &[&str] = &[
    "ssl/certs/ca-certificates.crt",
    "pki/tls/certs/ca-bundle.crt",
    "ssl/cert.pem",
];

/// The bundle files an image root may have (relative to `/etc`), by distribution: Debian,
/// Ubuntu and Alpine (`ssl/certs/ca-certificates.crt`, Alpine's `ssl/cert.pem`), Fedora and
/// RHEL (`pki/tls/certs/ca-bundle.crt` and the file it links to), openSUSE
/// (`ssl/ca-bundle.pem`). Each one present is replaced by the bundle plus the sandbox CA.
pub const IMAGE_BUNDLES: &[&str] = &[
    "ssl/certs/ca-certificates.crt",
    "pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "pki/tls/certs/ca-bundle.crt",
    "pki/tls/cert.pem",
    "ssl/cert.pem",
    "ssl/ca-bundle.pem",
];

/// A command to run inside the sandbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExecSpec {
    /// Program and arguments. The program is looked up in the sandbox's `PATH` unless it
    /// contains a `/`.
    pub argv: Vec<String>,
    /// The complete environment (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Working directory inside the sandbox (created when missing on an image root).
    pub cwd: PathBuf,
    /// Run as this user instead of the sandbox's root: `name`, `uid`, `name:group` or
    /// `uid:gid`, names looked up in the sandbox's `/etc/passwd` and `/etc/group` (an image's
    /// `User`).
    #[serde(default)]
    pub user: Option<String>,
    /// Run on a new pseudo-terminal of the sandbox's own with this size (rows, columns),
    /// as the command's controlling terminal (exec only). The caller gets its other end.
    #[serde(default)]
    pub tty: Option<(u16, u16)>,
}

/// What the exec helper runs inside a running sandbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Job {
    /// A command, hardened exactly like the main command.
    Command(ExecSpec),
    /// A file operation, done by standin's own code with the same privileges a command of
    /// the sandbox has (see [`crate::files`]).
    Files {
        /// The operation.
        op: crate::files::FileOp,
        /// The user it runs as (the image's `User`; `None`: the sandbox's root).
        user: Option<String>,
    },
}

/// The sandbox's working directory.
pub const WORKSPACE: &str = "/workspace";
