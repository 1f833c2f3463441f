//! State shared by every task of one sandbox's boundary.

use crate::BoundaryConfig;
use crate::events::{Event, EventKind};
use crate::http::{Proto, UpstreamConn};
use crate::plan::Plan;
use standin_policy::egress::{Decision, DomainName, PinTable};
use standin_policy::secrets::{Destination, SecretSet};
use std::collections::HashMap;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::time::Instant;

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
    /// Bounds the TCP connections open at once.
    pub conn_slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// The secrets; `Some` (and non-empty) turns inspection and TLS interception on.
    pub secrets: Option<Arc<SecretSet>>,
    /// Upstream TLS client configuration (when intercepting).
    pub upstream_tls: Option<Arc<rustls::ClientConfig>>,
    terminated: AtomicBool,
    kill: tokio::sync::watch::Sender<bool>,
    plans: Mutex<HashMap<PlanKey, Arc<Plan>>>,
    pool: Mutex<HashMap<PoolKey, Vec<Pooled>>>,
}

/// Where a pooled connection leads: the address and the verified server name.
type PoolKey = (SocketAddr, Option<DomainName>);

/// An idle upstream connection, verified for a server name at an address.
#[derive(Debug)]
pub struct Pooled {
    /// The connection.
    pub conn: UpstreamConn,
    /// A handle on its socket, so a connection that reuses it can reset it.
    pub fd: Option<Arc<tokio::net::TcpStream>>,
    /// The HTTP version it speaks.
    pub proto: Proto,
    since: Instant,
}

impl Pooled {
    /// Wrap an idle connection.
    pub fn new(conn: UpstreamConn, fd: Option<Arc<tokio::net::TcpStream>>, proto: Proto) -> Pooled {
        Pooled {
            conn,
            fd,
            proto,
            since: Instant::now(),
        }
    }
}

/// How long an idle upstream connection stays pooled (short: servers close idle keep-alive
/// connections, some after 5 s).
pub const POOL_IDLE: Duration = Duration::from_secs(2);
/// Most idle upstream connections pooled per destination.
pub const POOL_PER_KEY: usize = 16;
/// Most idle upstream connections pooled per sandbox.
pub const POOL_TOTAL: usize = 256;

/// What a [`Plan`] depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PlanKey {
    host: Option<DomainName>,
    host_pinned: bool,
    tls: bool,
    /// Only consulted without a host (passthrough by pinned name).
    names: Vec<DomainName>,
}

/// Most plans cached per sandbox (one per distinct destination identity); beyond it the cache
/// starts over.
pub const MAX_CACHED_PLANS: usize = 1024;

/// Most DNS queries one sandbox may have in flight; more are dropped (the client retries).
pub const MAX_DNS_IN_FLIGHT: usize = 256;
/// Default for the most TCP connections one sandbox may have open through the boundary at
/// once ([`BoundaryConfig::max_connections`](crate::BoundaryConfig)); more are reset. An
/// inspected connection holds two descriptors and about 100 KiB on the host side.
pub const DEFAULT_MAX_CONNECTIONS: usize = 8192;
/// Largest accepted [`BoundaryConfig::max_connections`](crate::BoundaryConfig).
pub const MAX_CONNECTIONS_LIMIT: usize = 1 << 20;

impl Shared {
    pub(crate) fn new(
        config: BoundaryConfig,
        upstream_tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Shared {
        Shared {
            secrets: config.secrets.clone().filter(|s| !s.is_empty()),
            upstream_tls,
            terminated: AtomicBool::new(false),
            plans: Mutex::new(HashMap::new()),
            pool: Mutex::new(HashMap::new()),
            kill: tokio::sync::watch::Sender::new(false),
            host_addrs: host_addresses(),
            needs_sni: config.policy.has_domain_rules(),
            dns_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_DNS_IN_FLIGHT)),
            conn_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(
                config.max_connections.clamp(1, MAX_CONNECTIONS_LIMIT),
            )),
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

    /// The plan for `dest`, cached per sandbox: building one compiles several automata, and
    /// every connection to the same destination identity shares it.
    pub fn plan(&self, dest: &Destination<'_>) -> Arc<Plan> {
        let key = PlanKey {
            host: dest.host.cloned(),
            host_pinned: dest.host_pinned,
            tls: dest.tls,
            names: if dest.host.is_none() {
                dest.pinned_names.to_vec()
            } else {
                Vec::new()
            },
        };
        if let Ok(cache) = self.plans.lock()
            && let Some(p) = cache.get(&key)
        {
            return p.clone();
        }
        let set = self.secrets.clone().unwrap_or_default();
        let plan = Arc::new(Plan::build(&set, dest));
        if let Ok(mut cache) = self.plans.lock() {
            if cache.len() >= MAX_CACHED_PLANS {
                cache.clear();
            }
            cache.insert(key, plan.clone());
        }
        plan
    }

    /// An idle upstream connection to `dst` verified for `sni`, if one is pooled and fresh.
    pub fn pool_take(&self, dst: SocketAddr, sni: &Option<DomainName>) -> Option<Pooled> {
        let mut pool = self.pool.lock().ok()?;
        let list = pool.get_mut(&(dst, sni.clone()))?;
        while let Some(p) = list.pop() {
            if p.since.elapsed() < POOL_IDLE {
                return Some(p);
            }
        }
        None
    }

    /// Keep an idle upstream connection for the next client connection to the same place.
    pub fn pool_put(&self, dst: SocketAddr, sni: Option<DomainName>, mut p: Pooled) {
        p.since = Instant::now();
        if self.is_terminated() {
            return;
        }
        let Ok(mut pool) = self.pool.lock() else {
            return;
        };
        let total: usize = pool.values().map(Vec::len).sum();
        if total >= POOL_TOTAL {
            pool.retain(|_, l| {
                l.retain(|p| p.since.elapsed() < POOL_IDLE);
                !l.is_empty()
            });
        }
        let total: usize = pool.values().map(Vec::len).sum();
        let list = pool.entry((dst, sni)).or_default();
        list.retain(|p| p.since.elapsed() < POOL_IDLE);
        if list.len() < POOL_PER_KEY && total < POOL_TOTAL {
            list.push(p);
        }
    }

    /// Connections of the sandbox open through the boundary now.
    pub fn open_connections(&self) -> usize {
        self.config
            .max_connections
            .clamp(1, MAX_CONNECTIONS_LIMIT)
            .saturating_sub(self.conn_slots.available_permits())
    }

    /// Whether the sandbox was terminated (nothing more may leave).
    pub fn is_terminated(&self) -> bool {
        self.terminated.load(Ordering::Acquire)
    }

    /// Resolves when the sandbox is terminated; every connection task selects on it.
    pub async fn terminated(&self) {
        let mut rx = self.kill.subscribe();
        let _ = rx.wait_for(|t| *t).await;
    }

    /// Terminate the sandbox: stop every connection at once and call the terminate hook
    /// (the SDK kills every process of the sandbox). Idempotent.
    pub fn terminate(&self, why: &str) {
        if self.terminated.swap(true, Ordering::AcqRel) {
            return;
        }
        self.kill.send_replace(true);
        // Pooled upstream connections go too, with a reset.
        let pooled: Vec<Pooled> = self
            .pool
            .lock()
            .map(|mut p| p.drain().flat_map(|(_, l)| l).collect())
            .unwrap_or_default();
        for p in pooled {
            if let Some(fd) = &p.fd {
                let abort = crate::abort::Abort::default();
                abort.add_shared(fd.clone());
                abort.abort();
            }
        }
        let mut e = self.event(EventKind::SandboxTerminated, "tcp");
        e.action = "block-and-terminate";
        e.detail = Some(why.to_owned());
        self.config.events.emit(e);
        if let Some(hook) = &self.config.on_terminate.0 {
            hook();
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
