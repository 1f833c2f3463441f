//! Replaying recorded calls onto the SDK's builders.

use crate::Language;
use serde_json::Value;
use standin::{NetworkBuilder, SandboxBuilder, SecretBuilder, ViolationActionBuilder};
use zeroize::Zeroize;

/// A parsed recipe whose strings (secret values among them) are zeroized when it is dropped;
/// the builders keep their own copies.
pub(crate) struct Scrubbed(pub(crate) Value);

impl Drop for Scrubbed {
    fn drop(&mut self) {
        fn scrub(v: &mut Value) {
            match v {
                Value::String(s) => s.zeroize(),
                Value::Array(items) => items.iter_mut().for_each(scrub),
                Value::Object(fields) => fields.values_mut().for_each(scrub),
                _ => {}
            }
        }
        scrub(&mut self.0);
    }
}

/// Problems found while replaying (type errors); the SDK adds its own at `create`/`build`.
/// Carries the language whose names the calls use.
pub(crate) struct Problems(Vec<String>, Language);

impl Problems {
    pub(crate) fn new(lang: Language) -> Problems {
        Problems(Vec::new(), lang)
    }

    pub(crate) fn finish(self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "invalid sandbox configuration: {}",
                self.0.join("; ")
            ))
        }
    }
}

/// One recorded call: its method name as the caller wrote it (for messages), the SDK name it
/// stands for, and its arguments.
struct Call<'a> {
    on: &'static str,
    method: &'a str,
    name: String,
    args: &'a [Value],
}

impl<'a> Call<'a> {
    fn parse(on: &'static str, v: &'a Value, lang: Language) -> Result<Call<'a>, String> {
        let list = v
            .as_array()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| format!("{on}: a recorded call must be [method, ...args]"))?;
        let method = list[0]
            .as_str()
            .ok_or_else(|| format!("{on}: a recorded call must start with its method name"))?;
        Ok(Call {
            on,
            method,
            name: lang.sdk_name(on, method),
            args: &list[1..],
        })
    }

    fn arity(&self, n: usize, problems: &mut Problems) -> bool {
        if self.args.len() == n {
            true
        } else {
            problems.0.push(format!(
                "{}.{}() takes {n} argument(s), got {}",
                self.on,
                self.method,
                self.args.len()
            ));
            false
        }
    }

    fn string(&self, i: usize, problems: &mut Problems) -> String {
        match self.args.get(i) {
            Some(Value::String(s)) => s.clone(),
            other => {
                problems.0.push(format!(
                    "{}.{}(): argument {} must be a string, got {}",
                    self.on,
                    self.method,
                    i + 1,
                    type_name(other)
                ));
                String::new()
            }
        }
    }

    fn boolean(&self, i: usize, problems: &mut Problems) -> bool {
        match self.args.get(i) {
            Some(Value::Bool(b)) => *b,
            other => {
                problems.0.push(format!(
                    "{}.{}(): argument {} must be a boolean, got {}",
                    self.on,
                    self.method,
                    i + 1,
                    type_name(other)
                ));
                false
            }
        }
    }

    fn calls(&self, i: usize, problems: &mut Problems) -> &'a [Value] {
        match self.args.get(i) {
            Some(Value::Array(calls)) => calls,
            other => {
                problems.0.push(format!(
                    "{}.{}(): argument {} must be a builder callback, got {}",
                    self.on,
                    self.method,
                    i + 1,
                    type_name(other)
                ));
                &[]
            }
        }
    }

    fn unknown(&self, problems: &mut Problems) {
        problems
            .0
            .push(format!("{}.{}() is not a method", self.on, self.method));
    }
}

fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "nothing",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "a string",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
    }
}

/// Where the sandbox's events go (the binding's callbacks, behind one function).
pub type EventListener = Box<dyn Fn(&standin::Event) + Send + Sync>;

/// The `SandboxBuilder` a recipe describes; `events` receives the events when the recipe
/// asks for them (`network(n => n.onEvent(…))`). Errors are the text to throw.
pub fn sandbox_builder(
    lang: Language,
    recipe: &str,
    events: Option<EventListener>,
) -> Result<SandboxBuilder, String> {
    let mut events = events;
    let recipe =
        Scrubbed(serde_json::from_str(recipe).map_err(|e| format!("sandbox recipe: {e}"))?);
    let recipe = &recipe.0;
    let name = recipe
        .get("name")
        .and_then(Value::as_str)
        .ok_or("Sandbox.builder(name): name must be a string")?;
    let mut b = standin::Sandbox::builder(name);
    if let Some(helper) = recipe.get("helper").and_then(Value::as_str) {
        b = b.helper(helper);
    }
    let mut problems = Problems::new(lang);
    let calls = recipe
        .get("calls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for v in calls {
        let call = Call::parse("SandboxBuilder", v, lang)?;
        b = sandbox_call(b, &call, &mut events, &mut problems);
    }
    problems.finish()?;
    Ok(b)
}

fn sandbox_call(
    b: SandboxBuilder,
    c: &Call<'_>,
    events: &mut Option<EventListener>,
    p: &mut Problems,
) -> SandboxBuilder {
    let one_string = |p: &mut Problems| c.arity(1, p).then(|| c.string(0, p));
    match c.name.as_str() {
        "image" => match one_string(p) {
            Some(s) => b.image(&s),
            None => b,
        },
        "workdir" => match one_string(p) {
            Some(s) => b.workdir(s),
            None => b,
        },
        "hostname" => match one_string(p) {
            Some(s) => b.hostname(&s),
            None => b,
        },
        "memory" => match one_string(p) {
            Some(s) => b.memory(&s),
            None => b,
        },
        "cpus" => match one_string(p) {
            Some(s) => b.cpus(&s),
            None => b,
        },
        "pids" => match one_string(p) {
            Some(s) => b.pids(&s),
            None => b,
        },
        "disk" => match one_string(p) {
            Some(s) => b.disk(&s),
            None => b,
        },
        "env" if c.arity(2, p) => {
            let (k, v) = (c.string(0, p), c.string(1, p));
            b.env(&k, &v)
        }
        "pull_policy" => match one_string(p).map(|s| s.parse::<standin::PullPolicy>()) {
            Some(Ok(policy)) => b.pull_policy(policy),
            Some(Err(e)) => {
                p.0.push(format!("pullPolicy(): {e}"));
                b
            }
            None => b,
        },
        "registry_ca" => match one_string(p) {
            Some(s) => b.registry_ca(s),
            None => b,
        },
        "insecure_registry" => match one_string(p) {
            Some(s) => b.insecure_registry(&s),
            None => b,
        },
        "mount" if c.arity(3, p) => {
            let (host, guest, read_only) = (c.string(0, p), c.string(1, p), c.boolean(2, p));
            let mode = if read_only { "ro" } else { "rw" };
            match standin::MountSpec::parse(&format!("{host}:{guest}:{mode}")) {
                Ok(m) => b.mount(m),
                Err(e) => {
                    p.0.push(format!("mount({host:?}, {guest:?}): {e}"));
                    b
                }
            }
        }
        "no_network" if c.arity(0, p) => b.no_network(),
        "detached" if c.arity(1, p) => b.detached(c.boolean(0, p)),
        "secret_env" if c.arity(3, p) => {
            let (env, value, host) = (c.string(0, p), c.string(1, p), c.string(2, p));
            b.secret_env(&env, &value, &host)
        }
        "secret" if c.arity(1, p) => {
            let calls = c.calls(0, p);
            b.secret(|s| secret_calls(s, calls, p))
        }
        "network" if c.arity(1, p) => {
            let calls = c.calls(0, p);
            b.network(|n| network_calls(n, calls, events, p))
        }
        "env" | "mount" | "no_network" | "detached" | "secret_env" | "secret" | "network" => b,
        _ => {
            c.unknown(p);
            b
        }
    }
}

fn network_calls(
    mut n: NetworkBuilder,
    calls: &[Value],
    events: &mut Option<EventListener>,
    p: &mut Problems,
) -> NetworkBuilder {
    for v in calls {
        let c = match Call::parse("NetworkBuilder", v, p.1) {
            Ok(c) => c,
            Err(e) => {
                p.0.push(e);
                continue;
            }
        };
        n = match c.name.as_str() {
            "secret" if c.arity(1, p) => {
                let calls = c.calls(0, p);
                n.secret(|s| secret_calls(s, calls, p))
            }
            "secret_env_with_placeholder" if c.arity(4, p) => {
                let (env, value) = (c.string(0, p), c.string(1, p));
                let (placeholder, host) = (c.string(2, p), c.string(3, p));
                n.secret_env_with_placeholder(&env, &value, &placeholder, &host)
            }
            "secret_env" if c.arity(3, p) => {
                let (env, value, host) = (c.string(0, p), c.string(1, p), c.string(2, p));
                n.secret_env(&env, &value, &host)
            }
            "on_secret_violation" if c.arity(1, p) => {
                let calls = c.calls(0, p);
                n.on_secret_violation(|v| violation_calls(v, calls, p))
            }
            "rule" if c.arity(1, p) => n.rule(&c.string(0, p)),
            "default_action" if c.arity(1, p) => match c.string(0, p).as_str() {
                "allow" => n.default_action(standin::Action::Allow),
                "deny" => n.default_action(standin::Action::Deny),
                other => {
                    p.0.push(format!(
                        "defaultAction({other:?}): the action is \"allow\" or \"deny\""
                    ));
                    n
                }
            },
            "dns_upstream" if c.arity(1, p) => n.dns_upstream(&c.string(0, p)),
            "upstream_ca" if c.arity(1, p) => n.upstream_ca(c.string(0, p)),
            "events_file" if c.arity(1, p) => n.events_file(c.string(0, p)),
            // The callbacks themselves stay in JavaScript; `events` carries them.
            "on_event" if c.arity(0, p) => match events.take() {
                Some(f) => n.on_event(f),
                None => n,
            },
            "secret"
            | "secret_env_with_placeholder"
            | "secret_env"
            | "on_secret_violation"
            | "rule"
            | "default_action"
            | "dns_upstream"
            | "upstream_ca"
            | "events_file"
            | "on_event" => n,
            _ => {
                c.unknown(p);
                n
            }
        };
    }
    n
}

pub(crate) fn secret_calls(
    mut s: SecretBuilder,
    calls: &[Value],
    p: &mut Problems,
) -> SecretBuilder {
    for v in calls {
        let c = match Call::parse("SecretBuilder", v, p.1) {
            Ok(c) => c,
            Err(e) => {
                p.0.push(e);
                continue;
            }
        };
        let string = |p: &mut Problems| c.arity(1, p).then(|| c.string(0, p));
        let flag = |p: &mut Problems| c.arity(1, p).then(|| c.boolean(0, p));
        s = match c.name.as_str() {
            "env" => match string(p) {
                Some(x) => s.env(&x),
                None => s,
            },
            "value" => match string(p) {
                Some(x) => s.value(x),
                None => s,
            },
            "placeholder" => match string(p) {
                Some(x) => s.placeholder(&x),
                None => s,
            },
            "allow_host" => match string(p) {
                Some(x) => s.allow_host(&x),
                None => s,
            },
            "allow_host_pattern" => match string(p) {
                Some(x) => s.allow_host_pattern(&x),
                None => s,
            },
            // The reference's `iUnderstand`: a no-op unless `true`.
            "allow_any_host_dangerous" => match flag(p) {
                Some(true) => s.dangerous().allow_any_host(),
                _ => s,
            },
            "require_tls_identity" => match flag(p) {
                Some(x) => s.require_tls_identity(x),
                None => s,
            },
            "inject_headers" => match flag(p) {
                Some(x) => s.inject_headers(x),
                None => s,
            },
            "inject_basic_auth" => match flag(p) {
                Some(x) => s.inject_basic_auth(x),
                None => s,
            },
            "inject_query" => match flag(p) {
                Some(x) => s.inject_query(x),
                None => s,
            },
            "inject_body" => match flag(p) {
                Some(x) => s.inject_body(x),
                None => s,
            },
            "aws_sigv4" => match string(p) {
                Some(x) => s.aws_sigv4(&x),
                None => s,
            },
            "aws_region" => match string(p) {
                Some(x) => s.aws_region(&x),
                None => s,
            },
            "aws_service" => match string(p) {
                Some(x) => s.aws_service(&x),
                None => s,
            },
            "require" => match flag(p) {
                Some(x) => s.require(x),
                None => s,
            },
            "token_shaped_placeholder" if c.arity(0, p) => s.token_shaped_placeholder(),
            "token_shaped_placeholder" => s,
            "on_violation" if c.arity(1, p) => {
                let calls = c.calls(0, p);
                s.on_violation(|v| violation_calls(v, calls, p))
            }
            "on_violation" => s,
            _ => {
                c.unknown(p);
                s
            }
        };
    }
    s
}

fn violation_calls(
    mut v: ViolationActionBuilder,
    calls: &[Value],
    p: &mut Problems,
) -> ViolationActionBuilder {
    for call in calls {
        let c = match Call::parse("ViolationActionBuilder", call, p.1) {
            Ok(c) => c,
            Err(e) => {
                p.0.push(e);
                continue;
            }
        };
        v = match c.name.as_str() {
            "block" if c.arity(0, p) => v.block(),
            "block_and_log" if c.arity(0, p) => v.block_and_log(),
            "block_and_terminate" if c.arity(0, p) => v.block_and_terminate(),
            "respond_forbidden" if c.arity(0, p) => v.respond_forbidden(),
            "passthrough_host" if c.arity(1, p) => v.passthrough_host(&c.string(0, p)),
            "passthrough_host_pattern" if c.arity(1, p) => {
                v.passthrough_host_pattern(&c.string(0, p))
            }
            "passthrough_all_hosts" if c.arity(1, p) => {
                if c.boolean(0, p) {
                    v.dangerous().passthrough_all_hosts()
                } else {
                    v
                }
            }
            "block"
            | "block_and_log"
            | "block_and_terminate"
            | "respond_forbidden"
            | "passthrough_host"
            | "passthrough_host_pattern"
            | "passthrough_all_hosts" => v,
            _ => {
                c.unknown(p);
                v
            }
        };
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js(recipe: &str) -> Result<SandboxBuilder, String> {
        sandbox_builder(Language::JavaScript, recipe, None)
    }

    #[test]
    fn type_mistakes_name_the_call_as_written() {
        let e = js(r#"{"name":"a","calls":[["secretEnv","K",7,"h.example"]]}"#).unwrap_err();
        assert_eq!(
            e,
            "invalid sandbox configuration: SandboxBuilder.secretEnv(): argument 2 must be a string, got a number"
        );
        let e = sandbox_builder(
            Language::Python,
            r#"{"name":"a","calls":[["secret",[["allow_host"]]]]}"#,
            None,
        )
        .unwrap_err();
        assert!(
            e.contains("SecretBuilder.allow_host() takes 1 argument(s), got 0"),
            "{e}"
        );
    }

    #[test]
    fn unknown_methods_and_malformed_recipes_are_refused() {
        let e = js(r#"{"name":"a","calls":[["allowHost","x"]]}"#).unwrap_err();
        assert!(
            e.contains("SandboxBuilder.allowHost() is not a method"),
            "{e}"
        );
        assert!(js(r#"{"name":"a","calls":[[]]}"#).is_err());
        assert!(js(r#"{"calls":[]}"#).is_err());
        assert!(js("not json").is_err());
    }

    #[test]
    fn the_dangerous_flags_are_no_ops_unless_true() {
        let entry = |flag: bool| {
            crate::secret_entry_json(
                Language::JavaScript,
                &format!(r#"[["env","K"],["value","v"],["allowAnyHostDangerous",{flag}]]"#),
            )
        };
        assert!(entry(false).unwrap_err().contains("allowed host"));
        assert!(entry(true).unwrap().contains(r#""allowAnyHost":true"#));
    }

    #[test]
    fn a_valid_recipe_replays_in_either_language() {
        let js_recipe = r#"{"name":"a","calls":[["network",[
            ["secretEnvSimple","K","v","api.example"],
            ["secretEnv","L","v","PH_L","api.example"],
            ["onSecretViolation",[["blockAndLog"]]]]]]}"#;
        assert!(js(js_recipe).is_ok());
        let python_recipe = r#"{"name":"a","calls":[["network",[
            ["secret_env","K","v","api.example"],
            ["secret_env_with_placeholder","L","v","PH_L","api.example"],
            ["on_secret_violation",[["block_and_log"]]]]]]}"#;
        assert!(sandbox_builder(Language::Python, python_recipe, None).is_ok());
        // The JavaScript four-argument spelling is not Python's three-argument one.
        let crossed =
            r#"{"name":"a","calls":[["network",[["secret_env","K","v","PH","h.example"]]]]}"#;
        assert!(sandbox_builder(Language::Python, crossed, None).is_err());
    }
}
