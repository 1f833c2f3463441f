//! Relaying a non-HTTP stream while scanning what the sandbox sends for placeholders.
//!
//! No secret is ever substituted into an unparsed protocol, but a placeholder in one is still
//! a violation (SSH, SMTP, a database protocol, or TLS plaintext that is not HTTP). Bytes flow
//! as they come; only a suffix that could be the start of a placeholder is held back until
//! the next read decides it, so interactive protocols are not delayed.

use crate::http::ConnInfo;
use crate::idle::{Activity, Tracked, until_idle};
use crate::scan_gate::ScanGate;
use crate::violation::{self, Place};
use bytes::BytesMut;
use standin_policy::secrets::Hit;
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
        let mut gate = ScanGate::new(patterns);
        let mut buf = BytesMut::with_capacity(CHUNK);
        loop {
            buf.reserve(CHUNK);
            match gr.read_buf(&mut buf).await {
                Ok(0) | Err(_) => {
                    let rest = gate.finish()?;
                    let _ = uw.write_all(&rest).await;
                    let _ = uw.shutdown().await;
                    return Ok::<(), Hit>(());
                }
                Ok(_) => {}
            }
            let ready = gate.push(buf.split().freeze())?;
            if !ready.is_empty() && uw.write_all(&ready).await.is_err() {
                return Ok(());
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
