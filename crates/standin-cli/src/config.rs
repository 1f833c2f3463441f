//! `--config FILE`: a TOML file that can say everything the flags can.
//!
//! ```toml
//! [sandbox]
//! workdir = "/srv/agent"          # --workdir
//! rootfs = "/srv/rootfs"          # --rootfs
//! image = "python:3.12-slim"      # --image (instead of rootfs)
//! pull = "missing"                # --pull: missing, always, never
//! registry_cas = ["/etc/corp-registry-ca.pem"]   # --registry-ca (repeatable)
//! insecure_registries = ["localhost:5000"]       # --insecure-registry (repeatable)
//! hostname = "agent"              # --hostname
//! mounts = ["/data:/data:ro"]     # --mount (repeatable)
//! env = ["MODE=ci", "TERM"]       # --env (repeatable)
//!
//! [network]
//! enabled = true                  # --no-network sets false
//! default = "deny"                # --net-default
//! rules = ["allow@*.openai.com:tcp:443", "deny@metadata"]   # --net-rule (repeatable)
//! dns_upstreams = ["192.0.2.53", "[2001:db8::53]:5353"]     # --dns-upstream (repeatable)
//! rebind_protection = true
//! idle_timeout_secs = 900                                   # --idle-timeout
//! max_connections = 8192                                    # --max-connections
//! events = "/var/log/standin-events.jsonl"                  # --events
//! events_level = "decisions"                                # --events-level (or "all")
//! events_format = "jsonl"                                   # --events-format (or "ocsf")
//!
//! [secrets]
//! on_violation = "block-and-log"                            # --on-secret-violation
//! passthrough = ["traces.example.com"]                      # --secret-passthrough
//! upstream_cas = ["/etc/corp-root.pem"]                     # --upstream-ca
//! respond = "forbidden"                                     # --violation-response
//!
//! [[secret]]                                                # --secret (repeatable)
//! env = "OPENAI_API_KEY"            # the variable the sandbox sees the placeholder in
//! value_env = "OPENAI_API_KEY"      # read the value from this variable of standin's (default: env)
//! # value_file = "/run/keys/openai" # ... or from this file (trailing newline dropped)
//! placeholder = "$MSB_OPENAI_API_KEY"
//! allow_hosts = ["api.openai.com", "*.openai.azure.com"]
//! allow_any_host_dangerous = false
//! require_tls_identity = true
//! inject = { headers = true, basic_auth = true, query_params = false, body = false }
//! on_violation = "block-and-terminate"  # this secret's own action
//! passthrough = ["traces.example.com"]  # this secret's own passthrough hosts
//! passthrough_all_hosts_dangerous = false
//! require = false                       # --secret-require: these hosts must get this secret
//! token_shaped_placeholder = false      # --secret-shaped: ghp_MSB… instead of $MSB_…
//!
//! [[secret]]                            # an AWS credential (re-signed, never sent)
//! env = "AWS_SECRET_ACCESS_KEY"
//! aws_access_key_id = "AKIAIOSFODNN7EXAMPLE"               # --secret-aws-key-id
//! aws_regions = ["eu-west-1"]           # optional allow lists
//! aws_services = ["s3"]
//! allow_hosts = ["*.amazonaws.com"]
//! ```
//!
//! On SIGHUP, `standin run` reads every `value_file` and `--secret-file` again and rotates
//! the values that changed.
//!
//! Secret values never appear in the file or on the command line: they come from standin's
//! environment or from a file.
//!
//! Unknown keys are errors: a typo must never silently widen access. Flags given on the
//! command line are applied after the file: lists are appended to, single values replace.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// `[sandbox]`.
    #[serde(default)]
    pub sandbox: SandboxSection,
    /// `[network]`.
    #[serde(default)]
    pub network: NetworkSection,
    /// `[secrets]`.
    #[serde(default)]
    pub secrets: SecretsSection,
    /// `[[secret]]`.
    #[serde(default)]
    pub secret: Vec<SecretSection>,
}

/// `[secrets]`: sandbox-wide secret settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretsSection {
    pub on_violation: Option<String>,
    #[serde(default)]
    pub passthrough: Vec<String>,
    #[serde(default)]
    pub passthrough_all_hosts_dangerous: bool,
    #[serde(default)]
    pub upstream_cas: Vec<PathBuf>,
    pub respond: Option<String>,
}

/// One `[[secret]]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretSection {
    pub env: String,
    pub value_env: Option<String>,
    pub value_file: Option<PathBuf>,
    pub placeholder: Option<String>,
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    #[serde(default)]
    pub allow_any_host_dangerous: bool,
    pub require_tls_identity: Option<bool>,
    pub inject: Option<standin::SecretInjection>,
    pub on_violation: Option<String>,
    #[serde(default)]
    pub passthrough: Vec<String>,
    #[serde(default)]
    pub passthrough_all_hosts_dangerous: bool,
    #[serde(default)]
    pub require: bool,
    #[serde(default)]
    pub token_shaped_placeholder: bool,
    pub aws_access_key_id: Option<String>,
    #[serde(default)]
    pub aws_regions: Vec<String>,
    #[serde(default)]
    pub aws_services: Vec<String>,
}

/// `[sandbox]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SandboxSection {
    pub workdir: Option<PathBuf>,
    pub rootfs: Option<PathBuf>,
    pub image: Option<String>,
    pub pull: Option<String>,
    #[serde(default)]
    pub registry_cas: Vec<PathBuf>,
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    pub hostname: Option<String>,
    #[serde(default)]
    pub mounts: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    pub memory: Option<LimitText>,
    pub cpus: Option<LimitText>,
    pub pids: Option<LimitText>,
    pub disk: Option<LimitText>,
}

/// A limit in the file: text (`"2G"`, `"unlimited"`) or a number (`cpus = 1.5`,
/// `pids = 256`, `memory = 1073741824`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum LimitText {
    /// `"2G"`.
    Text(String),
    /// `256`.
    Integer(i64),
    /// `1.5`.
    Float(f64),
}

impl std::fmt::Display for LimitText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitText::Text(s) => f.write_str(s),
            LimitText::Integer(n) => write!(f, "{n}"),
            LimitText::Float(x) => write!(f, "{x}"),
        }
    }
}

/// `[network]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetworkSection {
    pub enabled: Option<bool>,
    pub default: Option<DefaultAction>,
    #[serde(default)]
    pub rules: Vec<String>,
    #[serde(default)]
    pub dns_upstreams: Vec<String>,
    pub rebind_protection: Option<bool>,
    pub idle_timeout_secs: Option<u64>,
    pub max_connections: Option<u64>,
    pub events: Option<PathBuf>,
    pub events_level: Option<crate::cli::EventsLevelArg>,
    pub events_format: Option<crate::cli::EventsFormatArg>,
}

/// `allow` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DefaultAction {
    /// Allow what no rule matches.
    Allow,
    /// Deny what no rule matches.
    Deny,
}

impl Config {
    /// Read and parse `path`; errors name the file, the line and the key.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let text = r#"
[sandbox]
workdir = "/srv/agent"
hostname = "agent"
mounts = ["/data:/data:ro"]
env = ["MODE=ci", "TERM"]

[network]
enabled = true
default = "allow"
rules = ["allow@*.openai.com:tcp:443", "deny@metadata"]
dns_upstreams = ["192.0.2.53"]
rebind_protection = false
events = "/tmp/e.jsonl"
"#;
        let c: Config = toml::from_str(text).unwrap();
        assert_eq!(c.sandbox.mounts.len(), 1);
        assert_eq!(c.network.default, Some(DefaultAction::Allow));
        assert_eq!(c.network.rules.len(), 2);
        assert_eq!(c.network.rebind_protection, Some(false));
    }

    #[test]
    fn parses_secrets() {
        let text = r#"
[secrets]
on_violation = "block-and-log"
passthrough = ["traces.example.com"]

[[secret]]
env = "OPENAI_API_KEY"
allow_hosts = ["api.openai.com", "*.openai.azure.com"]
inject = { query_params = true }
on_violation = "block-and-terminate"
"#;
        let c: Config = toml::from_str(text).unwrap();
        assert_eq!(c.secret.len(), 1);
        let inj = c.secret[0].inject.unwrap();
        assert!(inj.query_params && inj.headers && inj.basic_auth && !inj.body);
        assert_eq!(c.secrets.passthrough.len(), 1);
        let e = toml::from_str::<Config>(
            "[[secret]]
env = \"K\"
value = \"sk\"
",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `value`"), "{e}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let e = toml::from_str::<Config>("[network]\nrule = [\"deny@any\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `rule`"), "{e}");
        assert!(e.contains("rules"), "{e}");
        let e = toml::from_str::<Config>("[network]\ndefault = \"maybe\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("maybe"), "{e}");
        let e = toml::from_str::<Config>("[sandbx]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sandbx"), "{e}");
    }
}
