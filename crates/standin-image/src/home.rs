//! Where standin keeps its state.
//!
//! `STANDIN_HOME` when set; otherwise `/var/lib/standin` for root and
//! `$XDG_DATA_HOME/standin` (default `~/.local/share/standin`) for everyone else, as podman
//! and other rootless tools do.

use std::path::PathBuf;

/// The state directory for this process.
pub fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STANDIN_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/standin");
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir).join("standin");
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".local/share/standin")
}
