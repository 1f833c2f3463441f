//! Exit codes, signals, and nothing left behind.

mod support;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

#[test]
fn exit_codes_propagate() {
    assert_eq!(run_sh(&["--no-network"], "exit 0").status.code(), Some(0));
    assert_eq!(run_sh(&["--no-network"], "exit 7").status.code(), Some(7));
    assert_eq!(
        run_sh(&["--no-network"], "kill -TERM $$").status.code(),
        Some(143)
    );
    assert_eq!(
        run_sh(&["--no-network"], "kill -KILL $$").status.code(),
        Some(137)
    );
    let o = Command::new(standin_bin())
        .args(["run", "--no-network", "--", "no-such-command-xyz"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(127));
    assert!(stderr(&o).contains("command not found"), "{}", stderr(&o));
}

#[test]
fn stdin_and_stdout_pass_through() {
    let mut child = Command::new(standin_bin())
        .args(["run", "--no-network", "--", "tr", "a-z", "A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello sandbox\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HELLO SANDBOX\n");
}

/// A running `standin`, killed on drop so that a failing test never leaves it behind.
struct Running(std::process::Child);

impl std::ops::Deref for Running {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `standin run` with a workload that prints `started` once it has two processes that
/// stay put (a shell waiting for a background sleep); returns standin and the marker in their
/// command lines.
fn start_long_running() -> (Running, String) {
    let marker = format!("{}.5", unique("77"));
    let child = Command::new(standin_bin())
        .args(["run", "--", "sh", "-c"])
        // `started` only once the background child has become `sleep` (before its execve
        // completes, its /proc cmdline can read empty and the scan would miss it).
        .arg(format!(
            "sleep {marker} & until [ \"$(cat /proc/$!/comm 2>/dev/null)\" = sleep ]; do :; done; echo started; wait"
        ))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "started");
    (child, marker)
}

/// PIDs of the sandbox's processes: those whose command line contains `marker`, other than
/// standin itself (whose own arguments contain it).
fn sandbox_pids(standin: &std::process::Child, marker: &str) -> Vec<i32> {
    pids_with(marker)
        .into_iter()
        .filter(|p| *p != standin.id() as i32)
        .collect()
}

fn pids_with(marker: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for ent in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = ent.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(ent.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn sigint_and_sigterm_stop_the_whole_sandbox() {
    for (sig, code) in [
        (nix::sys::signal::Signal::SIGINT, 130),
        (nix::sys::signal::Signal::SIGTERM, 143),
    ] {
        let (mut child, marker) = start_long_running();
        assert_eq!(
            sandbox_pids(&child, &marker).len(),
            2,
            "workload processes not found"
        );
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{sig:?}");
        // standin waits for the sandbox's init to be reaped, and the kernel reaps the whole PID
        // namespace before that: nothing may be left at this point.
        assert!(pids_with(&marker).is_empty(), "{sig:?}: processes survived");
    }
}

#[test]
fn sigkill_of_standin_leaves_nothing_behind() {
    let (mut child, marker) = start_long_running();
    let pids = sandbox_pids(&child, &marker);
    assert_eq!(pids.len(), 2, "workload processes not found");
    let sandbox_pid = pids[0];
    let netns = std::fs::read_link(format!("/proc/{sandbox_pid}/ns/net")).unwrap();
    let userns = std::fs::read_link(format!("/proc/{sandbox_pid}/ns/user")).unwrap();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The sandbox dies asynchronously after its supervisor (stage1 sees the control socket hang
    // up): wait for it, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let holders = ns_holders(&[&netns, &userns]);
        if holders.is_empty() && pids_with(&marker).is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sandbox survived SIGKILL of standin: {holders:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Processes that are members of, or hold a descriptor to, any of `namespaces`.
fn ns_holders(namespaces: &[&std::path::Path]) -> Vec<String> {
    let mut out = Vec::new();
    for ent in std::fs::read_dir("/proc").unwrap().flatten() {
        if ent.file_name().to_string_lossy().parse::<i32>().is_err() {
            continue;
        }
        let mut links: Vec<std::path::PathBuf> = ["net", "user"]
            .iter()
            .map(|ns| ent.path().join("ns").join(ns))
            .collect();
        if let Ok(fds) = std::fs::read_dir(ent.path().join("fd")) {
            links.extend(fds.flatten().map(|fd| fd.path()));
        }
        for link in links {
            if let Ok(target) = std::fs::read_link(&link)
                && namespaces.contains(&target.as_path())
            {
                out.push(link.display().to_string());
            }
        }
    }
    out
}

#[test]
fn the_workload_sees_a_tty_when_standin_has_one() {
    // `script` gives standin a pseudo-terminal as stdin/stdout/stderr.
    let cmd = format!(
        "{} run --no-network -- sh -c 'test -t 0 && test -t 1 && echo tty-yes || echo tty-no'",
        standin_bin()
    );
    let o = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let s = stdout(&o);
    assert!(s.contains("tty-yes"), "{s}\n{}", stderr(&o));
    // Without a terminal, none is invented.
    let o = run_sh(
        &["--no-network"],
        "test -t 1 && echo tty-yes || echo tty-no",
    );
    assert!(stdout(&o).contains("tty-no"));
}
