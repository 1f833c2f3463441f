//! # standin-boundary: the host-side network boundary
//!
//! Serves the sandbox's captured traffic. The sandbox runtime hands over six listening
//! sockets that live in the sandbox's network namespace ([`CaptureListeners`]); every TCP
//! connection the workload opens arrives on a relay listener, every DNS query on a DNS
//! listener. This crate decides what happens to each, on the caller's tokio runtime.
//!
//! Layers (see `docs/ARCHITECTURE.md`):
//! - [`original_dst`]: where a captured connection was headed (`SO_ORIGINAL_DST`);
//! - [`guard`]: destinations the boundary never dials (the host itself, the sandbox's own
//!   addresses, the listeners);
//! - [`relay`]: the TCP relay: policy check, then `copy_bidirectional` with fixed buffers
//!   (no per-chunk allocation) for uninspected streams;
//! - [`client_hello`]: the server name of a TLS ClientHello, peeked without consuming it;
//! - [`dns`]: the DNS forwarder: every query evaluated as egress, rebind protection, the pin
//!   table;
//! - [`events`]: the audit stream (JSONL file and SDK callbacks);
//! - [`shared`]: the per-sandbox state every task reads (policy, pins, events).
//!
//! With secrets configured, every allowed connection is inspected ([`intercept`]):
//! - [`ca`]: the per-sandbox CA and its cached leaves; [`upstream_tls`]: verified TLS to the
//!   real destination;
//! - [`http`]: HTTP/1.1 and HTTP/2 on hyper: per-request identity checks, substitution in
//!   headers, Basic credentials, query and body, violation scanning, response scrubbing,
//!   forwarding on the client connection's own upstream connection (or a pooled idle one
//!   verified for the same name);
//! - [`connect_proxy`]: `CONNECT` from proxies configured in the sandbox, answered by the
//!   boundary and bound to the target;
//! - [`ws`]: WebSocket frames after an upgrade, unmasked and scanned;
//! - [`scanned_relay`]: non-HTTP streams, scanned for placeholders on the way out;
//! - [`plan`]: which placeholder becomes what for one destination; [`violation`]: acting on
//!   violations (events, terminate);
//! - [`prefixed`]: replaying peeked bytes; [`abort`]: resetting a blocked connection at once.
//!
//! The egress policy and the secret model are pure and live in `standin_policy`.

pub mod abort;
pub mod ca;
pub mod client_hello;
pub mod connect_proxy;
pub mod dns;
pub mod events;
#[doc(hidden)]
pub mod fuzzing;
pub mod guard;
pub mod http;
pub mod idle;
pub mod intercept;
pub mod limits;
pub mod listeners;
pub mod original_dst;
pub mod plan;
pub mod prefixed;
pub mod relay;
pub mod scan_gate;
pub mod scanned_relay;
pub mod shared;
pub mod shared_socket;
#[cfg(test)]
mod test_secrets;
pub mod upstream_tls;
pub mod violation;
pub mod ws;

pub use events::{Event, EventKind, EventSink};
pub use listeners::CaptureListeners;

use standin_policy::egress::EgressPolicy;
use standin_policy::secrets::SecretSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::task::JoinSet;

/// Errors starting the boundary.
#[derive(Debug, Error)]
pub enum BoundaryError {
    /// A listener descriptor could not be registered with the runtime.
    #[error("cannot serve capture listener {which}: {source}")]
    Listener {
        /// Which listener.
        which: &'static str,
        /// Cause.
        source: std::io::Error,
    },
    /// Upstream TLS could not be configured.
    #[error(transparent)]
    UpstreamTls(#[from] upstream_tls::UpstreamTlsError),
    /// Secrets were configured without a CA.
    #[error("secrets need TLS interception, but no sandbox CA was given")]
    NoCa,
}

/// Called once when a block-and-terminate violation fires: the owner kills the sandbox.
#[derive(Clone, Default)]
pub struct TerminateHook(pub Option<Arc<dyn Fn() + Send + Sync>>);

impl std::fmt::Debug for TerminateHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "TerminateHook(set)"
        } else {
            "TerminateHook(none)"
        })
    }
}

/// Settings of one sandbox's boundary.
#[derive(Debug, Clone)]
pub struct BoundaryConfig {
    /// Sandbox id, as it appears in events.
    pub sandbox_id: String,
    /// Addresses of the sandbox itself (never valid destinations).
    pub sandbox_addrs: Vec<IpAddr>,
    /// The egress policy.
    pub policy: EgressPolicy,
    /// DNS resolvers the forwarder uses, in order.
    pub dns_upstreams: Vec<SocketAddr>,
    /// How long an upstream TCP connect may take before the client gets a reset.
    pub connect_timeout: Duration,
    /// A relayed connection on which no byte moved in either direction for this long is
    /// closed.
    pub idle_timeout: Duration,
    /// Most connections of the sandbox open at once; beyond it, a reset and an event.
    pub max_connections: usize,
    /// Where audit events go.
    pub events: EventSink,
    /// Secrets (placeholders in the sandbox, values here). Any secret turns on inspection of
    /// every connection and TLS interception.
    pub secrets: Option<Arc<SecretSet>>,
    /// The sandbox's CA (required with secrets).
    pub ca: Option<Arc<ca::SandboxCa>>,
    /// Extra roots for verifying upstream TLS (besides the host's system roots).
    pub upstream_cas: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// What to call on block-and-terminate.
    pub on_terminate: TerminateHook,
}

impl Default for BoundaryConfig {
    fn default() -> Self {
        BoundaryConfig {
            sandbox_id: String::new(),
            sandbox_addrs: Vec::new(),
            policy: EgressPolicy::default(),
            dns_upstreams: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(15 * 60),
            max_connections: shared::DEFAULT_MAX_CONNECTIONS,
            events: EventSink::default(),
            secrets: None,
            ca: None,
            upstream_cas: Vec::new(),
            on_terminate: TerminateHook::default(),
        }
    }
}

/// A running boundary. Dropping it stops every task and closes the listeners, which releases
/// the sandbox's network namespace.
#[derive(Debug)]
pub struct Boundary {
    tasks: JoinSet<()>,
}

impl Boundary {
    /// Start serving `listeners` on the current tokio runtime.
    pub fn start(
        listeners: CaptureListeners,
        config: BoundaryConfig,
    ) -> Result<Boundary, BoundaryError> {
        let intercept = config.secrets.as_ref().is_some_and(|s| !s.is_empty());
        let upstream = if intercept {
            if config.ca.is_none() {
                return Err(BoundaryError::NoCa);
            }
            Some(upstream_tls::client_config(&config.upstream_cas)?)
        } else {
            None
        };
        let shared = Arc::new(shared::Shared::new(config, upstream));
        let mut tasks = JoinSet::new();
        let served = listeners.into_tokio()?;
        for (listener, local) in served.relays {
            tasks.spawn(relay::serve(listener, local, shared.clone()));
        }
        for sock in served.dns_udp {
            tasks.spawn(dns::serve_udp(sock, shared.clone()));
        }
        for listener in served.dns_tcp {
            tasks.spawn(dns::serve_tcp(listener, shared.clone()));
        }
        Ok(Boundary { tasks })
    }

    /// Stop serving (also done on drop).
    pub fn shutdown(&mut self) {
        self.tasks.abort_all();
    }
}

impl Drop for Boundary {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}
