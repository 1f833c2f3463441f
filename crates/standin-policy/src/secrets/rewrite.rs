//! Substitution in the small, structured parts of a request: header values and query
//! strings (Basic credentials: [`basic`](super::basic)). Bodies go through the streaming
//! [`StreamSubstituter`](super::scan::StreamSubstituter).

use super::decode::percent_decode;
use super::scan::{Patterns, replace_all};

/// A header value with every raw placeholder replaced, or `None` if it has none.
pub fn header_value<'v>(
    pats: &Patterns,
    value: &[u8],
    real: &dyn Fn(usize) -> &'v [u8],
) -> Option<Vec<u8>> {
    replace_all(pats, value, real)
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
