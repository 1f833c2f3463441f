//! The special-purpose address ranges of the IANA registries (IPv4 and IPv6 Special-Purpose
//! Address Registries, plus the ranges with their own registries: multicast, link-local, the
//! cloud metadata endpoints), each with the class standin gives it.
//!
//! One table per family; the most specific range containing an address decides (longest
//! prefix), so `169.254.169.254/32` (metadata) wins over `169.254.0.0/16` (link-local) and
//! `192.0.0.9/32` (an anycast service) over `192.0.0.0/24`. An address in no range is public.
//! The tables are the documentation too: `docs/EGRESS.md` prints them, and a test keeps the
//! two equal.

use super::IpClass;
use super::embedded::Embedding;
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// What a range means for classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Every address of the range has this class.
    Class(IpClass),
    /// The range carries IPv4 addresses: classify by those (the strictest, if several).
    Embeds(Embedding),
}

/// One registry entry.
#[derive(Debug, Clone, Copy)]
pub struct Range<N> {
    /// The range.
    pub net: N,
    /// How its addresses are classified.
    pub treatment: Treatment,
    /// What the range is for.
    pub purpose: &'static str,
    /// Where it is defined.
    pub rfc: &'static str,
}

const fn v4(
    o: [u8; 4],
    len: u8,
    t: Treatment,
    purpose: &'static str,
    rfc: &'static str,
) -> Range<Ipv4Net> {
    Range {
        net: Ipv4Net::new_assert(Ipv4Addr::new(o[0], o[1], o[2], o[3]), len),
        treatment: t,
        purpose,
        rfc,
    }
}

const fn v6(
    s: [u16; 8],
    len: u8,
    t: Treatment,
    purpose: &'static str,
    rfc: &'static str,
) -> Range<Ipv6Net> {
    Range {
        net: Ipv6Net::new_assert(
            Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
            len,
        ),
        treatment: t,
        purpose,
        rfc,
    }
}

use IpClass::{LinkLocal, Loopback, Metadata, Multicast, Private, Public, Reserved, Unspecified};
use Treatment::{Class, Embeds};

/// IPv4 special-purpose ranges.
pub const IPV4: &[Range<Ipv4Net>] = &[
    v4(
        [0, 0, 0, 0],
        8,
        Class(Unspecified),
        "\"this network\"",
        "RFC 791",
    ),
    v4([10, 0, 0, 0], 8, Class(Private), "private use", "RFC 1918"),
    v4(
        [100, 64, 0, 0],
        10,
        Class(Private),
        "shared address space (carrier-grade NAT)",
        "RFC 6598",
    ),
    v4([127, 0, 0, 0], 8, Class(Loopback), "loopback", "RFC 1122"),
    v4(
        [169, 254, 0, 0],
        16,
        Class(LinkLocal),
        "link-local",
        "RFC 3927",
    ),
    v4(
        [169, 254, 169, 254],
        32,
        Class(Metadata),
        "cloud metadata service (AWS, GCP, Azure)",
        "provider documentation",
    ),
    v4(
        [172, 16, 0, 0],
        12,
        Class(Private),
        "private use",
        "RFC 1918",
    ),
    v4(
        [192, 0, 0, 0],
        24,
        Class(Reserved),
        "IETF protocol assignments",
        "RFC 6890",
    ),
    v4(
        [192, 0, 0, 9],
        32,
        Class(Public),
        "Port Control Protocol anycast (globally reachable)",
        "RFC 7723",
    ),
    v4(
        [192, 0, 0, 10],
        32,
        Class(Public),
        "TURN anycast (globally reachable)",
        "RFC 8155",
    ),
    v4(
        [192, 0, 2, 0],
        24,
        Class(Reserved),
        "documentation (TEST-NET-1)",
        "RFC 5737",
    ),
    v4(
        [192, 31, 196, 0],
        24,
        Class(Public),
        "AS112-v4 (globally reachable)",
        "RFC 7535",
    ),
    v4(
        [192, 52, 193, 0],
        24,
        Class(Public),
        "AMT (globally reachable)",
        "RFC 7450",
    ),
    v4(
        [192, 88, 99, 0],
        24,
        Class(Reserved),
        "6to4 relay anycast (deprecated)",
        "RFC 7526",
    ),
    v4(
        [192, 168, 0, 0],
        16,
        Class(Private),
        "private use",
        "RFC 1918",
    ),
    v4(
        [192, 175, 48, 0],
        24,
        Class(Public),
        "AS112 direct delegation (globally reachable)",
        "RFC 7534",
    ),
    v4(
        [198, 18, 0, 0],
        15,
        Class(Reserved),
        "benchmarking",
        "RFC 2544",
    ),
    v4(
        [198, 51, 100, 0],
        24,
        Class(Reserved),
        "documentation (TEST-NET-2)",
        "RFC 5737",
    ),
    v4(
        [203, 0, 113, 0],
        24,
        Class(Reserved),
        "documentation (TEST-NET-3)",
        "RFC 5737",
    ),
    v4([224, 0, 0, 0], 4, Class(Multicast), "multicast", "RFC 5771"),
    v4([240, 0, 0, 0], 4, Class(Reserved), "reserved", "RFC 1112"),
    v4(
        [255, 255, 255, 255],
        32,
        Class(Multicast),
        "limited broadcast",
        "RFC 919",
    ),
];

/// IPv6 special-purpose ranges.
pub const IPV6: &[Range<Ipv6Net>] = &[
    v6(
        [0, 0, 0, 0, 0, 0, 0, 0],
        8,
        Class(Reserved),
        "reserved by the IETF",
        "RFC 4291",
    ),
    v6(
        [0, 0, 0, 0, 0, 0, 0, 0],
        128,
        Class(Unspecified),
        "unspecified",
        "RFC 4291",
    ),
    v6(
        [0, 0, 0, 0, 0, 0, 0, 1],
        128,
        Class(Loopback),
        "loopback",
        "RFC 4291",
    ),
    v6(
        [0, 0, 0, 0, 0, 0, 0, 0],
        96,
        Embeds(Embedding::Compatible),
        "IPv4-compatible (deprecated)",
        "RFC 4291",
    ),
    v6(
        [0, 0, 0, 0, 0, 0xffff, 0, 0],
        96,
        Embeds(Embedding::Mapped),
        "IPv4-mapped",
        "RFC 4291",
    ),
    v6(
        [0x64, 0xff9b, 0, 0, 0, 0, 0, 0],
        96,
        Embeds(Embedding::Nat64),
        "IPv4/IPv6 translation (NAT64 well-known prefix)",
        "RFC 6052",
    ),
    v6(
        [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
        48,
        Embeds(Embedding::Nat64Local),
        "IPv4/IPv6 translation, local use",
        "RFC 8215",
    ),
    v6(
        [0x100, 0, 0, 0, 0, 0, 0, 0],
        64,
        Class(Reserved),
        "discard-only",
        "RFC 6666",
    ),
    v6(
        [0x100, 0, 0, 1, 0, 0, 0, 0],
        64,
        Class(Reserved),
        "dummy IPv6 prefix",
        "RFC 9780",
    ),
    v6(
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        Class(Reserved),
        "IETF protocol assignments",
        "RFC 2928",
    ),
    v6(
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        32,
        Embeds(Embedding::Teredo),
        "Teredo",
        "RFC 4380",
    ),
    v6(
        [0x2001, 1, 0, 0, 0, 0, 0, 1],
        128,
        Class(Public),
        "Port Control Protocol anycast (globally reachable)",
        "RFC 7723",
    ),
    v6(
        [0x2001, 1, 0, 0, 0, 0, 0, 2],
        128,
        Class(Public),
        "TURN anycast (globally reachable)",
        "RFC 8155",
    ),
    v6(
        [0x2001, 1, 0, 0, 0, 0, 0, 3],
        128,
        Class(Public),
        "DNS-SD service registration anycast (globally reachable)",
        "RFC 9665",
    ),
    v6(
        [0x2001, 2, 0, 0, 0, 0, 0, 0],
        48,
        Class(Reserved),
        "benchmarking",
        "RFC 5180",
    ),
    v6(
        [0x2001, 3, 0, 0, 0, 0, 0, 0],
        32,
        Class(Public),
        "AMT (globally reachable)",
        "RFC 7450",
    ),
    v6(
        [0x2001, 4, 0x112, 0, 0, 0, 0, 0],
        48,
        Class(Public),
        "AS112-v6 (globally reachable)",
        "RFC 7535",
    ),
    v6(
        [0x2001, 0x10, 0, 0, 0, 0, 0, 0],
        28,
        Class(Reserved),
        "ORCHID (deprecated)",
        "RFC 4843",
    ),
    v6(
        [0x2001, 0x20, 0, 0, 0, 0, 0, 0],
        28,
        Class(Reserved),
        "ORCHIDv2 (identifiers, not locators)",
        "RFC 7343",
    ),
    v6(
        [0x2001, 0x30, 0, 0, 0, 0, 0, 0],
        28,
        Class(Reserved),
        "drone remote ID tags (identifiers, not locators)",
        "RFC 9374",
    ),
    v6(
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
        32,
        Class(Reserved),
        "documentation",
        "RFC 3849",
    ),
    v6(
        [0x2002, 0, 0, 0, 0, 0, 0, 0],
        16,
        Embeds(Embedding::SixToFour),
        "6to4",
        "RFC 3056",
    ),
    v6(
        [0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0],
        48,
        Class(Public),
        "AS112 direct delegation (globally reachable)",
        "RFC 7534",
    ),
    v6(
        [0x3fff, 0, 0, 0, 0, 0, 0, 0],
        20,
        Class(Reserved),
        "documentation",
        "RFC 9637",
    ),
    v6(
        [0x5f00, 0, 0, 0, 0, 0, 0, 0],
        16,
        Class(Reserved),
        "segment routing (SRv6) SIDs",
        "RFC 9602",
    ),
    v6(
        [0xfc00, 0, 0, 0, 0, 0, 0, 0],
        7,
        Class(Private),
        "unique-local",
        "RFC 4193",
    ),
    v6(
        [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254],
        128,
        Class(Metadata),
        "cloud metadata service (AWS)",
        "provider documentation",
    ),
    v6(
        [0xfe80, 0, 0, 0, 0, 0, 0, 0],
        10,
        Class(LinkLocal),
        "link-local unicast",
        "RFC 4291",
    ),
    v6(
        [0xfec0, 0, 0, 0, 0, 0, 0, 0],
        10,
        Class(Reserved),
        "site-local (deprecated)",
        "RFC 3879",
    ),
    v6(
        [0xff00, 0, 0, 0, 0, 0, 0, 0],
        8,
        Class(Multicast),
        "multicast",
        "RFC 4291",
    ),
];

/// The most specific IPv4 range holding `addr`.
pub fn lookup_v4(addr: Ipv4Addr) -> Option<&'static Range<Ipv4Net>> {
    IPV4.iter()
        .filter(|r| r.net.contains(&addr))
        .max_by_key(|r| r.net.prefix_len())
}

/// The most specific IPv6 range holding `addr`.
pub fn lookup_v6(addr: Ipv6Addr) -> Option<&'static Range<Ipv6Net>> {
    IPV6.iter()
        .filter(|r| r.net.contains(&addr))
        .max_by_key(|r| r.net.prefix_len())
}

/// The table as Markdown, one row per range: what `docs/EGRESS.md` shows.
pub fn markdown_table() -> String {
    let class = |t: Treatment| match t {
        Class(c) => c.name().to_string(),
        Embeds(e) => format!("as the embedded IPv4 address ({})", e.name()),
    };
    let mut out = String::from("| range | purpose | class | defined in |\n|---|---|---|---|\n");
    for r in IPV4 {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            r.net,
            r.purpose,
            class(r.treatment),
            r.rfc
        ));
    }
    for r in IPV6 {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            r.net,
            r.purpose,
            class(r.treatment),
            r.rfc
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documentation_shows_this_table() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/NETWORK.md"
        ))
        .unwrap();
        let table = markdown_table();
        assert!(
            doc.contains(&table),
            "docs/NETWORK.md must contain this table verbatim:\n{table}"
        );
    }

    #[test]
    fn every_range_is_written_in_canonical_form() {
        for r in IPV4 {
            assert_eq!(r.net, r.net.trunc(), "{}", r.net);
        }
        for r in IPV6 {
            assert_eq!(r.net, r.net.trunc(), "{}", r.net);
        }
    }

    #[test]
    fn no_two_ranges_are_the_same() {
        for (i, a) in IPV6.iter().enumerate() {
            for b in &IPV6[i + 1..] {
                assert_ne!(a.net, b.net);
            }
        }
        for (i, a) in IPV4.iter().enumerate() {
            for b in &IPV4[i + 1..] {
                assert_ne!(a.net, b.net);
            }
        }
    }
}
