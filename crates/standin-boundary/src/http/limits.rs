//! The named bounds of the HTTP path.

/// Largest request head (request line and headers) accepted.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most headers in one request.
pub(crate) const MAX_HEADERS: usize = 128;
/// Longest a client may take to send a request head, and longest a keep-alive connection
/// waits for the next one (slow-loris bound; the idle timeout applies if shorter).
pub(crate) const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// Most concurrent HTTP/2 streams per client connection.
pub(crate) const MAX_STREAMS: u32 = 256;
/// How long prefilling a body waits for its next piece before letting the request go (a
/// streaming client, gRPC for one, may wait for a response before sending more).
pub(crate) const PREFILL_STALL: std::time::Duration = std::time::Duration::from_millis(100);
/// Body bytes read and scanned before a request is sent upstream at all.
pub(crate) const PREFILL_BYTES: usize = 1024 * 1024;
/// Largest `Content-Length` body that can be rewritten (it is read whole to fix the length).
pub(crate) const MAX_REWRITE_BODY: usize = 16 * 1024 * 1024;
