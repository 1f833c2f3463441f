//! State shared by every task of one sandbox's boundary.

use crate::BoundaryConfig;
use crate::events::{Event, EventKind};
use standin_policy::egress::{Decision, PinTable};
use std::net::IpAddr;
use std::sync::RwLock;

/// One sandbox's boundary state.
#[derive(Debug)]
pub struct Shared {
    /// Configuration.
    pub config: BoundaryConfig,
    /// Names this sandbox resolved, by address. Written per DNS answer, read per connection.
    pub pins: RwLock<PinTable>,
    /// Addresses of the host (group `host`).
    pub host_addrs: Vec<IpAddr>,
    /// Whether the policy names domains, so the relay must read the TLS server name.
    pub needs_sni: bool,
    /// Bounds the DNS queries in flight (each holds an upstream socket).
    pub dns_slots: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Most DNS queries one sandbox may have in flight; more are dropped (the client retries).
pub const MAX_DNS_IN_FLIGHT: usize = 256;

impl Shared {
    pub(crate) fn new(config: BoundaryConfig) -> Shared {
        Shared {
            host_addrs: host_addresses(),
            needs_sni: config.policy.has_domain_rules(),
            dns_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_DNS_IN_FLIGHT)),
            config,
            pins: RwLock::new(PinTable::new()),
        }
    }

    /// Whether `ip` is one of the host's own addresses.
    pub fn is_host(&self, ip: IpAddr) -> bool {
        let ip = standin_policy::egress::policy::canonical(ip);
        self.host_addrs.contains(&ip)
    }

    /// The rule text for an event.
    pub fn rule_name(&self, d: Decision) -> String {
        match d.rule.and_then(|i| self.config.policy.rules.get(i)) {
            Some(r) => r.to_string(),
            None => "default".to_owned(),
        }
    }

    /// A new event for this sandbox.
    pub fn event(&self, kind: EventKind, protocol: &'static str) -> Event {
        Event::new(&self.config.sandbox_id, kind, protocol)
    }
}

/// Addresses configured on the host's interfaces (the namespace the boundary runs in).
fn host_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs {
            let Some(sa) = ifa.address else { continue };
            if let Some(v4) = sa.as_sockaddr_in() {
                out.push(IpAddr::V4(v4.ip()));
            } else if let Some(v6) = sa.as_sockaddr_in6() {
                out.push(IpAddr::V6(v6.ip()));
            }
        }
    }
    out
}
