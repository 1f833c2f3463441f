//! Audit events: one JSON object per decision worth auditing.
//!
//! Diagnostics go to `tracing`; these events are a separate, stable, typed stream for the
//! operator (a JSONL file, or callbacks registered through the SDK). They never carry a
//! secret value. `docs/EVENTS.md` documents the schema ([`EVENT_SCHEMA_VERSION`]); the
//! [`EventSink`] stamps each event with its id and the sandbox's identity.

use serde::Serialize;
use standin_policy::secrets::{Form, ViolationAction};
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// The version of the event schema. It changes when a field changes meaning or goes away;
/// new fields and new values of a vocabulary do not change it.
pub const EVENT_SCHEMA_VERSION: u32 = 1;

/// How much is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventLevel {
    /// Every decision: denials, violations, substitutions, passthroughs, lifecycle.
    #[default]
    Decisions,
    /// Decisions, and every connection the policy allowed.
    All,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A connection was refused by policy or by the fixed guard.
    ConnectionDenied,
    /// A DNS query was refused by policy (answered NXDOMAIN).
    DnsDenied,
    /// A DNS answer carried a non-public address (answered NXDOMAIN).
    RebindBlocked,
    /// The upstream (TCP destination or DNS resolver) failed, or its certificate did not
    /// verify.
    UpstreamFailed,
    /// A secret's placeholder was headed somewhere it may not go (block-and-log and
    /// block-and-terminate; plain block stays silent).
    SecretViolation,
    /// A request was refused for a protocol reason (Host differs from the TLS server name,
    /// ambiguous framing, a body that cannot be rewritten safely).
    RequestBlocked,
    /// The sandbox was killed after a block-and-terminate violation.
    SandboxTerminated,
    /// A secret's value was replaced (rotation); never carries a value.
    SecretRotated,
    /// A placeholder was replaced by its secret's value (the name, destination and location;
    /// never the value).
    SecretSubstituted,
    /// A placeholder went unchanged to a passthrough host.
    SecretPassthrough,
    /// A connection the policy allowed (recorded at [`EventLevel::All`] only).
    ConnectionAllowed,
    /// The sandbox started.
    SandboxStarted,
    /// The sandbox's main command ended (`exit_code`).
    SandboxExited,
    /// A resource limit was reached (`limit`).
    LimitHit,
}

// The vocabulary enums are exhaustive on purpose: the SDK maps each to its own
// (non-exhaustive) type, and a new variant here must fail its build until it is mapped.

/// Which protocol an event concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventProtocol {
    /// A TCP connection (or a non-HTTP stream on one).
    Tcp,
    /// A DNS query.
    Dns,
    /// An HTTP request on an inspected connection (either HTTP version).
    #[serde(rename = "http/1.1")]
    Http,
    /// Not about traffic: the sandbox's own life (start, exit, limits, rotation).
    None,
}

/// What the boundary did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventAction {
    /// Refused by policy, by the fixed guard, or because the upstream failed.
    Deny,
    /// A request blocked (the connection reset).
    Block,
    /// A secret violation, blocked and logged.
    BlockAndLog,
    /// A secret violation: blocked, and the sandbox terminated.
    BlockAndTerminate,
    /// A secret's value was replaced.
    Rotate,
    /// Let through by policy.
    Allow,
    /// A placeholder replaced by the real value.
    Substitute,
    /// A placeholder forwarded unchanged to a passthrough host.
    Passthrough,
    /// Nothing was decided: a fact recorded (start, exit, a limit reached).
    Record,
}

/// A resource limit, as named in [`EventKind::LimitHit`] events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Limit {
    /// The memory limit (a process was killed).
    Memory,
    /// The process/thread limit (a fork was refused).
    Pids,
    /// The CPU limit (the sandbox was throttled).
    Cpu,
    /// The writable-space limit.
    Disk,
}

impl From<ViolationAction> for EventAction {
    fn from(action: ViolationAction) -> EventAction {
        match action {
            ViolationAction::BlockAndLog => EventAction::BlockAndLog,
            ViolationAction::BlockAndTerminate => EventAction::BlockAndTerminate,
            // Neither emits an event; a passthrough that got here was blocked.
            ViolationAction::Block | ViolationAction::Passthrough => EventAction::Block,
        }
    }
}

/// Where in what the sandbox sent a placeholder (or a refused part) was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Location {
    /// The HTTP method or scheme.
    Method,
    /// A header name or value.
    Header,
    /// Basic credentials (decoded from base64).
    BasicAuth,
    /// The request path.
    Path,
    /// The query string.
    Query,
    /// The request body.
    Body,
    /// A trailer.
    Trailer,
    /// A WebSocket frame.
    Websocket,
    /// The bytes of a non-HTTP stream.
    Stream,
    /// A `CONNECT` request to a proxy address inside the sandbox.
    Connect,
    /// A DNS query name.
    DnsName,
}

impl Location {
    /// The kebab-case name, as in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Method => "method",
            Location::Header => "header",
            Location::BasicAuth => "basic-auth",
            Location::Path => "path",
            Location::Query => "query",
            Location::Body => "body",
            Location::Trailer => "trailer",
            Location::Websocket => "websocket",
            Location::Stream => "stream",
            Location::Connect => "connect",
            Location::DnsName => "dns-name",
        }
    }
}

/// One audit event.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Event {
    /// [`EVENT_SCHEMA_VERSION`].
    pub schema: u32,
    /// Unique id: the sandbox's id and this event's sequence number in it.
    pub id: String,
    /// RFC 3339 UTC timestamp with milliseconds.
    pub ts: String,
    /// The same instant in milliseconds since the Unix epoch (for OCSF's `time`).
    #[serde(skip)]
    pub time_ms: u64,
    /// Sandbox id.
    pub sandbox: String,
    /// Sandbox name, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox_name: Option<String>,
    /// Kind.
    pub kind: EventKind,
    /// Destination name, when known (query name, or a name the sandbox resolved to `addr`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Destination address (`ip:port`, or `ip` for DNS answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// The protocol concerned.
    pub protocol: EventProtocol,
    /// The rule that decided (`default` for the policy's default, `guard` for the fixed
    /// refusals, `rebind-protection`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// What the boundary did.
    pub action: EventAction,
    /// The secret concerned, by env name (never its value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The TLS server name the sandbox sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// The HTTP `Host` of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Where in the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// How the placeholder was written (`raw`, `percent`, `json`, `base64`, `hex`, `base32`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub form: Option<Form>,
    /// The main command's exit status ([`EventKind::SandboxExited`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The limit reached ([`EventKind::LimitHit`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    /// Free-form detail (error text, refusal reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Event {
    /// A new event stamped now.
    pub fn new(sandbox: &str, kind: EventKind, protocol: EventProtocol) -> Event {
        let now = now_ms();
        Event {
            schema: EVENT_SCHEMA_VERSION,
            id: String::new(),
            time_ms: now,
            ts: rfc3339(now / 1000, (now % 1000) as u32),
            sandbox: sandbox.to_owned(),
            sandbox_name: None,
            exit_code: None,
            limit: None,
            kind,
            name: None,
            addr: None,
            protocol,
            rule: None,
            action: EventAction::Deny,
            detail: None,
            secret: None,
            sni: None,
            host: None,
            location: None,
            form: None,
        }
    }
}

/// A callback that receives every event.
pub type EventListener = Box<dyn Fn(&Event) + Send + Sync>;

/// Where events go. Cheap to clone; empty by default.
///
/// The sink numbers the events of one sandbox and stamps each with the sandbox's id and
/// name ([`EventSink::for_sandbox`]), so every emitter only says what happened.
#[derive(Clone, Default)]
pub struct EventSink {
    listeners: Arc<Vec<EventListener>>,
    identity: Arc<Identity>,
    level: EventLevel,
}

#[derive(Default)]
struct Identity {
    id: String,
    name: Option<String>,
    seq: AtomicU64,
}

impl fmt::Debug for EventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventSink({} listeners)", self.listeners.len())
    }
}

impl EventSink {
    /// A sink that calls each of `listeners`.
    pub fn new(listeners: Vec<EventListener>) -> EventSink {
        EventSink {
            listeners: Arc::new(listeners),
            ..EventSink::default()
        }
    }

    /// The same listeners, stamping events with sandbox `id` and `name` and numbering them
    /// from 1.
    pub fn for_sandbox(mut self, id: &str, name: Option<&str>) -> EventSink {
        self.identity = Arc::new(Identity {
            id: id.to_owned(),
            name: name.map(str::to_owned),
            seq: AtomicU64::new(0),
        });
        self
    }

    /// Record at `level`.
    pub fn with_level(mut self, level: EventLevel) -> EventSink {
        self.level = level;
        self
    }

    /// Whether anyone listens (emitters skip building events nobody reads).
    pub fn is_active(&self) -> bool {
        !self.listeners.is_empty()
    }

    /// Whether allowed connections are recorded.
    pub fn records_allowed(&self) -> bool {
        self.is_active() && self.level == EventLevel::All
    }

    /// A listener appending JSON lines to `file` (flushed per event: an audit trail should
    /// survive a crash).
    pub fn jsonl_file(file: std::fs::File) -> EventListener {
        EventSink::jsonl_with(file, |e| serde_json::to_vec(e).ok())
    }

    /// A listener appending one line per event to `file`, as `render` writes it.
    pub fn jsonl_with(
        file: std::fs::File,
        render: impl Fn(&Event) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> EventListener {
        let file = Mutex::new(file);
        Box::new(move |e: &Event| {
            if let (Some(mut line), Ok(mut f)) = (render(e), file.lock()) {
                line.push(b'\n');
                let _ = f.write_all(&line);
            }
        })
    }

    /// Deliver one event.
    pub fn emit(&self, mut event: Event) {
        tracing::info!(kind = ?event.kind, name = ?event.name, addr = ?event.addr, rule = ?event.rule, detail = ?event.detail, "event");
        if self.listeners.is_empty() {
            return;
        }
        let seq = self.identity.seq.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.identity.id.is_empty() {
            event.sandbox.clone_from(&self.identity.id);
        }
        event.sandbox_name.clone_from(&self.identity.name);
        event.id = format!("{}-{seq}", event.sandbox);
        for l in self.listeners.iter() {
            l(&event);
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `secs.millis` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn rfc3339(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sink_numbers_events_and_stamps_the_sandbox() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let sink = EventSink::new(vec![Box::new(move |e: &Event| {
            s2.lock()
                .unwrap()
                .push((e.id.clone(), e.sandbox.clone(), e.sandbox_name.clone()));
        })])
        .for_sandbox("abc123", Some("agent"));
        sink.emit(Event::new(
            "",
            EventKind::SandboxStarted,
            EventProtocol::None,
        ));
        sink.emit(Event::new(
            "",
            EventKind::SandboxExited,
            EventProtocol::None,
        ));
        let seen = seen.lock().unwrap();
        let name = Some("agent".to_owned());
        assert_eq!(
            *seen,
            [
                ("abc123-1".to_owned(), "abc123".to_owned(), name.clone()),
                ("abc123-2".to_owned(), "abc123".to_owned(), name)
            ]
        );
    }

    #[test]
    fn formats_timestamps() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(1_795_350_000, 999), "2026-11-22T12:20:00.999Z");
    }

    #[test]
    fn serializes_without_empty_fields() {
        let mut e = Event::new("sb1", EventKind::DnsDenied, EventProtocol::Dns);
        e.name = Some("evil.example".into());
        e.rule = Some("deny@evil.example".into());
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(v["kind"], "dns-denied");
        assert_eq!(v["schema"], 1);
        assert_eq!(v["name"], "evil.example");
        assert_eq!(v["action"], "deny");
        assert!(v.get("addr").is_none());
    }

    #[test]
    fn vocabulary_serializes_as_before() {
        let mut e = Event::new("sb1", EventKind::SecretViolation, EventProtocol::Http);
        e.action = ViolationAction::BlockAndTerminate.into();
        e.location = Some(Location::BasicAuth);
        e.form = Some(Form::Base64);
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(v["protocol"], "http/1.1");
        assert_eq!(v["action"], "block-and-terminate");
        assert_eq!(v["location"], "basic-auth");
        assert_eq!(v["form"], "base64");
        e.location = Some(Location::DnsName);
        assert_eq!(serde_json::to_value(&e).unwrap()["location"], "dns-name");
    }
}
