//! # standin-boundary: the host-side network boundary
//!
//! Serves the sandbox's captured traffic. The sandbox runtime hands over six listening
//! sockets that live in the sandbox's network namespace ([`CaptureListeners`]); every TCP
//! connection the workload opens arrives on a relay listener, every DNS query on a DNS
//! listener. This crate decides what happens to each, on the caller's tokio runtime.
//!
//! The source tree reads as the path of a connection, top to bottom; a module only uses
//! modules below its own layer (checked by `tests/layering.rs`):
//!
//! | layer | what it is |
//! |---|---|
//! | `pipeline/` | one captured connection: `admit` (guard, pins, policy), `detect` (TLS, `CONNECT`, HTTP or other), `passthrough`, `inspect`, `tunnel` (`CONNECT`), `intercept` (TLS) |
//! | `http/` | HTTP/1.1 and HTTP/2 on hyper: per-request identity checks, substitution, violation scanning, response scrubbing, upstream slot and pool |
//! | `ws/` | WebSocket frames after an upgrade: client frames scanned, server frames scrubbed |
//! | `stream/` | non-HTTP streams: scanned one way, scrubbed the other; the scan gate for held-back bytes |
//! | `dns/` | the DNS forwarder: policy, exfiltration check, rebind protection, pins |
//! | `conn/` | one connection's context and verdicts (`ConnCtx`), and dialing |
//! | `state/` | per-sandbox state: pins, plans, bounds, termination; acting on violations |
//! | `config`, `tls/`, `events` | the configuration; CA, ClientHello reader, upstream verification; audit events |
//! | `io/`, `capture/` | byte-stream plumbing (replay, shared sockets, resets, idle); listeners, original destination |
//!
//! The egress policy and the secret model are pure and live in `standin_policy`.

#![forbid(unsafe_code)]

mod capture;
mod config;
mod conn;
mod dns;
mod events;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod io;
pub mod ocsf;
mod pipeline;
mod state;
mod stream;
#[cfg(test)]
mod test_secrets;
#[doc(hidden)]
pub mod testing;
mod tls;
mod ws;

pub use capture::{CaptureListeners, ListenerError, raise_descriptor_limit};
pub use config::{BoundaryConfig, DEFAULT_MAX_CONNECTIONS, MAX_CONNECTIONS_LIMIT, TerminateHook};
pub use dns::upstreams_from_resolv_conf;
pub use events::{
    EVENT_SCHEMA_VERSION, Event, EventAction, EventKind, EventLevel, EventListener, EventProtocol,
    EventSink, Limit, Location,
};
pub use http::RELEASE_AFTER_BUSY;
pub use tls::ca::{CaError, CaState, LeafName, SandboxCa};
pub use tls::upstream::{UpstreamTlsError, client_config, read_ca_file};

use http::Pool;
use pipeline::Inspection;
use standin_policy::secrets::{SecretError, SecretValue};
use state::SandboxState;
use std::sync::Arc;
use thiserror::Error;
use tokio::task::JoinSet;

/// Errors starting the boundary.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BoundaryError {
    /// A listener descriptor could not be registered with the runtime.
    #[error(transparent)]
    Listener(#[from] ListenerError),
    /// Upstream TLS could not be configured.
    #[error(transparent)]
    UpstreamTls(#[from] UpstreamTlsError),
    /// Secrets were configured without a CA.
    #[error("secrets need TLS interception, but no sandbox CA was given")]
    NoCa,
}

/// A running boundary. Dropping it stops every task and closes the listeners, which releases
/// the sandbox's network namespace.
#[derive(Debug)]
pub struct Boundary {
    tasks: JoinSet<()>,
    state: Arc<SandboxState>,
    runtime: tokio::runtime::Handle,
    /// Timers that end rotated values' grace periods (aborted with the boundary, so no old
    /// value outlives it).
    grace: std::sync::Mutex<JoinSet<()>>,
}

/// How long responses are still scrubbed of a secret's value after a rotation replaced it.
pub const RETIRED_VALUE_GRACE: std::time::Duration = std::time::Duration::from_secs(10 * 60);

impl Boundary {
    /// Start serving `listeners` on the current tokio runtime.
    pub fn start(
        listeners: CaptureListeners,
        config: BoundaryConfig,
    ) -> Result<Boundary, BoundaryError> {
        let intercept = config.secrets.as_ref().is_some_and(|s| !s.is_empty());
        let inspection = if intercept {
            let ca = config.ca.clone().ok_or(BoundaryError::NoCa)?;
            Some((ca, client_config(&config.upstream_cas)?))
        } else {
            None
        };
        let pool = Arc::new(Pool::default());
        let on_terminate: Vec<state::OnTerminate> = {
            let pool = pool.clone();
            vec![Box::new(move || pool.close())]
        };
        let state = Arc::new(SandboxState::new(config, on_terminate));
        let inspection = inspection.map(|(ca, upstream_tls)| {
            Arc::new(Inspection {
                state: state.clone(),
                ca,
                upstream_tls_http1: tls::upstream::http1_only(&upstream_tls),
                upstream_tls,
                pool,
            })
        });
        let mut tasks = JoinSet::new();
        let served = listeners.into_tokio()?;
        for (listener, local) in served.relays {
            tasks.spawn(pipeline::serve(
                listener,
                local,
                state.clone(),
                inspection.clone(),
            ));
        }
        for sock in served.dns_udp {
            tasks.spawn(dns::serve_udp(sock, state.clone()));
        }
        for listener in served.dns_tcp {
            tasks.spawn(dns::serve_tcp(listener, state.clone()));
        }
        Ok(Boundary {
            tasks,
            state,
            runtime: tokio::runtime::Handle::current(),
            grace: std::sync::Mutex::new(JoinSet::new()),
        })
    }

    /// Replace secret `env`'s value (rotation). The placeholder stays; requests already being
    /// rewritten finish with the old value, later ones get the new one (the set is swapped
    /// whole, never half-written); responses are scrubbed of both for
    /// [`RETIRED_VALUE_GRACE`]. Emits a `secret-rotated` event (never the value).
    pub fn update_secret(&self, env: &str, value: SecretValue) -> Result<(), SecretError> {
        let old = self.state.rotate(env, value)?;
        let state = Arc::downgrade(&self.state);
        let env = env.to_owned();
        let timer = async move {
            tokio::time::sleep(RETIRED_VALUE_GRACE).await;
            if let Some(state) = state.upgrade() {
                state.drop_retired(&env, &old);
            }
        };
        let mut grace = self.grace.lock().unwrap_or_else(|p| p.into_inner());
        while grace.try_join_next().is_some() {}
        grace.spawn_on(timer, &self.runtime);
        Ok(())
    }

    /// Stop serving (also done on drop).
    pub fn shutdown(&mut self) {
        self.tasks.abort_all();
        if let Ok(mut g) = self.grace.lock() {
            g.abort_all();
        }
    }
}

impl Drop for Boundary {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}
