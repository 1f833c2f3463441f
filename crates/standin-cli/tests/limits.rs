//! Resource limits end to end: a memory hog, a fork bomb, a disk filler and a CPU spinner
//! each stay inside their limits while the host and a second sandbox keep working, and no
//! cgroup is left behind, even after SIGKILL of standin. Real cgroups (this machine: v1
//! memory, pids and cpu beside a v2 hierarchy), real `standin` processes.

mod support;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// `standin run --no-network ARGS -- python3 -c SCRIPT`, all streams piped.
fn spawn_python(args: &[&str], script: &str) -> Child {
    Command::new(standin_bin())
        .args(["run", "--no-network"])
        .args(args)
        .args(["--", "python3", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start standin")
}

fn line(out: &mut BufReader<ChildStdout>) -> String {
    let mut s = String::new();
    out.read_line(&mut s).expect("read a line from the sandbox");
    s.trim_end().to_owned()
}

/// Finish `child` (after sending `input`) and return its output.
fn finish(mut child: Child, input: &[u8]) -> std::process::Output {
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    child.wait_with_output().expect("wait for standin")
}

/// A second sandbox and the host both still work.
fn others_keep_working() {
    let o = run_sh(&["--no-network"], "echo second-sandbox-ok");
    assert_eq!(stdout(&o), "second-sandbox-ok\n", "{}", stderr(&o));
    let host = Command::new("sh")
        .args(["-c", "echo host-ok"])
        .output()
        .unwrap();
    assert_eq!(stdout(&host), "host-ok\n");
}

#[test]
#[ignore = "needs root (creates cgroups); .ci/run runs it with --include-ignored"]
fn a_memory_hog_is_killed_at_its_limit_and_the_rest_keeps_working() {
    require_root();
    // A sandbox that must survive the hog next to it.
    let bystander = spawn_python(
        &[],
        "import sys; sys.stdin.readline(); print('bystander-ok')",
    );
    let hog = "chunks = []\nwhile True:\n    chunks.append(b'x' * (8 << 20))\n";
    let events = EventsFile::new();
    let o = Command::new(standin_bin())
        .args([
            "run",
            "--no-network",
            "--events",
            events.arg(),
            "--memory",
            "64M",
            "--",
            "python3",
            "-c",
            hog,
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the memory limit (64 MiB) was reached: the kernel killed"),
        "{}",
        stderr(&o)
    );
    // The audit trail has the exit and the limit, named.
    let trail = events.read();
    assert!(
        trail.contains("\"kind\":\"sandbox-exited\"") && trail.contains("\"exit_code\":137"),
        "{trail}"
    );
    assert!(
        trail
            .lines()
            .any(|l| l.contains("\"kind\":\"limit-hit\"") && l.contains("\"limit\":\"memory\"")),
        "{trail}"
    );
    others_keep_working();
    let o = finish(bystander, b"\n");
    assert_eq!(stdout(&o), "bystander-ok\n", "{}", stderr(&o));
}

#[test]
#[ignore = "needs root (creates cgroups); .ci/run runs it with --include-ignored"]
fn a_fork_bomb_stops_at_the_pids_limit_while_the_rest_keeps_working() {
    require_root();
    // Every process forks for as long as it can, then holds its slot; the first process
    // reports once a fork of its own is refused, and waits with the bomb still standing.
    let bomb = r#"
import os, sys
def bomb():
    while True:
        try:
            if os.fork() == 0:
                continue
        except OSError:
            os.pause()
while True:
    try:
        pid = os.fork()
    except OSError as e:
        print("refused", e.errno, flush=True)
        break
    if pid == 0:
        bomb()
print("processes", len([p for p in os.listdir("/proc") if p.isdigit()]), flush=True)
sys.stdin.readline()
"#;
    let mut child = spawn_python(&["--pids", "32"], bomb);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert_eq!(line(&mut out), "refused 11", "fork must fail with EAGAIN");
    let count: usize = line(&mut out)
        .strip_prefix("processes ")
        .and_then(|n| n.parse().ok())
        .expect("a process count");
    assert!(count <= 32, "{count} processes in a sandbox limited to 32");
    // With the bomb standing at its limit, the host and another sandbox still start processes.
    others_keep_working();
    let o = finish(child, b"\n");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the pids limit (32) was reached:"),
        "{}",
        stderr(&o)
    );
}

#[test]
#[ignore = "needs root (creates cgroups); .ci/run runs it with --include-ignored"]
fn a_disk_filler_stops_at_the_disk_limit_across_every_writable_place() {
    require_root();
    // /tmp, /workspace and /dev/shm share one limit: writing 5 MiB to each of three places
    // under an 8 MiB limit fills up in the second, and the total stays under the limit.
    let script = r#"
import errno, os
total = 0
for path in ["/tmp/fill", "/workspace/fill", "/dev/shm/fill"]:
    try:
        with open(path, "wb") as f:
            for _ in range(5):
                f.write(b"x" * (1 << 20))
                f.flush()
                os.fsync(f.fileno())
                total += 1 << 20
        print(path, "ok")
    except OSError as e:
        print(path, errno.errorcode[e.errno])
print("total", total)
"#;
    let o = Command::new(standin_bin())
        .args([
            "run",
            "--no-network",
            "--disk",
            "8M",
            "--",
            "python3",
            "-c",
            script,
        ])
        .output()
        .unwrap();
    let s = stdout(&o);
    assert!(
        s.starts_with("/tmp/fill ok\n/workspace/fill ENOSPC\n/dev/shm/fill ENOSPC\n"),
        "{s}\n{}",
        stderr(&o)
    );
    let total: u64 = s
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("total "))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        total <= 8 << 20,
        "{total} bytes written under an 8 MiB limit"
    );
    others_keep_working();
    // Without --disk the same writes fit (the default is half the memory limit).
    let o = Command::new(standin_bin())
        .args(["run", "--no-network", "--", "python3", "-c", script])
        .output()
        .unwrap();
    assert!(
        stdout(&o).ends_with(&format!("total {}\n", 15 << 20)),
        "{}",
        stdout(&o)
    );
}

#[test]
#[ignore = "needs root (creates cgroups); .ci/run runs it with --include-ignored"]
fn a_cpu_spinner_gets_its_share_and_no_more() {
    require_root();
    // Two spinners for one second of wall time each, reporting the CPU time they used. The
    // same program runs at once without a CPU limit, as the control: under the same load,
    // the limited one is held to a quarter of a CPU.
    let spin = r#"
import os, time
for _ in range(2):
    if os.fork() == 0:
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            pass
        os._exit(0)
os.wait(); os.wait()
t = os.times()
print(round(t.children_user + t.children_system, 3))
"#;
    let limited = spawn_python(&["--cpus", "0.25"], spin);
    let control = spawn_python(&[], spin);
    let cpu = |c: Child| -> f64 {
        let o = finish(c, b"");
        stdout(&o)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{}", stderr(&o)))
    };
    let (limited, control) = (cpu(limited), cpu(control));
    // 0.25 CPU for ~1 s, plus one scheduling period of slack.
    assert!(
        limited <= 0.35,
        "limited to 0.25 CPU, used {limited} s in 1 s"
    );
    assert!(
        control > 2.0 * limited,
        "control {control} s, limited {limited} s"
    );
    others_keep_working();
}

/// The sandbox cgroup name (`standin-…`) of the sandbox run by the standin process `pid`,
/// read from its stage1's `/proc/PID/cgroup`.
fn cgroup_name_of(standin_pid: u32) -> String {
    // Its children, by the parent field of every process's stat (any of standin's threads
    // may have started stage1).
    let children: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().into_owned();
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .to_owned();
            (ppid == standin_pid.to_string()).then_some(pid)
        })
        .collect();
    for child in &children {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{child}/cgroup")) else {
            continue;
        };
        if let Some(name) = text
            .split(['/', '\n'])
            .find(|part| part.starts_with("standin-"))
        {
            return name.to_owned();
        }
    }
    panic!("no stage1 in a standin- cgroup among {children:?}");
}

/// Every directory named `name` under /sys/fs/cgroup.
fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let o = Command::new("find")
        .args([
            "/sys/fs/cgroup",
            "-maxdepth",
            "10",
            "-type",
            "d",
            "-name",
            name,
        ])
        .output()
        .unwrap();
    stdout(&o).lines().map(PathBuf::from).collect()
}

#[test]
#[ignore = "needs root (creates cgroups); .ci/run runs it with --include-ignored"]
fn no_cgroup_is_left_behind_after_exit_or_after_sigkill_of_standin() {
    require_root();
    let limits = ["--memory", "128M", "--cpus", "1", "--pids", "64"];
    for kill in [false, true] {
        let mut child = Command::new(standin_bin())
            .args(["run", "--no-network"])
            .args(limits)
            .args(["--", "sh", "-c", "echo ready; read x; echo done"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        assert_eq!(line(&mut out), "ready");
        let name = cgroup_name_of(child.id());
        let dirs = cgroup_dirs(&name);
        // memory, cpu and pids: one directory per hierarchy (one in all on pure v2).
        assert!(!dirs.is_empty(), "no cgroup named {name}");
        let procs: String = dirs
            .iter()
            .map(|d| std::fs::read_to_string(d.join("cgroup.procs")).unwrap())
            .collect();
        assert!(!procs.trim().is_empty(), "the sandbox is not in {dirs:?}");
        if kill {
            child.kill().unwrap(); // SIGKILL: standin cannot clean up.
            let _ = child.wait();
            // stage1 notices, kills the sandbox, and its reaper removes the cgroup.
            let deadline = Instant::now() + Duration::from_secs(10);
            while !cgroup_dirs(&name).is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        } else {
            let o = finish(child, b"go\n");
            assert_eq!(stdout(&o), "", "{}", stderr(&o));
            assert!(o.status.success(), "{}", stderr(&o));
        }
        assert_eq!(cgroup_dirs(&name), Vec::<PathBuf>::new(), "kill={kill}");
    }
}

#[test]
fn bad_limits_get_clear_errors() {
    for (flag, value, want) in [
        ("--memory", "12X", "--memory 12X: use a size such as 512M"),
        ("--memory", "1M", "--memory 1M: at least 8 MiB is needed"),
        ("--cpus", "0", "--cpus 0: at least 0.01 CPU is needed"),
        ("--pids", "many", "--pids many: use a whole number"),
        ("--disk", "-1G", "--disk -1G: use a size such as 512M"),
    ] {
        let o = Command::new(standin_bin())
            .arg("run")
            .arg(format!("{flag}={value}"))
            .args(["--", "true"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(125), "{flag} {value}");
        assert!(stderr(&o).contains(want), "{flag} {value}: {}", stderr(&o));
    }
    // The same from the config file names the key.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("standin.toml");
    std::fs::write(&cfg, "[sandbox]\nmemory = \"lots\"\n").unwrap();
    let o = Command::new(standin_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(
        stderr(&o).contains("config [sandbox] memory lots: use a size such as 512M"),
        "{}",
        stderr(&o)
    );
}

#[test]
#[ignore = "needs root (to switch to an unprivileged user); .ci/run runs it with --include-ignored"]
fn rootless_without_a_delegated_cgroup_says_what_it_cannot_enforce() {
    require_root();
    let (_dir, bin) = standin_for_everyone();
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(["run", "--no-network"])
            .args(args)
            .args(["--", "sh", "-c", "echo ran"])
            .output()
            .unwrap()
    };
    // This machine's cgroups belong to root: nobody cannot create one.
    // Defaults alone: the sandbox runs, and standin names each default it could not enforce.
    let o = as_nobody(&[]);
    assert_eq!(stdout(&o), "ran\n", "{}", stderr(&o));
    for limit in ["memory", "pids"] {
        assert!(
            stderr(&o).contains(&format!("warning: the {limit} limit cannot be enforced")),
            "{}",
            stderr(&o)
        );
    }
    // A limit asked for: nothing runs, and the message says what to do. The pids default
    // it could not enforce either is a warning, not part of the refusal.
    let o = as_nobody(&["--memory", "64M"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    assert!(!stderr(&o).contains("pids"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the memory limit cannot be enforced")
            && stderr(&o).contains("Delegate=yes")
            && stderr(&o).contains("unlimited"),
        "{}",
        stderr(&o)
    );
    // Lifting the limits it cannot enforce starts quietly; the disk limit needs no cgroup.
    let o = as_nobody(&[
        "--memory",
        "unlimited",
        "--pids",
        "unlimited",
        "--disk",
        "8M",
    ]);
    assert_eq!(stdout(&o), "ran\n", "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}
