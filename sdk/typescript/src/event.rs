//! Events, handed to JavaScript as plain objects.

use napi_derive::napi;

/// One audit event (the Rust SDK's `Event`; names in camelCase, enums as their strings).
#[napi(object)]
#[derive(Debug)]
pub struct NativeEvent {
    /// RFC 3339 UTC timestamp with milliseconds.
    pub timestamp: String,
    /// The sandbox's id.
    pub sandbox: String,
    /// What happened (`secret-violation`, `connection-denied`, …).
    pub kind: String,
    /// Destination name, when known.
    pub name: Option<String>,
    /// Destination address.
    pub addr: Option<String>,
    /// The protocol concerned.
    pub protocol: String,
    /// The rule that decided.
    pub rule: Option<String>,
    /// What the boundary did.
    pub action: String,
    /// The secret concerned, by its environment variable's name (never its value).
    pub secret: Option<String>,
    /// The TLS server name the sandbox sent.
    pub sni: Option<String>,
    /// The HTTP `Host` of the request.
    pub host: Option<String>,
    /// Where in the request.
    pub location: Option<String>,
    /// How the placeholder was written.
    pub form: Option<String>,
    /// Free-form detail.
    pub detail: Option<String>,
}

impl From<&standin::Event> for NativeEvent {
    fn from(e: &standin::Event) -> NativeEvent {
        NativeEvent {
            timestamp: e.timestamp.clone(),
            sandbox: e.sandbox.clone(),
            kind: e.kind.as_str().to_owned(),
            name: e.name.clone(),
            addr: e.addr.clone(),
            protocol: e.protocol.as_str().to_owned(),
            rule: e.rule.clone(),
            action: e.action.as_str().to_owned(),
            secret: e.secret.clone(),
            sni: e.sni.clone(),
            host: e.host.clone(),
            location: e.location.map(|l| l.as_str().to_owned()),
            form: e.form.map(|f| f.as_str().to_owned()),
            detail: e.detail.clone(),
        }
    }
}
