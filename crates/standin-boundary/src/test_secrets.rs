//! Secrets for unit tests.

use standin_policy::egress::DomainName;
use standin_policy::secrets::{
    SecretEntry, SecretInjection, SecretSet, SecretValue, default_placeholder,
};
use std::sync::Arc;

/// One secret `env` holding `value`, placeholder `$MSB_<env>`, allowed for
/// `api.example.com`, with the default scopes.
pub(crate) fn one_secret(env: &str, value: &[u8]) -> Arc<SecretSet> {
    let entry = SecretEntry {
        env_var: env.into(),
        value: SecretValue::new(value),
        placeholder: default_placeholder(env),
        allowed_hosts: vec![DomainName::parse("api.example.com").unwrap()],
        allowed_host_patterns: vec![],
        allow_any_host: false,
        require_tls_identity: true,
        injection: SecretInjection::default(),
        on_violation: None,
        aws: None,
        require: false,
        retired: Vec::new(),
    };
    Arc::new(SecretSet {
        entries: vec![entry],
        ..Default::default()
    })
}
