//! Finding placeholders in a byte stream that arrives in pieces.
//!
//! [`Patterns`] is a set of placeholders compiled once per sandbox (or per connection role).
//! [`StreamScanner`] looks for them in their raw, percent-encoded and JSON-escaped forms and
//! says how far the stream is *safe to forward*: everything before the earliest byte that
//! could still turn out to be part of a placeholder. Withholding only that suffix (never a
//! fixed window) keeps interactive protocols flowing while guaranteeing that no prefix of a
//! placeholder leaves before the scanner has decided. [`StreamSubstituter`] replaces raw
//! placeholders by their values with the same withholding rule; its output for any chunking
//! equals the one-shot [`replace_all`].

use super::decode::{Decoded, Form, JsonDecoder, PercentDecoder};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::sync::Arc;

/// A compiled set of placeholders; pattern `i` belongs to `ids[i]` (a secret index).
#[derive(Debug, Clone)]
pub struct Patterns {
    ac: Option<AhoCorasick>,
    /// The same, ignoring ASCII case (for header names, which HTTP treats that way).
    ac_nocase: Option<AhoCorasick>,
    pats: Vec<Vec<u8>>,
    ids: Vec<usize>,
    first: [bool; 256],
}

/// A placeholder found: which secret, in which form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Index of the secret (as given to [`Patterns::new`]).
    pub secret: usize,
    /// The form it was found in.
    pub form: Form,
}

impl Patterns {
    /// Compile `(secret index, placeholder)` pairs. Empty placeholders are ignored.
    pub fn new<'a>(items: impl IntoIterator<Item = (usize, &'a [u8])>) -> Patterns {
        let mut pats = Vec::new();
        let mut ids = Vec::new();
        let mut first = [false; 256];
        for (id, p) in items {
            if p.is_empty() {
                continue;
            }
            first[usize::from(p[0])] = true;
            pats.push(p.to_vec());
            ids.push(id);
        }
        let build = |nocase: bool| {
            if pats.is_empty() {
                None
            } else {
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .ascii_case_insensitive(nocase)
                    .build(&pats)
                    .ok()
            }
        };
        Patterns {
            ac: build(false),
            ac_nocase: build(true),
            pats,
            ids,
            first,
        }
    }

    /// Whether there is nothing to look for.
    pub fn is_empty(&self) -> bool {
        self.pats.is_empty()
    }

    /// Secret indices, one per pattern.
    pub fn ids(&self) -> &[usize] {
        &self.ids
    }

    /// Non-overlapping raw matches (leftmost-longest): `(secret, start, end)`.
    pub fn matches<'h>(
        &'h self,
        hay: &'h [u8],
    ) -> impl Iterator<Item = (usize, usize, usize)> + 'h {
        self.ac
            .iter()
            .flat_map(move |ac| ac.find_iter(hay))
            .map(|m| (self.ids[m.pattern().as_usize()], m.start(), m.end()))
    }

    fn find(&self, hay: &[u8]) -> Option<(usize, usize, usize)> {
        let m = self.ac.as_ref()?.find(hay)?;
        Some((m.pattern().as_usize(), m.start(), m.end()))
    }

    /// Start of the longest suffix of `hay` that is a proper prefix of some pattern, if any.
    fn partial_start(&self, hay: &[u8]) -> Option<usize> {
        let longest = self.pats.iter().map(Vec::len).max().unwrap_or(0);
        let from = hay.len().saturating_sub(longest.saturating_sub(1));
        (from..hay.len()).find(|&i| {
            self.first[usize::from(hay[i])]
                && self
                    .pats
                    .iter()
                    .any(|p| p.len() > hay.len() - i && p.starts_with(&hay[i..]))
        })
    }
}

/// One decoded form's state in a [`StreamScanner`].
#[derive(Debug, Default, Clone)]
struct DecodedForm {
    /// Decoded bytes still possibly the start of a match, with their raw offsets.
    tail: Vec<Decoded>,
    scratch: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Decoder {
    Percent(PercentDecoder),
    Json(JsonDecoder),
}

impl Decoder {
    fn escape(&self) -> u8 {
        match self {
            Decoder::Percent(_) => b'%',
            Decoder::Json(_) => b'\\',
        }
    }
    fn form(&self) -> Form {
        match self {
            Decoder::Percent(_) => Form::Percent,
            Decoder::Json(_) => Form::Json,
        }
    }
    fn push(&mut self, raw: &[u8], base: u64, out: &mut Vec<Decoded>) {
        match self {
            Decoder::Percent(d) => d.push(raw, base, out),
            Decoder::Json(d) => d.push(raw, base, out),
        }
    }
    fn finish(&mut self, out: &mut Vec<Decoded>) {
        match self {
            Decoder::Percent(d) => d.finish(out),
            Decoder::Json(d) => d.finish(out),
        }
    }
    fn pending_start(&self) -> Option<u64> {
        match self {
            Decoder::Percent(d) => d.pending_start(),
            Decoder::Json(d) => d.pending_start(),
        }
    }
}

/// Scans a stream for placeholders in raw, percent-encoded and JSON-escaped form.
#[derive(Debug, Clone)]
pub struct StreamScanner {
    pats: Arc<Patterns>,
    /// Raw bytes possibly the start of a match, and the offset of the first one.
    raw_tail: Vec<u8>,
    raw_tail_start: u64,
    decoders: [(Decoder, DecodedForm); 2],
    /// Bytes consumed so far.
    consumed: u64,
}

impl StreamScanner {
    /// A scanner for `pats`.
    pub fn new(pats: Arc<Patterns>) -> StreamScanner {
        StreamScanner {
            pats,
            raw_tail: Vec::new(),
            raw_tail_start: 0,
            decoders: [
                (
                    Decoder::Percent(PercentDecoder::default()),
                    DecodedForm::default(),
                ),
                (
                    Decoder::Json(JsonDecoder::default()),
                    DecodedForm::default(),
                ),
            ],
            consumed: 0,
        }
    }

    /// Total bytes consumed.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Scan the next chunk. Returns the stream offset up to which bytes are safe to forward,
    /// or the first placeholder found.
    pub fn push(&mut self, chunk: &[u8]) -> Result<u64, Hit> {
        let base = self.consumed;
        self.consumed += chunk.len() as u64;
        if self.pats.is_empty() {
            return Ok(self.consumed);
        }
        // Raw form.
        let mut safe = if self.raw_tail.is_empty() {
            self.scan_raw(chunk, base)?
        } else {
            let mut buf = std::mem::take(&mut self.raw_tail);
            buf.extend_from_slice(chunk);
            let start = self.raw_tail_start;
            let r = self.scan_raw(&buf, start);
            r?
        };
        // Decoded forms: only when an escape is in play.
        for (dec, st) in self.decoders.iter_mut() {
            let esc = dec.escape();
            if st.tail.is_empty() && dec.pending_start().is_none() && !chunk.contains(&esc) {
                continue;
            }
            let mut out = std::mem::take(&mut st.tail);
            dec.push(chunk, base, &mut out);
            scan_decoded(&self.pats, dec.form(), &mut out, &mut st.scratch)?;
            st.tail = out;
            let form_safe = st
                .tail
                .first()
                .map(|d| d.1)
                .into_iter()
                .chain(dec.pending_start())
                .min();
            if let Some(s) = form_safe {
                safe = safe.min(s);
            }
        }
        Ok(safe)
    }

    /// End of stream: flush incomplete escapes and scan what is left. On `Ok`, everything
    /// consumed is safe.
    pub fn finish(&mut self) -> Result<(), Hit> {
        if self.pats.is_empty() {
            return Ok(());
        }
        for (dec, st) in self.decoders.iter_mut() {
            let mut out = std::mem::take(&mut st.tail);
            dec.finish(&mut out);
            scan_decoded(&self.pats, dec.form(), &mut out, &mut st.scratch)?;
        }
        self.raw_tail.clear();
        Ok(())
    }

    fn scan_raw(&mut self, hay: &[u8], start: u64) -> Result<u64, Hit> {
        if let Some((p, _, _)) = self.pats.find(hay) {
            return Err(Hit {
                secret: self.pats.ids[p],
                form: Form::Raw,
            });
        }
        match self.pats.partial_start(hay) {
            Some(i) => {
                self.raw_tail = hay[i..].to_vec();
                self.raw_tail_start = start + i as u64;
                Ok(self.raw_tail_start)
            }
            None => Ok(start + hay.len() as u64),
        }
    }
}

/// Search decoded bytes; keep only the suffix that may still start a match.
fn scan_decoded(
    pats: &Patterns,
    form: Form,
    dec: &mut Vec<Decoded>,
    scratch: &mut Vec<u8>,
) -> Result<(), Hit> {
    scratch.clear();
    scratch.extend(dec.iter().map(|d| d.0));
    if let Some((p, _, _)) = pats.find(scratch) {
        return Err(Hit {
            secret: pats.ids[p],
            form,
        });
    }
    match pats.partial_start(scratch) {
        Some(i) => {
            dec.drain(..i);
        }
        None => dec.clear(),
    }
    Ok(())
}

/// One-shot scan of a header name, ignoring ASCII case: HTTP stacks lower-case names when
/// parsing (so the name seen here may differ in case from the bytes forwarded) and peers
/// compare them case-insensitively. Raw and percent-encoded forms (the only escapes a header
/// name's characters allow).
pub fn scan_name(pats: &Patterns, name: &[u8]) -> Result<(), Hit> {
    let Some(ac) = &pats.ac_nocase else {
        return Ok(());
    };
    if let Some(m) = ac.find(name) {
        return Err(Hit {
            secret: pats.ids[m.pattern().as_usize()],
            form: Form::Raw,
        });
    }
    if name.contains(&b'%') {
        let mut dec = Decoder::Percent(PercentDecoder::default());
        let mut out = Vec::with_capacity(name.len());
        dec.push(name, 0, &mut out);
        dec.finish(&mut out);
        let decoded: Vec<u8> = out.iter().map(|d| d.0).collect();
        if let Some(m) = ac.find(&decoded[..]) {
            return Err(Hit {
                secret: pats.ids[m.pattern().as_usize()],
                form: Form::Percent,
            });
        }
    }
    Ok(())
}

/// One-shot scan of a complete value.
pub fn scan_all(pats: &Patterns, bytes: &[u8]) -> Result<(), Hit> {
    if pats.is_empty() {
        return Ok(());
    }
    if let Some((p, _, _)) = pats.find(bytes) {
        return Err(Hit {
            secret: pats.ids[p],
            form: Form::Raw,
        });
    }
    for (mut dec, esc) in [
        (Decoder::Percent(PercentDecoder::default()), b'%'),
        (Decoder::Json(JsonDecoder::default()), b'\\'),
    ] {
        if !bytes.contains(&esc) {
            continue;
        }
        let mut out = Vec::with_capacity(bytes.len());
        dec.push(bytes, 0, &mut out);
        dec.finish(&mut out);
        scan_decoded(pats, dec.form(), &mut out, &mut Vec::new())?;
    }
    Ok(())
}

/// Replace every raw placeholder in `hay` with `value(secret)`. `None` if nothing matched
/// (the caller keeps its original, without a copy).
pub fn replace_all<'v>(
    pats: &Patterns,
    hay: &[u8],
    value: &dyn Fn(usize) -> &'v [u8],
) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    (replace_into(pats, hay, value, &mut out) > 0).then_some(out)
}

/// Append `hay` to `out` with every raw placeholder replaced; returns the number replaced.
fn replace_into<'v>(
    pats: &Patterns,
    hay: &[u8],
    value: &dyn Fn(usize) -> &'v [u8],
    out: &mut Vec<u8>,
) -> usize {
    let Some(ac) = pats.ac.as_ref() else {
        out.extend_from_slice(hay);
        return 0;
    };
    let mut pos = 0;
    let mut n = 0;
    for m in ac.find_iter(hay) {
        out.extend_from_slice(&hay[pos..m.start()]);
        out.extend_from_slice(value(pats.ids[m.pattern().as_usize()]));
        pos = m.end();
        n += 1;
    }
    out.extend_from_slice(&hay[pos..]);
    n
}

/// Streaming raw substitution. Output for any chunking equals [`replace_all`] on the whole.
#[derive(Debug, Clone)]
pub struct StreamSubstituter {
    pats: Arc<Patterns>,
    carry: Vec<u8>,
    /// How many replacements were made.
    pub replaced: usize,
}

impl StreamSubstituter {
    /// A substituter for `pats`.
    pub fn new(pats: Arc<Patterns>) -> StreamSubstituter {
        StreamSubstituter {
            pats,
            carry: Vec::new(),
            replaced: 0,
        }
    }

    /// Feed a chunk; append what is final to `out`.
    pub fn push<'v>(&mut self, chunk: &[u8], value: &dyn Fn(usize) -> &'v [u8], out: &mut Vec<u8>) {
        let Some(ac) = self.pats.ac.as_ref() else {
            out.extend_from_slice(chunk);
            return;
        };
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(chunk);
        // The earliest position where a match could still begin with more input. A match
        // found at or after it may be superseded (leftmost-longest) once more bytes arrive.
        let hold = self.pats.partial_start(&buf).unwrap_or(buf.len());
        let mut pos = 0;
        let mut unfinished = None;
        for m in ac.find_iter(&buf) {
            if m.start() >= hold {
                unfinished = Some(m.start());
                break;
            }
            out.extend_from_slice(&buf[pos..m.start()]);
            out.extend_from_slice(value(self.pats.ids[m.pattern().as_usize()]));
            self.replaced += 1;
            pos = m.end();
        }
        let mut emit_to = pos
            + self
                .pats
                .partial_start(&buf[pos..])
                .unwrap_or(buf.len() - pos);
        if let Some(u) = unfinished {
            emit_to = emit_to.min(u);
        }
        let emit_to = emit_to.max(pos);
        out.extend_from_slice(&buf[pos..emit_to]);
        buf.drain(..emit_to);
        self.carry = buf;
    }

    /// End of stream: replace in and flush the carry.
    pub fn finish<'v>(&mut self, value: &dyn Fn(usize) -> &'v [u8], out: &mut Vec<u8>) {
        let carry = std::mem::take(&mut self.carry);
        self.replaced += replace_into(&self.pats, &carry, value, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_scanned_ignoring_case() {
        let pats = Patterns::new([(3, &b"$MSB_KEY"[..])]);
        let hit = scan_name(&pats, b"tran$msb_key!fer-encoding").unwrap_err();
        assert_eq!((hit.secret, hit.form), (3, Form::Raw));
        let hit = scan_name(&pats, b"x-%24msb_key").unwrap_err();
        assert_eq!(hit.form, Form::Percent);
        assert!(scan_name(&pats, b"x-msb-key").is_ok());
        // A value keeps its case: only names are folded.
        assert!(scan_all(&pats, b"$msb_key").is_ok());
    }
    use proptest::prelude::*;

    fn pats() -> Patterns {
        Patterns::new([
            (0usize, b"$MSB_KEY".as_slice()),
            (1, b"$MSB_KEY_LONG".as_slice()),
            (2, b"tok".as_slice()),
        ])
    }

    fn values(i: usize) -> &'static [u8] {
        [
            b"REAL0".as_slice(),
            b"REAL1-LONGER".as_slice(),
            b"T".as_slice(),
        ][i]
    }

    #[test]
    fn finds_each_form() {
        let p = pats();
        assert_eq!(
            scan_all(&p, b"x=$MSB_KEY&"),
            Err(Hit {
                secret: 0,
                form: Form::Raw
            })
        );
        assert_eq!(
            scan_all(&p, b"x=%24MSB_KEY").map_err(|h| h.form),
            Err(Form::Percent)
        );
        assert_eq!(
            scan_all(&p, br#"{"k":"\u0024MSB_KEY"}"#).map_err(|h| h.form),
            Err(Form::Json)
        );
        assert_eq!(
            scan_all(&p, br#"%5Cu0024MSB_KEY"#).map_err(|h| h.form),
            Ok(())
        );
        assert!(scan_all(&p, b"nothing here $MSB_KE").is_ok());
    }

    #[test]
    fn withholds_only_a_possible_prefix() {
        let p = pats();
        let mut s = StreamScanner::new(Arc::new(p));
        assert_eq!(s.push(b"hello "), Ok(6));
        assert_eq!(s.push(b"world $MS"), Ok(12));
        assert_eq!(s.push(b"X more"), Ok(21));
        assert_eq!(s.push(b" %2"), Ok(22));
        assert_eq!(s.push(b"4MSB"), Ok(22));
        assert_eq!(s.push(b"_KEY").map_err(|h| h.form), Err(Form::Percent));
    }

    #[test]
    fn substitutes_split_placeholders() {
        let p = pats();
        let mut s = StreamSubstituter::new(Arc::new(p.clone()));
        let mut out = Vec::new();
        s.push(b"a $MSB_K", &values, &mut out);
        s.push(b"EY b $MSB_KEY", &values, &mut out);
        s.push(b"_LONG c", &values, &mut out);
        s.finish(&values, &mut out);
        assert_eq!(out, b"a REAL0 b REAL1-LONGER c");
        assert_eq!(s.replaced, 2);
    }

    proptest! {
        #[test]
        fn streaming_equals_one_shot(
            parts in proptest::collection::vec(prop_oneof![
                Just(b"$MSB_KEY".to_vec()), Just(b"$MSB_KEY_LONG".to_vec()), Just(b"tok".to_vec()),
                Just(b"%24MSB_KEY".to_vec()), Just(b"\\u0024MSB_KEY".to_vec()), Just(b"$MSB_".to_vec()),
                Just(b"%".to_vec()), Just(b"\\".to_vec()), Just(b"to".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..6)], 0..12),
            cuts in proptest::collection::vec(0usize..200, 0..10)) {
            let data: Vec<u8> = parts.concat();
            let p = pats();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort();
            // Substitution.
            let expected = replace_all(&p, &data, &values).unwrap_or_else(|| data.clone());
            let mut s = StreamSubstituter::new(Arc::new(p.clone()));
            let mut out = Vec::new();
            let mut prev = 0;
            for &c in cuts.iter().chain([data.len()].iter()) {
                s.push(&data[prev..c], &values, &mut out);
                prev = c;
            }
            s.finish(&values, &mut out);
            prop_assert_eq!(&out, &expected);
            // Detection: the streaming verdict equals the one-shot verdict, and nothing
            // declared safe before a hit contains the start of the hit.
            let one_shot = scan_all(&p, &data).is_err();
            let mut sc = StreamScanner::new(Arc::new(p.clone()));
            let mut prev = 0;
            let mut hit = false;
            let mut safe = 0u64;
            for &c in cuts.iter().chain([data.len()].iter()) {
                match sc.push(&data[prev..c]) {
                    Ok(s) => { prop_assert!(s >= safe); safe = s; }
                    Err(_) => { hit = true; break; }
                }
                prev = c;
            }
            if !hit { hit = sc.finish().is_err(); }
            prop_assert_eq!(hit, one_shot);
            if hit {
                // The safe prefix must itself be clean, in every form.
                prop_assert!(scan_all(&p, &data[..safe as usize]).is_ok());
            }
        }
    }
}
