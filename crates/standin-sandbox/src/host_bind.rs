//! Host directories bound into the sandbox (`--workdir`, `--mount`), opened by stage1 while it
//! is still in the host's namespaces.
//!
//! A read-only bind is a plain bind of an `O_PATH` descriptor. A read-write bind must let the
//! sandbox's root write the directory, yet what it writes must come back owned by the
//! directory's owner, not by the unprivileged host uid the sandbox's root is:
//!
//! - **As root**, the directory is bound through an *idmapped mount*: a detached copy
//!   (`open_tree`) whose ids are translated by a user namespace mapping exactly the
//!   directory's owner (uid and gid) to the user the sandbox's main command runs as (root,
//!   or an image's `User`, resolved like the runtime does from the root's accounts files).
//!   Files that user creates land on disk as the owner's; files of any other host id inside
//!   show as `nobody` and are only as writable as their "other" permission bits say (and
//!   other sandbox users cannot create files there at all: `EOVERFLOW`). stage1 makes the
//!   copy before it creates the sandbox's user namespace (idmapping a host filesystem needs
//!   `CAP_SYS_ADMIN` in the host's), and init attaches it (`move_mount`) when it builds the
//!   root. The copy does not carry mounts below the directory.
//! - **Rootless**, the sandbox's root *is* the caller's uid, so a directory the caller owns is
//!   already the sandbox root's: a plain bind.
//!
//! Because what the sandbox writes may now belong to a real host user (even host root), the
//! workload of a sandbox with a writable host directory cannot set the set-user-ID or
//! set-group-ID bit on any file (see [`crate::seccomp`]), and it holds no capability, so it
//! cannot set file capabilities either.

use crate::idmap::{IdMaps, IdRange, namespace_with};
use crate::rootfs::{Access, bind_fd, open_path};
use crate::spec::{RootSource, SandboxSpec};
use crate::sys::mount::{ATTR_NODEV, ATTR_NOSUID, attach, clone_detached, set_idmap};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// One host path as stage1 prepares it.
#[derive(Debug)]
pub(crate) enum PreparedBind {
    /// A plain bind: opened by init, in the sandbox's (copied) mount namespace, because a bind
    /// source must belong to the mount namespace it is bound in.
    Plain(PathBuf),
    /// A detached, idmapped copy of the directory's mount, attached as is.
    Idmapped(OwnedFd),
}

/// One host path ready to be mounted inside: opened by init before anything is mounted.
#[derive(Debug)]
pub(crate) enum HostBind {
    /// An `O_PATH` descriptor, bound as is.
    Plain(OwnedFd),
    /// A detached, idmapped copy of the directory's mount, attached as is.
    Idmapped(OwnedFd),
}

impl PreparedBind {
    /// Open what is left to open, in init. `what` names it in errors.
    pub(crate) fn open_in_sandbox(self, what: &str) -> Result<HostBind, String> {
        match self {
            PreparedBind::Plain(path) => Ok(HostBind::Plain(
                open_path(&path).map_err(|e| format!("{what}: {e}"))?,
            )),
            PreparedBind::Idmapped(mount) => Ok(HostBind::Idmapped(mount)),
        }
    }

    /// Open `path` for a bind with `access`. `what` names it in errors (`--workdir /x`).
    /// `user`: host uid and gid that the directory's owner must become (the main user's).
    pub(crate) fn open(
        path: &Path,
        access: Access,
        user: (u32, u32),
        what: &str,
    ) -> Result<PreparedBind, String> {
        if access != Access::ReadWrite || !nix::unistd::geteuid().is_root() {
            return Ok(PreparedBind::Plain(path.to_owned()));
        }
        let fd = open_path(path).map_err(|e| format!("{what}: {e}"))?;
        let st = nix::sys::stat::fstat(&fd).map_err(|e| format!("{what}: {e}"))?;
        let (owner, group) = (st.st_uid, st.st_gid);
        if (owner, group) == user {
            return Ok(PreparedBind::Plain(path.to_owned())); // already the sandbox user's
        }
        match idmapped(&fd, (owner, group), user) {
            Ok(mount) => Ok(PreparedBind::Idmapped(mount)),
            // Writable by anyone: the plain bind works as it always has.
            Err(_) if st.st_mode & 0o003 == 0o003 => Ok(PreparedBind::Plain(path.to_owned())),
            Err(e) => Err(format!(
                "{what}: its filesystem cannot be idmapped ({e}), which standin needs to let \
                 the sandbox write a directory of uid {owner} (the sandbox's user is host uid \
                 {}, never host root); give the directory to the sandbox with \
                 `chown -R {}:{} {}`",
                user.0,
                user.0,
                user.1,
                path.display()
            )),
        }
    }
}

impl HostBind {
    /// Mount it at `target` with `access`.
    pub(crate) fn mount_at(&self, target: &Path, access: Access) -> Result<(), String> {
        match self {
            HostBind::Plain(fd) => bind_fd(fd, target, access),
            HostBind::Idmapped(mount) => attach(mount.as_fd(), target)
                .map_err(|e| format!("attaching the idmapped mount at {}: {e}", target.display())),
        }
    }

    /// The descriptor (for `fstat`).
    pub(crate) fn fd(&self) -> &OwnedFd {
        match self {
            HostBind::Plain(fd) | HostBind::Idmapped(fd) => fd,
        }
    }
}

/// A detached copy of the mount at `dir` on which the on-disk ids `owner` are the host ids
/// `user` and no other id is mapped. `nosuid` and `nodev` as every writable bind.
fn idmapped(dir: &OwnedFd, owner: (u32, u32), user: (u32, u32)) -> std::io::Result<OwnedFd> {
    let one = |inside, outside| IdRange {
        inside,
        outside,
        len: 1,
    };
    let userns = namespace_with(IdMaps {
        uid: one(owner.0, user.0),
        gid: one(owner.1, user.1),
    })?;
    let mount = clone_detached(dir.as_fd())?;
    set_idmap(mount.as_fd(), userns.as_fd(), ATTR_NOSUID | ATTR_NODEV)?;
    Ok(mount)
}

/// The host uid and gid of the user the main command runs as: its `user` resolved from the
/// accounts files of the root it will see (an image's topmost layer that has them, or a
/// `--rootfs`), mapped through the sandbox's id maps. Root when there is no main command, no
/// user, or nothing resolves (the workload then fails with the runtime's own message).
pub(crate) fn main_user(spec: &SandboxSpec) -> (u32, u32) {
    let maps = IdMaps::for_current_user();
    let host = |r: IdRange, id: u32| {
        if id < r.len {
            r.outside + id
        } else {
            r.outside
        }
    };
    let inside = spec
        .command
        .as_ref()
        .and_then(|c| c.user.as_deref())
        .and_then(|u| crate::user::resolve_with(u, &|name| accounts_file(&spec.root, name)).ok())
        .map_or((0, 0), |ids| (ids.uid, ids.gid));
    (host(maps.uid, inside.0), host(maps.gid, inside.1))
}

/// `/etc/NAME` as the sandbox's root will show it, read from the host side (empty when absent
/// or hidden by a whiteout).
fn accounts_file(root: &RootSource, name: &str) -> String {
    let rel = Path::new("etc").join(name);
    match root {
        RootSource::Host => String::new(),
        RootSource::Dir(dir) => crate::user::read_small(&dir.join(rel)),
        RootSource::Image(image) => {
            for layer in image.layers.iter().rev() {
                let path = layer.join(&rel);
                match std::fs::symlink_metadata(&path) {
                    Ok(m) if m.is_file() => return crate::user::read_small(&path),
                    Ok(_) => return String::new(), // a whiteout, or not a plain file
                    Err(_) => {}
                }
            }
            String::new()
        }
    }
}
