//! [`ServerFrames`]: the server → sandbox direction, scrubbed of real values.
//!
//! A server that received a real value (in the upgrade request's headers) may send it back in
//! a frame: an echo service, an error message quoting the request. Frames are length-prefixed,
//! so replacing a value by its placeholder means writing the frame again: each frame is read
//! whole (up to [`MAX_FRAME_PAYLOAD`](super::frame::MAX_FRAME_PAYLOAD)), its payload scrubbed, and a
//! new frame with the same FIN bit and opcode and the new length is sent. A value split across
//! the fragments of one message is caught: the bytes that may start a value are carried into
//! the next fragment (fragments may be re-cut: no extension is negotiated, RFC 6455 §5.4) and
//! the message's last fragment flushes them. Control frames (close, ping, pong) are scrubbed
//! on their own; one that would grow over 125 bytes is refused. Masked frames are refused
//! (a server never masks).

use super::frame::{self, WsError};
use standin_policy::secrets::Scrubber;
use zeroize::{Zeroize, Zeroizing};

/// Incremental parser and scrubber for the server → client direction.
#[derive(Debug)]
pub struct ServerFrames {
    /// Bytes of frames not yet complete (they may hold a real value: zeroized when freed).
    buf: Zeroizing<Vec<u8>>,
    scrubber: Scrubber,
    /// A data message is in progress (its first fragment was not final).
    in_message: bool,
}

impl ServerFrames {
    /// A parser scrubbing with `scrubber`.
    pub fn new(scrubber: Scrubber) -> ServerFrames {
        ServerFrames {
            buf: Zeroizing::new(Vec::new()),
            scrubber,
            in_message: false,
        }
    }

    /// Feed bytes from the server; returns the frames to send to the sandbox.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<u8>, WsError> {
        let ServerFrames {
            buf,
            scrubber,
            in_message,
        } = self;
        buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut start = 0;
        let result = loop {
            let rest = &buf[start..];
            let h = match frame::parse(rest) {
                Ok(Some(h)) => h,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            if h.mask.is_some() {
                break Err(WsError::Protocol("server frames must not be masked"));
            }
            let total = h.len + h.payload_len;
            if rest.len() < total {
                break Ok(());
            }
            let payload = &rest[h.len..total];
            if let Err(e) = one_frame(scrubber, in_message, h, payload, &mut out) {
                break Err(e);
            }
            start += total;
        };
        // Keep the incomplete tail; zero what moved or was consumed.
        let len = buf.len();
        buf.copy_within(start.., 0);
        buf[len - start..].zeroize();
        buf.truncate(len - start);
        result.map(|()| out)
    }
}

/// Scrub one whole frame into `out`.
fn one_frame(
    scrubber: &mut Scrubber,
    in_message: &mut bool,
    h: frame::Header,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), WsError> {
    if h.is_control() {
        let clean = scrubber.replace_all(payload);
        let clean = clean.as_deref().unwrap_or(payload);
        if clean.len() > frame::MAX_CONTROL_PAYLOAD {
            return Err(WsError::Protocol(
                "a control frame would be over 125 bytes once scrubbed",
            ));
        }
        frame::write_unmasked(out, true, h.opcode, clean);
        return Ok(());
    }
    match (h.opcode == frame::OP_CONTINUATION, *in_message) {
        (true, false) => return Err(WsError::Protocol("continuation frame without a message")),
        (false, true) => return Err(WsError::Protocol("new message inside a fragmented one")),
        _ => {}
    }
    let mut clean = Vec::with_capacity(payload.len());
    scrubber.push(payload, &mut clean);
    if h.fin {
        scrubber.finish(&mut clean);
    }
    *in_message = !h.fin;
    frame::write_unmasked(out, h.fin, h.opcode, &clean);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_secrets::one_secret;
    use crate::ws::frame::{OP_BINARY, OP_CONTINUATION, OP_TEXT, write_unmasked};
    use std::sync::Arc;

    const VALUE: &[u8] = b"sk-real-value-0123";

    fn scrubber() -> Scrubber {
        Scrubber::new(one_secret("KEY", VALUE), Arc::new(vec![0]))
    }

    fn frames(list: &[(bool, u8, &[u8])]) -> Vec<u8> {
        let mut f = Vec::new();
        for (fin, op, p) in list {
            write_unmasked(&mut f, *fin, *op, p);
        }
        f
    }

    /// Feed `input` in pieces of `step` bytes; the parsed frames of the output.
    fn run(input: &[u8], step: usize) -> Result<Vec<(bool, u8, Vec<u8>)>, WsError> {
        let mut p = ServerFrames::new(scrubber());
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            out.extend(p.push(piece)?);
        }
        let mut parsed = Vec::new();
        let mut rest = &out[..];
        while let Some(h) = frame::parse(rest).unwrap() {
            let end = h.len + h.payload_len;
            parsed.push((h.fin, h.opcode, rest[h.len..end].to_vec()));
            rest = &rest[end..];
        }
        assert!(rest.is_empty());
        Ok(parsed)
    }

    fn message(parsed: &[(bool, u8, Vec<u8>)]) -> Vec<u8> {
        parsed
            .iter()
            .filter(|(_, op, _)| *op < 0x8)
            .flat_map(|(_, _, p)| p.clone())
            .collect()
    }

    #[test]
    fn an_echoed_value_becomes_its_placeholder_on_any_cut() {
        let mut payload = b"Bearer ".to_vec();
        payload.extend_from_slice(VALUE);
        payload.extend_from_slice(b" end");
        let input = frames(&[(true, OP_TEXT, &payload)]);
        for step in 1..input.len() {
            let got = run(&input, step).unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].2, b"Bearer $MSB_KEY end", "step {step}");
        }
    }

    #[test]
    fn a_value_split_across_fragments_is_scrubbed() {
        let (a, b) = VALUE.split_at(7);
        let input = frames(&[
            (false, OP_BINARY, &[b"x=", a].concat()),
            // A control frame may come between fragments.
            (true, 0x9, b"ping"),
            (true, OP_CONTINUATION, &[b, b"!".as_slice()].concat()),
        ]);
        let got = run(&input, 3).unwrap();
        assert_eq!(message(&got), b"x=$MSB_KEY!");
        assert_eq!(got[0].1, OP_BINARY);
        assert!(!got[0].0 && got.last().unwrap().0);
        assert_eq!(got[1], (true, 0x9, b"ping".to_vec()));
        let all: Vec<u8> = got.iter().flat_map(|(_, _, p)| p.clone()).collect();
        assert!(!all.windows(VALUE.len()).any(|w| w == VALUE));
    }

    #[test]
    fn clean_frames_keep_their_content_and_framing() {
        let input = frames(&[
            (true, OP_TEXT, b"hello"),
            (false, OP_TEXT, b"sk-re"),
            (true, OP_CONTINUATION, b"st"),
            (true, 0x8, &[0x03, 0xe8]),
        ]);
        let got = run(&input, 4).unwrap();
        assert_eq!(got[0], (true, OP_TEXT, b"hello".to_vec()));
        // "sk-re" could start the value: carried into the last fragment, then flushed as is.
        assert_eq!(message(&got[1..3]), b"sk-rest");
        assert_eq!(got[3], (true, 0x8, vec![0x03, 0xe8]));
    }

    #[test]
    fn control_frames_are_scrubbed_and_refused_if_they_grow_too_long() {
        let got = run(&frames(&[(true, 0x8, &[b"\x03\xe8", VALUE].concat())]), 100).unwrap();
        assert_eq!(got[0].2, b"\x03\xe8$MSB_KEY");
        // A placeholder longer than its value can push a full control frame over 125 bytes.
        let set = one_secret("A_RATHER_LONG_SECRET_NAME", b"short1");
        let mut p = ServerFrames::new(Scrubber::new(set, Arc::new(vec![0])));
        let ping = [b"short1".as_slice(); 20].concat();
        assert!(matches!(
            p.push(&frames(&[(true, 0x9, &ping)])),
            Err(WsError::Protocol(_))
        ));
    }

    #[test]
    fn refuses_masked_and_misordered_frames() {
        let mut p = ServerFrames::new(scrubber());
        assert!(p.push(&[0x81, 0x81, 1, 2, 3, 4, b'x']).is_err());
        let mut p = ServerFrames::new(scrubber());
        assert!(p.push(&frames(&[(true, OP_CONTINUATION, b"x")])).is_err());
        let mut p = ServerFrames::new(scrubber());
        assert!(
            p.push(&frames(&[(false, OP_TEXT, b"a"), (true, OP_TEXT, b"b")]))
                .is_err()
        );
    }
}
