//! Responses from hosts that may have received a value: scrubbed of it on the way back.

use crate::conn::{Blocked, ConnCtx};
use crate::state::plan::Plan;
use crate::stream::SCRUB_STALL;
use bytes::Bytes;
use http::Response;
use http::header::{self, HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use standin_policy::egress::DomainName;
use standin_policy::secrets::Scrubber;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

/// Replace echoed values by their placeholders in a response from a host that may have
/// received them (see [`standin_policy::secrets::reflect`]).
pub(crate) fn scrub_response(
    info: &ConnCtx,
    plan: &Arc<Plan>,
    resp: Response<Incoming>,
) -> Result<Response<RespBody>, Blocked> {
    let held = info.values_held(plan);
    if held.is_empty() {
        return Ok(resp.map(RespBody::Incoming));
    }
    let scrubber = info.scrubber(held);
    let (mut parts, body) = resp.into_parts();
    for value in parts.headers.values_mut() {
        if let Some(clean) = scrubber.replace_all(value.as_bytes()) {
            *value = HeaderValue::from_bytes(&clean).map_err(|_| {
                info.refuse(
                    plan.host.as_ref().map(DomainName::as_str),
                    "a response header could not be scrubbed",
                )
            })?;
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
            stall: None,
        })),
    ))
}

/// The response body sent to the sandbox.
#[derive(Debug)]
pub(super) enum RespBody {
    /// As received.
    Incoming(Incoming),
    /// With echoed values replaced by placeholders.
    Scrubbed(Box<ScrubBody>),
    /// Written by the boundary itself (a readable refusal).
    Fixed(Option<Bytes>),
}

/// The boundary's own answer to a refused request (readable refusals): `403 Forbidden`,
/// plain text naming the rule, never a value; the connection closes after it (HTTP/1.1).
pub(super) fn forbidden(text: &str, h2: bool) -> Response<RespBody> {
    let mut resp = Response::new(RespBody::Fixed(Some(Bytes::from(text.to_owned()))));
    *resp.status_mut() = http::StatusCode::FORBIDDEN;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert("x-standin-refusal", HeaderValue::from_static("blocked"));
    if !h2 {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// A response body scrubbed of real values.
#[derive(Debug)]
pub(super) struct ScrubBody {
    inner: Incoming,
    scrubber: Scrubber,
    queue: VecDeque<Bytes>,
    ended: bool,
    trailers: Option<HeaderMap>,
    /// Armed while the scrubber holds bytes back and the destination sends nothing.
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
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
            RespBody::Fixed(b) => return Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            RespBody::Scrubbed(s) => s.as_mut(),
        };
        loop {
            if let Some(b) = s.queue.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
            if s.ended {
                return Poll::Ready(s.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            let polled = Pin::new(&mut s.inner).poll_frame(cx);
            let Poll::Ready(polled) = polled else {
                if !s.scrubber.is_holding() {
                    return Poll::Pending;
                }
                let stall = s
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(SCRUB_STALL)));
                ready!(stall.as_mut().poll(cx));
                // The destination paused: let the held bytes go (see `SCRUB_STALL`).
                s.stall = None;
                let mut out = Vec::new();
                s.scrubber.finish(&mut out);
                s.queue.push_back(Bytes::from(out));
                continue;
            };
            s.stall = None;
            match polled {
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
                                if let Some(clean) = s.scrubber.replace_all(v.as_bytes()) {
                                    // Never keep the original: a value that cannot be
                                    // rebuilt is emptied.
                                    *v = HeaderValue::from_bytes(&clean)
                                        .unwrap_or_else(|_| HeaderValue::from_static(""));
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
            RespBody::Fixed(b) => b.is_none(),
            RespBody::Scrubbed(s) => s.ended && s.queue.is_empty() && s.trailers.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Incoming(b) => b.size_hint(),
            RespBody::Fixed(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            RespBody::Scrubbed(_) => SizeHint::default(),
        }
    }
}
