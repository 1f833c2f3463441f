//! WebSocket server frames through the scrubber: the parser never panics, gives the same
//! answer on any chunking, and no message or control frame it writes contains a value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use standin_boundary::fuzzing::ServerFrames;
use standin_policy::egress::DomainName;
use standin_policy::secrets::{Scrubber, SecretEntry, SecretInjection, SecretSet, SecretValue};
use std::sync::Arc;

const VALUES: [&[u8]; 3] = [b"sk-1", b"sk-12", b"xyzzy"];

/// The frames of `out` (written by the boundary: unmasked, complete) as (fin, opcode, payload).
fn frames(mut out: &[u8]) -> Vec<(bool, u8, &[u8])> {
    let mut list = Vec::new();
    while out.len() >= 2 {
        let (len, at) = match out[1] & 0x7f {
            126 => (usize::from(u16::from_be_bytes([out[2], out[3]])), 4),
            127 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&out[2..10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            n => (usize::from(n), 2),
        };
        assert_eq!(
            out[1] & 0x80,
            0,
            "the boundary never masks towards the sandbox"
        );
        list.push((out[0] & 0x80 != 0, out[0] & 0x0f, &out[at..at + len]));
        out = &out[at + len..];
    }
    assert!(out.is_empty(), "only whole frames are written");
    list
}

fn has_value(hay: &[u8]) -> bool {
    VALUES.iter().any(|v| hay.windows(v.len()).any(|w| w == *v))
}

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (data, cuts) = input;
    let e = |env: &str, v: &[u8]| SecretEntry {
        env_var: env.into(),
        value: SecretValue::new(v),
        placeholder: format!("<{env}>"),
        allowed_hosts: vec![DomainName::parse("a.example").unwrap()],
        allowed_host_patterns: vec![],
        allow_any_host: false,
        require_tls_identity: true,
        injection: SecretInjection::default(),
        on_violation: None,
        aws: None,
        require: false,
        retired: Vec::new(),
    };
    let set = Arc::new(SecretSet {
        entries: vec![e("A", VALUES[0]), e("B", VALUES[1]), e("C", VALUES[2])],
        ..Default::default()
    });
    let ids = Arc::new(vec![0, 1, 2]);
    let whole = ServerFrames::new(Scrubber::new(set.clone(), ids.clone())).push(&data);
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| usize::from(*c) % (data.len() + 1))
        .collect();
    points.sort_unstable();
    points.push(data.len());
    let mut p = ServerFrames::new(Scrubber::new(set, ids));
    let mut out = Vec::new();
    let mut prev = 0;
    let mut failed = false;
    for &c in &points {
        match p.push(&data[prev..c]) {
            Ok(o) => out.extend(o),
            Err(_) => {
                failed = true;
                break;
            }
        }
        prev = c;
    }
    match whole {
        Err(_) => assert!(failed, "refused whole but not in pieces"),
        Ok(expected) => {
            assert!(!failed, "refused in pieces but not whole");
            assert_eq!(out, expected, "the chunking changed the output");
        }
    }
    let mut message = Vec::new();
    for (fin, opcode, payload) in frames(&out) {
        if opcode & 0x8 != 0 {
            assert!(payload.len() <= 125);
            assert!(!has_value(payload), "a value in a control frame");
            continue;
        }
        message.extend_from_slice(payload);
        if fin {
            assert!(!has_value(&message), "a value in a message");
            message.clear();
        }
    }
    // A message still in progress holds back what may start a value: what was sent is clean.
    assert!(!has_value(&message), "a value in an unfinished message");
});
