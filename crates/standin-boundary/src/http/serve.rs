//! Serving one client connection: hyper's server on the sandbox side, one request at a time
//! (HTTP/1.1) or per stream (HTTP/2), each checked, rewritten and forwarded; WebSocket
//! upgrades handed to [`crate::ws`].

use super::limits::{HEAD_TIMEOUT, MAX_HEAD_BYTES, MAX_HEADERS, MAX_STREAMS};
use super::pool::Pooled;
use super::request::prepare;
use super::response::{RespBody, forbidden, scrub_response};
use super::slot::{InFlightBody, UpstreamSlot};
use super::upstream::{Proto, Upstream, connect_upstream, send};
use super::version::{strip_hop_by_hop, to_version};
use crate::conn::{Blocked, ConnCtx};
use crate::events::Location;
use crate::state::plan::Plan;
use http::header::{self, HeaderMap};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// Serve HTTP from `guest` (speaking `guest_proto`), forwarding to `upstream` (speaking
/// `upstream_proto`) and translating between versions when they differ. Returns when the
/// client side is done.
pub(crate) async fn serve<G, U>(
    guest: G,
    guest_proto: Proto,
    upstream: U,
    upstream_proto: Proto,
    info: Arc<ConnCtx>,
) where
    G: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    U: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if let Some(conn) = connect_upstream(upstream, upstream_proto).await {
        let slot = UpstreamSlot::new(Pooled::new(conn, None), None);
        let _ = serve_with(guest, guest_proto, slot, info).await;
    }
}

/// Serve HTTP from `guest` over the upstream connections of `slot` (released while the
/// client is idle, see [`UpstreamSlot`]). Gives the connection held at the end back when it
/// can serve another client connection (the client left cleanly and the upstream is idle).
pub(crate) async fn serve_with<G>(
    guest: G,
    guest_proto: Proto,
    slot: Arc<UpstreamSlot>,
    info: Arc<ConnCtx>,
) -> Option<Pooled>
where
    G: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc_info = info.clone();
    let svc_slot = slot.clone();
    let service = hyper::service::service_fn(move |req| {
        let info = svc_info.clone();
        let slot = svc_slot.clone();
        async move {
            let busy = slot.busy();
            let Some(upstream) = slot.acquire(&info).await else {
                info.mark_blocked();
                return Err(Blocked);
            };
            let resp = forward(&info, &upstream.conn.sender, req).await?;
            Ok::<_, Blocked>(resp.map(|b| InFlightBody::new(b, busy)))
        }
    });
    let io = TokioIo::new(guest);
    let server = async {
        match guest_proto {
            Proto::H1 => {
                hyper::server::conn::http1::Builder::new()
                    .preserve_header_case(true)
                    .max_buf_size(MAX_HEAD_BYTES)
                    .max_headers(MAX_HEADERS)
                    .timer(TokioTimer::new())
                    .header_read_timeout(info.state.config.idle_timeout.min(HEAD_TIMEOUT))
                    .serve_connection(io, service)
                    .with_upgrades()
                    .await
            }
            Proto::H2 => {
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .max_header_list_size(MAX_HEAD_BYTES as u32)
                    .max_concurrent_streams(MAX_STREAMS)
                    .serve_connection(io, service)
                    .await
            }
        }
    };
    let result = tokio::select! {
        r = server => r,
        () = slot.release_when_idle(&info) => return None,
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, dst = %info.dst, "inspected HTTP connection ended");
    }
    if info.is_blocked() || info.state.is_terminated() {
        return None;
    }
    // The service (and its requests' hold on the connection) is gone with the server.
    slot.take_reusable(&info).await
}

/// Answer every request on `guest` with the boundary's `403` and `text` (a connection the
/// egress policy denied, with readable refusals); nothing is dialed. Ends when the client
/// closes or after [`HEAD_TIMEOUT`] of silence.
pub(crate) async fn answer_refused<G>(guest: G, guest_proto: Proto, text: String)
where
    G: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let text = Arc::new(text);
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let text = text.clone();
        async move {
            Ok::<_, std::convert::Infallible>(forbidden(
                &text,
                req.version() == http::Version::HTTP_2,
            ))
        }
    });
    let io = TokioIo::new(guest);
    let served = async {
        match guest_proto {
            Proto::H1 => hyper::server::conn::http1::Builder::new()
                .max_buf_size(MAX_HEAD_BYTES)
                .max_headers(MAX_HEADERS)
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .serve_connection(io, service)
                .await
                .map_err(|e| e.to_string()),
            Proto::H2 => hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .max_concurrent_streams(MAX_STREAMS)
                .serve_connection(io, service)
                .await
                .map_err(|e| e.to_string()),
        }
    };
    if let Ok(Err(e)) = tokio::time::timeout(HEAD_TIMEOUT * 4, served).await {
        tracing::debug!(error = %e, "refused connection ended");
    }
}

async fn forward(
    info: &Arc<ConnCtx>,
    upstream: &Upstream,
    mut req: Request<Incoming>,
) -> Result<Response<RespBody>, Blocked> {
    let guest_h2 = req.version() == http::Version::HTTP_2;
    let upgrade = (!guest_h2 && is_upgrade(req.headers())).then(|| hyper::upgrade::on(&mut req));
    let upstream_h2 = matches!(upstream, Upstream::H2(_));
    if upgrade.is_some() && upstream_h2 {
        return Err(info.refuse(
            None,
            "an HTTP/1.1 Upgrade (WebSocket) to an upstream that speaks only HTTP/2",
        ));
    }
    if upgrade.is_some() {
        // Compressed frames (permessage-deflate) could not be scanned: never negotiate it.
        req.headers_mut().remove(header::SEC_WEBSOCKET_EXTENSIONS);
    }
    let (plan, req) = match prepare(info, req).await {
        Ok(p) => p,
        // Readable refusals: the boundary answers, nothing went upstream, the connection
        // stays usable (HTTP/2) or closes after the answer (HTTP/1.1).
        Err(denied) if denied.answer && !info.state.is_terminated() => {
            return Ok(forbidden(&denied.text, guest_h2));
        }
        Err(_) => {
            info.mark_blocked();
            return Err(Blocked);
        }
    };
    let req = to_version(req, upstream_h2, info);
    let mut resp = send(info, upstream, req).await?;
    if let Some(guest_upgrade) = upgrade
        && resp.status() == http::StatusCode::SWITCHING_PROTOCOLS
    {
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(upgraded(
            info.clone(),
            plan.clone(),
            guest_upgrade,
            upstream_upgrade,
        ));
        // A 101 has no body; its headers are scrubbed like any response's.
        return scrub_response(info, &plan, resp);
    }
    let mut resp = scrub_response(info, &plan, resp)?;
    if guest_h2 {
        strip_hop_by_hop(resp.headers_mut());
    }
    Ok(resp)
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers.get_all(header::CONNECTION).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.to_ascii_lowercase().contains("upgrade"))
        })
}

/// After a 101: relay WebSocket frames, scanning the sandbox's (see [`crate::ws`]).
async fn upgraded(
    info: Arc<ConnCtx>,
    plan: Arc<Plan>,
    guest: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
) {
    let (Ok(guest), Ok(upstream)) = tokio::join!(guest, upstream) else {
        info.mark_blocked();
        return;
    };
    let host = plan.host.as_ref().map(|h| h.to_string());
    // Frames from a server that may have received a value are scrubbed of it, like response
    // bodies.
    let held = info.values_held(&plan);
    let scrubber = (!held.is_empty()).then(|| info.scrubber(held));
    let relay = crate::ws::relay(
        TokioIo::new(guest),
        TokioIo::new(upstream),
        plan.violations.clone(),
        scrubber,
    );
    tokio::select! {
        r = relay => match r {
            Ok(()) => {}
            Err(crate::ws::WsError::Violation(hit)) => {
                let _ = info.violation(&plan, hit, host.as_deref(), Location::Websocket);
            }
            Err(crate::ws::WsError::Protocol(why)) => {
                let _ = info.refuse(host.as_deref(), why);
            }
        },
        _ = info.state.terminated() => info.mark_blocked(),
    }
}
