//! The nftables ruleset that captures the sandbox's traffic inside its own network namespace.
//!
//! Design and measurements: `docs/ARCHITECTURE.md` (network capture). In short:
//! - DNS (TCP and UDP port 53, to *any* address) is redirected to the DNS listener first, so
//!   even a resolver address local to the sandbox cannot bypass it;
//! - traffic to the sandbox's own local addresses stays local (in-sandbox servers work);
//! - every other TCP connection is redirected to the relay listener, which reads the original
//!   destination with `SO_ORIGINAL_DST`;
//! - the filter chain rejects everything that was not redirected: UDP with an immediate
//!   `EPERM` on `send()` (so QUIC clients fall back to TCP at once), TCP with a reset, the rest
//!   with an ICMP administratively-prohibited.
//!
//! The filter matches on `ct status dnat` rather than `oif "lo"`: the output interface of a
//! locally generated packet is fixed before NAT re-routes it to loopback.

/// TCP port of the relay listeners (`127.0.0.1` and `::1` inside the sandbox).
pub(crate) const RELAY_PORT: u16 = 15001;
/// UDP and TCP port of the DNS listeners (`127.0.0.1` and `::1` inside the sandbox).
pub(crate) const DNS_PORT: u16 = 15053;

/// The ruleset, as `nft -f -` input.
pub(crate) fn ruleset() -> String {
    format!(
        "\
table inet standin {{
  chain nat_out {{
    type nat hook output priority -100; policy accept;
    meta l4proto {{ tcp, udp }} th dport 53 redirect to :{DNS_PORT}
    fib daddr type local accept
    meta l4proto tcp redirect to :{RELAY_PORT}
  }}
  chain filter_out {{
    type filter hook output priority 0; policy drop;
    ct status dnat accept
    fib daddr type local accept
    meta l4proto udp reject
    meta l4proto tcp reject with tcp reset
    reject with icmpx admin-prohibited
  }}
}}
"
    )
}
