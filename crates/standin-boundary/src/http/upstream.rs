//! The connection towards the destination: its HTTP version, the sender, and sending one
//! request on it.

use super::body::ReqBody;
use super::limits::MAX_HEAD_BYTES;
use crate::conn::{Blocked, ConnCtx};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

/// Which HTTP version a side speaks (from ALPN; HTTP/1.1 without it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    /// HTTP/1.1.
    H1,
    /// HTTP/2.
    H2,
}

impl Proto {
    /// From a negotiated ALPN protocol.
    pub(crate) fn from_alpn(alpn: Option<&[u8]>) -> Proto {
        if alpn == Some(b"h2") {
            Proto::H2
        } else {
            Proto::H1
        }
    }
}

/// The upstream connection's request sender.
#[derive(Debug)]
pub(crate) enum Upstream {
    /// One request at a time, in order (HTTP/1.1).
    H1(tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<ReqBody>>),
    /// Multiplexed (HTTP/2).
    H2(hyper::client::conn::http2::SendRequest<ReqBody>),
}

/// An upstream connection ready for requests: its sender and the task driving it.
#[derive(Debug)]
pub(crate) struct UpstreamConn {
    /// The sender.
    pub sender: Upstream,
    /// The connection's task (aborted when the connection is let go).
    pub driver: tokio::task::JoinHandle<()>,
}

impl UpstreamConn {
    /// Whether the destination (or an error) closed the connection.
    pub(crate) fn is_closed(&self) -> bool {
        match &self.sender {
            Upstream::H1(s) => s.try_lock().is_ok_and(|s| s.is_closed()),
            Upstream::H2(s) => s.is_closed(),
        }
    }

    /// Whether the connection is idle and open, so another client connection may use it.
    pub(crate) async fn reusable(&self) -> bool {
        match &self.sender {
            Upstream::H1(s) => {
                let s = s.lock().await;
                !s.is_closed() && s.is_ready()
            }
            Upstream::H2(s) => !s.is_closed() && s.is_ready(),
        }
    }
}

impl Drop for UpstreamConn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Handshake HTTP (`proto`) on an established upstream stream.
pub(crate) async fn connect_upstream<U>(upstream: U, proto: Proto) -> Option<UpstreamConn>
where
    U: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(upstream);
    match proto {
        Proto::H1 => match hyper::client::conn::http1::Builder::new()
            .preserve_header_case(true)
            .max_buf_size(MAX_HEAD_BYTES.max(8192) * 4)
            .handshake::<_, ReqBody>(io)
            .await
        {
            Ok((s, conn)) => Some(UpstreamConn {
                sender: Upstream::H1(tokio::sync::Mutex::new(s)),
                driver: tokio::spawn(async move {
                    if let Err(e) = conn.with_upgrades().await {
                        tracing::debug!(error = %e, "upstream connection ended");
                    }
                }),
            }),
            Err(e) => {
                tracing::debug!(error = %e, "upstream HTTP/1 handshake failed");
                None
            }
        },
        Proto::H2 => match hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .max_header_list_size(MAX_HEAD_BYTES as u32)
            .handshake::<_, ReqBody>(io)
            .await
        {
            Ok((s, conn)) => Some(UpstreamConn {
                sender: Upstream::H2(s),
                driver: tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "upstream h2 connection ended");
                    }
                }),
            }),
            Err(e) => {
                tracing::debug!(error = %e, "upstream HTTP/2 handshake failed");
                None
            }
        },
    }
}

pub(crate) async fn send(
    info: &ConnCtx,
    upstream: &Upstream,
    req: Request<ReqBody>,
) -> Result<Response<Incoming>, Blocked> {
    let result = match upstream {
        Upstream::H1(sender) => {
            let mut sender = sender.lock().await;
            if sender.ready().await.is_err() {
                return Err(Blocked);
            }
            sender.send_request(req).await
        }
        Upstream::H2(sender) => {
            let mut sender = sender.clone();
            if sender.ready().await.is_err() {
                return Err(Blocked);
            }
            sender.send_request(req).await
        }
    };
    match result {
        Ok(resp) if !info.is_blocked() => Ok(resp),
        Ok(_) => Err(Blocked),
        Err(e) => {
            tracing::debug!(error = %e, dst = %info.dst, "upstream request failed");
            Err(Blocked)
        }
    }
}
