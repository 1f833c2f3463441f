//! End-to-end: `run -it` and `exec -it` give the command a terminal of the sandbox's own.
//! `terminal_support/drive.py` plays the person at the keyboard on a real pty: it types,
//! presses Ctrl-C and Ctrl-Z, resizes the window, and checks the terminal's mode afterwards.

mod support;

use std::process::Command;
use support::*;

const DRIVE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/terminal_support/drive.py"
);

fn drive(home: &std::path::Path, args: &[&str]) -> String {
    let o = Command::new("python3")
        .arg(DRIVE)
        .arg(standin_bin())
        .args(args)
        .env("STANDIN_HOME", home)
        .output()
        .unwrap();
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success(), "{text}");
    text
}

const STEPS: &str = "size-ok\nresize-ok\nctrl-c-ok\nctrl-z-ok\nexit=6\nrestored=True\n";

#[test]
#[ignore = "needs root (sandbox state and cgroups); .ci/run runs it with --include-ignored"]
fn run_it_gives_job_control_window_size_and_signals_and_restores_the_terminal() {
    require_root();
    let home = tempfile::tempdir().unwrap();
    let out = drive(
        home.path(),
        &["run", "-it", "--no-network", "--", "sh", "-i"],
    );
    assert_eq!(out, STEPS);
}

#[test]
#[ignore = "needs root (sandbox state and cgroups); .ci/run runs it with --include-ignored"]
fn exec_it_into_a_detached_sandbox_does_the_same() {
    require_root();
    let home = tempfile::tempdir().unwrap();
    let standin = |args: &[&str]| {
        Command::new(standin_bin())
            .args(args)
            .env("STANDIN_HOME", home.path())
            .output()
            .unwrap()
    };
    let o = standin(&["run", "-d", "--name", "term", "--no-network"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = drive(home.path(), &["exec", "-it", "term", "--", "sh", "-i"]);
    let o = standin(&["rm", "-f", "term"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(out, STEPS);
}

#[test]
#[ignore = "needs root (sandbox state and cgroups); .ci/run runs it with --include-ignored"]
fn without_t_the_command_gets_the_callers_streams_and_no_terminal() {
    require_root();
    let o = run_sh(&["--no-network"], "tty; echo rc=$?");
    assert_eq!(stdout(&o), "not a tty\nrc=1\n", "{}", stderr(&o));
}
