//! DNS messages from the sandbox: parsing and the exfiltration check never panic.
#![no_main]
use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use standin_policy::egress::DomainName;
use standin_policy::secrets::dns_name::find_in_name;
use standin_policy::secrets::{SecretEntry, SecretInjection, SecretSet, SecretValue};

fuzz_target!(|data: &[u8]| {
    let set = SecretSet {
        entries: vec![SecretEntry {
            env_var: "K".into(),
            value: SecretValue::new("v"),
            placeholder: "$MSB_K".into(),
            allowed_hosts: vec![DomainName::parse("a.example").unwrap()],
            allowed_host_patterns: vec![],
            allow_any_host: false,
            require_tls_identity: true,
            injection: SecretInjection::default(),
            on_violation: None,
            aws: None,
            require: false,
            retired: Vec::new(),
        }],
        ..Default::default()
    };
    if let Ok(m) = Message::from_vec(data) {
        for q in &m.queries {
            let _ = find_in_name(&set, q.name().iter(), &|_| true);
            let _ = DomainName::parse(&q.name().to_ascii());
        }
    }
    let _ = find_in_name(&set, data.split(|b| *b == b'.'), &|_| true);
});
