//! What the workload can and cannot see or do.

mod support;
use support::*;

#[test]
fn workload_has_no_privileges_left() {
    let o = run_sh(
        &["--no-network"],
        "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert!(
            s.contains(&format!("{cap}:\t0000000000000000")),
            "{cap} not empty:\n{s}"
        );
    }
    assert!(s.contains("NoNewPrivs:\t1"), "{s}");
    assert!(s.contains("Seccomp:\t2"), "{s}");
}

#[test]
fn workload_cannot_see_host_processes() {
    // A host process with a unique marker in its command line.
    let marker = unique("9");
    let mut host = std::process::Command::new("sleep")
        .arg(&marker)
        .spawn()
        .unwrap();
    let o = run_sh(
        &["--no-network"],
        "for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr '\\0' ' '; echo; done; echo count=$(ls -d /proc/[0-9]* | wc -l)",
    );
    let _ = host.kill();
    let _ = host.wait();
    let s = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!s.contains(&marker), "host process visible:\n{s}");
    let count: usize = s
        .lines()
        .find_map(|l| l.strip_prefix("count="))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(count <= 5, "too many processes visible: {count}\n{s}");
}

#[test]
fn host_files_outside_mounts_are_invisible() {
    let o = run_sh(
        &["--no-network"],
        "for p in /root /home /run /var /srv /mnt /opt /etc/shadow /etc/gshadow /etc/ssh /etc/sudoers; do \
           if ls $p >/dev/null 2>&1; then echo VISIBLE $p; fi; done; \
         for p in /proc/1/environ /proc/1/mem; do cat $p >/dev/null 2>&1 && echo VISIBLE $p; done; \
         ls /; echo done",
    );
    let s = stdout(&o);
    assert!(s.contains("done"), "{}", stderr(&o));
    assert!(!s.contains("VISIBLE"), "{s}");
    // The root holds only what the runtime assembled.
    for entry in s.lines().take_while(|l| *l != "done") {
        assert!(
            [
                "bin",
                "dev",
                "etc",
                "lib",
                "lib32",
                "lib64",
                "libx32",
                "proc",
                "sbin",
                "tmp",
                "usr",
                "workspace"
            ]
            .contains(&entry),
            "unexpected top-level entry {entry:?}"
        );
    }
}

#[test]
#[ignore = "needs root (the sandbox's root must not be host root); .ci/run runs it with --include-ignored"]
fn root_only_host_file_stays_unreadable_when_mounted() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "top-secret").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mount = format!("{}:/data:ro", dir.path().display());
    let o = run_sh(
        &["--no-network", "--mount", &mount],
        "ls /data; cat /data/secret; echo rc=$?",
    );
    let s = stdout(&o);
    assert!(
        s.contains("secret"),
        "mount not visible: {s} {}",
        stderr(&o)
    );
    assert!(!s.contains("top-secret"), "root-only file was readable");
    assert!(s.contains("rc=1"), "{s}");
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
}

#[test]
fn system_dirs_are_read_only_and_scratch_dirs_writable() {
    let o = run_sh(
        &["--no-network"],
        "for p in /usr/x /etc/x /x /bin/x; do touch $p 2>/dev/null && echo WROTE $p; done; \
         touch /tmp/ok /workspace/ok /dev/shm/ok && echo writable; pwd",
    );
    let s = stdout(&o);
    assert!(!s.contains("WROTE"), "{s}");
    assert!(s.contains("writable"), "{s} {}", stderr(&o));
    assert!(s.contains("/workspace"), "{s}");
}

#[test]
fn workdir_and_mounts_reach_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("in.txt"), "from-host").unwrap();
    // The sandbox's root is an unprivileged uid on the host: give it the directories.
    let owner = sandbox_root_uid();
    for d in [dir.path(), data.path()] {
        std::os::unix::fs::chown(d, Some(owner), Some(owner)).unwrap();
    }
    let ws = dir.path().display().to_string();
    let mount = format!("{}:/data", data.path().display());
    let o = run_sh(
        &["--no-network", "--workdir", &ws, "--mount", &mount],
        "cat /data/in.txt > /workspace/out.txt && echo made > /data/new.txt && echo ok",
    );
    assert!(stdout(&o).contains("ok"), "{} {}", stdout(&o), stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "from-host"
    );
    assert_eq!(
        std::fs::read_to_string(data.path().join("new.txt")).unwrap(),
        "made\n"
    );
}

#[test]
fn read_only_mount_cannot_be_written() {
    let data = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(
        data.path(),
        Some(sandbox_root_uid()),
        Some(sandbox_root_uid()),
    )
    .unwrap();
    let mount = format!("{}:/data:ro", data.path().display());
    let o = run_sh(
        &["--no-network", "--mount", &mount],
        "touch /data/x && echo WROTE; echo done",
    );
    assert!(stdout(&o).contains("done"));
    assert!(!stdout(&o).contains("WROTE"));
    assert!(!data.path().join("x").exists());
}

#[test]
fn workload_cannot_touch_the_firewall_or_make_namespaces() {
    let o = run_sh(
        &[],
        "nft flush ruleset 2>&1; echo nft=$?; nft add table inet x 2>&1; echo nft2=$?; \
         unshare -U true 2>&1; echo userns=$?; unshare -n true 2>&1; echo netns=$?; \
         unshare -m true 2>&1; echo mntns=$?",
    );
    let s = stdout(&o);
    for key in ["nft=", "nft2=", "userns=", "netns=", "mntns="] {
        let v = s
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} missing: {s}"));
        assert_ne!(v.trim(), "0", "{key} succeeded:\n{s}");
    }
    assert!(s.contains("Operation not permitted"), "{s}");
}

#[test]
fn only_inet_unix_and_netlink_sockets() {
    let o = run_sh(
        &["--no-network"],
        "python3 -c '
import socket
for name, fam, typ in [(\"vsock\", 40, socket.SOCK_STREAM), (\"packet\", 17, socket.SOCK_RAW)]:
    try:
        socket.socket(fam, typ); print(name, \"OPEN\")
    except OSError as e:
        print(name, e.errno)
for name, fam in [(\"unix\", socket.AF_UNIX), (\"inet\", socket.AF_INET), (\"inet6\", socket.AF_INET6)]:
    socket.socket(fam, socket.SOCK_STREAM).close(); print(name, \"ok\")
'",
    );
    let s = stdout(&o);
    assert!(s.contains("vsock 97"), "{s} {}", stderr(&o));
    assert!(s.contains("packet 97"), "{s}");
    for fam in ["unix ok", "inet ok", "inet6 ok"] {
        assert!(s.contains(fam), "{s}");
    }
}

#[test]
fn environment_is_built_from_scratch() {
    let o = std::process::Command::new(standin_bin())
        .args([
            "run",
            "--no-network",
            "--env",
            "GIVEN=1",
            "--env",
            "COPIED",
            "--",
            "env",
        ])
        .env("STANDIN_TEST_HOST_SECRET", "hunter2")
        .env("COPIED", "yes")
        .output()
        .unwrap();
    let s = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!s.contains("hunter2"), "host env leaked:\n{s}");
    assert!(s.contains("GIVEN=1"), "{s}");
    assert!(s.contains("COPIED=yes"), "{s}");
    assert!(s.contains("PATH=/usr/local/sbin"), "{s}");
    // Nothing beyond the base set and the two we asked for.
    let names: Vec<&str> = s
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    for n in &names {
        assert!(
            [
                "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "HOSTNAME", "TMPDIR", "TERM",
                "GIVEN", "COPIED", "PWD", "SHLVL", "_"
            ]
            .contains(n),
            "unexpected variable {n}"
        );
    }
}

#[test]
#[ignore = "needs root (to switch to an unprivileged user); .ci/run runs it with --include-ignored"]
fn an_unprivileged_user_can_run_a_sandbox() {
    require_root();
    let (_dir, bin) = standin_for_everyone();
    let o = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["run", "--", "sh", "-c"])
        .arg("cat /proc/self/uid_map; grep -E '^(CapEff|Seccomp):' /proc/self/status; touch /workspace/x && echo writable")
        .output()
        .unwrap();
    let s = stdout(&o);
    assert!(o.status.success(), "{s}\n{}", stderr(&o));
    let map: Vec<&str> = s.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        map,
        ["0", "65534", "1"],
        "sandbox root must be the caller's own uid"
    );
    assert!(
        s.contains("CapEff:\t0000000000000000") && s.contains("Seccomp:\t2"),
        "{s}"
    );
    assert!(s.contains("writable"), "{s}");
}

#[test]
fn bad_flags_get_clear_errors() {
    let o = std::process::Command::new(standin_bin())
        .args(["run", "--mount", "relative:/x", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("must be absolute"), "{}", stderr(&o));
    let o = std::process::Command::new(standin_bin())
        .args(["run", "--workdir", "/nonexistent/dir", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("/nonexistent/dir"), "{}", stderr(&o));
}

/// Host uid that the sandbox's root maps to.
fn sandbox_root_uid() -> u32 {
    standin_sandbox::idmap::IdMaps::for_current_user().host_root_uid()
}
