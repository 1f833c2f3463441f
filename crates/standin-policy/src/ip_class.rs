//! Classification of IP addresses into the groups the egress policy speaks about.
//!
//! An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is classified as the IPv4 address it carries,
//! so the same destination can never fall into two groups depending on how it was written.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The class of a destination address. Exactly one class applies to every address; when ranges
/// overlap (the metadata endpoint is also link-local) the most specific class wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpClass {
    /// `0.0.0.0/8`, `::`: "this host"; never a valid destination.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// Cloud metadata endpoints: `169.254.169.254`, `fd00:ec2::254`.
    Metadata,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// RFC 1918, CGNAT `100.64.0.0/10`, and unique-local `fc00::/7`.
    Private,
    /// `224.0.0.0/4`, `ff00::/8`, and the IPv4 broadcast address.
    Multicast,
    /// Other special-purpose ranges that no public host uses (documentation, benchmarking,
    /// reserved, protocol assignments, discard, NAT64 well-known prefix is *not* included).
    Reserved,
    /// Everything else.
    Public,
}

/// The AWS/GCP/Azure IPv4 metadata endpoint.
pub const METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// The AWS IPv6 metadata endpoint.
pub const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

impl IpClass {
    /// Classify an address.
    pub fn of(addr: IpAddr) -> IpClass {
        match addr {
            IpAddr::V4(v4) => classify_v4(v4),
            IpAddr::V6(v6) => match canonical(addr) {
                IpAddr::V4(v4) => classify_v4(v4),
                IpAddr::V6(_) => classify_v6(v6),
            },
        }
    }

    /// True for the classes a relay must never dial on the sandbox's behalf, whatever the
    /// policy says: dialing them from the host side would reach the host itself.
    pub fn is_host_local(self) -> bool {
        matches!(self, IpClass::Unspecified | IpClass::Loopback)
    }

    /// Stable lower-case name, as used in rules and events.
    pub fn name(self) -> &'static str {
        match self {
            IpClass::Unspecified => "unspecified",
            IpClass::Loopback => "loopback",
            IpClass::Metadata => "metadata",
            IpClass::LinkLocal => "link-local",
            IpClass::Private => "private",
            IpClass::Multicast => "multicast",
            IpClass::Reserved => "reserved",
            IpClass::Public => "public",
        }
    }
}

/// The address itself, with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) replaced by the
/// IPv4 address it carries: one destination, one spelling.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn classify_v4(a: Ipv4Addr) -> IpClass {
    let o = a.octets();
    if a == METADATA_V4 {
        IpClass::Metadata
    } else if o[0] == 0 {
        IpClass::Unspecified
    } else if o[0] == 127 {
        IpClass::Loopback
    } else if o[0] == 169 && o[1] == 254 {
        IpClass::LinkLocal
    } else if o[0] == 10
        || (o[0] == 172 && (o[1] & 0xf0) == 16)
        || (o[0] == 192 && o[1] == 168)
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
    {
        IpClass::Private
    } else if (o[0] & 0xf0) == 224 || a == Ipv4Addr::BROADCAST {
        IpClass::Multicast
    } else if (o[0] == 192 && o[1] == 0 && (o[2] == 0 || o[2] == 2)) // 192.0.0.0/24, TEST-NET-1
        || (o[0] == 198 && (o[1] & 0xfe) == 18)            // 198.18.0.0/15 benchmarking
        || (o[0] == 198 && o[1] == 51 && o[2] == 100)      // TEST-NET-2
        || (o[0] == 203 && o[1] == 0 && o[2] == 113)       // TEST-NET-3
        || (o[0] & 0xf0) == 240
    // 240.0.0.0/4 reserved
    {
        IpClass::Reserved
    } else {
        IpClass::Public
    }
}

fn classify_v6(a: Ipv6Addr) -> IpClass {
    let s = a.segments();
    if a == METADATA_V6 {
        IpClass::Metadata
    } else if a.is_unspecified() {
        IpClass::Unspecified
    } else if a.is_loopback() {
        IpClass::Loopback
    } else if (s[0] & 0xffc0) == 0xfe80 {
        IpClass::LinkLocal
    } else if (s[0] & 0xfe00) == 0xfc00 {
        IpClass::Private
    } else if (s[0] & 0xff00) == 0xff00 {
        IpClass::Multicast
    } else if (s[0] == 0x2001 && s[1] == 0x0db8)           // documentation
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard-only 100::/64
        || (s[0] & 0xffc0) == 0xfec0                        // deprecated site-local
        || s[0] == 0
    // ::/16 other than the cases above (v4-compatible, etc.)
    {
        IpClass::Reserved
    } else {
        IpClass::Public
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> IpClass {
        IpClass::of(s.parse().unwrap())
    }

    #[test]
    fn classifies_representative_addresses() {
        let cases = [
            ("0.0.0.0", IpClass::Unspecified),
            ("::", IpClass::Unspecified),
            ("127.0.0.1", IpClass::Loopback),
            ("127.255.1.2", IpClass::Loopback),
            ("::1", IpClass::Loopback),
            ("::ffff:127.0.0.1", IpClass::Loopback),
            ("169.254.169.254", IpClass::Metadata),
            ("::ffff:169.254.169.254", IpClass::Metadata),
            ("fd00:ec2::254", IpClass::Metadata),
            ("169.254.1.1", IpClass::LinkLocal),
            ("fe80::1", IpClass::LinkLocal),
            ("10.1.2.3", IpClass::Private),
            ("172.16.0.1", IpClass::Private),
            ("172.31.255.255", IpClass::Private),
            ("192.168.1.1", IpClass::Private),
            ("100.64.0.1", IpClass::Private),
            ("100.127.255.255", IpClass::Private),
            ("fc00::1", IpClass::Private),
            ("fd12::1", IpClass::Private),
            ("224.0.0.1", IpClass::Multicast),
            ("255.255.255.255", IpClass::Multicast),
            ("ff02::1", IpClass::Multicast),
            ("192.0.2.1", IpClass::Reserved),
            ("2001:db8::1", IpClass::Reserved),
            ("240.0.0.1", IpClass::Reserved),
            ("8.8.8.8", IpClass::Public),
            ("172.32.0.1", IpClass::Public),
            ("172.15.255.255", IpClass::Public),
            ("100.128.0.1", IpClass::Public),
            ("93.184.216.34", IpClass::Public),
            ("2606:4700::1111", IpClass::Public),
            ("::ffff:8.8.8.8", IpClass::Public),
        ];
        for (addr, want) in cases {
            assert_eq!(c(addr), want, "{addr}");
        }
    }

    #[test]
    fn host_local_is_only_loopback_and_unspecified() {
        assert!(c("127.0.0.1").is_host_local());
        assert!(c("::ffff:127.0.0.2").is_host_local());
        assert!(c("::").is_host_local());
        assert!(!c("10.0.0.1").is_host_local());
        assert!(!c("8.8.8.8").is_host_local());
    }

    proptest::proptest! {
        #[test]
        fn mapped_v6_agrees_with_v4(bits: u32) {
            let v4 = Ipv4Addr::from(bits);
            proptest::prop_assert_eq!(
                IpClass::of(IpAddr::V4(v4)),
                IpClass::of(IpAddr::V6(v4.to_ipv6_mapped()))
            );
        }
    }
}
