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
//! The egress policy itself is pure and lives in `standin_policy::egress`. TLS interception
//! and secret substitution plug in between the policy check and the relay in later layers.

pub mod client_hello;
pub mod dns;
pub mod events;
pub mod guard;
pub mod idle;
pub mod listeners;
pub mod original_dst;
pub mod relay;
pub mod shared;

pub use events::{Event, EventKind, EventSink};
pub use listeners::CaptureListeners;

use standin_policy::egress::EgressPolicy;
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
    /// Where audit events go.
    pub events: EventSink,
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
            events: EventSink::default(),
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
        let shared = Arc::new(shared::Shared::new(config));
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
