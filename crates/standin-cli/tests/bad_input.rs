//! Bad input gets an answer that says what is wrong and how to fix it, and nothing is
//! silently ignored or overridden. Each case fails before a sandbox is started.

mod support;
use std::io::Write;
use std::process::{Command, Output};
use support::*;

const VALUE: &str = "sk-live-do-not-echo-4242";

fn standin(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(standin_bin());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run standin")
}

/// Refused with a message containing every one of `needles`, and never the value.
fn refused(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(!o.status.success(), "accepted: {err}");
    assert!(!stdout(o).contains("ran"), "the command ran: {err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} missing from: {err}");
    }
    assert!(!err.contains(VALUE), "the value was echoed: {err}");
}

fn run(args: &[&str]) -> Output {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--", "echo", "ran"]);
    standin(&all, &[("KEY", VALUE)])
}

#[test]
fn a_value_on_the_command_line_is_refused_without_being_repeated() {
    let flag = format!("KEY={VALUE}@api.example.com");
    refused(
        &run(&["--secret", &flag]),
        &["--secret KEY=…", "--secret-file KEY=PATH"],
    );
    refused(&run(&["--secret", VALUE]), &["expected NAME@HOST"]);
}

#[test]
fn allowed_hosts_that_are_urls_ports_or_addresses_are_explained() {
    refused(
        &run(&["--secret", "KEY@https://api.example.com/v1"]),
        &["is a URL"],
    );
    refused(
        &run(&["--secret", "KEY@api.example.com:443"]),
        &["has a port", ":tcp:443"],
    );
    refused(
        &run(&["--secret", "KEY@203.0.113.7"]),
        &["is an IP address"],
    );
    refused(
        &run(&["--secret", "KEY@[2001:db8::1]"]),
        &["is an IP address"],
    );
    refused(
        &run(&[
            "--secret",
            "KEY@api.example.com",
            "--secret-passthrough",
            "http://traces.example",
        ]),
        &["is a URL"],
    );
}

#[test]
fn secret_options_without_secrets_or_without_a_network_are_refused() {
    refused(
        &run(&["--on-secret-violation", "block-and-log"]),
        &["no secret is given"],
    );
    refused(
        &run(&["--secret-passthrough", "traces.example"]),
        &["no secret is given"],
    );
    refused(
        &run(&["--no-network", "--secret", "KEY@api.example.com"]),
        &["the network is off"],
    );
}

#[test]
fn reserved_secret_names_are_refused() {
    for name in ["PATH", "HOME", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS"] {
        let o = standin(
            &[
                "run",
                "--secret",
                &format!("{name}@api.example.com"),
                "--",
                "echo",
                "ran",
            ],
            &[(name, VALUE)],
        );
        refused(&o, &[&format!("the sandbox sets {name} itself")]);
    }
}

#[test]
fn an_unknown_log_level_is_refused() {
    refused(
        &run(&["--log-level", "verbose"]),
        &["\"verbose\" is not a log level"],
    );
    refused(
        &run(&["--log-level", "standin_boundary=loud"]),
        &["is not a log level"],
    );
}

#[test]
fn two_mounts_at_one_path_and_a_mount_over_the_workdir_are_refused() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (a, b) = (
        a.path().display().to_string(),
        b.path().display().to_string(),
    );
    refused(
        &run(&[
            "--mount",
            &format!("{a}:/data"),
            "--mount",
            &format!("{b}:/data"),
        ]),
        &[
            "/data is already mounted from",
            "one guest path takes one mount",
        ],
    );
    refused(
        &run(&["--workdir", &a, "--mount", &format!("{b}:/workspace")]),
        &["both give /workspace"],
    );
}

#[test]
fn a_toml_secret_with_two_value_sources_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let value = dir.path().join("value");
    std::fs::write(&value, VALUE).unwrap();
    let mut cfg = tempfile::NamedTempFile::new().unwrap();
    write!(
        cfg,
        "[[secret]]\nenv = \"KEY\"\nallow_hosts = [\"api.example.com\"]\nvalue_env = \"KEY\"\nvalue_file = \"{}\"\n",
        value.display()
    )
    .unwrap();
    refused(
        &run(&["--config", cfg.path().to_str().unwrap()]),
        &["value_env and value_file", "keep one"],
    );
}

#[test]
fn events_options_without_an_events_file_are_refused() {
    refused(
        &run(&["--events-level", "all"]),
        &["no events file is given"],
    );
}

#[test]
#[ignore = "needs root (starts a sandbox); .ci/run runs it with --include-ignored"]
fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let o = standin(
        &["--log-level", "debug", "run", "--no-network", "--", "true"],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(!err.is_empty(), "no debug log at all");
    assert!(!err.contains('\u{1b}'), "colour codes in: {err:?}");
}

#[test]
fn configuration_problems_carry_one_prefix() {
    let o = run(&["--secret", "KEY@bad..host"]);
    refused(
        &o,
        &["invalid sandbox configuration: allow_host(\"bad..host\")"],
    );
    assert_eq!(
        stderr(&o).matches("invalid sandbox configuration").count(),
        1,
        "{}",
        stderr(&o)
    );
}

#[test]
#[ignore = "needs root (starts a sandbox); .ci/run runs it with --include-ignored"]
fn an_environment_too_large_for_the_control_channel_is_named() {
    let big = "x".repeat(100 * 1024);
    let vars: Vec<String> = (0..3).map(|i| format!("BIG{i}={big}")).collect();
    let mut args = vec!["--no-network"];
    for v in &vars {
        args.extend_from_slice(&["--env", v]);
    }
    let o = run(&args);
    refused(&o, &["KiB", "the environment is the usual cause"]);
    assert!(
        !stderr(&o).contains("control message too large"),
        "{}",
        stderr(&o)
    );
}
