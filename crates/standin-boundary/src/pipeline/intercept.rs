//! TLS interception: a connection whose first bytes are a ClientHello.
//!
//! The sandbox gets a leaf from the sandbox CA for its server name (or for the dialed address
//! when there is none); the boundary dials the same address (or takes an idle connection from
//! the pool verified for the same name), verifies the upstream certificate for that name, and
//! only then reads a byte of plaintext. HTTP inside goes to [`crate::http`], anything else to
//! a scanned stream ([`crate::stream`]).

use super::detect::{looks_like_http, read_plaintext_head};
use super::inspection::Inspection;
use crate::conn::{self, ConnCtx, HANDSHAKE_TIMEOUT, TlsUpstream};
use crate::http::{self, PoolKey, Pooled, Proto, Reconnect, Redial, UpstreamSlot};
use crate::io::{Abort, Prefixed};
use crate::stream;
use crate::tls::ca::LeafName;
use standin_policy::egress::DomainName;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// Where an intercepted connection leads.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The dialed address.
    pub(crate) dst: SocketAddr,
    /// The names this sandbox resolved to it.
    pub(crate) names: Vec<DomainName>,
    /// The ClientHello's server name, if it is a host name (an address or garbage counts as
    /// none: the leaf and the verification are then for the address).
    pub(crate) sni: Option<DomainName>,
    /// Whether the ClientHello offered HTTP/2. The upstream is offered what the client
    /// offered: a request sent as HTTP/1.1 goes upstream as HTTP/1.1, and is translated only
    /// when a client speaking HTTP/2 meets an upstream that does not.
    pub(crate) http2: bool,
}

impl Target {
    /// The target of a connection to `dst` whose ClientHello named `sni`.
    pub(crate) fn new(
        dst: SocketAddr,
        names: Vec<DomainName>,
        sni: Option<&str>,
        http2: bool,
    ) -> Target {
        Target {
            dst,
            names,
            sni: sni.and_then(|s| DomainName::parse(s).ok()),
            http2,
        }
    }

    fn pool_key(&self) -> PoolKey {
        PoolKey {
            dst: self.dst,
            sni: self.sni.clone(),
            http2: self.http2,
        }
    }

    async fn dial(&self, insp: &Inspection) -> Option<TlsUpstream> {
        let t = self;
        conn::dial_tls(
            &insp.state,
            if t.http2 {
                &insp.upstream_tls
            } else {
                &insp.upstream_tls_http1
            },
            t.dst,
            &t.names,
            t.sni.as_ref(),
        )
        .await
    }
}

/// Intercept the TLS connection `client`, whose first bytes `head` hold its ClientHello.
/// `None`: refused before any request (the caller resets).
pub(crate) async fn tls<G>(
    client: G,
    head: Vec<u8>,
    target: Target,
    insp: &Arc<Inspection>,
    abort: Arc<Abort>,
) -> Option<Arc<ConnCtx>>
where
    G: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let leaf = match &target.sni {
        Some(n) => LeafName::Dns(n.to_string()),
        None => LeafName::Ip(target.dst.ip()),
    };
    let server_config = match insp.ca.server_config(&leaf) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot make a leaf certificate");
            return None;
        }
    };
    // The handshakes' state (both TLS handshakes at once, the dial) is several times the size
    // of what the connection keeps afterwards: on the heap while it lasts, so the
    // connection's task stays small for its whole life.
    let Handshaken {
        guest,
        mut pooled,
        mut fresh,
    } = Box::pin(handshakes(
        client,
        head,
        server_config,
        &target,
        insp,
        &abort,
    ))
    .await?;
    let ctx = Arc::new(ConnCtx::new(
        insp.state.clone(),
        target.dst,
        target.names.clone(),
        target.sni.clone(),
        true,
        abort.clone(),
    ));
    let guest_proto = Proto::from_alpn(guest.get_ref().1.alpn_protocol());
    // Over HTTP/1.1 the plaintext's first bytes decide HTTP or an opaque (but scanned) stream.
    let mut guest = guest;
    let mut first = Vec::new();
    let is_http = guest_proto == Proto::H2 || {
        match read_plaintext_head(&mut guest).await {
            Ok(bytes) => first = bytes,
            Err(_) => return Some(ctx),
        }
        looks_like_http(&first)
    };
    let guest = Prefixed::new(first, guest);
    if !is_http {
        // A raw stream needs its own upstream connection: the pooled one goes back (and is
        // no longer this connection's to reset).
        if let Some(p) = pooled.take() {
            if let Some(socket) = &p.socket {
                abort.remove(socket);
            }
            insp.pool.put(target.pool_key(), p);
        }
        let upstream = match fresh.take() {
            Some(f) => f,
            None => Box::pin(dial_registered(&target, insp, &abort)).await?,
        };
        stream::scanned::relay(guest, upstream.stream, ctx.clone()).await;
        return Some(ctx);
    }
    let first_conn = match (pooled, fresh) {
        (Some(p), _) => p,
        (None, Some(TlsUpstream { stream, socket })) => {
            let proto = Proto::from_alpn(stream.get_ref().1.alpn_protocol());
            let conn = Box::pin(http::connect_upstream(stream, proto)).await?;
            Pooled::new(conn, Some(socket))
        }
        (None, None) => return Some(ctx),
    };
    // After an idle spell the connection's upstream goes back to the pool; the next request
    // takes one from there or dials again, with the same identity.
    let redial: Redial = {
        let (insp, target) = (insp.clone(), target.clone());
        Box::new(move || {
            let (insp, target) = (insp.clone(), target.clone());
            Box::pin(async move {
                let TlsUpstream { stream, socket } = target.dial(&insp).await?;
                let proto = Proto::from_alpn(stream.get_ref().1.alpn_protocol());
                let conn = http::connect_upstream(stream, proto).await?;
                Some(Pooled::new(conn, Some(socket)))
            })
        })
    };
    let reconnect = Reconnect {
        pool: insp.pool.clone(),
        key: target.pool_key(),
        redial,
    };
    let slot = UpstreamSlot::new(first_conn, Some(reconnect));
    if let Some(p) = http::serve_with(guest, guest_proto, slot, ctx.clone()).await {
        insp.pool.put(target.pool_key(), p);
    }
    Some(ctx)
}

/// What the handshake phase of an intercepted connection produced.
struct Handshaken<G> {
    guest: Box<tokio_rustls::server::TlsStream<Prefixed<G>>>,
    pooled: Option<Pooled>,
    fresh: Option<TlsUpstream>,
}

/// The sandbox-side TLS handshake, and at the same time the upstream connection: an idle one
/// from the pool (an earlier client connection to the same address, verified for the same
/// name: no dial, no second handshake), else dialed and verified. No byte from the sandbox
/// goes upstream before both are done. The upstream sockets are registered with `abort`.
async fn handshakes<G>(
    client: G,
    head: Vec<u8>,
    server_config: Arc<rustls::ServerConfig>,
    target: &Target,
    insp: &Inspection,
    abort: &Arc<Abort>,
) -> Option<Handshaken<G>>
where
    G: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let dst = target.dst;
    let guest_side = async {
        let acceptor = tokio_rustls::LazyConfigAcceptor::new(
            rustls::server::Acceptor::default(),
            Prefixed::new(head, client),
        );
        let guest = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
            let start = acceptor.await?;
            start.into_stream(server_config).await
        })
        .await;
        match guest {
            Ok(Ok(s)) => Some(Box::new(s)),
            Ok(Err(e)) => {
                tracing::debug!(%dst, error = %e, "sandbox-side TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(%dst, "sandbox-side TLS handshake timed out");
                None
            }
        }
    };
    let key = target.pool_key();
    let mut pooled = None;
    while let Some(p) = insp.pool.take(&key) {
        if p.conn.reusable().await {
            pooled = Some(p);
            break;
        }
    }
    let (guest, fresh) = if pooled.is_some() {
        (guest_side.await, None)
    } else {
        let upstream_side = dial_registered(target, insp, abort);
        let (g, u) = tokio::join!(guest_side, upstream_side);
        (g, Some(u?))
    };
    let guest = guest?;
    if let Some(p) = &pooled
        && let Some(socket) = &p.socket
    {
        abort.add_shared(socket.clone());
    }
    Some(Handshaken {
        guest,
        pooled,
        fresh,
    })
}

/// Dial `target`, with the socket registered with `abort`.
async fn dial_registered(target: &Target, insp: &Inspection, abort: &Abort) -> Option<TlsUpstream> {
    let upstream = target.dial(insp).await?;
    abort.add_shared(upstream.socket.clone());
    Some(upstream)
}
