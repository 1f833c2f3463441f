//! Entry points for the fuzz targets in `fuzz/` (not an API; hidden from the docs).
//!
//! [`serve_bytes`] runs the real inspected-HTTP path over in-memory streams
//! ([`crate::testing`]), so a fuzzer drives every byte of request framing, HTTP/2 frames and
//! HPACK as the sandbox would, and sees what the destination received.
//! The parsers the other targets drive are re-exported here.

pub use crate::pipeline::{looks_like_http, split_authority};
pub use crate::tls::client_hello::{Peeked, peek};
pub use crate::ws::{ClientFrames, ServerFrames, WsError};

use crate::testing::{Case, exchange};
use standin_policy::egress::{DomainName, HostPattern};
use standin_policy::secrets::{SecretEntry, SecretInjection, SecretSet, SecretValue};
use std::sync::Arc;

/// The secret's real value in [`serve_bytes`].
pub const VALUE: &str = "real-VALUE-5e1f";
/// Its placeholder.
pub const PLACEHOLDER: &str = "$MSB_FUZZ_KEY";
/// The host allowed to receive the value.
pub const ALLOWED: &str = "api.example.com";
/// A host that is not.
pub const OTHER: &str = "other.example.net";

/// What one fuzzed connection did.
#[derive(Debug, Default)]
pub struct Exchange {
    /// Every byte the destination received.
    pub upstream_received: Vec<u8>,
    /// Whether the boundary blocked the connection.
    pub blocked: bool,
}

/// Serve `input` as the sandbox's side of one intercepted connection (TLS already
/// terminated, server name `sni`, HTTP/2 when `h2`), towards an HTTP/1.1 destination that
/// answers every request head with a tiny 200. Run it under a runtime with paused time:
/// prefill stalls and timeouts then pass at once.
pub async fn serve_bytes(input: &[u8], h2: bool, allowed_sni: bool) -> Exchange {
    let entry = SecretEntry {
        env_var: "FUZZ_KEY".into(),
        value: SecretValue::new(VALUE),
        placeholder: PLACEHOLDER.into(),
        allowed_hosts: DomainName::parse(ALLOWED).into_iter().collect(),
        allowed_host_patterns: HostPattern::parse("*.example.com").into_iter().collect(),
        allow_any_host: false,
        require_tls_identity: true,
        injection: SecretInjection {
            headers: true,
            basic_auth: true,
            query_params: true,
            body: true,
        },
        on_violation: None,
        aws: None,
        require: false,
        retired: Vec::new(),
    };
    let secrets = Arc::new(SecretSet {
        entries: vec![entry],
        on_violation: Default::default(),
    });
    let mut case = Case::tls(secrets, if allowed_sni { ALLOWED } else { OTHER });
    case.h2 = h2;
    let outcome = exchange(&case, input).await;
    Exchange {
        upstream_received: outcome.upstream_received,
        blocked: outcome.blocked,
    }
}
