//! Inspection: what happens to an admitted connection when the sandbox has secrets.
//!
//! The first bytes decide (see [`detect`](super::detect)):
//! - a TLS ClientHello: [`intercept`](super::intercept);
//! - a `CONNECT`: the boundary answers it ([`tunnel`](super::tunnel)), then detects again on
//!   the tunnel and dispatches the same way, bound to the tunnel's target;
//! - an HTTP request line: plain HTTP, the [`crate::http`] path without TLS identity (so no
//!   substitution unless a secret turns `require_tls_identity` off);
//! - anything else, or nothing within the peek window (server-first protocols): a scanned
//!   stream ([`crate::stream`]).
//!
//! A blocked connection is reset on both sides; a terminated sandbox stops every connection.

use super::detect::{self, Detected, Kind};
use super::inspection::Inspection;
use super::{intercept, tunnel};
use crate::conn::{self, ConnCtx};
use crate::http::{self, Proto};
use crate::io::{Abort, Prefixed, SharedSocket};
use crate::stream;
use standin_policy::egress::DomainName;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;

/// Handle an admitted connection to `dst` whose first bytes are `first`.
pub(crate) async fn handle(
    client: TcpStream,
    dst: SocketAddr,
    first: Detected,
    names: Vec<DomainName>,
    insp: &Arc<Inspection>,
) {
    let client = SharedSocket::new(client);
    let abort = Arc::new(Abort::default());
    abort.add(&client);
    let work = async {
        if first.is_connect() {
            // Boxed: rare, and its state (another interception inside) would otherwise size
            // every connection's task.
            Box::pin(through_tunnel(client, dst, first.head, insp, abort.clone())).await
        } else {
            let kind = first.kind();
            dispatch(client, dst, kind, first.head, names, insp, abort.clone()).await
        }
    };
    let blocked = tokio::select! {
        ctx = work => ctx.is_none_or(|ctx| ctx.is_blocked()),
        _ = insp.state.terminated() => true,
    };
    if blocked || insp.state.is_terminated() {
        abort.abort();
    }
}

/// Open the tunnel a `CONNECT` asks for, then detect and dispatch what comes through it.
async fn through_tunnel(
    client: SharedSocket,
    proxy: SocketAddr,
    head: Vec<u8>,
    insp: &Arc<Inspection>,
    abort: Arc<Abort>,
) -> Option<Arc<ConnCtx>> {
    let mut tunnel = tunnel::open(client, proxy, head, &insp.state).await?;
    let rest = std::mem::take(&mut tunnel.rest);
    let first = detect::read_first(&mut tunnel.stream, rest).await;
    let kind = first.kind();
    if let Kind::Tls(sni) = &kind
        && !tunnel.admits_sni(&insp.state, sni.as_deref())
    {
        return None;
    }
    let names = tunnel.name.iter().cloned().collect();
    let (stream, dst) = (tunnel.stream, tunnel.dst);
    dispatch(stream, dst, kind, first.head, names, insp, abort).await
}

/// Hand the connection to the stage for its protocol. `None`: refused before it began (the
/// caller resets); otherwise the connection's context, which says whether it was blocked.
async fn dispatch(
    client: SharedSocket,
    dst: SocketAddr,
    kind: Kind,
    head: Vec<u8>,
    names: Vec<DomainName>,
    insp: &Arc<Inspection>,
    abort: Arc<Abort>,
) -> Option<Arc<ConnCtx>> {
    let _ = client.set_nodelay(true);
    let sni = match kind {
        Kind::Tls(sni) => sni,
        Kind::Http | Kind::Opaque => {
            let upstream = SharedSocket::new(conn::connect(&insp.state, dst, &names).await?);
            abort.add(&upstream);
            let _ = upstream.set_nodelay(true);
            let ctx = Arc::new(ConnCtx::new(
                insp.state.clone(),
                dst,
                names,
                None,
                false,
                abort,
            ));
            let guest = Prefixed::new(head, client);
            if kind == Kind::Http {
                http::serve(guest, Proto::H1, upstream, Proto::H1, ctx.clone()).await;
            } else {
                stream::scanned::relay(guest, upstream, ctx.clone()).await;
            }
            return Some(ctx);
        }
    };
    let http2 = crate::tls::client_hello::offers_h2(&head);
    let target = intercept::Target::new(dst, names, sni.as_deref(), http2);
    intercept::tls(client, head, target, insp, abort).await
}
