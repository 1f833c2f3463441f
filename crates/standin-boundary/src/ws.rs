//! WebSocket after an HTTP/1.1 upgrade: never an opaque tunnel.
//!
//! The sandbox's frames are parsed (RFC 6455), unmasked and scanned for placeholders before
//! they are forwarded, as they were sent (the bytes are not rewritten). A frame is forwarded
//! once its whole payload is scanned and no placeholder can still be completing at its end, so
//! a placeholder split across fragments or frames is caught before any of it leaves. The
//! server's frames flow back unchanged. Extensions (permessage-deflate) are never negotiated:
//! the boundary removes the client's offer, and a frame with a reserved bit set is refused.

use standin_policy::secrets::{Hit, Patterns, StreamScanner};
use std::collections::VecDeque;
use std::sync::Arc;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame payload accepted from the sandbox (a frame is scanned whole).
pub const MAX_FRAME_PAYLOAD: u64 = 16 * 1024 * 1024;

/// Why the client → server direction stopped.
#[derive(Debug, Error)]
pub enum WsError {
    /// A placeholder that may not go there.
    #[error("placeholder in a WebSocket frame")]
    Violation(Hit),
    /// A frame that is not valid from a client (unmasked, oversized, reserved length bits).
    #[error("invalid WebSocket frame: {0}")]
    Protocol(&'static str),
}

/// Incremental parser and scanner for the client → server direction.
#[derive(Debug)]
pub struct ClientFrames {
    buf: Vec<u8>,
    scanner: StreamScanner,
    /// Parsed frames not yet forwarded: raw bytes and the scanner offset their payload ends at.
    pending: VecDeque<(Vec<u8>, u64)>,
    /// Scanner offset up to which payload bytes are known clean.
    safe: u64,
}

impl ClientFrames {
    /// A parser scanning for `patterns`.
    pub fn new(patterns: Arc<Patterns>) -> ClientFrames {
        ClientFrames {
            buf: Vec::new(),
            scanner: StreamScanner::new(patterns),
            pending: VecDeque::new(),
            safe: 0,
        }
    }

    /// Feed bytes from the client; returns the raw bytes now safe to forward.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<u8>, WsError> {
        self.buf.extend_from_slice(data);
        while let Some((header_len, payload_len, mask)) = parse_header(&self.buf)? {
            let total = header_len + payload_len;
            if self.buf.len() < total {
                break;
            }
            let frame: Vec<u8> = self.buf.drain(..total).collect();
            let mut payload = frame[header_len..].to_vec();
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
            self.safe = self.scanner.push(&payload).map_err(WsError::Violation)?;
            self.pending.push_back((frame, self.scanner.consumed()));
        }
        let safe = self.safe;
        let mut out = Vec::new();
        while let Some((_, end)) = self.pending.front() {
            if *end > safe {
                break;
            }
            if let Some((f, _)) = self.pending.pop_front() {
                out.extend_from_slice(&f);
            }
        }
        Ok(out)
    }

    /// End of the client's stream: what is still held, if it is clean.
    pub fn finish(&mut self) -> Result<Vec<u8>, WsError> {
        self.scanner.finish().map_err(WsError::Violation)?;
        let mut out: Vec<u8> = self.pending.drain(..).flat_map(|(f, _)| f).collect();
        out.append(&mut self.buf);
        Ok(out)
    }
}

/// `(header length, payload length, mask)` of the frame at the start of `buf`, once its header
/// is complete.
fn parse_header(buf: &[u8]) -> Result<Option<(usize, usize, [u8; 4])>, WsError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[1] & 0x80 == 0 {
        return Err(WsError::Protocol("client frames must be masked"));
    }
    if buf[0] & 0x70 != 0 {
        // No extension was negotiated (the boundary removes the offer), so no RSV bit may be
        // set; a compressed frame could not be scanned.
        return Err(WsError::Protocol(
            "reserved bits set (an extension was not negotiated)",
        ));
    }
    let (len, mut pos) = match buf[1] & 0x7f {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        n => (u64::from(n), 2),
    };
    if len > MAX_FRAME_PAYLOAD {
        return Err(WsError::Protocol("frame payload over 16 MiB"));
    }
    if buf.len() < pos + 4 {
        return Ok(None);
    }
    let mask = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
    pos += 4;
    Ok(Some((pos, len as usize, mask)))
}

/// Relay an upgraded connection: client frames scanned, server bytes copied.
pub async fn relay<G, U>(guest: G, upstream: U, patterns: Arc<Patterns>) -> Result<(), WsError>
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
        let _ = tokio::io::copy(&mut ur, &mut gw).await;
        let _ = gw.shutdown().await;
    };
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        tokio::select! {
            r = &mut up, if !up_done => { up_done = true; r?; }
            _ = &mut down, if !down_done => down_done = true,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        if payload.len() < 126 {
            f.push(0x80 | payload.len() as u8);
        } else {
            f.push(0x80 | 126);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    fn pats() -> Arc<Patterns> {
        Arc::new(Patterns::new([(0usize, b"$MSB_KEY".as_slice())]))
    }

    #[test]
    fn clean_frames_pass_unchanged() {
        let mut p = ClientFrames::new(pats());
        let f = frame(1, true, &[b'x'; 300]);
        let mut out = p.push(&f[..5]).unwrap();
        out.extend(p.push(&f[5..]).unwrap());
        out.extend(p.finish().unwrap());
        assert_eq!(out, f);
    }

    #[test]
    fn placeholder_split_across_fragments_is_caught_before_any_of_it_leaves() {
        let mut p = ClientFrames::new(pats());
        let a = frame(1, false, b"hello $MSB_");
        let out = p.push(&a).unwrap();
        assert!(out.is_empty(), "the fragment ending in a prefix is held");
        let b = frame(0, true, b"KEY!");
        assert!(matches!(p.push(&b), Err(WsError::Violation(_))));
    }

    #[test]
    fn rejects_unmasked_and_huge_frames() {
        let mut p = ClientFrames::new(pats());
        assert!(matches!(
            p.push(&[0x81, 0x01, b'x']),
            Err(WsError::Protocol(_))
        ));
        let mut p = ClientFrames::new(pats());
        let mut f = vec![0x82, 0x80 | 127];
        f.extend_from_slice(&(MAX_FRAME_PAYLOAD + 1).to_be_bytes());
        assert!(matches!(p.push(&f), Err(WsError::Protocol(_))));
    }
}
