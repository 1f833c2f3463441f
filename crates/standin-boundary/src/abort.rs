//! [`Abort`]: reset a connection's sockets *now*, from anywhere.
//!
//! A blocked request must look like a connection reset to the sandbox, and the destination
//! must not get a clean end of a partial request. Dropping a stream is not enough: the HTTP
//! or TLS layer above may close gracefully first (close_notify, FIN). The connection keeps a
//! handle on each of its sockets here ([`SharedSocket`](crate::shared_socket::SharedSocket));
//! [`Abort::abort`] sets a zero linger and disconnects the socket (`connect(AF_UNSPEC)`),
//! which sends RST immediately and makes every later read or write on it fail, whoever holds
//! it. Holding the handle also keeps the socket open until the connection is done with, so
//! a layer that dropped its end early cannot have sent a FIN instead.

use crate::shared_socket::SharedSocket;
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;

/// The sockets of one connection.
#[derive(Debug, Default)]
pub struct Abort {
    fds: Mutex<Vec<Arc<TcpStream>>>,
    done: std::sync::atomic::AtomicBool,
}

impl Abort {
    /// Remember `sock`.
    pub fn add(&self, sock: &SharedSocket) {
        self.add_shared(sock.handle());
    }

    /// Remember a socket handle (a pooled upstream connection keeps one for whoever reuses
    /// it).
    pub fn add_shared(&self, fd: Arc<TcpStream>) {
        if let Ok(mut fds) = self.fds.lock() {
            fds.push(fd);
        }
        if self.is_aborted() {
            self.reset_all();
        }
    }

    /// Forget a socket handle (it moved on to another connection).
    pub fn remove(&self, fd: &Arc<TcpStream>) {
        if let Ok(mut fds) = self.fds.lock() {
            fds.retain(|f| !Arc::ptr_eq(f, fd));
        }
    }

    /// Whether [`abort`](Self::abort) was called.
    pub fn is_aborted(&self) -> bool {
        self.done.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Reset every socket now. Idempotent.
    pub fn abort(&self) {
        self.done.store(true, std::sync::atomic::Ordering::Release);
        self.reset_all();
    }

    fn reset_all(&self) {
        let fds = match self.fds.lock() {
            Ok(mut f) => std::mem::take(&mut *f),
            Err(_) => return,
        };
        for fd in fds {
            let _ = nix::sys::socket::setsockopt(
                &*fd,
                nix::sys::socket::sockopt::Linger,
                &nix::libc::linger {
                    l_onoff: 1,
                    l_linger: 0,
                },
            );
            let _ = rustix::net::connect_unspec(&*fd);
        }
    }
}
