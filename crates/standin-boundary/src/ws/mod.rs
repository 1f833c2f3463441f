//! WebSocket after an HTTP/1.1 upgrade: never an opaque tunnel.
//!
//! The sandbox's frames are parsed (RFC 6455), unmasked and scanned for placeholders before
//! they are forwarded, as they were sent (the bytes are not rewritten): a frame is forwarded
//! once its whole payload is scanned and no placeholder can still be completing at its end, so
//! a placeholder split across fragments or frames is caught before any of it leaves
//! ([`ClientFrames`]). When a secret may have been substituted on the connection, the
//! server's frames are scrubbed of its value on the way back ([`ServerFrames`]); otherwise
//! they are copied. Extensions (permessage-deflate) are never negotiated: the boundary removes
//! the client's offer, and a frame with a reserved bit set is refused in either direction.
//!
//! Files: `frame` (headers, limits, errors), `client_frames`, `server_frames`, `relay`.

mod client_frames;
mod frame;
mod relay;
mod server_frames;

pub use client_frames::ClientFrames;
pub use frame::WsError;
pub(crate) use relay::relay;
pub use server_frames::ServerFrames;
