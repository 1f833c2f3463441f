//! Relaying an upgraded connection: client frames scanned, server frames scrubbed.

use super::client_frames::ClientFrames;
use super::frame::WsError;
use super::server_frames::ServerFrames;
use standin_policy::secrets::{Patterns, Scrubber};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Relay an upgraded connection: client frames scanned for `patterns`, server frames
/// scrubbed with `scrubber` (copied when there is none).
pub(crate) async fn relay<G, U>(
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
