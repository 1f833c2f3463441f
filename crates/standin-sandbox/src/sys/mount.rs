//! Mount syscalls not (fully) covered by `nix`: `mount_setattr`, `open_tree`, `move_mount`.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `MOUNT_ATTR_RDONLY`.
pub(crate) const ATTR_RDONLY: u64 = 0x0000_0001;
/// `MOUNT_ATTR_NOSUID`.
pub(crate) const ATTR_NOSUID: u64 = 0x0000_0002;
/// `MOUNT_ATTR_NODEV`.
pub(crate) const ATTR_NODEV: u64 = 0x0000_0004;
/// `MOUNT_ATTR_NOEXEC`.
pub(crate) const ATTR_NOEXEC: u64 = 0x0000_0008;
/// `MOUNT_ATTR_IDMAP`.
const ATTR_IDMAP: u64 = 0x0010_0000;

const AT_RECURSIVE: libc::c_uint = 0x8000;
const AT_EMPTY_PATH: libc::c_uint = libc::AT_EMPTY_PATH as libc::c_uint;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x0000_0004;
const MOVE_MOUNT_T_SYMLINKS: libc::c_uint = 0x0000_0010;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Add mount attributes (`ATTR_*`) to the mount at `path`, and to every mount below it when
/// `recursive`. Unlike `MS_REMOUNT`, this only adds flags, so it works on mounts whose other
/// flags are locked inside a user namespace.
pub(crate) fn set_attrs(path: &Path, attrs: u64, recursive: bool) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: attrs,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { AT_RECURSIVE } else { 0 };
    mount_setattr(libc::AT_FDCWD, &c_path(path)?, flags, &attr)
}

/// Give the detached mount `mount` the idmapping of the user namespace `userns`, plus the
/// attributes `attrs`. Must happen before the mount is attached anywhere.
pub(crate) fn set_idmap(
    mount: BorrowedFd<'_>,
    userns: BorrowedFd<'_>,
    attrs: u64,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: ATTR_IDMAP | attrs,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    mount_setattr(mount.as_raw_fd(), c"", AT_EMPTY_PATH, &attr)
}

/// A detached copy of the mount at `fd`, without the mounts below it (unlike the recursive
/// plain binds): `open_tree` with `OPEN_TREE_CLONE`. Needs `CAP_SYS_ADMIN` over the caller's
/// mount namespace.
pub(crate) fn clone_detached(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: the path is a static empty C string, `fd` a descriptor borrowed for the call;
    // on success the kernel returns a new descriptor that nothing else owns.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            fd.as_raw_fd(),
            c"".as_ptr(),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `rc` is a fresh descriptor returned by open_tree, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as RawFd) })
}

/// Attach the detached mount `mount` at `target` (`move_mount`), following symlinks in
/// `target` as `mount(2)` does (so `/proc/self/fd/N` names the directory N refers to).
pub(crate) fn attach(mount: BorrowedFd<'_>, target: &Path) -> io::Result<()> {
    let ctarget = c_path(target)?;
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call, and `mount`
    // is a descriptor borrowed for it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            ctarget.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS,
        )
    };
    zero_or_errno(rc)
}

/// `mount_setattr(dirfd, path, flags, attr, sizeof *attr)`.
fn mount_setattr(
    dirfd: RawFd,
    path: &CStr,
    flags: libc::c_uint,
    attr: &MountAttr,
) -> io::Result<()> {
    // SAFETY: `path` is a valid NUL-terminated string and `attr` a properly laid out
    // `struct mount_attr`, both borrowed for the call; the size argument matches `attr`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    zero_or_errno(rc)
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

fn zero_or_errno(rc: libc::c_long) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
