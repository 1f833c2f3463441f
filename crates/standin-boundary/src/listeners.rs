//! The six listening sockets the sandbox runtime creates inside the sandbox's network
//! namespace, as the boundary receives them.

use crate::BoundaryError;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
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

pub(crate) struct Served {
    pub relays: Vec<(TcpListener, SocketAddr)>,
    pub dns_udp: Vec<UdpSocket>,
    pub dns_tcp: Vec<TcpListener>,
}

impl CaptureListeners {
    pub(crate) fn into_tokio(self) -> Result<Served, BoundaryError> {
        let tcp = |fd: OwnedFd,
                   which: &'static str|
         -> Result<(TcpListener, SocketAddr), BoundaryError> {
            let std = std::net::TcpListener::from(fd);
            let err = |source| BoundaryError::Listener { which, source };
            std.set_nonblocking(true).map_err(err)?;
            let local = std.local_addr().map_err(err)?;
            Ok((TcpListener::from_std(std).map_err(err)?, local))
        };
        let udp = |fd: OwnedFd, which: &'static str| -> Result<UdpSocket, BoundaryError> {
            let std = std::net::UdpSocket::from(fd);
            let err = |source| BoundaryError::Listener { which, source };
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
