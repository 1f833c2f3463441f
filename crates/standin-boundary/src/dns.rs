//! The DNS forwarder.
//!
//! Every query the sandbox sends, to whatever resolver address (the capture redirects port 53
//! for all of them), arrives here and is:
//! 1. parsed (one question, opcode QUERY, at most [`MAX_DNS_MESSAGE`] bytes; anything else
//!    gets FORMERR/REFUSED/NOTIMP, or is dropped if it is not a DNS query at all);
//! 2. evaluated as egress: a denied name is answered NXDOMAIN at once, never forwarded;
//! 3. forwarded to the configured upstream resolvers (never to the address the sandbox
//!    chose), in order, each attempt bounded, the whole bounded by [`DNS_DEADLINE`]; a dead or
//!    slow upstream yields SERVFAIL in time;
//! 4. checked for rebinding: an answer carrying any non-public address becomes NXDOMAIN
//!    unless a rule explicitly allows that address;
//! 5. pinned: every A/AAAA the sandbox receives is recorded in the pin table.
//!
//! With secrets, a query name carrying a placeholder (raw, hex, base32, base64, split across
//! labels) is a violation of that secret: NXDOMAIN, never forwarded, and the secret's action.
//!
//! HTTPS and SVCB queries get an empty NOERROR: their answers can carry ECH keys, and with ECH
//! the boundary would no longer see the real server name.

use crate::events::EventKind;
use crate::shared::Shared;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use standin_policy::egress::{Action, DomainName};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Largest DNS message accepted from the sandbox or an upstream.
pub const MAX_DNS_MESSAGE: usize = 65_535;
/// Largest UDP answer when the query does not advertise a size (RFC 1035).
const CLASSIC_UDP_SIZE: usize = 512;
/// Longest one upstream attempt may take.
pub const DNS_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
/// Longest the forwarder spends on one query before answering SERVFAIL.
pub const DNS_DEADLINE: Duration = Duration::from_secs(3);
/// Most concurrent TCP DNS connections per listener.
const MAX_TCP_CLIENTS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

/// Serve UDP queries.
pub async fn serve_udp(sock: UdpSocket, shared: Arc<Shared>) {
    let sock = Arc::new(sock);
    let mut buf = vec![0u8; MAX_DNS_MESSAGE];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(permit) = shared.dns_slots.clone().try_acquire_owned() else {
            continue; // too many in flight: dropped, the client retries
        };
        let query = buf[..n].to_vec();
        let (sock, shared) = (sock.clone(), shared.clone());
        tokio::spawn(async move {
            let _permit = permit;
            if let Some(reply) = answer(&shared, &query, Transport::Udp).await {
                let _ = sock.send_to(&reply, peer).await;
            }
        });
    }
}

/// Serve TCP queries (two-byte length prefix, several per connection).
pub async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_TCP_CLIENTS));
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue; // dropped: the client retries or fails fast
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut buf = vec![0u8; MAX_DNS_MESSAGE];
            loop {
                let read = tokio::time::timeout(Duration::from_secs(10), stream.read_u16()).await;
                let Ok(Ok(len)) = read else { return };
                let len = usize::from(len);
                if stream.read_exact(&mut buf[..len]).await.is_err() {
                    return;
                }
                let Some(reply) = answer(&shared, &buf[..len], Transport::Tcp).await else {
                    return;
                };
                let mut out = Vec::with_capacity(reply.len() + 2);
                out.extend_from_slice(&(reply.len() as u16).to_be_bytes());
                out.extend_from_slice(&reply);
                if stream.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Resolve `name` (A and AAAA) the way the sandbox's own queries are: policy, exfiltration
/// check, rebind protection, and pins. For the boundary's own lookups (CONNECT targets).
pub async fn resolve(shared: &Shared, name: &DomainName) -> Vec<IpAddr> {
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;
    let Ok(qname) = Name::from_ascii(format!("{name}.")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, rt) in [RecordType::A, RecordType::AAAA].into_iter().enumerate() {
        let mut m = Message::new(0x5a00 + i as u16, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(qname.clone(), rt));
        let Ok(raw) = m.to_vec() else { continue };
        let Some(reply) = answer(shared, &raw, Transport::Tcp).await else {
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

/// The answer to one query, or `None` to drop it.
async fn answer(shared: &Shared, raw: &[u8], transport: Transport) -> Option<Vec<u8>> {
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
    if let Some(set) = &shared.secrets {
        // A query name has no destination identity: each placeholder's role is the one it has
        // for an unknown host.
        let nowhere = standin_policy::secrets::Destination {
            host: None,
            host_pinned: false,
            pinned_names: &[],
            tls: false,
        };
        let action = |i: usize| match set.role(i, &nowhere) {
            standin_policy::secrets::Role::Violation(a) => Some(a),
            _ => None,
        };
        if let Some((secret, form)) =
            standin_policy::secrets::dns_name::find_in_name(set, q.name().iter(), &|i| {
                action(i).is_some()
            })
            && let Some(action) = action(secret)
        {
            let ascii = q.name().to_ascii();
            crate::violation::report(
                shared,
                secret,
                form,
                action,
                &crate::violation::Place {
                    addr: std::net::SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 53),
                    sni: None,
                    host: None,
                    name: Some(&ascii),
                    location: "dns-name",
                    protocol: "dns",
                },
            );
            return reply(&query, ResponseCode::NXDomain);
        }
    }
    let ascii = q.name().to_ascii();
    let Ok(name) = DomainName::parse(&ascii) else {
        let mut e = shared.event(EventKind::DnsDenied, "dns");
        e.name = Some(ascii);
        e.detail = Some("not a valid host name".into());
        shared.config.events.emit(e);
        return reply(&query, ResponseCode::NXDomain);
    };
    let decision = shared.config.policy.evaluate_dns(&name);
    if decision.action == Action::Deny {
        let mut e = shared.event(EventKind::DnsDenied, "dns");
        e.name = Some(name.to_string());
        e.rule = Some(shared.rule_name(decision));
        shared.config.events.emit(e);
        return reply(&query, ResponseCode::NXDomain);
    }
    if matches!(q.query_type(), RecordType::HTTPS | RecordType::SVCB) {
        return reply(&query, ResponseCode::NoError);
    }

    let upstream_reply = match forward(shared, raw).await {
        Ok(bytes) => bytes,
        Err(detail) => {
            let mut e = shared.event(EventKind::UpstreamFailed, "dns");
            e.name = Some(name.to_string());
            e.detail = Some(detail);
            shared.config.events.emit(e);
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
        if !shared
            .config
            .policy
            .allows_resolved_address(ip, &|a| shared.is_host(a))
        {
            let mut e = shared.event(EventKind::RebindBlocked, "dns");
            e.name = Some(name.to_string());
            e.addr = Some(ip.to_string());
            e.rule = Some("rebind-protection".into());
            shared.config.events.emit(e);
            return reply(&query, ResponseCode::NXDomain);
        }
        addrs.push((ip, rec.ttl));
    }
    if !addrs.is_empty()
        && let Ok(mut pins) = shared.pins.write()
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

/// Forward the query bytes to the upstreams, in order, within [`DNS_DEADLINE`].
async fn forward(shared: &Shared, raw: &[u8]) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + DNS_DEADLINE;
    let upstreams = &shared.config.dns_upstreams;
    if upstreams.is_empty() {
        return Err("no upstream resolver configured".into());
    }
    let mut errors = Vec::new();
    for &upstream in upstreams {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let attempt = DNS_ATTEMPT_TIMEOUT.min(left);
        match tokio::time::timeout(attempt, exchange(upstream, raw)).await {
            Ok(Ok(bytes)) => return Ok(bytes),
            Ok(Err(e)) => errors.push(format!("{upstream}: {e}")),
            Err(_) => errors.push(format!("{upstream}: timed out")),
        }
    }
    Err(errors.join("; "))
}

/// One UDP exchange, retried over TCP when the answer is truncated.
async fn exchange(upstream: SocketAddr, raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = if upstream.is_ipv4() {
        "0.0.0.0:0".parse().unwrap_or(upstream)
    } else {
        "[::]:0".parse().unwrap_or(upstream)
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(upstream).await?;
    sock.send(raw).await?;
    let mut buf = vec![0u8; MAX_DNS_MESSAGE];
    loop {
        let n = sock.recv(&mut buf).await?;
        // Ignore anything that is not the answer to this query (wrong ID).
        if n >= 12 && buf[..2] == raw[..2] && buf[2] & 0x80 != 0 {
            if buf[2] & 0x02 != 0 {
                return exchange_tcp(upstream, raw).await;
            }
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn exchange_tcp(upstream: SocketAddr, raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(upstream).await?;
    let mut out = Vec::with_capacity(raw.len() + 2);
    out.extend_from_slice(&(raw.len() as u16).to_be_bytes());
    out.extend_from_slice(raw);
    s.write_all(&out).await?;
    let len = usize::from(s.read_u16().await?);
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Upstream resolvers from a `resolv.conf` text (port 53). Loopback resolvers are kept: the
/// forwarder runs on the host, where they are reachable.
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            (it.next()? == "nameserver").then_some(())?;
            let addr = it.next()?;
            let ip: IpAddr = addr.split('%').next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_resolv_conf() {
        let text = "# comment\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\nsearch x\nnameserver bogus\n";
        assert_eq!(
            upstreams_from_resolv_conf(text),
            vec![
                "192.0.2.53:53".parse::<SocketAddr>().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
    }
}
