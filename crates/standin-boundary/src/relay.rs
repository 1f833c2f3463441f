//! The TCP relay: accept a captured connection, find its original destination, refuse what
//! must be refused (the fixed guard, then the egress policy with the names this sandbox
//! resolved to that address), dial, and shuttle bytes both ways with half-close.

use crate::client_hello::{MAX_RECORD, Peeked, peek};
use crate::events::EventKind;
use crate::guard;
use crate::idle::{Activity, Tracked, until_idle};
use crate::original_dst::original_dst;
use crate::shared::Shared;
use standin_policy::egress::{Action, DomainName, Flow, Protocol};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Accept loop of one relay listener.
pub async fn serve(listener: TcpListener, local: SocketAddr, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // A bounded number of connections per sandbox: beyond it, a reset (and an
                // event), so a runaway workload cannot exhaust the host's memory or
                // descriptors.
                let Ok(slot) = shared.conn_slots.clone().try_acquire_owned() else {
                    let mut e = shared.event(EventKind::ConnectionDenied, "tcp");
                    e.rule = Some("guard".into());
                    e.detail = Some(format!(
                        "more than {} connections open at once",
                        shared.config.max_connections
                    ));
                    shared.config.events.emit(e);
                    reset(stream);
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    handle(stream, peer, local, shared).await;
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

async fn handle(client: TcpStream, peer: SocketAddr, local: SocketAddr, shared: Arc<Shared>) {
    let config = &shared.config;
    if shared.is_terminated() {
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
    if let Err(why) = guard::check(dst, local, &config.sandbox_addrs) {
        let mut e = shared.event(EventKind::ConnectionDenied, "tcp");
        e.addr = Some(dst.to_string());
        e.rule = Some("guard".into());
        e.detail = Some(why.as_str().into());
        config.events.emit(e);
        reset(client);
        return;
    }
    let names = shared
        .pins
        .read()
        .map(|p| p.names_for(dst.ip(), Instant::now()))
        .unwrap_or_default();
    // Domain rules also look at the TLS server name: read the client's first bytes (kept and
    // replayed upstream). Without domain rules nothing is read ahead.
    let mut client = client;
    let inspect = shared.secrets.is_some();
    let (head, hello) = if shared.needs_sni || inspect {
        read_hello(&mut client).await
    } else {
        (Vec::new(), Peeked::NotTls)
    };
    let sni = match &hello {
        Peeked::Tls(Some(name)) => DomainName::parse(name).ok(),
        _ => None,
    };
    let flow = Flow {
        ip: dst.ip(),
        port: dst.port(),
        protocol: Protocol::Tcp,
        names: &names,
        tls: hello != Peeked::NotTls,
        sni: sni.as_ref(),
    };
    let decision = config.policy.evaluate(&flow, &|a| shared.is_host(a));
    if decision.action == Action::Deny {
        let mut e = shared.event(EventKind::ConnectionDenied, "tcp");
        e.addr = Some(dst.to_string());
        e.name = sni.as_ref().or(names.first()).map(|n| n.to_string());
        e.rule = Some(shared.rule_name(decision));
        config.events.emit(e);
        reset(client);
        return;
    }
    if inspect {
        crate::intercept::handle(client, dst, head, hello, names, shared.clone()).await;
        return;
    }
    let upstream = match tokio::time::timeout(config.connect_timeout, TcpStream::connect(dst)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(err)) => {
            upstream_failed(&shared, dst, &names, err.to_string());
            reset(client);
            return;
        }
        Err(_) => {
            upstream_failed(&shared, dst, &names, "connect timed out".into());
            reset(client);
            return;
        }
    };
    tracing::debug!(%dst, "relaying");
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (c, mut u) = (client, upstream);
    if !head.is_empty() && u.write_all(&head).await.is_err() {
        reset(c);
        return;
    }
    let activity = Activity::new();
    let mut c = Tracked::new(c, activity.clone());
    let mut u = Tracked::new(u, activity.clone());
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut c, &mut u) => {
            if let Err(e) = r {
                tracing::debug!(%dst, error = %e, "relay ended with an error");
            }
        }
        _ = until_idle(&activity, config.idle_timeout) => {
            tracing::debug!(%dst, "idle timeout; closing both sides");
            reset(c.into_inner());
        }
        _ = shared.terminated() => {
            reset(c.into_inner());
        }
    }
}

/// How long the relay waits for a client's first bytes when domain rules need the TLS server
/// name. Server-first protocols (SSH, SMTP) pay this once per connection, and only when the
/// policy has domain rules.
pub const HELLO_TIMEOUT: Duration = Duration::from_millis(250);

/// Read until the first TLS record is complete, the bytes are clearly not TLS, the record
/// limit is reached, or [`HELLO_TIMEOUT`] passes. Returns what was read (to replay upstream)
/// and what it is.
async fn read_hello(client: &mut TcpStream) -> (Vec<u8>, Peeked) {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + HELLO_TIMEOUT;
    loop {
        // Straight into `buf` (no chunk buffer in the connection's future).
        buf.reserve(4096);
        match tokio::time::timeout_at(deadline, client.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => {
                let state = if buf.is_empty() {
                    Peeked::NotTls
                } else {
                    peek(&buf)
                };
                return (buf, state);
            }
        }
        match peek(&buf) {
            Peeked::NeedMore if buf.len() < MAX_RECORD => continue,
            Peeked::NeedMore => return (buf, Peeked::MalformedTls),
            other => return (buf, other),
        }
    }
}

fn upstream_failed(
    shared: &Shared,
    dst: SocketAddr,
    names: &[standin_policy::egress::DomainName],
    detail: String,
) {
    let mut e = shared.event(EventKind::UpstreamFailed, "tcp");
    e.addr = Some(dst.to_string());
    e.name = names.first().map(|n| n.to_string());
    e.detail = Some(detail);
    shared.config.events.emit(e);
}

/// Close with RST rather than FIN, so the client sees a connection reset at once.
pub fn reset(stream: TcpStream) {
    let _ = nix::sys::socket::setsockopt(
        &stream,
        nix::sys::socket::sockopt::Linger,
        &libc_linger_zero(),
    );
    drop(stream);
}

fn libc_linger_zero() -> nix::libc::linger {
    nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    }
}
