//! A control channel on a path: a Unix `SOCK_SEQPACKET` socket carrying one JSON message per
//! datagram, with descriptors as `SCM_RIGHTS`. A detached sandbox's supervisor listens on one;
//! `standin exec`, `standin stop` and the SDK's reattached handles connect to it.
//!
//! Only the supervisor's own user (and root) may talk to it: the socket lives in a directory
//! only that user can enter, and [`peer_uid`] lets the server check each connection again.

use serde::{Deserialize, Serialize};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// Longest socket path the kernel accepts (`sun_path` less its terminating NUL).
pub const MAX_SOCKET_PATH: usize = 107;

fn address(path: &Path) -> io::Result<rustix::net::SocketAddrUnix> {
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(io::Error::other(format!(
            "the socket path {} is longer than {MAX_SOCKET_PATH} bytes; set STANDIN_HOME to a shorter directory",
            path.display()
        )));
    }
    Ok(rustix::net::SocketAddrUnix::new(path)?)
}

fn socket() -> io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Listen on `path` (which must not exist).
pub fn listen(path: &Path) -> io::Result<OwnedFd> {
    let sock = socket()?;
    rustix::net::bind(&sock, &address(path)?)?;
    rustix::net::listen(&sock, 64)?;
    Ok(sock)
}

/// Accept the next connection.
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    loop {
        match rustix::net::accept_with(listener, rustix::net::SocketFlags::CLOEXEC) {
            Err(rustix::io::Errno::INTR) => continue,
            other => return Ok(other?),
        }
    }
}

/// Connect to the channel at `path`.
pub fn connect(path: &Path) -> io::Result<OwnedFd> {
    let sock = socket()?;
    rustix::net::connect(&sock, &address(path)?)?;
    Ok(sock)
}

/// The uid of the process at the other end of a connection.
pub fn peer_uid(sock: BorrowedFd<'_>) -> io::Result<u32> {
    Ok(rustix::net::sockopt::socket_peercred(sock)?.uid.as_raw())
}

/// Send one message with optional descriptors.
pub fn send<T: Serialize>(sock: BorrowedFd<'_>, msg: &T, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    crate::protocol::send(sock, msg, fds)
}

/// Receive one message; `Ok(None)` when the peer has closed the connection.
pub fn recv<T: for<'de> Deserialize<'de>>(
    sock: impl AsFd,
) -> io::Result<Option<(T, Vec<OwnedFd>)>> {
    crate::protocol::recv(sock)
}

/// Send bytes already encoded (for a message holding secret values, whose encoding the
/// caller zeroizes).
pub fn send_bytes(sock: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if bytes.len() > crate::protocol::MAX_MESSAGE {
        return Err(crate::protocol::too_large(bytes.len()));
    }
    crate::sys::fdpass::send(sock, bytes, fds)
}

/// Receive one message into `buf` (the caller's, so it can zeroize it); returns its length
/// (0: the peer closed) and the descriptors that came with it.
pub fn recv_into(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    crate::sys::fdpass::recv(sock, buf)
}

/// Largest message [`send`] and [`recv`] carry.
pub const MAX_MESSAGE: usize = crate::protocol::MAX_MESSAGE;
