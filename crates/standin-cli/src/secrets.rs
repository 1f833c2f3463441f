//! Turning `--secret`, `--secret-file`, `--on-secret-violation`, `--secret-passthrough` and
//! the `[secrets]` / `[[secret]]` config into SDK calls. Values come from standin's own
//! environment or from files, never from argv or the config file.

use crate::cli::RunArgs;
use crate::config::{Config, SecretSection};
use anyhow::{Context, bail};
use standin::{NetworkBuilder, SecretBuilder, ViolationActionBuilder};
use std::collections::HashMap;
use std::path::PathBuf;

/// Apply every secret setting of `cfg` and `args` to `n`.
pub(crate) fn apply(
    n: NetworkBuilder,
    cfg: &Config,
    args: &RunArgs,
) -> anyhow::Result<NetworkBuilder> {
    let mut files: HashMap<String, PathBuf> = HashMap::new();
    for f in &args.secret_file {
        let (name, path) = f
            .split_once('=')
            .with_context(|| format!("--secret-file {f:?}: expected NAME=PATH"))?;
        files.insert(name.to_owned(), PathBuf::from(path));
    }
    let mut sections: Vec<SecretSection> = Vec::new();
    for s in &args.secret {
        sections.push(parse_flag(s)?);
    }
    let mut n = n;
    for s in cfg.secret.iter().chain(sections.iter()) {
        let value = read_value(s, files.get(&s.env))?;
        let mut b_err = None;
        n = n.secret(|b| match configure(b, s, value) {
            Ok(b) => b,
            Err(e) => {
                b_err = Some(e);
                SecretBuilder::new()
            }
        });
        if let Some(e) = b_err {
            return Err(e);
        }
    }
    for name in files.keys() {
        if !cfg
            .secret
            .iter()
            .chain(sections.iter())
            .any(|s| &s.env == name)
        {
            bail!("--secret-file {name}=…: no --secret {name}@HOST goes with it");
        }
    }
    let action = args
        .on_secret_violation
        .as_deref()
        .or(cfg.secrets.on_violation.as_deref());
    let passthrough: Vec<&String> = cfg
        .secrets
        .passthrough
        .iter()
        .chain(&args.secret_passthrough)
        .collect();
    if let Some(a) = action {
        check_action(a, "--on-secret-violation")?;
    }
    let all = cfg.secrets.passthrough_all_hosts_dangerous;
    n = n.on_secret_violation(|v| {
        let v = match action {
            Some(a) => with_action(v, a),
            None => v,
        };
        let v = passthroughs(v, &passthrough);
        if all {
            v.dangerous().passthrough_all_hosts()
        } else {
            v
        }
    });
    for ca in cfg.secrets.upstream_cas.iter().chain(&args.upstream_ca) {
        n = n.upstream_ca(ca);
    }
    Ok(n)
}

/// `NAME@HOST[,HOST...]`.
fn parse_flag(s: &str) -> anyhow::Result<SecretSection> {
    let Some((name, hosts)) = s.split_once('@') else {
        bail!("--secret {s:?}: expected NAME@HOST[,HOST...], e.g. OPENAI_API_KEY@api.openai.com");
    };
    if hosts.is_empty() {
        bail!("--secret {s:?}: give at least one host after '@'");
    }
    Ok(SecretSection {
        env: name.to_owned(),
        allow_hosts: hosts.split(',').map(str::to_owned).collect(),
        ..Default::default()
    })
}

fn read_value(s: &SecretSection, flag_file: Option<&PathBuf>) -> anyhow::Result<Vec<u8>> {
    if let Some(path) = flag_file.or(s.value_file.as_ref()) {
        let mut v = std::fs::read(path)
            .with_context(|| format!("secret {}: cannot read {}", s.env, path.display()))?;
        while v.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            v.pop();
        }
        return Ok(v);
    }
    let var = s.value_env.as_deref().unwrap_or(&s.env);
    match std::env::var_os(var) {
        Some(v) => Ok(std::os::unix::ffi::OsStringExt::into_vec(v)),
        None => bail!(
            "secret {}: standin's environment has no variable {var}; export it, or give the value with --secret-file {}=PATH",
            s.env,
            s.env
        ),
    }
}

fn configure(b: SecretBuilder, s: &SecretSection, value: Vec<u8>) -> anyhow::Result<SecretBuilder> {
    let mut b = b.env(&s.env).value(value);
    if let Some(p) = &s.placeholder {
        b = b.placeholder(p);
    }
    for h in &s.allow_hosts {
        if h == "*" {
            bail!(
                "secret {}: '*' would send the real value to any host; use allow_any_host_dangerous = true in the config if you mean it",
                s.env
            );
        }
        b = if h.starts_with("*.") {
            b.allow_host_pattern(h)
        } else {
            b.allow_host(h)
        };
    }
    if s.allow_any_host_dangerous {
        b = b.dangerous().allow_any_host();
    }
    if let Some(t) = s.require_tls_identity {
        b = b.require_tls_identity(t);
    }
    if let Some(i) = s.inject {
        b = b
            .inject_headers(i.headers)
            .inject_basic_auth(i.basic_auth)
            .inject_query(i.query_params)
            .inject_body(i.body);
    }
    if s.on_violation.is_some() || !s.passthrough.is_empty() || s.passthrough_all_hosts_dangerous {
        if let Some(a) = &s.on_violation {
            check_action(a, &format!("secret {} on_violation", s.env))?;
        }
        let pass: Vec<&String> = s.passthrough.iter().collect();
        let action = s.on_violation.clone();
        let all = s.passthrough_all_hosts_dangerous;
        b = b.on_violation(|v| {
            let v = match &action {
                Some(a) => with_action(v, a),
                None => v,
            };
            let v = passthroughs(v, &pass);
            if all {
                v.dangerous().passthrough_all_hosts()
            } else {
                v
            }
        });
    }
    Ok(b)
}

fn check_action(a: &str, what: &str) -> anyhow::Result<()> {
    if standin::ViolationAction::parse_block(a).is_none() {
        bail!("{what} {a:?}: expected block, block-and-log or block-and-terminate");
    }
    Ok(())
}

fn with_action(v: ViolationActionBuilder, a: &str) -> ViolationActionBuilder {
    match a {
        "block-and-log" => v.block_and_log(),
        "block-and-terminate" => v.block_and_terminate(),
        _ => v.block(),
    }
}

fn passthroughs(mut v: ViolationActionBuilder, hosts: &[&String]) -> ViolationActionBuilder {
    for h in hosts {
        v = if h.starts_with("*.") {
            v.passthrough_host_pattern(h)
        } else {
            v.passthrough_host(h)
        };
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_secret_flags() {
        let s = parse_flag("OPENAI_API_KEY@api.openai.com,*.openai.com").unwrap();
        assert_eq!(s.env, "OPENAI_API_KEY");
        assert_eq!(s.allow_hosts, ["api.openai.com", "*.openai.com"]);
        assert!(parse_flag("OPENAI_API_KEY").is_err());
        assert!(parse_flag("K@").is_err());
        assert!(check_action("passthrough", "x").is_err());
        assert!(check_action("block-and-terminate", "x").is_ok());
    }
}
