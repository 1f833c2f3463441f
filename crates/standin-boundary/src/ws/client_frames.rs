//! [`ClientFrames`]: the sandbox → server direction, scanned and forwarded as sent.

use super::frame::{self, WsError};
use standin_policy::secrets::{Patterns, StreamScanner};
use std::collections::VecDeque;
use std::sync::Arc;

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
        while let Some(h) = frame::parse(&self.buf)? {
            let Some(mask) = h.mask else {
                return Err(WsError::Protocol("client frames must be masked"));
            };
            let total = h.len + h.payload_len;
            if self.buf.len() < total {
                break;
            }
            let frame: Vec<u8> = self.buf.drain(..total).collect();
            let mut payload = frame[h.len..].to_vec();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::frame::MAX_FRAME_PAYLOAD;

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
