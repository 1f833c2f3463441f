//! Domain names and host patterns, matched on label boundaries, ASCII case-insensitively.

use std::fmt;
use thiserror::Error;

/// Longest domain name accepted (RFC 1035, without the trailing dot).
pub const MAX_NAME_LEN: usize = 253;
/// Longest label.
pub const MAX_LABEL_LEN: usize = 63;

/// Why a name or pattern was rejected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DomainError {
    /// Empty name, empty label, or a label or name over the length limits.
    #[error("{0:?} is not a valid domain name (labels of 1-63 characters, 253 in all)")]
    Malformed(String),
    /// A character outside `a-z 0-9 - _`.
    #[error(
        "{0:?} contains a character not allowed in a domain name; internationalised names must be written in their xn-- (punycode) form"
    )]
    BadCharacter(String),
    /// `*` anywhere but a leading `*.`.
    #[error("{0:?}: a wildcard is only allowed as a leading '*.' (e.g. *.example.com)")]
    Wildcard(String),
    /// `*.x` where `x` has a single label.
    #[error("{0:?} is too broad: a suffix pattern needs at least two labels (e.g. *.example.com)")]
    TooBroad(String),
    /// A URL where a host name was expected.
    #[error("{0:?} is a URL; give the host name alone (e.g. api.example.com)")]
    Url(String),
    /// `host:port` where a host name was expected.
    #[error(
        "{0:?} has a port; give the host name alone: a host is allowed on every port (limit ports with an egress rule, e.g. allow@api.example.com:tcp:443)"
    )]
    Port(String),
    /// An IP address where a host name was expected.
    #[error(
        "{0:?} is an IP address; name the host instead: a value goes only where the TLS server name, the Host and a verified certificate agree on a name, and clients send no server name to an address, so an address never qualifies"
    )]
    Address(String),
}

/// A canonical domain name: lower-case ASCII, no trailing dot.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

impl TryFrom<String> for DomainName {
    type Error = DomainError;
    fn try_from(s: String) -> Result<DomainName, DomainError> {
        DomainName::parse(&s)
    }
}

impl From<DomainName> for String {
    fn from(d: DomainName) -> String {
        d.0
    }
}

impl DomainName {
    /// Parse and canonicalise (lower-case; one trailing dot allowed and dropped).
    pub fn parse(input: &str) -> Result<DomainName, DomainError> {
        let name = input.strip_suffix('.').unwrap_or(input);
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(DomainError::Malformed(input.to_owned()));
        }
        for label in name.split('.') {
            if label.is_empty() || label.len() > MAX_LABEL_LEN {
                return Err(DomainError::Malformed(input.to_owned()));
            }
            if label.contains('*') {
                return Err(DomainError::Wildcard(input.to_owned()));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(DomainError::BadCharacter(input.to_owned()));
            }
        }
        Ok(DomainName(name.to_ascii_lowercase()))
    }

    /// Parse a host name a user configured (an allowed or passthrough host): like
    /// [`DomainName::parse`], with a clear refusal for what users write by mistake in its
    /// place: a URL, `host:port`, an IP address.
    pub fn parse_host(input: &str) -> Result<DomainName, DomainError> {
        let owned = || input.to_owned();
        if input.contains("://") || input.contains('/') {
            return Err(DomainError::Url(owned()));
        }
        let bare = input.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<std::net::IpAddr>().is_ok() {
            return Err(DomainError::Address(owned()));
        }
        if let Some((host, port)) = input.rsplit_once(':')
            && !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(
                if host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok()
                {
                    DomainError::Address(owned())
                } else {
                    DomainError::Port(owned())
                },
            );
        }
        DomainName::parse(input)
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` is `suffix` or a subdomain of it (on a label boundary).
    pub fn is_within(&self, suffix: &DomainName) -> bool {
        let (me, s) = (self.0.as_str(), suffix.0.as_str());
        me == s
            || (me.len() > s.len()
                && me.ends_with(s)
                && me.as_bytes()[me.len() - s.len() - 1] == b'.')
    }

    /// Number of labels.
    pub fn label_count(&self) -> usize {
        self.0.split('.').count()
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A host pattern: an exact name, or `*.suffix` (the suffix itself and any subdomain).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum HostPattern {
    /// Exact name.
    Exact(DomainName),
    /// `*.suffix`.
    Suffix(DomainName),
}

impl TryFrom<String> for HostPattern {
    type Error = DomainError;
    fn try_from(s: String) -> Result<HostPattern, DomainError> {
        HostPattern::parse(&s)
    }
}

impl From<HostPattern> for String {
    fn from(p: HostPattern) -> String {
        p.to_string()
    }
}

impl HostPattern {
    /// Parse `name` or `*.suffix`.
    pub fn parse(input: &str) -> Result<HostPattern, DomainError> {
        match input.strip_prefix("*.") {
            Some(rest) => {
                let suffix = DomainName::parse(rest).map_err(|e| match e {
                    DomainError::Wildcard(_) => DomainError::Wildcard(input.to_owned()),
                    _ => DomainError::Malformed(input.to_owned()),
                })?;
                if suffix.label_count() < 2 {
                    return Err(DomainError::TooBroad(input.to_owned()));
                }
                Ok(HostPattern::Suffix(suffix))
            }
            None => DomainName::parse_host(input).map(HostPattern::Exact),
        }
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &DomainName) -> bool {
        match self {
            HostPattern::Exact(n) => n == name,
            HostPattern::Suffix(s) => name.is_within(s),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(n) => write!(f, "{n}"),
            HostPattern::Suffix(s) => write!(f, "*.{s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    #[test]
    fn canonicalises() {
        assert_eq!(d("API.OpenAI.com.").as_str(), "api.openai.com");
        assert_eq!(d("_dmarc.example.com").as_str(), "_dmarc.example.com");
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in [
            "",
            ".",
            "a..b",
            ".a",
            &"a".repeat(64),
            &format!("{}.com", "a.".repeat(127)),
        ] {
            assert!(DomainName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            DomainName::parse("exämple.com"),
            Err(DomainError::BadCharacter(_))
        ));
        assert!(matches!(
            DomainName::parse("a b.com"),
            Err(DomainError::BadCharacter(_))
        ));
        assert!(matches!(
            DomainName::parse("a.*.com"),
            Err(DomainError::Wildcard(_))
        ));
        assert!(matches!(
            HostPattern::parse("*.com"),
            Err(DomainError::TooBroad(_))
        ));
        assert!(matches!(
            HostPattern::parse("*.*.example.com"),
            Err(DomainError::Wildcard(_))
        ));
        assert!(matches!(
            HostPattern::parse("*example.com"),
            Err(DomainError::Wildcard(_))
        ));
    }

    #[test]
    fn suffix_matches_on_label_boundaries_only() {
        let p = HostPattern::parse("*.Example.com").unwrap();
        assert!(p.matches(&d("example.com")));
        assert!(p.matches(&d("api.example.com")));
        assert!(p.matches(&d("a.b.EXAMPLE.com")));
        assert!(!p.matches(&d("evilexample.com")));
        assert!(!p.matches(&d("example.com.evil.net")));
        assert!(!p.matches(&d("com")));
        let e = HostPattern::parse("api.example.com").unwrap();
        assert!(e.matches(&d("API.example.com")));
        assert!(!e.matches(&d("x.api.example.com")));
    }

    proptest::proptest! {
        #[test]
        fn within_agrees_with_label_comparison(
            a in proptest::collection::vec("[a-z0-9]{1,5}", 1..5),
            b in proptest::collection::vec("[a-z0-9]{1,5}", 1..5),
        ) {
            let name = d(&a.join("."));
            let suffix = d(&b.join("."));
            let expected = a.len() >= b.len() && a[a.len() - b.len()..] == b[..];
            proptest::prop_assert_eq!(name.is_within(&suffix), expected);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = DomainName::parse(&s);
            let _ = HostPattern::parse(&s);
        }
    }
}
