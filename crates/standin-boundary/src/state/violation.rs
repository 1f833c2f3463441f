//! Acting on a violation: the configured action's log line and event, and for
//! block-and-terminate, killing the sandbox. Blocking itself (the connection reset) is done
//! by the connection that found it.

use super::SandboxState;
use crate::events::{EventAction, EventKind, EventProtocol, Location};
use standin_policy::secrets::{Form, ViolationAction};
use std::net::SocketAddr;

/// Where a violation was found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place<'a> {
    /// Dialed address.
    pub(crate) addr: SocketAddr,
    /// TLS server name, if any.
    pub(crate) sni: Option<&'a str>,
    /// HTTP Host, if any.
    pub(crate) host: Option<&'a str>,
    /// A name this sandbox resolved to `addr`, for events without SNI or Host.
    pub(crate) name: Option<&'a str>,
    /// Where in what the sandbox sent.
    pub(crate) location: Location,
    /// The protocol it was found in.
    pub(crate) protocol: EventProtocol,
}

/// Report a violation of secret `secret` found in `form` at `place`, and carry out `action`
/// (except the reset, which is the caller's).
pub(crate) fn report(
    state: &SandboxState,
    secret: usize,
    form: Form,
    action: ViolationAction,
    place: &Place<'_>,
) {
    let set = state.secret_set();
    let env = set.entries.get(secret).map_or("?", |e| e.env_var.as_str());
    let dest = place.sni.or(place.host).or(place.name).unwrap_or("-");
    match action {
        // Silent on the terminal (as the reference says), recorded in the events file.
        ViolationAction::Block | ViolationAction::Passthrough => {
            tracing::debug!(secret = env, destination = dest, addr = %place.addr, location = ?place.location, form = form.as_str(), "secret placeholder blocked");
        }
        ViolationAction::BlockAndLog => {
            tracing::warn!(secret = env, destination = dest, addr = %place.addr, location = ?place.location, form = form.as_str(), "secret violation: placeholder sent to a host it may not reach; request blocked");
        }
        ViolationAction::BlockAndTerminate => {
            tracing::error!(secret = env, destination = dest, addr = %place.addr, location = ?place.location, form = form.as_str(), "secret violation: placeholder sent to a host it may not reach; terminating the sandbox");
        }
    }
    let mut e = state.event(EventKind::SecretViolation, place.protocol);
    e.action = action.into();
    e.secret = Some(env.to_owned());
    e.addr = Some(place.addr.to_string());
    e.name = place.name.map(str::to_owned);
    e.sni = place.sni.map(str::to_owned);
    e.host = place.host.map(str::to_owned);
    e.location = Some(place.location);
    e.form = Some(form);
    state.config.events.emit(e);
    if action == ViolationAction::BlockAndTerminate {
        state.terminate(&format!("secret {env} sent to {dest}"));
    }
}

/// Record that secret `secret` was used at `place`: substituted (`passthrough` false) or
/// forwarded as its placeholder to a passthrough host. Never carries the value.
pub(crate) fn used(state: &SandboxState, secret: usize, passthrough: bool, place: &Place<'_>) {
    if !state.config.events.is_active() {
        return;
    }
    let set = state.secret_set();
    let env = set.entries.get(secret).map_or("?", |e| e.env_var.as_str());
    let (kind, action) = if passthrough {
        (EventKind::SecretPassthrough, EventAction::Passthrough)
    } else {
        (EventKind::SecretSubstituted, EventAction::Substitute)
    };
    let mut e = state.event(kind, place.protocol);
    e.action = action;
    e.secret = Some(env.to_owned());
    e.addr = Some(place.addr.to_string());
    e.name = place.name.map(str::to_owned);
    e.sni = place.sni.map(str::to_owned);
    e.host = place.host.map(str::to_owned);
    e.location = Some(place.location);
    state.config.events.emit(e);
}

/// Report a request refused for a protocol reason.
pub(crate) fn refused(state: &SandboxState, place: &Place<'_>, why: &str) {
    tracing::warn!(addr = %place.addr, sni = ?place.sni, host = ?place.host, reason = why, "request blocked");
    let mut e = state.event(EventKind::RequestBlocked, place.protocol);
    e.action = EventAction::Block;
    e.addr = Some(place.addr.to_string());
    e.name = place.name.map(str::to_owned);
    e.sni = place.sni.map(str::to_owned);
    e.host = place.host.map(str::to_owned);
    e.location = Some(place.location);
    e.detail = Some(why.to_owned());
    state.config.events.emit(e);
}
