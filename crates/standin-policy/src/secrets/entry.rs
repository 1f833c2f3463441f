//! [`SecretEntry`] and [`SecretInjection`]: one secret, where it may become real, and where in
//! a request it may be substituted.

use super::aws::{AwsError, AwsSigV4};
use super::value::SecretValue;
use super::violation::ViolationPolicy;
use crate::egress::{DomainName, HostPattern};
use thiserror::Error;

/// Longest placeholder accepted, in bytes.
pub const MAX_PLACEHOLDER_BYTES: usize = 1024;
/// Longest secret value accepted, in bytes (a header line has to carry it).
pub const MAX_VALUE_BYTES: usize = 16 * 1024;
/// Prefix of generated placeholders: `$MSB_<ENV>`, as in the reference SDK.
pub const PLACEHOLDER_PREFIX: &str = "$MSB_";

/// Where in a request the real value may be substituted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretInjection {
    /// Anywhere in a header value (`Authorization: Bearer …`, `X-Api-Key: …`). Default: on.
    pub headers: bool,
    /// Inside `Authorization: Basic <base64>` credentials: decoded, substituted, re-encoded.
    /// Default: on.
    pub basic_auth: bool,
    /// In the URL query string (the value is percent-encoded). Default: off.
    pub query_params: bool,
    /// In identity-encoded request bodies (fixed-length or chunked). Default: off.
    pub body: bool,
}

impl Default for SecretInjection {
    fn default() -> Self {
        SecretInjection {
            headers: true,
            basic_auth: true,
            query_params: false,
            body: false,
        }
    }
}

/// One secret.
#[derive(Debug, Clone)]
pub struct SecretEntry {
    /// Environment variable that holds the placeholder inside the sandbox.
    pub env_var: String,
    /// The real value (host side only).
    pub value: SecretValue,
    /// The string the sandbox sees instead of the value (default `$MSB_<env_var>`).
    pub placeholder: String,
    /// Hosts that may receive the real value (exact, ASCII case-insensitive).
    pub allowed_hosts: Vec<DomainName>,
    /// `*.suffix` patterns that may receive the real value.
    pub allowed_host_patterns: Vec<HostPattern>,
    /// Substitute for any host (skips host identity checks).
    pub allow_any_host: bool,
    /// Substitute only on intercepted TLS with a verified upstream. Default: on.
    pub require_tls_identity: bool,
    /// Where in a request the value may be substituted.
    pub injection: SecretInjection,
    /// Overrides the sandbox-wide violation policy for this secret.
    pub on_violation: Option<ViolationPolicy>,
    /// An AWS credential: the value is a secret access key, never written into a request;
    /// requests signed with this access key ID are re-signed with it instead.
    pub aws: Option<AwsSigV4>,
    /// The allowed hosts must receive this secret: a request to one of them that does not
    /// carry the placeholder (or the access key ID's signature) is refused.
    pub require: bool,
    /// Values this secret had before a rotation, scrubbed from responses for a grace period
    /// and never substituted.
    pub retired: Vec<SecretValue>,
}

/// Why a secret (or a set of secrets) was rejected. Messages name the secret and the fix;
/// they never contain a value.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SecretError {
    /// No env name given.
    #[error("secret: env() is required (the variable the sandbox sees the placeholder in)")]
    MissingEnv,
    /// The env name is empty or contains `=` or NUL.
    #[error("secret env {0:?}: a variable name must be non-empty and contain no '=' or NUL")]
    BadEnv(String),
    /// The env name is one the sandbox itself needs (`PATH`, `HOME`, a CA variable).
    #[error(
        "secret env {0:?}: the sandbox sets {0} itself ({1}); a secret there would break it or be overwritten. Give the secret its own name (the placeholder is $MSB_<name>)"
    )]
    ReservedEnv(String, &'static str),
    /// No value.
    #[error("secret {0}: value() is required")]
    MissingValue(String),
    /// The value has CR, LF or NUL (it could forge header lines), or is too long.
    #[error(
        "secret {0}: the value contains CR, LF or NUL, or is longer than {MAX_VALUE_BYTES} bytes; such a value could forge HTTP header lines and is refused"
    )]
    BadValue(String),
    /// The value is empty.
    #[error("secret {0}: the value is empty")]
    EmptyValue(String),
    /// The placeholder is empty, too long, or has NUL, CR or LF.
    #[error(
        "secret {0}: the placeholder must be 1 to {MAX_PLACEHOLDER_BYTES} bytes without NUL, CR or LF"
    )]
    BadPlaceholder(String),
    /// The placeholder equals or contains the value (substitution would be meaningless and
    /// the value would be visible in the sandbox).
    #[error("secret {0}: the placeholder contains the real value; choose another placeholder")]
    PlaceholderRevealsValue(String),
    /// No allowed host.
    #[error(
        "secret {0}: give at least one allowed host (allow_host or allow_host_pattern; for any host at all: dangerous().allow_any_host() in the SDK, allow_any_host_dangerous = true in a config file)"
    )]
    NoAllowedHost(String),
    /// A host or pattern did not parse.
    #[error("secret {secret}: {what}")]
    BadHost {
        /// Env name of the secret.
        secret: String,
        /// The parse error.
        what: String,
    },
    /// Two secrets share a placeholder.
    #[error("secrets {0} and {1} use the same placeholder; each secret needs its own")]
    DuplicatePlaceholder(String, String),
    /// Two secrets share an env name.
    #[error("secret {0} is defined twice")]
    DuplicateEnv(String),
    /// The AWS declaration is invalid.
    #[error("secret {secret}: {error}")]
    Aws {
        /// Env name of the secret.
        secret: String,
        /// What is wrong.
        error: AwsError,
    },
    /// Two secrets declare the same AWS access key ID.
    #[error(
        "secrets {0} and {1} declare the same AWS access key ID; a key ID belongs to one secret"
    )]
    DuplicateKeyId(String, String),
    /// `require` or an AWS credential together with allow-any-host.
    #[error("secret {0}: {1} needs named allowed hosts; it cannot be combined with allow-any-host")]
    NeedsNamedHosts(String, &'static str),
    /// `require` on a secret that can only be substituted in bodies.
    #[error(
        "secret {0}: require checks the request head (headers, Basic credentials, query, an AWS signature); enable one of those injections or drop require"
    )]
    RequireNeedsHead(String),
    /// Rotation named a secret that does not exist.
    #[error(
        "no secret {0} in this sandbox (a rotation can only replace an existing secret's value)"
    )]
    UnknownSecret(String),
}

/// Check an env name: non-empty, no `=`, no NUL (shell-identifier syntax is not required).
/// Names the sandbox's environment needs for itself are refused too: `PATH`, `HOME`, `TERM`…
/// and the variables that point runtimes at the sandbox CA.
pub fn validate_env_name(name: &str) -> Result<(), SecretError> {
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        return Err(SecretError::BadEnv(name.to_owned()));
    }
    const BASE: [&str; 6] = ["PATH", "HOME", "TERM", "HOSTNAME", "TMPDIR", "LANG"];
    if BASE.contains(&name) {
        return Err(SecretError::ReservedEnv(
            name.to_owned(),
            "every command needs it",
        ));
    }
    if crate::guest_env::ca_variables("", "")
        .iter()
        .any(|(v, _)| *v == name)
    {
        return Err(SecretError::ReservedEnv(
            name.to_owned(),
            "it points TLS clients at the sandbox's CA, without which no intercepted connection verifies",
        ));
    }
    Ok(())
}

/// The default placeholder for `env`: `$MSB_<env>`.
pub fn default_placeholder(env: &str) -> String {
    format!("{PLACEHOLDER_PREFIX}{env}")
}

impl SecretEntry {
    /// Check the entry on its own (see [`SecretError`]).
    pub fn validate(&self) -> Result<(), SecretError> {
        validate_env_name(&self.env_var)?;
        let name = || self.env_var.clone();
        let v = self.value.expose();
        if v.is_empty() {
            return Err(SecretError::EmptyValue(name()));
        }
        if v.len() > MAX_VALUE_BYTES || v.iter().any(|b| matches!(b, b'\r' | b'\n' | b'\0')) {
            return Err(SecretError::BadValue(name()));
        }
        let p = self.placeholder.as_bytes();
        if p.is_empty()
            || p.len() > MAX_PLACEHOLDER_BYTES
            || p.iter().any(|b| matches!(b, b'\r' | b'\n' | b'\0'))
        {
            return Err(SecretError::BadPlaceholder(name()));
        }
        if contains(p, v) {
            return Err(SecretError::PlaceholderRevealsValue(name()));
        }
        if self.allowed_hosts.is_empty()
            && self.allowed_host_patterns.is_empty()
            && !self.allow_any_host
        {
            return Err(SecretError::NoAllowedHost(name()));
        }
        if let Some(aws) = &self.aws {
            aws.validate().map_err(|error| SecretError::Aws {
                secret: name(),
                error,
            })?;
            if self.allow_any_host {
                return Err(SecretError::NeedsNamedHosts(name(), "an AWS credential"));
            }
        }
        if self.require && self.allow_any_host {
            return Err(SecretError::NeedsNamedHosts(name(), "require"));
        }
        let head =
            self.injection.headers || self.injection.basic_auth || self.injection.query_params;
        if self.require && self.aws.is_none() && !head {
            return Err(SecretError::RequireNeedsHead(name()));
        }
        Ok(())
    }

    /// Check a replacement value for this secret (rotation): the rules of
    /// [`validate`](Self::validate) for values.
    pub fn validate_value(&self, value: &SecretValue) -> Result<(), SecretError> {
        let mut probe = self.clone();
        probe.value = value.clone();
        probe.validate()
    }

    /// Whether `host` is on this secret's allow list (exact, pattern, or any).
    pub fn allows(&self, host: &DomainName) -> bool {
        self.allow_any_host
            || self.allowed_hosts.iter().any(|h| h == host)
            || self.allowed_host_patterns.iter().any(|p| p.matches(host))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.len() <= haystack.len() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn entry(env: &str, value: &str, host: &str) -> SecretEntry {
        SecretEntry {
            env_var: env.into(),
            value: SecretValue::new(value),
            placeholder: default_placeholder(env),
            allowed_hosts: vec![DomainName::parse(host).unwrap()],
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

    #[test]
    fn defaults_match_the_reference() {
        let i = SecretInjection::default();
        assert!(i.headers && i.basic_auth && !i.query_params && !i.body);
        assert_eq!(default_placeholder("OPENAI_API_KEY"), "$MSB_OPENAI_API_KEY");
    }

    #[test]
    fn validates() {
        assert!(entry("K", "v", "a.example").validate().is_ok());
        let mut e = entry("K", "v\r\nX-Evil: 1", "a.example");
        assert_eq!(e.validate(), Err(SecretError::BadValue("K".into())));
        e = entry("K", "v", "a.example");
        e.placeholder = "x".repeat(1025);
        assert!(matches!(e.validate(), Err(SecretError::BadPlaceholder(_))));
        e.placeholder = "x".repeat(1024);
        assert!(e.validate().is_ok());
        e.placeholder = "a\nb".into();
        assert!(matches!(e.validate(), Err(SecretError::BadPlaceholder(_))));
        e.placeholder = String::new();
        assert!(matches!(e.validate(), Err(SecretError::BadPlaceholder(_))));
        e = entry("K", "v", "a.example");
        e.allowed_hosts.clear();
        assert!(matches!(e.validate(), Err(SecretError::NoAllowedHost(_))));
        e.allow_any_host = true;
        assert!(e.validate().is_ok());
        assert!(validate_env_name("A=B").is_err());
        assert!(validate_env_name("").is_err());
        assert!(validate_env_name("a-b.c").is_ok());
        e = entry("K", "MSB", "a.example");
        assert!(matches!(
            e.validate(),
            Err(SecretError::PlaceholderRevealsValue(_))
        ));
    }

    #[test]
    fn matches_hosts_case_insensitively_on_label_boundaries() {
        let mut e = entry("K", "v", "API.Example.com");
        e.allowed_host_patterns
            .push(HostPattern::parse("*.googleapis.com").unwrap());
        let n = |s: &str| DomainName::parse(s).unwrap();
        assert!(e.allows(&n("api.example.COM")));
        assert!(!e.allows(&n("x.api.example.com")));
        assert!(e.allows(&n("googleapis.com")));
        assert!(e.allows(&n("a.b.googleapis.com")));
        assert!(!e.allows(&n("evilgoogleapis.com")));
    }
}
