//! Forwarding a query to the configured upstream resolvers: in order, each attempt bounded,
//! the whole bounded by [`DNS_DEADLINE`]; UDP, retried over TCP when truncated.

use crate::state::SandboxState;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Largest DNS message accepted from the sandbox or an upstream.
pub(crate) const MAX_DNS_MESSAGE: usize = 65_535;
/// Longest one upstream attempt may take.
pub(crate) const DNS_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
/// Longest the forwarder spends on one query before answering SERVFAIL.
pub(crate) const DNS_DEADLINE: Duration = Duration::from_secs(3);

/// Why no upstream answered.
#[derive(Debug, Error)]
pub(super) enum ForwardError {
    /// The sandbox has no upstream resolver.
    #[error("no upstream resolver configured")]
    NoUpstream,
    /// Every upstream failed or timed out (one entry per attempt).
    #[error("{}", .0.join("; "))]
    AllFailed(Vec<String>),
}

/// Forward the query bytes to the upstreams, in order, within [`DNS_DEADLINE`].
pub(super) async fn forward(state: &SandboxState, raw: &[u8]) -> Result<Vec<u8>, ForwardError> {
    let deadline = Instant::now() + DNS_DEADLINE;
    let upstreams = &state.config.dns_upstreams;
    if upstreams.is_empty() {
        return Err(ForwardError::NoUpstream);
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
    Err(ForwardError::AllFailed(errors))
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
