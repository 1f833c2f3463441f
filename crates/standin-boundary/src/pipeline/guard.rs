//! Destinations the boundary never dials, whatever any policy says.
//!
//! The relay dials from the host's network namespace, so "the original destination" must
//! never mean the host itself: a workload connecting to 127.0.0.1 inside the sandbox must not
//! reach services on the *host's* loopback. A workload can also connect straight to a relay
//! listener, in which case the "original destination" is the listener itself.

use standin_policy::IpClass;
use standin_policy::ip_class::canonical;
use std::net::{IpAddr, SocketAddr};

/// Why a destination was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Loopback or unspecified: would reach the host.
    HostLocal,
    /// One of the sandbox's own addresses.
    SandboxOwn,
    /// The boundary's own listener.
    Listener,
}

impl Refusal {
    /// Stable name for logs and events.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Refusal::HostLocal => "host-local destination",
            Refusal::SandboxOwn => "the sandbox's own address",
            Refusal::Listener => "the boundary's listener",
        }
    }
}

/// Check a destination against the fixed refusals. Loopback carried inside an IPv6 form
/// (NAT64, 6to4…) counts as loopback: [`IpClass`] judges such addresses by what they carry.
pub(super) fn check(
    dst: SocketAddr,
    listener: SocketAddr,
    sandbox_addrs: &[IpAddr],
) -> Result<(), Refusal> {
    let ip = canonical(dst.ip());
    if dst == listener || (canonical(listener.ip()) == ip && dst.port() == listener.port()) {
        return Err(Refusal::Listener);
    }
    if IpClass::of(ip).is_host_local() {
        return Err(Refusal::HostLocal);
    }
    if sandbox_addrs.iter().any(|a| canonical(*a) == ip) {
        return Err(Refusal::SandboxOwn);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_host_listener_and_sandbox() {
        let listener = sa("127.0.0.1:15001");
        let own: Vec<IpAddr> = vec![
            "10.200.0.1".parse().unwrap(),
            "fd00:200::1".parse().unwrap(),
        ];
        assert_eq!(
            check(sa("127.0.0.1:15001"), listener, &own),
            Err(Refusal::Listener)
        );
        assert_eq!(
            check(sa("127.0.0.1:22"), listener, &own),
            Err(Refusal::HostLocal)
        );
        assert_eq!(
            check(sa("[::1]:22"), listener, &own),
            Err(Refusal::HostLocal)
        );
        assert_eq!(
            check(sa("[::ffff:127.0.0.1]:22"), listener, &own),
            Err(Refusal::HostLocal)
        );
        assert_eq!(
            check(sa("0.0.0.0:80"), listener, &own),
            Err(Refusal::HostLocal)
        );
        // Loopback carried in NAT64, 6to4 and IPv4-compatible forms.
        for a in [
            "[64:ff9b::7f00:1]:22",
            "[2002:7f00:1::]:22",
            "[::127.0.0.1]:22",
        ] {
            assert_eq!(check(sa(a), listener, &own), Err(Refusal::HostLocal), "{a}");
        }
        assert_eq!(
            check(sa("10.200.0.1:80"), listener, &own),
            Err(Refusal::SandboxOwn)
        );
        assert_eq!(
            check(sa("[::ffff:10.200.0.1]:80"), listener, &own),
            Err(Refusal::SandboxOwn)
        );
        assert_eq!(
            check(sa("[fd00:200::1]:80"), listener, &own),
            Err(Refusal::SandboxOwn)
        );
        assert_eq!(check(sa("93.184.216.34:443"), listener, &own), Ok(()));
        assert_eq!(check(sa("[2606:4700::1]:443"), listener, &own), Ok(()));
    }
}
