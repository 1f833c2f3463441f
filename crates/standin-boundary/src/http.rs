//! HTTP/1.1 on an inspected connection.
//!
//! The client side is served by hyper's HTTP/1 server, the upstream side is one hyper client
//! connection to the destination the client dialed (over verified TLS when intercepting):
//! requests go out in order on that one connection, so keep-alive and pipelining behave as
//! the client expects. For every request:
//!
//! 1. framing is checked (no `Transfer-Encoding` with `Content-Length`, no conflicting
//!    lengths, only `chunked`), so the upstream cannot read it differently from us;
//! 2. the `Host` (and an absolute-form authority) must equal the TLS server name: no domain
//!    fronting, on every request of a keep-alive connection;
//! 3. the connection's [`Plan`] for that host decides: placeholders to substitute (headers,
//!    Basic credentials, query, body) and placeholders that are violations (in any part, raw,
//!    percent-encoded, JSON-escaped or base64 in Basic credentials);
//! 4. the body is scanned before it is forwarded: up to [`PREFILL_BYTES`] are read and
//!    checked before the request leaves at all, so a small request carrying a placeholder
//!    never reaches the destination; larger bodies stream, holding back only bytes that could
//!    be the start of a placeholder. Bodies rewritten under a `Content-Length` are read whole
//!    (up to [`MAX_REWRITE_BODY`]) and sent with the new length; chunked bodies are rewritten
//!    as they stream.
//!
//! A violation or refusal ends the connection with a reset on both sides.

use crate::plan::Plan;
use crate::shared::Shared;
use crate::violation::{self, Place};
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use standin_policy::egress::DomainName;
use standin_policy::secrets::scan::scan_all;
use standin_policy::secrets::{
    Destination, Form, Hit, Patterns, Scrubber, StreamScanner, StreamSubstituter, rewrite,
};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};

/// Largest request head (request line and headers) accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most headers in one request.
pub const MAX_HEADERS: usize = 128;
/// Longest a client may take to send a request head, and longest a keep-alive connection
/// waits for the next one (slow-loris bound; the idle timeout applies if shorter).
pub const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// Most concurrent HTTP/2 streams per client connection.
pub const MAX_STREAMS: u32 = 256;
/// How long prefilling a body waits for its next piece before letting the request go (a
/// streaming client, gRPC for one, may wait for a response before sending more).
pub const PREFILL_STALL: std::time::Duration = std::time::Duration::from_millis(100);
/// Body bytes read and scanned before a request is sent upstream at all.
pub const PREFILL_BYTES: usize = 1024 * 1024;
/// Largest `Content-Length` body that can be rewritten (it is read whole to fix the length).
pub const MAX_REWRITE_BODY: usize = 16 * 1024 * 1024;

/// A request was refused; the connection is reset.
#[derive(Debug, Error)]
#[error("request blocked by the standin boundary")]
pub struct Blocked;

/// What the inspected connection is.
#[derive(Debug)]
pub struct ConnInfo {
    /// Per-sandbox state.
    pub shared: Arc<Shared>,
    /// Dialed address.
    pub dst: SocketAddr,
    /// Names this sandbox resolved to `dst`.
    pub names: Vec<DomainName>,
    /// TLS server name (intercepted TLS with SNI).
    pub sni: Option<DomainName>,
    /// Whether this is intercepted TLS with a verified upstream.
    pub tls: bool,
    plan: Mutex<Option<Arc<Plan>>>,
    blocked: AtomicBool,
    abort: Arc<crate::abort::Abort>,
}

impl ConnInfo {
    /// Describe a connection.
    pub fn new(
        shared: Arc<Shared>,
        dst: SocketAddr,
        names: Vec<DomainName>,
        sni: Option<DomainName>,
        tls: bool,
        abort: Arc<crate::abort::Abort>,
    ) -> ConnInfo {
        ConnInfo {
            shared,
            dst,
            names,
            sni,
            tls,
            plan: Mutex::new(None),
            blocked: AtomicBool::new(false),
            abort,
        }
    }

    /// Mark the connection blocked (the caller resets both sides).
    pub fn mark_blocked(&self) {
        self.blocked.store(true, Ordering::Release);
        self.abort.abort();
    }

    /// Whether a request on this connection was blocked (the caller resets both sides).
    pub fn is_blocked(&self) -> bool {
        self.blocked.load(Ordering::Acquire)
    }

    /// The plan for a request claiming `host` (cached for the last host seen).
    pub fn plan(&self, host: Option<&DomainName>) -> Arc<Plan> {
        if let Ok(cache) = self.plan.lock()
            && let Some(p) = cache.as_ref()
            && p.host.as_ref() == host
        {
            return p.clone();
        }
        let pinned = host.is_some_and(|h| self.names.contains(h));
        let plan = self.shared.plan(&Destination {
            host,
            host_pinned: pinned,
            pinned_names: &self.names,
            tls: self.tls,
        });
        if let Ok(mut cache) = self.plan.lock() {
            *cache = Some(plan.clone());
        }
        plan
    }

    fn place<'a>(&'a self, host: Option<&'a str>, location: &'static str) -> Place<'a> {
        Place {
            addr: self.dst,
            sni: self.sni.as_ref().map(DomainName::as_str),
            host,
            name: self.names.first().map(DomainName::as_str),
            location,
            protocol: "http/1.1",
        }
    }

    /// Act on a placeholder found where it may not go.
    pub fn violation(
        &self,
        plan: &Plan,
        hit: Hit,
        host: Option<&str>,
        location: &'static str,
    ) -> Blocked {
        match plan.actions.get(hit.secret).copied().flatten() {
            Some(action) => violation::report(
                &self.shared,
                hit.secret,
                hit.form,
                action,
                &self.place(host, location),
            ),
            // Only a substitutable placeholder in a body that cannot be rewritten gets here.
            None => violation::refused(
                &self.shared,
                &self.place(host, location),
                "placeholder in a body with a content encoding (cannot be rewritten safely)",
            ),
        }
        self.mark_blocked();
        Blocked
    }

    /// Refuse a request for a protocol reason.
    pub fn refuse(&self, host: Option<&str>, why: &str) -> Blocked {
        violation::refused(&self.shared, &self.place(host, "header"), why);
        self.mark_blocked();
        Blocked
    }

    fn real<'a>(&'a self) -> impl Fn(usize) -> &'a [u8] + 'a {
        move |i| {
            self.shared
                .secrets
                .as_ref()
                .and_then(|s| s.entries.get(i))
                .map_or(&[][..], |e| e.value.expose())
        }
    }
}

/// Which HTTP version a side speaks (from ALPN; HTTP/1.1 without it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// HTTP/1.1.
    H1,
    /// HTTP/2.
    H2,
}

impl Proto {
    /// From a negotiated ALPN protocol.
    pub fn from_alpn(alpn: Option<&[u8]>) -> Proto {
        if alpn == Some(b"h2") {
            Proto::H2
        } else {
            Proto::H1
        }
    }
}

/// The upstream connection's request sender.
#[derive(Debug)]
pub enum Upstream {
    /// One request at a time, in order (HTTP/1.1).
    H1(tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<ReqBody>>),
    /// Multiplexed (HTTP/2).
    H2(hyper::client::conn::http2::SendRequest<ReqBody>),
}

/// An upstream connection ready for requests: its sender and the task driving it.
#[derive(Debug)]
pub struct UpstreamConn {
    /// The sender.
    pub sender: Upstream,
    /// The connection's task (aborted when the connection is let go).
    pub driver: tokio::task::JoinHandle<()>,
}

impl UpstreamConn {
    /// Whether the connection is idle and open, so another client connection may use it.
    pub async fn reusable(&self) -> bool {
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
pub async fn connect_upstream<U>(upstream: U, proto: Proto) -> Option<UpstreamConn>
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

/// Serve HTTP from `guest` (speaking `guest_proto`), forwarding to `upstream` (speaking
/// `upstream_proto`) and translating between versions when they differ. Returns when the
/// client side is done.
pub async fn serve<G, U>(
    guest: G,
    guest_proto: Proto,
    upstream: U,
    upstream_proto: Proto,
    info: Arc<ConnInfo>,
) where
    G: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    U: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if let Some(conn) = connect_upstream(upstream, upstream_proto).await {
        let _ = serve_with(guest, guest_proto, conn, info).await;
    }
}

/// Serve HTTP from `guest` over an upstream connection that is already set up. Gives the
/// connection back when it can serve another client connection (the client left cleanly and
/// the upstream is idle).
pub async fn serve_with<G>(
    guest: G,
    guest_proto: Proto,
    conn: UpstreamConn,
    info: Arc<ConnInfo>,
) -> Option<UpstreamConn>
where
    G: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let upstream = Arc::new(conn);
    let svc_info = info.clone();
    let svc_upstream = upstream.clone();
    let service = hyper::service::service_fn(move |req| {
        let info = svc_info.clone();
        let upstream = svc_upstream.clone();
        async move { forward(&info, &upstream.sender, req).await }
    });
    let io = TokioIo::new(guest);
    let result = match guest_proto {
        Proto::H1 => {
            hyper::server::conn::http1::Builder::new()
                .preserve_header_case(true)
                .max_buf_size(MAX_HEAD_BYTES)
                .max_headers(MAX_HEADERS)
                .timer(TokioTimer::new())
                .header_read_timeout(info.shared.config.idle_timeout.min(HEAD_TIMEOUT))
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
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, dst = %info.dst, "inspected HTTP connection ended");
    }
    // The service (and its clone of the connection) is gone with the server.
    let conn = Arc::into_inner(upstream)?;
    if info.is_blocked() || info.shared.is_terminated() || !conn.reusable().await {
        return None;
    }
    Some(conn)
}

async fn forward(
    info: &Arc<ConnInfo>,
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
    let (plan, req) = prepare(info, req).await?;
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
        return Ok(resp.map(RespBody::Incoming));
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
    info: Arc<ConnInfo>,
    plan: Arc<Plan>,
    guest: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
) {
    let (Ok(guest), Ok(upstream)) = tokio::join!(guest, upstream) else {
        info.mark_blocked();
        return;
    };
    let host = plan.host.as_ref().map(|h| h.to_string());
    let relay = crate::ws::relay(
        TokioIo::new(guest),
        TokioIo::new(upstream),
        plan.violations.clone(),
    );
    tokio::select! {
        r = relay => match r {
            Ok(()) => {}
            Err(crate::ws::WsError::Violation(hit)) => {
                let _ = info.violation(&plan, hit, host.as_deref(), "websocket");
            }
            Err(crate::ws::WsError::Protocol(why)) => {
                let _ = info.refuse(host.as_deref(), why);
            }
        },
        _ = info.shared.terminated() => info.mark_blocked(),
    }
}

/// Connection-specific headers, meaningless (and forbidden in HTTP/2) past one hop.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for h in HOP_BY_HOP {
        headers.remove(*h);
    }
    if headers
        .get(header::TE)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"trailers"))
    {
        headers.remove(header::TE);
    }
}

/// Shape a checked request for the upstream's HTTP version.
fn to_version(mut req: Request<ReqBody>, h2: bool, info: &ConnInfo) -> Request<ReqBody> {
    if !h2 && req.version() != http::Version::HTTP_2 {
        // HTTP/1.1 to HTTP/1.1, the common case: nothing to translate.
        *req.version_mut() = http::Version::HTTP_11;
        return req;
    }
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| info.dst.to_string());
    let path = req
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    if h2 {
        let scheme = if info.tls { "https" } else { "http" };
        if let Ok(uri) = Uri::builder()
            .scheme(scheme)
            .authority(authority.as_str())
            .path_and_query(path.as_str())
            .build()
        {
            *req.uri_mut() = uri;
        }
        *req.version_mut() = http::Version::HTTP_2;
        strip_hop_by_hop(req.headers_mut());
        req.headers_mut().remove(header::HOST);
    } else {
        if req.version() == http::Version::HTTP_2 {
            if let Ok(uri) = path.parse::<Uri>() {
                *req.uri_mut() = uri;
            }
            if !req.headers().contains_key(header::HOST)
                && let Ok(v) = HeaderValue::from_str(&authority)
            {
                req.headers_mut().insert(header::HOST, v);
            }
        }
        *req.version_mut() = http::Version::HTTP_11;
    }
    req
}

/// Replace echoed values by their placeholders in a response from a host that may have
/// received them (see [`standin_policy::secrets::reflect`]).
fn scrub_response(
    info: &ConnInfo,
    plan: &Arc<Plan>,
    resp: Response<Incoming>,
) -> Result<Response<RespBody>, Blocked> {
    if plan.reflect_ids.is_empty() {
        return Ok(resp.map(RespBody::Incoming));
    }
    let set = info.shared.secrets.clone().unwrap_or_default();
    let scrubber = Scrubber::new(set, plan.reflect_ids.clone());
    let (mut parts, body) = resp.into_parts();
    for value in parts.headers.values_mut() {
        if let Some(clean) = scrubber.replace_all(value.as_bytes()) {
            *value = HeaderValue::from_bytes(&clean).map_err(|_| Blocked)?;
        }
    }
    let encoded = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    if body.is_end_stream() {
        return Ok(Response::from_parts(parts, RespBody::Incoming(body)));
    }
    if encoded {
        // We asked for identity; an encoded body cannot be scanned, so it cannot be let in.
        return Err(info.refuse(
            plan.host.as_ref().map(DomainName::as_str),
            "a compressed response on a connection where a secret may have been substituted",
        ));
    }
    // The length may change; the body is re-framed (chunked to HTTP/1.1 clients).
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok(Response::from_parts(
        parts,
        RespBody::Scrubbed(Box::new(ScrubBody {
            inner: body,
            scrubber,
            queue: VecDeque::new(),
            ended: false,
            trailers: None,
        })),
    ))
}

async fn prepare(
    info: &Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<(Arc<Plan>, Request<ReqBody>), Blocked> {
    if info.shared.is_terminated() {
        return Err(Blocked);
    }
    let (mut parts, body) = req.into_parts();
    check_framing(&parts.headers).map_err(|why| info.refuse(None, &why))?;
    let host_text = host_of(&parts).map_err(|why| info.refuse(None, &why))?;
    let host_ref = Some(host_text.as_str());
    let claim = match DomainName::parse(&host_text) {
        Ok(n) => Some(n),
        Err(_) if host_text.parse::<std::net::IpAddr>().is_ok() => None,
        Err(_) => return Err(info.refuse(host_ref, "the Host header is not a valid host name")),
    };
    let claim = if info.tls {
        match (&info.sni, &claim) {
            (Some(sni), Some(h)) if sni == h => Some(h.clone()),
            (Some(sni), _) => {
                return Err(info.refuse(
                    host_ref,
                    &format!("Host {host_text} does not match the TLS server name {sni}"),
                ));
            }
            // No SNI (the client dialed an address): no name identity.
            (None, _) => None,
        }
    } else {
        claim
    };
    let plan = info.plan(claim.as_ref());
    if plan.is_inert() {
        return Ok((plan, Request::from_parts(parts, ReqBody::Incoming(body))));
    }
    if !plan.reflect_ids.is_empty() {
        // Responses will be scrubbed of real values: they must be readable.
        parts.headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
    }
    let real = info.real();

    // Headers.
    for (name, value) in parts.headers.iter_mut() {
        let v = value.as_bytes();
        scan_all(&plan.violations, name.as_str().as_bytes())
            .and_then(|()| scan_all(&plan.violations, v))
            .map_err(|hit| info.violation(&plan, hit, host_ref, "header"))?;
        let is_auth = name == header::AUTHORIZATION || name == header::PROXY_AUTHORIZATION;
        if is_auth && let Some(creds) = rewrite::basic_credentials(v) {
            let creds = zeroize::Zeroizing::new(creds);
            scan_all(&plan.violations, &creds).map_err(|hit| {
                info.violation(
                    &plan,
                    Hit {
                        form: Form::Base64,
                        ..hit
                    },
                    host_ref,
                    "basic-auth",
                )
            })?;
        }
        let mut new = None;
        if is_auth && !plan.sub_basic.is_empty() {
            new = rewrite::basic_auth(&plan.sub_basic, v, &real);
        }
        if new.is_none() && !plan.sub_headers.is_empty() {
            new = rewrite::header_value(&plan.sub_headers, v, &real);
        }
        if let Some(n) = new {
            let n = zeroize::Zeroizing::new(n);
            let mut hv = HeaderValue::from_bytes(&n).map_err(|_| {
                info.refuse(
                    host_ref,
                    "a substituted header value is not a valid header value",
                )
            })?;
            hv.set_sensitive(true);
            *value = hv;
        }
    }

    // Request target.
    if let Some(pq) = parts.uri.path_and_query().cloned() {
        scan_all(&plan.violations, pq.path().as_bytes())
            .map_err(|hit| info.violation(&plan, hit, host_ref, "path"))?;
        if let Some(q) = pq.query() {
            scan_all(&plan.violations, q.as_bytes())
                .map_err(|hit| info.violation(&plan, hit, host_ref, "query"))?;
            if !plan.sub_query.is_empty()
                && let Some(newq) = rewrite::query(&plan.sub_query, q.as_bytes(), &real)
            {
                let mut target = pq.path().as_bytes().to_vec();
                target.push(b'?');
                target.extend_from_slice(&newq);
                let mut up = parts.uri.clone().into_parts();
                up.path_and_query = Some(
                    http::uri::PathAndQuery::from_maybe_shared(Bytes::from(target))
                        .map_err(|_| info.refuse(host_ref, "substituted query is not valid"))?,
                );
                parts.uri = Uri::from_parts(up)
                    .map_err(|_| info.refuse(host_ref, "substituted target is not valid"))?;
            }
        }
    }

    // Body.
    let chunked = parts.headers.contains_key(header::TRANSFER_ENCODING);
    let length = content_length(&parts.headers);
    let has_body = chunked || length.is_some_and(|l| l > 0);
    let body = if !has_body {
        ReqBody::Incoming(body)
    } else {
        let encoded = parts
            .headers
            .get(header::CONTENT_ENCODING)
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
        let scan = if encoded {
            plan.encoded_body.clone()
        } else {
            plan.violations.clone()
        };
        let sub = (!encoded && !plan.sub_body.is_empty()).then(|| plan.sub_body.clone());
        if scan.is_empty() && sub.is_none() {
            ReqBody::Incoming(body)
        } else {
            let rewrite_fixed = sub.is_some() && length.is_some();
            let mut scanned = ScannedBody {
                inner: body,
                filter: BodyFilter::new(scan, sub),
                queue: VecDeque::new(),
                queued: 0,
                trailers: None,
                ended: false,
                ctx: ContextRef {
                    plan: plan.clone(),
                    host: host_text.clone(),
                },
                conn: info.clone(),
            };
            let limit = if rewrite_fixed {
                MAX_REWRITE_BODY
            } else {
                PREFILL_BYTES
            };
            let stall = (!rewrite_fixed).then_some(PREFILL_STALL);
            scanned.prefill(limit, stall).await?;
            parts.headers.remove(header::EXPECT);
            if rewrite_fixed {
                if !scanned.ended {
                    return Err(info.refuse(
                        host_ref,
                        "a body with Content-Length over 16 MiB cannot be rewritten",
                    ));
                }
                let mut all = BytesMut::with_capacity(scanned.queued);
                for b in scanned.queue.drain(..) {
                    all.extend_from_slice(&b);
                }
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(all.len()));
                ReqBody::Full(Some(all.freeze()))
            } else {
                ReqBody::Scanned(Box::new(scanned))
            }
        }
    };
    Ok((plan, Request::from_parts(parts, body)))
}

async fn send(
    info: &ConnInfo,
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

/// Refuse framing the upstream could read differently from us.
fn check_framing(headers: &HeaderMap) -> Result<(), String> {
    let te: Vec<&HeaderValue> = headers.get_all(header::TRANSFER_ENCODING).iter().collect();
    let cl: Vec<&HeaderValue> = headers.get_all(header::CONTENT_LENGTH).iter().collect();
    if !te.is_empty() && !cl.is_empty() {
        return Err("both Transfer-Encoding and Content-Length".into());
    }
    if te.len() > 1
        || te
            .first()
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"chunked"))
    {
        return Err("a Transfer-Encoding other than a single 'chunked'".into());
    }
    if cl.len() > 1 && cl.windows(2).any(|w| w[0] != w[1]) {
        return Err("conflicting Content-Length values".into());
    }
    Ok(())
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

/// The host the request claims: exactly one `Host`, port and trailing dot stripped, and an
/// absolute-form target's authority must agree with it.
fn host_of(parts: &http::request::Parts) -> Result<String, String> {
    let hosts: Vec<&HeaderValue> = parts.headers.get_all(header::HOST).iter().collect();
    if parts.version == http::Version::HTTP_2 && hosts.is_empty() {
        // HTTP/2: `:authority` names the host.
        let auth = parts
            .uri
            .authority()
            .ok_or("an HTTP/2 request without :authority")?;
        return Ok(strip_port(auth.as_str())?.to_ascii_lowercase());
    }
    let [host] = hosts.as_slice() else {
        return Err(format!(
            "{} Host headers (exactly one is required)",
            hosts.len()
        ));
    };
    let host = host
        .to_str()
        .map_err(|_| "a Host header that is not ASCII")?;
    let name = strip_port(host)?;
    if let Some(auth) = parts.uri.authority()
        && !strip_port(auth.as_str())?.eq_ignore_ascii_case(&name)
    {
        return Err(format!(
            "the request target's authority {auth} differs from Host {host}"
        ));
    }
    Ok(name.to_ascii_lowercase())
}

fn strip_port(authority: &str) -> Result<String, String> {
    let a = authority.trim();
    if let Some(rest) = a.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or("an unterminated IPv6 literal in Host")?;
        return Ok(rest[..end].to_owned());
    }
    let host = match a.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => a,
    };
    Ok(host.strip_suffix('.').unwrap_or(host).to_owned())
}

/// The response body sent to the sandbox.
#[derive(Debug)]
pub enum RespBody {
    /// As received.
    Incoming(Incoming),
    /// With echoed values replaced by placeholders.
    Scrubbed(Box<ScrubBody>),
}

/// A response body scrubbed of real values.
#[derive(Debug)]
pub struct ScrubBody {
    inner: Incoming,
    scrubber: Scrubber,
    queue: VecDeque<Bytes>,
    ended: bool,
    trailers: Option<HeaderMap>,
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let s = match self.get_mut() {
            RespBody::Incoming(b) => return Pin::new(b).poll_frame(cx),
            RespBody::Scrubbed(s) => s.as_mut(),
        };
        loop {
            if let Some(b) = s.queue.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
            if s.ended {
                return Poll::Ready(s.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            match ready!(Pin::new(&mut s.inner).poll_frame(cx)) {
                None => {
                    let mut out = Vec::new();
                    s.scrubber.finish(&mut out);
                    if !out.is_empty() {
                        s.queue.push_back(Bytes::from(out));
                    }
                    s.ended = true;
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let mut out = Vec::with_capacity(data.len());
                        s.scrubber.push(&data, &mut out);
                        if !out.is_empty() {
                            s.queue.push_back(Bytes::from(out));
                        }
                    }
                    Err(frame) => {
                        if let Ok(mut t) = frame.into_trailers() {
                            for v in t.values_mut() {
                                if let Some(clean) = s.scrubber.replace_all(v.as_bytes())
                                    && let Ok(hv) = HeaderValue::from_bytes(&clean)
                                {
                                    *v = hv;
                                }
                            }
                            s.trailers = Some(t);
                        }
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RespBody::Incoming(b) => b.is_end_stream(),
            RespBody::Scrubbed(s) => s.ended && s.queue.is_empty() && s.trailers.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Incoming(b) => b.size_hint(),
            RespBody::Scrubbed(_) => SizeHint::default(),
        }
    }
}

/// The body sent upstream.
#[derive(Debug)]
pub enum ReqBody {
    /// Forwarded as received (nothing to scan or rewrite).
    Incoming(Incoming),
    /// Rewritten whole.
    Full(Option<Bytes>),
    /// Scanned (and possibly rewritten) as it streams.
    Scanned(Box<ScannedBody>),
}

/// Why a request body stopped.
#[derive(Debug, Error)]
pub enum BodyError {
    /// A placeholder that may not go there.
    #[error("request body blocked")]
    Blocked,
    /// The client's body failed.
    #[error("client body: {0}")]
    Client(#[from] hyper::Error),
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            ReqBody::Incoming(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|o| o.map(|r| r.map_err(BodyError::from))),
            ReqBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ReqBody::Scanned(s) => Pin::new(s.as_mut()).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Incoming(b) => b.is_end_stream(),
            ReqBody::Full(b) => b.is_none(),
            ReqBody::Scanned(s) => s.ended && s.queue.is_empty() && s.trailers.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Incoming(b) => b.size_hint(),
            ReqBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ReqBody::Scanned(_) => SizeHint::default(),
        }
    }
}

/// Scanning and substitution state of one body.
#[derive(Debug)]
struct BodyFilter {
    scanner: StreamScanner,
    subst: Option<StreamSubstituter>,
    held: BytesMut,
    held_start: u64,
}

impl BodyFilter {
    fn new(scan: Arc<Patterns>, sub: Option<Arc<Patterns>>) -> BodyFilter {
        BodyFilter {
            scanner: StreamScanner::new(scan),
            subst: sub.map(StreamSubstituter::new),
            held: BytesMut::new(),
            held_start: 0,
        }
    }

    fn push<'v>(
        &mut self,
        data: Bytes,
        real: &dyn Fn(usize) -> &'v [u8],
        out: &mut VecDeque<Bytes>,
    ) -> Result<(), Hit> {
        let safe = self.scanner.push(&data)?;
        if self.held.is_empty() && self.subst.is_none() && safe == self.scanner.consumed() {
            // Nothing held back and nothing to rewrite: forward the frame as it is.
            self.held_start = safe;
            if !data.is_empty() {
                out.push_back(data);
            }
            return Ok(());
        }
        self.held.extend_from_slice(&data);
        let n = usize::try_from(safe - self.held_start)
            .unwrap_or(0)
            .min(self.held.len());
        let ready = self.held.split_to(n).freeze();
        self.held_start += n as u64;
        self.emit(ready, real, out);
        Ok(())
    }

    fn finish<'v>(
        &mut self,
        real: &dyn Fn(usize) -> &'v [u8],
        out: &mut VecDeque<Bytes>,
    ) -> Result<(), Hit> {
        self.scanner.finish()?;
        let rest = self.held.split().freeze();
        self.emit(rest, real, out);
        if let Some(s) = self.subst.as_mut() {
            let mut v = Vec::new();
            s.finish(real, &mut v);
            if !v.is_empty() {
                out.push_back(Bytes::from(v));
            }
        }
        Ok(())
    }

    fn emit<'v>(
        &mut self,
        ready: Bytes,
        real: &dyn Fn(usize) -> &'v [u8],
        out: &mut VecDeque<Bytes>,
    ) {
        match self.subst.as_mut() {
            None if ready.is_empty() => {}
            None => out.push_back(ready),
            Some(s) => {
                let mut v = Vec::with_capacity(ready.len());
                s.push(&ready, real, &mut v);
                if !v.is_empty() {
                    out.push_back(Bytes::from(v));
                }
            }
        }
    }
}

#[derive(Debug)]
struct ContextRef {
    plan: Arc<Plan>,
    host: String,
}

/// A request body scanned (and possibly rewritten) on its way upstream.
#[derive(Debug)]
pub struct ScannedBody {
    inner: Incoming,
    filter: BodyFilter,
    queue: VecDeque<Bytes>,
    queued: usize,
    trailers: Option<HeaderMap>,
    ended: bool,
    ctx: ContextRef,
    conn: Arc<ConnInfo>,
}

impl ScannedBody {
    /// Read and scan until the body ends or `limit` bytes are queued.
    async fn prefill(
        &mut self,
        limit: usize,
        stall: Option<std::time::Duration>,
    ) -> Result<(), Blocked> {
        while !self.ended && self.queued < limit {
            let next = std::future::poll_fn(|cx| Pin::new(&mut self.inner).poll_frame(cx));
            let frame = match stall {
                Some(d) => match tokio::time::timeout(d, next).await {
                    Ok(f) => f,
                    // The client is waiting for us: let the request go, keep scanning.
                    Err(_) => return Ok(()),
                },
                None => next.await,
            };
            self.on_frame(frame).map_err(|_| Blocked)?;
        }
        Ok(())
    }

    fn on_frame(
        &mut self,
        frame: Option<Result<Frame<Bytes>, hyper::Error>>,
    ) -> Result<(), BodyError> {
        let info = self.conn.clone();
        let real = info.real();
        let host = Some(self.ctx.host.as_str());
        match frame {
            None => {
                let before = self.queue.len();
                self.filter.finish(&real, &mut self.queue).map_err(|hit| {
                    info.violation(&self.ctx.plan, hit, host, "body");
                    BodyError::Blocked
                })?;
                self.queued += self
                    .queue
                    .iter()
                    .skip(before)
                    .map(Bytes::len)
                    .sum::<usize>();
                self.ended = true;
            }
            Some(Err(e)) => return Err(BodyError::Client(e)),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    let before = self.queue.len();
                    self.filter
                        .push(data, &real, &mut self.queue)
                        .map_err(|hit| {
                            info.violation(&self.ctx.plan, hit, host, "body");
                            BodyError::Blocked
                        })?;
                    self.queued += self
                        .queue
                        .iter()
                        .skip(before)
                        .map(Bytes::len)
                        .sum::<usize>();
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        for (name, value) in trailers.iter() {
                            scan_all(&self.ctx.plan.violations, name.as_str().as_bytes())
                                .and_then(|()| {
                                    scan_all(&self.ctx.plan.violations, value.as_bytes())
                                })
                                .map_err(|hit| {
                                    info.violation(&self.ctx.plan, hit, host, "trailer");
                                    BodyError::Blocked
                                })?;
                        }
                        self.trailers = Some(trailers);
                    }
                }
            },
        }
        Ok(())
    }
}

impl Body for ScannedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            if let Some(b) = this.queue.pop_front() {
                this.queued -= b.len();
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
            if this.ended {
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
            this.on_frame(frame)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(req: Request<()>) -> http::request::Parts {
        req.into_parts().0
    }

    #[test]
    fn host_rules() {
        let p = parts(
            Request::get("/x")
                .header("host", "API.example.com:443")
                .body(())
                .unwrap(),
        );
        assert_eq!(host_of(&p).unwrap(), "api.example.com");
        let p = parts(
            Request::get("http://evil.example/x")
                .header("host", "api.example.com")
                .body(())
                .unwrap(),
        );
        assert!(host_of(&p).is_err());
        let p = parts(
            Request::get("/x")
                .header("host", "a.example")
                .header("host", "b.example")
                .body(())
                .unwrap(),
        );
        assert!(host_of(&p).is_err());
        let p = parts(Request::get("/x").body(()).unwrap());
        assert!(host_of(&p).is_err());
        assert_eq!(strip_port("[2001:db8::1]:443").unwrap(), "2001:db8::1");
        assert_eq!(strip_port("a.example.").unwrap(), "a.example");
    }

    #[test]
    fn framing_rules() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        assert!(check_framing(&h).is_ok());
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        assert!(check_framing(&h).is_err());
        let mut h = HeaderMap::new();
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("gzip, chunked"),
        );
        assert!(check_framing(&h).is_err());
        let mut h = HeaderMap::new();
        h.append(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        h.append(header::CONTENT_LENGTH, HeaderValue::from_static("4"));
        assert!(check_framing(&h).is_err());
    }
}
