//! Relaying a non-HTTP stream while scanning what the sandbox sends for placeholders.
//!
//! No secret is ever substituted into an unparsed protocol, but a placeholder in one is still
//! a violation (SSH, SMTP, a database protocol, or TLS plaintext that is not HTTP). Bytes flow
//! as they come; only a suffix that could be the start of a placeholder is held back until
//! the next read decides it, so interactive protocols are not delayed.
//!
//! From a destination that may hold a value (it is allowed to receive it, over HTTPS on another
//! connection if not on this one), the stream back is scrubbed of it like a response body:
//! values become placeholders, and only a suffix that could be the start of a value waits for
//! the next read.

use super::{SCRUB_STALL, ScanGate};
use crate::conn::ConnCtx;
use crate::events::{EventProtocol, Location};
use crate::io::{Activity, Tracked, until_idle};
use crate::state::violation::{self, Place};
use bytes::BytesMut;
use standin_policy::secrets::{Hit, Scrubber};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

/// Read buffer size of the scanned direction.
const CHUNK: usize = 16 * 1024;

/// Copy `from` to `to` with every value replaced by its placeholder, until `from` ends (what
/// is still held then is flushed, scrubbed) or `to` fails.
async fn scrub_copy<R, W>(from: &mut R, to: &mut W, mut scrubber: Scrubber)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // What was read may hold a value: zeroized when freed.
    let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
    let mut out = Vec::with_capacity(CHUNK);
    loop {
        out.clear();
        let n = if scrubber.is_holding() {
            match tokio::time::timeout(SCRUB_STALL, from.read(&mut buf)).await {
                Ok(r) => r.unwrap_or(0),
                Err(_) => {
                    // The destination paused: let the held bytes go (see `SCRUB_STALL`).
                    scrubber.finish(&mut out);
                    if to.write_all(&out).await.is_err() {
                        return;
                    }
                    continue;
                }
            }
        } else {
            from.read(&mut buf).await.unwrap_or(0)
        };
        if n == 0 {
            scrubber.finish(&mut out);
            let _ = to.write_all(&out).await;
            return;
        }
        scrubber.push(&buf[..n], &mut out);
        if !out.is_empty() && to.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// Relay `guest` ⇄ `upstream`, scanning guest → upstream and scrubbing upstream → guest when
/// the destination may hold a value. Returns when both directions are done, on a violation
/// (the connection is then marked blocked), or at the idle timeout.
pub(crate) async fn relay<G, U>(guest: G, upstream: U, info: Arc<ConnCtx>)
where
    G: AsyncRead + AsyncWrite + Unpin + Send,
    U: AsyncRead + AsyncWrite + Unpin + Send,
{
    let plan = info.plan(info.sni.as_ref());
    if !plan.required.is_empty() {
        // A host bound to a `require` secret gets it in HTTP requests only.
        let _ = info.refuse(
            info.sni.as_ref().map(|n| n.as_str()),
            "a stream that is not HTTP to a host that must receive a managed secret (require)",
        );
        return;
    }
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
    let held = info.values_held(&plan);
    let scrubber = (!held.is_empty()).then(|| info.scrubber(held));
    let down = async move {
        match scrubber {
            Some(s) => scrub_copy(&mut ur, &mut gw, s).await,
            None => {
                let _ = tokio::io::copy(&mut ur, &mut gw).await;
            }
        }
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
                            &info.state,
                            hit.secret,
                            hit.form,
                            action,
                            &Place {
                                addr: info.dst,
                                sni: host.as_deref(),
                                host: None,
                                name: info.names.first().map(|n| n.as_str()),
                                location: Location::Stream,
                                protocol: EventProtocol::Tcp,
                            },
                        );
                    }
                    info.mark_blocked();
                    return;
                }
            }
            _ = &mut down, if !down_done => down_done = true,
            _ = until_idle(&activity, info.state.config.idle_timeout) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_secrets::one_secret;
    use std::time::Duration;

    #[tokio::test]
    async fn a_value_sent_back_in_pieces_arrives_as_its_placeholder() {
        let set = one_secret("KEY", b"sk-real-value");
        let (mut server, mut from) = tokio::io::duplex(64);
        let (mut to, mut client) = tokio::io::duplex(1024);
        let copy = tokio::spawn(async move {
            scrub_copy(&mut from, &mut to, Scrubber::new(set, Arc::new(vec![0]))).await;
        });
        for piece in [&b"key: sk-re"[..], b"al-va", b"lue\nbye sk-"] {
            server.write_all(piece).await.unwrap();
            server.flush().await.unwrap();
        }
        drop(server);
        copy.await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"key: $MSB_KEY\nbye sk-");
    }

    #[tokio::test]
    async fn bytes_held_back_go_when_the_destination_pauses() {
        let set = one_secret("KEY", b"sk-real-value");
        let (mut server, mut from) = tokio::io::duplex(64);
        let (mut to, mut client) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            scrub_copy(&mut from, &mut to, Scrubber::new(set, Arc::new(vec![0]))).await;
        });
        // An interactive peer: a message ending like the start of the value, then it waits
        // for an answer. The message must arrive whole without more bytes or the end.
        server.write_all(b"ready? s").await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while got.len() < 8 {
            let n = tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf))
                .await
                .expect("held back for good")
                .unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"ready? s");
        // Scrubbing goes on after the pause.
        server.write_all(b" sk-real-value!").await.unwrap();
        drop(server);
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b" $MSB_KEY!");
    }
}
