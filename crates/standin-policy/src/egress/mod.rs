//! The egress policy: an ordered list of rules, first match wins, then a default.
//!
//! - [`domain`]: validated, canonical domain names and `*.suffix` patterns;
//! - [`rule`]: destinations, groups, protocols, port ranges, actions, and the
//!   `allow|deny@TARGET[:tcp|udp[:PORTS]]` grammar of `--net-rule`;
//! - [`policy`]: evaluation of connections and DNS queries, and rebind decisions;
//! - [`pins`]: the per-sandbox table of names this sandbox resolved to each address, which ties
//!   domain rules (and later, secret host identity) to the sandbox's own DNS answers.

pub mod domain;
pub mod pins;
pub mod policy;
pub mod rule;

pub use domain::{DomainError, DomainName, HostPattern};
pub use pins::PinTable;
pub use policy::{Decision, EgressPolicy, Flow};
pub use rule::{Action, Destination, Group, PortRange, Protocol, Rule, RuleError};
