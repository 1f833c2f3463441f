//! [`SecretBuilder`] and [`ViolationActionBuilder`]: the reference SDK's secret API, in
//! snake_case.
//!
//! ```no_run
//! # async fn demo() -> Result<(), standin::Error> {
//! let sandbox = standin::Sandbox::builder("agent")
//!     .secret(|s| {
//!         s.env("OPENAI_API_KEY") // the sandbox sees $MSB_OPENAI_API_KEY
//!             .value(std::env::var("OPENAI_API_KEY").unwrap_or_default())
//!             .allow_host("api.openai.com") // the real value only reaches this host
//!     })
//!     .command(["python3", "agent.py"])
//!     .create()
//!     .await?;
//! # Ok(()) }
//! ```

use crate::Error;
use standin_policy::egress::{DomainName, HostPattern};
use standin_policy::secrets::SecretEntry;
use standin_policy::secrets::{
    AwsSigV4, default_placeholder, shaped_placeholder, validate_env_name,
};
pub use standin_policy::secrets::{
    Refusal, SecretInjection, SecretValue, ViolationAction, ViolationPolicy,
};

/// Builder for one secret. `env`, `value` and at least one allowed host are required; what
/// is missing is reported when the sandbox is created.
///
/// ```no_run
/// # async fn demo(token: String) -> Result<(), standin::Error> {
/// let sandbox = standin::Sandbox::builder("agent")
///     .secret(|s| {
///         s.env("GITHUB_TOKEN")
///             .value(token)
///             .allow_host("api.github.com")
///             .allow_host_pattern("*.githubusercontent.com")
///             .inject_query(true) // also in query strings (off by default)
///             .on_violation(|v| v.block_and_terminate())
///     })
///     .create()
///     .await?;
/// # let _ = sandbox;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SecretBuilder {
    env: Option<String>,
    value: Option<SecretValue>,
    placeholder: Option<String>,
    hosts: Vec<DomainName>,
    patterns: Vec<HostPattern>,
    any_host: bool,
    require_tls_identity: bool,
    injection: SecretInjection,
    on_violation: Option<ViolationPolicy>,
    aws: Option<AwsSigV4>,
    require: bool,
    shaped: bool,
    errors: Vec<String>,
}

impl Default for SecretBuilder {
    fn default() -> Self {
        SecretBuilder {
            env: None,
            value: None,
            placeholder: None,
            hosts: Vec::new(),
            patterns: Vec::new(),
            any_host: false,
            require_tls_identity: true,
            injection: SecretInjection::default(),
            on_violation: None,
            aws: None,
            require: false,
            shaped: false,
            errors: Vec::new(),
        }
    }
}

impl SecretBuilder {
    /// A new, empty builder.
    pub fn new() -> SecretBuilder {
        SecretBuilder::default()
    }

    /// The environment variable that holds the placeholder inside the sandbox (non-empty, no
    /// `=` or NUL). Required.
    pub fn env(mut self, name: &str) -> Self {
        self.env = Some(name.to_owned());
        self
    }

    /// The real value. It never enters the sandbox. Required.
    pub fn value(mut self, value: impl Into<Vec<u8>>) -> Self {
        self.value = Some(SecretValue::new(value));
        self
    }

    /// Override the placeholder (default `$MSB_<env>`): 1 to 1024 bytes, no NUL, CR or LF.
    pub fn placeholder(mut self, placeholder: &str) -> Self {
        self.placeholder = Some(placeholder.to_owned());
        self
    }

    /// An exact host that may receive the real value (ASCII case-insensitive).
    pub fn allow_host(mut self, host: &str) -> Self {
        match DomainName::parse_host(host) {
            Ok(h) => self.hosts.push(h),
            Err(e) => self.errors.push(format!("allow_host({host:?}): {e}")),
        }
        self
    }

    /// A `*.suffix` pattern: the suffix itself and any subdomain may receive the real value.
    pub fn allow_host_pattern(mut self, pattern: &str) -> Self {
        match parse_pattern(pattern, "allow_host_pattern", "allow_host") {
            Ok(p) => self.patterns.push(p),
            Err(e) => self.errors.push(e),
        }
        self
    }

    /// Options that weaken the guarantees a secret has; each use should be audited
    /// (`grep dangerous`).
    ///
    /// ```
    /// let s = standin::SecretBuilder::new()
    ///     .env("TOKEN")
    ///     .value("t-123")
    ///     .dangerous()
    ///     .allow_any_host();
    /// # let _ = s;
    /// ```
    pub fn dangerous(self) -> DangerousSecretBuilder {
        DangerousSecretBuilder(self)
    }

    /// Substitute only on intercepted TLS with a verified upstream (default `true`).
    pub fn require_tls_identity(mut self, enabled: bool) -> Self {
        self.require_tls_identity = enabled;
        self
    }

    /// Substitute in header values (default `true`).
    pub fn inject_headers(mut self, enabled: bool) -> Self {
        self.injection.headers = enabled;
        self
    }

    /// Substitute inside `Authorization: Basic` credentials (default `true`).
    pub fn inject_basic_auth(mut self, enabled: bool) -> Self {
        self.injection.basic_auth = enabled;
        self
    }

    /// Substitute in the URL query (default `false`).
    pub fn inject_query(mut self, enabled: bool) -> Self {
        self.injection.query_params = enabled;
        self
    }

    /// Substitute in identity-encoded request bodies (default `false`).
    pub fn inject_body(mut self, enabled: bool) -> Self {
        self.injection.body = enabled;
        self
    }

    /// Declare the secret an AWS credential: the value is the secret access key, and
    /// `access_key_id` (public; the sandbox sees it as it is) names it. The key is never
    /// written into a request: SigV4 requests signed with this key ID (by boto3, the AWS CLI,
    /// any AWS SDK using the placeholder as its secret key) are signed afresh with the real
    /// key, for the allowed hosts only. A session token, if any, is a second, ordinary secret
    /// for the same hosts (its placeholder in `X-Amz-Security-Token` is substituted, then
    /// signed).
    pub fn aws_sigv4(mut self, access_key_id: &str) -> Self {
        self.aws = Some(AwsSigV4 {
            access_key_id: access_key_id.to_owned(),
            regions: Vec::new(),
            services: Vec::new(),
        });
        self
    }

    /// With [`aws_sigv4`](Self::aws_sigv4): a region requests may be signed for (repeat for
    /// more; none: any).
    pub fn aws_region(mut self, region: &str) -> Self {
        match &mut self.aws {
            Some(a) => a.regions.push(region.to_owned()),
            None => self.errors.push(format!(
                "aws_region({region:?}): call aws_sigv4(access_key_id) first"
            )),
        }
        self
    }

    /// With [`aws_sigv4`](Self::aws_sigv4): a service requests may be signed for (`s3`,
    /// `sts`, …; repeat for more; none: any).
    pub fn aws_service(mut self, service: &str) -> Self {
        match &mut self.aws {
            Some(a) => a.services.push(service.to_owned()),
            None => self.errors.push(format!(
                "aws_service({service:?}): call aws_sigv4(access_key_id) first"
            )),
        }
        self
    }

    /// The allowed hosts must receive this secret (default `false`): a request to one of them
    /// that does not carry the placeholder (in an enabled injection scope) or this AWS
    /// credential's signature is refused, so the agent cannot use credentials of its own
    /// there.
    pub fn require(mut self, enabled: bool) -> Self {
        self.require = enabled;
        self
    }

    /// A placeholder shaped like the value's kind of token, for clients that check formats
    /// (`gh` wants `ghp_…`, Slack SDKs `xoxb-…`): the value's public prefix, `MSB`, the env
    /// name, padded to the value's length (`ghp_MSBGITHUBTOKENxxxx…`). It reveals the prefix
    /// and the length of the value inside the sandbox, nothing else.
    pub fn token_shaped_placeholder(mut self) -> Self {
        self.shaped = true;
        self
    }

    /// This secret's own violation policy (overrides the sandbox-wide one).
    pub fn on_violation(
        mut self,
        configure: impl FnOnce(ViolationActionBuilder) -> ViolationActionBuilder,
    ) -> Self {
        let (policy, errors) = configure(ViolationActionBuilder::default()).finish();
        self.errors.extend(errors);
        self.on_violation = Some(policy);
        self
    }

    /// The entry, or an error naming every problem (the reference's `build()`; the sandbox
    /// builders call it for you).
    pub fn build(self) -> Result<SecretEntry, Error> {
        let mut errors = self.errors;
        let env = match self.env {
            Some(e) => match validate_env_name(&e) {
                Ok(()) => e,
                Err(err) => {
                    errors.push(err.to_string());
                    e
                }
            },
            None => {
                errors.push("secret: env() is required".into());
                String::new()
            }
        };
        let Some(value) = self.value else {
            errors.push(format!("secret {env}: value() is required"));
            return Err(Error::Config { problems: errors });
        };
        if self.shaped && self.placeholder.is_some() {
            errors.push(format!(
                "secret {env}: placeholder() and token_shaped_placeholder() both choose the placeholder; keep one"
            ));
        }
        let placeholder = match self.placeholder {
            Some(p) => p,
            None if self.shaped => shaped_placeholder(&env, value.expose()),
            None => default_placeholder(&env),
        };
        let entry = SecretEntry {
            placeholder,
            env_var: env,
            value,
            allowed_hosts: self.hosts,
            allowed_host_patterns: self.patterns,
            allow_any_host: self.any_host,
            require_tls_identity: self.require_tls_identity,
            injection: self.injection,
            on_violation: self.on_violation,
            aws: self.aws,
            require: self.require,
            retired: Vec::new(),
        };
        if errors.is_empty()
            && let Err(e) = entry.validate()
        {
            errors.push(e.to_string());
        }
        if errors.is_empty() {
            Ok(entry)
        } else {
            Err(Error::Config { problems: errors })
        }
    }
}

/// Builder for a violation policy. `block*` sets the base action, `passthrough*` adds hosts
/// that receive the placeholder unchanged (never the value); in any order.
///
/// ```no_run
/// # async fn demo() -> Result<(), standin::Error> {
/// let sandbox = standin::Sandbox::builder("agent")
///     .secret_env("OPENAI_API_KEY", "sk-…", "api.openai.com")
///     .network(|n| {
///         n.on_secret_violation(|v| {
///             v.block_and_log()
///                 .passthrough_host("traces.example.com")
///                 .passthrough_host_pattern("*.logs.example.com")
///         })
///     })
///     .create()
///     .await?;
/// # let _ = sandbox;
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct ViolationActionBuilder {
    policy: ViolationPolicy,
    errors: Vec<String>,
}

impl ViolationActionBuilder {
    /// Drop the request; the sandbox sees a connection reset (the default).
    pub fn block(mut self) -> Self {
        self.policy.action = Some(ViolationAction::Block);
        self
    }

    /// Block, plus a host-side warning and an event.
    pub fn block_and_log(mut self) -> Self {
        self.policy.action = Some(ViolationAction::BlockAndLog);
        self
    }

    /// Block, log an error, and kill the whole sandbox.
    pub fn block_and_terminate(mut self) -> Self {
        self.policy.action = Some(ViolationAction::BlockAndTerminate);
        self
    }

    /// Answer a blocked HTTP request with `403 Forbidden` and a short text naming the rule
    /// (never a value), instead of a connection reset; nothing reaches the destination.
    /// Streams that are not HTTP are still reset, and block-and-terminate still kills the
    /// sandbox. Set on the sandbox-wide policy (`on_secret_violation`), it also answers
    /// egress denials.
    pub fn respond_forbidden(mut self) -> Self {
        self.policy.respond = Some(Refusal::Forbidden);
        self
    }

    /// This exact host receives the placeholder unchanged instead of a block.
    pub fn passthrough_host(mut self, host: &str) -> Self {
        match DomainName::parse_host(host) {
            Ok(h) => self.policy.passthrough_hosts.push(h),
            Err(e) => self.errors.push(format!("passthrough_host({host:?}): {e}")),
        }
        self
    }

    /// Hosts matching `*.suffix` receive the placeholder unchanged.
    pub fn passthrough_host_pattern(mut self, pattern: &str) -> Self {
        match parse_pattern(pattern, "passthrough_host_pattern", "passthrough_host") {
            Ok(p) => self.policy.passthrough_patterns.push(p),
            Err(e) => self.errors.push(e),
        }
        self
    }

    /// Options that weaken the guarantees of the violation policy; each use should be
    /// audited (`grep dangerous`).
    pub fn dangerous(self) -> DangerousViolationActionBuilder {
        DangerousViolationActionBuilder(self)
    }

    pub(crate) fn finish(self) -> (ViolationPolicy, Vec<String>) {
        (self.policy, self.errors)
    }
}

/// The options of a [`SecretBuilder`] that weaken its guarantees, from
/// [`SecretBuilder::dangerous`].
#[derive(Debug)]
pub struct DangerousSecretBuilder(SecretBuilder);

impl DangerousSecretBuilder {
    /// Substitute the real value for any host, without host identity checks: any destination
    /// the sandbox names can receive it.
    pub fn allow_any_host(mut self) -> SecretBuilder {
        self.0.any_host = true;
        self.0
    }
}

/// The options of a [`ViolationActionBuilder`] that weaken its guarantees, from
/// [`ViolationActionBuilder::dangerous`].
#[derive(Debug)]
pub struct DangerousViolationActionBuilder(ViolationActionBuilder);

impl DangerousViolationActionBuilder {
    /// Every host receives the placeholder unchanged: nothing is ever blocked as a
    /// violation.
    pub fn passthrough_all_hosts(mut self) -> ViolationActionBuilder {
        self.0.policy.passthrough_all = true;
        self.0
    }
}

fn parse_pattern(pattern: &str, call: &str, exact: &str) -> Result<HostPattern, String> {
    if !pattern.starts_with("*.") {
        return Err(format!(
            "{call}({pattern:?}): a pattern starts with '*.' (e.g. *.example.com); use {exact} for an exact name"
        ));
    }
    HostPattern::parse(pattern).map_err(|e| format!("{call}({pattern:?}): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_with_reference_defaults() {
        let e = SecretBuilder::new()
            .env("OPENAI_API_KEY")
            .value("sk-1")
            .allow_host("api.openai.com")
            .build()
            .unwrap();
        assert_eq!(e.placeholder, "$MSB_OPENAI_API_KEY");
        assert!(e.require_tls_identity);
        assert_eq!(e.injection, SecretInjection::default());
        assert!(e.on_violation.is_none());
        assert!(!e.allow_any_host);
    }

    #[test]
    fn explains_what_is_missing() {
        let err = SecretBuilder::new().value("v").build().unwrap_err();
        assert!(err.to_string().contains("env() is required"), "{err}");
        let err = SecretBuilder::new().env("K").build().unwrap_err();
        assert!(err.to_string().contains("value() is required"), "{err}");
        let err = SecretBuilder::new()
            .env("K")
            .value("v")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("allowed host"), "{err}");
        let err = SecretBuilder::new()
            .env("K")
            .value("v")
            .allow_host_pattern("api.example.com")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("use allow_host"), "{err}");
        let err = SecretBuilder::new()
            .env("K")
            .value("a\r\nb")
            .allow_host("a.example")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("CR, LF or NUL"), "{err}");
        assert!(!err.to_string().contains("a\r\nb"));
    }

    #[test]
    fn dangerous_options_do_what_they_say() {
        let err = SecretBuilder::new().env("K").value("v").build();
        assert!(err.is_err(), "no host and not dangerous: refused");
        let any = SecretBuilder::new()
            .env("K")
            .value("v")
            .dangerous()
            .allow_any_host()
            .build()
            .unwrap();
        assert!(any.allow_any_host);
        let (p, _) = ViolationActionBuilder::default().finish();
        assert!(!p.passthrough_all);
        let (p, _) = ViolationActionBuilder::default()
            .dangerous()
            .passthrough_all_hosts()
            .finish();
        assert!(p.passthrough_all);
    }

    #[test]
    fn block_and_passthrough_in_any_order() {
        let (a, _) = ViolationActionBuilder::default()
            .passthrough_host("trace.example")
            .block_and_log()
            .finish();
        let (b, _) = ViolationActionBuilder::default()
            .block_and_log()
            .passthrough_host("trace.example")
            .finish();
        assert_eq!(a, b);
        assert_eq!(a.action, Some(ViolationAction::BlockAndLog));
        assert_eq!(a.passthrough_hosts.len(), 1);
    }
}
