//! Passthrough: an admitted connection of a sandbox without secrets. Dial, replay what was
//! read ahead, and copy both ways with half-close (fixed buffers, no per-chunk allocation)
//! until both sides end, the idle timeout, or the sandbox's termination.

use crate::conn;
use crate::io::{Activity, Tracked, reset, until_idle};
use crate::state::SandboxState;
use standin_policy::egress::DomainName;
use std::net::SocketAddr;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Relay `client` to `dst`, starting with `head` (bytes already read from the client).
pub(crate) async fn relay(
    client: TcpStream,
    dst: SocketAddr,
    head: Vec<u8>,
    names: &[DomainName],
    state: &SandboxState,
) {
    let Some(mut upstream) = conn::connect(state, dst, names).await else {
        reset(client);
        return;
    };
    tracing::debug!(%dst, "relaying");
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    if !head.is_empty() && upstream.write_all(&head).await.is_err() {
        reset(client);
        return;
    }
    let activity = Activity::new();
    let mut c = Tracked::new(client, activity.clone());
    let mut u = Tracked::new(upstream, activity.clone());
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut c, &mut u) => {
            if let Err(e) = r {
                tracing::debug!(%dst, error = %e, "relay ended with an error");
            }
        }
        _ = until_idle(&activity, state.config.idle_timeout) => {
            tracing::debug!(%dst, "idle timeout; closing both sides");
            reset(c.into_inner());
        }
        _ = state.terminated() => {
            reset(c.into_inner());
        }
    }
}
