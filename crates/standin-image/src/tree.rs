//! Removing a directory tree relative to a directory descriptor, without following symlinks
//! and whatever the modes inside say (an unprivileged owner may need to add write and search
//! permission to a directory first).

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, chmodat, openat, statat, unlinkat};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

/// Remove `name` (a directory or anything else) inside `parent`. A missing entry is fine.
pub(crate) fn remove_at(parent: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let st = match statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Ok(unlinkat(parent, name, AtFlags::empty())?);
    }
    // Owner (or root) may always chmod; make sure the directory can be listed and emptied.
    let _ = chmodat(parent, name, Mode::from_raw_mode(0o700), AtFlags::empty());
    let dir = openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for entry in Dir::read_from(&dir)? {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    for n in names {
        remove_at(dir.as_fd(), &n)?;
    }
    Ok(unlinkat(parent, name, AtFlags::REMOVEDIR)?)
}

/// Remove the tree at `path` (its last component is not followed if it is a symlink).
pub(crate) fn remove_path(path: &Path) -> io::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let Some(name) = path.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to remove a path without a final component",
        ));
    };
    let pfd = openat(
        rustix::fs::CWD,
        parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    remove_at(pfd.as_fd(), name.as_encoded_bytes())
}
