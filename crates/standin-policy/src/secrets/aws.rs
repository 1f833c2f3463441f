//! AWS Signature Version 4 credentials: the declaration ([`AwsSigV4`]) and the reading of
//! what a client sent ([`SigV4Authorization`], [`presigned_key_id`], [`PayloadMode`]).
//!
//! A SigV4 client never puts its secret access key on the wire: it uses it as an HMAC key.
//! So the placeholder of such a secret cannot be substituted; instead the boundary recognises
//! a request signed with the credential's (public) access key ID and signs it afresh with the
//! real key. Recognition is lenient (any case of the algorithm name, any whitespace, the
//! credential anywhere in the header), because a request that reaches an allowed host with
//! our key ID and is *not* re-signed would only fail; one that reaches another host must be
//! seen to be reported. Re-signing itself is strict: what does not parse exactly is refused.

use thiserror::Error;

/// Longest access key ID accepted (AWS documents 16 to 128 characters).
pub const MAX_ACCESS_KEY_ID: usize = 128;
/// Longest `Authorization` value the SigV4 reader looks at (longer ones are not SigV4 we can
/// re-sign, and are refused when they name one of our key IDs).
pub const MAX_AUTHORIZATION: usize = 8 * 1024;
/// Most signed header names read from `SignedHeaders`.
pub const MAX_SIGNED_HEADERS: usize = 64;

/// An AWS credential: the access key ID is public; the secret access key is the secret's
/// value. Requests signed with `access_key_id` are re-signed with the value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AwsSigV4 {
    /// The access key ID (`AKIA…`, `ASIA…`), as the sandbox sees it too.
    pub access_key_id: String,
    /// Regions a request may be signed for (empty: any).
    pub regions: Vec<String>,
    /// Services a request may be signed for (empty: any).
    pub services: Vec<String>,
}

/// Why an AWS declaration was rejected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AwsError {
    /// The access key ID is not 16 to 128 ASCII letters and digits.
    #[error(
        "the AWS access key ID must be 16 to {MAX_ACCESS_KEY_ID} ASCII letters and digits (like AKIAIOSFODNN7EXAMPLE)"
    )]
    BadKeyId,
    /// A region or service name is not a lower-case name.
    #[error(
        "AWS region and service names are lower-case letters, digits and '-' (like eu-west-1, s3); got {0:?}"
    )]
    BadName(String),
}

impl AwsSigV4 {
    /// Check the declaration.
    pub fn validate(&self) -> Result<(), AwsError> {
        let id = self.access_key_id.as_bytes();
        if !(16..=MAX_ACCESS_KEY_ID).contains(&id.len())
            || !id.iter().all(u8::is_ascii_alphanumeric)
        {
            return Err(AwsError::BadKeyId);
        }
        for n in self.regions.iter().chain(&self.services) {
            let ok = !n.is_empty()
                && n.len() <= 64
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return Err(AwsError::BadName(n.clone()));
            }
        }
        Ok(())
    }

    /// Whether a request signed for `region` and `service` may be re-signed.
    pub fn allows_scope(&self, region: &str, service: &str) -> bool {
        (self.regions.is_empty() || self.regions.iter().any(|r| r == region))
            && (self.services.is_empty() || self.services.iter().any(|s| s == service))
    }
}

/// A parsed `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV4Authorization {
    /// The access key ID of the credential scope.
    pub access_key_id: String,
    /// `YYYYMMDD` of the credential scope.
    pub date: String,
    /// Region of the credential scope.
    pub region: String,
    /// Service of the credential scope.
    pub service: String,
    /// Lower-case signed header names, in the client's order.
    pub signed_headers: Vec<String>,
}

/// Whether a header value claims to be SigV4 (`AWS4-` scheme, any case, leading whitespace
/// allowed): such a value either parses with [`SigV4Authorization::parse`] or, if it names
/// one of our key IDs ([`mentions_key_id`]), is refused.
pub fn claims_sigv4(value: &[u8]) -> bool {
    let v = value.trim_ascii_start();
    v.len() >= 5 && v[..5].eq_ignore_ascii_case(b"AWS4-")
}

/// Whether `value` contains `key_id` as a whole token (between non-alphanumerics): the
/// lenient check that a malformed SigV4 header was meant for our credential.
pub fn mentions_key_id(value: &[u8], key_id: &str) -> bool {
    let k = key_id.as_bytes();
    if k.is_empty() || value.len() < k.len() {
        return false;
    }
    memchr::memmem::find_iter(value, k).any(|i| {
        let before = i.checked_sub(1).map(|j| value[j]);
        let after = value.get(i + k.len()).copied();
        !before.is_some_and(|b| b.is_ascii_alphanumeric())
            && !after.is_some_and(|b| b.is_ascii_alphanumeric())
    })
}

impl SigV4Authorization {
    /// Parse strictly: exactly `AWS4-HMAC-SHA256` (any case), then `Credential`,
    /// `SignedHeaders` and `Signature` separated by commas (any whitespace), a five-part
    /// credential scope ending in `aws4_request`, a 64-hex-digit signature, and `host` among
    /// the signed headers. `None` for anything else.
    pub fn parse(value: &[u8]) -> Option<SigV4Authorization> {
        if value.len() > MAX_AUTHORIZATION {
            return None;
        }
        let text = std::str::from_utf8(value).ok()?.trim();
        let (scheme, rest) = text.split_once(|c: char| c.is_ascii_whitespace())?;
        if !scheme.eq_ignore_ascii_case("AWS4-HMAC-SHA256") {
            return None;
        }
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (k, v) = part.trim().split_once('=')?;
            let slot = match k.trim() {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed,
                "Signature" => &mut signature,
                _ => return None,
            };
            if slot.replace(v.trim()).is_some() {
                return None;
            }
        }
        let scope: Vec<&str> = credential?.split('/').collect();
        let [key, date, region, service, "aws4_request"] = scope.as_slice() else {
            return None;
        };
        let sig = signature?;
        if sig.len() != 64 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let names = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if !names(region) || !names(service) || key.is_empty() || key.len() > MAX_ACCESS_KEY_ID {
            return None;
        }
        let signed_headers: Vec<String> = signed?.split(';').map(str::to_owned).collect();
        if signed_headers.len() > MAX_SIGNED_HEADERS
            || signed_headers.iter().any(|h| {
                h.is_empty()
                    || !h.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b)
                    })
            })
            || !signed_headers.iter().any(|h| h == "host")
        {
            return None;
        }
        Some(SigV4Authorization {
            access_key_id: (*key).to_owned(),
            date: (*date).to_owned(),
            region: (*region).to_owned(),
            service: (*service).to_owned(),
            signed_headers,
        })
    }
}

/// The access key ID of a presigned URL's query (`X-Amz-Credential=KEY%2F…`, parameter name
/// in any case), if it has one.
pub fn presigned_key_id(query: &[u8]) -> Option<String> {
    for pair in query.split(|&b| b == b'&') {
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        if !pair[..eq].eq_ignore_ascii_case(b"X-Amz-Credential") {
            continue;
        }
        let decoded = percent_decode(&pair[eq + 1..]);
        let key = decoded.split(|&b| b == b'/').next().unwrap_or_default();
        return Some(String::from_utf8_lossy(key).into_owned());
    }
    None
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if s[i] == b'%'
            && i + 2 < s.len()
            && let (Some(h), Some(l)) = (hex(s[i + 1]), hex(s[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// How the client declared its payload (`x-amz-content-sha256`), which the re-signed
/// request keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadMode {
    /// No header: the payload hash is computed over the body (most services but S3).
    Absent,
    /// A lower-case hex SHA-256 of the body.
    Hash(String),
    /// `UNSIGNED-PAYLOAD`.
    Unsigned,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER` (aws-chunked body, unsigned chunks).
    StreamingUnsignedTrailer,
    /// A chunk-signed streaming mode (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, its `-TRAILER`
    /// form, the ECDSA ones): every chunk carries a signature chained to the seed signature.
    ChunkSigned(String),
    /// Anything else.
    Unknown,
}

impl PayloadMode {
    /// Read `x-amz-content-sha256`.
    pub fn from_header(value: Option<&[u8]>) -> PayloadMode {
        let Some(v) = value else {
            return PayloadMode::Absent;
        };
        let v = v.trim_ascii();
        if v.len() == 64 && v.iter().all(u8::is_ascii_hexdigit) {
            return PayloadMode::Hash(String::from_utf8_lossy(v).to_ascii_lowercase());
        }
        match v {
            b"UNSIGNED-PAYLOAD" => PayloadMode::Unsigned,
            b"STREAMING-UNSIGNED-PAYLOAD-TRAILER" => PayloadMode::StreamingUnsignedTrailer,
            _ if v.starts_with(b"STREAMING-") => {
                PayloadMode::ChunkSigned(String::from_utf8_lossy(v).into_owned())
            }
            _ => PayloadMode::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024";

    #[test]
    fn parses_what_botocore_sends() {
        let a = SigV4Authorization::parse(AUTH.as_bytes()).unwrap();
        assert_eq!(a.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!((a.region.as_str(), a.service.as_str()), ("eu-west-1", "s3"));
        assert_eq!(
            a.signed_headers,
            ["host", "x-amz-content-sha256", "x-amz-date"]
        );
        // Any case of the algorithm, any whitespace.
        let loose = AUTH
            .replace("AWS4-HMAC-SHA256 ", "aws4-hmac-sha256\t  ")
            .replace(", ", ",\t");
        assert!(SigV4Authorization::parse(loose.as_bytes()).is_some());
        assert!(claims_sigv4(b"  aws4-anything"));
        assert!(!claims_sigv4(b"Bearer x"));
    }

    #[test]
    fn refuses_what_is_not_exactly_sigv4() {
        for bad in [
            AUTH.replace("aws4_request", "aws4"),
            AUTH.replace("SignedHeaders=host;", "SignedHeaders="),
            AUTH.replace("Signature=fe", "Signature=zz"),
            AUTH.replace("20260101", "2026-01-01"),
            format!("{AUTH}, Extra=1"),
            AUTH.replace("Credential=", "Credential=AKIA/"),
            AUTH.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"),
        ] {
            assert!(SigV4Authorization::parse(bad.as_bytes()).is_none(), "{bad}");
        }
        assert!(SigV4Authorization::parse(&vec![b'a'; MAX_AUTHORIZATION + 1]).is_none());
    }

    #[test]
    fn finds_key_ids() {
        assert!(mentions_key_id(AUTH.as_bytes(), "AKIAIOSFODNN7EXAMPLE"));
        assert!(!mentions_key_id(AUTH.as_bytes(), "AKIAIOSFODNN7EXAMPL"));
        assert_eq!(
            presigned_key_id(b"a=1&x-amz-credential=AKIAIOSFODNN7EXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=00").as_deref(),
            Some("AKIAIOSFODNN7EXAMPLE")
        );
        assert_eq!(presigned_key_id(b"a=1&b=%zz"), None);
    }

    #[test]
    fn payload_modes() {
        let h = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            PayloadMode::from_header(Some(h.as_bytes())),
            PayloadMode::Hash(h.into())
        );
        assert_eq!(PayloadMode::from_header(None), PayloadMode::Absent);
        assert_eq!(
            PayloadMode::from_header(Some(b"UNSIGNED-PAYLOAD")),
            PayloadMode::Unsigned
        );
        assert_eq!(
            PayloadMode::from_header(Some(b"STREAMING-UNSIGNED-PAYLOAD-TRAILER")),
            PayloadMode::StreamingUnsignedTrailer
        );
        assert!(matches!(
            PayloadMode::from_header(Some(b"STREAMING-AWS4-HMAC-SHA256-PAYLOAD")),
            PayloadMode::ChunkSigned(_)
        ));
        assert_eq!(
            PayloadMode::from_header(Some(b"nope")),
            PayloadMode::Unknown
        );
    }

    #[test]
    fn validates_declarations() {
        let mut a = AwsSigV4 {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            regions: vec!["eu-west-1".into()],
            services: vec![],
        };
        assert!(a.validate().is_ok());
        assert!(a.allows_scope("eu-west-1", "s3"));
        assert!(!a.allows_scope("us-east-1", "s3"));
        a.access_key_id = "short".into();
        assert_eq!(a.validate(), Err(AwsError::BadKeyId));
        a.access_key_id = "AKIAIOSFODNN7EXAMPLE".into();
        a.services.push("S3".into());
        assert!(matches!(a.validate(), Err(AwsError::BadName(_))));
    }
}
