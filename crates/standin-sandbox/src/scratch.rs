//! The sandbox's writable space: one tmpfs, sized by the disk limit, whose directories are
//! bound at `/tmp`, `/dev/shm`, `/workspace` (unless that is a host directory) and, for an
//! image, hold its writable layer. Together they can never hold more than the limit, and
//! the pages count against the sandbox's memory limit too (tmpfs lives in memory and is
//! charged to the cgroup of the process that writes it).

use crate::rootfs::mount_tmpfs;
use crate::sys::mount::{ATTR_NODEV, ATTR_NOEXEC, ATTR_NOSUID, set_attrs};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The writable tmpfs, mounted.
#[derive(Debug)]
pub(crate) struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Mount it on the empty directory `at` (mode 0700: only its directories are shared),
    /// holding at most `disk` bytes (`None`: the
    /// kernel's tmpfs default, half the host's memory).
    pub(crate) fn mount(at: &Path, disk: Option<u64>) -> Result<Scratch, String> {
        let data = match disk {
            Some(bytes) => format!("mode=0700,size={bytes}"),
            None => "mode=0700".to_owned(),
        };
        mount_tmpfs(at, &data, MsFlags::MS_NOSUID | MsFlags::MS_NODEV)?;
        Ok(Scratch { dir: at.to_owned() })
    }

    /// A new directory `name` of the writable space, with `mode`.
    pub(crate) fn dir(&self, name: &str, mode: u32) -> Result<PathBuf, String> {
        let path = self.dir.join(name);
        fs::create_dir(&path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {}: {e}", path.display()))?;
        Ok(path)
    }

    /// A new directory `name` with `mode`, bound at `target` (nosuid, nodev; noexec too
    /// when `noexec`).
    pub(crate) fn bind(
        &self,
        name: &str,
        mode: u32,
        target: &Path,
        noexec: bool,
    ) -> Result<(), String> {
        let source = self.dir(name, mode)?;
        mount(
            Some(&source),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("bind-mounting onto {}: {e}", target.display()))?;
        let attrs = ATTR_NOSUID | ATTR_NODEV | if noexec { ATTR_NOEXEC } else { 0 };
        set_attrs(target, attrs, false)
            .map_err(|e| format!("setting mount flags on {}: {e}", target.display()))
    }

    /// Detach the tmpfs from where it was mounted and remove that directory. The directories
    /// bound elsewhere stay, still sharing the one size limit.
    pub(crate) fn detach(self) -> Result<(), String> {
        umount2(&self.dir, MntFlags::MNT_DETACH)
            .map_err(|e| format!("detaching {}: {e}", self.dir.display()))?;
        fs::remove_dir(&self.dir).map_err(|e| format!("rmdir {}: {e}", self.dir.display()))
    }
}
