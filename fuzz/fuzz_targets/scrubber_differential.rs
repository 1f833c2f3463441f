//! Differential: the response scrubber (value and its percent-encoded forms → placeholder,
//! base64 forms → asterisks, forms the boundary sent → what the sandbox wrote) gives the
//! one-shot answer on any chunking, and its output contains none of those forms.
#![no_main]
use libfuzzer_sys::fuzz_target;
use standin_policy::egress::DomainName;
use standin_policy::secrets::{
    Scrubber, SecretEntry, SecretInjection, SecretSet, SecretValue, SentForm,
};
use zeroize::Zeroizing;
use std::sync::Arc;

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (data, cuts) = input;
    let e = |env: &str, v: &str| SecretEntry {
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
        // D is long enough for its base64 forms to be scrubbed too.
        entries: vec![
            e("A", "sk-1"),
            e("B", "sk-12"),
            e("C", "xyzzy"),
            e("D", "sk-long-value-1"),
            // E has percent-encoded forms as well.
            e("E", "pc/+=value"),
        ],
        ..Default::default()
    });
    let ids = Arc::new(vec![0, 1, 2, 3, 4]);
    // A form the boundary sent (base64 of "u:sk-long-value-1"), given back as written.
    let sent = Arc::new(vec![SentForm {
        text: Zeroizing::new(b"dTpzay1sb25nLXZhbHVlLTE=".to_vec()),
        original: b"dTokTVNCX0Q=".to_vec(),
    }]);
    let one = Scrubber::new(set.clone(), ids.clone()).with_sent(sent.clone());
    let expected = one.replace_all(&data).unwrap_or_else(|| data.clone());
    let mut points: Vec<usize> = cuts.iter().map(|c| usize::from(*c) % (data.len() + 1)).collect();
    points.sort_unstable();
    points.push(data.len());
    let mut s = Scrubber::new(set, ids).with_sent(sent);
    let mut out = Vec::new();
    let mut prev = 0;
    for &p in &points {
        s.push(&data[prev..p], &mut out);
        prev = p;
    }
    s.finish(&mut out);
    assert_eq!(out, expected);
    assert!(!one.contains_any(&out));
});
