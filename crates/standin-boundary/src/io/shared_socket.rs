//! [`SharedSocket`]: a TCP stream that an [`Abort`](super::Abort) can reset while
//! the HTTP or TLS layer owns it.
//!
//! The stream is reference-counted instead of having its descriptor duplicated: the layer
//! above reads and writes through one handle, the connection's `Abort` keeps another, and
//! the socket closes when the last one goes. A duplicate descriptor per socket would double
//! what an open connection costs in descriptors (the limit that decides how many
//! connections one host process can hold).

use rustix::net::RecvFlags;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream with shared ownership; reads and writes go through tokio's readiness API.
#[derive(Debug, Clone)]
pub(crate) struct SharedSocket(Arc<TcpStream>);

impl SharedSocket {
    /// Wrap `stream`.
    pub(crate) fn new(stream: TcpStream) -> SharedSocket {
        SharedSocket(Arc::new(stream))
    }

    /// Another handle on the same socket (for resets).
    pub(crate) fn handle(&self) -> Arc<TcpStream> {
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
            // (Zeroing the unfilled part first keeps this crate free of `unsafe`; TLS reads
            // come with initialised buffers, so it costs nothing there.)
            let unfilled = buf.initialize_unfilled();
            let len = unfilled.len();
            let mut short = None;
            // `try_io` clears the readiness when the closure reports `WouldBlock`, with the
            // readiness observed before the read (so an event that arrives during the read is
            // not lost). A short read also drained the socket (epoll is edge-triggered), so it
            // clears the readiness too, as tokio's own stream does: the next read waits for
            // an event instead of spending a `recv` to learn `EAGAIN` (one per message on
            // request/response traffic).
            let r = self.0.try_io(Interest::READABLE, || {
                let (n, _) = rustix::net::recv(&*self.0, &mut *unfilled, RecvFlags::empty())?;
                if 0 < n && n < len {
                    short = Some(n);
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            });
            match (r, short) {
                (_, Some(n)) | (Ok(n), None) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                (Err(e), None)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                (Err(e), None) => return Poll::Ready(Err(e)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Fails the test instead of hanging it if a wake-up is lost.
    async fn read_some(s: &mut SharedSocket, buf: &mut [u8]) -> usize {
        tokio::time::timeout(Duration::from_secs(10), s.read(buf))
            .await
            .expect("a read never woke up")
            .unwrap()
    }

    #[tokio::test]
    async fn short_reads_lose_neither_data_nor_end_of_stream() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (peer, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let mut peer = peer.unwrap();
        let mut ours = SharedSocket::new(accepted.unwrap().0);
        let mut buf = [0u8; 64];
        for round in 0..50u8 {
            // Each message is shorter than the buffer: every read is short and clears the
            // readiness; the next message must still wake the reader.
            let msg = [round; 10];
            peer.write_all(&msg).await.unwrap();
            let mut got = 0;
            while got < msg.len() {
                got += read_some(&mut ours, &mut buf[got..]).await;
            }
            assert_eq!(&buf[..10], &msg);
        }
        // Data and end of stream back to back: the data, then EOF.
        peer.write_all(b"last").await.unwrap();
        peer.shutdown().await.unwrap();
        let mut tail = Vec::new();
        loop {
            let n = read_some(&mut ours, &mut buf).await;
            if n == 0 {
                break;
            }
            tail.extend_from_slice(&buf[..n]);
        }
        assert_eq!(tail, b"last");
    }
}
