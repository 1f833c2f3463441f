//! Entry points for the fuzz targets in `fuzz/` (not an API; hidden from the docs).
//!
//! [`serve_bytes`] runs the real inspected-HTTP path (hyper's HTTP/1.1 or HTTP/2 server on
//! the sandbox side, our checks, rewriting and body scanning, hyper's client towards the
//! destination) over in-memory streams, so a fuzzer drives every byte of request framing,
//! HTTP/2 frames and HPACK as the sandbox would, and sees what the destination received.
//! The parsers the other targets drive are re-exported here.

pub use crate::pipeline::{looks_like_http, split_authority};
pub use crate::tls::client_hello::{Peeked, peek};
pub use crate::ws::{ClientFrames, ServerFrames, WsError};

use crate::config::BoundaryConfig;
use crate::conn::ConnCtx;
use crate::http::Proto;
use crate::io::Abort;
use crate::state::SandboxState;
use standin_policy::egress::{DomainName, HostPattern};
use standin_policy::secrets::{SecretEntry, SecretInjection, SecretSet, SecretValue};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    };
    let secrets = Arc::new(SecretSet {
        entries: vec![entry],
        on_violation: Default::default(),
    });
    let config = BoundaryConfig {
        sandbox_id: "fuzz".into(),
        secrets: Some(secrets),
        ..BoundaryConfig::default()
    };
    let state = Arc::new(SandboxState::new(config, Vec::new()));
    let sni = DomainName::parse(if allowed_sni { ALLOWED } else { OTHER }).ok();
    let dst: SocketAddr = ([203, 0, 113, 7], 443).into();
    let info = Arc::new(ConnCtx::new(
        state,
        dst,
        sni.clone().into_iter().collect(),
        sni,
        true,
        Arc::new(Abort::default()),
    ));

    let (guest, mut sandbox) = tokio::io::duplex(64 * 1024);
    let (upstream, mut destination) = tokio::io::duplex(64 * 1024);
    let input = input.to_vec();
    let client = tokio::spawn(async move {
        let (mut rd, mut wr) = tokio::io::split(&mut sandbox);
        let write = async {
            let _ = wr.write_all(&input).await;
            let _ = wr.shutdown().await;
        };
        let mut sink = Vec::new();
        let _ = tokio::join!(write, rd.read_to_end(&mut sink));
    });
    let server = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        let mut answered = 0;
        loop {
            match destination.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            let heads = got.windows(4).filter(|w| w == b"\r\n\r\n").count();
            while answered < heads {
                answered += 1;
                let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                if destination.write_all(ok).await.is_err() {
                    return got;
                }
            }
        }
        got
    });
    let guest_proto = if h2 { Proto::H2 } else { Proto::H1 };
    let served = crate::http::serve(guest, guest_proto, upstream, Proto::H1, info.clone());
    // Paused time: a wait with nothing left to do ends here instead of hanging.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(600), served).await;
    client.abort();
    let upstream_received =
        match tokio::time::timeout(std::time::Duration::from_secs(600), server).await {
            Ok(Ok(got)) => got,
            _ => Vec::new(),
        };
    Exchange {
        upstream_received,
        blocked: info.is_blocked(),
    }
}
