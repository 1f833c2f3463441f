//! Unpacker tests: archives built in memory, hostile ones included.

use super::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

pub(crate) fn owners() -> Ownership {
    Ownership {
        uid_base: 0,
        gid_base: 0,
        len: 65536,
        chown: false,
    }
}

/// Raw header with any path bytes (the builder refuses `..` and absolute paths itself).
fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    path: &[u8],
    kind: EntryType,
    link: &[u8],
    data: &[u8],
) {
    let mut h = tar::Header::new_old();
    {
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path);
        let l = &mut h.as_old_mut().linkname;
        l[..link.len()].copy_from_slice(link);
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn run(
    build: impl FnOnce(&mut tar::Builder<Vec<u8>>),
) -> (tempfile::TempDir, Result<LayerStats, UnpackError>) {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    let bytes = b.into_inner().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("layer");
    std::fs::create_dir(&dest).unwrap();
    let r = unpack(&bytes[..], &dest, &owners(), &Limits::default()).map(|(s, _)| s);
    (dir, r)
}

fn refused(r: Result<LayerStats, UnpackError>) -> LayerRefusal {
    match r {
        Err(UnpackError::Refused(x)) => x,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn files_dirs_links_and_modes() {
    let (dir, r) = run(|b| {
        raw_entry(b, b"./usr/", EntryType::Directory, b"", b"");
        raw_entry(
            b,
            b"./usr/bin/tool",
            EntryType::Regular,
            b"",
            b"#!/bin/sh\n",
        );
        raw_entry(b, b"usr/bin/alias", EntryType::Symlink, b"tool", b"");
        raw_entry(b, b"usr/bin/hard", EntryType::Link, b"usr/bin/tool", b"");
        raw_entry(b, b"dev/null", EntryType::Char, b"", b"");
    });
    let stats = r.unwrap();
    let l = dir.path().join("layer");
    assert_eq!(
        std::fs::read(l.join("usr/bin/tool")).unwrap(),
        b"#!/bin/sh\n"
    );
    assert_eq!(
        std::fs::read_link(l.join("usr/bin/alias")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(
        std::fs::metadata(l.join("usr/bin/hard")).unwrap().ino(),
        std::fs::metadata(l.join("usr/bin/tool")).unwrap().ino()
    );
    assert_eq!(
        std::fs::metadata(l.join("usr/bin/tool")).unwrap().mtime(),
        1_600_000_000
    );
    assert!(!l.join("dev/null").exists(), "device nodes are skipped");
    assert_eq!(stats.skipped_devices, 1);
}

#[test]
fn setuid_bits_are_cleared() {
    let (dir, r) = run(|b| {
        let mut h = tar::Header::new_gnu();
        h.set_path("bin/su").unwrap();
        h.set_mode(0o4755);
        h.set_size(1);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
    });
    r.unwrap();
    let mode = std::fs::metadata(dir.path().join("layer/bin/su"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let (dir, r) = run(|b| {
        raw_entry(b, b"etc/", EntryType::Directory, b"", b"");
        raw_entry(b, b"etc/.wh.gone", EntryType::Regular, b"", b"");
        raw_entry(b, b"opt/.wh..wh..opq", EntryType::Regular, b"", b"");
    });
    r.unwrap();
    let l = dir.path().join("layer");
    let meta = std::fs::symlink_metadata(l.join("etc/gone")).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(meta.file_type().is_char_device());
    assert_eq!(meta.rdev(), 0);
    assert!(!l.join("etc/.wh.gone").exists());
    let opaque = rustix::fs::getxattr(l.join("opt").as_path(), OPAQUE_XATTR, &mut [0u8; 4]);
    assert_eq!(opaque.ok(), Some(1), "opaque directory attribute set");
}

#[test]
fn traversal_and_absolute_paths_are_refused() {
    let (dir, r) = run(|b| raw_entry(b, b"../../etc/evil", EntryType::Regular, b"", b"x"));
    assert!(matches!(refused(r), LayerRefusal::DotDot { .. }));
    assert!(!dir.path().join("etc").exists());
    let (_d, r) = run(|b| raw_entry(b, b"a/../../evil", EntryType::Regular, b"", b"x"));
    assert!(matches!(refused(r), LayerRefusal::DotDot { .. }));
    let (_d, r) = run(|b| raw_entry(b, b"/etc/evil", EntryType::Regular, b"", b"x"));
    assert!(matches!(refused(r), LayerRefusal::Absolute { .. }));
}

#[test]
fn writing_through_a_symlink_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap().as_bytes().to_vec();
    let (_d, r) = run(|b| {
        raw_entry(b, b"escape", EntryType::Symlink, &target, b"");
        raw_entry(b, b"escape/pwned", EntryType::Regular, b"", b"x");
    });
    assert!(matches!(refused(r), LayerRefusal::ThroughSymlink { .. }));
    assert!(!outside.path().join("pwned").exists());
    // A symlink replacing a directory already unpacked, then a write through it.
    let (_d, r) = run(|b| {
        raw_entry(b, b"d/", EntryType::Directory, b"", b"");
        raw_entry(b, b"d/a", EntryType::Regular, b"", b"x");
        raw_entry(b, b"d", EntryType::Symlink, &target, b"");
        raw_entry(b, b"d/b", EntryType::Regular, b"", b"x");
    });
    assert!(matches!(refused(r), LayerRefusal::ThroughSymlink { .. }));
    assert!(!outside.path().join("b").exists());
}

#[test]
fn hard_links_outside_the_layer_are_refused() {
    let (_d, r) = run(|b| raw_entry(b, b"passwd", EntryType::Link, b"../../../etc/passwd", b""));
    assert!(matches!(refused(r), LayerRefusal::DotDot { .. }));
    let (_d, r) = run(|b| raw_entry(b, b"passwd", EntryType::Link, b"/etc/passwd", b""));
    assert!(matches!(refused(r), LayerRefusal::Absolute { .. }));
    let (_d, r) = run(|b| {
        raw_entry(b, b"s", EntryType::Symlink, b"/etc", b"");
        raw_entry(b, b"passwd", EntryType::Link, b"s/passwd", b"");
    });
    assert!(matches!(refused(r), LayerRefusal::HardLinkTarget { .. }));
}

#[test]
fn absurd_sizes_are_refused_before_reading() {
    // A PAX header claiming a gigabyte.
    let mut h = tar::Header::new_ustar();
    h.set_path("pax").unwrap();
    h.set_entry_type(EntryType::XHeader);
    h.set_size(1 << 30);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    let mut bytes = h.as_bytes().to_vec();
    bytes.extend_from_slice(&[0u8; 4096]);
    let dir = tempfile::tempdir().unwrap();
    let r = unpack(&bytes[..], dir.path(), &owners(), &Limits::default()).map(|(s, _)| s);
    assert!(matches!(refused(r), LayerRefusal::TooLarge { .. }));
    // A file beyond the per-file limit.
    let limits = Limits {
        max_file: 10,
        ..Limits::default()
    };
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, b"big", EntryType::Regular, b"", &[7u8; 11]);
    let bytes = b.into_inner().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let r = unpack(&bytes[..], dir.path(), &owners(), &limits).map(|(s, _)| s);
    assert!(matches!(refused(r), LayerRefusal::TooLarge { .. }));
    assert!(!dir.path().join("big").exists());
}

#[test]
fn forged_overlay_xattrs_are_dropped() {
    let (dir, r) = run(|b| {
        let mut h = tar::Header::new_ustar();
        h.set_path("d").unwrap();
        h.set_entry_type(EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        b.append_pax_extensions([
            ("SCHILY.xattr.user.overlay.redirect", &b"/etc"[..]),
            ("SCHILY.xattr.user.note", &b"kept"[..]),
        ])
        .unwrap();
        b.append(&h, &b""[..]).unwrap();
    });
    r.unwrap();
    let d = dir.path().join("layer/d");
    let mut buf = [0u8; 16];
    assert!(rustix::fs::getxattr(d.as_path(), "user.overlay.redirect", &mut buf).is_err());
    assert_eq!(
        rustix::fs::getxattr(d.as_path(), "user.note", &mut buf).ok(),
        Some(4)
    );
}

#[test]
fn garbage_is_refused_not_panicked_on() {
    for input in [
        &b"not a tar at all, just text padded out"[..],
        &[0xffu8; 1024][..],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let r = unpack(input, dir.path(), &owners(), &Limits::default());
        assert!(r.is_err() || r.is_ok_and(|(s, _)| s.entries == 0));
    }
}
