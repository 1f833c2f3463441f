//! File operations inside a running sandbox: what `standin cp` and the SDK's file API run.
//!
//! An operation is a [`Job`](crate::spec::Job) like a command: the exec helper joins the
//! sandbox's namespaces (its mount namespace makes the sandbox's root `/`), forks, drops every
//! privilege exactly as a workload does (the image's user, capabilities, landlock, seccomp),
//! and only then runs [`main`]. A path is therefore resolved by the kernel inside the
//! sandbox: a symlink to `/etc/shadow` is the sandbox's own `/etc/shadow`, `../../` stops at
//! the sandbox's root, and nothing the sandbox could not write itself can be written.
//!
//! Data moves over the helper's standard streams: file contents or a tar stream on stdin or
//! stdout, a JSON listing on stdout, an error message on stderr. The host side treats all of
//! it as hostile (the sandbox may have tampered with the process).

use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Exit code of a file operation whose path does not exist.
pub const EXIT_NOT_FOUND: i32 = 2;
/// Exit code of a file operation that failed otherwise (the reason is on stderr).
pub const EXIT_FAILED: i32 = 1;

/// One file operation, run inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileOp {
    /// Copy the regular file at `path` to stdout.
    Read {
        /// Absolute path inside the sandbox.
        path: PathBuf,
    },
    /// Replace (or create) the file at `path` with stdin.
    Write {
        /// Absolute path inside the sandbox.
        path: PathBuf,
        /// Permission bits for a new file (default 0644, less the umask).
        mode: Option<u32>,
    },
    /// The entries of the directory at `path`, as a JSON array of [`FileEntry`], sorted by
    /// name.
    List {
        /// Absolute path inside the sandbox.
        path: PathBuf,
    },
    /// What is at `path` (not following a final symlink), as one JSON [`FileEntry`].
    Stat {
        /// Absolute path inside the sandbox.
        path: PathBuf,
    },
    /// Remove the file, symlink or (with `recursive`, non-empty) directory at `path`.
    Remove {
        /// Absolute path inside the sandbox.
        path: PathBuf,
        /// Remove a directory with everything in it.
        recursive: bool,
    },
    /// Write `path` (a file, symlink or directory tree; symlinks are kept as symlinks) to
    /// stdout as a tar stream whose one top-level entry is `path`'s file name.
    Pack {
        /// Absolute path inside the sandbox.
        path: PathBuf,
    },
    /// Unpack the tar stream on stdin (one top-level entry) to `dest`: into it when it is an
    /// existing directory, else as `dest` itself (its parent must exist), as `docker cp`
    /// does.
    Unpack {
        /// Absolute path inside the sandbox.
        dest: PathBuf,
    },
}

impl FileOp {
    /// The path the operation is about.
    pub fn path(&self) -> &Path {
        match self {
            FileOp::Read { path }
            | FileOp::Write { path, .. }
            | FileOp::List { path }
            | FileOp::Stat { path }
            | FileOp::Remove { path, .. }
            | FileOp::Pack { path } => path,
            FileOp::Unpack { dest } => dest,
        }
    }
}

/// What kind of file an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (device, FIFO, socket).
    Other,
}

impl FileKind {
    /// `file`, `dir`, `symlink` or `other` (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::File => "file",
            FileKind::Dir => "dir",
            FileKind::Symlink => "symlink",
            FileKind::Other => "other",
        }
    }
}

/// One file, as [`FileOp::List`] and [`FileOp::Stat`] describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The file name (for `Stat`, the path asked about).
    pub name: String,
    /// What it is.
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits (`0o7777` at most).
    pub mode: u32,
    /// Last modification, in seconds since the epoch.
    pub modified: i64,
    /// Where a symlink points (as written in the link, not resolved).
    pub link: Option<String>,
}

impl FileEntry {
    fn of(name: String, path: &Path, meta: &std::fs::Metadata) -> FileEntry {
        let ft = meta.file_type();
        let kind = if ft.is_symlink() {
            FileKind::Symlink
        } else if ft.is_dir() {
            FileKind::Dir
        } else if ft.is_file() {
            FileKind::File
        } else {
            FileKind::Other
        };
        let link = (kind == FileKind::Symlink)
            .then(|| std::fs::read_link(path).ok())
            .flatten()
            .map(|t| t.to_string_lossy().into_owned());
        FileEntry {
            name,
            kind,
            size: meta.len(),
            mode: meta.mode() & 0o7777,
            modified: meta.mtime(),
            link,
        }
    }
}

/// Run `op` (already unprivileged, inside the sandbox); returns the exit code.
pub(crate) fn main(op: &FileOp) -> i32 {
    let path = op.path();
    if !path.is_absolute() {
        eprintln!("{}: give an absolute path", path.display());
        return EXIT_FAILED;
    }
    match run(op) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            if e.kind() == io::ErrorKind::NotFound {
                EXIT_NOT_FOUND
            } else {
                EXIT_FAILED
            }
        }
    }
}

fn run(op: &FileOp) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    match op {
        FileOp::Read { path } => {
            let mut f = std::fs::File::open(path)?;
            if !f.metadata()?.is_file() {
                return Err(io::Error::other("not a regular file"));
            }
            io::copy(&mut f, &mut stdout)?;
        }
        FileOp::Write { path, mode } => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(mode.unwrap_or(0o644) & 0o7777)
                .open(path)?;
            io::copy(&mut io::stdin().lock(), &mut f)?;
            if let Some(mode) = mode {
                f.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))?;
            }
        }
        FileOp::List { path } => {
            let mut entries = Vec::new();
            for e in std::fs::read_dir(path)? {
                let e = e?;
                let meta = e.path().symlink_metadata()?;
                let name = e.file_name().to_string_lossy().into_owned();
                entries.push(FileEntry::of(name, &e.path(), &meta));
            }
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            serde_json::to_writer(&mut stdout, &entries)?;
        }
        FileOp::Stat { path } => {
            let meta = path.symlink_metadata()?;
            let name = path.to_string_lossy().into_owned();
            serde_json::to_writer(&mut stdout, &FileEntry::of(name, path, &meta))?;
        }
        FileOp::Remove { path, recursive } => {
            let meta = path.symlink_metadata()?;
            if !meta.is_dir() {
                std::fs::remove_file(path)?;
            } else if *recursive {
                std::fs::remove_dir_all(path)?;
            } else {
                std::fs::remove_dir(path)?;
            }
        }
        FileOp::Pack { path } => {
            let name = top_name(path)?;
            let meta = path.symlink_metadata()?;
            let mut tar = tar::Builder::new(&mut stdout);
            tar.follow_symlinks(false);
            if meta.is_dir() {
                tar.append_dir_all(&name, path)?;
            } else {
                tar.append_path_with_name(path, &name)?;
            }
            tar.into_inner()?.flush()?;
        }
        FileOp::Unpack { dest } => {
            let (base, rename) = match dest.metadata() {
                Ok(m) if m.is_dir() => (dest.clone(), None),
                _ => {
                    let parent = dest.parent().unwrap_or(Path::new("/"));
                    (parent.to_owned(), Some(top_name(dest)?))
                }
            };
            let mut archive = tar::Archive::new(io::stdin().lock());
            archive.set_preserve_permissions(true);
            archive.set_overwrite(true);
            for entry in archive.entries()? {
                let mut entry = entry?;
                let target = base.join(entry_path(&entry.path()?, rename.as_deref())?);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                entry.unpack(&target)?;
            }
        }
    }
    Ok(())
}

/// The file name a packed path travels under (`/` travels as `root`).
fn top_name(path: &Path) -> io::Result<String> {
    match path.file_name() {
        Some(n) => Ok(n.to_string_lossy().into_owned()),
        None if path == Path::new("/") => Ok("root".into()),
        None => Err(io::Error::other("name a file or directory, not `..`")),
    }
}

/// A tar entry's path, checked (relative, only normal components), with its top-level
/// component replaced by `rename` when given.
pub fn entry_path(path: &Path, rename: Option<&str>) -> io::Result<PathBuf> {
    let mut out = PathBuf::new();
    for (i, c) in path.components().enumerate() {
        match c {
            Component::Normal(part) if out.as_os_str().is_empty() => {
                out.push(rename.map_or(part, |r| r.as_ref()))
            }
            Component::Normal(part) => out.push(part),
            Component::CurDir if i == 0 => continue,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "refusing archive entry {}: only relative paths without `..`",
                        path.display()
                    ),
                ));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "refusing an archive entry with an empty path",
        ));
    }
    Ok(out)
}

/// Read at most `limit` bytes from `r`; more is an error naming the limit.
pub fn read_capped(mut r: impl Read, limit: u64, what: &str) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.by_ref().take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(io::Error::other(format!(
            "{what} is larger than {limit} bytes"
        )));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_stay_below_their_base() {
        let ok = |p: &str, r: Option<&str>| entry_path(Path::new(p), r).unwrap();
        assert_eq!(ok("a/b", None), PathBuf::from("a/b"));
        assert_eq!(ok("./a/b", Some("x")), PathBuf::from("x/b"));
        assert_eq!(ok("a", Some("x")), PathBuf::from("x"));
        for bad in ["/etc/passwd", "a/../../b", "../a", "", "."] {
            assert!(entry_path(Path::new(bad), None).is_err(), "{bad}");
        }
    }

    #[test]
    fn capped_reads_name_the_limit() {
        assert_eq!(read_capped(&b"abc"[..], 3, "x").unwrap(), b"abc");
        let err = read_capped(&b"abcd"[..], 3, "the file").unwrap_err();
        assert!(err.to_string().contains("larger than 3 bytes"), "{err}");
    }
}
