//! Who owns what the sandbox writes into a host directory (`--workdir`, read-write `--mount`):
//! the directory's owner, as root (idmapped mounts) and rootless (the caller's own uid), and
//! nothing else of the host becomes writable.

mod support;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::path::Path;
use support::*;

/// A fresh directory owned by `uid:gid` with mode `mode`.
fn dir_of(uid: u32, gid: u32, mode: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    chown(dir.path(), Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
    dir
}

/// A file with `text`, owned by `uid:gid`, mode 0644.
fn file_of(path: &Path, text: &str, uid: u32, gid: u32) {
    std::fs::write(path, text).unwrap();
    chown(path, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn owner(path: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid())
}

#[test]
#[ignore = "needs root (binds directories of other users); .ci/run runs it with --include-ignored"]
fn as_root_what_the_sandbox_writes_belongs_to_the_directorys_owner() {
    require_root();
    let work = dir_of(4242, 4243, 0o750);
    let w = work.path();
    file_of(&w.join("owners.txt"), "owner\n", 4242, 4243);
    file_of(&w.join("someone-elses.txt"), "other\n", 4343, 4343);
    let data = dir_of(4242, 4243, 0o700);
    // A symlink in the workdir to a host directory outside it.
    let outside = dir_of(4242, 4243, 0o777);
    std::os::unix::fs::symlink(outside.path(), w.join("escape")).unwrap();

    let ws = w.display().to_string();
    let mount = format!("{}:/data", data.path().display());
    let script = "stat -c 'inside %u:%g' /workspace; \
         echo new > /workspace/new.txt && mkdir /workspace/sub && echo deep > /workspace/sub/f; \
         echo more >> /workspace/owners.txt && echo appended; \
         echo x >> /workspace/someone-elses.txt || echo refused-other; \
         echo x > /workspace/escape/out || echo refused-escape; \
         echo m > /data/m.txt; echo done";
    let o = run_sh(
        &["--no-network", "--workdir", &ws, "--mount", &mount],
        script,
    );
    let s = stdout(&o);
    assert!(o.status.success(), "{s}\n{}", stderr(&o));
    // Inside, the directory is the sandbox root's own; outside, everything written is the
    // owner's, files and directories alike.
    assert!(s.contains("inside 0:0"), "{s}");
    assert!(
        s.contains("appended") && s.contains("done"),
        "{s}\n{}",
        stderr(&o)
    );
    for p in ["new.txt", "sub", "sub/f"] {
        assert_eq!(owner(&w.join(p)), (4242, 4243), "{p}");
    }
    assert_eq!(owner(&data.path().join("m.txt")), (4242, 4243));
    assert_eq!(
        std::fs::read_to_string(w.join("owners.txt")).unwrap(),
        "owner\nmore\n"
    );
    // A file of another host user stays theirs, and unwritten.
    assert!(s.contains("refused-other"), "{s}");
    assert_eq!(
        std::fs::read_to_string(w.join("someone-elses.txt")).unwrap(),
        "other\n"
    );
    // The symlink resolves inside the sandbox, where the host path does not exist.
    assert!(s.contains("refused-escape"), "{s}");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
#[ignore = "needs root (binds a root-owned directory); .ci/run runs it with --include-ignored"]
fn a_root_owned_workdir_gets_root_owned_files_but_never_set_id_ones() {
    require_root();
    let work = dir_of(0, 0, 0o700);
    let w = work.path();
    let ws = w.display().to_string();
    let script = "echo a > /workspace/plain && echo wrote; \
         chmod u+s /workspace/plain || echo no-suid; \
         chmod g+s /workspace/plain || echo no-sgid; \
         python3 -c 'import os; os.open(\"/workspace/made-suid\", os.O_CREAT | os.O_WRONLY, 0o4755)' \
           2>/dev/null || echo no-suid-create; \
         touch /tmp/t && chmod u+s /tmp/t && echo tmp-suid-ok";
    let o = run_sh(&["--no-network", "--workdir", &ws], script);
    let s = stdout(&o);
    for want in ["wrote", "no-suid", "no-sgid", "no-suid-create"] {
        assert!(s.contains(want), "{want}: {s}\n{}", stderr(&o));
    }
    assert_eq!(owner(&w.join("plain")), (0, 0));
    let mode = std::fs::metadata(w.join("plain")).unwrap().mode();
    assert_eq!(mode & 0o6000, 0, "mode {mode:o}");
    assert!(!w.join("made-suid").exists());
    // The filter only exists because a host directory is writable: without one, set-id bits
    // in the sandbox's own scratch space are allowed (package managers set them).
    assert!(!s.contains("tmp-suid-ok"), "{s}");
    let o = run_sh(
        &["--no-network"],
        "touch /tmp/t && chmod u+s /tmp/t && echo tmp-suid-ok",
    );
    assert!(stdout(&o).contains("tmp-suid-ok"), "{}", stderr(&o));
}

#[test]
#[ignore = "needs root (to switch to an unprivileged user); .ci/run runs it with --include-ignored"]
fn rootless_the_callers_own_directory_comes_back_theirs() {
    require_root();
    let (_bin_dir, bin) = standin_for_everyone();
    let mine = dir_of(4242, 4242, 0o700);
    let theirs = dir_of(4343, 4343, 0o755);
    let as_user = |dir: &Path, script: &str| {
        std::process::Command::new("setpriv")
            .args(["--reuid=4242", "--regid=4242", "--clear-groups"])
            .arg(&bin)
            .args(["run", "--no-network", "--workdir"])
            .arg(dir)
            .args(["--", "sh", "-c", script])
            .output()
            .unwrap()
    };
    let o = as_user(
        mine.path(),
        "echo hi > /workspace/f && mkdir /workspace/d && echo ok",
    );
    assert!(stdout(&o).contains("ok"), "{}", stderr(&o));
    assert_eq!(owner(&mine.path().join("f")), (4242, 4242));
    assert_eq!(owner(&mine.path().join("d")), (4242, 4242));
    // Somebody else's directory is refused before the sandbox starts, saying why.
    let o = as_user(theirs.path(), "echo started");
    assert_eq!(o.status.code(), Some(125), "{}", stdout(&o));
    assert!(!stdout(&o).contains("started"));
    assert!(
        stderr(&o).contains("belongs to uid 4343") && stderr(&o).contains("directory you own"),
        "{}",
        stderr(&o)
    );
}
