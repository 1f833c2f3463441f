//! Faults: upstreams that reset or lie about their identity, clients that stall, send too
//! much or never read. Each time the boundary stays up, other connections keep working, and
//! no value leaks.

mod support;

use support::*;

const VALUE: &str = "sk-real-7f3a9c";
const ENV: &[(&str, &str)] = &[("OPENAI_API_KEY", VALUE), ("WRONG_KEY", VALUE)];

fn run(net: &FakeInternet, extra: &[&str], script: &str) -> std::process::Output {
    run_with_secret(
        net,
        Some("OPENAI_API_KEY@api.openai.com"),
        extra,
        ENV,
        script,
    )
}

const OK: &str = r#"curl --http1.1 -sS -m 5 -o /dev/null -w 'after %{http_code}\n' -H "Authorization: Bearer $OPENAI_API_KEY" https://api.openai.com/after"#;

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn upstream_resets_mid_response_and_the_boundary_carries_on() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let o = run(
        &net,
        &[],
        &format!(
            r#"curl --http1.1 -sS -m 5 -H "Authorization: Bearer $OPENAI_API_KEY" https://api.openai.com/reset-mid >/dev/null 2>&1; echo "reset=$?"; {OK}"#
        ),
    );
    let out = stdout(&o);
    assert!(!out.contains("reset=0"), "{}", report(&o, &net));
    assert!(out.contains("after 200"), "{}", report(&o, &net));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn upstream_resets_mid_request_and_the_boundary_carries_on() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let o = run(
        &net,
        &[],
        &format!(
            r#"head -c 4000000 /dev/zero | curl --http1.1 -sS -m 10 -H "Authorization: Bearer $OPENAI_API_KEY" --data-binary @- https://api.openai.com/reset-req >/dev/null 2>&1; echo "reset=$?"; {OK}"#
        ),
    );
    let out = stdout(&o);
    assert!(!out.contains("reset=0"), "{}", report(&o, &net));
    assert!(out.contains("after 200"), "{}", report(&o, &net));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn a_certificate_for_another_name_fails_the_request_and_nothing_is_substituted() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let events = EventsFile::new();
    let ev = events.arg();
    let o = run(
        &net,
        &["--secret", "WRONG_KEY@wrongcert.example", "--events", ev],
        &format!(
            r#"curl --http1.1 -sS -m 5 -H "Authorization: Bearer $WRONG_KEY" https://wrongcert.example/x >/dev/null 2>&1; echo "wrong=$?"; {OK}"#
        ),
    );
    let out = stdout(&o);
    assert!(!out.contains("wrong=0"), "{}", report(&o, &net));
    assert!(out.contains("after 200"), "{}", report(&o, &net));
    assert!(!net.received().contains("GET /x"), "{}", net.received());
    let ev = events.read();
    assert!(
        ev.contains("upstream-failed") && ev.contains("wrongcert.example"),
        "{ev}"
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn oversized_heads_slow_clients_and_clients_that_never_read() {
    let net = FakeInternet::with_http(&[80], &[443]);
    let py = r#"
import os, socket, ssl, time
ctx = ssl.create_default_context()
def conn():
    return ctx.wrap_socket(socket.create_connection(("api.openai.com", 443), timeout=15), server_hostname="api.openai.com")
# 1. A 100 KiB header: refused, never forwarded.
# The boundary may answer 431 and close, or close while the rest is still being sent.
s = conn()
try:
    s.sendall(b"GET /huge HTTP/1.1\r\nHost: api.openai.com\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")
    r = s.recv(100)
except OSError as e:
    r = b"Connection"
print("huge", r[:12])
# 2. A client that asks for 16 MiB and never reads it.
lazy = conn()
lazy.sendall(b"GET /big HTTP/1.1\r\nHost: api.openai.com\r\n\r\n")
# 3. A slow-loris head: closed by the boundary (idle timeout 2 s here).
slow = conn()
slow.sendall(b"GET /slow HTTP/1.1\r\nHost: api.openai.com\r\n")
t = time.time()
try:
    got = slow.recv(100)
except OSError as e:
    got = type(e).__name__.encode()
print("slow-closed", got[:12], time.time() - t < 14)
"#;
    let o = run(
        &net,
        &["--idle-timeout", "2"],
        &format!("{}; {OK}", python(py)),
    );
    let out = stdout(&o);
    assert!(
        out.contains("huge b'HTTP/1.1 431")
            || out.contains("huge b''")
            || out.contains("huge b'Connection"),
        "{}",
        report(&o, &net)
    );
    assert!(
        out.contains("slow-closed") && out.contains("True"),
        "{}",
        report(&o, &net)
    );
    assert!(out.contains("after 200"), "{}", report(&o, &net));
    let got = net.received();
    assert!(!got.contains("/huge"), "{got}");
    assert!(!got.contains("/slow"), "{got}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn a_dns_upstream_that_never_answers_gives_servfail_in_time_and_the_next_one_is_used() {
    // UDP 53 on the upstream's address counts queries and never answers.
    let net = FakeInternet::with_http_udp(&[80], &[443], &[53]);
    let events = EventsFile::new();
    let ev = events.arg();
    // Only the silent resolver: the lookup fails (SERVFAIL, not a hang), the failure is an
    // event, and connections that need no lookup still work.
    let script = format!(
        "dig +tries=1 +timeout=8 api.openai.com | grep -o 'status: [A-Z]*'; \
         curl -sS -m 5 -o /dev/null -w 'by-address %{{http_code}}\\n' https://{UPSTREAM_V4}/by-address; \
         curl -sS -m 5 http://{UPSTREAM_V4}/udp-count"
    );
    let o = run(
        &net,
        &["--dns-upstream", UPSTREAM_V4, "--events", ev],
        &script,
    );
    let out = stdout(&o);
    // An answer, not a client-side timeout: the forwarder gives up on the resolver within its
    // deadline (3 s) and says so.
    assert!(out.contains("status: SERVFAIL"), "{}", report(&o, &net));
    assert!(out.contains("by-address 200"), "{}", report(&o, &net));
    let queries: u64 = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v["udp"].as_u64())
        .unwrap_or(0);
    assert!(
        queries > 0,
        "the silent resolver got no query:\n{}",
        report(&o, &net)
    );
    let log = events.read();
    assert!(
        log.lines()
            .any(|l| l.contains("\"upstream-failed\"") && l.contains("timed out")),
        "no upstream-failed event:\n{log}"
    );

    // The silent resolver first, the real one second: the forwarder moves on in time, the
    // name resolves and is pinned, and the secret is substituted as usual.
    let o = run(
        &net,
        &["--dns-upstream", UPSTREAM_V4, "--dns-upstream", DNS_V4],
        OK,
    );
    assert!(stdout(&o).contains("after 200"), "{}", report(&o, &net));
    assert!(
        net.received().contains(&format!("Bearer {VALUE}")),
        "{}",
        report(&o, &net)
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn a_body_too_large_to_rewrite_is_refused_whole_and_the_boundary_carries_on() {
    let net = FakeInternet::with_http(&[80], &[443]);
    // Body injection on: a Content-Length body is read whole to be rewritten, up to 16 MiB.
    let mut cfg = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(
        &mut cfg,
        b"[[secret]]\nenv = \"OPENAI_API_KEY\"\nallow_hosts = [\"api.openai.com\"]\ninject = { body = true }\n",
    )
    .unwrap();
    let events = EventsFile::new();
    let script = format!(
        "printf 'key=%s&pad=' \"$OPENAI_API_KEY\" > /tmp/big; head -c 17000000 /dev/zero | tr '\\\\0' a >> /tmp/big; \
         curl --http1.1 -sS -m 20 -o /dev/null --data-binary @/tmp/big https://api.openai.com/oversized; echo \"big=$?\"; {OK}"
    );
    let o = run_with_secret(
        &net,
        None,
        &[
            "--config",
            cfg.path().to_str().unwrap(),
            "--events",
            events.arg(),
        ],
        ENV,
        &script,
    );
    let out = stdout(&o);
    assert!(
        out.contains("big=") && !out.contains("big=0"),
        "{}",
        report(&o, &net)
    );
    assert!(out.contains("after 200"), "{}", report(&o, &net));
    let got = net.received();
    assert!(!got.contains("/oversized"), "a byte of it left: {got}");
    let log = events.read();
    assert!(
        log.lines()
            .any(|l| l.contains("\"request-blocked\"") && l.contains("over 16 MiB")),
        "no event says why:\n{log}"
    );
}
