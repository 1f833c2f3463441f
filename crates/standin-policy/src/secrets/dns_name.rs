//! Placeholders smuggled out in DNS query names: a name is a channel to whoever runs the
//! authoritative server, even when every connection is blocked.
//!
//! A query name is searched (case-insensitively, with its labels joined, so a placeholder
//! split across labels is found) for each placeholder raw, with its punctuation removed, and
//! hex-, base32- and base64-encoded at every alignment.

use super::decode::Form;
use super::set::SecretSet;
use base64::Engine;

/// Shortest encoded core worth matching (shorter ones would match innocent names).
const MIN_CORE: usize = 8;

/// The first secret, among those `consider` accepts, whose placeholder appears in the name made
/// of `labels`, and how.
pub fn find_in_name<'a>(
    set: &SecretSet,
    labels: impl IntoIterator<Item = &'a [u8]>,
    consider: &dyn Fn(usize) -> bool,
) -> Option<(usize, Form)> {
    let mut joined: Vec<u8> = Vec::new();
    for l in labels {
        joined.extend(l.iter().map(u8::to_ascii_lowercase));
    }
    let alnum: Vec<u8> = joined
        .iter()
        .copied()
        .filter(u8::is_ascii_alphanumeric)
        .collect();
    let canon_b64: Vec<u8> = joined.iter().map(|&b| canon64(b)).collect();
    for (i, e) in set.entries.iter().enumerate().filter(|(i, _)| consider(*i)) {
        let p = e.placeholder.as_bytes();
        let lower: Vec<u8> = p.iter().map(u8::to_ascii_lowercase).collect();
        if contains(&joined, &lower) {
            return Some((i, Form::Raw));
        }
        let p_alnum: Vec<u8> = lower
            .iter()
            .copied()
            .filter(u8::is_ascii_alphanumeric)
            .collect();
        if p_alnum.len() >= MIN_CORE && contains(&alnum, &p_alnum) {
            return Some((i, Form::Raw));
        }
        let hex: Vec<u8> = p
            .iter()
            .flat_map(|b| format!("{b:02x}").into_bytes())
            .collect();
        if contains(&joined, &hex) {
            return Some((i, Form::Hex));
        }
        for core in cores(p, 5, &|b| base32_lower(b)) {
            if core.len() >= MIN_CORE && contains(&joined, &core) {
                return Some((i, Form::Base32));
            }
        }
        for core in cores(p, 6, &|b| {
            base64::engine::general_purpose::STANDARD_NO_PAD
                .encode(b)
                .bytes()
                .map(|c| canon64(c.to_ascii_lowercase()))
                .collect()
        }) {
            if core.len() >= MIN_CORE && contains(&canon_b64, &core) {
                return Some((i, Form::Base64));
            }
        }
    }
    None
}

/// base64 and base64url agree once `+`/`-` and `/`/`_` are identified.
fn canon64(b: u8) -> u8 {
    match b {
        b'+' => b'-',
        b'/' => b'_',
        other => other,
    }
}

/// The characters of `encode(k zero bytes + p)` that depend only on `p`, for every alignment
/// `k` of an encoding with `bits`-bit characters.
fn cores(p: &[u8], bits: usize, encode: &dyn Fn(&[u8]) -> Vec<u8>) -> Vec<Vec<u8>> {
    let alignments = if bits == 6 { 3 } else { 5 };
    (0..alignments)
        .map(|k| {
            let mut input = vec![0u8; k];
            input.extend_from_slice(p);
            let enc = encode(&input);
            let first = (8 * k).div_ceil(bits);
            let last = (8 * (k + p.len())) / bits; // exclusive: chars fully inside p
            enc.get(first..last.min(enc.len())).unwrap_or(&[]).to_vec()
        })
        .collect()
}

fn base32_lower(input: &[u8]) -> Vec<u8> {
    const A: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = Vec::new();
    let (mut acc, mut n) = (0u32, 0u32);
    for &b in input {
        acc = (acc << 8) | u32::from(b);
        n += 8;
        while n >= 5 {
            out.push(A[((acc >> (n - 5)) & 31) as usize]);
            n -= 5;
        }
    }
    if n > 0 {
        out.push(A[((acc << (5 - n)) & 31) as usize]);
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && memchr::memmem::find(hay, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::DomainName;
    use crate::secrets::{SecretEntry, SecretInjection, SecretValue};

    fn set() -> SecretSet {
        SecretSet {
            entries: vec![SecretEntry {
                env_var: "NPM_TOKEN".into(),
                value: SecretValue::new("npm_x"),
                placeholder: "$MSB_NPM_TOKEN".into(),
                allowed_hosts: vec![DomainName::parse("registry.npmjs.org").unwrap()],
                allowed_host_patterns: vec![],
                allow_any_host: false,
                require_tls_identity: true,
                injection: SecretInjection::default(),
                on_violation: None,
                aws: None,
                require: false,
                retired: Vec::new(),
            }],
            ..Default::default()
        }
    }

    fn find(name: &str) -> Option<Form> {
        find_in_name(&set(), name.split('.').map(str::as_bytes), &|_| true).map(|(_, f)| f)
    }

    #[test]
    fn finds_every_encoding() {
        assert_eq!(find("$msb_npm_token.evil.example"), Some(Form::Raw));
        assert_eq!(find("msb-npm.token.evil.example"), Some(Form::Raw));
        let hex: String = b"$MSB_NPM_TOKEN"
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            find(&format!("{}.{}.evil.example", &hex[..10], &hex[10..])),
            Some(Form::Hex)
        );
        for prefix in ["", "a", "ab", "abc", "abcd"] {
            let mut data = prefix.as_bytes().to_vec();
            data.extend_from_slice(b"$MSB_NPM_TOKEN");
            let b32 = String::from_utf8(base32_lower(&data)).unwrap();
            assert_eq!(
                find(&format!("{b32}.evil.example")),
                Some(Form::Base32),
                "{prefix}"
            );
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&data);
            assert_eq!(
                find(&format!("{b64}.evil.example")),
                Some(Form::Base64),
                "{prefix}"
            );
            assert_eq!(
                find(&format!("{}.evil.example", b64.to_ascii_uppercase())),
                Some(Form::Base64),
                "{prefix}"
            );
        }
        assert_eq!(find("registry.npmjs.org"), None);
        // Only the secrets the caller considers (those for which the name is a violation).
        let mut two = set();
        let mut b = two.entries[0].clone();
        b.env_var = "OTHER".into();
        b.placeholder = "$MSB_OTHER".into();
        two.entries.push(b);
        let labels = ["$msb_npm_token", "$msb_other", "evil", "example"];
        let labels = || labels.iter().map(|l| l.as_bytes());
        assert_eq!(
            find_in_name(&two, labels(), &|_| true),
            Some((0, Form::Raw))
        );
        assert_eq!(
            find_in_name(&two, labels(), &|i| i == 1),
            Some((1, Form::Raw))
        );
        assert_eq!(find_in_name(&two, labels(), &|_| false), None);
        assert_eq!(find("www.example.com"), None);
    }
}
