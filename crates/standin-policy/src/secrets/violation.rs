//! [`ViolationAction`] and [`ViolationPolicy`]: what happens when a placeholder turns up
//! where its secret may not become real.

use crate::egress::{DomainName, HostPattern};
use serde::{Deserialize, Serialize};

/// The action taken for a violation (the reference SDK's string type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum ViolationAction {
    /// Drop the request; the sandbox sees a connection reset. The default.
    Block,
    /// Block, plus a host-side warning and an event.
    BlockAndLog,
    /// Block, plus an error event, and kill the whole sandbox.
    BlockAndTerminate,
    /// Forward the placeholder unchanged (only for passthrough hosts).
    Passthrough,
}

impl ViolationAction {
    /// The kebab-case name (`block`, `block-and-log`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationAction::Block => "block",
            ViolationAction::BlockAndLog => "block-and-log",
            ViolationAction::BlockAndTerminate => "block-and-terminate",
            ViolationAction::Passthrough => "passthrough",
        }
    }

    /// Parse a blocking action name (`block`, `block-and-log`, `block-and-terminate`).
    pub fn parse_block(s: &str) -> Option<ViolationAction> {
        match s {
            "block" => Some(ViolationAction::Block),
            "block-and-log" => Some(ViolationAction::BlockAndLog),
            "block-and-terminate" => Some(ViolationAction::BlockAndTerminate),
            _ => None,
        }
    }

    /// Severity order for combining several violations: terminate > log > block.
    pub fn strictest(self, other: ViolationAction) -> ViolationAction {
        self.max(other)
    }
}

/// How a blocked HTTP request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// A connection reset, as the reference does: the default.
    #[default]
    Reset,
    /// The boundary itself answers `403 Forbidden` with a short text naming the rule (never a
    /// value); nothing reaches the destination. Streams that are not HTTP are still reset.
    Forbidden,
}

impl Refusal {
    /// Parse `reset` or `forbidden`.
    pub fn parse(s: &str) -> Option<Refusal> {
        match s {
            "reset" => Some(Refusal::Reset),
            "forbidden" => Some(Refusal::Forbidden),
            _ => None,
        }
    }
}

/// A violation policy: a base blocking action and hosts that receive the placeholder
/// unchanged instead. `block*` sets the base, `passthrough*` adds hosts, in any order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationPolicy {
    /// The base action, when one was set explicitly (`None`: fall back to the sandbox-wide
    /// policy, whose own default is [`ViolationAction::Block`]).
    pub action: Option<ViolationAction>,
    /// Exact passthrough hosts.
    pub passthrough_hosts: Vec<DomainName>,
    /// `*.suffix` passthrough patterns.
    pub passthrough_patterns: Vec<HostPattern>,
    /// Pass the placeholder through to every host.
    pub passthrough_all: bool,
    /// How a blocked HTTP request is answered (`None`: as the sandbox-wide policy says, whose
    /// default is [`Refusal::Reset`]). The sandbox-wide setting also answers egress denials.
    #[serde(default)]
    pub respond: Option<Refusal>,
}

impl ViolationPolicy {
    /// Whether `host` receives the placeholder unchanged.
    pub fn passes(&self, host: &DomainName) -> bool {
        self.passthrough_all
            || self.passthrough_hosts.iter().any(|h| h == host)
            || self.passthrough_patterns.iter().any(|p| p.matches(host))
    }

    /// Whether any passthrough is configured.
    pub fn has_passthrough(&self) -> bool {
        self.passthrough_all
            || !self.passthrough_hosts.is_empty()
            || !self.passthrough_patterns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictest_wins() {
        use ViolationAction::*;
        assert_eq!(Block.strictest(BlockAndLog), BlockAndLog);
        assert_eq!(BlockAndTerminate.strictest(BlockAndLog), BlockAndTerminate);
        assert_eq!(ViolationAction::parse_block("passthrough"), None);
        assert_eq!(
            serde_json::to_string(&BlockAndTerminate).unwrap(),
            "\"block-and-terminate\""
        );
    }
}
