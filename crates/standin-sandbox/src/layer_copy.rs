//! The copy fallback for image roots: where overlayfs cannot be mounted (an old kernel, a
//! store on a file system overlayfs cannot stack, or `STANDIN_IMAGE_ROOT=copy`), the layers
//! are copied, bottom first, into a tmpfs with overlayfs's own rules:
//!
//! - a whiteout (character device 0:0) removes what the layers below put at its name;
//! - a directory marked opaque (`user.overlay.opaque=y`) hides everything below it;
//! - a directory over a directory merges; anything else replaces what was there.
//!
//! Starting costs a copy of the image (measured in docs/PERFORMANCE.md), and memory holds the
//! whole root, so it is a fallback, never the default.
//!
//! The destination is built from earlier layers, so any directory in it may have been a
//! symlink: every step works on descriptors (`openat` with `O_NOFOLLOW`, `mkdirat`,
//! `unlinkat`, `symlinkat`), never on paths, and nothing is ever followed. Files keep their
//! mode, owner and modification time; hard links within a layer become separate copies;
//! extended attributes other than the overlay markers are not copied.

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmodat, fstatat, mkdirat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchownat, symlinkat, unlinkat};
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Directory depth beyond which a layer is refused (the unpacker's path limit bounds it too).
const MAX_DEPTH: usize = 512;
/// The xattr that marks an opaque directory in the store (see standin-image's unpacker).
const OPAQUE_XATTR: &CStr = c"user.overlay.opaque";

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Copy each of `layers` (directories, bottom first) onto `root`.
pub(crate) fn copy_layers(layers: &[OwnedFd], root: &OwnedFd) -> Result<(), String> {
    for (i, layer) in layers.iter().enumerate() {
        merge_dir(layer.as_fd(), root.as_fd(), 0)
            .map_err(|e| format!("copying image layer {} of {}: {e}", i + 1, layers.len()))?;
    }
    Ok(())
}

/// Merge the directory `src` into `dst`.
fn merge_dir(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("directories nested deeper than {MAX_DEPTH}"));
    }
    let mut entries = Dir::openat(src, c".", DIR_FLAGS, Mode::empty()).map_err(err("opendir"))?;
    for name in entry_names(&mut entries)? {
        let st =
            fstatat(src, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(err("stat"))?;
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        let existing = fstatat(dst, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .ok()
            .map(|s| SFlag::from_bits_truncate(s.st_mode & SFlag::S_IFMT.bits()));
        let is_whiteout = kind == SFlag::S_IFCHR && st.st_rdev == 0;
        if is_whiteout {
            if existing.is_some() {
                remove_entry(dst, &name, depth)?;
            }
            continue;
        }
        if kind == SFlag::S_IFDIR {
            let s = openat(src, name.as_c_str(), DIR_FLAGS, Mode::empty())
                .map_err(err("open layer dir"))?;
            let opaque = is_opaque(&s);
            match existing {
                Some(SFlag::S_IFDIR) if !opaque => {}
                Some(_) => {
                    remove_entry(dst, &name, depth)?;
                    mkdirat(dst, name.as_c_str(), Mode::from_bits_truncate(0o700))
                        .map_err(err("mkdir"))?;
                }
                None => mkdirat(dst, name.as_c_str(), Mode::from_bits_truncate(0o700))
                    .map_err(err("mkdir"))?,
            }
            let d = openat(dst, name.as_c_str(), DIR_FLAGS, Mode::empty())
                .map_err(err("open copied dir"))?;
            merge_dir(s.as_fd(), d.as_fd(), depth + 1)?;
            set_metadata(dst, &name, &st)?;
            continue;
        }
        if existing.is_some() {
            remove_entry(dst, &name, depth)?;
        }
        match kind {
            SFlag::S_IFREG => copy_file(src, dst, &name)?,
            SFlag::S_IFLNK => {
                let target = readlinkat(src, name.as_c_str()).map_err(err("readlink"))?;
                symlinkat(target.as_os_str(), dst, name.as_c_str()).map_err(err("symlink"))?;
            }
            // The unpacker stores no devices, sockets or FIFOs other than whiteouts.
            _ => continue,
        }
        set_metadata(dst, &name, &st)?;
    }
    Ok(())
}

fn copy_file(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, name: &CStr) -> Result<(), String> {
    let from = openat(
        src,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(err("open layer file"))?;
    let to = openat(
        dst,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(err("create"))?;
    let mut from = std::fs::File::from(from);
    let mut to = std::fs::File::from(to);
    std::io::copy(&mut from, &mut to).map_err(|e| format!("copy: {e}"))?;
    Ok(())
}

/// Owner, mode (not for symlinks) and times of `name` in `dir`, from `st`.
fn set_metadata(
    dir: BorrowedFd<'_>,
    name: &CStr,
    st: &nix::sys::stat::FileStat,
) -> Result<(), String> {
    let link = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFLNK;
    fchownat(
        dir,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(err("chown"))?;
    if !link {
        fchmodat(
            dir,
            name,
            Mode::from_bits_truncate(st.st_mode & 0o7777),
            FchmodatFlags::FollowSymlink,
        )
        .map_err(err("chmod"))?;
    }
    let times = [
        TimeSpec::new(st.st_atime, st.st_atime_nsec),
        TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
    ];
    nix::sys::stat::utimensat(
        dir,
        name,
        &times[0],
        &times[1],
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(err("utimensat"))
}

fn is_opaque(dir: &OwnedFd) -> bool {
    let mut value = [0u8; 4];
    rustix::fs::fgetxattr(dir, OPAQUE_XATTR, &mut value).is_ok_and(|n| value[..n] == *b"y")
}

/// Remove `name` from `dir`, a whole tree if it is a directory, never following symlinks.
fn remove_entry(dir: BorrowedFd<'_>, name: &CStr, depth: usize) -> Result<(), String> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) => {}
        Err(e) => return Err(format!("unlink: {e}")),
    }
    if depth > MAX_DEPTH {
        return Err(format!("directories nested deeper than {MAX_DEPTH}"));
    }
    let sub = openat(dir, name, DIR_FLAGS, Mode::empty()).map_err(err("open for removal"))?;
    let mut entries = Dir::openat(sub.as_fd(), c".", DIR_FLAGS, Mode::empty())
        .map_err(err("opendir for removal"))?;
    for n in entry_names(&mut entries)? {
        remove_entry(sub.as_fd(), &n, depth + 1)?;
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir).map_err(err("rmdir"))
}

/// The names in a directory, without `.` and `..`. A read error fails the copy: a missed
/// whiteout would show a file the image deleted.
fn entry_names(dir: &mut Dir) -> Result<Vec<CString>, String> {
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(err("readdir"))?;
        if !matches!(entry.file_name().to_bytes(), b"." | b"..") {
            names.push(entry.file_name().to_owned());
        }
    }
    Ok(names)
}

fn err(what: &'static str) -> impl Fn(Errno) -> String {
    move |e| format!("{what}: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::Path;

    fn dir_fd(p: &Path) -> OwnedFd {
        nix::fcntl::open(p, DIR_FLAGS, Mode::empty()).unwrap()
    }

    fn whiteout(p: &Path) {
        nix::sys::stat::mknod(p, SFlag::S_IFCHR, Mode::from_bits_truncate(0o000), 0).unwrap();
    }

    /// Layers with files, links, a whiteout, an opaque directory and a symlink an upper
    /// layer replaces with a directory: the merged copy matches overlayfs, and nothing is
    /// written through the lower layer's symlink.
    #[test]
    #[ignore = "needs root (whiteouts are character devices); .ci/run runs it with --include-ignored"]
    fn layers_merge_as_overlayfs_would() {
        let t = tempfile::tempdir().unwrap();
        let (l1, l2, root, victim) = (
            t.path().join("l1"),
            t.path().join("l2"),
            t.path().join("root"),
            t.path().join("victim"),
        );
        for d in [&l1, &l2, &root, &victim] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::create_dir_all(l1.join("etc/old")).unwrap();
        std::fs::write(l1.join("etc/old/a"), "old").unwrap();
        std::fs::write(l1.join("etc/keep"), "keep").unwrap();
        std::fs::write(l1.join("etc/doomed"), "doomed").unwrap();
        std::fs::create_dir(l1.join("opaque")).unwrap();
        std::fs::write(l1.join("opaque/hidden"), "hidden").unwrap();
        std::os::unix::fs::symlink(&victim, l1.join("redirect")).unwrap();
        std::fs::write(l1.join("bin"), "x").unwrap();
        std::fs::set_permissions(l1.join("bin"), std::fs::Permissions::from_mode(0o751)).unwrap();

        std::fs::create_dir(l2.join("etc")).unwrap();
        whiteout(&l2.join("etc/doomed"));
        whiteout(&l2.join("etc/old"));
        std::fs::write(l2.join("etc/new"), "new").unwrap();
        std::fs::create_dir(l2.join("opaque")).unwrap();
        rustix::fs::setxattr(
            l2.join("opaque"),
            OPAQUE_XATTR,
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        std::fs::write(l2.join("opaque/shown"), "shown").unwrap();
        std::fs::create_dir(l2.join("redirect")).unwrap();
        std::fs::write(l2.join("redirect/planted"), "planted").unwrap();

        copy_layers(&[dir_fd(&l1), dir_fd(&l2)], &dir_fd(&root)).unwrap();
        let read = |p: &str| std::fs::read_to_string(root.join(p)).ok();
        assert_eq!(read("etc/keep").as_deref(), Some("keep"));
        assert_eq!(read("etc/new").as_deref(), Some("new"));
        assert!(!root.join("etc/doomed").exists());
        assert!(!root.join("etc/old").exists());
        assert_eq!(read("opaque/shown").as_deref(), Some("shown"));
        assert!(!root.join("opaque/hidden").exists());
        assert!(root.join("redirect").is_dir() && !root.join("redirect").is_symlink());
        assert_eq!(read("redirect/planted").as_deref(), Some("planted"));
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
        let m = std::fs::metadata(root.join("bin")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o751);
        // The layers themselves are untouched.
        assert!(l1.join("etc/doomed").exists() && l1.join("redirect").is_symlink());
    }
}
