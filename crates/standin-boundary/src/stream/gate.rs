//! [`ScanGate`]: bytes from the sandbox move on only once the placeholder scanner has
//! cleared them.
//!
//! The scanner withholds judgement on a suffix that could still be the start of a
//! placeholder (raw or encoded); the gate holds exactly those bytes back and releases them
//! when the next piece, or the end of the stream, decides. Pieces that leave nothing held
//! back pass through as they are (no copy). Used for request bodies and for non-HTTP
//! streams.

use bytes::{Bytes, BytesMut};
use standin_policy::secrets::{Hit, Patterns, StreamScanner};
use std::sync::Arc;

/// Scanning state of one byte stream.
#[derive(Debug)]
pub(crate) struct ScanGate {
    scanner: StreamScanner,
    held: BytesMut,
    /// Stream offset of `held[0]`.
    held_start: u64,
}

impl ScanGate {
    /// A gate looking for `patterns`.
    pub(crate) fn new(patterns: Arc<Patterns>) -> ScanGate {
        ScanGate {
            scanner: StreamScanner::new(patterns),
            held: BytesMut::new(),
            held_start: 0,
        }
    }

    /// Scan the next piece; the bytes now cleared to go on (possibly empty), or the
    /// placeholder found.
    pub(crate) fn push(&mut self, data: Bytes) -> Result<Bytes, Hit> {
        let safe = self.scanner.push(&data)?;
        if self.held.is_empty() && safe == self.scanner.consumed() {
            self.held_start = safe;
            return Ok(data);
        }
        self.held.extend_from_slice(&data);
        let n = usize::try_from(safe - self.held_start)
            .unwrap_or(0)
            .min(self.held.len());
        self.held_start += n as u64;
        Ok(self.held.split_to(n).freeze())
    }

    /// The stream ended: the bytes still held, or the placeholder they complete.
    pub(crate) fn finish(&mut self) -> Result<Bytes, Hit> {
        self.scanner.finish()?;
        self.held_start += self.held.len() as u64;
        Ok(self.held.split().freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> ScanGate {
        ScanGate::new(Arc::new(Patterns::new([(0, &b"$MSB_KEY"[..])])))
    }

    #[test]
    fn clean_pieces_pass_as_they_are() {
        let mut g = gate();
        let piece = Bytes::from_static(b"hello world");
        let out = g.push(piece.clone()).unwrap();
        assert_eq!(
            out.as_ptr(),
            piece.as_ptr(),
            "copied instead of passed through"
        );
        assert!(g.finish().unwrap().is_empty());
    }

    #[test]
    fn a_possible_prefix_is_held_until_decided() {
        let mut g = gate();
        assert_eq!(&g.push(Bytes::from_static(b"abc$MS")).unwrap()[..], b"abc");
        assert_eq!(&g.push(Bytes::from_static(b"X")).unwrap()[..], b"$MSX");
        assert_eq!(&g.push(Bytes::from_static(b"$M")).unwrap()[..], b"");
        assert_eq!(&g.finish().unwrap()[..], b"$M");
        let mut g = gate();
        assert_eq!(&g.push(Bytes::from_static(b"a$MSB_")).unwrap()[..], b"a");
        assert!(g.push(Bytes::from_static(b"KEY")).is_err());
    }
}
