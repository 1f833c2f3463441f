//! [`BoundaryConfig`]: everything one sandbox's boundary is told at start.

use crate::events::EventSink;
use crate::tls::ca::SandboxCa;
use standin_policy::egress::EgressPolicy;
use standin_policy::secrets::{Refusal, SecretSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Default for the most TCP connections one sandbox may have open through the boundary at
/// once ([`BoundaryConfig::max_connections`]); more are reset. An inspected connection holds
/// two descriptors and about 100 KiB on the host side.
pub const DEFAULT_MAX_CONNECTIONS: usize = 8192;
/// Largest accepted [`BoundaryConfig::max_connections`].
pub const MAX_CONNECTIONS_LIMIT: usize = 1 << 20;

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
    /// Most connections of the sandbox open at once (at most [`MAX_CONNECTIONS_LIMIT`]);
    /// beyond it, a reset and an event.
    pub max_connections: usize,
    /// Where audit events go.
    pub events: EventSink,
    /// Secrets (placeholders in the sandbox, values here). Any secret turns on inspection of
    /// every connection and TLS interception.
    pub secrets: Option<Arc<SecretSet>>,
    /// The sandbox's CA (required with secrets).
    pub ca: Option<Arc<SandboxCa>>,
    /// Extra roots for verifying upstream TLS (besides the host's system roots).
    pub upstream_cas: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// What to call on block-and-terminate.
    pub on_terminate: TerminateHook,
    /// How blocked HTTP requests and egress denials are answered (a secret's own violation
    /// policy may override it for its violations).
    pub refusal: Refusal,
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
            max_connections: DEFAULT_MAX_CONNECTIONS,
            events: EventSink::default(),
            secrets: None,
            ca: None,
            upstream_cas: Vec::new(),
            on_terminate: TerminateHook::default(),
            refusal: Refusal::Reset,
        }
    }
}
