//! Relaying a non-HTTP stream while scanning what the sandbox sends for placeholders.
//!
//! No secret is ever substituted into an unparsed protocol, but a placeholder in one is still
//! a violation (SSH, SMTP, a database protocol, or TLS plaintext that is not HTTP). Bytes flow
//! as they come; only a suffix that could be the start of a placeholder is held back until
//! the next read decides it, so interactive protocols are not delayed.

use crate::http::ConnInfo;
use crate::idle::{Activity, Tracked, until_idle};
use crate::violation::{self, Place};
use standin_policy::secrets::{Hit, StreamScanner};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Read buffer size of the scanned direction.
const CHUNK: usize = 16 * 1024;

/// Relay `guest` ⇄ `upstream`, scanning guest → upstream. Returns when both directions are
/// done, on a violation (the connection is then marked blocked), or at the idle timeout.
pub async fn relay<G, U>(guest: G, upstream: U, info: Arc<ConnInfo>)
where
    G: AsyncRead + AsyncWrite + Unpin + Send,
    U: AsyncRead + AsyncWrite + Unpin + Send,
{
    let plan = info.plan(info.sni.as_ref());
    let activity = Activity::new();
    let guest = Tracked::new(guest, activity.clone());
    let upstream = Tracked::new(upstream, activity.clone());
    let (mut gr, mut gw) = tokio::io::split(guest);
    let (mut ur, mut uw) = tokio::io::split(upstream);
    let patterns = plan.violations.clone();
    let up = async move {
        let mut scanner = StreamScanner::new(patterns);
        let mut held: Vec<u8> = Vec::new();
        let mut held_start = 0u64;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match gr.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    scanner.finish()?;
                    let _ = uw.write_all(&held).await;
                    let _ = uw.shutdown().await;
                    return Ok::<(), Hit>(());
                }
                Ok(n) => n,
            };
            let safe = scanner.push(&buf[..n])?;
            held.extend_from_slice(&buf[..n]);
            let ready = usize::try_from(safe - held_start)
                .unwrap_or(0)
                .min(held.len());
            if ready > 0 {
                if uw.write_all(&held[..ready]).await.is_err() {
                    return Ok(());
                }
                held.drain(..ready);
                held_start += ready as u64;
            }
        }
    };
    let down = async move {
        let _ = tokio::io::copy(&mut ur, &mut gw).await;
        let _ = gw.shutdown().await;
    };
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        tokio::select! {
            r = &mut up, if !up_done => {
                up_done = true;
                if let Err(hit) = r {
                    let host = info.sni.as_ref().map(|s| s.to_string());
                    if let Some(action) = plan.actions.get(hit.secret).copied().flatten() {
                        violation::report(
                            &info.shared,
                            hit.secret,
                            hit.form,
                            action,
                            &Place {
                                addr: info.dst,
                                sni: host.as_deref(),
                                host: None,
                                name: info.names.first().map(|n| n.as_str()),
                                location: "stream",
                                protocol: "tcp",
                            },
                        );
                    }
                    info.mark_blocked();
                    return;
                }
            }
            _ = &mut down, if !down_done => down_done = true,
            _ = until_idle(&activity, info.shared.config.idle_timeout) => return,
        }
    }
}
