//! Rules and the `--net-rule` grammar.
//!
//! ```text
//! RULE    = ACTION "@" TARGET [ ":" PROTO [ ":" PORTS ] ]
//! ACTION  = "allow" | "deny"
//! TARGET  = "any" | GROUP | IPV4 | IPV4 "/" LEN | "[" IPV6 "]" | "[" IPV6 "/" LEN "]"
//!         | DOMAIN | "*." DOMAIN
//! GROUP   = "public" | "private" | "loopback" | "link-local" | "metadata" | "multicast" | "host"
//! PROTO   = "tcp" | "udp" | "any"
//! PORTS   = RANGE { "," RANGE } ;  RANGE = PORT [ "-" PORT ]
//! ```
//!
//! Examples: `deny@metadata`, `allow@10.0.0.0/8:tcp:5432`, `allow@*.openai.com:tcp:443`,
//! `deny@[fd00::/8]`, `allow@api.github.com:tcp:22,443`. A group name always means the group;
//! write a trailing dot (`host.`) for a domain that happens to be spelled like one.

use super::domain::{DomainError, HostPattern};
use crate::IpClass;
use crate::ip_class::ipv4_views;
use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;
use thiserror::Error;

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Action {
    /// Let it through.
    Allow,
    /// Refuse it.
    Deny,
}

impl Action {
    /// `allow` / `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
        }
    }
}

/// Transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// Address groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// Addresses of class [`IpClass::Public`].
    Public,
    /// RFC 1918, CGNAT, unique-local.
    Private,
    /// Loopback.
    Loopback,
    /// Link-local (metadata excluded: it is its own group).
    LinkLocal,
    /// Cloud metadata endpoints.
    Metadata,
    /// Multicast and broadcast.
    Multicast,
    /// The addresses of the host standin runs on.
    Host,
}

impl Group {
    /// All groups with their names.
    pub const ALL: [(Group, &'static str); 7] = [
        (Group::Public, "public"),
        (Group::Private, "private"),
        (Group::Loopback, "loopback"),
        (Group::LinkLocal, "link-local"),
        (Group::Metadata, "metadata"),
        (Group::Multicast, "multicast"),
        (Group::Host, "host"),
    ];

    /// Name as used in rules.
    pub fn name(self) -> &'static str {
        Group::ALL
            .iter()
            .find(|(g, _)| *g == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }

    fn from_name(s: &str) -> Option<Group> {
        Group::ALL.iter().find(|(_, n)| *n == s).map(|(g, _)| *g)
    }

    /// Whether `ip` belongs to the group; `is_host` tells whether an address is the host's.
    /// An IPv6 address carrying an IPv4 address (NAT64, 6to4…) is the host's when the IPv4
    /// address is.
    pub fn contains(self, ip: IpAddr, is_host: &dyn Fn(IpAddr) -> bool) -> bool {
        let class = IpClass::of(ip);
        let host = || is_host(ip) || ipv4_views(ip).iter().any(|v| is_host(IpAddr::V4(v)));
        match self {
            Group::Host => host(),
            Group::Public => class == IpClass::Public && !host(),
            Group::Private => class == IpClass::Private,
            Group::Loopback => class == IpClass::Loopback,
            Group::LinkLocal => class == IpClass::LinkLocal,
            Group::Metadata => class == IpClass::Metadata,
            Group::Multicast => class == IpClass::Multicast,
        }
    }
}

/// What a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Everything.
    Any,
    /// One network (a single address is a /32 or /128).
    Cidr(IpNet),
    /// A domain name or `*.suffix`, tied to the sandbox's own DNS answers.
    Domain(HostPattern),
    /// An address group.
    Group(Group),
}

/// Whether `net` holds `ip`, or (for an IPv4 network) one of the IPv4 addresses `ip` carries:
/// `deny@10.0.0.0/8` also denies `64:ff9b::a00:1`.
pub fn net_contains(net: &IpNet, ip: IpAddr) -> bool {
    net.contains(&ip)
        || (matches!(net, IpNet::V4(_))
            && ipv4_views(ip).iter().any(|v| net.contains(&IpAddr::V4(v))))
}

impl Destination {
    /// Whether this destination is about addresses (not names).
    pub fn is_address(&self) -> bool {
        matches!(self, Destination::Cidr(_) | Destination::Group(_))
    }
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port.
    pub hi: u16,
}

impl PortRange {
    /// Whether `port` is in range.
    pub fn contains(self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }
}

/// One rule. Serialized as its text (`allow@*.example.com:tcp:443`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Rule {
    /// What happens on a match.
    pub action: Action,
    /// What it matches.
    pub destination: Destination,
    /// `None`: any protocol.
    pub protocol: Option<Protocol>,
    /// Empty: any port.
    pub ports: Vec<PortRange>,
}

/// Why a rule was rejected. Each names the offending token and what was expected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RuleError {
    /// Missing `@`, or an action other than allow/deny.
    #[error("rule {rule:?}: expected allow@TARGET or deny@TARGET, found {token:?}")]
    Action {
        /// Whole rule.
        rule: String,
        /// Offending token.
        token: String,
    },
    /// Bad target.
    #[error(
        "rule {rule:?}: target {token:?} is not an IP, CIDR, [IPv6], domain, *.domain, group (public, private, loopback, link-local, metadata, multicast, host) or 'any': {reason}"
    )]
    Target {
        /// Whole rule.
        rule: String,
        /// Offending token.
        token: String,
        /// Details.
        reason: String,
    },
    /// Bad protocol.
    #[error("rule {rule:?}: protocol {token:?} should be tcp, udp or any")]
    Protocol {
        /// Whole rule.
        rule: String,
        /// Offending token.
        token: String,
    },
    /// Bad port list.
    #[error(
        "rule {rule:?}: ports {token:?} should be PORT, PORT-PORT or a comma-separated list of those, each 1-65535"
    )]
    Ports {
        /// Whole rule.
        rule: String,
        /// Offending token.
        token: String,
    },
    /// Something after the ports.
    #[error("rule {rule:?}: unexpected {token:?} after the ports")]
    Trailing {
        /// Whole rule.
        rule: String,
        /// Offending token.
        token: String,
    },
}

impl Rule {
    /// Parse one `--net-rule`.
    pub fn parse(input: &str) -> Result<Rule, RuleError> {
        let rule = input.trim();
        let (action, rest) = rule.split_once('@').ok_or_else(|| RuleError::Action {
            rule: rule.to_owned(),
            token: rule.to_owned(),
        })?;
        let action = match action.to_ascii_lowercase().as_str() {
            "allow" => Action::Allow,
            "deny" => Action::Deny,
            _ => {
                return Err(RuleError::Action {
                    rule: rule.to_owned(),
                    token: action.to_owned(),
                });
            }
        };
        // An IPv6 target must be bracketed: its ':' would clash with the separators. More
        // separators than the grammar has, or a bare IPv6 address, means one was not.
        let bare_v6 = !rest.starts_with('[')
            && (rest.matches(':').count() > 2
                || rest.parse::<std::net::Ipv6Addr>().is_ok()
                || rest.parse::<ipnet::Ipv6Net>().is_ok());
        if bare_v6 {
            return Err(RuleError::Target {
                rule: rule.to_owned(),
                token: rest.to_owned(),
                reason: "write IPv6 addresses in brackets, e.g. [2001:db8::1] or [fd00::/8]".into(),
            });
        }
        // The target may be a bracketed IPv6 address containing ':'.
        let (target, tail) = if let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']').ok_or_else(|| RuleError::Target {
                rule: rule.to_owned(),
                token: rest.to_owned(),
                reason: "missing ']'".into(),
            })?;
            (&rest[..close + 2], &inner[close + 1..])
        } else {
            match rest.find(':') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            }
        };
        let destination = parse_target(target).map_err(|reason| RuleError::Target {
            rule: rule.to_owned(),
            token: target.to_owned(),
            reason,
        })?;
        let mut protocol = None;
        let mut ports = Vec::new();
        if !tail.is_empty() {
            let tail = tail.strip_prefix(':').ok_or_else(|| RuleError::Target {
                rule: rule.to_owned(),
                token: format!("{target}{tail}"),
                reason: "expected ':' after the target".into(),
            })?;
            let mut parts = tail.splitn(3, ':');
            let proto = parts.next().unwrap_or("");
            protocol = match proto.to_ascii_lowercase().as_str() {
                "tcp" => Some(Protocol::Tcp),
                "udp" => Some(Protocol::Udp),
                "any" => None,
                _ => {
                    return Err(RuleError::Protocol {
                        rule: rule.to_owned(),
                        token: proto.to_owned(),
                    });
                }
            };
            if let Some(list) = parts.next() {
                ports = parse_ports(list).ok_or_else(|| RuleError::Ports {
                    rule: rule.to_owned(),
                    token: list.to_owned(),
                })?;
            }
            if let Some(extra) = parts.next() {
                return Err(RuleError::Trailing {
                    rule: rule.to_owned(),
                    token: extra.to_owned(),
                });
            }
        }
        Ok(Rule {
            action,
            destination,
            protocol,
            ports,
        })
    }

    /// Whether protocol and port match (destination aside).
    pub fn matches_transport(&self, protocol: Protocol, port: u16) -> bool {
        self.protocol.is_none_or(|p| p == protocol)
            && (self.ports.is_empty() || self.ports.iter().any(|r| r.contains(port)))
    }
}

fn parse_target(t: &str) -> Result<Destination, String> {
    if t.is_empty() {
        return Err("empty target".into());
    }
    if t == "any" || t == "*" {
        return Ok(Destination::Any);
    }
    if let Some(g) = Group::from_name(t) {
        return Ok(Destination::Group(g));
    }
    if let Some(inner) = t.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or("missing ']'")?;
        return parse_net(inner, true).map(Destination::Cidr);
    }
    if t.contains('/') || t.parse::<std::net::Ipv4Addr>().is_ok() {
        return parse_net(t, false).map(Destination::Cidr);
    }
    if t.contains(':') {
        return Err("write IPv6 addresses in brackets, e.g. [2001:db8::1] or [fd00::/8]".into());
    }
    HostPattern::parse(t)
        .map(Destination::Domain)
        .map_err(|e: DomainError| e.to_string())
}

fn parse_net(s: &str, v6: bool) -> Result<IpNet, String> {
    let net = if s.contains('/') {
        s.parse::<IpNet>().map_err(|e| e.to_string())?
    } else {
        IpNet::from(s.parse::<IpAddr>().map_err(|e| e.to_string())?)
    };
    if v6 != matches!(net, IpNet::V6(_)) {
        return Err(if v6 {
            "brackets are for IPv6".into()
        } else {
            "write IPv6 in brackets".into()
        });
    }
    if net.trunc() != net {
        return Err(format!("host bits are set; did you mean {}?", net.trunc()));
    }
    Ok(net)
}

fn parse_ports(list: &str) -> Option<Vec<PortRange>> {
    let mut out = Vec::new();
    for item in list.split(',') {
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?),
            None => {
                let p = item.parse::<u16>().ok()?;
                (p, p)
            }
        };
        if lo == 0 || lo > hi {
            return None;
        }
        out.push(PortRange { lo, hi });
    }
    Some(out)
}

impl TryFrom<String> for Rule {
    type Error = RuleError;
    fn try_from(s: String) -> Result<Rule, RuleError> {
        Rule::parse(&s)
    }
}

impl From<Rule> for String {
    fn from(r: Rule) -> String {
        r.to_string()
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@", self.action.as_str())?;
        match &self.destination {
            Destination::Any => write!(f, "any")?,
            Destination::Group(g) => write!(f, "{}", g.name())?,
            Destination::Domain(p) => write!(f, "{p}")?,
            Destination::Cidr(IpNet::V4(n)) if n.prefix_len() == 32 => write!(f, "{}", n.addr())?,
            Destination::Cidr(IpNet::V4(n)) => write!(f, "{n}")?,
            Destination::Cidr(IpNet::V6(n)) if n.prefix_len() == 128 => {
                write!(f, "[{}]", n.addr())?
            }
            Destination::Cidr(IpNet::V6(n)) => write!(f, "[{n}]")?,
        }
        if self.protocol.is_none() && self.ports.is_empty() {
            return Ok(());
        }
        let proto = match self.protocol {
            Some(Protocol::Tcp) => "tcp",
            Some(Protocol::Udp) => "udp",
            None => "any",
        };
        write!(f, ":{proto}")?;
        for (i, r) in self.ports.iter().enumerate() {
            f.write_str(if i == 0 { ":" } else { "," })?;
            if r.lo == r.hi {
                write!(f, "{}", r.lo)?;
            } else {
                write!(f, "{}-{}", r.lo, r.hi)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Rule {
        Rule::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_the_documented_examples() {
        assert_eq!(
            r("deny@metadata").destination,
            Destination::Group(Group::Metadata)
        );
        let db = r("allow@10.0.0.0/8:tcp:5432");
        assert_eq!(db.action, Action::Allow);
        assert_eq!(
            db.destination,
            Destination::Cidr("10.0.0.0/8".parse().unwrap())
        );
        assert_eq!(db.protocol, Some(Protocol::Tcp));
        assert_eq!(db.ports, vec![PortRange { lo: 5432, hi: 5432 }]);
        let wild = r("allow@*.openai.com:tcp:443");
        assert!(matches!(
            wild.destination,
            Destination::Domain(HostPattern::Suffix(_))
        ));
        assert_eq!(
            r("deny@[fd00::/8]").destination,
            Destination::Cidr("fd00::/8".parse().unwrap())
        );
        assert_eq!(r("deny@[2001:db8::1]:udp").protocol, Some(Protocol::Udp));
        let multi = r("allow@api.github.com:tcp:22,443,8000-8100");
        assert_eq!(multi.ports.len(), 3);
        assert!(multi.matches_transport(Protocol::Tcp, 8050));
        assert!(!multi.matches_transport(Protocol::Tcp, 8101));
        assert!(!multi.matches_transport(Protocol::Udp, 443));
        assert_eq!(r("allow@any").destination, Destination::Any);
        assert_eq!(
            r("deny@8.8.8.8").destination,
            Destination::Cidr("8.8.8.8/32".parse().unwrap())
        );
        assert!(matches!(
            r("allow@host.").destination,
            Destination::Domain(_)
        ));
        assert_eq!(r("DENY@host").destination, Destination::Group(Group::Host));
    }

    #[test]
    fn errors_name_the_bad_token() {
        let cases = [
            ("allow", "allow"),
            ("permit@x.com", "permit"),
            ("allow@:tcp", ""),
            ("allow@10.0.0.1/8", "host bits"),
            ("allow@2001:db8::1", "brackets"),
            ("allow@::1", "brackets"),
            ("allow@fd00::/8:tcp", "brackets"),
            ("allow@[10.0.0.1]", "brackets are for IPv6"),
            ("allow@[fd00::1", "missing ']'"),
            ("allow@*.com", "too broad"),
            ("allow@ex ample.com", "ex ample.com"),
            ("allow@x.com:sctp", "sctp"),
            ("allow@x.com:tcp:0", "\"0\""),
            ("allow@x.com:tcp:90-80", "90-80"),
            ("allow@x.com:tcp:http", "http"),
            ("allow@x.com:tcp:80:extra", "extra"),
            ("allow@[fd00::1]x", "expected ':'"),
        ];
        for (rule, needle) in cases {
            let err = Rule::parse(rule).unwrap_err().to_string();
            assert!(err.contains(needle), "{rule}: {err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "deny@metadata",
            "allow@10.0.0.0/8:tcp:5432",
            "allow@*.openai.com:tcp:443",
            "deny@[fd00::/8]",
            "deny@[2001:db8::1]:udp",
            "allow@api.github.com:tcp:22,443,8000-8100",
            "allow@any",
            "deny@8.8.8.8:any:53",
        ] {
            assert_eq!(r(s).to_string(), s);
            assert_eq!(r(&r(s).to_string()), r(s));
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,60}") {
            let _ = Rule::parse(&s);
        }

        #[test]
        fn port_rules_round_trip(lo in 1u16.., span in 0u16..100, tcp: bool) {
            let hi = lo.saturating_add(span);
            let proto = if tcp { "tcp" } else { "udp" };
            let text = if lo == hi { format!("allow@1.2.3.0/24:{proto}:{lo}") } else { format!("allow@1.2.3.0/24:{proto}:{lo}-{hi}") };
            let rule = Rule::parse(&text).unwrap();
            proptest::prop_assert_eq!(rule.to_string(), text);
            let p = if tcp { Protocol::Tcp } else { Protocol::Udp };
            proptest::prop_assert!(rule.matches_transport(p, lo));
            proptest::prop_assert!(rule.matches_transport(p, hi));
        }
    }
}
