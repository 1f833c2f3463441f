//! The answer to one query: parse, exfiltration check, policy, forward, rebind check, pins.

use super::forward::forward;
use crate::events::{EventKind, EventProtocol, Location};
use crate::state::SandboxState;
use crate::state::violation::{self, Place};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use standin_policy::egress::{Action, DomainName};
use standin_policy::secrets::dns_name::find_in_name;
use standin_policy::secrets::{Destination, Role};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Largest UDP answer when the query does not advertise a size (RFC 1035).
const CLASSIC_UDP_SIZE: usize = 512;

/// How the query arrived (UDP answers may have to be truncated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

/// The answer to one query, or `None` to drop it.
pub(super) async fn answer(
    state: &SandboxState,
    raw: &[u8],
    transport: Transport,
) -> Option<Vec<u8>> {
    let query = Message::from_vec(raw).ok()?;
    if query.metadata.message_type != MessageType::Query {
        return None;
    }
    if query.metadata.op_code != OpCode::Query {
        return reply(&query, ResponseCode::NotImp);
    }
    if query.queries.len() != 1 {
        return reply(&query, ResponseCode::FormErr);
    }
    let q = &query.queries[0];
    if state.has_secrets() {
        let set = state.secret_set();
        let set = &*set;
        // A query name has no destination identity: each placeholder's role is the one it has
        // for an unknown host.
        let nowhere = Destination {
            host: None,
            host_pinned: false,
            pinned_names: &[],
            tls: false,
        };
        let action = |i: usize| match set.role(i, &nowhere) {
            Role::Violation(a) => Some(a),
            _ => None,
        };
        if let Some((secret, form)) = find_in_name(set, q.name().iter(), &|i| action(i).is_some())
            && let Some(action) = action(secret)
        {
            let ascii = q.name().to_ascii();
            violation::report(
                state,
                secret,
                form,
                action,
                &Place {
                    addr: SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 53),
                    sni: None,
                    host: None,
                    name: Some(&ascii),
                    location: Location::DnsName,
                    protocol: EventProtocol::Dns,
                },
            );
            return reply(&query, ResponseCode::NXDomain);
        }
    }
    let ascii = q.name().to_ascii();
    let Ok(name) = DomainName::parse(&ascii) else {
        let mut e = state.event(EventKind::DnsDenied, EventProtocol::Dns);
        e.name = Some(ascii);
        e.detail = Some("not a valid host name".into());
        state.config.events.emit(e);
        return reply(&query, ResponseCode::NXDomain);
    };
    let decision = state.config.policy.evaluate_dns(&name);
    if decision.action == Action::Deny {
        let mut e = state.event(EventKind::DnsDenied, EventProtocol::Dns);
        e.name = Some(name.to_string());
        e.rule = Some(state.rule_name(decision));
        state.config.events.emit(e);
        return reply(&query, ResponseCode::NXDomain);
    }
    if matches!(q.query_type(), RecordType::HTTPS | RecordType::SVCB) {
        return reply(&query, ResponseCode::NoError);
    }

    let upstream_reply = match forward(state, raw).await {
        Ok(bytes) => bytes,
        Err(err) => {
            let mut e = state.event(EventKind::UpstreamFailed, EventProtocol::Dns);
            e.name = Some(name.to_string());
            e.detail = Some(err.to_string());
            state.config.events.emit(e);
            return reply(&query, ResponseCode::ServFail);
        }
    };
    let Ok(response) = Message::from_vec(&upstream_reply) else {
        return reply(&query, ResponseCode::ServFail);
    };
    if response.metadata.id != query.metadata.id || response.queries != query.queries {
        return reply(&query, ResponseCode::ServFail);
    }

    let mut addrs: Vec<(IpAddr, u32)> = Vec::new();
    for rec in &response.answers {
        let ip = match &rec.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            _ => continue,
        };
        if !state
            .config
            .policy
            .allows_resolved_address(ip, &|a| state.is_host(a))
        {
            let mut e = state.event(EventKind::RebindBlocked, EventProtocol::Dns);
            e.name = Some(name.to_string());
            e.addr = Some(ip.to_string());
            e.rule = Some("rebind-protection".into());
            state.config.events.emit(e);
            return reply(&query, ResponseCode::NXDomain);
        }
        addrs.push((ip, rec.ttl));
    }
    if !addrs.is_empty()
        && let Ok(mut pins) = state.pins.write()
    {
        let now = Instant::now();
        for (ip, ttl) in addrs {
            pins.insert(name.clone(), ip, Duration::from_secs(u64::from(ttl)), now);
        }
    }

    if transport == Transport::Udp {
        let limit = query
            .edns
            .as_ref()
            .map(|e| usize::from(e.max_payload()).max(CLASSIC_UDP_SIZE))
            .unwrap_or(CLASSIC_UDP_SIZE);
        if upstream_reply.len() > limit {
            return response.truncate().to_vec().ok();
        }
    }
    Some(upstream_reply)
}

/// An empty answer with `code`, echoing the question.
fn reply(query: &Message, code: ResponseCode) -> Option<Vec<u8>> {
    let mut m = Message::error_msg(query.metadata.id, query.metadata.op_code, code);
    m.metadata.recursion_desired = query.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.add_queries(query.queries.iter().cloned());
    m.to_vec().ok()
}
