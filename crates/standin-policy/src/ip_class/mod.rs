//! Classification of IP addresses into the groups the egress policy speaks about.
//!
//! Every address gets exactly one class, from the IANA special-purpose registries
//! ([`special`]): the most specific range that holds it decides, and an address in none is
//! public. An IPv6 address that carries an IPv4 address (IPv4-mapped and -compatible, NAT64,
//! 6to4, Teredo: [`embedded`]) is classified by the IPv4 address it carries, the strictest
//! one if the form allows several readings, so the same destination can never fall into a
//! more permissive group because of how it was written.

pub mod embedded;
pub mod special;

pub use embedded::{Embedded, Embedding};
use special::Treatment;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The class of a destination address. The variants are declared from the strictest to the
/// most permissive, and `Ord` follows that order: where an address allows several readings,
/// the smallest class is the one that applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    /// Other special-purpose ranges that no public host uses: documentation, benchmarking,
    /// discard-only, ORCHID, reserved and protocol-assignment blocks (see [`special`]).
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
            IpAddr::V6(v6) => match special::lookup_v6(v6).map(|r| r.treatment) {
                None => IpClass::Public,
                Some(Treatment::Class(c)) => c,
                Some(Treatment::Embeds(e)) => embedded_class(e, v6),
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
/// IPv4 address it carries: one destination, one spelling. (Other embeddings reach the IPv4
/// host through a gateway, a different socket destination: see [`ipv4_views`].)
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The IPv4 addresses a destination stands for: itself for IPv4, the carried addresses for
/// an IPv6 address of an embedding range, none otherwise. IPv4 rules (CIDRs, the host's
/// addresses) are matched against these too, so `deny@10.0.0.0/8` also denies
/// `64:ff9b::a00:1`.
pub fn ipv4_views(ip: IpAddr) -> Embedded {
    match ip {
        IpAddr::V4(v4) => Embedded::one(v4),
        IpAddr::V6(v6) => match special::lookup_v6(v6).map(|r| r.treatment) {
            Some(Treatment::Embeds(e)) => e.extract(v6),
            _ => Embedded::default(),
        },
    }
}

/// The strictest class among the IPv4 addresses `v6` carries.
fn embedded_class(form: Embedding, v6: Ipv6Addr) -> IpClass {
    let readings = form.extract(v6);
    let classes = readings.iter().map(classify_v4);
    let strictest = if form == Embedding::Nat64Local {
        // Only one reading is the operator's, and a reading inside 0.0.0.0/8 cannot be it (no
        // gateway translates to "this network"): those are ignored unless all are.
        classes.filter(|c| *c != IpClass::Unspecified).min()
    } else {
        classes.min()
    };
    strictest.unwrap_or(IpClass::Unspecified)
}

fn classify_v4(a: Ipv4Addr) -> IpClass {
    match special::lookup_v4(a).map(|r| r.treatment) {
        Some(Treatment::Class(c)) => c,
        // No IPv4 range embeds another address.
        Some(Treatment::Embeds(_)) | None => IpClass::Public,
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
            ("198.19.255.1", IpClass::Reserved),
            ("192.0.0.9", IpClass::Public),
            ("192.0.0.8", IpClass::Reserved),
            ("192.88.99.1", IpClass::Reserved),
            // Addresses that carry an IPv4 address are judged by it.
            ("64:ff9b::a9fe:a9fe", IpClass::Metadata),
            ("64:ff9b::169.254.169.254", IpClass::Metadata),
            ("64:ff9b::10.0.0.1", IpClass::Private),
            ("64:ff9b::127.0.0.1", IpClass::Loopback),
            ("64:ff9b::8.8.8.8", IpClass::Public),
            ("64:ff9b:1::a9fe:a9fe", IpClass::Metadata),
            ("64:ff9b:1:a9fe:a9:fe00::", IpClass::Metadata),
            ("2002:a9fe:a9fe::1", IpClass::Metadata),
            ("2002:c0a8:101::1", IpClass::Private),
            ("2002:808:808::1", IpClass::Public),
            ("::10.1.2.3", IpClass::Private),
            ("::8.8.8.8", IpClass::Public),
            ("2001:0:4136:e378:8000:63bf:f5ff:fffe", IpClass::Private), // client 10.0.0.1
            ("2001:0:a00:1:8000:63bf:f7f7:f7f7", IpClass::Private),     // server 10.0.0.1
            ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", IpClass::Public),  // client 8.8.8.8
            // Other special-purpose IPv6 ranges.
            ("100::1", IpClass::Reserved),
            ("2001:2::1", IpClass::Reserved),
            ("2001:10::1", IpClass::Reserved),
            ("2001:20::1", IpClass::Reserved),
            ("3fff::1", IpClass::Reserved),
            ("5f00::1", IpClass::Reserved),
            ("fec0::1", IpClass::Reserved),
            ("2001:4:112::1", IpClass::Public),
            ("2001:1::1", IpClass::Public),
            ("2001:1::4", IpClass::Reserved),
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

    #[test]
    fn embedded_forms_are_host_local_when_they_carry_loopback() {
        assert!(c("64:ff9b::7f00:1").is_host_local());
        assert!(c("2002:7f00:1::").is_host_local());
        assert!(c("::0.0.0.1").is_host_local());
    }

    proptest::proptest! {
        /// Every way of writing an IPv4 address inside IPv6 gets the IPv4 address's class.
        #[test]
        fn embedded_forms_agree_with_v4(bits: u32, low: u64, suffix: u16) {
            let v4 = Ipv4Addr::from(bits);
            let want = IpClass::of(IpAddr::V4(v4));
            let nat64 = Ipv6Addr::from(((0x0064_ff9b_u128) << 96) | u128::from(bits));
            let nat64_local = Ipv6Addr::from(((0x0064_ff9b_0001_u128) << 80) | u128::from(bits));
            let six_to_four = Ipv6Addr::from((0x2002_u128 << 112) | (u128::from(bits) << 80) | u128::from(low));
            for (form, v6) in [("mapped", v4.to_ipv6_mapped()), ("nat64", nat64), ("6to4", six_to_four)] {
                proptest::prop_assert_eq!(IpClass::of(IpAddr::V6(v6)), want, "{}", form);
            }
            // Local-use NAT64 has several readings: never more permissive than the real one.
            proptest::prop_assert!(IpClass::of(IpAddr::V6(nat64_local)) <= want);
            // Teredo: the client is the destination (the server is another reading).
            let teredo = Ipv6Addr::from((0x2001_0000_u128 << 96) | (0x0808_0808_u128 << 64) | (u128::from(suffix) << 32) | u128::from(!bits));
            proptest::prop_assert!(IpClass::of(IpAddr::V6(teredo)) <= want);
            // The IPv4 views contain the address in every form.
            for v6 in [v4.to_ipv6_mapped(), nat64, nat64_local, six_to_four, teredo] {
                proptest::prop_assert!(ipv4_views(IpAddr::V6(v6)).iter().any(|a| a == v4));
            }
        }
    }
}
