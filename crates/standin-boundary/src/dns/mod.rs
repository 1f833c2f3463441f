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

mod answer;
mod forward;
mod resolv_conf;
mod resolve;

pub use resolv_conf::upstreams_from_resolv_conf;
pub(crate) use resolve::resolve;

use crate::state::SandboxState;
use answer::{Transport, answer};
use forward::MAX_DNS_MESSAGE;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// Most concurrent TCP DNS connections per listener.
const MAX_TCP_CLIENTS: usize = 64;

/// Serve UDP queries.
pub(crate) async fn serve_udp(sock: UdpSocket, state: Arc<SandboxState>) {
    let sock = Arc::new(sock);
    let mut buf = vec![0u8; MAX_DNS_MESSAGE];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(permit) = state.dns_slots.clone().try_acquire_owned() else {
            continue; // too many in flight: dropped, the client retries
        };
        let query = buf[..n].to_vec();
        let (sock, state) = (sock.clone(), state.clone());
        tokio::spawn(async move {
            let _permit = permit;
            if let Some(reply) = answer(&state, &query, Transport::Udp).await {
                let _ = sock.send_to(&reply, peer).await;
            }
        });
    }
}

/// Serve TCP queries (two-byte length prefix, several per connection).
pub(crate) async fn serve_tcp(listener: TcpListener, state: Arc<SandboxState>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_TCP_CLIENTS));
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue; // dropped: the client retries or fails fast
        };
        let state = state.clone();
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
                let Some(reply) = answer(&state, &buf[..len], Transport::Tcp).await else {
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
