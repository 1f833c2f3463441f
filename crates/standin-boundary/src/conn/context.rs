//! [`ConnCtx`]: what an inspected connection is, its plans, which values what comes back on
//! it is scrubbed of, and how a request on it is refused or reported as a violation.

use crate::events::{EventProtocol, Location};
use crate::io::Abort;
use crate::state::SandboxState;
use crate::state::plan::Plan;
use crate::state::violation::{self, Place};
use standin_policy::egress::DomainName;
use standin_policy::secrets::{
    Destination, Hit, Refusal, Scrubber, SecretSet, SentForm, ViolationAction,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use thiserror::Error;

/// A snapshot of the real values, for substitution.
#[derive(Debug, Clone)]
pub(crate) struct RealValues(pub(crate) Arc<SecretSet>);

impl RealValues {
    /// The value of secret `i` (empty for an unknown index).
    pub(crate) fn get(&self, i: usize) -> &[u8] {
        self.0.entries.get(i).map_or(&[][..], |e| e.value.expose())
    }
}

/// A request refused before any of it went upstream: reset, or (readable refusals)
/// answered by the boundary with `403` and `text`.
#[derive(Debug)]
pub(crate) struct Denied {
    /// The refusal's text: the rule, never a value.
    pub(crate) text: String,
    /// Whether to answer with a 403 instead of a reset.
    pub(crate) answer: bool,
}

/// A request was refused; the connection is reset.
#[derive(Debug, Error)]
#[error("request blocked by the standin boundary")]
pub(crate) struct Blocked;

/// Most [`SentForm`]s a connection keeps.
pub(crate) const MAX_SENT_FORMS: usize = 8;

/// What the inspected connection is.
#[derive(Debug)]
pub(crate) struct ConnCtx {
    /// Per-sandbox state.
    pub(crate) state: Arc<SandboxState>,
    /// Dialed address.
    pub(crate) dst: SocketAddr,
    /// Names this sandbox resolved to `dst`.
    pub(crate) names: Vec<DomainName>,
    /// TLS server name (intercepted TLS with SNI).
    pub(crate) sni: Option<DomainName>,
    /// Whether this is intercepted TLS with a verified upstream.
    pub(crate) tls: bool,
    plan: Mutex<Option<Arc<Plan>>>,
    /// The secrets a verified TLS connection to one of `names` may carry (see
    /// [`values_held`](Self::values_held)).
    pinned_values: OnceLock<Arc<Vec<usize>>>,
    /// Forms of values this connection sent that the sandbox wrote differently (see
    /// [`remember_sent`](Self::remember_sent)).
    sent: Mutex<Arc<Vec<SentForm>>>,
    blocked: AtomicBool,
    abort: Arc<Abort>,
}

impl ConnCtx {
    /// Describe a connection.
    pub(crate) fn new(
        state: Arc<SandboxState>,
        dst: SocketAddr,
        names: Vec<DomainName>,
        sni: Option<DomainName>,
        tls: bool,
        abort: Arc<Abort>,
    ) -> ConnCtx {
        ConnCtx {
            state,
            dst,
            names,
            sni,
            tls,
            plan: Mutex::new(None),
            pinned_values: OnceLock::new(),
            sent: Mutex::new(Arc::default()),
            blocked: AtomicBool::new(false),
            abort,
        }
    }

    /// The connection's sockets, for resets.
    pub(crate) fn abort(&self) -> &Abort {
        &self.abort
    }

    /// Mark the connection blocked (the caller resets both sides).
    pub(crate) fn mark_blocked(&self) {
        self.blocked.store(true, Ordering::Release);
        self.abort.abort();
    }

    /// Whether a request on this connection was blocked (the caller resets both sides).
    pub(crate) fn is_blocked(&self) -> bool {
        self.blocked.load(Ordering::Acquire)
    }

    /// The plan for a request claiming `host` (cached for the last host seen).
    pub(crate) fn plan(&self, host: Option<&DomainName>) -> Arc<Plan> {
        if let Ok(cache) = self.plan.lock()
            && let Some(p) = cache.as_ref()
            && p.host.as_ref() == host
        {
            return p.clone();
        }
        let pinned = host.is_some_and(|h| self.names.contains(h));
        let plan = self.state.plan(&Destination {
            host,
            host_pinned: pinned,
            pinned_names: &self.names,
            tls: self.tls,
        });
        if let Ok(mut cache) = self.plan.lock() {
            *cache = Some(plan.clone());
        }
        plan
    }

    /// The secrets whose values the destination may hold, to scrub from what comes back:
    /// those `plan` substitutes, and, on a connection without a verified server name (plain
    /// HTTP, a plain stream, TLS without SNI), those a verified TLS connection to any name
    /// this sandbox resolved to the address may carry (the host may have received them on
    /// another connection, and echo them on this one). A verified name is a host of its own:
    /// another site behind the same address did not receive them.
    pub(crate) fn values_held(&self, plan: &Plan) -> Arc<Vec<usize>> {
        if self.tls && self.sni.is_some() {
            return plan.reflect_ids.clone();
        }
        let pinned = self.pinned_values.get_or_init(|| {
            let mut ids = Vec::new();
            for name in &self.names {
                let p = self.state.plan(&Destination {
                    host: Some(name),
                    host_pinned: true,
                    pinned_names: &self.names,
                    tls: true,
                });
                ids.extend_from_slice(&p.reflect_ids);
            }
            ids.sort_unstable();
            ids.dedup();
            Arc::new(ids)
        });
        // Usually the same set (HTTPS to a pinned name): no allocation.
        if pinned.iter().all(|i| plan.reflect_ids.contains(i)) {
            return plan.reflect_ids.clone();
        }
        let mut ids = plan.reflect_ids.to_vec();
        ids.extend_from_slice(pinned);
        ids.sort_unstable();
        ids.dedup();
        Arc::new(ids)
    }

    /// Remember that this connection sent `text` (carrying a value) where the sandbox wrote
    /// `original`: an echo on this connection is given back as `original`. The last
    /// [`MAX_SENT_FORMS`] are kept.
    pub(crate) fn remember_sent(&self, text: &[u8], original: &[u8]) {
        let Ok(mut sent) = self.sent.lock() else {
            return;
        };
        if sent.iter().any(|f| *f.text == text) {
            return;
        }
        let mut list: Vec<SentForm> = sent.iter().cloned().collect();
        if list.len() >= MAX_SENT_FORMS {
            list.remove(0);
        }
        list.push(SentForm {
            text: zeroize::Zeroizing::new(text.to_vec()),
            original: original.to_vec(),
        });
        *sent = Arc::new(list);
    }

    /// The forms [`remember_sent`](Self::remember_sent) keeps.
    pub(crate) fn sent_forms(&self) -> Arc<Vec<SentForm>> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// A scrubber for what comes back from a destination that may hold `held`.
    pub(crate) fn scrubber(&self, held: Arc<Vec<usize>>) -> Scrubber {
        Scrubber::new(self.state.secret_set(), held).with_sent(self.sent_forms())
    }

    fn place<'a>(&'a self, host: Option<&'a str>, location: Location) -> Place<'a> {
        Place {
            addr: self.dst,
            sni: self.sni.as_ref().map(DomainName::as_str),
            host,
            name: self.names.first().map(DomainName::as_str),
            location,
            protocol: EventProtocol::Http,
        }
    }

    /// Act on a placeholder found where it may not go: report it and reset the connection.
    pub(crate) fn violation(
        &self,
        plan: &Plan,
        hit: Hit,
        host: Option<&str>,
        location: Location,
    ) -> Blocked {
        let _ = self.deny_violation(plan, hit, host, location);
        self.mark_blocked();
        Blocked
    }

    /// Refuse a request for a protocol reason: report it and reset the connection.
    pub(crate) fn refuse(&self, host: Option<&str>, why: &str) -> Blocked {
        let _ = self.deny(host, why);
        self.mark_blocked();
        Blocked
    }

    /// Report a placeholder found where it may not go, before anything of the request went
    /// upstream; the caller answers with [`Denied`] (a reset, or a readable refusal).
    pub(crate) fn deny_violation(
        &self,
        plan: &Plan,
        hit: Hit,
        host: Option<&str>,
        location: Location,
    ) -> Denied {
        let set = self.state.secret_set();
        let entry = set.entries.get(hit.secret);
        let env = entry.map_or("?", |e| e.env_var.as_str());
        let dest = host
            .or(self.sni.as_ref().map(DomainName::as_str))
            .unwrap_or("this host");
        match plan.actions.get(hit.secret).copied().flatten() {
            Some(action) => {
                violation::report(
                    &self.state,
                    hit.secret,
                    hit.form,
                    action,
                    &self.place(host, location),
                );
                let respond = entry
                    .and_then(|e| e.on_violation.as_ref())
                    .and_then(|p| p.respond)
                    .unwrap_or(self.state.config.refusal);
                Denied {
                    text: format!(
                        "standin: request blocked: the secret {env} may not be sent to {dest} (found in the {}); rule: secret {env}, action {}\n",
                        location.as_str(),
                        action.as_str()
                    ),
                    answer: respond == Refusal::Forbidden
                        && action != ViolationAction::BlockAndTerminate,
                }
            }
            // Only a substitutable placeholder in a body that cannot be rewritten gets here.
            None => self.deny(
                host,
                "placeholder in a body with a content encoding (cannot be rewritten safely)",
            ),
        }
    }

    /// Record the secrets a request used: `(secret, location)` pairs, each substituted, or
    /// forwarded unchanged to a passthrough host.
    pub(crate) fn report_used(
        &self,
        used: &[(usize, Location)],
        passthrough: bool,
        host: Option<&str>,
    ) {
        for (i, &(secret, location)) in used.iter().enumerate() {
            if used[..i].contains(&(secret, location)) {
                continue;
            }
            violation::used(
                &self.state,
                secret,
                passthrough,
                &self.place(host, location),
            );
        }
    }

    /// Report a request refused for a protocol reason, before anything of it went upstream.
    pub(crate) fn deny(&self, host: Option<&str>, why: &str) -> Denied {
        violation::refused(&self.state, &self.place(host, Location::Header), why);
        Denied {
            text: format!("standin: request blocked: {why}\n"),
            answer: self.state.config.refusal == Refusal::Forbidden,
        }
    }

    /// The real values as they are now, for one request (a rotation during it does not
    /// change them).
    pub(crate) fn real_values(&self) -> RealValues {
        RealValues(self.state.secret_set())
    }
}
