//! Descriptions handed back to JavaScript: detached sandboxes and files.

use napi_derive::napi;

/// A detached sandbox, as `Sandbox.list()` describes it.
#[napi(object)]
#[derive(Debug)]
pub struct NativeSandboxInfo {
    /// Its name.
    pub name: String,
    /// Its id (as in events).
    pub id: String,
    /// `running`, `exited`, …
    pub state: String,
    /// The image reference, the rootfs directory, or `host`.
    pub root: String,
    /// The main command, if it has one.
    pub command: Option<Vec<String>>,
    /// When it was created, in seconds since the epoch.
    pub created: f64,
    /// The main command's exit code, once exited.
    pub exit_code: Option<i32>,
    /// Whether a block-and-terminate violation killed it.
    pub terminated_by_violation: bool,
}

impl From<&standin::SandboxInfo> for NativeSandboxInfo {
    fn from(i: &standin::SandboxInfo) -> NativeSandboxInfo {
        NativeSandboxInfo {
            name: i.name.clone(),
            id: i.id.clone(),
            state: i.state.as_str().to_owned(),
            root: i.root.clone(),
            command: i.command.clone(),
            // Seconds since the epoch fit a double exactly.
            created: i.created as f64,
            exit_code: i.exit_code,
            terminated_by_violation: i.terminated_by_violation,
        }
    }
}

/// One file in a sandbox, as `fs().list()` and `fs().stat()` describe it.
#[napi(object)]
#[derive(Debug)]
pub struct NativeFileEntry {
    /// The file name (for `stat`, the path asked about).
    pub name: String,
    /// `file`, `dir`, `symlink` or `other`.
    pub kind: String,
    /// Size in bytes.
    pub size: f64,
    /// Permission bits.
    pub mode: u32,
    /// Last modification, in seconds since the epoch.
    pub modified: f64,
    /// Where a symlink points, as written in the link.
    pub link: Option<String>,
}

impl From<standin::FileEntry> for NativeFileEntry {
    fn from(e: standin::FileEntry) -> NativeFileEntry {
        NativeFileEntry {
            name: e.name,
            kind: e.kind.as_str().to_owned(),
            size: e.size as f64,
            mode: e.mode,
            modified: e.modified as f64,
            link: e.link,
        }
    }
}
