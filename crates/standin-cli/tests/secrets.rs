//! End-to-end: secrets through the boundary, with real clients in the sandbox and a recording
//! upstream in the fake internet. Each test asserts both what the client saw and what the
//! destination actually received.

mod support;

use support::*;

const VALUE: &str = "sk-real-7f3a9c";
const PH: &str = "$MSB_OPENAI_API_KEY";

fn secret_args<'a>(ca: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--upstream-ca",
        ca,
        "--secret",
        "OPENAI_API_KEY@api.openai.com",
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn substitutes_in_a_header_for_the_allowed_host() {
    if !is_root() {
        return;
    }
    let net = FakeInternet::with_http(&[80], &[443]);
    let ca = net.ca_file().display().to_string();
    let o = net.run_sh_env(
        &secret_args(&ca, &[]),
        &[("OPENAI_API_KEY", VALUE)],
        r#"echo "env=$OPENAI_API_KEY"; curl -sS -m 5 -H "Authorization: Bearer $OPENAI_API_KEY" https://api.openai.com/v1/models"#,
    );
    let out = stdout(&o);
    eprintln!("OUT: {out}\nERR: {}\nRECV: {}", stderr(&o), net.received());
    assert!(out.contains(&format!("env={PH}")), "{out}\n{}", stderr(&o));
    assert!(
        out.contains(&format!("Bearer {VALUE}")),
        "{out}\n{}",
        stderr(&o)
    );
    assert!(
        net.received_at(UPSTREAM_V4)
            .contains(&format!("Authorization: Bearer {VALUE}"))
    );
}
