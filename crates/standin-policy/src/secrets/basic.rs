//! Basic credentials (`Authorization: Basic base64(user:password)`), read two ways.
//!
//! **Detection is lenient.** Servers decode Basic credentials far more loosely than RFC 7617
//! writes them: any case of the scheme, any run of spaces or tabs after it, the URL-safe
//! alphabet, padding missing, doubled or in the middle, stray characters skipped. A
//! placeholder written in any of those forms reaches some server as the placeholder, so
//! [`readings`] returns every decoding such a server could arrive at, and the boundary scans
//! all of them. Two readings cover the decoders in common use:
//! - *skip*: every byte outside the two base64 alphabets (padding and whitespace included) is
//!   dropped and the rest decoded as one run (CPython's non-strict `b64decode`, Node's
//!   `Buffer.from(…, "base64")`, Go's and Java's lenient MIME decoders);
//! - *segments*: the token is cut at each run of `=` and every piece decoded on its own
//!   (decoders that restart after padding, or stop at it: the first piece).
//!
//! **Substitution is strict** ([`credentials`], [`substitute`]): the standard alphabet,
//! padded or not, nothing else. Credentials that only the lenient readings understand and
//! that carry a placeholder are refused by the boundary rather than forwarded.

use super::scan::{Patterns, replace_all};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

/// The most bytes of a credential token the lenient readings look at. A header value is at
/// most 64 KiB in the boundary (hyper's limit is lower); this bounds the work per header.
pub const MAX_BASIC_TOKEN: usize = 64 * 1024;

/// The scheme and the credentials of an `Authorization` value, split as lenient servers
/// do: leading whitespace skipped, the scheme up to the first whitespace, then any run of
/// whitespace (spaces, tabs, any ASCII whitespace).
pub fn split_scheme(value: &[u8]) -> (&[u8], &[u8]) {
    let value = trim(value);
    match value.iter().position(|b| b.is_ascii_whitespace()) {
        Some(end) => (&value[..end], trim(&value[end..])),
        None => (value, &[]),
    }
}

/// The credentials part of a value whose scheme is `Basic` in any case, or `None`.
pub fn token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = split_scheme(value);
    scheme.eq_ignore_ascii_case(b"basic").then_some(rest)
}

/// Strict decoding: the standard alphabet, with or without its padding.
pub fn credentials(value: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let b64 = token(value)?;
    STANDARD
        .decode(b64)
        .or_else(|_| STANDARD_NO_PAD.decode(b64))
        .ok()
        .map(Zeroizing::new)
}

/// Every decoding a lenient server could make of a `Basic` value (see the module docs), or
/// `None` when the value is not `Basic`. The readings are zeroized when dropped: after
/// substitution they may hold real values.
pub fn readings(value: &[u8]) -> Option<Vec<Zeroizing<Vec<u8>>>> {
    let b64 = token(value)?;
    let b64 = &b64[..b64.len().min(MAX_BASIC_TOKEN)];
    let mut out = vec![lenient_decode(b64)];
    if b64.contains(&b'=') {
        let mut joined = Zeroizing::new(Vec::new());
        for piece in b64.split(|&b| b == b'=').filter(|p| !p.is_empty()) {
            joined.extend_from_slice(&lenient_decode(piece));
        }
        out.push(joined);
    }
    Some(out)
}

/// A `Basic` value with placeholders replaced inside the strictly decoded `user:password`
/// and re-encoded in the standard form, or `None` if it is not `Basic`, not strictly
/// decodable, or has no placeholder.
pub fn substitute<'v>(
    pats: &Patterns,
    value: &[u8],
    real: &dyn Fn(usize) -> &'v [u8],
) -> Option<Vec<u8>> {
    let creds = credentials(value)?;
    let replaced = Zeroizing::new(replace_all(pats, &creds, real)?);
    let mut out = b"Basic ".to_vec();
    out.extend_from_slice(STANDARD.encode(&*replaced).as_bytes());
    Some(out)
}

/// Skip everything outside the two alphabets, map URL-safe to standard, decode what is left
/// (a lone trailing character, which carries no whole byte, is dropped).
fn lenient_decode(raw: &[u8]) -> Zeroizing<Vec<u8>> {
    const LOOSE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    );
    let mut clean = Zeroizing::new(Vec::with_capacity(raw.len()));
    clean.extend(raw.iter().filter_map(|&b| match b {
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => Some(b),
        b'-' => Some(b'+'),
        b'_' => Some(b'/'),
        _ => None,
    }));
    if clean.len() % 4 == 1 {
        clean.pop();
    }
    Zeroizing::new(LOOSE.decode(&*clean).unwrap_or_default())
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn found(value: &str) -> bool {
        let pats = Patterns::new([(0usize, b"$MSB_KEY".as_slice())]);
        readings(value.as_bytes()).is_some_and(|rs| {
            rs.iter()
                .any(|r| super::super::scan::scan_all(&pats, r).is_err())
        })
    }

    #[test]
    fn lenient_readings_find_placeholders_in_every_form_servers_accept() {
        let std = STANDARD.encode("u:$MSB_KEY?>");
        let url = URL_SAFE_NO_PAD.encode("u:$MSB_KEY?>");
        assert!(url.contains('-') || url.contains('_'), "{url}");
        let first = STANDARD.encode("user");
        let hidden = STANDARD.encode(":$MSB_KEY");
        for v in [
            format!("Basic {std}"),
            format!("bAsIc {std}"),
            format!("BASIC\t\t{std}"),
            format!("  basic \t {std}  "),
            format!("Basic {url}"),
            format!("Basic {}", std.trim_end_matches('=')),
            format!("Basic {std}=="),
            format!("Basic {}", std.replace("", " ").trim()),
            // Padding in the middle: decoders that restart after it see the placeholder.
            format!("Basic {first}{hidden}"),
        ] {
            assert!(found(&v), "{v:?}");
        }
        assert!(!found(&format!("Bearer {std}")));
        assert!(!found(&format!("Basicx {std}")));
        assert!(!found(&format!("Basic {}", STANDARD.encode("user:pw"))));
    }

    #[test]
    fn substitution_is_strict_and_re_encodes_in_the_standard_form() {
        let pats = Patterns::new([(0usize, b"$MSB_KEY".as_slice())]);
        let real = |_: usize| b"s3cr3t/+=".as_slice();
        let v = format!("basic\t{}", STANDARD.encode("user:$MSB_KEY"));
        let out = substitute(&pats, v.as_bytes(), &real).unwrap();
        assert_eq!(
            out,
            format!("Basic {}", STANDARD.encode("user:s3cr3t/+=")).into_bytes()
        );
        let url = format!("Basic {}", URL_SAFE_NO_PAD.encode("u:$MSB_KEY?>"));
        assert!(substitute(&pats, url.as_bytes(), &real).is_none());
        assert!(substitute(&pats, b"Bearer $MSB_KEY", &real).is_none());
    }

    proptest::proptest! {
        #[test]
        fn readings_never_panic(v in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut value = b"Basic ".to_vec();
            value.extend_from_slice(&v);
            let _ = readings(&value);
            let _ = credentials(&value);
        }
    }
}
