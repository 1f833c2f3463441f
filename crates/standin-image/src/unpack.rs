//! Unpacking one layer (an uncompressed tar stream) into an empty directory, treating every
//! byte as hostile.
//!
//! Why not `tar::Archive::unpack`: layers must become overlayfs lower directories, so OCI
//! whiteouts turn into overlayfs whiteouts (a `0:0` character device, and the
//! `user.overlay.opaque` attribute that overlayfs reads when mounted inside a user
//! namespace), ownership is mapped into the sandbox's uid range, and PAX and GNU long-name
//! records are read with a size limit (the crate reads them whole, whatever their size). The
//! crate still parses the headers; this module decides what each entry may do.
//!
//! Rules:
//! - Paths are relative: an absolute path, or any `..` component, refuses the layer.
//! - Every parent is opened from the layer root one component at a time with `O_NOFOLLOW`,
//!   so nothing is ever written through a symlink (one the layer made earlier included): a
//!   path through a symlink refuses the layer. Missing parents are created.
//! - Hard links must point at a non-directory this layer already holds, found the same way.
//! - Device nodes are skipped (a sandbox mounts nothing with device access); FIFOs are kept.
//! - Set-user-ID and set-group-ID bits are cleared on files: the sandbox never honours them
//!   (`no_new_privs`) and the store must not hold set-ID programs owned by host uids.
//! - Extended attributes: `user.*` only, and never `user.overlay.*` (a layer must not forge
//!   overlayfs metadata); `security.capability` and the rest are dropped.
//! - Sizes are bounded by [`Limits`].

use crate::error::LayerRefusal;
use crate::limits::Limits;
use crate::tree::remove_at;
use rustix::fs::{
    AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags, chownat, fchmod,
    fchown, fsetxattr, futimens, linkat, makedev, mkdirat, mknodat, openat, statat, symlinkat,
    utimensat,
};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use tar::EntryType;

/// How tar ownership becomes host ownership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    /// Host uid of sandbox uid 0.
    pub uid_base: u32,
    /// Host gid of sandbox gid 0.
    pub gid_base: u32,
    /// How many ids are mapped; ids at or beyond it become `nobody` (65534) when mapped, else
    /// the base.
    pub len: u32,
    /// Whether to chown at all (an unprivileged user cannot; everything is then owned by them
    /// and appears as root inside the sandbox).
    pub chown: bool,
}

impl Ownership {
    /// Map a sandbox uid to a host uid.
    pub fn host_uid(&self, id: u64) -> u32 {
        self.uid_base.saturating_add(self.inside(id))
    }

    /// Map a sandbox gid to a host gid.
    pub fn host_gid(&self, id: u64) -> u32 {
        self.gid_base.saturating_add(self.inside(id))
    }

    fn inside(&self, id: u64) -> u32 {
        match u32::try_from(id) {
            Ok(id) if id < self.len => id,
            _ if self.len > 65534 => 65534,
            _ => 0,
        }
    }
}

/// Why unpacking stopped.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The layer is refused.
    #[error(transparent)]
    Refused(#[from] LayerRefusal),
    /// Reading the stream or writing the directory failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl From<rustix::io::Errno> for UnpackError {
    fn from(e: rustix::io::Errno) -> UnpackError {
        UnpackError::Io(e.into())
    }
}

/// What a layer held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Tar entries, headers included.
    pub entries: u64,
    /// Bytes of regular-file contents.
    pub file_bytes: u64,
    /// Device nodes skipped.
    pub skipped_devices: u64,
}

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_WHITEOUT: &[u8] = b".wh..wh..opq";
/// The attribute overlayfs reads for opaque directories when mounted with `userxattr`.
pub const OPAQUE_XATTR: &str = "user.overlay.opaque";
const COPY_BUFFER: usize = 256 << 10;

/// Unpack the tar stream `input` into `dest`, an existing empty directory. Returns the reader
/// positioned after the archive's end (the caller drains it to finish its digest).
pub fn unpack<R: Read>(
    input: R,
    dest: &Path,
    owners: &Ownership,
    limits: &Limits,
) -> Result<(LayerStats, R), UnpackError> {
    let root = openat(
        rustix::fs::CWD,
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if owners.chown {
        fchown(
            &root,
            Some(uid(owners.host_uid(0))),
            Some(gid(owners.host_gid(0))),
        )?;
    }
    let mut archive = tar::Archive::new(input);
    let mut u = Unpacker {
        root,
        owners: *owners,
        limits: *limits,
        stats: LayerStats::default(),
        cache: None,
        dirs: Vec::new(),
        buf: vec![0; COPY_BUFFER],
    };
    {
        let entries = archive.entries().map_err(malformed)?.raw(true);
        let mut pending = Pending::default();
        for entry in entries {
            let entry = entry.map_err(malformed)?;
            u.entry(entry, &mut pending)?;
        }
        if pending.pax.is_some() || pending.name.is_some() || pending.link.is_some() {
            return Err(LayerRefusal::Malformed(
                "the archive ends after an extended header with no entry".into(),
            )
            .into());
        }
    }
    u.finish_dirs()?;
    Ok((u.stats, archive.into_inner()))
}

fn malformed(e: io::Error) -> UnpackError {
    if e.kind() == io::ErrorKind::UnexpectedEof || e.kind() == io::ErrorKind::Other {
        UnpackError::Refused(LayerRefusal::Malformed(format!(
            "not a valid tar stream: {e}"
        )))
    } else {
        UnpackError::Io(e)
    }
}

fn uid(raw: u32) -> Uid {
    Uid::from_raw(raw)
}

fn gid(raw: u32) -> Gid {
    Gid::from_raw(raw)
}

/// Extended-header records waiting for the entry they describe.
#[derive(Default)]
struct Pending {
    pax: Option<Vec<u8>>,
    name: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
}

/// What PAX says about one entry.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<i64>,
    size: Option<u64>,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// Metadata applied to a directory once everything inside it is written.
struct DirMeta {
    path: Vec<Vec<u8>>,
    mode: u32,
    mtime: i64,
}

struct Unpacker {
    root: OwnedFd,
    owners: Ownership,
    limits: Limits,
    stats: LayerStats,
    /// The last parent directory opened, by path: consecutive entries usually share one.
    cache: Option<(Vec<Vec<u8>>, OwnedFd)>,
    dirs: Vec<DirMeta>,
    buf: Vec<u8>,
}

impl Unpacker {
    fn entry<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        pending: &mut Pending,
    ) -> Result<(), UnpackError> {
        self.stats.entries += 1;
        if self.stats.entries > self.limits.max_entries {
            return Err(too_large("the number of entries", self.limits.max_entries));
        }
        let kind = entry.header().entry_type();
        let size = entry.header().entry_size().map_err(malformed)?;
        match kind {
            EntryType::XGlobalHeader => {
                read_limited(&mut entry, size, self.limits.max_pax, "a PAX global header")?;
                return Ok(());
            }
            EntryType::XHeader => {
                pending.pax = Some(read_limited(
                    &mut entry,
                    size,
                    self.limits.max_pax,
                    "a PAX header",
                )?);
                return Ok(());
            }
            EntryType::GNULongName | EntryType::GNULongLink => {
                let max = self.limits.max_path as u64 + 1;
                let mut v = read_limited(&mut entry, size, max, "a GNU long name")?;
                while v.last() == Some(&0) {
                    v.pop();
                }
                if kind == EntryType::GNULongName {
                    pending.name = Some(v);
                } else {
                    pending.link = Some(v);
                }
                return Ok(());
            }
            _ => {}
        }
        let pax = match pending.pax.take() {
            Some(raw) => self.parse_pax(&raw)?,
            None => Pax::default(),
        };
        if pax.size.is_some_and(|s| s != size) {
            return Err(LayerRefusal::Malformed(
                "PAX size overrides (files over 8 GiB) are not supported".into(),
            )
            .into());
        }
        let raw_path = pax
            .path
            .clone()
            .or_else(|| pending.name.take())
            .unwrap_or_else(|| entry.path_bytes().into_owned());
        pending.name = None;
        let raw_link = pax.linkpath.clone().or_else(|| pending.link.take());
        pending.link = None;
        let comps = split_path(&raw_path, self.limits.max_path)?;
        let header = entry.header();
        let mode = header.mode().map_err(malformed)?;
        let uid = pax
            .uid
            .map_or_else(|| header.uid(), Ok)
            .map_err(malformed)?;
        let gid = pax
            .gid
            .map_or_else(|| header.gid(), Ok)
            .map_err(malformed)?;
        let mtime = match pax.mtime {
            Some(t) => t,
            None => i64::try_from(header.mtime().map_err(malformed)?).unwrap_or(i64::MAX),
        };
        let link = match raw_link {
            Some(l) => Some(l),
            None => header.link_name_bytes().map(|l| l.into_owned()),
        };

        let Some((name, parents)) = comps.split_last() else {
            // The layer root itself ("./"): only its metadata.
            if kind == EntryType::Directory {
                self.dirs.push(DirMeta {
                    path: Vec::new(),
                    mode,
                    mtime,
                });
            }
            return Ok(());
        };
        let parent = self.parent(parents, &raw_path, true)?;

        if name.as_slice() == OPAQUE_WHITEOUT {
            fsetxattr(&parent, OPAQUE_XATTR, b"y", XattrFlags::empty())?;
            return Ok(());
        }
        if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
            if target.is_empty() || target == b"." || target == b".." {
                return Err(LayerRefusal::Malformed(format!(
                    "whiteout {:?} names nothing",
                    String::from_utf8_lossy(&raw_path)
                ))
                .into());
            }
            self.clear(parent.as_fd(), target)?;
            mknodat(
                &parent,
                target,
                FileType::CharacterDevice,
                Mode::empty(),
                makedev(0, 0),
            )?;
            return Ok(());
        }

        match kind {
            EntryType::Directory => {
                let exists = match statat(&parent, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => true,
                    Ok(_) => {
                        self.clear(parent.as_fd(), name)?;
                        false
                    }
                    Err(rustix::io::Errno::NOENT) => false,
                    Err(e) => return Err(io::Error::from(e).into()),
                };
                if !exists {
                    mkdirat(&parent, name.as_slice(), Mode::from_raw_mode(0o700))?;
                }
                self.chown_at(parent.as_fd(), name, uid, gid)?;
                self.set_xattrs_at(parent.as_fd(), name, &pax.xattrs, true)?;
                self.dirs.push(DirMeta {
                    path: comps.clone(),
                    mode,
                    mtime,
                });
            }
            EntryType::Regular | EntryType::Continuous => {
                if size > self.limits.max_file {
                    return Err(too_large("a file", self.limits.max_file));
                }
                let total = self.stats.file_bytes.saturating_add(size);
                if total > self.limits.max_total {
                    return Err(too_large(
                        "the layer's file contents",
                        self.limits.max_total,
                    ));
                }
                self.stats.file_bytes = total;
                self.clear(parent.as_fd(), name)?;
                let fd = openat(
                    &parent,
                    name.as_slice(),
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )?;
                let mut file = std::fs::File::from(fd);
                copy_exact(&mut entry, &mut file, size, &mut self.buf)?;
                if self.owners.chown {
                    fchown(&file, Some(self.host_uid(uid)), Some(self.host_gid(gid)))?;
                }
                fchmod(&file, Mode::from_raw_mode(file_mode(mode)))?;
                self.set_xattrs_fd(file.as_fd(), &pax.xattrs)?;
                futimens(&file, &times(mtime))?;
            }
            EntryType::Symlink => {
                let target = link.filter(|l| !l.is_empty()).ok_or_else(|| {
                    LayerRefusal::Malformed(format!(
                        "symlink {:?} has no target",
                        String::from_utf8_lossy(&raw_path)
                    ))
                })?;
                if target.len() > self.limits.max_path || target.contains(&0) {
                    return Err(too_large("a symlink target", self.limits.max_path as u64));
                }
                self.clear(parent.as_fd(), name)?;
                symlinkat(target.as_slice(), &parent, name.as_slice())?;
                self.chown_at(parent.as_fd(), name, uid, gid)?;
                utimensat(
                    &parent,
                    name.as_slice(),
                    &times(mtime),
                    AtFlags::SYMLINK_NOFOLLOW,
                )?;
            }
            EntryType::Link => {
                let target = link.unwrap_or_default();
                let refusal = || LayerRefusal::HardLinkTarget {
                    path: String::from_utf8_lossy(&raw_path).into_owned(),
                    target: String::from_utf8_lossy(&target).into_owned(),
                };
                let tcomps = split_path(&target, self.limits.max_path)?;
                let Some((tname, tparents)) = tcomps.split_last() else {
                    return Err(refusal().into());
                };
                let tparent = match self.parent(tparents, &target, false) {
                    Ok(fd) => fd,
                    Err(UnpackError::Refused(_)) => return Err(refusal().into()),
                    Err(e) => return Err(e),
                };
                match statat(&tparent, tname.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) != FileType::Directory => {}
                    _ => return Err(refusal().into()),
                }
                if tcomps == comps {
                    return Ok(()); // a link to itself
                }
                self.clear(parent.as_fd(), name)?;
                linkat(
                    &tparent,
                    tname.as_slice(),
                    &parent,
                    name.as_slice(),
                    AtFlags::empty(),
                )?;
            }
            EntryType::Fifo => {
                self.clear(parent.as_fd(), name)?;
                mknodat(
                    &parent,
                    name.as_slice(),
                    FileType::Fifo,
                    Mode::from_raw_mode(file_mode(mode)),
                    0,
                )?;
                self.chown_at(parent.as_fd(), name, uid, gid)?;
            }
            EntryType::Char | EntryType::Block => {
                self.stats.skipped_devices += 1;
            }
            other => {
                return Err(LayerRefusal::Malformed(format!(
                    "entry {:?} has a type standin does not unpack ({:?})",
                    String::from_utf8_lossy(&raw_path),
                    other.as_byte() as char
                ))
                .into());
            }
        }
        Ok(())
    }

    /// Give the entry `name` (not followed) its mapped owner, when chowning at all.
    fn chown_at(
        &self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        uid: u64,
        gid: u64,
    ) -> Result<(), UnpackError> {
        if self.owners.chown {
            chownat(
                parent,
                name,
                Some(self.host_uid(uid)),
                Some(self.host_gid(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
        }
        Ok(())
    }

    fn host_uid(&self, id: u64) -> Uid {
        uid(self.owners.host_uid(id))
    }

    fn host_gid(&self, id: u64) -> Gid {
        gid(self.owners.host_gid(id))
    }

    /// Open the directory `parents` below the root, one component at a time and never through
    /// a symlink; missing directories are created when `create`.
    fn parent(
        &mut self,
        parents: &[Vec<u8>],
        raw_path: &[u8],
        create: bool,
    ) -> Result<OwnedFd, UnpackError> {
        if let Some((key, fd)) = &self.cache
            && key.as_slice() == parents
        {
            return Ok(fd.try_clone()?);
        }
        let mut cur = self.root.try_clone()?;
        for comp in parents {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            cur = match openat(&cur, comp.as_slice(), flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) if create => {
                    mkdirat(&cur, comp.as_slice(), Mode::from_raw_mode(0o755))?;
                    let fd = openat(&cur, comp.as_slice(), flags, Mode::empty())?;
                    if self.owners.chown {
                        fchown(&fd, Some(self.host_uid(0)), Some(self.host_gid(0)))?;
                    }
                    fd
                }
                Err(
                    rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR | rustix::io::Errno::NOENT,
                ) => {
                    return Err(LayerRefusal::ThroughSymlink {
                        path: String::from_utf8_lossy(raw_path).into_owned(),
                        component: String::from_utf8_lossy(comp).into_owned(),
                    }
                    .into());
                }
                Err(e) => return Err(io::Error::from(e).into()),
            };
        }
        self.cache = Some((parents.to_vec(), cur.try_clone()?));
        Ok(cur)
    }

    /// Remove whatever this layer already has at `name` (a later entry replaces an earlier
    /// one). Drops the parent cache, which may name what was removed.
    fn clear(&mut self, parent: BorrowedFd<'_>, name: &[u8]) -> Result<(), UnpackError> {
        match statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(io::Error::from(e).into()),
            Ok(st) => {
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    self.cache = None;
                }
                remove_at(parent, name)?;
                Ok(())
            }
        }
    }

    fn parse_pax(&self, raw: &[u8]) -> Result<Pax, UnpackError> {
        let mut pax = Pax::default();
        for ext in tar::PaxExtensions::new(raw) {
            let ext =
                ext.map_err(|_| LayerRefusal::Malformed("a PAX record does not parse".into()))?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            let num = || -> Result<u64, UnpackError> {
                std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.split('.').next())
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| {
                        LayerRefusal::Malformed(format!("PAX {key} is not a number")).into()
                    })
            };
            match key {
                "path" => pax.path = Some(value.to_vec()),
                "linkpath" => pax.linkpath = Some(value.to_vec()),
                "uid" => pax.uid = Some(num()?),
                "gid" => pax.gid = Some(num()?),
                "size" => pax.size = Some(num()?),
                "mtime" => pax.mtime = Some(i64::try_from(num()?).unwrap_or(i64::MAX)),
                k if k.starts_with("GNU.sparse.") => {
                    return Err(
                        LayerRefusal::Malformed("sparse files are not supported".into()).into(),
                    );
                }
                k => {
                    if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                        if pax.xattrs.len() >= self.limits.max_xattrs {
                            return Err(too_large(
                                "extended attributes on one entry",
                                self.limits.max_xattrs as u64,
                            ));
                        }
                        if value.len() > self.limits.max_xattr_value {
                            return Err(too_large(
                                "an extended attribute",
                                self.limits.max_xattr_value as u64,
                            ));
                        }
                        pax.xattrs.push((name.to_owned(), value.to_vec()));
                    }
                }
            }
        }
        Ok(pax)
    }

    fn set_xattrs_fd(
        &self,
        fd: BorrowedFd<'_>,
        xattrs: &[(String, Vec<u8>)],
    ) -> Result<(), UnpackError> {
        for (name, value) in xattrs.iter().filter(|(n, _)| kept_xattr(n)) {
            match fsetxattr(fd, name.as_str(), value, XattrFlags::empty()) {
                Ok(()) | Err(rustix::io::Errno::NOTSUP) => {}
                Err(e) => return Err(io::Error::from(e).into()),
            }
        }
        Ok(())
    }

    fn set_xattrs_at(
        &self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        xattrs: &[(String, Vec<u8>)],
        dir: bool,
    ) -> Result<(), UnpackError> {
        if !xattrs.iter().any(|(n, _)| kept_xattr(n)) {
            return Ok(());
        }
        let mut flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        if dir {
            flags |= OFlags::DIRECTORY;
        }
        let fd = openat(parent, name, flags, Mode::empty())?;
        self.set_xattrs_fd(fd.as_fd(), xattrs)
    }

    /// Directory modes and times last, deepest first: writing into a directory changes its
    /// mtime, and a read-only mode would stop an unprivileged unpack.
    fn finish_dirs(&mut self) -> Result<(), UnpackError> {
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.path.len()));
        self.cache = None;
        for d in dirs {
            let fd = match d.path.split_last() {
                None => self.root.try_clone()?,
                Some((name, parents)) => {
                    let Ok(parent) = self.parent(parents, b"", false) else {
                        continue; // replaced later in the layer
                    };
                    match openat(
                        &parent,
                        name.as_slice(),
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    ) {
                        Ok(fd) => fd,
                        Err(_) => continue,
                    }
                }
            };
            fchmod(&fd, Mode::from_raw_mode(d.mode & 0o3777))?;
            futimens(&fd, &times(d.mtime))?;
        }
        Ok(())
    }
}

fn kept_xattr(name: &str) -> bool {
    name.starts_with("user.") && !name.starts_with("user.overlay.")
}

/// Permission bits kept on non-directories: no set-user-ID or set-group-ID.
fn file_mode(mode: u32) -> u32 {
    mode & 0o1777
}

fn times(mtime: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn too_large(what: &'static str, limit: u64) -> UnpackError {
    LayerRefusal::TooLarge { what, limit }.into()
}

/// Split an entry path into its components: `.` and empty components dropped; absolute paths
/// and `..` refused.
fn split_path(raw: &[u8], max: usize) -> Result<Vec<Vec<u8>>, UnpackError> {
    let shown = || String::from_utf8_lossy(raw).into_owned();
    if raw.len() > max {
        return Err(too_large("an entry path", max as u64));
    }
    if raw.contains(&0) {
        return Err(
            LayerRefusal::Malformed(format!("entry {:?} contains a NUL byte", shown())).into(),
        );
    }
    if raw.first() == Some(&b'/') {
        return Err(LayerRefusal::Absolute { path: shown() }.into());
    }
    let mut comps = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(LayerRefusal::DotDot { path: shown() }.into()),
            c => comps.push(c.to_vec()),
        }
    }
    Ok(comps)
}

fn read_limited<R: Read>(
    r: &mut R,
    size: u64,
    max: u64,
    what: &'static str,
) -> Result<Vec<u8>, UnpackError> {
    if size > max {
        return Err(too_large(what, max));
    }
    let mut v = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    r.take(size).read_to_end(&mut v)?;
    if v.len() as u64 != size {
        return Err(LayerRefusal::Malformed(format!("{what} is cut short")).into());
    }
    Ok(v)
}

fn copy_exact<R: Read, W: Write>(
    r: &mut R,
    w: &mut W,
    size: u64,
    buf: &mut [u8],
) -> Result<(), UnpackError> {
    let mut left = size;
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = match r.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(
                    LayerRefusal::Malformed("a file's contents are cut short".into()).into(),
                );
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(malformed(e)),
        };
        w.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
