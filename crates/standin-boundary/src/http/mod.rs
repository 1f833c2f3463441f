//! HTTP/1.1 and HTTP/2 on an inspected connection.
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
//!
//! Files: [`conn`] (the connection and its verdicts), `serve` (the server loop, upgrades),
//! `request` (checks and rewriting), `body` (request bodies), `response` (scrubbing),
//! `version` (HTTP/1.1 ⇄ HTTP/2), [`upstream`] (the destination side).

mod body;
pub mod conn;
mod request;
mod response;
pub mod serve;
pub mod slot;
pub mod upstream;
mod version;

pub use body::{BodyError, ReqBody, ScannedBody};
pub use conn::ConnInfo;
pub use response::{RespBody, ScrubBody};
pub use serve::{serve, serve_with};
pub use slot::UpstreamSlot;
pub use upstream::{Proto, Upstream, UpstreamConn, connect_upstream};

// The submodules share one vocabulary: each does `use super::*`, which brings in the items
// below and, through these globs, each other's crate-visible items.
#[allow(unused_imports)]
use body::*;
#[allow(unused_imports)]
use request::*;
#[allow(unused_imports)]
use response::*;
#[allow(unused_imports)]
use serve::*;
#[allow(unused_imports)]
use upstream::*;
#[allow(unused_imports)]
use version::*;

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
use standin_policy::secrets::scan::{scan_all, scan_name};
use standin_policy::secrets::{
    Destination, Form, Hit, Patterns, Scrubber, SentForm, StreamSubstituter, rewrite,
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
/// How long bytes from a destination that may start a real value are held back waiting for
/// the rest, when the destination has stopped sending. Then they go as they are: an
/// interactive stream (gRPC, a database protocol) whose message happens to end like the start
/// of a value must not stall until the next message. (Scrubbing protects against values
/// echoed by accident; a destination that pauses in the middle of one on purpose could leak
/// it in any encoding anyway.)
pub const SCRUB_STALL: std::time::Duration = std::time::Duration::from_millis(50);
/// Body bytes read and scanned before a request is sent upstream at all.
pub const PREFILL_BYTES: usize = 1024 * 1024;
/// Largest `Content-Length` body that can be rewritten (it is read whole to fix the length).
pub const MAX_REWRITE_BODY: usize = 16 * 1024 * 1024;

/// A request was refused; the connection is reset.
#[derive(Debug, Error)]
#[error("request blocked by the standin boundary")]
pub struct Blocked;
