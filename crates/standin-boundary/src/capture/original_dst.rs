//! Reading where a redirected connection was originally headed.

use nix::sys::socket::{getsockopt, sockopt};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;

/// The destination the sandboxed client connected to, before the capture redirected it.
/// `ipv6` says which listener accepted the connection (the option differs per family).
pub(crate) fn original_dst(sock: &impl AsFd, ipv6: bool) -> io::Result<SocketAddr> {
    if ipv6 {
        let sa = getsockopt(sock, sockopt::Ip6tOriginalDst)?;
        let ip = Ipv6Addr::from(sa.sin6_addr.s6_addr);
        Ok(SocketAddr::new(IpAddr::V6(ip), u16::from_be(sa.sin6_port)))
    } else {
        let sa = getsockopt(sock, sockopt::OriginalDst)?;
        let ip = Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr));
        Ok(SocketAddr::new(IpAddr::V4(ip), u16::from_be(sa.sin_port)))
    }
}
