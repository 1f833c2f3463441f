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
//! Files: `frame` (headers), `client_frames`, `server_frames`.

mod client_frames;
mod frame;
mod server_frames;

pub use client_frames::ClientFrames;
pub use server_frames::ServerFrames;

use standin_policy::secrets::{Hit, Patterns, Scrubber};
use std::sync::Arc;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame payload accepted from the sandbox (a frame is scanned whole).
pub const MAX_FRAME_PAYLOAD: u64 = 16 * 1024 * 1024;

/// Why a WebSocket relay stopped.
#[derive(Debug, Error)]
pub enum WsError {
    /// A placeholder that may not go there.
    #[error("placeholder in a WebSocket frame")]
    Violation(Hit),
    /// A frame that is not valid from its side (masking, size, reserved bits or opcodes,
    /// order), or one that cannot be scrubbed.
    #[error("invalid WebSocket frame: {0}")]
    Protocol(&'static str),
}

/// Relay an upgraded connection: client frames scanned for `patterns`, server frames
/// scrubbed with `scrubber` (copied when there is none).
pub async fn relay<G, U>(
    guest: G,
    upstream: U,
    patterns: Arc<Patterns>,
    scrubber: Option<Scrubber>,
) -> Result<(), WsError>
where
    G: AsyncRead + AsyncWrite + Unpin + Send,
    U: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (mut gr, mut gw) = tokio::io::split(guest);
    let (mut ur, mut uw) = tokio::io::split(upstream);
    let up = async move {
        let mut frames = ClientFrames::new(patterns);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = gr.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                let rest = frames.finish()?;
                let _ = uw.write_all(&rest).await;
                let _ = uw.shutdown().await;
                return Ok(());
            }
            let out = frames.push(&buf[..n])?;
            if !out.is_empty() && uw.write_all(&out).await.is_err() {
                return Ok(());
            }
        }
    };
    let down = async move {
        let Some(scrubber) = scrubber else {
            let _ = tokio::io::copy(&mut ur, &mut gw).await;
            let _ = gw.shutdown().await;
            return Ok(());
        };
        let mut frames = ServerFrames::new(scrubber);
        let mut buf = zeroize::Zeroizing::new(vec![0u8; 16 * 1024]);
        loop {
            let n = ur.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                // An incomplete last frame is dropped: it could not be scrubbed whole.
                let _ = gw.shutdown().await;
                return Ok(());
            }
            let out = frames.push(&buf[..n])?;
            if !out.is_empty() && gw.write_all(&out).await.is_err() {
                return Ok(());
            }
        }
    };
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        tokio::select! {
            r = &mut up, if !up_done => { up_done = true; r?; }
            r = &mut down, if !down_done => { down_done = true; r?; }
        }
    }
    Ok(())
}
