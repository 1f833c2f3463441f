//! Evaluating connections and DNS queries against the rules.
//!
//! The shipped policy is the user's rules, then `allow@public`, then **deny**: public internet
//! works; private ranges, loopback, link-local, multicast, the host and cloud metadata do not,
//! unless a user rule (which comes first) says otherwise.

use super::domain::DomainName;
use super::rule::{Action, Destination, Group, Protocol, Rule, net_contains};
use crate::IpClass;
use std::net::IpAddr;

/// The egress policy of one sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Ordered rules; the first match wins.
    pub rules: Vec<Rule>,
    /// Action when no rule matches.
    pub default: Action,
    /// Turn DNS answers with non-public addresses into NXDOMAIN (unless a rule allows them).
    pub rebind_protection: bool,
}

/// One connection to decide.
#[derive(Debug, Clone, Copy)]
pub struct Flow<'a> {
    /// Destination address.
    pub ip: IpAddr,
    /// Destination port.
    pub port: u16,
    /// Transport.
    pub protocol: Protocol,
    /// Names this sandbox itself resolved to `ip` (from its pin table). Domain rules match
    /// only through these, so a hard-coded address cannot borrow an allowed name.
    pub names: &'a [DomainName],
    /// Whether the connection opened with a TLS ClientHello.
    pub tls: bool,
    /// The ClientHello's server name, when there was one and it is a valid host name.
    pub sni: Option<&'a DomainName>,
}

impl Flow<'_> {
    /// Whether a domain rule with `pattern` and `action` matches this flow.
    ///
    /// - allow: a name this sandbox resolved to the address matches; for TLS, that name must
    ///   also be the ClientHello's SNI (no SNI, no match);
    /// - deny: a resolved name matches, or the SNI does: naming a denied host in the
    ///   handshake is enough, so a hard-coded address cannot dodge a deny rule either.
    pub fn matches_domain(&self, pattern: &super::domain::HostPattern, action: Action) -> bool {
        match action {
            Action::Allow if self.tls => self
                .sni
                .is_some_and(|sni| pattern.matches(sni) && self.names.contains(sni)),
            Action::Allow => self.names.iter().any(|n| pattern.matches(n)),
            Action::Deny => {
                self.names.iter().any(|n| pattern.matches(n))
                    || self.sni.is_some_and(|sni| pattern.matches(sni))
            }
        }
    }
}

/// The outcome, with the rule that decided it (`None`: the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Allow or deny.
    pub action: Action,
    /// Index into [`EgressPolicy::rules`], or `None` for the default.
    pub rule: Option<usize>,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        EgressPolicy::with_user_rules(Vec::new(), Action::Deny)
    }
}

impl EgressPolicy {
    /// The shipped policy with `user` rules in front and `default` at the end.
    pub fn with_user_rules(user: Vec<Rule>, default: Action) -> EgressPolicy {
        let mut rules = user;
        rules.push(Rule {
            action: Action::Allow,
            destination: Destination::Group(Group::Public),
            protocol: None,
            ports: Vec::new(),
        });
        EgressPolicy {
            rules,
            default,
            rebind_protection: true,
        }
    }

    /// Decide a connection. `is_host` tells whether an address belongs to the host.
    pub fn evaluate(&self, flow: &Flow<'_>, is_host: &dyn Fn(IpAddr) -> bool) -> Decision {
        let ip = canonical(flow.ip);
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.matches_transport(flow.protocol, flow.port) {
                continue;
            }
            let hit = match &rule.destination {
                Destination::Any => true,
                Destination::Cidr(net) => net_contains(net, ip),
                Destination::Group(g) => g.contains(ip, is_host),
                Destination::Domain(p) => flow.matches_domain(p, rule.action),
            };
            if hit {
                return Decision {
                    action: rule.action,
                    rule: Some(i),
                };
            }
        }
        Decision {
            action: self.default,
            rule: None,
        }
    }

    /// Whether any rule names a domain (the relay then reads the ClientHello's SNI).
    pub fn has_domain_rules(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.destination, Destination::Domain(_)))
    }

    /// Decide a DNS query for `name`.
    ///
    /// Domain rules match the query name: an allow rule whatever its ports (the name must
    /// resolve for the rule to be usable), a deny rule only when it covers every port and
    /// protocol (a name denied on one port is still reachable on others). `any` rules without
    /// transport restrictions match too. When nothing matches, the query is allowed if the
    /// policy could allow *some* address (an address rule allows, or the default does): the
    /// answer is then checked address by address ([`Self::allows_resolved_address`]) and
    /// every later connection on its own.
    pub fn evaluate_dns(&self, name: &DomainName) -> Decision {
        for (i, rule) in self.rules.iter().enumerate() {
            let unrestricted = rule.protocol.is_none() && rule.ports.is_empty();
            let hit = match &rule.destination {
                Destination::Domain(p) => {
                    p.matches(name) && (rule.action == Action::Allow || unrestricted)
                }
                Destination::Any => unrestricted,
                _ => false,
            };
            if hit {
                return Decision {
                    action: rule.action,
                    rule: Some(i),
                };
            }
        }
        let some_address_allowed = self.default == Action::Allow
            || self
                .rules
                .iter()
                .any(|r| r.action == Action::Allow && r.destination.is_address());
        Decision {
            action: if some_address_allowed {
                Action::Allow
            } else {
                Action::Deny
            },
            rule: None,
        }
    }

    /// Whether a DNS answer may carry `ip` (rebind protection). Public addresses always may;
    /// any other class only if the first address rule (CIDR or group) that contains it allows
    /// it. A permissive default never lifts the protection.
    pub fn allows_resolved_address(&self, ip: IpAddr, is_host: &dyn Fn(IpAddr) -> bool) -> bool {
        let ip = canonical(ip);
        if !self.rebind_protection
            || (IpClass::of(ip) == IpClass::Public && !Group::Host.contains(ip, is_host))
        {
            return true;
        }
        for rule in &self.rules {
            let hit = match &rule.destination {
                Destination::Cidr(net) => net_contains(net, ip),
                Destination::Group(Group::Public) => false,
                Destination::Group(g) => g.contains(ip, is_host),
                _ => false,
            };
            if hit {
                return rule.action == Action::Allow;
            }
        }
        false
    }
}

pub use crate::ip_class::canonical;

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn name(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }
    fn no_host(_: IpAddr) -> bool {
        false
    }
    fn policy(rules: &[&str], default: Action) -> EgressPolicy {
        EgressPolicy::with_user_rules(
            rules.iter().map(|r| Rule::parse(r).unwrap()).collect(),
            default,
        )
    }
    fn tcp<'a>(addr: &str, port: u16, names: &'a [DomainName]) -> Flow<'a> {
        Flow {
            ip: ip(addr),
            port,
            protocol: Protocol::Tcp,
            names,
            tls: false,
            sni: None,
        }
    }

    #[test]
    fn default_policy_allows_public_and_denies_the_rest() {
        let p = EgressPolicy::default();
        let host_ip = ip("203.0.113.7");
        let is_host = move |a: IpAddr| a == host_ip;
        for (addr, want) in [
            ("93.184.216.34", Action::Allow),
            ("2606:4700::1111", Action::Allow),
            ("::ffff:93.184.216.34", Action::Allow),
            ("10.0.0.1", Action::Deny),
            ("172.16.5.4", Action::Deny),
            ("192.168.1.1", Action::Deny),
            ("100.64.0.1", Action::Deny),
            ("fd12::1", Action::Deny),
            ("127.0.0.1", Action::Deny),
            ("::1", Action::Deny),
            ("::ffff:127.0.0.1", Action::Deny),
            ("169.254.1.1", Action::Deny),
            ("fe80::1", Action::Deny),
            ("169.254.169.254", Action::Deny),
            ("fd00:ec2::254", Action::Deny),
            ("224.0.0.1", Action::Deny),
            ("ff02::1", Action::Deny),
            ("203.0.113.7", Action::Deny),
            ("192.0.2.1", Action::Deny),
        ] {
            assert_eq!(
                p.evaluate(&tcp(addr, 443, &[]), &is_host).action,
                want,
                "{addr}"
            );
        }
    }

    #[test]
    fn first_match_wins_and_reports_the_rule() {
        let p = policy(
            &[
                "deny@*.evil.example",
                "allow@10.1.0.0/16:tcp:5432",
                "deny@public:tcp:25",
            ],
            Action::Deny,
        );
        let d = p.evaluate(&tcp("10.1.2.3", 5432, &[]), &no_host);
        assert_eq!(
            d,
            Decision {
                action: Action::Allow,
                rule: Some(1)
            }
        );
        assert_eq!(
            p.evaluate(&tcp("10.1.2.3", 5433, &[]), &no_host),
            Decision {
                action: Action::Deny,
                rule: None
            }
        );
        assert_eq!(
            p.evaluate(&tcp("93.184.216.34", 25, &[]), &no_host).rule,
            Some(2)
        );
        assert_eq!(
            p.evaluate(&tcp("93.184.216.34", 443, &[]), &no_host).rule,
            Some(3)
        );
        let names = [name("x.evil.example")];
        assert_eq!(
            p.evaluate(&tcp("93.184.216.34", 443, &names), &no_host),
            Decision {
                action: Action::Deny,
                rule: Some(0)
            }
        );
    }

    #[test]
    fn domain_rules_only_match_through_resolved_names() {
        let p = policy(&["allow@api.internal.example:tcp:443"], Action::Deny);
        let resolved = [name("api.internal.example")];
        // The sandbox resolved the name to this private address: allowed.
        assert_eq!(
            p.evaluate(&tcp("10.9.9.9", 443, &resolved), &no_host)
                .action,
            Action::Allow
        );
        // A hard-coded address with no such resolution cannot borrow the name.
        assert_eq!(
            p.evaluate(&tcp("10.9.9.9", 443, &[]), &no_host).action,
            Action::Deny
        );
        let other = [name("other.example")];
        assert_eq!(
            p.evaluate(&tcp("10.9.9.9", 443, &other), &no_host).action,
            Action::Deny
        );
    }

    #[test]
    fn tls_ties_domain_rules_to_the_sni() {
        let p = policy(
            &["deny@evil.example", "allow@api.openai.com", "deny@public"],
            Action::Deny,
        );
        let openai = name("api.openai.com");
        let evil = name("evil.example");
        let resolved = [openai.clone()];
        let tls = |names, sni| Flow {
            tls: true,
            sni,
            ..tcp("45.90.1.10", 443, names)
        };
        // Resolved and named in the handshake: allowed.
        assert_eq!(
            p.evaluate(&tls(&resolved, Some(&openai)), &no_host).rule,
            Some(1)
        );
        // Resolved, but the handshake names another host (fronting): not allowed.
        let other = name("other.example");
        assert_eq!(
            p.evaluate(&tls(&resolved, Some(&other)), &no_host).rule,
            Some(2)
        );
        // No SNI at all: the allow rule cannot be established.
        assert_eq!(p.evaluate(&tls(&resolved, None), &no_host).rule, Some(2));
        // Never resolved, SNI claims the allowed name: not allowed.
        assert_eq!(p.evaluate(&tls(&[], Some(&openai)), &no_host).rule, Some(2));
        // Never resolved, SNI names a denied host: the deny rule matches on the name alone.
        assert_eq!(
            p.evaluate(&tls(&[], Some(&evil)), &no_host),
            Decision {
                action: Action::Deny,
                rule: Some(0)
            }
        );
        assert!(p.has_domain_rules());
        assert!(!EgressPolicy::default().has_domain_rules());
    }

    #[test]
    fn dns_queries_are_evaluated_as_egress() {
        let p = policy(
            &[
                "deny@evil.example",
                "deny@*.tracker.example:tcp:443",
                "allow@*.corp.example:tcp:443",
            ],
            Action::Deny,
        );
        assert_eq!(p.evaluate_dns(&name("evil.example")).action, Action::Deny);
        assert_eq!(
            p.evaluate_dns(&name("sub.evil.example")).action,
            Action::Allow,
            "exact rule"
        );
        assert_eq!(
            p.evaluate_dns(&name("a.tracker.example")).action,
            Action::Allow,
            "port-limited deny"
        );
        assert_eq!(p.evaluate_dns(&name("git.corp.example")).rule, Some(2));
        assert_eq!(
            p.evaluate_dns(&name("api.openai.com")),
            Decision {
                action: Action::Allow,
                rule: None
            }
        );

        let locked = EgressPolicy {
            rules: vec![Rule::parse("allow@api.openai.com:tcp:443").unwrap()],
            default: Action::Deny,
            rebind_protection: true,
        };
        assert_eq!(
            locked.evaluate_dns(&name("api.openai.com")).action,
            Action::Allow
        );
        assert_eq!(
            locked.evaluate_dns(&name("evil.example")).action,
            Action::Deny
        );
        let deny_all = policy(&["deny@any"], Action::Deny);
        assert_eq!(
            deny_all.evaluate_dns(&name("api.openai.com")).action,
            Action::Deny
        );
    }

    #[test]
    fn rebind_protection_drops_non_public_answers_unless_allowed() {
        let p = EgressPolicy::default();
        for bad in [
            "10.0.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "::ffff:192.168.0.1",
            "0.0.0.0",
            "224.0.0.1",
        ] {
            assert!(!p.allows_resolved_address(ip(bad), &no_host), "{bad}");
        }
        assert!(p.allows_resolved_address(ip("93.184.216.34"), &no_host));
        assert!(
            !p.allows_resolved_address(ip("93.184.216.34"), &|_| true),
            "the host's own address"
        );
        let open = policy(&[], Action::Allow);
        assert!(
            !open.allows_resolved_address(ip("10.0.0.1"), &no_host),
            "a permissive default never lifts it"
        );
        let lan = policy(&["allow@10.20.0.0/16", "deny@10.0.0.0/8"], Action::Deny);
        assert!(lan.allows_resolved_address(ip("10.20.1.1"), &no_host));
        assert!(!lan.allows_resolved_address(ip("10.30.1.1"), &no_host));
        let off = EgressPolicy {
            rebind_protection: false,
            ..EgressPolicy::default()
        };
        assert!(off.allows_resolved_address(ip("10.0.0.1"), &no_host));
    }

    #[test]
    fn ipv6_forms_of_ipv4_addresses_follow_the_ipv4_rules() {
        let shipped = EgressPolicy::default();
        for a in [
            "64:ff9b::a9fe:a9fe",
            "2002:a00:1::1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
        ] {
            assert_eq!(
                shipped.evaluate(&tcp(a, 80, &[]), &no_host).action,
                Action::Deny,
                "{a}"
            );
            assert!(!shipped.allows_resolved_address(ip(a), &no_host), "{a}");
        }
        assert_eq!(
            shipped
                .evaluate(&tcp("64:ff9b::808:808", 80, &[]), &no_host)
                .action,
            Action::Allow
        );
        // IPv4 rules see through the IPv6 forms, both ways.
        let p = policy(&["deny@8.8.8.0/24", "allow@10.0.0.0/8"], Action::Deny);
        assert_eq!(
            p.evaluate(&tcp("64:ff9b::808:808", 80, &[]), &no_host)
                .action,
            Action::Deny
        );
        assert_eq!(
            p.evaluate(&tcp("2002:a00:1::", 80, &[]), &no_host).action,
            Action::Allow
        );
        assert!(p.allows_resolved_address(ip("64:ff9b::a00:1"), &no_host));
        // The host's own address, written as NAT64, is still the host.
        let host = |a: IpAddr| a == ip("93.184.216.34");
        assert_eq!(
            shipped
                .evaluate(&tcp("64:ff9b::5db8:d822", 80, &[]), &host)
                .action,
            Action::Deny
        );
    }

    proptest::proptest! {
        /// With the shipped policy, a connection is allowed exactly when its address is public
        /// and not the host's, whatever names and port it carries.
        #[test]
        fn shipped_policy_is_exactly_public(bits: u128, v4: bool, port: u16, host_bit: bool) {
            let addr = if v4 { IpAddr::V4(std::net::Ipv4Addr::from(bits as u32)) } else { IpAddr::V6(std::net::Ipv6Addr::from(bits)) };
            let is_host = move |_: IpAddr| host_bit;
            let names = [name("api.openai.com")];
            let d = EgressPolicy::default().evaluate(&tcp(&addr.to_string(), port, &names), &is_host);
            let public = IpClass::of(addr) == IpClass::Public && !host_bit;
            proptest::prop_assert_eq!(d.action == Action::Allow, public);
        }

        /// Prepending a rule never changes decisions it does not match.
        #[test]
        fn unmatched_rules_are_transparent(bits: u32, port in 1u16.., prefix in 8u8..=32) {
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(bits));
            let net = ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(bits ^ 0x8000_0000), prefix).unwrap().trunc();
            let rule = Rule::parse(&format!("deny@{net}")).unwrap();
            let base = EgressPolicy::default();
            let with = EgressPolicy::with_user_rules(vec![rule], Action::Deny);
            let f = tcp(&addr.to_string(), port, &[]);
            if !net.contains(&std::net::Ipv4Addr::from(bits)) {
                proptest::prop_assert_eq!(base.evaluate(&f, &no_host).action, with.evaluate(&f, &no_host).action);
            } else {
                proptest::prop_assert_eq!(with.evaluate(&f, &no_host).action, Action::Deny);
            }
        }
    }
}
