//! The objects handed back to the bindings as JSON: `SecretEntry` and events.

use crate::Language;
use crate::replay::{Problems, Scrubbed, secret_calls};
use serde_json::{Map, Value, json};
use standin::SecretBuilder;

/// `SecretBuilder.build()`: the entry a recorded list of `SecretBuilder` calls describes, as
/// JSON with the language's field names (the reference's `SecretEntry` for JavaScript), or
/// the SDK's validation error.
pub fn secret_entry_json(lang: Language, calls: &str) -> Result<String, String> {
    let calls = Scrubbed(serde_json::from_str(calls).map_err(|e| format!("secret recipe: {e}"))?);
    let Value::Array(calls) = &calls.0 else {
        return Err("SecretBuilder: the recorded calls must be a list".into());
    };
    let mut problems = Problems::new(lang);
    let builder = secret_calls(SecretBuilder::new(), calls, &mut problems);
    problems.finish()?;
    let e = builder.build().map_err(|e| e.to_string())?;
    fn strings<T: ToString>(v: &[T]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }
    let policy = |p: &standin::ViolationPolicy| {
        json!({
            "action": p.action.map(|a| a.as_str()),
            "passthrough_hosts": strings(&p.passthrough_hosts),
            "passthrough_host_patterns": strings(&p.passthrough_patterns),
            "passthrough_all_hosts": p.passthrough_all,
        })
    };
    let entry = json!({
        "env_var": e.env_var,
        "value": String::from_utf8_lossy(e.value.expose()),
        "placeholder": e.placeholder,
        "allowed_hosts": strings(&e.allowed_hosts),
        "allowed_host_patterns": strings(&e.allowed_host_patterns),
        "allow_any_host": e.allow_any_host,
        "require_tls_identity": e.require_tls_identity,
        "injection": {
            "headers": e.injection.headers,
            "basic_auth": e.injection.basic_auth,
            "query_params": e.injection.query_params,
            "body": e.injection.body,
        },
        "on_violation": e.on_violation.as_ref().map(policy),
    });
    Ok(rename_fields(entry, lang).to_string())
}

/// An event as a JSON object (every field name is one word, the same in every language;
/// enums as their strings; a missing field is `null`).
pub fn event_json(e: &standin::Event) -> Value {
    json!({
        "id": e.id,
        "timestamp": e.timestamp,
        "sandbox": e.sandbox,
        "kind": e.kind.as_str(),
        "name": e.name,
        "addr": e.addr,
        "protocol": e.protocol.as_str(),
        "rule": e.rule,
        "action": e.action.as_str(),
        "secret": e.secret,
        "sni": e.sni,
        "host": e.host,
        "location": e.location.map(|l| l.as_str()),
        "form": e.form.map(|f| f.as_str()),
        "detail": e.detail,
        // The main command's exit status (sandbox-exited) and the limit reached (limit-hit).
        "code": e.exit_code,
        "limit": e.limit.map(|l| l.as_str()),
    })
}

fn rename_fields(v: Value, lang: Language) -> Value {
    match v {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (lang.field(&k), rename_fields(v, lang)))
                .collect::<Map<String, Value>>(),
        ),
        other => other,
    }
}
