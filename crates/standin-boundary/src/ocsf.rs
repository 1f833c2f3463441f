//! Events in the Open Cybersecurity Schema Framework (OCSF 1.3), the form security teams'
//! pipelines ingest: connections and requests as *Network Activity* (4001), DNS decisions as
//! *DNS Activity* (4003), secret violations, terminations and limit hits as *Detection
//! Finding* (2004), and the sandbox's start, exit and secret rotations as *Process Activity*
//! (1007). Every OCSF event also carries the native event whole under `unmapped`, so nothing
//! is lost in translation. The mapping is documented in `docs/EVENTS.md`.

use crate::events::{Event, EventAction, EventKind, EventListener, EventSink};
use serde_json::{Value, json};

/// The OCSF schema version these events follow.
pub const OCSF_VERSION: &str = "1.3.0";

/// A listener appending one OCSF JSON object per line to `file`.
pub fn jsonl_file(file: std::fs::File) -> EventListener {
    EventSink::jsonl_with(file, |e| serde_json::to_vec(&to_ocsf(e)).ok())
}

/// The OCSF form of `e`.
pub fn to_ocsf(e: &Event) -> Value {
    let (class_uid, category_uid, activity_id) = class_of(e);
    let allowed = matches!(
        e.action,
        EventAction::Allow | EventAction::Substitute | EventAction::Passthrough
    );
    let blocked = matches!(
        e.action,
        EventAction::Deny
            | EventAction::Block
            | EventAction::BlockAndLog
            | EventAction::BlockAndTerminate
    );
    let mut v = json!({
        "class_uid": class_uid,
        "category_uid": category_uid,
        "activity_id": activity_id,
        "type_uid": class_uid * 100 + activity_id,
        "time": e.time_ms,
        "severity_id": severity(e),
        "status_id": if blocked { 2 } else { 1 },
        "message": message(e),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": e.id,
            "product": {"name": "standin", "vendor_name": "standin", "version": env!("CARGO_PKG_VERSION")},
        },
        "device": {"uid": e.sandbox, "name": e.sandbox_name, "type_id": 99, "type": "sandbox"},
        "unmapped": e,
    });
    if allowed || blocked {
        v["action_id"] = json!(if allowed { 1 } else { 2 });
        v["disposition_id"] = json!(if allowed { 1 } else { 2 });
    }
    if let Some(endpoint) = endpoint(e) {
        v["dst_endpoint"] = endpoint;
    }
    match class_uid {
        4003 => v["query"] = json!({"hostname": e.name}),
        2004 => {
            v["finding_info"] = json!({
                "uid": e.id,
                "title": message(e),
                "types": [kind_name(e.kind)],
            });
        }
        1007 if e.exit_code.is_some() => v["exit_code"] = json!(e.exit_code),
        _ => {}
    }
    if let Some(p) = protocol_name(e) {
        v["connection_info"] = json!({"protocol_name": p});
    }
    v
}

fn class_of(e: &Event) -> (u32, u32, u32) {
    const NETWORK: (u32, u32) = (4001, 4);
    const DNS: (u32, u32) = (4003, 4);
    const FINDING: (u32, u32) = (2004, 2);
    const PROCESS: (u32, u32) = (1007, 1);
    let with = |(c, cat): (u32, u32), activity: u32| (c, cat, activity);
    match e.kind {
        EventKind::ConnectionAllowed => with(NETWORK, 1), // Open
        EventKind::ConnectionDenied => with(NETWORK, 5),  // Refuse
        EventKind::UpstreamFailed => with(NETWORK, 4),    // Fail
        EventKind::RequestBlocked => with(NETWORK, 5),    // Refuse
        EventKind::SecretSubstituted => with(NETWORK, 6), // Traffic
        EventKind::SecretPassthrough => with(NETWORK, 6), // Traffic
        EventKind::DnsDenied | EventKind::RebindBlocked => with(DNS, 2), // Response
        EventKind::SecretViolation | EventKind::SandboxTerminated | EventKind::LimitHit => {
            with(FINDING, 1) // Create
        }
        EventKind::SandboxStarted => with(PROCESS, 1), // Launch
        EventKind::SandboxExited => with(PROCESS, 2),  // Terminate
        EventKind::SecretRotated => with(PROCESS, 99), // Other
    }
}

/// OCSF severity: 1 informational, 2 low, 3 medium, 4 high.
fn severity(e: &Event) -> u32 {
    match (e.kind, e.action) {
        (EventKind::SandboxTerminated, _) | (_, EventAction::BlockAndTerminate) => 4,
        (EventKind::SecretViolation, EventAction::BlockAndLog) => 3,
        (EventKind::SecretViolation, _) | (EventKind::LimitHit, _) => 2,
        (EventKind::ConnectionDenied | EventKind::DnsDenied | EventKind::RebindBlocked, _)
        | (EventKind::RequestBlocked, _) => 2,
        _ => 1,
    }
}

fn kind_name(k: EventKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn message(e: &Event) -> String {
    let mut m = kind_name(e.kind);
    for part in [&e.secret, &e.name, &e.addr, &e.detail]
        .into_iter()
        .flatten()
    {
        m.push(' ');
        m.push_str(part);
    }
    m
}

fn endpoint(e: &Event) -> Option<Value> {
    let host = e.sni.as_ref().or(e.host.as_ref()).or(e.name.as_ref());
    let (ip, port) = match e.addr.as_deref().map(split_addr) {
        Some((ip, port)) => (Some(ip), port),
        None => (None, None),
    };
    (host.is_some() || ip.is_some()).then(|| json!({"hostname": host, "ip": ip, "port": port}))
}

/// `ip:port`, `[v6]:port` or a bare address.
fn split_addr(a: &str) -> (String, Option<u16>) {
    match a.parse::<std::net::SocketAddr>() {
        Ok(sa) => (sa.ip().to_string(), Some(sa.port())),
        Err(_) => (a.to_owned(), None),
    }
}

fn protocol_name(e: &Event) -> Option<&'static str> {
    use crate::events::EventProtocol as P;
    match e.protocol {
        P::Tcp | P::Http => Some("tcp"),
        P::Dns => Some("udp"),
        P::None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventProtocol, Location};

    #[test]
    fn a_violation_is_a_detection_finding_with_the_native_event_inside() {
        let mut e = Event::new("sb1", EventKind::SecretViolation, EventProtocol::Http);
        e.id = "sb1-7".into();
        e.action = EventAction::BlockAndTerminate;
        e.secret = Some("OPENAI_API_KEY".into());
        e.addr = Some("[2a0b::1]:443".into());
        e.sni = Some("evil.example".into());
        e.location = Some(Location::Header);
        let v = to_ocsf(&e);
        assert_eq!(v["class_uid"], 2004);
        assert_eq!(v["type_uid"], 200401);
        assert_eq!(v["severity_id"], 4);
        assert_eq!(v["action_id"], 2);
        assert_eq!(v["metadata"]["uid"], "sb1-7");
        assert_eq!(v["dst_endpoint"]["ip"], "2a0b::1");
        assert_eq!(v["dst_endpoint"]["port"], 443);
        assert_eq!(v["dst_endpoint"]["hostname"], "evil.example");
        assert_eq!(v["unmapped"]["kind"], "secret-violation");
        assert_eq!(v["finding_info"]["types"][0], "secret-violation");
    }

    #[test]
    fn every_kind_has_a_class() {
        use EventKind as K;
        for k in [
            K::ConnectionDenied,
            K::DnsDenied,
            K::RebindBlocked,
            K::UpstreamFailed,
            K::SecretViolation,
            K::RequestBlocked,
            K::SandboxTerminated,
            K::SecretRotated,
            K::SecretSubstituted,
            K::SecretPassthrough,
            K::ConnectionAllowed,
            K::SandboxStarted,
            K::SandboxExited,
            K::LimitHit,
        ] {
            let v = to_ocsf(&Event::new("s", k, EventProtocol::None));
            let class = v["class_uid"].as_u64().unwrap();
            assert!([4001, 4003, 2004, 1007].contains(&class), "{k:?}");
            assert_eq!(v["type_uid"].as_u64().unwrap() / 100, class, "{k:?}");
        }
    }
}
