//! [`SharedSocket`]: a TCP stream that an [`Abort`](crate::abort::Abort) can reset while
//! the HTTP or TLS layer owns it.
//!
//! The stream is reference-counted instead of having its descriptor duplicated: the layer
//! above reads and writes through one handle, the connection's `Abort` keeps another, and
//! the socket closes when the last one goes. A duplicate descriptor per socket would double
//! what an open connection costs in descriptors (the limit that decides how many
//! connections one host process can hold).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream with shared ownership; reads and writes go through tokio's readiness API.
#[derive(Debug, Clone)]
pub struct SharedSocket(Arc<TcpStream>);

impl SharedSocket {
    /// Wrap `stream`.
    pub fn new(stream: TcpStream) -> SharedSocket {
        SharedSocket(Arc::new(stream))
    }

    /// Another handle on the same socket (for resets).
    pub fn handle(&self) -> Arc<TcpStream> {
        self.0.clone()
    }
}

impl std::ops::Deref for SharedSocket {
    type Target = TcpStream;
    fn deref(&self) -> &TcpStream {
        &self.0
    }
}

impl AsyncRead for SharedSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            // `try_read` clears the readiness when the socket turns out to be empty, so the
            // next `poll_read_ready` registers the waker again. (Zeroing the unfilled part
            // first keeps this crate free of `unsafe`; TLS reads come with initialised
            // buffers, so it costs nothing there.)
            match self.0.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for SharedSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Half-close: FIN to the peer, reading goes on (what tokio's own stream does).
        let r = rustix::net::shutdown(&*self.0, rustix::net::Shutdown::Write);
        Poll::Ready(match r {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::NOTCONN) => Ok(()),
            Err(e) => Err(e.into()),
        })
    }
}
