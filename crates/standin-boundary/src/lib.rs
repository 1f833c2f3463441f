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
//! - [`relay`]: the TCP relay (zero-copy splice-free `copy_bidirectional` for uninspected
//!   streams);
//! - [`dns`]: the DNS listener. For now it answers every query `SERVFAIL` at once, so clients
//!   fail fast; forwarding, policy and the pin table come with the DNS issue.
//!
//! Egress policy, TLS interception and secret substitution plug in between `guard` and
//! `relay` in later layers.

pub mod dns;
pub mod guard;
pub mod listeners;
pub mod original_dst;
pub mod relay;

pub use listeners::CaptureListeners;

use std::net::IpAddr;
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
    /// Addresses of the sandbox itself (never valid destinations).
    pub sandbox_addrs: Vec<IpAddr>,
    /// How long an upstream TCP connect may take before the client gets a reset.
    pub connect_timeout: Duration,
}

impl Default for BoundaryConfig {
    fn default() -> Self {
        BoundaryConfig {
            sandbox_addrs: Vec::new(),
            connect_timeout: Duration::from_secs(10),
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
        let config = Arc::new(config);
        let mut tasks = JoinSet::new();
        let served = listeners.into_tokio()?;
        for (listener, local) in served.relays {
            tasks.spawn(relay::serve(listener, local, config.clone()));
        }
        for sock in served.dns_udp {
            tasks.spawn(dns::serve_udp(sock));
        }
        for listener in served.dns_tcp {
            tasks.spawn(dns::serve_tcp(listener));
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
