//! IPv4 addresses carried inside IPv6 addresses.
//!
//! Several IPv6 ranges exist to reach IPv4 hosts: a packet to `64:ff9b::a9fe:a9fe` leaves a
//! NAT64 gateway towards `169.254.169.254`. Such an address must be judged by the IPv4
//! address it carries, or a name answered with the NAT64 form of the metadata address would
//! pass as "public". This module finds those IPv4 addresses; where an operator's choice
//! decides where the address sits (the local-use NAT64 prefix), it returns every candidate so
//! the caller can judge by the strictest.

use std::net::{Ipv4Addr, Ipv6Addr};

/// How an IPv6 address carries an IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Embedding {
    /// `::ffff:a.b.c.d` (RFC 4291): the IPv4 host itself, through a dual-stack socket.
    Mapped,
    /// `::a.b.c.d` (RFC 4291, deprecated).
    Compatible,
    /// `64:ff9b::/96` (RFC 6052), the well-known NAT64 prefix: the last 32 bits.
    Nat64,
    /// `64:ff9b:1::/48` (RFC 8215), local-use NAT64: the operator picks a prefix length of
    /// /48, /56, /64 or /96 inside it, which moves the address (RFC 6052, section 2.2).
    Nat64Local,
    /// `2002::/16` (RFC 3056), 6to4: bits 16–47.
    SixToFour,
    /// `2001::/32` (RFC 4380), Teredo: the server in bits 32–63 and the client, with every
    /// bit inverted, in the last 32.
    Teredo,
}

impl Embedding {
    /// Stable name, as in the documentation's table.
    pub fn name(self) -> &'static str {
        match self {
            Embedding::Mapped => "IPv4-mapped",
            Embedding::Compatible => "IPv4-compatible",
            Embedding::Nat64 => "NAT64",
            Embedding::Nat64Local => "NAT64 local-use",
            Embedding::SixToFour => "6to4",
            Embedding::Teredo => "Teredo",
        }
    }

    /// The IPv4 addresses `addr` carries in this form. The caller has already checked that
    /// `addr` is inside the form's range.
    pub fn extract(self, addr: Ipv6Addr) -> Embedded {
        let b = addr.octets();
        let v4 = |o: [u8; 4]| Ipv4Addr::from(o);
        let mut out = Embedded::default();
        match self {
            Embedding::Mapped | Embedding::Compatible | Embedding::Nat64 => {
                out.push(v4([b[12], b[13], b[14], b[15]]));
            }
            Embedding::Nat64Local => {
                // RFC 6052's layouts skip bits 64–71 (the "u" octet).
                out.push(v4([b[6], b[7], b[9], b[10]])); // /48
                out.push(v4([b[7], b[9], b[10], b[11]])); // /56
                out.push(v4([b[9], b[10], b[11], b[12]])); // /64
                out.push(v4([b[12], b[13], b[14], b[15]])); // /96
            }
            Embedding::SixToFour => out.push(v4([b[2], b[3], b[4], b[5]])),
            Embedding::Teredo => {
                out.push(v4([!b[12], !b[13], !b[14], !b[15]])); // the client: the destination
                out.push(v4([b[4], b[5], b[6], b[7]])); // the server it is reached through
            }
        }
        out
    }
}

/// Up to four IPv4 addresses (no allocation: this runs for every connection and answer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Embedded {
    addrs: [Option<Ipv4Addr>; 4],
}

impl Embedded {
    /// One address.
    pub fn one(addr: Ipv4Addr) -> Embedded {
        let mut e = Embedded::default();
        e.push(addr);
        e
    }

    fn push(&mut self, addr: Ipv4Addr) {
        if let Some(slot) = self.addrs.iter_mut().find(|s| s.is_none()) {
            *slot = Some(addr);
        }
    }

    /// The addresses.
    pub fn iter(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.addrs.iter().flatten().copied()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.addrs[0].is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(e: Embedding, s: &str) -> Vec<String> {
        e.extract(s.parse().unwrap())
            .iter()
            .map(|a| a.to_string())
            .collect()
    }

    #[test]
    fn finds_the_address_in_each_form() {
        assert_eq!(
            ex(Embedding::Nat64, "64:ff9b::a9fe:a9fe"),
            ["169.254.169.254"]
        );
        assert_eq!(ex(Embedding::Nat64, "64:ff9b::10.0.0.1"), ["10.0.0.1"]);
        assert_eq!(ex(Embedding::SixToFour, "2002:7f00:1::1"), ["127.0.0.1"]);
        assert_eq!(ex(Embedding::Compatible, "::192.168.1.1"), ["192.168.1.1"]);
        // RFC 4380's example: server 65.54.227.120, client 192.0.2.45 (obfuscated).
        assert_eq!(
            ex(Embedding::Teredo, "2001:0:4136:e378:8000:63bf:3fff:fdd2"),
            ["192.0.2.45", "65.54.227.120"]
        );
        // RFC 6052's examples of 192.0.2.33 under each prefix length.
        let local = ex(Embedding::Nat64Local, "64:ff9b:1:c000:2:2100::");
        assert!(local.contains(&"192.0.2.33".to_string()), "{local:?}"); // /48
        let local = ex(Embedding::Nat64Local, "64:ff9b:1:ffc0:0:221::");
        assert!(local.contains(&"192.0.2.33".to_string()), "{local:?}"); // /56
        let local = ex(Embedding::Nat64Local, "64:ff9b:1:ffff:c0:2:2100:0");
        assert!(local.contains(&"192.0.2.33".to_string()), "{local:?}"); // /64
        let local = ex(Embedding::Nat64Local, "64:ff9b:1::192.0.2.33");
        assert!(local.contains(&"192.0.2.33".to_string()), "{local:?}"); // /96
    }
}
