//! Turning `--secret`, `--secret-file`, `--on-secret-violation`, `--secret-passthrough` and
//! the `[secrets]` / `[[secret]]` config into SDK calls. Values come from standin's own
//! environment or from files, never from argv or the config file.

use crate::cli::RunArgs;
use crate::config::{Config, SecretSection};
use anyhow::{Context, bail};
use standin::{NetworkBuilder, SecretBuilder, ViolationActionBuilder};
use std::collections::HashMap;
use std::path::PathBuf;

/// Where secret values come from when the settings are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Values {
    /// Read each value (its file or standin's environment).
    Read,
    /// Only the placeholders are wanted (`boundary env`): a value is read only when the
    /// placeholder is derived from it (token-shaped); the others get a stand-in that is
    /// never served.
    PlaceholdersOnly,
}

/// Apply every secret setting of `cfg` and `args` to `n`, with values from `values`.
pub(crate) fn apply_with(
    n: NetworkBuilder,
    cfg: &Config,
    args: &RunArgs,
    values: Values,
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
    let mut all: Vec<&mut SecretSection> = Vec::new();
    let mut file_sections: Vec<SecretSection> = cfg.secret.clone();
    all.extend(file_sections.iter_mut());
    all.extend(sections.iter_mut());
    for f in &args.secret_aws_key_id {
        let (name, id) = f
            .split_once('=')
            .with_context(|| format!("--secret-aws-key-id {f:?}: expected NAME=ACCESS_KEY_ID"))?;
        named(&mut all, name, "--secret-aws-key-id")?.aws_access_key_id = Some(id.to_owned());
    }
    for name in &args.secret_require {
        named(&mut all, name, "--secret-require")?.require = true;
    }
    for name in &args.secret_shaped {
        named(&mut all, name, "--secret-shaped")?.token_shaped_placeholder = true;
    }
    drop(all);
    let mut n = n;
    for s in file_sections.iter().chain(sections.iter()) {
        let value = if values == Values::PlaceholdersOnly && !s.token_shaped_placeholder {
            b"placeholder-only".to_vec()
        } else {
            read_value(s, files.get(&s.env))?
        };
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
        if !file_sections
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
    let any_secret = !(file_sections.is_empty() && sections.is_empty());
    if !any_secret && (action.is_some() || !passthrough.is_empty()) {
        bail!(
            "--on-secret-violation and --secret-passthrough (or [secrets] on_violation and passthrough) say what happens to secrets' placeholders, and no secret is given: add --secret NAME@HOST, or drop them"
        );
    }
    if any_secret && (args.no_network || cfg.network.enabled == Some(false)) {
        bail!(
            "secrets reach their hosts only through the network boundary, and the network is off (--no-network or [network] enabled = false): turn the network on, or drop the secrets"
        );
    }
    let respond = args
        .violation_response
        .as_deref()
        .or(cfg.secrets.respond.as_deref());
    let forbidden = match respond {
        None | Some("reset") => false,
        Some("forbidden") => true,
        Some(other) => {
            bail!("--violation-response {other:?}: expected reset (the default) or forbidden")
        }
    };
    let all = cfg.secrets.passthrough_all_hosts_dangerous;
    n = n.on_secret_violation(|v| {
        let v = match action {
            Some(a) => with_action(v, a),
            None => v,
        };
        let v = if forbidden { v.respond_forbidden() } else { v };
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

/// The secret named `name` among `all`, for a flag that modifies it.
fn named<'a>(
    all: &'a mut [&mut SecretSection],
    name: &str,
    flag: &str,
) -> anyhow::Result<&'a mut SecretSection> {
    match all.iter_mut().find(|s| s.env == name) {
        Some(s) => Ok(&mut **s),
        None => bail!(
            "{flag} {name}: no --secret {name}@HOST (or [[secret]] env = \"{name}\") goes with it"
        ),
    }
}

/// Where each secret's value comes from, for re-reading on SIGHUP: `(env, file)` for every
/// secret whose value is read from a file.
pub(crate) fn value_files(cfg: &Config, args: &RunArgs) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for f in &args.secret_file {
        if let Some((name, path)) = f.split_once('=') {
            out.push((name.to_owned(), PathBuf::from(path)));
        }
    }
    for s in &cfg.secret {
        if let Some(p) = &s.value_file
            && !out.iter().any(|(n, _)| n == &s.env)
        {
            out.push((s.env.clone(), p.clone()));
        }
    }
    out
}

/// The value files of a running sandbox's secrets and what each held when last read, for
/// rotation on SIGHUP.
pub(crate) struct ValueFiles {
    files: Vec<(String, PathBuf, zeroize::Zeroizing<Vec<u8>>)>,
}

impl ValueFiles {
    /// Remember what each file holds now.
    pub(crate) fn new(files: Vec<(String, PathBuf)>) -> ValueFiles {
        ValueFiles {
            files: files
                .into_iter()
                .map(|(env, path)| {
                    let v = read_value_file(&env, &path).unwrap_or_default();
                    (env, path, zeroize::Zeroizing::new(v))
                })
                .collect(),
        }
    }

    /// Read every file again; rotate the secrets whose file changed. Problems are reported
    /// on stderr and leave the secret's value as it was.
    pub(crate) async fn reload(&mut self, sandbox: &standin::Sandbox) {
        for (i, now) in self.changed("SIGHUP") {
            let env = self.files[i].0.clone();
            let result = sandbox
                .update_secret(&env, now.to_vec())
                .await
                .map_err(|e| e.to_string());
            self.settle("SIGHUP", i, now, result);
        }
    }

    /// The same, for a rotation that cannot fail asynchronously (a pod boundary's).
    pub(crate) fn reload_with(
        &mut self,
        why: &str,
        mut update: impl FnMut(&str, Vec<u8>) -> Result<(), String>,
    ) {
        for (i, now) in self.changed(why) {
            let result = update(&self.files[i].0, now.to_vec());
            self.settle(why, i, now, result);
        }
    }

    /// The files whose content differs from what was last applied: index and new value.
    fn changed(&self, why: &str) -> Vec<(usize, zeroize::Zeroizing<Vec<u8>>)> {
        let mut out = Vec::new();
        for (i, (env, path, last)) in self.files.iter().enumerate() {
            match read_value_file(env, path).map(zeroize::Zeroizing::new) {
                Ok(v) if *v != **last => out.push((i, v)),
                Ok(_) => {}
                Err(e) => eprintln!("standin: {why}: {e:#}; secret {env} keeps its value"),
            }
        }
        out
    }

    fn settle(
        &mut self,
        why: &str,
        i: usize,
        now: zeroize::Zeroizing<Vec<u8>>,
        result: Result<(), String>,
    ) {
        let (env, path, last) = &mut self.files[i];
        match result {
            Ok(()) => {
                eprintln!(
                    "standin: {why}: secret {env} rotated from {}",
                    path.display()
                );
                *last = now;
            }
            Err(e) => eprintln!("standin: {why}: secret {env} keeps its value: {e}"),
        }
    }
}

/// A value file's content, trailing newlines dropped.
pub(crate) fn read_value_file(env: &str, path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let mut v = std::fs::read(path)
        .with_context(|| format!("secret {env}: cannot read {}", path.display()))?;
    while v.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        v.pop();
    }
    Ok(v)
}

/// `NAME@HOST[,HOST...]`.
///
/// Errors never repeat the flag's text: it may hold a value written where it does not belong.
fn parse_flag(s: &str) -> anyhow::Result<SecretSection> {
    let before_at = s.split_once('@').map_or(s, |(n, _)| n);
    if let Some((name, _)) = before_at.split_once('=') {
        bail!(
            "--secret {name}=…: a value on the command line is visible to every user of this machine (ps) and kept in shell history, so standin does not take it (and does not repeat it); write --secret {name}@HOST and give the value in standin's environment ({name}=… standin run …) or in a file (--secret-file {name}=PATH)"
        );
    }
    let Some((name, hosts)) = s.split_once('@') else {
        bail!(
            "--secret: expected NAME@HOST[,HOST...], e.g. OPENAI_API_KEY@api.openai.com (the value comes from standin's environment variable NAME or --secret-file, never the command line)"
        );
    };
    if hosts.is_empty() {
        bail!("--secret {name}@: give at least one host after '@'");
    }
    Ok(SecretSection {
        env: name.to_owned(),
        allow_hosts: hosts.split(',').map(str::to_owned).collect(),
        ..Default::default()
    })
}

fn read_value(s: &SecretSection, flag_file: Option<&PathBuf>) -> anyhow::Result<Vec<u8>> {
    if s.value_file.is_some() && s.value_env.is_some() {
        bail!(
            "secret {}: value_env and value_file both say where the value comes from; keep one",
            s.env
        );
    }
    if let Some(path) = flag_file.or(s.value_file.as_ref()) {
        return read_value_file(&s.env, path);
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
    if let Some(id) = &s.aws_access_key_id {
        b = b.aws_sigv4(id);
        for r in &s.aws_regions {
            b = b.aws_region(r);
        }
        for v in &s.aws_services {
            b = b.aws_service(v);
        }
    } else if !s.aws_regions.is_empty() || !s.aws_services.is_empty() {
        bail!(
            "secret {}: aws_regions and aws_services need aws_access_key_id",
            s.env
        );
    }
    if s.require {
        b = b.require(true);
    }
    if s.token_shaped_placeholder {
        b = b.token_shaped_placeholder();
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
