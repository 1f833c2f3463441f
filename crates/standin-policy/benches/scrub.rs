//! Throughput of the response scrubber (`cargo bench -p standin-policy --bench scrub`): a
//! 4 MiB body fed in 16 KiB reads, as the boundary feeds a response from a host that may hold
//! a value. Three bodies: plain text, JSON with ordinary escapes (`\n`, `\"`, `\u00e9`) and no
//! value, and JSON that echoes the value with escapes every 64 KiB. Prints MiB/s; nothing is
//! asserted.

use standin_policy::egress::DomainName;
use standin_policy::secrets::{Scrubber, SecretEntry, SecretInjection, SecretSet, SecretValue};
use std::sync::Arc;
use std::time::Instant;

fn set() -> Arc<SecretSet> {
    Arc::new(SecretSet {
        entries: vec![SecretEntry {
            env_var: "OPENAI_API_KEY".into(),
            value: SecretValue::new("sk-proj-7f3a9c2b1d0e4f5a6b7c8d9e"),
            placeholder: "$MSB_OPENAI_API_KEY".into(),
            allowed_hosts: vec![DomainName::parse("api.openai.com").unwrap()],
            allowed_host_patterns: Vec::new(),
            allow_any_host: false,
            require_tls_identity: true,
            injection: SecretInjection::default(),
            on_violation: None,
            aws: None,
            require: false,
            retired: Vec::new(),
        }],
        ..SecretSet::default()
    })
}

fn body(kind: &str) -> Vec<u8> {
    let chunk: &str = match kind {
        "plain" => "The quick brown fox jumps over the lazy dog, again and again. ",
        "json" => r#"{"text":"line one\nline \"two\" caf\u00e9 \/ path","n":12345},"#,
        _ => r#"{"echo":"sk-proj-7f3a9c2b1d0e4f5a6b7c8d9e"},{"pad":"\u0061\/\u0062"},"#,
    };
    let mut out = Vec::with_capacity(4 << 20);
    let mut i = 0usize;
    while out.len() < 4 << 20 {
        if kind == "echo" && i.is_multiple_of(1024) {
            out.extend_from_slice(br#"{"echo":"sk-proj-7f3a9c2b1d0e4f5a6b7c8d9\u0065"},"#);
        } else if kind == "echo" {
            out.extend_from_slice(br#"{"text":"line one\nline two","n":12345},"#);
        } else {
            out.extend_from_slice(chunk.as_bytes());
        }
        i += 1;
    }
    out
}

fn main() {
    let set = set();
    for kind in ["plain", "json", "echo"] {
        let data = body(kind);
        let rounds = 20;
        let start = Instant::now();
        let mut replaced = 0usize;
        for _ in 0..rounds {
            let mut s = Scrubber::new(set.clone(), Arc::new(vec![0]));
            let mut out = Vec::with_capacity(data.len());
            for c in data.chunks(16 * 1024) {
                s.push(c, &mut out);
            }
            s.finish(&mut out);
            replaced += usize::from(out.len() != data.len());
        }
        let secs = start.elapsed().as_secs_f64();
        let mib = (data.len() * rounds) as f64 / (1 << 20) as f64;
        println!(
            "{kind:>5}: {:8.1} MiB/s (changed: {replaced}/{rounds})",
            mib / secs
        );
    }
}
