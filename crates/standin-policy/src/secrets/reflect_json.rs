//! The JSON-escape stage of the [`Scrubber`](super::reflect::Scrubber): values a server
//! echoes inside JSON strings with escapes it chose on its own (`\/` for `/`, or any
//! character as `\uXXXX`, mixed with literal characters, hex in either case).
//!
//! The forms cannot be listed (every character of a value may or may not be escaped), so this
//! stage reads the bytes as JSON would: it decodes escapes with the same streaming
//! [`JsonDecoder`] the request scanner uses, finds values in the decoded bytes, and replaces
//! the raw bytes they came from by the placeholder. A value written without any escape is
//! left to the literal stage after this one.
//!
//! Cost: bytes before the first backslash of a chunk (minus one value's length) are passed
//! on untouched; only the rest is decoded, into a buffer kept between chunks.

use super::decode::{Decoded, JsonDecoder};
use memchr::memmem;
use zeroize::Zeroizing;

/// A value and what replaces it.
pub(super) type Pair<'a> = (&'a [u8], &'a [u8]);

/// Streaming state: raw bytes held back because they may begin an escaped value.
#[derive(Debug, Default)]
pub(super) struct JsonStage {
    carry: Zeroizing<Vec<u8>>,
    decoded: Vec<Decoded>,
    plain: Zeroizing<Vec<u8>>,
    /// How many values were replaced.
    pub(super) replaced: usize,
}

impl JsonStage {
    /// Feed a chunk; append what is final to `out`. `pairs` lists the values.
    pub(super) fn push(&mut self, pairs: &[Pair<'_>], chunk: &[u8], out: &mut Vec<u8>) {
        let mut buf = Zeroizing::new(std::mem::take(&mut *self.carry));
        buf.extend_from_slice(chunk);
        let end = self.process(pairs, &buf, false, out);
        self.carry.extend_from_slice(&buf[end..]);
    }

    /// Whether bytes are held back.
    pub(super) fn is_holding(&self) -> bool {
        !self.carry.is_empty()
    }

    /// End of stream: everything held is final (an incomplete escape is literal).
    pub(super) fn finish(&mut self, pairs: &[Pair<'_>], out: &mut Vec<u8>) {
        let buf = Zeroizing::new(std::mem::take(&mut *self.carry));
        let end = self.process(pairs, &buf, true, out);
        debug_assert_eq!(end, buf.len());
    }

    /// Write `buf` to `out` with escaped values replaced, up to the returned offset (the
    /// rest must be held back, unless `last`).
    fn process(&mut self, pairs: &[Pair<'_>], buf: &[u8], last: bool, out: &mut Vec<u8>) -> usize {
        let longest = pairs.iter().map(|(v, _)| v.len()).max().unwrap_or(0);
        let Some(first_escape) = memchr::memchr(b'\\', buf) else {
            // No escape: only a value's beginning at the very end may need one later.
            let hold = if last {
                buf.len()
            } else {
                partial_suffix(pairs, buf).unwrap_or(buf.len())
            };
            out.extend_from_slice(&buf[..hold]);
            return hold;
        };
        // Literal bytes before the first escape: at most `longest - 1` of them can belong to
        // an escaped value; everything before that passes as it is.
        let start = first_escape.saturating_sub(longest.saturating_sub(1));
        out.extend_from_slice(&buf[..start]);
        let raw = &buf[start..];

        let mut decoder = JsonDecoder::default();
        self.decoded.clear();
        decoder.push(raw, 0, &mut self.decoded);
        let pending = decoder.pending_start().map(|p| p as usize);
        if last {
            decoder.finish(&mut self.decoded);
        }
        let pending = if last { None } else { pending };
        self.plain.clear();
        self.plain.extend(self.decoded.iter().map(|d| d.0));

        // Raw offset just after the escape (or literal byte) that decoded byte `i` came from.
        let raw_end_of = |i: usize| -> usize {
            let at = self.decoded[i].1;
            self.decoded[i + 1..]
                .iter()
                .find(|d| d.1 > at)
                .map_or(pending.unwrap_or(raw.len()), |d| d.1 as usize)
        };
        // Decoded bytes from `hold_dec` on may begin a value: held back with their raw bytes.
        let hold_dec = if last {
            self.plain.len()
        } else {
            partial_suffix(pairs, &self.plain).unwrap_or(self.plain.len())
        };
        let hold_raw = self
            .decoded
            .get(hold_dec)
            .map_or(pending.unwrap_or(raw.len()), |d| d.1 as usize)
            .min(pending.unwrap_or(raw.len()));

        let mut pos = 0usize; // raw
        let mut from = 0usize; // decoded
        while let Some((ds, de, replacement)) = earliest(pairs, &self.plain, from) {
            if ds >= hold_dec {
                break;
            }
            let raw_s = self.decoded[ds].1 as usize;
            let raw_e = raw_end_of(de - 1);
            if raw_s >= pos {
                out.extend_from_slice(&raw[pos..raw_s]);
                out.extend_from_slice(replacement);
                self.replaced += 1;
                pos = raw_e;
            }
            from = de;
        }
        let emit_to = hold_raw.max(pos);
        out.extend_from_slice(&raw[pos..emit_to]);
        start + emit_to
    }
}

/// The earliest (then longest) value in `hay` at or after `from`.
fn earliest<'p>(pairs: &[Pair<'p>], hay: &[u8], from: usize) -> Option<(usize, usize, &'p [u8])> {
    let mut best: Option<(usize, usize, &[u8])> = None;
    for &(value, replacement) in pairs {
        if value.is_empty() {
            continue;
        }
        if let Some(i) = memmem::find(&hay[from..], value) {
            let s = from + i;
            if best.is_none_or(|(bs, be, _)| s < bs || (s == bs && s + value.len() > be)) {
                best = Some((s, s + value.len(), replacement));
            }
        }
    }
    best
}

/// Start of the longest suffix of `hay` that is a proper prefix of a value.
fn partial_suffix(pairs: &[Pair<'_>], hay: &[u8]) -> Option<usize> {
    let longest = pairs.iter().map(|(v, _)| v.len()).max()?;
    let from = hay.len().saturating_sub(longest.saturating_sub(1));
    (from..hay.len()).find(|&i| {
        pairs
            .iter()
            .any(|(v, _)| v.len() > hay.len() - i && v.starts_with(&hay[i..]))
    })
}
