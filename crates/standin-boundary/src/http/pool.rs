//! [`Pool`]: idle upstream connections, kept briefly for the next client connection to the
//! same verified destination (no dial, no second handshake).
//!
//! A connection is pooled under the address it was dialed at and the server name it was
//! verified for ([`PoolKey`]), and only taken for the same pair. When the sandbox is
//! terminated the pool is closed: every idle connection is reset, and whatever is put back
//! later is reset at once.

use super::upstream::UpstreamConn;
use crate::io::reset_socket;
use standin_policy::egress::DomainName;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How long an idle upstream connection stays pooled (short: servers close idle keep-alive
/// connections, some after 5 s).
pub(crate) const POOL_IDLE: Duration = Duration::from_secs(2);
/// Most idle upstream connections pooled per destination.
pub(crate) const POOL_PER_KEY: usize = 16;
/// Most idle upstream connections pooled per sandbox.
pub(crate) const POOL_TOTAL: usize = 256;

/// Where a pooled connection leads: the address dialed and the server name verified (`None`:
/// verified for the address).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    /// The address.
    pub(crate) dst: SocketAddr,
    /// The verified server name.
    pub(crate) sni: Option<DomainName>,
    /// Whether HTTP/2 was offered upstream (it is only when the sandbox's client offered it,
    /// so a connection pooled for an HTTP/2 client never serves an HTTP/1.1 one).
    pub(crate) http2: bool,
}

/// An upstream connection, verified for a server name at an address.
#[derive(Debug)]
pub(crate) struct Pooled {
    /// The connection.
    pub(crate) conn: UpstreamConn,
    /// A handle on its socket, so a client connection that uses it can reset it (`None`: not
    /// shared, as on a connection that is never pooled).
    pub(crate) socket: Option<Arc<TcpStream>>,
    since: Instant,
}

impl Pooled {
    /// Wrap a connection.
    pub(crate) fn new(conn: UpstreamConn, socket: Option<Arc<TcpStream>>) -> Pooled {
        Pooled {
            conn,
            socket,
            since: Instant::now(),
        }
    }

    fn fresh(&self) -> bool {
        self.since.elapsed() < POOL_IDLE
    }

    fn reset(self) {
        if let Some(socket) = &self.socket {
            reset_socket(&**socket);
        }
    }
}

#[derive(Debug, Default)]
struct Idle {
    by_key: HashMap<PoolKey, Vec<Pooled>>,
    closed: bool,
}

/// One sandbox's idle upstream connections.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    idle: Mutex<Idle>,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, Idle> {
        // Nothing panics while holding it; recover the value if something ever did.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection for `key`, if one is pooled and fresh.
    pub(crate) fn take(&self, key: &PoolKey) -> Option<Pooled> {
        let mut idle = self.lock();
        let list = idle.by_key.get_mut(key)?;
        while let Some(p) = list.pop() {
            if p.fresh() {
                return Some(p);
            }
        }
        None
    }

    /// Keep an idle connection for the next client connection to `key`, if there is room.
    pub(crate) fn put(&self, key: PoolKey, mut p: Pooled) {
        p.since = Instant::now();
        let mut idle = self.lock();
        if idle.closed {
            drop(idle);
            p.reset();
            return;
        }
        let total: usize = idle.by_key.values().map(Vec::len).sum();
        if total >= POOL_TOTAL {
            idle.by_key.retain(|_, l| {
                l.retain(Pooled::fresh);
                !l.is_empty()
            });
        }
        let total: usize = idle.by_key.values().map(Vec::len).sum();
        let list = idle.by_key.entry(key).or_default();
        list.retain(Pooled::fresh);
        if list.len() < POOL_PER_KEY && total < POOL_TOTAL {
            list.push(p);
        }
    }

    /// Reset every idle connection, and every one put back from now on (the sandbox was
    /// terminated).
    pub(crate) fn close(&self) {
        let drained: Vec<Pooled> = {
            let mut idle = self.lock();
            idle.closed = true;
            idle.by_key.drain().flat_map(|(_, l)| l).collect()
        };
        for p in drained {
            p.reset();
        }
    }
}
