//! The pipeline: one captured TCP connection, from accept to its end, top to bottom.
//!
//! ```text
//! accept (at most max_connections open per sandbox)
//!  → original destination                                  capture
//!  → guard: never the host, the sandbox, the listeners     admit
//!  → first bytes, when domain rules or inspection need them detect
//!  → egress policy (pinned names, SNI)                     admit
//!  → no secrets: dial, copy both ways                      passthrough
//!  → secrets:                                              inspect
//!      CONNECT → answered by the boundary, bound to its target, then detect again  tunnel
//!      TLS     → leaf from the sandbox CA, verified upstream, then HTTP or a stream intercept
//!      HTTP    → the HTTP path without TLS identity                                 crate::http
//!      other   → a scanned stream                                                   crate::stream
//! ```
//!
//! Every refusal is an event and a reset: the sandbox sees a connection reset, the
//! destination learns nothing. With readable refusals, the boundary answers a denied HTTP
//! (or terminable TLS) connection itself with `403` instead (`refusal`).

mod admit;
mod detect;
mod guard;
mod inspect;
mod inspection;
mod intercept;
mod passthrough;
mod refusal;
mod tunnel;

pub use detect::looks_like_http;
pub(crate) use inspection::Inspection;
pub use tunnel::split_authority;

use crate::capture::original_dst;
use crate::events::{EventKind, EventProtocol};
use crate::io::reset;
use crate::state::SandboxState;
use detect::Detected;
use standin_policy::secrets::Refusal;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

/// Accept loop of one relay listener. `inspection` is set when the sandbox has secrets.
pub(crate) async fn serve(
    listener: TcpListener,
    local: SocketAddr,
    state: Arc<SandboxState>,
    inspection: Option<Arc<Inspection>>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // A bounded number of connections per sandbox: beyond it, a reset (and an
                // event), so a runaway workload cannot exhaust the host's memory or
                // descriptors.
                let Ok(slot) = state.conn_slots.clone().try_acquire_owned() else {
                    let mut e = state.event(EventKind::ConnectionDenied, EventProtocol::Tcp);
                    e.rule = Some("guard".into());
                    e.detail = Some(format!(
                        "more than {} connections open at once",
                        state.config.max_connections
                    ));
                    state.config.events.emit(e);
                    reset(stream);
                    continue;
                };
                let (state, inspection) = (state.clone(), inspection.clone());
                tokio::spawn(async move {
                    handle(stream, peer, local, &state, inspection.as_ref()).await;
                    drop(slot);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(error = %e, "relay accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// One connection: admit, detect, then pass through or inspect.
async fn handle(
    mut client: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    state: &Arc<SandboxState>,
    inspection: Option<&Arc<Inspection>>,
) {
    if state.is_terminated() {
        reset(client);
        return;
    }
    let dst = match original_dst(&client, local.is_ipv6()) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "no original destination; resetting");
            reset(client);
            return;
        }
    };
    if !admit::guard_allows(state, dst, local) {
        reset(client);
        return;
    }
    let names = admit::pinned_names(state, dst);
    // Domain rules also look at the TLS server name, and inspection at the protocol: read the
    // client's first bytes (kept and replayed). Otherwise nothing is read ahead.
    let readable = state.config.refusal == Refusal::Forbidden;
    let first = if state.needs_sni || inspection.is_some() || readable {
        detect::read_first(&mut client, Vec::new()).await
    } else {
        Detected::nothing_read()
    };
    if let Err(denied) = admit::policy_allows(state, dst, &names, &first) {
        if readable {
            refusal::answer(client, first, denied, inspection).await;
        } else {
            reset(client);
        }
        return;
    }
    match inspection {
        Some(inspection) => inspect::handle(client, dst, first, names, inspection).await,
        None => passthrough::relay(client, dst, first.head, &names, state).await,
    }
}
