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

/// nftables table that [`pod_ruleset`] installs (replaced whole on every install).
pub(crate) const POD_TABLE: &str = "standin";

/// The ruleset for a pod's network namespace, where the boundary runs beside the app as uid
/// `exempt_uid` (`standin boundary`, docs/DEPLOY.md). The sandbox's ruleset, plus:
/// - packets of `exempt_uid` pass untouched (the boundary's own DNS queries and upstream
///   connections); no other uid is exempt, root included;
/// - replies of TCP connections that came *in* pass (an app serving its port, kubelet probes
///   of the app); nothing the app starts goes out except through the boundary, and inbound
///   UDP gets no answer (a request-answer channel around it);
/// - IPv6 neighbour discovery passes: the kernel sends it without a socket (so without a
///   uid), and without it no IPv6 packet, the boundary's included, finds its next hop. An
///   unprivileged process cannot send it (that takes a raw socket);
/// - the table is deleted first, so installing again replaces it whole (an init container
///   that is re-run).
pub(crate) fn pod_ruleset(exempt_uid: u32) -> String {
    format!(
        "\
table inet {POD_TABLE}
delete table inet {POD_TABLE}
table inet {POD_TABLE} {{
  chain nat_out {{
    type nat hook output priority -100; policy accept;
    meta skuid {exempt_uid} accept
    meta l4proto {{ tcp, udp }} th dport 53 redirect to :{DNS_PORT}
    fib daddr type local accept
    meta l4proto tcp redirect to :{RELAY_PORT}
  }}
  chain filter_out {{
    type filter hook output priority 0; policy drop;
    meta skuid {exempt_uid} accept
    ct status dnat accept
    fib daddr type local accept
    meta l4proto tcp ct direction reply accept
    icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit }} accept
    meta l4proto udp reject
    meta l4proto tcp reject with tcp reset
    reject with icmpx admin-prohibited
  }}
}}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pod_ruleset_exempts_only_the_given_uid_and_keeps_the_sandbox_rules() {
        let pod = pod_ruleset(1337);
        assert_eq!(pod.matches("meta skuid 1337 accept").count(), 2);
        assert_eq!(pod.matches("skuid").count(), 2);
        // Every rule of the sandbox's ruleset is in the pod's, in the same order.
        let sandbox = ruleset();
        let mut at = 0;
        for line in sandbox.lines().filter(|l| {
            l.trim_start().starts_with("meta")
                || l.trim_start().starts_with("fib")
                || l.trim_start().starts_with("ct")
                || l.trim_start().starts_with("reject")
        }) {
            let found = pod[at..]
                .find(line.trim())
                .unwrap_or_else(|| panic!("{line}"));
            at += found;
        }
        // The exemption comes before anything that redirects or drops.
        assert!(pod.find("skuid").unwrap() < pod.find("redirect").unwrap());
    }
}
