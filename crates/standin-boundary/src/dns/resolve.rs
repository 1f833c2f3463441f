//! The boundary's own lookups (CONNECT targets), answered like the sandbox's queries.

use super::answer::{Transport, answer};
use crate::state::SandboxState;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use standin_policy::egress::DomainName;
use std::net::IpAddr;

/// Resolve `name` (A and AAAA) the way the sandbox's own queries are: policy, exfiltration
/// check, rebind protection, and pins. For the boundary's own lookups (CONNECT targets).
pub(crate) async fn resolve(state: &SandboxState, name: &DomainName) -> Vec<IpAddr> {
    let Ok(qname) = Name::from_ascii(format!("{name}.")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, rt) in [RecordType::A, RecordType::AAAA].into_iter().enumerate() {
        let mut m = Message::new(0x5a00 + i as u16, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(qname.clone(), rt));
        let Ok(raw) = m.to_vec() else { continue };
        let Some(reply) = answer(state, &raw, Transport::Tcp).await else {
            continue;
        };
        let Ok(reply) = Message::from_vec(&reply) else {
            continue;
        };
        for rec in &reply.answers {
            match &rec.data {
                RData::A(a) => out.push(IpAddr::V4(a.0)),
                RData::AAAA(a) => out.push(IpAddr::V6(a.0)),
                _ => {}
            }
        }
    }
    out
}
