//! The TCP relay: accept a captured connection, find its original destination, refuse what
//! must be refused, dial, and shuttle bytes both ways with half-close.

use crate::BoundaryConfig;
use crate::guard;
use crate::original_dst::original_dst;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

/// Accept loop of one relay listener.
pub async fn serve(listener: TcpListener, local: SocketAddr, config: Arc<BoundaryConfig>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(handle(stream, peer, local, config.clone()));
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(error = %e, "relay accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle(
    client: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    config: Arc<BoundaryConfig>,
) {
    let dst = match original_dst(&client, local.is_ipv6()) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "no original destination; resetting");
            reset(client);
            return;
        }
    };
    if let Err(why) = guard::check(dst, local, &config.sandbox_addrs) {
        tracing::info!(%dst, reason = why.as_str(), "connection refused");
        reset(client);
        return;
    }
    let upstream = match tokio::time::timeout(config.connect_timeout, TcpStream::connect(dst)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::info!(%dst, error = %e, "upstream connect failed");
            reset(client);
            return;
        }
        Err(_) => {
            tracing::info!(%dst, "upstream connect timed out");
            reset(client);
            return;
        }
    };
    tracing::debug!(%dst, "relaying");
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut c, mut u) = (client, upstream);
    if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut u).await {
        tracing::debug!(%dst, error = %e, "relay ended with an error");
    }
}

/// Close with RST rather than FIN, so the client sees a connection reset at once.
pub fn reset(stream: TcpStream) {
    let _ = nix::sys::socket::setsockopt(
        &stream,
        nix::sys::socket::sockopt::Linger,
        &libc_linger_zero(),
    );
    drop(stream);
}

fn libc_linger_zero() -> nix::libc::linger {
    nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    }
}
