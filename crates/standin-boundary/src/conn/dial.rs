//! The way to the destination: a TCP connect bounded by the sandbox's connect timeout, and
//! TLS verified for the destination's name. A failure is reported once, as an
//! upstream-failed event, and the caller resets the sandbox's side.

use crate::events::{EventKind, EventProtocol};
use crate::io::SharedSocket;
use crate::state::SandboxState;
use rustls_pki_types::ServerName;
use standin_policy::egress::DomainName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Longest a TLS handshake (either side) may take.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A freshly dialed, verified upstream TLS connection and a handle on its socket (for
/// resets). The stream is boxed: it is moved a few times before it settles, and a moved-from
/// value keeps its room in an async function's state.
#[derive(Debug)]
pub(crate) struct TlsUpstream {
    /// The TLS stream.
    pub(crate) stream: Box<TlsStream<SharedSocket>>,
    /// Its socket, for resets by whichever client connection uses it.
    pub(crate) socket: Arc<TcpStream>,
}

/// Connect to `dst` within the sandbox's connect timeout. `names` (the names this sandbox
/// resolved to `dst`) only label the event on failure.
pub(crate) async fn connect(
    state: &SandboxState,
    dst: SocketAddr,
    names: &[DomainName],
) -> Option<TcpStream> {
    let timeout = state.config.connect_timeout;
    match tokio::time::timeout(timeout, TcpStream::connect(dst)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            upstream_failed(state, dst, None, names, &e.to_string());
            None
        }
        Err(_) => {
            upstream_failed(state, dst, None, names, "connect timed out");
            None
        }
    }
}

/// Dial `dst` and set up TLS verified for `sni` (or for the address without one).
pub(crate) async fn dial_tls(
    state: &SandboxState,
    client_config: &Arc<rustls::ClientConfig>,
    dst: SocketAddr,
    names: &[DomainName],
    sni: Option<&DomainName>,
) -> Option<TlsUpstream> {
    let tcp = SharedSocket::new(connect(state, dst, names).await?);
    let socket = tcp.handle();
    let _ = tcp.set_nodelay(true);
    let server_name: ServerName<'static> = match sni {
        Some(n) => ServerName::try_from(n.to_string()).ok()?,
        None => ServerName::IpAddress(dst.ip().into()),
    };
    let connector = tokio_rustls::TlsConnector::from(client_config.clone());
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(server_name, tcp)).await {
        Ok(Ok(s)) => Some(TlsUpstream {
            stream: Box::new(s),
            socket,
        }),
        Ok(Err(e)) => {
            upstream_failed(state, dst, sni, names, &format!("TLS: {e}"));
            None
        }
        Err(_) => {
            upstream_failed(state, dst, sni, names, "TLS handshake timed out");
            None
        }
    }
}

fn upstream_failed(
    state: &SandboxState,
    dst: SocketAddr,
    sni: Option<&DomainName>,
    names: &[DomainName],
    detail: &str,
) {
    let mut e = state.event(EventKind::UpstreamFailed, EventProtocol::Tcp);
    e.addr = Some(dst.to_string());
    e.name = names.first().map(|n| n.to_string());
    e.sni = sni.map(|n| n.to_string());
    e.detail = Some(detail.to_owned());
    state.config.events.emit(e);
}
