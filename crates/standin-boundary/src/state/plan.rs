//! [`Plan`]: for one destination, which placeholders are substituted in which part of a
//! request, and which are violations. Built once per connection (TLS: the server name is
//! fixed) or per distinct `Host` (plain HTTP), never per byte.

use standin_policy::egress::DomainName;
use standin_policy::secrets::{Destination, Patterns, Role, SecretSet, ViolationAction};
use std::sync::Arc;

/// Substitution and detection sets for one destination.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The claimed host this plan is for.
    pub host: Option<DomainName>,
    /// Substituted in header values.
    pub sub_headers: Arc<Patterns>,
    /// Substituted inside Basic credentials.
    pub sub_basic: Arc<Patterns>,
    /// Substituted in the query string.
    pub sub_query: Arc<Patterns>,
    /// Substituted in identity-encoded bodies.
    pub sub_body: Arc<Patterns>,
    /// Placeholders that are violations here.
    pub violations: Arc<Patterns>,
    /// For bodies with a content encoding: violations plus placeholders that body injection
    /// would have substituted (they cannot be, so they are blocked).
    pub encoded_body: Arc<Patterns>,
    /// Per secret: its violation action here, if its placeholder is a violation.
    pub actions: Vec<Option<ViolationAction>>,
    /// Secrets that may be substituted here: their values are scrubbed from responses.
    pub reflect_ids: Arc<Vec<usize>>,
    /// AWS credentials whose SigV4 requests are re-signed here.
    pub resign: Vec<usize>,
    /// Secrets with `require` bound to this destination: every request must carry them.
    pub required: Vec<usize>,
    /// Placeholders forwarded unchanged here (a passthrough host), looked for in request
    /// heads to record them; empty unless events are recorded.
    pub passthrough: Arc<Patterns>,
}

impl Plan {
    /// The plan for `dest`; `audit`: events are recorded (passthroughs are then looked for).
    pub(crate) fn build(set: &SecretSet, dest: &Destination<'_>, audit: bool) -> Plan {
        let roles: Vec<Role> = (0..set.entries.len()).map(|i| set.role(i, dest)).collect();
        let pick = |f: &dyn Fn(usize) -> bool| {
            Arc::new(Patterns::new(
                set.entries
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| f(*i))
                    .map(|(i, e)| (i, e.placeholder.as_bytes())),
            ))
        };
        // An AWS secret access key is never written into a request: it signs instead.
        let sub = |i: usize| roles[i] == Role::Substitute && set.entries[i].aws.is_none();
        let resign = |i: usize| roles[i] == Role::Substitute && set.entries[i].aws.is_some();
        let inj = |i: usize| set.entries[i].injection;
        let violation = |i: usize| matches!(roles[i], Role::Violation(_));
        Plan {
            host: dest.host.cloned(),
            sub_headers: pick(&|i| sub(i) && inj(i).headers),
            sub_basic: pick(&|i| sub(i) && inj(i).basic_auth),
            sub_query: pick(&|i| sub(i) && inj(i).query_params),
            sub_body: pick(&|i| sub(i) && inj(i).body),
            violations: pick(&violation),
            encoded_body: pick(&|i| violation(i) || (sub(i) && inj(i).body)),
            reflect_ids: Arc::new((0..roles.len()).filter(|&i| sub(i) || resign(i)).collect()),
            resign: (0..roles.len()).filter(|&i| resign(i)).collect(),
            required: set.required(dest),
            passthrough: pick(&|i| audit && roles[i] == Role::Passthrough),
            actions: roles
                .iter()
                .map(|r| match r {
                    Role::Violation(a) => Some(*a),
                    _ => None,
                })
                .collect(),
        }
    }

    /// Whether requests under this plan need no rewriting and no scanning.
    pub(crate) fn is_inert(&self) -> bool {
        self.violations.is_empty()
            && self.sub_headers.is_empty()
            && self.sub_basic.is_empty()
            && self.sub_query.is_empty()
            && self.sub_body.is_empty()
            && self.reflect_ids.is_empty()
            && self.required.is_empty()
            && self.passthrough.is_empty()
    }
}
