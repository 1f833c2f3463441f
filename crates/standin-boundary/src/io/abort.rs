//! [`Abort`]: reset a connection's sockets *now*, from anywhere.
//!
//! A blocked request must look like a connection reset to the sandbox, and the destination
//! must not get a clean end of a partial request. Dropping a stream is not enough: the HTTP
//! or TLS layer above may close gracefully first (close_notify, FIN). The connection keeps a
//! handle on each of its sockets here ([`SharedSocket`](super::SharedSocket));
//! [`Abort::abort`] sets a zero linger and disconnects the socket (`connect(AF_UNSPEC)`),
//! which sends RST immediately and makes every later read or write on it fail, whoever holds
//! it. Holding the handle also keeps the socket open until the connection is done with, so
//! a layer that dropped its end early cannot have sent a FIN instead.

use super::shared_socket::SharedSocket;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;

/// The sockets of one connection.
#[derive(Debug, Default)]
pub(crate) struct Abort {
    fds: Mutex<Vec<Arc<TcpStream>>>,
    done: std::sync::atomic::AtomicBool,
}

impl Abort {
    /// Remember `sock`.
    pub(crate) fn add(&self, sock: &SharedSocket) {
        self.add_shared(sock.handle());
    }

    /// Remember a socket handle (a pooled upstream connection keeps one for whoever reuses
    /// it).
    pub(crate) fn add_shared(&self, fd: Arc<TcpStream>) {
        if let Ok(mut fds) = self.fds.lock() {
            fds.push(fd);
        }
        if self.is_aborted() {
            self.reset_all();
        }
    }

    /// Forget a socket handle (it moved on to another connection).
    pub(crate) fn remove(&self, fd: &Arc<TcpStream>) {
        if let Ok(mut fds) = self.fds.lock() {
            fds.retain(|f| !Arc::ptr_eq(f, fd));
        }
    }

    /// Whether [`abort`](Self::abort) was called.
    pub(crate) fn is_aborted(&self) -> bool {
        self.done.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Reset every socket now. Idempotent.
    pub(crate) fn abort(&self) {
        self.done.store(true, std::sync::atomic::Ordering::Release);
        self.reset_all();
    }

    fn reset_all(&self) {
        let fds = match self.fds.lock() {
            Ok(mut f) => std::mem::take(&mut *f),
            Err(_) => return,
        };
        for fd in fds {
            reset_socket(&*fd);
        }
    }
}

/// Send RST on `sock` now: a zero linger, then a disconnect (`connect(AF_UNSPEC)`), after
/// which every read or write on it fails, whoever holds it.
pub(crate) fn reset_socket(sock: &impl AsFd) {
    let _ = nix::sys::socket::setsockopt(
        sock,
        nix::sys::socket::sockopt::Linger,
        &nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    );
    let _ = rustix::net::connect_unspec(sock);
}

/// Close `stream` with RST rather than FIN, so the peer sees a connection reset at once.
pub(crate) fn reset(stream: TcpStream) {
    reset_socket(&stream);
    drop(stream);
}
