//! [`SecretValue`]: a real credential, held only by the host-side process.

use std::fmt;
use zeroize::Zeroizing;

/// A real secret value. Zeroized when dropped; `Debug` and `Display` never show it.
///
/// The bytes are reachable only through [`SecretValue::expose`], which the boundary calls at
/// the one place it writes a substitution.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl SecretValue {
    /// Wrap a value.
    pub fn new(value: impl Into<Vec<u8>>) -> SecretValue {
        SecretValue(Zeroizing::new(value.into()))
    }

    /// The bytes, for substitution. Never log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue(<redacted, {} bytes>)", self.0.len())
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
}
