//! [`Recipe`]: a [`SandboxBuilder`] as data, handed to a detached sandbox's supervisor over
//! its setup socket (never written to disk: it holds the real secret values).
//!
//! Only what a separate process can act on travels: callbacks (`on_event`, pull progress),
//! standard streams and a pulled image's lease stay behind, and the builder refuses them
//! for a detached sandbox. The image is pulled by the creating process first (so progress
//! and errors reach the caller); the supervisor finds it in the store.

use crate::builder::SandboxBuilder;
use crate::network::NetworkBuilder;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use standin_policy::MountSpec;
use standin_policy::egress::{Action, DomainName, HostPattern, Rule};
use standin_policy::limits::Limits;
use standin_policy::secrets::{SecretEntry, SecretInjection, SecretValue, ViolationPolicy};
use standin_sandbox::spec::RootSource;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use zeroize::Zeroizing;

/// Everything `create()` needs, as data.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Recipe {
    pub(crate) name: String,
    pub(crate) hostname: Option<String>,
    pub(crate) root: RootSource,
    pub(crate) workdir: Option<PathBuf>,
    pub(crate) mounts: Vec<MountSpec>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) command: Option<Vec<String>>,
    pub(crate) use_image_command: bool,
    /// An image already in the store.
    pub(crate) image: Option<String>,
    pub(crate) limits: Limits,
    pub(crate) helper: Option<PathBuf>,
    pub(crate) network: NetworkRecipe,
}

/// The network part.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetworkRecipe {
    pub(crate) enabled: bool,
    pub(crate) rules: Vec<Rule>,
    pub(crate) default: Action,
    pub(crate) rebind_protection: bool,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) dns_upstreams: Vec<SocketAddr>,
    pub(crate) events_file: Option<PathBuf>,
    #[serde(default)]
    pub(crate) events_level: crate::EventsLevel,
    #[serde(default)]
    pub(crate) events_format: crate::EventsFormat,
    pub(crate) secrets: Vec<SecretRecipe>,
    pub(crate) on_violation: ViolationPolicy,
    pub(crate) upstream_cas: Vec<PathBuf>,
}

/// One secret. `value` is present only on the setup socket; the record shows the rest.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretRecipe {
    pub(crate) env_var: String,
    pub(crate) placeholder: String,
    pub(crate) allowed_hosts: Vec<DomainName>,
    pub(crate) allowed_host_patterns: Vec<HostPattern>,
    pub(crate) allow_any_host: bool,
    pub(crate) require_tls_identity: bool,
    pub(crate) injection: SecretInjection,
    pub(crate) on_violation: Option<ViolationPolicy>,
    #[serde(default)]
    pub(crate) aws: Option<standin_policy::secrets::AwsSigV4>,
    #[serde(default)]
    pub(crate) require: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) value: Option<ValueText>,
}

/// A secret value in transit: base64 text, zeroized on drop, never shown by `Debug`.
pub(crate) struct ValueText(Zeroizing<String>);

impl Serialize for ValueText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ValueText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ValueText, D::Error> {
        String::deserialize(d).map(|s| ValueText(Zeroizing::new(s)))
    }
}

impl std::fmt::Debug for ValueText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ValueText(<redacted>)")
    }
}

impl ValueText {
    pub(crate) fn of(value: &SecretValue) -> ValueText {
        let mut text = Zeroizing::new(String::with_capacity(value.expose().len() * 4 / 3 + 4));
        STANDARD.encode_string(value.expose(), &mut text);
        ValueText(text)
    }

    pub(crate) fn value(&self) -> Result<SecretValue, String> {
        let mut bytes = Zeroizing::new(vec![0u8; self.0.len() / 4 * 3 + 3]);
        let n = STANDARD
            .decode_slice(self.0.as_bytes(), &mut bytes)
            .map_err(|_| "a secret value arrived damaged".to_owned())?;
        Ok(SecretValue::new(&bytes[..n]))
    }
}

impl Recipe {
    /// The builder as data (its value-bearing parts moved out of it).
    pub(crate) fn of(b: &mut SandboxBuilder) -> Recipe {
        let n = &mut b.network;
        Recipe {
            name: b.name.clone(),
            hostname: b.hostname.clone(),
            root: b.root.clone(),
            workdir: b.workdir.clone(),
            mounts: b.mounts.clone(),
            env: b.env.clone(),
            command: b.command.clone(),
            use_image_command: b.use_image_command,
            image: b.image.reference.as_ref().map(ToString::to_string),
            limits: b.limits,
            helper: b.helper.clone(),
            network: NetworkRecipe {
                enabled: n.enabled,
                rules: n.rules.clone(),
                default: n.default,
                rebind_protection: n.rebind_protection,
                idle_timeout: n.idle_timeout,
                max_connections: n.max_connections,
                dns_upstreams: n.dns_upstreams.clone(),
                events_file: n.events_file.clone(),
                events_level: n.events_level,
                events_format: n.events_format,
                secrets: n
                    .secrets
                    .iter()
                    .map(|s| SecretRecipe {
                        env_var: s.env_var.clone(),
                        placeholder: s.placeholder.clone(),
                        allowed_hosts: s.allowed_hosts.clone(),
                        allowed_host_patterns: s.allowed_host_patterns.clone(),
                        allow_any_host: s.allow_any_host,
                        require_tls_identity: s.require_tls_identity,
                        injection: s.injection,
                        on_violation: s.on_violation.clone(),
                        aws: s.aws.clone(),
                        require: s.require,
                        value: Some(ValueText::of(&s.value)),
                    })
                    .collect(),
                on_violation: n.on_violation.clone(),
                upstream_cas: n.upstream_cas.clone(),
            },
        }
    }

    /// The configuration as the record shows it: secrets without their values.
    pub(crate) fn public_view(&mut self) -> serde_json::Value {
        let values: Vec<Option<ValueText>> = self
            .network
            .secrets
            .iter_mut()
            .map(|s| s.value.take())
            .collect();
        let view = serde_json::to_value(&*self).unwrap_or(serde_json::Value::Null);
        for (s, v) in self.network.secrets.iter_mut().zip(values) {
            s.value = v;
        }
        view
    }

    /// The builder again, in the supervisor.
    pub(crate) fn into_builder(self) -> Result<SandboxBuilder, String> {
        let mut b = SandboxBuilder::new(&self.name);
        b.hostname = self.hostname;
        b.root = self.root;
        b.workdir = self.workdir;
        b.mounts = self.mounts;
        b.env = self.env;
        b.command = self.command;
        b.use_image_command = self.use_image_command;
        if let Some(image) = &self.image {
            b.image.reference =
                Some(standin_image::ImageRef::parse(image).map_err(|e| e.to_string())?);
            b.image.policy = standin_image::PullPolicy::Never;
        }
        b.limits = self.limits;
        b.helper = self.helper;
        let n = self.network;
        let mut secrets = Vec::with_capacity(n.secrets.len());
        for s in n.secrets {
            let value = s
                .value
                .as_ref()
                .ok_or_else(|| format!("secret {}: no value arrived", s.env_var))?
                .value()?;
            secrets.push(SecretEntry {
                env_var: s.env_var,
                value,
                placeholder: s.placeholder,
                allowed_hosts: s.allowed_hosts,
                allowed_host_patterns: s.allowed_host_patterns,
                allow_any_host: s.allow_any_host,
                require_tls_identity: s.require_tls_identity,
                injection: s.injection,
                on_violation: s.on_violation,
                aws: s.aws,
                require: s.require,
                retired: Vec::new(),
            });
        }
        b.network = NetworkBuilder {
            enabled: n.enabled,
            rules: n.rules,
            default: n.default,
            rebind_protection: n.rebind_protection,
            idle_timeout: n.idle_timeout,
            max_connections: n.max_connections,
            dns_upstreams: n.dns_upstreams,
            events_file: n.events_file,
            events_level: n.events_level,
            events_format: n.events_format,
            secrets,
            on_violation: n.on_violation,
            upstream_cas: n.upstream_cas,
            ..NetworkBuilder::default()
        };
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_builder_travels_whole_and_the_record_never_holds_a_value() {
        let mut b = crate::Sandbox::builder("agent")
            .hostname("h1")
            .env("MODE", "ci")
            .memory("512M")
            .network(|n| {
                n.rule("allow@*.example.com:tcp:443")
                    .default_action(Action::Deny)
                    .on_secret_violation(|v| v.block_and_log().passthrough_host("t.example.com"))
            })
            .secret_env("API_KEY", "sk-real-value-123", "api.example.com")
            .command(["sh", "-c", "true"]);
        let mut recipe = Recipe::of(&mut b);
        let wire = Zeroizing::new(serde_json::to_vec(&recipe).unwrap());
        let view = recipe.public_view().to_string();
        assert!(!view.contains("value\""), "{view}");
        assert!(
            !view.contains(&STANDARD.encode("sk-real-value-123")),
            "{view}"
        );
        assert!(view.contains("$MSB_API_KEY"), "{view}");
        let back: Recipe = serde_json::from_slice(&wire).unwrap();
        let b2 = back.into_builder().unwrap();
        assert_eq!(b2.hostname.as_deref(), Some("h1"));
        assert_eq!(b2.limits, b.limits);
        assert_eq!(b2.network.rules, b.network.rules);
        assert_eq!(b2.network.default, Action::Deny);
        assert_eq!(b2.network.on_violation, b.network.on_violation);
        let s = &b2.network.secrets[0];
        assert_eq!(s.value.expose(), b"sk-real-value-123");
        assert_eq!(s.allowed_hosts, b.network.secrets[0].allowed_hosts);
        assert_eq!(b2.command, b.command);
    }

    #[test]
    fn a_value_that_is_not_base64_is_refused() {
        let text = ValueText(Zeroizing::new("!!!".into()));
        assert!(text.value().is_err());
    }
}
