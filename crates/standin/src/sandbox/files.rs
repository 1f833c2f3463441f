//! The file API of a [`Sandbox`] ([`Sandbox::fs`]): read, write, list, stat, remove, and copy trees between
//! the host and the sandbox.
//!
//! Every operation runs inside the sandbox as its user (see `standin_sandbox::files`), so a
//! path is resolved against the sandbox's own root: its symlinks can never point the host
//! side at a host file. What comes back is hostile input: reads are capped, listings parsed
//! strictly, and a tree copied out is unpacked by [`extract_untrusted`], which writes only
//! below the destination.

use super::Sandbox;
use super::launch::{Collected, Input, Output, Task};
use crate::Error;
use standin_sandbox::files::{EXIT_NOT_FOUND, FileOp, entry_path};
pub use standin_sandbox::files::{FileEntry, FileKind};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Largest file [`Sandbox::read`] returns (use [`Sandbox::copy_to_host`] for larger ones).
pub const MAX_READ_BYTES: u64 = 256 << 20;
/// Largest listing or stat answer accepted from the sandbox.
const MAX_LISTING_BYTES: u64 = 64 << 20;

/// The files of a sandbox, from [`Sandbox::fs`].
#[derive(Debug, Clone, Copy)]
pub struct SandboxFs<'a> {
    sandbox: &'a Sandbox,
}

impl Sandbox {
    /// Its files: read, write, list, copy in and out.
    ///
    /// ```no_run
    /// # async fn demo(sb: &standin::Sandbox) -> Result<(), standin::Error> {
    /// sb.fs().write("/workspace/task.json", br#"{"goal": "triage"}"#.to_vec()).await?;
    /// let report = sb.fs().read_to_string("/workspace/report.md").await?;
    /// sb.fs().copy_to_host("/workspace/out", "./out").await?;
    /// # let _ = report;
    /// # Ok(()) }
    /// ```
    pub fn fs(&self) -> SandboxFs<'_> {
        SandboxFs { sandbox: self }
    }
}

impl SandboxFs<'_> {
    async fn file_op(&self, op: FileOp, input: Input, output: Output) -> Result<Collected, Error> {
        check_inside(op.path())?;
        self.sandbox.collect(Task::Files(op), input, output).await
    }

    /// Write `data` to `path` in the sandbox (created, or replaced), as the sandbox's user.
    pub async fn write(&self, path: &str, data: impl Into<Vec<u8>>) -> Result<(), Error> {
        let op = FileOp::Write {
            path: path.into(),
            mode: None,
        };
        let out = self
            .file_op(op, Input::Bytes(data.into()), Output::Collect(0))
            .await?;
        succeeded("write", path, out).map(drop)
    }

    /// The contents of the regular file at `path` (at most [`MAX_READ_BYTES`]).
    pub async fn read(&self, path: &str) -> Result<Vec<u8>, Error> {
        let op = FileOp::Read { path: path.into() };
        let out = self
            .file_op(op, Input::Null, Output::Collect(MAX_READ_BYTES))
            .await?;
        succeeded("read", path, out)
    }

    /// The contents of the file at `path` as UTF-8 text.
    pub async fn read_to_string(&self, path: &str) -> Result<String, Error> {
        String::from_utf8(self.read(path).await?)
            .map_err(|_| Error::Io(io::Error::other(format!("read {path}: not UTF-8 text"))))
    }

    /// An operation whose answer is JSON (checked strictly: it comes from the sandbox).
    async fn json_answer<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        op: FileOp,
    ) -> Result<T, Error> {
        let path = op.path().display().to_string();
        let out = self
            .file_op(op, Input::Null, Output::Collect(MAX_LISTING_BYTES))
            .await?;
        let json = succeeded(what, &path, out)?;
        serde_json::from_slice(&json)
            .map_err(|e| Error::Io(io::Error::other(format!("{what} {path}: bad answer: {e}"))))
    }

    /// The entries of the directory at `path`, sorted by name.
    pub async fn list(&self, path: &str) -> Result<Vec<FileEntry>, Error> {
        self.json_answer("list", FileOp::List { path: path.into() })
            .await
    }

    /// What is at `path` (a final symlink is described, not followed).
    pub async fn stat(&self, path: &str) -> Result<FileEntry, Error> {
        self.json_answer("stat", FileOp::Stat { path: path.into() })
            .await
    }

    /// Whether anything (a dangling symlink too) is at `path`.
    pub async fn exists(&self, path: &str) -> Result<bool, Error> {
        let op = FileOp::Stat { path: path.into() };
        let out = self
            .file_op(op, Input::Null, Output::Collect(MAX_LISTING_BYTES))
            .await?;
        match out.code {
            0 => Ok(true),
            EXIT_NOT_FOUND => Ok(false),
            _ => succeeded("exists", path, out).map(|_| false),
        }
    }

    /// Remove the file, symlink or directory (with everything in it) at `path`.
    pub async fn remove(&self, path: &str) -> Result<(), Error> {
        let op = FileOp::Remove {
            path: path.into(),
            recursive: true,
        };
        let out = self.file_op(op, Input::Null, Output::Collect(0)).await?;
        succeeded("remove", path, out).map(drop)
    }

    /// Copy the host file or directory `host` into the sandbox: into `path` when it is an
    /// existing directory, else as `path` (as `docker cp` does). Modes are kept; the copies
    /// belong to the sandbox's user. Host symlinks are copied as symlinks.
    pub async fn copy_from_host(&self, host: impl AsRef<Path>, path: &str) -> Result<(), Error> {
        let host = std::fs::canonicalize(host.as_ref()).map_err(|e| {
            Error::Io(io::Error::new(
                e.kind(),
                format!("copy from {}: {e}", host.as_ref().display()),
            ))
        })?;
        let name = host
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "root".into());
        let writer = move |w: std::io::PipeWriter| -> io::Result<()> {
            let mut tar = tar::Builder::new(w);
            tar.follow_symlinks(false);
            if host.is_dir() {
                tar.append_dir_all(&name, &host)?;
            } else {
                tar.append_path_with_name(&host, &name)?;
            }
            tar.finish()
        };
        let op = FileOp::Unpack { dest: path.into() };
        let out = self
            .file_op(op, Input::Writer(Box::new(writer)), Output::Collect(0))
            .await?;
        succeeded("copy into", path, out).map(drop)
    }

    /// Copy the file or directory at `path` in the sandbox to the host: into `host` when it
    /// is an existing directory, else as `host` (its parent must exist). Modes are kept less
    /// set-user-ID, set-group-ID and sticky bits; the copies belong to this process's user.
    /// Symlinks are copied as symlinks; devices and FIFOs are skipped. Nothing is written
    /// outside the destination, whatever the sandbox sends.
    pub async fn copy_to_host(&self, path: &str, host: impl AsRef<Path>) -> Result<(), Error> {
        let (base, name) = host_destination(host.as_ref(), path)?;
        let reader = move |r: std::io::PipeReader| extract_untrusted(r, &base, &name);
        let op = FileOp::Pack { path: path.into() };
        let out = self
            .file_op(op, Input::Null, Output::Reader(Box::new(reader)))
            .await?;
        succeeded("copy from", path, out).map(drop)
    }
}

/// Paths inside must be absolute and free of `..` (they are resolved inside the sandbox
/// either way; this catches mistakes early).
fn check_inside(path: &Path) -> Result<(), Error> {
    if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return Err(Error::config(format!(
            "{}: give an absolute path inside the sandbox, without `..`",
            path.display()
        )));
    }
    Ok(())
}

/// The task's stdout when it succeeded; otherwise an error with its message.
fn succeeded(what: &str, path: &str, out: Collected) -> Result<Vec<u8>, Error> {
    if out.code == 0 {
        return Ok(out.stdout);
    }
    let msg = String::from_utf8_lossy(&out.stderr);
    let msg = msg.trim();
    let kind = if out.code == EXIT_NOT_FOUND {
        io::ErrorKind::NotFound
    } else {
        io::ErrorKind::Other
    };
    let detail = if msg.is_empty() {
        format!("exit status {}", out.code)
    } else {
        msg.to_owned()
    };
    Err(Error::Io(io::Error::new(
        kind,
        format!("{what} {path} in the sandbox: {detail}"),
    )))
}

/// Where a copy out lands: the directory to unpack in, and the top-level name.
fn host_destination(host: &Path, inside: &str) -> Result<(PathBuf, String), Error> {
    let inside_name = Path::new(inside)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    if host.is_dir() {
        return Ok((host.to_owned(), inside_name));
    }
    let parent = match host.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = host.file_name().ok_or_else(|| {
        Error::config(format!(
            "copy to {}: name a file or directory to create",
            host.display()
        ))
    })?;
    if !parent.is_dir() {
        return Err(Error::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "copy to {}: {} is not a directory",
                host.display(),
                parent.display()
            ),
        )));
    }
    Ok((parent, name.to_string_lossy().into_owned()))
}

/// Unpack a tar stream from the sandbox below `base`, its top-level entry renamed to `name`.
///
/// The stream is hostile: every entry path must be relative without `..`, and its first
/// component is replaced by `name`, so nothing lands beside the destination; no entry is written through a symlink (every existing component
/// below `base` is checked not to be one, and nothing else writes there meanwhile); only
/// files, directories and symlinks are created, hard links and special files are refused or
/// skipped; permission bits lose set-ID and sticky bits.
pub(crate) fn extract_untrusted(r: impl Read, base: &Path, name: &str) -> io::Result<()> {
    let mut archive = tar::Archive::new(r);
    let mut any = false;
    for entry in archive.entries()? {
        let mut entry = entry?;
        any = true;
        // Every entry's first component becomes `name`: nothing lands beside it.
        let rel = entry_path(&entry.path()?, Some(name))?;
        let target = base.join(&rel);
        no_symlink_between(base, &rel)?;
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        match kind {
            tar::EntryType::Directory => {
                match std::fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => std::fs::remove_file(&target)?,
                    Err(_) => {}
                }
                std::fs::create_dir_all(&target)?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode | 0o700))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if std::fs::symlink_metadata(&target).is_ok_and(|m| !m.is_dir()) {
                    std::fs::remove_file(&target)?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)?;
                io::copy(&mut entry, &mut f)?;
                f.set_permissions(std::fs::Permissions::from_mode(mode))?;
            }
            tar::EntryType::Symlink => {
                let link = entry.link_name()?.ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "a symlink without a target")
                })?;
                if std::fs::symlink_metadata(&target).is_ok_and(|m| !m.is_dir()) {
                    std::fs::remove_file(&target)?;
                }
                std::os::unix::fs::symlink(link, &target)?;
            }
            tar::EntryType::Link => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("refusing hard link {} from the sandbox", rel.display()),
                ));
            }
            // Devices, FIFOs and extension headers: nothing to create on the host.
            _ => {}
        }
    }
    if !any {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the sandbox sent an empty archive",
        ));
    }
    Ok(())
}

/// Fail when any existing component of `rel` below `base` (the last one excepted, which is
/// replaced) is a symlink, or is not a directory.
fn no_symlink_between(base: &Path, rel: &Path) -> io::Result<()> {
    let mut at = base.to_owned();
    let parts: Vec<_> = rel.components().collect();
    for c in &parts[..parts.len().saturating_sub(1)] {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "refusing to write below {}: not a directory (a symlink?)",
                        at.display()
                    ),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("archive entry {} comes before its directory", rel.display()),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn header(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o4755);
        h
    }

    #[test]
    fn a_tree_lands_renamed_with_set_id_bits_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let tar = archive(|b| {
            b.append_data(&mut header(tar::EntryType::Directory, 0), "out", &[][..])
                .unwrap();
            b.append_data(&mut header(tar::EntryType::Regular, 2), "out/a", &b"hi"[..])
                .unwrap();
        });
        extract_untrusted(&tar[..], dir.path(), "copy").unwrap();
        let a = dir.path().join("copy/a");
        assert_eq!(std::fs::read(&a).unwrap(), b"hi");
        let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755);
    }

    #[test]
    fn nothing_is_written_through_a_symlink_sent_first() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let tar = archive(|b| {
            b.append_data(&mut header(tar::EntryType::Directory, 0), "t", &[][..])
                .unwrap();
            let mut h = header(tar::EntryType::Symlink, 0);
            b.append_link(&mut h, "t/esc", outside.path()).unwrap();
            b.append_data(
                &mut header(tar::EntryType::Regular, 1),
                "t/esc/x",
                &b"!"[..],
            )
            .unwrap();
        });
        let err = extract_untrusted(&tar[..], dir.path(), "t").unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
        assert!(!outside.path().join("x").exists());
    }

    #[test]
    fn a_second_top_level_entry_lands_as_the_destination_and_hard_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let two = archive(|b| {
            b.append_data(&mut header(tar::EntryType::Regular, 1), "a", &b"1"[..])
                .unwrap();
            b.append_data(&mut header(tar::EntryType::Regular, 1), "b", &b"2"[..])
                .unwrap();
        });
        extract_untrusted(&two[..], dir.path(), "n").unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["n"]);
        assert_eq!(std::fs::read(dir.path().join("n")).unwrap(), b"2");
        let link = archive(|b| {
            b.append_data(&mut header(tar::EntryType::Directory, 0), "d", &[][..])
                .unwrap();
            let mut h = header(tar::EntryType::Link, 0);
            b.append_link(&mut h, "d/l", "/etc/shadow").unwrap();
        });
        let err = extract_untrusted(&link[..], dir.path(), "d2").unwrap_err();
        assert!(err.to_string().contains("hard link"), "{err}");
    }
}
