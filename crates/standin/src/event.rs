//! [`Event`]: the audit events a sandbox reports, as the SDK delivers them.
//!
//! Every decision worth auditing (a denied connection or query, a blocked rebind, an
//! upstream failure, a secret violation, a refused request, a terminated sandbox) is one
//! event. Events never carry a secret's value. They are delivered to
//! [`NetworkBuilder::on_event`](crate::NetworkBuilder::on_event) callbacks and, as JSON lines
//! with the same names, to [`NetworkBuilder::events_file`](crate::NetworkBuilder::events_file).

use std::fmt;

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// The name used in the events file.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary!(
    /// What happened.
    EventKind {
        /// A connection was refused by policy or by the fixed guard.
        ConnectionDenied => "connection-denied",
        /// A DNS query was refused by policy (answered NXDOMAIN).
        DnsDenied => "dns-denied",
        /// A DNS answer carried a non-public address (answered NXDOMAIN).
        RebindBlocked => "rebind-blocked",
        /// The destination or DNS resolver failed, or its certificate did not verify.
        UpstreamFailed => "upstream-failed",
        /// A secret's placeholder was headed somewhere it may not go.
        SecretViolation => "secret-violation",
        /// A request was refused for a protocol reason (Host differs from the TLS server
        /// name, ambiguous framing, a body that cannot be rewritten safely).
        RequestBlocked => "request-blocked",
        /// The sandbox was killed after a block-and-terminate violation.
        SandboxTerminated => "sandbox-terminated",
        /// A secret's value was replaced (rotation); the event never carries a value.
        SecretRotated => "secret-rotated",
        /// A placeholder was replaced by its secret's value (name, destination, location;
        /// never the value).
        SecretSubstituted => "secret-substituted",
        /// A placeholder went unchanged to a passthrough host.
        SecretPassthrough => "secret-passthrough",
        /// A connection the policy allowed (with [`EventsLevel::All`] only).
        ConnectionAllowed => "connection-allowed",
        /// The sandbox started.
        SandboxStarted => "sandbox-started",
        /// The sandbox's main command ended.
        SandboxExited => "sandbox-exited",
        /// A resource limit was reached.
        LimitHit => "limit-hit",
    }
);

vocabulary!(
    /// Which protocol an event concerns.
    EventProtocol {
        /// A TCP connection, or a non-HTTP stream on one.
        Tcp => "tcp",
        /// A DNS query.
        Dns => "dns",
        /// An HTTP request on an inspected connection (either HTTP version).
        Http => "http/1.1",
        /// Not about traffic: the sandbox's own life.
        None => "none",
    }
);

vocabulary!(
    /// What the boundary did.
    EventAction {
        /// Refused by policy or the fixed guard, or the upstream failed.
        Deny => "deny",
        /// A request blocked: the sandbox saw a connection reset.
        Block => "block",
        /// A secret violation, blocked and logged.
        BlockAndLog => "block-and-log",
        /// A secret violation: blocked, and the sandbox terminated.
        BlockAndTerminate => "block-and-terminate",
        /// A secret's value was replaced.
        Rotate => "rotate",
        /// Let through by policy.
        Allow => "allow",
        /// A placeholder replaced by the real value.
        Substitute => "substitute",
        /// A placeholder forwarded unchanged to a passthrough host.
        Passthrough => "passthrough",
        /// Nothing decided: a fact recorded (start, exit, a limit reached).
        Record => "record",
    }
);

vocabulary!(
    /// A resource limit named by a [`EventKind::LimitHit`] event.
    LimitName {
        /// Memory (a process was killed).
        Memory => "memory",
        /// Processes and threads (a fork was refused).
        Pids => "pids",
        /// CPU (the sandbox was throttled).
        Cpu => "cpu",
        /// Writable space.
        Disk => "disk",
    }
);

/// How much the events record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum EventsLevel {
    /// Every decision: denials, violations (every action), substitutions, passthroughs,
    /// start, exit, termination and limits.
    #[default]
    Decisions,
    /// Decisions, and every connection the policy allowed.
    All,
}

/// The events file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum EventsFormat {
    /// standin's own JSON lines (`docs/EVENTS.md`).
    #[default]
    Jsonl,
    /// OCSF 1.3 JSON lines (network activity, DNS activity, detection finding, process
    /// activity), with the native event under `unmapped`.
    Ocsf,
}

vocabulary!(
    /// Where in what the sandbox sent a placeholder (or a refused part) was found.
    EventLocation {
        /// The HTTP method or scheme.
        Method => "method",
        /// A header name or value.
        Header => "header",
        /// Basic credentials (decoded from base64).
        BasicAuth => "basic-auth",
        /// The request path.
        Path => "path",
        /// The query string.
        Query => "query",
        /// The request body.
        Body => "body",
        /// A trailer.
        Trailer => "trailer",
        /// A WebSocket frame.
        Websocket => "websocket",
        /// The bytes of a non-HTTP stream.
        Stream => "stream",
        /// A `CONNECT` request to a proxy address inside the sandbox.
        Connect => "connect",
        /// A DNS query name.
        DnsName => "dns-name",
    }
);

vocabulary!(
    /// How a placeholder was written where it was found.
    PlaceholderForm {
        /// As is.
        Raw => "raw",
        /// Percent-encoded.
        Percent => "percent",
        /// JSON-escaped.
        Json => "json",
        /// Base64 (Basic credentials, DNS names).
        Base64 => "base64",
        /// Hex (DNS names).
        Hex => "hex",
        /// Base32 (DNS names).
        Base32 => "base32",
    }
);

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// Unique id: the sandbox's id and the event's number in it.
    pub id: String,
    /// RFC 3339 UTC timestamp with milliseconds.
    pub timestamp: String,
    /// The sandbox's id.
    pub sandbox: String,
    /// The sandbox's name, when it has one.
    pub sandbox_name: Option<String>,
    /// What happened.
    pub kind: EventKind,
    /// Destination name, when known (the query name, or a name the sandbox resolved to
    /// `addr`).
    pub name: Option<String>,
    /// Destination address (`ip:port`, or `ip` for DNS answers).
    pub addr: Option<String>,
    /// The protocol concerned.
    pub protocol: EventProtocol,
    /// The rule that decided (`default` for the policy's default, `guard` for the fixed
    /// refusals, `rebind-protection`).
    pub rule: Option<String>,
    /// What the boundary did.
    pub action: EventAction,
    /// The secret concerned, by its environment variable's name (never its value).
    pub secret: Option<String>,
    /// The TLS server name the sandbox sent.
    pub sni: Option<String>,
    /// The HTTP `Host` of the request.
    pub host: Option<String>,
    /// Where in the request.
    pub location: Option<EventLocation>,
    /// How the placeholder was written.
    pub form: Option<PlaceholderForm>,
    /// The main command's exit status ([`EventKind::SandboxExited`]).
    pub exit_code: Option<i32>,
    /// The limit reached ([`EventKind::LimitHit`]).
    pub limit: Option<LimitName>,
    /// Free-form detail (an error's text, a refusal's reason).
    pub detail: Option<String>,
}

impl From<&standin_boundary::Event> for Event {
    fn from(e: &standin_boundary::Event) -> Event {
        Event {
            id: e.id.clone(),
            timestamp: e.ts.clone(),
            sandbox: e.sandbox.clone(),
            sandbox_name: e.sandbox_name.clone(),
            exit_code: e.exit_code,
            limit: e.limit.map(Into::into),
            kind: e.kind.into(),
            name: e.name.clone(),
            addr: e.addr.clone(),
            protocol: e.protocol.into(),
            rule: e.rule.clone(),
            action: e.action.into(),
            secret: e.secret.clone(),
            sni: e.sni.clone(),
            host: e.host.clone(),
            location: e.location.map(Into::into),
            form: e.form.map(Into::into),
            detail: e.detail.clone(),
        }
    }
}

impl From<standin_boundary::EventKind> for EventKind {
    fn from(k: standin_boundary::EventKind) -> EventKind {
        use standin_boundary::EventKind as B;
        match k {
            B::ConnectionDenied => EventKind::ConnectionDenied,
            B::DnsDenied => EventKind::DnsDenied,
            B::RebindBlocked => EventKind::RebindBlocked,
            B::UpstreamFailed => EventKind::UpstreamFailed,
            B::SecretViolation => EventKind::SecretViolation,
            B::RequestBlocked => EventKind::RequestBlocked,
            B::SandboxTerminated => EventKind::SandboxTerminated,
            B::SecretRotated => EventKind::SecretRotated,
            B::SecretSubstituted => EventKind::SecretSubstituted,
            B::SecretPassthrough => EventKind::SecretPassthrough,
            B::ConnectionAllowed => EventKind::ConnectionAllowed,
            B::SandboxStarted => EventKind::SandboxStarted,
            B::SandboxExited => EventKind::SandboxExited,
            B::LimitHit => EventKind::LimitHit,
        }
    }
}

impl From<standin_boundary::EventProtocol> for EventProtocol {
    fn from(p: standin_boundary::EventProtocol) -> EventProtocol {
        use standin_boundary::EventProtocol as B;
        match p {
            B::Tcp => EventProtocol::Tcp,
            B::Dns => EventProtocol::Dns,
            B::Http => EventProtocol::Http,
            B::None => EventProtocol::None,
        }
    }
}

impl From<standin_boundary::EventAction> for EventAction {
    fn from(a: standin_boundary::EventAction) -> EventAction {
        use standin_boundary::EventAction as B;
        match a {
            B::Deny => EventAction::Deny,
            B::Block => EventAction::Block,
            B::BlockAndLog => EventAction::BlockAndLog,
            B::BlockAndTerminate => EventAction::BlockAndTerminate,
            B::Rotate => EventAction::Rotate,
            B::Allow => EventAction::Allow,
            B::Substitute => EventAction::Substitute,
            B::Passthrough => EventAction::Passthrough,
            B::Record => EventAction::Record,
        }
    }
}

impl From<standin_boundary::Limit> for LimitName {
    fn from(l: standin_boundary::Limit) -> LimitName {
        use standin_boundary::Limit as B;
        match l {
            B::Memory => LimitName::Memory,
            B::Pids => LimitName::Pids,
            B::Cpu => LimitName::Cpu,
            B::Disk => LimitName::Disk,
        }
    }
}

impl From<standin_boundary::Location> for EventLocation {
    fn from(l: standin_boundary::Location) -> EventLocation {
        use standin_boundary::Location as B;
        match l {
            B::Method => EventLocation::Method,
            B::Header => EventLocation::Header,
            B::BasicAuth => EventLocation::BasicAuth,
            B::Path => EventLocation::Path,
            B::Query => EventLocation::Query,
            B::Body => EventLocation::Body,
            B::Trailer => EventLocation::Trailer,
            B::Websocket => EventLocation::Websocket,
            B::Stream => EventLocation::Stream,
            B::Connect => EventLocation::Connect,
            B::DnsName => EventLocation::DnsName,
        }
    }
}

impl From<standin_policy::secrets::Form> for PlaceholderForm {
    fn from(f: standin_policy::secrets::Form) -> PlaceholderForm {
        use standin_policy::secrets::Form as B;
        match f {
            B::Raw => PlaceholderForm::Raw,
            B::Percent => PlaceholderForm::Percent,
            B::Json => PlaceholderForm::Json,
            B::Base64 => PlaceholderForm::Base64,
            B::Hex => PlaceholderForm::Hex,
            B::Base32 => PlaceholderForm::Base32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_name<T: serde::Serialize>(v: T) -> String {
        serde_json::to_value(v)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The SDK's names are the events file's names, variant for variant.
    #[test]
    fn names_match_the_events_file() {
        use standin_boundary as b;
        for k in [
            b::EventKind::ConnectionDenied,
            b::EventKind::DnsDenied,
            b::EventKind::RebindBlocked,
            b::EventKind::UpstreamFailed,
            b::EventKind::SecretViolation,
            b::EventKind::RequestBlocked,
            b::EventKind::SandboxTerminated,
            b::EventKind::SecretRotated,
            b::EventKind::SecretSubstituted,
            b::EventKind::SecretPassthrough,
            b::EventKind::ConnectionAllowed,
            b::EventKind::SandboxStarted,
            b::EventKind::SandboxExited,
            b::EventKind::LimitHit,
        ] {
            assert_eq!(EventKind::from(k).as_str(), json_name(k));
        }
        for p in [
            b::EventProtocol::Tcp,
            b::EventProtocol::Dns,
            b::EventProtocol::Http,
            b::EventProtocol::None,
        ] {
            assert_eq!(EventProtocol::from(p).as_str(), json_name(p));
        }
        for a in [
            b::EventAction::Deny,
            b::EventAction::Block,
            b::EventAction::BlockAndLog,
            b::EventAction::BlockAndTerminate,
            b::EventAction::Rotate,
            b::EventAction::Allow,
            b::EventAction::Substitute,
            b::EventAction::Passthrough,
            b::EventAction::Record,
        ] {
            assert_eq!(EventAction::from(a).as_str(), json_name(a));
        }
        use b::Location as L;
        for l in [
            L::Method,
            L::Header,
            L::BasicAuth,
            L::Path,
            L::Query,
            L::Body,
            L::Trailer,
            L::Websocket,
            L::Stream,
            L::Connect,
            L::DnsName,
        ] {
            assert_eq!(EventLocation::from(l).as_str(), json_name(l));
        }
        use standin_policy::secrets::Form as F;
        for f in [F::Raw, F::Percent, F::Json, F::Base64, F::Hex, F::Base32] {
            assert_eq!(PlaceholderForm::from(f).as_str(), json_name(f));
        }
    }
}
