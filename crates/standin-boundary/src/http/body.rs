//! Request bodies on their way upstream: prefilled and scanned, substituted as they stream.

use crate::conn::{ConnCtx, Denied, RealValues};
use crate::events::Location;
use crate::state::plan::Plan;
use crate::stream::ScanGate;
use bytes::Bytes;
use http::header::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use standin_policy::secrets::scan::{scan_all, scan_name};
use standin_policy::secrets::{Hit, Patterns, StreamSubstituter};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use thiserror::Error;

/// The body sent upstream.
#[derive(Debug)]
pub(crate) enum ReqBody {
    /// Forwarded as received (nothing to scan or rewrite).
    Incoming(Incoming),
    /// Rewritten whole.
    Full(Option<Bytes>),
    /// Scanned (and possibly rewritten) as it streams.
    Scanned(Box<ScannedBody>),
}

/// Why a request body stopped.
#[derive(Debug, Error)]
pub(crate) enum BodyError {
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
pub(crate) struct BodyFilter {
    gate: ScanGate,
    subst: Option<StreamSubstituter>,
}

impl BodyFilter {
    pub(super) fn new(scan: Arc<Patterns>, sub: Option<Arc<Patterns>>) -> BodyFilter {
        BodyFilter {
            gate: ScanGate::new(scan),
            subst: sub.map(StreamSubstituter::new),
        }
    }

    fn push<'v>(
        &mut self,
        data: Bytes,
        real: &dyn Fn(usize) -> &'v [u8],
        out: &mut VecDeque<Bytes>,
    ) -> Result<(), Hit> {
        // Nothing held back and nothing to rewrite: the frame goes on as it is.
        let ready = self.gate.push(data)?;
        self.emit(ready, real, out);
        Ok(())
    }

    fn finish<'v>(
        &mut self,
        real: &dyn Fn(usize) -> &'v [u8],
        out: &mut VecDeque<Bytes>,
    ) -> Result<(), Hit> {
        let rest = self.gate.finish()?;
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
pub(crate) struct ContextRef {
    pub(super) plan: Arc<Plan>,
    pub(super) host: String,
    /// The values this request substitutes (a rotation meanwhile does not change them).
    pub(super) values: RealValues,
}

/// A request body scanned (and possibly rewritten) on its way upstream.
#[derive(Debug)]
pub(crate) struct ScannedBody {
    pub(super) inner: Incoming,
    pub(super) filter: BodyFilter,
    pub(super) queue: VecDeque<Bytes>,
    pub(super) queued: usize,
    pub(super) trailers: Option<HeaderMap>,
    pub(super) ended: bool,
    pub(super) ctx: ContextRef,
    pub(super) conn: Arc<ConnCtx>,
    /// While prefilling (nothing went upstream yet): a violation is reported, not reset,
    /// and kept here for the caller to answer.
    pub(super) denied: Option<Denied>,
    /// Secrets whose substitution in this body was recorded.
    pub(super) reported: Vec<usize>,
}

impl ScannedBody {
    /// Read and scan until the body ends or `limit` bytes are queued.
    pub(super) async fn prefill(
        &mut self,
        limit: usize,
        stall: Option<std::time::Duration>,
    ) -> Result<(), Denied> {
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
            if self.on_frame(frame, true).is_err() {
                return Err(self.denied.take().unwrap_or(Denied {
                    text: "standin: request blocked: the request body ended early\n".into(),
                    answer: false,
                }));
            }
        }
        Ok(())
    }

    fn on_frame(
        &mut self,
        frame: Option<Result<Frame<Bytes>, hyper::Error>>,
        prefilling: bool,
    ) -> Result<(), BodyError> {
        let info = self.conn.clone();
        let values = self.ctx.values.clone();
        // Secrets substituted in this frame (recorded once per body).
        let used = std::cell::RefCell::new(Vec::<usize>::new());
        let real = |i: usize| {
            used.borrow_mut().push(i);
            values.get(i)
        };
        let plan = self.ctx.plan.clone();
        // Prefilling, nothing went upstream yet: report and keep the refusal for the caller
        // to answer. Streaming: report and reset.
        let violation = |hit, host, location| {
            if prefilling {
                Some(info.deny_violation(&plan, hit, host, location))
            } else {
                let _ = info.violation(&plan, hit, host, location);
                None
            }
        };
        let host_text = self.ctx.host.clone();
        let host = Some(host_text.as_str());
        let before = self.queue.len();
        let scanned = match frame {
            None => {
                self.ended = true;
                self.filter
                    .finish(&real, &mut self.queue)
                    .map_err(|h| (h, Location::Body))
            }
            Some(Err(e)) => return Err(BodyError::Client(e)),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => self
                    .filter
                    .push(data, &real, &mut self.queue)
                    .map_err(|h| (h, Location::Body)),
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => {
                        let found = trailers.iter().find_map(|(name, value)| {
                            scan_name(&plan.violations, name.as_str().as_bytes())
                                .and_then(|()| scan_all(&plan.violations, value.as_bytes()))
                                .err()
                        });
                        self.trailers = Some(trailers);
                        found.map_or(Ok(()), |h| Err((h, Location::Trailer)))
                    }
                    Err(_) => Ok(()),
                },
            },
        };
        if let Err((hit, location)) = scanned {
            self.denied = violation(hit, host, location);
            return Err(BodyError::Blocked);
        }
        for secret in used.into_inner() {
            if !self.reported.contains(&secret) {
                self.reported.push(secret);
                info.report_used(&[(secret, Location::Body)], false, host);
            }
        }
        self.queued += self
            .queue
            .iter()
            .skip(before)
            .map(Bytes::len)
            .sum::<usize>();
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
            this.on_frame(frame, false)?;
        }
    }
}
