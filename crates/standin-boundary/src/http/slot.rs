//! [`UpstreamSlot`]: the upstream connection a client connection is using, held only while
//! it is in use.
//!
//! A client connection that has been idle for [`RELEASE_AFTER`] (no request in flight, no
//! response body still streaming; [`RELEASE_AFTER_BUSY`] when the sandbox has more than
//! [`RELEASE_PRESSURE`] connections open) gives its upstream connection back to the pool,
//! where another client connection to the same verified destination may take it, or it
//! expires. The next request on the idle client connection takes one from the pool or dials
//! again, with the same identity checks as the first. So an idle client connection costs one
//! socket and its TLS state, not two, and idle clients do not keep connections open at the
//! destination (what reverse proxies do with their upstream keep-alive pools).
//!
//! While the slot holds a connection, its socket is registered with the client
//! connection's [`Abort`](crate::io::Abort), so a block resets it too; on release it is
//! unregistered, so a later block on this client connection cannot reset a connection that
//! another client connection took over.

use super::pool::{Pool, PoolKey, Pooled};
use super::response::RespBody;
use crate::conn::ConnCtx;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// How long a client connection stays idle before its upstream connection is released.
/// Long enough that an agent pausing between calls keeps its upstream connection (no new
/// handshake with the destination); servers often close idle ones after about a minute.
pub(crate) const RELEASE_AFTER: Duration = Duration::from_secs(30);
/// The same when the sandbox has many connections open: idle ones then cost one socket.
pub const RELEASE_AFTER_BUSY: Duration = Duration::from_secs(1);
/// Open connections (of one sandbox) above which [`RELEASE_AFTER_BUSY`] applies.
pub(crate) const RELEASE_PRESSURE: usize = 256;

/// A fresh dial with the connection's identity.
pub(crate) type Redial =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Option<Pooled>> + Send + 'static>> + Send + Sync>;

/// How a slot gets a new upstream connection after a release: from `pool` under `key` (the
/// connection's address and verified name), else by `redial`.
pub(crate) struct Reconnect {
    /// The sandbox's pool.
    pub(crate) pool: Arc<Pool>,
    /// Where the connection leads.
    pub(crate) key: PoolKey,
    /// A fresh dial, when the pool has nothing.
    pub(crate) redial: Redial,
}

/// The upstream connection of one client connection.
pub(crate) struct UpstreamSlot {
    /// The connection held. Locked only to look or swap (never across an await), so a
    /// request that finds one pays an uncontended lock and an `Arc` clone.
    current: Mutex<Option<Arc<Pooled>>>,
    /// Serialises getting a replacement (pool or dial), so concurrent HTTP/2 streams do not
    /// each dial one.
    replacing: tokio::sync::Mutex<()>,
    /// `None`: the connection cannot be replaced (plain HTTP, CONNECT), so it is never
    /// released.
    reconnect: Option<Reconnect>,
    in_flight: AtomicUsize,
    /// When the last request finished, in milliseconds since `created`.
    last_active_ms: AtomicU64,
    created: Instant,
    held: tokio::sync::Notify,
}

impl std::fmt::Debug for UpstreamSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamSlot")
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .field("reconnect", &self.reconnect.is_some())
            .finish()
    }
}

/// A request in flight on a slot, until its response body is done (or dropped).
#[derive(Debug)]
pub(crate) struct Busy(Arc<UpstreamSlot>);

impl Drop for Busy {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_active_ms.store(ms, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl UpstreamSlot {
    /// A slot holding `first`; `reconnect` gets a replacement after a release.
    pub(crate) fn new(first: Pooled, reconnect: Option<Reconnect>) -> Arc<UpstreamSlot> {
        let slot = Arc::new(UpstreamSlot {
            current: Mutex::new(Some(Arc::new(first))),
            replacing: tokio::sync::Mutex::new(()),
            reconnect,
            in_flight: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(0),
            created: Instant::now(),
            held: tokio::sync::Notify::new(),
        });
        slot.held.notify_one();
        slot
    }

    /// Mark a request in flight (before [`acquire`](Self::acquire)).
    pub(crate) fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// The connection to send on: the one held, else one from the pool or a new dial.
    pub(crate) async fn acquire(&self, info: &ConnCtx) -> Option<Arc<Pooled>> {
        if let Some(p) = self.usable() {
            return Some(p);
        }
        let reconnect = self.reconnect.as_ref()?;
        let _replacing = self.replacing.lock().await;
        // Another stream may have replaced it meanwhile.
        if let Some(p) = self.usable() {
            return Some(p);
        }
        if let Some(old) = self.lock_current().take()
            && let Some(socket) = &old.socket
        {
            info.abort().remove(socket);
        }
        let mut fresh = None;
        while let Some(p) = reconnect.pool.take(&reconnect.key) {
            if p.conn.reusable().await {
                fresh = Some(p);
                break;
            }
        }
        let fresh = match fresh {
            Some(p) => p,
            None => (reconnect.redial)().await?,
        };
        if let Some(socket) = &fresh.socket {
            info.abort().add_shared(socket.clone());
        }
        let p = Arc::new(fresh);
        *self.lock_current() = Some(p.clone());
        self.held.notify_one();
        Some(p)
    }

    /// The connection held, unless the destination closed it while the client was idle and
    /// it can be replaced.
    fn usable(&self) -> Option<Arc<Pooled>> {
        let current = self.lock_current();
        let p = current.as_ref()?;
        (!(p.conn.is_closed() && self.reconnect.is_some())).then(|| p.clone())
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<Arc<Pooled>>> {
        // Nothing panics while holding it; recover the value if something ever did.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn is_empty(&self) -> bool {
        self.lock_current().is_none()
    }

    /// Take the connection out for pooling, if it is idle and reusable.
    pub(crate) async fn take_reusable(&self, info: &ConnCtx) -> Option<Pooled> {
        let p = {
            let mut current = self.lock_current();
            if self.in_flight.load(Ordering::Acquire) > 0
                || current.as_ref().is_none_or(|p| Arc::strong_count(p) > 1)
            {
                return None;
            }
            // Only one reference and the lock is held (no `acquire` can clone it meanwhile).
            Arc::try_unwrap(current.take()?).ok()?
        };
        if let Some(socket) = &p.socket {
            info.abort().remove(socket);
        }
        p.conn.reusable().await.then_some(p)
    }

    /// Release the upstream connection to the pool each time the client connection has been
    /// idle for [`RELEASE_AFTER`]. Never returns (run it alongside the connection).
    pub(crate) async fn release_when_idle(&self, info: &ConnCtx) {
        let Some(reconnect) = &self.reconnect else {
            return std::future::pending().await;
        };
        loop {
            self.held.notified().await;
            loop {
                let idle = if self.in_flight.load(Ordering::Acquire) > 0 {
                    Duration::ZERO
                } else {
                    let last = Duration::from_millis(self.last_active_ms.load(Ordering::Acquire));
                    self.created.elapsed().saturating_sub(last)
                };
                let after = if info.state.open_connections() > RELEASE_PRESSURE {
                    RELEASE_AFTER_BUSY
                } else {
                    RELEASE_AFTER
                };
                if idle < after {
                    tokio::time::sleep(after - idle).await;
                    continue;
                }
                if self.is_empty() {
                    break;
                }
                if let Some(p) = self.take_reusable(info).await {
                    reconnect.pool.put(reconnect.key.clone(), p);
                    break;
                }
                if self.is_empty() {
                    // Taken but not reusable (closed by the destination): let it go.
                    break;
                }
                tokio::time::sleep(RELEASE_AFTER_BUSY).await;
            }
        }
    }
}

/// A response body that keeps its request counted as in flight until it is done.
#[derive(Debug)]
pub(crate) struct InFlightBody {
    inner: RespBody,
    _busy: Busy,
}

impl InFlightBody {
    /// Wrap `inner`.
    pub(crate) fn new(inner: RespBody, busy: Busy) -> InFlightBody {
        InFlightBody { inner, _busy: busy }
    }
}

impl Body for InFlightBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BoundaryConfig;
    use crate::http::serve::serve_with;
    use crate::http::upstream::{Proto, connect_upstream};
    use crate::io::Abort;
    use crate::state::SandboxState;
    use standin_policy::egress::DomainName;
    use std::net::SocketAddr;
    use std::sync::atomic::AtomicU32;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    /// An HTTP/1.1 destination on an in-memory stream: a tiny 200 per request head.
    fn destination(mut end: DuplexStream) {
        tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            let mut answered = 0;
            while let Ok(n) = end.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let heads = got.windows(4).filter(|w| w == b"\r\n\r\n").count();
                while answered < heads {
                    answered += 1;
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if end.write_all(ok).await.is_err() {
                        return;
                    }
                }
            }
        });
    }

    async fn dial(count: &AtomicU32) -> Option<Pooled> {
        count.fetch_add(1, Ordering::SeqCst);
        let (ours, theirs) = tokio::io::duplex(16 * 1024);
        destination(theirs);
        let conn = connect_upstream(ours, Proto::H1).await?;
        Some(Pooled::new(conn, None))
    }

    async fn get(client: &mut DuplexStream) -> String {
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
            .await
            .unwrap();
        let mut resp = Vec::new();
        let mut buf = [0u8; 1024];
        while !resp.ends_with(b"ok") {
            let n = client.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "connection closed: {}",
                String::from_utf8_lossy(&resp)
            );
            resp.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&resp).into_owned()
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_client_gives_its_upstream_back_and_gets_one_again() {
        let state = Arc::new(SandboxState::new(BoundaryConfig::default(), Vec::new()));
        let pool = Arc::new(Pool::default());
        let name = DomainName::parse("api.example.com").ok();
        let dst: SocketAddr = ([203, 0, 113, 7], 443).into();
        let key = PoolKey {
            dst,
            sni: name.clone(),
            http2: false,
        };
        let info = Arc::new(ConnCtx::new(
            state.clone(),
            dst,
            name.clone().into_iter().collect(),
            name.clone(),
            true,
            Arc::new(Abort::default()),
        ));
        let dials = Arc::new(AtomicU32::new(0));
        let first = dial(&dials).await.unwrap();
        let redial: Redial = {
            let dials = dials.clone();
            Box::new(move || {
                let dials = dials.clone();
                Box::pin(async move { dial(&dials).await })
            })
        };
        let reconnect = Reconnect {
            pool: pool.clone(),
            key: key.clone(),
            redial,
        };
        let slot = UpstreamSlot::new(first, Some(reconnect));
        let (mut client, guest) = tokio::io::duplex(16 * 1024);
        let server = tokio::spawn(serve_with(guest, Proto::H1, slot.clone(), info.clone()));

        assert!(get(&mut client).await.contains("200 OK"));
        assert!(!slot.is_empty());
        // Idle past the release delay: the connection is in the pool, the slot is empty.
        tokio::time::sleep(RELEASE_AFTER + Duration::from_millis(100)).await;
        assert!(slot.is_empty());
        let pooled = pool.take(&key).expect("released to the pool");
        pool.put(key.clone(), pooled);
        // The next request takes it back: no new dial.
        assert!(get(&mut client).await.contains("200 OK"));
        assert_eq!(dials.load(Ordering::SeqCst), 1);
        // Released again, and left in the pool past its expiry: the next request dials.
        tokio::time::sleep(RELEASE_AFTER + crate::http::pool::POOL_IDLE * 2).await;
        assert!(get(&mut client).await.contains("200 OK"));
        assert_eq!(dials.load(Ordering::SeqCst), 2);
        drop(client);
        let _ = server.await;
    }
}
