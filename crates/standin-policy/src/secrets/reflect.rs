//! [`Scrubber`]: the reverse substitution. An allowed host that echoes a real value back
//! (an error message quoting the `Authorization` header, a debug endpoint) must not deliver
//! it into the sandbox: responses are scanned and every value is replaced by its placeholder.
//! Base64 forms are caught too (an echo of substituted Basic credentials carries the value
//! base64-encoded): wherever the value sits in a base64 blob, one of its cores appears, and
//! is replaced by characters that decode to asterisks (the blob stays decodable; at most two
//! bytes at each end of the value, encoded together with their neighbours, are not covered).
//!
//! JSON strings are read too: a value echoed with escapes the server chose (`\/`, `\uXXXX` for
//! any of its characters) is found in the decoded text and replaced where it was written
//! ([`reflect_json`](super::reflect_json), the first of the two stages).
//!
//! Values are searched with `memchr::memmem` directly in the secret set's zeroizing storage:
//! no long-lived copy of a value (an automaton, a finder) is built. Carried bytes that may be
//! the start of a value are held in zeroizing buffers.

use super::reflect_json::{JsonStage, Pair};
use super::set::SecretSet;
#[cfg(doc)]
use super::value::Base64Core;
use super::value::SecretValue;
use memchr::memmem;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Something the boundary wrote that carries a value in a form of its own (the base64 of
/// substituted Basic credentials), and what the sandbox had written in its place: an echo of
/// `text` is given back as `original`, exactly as the sandbox sent it.
#[derive(Clone)]
pub struct SentForm {
    /// What was sent (as secret as the value).
    pub text: Zeroizing<Vec<u8>>,
    /// What the sandbox wrote.
    pub original: Vec<u8>,
}

impl std::fmt::Debug for SentForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SentForm(<redacted, {} bytes>)", self.text.len())
    }
}

/// Streaming value → placeholder replacement for a chosen set of secrets.
#[derive(Debug)]
pub struct Scrubber {
    set: Arc<SecretSet>,
    ids: Arc<Vec<usize>>,
    sent: Arc<Vec<SentForm>>,
    carry: Zeroizing<Vec<u8>>,
    json: JsonStage,
    /// The JSON stage's output, reused between chunks.
    mid: Zeroizing<Vec<u8>>,
    /// How many values the literal stage replaced.
    replaced: usize,
}

/// Each value of `ids`, current and retired by a rotation (still in its grace period), with
/// its placeholder.
fn values<'s>(
    set: &'s SecretSet,
    ids: &'s [usize],
) -> impl Iterator<Item = (&'s SecretValue, &'s [u8])> + 's {
    ids.iter()
        .filter_map(|&id| set.entries.get(id))
        .flat_map(|e| {
            std::iter::once(&e.value)
                .chain(&e.retired)
                .map(move |v| (v, e.placeholder.as_bytes()))
        })
}

/// What the JSON stage looks for: each value and its placeholder.
fn value_pairs<'s>(set: &'s SecretSet, ids: &'s [usize]) -> Vec<Pair<'s>> {
    values(set, ids).map(|(v, p)| (v.expose(), p)).collect()
}

impl Scrubber {
    /// Scrub the values of `ids` (indices into `set`).
    pub fn new(set: Arc<SecretSet>, ids: Arc<Vec<usize>>) -> Scrubber {
        Scrubber {
            set,
            ids,
            sent: Arc::default(),
            carry: Zeroizing::new(Vec::new()),
            json: JsonStage::default(),
            mid: Zeroizing::new(Vec::new()),
            replaced: 0,
        }
    }

    /// Also give back `sent` forms as the sandbox wrote them (an echo of substituted Basic
    /// credentials then decodes to the placeholder again).
    pub fn with_sent(mut self, sent: Arc<Vec<SentForm>>) -> Scrubber {
        self.sent = sent;
        self
    }

    /// Every form searched for, with what replaces it: the forms the boundary sent (by what
    /// the sandbox wrote), each value and its percent-encoded forms (by its placeholder) and
    /// each of its base64 cores (by its filler, see [`Base64Core`]).
    fn forms(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let sent = self
            .sent
            .iter()
            .map(|f| (f.text.as_slice(), f.original.as_slice()));
        sent.chain(
            values(&self.set, &self.ids).flat_map(|(value, placeholder)| {
                std::iter::once((value.expose(), placeholder))
                    .chain(
                        value
                            .percent_forms()
                            .iter()
                            .map(move |p| (p.as_slice(), placeholder)),
                    )
                    .chain(value.base64_cores().iter().map(|c| (c.text(), c.filler())))
            }),
        )
    }

    /// Earliest (then longest) occurrence of a form at or after `from`: start, end and the
    /// replacement.
    fn next_match(&self, hay: &[u8], from: usize) -> Option<(usize, usize, &[u8])> {
        let mut best: Option<(usize, usize, &[u8])> = None;
        for (form, replacement) in self.forms() {
            if form.is_empty() {
                continue;
            }
            if let Some(i) = memmem::find(&hay[from..], form) {
                let start = from + i;
                let better = match best {
                    None => true,
                    Some((s, e, _)) => start < s || (start == s && start + form.len() > e),
                };
                if better {
                    best = Some((start, start + form.len(), replacement));
                }
            }
        }
        best
    }

    /// Start of the longest suffix of `hay` that is a proper prefix of some form.
    fn partial_start(&self, hay: &[u8]) -> Option<usize> {
        let longest = self.forms().map(|(f, _)| f.len()).max()?;
        let from = hay.len().saturating_sub(longest.saturating_sub(1));
        (from..hay.len()).find(|&i| {
            self.forms()
                .any(|(f, _)| f.len() > hay.len() - i && f.starts_with(&hay[i..]))
        })
    }

    /// Whether `hay` contains any of the values, in any form (one-shot).
    pub fn contains_any(&self, hay: &[u8]) -> bool {
        self.replace_all(hay).is_some()
    }

    /// One-shot: `hay` with every value replaced, or `None` if it has none.
    pub fn replace_all(&self, hay: &[u8]) -> Option<Vec<u8>> {
        // No escape, nothing for the JSON stage (every response header takes this path).
        if memchr::memchr(b'\\', hay).is_none() {
            return self.replace_literal(hay);
        }
        let mut json = JsonStage::default();
        let pairs = value_pairs(&self.set, &self.ids);
        let mut mid = Zeroizing::new(Vec::with_capacity(hay.len()));
        json.push(&pairs, hay, &mut mid);
        json.finish(&pairs, &mut mid);
        let literal = self.replace_literal(&mid);
        match (literal, json.replaced > 0) {
            (Some(out), _) => Some(out),
            (None, true) => Some(mid.to_vec()),
            (None, false) => None,
        }
    }

    /// The literal stage, one-shot.
    fn replace_literal(&self, hay: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut pos = 0;
        let mut any = false;
        while let Some((s, e, replacement)) = self.next_match(hay, pos) {
            out.extend_from_slice(&hay[pos..s]);
            out.extend_from_slice(replacement);
            pos = e;
            any = true;
        }
        if !any {
            return None;
        }
        out.extend_from_slice(&hay[pos..]);
        Some(out)
    }

    /// Feed a chunk; append what is final to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.ids.is_empty() {
            out.extend_from_slice(chunk);
            return;
        }
        let mut mid = std::mem::take(&mut self.mid);
        mid.clear();
        {
            let pairs = value_pairs(&self.set, &self.ids);
            self.json.push(&pairs, chunk, &mut mid);
        }
        self.push_literal(&mid, out);
        mid.clear();
        self.mid = mid;
    }

    /// The literal stage, streaming.
    fn push_literal(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let mut buf = Zeroizing::new(std::mem::take(&mut *self.carry));
        buf.extend_from_slice(chunk);
        let hold = self.partial_start(&buf).unwrap_or(buf.len());
        let mut pos = 0;
        while let Some((s, e, replacement)) = self.next_match(&buf, pos) {
            if s >= hold {
                break;
            }
            out.extend_from_slice(&buf[pos..s]);
            out.extend_from_slice(replacement);
            self.replaced += 1;
            pos = e;
        }
        let emit_to = (pos + self.partial_start(&buf[pos..]).unwrap_or(buf.len() - pos)).max(pos);
        out.extend_from_slice(&buf[pos..emit_to]);
        self.carry.extend_from_slice(&buf[emit_to..]);
    }

    /// Whether bytes that may start a value are held back.
    pub fn is_holding(&self) -> bool {
        !self.carry.is_empty() || self.json.is_holding()
    }

    /// End of stream, or the stream paused: flush what is held, replaced. The scrubber can be
    /// fed again afterwards (a value cut by the flush is then not recognised: callers flush
    /// only when the peer has stopped sending, see the boundary's `SCRUB_STALL`).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.ids.is_empty() {
            return;
        }
        let mut mid = std::mem::take(&mut self.mid);
        mid.clear();
        {
            let pairs = value_pairs(&self.set, &self.ids);
            self.json.finish(&pairs, &mut mid);
        }
        self.push_literal(&mid, out);
        mid.clear();
        self.mid = mid;
        let carry = Zeroizing::new(std::mem::take(&mut *self.carry));
        match self.replace_literal(&carry) {
            Some(r) => {
                self.replaced += 1;
                out.extend_from_slice(&r);
            }
            None => out.extend_from_slice(&carry),
        }
    }

    /// How many values were replaced, in every stage.
    pub fn replacements(&self) -> usize {
        self.replaced + self.json.replaced
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::DomainName;
    use crate::secrets::{SecretEntry, SecretInjection, SecretValue};
    use proptest::prelude::*;

    fn entry(env: &str, value: &str) -> SecretEntry {
        SecretEntry {
            env_var: env.into(),
            value: SecretValue::new(value),
            placeholder: format!("$MSB_{env}"),
            allowed_hosts: vec![DomainName::parse("a.example").unwrap()],
            allowed_host_patterns: vec![],
            allow_any_host: false,
            require_tls_identity: true,
            injection: SecretInjection::default(),
            on_violation: None,
            aws: None,
            require: false,
            retired: Vec::new(),
        }
    }

    /// `data` fed to `s` in pieces cut at `cuts`, then finished.
    fn streamed(mut s: Scrubber, data: &[u8], cuts: Vec<usize>) -> Vec<u8> {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
        cuts.sort();
        let mut out = Vec::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain([data.len()]) {
            s.push(&data[prev..c], &mut out);
            prev = c;
        }
        s.finish(&mut out);
        out
    }

    fn set() -> Arc<SecretSet> {
        Arc::new(SecretSet {
            entries: vec![entry("A", "sk-123"), entry("B", "sk-123456")],
            ..Default::default()
        })
    }

    #[test]
    fn scrubs_split_values() {
        let mut s = Scrubber::new(set(), Arc::new(vec![0, 1]));
        let mut out = Vec::new();
        s.push(b"{\"error\": \"bad key sk-1", &mut out);
        s.push(b"23456\", \"also\": \"sk-12", &mut out);
        s.push(b"3\"}", &mut out);
        s.finish(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"error\": \"bad key $MSB_B\", \"also\": \"$MSB_A\"}"
        );
    }

    #[test]
    fn scrubs_retired_values_too() {
        let set = Arc::new(set().rotated("A", SecretValue::new("sk-new-789")).unwrap());
        let s = Scrubber::new(set, Arc::new(vec![0]));
        assert_eq!(
            s.replace_all(b"old sk-123, new sk-new-789").unwrap(),
            b"old $MSB_A, new $MSB_A"
        );
    }

    proptest! {
        #[test]
        fn streaming_equals_one_shot(parts in proptest::collection::vec(prop_oneof![
                Just(b"sk-123".to_vec()), Just(b"sk-123456".to_vec()), Just(b"sk-".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..5)], 0..10),
            cuts in proptest::collection::vec(0usize..80, 0..6)) {
            let data = parts.concat();
            let set = set();
            let ids = Arc::new(vec![0, 1]);
            let expected = Scrubber::new(set.clone(), ids.clone()).replace_all(&data).unwrap_or_else(|| data.clone());
            let out = streamed(Scrubber::new(set, ids), &data, cuts);
            prop_assert_eq!(out, expected);
        }
    }

    /// `value` with the characters at the positions `mask` selects written as `\uXXXX`
    /// (alternating hex case) and every `/` as `\/` otherwise.
    fn json_escaped(value: &str, mask: u64) -> String {
        value
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if mask & (1 << (i % 64)) != 0 {
                    let e = format!("\\u{:04x}", c as u32);
                    if i % 2 == 0 {
                        e
                    } else {
                        e.to_uppercase().replacen("\\U", "\\u", 1)
                    }
                } else if c == '/' {
                    "\\/".to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    }

    #[test]
    fn json_escaped_echoes_become_the_placeholder() {
        let set = Arc::new(SecretSet {
            entries: vec![entry("K", "s3cr3t/+=tail")],
            ..Default::default()
        });
        let s = Scrubber::new(set, Arc::new(vec![0]));
        for echo in [
            r#"{"auth":"s3cr3t\/+=tail"}"#.to_string(),
            r#"{"auth":"\u0073\u0033cr3t\u002F+=tail"}"#.to_string(),
            format!(
                r#"{{"auth":"{}"}}"#,
                json_escaped("s3cr3t/+=tail", u64::MAX)
            ),
            format!(
                r#"{{"auth":"{}"}}"#,
                json_escaped("s3cr3t/+=tail", 0b1010_0101_0011)
            ),
        ] {
            assert_eq!(
                s.replace_all(echo.as_bytes()).as_deref(),
                Some(br#"{"auth":"$MSB_K"}"#.as_slice()),
                "{echo}"
            );
        }
        // Escapes that are not the value stay as they were.
        let other = r#"{"a":"line\nbreak \u00e9 \/ s3cr3u\/"}"#;
        assert_eq!(s.replace_all(other.as_bytes()), None);
    }

    proptest! {
        /// Any mix of escaped and literal characters, cut anywhere, comes out with the value
        /// replaced, the same as in one piece.
        #[test]
        fn json_escapes_streaming_equals_one_shot(
            mask: u64,
            before in "[a-z\\\\\\\"]{0,6}",
            after in "[a-z\\\\\\\"]{0,6}",
            cuts in proptest::collection::vec(0usize..120, 0..6),
        ) {
            let value = "s3cr3t/+=tail";
            let set = Arc::new(SecretSet { entries: vec![entry("K", value)], ..Default::default() });
            let ids = Arc::new(vec![0]);
            let data = format!("{before} x{}x {after}", json_escaped(value, mask)).into_bytes();
            let expected = Scrubber::new(set.clone(), ids.clone()).replace_all(&data).unwrap();
            let out = streamed(Scrubber::new(set, ids), &data, cuts);
            prop_assert_eq!(&out, &expected);
            let text = String::from_utf8_lossy(&out);
            prop_assert!(text.contains(" x$MSB_Kx "), "{}", text);
        }
    }

    #[test]
    fn percent_encoded_echoes_become_the_placeholder() {
        let set = Arc::new(SecretSet {
            entries: vec![entry("K", "s3cr3t/+=tail")],
            ..Default::default()
        });
        let s = Scrubber::new(set, Arc::new(vec![0]));
        // As the boundary wrote it into a query, and as a server re-encoding in lower case.
        assert_eq!(
            s.replace_all(b"url=/q?key=s3cr3t%2F%2B%3Dtail&x=s3cr3t%2f%2b%3dtail")
                .unwrap(),
            b"url=/q?key=$MSB_K&x=$MSB_K"
        );
    }
}
