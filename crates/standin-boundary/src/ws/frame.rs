//! RFC 6455 frame headers: parsing what either side sends, and writing the boundary's own.

use standin_policy::secrets::Hit;
use thiserror::Error;

/// Largest frame payload accepted from the sandbox (a frame is scanned whole).
pub(crate) const MAX_FRAME_PAYLOAD: u64 = 16 * 1024 * 1024;

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

/// Continuation of a fragmented message.
pub(super) const OP_CONTINUATION: u8 = 0x0;
/// A text message (or its first fragment).
pub(super) const OP_TEXT: u8 = 0x1;
/// A binary message (or its first fragment).
pub(super) const OP_BINARY: u8 = 0x2;
/// Largest payload of a control frame (close, ping, pong).
pub(super) const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    /// Last frame of its message.
    pub fin: bool,
    /// The opcode (low four bits of the first byte).
    pub opcode: u8,
    /// The masking key, if the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// Bytes of header.
    pub len: usize,
    /// Bytes of payload.
    pub payload_len: usize,
}

impl Header {
    /// Close, ping or pong.
    pub(super) fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }
}

/// The header of the frame at the start of `buf`, once it is complete. Refuses reserved bits
/// (no extension is ever negotiated through the boundary, so a compressed frame, which could
/// not be scanned, is never legitimate), reserved opcodes, control frames that are
/// fragmented or longer than [`MAX_CONTROL_PAYLOAD`], and payloads over
/// [`MAX_FRAME_PAYLOAD`].
pub(super) fn parse(buf: &[u8]) -> Result<Option<Header>, WsError> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(WsError::Protocol(
            "reserved bits set (an extension was not negotiated)",
        ));
    }
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0f;
    if !matches!(opcode, OP_CONTINUATION | OP_TEXT | OP_BINARY | 0x8..=0xa) {
        return Err(WsError::Protocol("reserved opcode"));
    }
    let (payload_len, mut len) = match b1 & 0x7f {
        126 => {
            let Some(b) = buf.get(2..4) else {
                return Ok(None);
            };
            (u64::from(u16::from_be_bytes([b[0], b[1]])), 4)
        }
        127 => {
            let Some(b) = buf.get(2..10) else {
                return Ok(None);
            };
            let mut n = [0u8; 8];
            n.copy_from_slice(b);
            (u64::from_be_bytes(n), 10)
        }
        n => (u64::from(n), 2),
    };
    if payload_len > MAX_FRAME_PAYLOAD {
        return Err(WsError::Protocol("frame payload over 16 MiB"));
    }
    let header = |mask, len| Header {
        fin,
        opcode,
        mask,
        len,
        // At most MAX_FRAME_PAYLOAD: fits.
        payload_len: payload_len as usize,
    };
    if opcode & 0x8 != 0 && (!fin || payload_len > MAX_CONTROL_PAYLOAD as u64) {
        return Err(WsError::Protocol(
            "control frame fragmented or over 125 bytes",
        ));
    }
    if b1 & 0x80 == 0 {
        return Ok(Some(header(None, len)));
    }
    let Some(m) = buf.get(len..len + 4) else {
        return Ok(None);
    };
    let mask = [m[0], m[1], m[2], m[3]];
    len += 4;
    Ok(Some(header(Some(mask), len)))
}

/// Append an unmasked frame (what a server sends) with `payload` to `out`.
pub(super) fn write_unmasked(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8]) {
    out.push(if fin { 0x80 } else { 0 } | (opcode & 0x0f));
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_frames_parse_back() {
        for n in [0usize, 125, 126, 65535, 65536] {
            let payload = vec![7u8; n];
            let mut f = Vec::new();
            write_unmasked(&mut f, n % 2 == 0, OP_BINARY, &payload);
            let h = parse(&f).unwrap().unwrap();
            assert_eq!((h.fin, h.opcode, h.mask), (n % 2 == 0, OP_BINARY, None));
            assert_eq!(h.payload_len, n);
            assert_eq!(h.len + n, f.len());
        }
    }

    #[test]
    fn refuses_what_no_peer_may_send() {
        assert!(parse(&[0xc1, 0x00]).is_err(), "RSV1 (compression)");
        assert!(parse(&[0x83, 0x00]).is_err(), "reserved opcode");
        assert!(parse(&[0x09, 0x00]).is_err(), "fragmented ping");
        assert!(parse(&[0x89, 126, 0, 126]).is_err(), "126-byte ping");
        assert!(parse(&[0x81]).unwrap().is_none(), "incomplete");
        assert!(
            parse(&[0x81, 0x85, 1, 2]).unwrap().is_none(),
            "mask incomplete"
        );
    }
}
