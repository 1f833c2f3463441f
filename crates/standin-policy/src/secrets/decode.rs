//! Streaming decoders for the encoded forms a placeholder can hide in: percent-encoding
//! (`%24MSB_KEY`) and JSON string escapes (`\u0024MSB_KEY`).
//!
//! Each decoder keeps its state across chunks, so an escape split between two reads decodes
//! exactly as if it had arrived whole. Every decoded byte carries the stream offset of the
//! first raw byte that produced it, so the scanner can tell which raw bytes are safe to
//! forward. Malformed escapes decode to themselves, byte by byte.

/// The forms in which a placeholder is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Form {
    /// The bytes themselves.
    Raw,
    /// Percent-decoded (`%XX`, either case).
    Percent,
    /// JSON-unescaped (`\uXXXX`, `\/`, `\\`, …).
    Json,
    /// Base64-decoded (Basic credentials, DNS names).
    Base64,
    /// Hex-encoded (DNS names).
    Hex,
    /// Base32-encoded (DNS names).
    Base32,
}

impl Form {
    /// Name used in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Form::Raw => "raw",
            Form::Percent => "percent",
            Form::Json => "json",
            Form::Base64 => "base64",
            Form::Hex => "hex",
            Form::Base32 => "base32",
        }
    }
}

/// A decoded byte and the stream offset of the raw byte its escape started at.
pub type Decoded = (u8, u64);

/// Streaming percent-decoder.
#[derive(Debug, Default, Clone)]
pub struct PercentDecoder {
    pending: Vec<u8>,
    start: u64,
}

/// Streaming JSON string-escape decoder.
#[derive(Debug, Default, Clone)]
pub struct JsonDecoder {
    pending: Vec<u8>,
    start: u64,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn flush_literal(pending: &mut Vec<u8>, start: u64, out: &mut Vec<Decoded>) {
    for (i, b) in pending.drain(..).enumerate() {
        out.push((b, start + i as u64));
    }
}

impl PercentDecoder {
    /// Decode `raw`, whose first byte is at stream offset `base`.
    pub fn push(&mut self, raw: &[u8], base: u64, out: &mut Vec<Decoded>) {
        for (i, &b) in raw.iter().enumerate() {
            let off = base + i as u64;
            if self.pending.is_empty() {
                if b == b'%' {
                    self.pending.push(b);
                    self.start = off;
                } else {
                    out.push((b, off));
                }
                continue;
            }
            if hex(b).is_some() {
                self.pending.push(b);
                if self.pending.len() == 3 {
                    let v = (hex(self.pending[1]).unwrap_or(0) << 4) | hex(b).unwrap_or(0);
                    out.push((v, self.start));
                    self.pending.clear();
                }
            } else {
                flush_literal(&mut self.pending, self.start, out);
                self.push(&[b], off, out);
            }
        }
    }

    /// Stream offset of an escape not yet complete, if any.
    pub fn pending_start(&self) -> Option<u64> {
        (!self.pending.is_empty()).then_some(self.start)
    }

    /// End of stream: an incomplete escape decodes to itself.
    pub fn finish(&mut self, out: &mut Vec<Decoded>) {
        flush_literal(&mut self.pending, self.start, out);
    }
}

impl JsonDecoder {
    /// Decode `raw`, whose first byte is at stream offset `base`.
    pub fn push(&mut self, raw: &[u8], base: u64, out: &mut Vec<Decoded>) {
        for (i, &b) in raw.iter().enumerate() {
            let off = base + i as u64;
            if self.pending.is_empty() {
                if b == b'\\' {
                    self.pending.push(b);
                    self.start = off;
                } else {
                    out.push((b, off));
                }
                continue;
            }
            if self.pending.len() == 1 {
                let simple = match b {
                    b'"' => Some(b'"'),
                    b'\\' => Some(b'\\'),
                    b'/' => Some(b'/'),
                    b'b' => Some(0x08),
                    b'f' => Some(0x0c),
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    _ => None,
                };
                if let Some(v) = simple {
                    out.push((v, self.start));
                    self.pending.clear();
                } else if b == b'u' {
                    self.pending.push(b);
                } else {
                    flush_literal(&mut self.pending, self.start, out);
                    self.push(&[b], off, out);
                }
                continue;
            }
            // In `\uXXXX`.
            if hex(b).is_none() {
                flush_literal(&mut self.pending, self.start, out);
                self.push(&[b], off, out);
                continue;
            }
            self.pending.push(b);
            if self.pending.len() == 6 {
                let cp = self.pending[2..]
                    .iter()
                    .fold(0u32, |acc, &h| (acc << 4) | u32::from(hex(h).unwrap_or(0)));
                match char::from_u32(cp) {
                    Some(c) => {
                        let mut buf = [0u8; 4];
                        for &u in c.encode_utf8(&mut buf).as_bytes() {
                            out.push((u, self.start));
                        }
                        self.pending.clear();
                    }
                    // A lone surrogate: no placeholder byte can come from it.
                    None => flush_literal(&mut self.pending, self.start, out),
                }
            }
        }
    }

    /// Stream offset of an escape not yet complete, if any.
    pub fn pending_start(&self) -> Option<u64> {
        (!self.pending.is_empty()).then_some(self.start)
    }

    /// End of stream: an incomplete escape decodes to itself.
    pub fn finish(&mut self, out: &mut Vec<Decoded>) {
        flush_literal(&mut self.pending, self.start, out);
    }
}

/// Percent-decode a whole slice (one-shot).
pub fn percent_decode(raw: &[u8]) -> Vec<Decoded> {
    let mut d = PercentDecoder::default();
    let mut out = Vec::with_capacity(raw.len());
    d.push(raw, 0, &mut out);
    d.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(v: &[Decoded]) -> Vec<u8> {
        v.iter().map(|d| d.0).collect()
    }

    fn json(raw: &[u8]) -> Vec<u8> {
        let mut d = JsonDecoder::default();
        let mut out = Vec::new();
        d.push(raw, 0, &mut out);
        d.finish(&mut out);
        bytes(&out)
    }

    #[test]
    fn percent() {
        assert_eq!(bytes(&percent_decode(b"%24MSB_K%2f")), b"$MSB_K/");
        assert_eq!(bytes(&percent_decode(b"%%24%G1%2")), b"%$%G1%2");
        assert_eq!(percent_decode(b"a%24b")[1], (b'$', 1));
    }

    #[test]
    fn json_escapes() {
        assert_eq!(json(br#"\u0024MSB\u005fK\/\\"#), b"$MSB_K/\\");
        assert_eq!(json(br#"\\u0024"#), b"\\u0024");
        assert_eq!(json(br#"\x\u00zz\"#), b"\\x\\u00zz\\");
        assert_eq!(json(r#"\u00e9"#.as_bytes()), "é".as_bytes());
    }

    proptest! {
        #[test]
        fn chunking_does_not_change_decoding(data in proptest::collection::vec(prop_oneof![Just(b'%'), Just(b'\\'), Just(b'u'), Just(b'2'), Just(b'4'), Just(b'0'), any::<u8>()], 0..64), cuts in proptest::collection::vec(0usize..64, 0..8)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort();
            let whole_p = percent_decode(&data);
            let mut whole_j = Vec::new();
            let mut j = JsonDecoder::default();
            j.push(&data, 0, &mut whole_j);
            j.finish(&mut whole_j);
            let (mut p, mut j) = (PercentDecoder::default(), JsonDecoder::default());
            let (mut op, mut oj) = (Vec::new(), Vec::new());
            let mut prev = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                p.push(&data[prev..c], prev as u64, &mut op);
                j.push(&data[prev..c], prev as u64, &mut oj);
                prev = c;
            }
            p.finish(&mut op);
            j.finish(&mut oj);
            prop_assert_eq!(whole_p, op);
            prop_assert_eq!(whole_j, oj);
        }
    }
}
