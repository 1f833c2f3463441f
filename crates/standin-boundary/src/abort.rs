//! [`Abort`]: reset a connection's sockets *now*, from anywhere.
//!
//! A blocked request must look like a connection reset to the sandbox, and the destination
//! must not get a clean end of a partial request. Dropping a stream is not enough: the HTTP
//! or TLS layer above may close gracefully first (close_notify, FIN). The connection keeps a
//! duplicate of each socket's descriptor here; [`Abort::abort`] sets a zero linger and
//! disconnects the socket (`connect(AF_UNSPEC)`), which sends RST immediately and makes
//! every later read or write on it fail, whoever holds it.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

/// The sockets of one connection.
#[derive(Debug, Default)]
pub struct Abort {
    fds: Mutex<Vec<Arc<OwnedFd>>>,
    done: std::sync::atomic::AtomicBool,
}

impl Abort {
    /// Remember `sock` (a duplicate of its descriptor is kept).
    pub fn add(&self, sock: &impl AsFd) {
        if let Ok(fd) = sock.as_fd().try_clone_to_owned() {
            self.add_shared(Arc::new(fd));
        }
    }

    /// Remember a duplicate that is shared with its other users (a pooled upstream
    /// connection keeps the same one).
    pub fn add_shared(&self, fd: Arc<OwnedFd>) {
        if let Ok(mut fds) = self.fds.lock() {
            fds.push(fd);
        }
        if self.is_aborted() {
            self.reset_all();
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
