//! [`SecretSet`]: every secret of a sandbox plus the sandbox-wide violation policy, and the
//! per-destination decision of what each placeholder may become.

use super::entry::{SecretEntry, SecretError};
use super::value::SecretValue;
use super::violation::{ViolationAction, ViolationPolicy};
use crate::egress::DomainName;
use std::collections::HashSet;

/// Most retired values kept per secret (older ones are dropped at the next rotation).
pub const MAX_RETIRED: usize = 2;

/// All secrets of one sandbox.
#[derive(Debug, Clone, Default)]
pub struct SecretSet {
    /// The secrets, in the order given.
    pub entries: Vec<SecretEntry>,
    /// The sandbox-wide violation policy (`on_secret_violation`).
    pub on_violation: ViolationPolicy,
}

/// What the boundary knows about where a request is going.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    /// The name the client claims: the TLS server name, or the plain-HTTP `Host`.
    pub host: Option<&'a DomainName>,
    /// Whether this sandbox's own DNS answers resolved `host` to the dialed address.
    pub host_pinned: bool,
    /// Every name this sandbox resolved to the dialed address (used when there is no claim,
    /// e.g. a non-HTTP stream).
    pub pinned_names: &'a [DomainName],
    /// Whether the connection is intercepted TLS with a verified upstream for `host`.
    pub tls: bool,
}

/// What one secret's placeholder becomes on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Replaced by the real value in the secret's enabled scopes.
    Substitute,
    /// An allowed host, but the identity rule says not here (plain HTTP with
    /// `require_tls_identity`): forwarded unchanged, not a violation.
    Inert,
    /// A passthrough host: forwarded unchanged.
    Passthrough,
    /// A violation with this blocking action.
    Violation(ViolationAction),
}

impl SecretSet {
    /// Check every entry and the set as a whole (unique env names and placeholders).
    pub fn validate(&self) -> Result<(), SecretError> {
        let mut envs = HashSet::new();
        for (i, e) in self.entries.iter().enumerate() {
            e.validate()?;
            if !envs.insert(e.env_var.as_str()) {
                return Err(SecretError::DuplicateEnv(e.env_var.clone()));
            }
            if let Some(other) = self.entries[..i]
                .iter()
                .find(|o| o.placeholder == e.placeholder)
            {
                return Err(SecretError::DuplicatePlaceholder(
                    other.env_var.clone(),
                    e.env_var.clone(),
                ));
            }
            if let Some(aws) = &e.aws
                && let Some(other) = self.entries[..i].iter().find(|o| {
                    o.aws
                        .as_ref()
                        .is_some_and(|a| a.access_key_id == aws.access_key_id)
                })
            {
                return Err(SecretError::DuplicateKeyId(
                    other.env_var.clone(),
                    e.env_var.clone(),
                ));
            }
        }
        Ok(())
    }

    /// The secrets with `require` whose allowed hosts include the destination: the claimed
    /// host (pinned or not: an unpinned claim cannot carry the secret, so it is refused too),
    /// or without a claim any name this sandbox resolved to the address.
    pub fn required(&self, dest: &Destination<'_>) -> Vec<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.require)
            .filter(|(_, e)| match dest.host {
                Some(h) => e.allows(h),
                None => dest.pinned_names.iter().any(|n| e.allows(n)),
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Index of the secret whose AWS access key ID is `key_id`.
    pub fn by_key_id(&self, key_id: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.aws.as_ref().is_some_and(|a| a.access_key_id == key_id))
    }

    /// This set with secret `env`'s value replaced by `value` (rotation). The old value is
    /// kept in [`SecretEntry::retired`] (the last [`MAX_RETIRED`]) so that responses are
    /// still scrubbed of it; drop it later with [`without_retired`](Self::without_retired).
    pub fn rotated(&self, env: &str, value: SecretValue) -> Result<SecretSet, SecretError> {
        let mut next = self.clone();
        let i = next
            .entries
            .iter()
            .position(|e| e.env_var == env)
            .ok_or_else(|| SecretError::UnknownSecret(env.to_owned()))?;
        let e = &mut next.entries[i];
        e.validate_value(&value)?;
        let old = std::mem::replace(&mut e.value, value);
        if old != e.value {
            e.retired.retain(|r| *r != e.value);
            e.retired.push(old);
            if e.retired.len() > MAX_RETIRED {
                e.retired.remove(0);
            }
        }
        next.validate()?;
        Ok(next)
    }

    /// This set without the retired `value` of secret `env` (its grace period is over).
    pub fn without_retired(&self, env: &str, value: &SecretValue) -> SecretSet {
        let mut next = self.clone();
        for e in next.entries.iter_mut().filter(|e| e.env_var == env) {
            e.retired.retain(|r| r != value);
        }
        next
    }

    /// Whether there are no secrets.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The role of secret `index` for a request to `dest`.
    ///
    /// Substitution needs: the claimed host on the allow list, that host resolved by this
    /// sandbox to the dialed address, and (with `require_tls_identity`) intercepted TLS with a
    /// verified upstream. `allow_any_host` skips the host checks, not the TLS one. Otherwise
    /// the placeholder is a violation, unless a passthrough matches: the secret's own policy
    /// first; a secret's explicit base action overrides the sandbox-wide policy; without one,
    /// the sandbox-wide passthrough and action apply.
    pub fn role(&self, index: usize, dest: &Destination<'_>) -> Role {
        let s = &self.entries[index];
        let tls_ok = !s.require_tls_identity || dest.tls;
        if s.allow_any_host {
            return if tls_ok {
                Role::Substitute
            } else {
                Role::Inert
            };
        }
        if let Some(host) = dest.host
            && dest.host_pinned
            && s.allows(host)
        {
            return if tls_ok {
                Role::Substitute
            } else {
                Role::Inert
            };
        }
        let passes = |p: &ViolationPolicy| {
            p.passthrough_all
                || match dest.host {
                    Some(h) => dest.host_pinned && p.passes(h),
                    None => dest.pinned_names.iter().any(|n| p.passes(n)),
                }
        };
        if let Some(own) = &s.on_violation {
            if passes(own) {
                return Role::Passthrough;
            }
            if let Some(a) = own.action {
                return Role::Violation(a);
            }
        }
        if passes(&self.on_violation) {
            return Role::Passthrough;
        }
        Role::Violation(self.on_violation.action.unwrap_or(ViolationAction::Block))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::HostPattern;
    use crate::secrets::entry::{SecretInjection, default_placeholder};
    use crate::secrets::value::SecretValue;

    fn n(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    fn entry(env: &str, host: &str) -> SecretEntry {
        SecretEntry {
            env_var: env.into(),
            value: SecretValue::new(format!("real-{env}")),
            placeholder: default_placeholder(env),
            allowed_hosts: vec![n(host)],
            allowed_host_patterns: vec![],
            allow_any_host: false,
            require_tls_identity: true,
            injection: SecretInjection::default(),
            on_violation: None,
            aws: None,
            require: false,
            retired: Vec::new(),
        }
    }

    fn dest<'a>(host: &'a DomainName, pinned: bool, tls: bool) -> Destination<'a> {
        Destination {
            host: Some(host),
            host_pinned: pinned,
            pinned_names: &[],
            tls,
        }
    }

    #[test]
    fn substitutes_only_with_identity() {
        let set = SecretSet {
            entries: vec![entry("K", "api.example.com")],
            ..Default::default()
        };
        let api = n("api.example.com");
        let evil = n("evil.example");
        assert_eq!(set.role(0, &dest(&api, true, true)), Role::Substitute);
        // Plain HTTP to the allowed host: forwarded unchanged.
        assert_eq!(set.role(0, &dest(&api, true, false)), Role::Inert);
        // Not resolved by this sandbox (hard-coded IP with a borrowed name).
        assert_eq!(
            set.role(0, &dest(&api, false, true)),
            Role::Violation(ViolationAction::Block)
        );
        assert_eq!(
            set.role(0, &dest(&evil, true, true)),
            Role::Violation(ViolationAction::Block)
        );
        let none = Destination {
            host: None,
            host_pinned: false,
            pinned_names: &[],
            tls: true,
        };
        assert_eq!(set.role(0, &none), Role::Violation(ViolationAction::Block));
    }

    #[test]
    fn require_tls_identity_off_allows_plain_http() {
        let mut e = entry("K", "api.example.com");
        e.require_tls_identity = false;
        let set = SecretSet {
            entries: vec![e],
            ..Default::default()
        };
        let api = n("api.example.com");
        assert_eq!(set.role(0, &dest(&api, true, false)), Role::Substitute);
        assert_eq!(
            set.role(0, &dest(&api, false, false)),
            Role::Violation(ViolationAction::Block)
        );
    }

    #[test]
    fn any_host_skips_host_checks_not_tls() {
        let mut e = entry("K", "api.example.com");
        e.allow_any_host = true;
        let set = SecretSet {
            entries: vec![e],
            ..Default::default()
        };
        let evil = n("evil.example");
        assert_eq!(set.role(0, &dest(&evil, false, true)), Role::Substitute);
        assert_eq!(set.role(0, &dest(&evil, false, false)), Role::Inert);
    }

    #[test]
    fn violation_precedence() {
        let trace = n("trace.example");
        let evil = n("evil.example");
        let mut e = entry("K", "api.example.com");
        e.on_violation = Some(ViolationPolicy {
            action: None,
            passthrough_hosts: vec![trace.clone()],
            ..Default::default()
        });
        let mut set = SecretSet {
            entries: vec![e],
            on_violation: ViolationPolicy {
                action: Some(ViolationAction::BlockAndTerminate),
                ..Default::default()
            },
        };
        assert_eq!(set.role(0, &dest(&trace, true, true)), Role::Passthrough);
        // Passthrough needs the same pin as substitution.
        assert_eq!(
            set.role(0, &dest(&trace, false, true)),
            Role::Violation(ViolationAction::BlockAndTerminate)
        );
        // A per-secret passthrough that does not match falls back to the sandbox-wide action.
        assert_eq!(
            set.role(0, &dest(&evil, true, true)),
            Role::Violation(ViolationAction::BlockAndTerminate)
        );
        // An explicit per-secret base action wins over the sandbox-wide one.
        set.entries[0].on_violation.as_mut().unwrap().action = Some(ViolationAction::BlockAndLog);
        assert_eq!(
            set.role(0, &dest(&evil, true, true)),
            Role::Violation(ViolationAction::BlockAndLog)
        );
        // Sandbox-wide passthrough applies to secrets without their own base action.
        set.entries[0].on_violation = None;
        set.on_violation
            .passthrough_patterns
            .push(HostPattern::parse("*.evil.example").unwrap());
        assert_eq!(set.role(0, &dest(&evil, true, true)), Role::Passthrough);
        set.on_violation.passthrough_patterns.clear();
        set.on_violation.passthrough_all = true;
        assert_eq!(set.role(0, &dest(&evil, false, true)), Role::Passthrough);
    }

    #[test]
    fn passthrough_by_pinned_name_without_a_claim() {
        let trace = n("trace.example");
        let mut set = SecretSet {
            entries: vec![entry("K", "api.example.com")],
            ..Default::default()
        };
        set.on_violation.passthrough_hosts.push(trace.clone());
        let names = [trace];
        let d = Destination {
            host: None,
            host_pinned: false,
            pinned_names: &names,
            tls: false,
        };
        assert_eq!(set.role(0, &d), Role::Passthrough);
    }

    #[test]
    fn required_by_claim_or_pinned_name() {
        let mut e = entry("K", "api.example.com");
        e.require = true;
        let set = SecretSet {
            entries: vec![e, entry("L", "api.example.com")],
            ..Default::default()
        };
        let api = n("api.example.com");
        assert_eq!(set.required(&dest(&api, true, true)), vec![0]);
        // An unpinned claim is bound too (it is refused, not let through).
        assert_eq!(set.required(&dest(&api, false, true)), vec![0]);
        let other = n("other.example");
        assert!(set.required(&dest(&other, true, true)).is_empty());
        let names = [api.clone()];
        let d = Destination {
            host: None,
            host_pinned: false,
            pinned_names: &names,
            tls: false,
        };
        assert_eq!(set.required(&d), vec![0]);
    }

    #[test]
    fn rotation_keeps_the_old_value_for_scrubbing() {
        let set = SecretSet {
            entries: vec![entry("K", "api.example.com")],
            ..Default::default()
        };
        let next = set.rotated("K", SecretValue::new("new-value")).unwrap();
        assert_eq!(next.entries[0].value.expose(), b"new-value");
        assert_eq!(next.entries[0].placeholder, set.entries[0].placeholder);
        assert_eq!(next.entries[0].retired, vec![SecretValue::new("real-K")]);
        let third = next.rotated("K", SecretValue::new("third-value")).unwrap();
        let fourth = third
            .rotated("K", SecretValue::new("fourth-value"))
            .unwrap();
        assert_eq!(fourth.entries[0].retired.len(), MAX_RETIRED);
        let done = fourth.without_retired("K", &SecretValue::new("third-value"));
        assert_eq!(done.entries[0].retired, vec![SecretValue::new("new-value")]);
        assert_eq!(
            set.rotated("NOPE", SecretValue::new("x")).unwrap_err(),
            SecretError::UnknownSecret("NOPE".into())
        );
        assert!(matches!(
            set.rotated("K", SecretValue::new("a\nb")),
            Err(SecretError::BadValue(_))
        ));
        // A value the placeholder would reveal is refused like at creation.
        assert!(set.rotated("K", SecretValue::new("MSB")).is_err());
    }

    #[test]
    fn rejects_duplicates() {
        let mut set = SecretSet {
            entries: vec![entry("A", "a.example"), entry("B", "b.example")],
            ..Default::default()
        };
        assert!(set.validate().is_ok());
        set.entries[1].placeholder = set.entries[0].placeholder.clone();
        assert_eq!(
            set.validate(),
            Err(SecretError::DuplicatePlaceholder("A".into(), "B".into()))
        );
        set.entries[1] = entry("A", "b.example");
        assert_eq!(set.validate(), Err(SecretError::DuplicateEnv("A".into())));
    }
}
