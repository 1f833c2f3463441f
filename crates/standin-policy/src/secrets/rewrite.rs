//! Substitution in the small, structured parts of a request: header values, Basic
//! credentials and query strings. Bodies go through the streaming
//! [`StreamSubstituter`](super::scan::StreamSubstituter).

use super::decode::percent_decode;
use super::scan::{Patterns, replace_all};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

/// A header value with every raw placeholder replaced, or `None` if it has none.
pub fn header_value<'v>(
    pats: &Patterns,
    value: &[u8],
    real: &dyn Fn(usize) -> &'v [u8],
) -> Option<Vec<u8>> {
    replace_all(pats, value, real)
}

/// The base64 part of an `Authorization: Basic …` value, if it is one.
pub fn basic_token(value: &[u8]) -> Option<&[u8]> {
    let value = trim(value);
    if value.len() < 6 || !value[..6].eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    Some(trim(&value[6..]))
}

/// The decoded `user:password` of an `Authorization: Basic …` value, if it is one.
pub fn basic_credentials(value: &[u8]) -> Option<Vec<u8>> {
    let b64 = basic_token(value)?;
    STANDARD
        .decode(b64)
        .or_else(|_| STANDARD_NO_PAD.decode(b64))
        .ok()
}

/// A Basic credentials value with placeholders replaced inside the decoded `user:password`
/// and re-encoded, or `None` if it is not Basic or has no placeholder.
pub fn basic_auth<'v>(
    pats: &Patterns,
    value: &[u8],
    real: &dyn Fn(usize) -> &'v [u8],
) -> Option<Vec<u8>> {
    let creds = zeroize::Zeroizing::new(basic_credentials(value)?);
    let replaced = zeroize::Zeroizing::new(replace_all(pats, &creds, real)?);
    let mut out = b"Basic ".to_vec();
    out.extend_from_slice(STANDARD.encode(&*replaced).as_bytes());
    Some(out)
}

/// A query string with every placeholder, raw or percent-encoded, replaced by the
/// percent-encoded value; `None` if it has none.
pub fn query<'v>(
    pats: &Patterns,
    query: &[u8],
    real: &dyn Fn(usize) -> &'v [u8],
) -> Option<Vec<u8>> {
    let decoded = percent_decode(query);
    let plain: Vec<u8> = decoded.iter().map(|d| d.0).collect();
    let mut out = Vec::with_capacity(query.len() + 64);
    let mut pos = 0usize;
    let mut any = false;
    for (secret, start, end) in pats.matches(&plain) {
        let raw_start = decoded[start].1 as usize;
        let raw_end = decoded.get(end).map_or(query.len(), |d| d.1 as usize);
        out.extend_from_slice(&query[pos..raw_start]);
        percent_encode_into(real(secret), &mut out);
        pos = raw_end;
        any = true;
    }
    if !any {
        return None;
    }
    out.extend_from_slice(&query[pos..]);
    Some(out)
}

/// Percent-encode everything but RFC 3986 unreserved characters.
pub fn percent_encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
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

    fn pats() -> Patterns {
        Patterns::new([(0usize, b"$MSB_KEY".as_slice())])
    }
    fn real(_: usize) -> &'static [u8] {
        b"s3cr3t/+="
    }

    #[test]
    fn basic() {
        let v = format!("Basic {}", STANDARD.encode("user:$MSB_KEY"));
        let out = basic_auth(&pats(), v.as_bytes(), &real).unwrap();
        assert_eq!(basic_credentials(&out).unwrap(), b"user:s3cr3t/+=".to_vec());
        assert!(basic_auth(&pats(), b"Bearer $MSB_KEY", &real).is_none());
        let plain = format!("basic {}", STANDARD.encode("user:pw"));
        assert!(basic_auth(&pats(), plain.as_bytes(), &real).is_none());
    }

    #[test]
    fn query_forms() {
        assert_eq!(
            query(&pats(), b"a=1&key=%24MSB_KEY&b=$MSB_KEY", &real).unwrap(),
            b"a=1&key=s3cr3t%2F%2B%3D&b=s3cr3t%2F%2B%3D".to_vec()
        );
        assert_eq!(
            query(&pats(), b"k=%24%4d%53B_KEY", &real).unwrap(),
            b"k=s3cr3t%2F%2B%3D".to_vec()
        );
        assert!(query(&pats(), b"k=v", &real).is_none());
    }

    #[test]
    fn header() {
        assert_eq!(
            header_value(&pats(), b"Bearer $MSB_KEY", &real).unwrap(),
            b"Bearer s3cr3t/+=".to_vec()
        );
    }
}
