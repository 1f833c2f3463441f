//! Inspected connections: what the relay does with an allowed connection when the sandbox has
//! secrets.
//!
//! The first bytes decide:
//! - a TLS ClientHello: intercept. The sandbox gets a leaf from the sandbox CA for its server
//!   name (or for the dialed address when there is none); the boundary dials the same
//!   address, verifies the upstream certificate for that name, and only then reads a byte of
//!   plaintext. HTTP inside goes to [`crate::http`], anything else to the
//!   [`crate::scanned_relay`];
//! - an HTTP request line: plain HTTP, the same [`crate::http`] path without TLS
//!   identity (so no substitution unless a secret turns `require_tls_identity` off);
//! - anything else, or nothing within the peek window (server-first protocols): the
//!   [`crate::scanned_relay`].
//!
//! A blocked connection is reset on both sides; a terminated sandbox stops every connection.

use crate::abort::Abort;
use crate::ca::LeafName;
use crate::client_hello::Peeked;
use crate::events::EventKind;
use crate::http::{self, ConnInfo, Proto};
use crate::prefixed::Prefixed;
use crate::relay::HELLO_TIMEOUT;
use crate::scanned_relay;
use crate::shared::{Pooled, Shared};
use crate::shared_socket::SharedSocket;
use rustls_pki_types::ServerName;
use standin_policy::egress::DomainName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;

/// Longest a TLS handshake (either side) may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handle an allowed, captured connection of a sandbox with secrets. `head` holds the bytes
/// already read from the client, `hello` what they are.
pub async fn handle(
    client: TcpStream,
    dst: SocketAddr,
    head: Vec<u8>,
    hello: Peeked,
    names: Vec<DomainName>,
    shared: Arc<Shared>,
) {
    let client = SharedSocket::new(client);
    let abort = Arc::new(Abort::default());
    abort.add(&client);
    let shared2 = shared.clone();
    let abort2 = abort.clone();
    let work = async {
        match hello {
            Peeked::Tls(sni) => {
                let _ = client.set_nodelay(true);
                tls(client, dst, head, sni, names, &shared, abort2).await
            }
            _ if head.starts_with(b"CONNECT ") => {
                // Boxed: rare, and its state (another interception inside) would otherwise
                // size every connection's task.
                Box::pin(crate::connect_proxy::handle(
                    client, dst, head, &shared, abort2,
                ))
                .await
            }
            _ => {
                let upstream = SharedSocket::new(connect(&shared, dst, &names).await?);
                abort2.add(&upstream);
                let _ = upstream.set_nodelay(true);
                let _ = client.set_nodelay(true);
                let info = Arc::new(ConnInfo::new(
                    shared.clone(),
                    dst,
                    names,
                    None,
                    false,
                    abort2,
                ));
                let guest = Prefixed::new(head.clone(), client);
                if looks_like_http(&head) {
                    http::serve(guest, Proto::H1, upstream, Proto::H1, info.clone()).await;
                } else {
                    scanned_relay::relay(guest, upstream, info.clone()).await;
                }
                Some(info)
            }
        }
    };
    let outcome = tokio::select! {
        info = work => match info {
            Some(info) => info.is_blocked(),
            None => true,
        },
        _ = shared2.terminated() => true,
    };
    if outcome || shared2.is_terminated() {
        abort.abort();
    }
}

pub(crate) async fn tls<G>(
    client: G,
    dst: SocketAddr,
    head: Vec<u8>,
    sni: Option<String>,
    names: Vec<DomainName>,
    shared: &Arc<Shared>,
    abort: Arc<Abort>,
) -> Option<Arc<ConnInfo>>
where
    G: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (Some(ca), Some(client_config)) = (shared.config.ca.clone(), shared.upstream_tls.clone())
    else {
        return None;
    };
    let sni_name = match sni.as_deref().map(DomainName::parse) {
        Some(Ok(n)) => Some(n),
        // An SNI that is not a host name (garbage, or an address): treat as none.
        Some(Err(_)) | None => None,
    };
    let leaf = match &sni_name {
        Some(n) => LeafName::Dns(n.to_string()),
        None => LeafName::Ip(dst.ip()),
    };
    let server_config = match ca.server_config(&leaf) {
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
        &client_config,
        dst,
        &names,
        sni_name.as_ref(),
        shared,
        &abort,
    ))
    .await?;
    let pool_key = sni_name.clone();
    let info = Arc::new(ConnInfo::new(
        shared.clone(),
        dst,
        names.clone(),
        sni_name.clone(),
        true,
        abort.clone(),
    ));
    let guest_proto = Proto::from_alpn(guest.get_ref().1.alpn_protocol());
    // Over HTTP/1.1 the plaintext's first bytes decide HTTP or an opaque (but scanned) stream.
    let mut guest = guest;
    let mut first = Vec::new();
    let http = guest_proto == Proto::H2 || {
        first.resize(4096, 0);
        let n = match tokio::time::timeout(HELLO_TIMEOUT, guest.read(&mut first)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => return Some(info),
            Err(_) => 0,
        };
        first.truncate(n);
        looks_like_http(&first)
    };
    let guest = Prefixed::new(first, guest);
    if !http {
        // A raw stream needs its own upstream connection.
        if let Some(p) = pooled.take() {
            shared.pool_put(dst, pool_key.clone(), p);
        }
        let (stream, _) = match fresh.take() {
            Some(f) => f,
            None => {
                Box::pin(dial_registered(
                    shared,
                    &client_config,
                    dst,
                    &names,
                    sni_name.as_ref(),
                    &abort,
                ))
                .await?
            }
        };
        scanned_relay::relay(guest, stream, info.clone()).await;
        return Some(info);
    }
    let (conn, fd, proto) = match (pooled, fresh) {
        (Some(p), _) => (p.conn, p.fd, p.proto),
        (None, Some((stream, fd))) => {
            let proto = Proto::from_alpn(stream.get_ref().1.alpn_protocol());
            (
                Box::pin(http::connect_upstream(stream, proto)).await?,
                Some(fd),
                proto,
            )
        }
        (None, None) => return Some(info),
    };
    // After an idle spell the connection's upstream goes back to the pool; the next request
    // takes one from there or dials again, with the same identity.
    let redial: http::slot::Redial = {
        let (shared, names, sni) = (shared.clone(), names.clone(), sni_name.clone());
        Box::new(move || {
            let (shared, names, sni) = (shared.clone(), names.clone(), sni.clone());
            let client_config = client_config.clone();
            Box::pin(async move {
                let (s, fd) = dial_tls(&shared, &client_config, dst, &names, sni.as_ref()).await?;
                let proto = Proto::from_alpn(s.get_ref().1.alpn_protocol());
                let conn = http::connect_upstream(Box::new(s), proto).await?;
                Some(Pooled::new(conn, Some(fd), proto))
            })
        })
    };
    let slot = http::UpstreamSlot::new(Pooled::new(conn, fd, proto), Some(redial));
    if let Some(p) = http::serve_with(guest, guest_proto, slot, info.clone()).await {
        shared.pool_put(dst, pool_key, p);
    }
    Some(info)
}

/// A freshly dialed, verified upstream connection and a handle on its socket (for resets).
/// The stream is boxed: it is moved a few times before it settles, and a moved-from value
/// keeps its room in an async function's state.
type Fresh = (
    Box<tokio_rustls::client::TlsStream<SharedSocket>>,
    Arc<TcpStream>,
);

/// What the handshake phase of an intercepted connection produced.
struct Handshaken<G> {
    guest: Box<tokio_rustls::server::TlsStream<Prefixed<G>>>,
    pooled: Option<Pooled>,
    fresh: Option<Fresh>,
}

/// The sandbox-side TLS handshake, and at the same time the upstream connection: an idle one
/// from the pool (an earlier client connection to the same address, verified for the same
/// name: no dial, no second handshake), else dialed and verified. No byte from the sandbox
/// goes upstream before both are done. The upstream sockets are registered with `abort`.
#[allow(clippy::too_many_arguments)]
async fn handshakes<G>(
    client: G,
    head: Vec<u8>,
    server_config: Arc<rustls::ServerConfig>,
    client_config: &Arc<rustls::ClientConfig>,
    dst: SocketAddr,
    names: &[DomainName],
    sni: Option<&DomainName>,
    shared: &Arc<Shared>,
    abort: &Arc<Abort>,
) -> Option<Handshaken<G>>
where
    G: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
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
    let sni_key = sni.cloned();
    let mut pooled = None;
    while let Some(p) = shared.pool_take(dst, &sni_key) {
        if p.conn.reusable().await {
            pooled = Some(p);
            break;
        }
    }
    let (guest, fresh) = if pooled.is_some() {
        (guest_side.await, None)
    } else {
        let upstream_side = dial_registered(shared, client_config, dst, names, sni, abort);
        let (g, u) = tokio::join!(guest_side, upstream_side);
        (g, Some(u?))
    };
    let guest = guest?;
    if let Some(p) = &pooled
        && let Some(fd) = &p.fd
    {
        abort.add_shared(fd.clone());
    }
    Some(Handshaken {
        guest,
        pooled,
        fresh,
    })
}

/// [`dial_tls`], with the socket registered with `abort`.
async fn dial_registered(
    shared: &Shared,
    client_config: &Arc<rustls::ClientConfig>,
    dst: SocketAddr,
    names: &[DomainName],
    sni: Option<&DomainName>,
    abort: &Abort,
) -> Option<Fresh> {
    let (s, fd) = dial_tls(shared, client_config, dst, names, sni).await?;
    abort.add_shared(fd.clone());
    Some((Box::new(s), fd))
}

/// Dial `dst` and set up TLS verified for `sni` (or the address without one). Failures are
/// reported as upstream-failed events. Returns the stream and a handle on its socket.
async fn dial_tls(
    shared: &Shared,
    client_config: &Arc<rustls::ClientConfig>,
    dst: SocketAddr,
    names: &[DomainName],
    sni: Option<&DomainName>,
) -> Option<(
    tokio_rustls::client::TlsStream<SharedSocket>,
    Arc<TcpStream>,
)> {
    let tcp = SharedSocket::new(connect(shared, dst, names).await?);
    // A handle on the upstream socket, for resets by whichever client connection uses it.
    let fd = tcp.handle();
    let _ = tcp.set_nodelay(true);
    let server_name: ServerName<'static> = match sni {
        Some(n) => ServerName::try_from(n.to_string()).ok()?,
        None => ServerName::IpAddress(dst.ip().into()),
    };
    let connector = tokio_rustls::TlsConnector::from(client_config.clone());
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(server_name, tcp)).await {
        Ok(Ok(s)) => Some((s, fd)),
        Ok(Err(e)) => {
            upstream_failed(shared, dst, sni, names, &format!("TLS: {e}"));
            None
        }
        Err(_) => {
            upstream_failed(shared, dst, sni, names, "TLS handshake timed out");
            None
        }
    }
}

pub(crate) async fn connect(
    shared: &Shared,
    dst: SocketAddr,
    names: &[DomainName],
) -> Option<TcpStream> {
    match tokio::time::timeout(shared.config.connect_timeout, TcpStream::connect(dst)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            upstream_failed(shared, dst, None, names, &e.to_string());
            None
        }
        Err(_) => {
            upstream_failed(shared, dst, None, names, "connect timed out");
            None
        }
    }
}

pub(crate) fn upstream_failed(
    shared: &Shared,
    dst: SocketAddr,
    sni: Option<&DomainName>,
    names: &[DomainName],
    detail: &str,
) {
    let mut e = shared.event(EventKind::UpstreamFailed, "tcp");
    e.addr = Some(dst.to_string());
    e.name = names.first().map(|n| n.to_string());
    e.sni = sni.map(|n| n.to_string());
    e.detail = Some(detail.to_owned());
    shared.config.events.emit(e);
}

/// Methods recognised before a whole request line has arrived.
const METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"HEAD ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
    b"PROPFIND ",
    b"PROPPATCH ",
    b"MKCOL ",
    b"COPY ",
    b"MOVE ",
    b"LOCK ",
    b"UNLOCK ",
    b"REPORT ",
    b"SEARCH ",
];

/// Whether `head` starts like an HTTP/1 request: a whole first line `TOKEN SP TARGET SP
/// HTTP/1.x`, or, while the line is incomplete, a well-known method.
pub fn looks_like_http(head: &[u8]) -> bool {
    let Some(end) = head.iter().position(|&b| b == b'\n') else {
        return METHODS.iter().any(|m| head.starts_with(m));
    };
    let line = head[..end].strip_suffix(b"\r").unwrap_or(&head[..end]);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !method.is_empty()
        && method
            .iter()
            .all(|b| b.is_ascii_uppercase() || *b == b'-' || *b == b'_')
        && !target.is_empty()
        && (version == b"HTTP/1.1" || version == b"HTTP/1.0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_request_lines() {
        assert!(looks_like_http(b"GET / HTTP/1.1\r\n"));
        assert!(looks_like_http(b"POST /x"));
        assert!(!looks_like_http(b"SSH-2.0-OpenSSH"));
        assert!(!looks_like_http(b"\x16\x03\x01"));
        assert!(!looks_like_http(b""));
        assert!(!looks_like_http(b"GE"));
        assert!(!looks_like_http(b"HELLO $MSB_X\n"));
        assert!(looks_like_http(b"BREW /pot HTTP/1.1\r\n"));
        assert!(!looks_like_http(b"BREW /pot"));
    }
}
