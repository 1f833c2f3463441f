//! The six listening sockets the sandbox runtime creates inside the sandbox's network
//! namespace, as the boundary receives them.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use thiserror::Error;
use tokio::net::{TcpListener, UdpSocket};

/// Listening descriptors, each bound inside the sandbox's network namespace.
#[derive(Debug)]
pub struct CaptureListeners {
    /// TCP relay, `127.0.0.1`.
    pub relay_v4: OwnedFd,
    /// TCP relay, `::1`.
    pub relay_v6: OwnedFd,
    /// DNS over UDP, `127.0.0.1`.
    pub dns_udp_v4: OwnedFd,
    /// DNS over UDP, `::1`.
    pub dns_udp_v6: OwnedFd,
    /// DNS over TCP, `127.0.0.1`.
    pub dns_tcp_v4: OwnedFd,
    /// DNS over TCP, `::1`.
    pub dns_tcp_v6: OwnedFd,
}

/// A listener descriptor could not be registered with the runtime.
#[derive(Debug, Error)]
#[error("cannot serve capture listener {which}: {source}")]
pub struct ListenerError {
    /// Which listener.
    pub which: &'static str,
    /// Cause.
    #[source]
    pub source: std::io::Error,
}

/// The listeners, registered with the tokio runtime.
pub(crate) struct Served {
    pub(crate) relays: Vec<(TcpListener, SocketAddr)>,
    pub(crate) dns_udp: Vec<UdpSocket>,
    pub(crate) dns_tcp: Vec<TcpListener>,
}

impl CaptureListeners {
    pub(crate) fn into_tokio(self) -> Result<Served, ListenerError> {
        let tcp = |fd: OwnedFd,
                   which: &'static str|
         -> Result<(TcpListener, SocketAddr), ListenerError> {
            let std = std::net::TcpListener::from(fd);
            let err = |source| ListenerError { which, source };
            std.set_nonblocking(true).map_err(err)?;
            let local = std.local_addr().map_err(err)?;
            Ok((TcpListener::from_std(std).map_err(err)?, local))
        };
        let udp = |fd: OwnedFd, which: &'static str| -> Result<UdpSocket, ListenerError> {
            let std = std::net::UdpSocket::from(fd);
            let err = |source| ListenerError { which, source };
            std.set_nonblocking(true).map_err(err)?;
            UdpSocket::from_std(std).map_err(err)
        };
        Ok(Served {
            relays: vec![
                tcp(self.relay_v4, "relay v4")?,
                tcp(self.relay_v6, "relay v6")?,
            ],
            dns_udp: vec![
                udp(self.dns_udp_v4, "dns udp v4")?,
                udp(self.dns_udp_v6, "dns udp v6")?,
            ],
            dns_tcp: vec![
                tcp(self.dns_tcp_v4, "dns tcp v4")?.0,
                tcp(self.dns_tcp_v6, "dns tcp v6")?.0,
            ],
        })
    }
}
