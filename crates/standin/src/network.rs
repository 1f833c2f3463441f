//! [`NetworkBuilder`]: the sandbox's network: on or off, egress rules, DNS, events.

use crate::event::{Event, EventsFormat, EventsLevel};
use crate::secret::{SecretBuilder, ViolationActionBuilder};
use standin_boundary::{BoundaryConfig, EventSink};
use standin_policy::egress::{Action, EgressPolicy, Rule};
use standin_policy::secrets::{SecretEntry, ViolationPolicy};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

type Listener = Box<dyn Fn(&Event) + Send + Sync>;

/// Builder for the sandbox's network, used through
/// [`SandboxBuilder::network`](crate::SandboxBuilder::network).
///
/// The shipped egress policy allows public destinations and denies private ranges, loopback,
/// link-local, multicast, the host and cloud metadata. Rules added here come first (first
/// match wins); [`default_action`](Self::default_action) decides what no rule matches.
///
/// ```no_run
/// # async fn demo() -> Result<(), standin::Error> {
/// let sandbox = standin::Sandbox::builder("agent")
///     .network(|n| {
///         n.rule("allow@api.openai.com:tcp:443")
///             .rule("allow@pypi.org")
///             .default_action(standin::Action::Deny)
///             .events_file("/var/log/standin/agent.jsonl")
///     })
///     .create()
///     .await?;
/// # let _ = sandbox;
/// # Ok(()) }
/// ```
pub struct NetworkBuilder {
    pub(crate) enabled: bool,
    pub(crate) rules: Vec<Rule>,
    pub(crate) default: Action,
    pub(crate) rebind_protection: bool,
    pub(crate) idle_timeout: Option<std::time::Duration>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) dns_upstreams: Vec<SocketAddr>,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) events_file: Option<PathBuf>,
    pub(crate) events_level: EventsLevel,
    pub(crate) events_format: EventsFormat,
    pub(crate) secrets: Vec<SecretEntry>,
    pub(crate) on_violation: ViolationPolicy,
    pub(crate) upstream_cas: Vec<PathBuf>,
    pub(crate) errors: Vec<String>,
}

impl std::fmt::Debug for NetworkBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkBuilder")
            .field("enabled", &self.enabled)
            .field("rules", &self.rules)
            .field("default", &self.default)
            .field("rebind_protection", &self.rebind_protection)
            .field("dns_upstreams", &self.dns_upstreams)
            .field("listeners", &self.listeners.len())
            .field("events_file", &self.events_file)
            .field("events_level", &self.events_level)
            .field("events_format", &self.events_format)
            .field("secrets", &self.secrets)
            .field("on_violation", &self.on_violation)
            .field("upstream_cas", &self.upstream_cas)
            .finish()
    }
}

impl Default for NetworkBuilder {
    fn default() -> Self {
        NetworkBuilder {
            enabled: true,
            rules: Vec::new(),
            default: Action::Deny,
            rebind_protection: true,
            idle_timeout: None,
            max_connections: None,
            dns_upstreams: Vec::new(),
            listeners: Vec::new(),
            events_file: None,
            events_level: EventsLevel::default(),
            events_format: EventsFormat::default(),
            secrets: Vec::new(),
            on_violation: ViolationPolicy::default(),
            upstream_cas: Vec::new(),
            errors: Vec::new(),
        }
    }
}

impl NetworkBuilder {
    /// `false`: loopback only, nothing leaves the sandbox.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Add a rule in the `allow|deny@TARGET[:tcp|udp[:PORTS]]` grammar. `TARGET` is a domain
    /// (`api.example.com`), a suffix (`*.example.com`), an address or CIDR (`10.0.0.0/8`,
    /// `[2001:db8::/32]`), a group (`public`, `private`, `loopback`, `link-local`, `metadata`,
    /// `host`, `multicast`) or `any`; `PORTS` is a port, a range (`8000-8999`) or a
    /// comma-separated list of them.
    /// Rules are evaluated in the order added, first match wins. A rule that does not parse
    /// is reported by `create()`.
    ///
    /// ```
    /// let n = standin::NetworkBuilder::default()
    ///     .rule("deny@169.254.0.0/16")
    ///     .rule("allow@*.github.com:tcp:443")
    ///     .rule("allow@10.1.2.3:tcp:5432,6379")
    ///     .rule("deny@public:udp");
    /// # let _ = n;
    /// ```
    pub fn rule(mut self, rule: &str) -> Self {
        match Rule::parse(rule) {
            Ok(r) => self.rules.push(r),
            Err(e) => self.errors.push(e.to_string()),
        }
        self
    }

    /// What happens to traffic no rule matches (after the built-in `allow@public`). Default:
    /// deny.
    pub fn default_action(mut self, action: Action) -> Self {
        self.default = action;
        self
    }

    /// Keep (default) or drop the DNS rebind protection.
    pub fn rebind_protection(mut self, on: bool) -> Self {
        self.rebind_protection = on;
        self
    }

    /// Close relayed connections on which nothing moved for this long (default: 15 minutes).
    pub fn idle_timeout(mut self, timeout: std::time::Duration) -> Self {
        if timeout.is_zero() {
            self.errors
                .push("idle_timeout(0): give a positive duration".into());
        } else {
            self.idle_timeout = Some(timeout);
        }
        self
    }

    /// Most connections the sandbox may have open through the boundary at once (default:
    /// 8192); beyond it a new connection is reset and an event says why. Each open
    /// connection costs the host process two descriptors (see
    /// [`raise_descriptor_limit`](crate::raise_descriptor_limit)) and about 100 KiB.
    pub fn max_connections(mut self, n: usize) -> Self {
        let limit = standin_boundary::MAX_CONNECTIONS_LIMIT;
        if n == 0 || n > limit {
            self.errors.push(format!(
                "max_connections({n}): give a number from 1 to {limit}"
            ));
        } else {
            self.max_connections = Some(n);
        }
        self
    }

    /// Forward DNS to this resolver: `ADDR`, `ADDR:PORT` or `[V6]:PORT`, port 53 by default
    /// (repeatable, tried in order). Default: the host's `/etc/resolv.conf`.
    ///
    /// ```
    /// let n = standin::NetworkBuilder::default()
    ///     .dns_upstream("192.0.2.53")
    ///     .dns_upstream("[2001:db8::53]:5353");
    /// # let _ = n;
    /// ```
    pub fn dns_upstream(mut self, s: &str) -> Self {
        match parse_resolver(s) {
            Some(a) => self.dns_upstreams.push(a),
            None => self.errors.push(format!(
                "dns upstream {s:?}: expected ADDR, ADDR:PORT or [IPV6]:PORT"
            )),
        }
        self
    }

    /// Call `f` for every audit event (denied connections and queries, rebind blocks,
    /// upstream failures).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), standin::Error> {
    /// use standin::EventKind;
    /// let sandbox = standin::Sandbox::builder("agent")
    ///     .network(|n| {
    ///         n.on_event(|e| {
    ///             if e.kind == EventKind::SecretViolation {
    ///                 eprintln!("{} sent {:?} to {:?}", e.sandbox, e.secret, e.sni);
    ///             }
    ///         })
    ///     })
    ///     .create()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn on_event(mut self, f: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.listeners.push(Box::new(f));
        self
    }

    /// Append audit events as JSON lines to `path` (created with mode 0600: the trail
    /// names hosts and secrets). The schema is documented in `docs/EVENTS.md`.
    ///
    /// `-` is standard output (JSON lines on stdout: the Kubernetes logging convention).
    pub fn events_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.events_file = Some(path.into());
        self
    }

    /// How much is recorded: every decision (the default), or also every connection the
    /// policy allowed.
    pub fn events_level(mut self, level: EventsLevel) -> Self {
        self.events_level = level;
        self
    }

    /// The events file's format: standin's own JSON lines (the default), or OCSF.
    pub fn events_format(mut self, format: EventsFormat) -> Self {
        self.events_format = format;
        self
    }

    /// Add a secret configured through a [`SecretBuilder`]. Any secret turns on TLS
    /// interception.
    pub fn secret(mut self, configure: impl FnOnce(SecretBuilder) -> SecretBuilder) -> Self {
        match configure(SecretBuilder::new()).build() {
            Ok(e) => self.secrets.push(e),
            // Each problem on its own: the caller's error adds the one prefix.
            Err(crate::Error::Config { problems }) => self.errors.extend(problems),
            Err(e) => self.errors.push(e.to_string()),
        }
        self
    }

    /// A secret with the default placeholder `$MSB_<env>`, substituted only for
    /// `allowed_host`, with the default injection scopes (the same as
    /// [`SandboxBuilder::secret_env`](crate::SandboxBuilder::secret_env); the reference SDK's
    /// `NetworkBuilder.secretEnvSimple`).
    pub fn secret_env(self, env: &str, value: &str, allowed_host: &str) -> Self {
        self.secret(|s| s.env(env).value(value).allow_host(allowed_host))
    }

    /// A secret with an explicit placeholder, substituted only for `allowed_host`, with the
    /// default injection scopes (the reference SDK's `NetworkBuilder.secretEnv`).
    pub fn secret_env_with_placeholder(
        self,
        env: &str,
        value: &str,
        placeholder: &str,
        allowed_host: &str,
    ) -> Self {
        self.secret(|s| {
            s.env(env)
                .value(value)
                .placeholder(placeholder)
                .allow_host(allowed_host)
        })
    }

    /// The sandbox-wide violation policy (a secret's own `on_violation` overrides it).
    pub fn on_secret_violation(
        mut self,
        configure: impl FnOnce(ViolationActionBuilder) -> ViolationActionBuilder,
    ) -> Self {
        let (policy, errors) = configure(ViolationActionBuilder::default()).finish();
        self.errors.extend(errors);
        self.on_violation = policy;
        self
    }

    /// Also trust the CA certificates in this PEM file when verifying upstream TLS (besides
    /// the host's system roots). Repeatable.
    pub fn upstream_ca(mut self, path: impl Into<PathBuf>) -> Self {
        self.upstream_cas.push(path.into());
        self
    }

    /// The environment entries the secrets give the sandbox: `(variable, placeholder)`, in
    /// the order the secrets were added (`standin boundary env` prints them for a pod's app).
    pub fn placeholders(&self) -> Vec<(String, String)> {
        self.secrets
            .iter()
            .map(|s| (s.env_var.clone(), s.placeholder.clone()))
            .collect()
    }

    /// The secrets, moved out of the builder as a checked set.
    pub(crate) fn take_secret_set(
        &mut self,
    ) -> Result<standin_policy::secrets::SecretSet, crate::Error> {
        let secrets = standin_policy::secrets::SecretSet {
            entries: std::mem::take(&mut self.secrets),
            on_violation: self.on_violation.clone(),
        };
        secrets
            .validate()
            .map_err(|e| crate::Error::config(e.to_string()))?;
        Ok(secrets)
    }

    /// The boundary settings this builder holds, over the defaults: the egress policy, the
    /// DNS upstreams (those given, else the system's `/etc/resolv.conf`, possibly none), the
    /// upstream CAs (read now, so a bad file is a configuration error), the idle timeout and
    /// the connection cap. Shared by a sandbox's boundary and a pod's.
    pub(crate) fn boundary_settings(&self) -> Result<BoundaryConfig, crate::Error> {
        let mut upstream_cas = Vec::new();
        for path in &self.upstream_cas {
            upstream_cas.extend(
                standin_boundary::read_ca_file(path)
                    .map_err(|e| crate::Error::config(format!("upstream_ca: {e}")))?,
            );
        }
        let dns_upstreams = if self.dns_upstreams.is_empty() {
            std::fs::read_to_string("/etc/resolv.conf")
                .map(|t| standin_boundary::upstreams_from_resolv_conf(&t))
                .unwrap_or_default()
        } else {
            self.dns_upstreams.clone()
        };
        let defaults = BoundaryConfig::default();
        Ok(BoundaryConfig {
            policy: self.policy(),
            dns_upstreams,
            upstream_cas,
            idle_timeout: self.idle_timeout.unwrap_or(defaults.idle_timeout),
            max_connections: self.max_connections.unwrap_or(defaults.max_connections),
            ..defaults
        })
    }

    pub(crate) fn policy(&self) -> EgressPolicy {
        let mut p = EgressPolicy::with_user_rules(self.rules.clone(), self.default);
        p.rebind_protection = self.rebind_protection;
        p
    }

    /// The events' destinations (callbacks and the file), stamping sandbox `id` and `name`.
    pub(crate) fn take_sink(&mut self, id: &str, name: &str) -> Result<EventSink, String> {
        let sdk_listeners = std::mem::take(&mut self.listeners);
        let mut listeners: Vec<standin_boundary::EventListener> = Vec::new();
        if !sdk_listeners.is_empty() {
            // One conversion per event, whatever the number of callbacks.
            listeners.push(Box::new(move |e: &standin_boundary::Event| {
                let event = Event::from(e);
                for l in &sdk_listeners {
                    l(&event);
                }
            }));
        }
        if let Some(path) = &self.events_file {
            use std::os::unix::fs::OpenOptionsExt;
            let file = if path.as_os_str() == "-" {
                // Standard output itself (a pipe of the container runtime's, say), not a
                // reopening of it through /dev/stdout, which another uid may not be allowed.
                use std::os::fd::AsFd;
                std::io::stdout()
                    .as_fd()
                    .try_clone_to_owned()
                    .map(std::fs::File::from)
            } else {
                std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
            }
            .map_err(|e| {
                    format!(
                        "cannot open the events file {}: {e}; give a path in an existing, writable directory (events_file / --events)",
                        path.display()
                    )
                })?;
            listeners.push(match self.events_format {
                EventsFormat::Jsonl => EventSink::jsonl_file(file),
                EventsFormat::Ocsf => standin_boundary::ocsf::jsonl_file(file),
            });
        }
        let level = match self.events_level {
            EventsLevel::Decisions => standin_boundary::EventLevel::Decisions,
            EventsLevel::All => standin_boundary::EventLevel::All,
        };
        Ok(EventSink::new(listeners)
            .for_sandbox(id, (!name.is_empty()).then_some(name))
            .with_level(level))
    }
}

/// `ADDR`, `ADDR:PORT`, `[V6]` or `[V6]:PORT`; port 53 by default.
pub fn parse_resolver(s: &str) -> Option<SocketAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 53));
    }
    s.parse::<SocketAddr>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_shorthands() {
        let n = NetworkBuilder::default()
            .secret_env_with_placeholder("A", "va", "{{a}}", "a.example")
            .secret_env("B", "vb", "b.example")
            .secret(|s| s.env("C").value("vc").allow_host_pattern("*.c.example"))
            .on_secret_violation(|v| {
                v.block_and_terminate()
                    .passthrough_host_pattern("*.t.example")
            });
        assert!(n.errors.is_empty(), "{:?}", n.errors);
        assert_eq!(n.secrets.len(), 3);
        assert_eq!(n.secrets[0].placeholder, "{{a}}");
        assert_eq!(n.secrets[1].placeholder, "$MSB_B");
        assert_eq!(n.secrets[2].allowed_host_patterns.len(), 1);
        assert_eq!(
            n.on_violation.action,
            Some(crate::ViolationAction::BlockAndTerminate)
        );
        assert_eq!(n.on_violation.passthrough_patterns.len(), 1);
        // Bad input is remembered and reported by create(), naming the call.
        let n = NetworkBuilder::default()
            .secret_env("B", "vb", "not a host")
            .on_secret_violation(|v| v.passthrough_host_pattern("t.example"));
        assert_eq!(n.errors.len(), 2, "{:?}", n.errors);
        assert!(n.errors[0].contains("allow_host(\"not a host\")"));
        assert!(n.errors[1].contains("use passthrough_host"));
        // Debug never shows a value.
        let n = NetworkBuilder::default().secret_env("B", "very-secret", "b.example");
        assert!(!format!("{n:?}").contains("very-secret"));
    }

    #[test]
    fn connection_limit() {
        let n = NetworkBuilder::default().max_connections(20_000);
        assert!(n.errors.is_empty(), "{:?}", n.errors);
        assert_eq!(n.max_connections, Some(20_000));
        let n = NetworkBuilder::default()
            .max_connections(0)
            .max_connections(2_000_000);
        assert_eq!(n.errors.len(), 2, "{:?}", n.errors);
        assert!(n.errors[0].contains("max_connections(0): give a number from 1 to"));
        assert_eq!(n.max_connections, None);
    }

    #[test]
    fn parses_resolvers() {
        assert_eq!(
            parse_resolver("192.0.2.1"),
            Some("192.0.2.1:53".parse().unwrap())
        );
        assert_eq!(
            parse_resolver("192.0.2.1:5353"),
            Some("192.0.2.1:5353".parse().unwrap())
        );
        assert_eq!(
            parse_resolver("fd99::1"),
            Some("[fd99::1]:53".parse().unwrap())
        );
        assert_eq!(
            parse_resolver("[fd99::1]"),
            Some("[fd99::1]:53".parse().unwrap())
        );
        assert_eq!(
            parse_resolver("[fd99::1]:5353"),
            Some("[fd99::1]:5353".parse().unwrap())
        );
        assert_eq!(parse_resolver("dns.example"), None);
    }
}
