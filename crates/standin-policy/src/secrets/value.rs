//! [`SecretValue`]: a real credential, held only by the host-side process.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use std::fmt;
use zeroize::Zeroizing;

/// Shortest value whose base64 forms are also recognised (shorter ones would give cores of a
/// few characters, which random base64 data contains by chance).
pub const MIN_ENCODED_LEN: usize = 8;

/// A real secret value. Zeroized when dropped; `Debug` and `Display` never show it.
///
/// The bytes are reachable only through [`SecretValue::expose`], which the boundary calls at
/// the one place it writes a substitution, and, encoded, through
/// [`SecretValue::percent_forms`] and [`SecretValue::base64_cores`], which the response
/// scrubber searches for.
#[derive(Clone)]
pub struct SecretValue {
    bytes: Zeroizing<Vec<u8>>,
    cores: Vec<Base64Core>,
    percent: Vec<Zeroizing<Vec<u8>>>,
}

/// The part of a value's base64 encoding that does not depend on the bytes around it, at one
/// alignment and in one alphabet: the encoding of the value minus its first `skip` bytes,
/// cut to whole 3-byte groups. Wherever the value sits in a base64-encoded blob, one of its
/// cores appears (for at least one `skip` in 0..3).
#[derive(Clone)]
pub struct Base64Core {
    text: Zeroizing<Vec<u8>>,
    filler: Vec<u8>,
}

impl Base64Core {
    /// The encoded characters (as secret as the value).
    pub fn text(&self) -> &[u8] {
        &self.text
    }

    /// The same number of characters encoding `*` bytes: replacing the core keeps the blob
    /// decodable, with the value's middle turned into asterisks.
    pub fn filler(&self) -> &[u8] {
        &self.filler
    }
}

impl SecretValue {
    /// Wrap a value.
    pub fn new(value: impl Into<Vec<u8>>) -> SecretValue {
        let bytes = Zeroizing::new(value.into());
        let mut cores: Vec<Base64Core> = Vec::new();
        if bytes.len() >= MIN_ENCODED_LEN {
            for skip in 0..3 {
                let whole = (bytes.len() - skip) / 3 * 3;
                let part = &bytes[skip..skip + whole];
                let filler = STANDARD_NO_PAD.encode(vec![b'*'; whole]).into_bytes();
                for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                    let text = Zeroizing::new(engine.encode(part).into_bytes());
                    if !cores.iter().any(|c| c.text == text) {
                        cores.push(Base64Core {
                            text,
                            filler: filler.clone(),
                        });
                    }
                }
            }
        }
        // Percent-encoded as the boundary writes it into a query (upper-case hex), and with
        // lower-case hex (as some servers re-encode): only where it differs from the value.
        let mut percent: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        let mut upper = Zeroizing::new(Vec::new());
        super::rewrite::percent_encode_into(&bytes, &mut upper);
        if *upper != *bytes {
            let mut lower = Zeroizing::new(Vec::with_capacity(upper.len()));
            let mut hex_left = 0;
            for &b in upper.iter() {
                if hex_left > 0 {
                    lower.push(b.to_ascii_lowercase());
                    hex_left -= 1;
                } else {
                    hex_left = if b == b'%' { 2 } else { 0 };
                    lower.push(b);
                }
            }
            if *lower != *upper {
                percent.push(lower);
            }
            percent.push(upper);
        }
        SecretValue {
            bytes,
            cores,
            percent,
        }
    }

    /// The value percent-encoded (upper- and lower-case hex), where that differs from it.
    pub fn percent_forms(&self) -> &[Zeroizing<Vec<u8>>] {
        &self.percent
    }

    /// The bytes, for substitution. Never log them.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// The value's base64 cores (none for values shorter than [`MIN_ENCODED_LEN`]).
    pub fn base64_cores(&self) -> &[Base64Core] {
        &self.cores
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl PartialEq for SecretValue {
    fn eq(&self, other: &SecretValue) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for SecretValue {}

impl fmt::Debug for Base64Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Base64Core(<redacted, {} chars>)", self.text.len())
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue(<redacted, {} bytes>)", self.bytes.len())
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_value() {
        let v = SecretValue::new("sk-live-123");
        assert!(!format!("{v:?}").contains("sk-live"));
        assert!(!format!("{v}").contains("sk-live"));
        assert_eq!(v.expose(), b"sk-live-123");
    }

    #[test]
    fn a_core_is_found_wherever_the_value_sits_in_base64() {
        let v = SecretValue::new("sk-live-0123456789");
        assert!(!format!("{:?}", v.base64_cores()).contains("c2st"));
        for prefix in ["", "u:", "us:", "user:"] {
            let blob = STANDARD_NO_PAD.encode(format!("{prefix}sk-live-0123456789 tail"));
            let core = v
                .base64_cores()
                .iter()
                .find(|c| {
                    blob.as_bytes()
                        .windows(c.text().len())
                        .any(|w| w == c.text())
                })
                .unwrap_or_else(|| panic!("no core in {blob}"));
            // Replaced by its filler, the blob still decodes, with the middle starred out.
            let i = blob
                .as_bytes()
                .windows(core.text().len())
                .position(|w| w == core.text())
                .unwrap();
            let mut scrubbed = blob.as_bytes().to_vec();
            scrubbed[i..i + core.text().len()].copy_from_slice(core.filler());
            let decoded = STANDARD_NO_PAD.decode(&scrubbed).unwrap();
            let text = String::from_utf8_lossy(&decoded);
            assert!(text.contains("************"), "{text}");
            assert!(!text.contains("live-0123"), "{text}");
        }
        assert!(SecretValue::new("short").base64_cores().is_empty());
    }
}
