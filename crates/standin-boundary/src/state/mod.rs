//! Per-sandbox state: what every task of one sandbox's boundary reads (configuration, the
//! pin table, the secrets and their cached [`Plan`]s, connection and query bounds) and the
//! sandbox's termination.
//!
//! Also here: [`plan`] (which placeholder becomes what for one destination) and
//! [`violation`] (acting on a violation: events, terminate).

pub(crate) mod plan;
pub(crate) mod violation;

use crate::config::{BoundaryConfig, MAX_CONNECTIONS_LIMIT};
use crate::events::{Event, EventAction, EventKind, EventProtocol};
use arc_swap::ArcSwap;
use plan::Plan;
use standin_policy::egress::{Decision, DomainName, PinTable};
use standin_policy::secrets::{Destination, SecretError, SecretSet, SecretValue};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Called when the sandbox is terminated, before the owner's hook (the HTTP pool resets its
/// idle connections).
pub(crate) type OnTerminate = Box<dyn Fn() + Send + Sync>;

/// One sandbox's boundary state.
pub(crate) struct SandboxState {
    /// Configuration.
    pub(crate) config: BoundaryConfig,
    /// Names this sandbox resolved, by address. Written per DNS answer, read per connection.
    pub(crate) pins: RwLock<PinTable>,
    /// Addresses of the host (group `host`).
    pub(crate) host_addrs: Vec<IpAddr>,
    /// Whether the policy names domains, so the relay must read the TLS server name.
    pub(crate) needs_sni: bool,
    /// Bounds the DNS queries in flight (each holds an upstream socket).
    pub(crate) dns_slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// Bounds the TCP connections open at once.
    pub(crate) conn_slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// The secrets; `Some` (and non-empty) turns inspection and TLS interception on. Swapped
    /// whole on rotation: a request takes one snapshot and finishes with it.
    secrets: Option<ArcSwap<SecretSet>>,
    /// Serialises rotations (readers never take it).
    rotation: Mutex<()>,
    terminated: AtomicBool,
    kill: tokio::sync::watch::Sender<bool>,
    plans: Mutex<HashMap<PlanKey, Arc<Plan>>>,
    on_terminate: Vec<OnTerminate>,
}

impl std::fmt::Debug for SandboxState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxState")
            .field("sandbox_id", &self.config.sandbox_id)
            .field("terminated", &self.is_terminated())
            .finish_non_exhaustive()
    }
}

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
pub(crate) const MAX_CACHED_PLANS: usize = 1024;

/// Most DNS queries one sandbox may have in flight; more are dropped (the client retries).
pub(crate) const MAX_DNS_IN_FLIGHT: usize = 256;

impl SandboxState {
    /// The state of a sandbox configured by `config`; `on_terminate` run when it is
    /// terminated.
    pub(crate) fn new(config: BoundaryConfig, on_terminate: Vec<OnTerminate>) -> SandboxState {
        SandboxState {
            secrets: config
                .secrets
                .clone()
                .filter(|s| !s.is_empty())
                .map(ArcSwap::new),
            rotation: Mutex::new(()),
            terminated: AtomicBool::new(false),
            plans: Mutex::new(HashMap::new()),
            on_terminate,
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
    pub(crate) fn is_host(&self, ip: IpAddr) -> bool {
        let ip = standin_policy::egress::policy::canonical(ip);
        self.host_addrs.contains(&ip)
    }

    /// The rule text for an event.
    pub(crate) fn rule_name(&self, d: Decision) -> String {
        match d.rule.and_then(|i| self.config.policy.rules.get(i)) {
            Some(r) => r.to_string(),
            None => "default".to_owned(),
        }
    }

    /// The plan for `dest`, cached per sandbox: building one compiles several automata, and
    /// every connection to the same destination identity shares it.
    pub(crate) fn plan(&self, dest: &Destination<'_>) -> Arc<Plan> {
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
        // Plans depend on placeholders, hosts and actions, which rotation does not change.
        let set = self.secret_set();
        let plan = Arc::new(Plan::build(&set, dest, self.config.events.is_active()));
        if let Ok(mut cache) = self.plans.lock() {
            if cache.len() >= MAX_CACHED_PLANS {
                cache.clear();
            }
            cache.insert(key, plan.clone());
        }
        plan
    }

    /// Whether the sandbox has secrets (inspection is on).
    pub(crate) fn has_secrets(&self) -> bool {
        self.secrets.is_some()
    }

    /// The secrets as they are now (empty without secrets): one snapshot per request, so a
    /// rotation never changes a value under a request being rewritten.
    pub(crate) fn secret_set(&self) -> Arc<SecretSet> {
        self.secrets
            .as_ref()
            .map(ArcSwap::load_full)
            .unwrap_or_default()
    }

    /// Replace secret `env`'s value (the placeholder stays). Returns the value it replaces,
    /// which responses are still scrubbed of until [`drop_retired`](Self::drop_retired).
    pub(crate) fn rotate(&self, env: &str, value: SecretValue) -> Result<SecretValue, SecretError> {
        let Some(secrets) = &self.secrets else {
            return Err(SecretError::UnknownSecret(env.to_owned()));
        };
        let _one_at_a_time = self.rotation.lock().unwrap_or_else(|p| p.into_inner());
        let current = secrets.load_full();
        let next = current.rotated(env, value)?;
        let old = current
            .entries
            .iter()
            .find(|e| e.env_var == env)
            .map(|e| e.value.clone())
            .ok_or_else(|| SecretError::UnknownSecret(env.to_owned()))?;
        secrets.store(Arc::new(next));
        let mut e = self.event(EventKind::SecretRotated, EventProtocol::Tcp);
        e.action = EventAction::Rotate;
        e.secret = Some(env.to_owned());
        self.config.events.emit(e);
        Ok(old)
    }

    /// Stop scrubbing secret `env`'s retired `value` (its grace period is over).
    pub(crate) fn drop_retired(&self, env: &str, value: &SecretValue) {
        let Some(secrets) = &self.secrets else {
            return;
        };
        let _one_at_a_time = self.rotation.lock().unwrap_or_else(|p| p.into_inner());
        let next = secrets.load_full().without_retired(env, value);
        secrets.store(Arc::new(next));
    }

    /// Connections of the sandbox open through the boundary now.
    pub(crate) fn open_connections(&self) -> usize {
        self.config
            .max_connections
            .clamp(1, MAX_CONNECTIONS_LIMIT)
            .saturating_sub(self.conn_slots.available_permits())
    }

    /// Whether the sandbox was terminated (nothing more may leave).
    pub(crate) fn is_terminated(&self) -> bool {
        self.terminated.load(Ordering::Acquire)
    }

    /// Resolves when the sandbox is terminated; every connection task selects on it.
    pub(crate) async fn terminated(&self) {
        let mut rx = self.kill.subscribe();
        let _ = rx.wait_for(|t| *t).await;
    }

    /// Terminate the sandbox: stop every connection at once and call the terminate hook
    /// (the SDK kills every process of the sandbox). Idempotent.
    pub(crate) fn terminate(&self, why: &str) {
        if self.terminated.swap(true, Ordering::AcqRel) {
            return;
        }
        self.kill.send_replace(true);
        for f in &self.on_terminate {
            f();
        }
        let mut e = self.event(EventKind::SandboxTerminated, EventProtocol::Tcp);
        e.action = EventAction::BlockAndTerminate;
        e.detail = Some(why.to_owned());
        self.config.events.emit(e);
        if let Some(hook) = &self.config.on_terminate.0 {
            hook();
        }
    }

    /// A new event for this sandbox.
    pub(crate) fn event(&self, kind: EventKind, protocol: EventProtocol) -> Event {
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
