//! Admission: whether a captured connection may go where it was headed.
//!
//! Two checks, in this order: the fixed [`guard`](super::guard) (before a byte is read: the
//! host itself, the sandbox's own addresses, the listeners), then the egress policy, first
//! match wins, fed with the names this sandbox resolved to the address (the pin table) and the
//! ClientHello's server name. A refusal is reported as a connection-denied event; the caller
//! resets the connection.

use super::detect::Detected;
use super::guard;
use crate::events::{EventAction, EventKind, EventProtocol};
use crate::state::SandboxState;
use standin_policy::egress::{Action, Decision, DomainName, Flow, Protocol};
use std::net::SocketAddr;
use std::time::Instant;

/// The fixed guard: whether the boundary may dial `dst` at all (a refusal is reported).
/// `listener` is the relay listener that accepted the connection.
pub(crate) fn guard_allows(state: &SandboxState, dst: SocketAddr, listener: SocketAddr) -> bool {
    let Err(why) = guard::check(dst, listener, &state.config.sandbox_addrs) else {
        return true;
    };
    let mut e = state.event(EventKind::ConnectionDenied, EventProtocol::Tcp);
    e.addr = Some(dst.to_string());
    e.rule = Some("guard".into());
    e.detail = Some(why.as_str().into());
    state.config.events.emit(e);
    false
}

/// The names this sandbox resolved to `dst`'s address (live pins).
pub(crate) fn pinned_names(state: &SandboxState, dst: SocketAddr) -> Vec<DomainName> {
    state
        .pins
        .read()
        .map(|p| p.names_for(dst.ip(), Instant::now()))
        .unwrap_or_default()
}

/// Whether the egress policy allows a connection to `dst` whose first bytes are `first` (a
/// denial is reported, and returned as the text of a readable refusal).
pub(crate) fn policy_allows(
    state: &SandboxState,
    dst: SocketAddr,
    names: &[DomainName],
    first: &Detected,
) -> Result<(), String> {
    let sni = first.sni();
    let decision = evaluate(state, dst, names, first.looks_tls(), sni.as_ref());
    let name = || sni.as_ref().or(names.first()).map(|n| n.to_string());
    if decision.action == Action::Allow {
        if state.config.events.records_allowed() {
            let mut e = state.event(EventKind::ConnectionAllowed, EventProtocol::Tcp);
            e.action = EventAction::Allow;
            e.addr = Some(dst.to_string());
            e.name = name();
            e.sni = sni.as_ref().map(|n| n.to_string());
            e.rule = Some(state.rule_name(decision));
            state.config.events.emit(e);
        }
        return Ok(());
    }
    let rule = state.rule_name(decision);
    let name = name();
    let text = format!(
        "standin: connection to {} ({dst}) denied by the egress policy; rule: {rule}\n",
        name.as_deref().unwrap_or("this address")
    );
    let mut e = state.event(EventKind::ConnectionDenied, EventProtocol::Tcp);
    e.addr = Some(dst.to_string());
    e.name = name;
    e.rule = Some(rule);
    state.config.events.emit(e);
    Err(text)
}

/// Both checks for a TLS connection to `dst` named `name`, without an event (a `CONNECT`
/// target tries each of its addresses and reports once).
pub(crate) fn allows_tls(
    state: &SandboxState,
    dst: SocketAddr,
    listener: SocketAddr,
    name: Option<&DomainName>,
) -> bool {
    guard::check(dst, listener, &state.config.sandbox_addrs).is_ok()
        && evaluate(
            state,
            dst,
            name.map_or(&[], std::slice::from_ref),
            true,
            name,
        )
        .action
            == Action::Allow
}

/// The egress policy's decision for a TCP connection to `dst`.
fn evaluate(
    state: &SandboxState,
    dst: SocketAddr,
    names: &[DomainName],
    tls: bool,
    sni: Option<&DomainName>,
) -> Decision {
    let flow = Flow {
        ip: dst.ip(),
        port: dst.port(),
        protocol: Protocol::Tcp,
        names,
        tls,
        sni,
    };
    state.config.policy.evaluate(&flow, &|a| state.is_host(a))
}
