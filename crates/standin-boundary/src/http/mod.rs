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
//! A violation or refusal ends the connection with a reset on both sides, or, with readable
//! refusals ([`Refusal::Forbidden`](standin_policy::secrets::Refusal)), a violation found
//! before anything of the request went upstream is answered by the boundary with `403` and
//! a text naming the rule ([`answer_refused`] does the same for a connection the egress
//! policy denied).
//!
//! Files: `serve` (the server loop, upgrades), `request` (checks and rewriting), `body`
//! (request bodies), `response` (scrubbing), `version` (HTTP/1.1 ⇄ HTTP/2), `upstream` (the
//! destination side), `slot` (the upstream connection a client connection holds while it is
//! in use), `pool` (idle upstream connections between client connections), `limits`.
//! The connection's context and verdicts are [`ConnCtx`](crate::conn::ConnCtx).

mod body;
mod limits;
mod pool;
mod request;
mod response;
mod serve;
mod sigv4;
mod slot;
mod upstream;
mod version;

pub(crate) use limits::{MAX_HEAD_BYTES, MAX_HEADERS};
pub(crate) use pool::{Pool, PoolKey, Pooled};
pub(crate) use serve::{answer_refused, serve, serve_with};
pub(crate) use slot::{Reconnect, Redial, UpstreamSlot};
pub(crate) use upstream::{Proto, connect_upstream};

#[doc(hidden)]
pub use slot::RELEASE_AFTER_BUSY;
