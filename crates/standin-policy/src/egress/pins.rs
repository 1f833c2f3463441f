//! The pin table: which names this sandbox resolved to which addresses, and until when.
//!
//! Filled by the DNS forwarder from every A/AAAA answer it hands the sandbox; read by the relay
//! (domain rules) and, later, by secret substitution (host identity). Time is passed in, so
//! the table stays pure and testable.

use super::domain::DomainName;
use super::policy::canonical;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Shortest time a pin lives, whatever the record's TTL: clients connect (and keep
/// connections alive) well after a 0- or 1-second TTL has run out.
pub const MIN_PIN_TTL: Duration = Duration::from_secs(60);
/// Longest time a pin lives.
pub const MAX_PIN_TTL: Duration = Duration::from_secs(24 * 3600);
/// Most pins one sandbox keeps; beyond it the pins closest to expiry are dropped first.
pub const MAX_PINS: usize = 16_384;

#[derive(Debug, Clone)]
struct Pin {
    name: DomainName,
    expires: Instant,
}

/// Address → names resolved to it by this sandbox.
#[derive(Debug, Default, Clone)]
pub struct PinTable {
    by_ip: HashMap<IpAddr, Vec<Pin>>,
    len: usize,
}

impl PinTable {
    /// An empty table.
    pub fn new() -> PinTable {
        PinTable::default()
    }

    /// Number of live-or-stale pins held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Record that `name` resolved to `ip` with `ttl`, seen at `now`.
    pub fn insert(&mut self, name: DomainName, ip: IpAddr, ttl: Duration, now: Instant) {
        let expires = now + ttl.clamp(MIN_PIN_TTL, MAX_PIN_TTL);
        let pins = self.by_ip.entry(canonical(ip)).or_default();
        match pins.iter_mut().find(|p| p.name == name) {
            Some(p) => p.expires = p.expires.max(expires),
            None => {
                pins.push(Pin { name, expires });
                self.len += 1;
            }
        }
        if self.len > MAX_PINS {
            self.evict(now);
        }
    }

    /// Names resolved to `ip` that have not expired at `now`.
    pub fn names_for(&self, ip: IpAddr, now: Instant) -> Vec<DomainName> {
        self.by_ip
            .get(&canonical(ip))
            .map(|pins| {
                pins.iter()
                    .filter(|p| p.expires > now)
                    .map(|p| p.name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Drop expired pins; if still over [`MAX_PINS`], drop the pins closest to expiry.
    fn evict(&mut self, now: Instant) {
        self.by_ip.retain(|_, pins| {
            pins.retain(|p| p.expires > now);
            !pins.is_empty()
        });
        self.len = self.by_ip.values().map(Vec::len).sum();
        while self.len > MAX_PINS {
            let victim = self
                .by_ip
                .iter()
                .flat_map(|(ip, pins)| {
                    pins.iter()
                        .enumerate()
                        .map(move |(i, p)| (p.expires, *ip, i))
                })
                .min();
            let Some((_, ip, i)) = victim else { break };
            if let Some(pins) = self.by_ip.get_mut(&ip) {
                pins.swap_remove(i);
                if pins.is_empty() {
                    self.by_ip.remove(&ip);
                }
            }
            self.len -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    #[test]
    fn pins_expire_after_the_floored_ttl() {
        let t0 = Instant::now();
        let mut t = PinTable::new();
        let ip: IpAddr = "45.90.1.10".parse().unwrap();
        t.insert(n("api.openai.com"), ip, Duration::from_secs(1), t0);
        assert_eq!(
            t.names_for(ip, t0 + Duration::from_secs(30)),
            vec![n("api.openai.com")]
        );
        assert!(t.names_for(ip, t0 + MIN_PIN_TTL).is_empty());
        t.insert(n("long.example"), ip, Duration::from_secs(3600), t0);
        assert_eq!(
            t.names_for(ip, t0 + Duration::from_secs(3000)),
            vec![n("long.example")]
        );
        let mapped: IpAddr = "::ffff:45.90.1.10".parse().unwrap();
        assert_eq!(
            t.names_for(mapped, t0).len(),
            2,
            "v4-mapped is the same address"
        );
        assert!(t.names_for("45.90.1.11".parse().unwrap(), t0).is_empty());
    }

    #[test]
    fn reinsertion_extends_and_the_table_is_bounded() {
        let t0 = Instant::now();
        let mut t = PinTable::new();
        let ip: IpAddr = "2a0b:4d07::10".parse().unwrap();
        t.insert(n("a.example"), ip, MIN_PIN_TTL, t0);
        t.insert(
            n("a.example"),
            ip,
            MIN_PIN_TTL,
            t0 + Duration::from_secs(50),
        );
        assert_eq!(t.len(), 1);
        assert_eq!(t.names_for(ip, t0 + Duration::from_secs(100)).len(), 1);
        for i in 0..(MAX_PINS as u32 + 10) {
            t.insert(n("b.example"), IpAddr::V4(i.into()), MIN_PIN_TTL, t0);
        }
        assert_eq!(t.len(), MAX_PINS);
    }
}
