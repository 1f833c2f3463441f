//! The Rust SDK's start-up contract: a program using it the obvious way (`#[tokio::main]`,
//! `create().await`) either works or fails at once, saying what to do; it never re-executes
//! itself in a loop. The program is `examples/sdk_startup.rs`.

mod support;
use std::path::PathBuf;
use std::process::{Command, Output};
use support::*;

/// The example binary cargo built beside this test's (`target/<profile>/examples/`).
fn example() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let profile = deps.parent().unwrap().parent().unwrap();
    let exe = profile.join("examples/sdk_startup");
    assert!(
        exe.is_file(),
        "{} not built: `cargo test` builds it, `cargo test --test sdk_startup` alone does not \
         (add `cargo build -p standin-cli --examples`)",
        exe.display()
    );
    exe
}

/// Run `exe` in `mode` with only `env` (and a PATH without standin).
fn run(exe: &std::path::Path, mode: &str, env: &[(&str, &str)]) -> Output {
    Command::new(exe)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("SDK_STARTUP_MODE", mode)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn starts(o: &Output) -> usize {
    stdout(o).matches("main started").count()
}

#[test]
#[ignore = "needs root (creates sandboxes with cgroups); .ci/run runs it with --include-ignored"]
fn the_standin_binary_is_found_through_standin_bin_or_beside_the_program() {
    require_root();
    let o = run(&example(), "plain", &[("STANDIN_BIN", standin_bin())]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "main started\ninside the sandbox\n");
    // A copy of the program next to a standin binary needs no configuration.
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("agent");
    std::fs::copy(example(), &exe).unwrap();
    std::fs::copy(standin_bin(), dir.path().join("standin")).unwrap();
    let o = run(&exe, "plain", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "main started\ninside the sandbox\n");
}

#[test]
fn without_a_helper_create_fails_at_once_saying_how_to_provide_one() {
    let o = run(&example(), "plain", &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(
        starts(&o),
        1,
        "the program was started again: {}",
        stdout(&o)
    );
    let e = stderr(&o);
    assert!(
        e.contains("STANDIN_BIN") && e.contains("PATH") && e.contains("run_helper_if_requested"),
        "{e}"
    );
    // A STANDIN_BIN that is no executable is named.
    let o = run(
        &example(),
        "plain",
        &[("STANDIN_BIN", "/nonexistent/standin")],
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("STANDIN_BIN=/nonexistent/standin is not an executable"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_late_run_helper_if_requested_is_reported_before_anything_starts() {
    let o = run(&example(), "late", &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(starts(&o), 1, "{}", stdout(&o));
    assert!(
        stderr(&o).contains("called after this program started threads"),
        "{}",
        stderr(&o)
    );
}

#[test]
#[ignore = "needs root (starts stage1 with a cgroup); .ci/run runs it with --include-ignored"]
fn a_program_named_as_its_own_helper_without_dispatching_runs_once_more_not_forever() {
    require_root();
    let o = run(&example(), "self", &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    // The program, and the one copy started as its helper, which reported and exited.
    assert_eq!(starts(&o), 2, "{}", stdout(&o));
    let e = stderr(&o);
    assert!(
        e.contains("create: ") && e.contains("did not call standin::run_helper_if_requested()"),
        "{e}"
    );
}

#[test]
#[ignore = "needs root (creates sandboxes with cgroups); .ci/run runs it with --include-ignored"]
fn a_helper_of_another_version_is_refused_with_what_to_do() {
    require_root();
    // The real standin, started with another helper version than this program's: what a
    // standin binary of another release sees.
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("standin");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nrole=$1; shift; shift\nexec {} \"$role\" 0.0.0-other \"$@\"\n",
            standin_bin()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let o = run(
        &example(),
        "plain",
        &[("STANDIN_BIN", wrapper.to_str().unwrap())],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("uses standin 0.0.0-other"),
        "{}",
        stderr(&o)
    );
}
