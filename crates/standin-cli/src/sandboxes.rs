//! `standin ls`, `exec`, `logs`, `stop`, `rm`, `inspect` and `cp`: working with detached
//! sandboxes (and `cp` with any running one found by name). Each is a thin layer over the
//! SDK's calls (`Sandbox::get`, `list`, `remove`, `fs()`), which own the behaviour.

use crate::cli::{CpArgs, ExecArgs, LogsArgs, LsArgs, NameArg, RmArgs, SecretSetArgs, StopArgs};
use crate::images::{ago, unix_now};
use anyhow::{Context, bail};
use standin::{EnvSpec, Sandbox, SandboxInfo, SandboxState};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;

/// A name for a detached sandbox started without `--name`: `sb-` and 8 random hex digits.
pub(crate) fn generated_name() -> String {
    let mut bytes = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sb-{hex}")
}

fn limits_text(info: &SandboxInfo) -> String {
    let l = &info.limits;
    let mut parts = Vec::new();
    if let Some(m) = l.memory {
        parts.push(format!("mem {}", standin::Bytes(m)));
    }
    if let Some(c) = l.cpu_millis {
        parts.push(format!("cpus {}", standin::Cpus(c)));
    }
    if let Some(p) = l.pids {
        parts.push(format!("pids {p}"));
    }
    if let Some(d) = l.disk {
        parts.push(format!("disk {}", standin::Bytes(d)));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

pub(crate) fn ls(args: &LsArgs) -> anyhow::Result<i32> {
    let mut list = Sandbox::list()?;
    if args.prune {
        let rt = crate::new_runtime()?;
        for info in list.iter().filter(|i| i.state != SandboxState::Running) {
            rt.block_on(Sandbox::remove(&info.name, false))
                .with_context(|| format!("removing {}", info.name))?;
        }
        list.retain(|i| i.state == SandboxState::Running);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    println!(
        "{:<24} {:<12} {:<12} {:<32} {:>9}  LIMITS",
        "NAME", "ID", "STATE", "ROOT", "CREATED"
    );
    let now = unix_now();
    for i in &list {
        let state = match (i.state, i.exit_code) {
            (SandboxState::Exited, Some(c)) => format!("exited({c})"),
            (s, _) => s.as_str().to_owned(),
        };
        let created = if i.created == 0 {
            "-".to_owned()
        } else {
            ago(now.saturating_sub(i.created))
        };
        println!(
            "{:<24} {:<12} {:<12} {:<32} {:>9}  {}",
            i.name,
            i.id,
            state,
            i.root,
            created,
            limits_text(i)
        );
    }
    Ok(0)
}

pub(crate) async fn exec(args: ExecArgs) -> anyhow::Result<i32> {
    let sandbox = Sandbox::get(&args.name).await?;
    let mut env = Vec::new();
    for e in &args.env {
        match EnvSpec::parse(e).with_context(|| format!("--env {e}"))? {
            EnvSpec::Set { name, value } => env.push((name, value)),
            EnvSpec::Inherit { name } => {
                if let Ok(v) = std::env::var(&name) {
                    env.push((name, v));
                }
            }
        }
    }
    if args.tty {
        let exec = sandbox
            .exec_with_tty(args.command, env, crate::terminal::size())
            .await?;
        return crate::terminal::relay(exec).await;
    }
    let stdio = [
        std::io::stdin().as_fd().try_clone_to_owned()?,
        std::io::stdout().as_fd().try_clone_to_owned()?,
        std::io::stderr().as_fd().try_clone_to_owned()?,
    ];
    Ok(sandbox.exec_with_stdio(args.command, env, stdio).await?)
}

/// How often `logs -f` looks for new output.
const FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

pub(crate) fn logs(args: &LogsArgs) -> anyhow::Result<i32> {
    let info = SandboxInfo::find(&args.name)?;
    let mut out = std::io::stdout().lock();
    let mut previous = info.log.as_os_str().to_owned();
    previous.push(".1");
    if let Ok(mut f) = std::fs::File::open(&previous) {
        std::io::copy(&mut f, &mut out)?;
    }
    let mut f = match std::fs::File::open(&info.log) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).context(format!("reading {}", info.log.display())),
    };
    std::io::copy(&mut f, &mut out)?;
    out.flush()?;
    if !args.follow {
        return Ok(0);
    }
    loop {
        let running = SandboxInfo::find(&args.name)
            .map(|i| i.state == SandboxState::Running)
            .unwrap_or(false);
        let n = std::io::copy(&mut f, &mut out)?;
        if rotated(&f, &info.log) {
            // The rest of the old part, then the new one from its start.
            std::io::copy(&mut f, &mut out)?;
            f = std::fs::File::open(&info.log)?;
            continue;
        }
        out.flush()?;
        if n == 0 && !running {
            return Ok(0);
        }
        if n == 0 {
            std::thread::sleep(FOLLOW_INTERVAL);
        }
    }
}

/// Whether `path` is no longer the file `f` reads.
fn rotated(f: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() != b.ino(),
        _ => false,
    }
}

pub(crate) async fn stop(args: StopArgs) -> anyhow::Result<i32> {
    let mut code = 0;
    for name in &args.names {
        let result = async {
            let sb = Sandbox::get(name).await?;
            sb.stop_gracefully(std::time::Duration::from_secs(args.time))
                .await
        }
        .await;
        match result {
            Ok(_) => println!("{name}"),
            Err(e) => {
                eprintln!("standin: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub(crate) async fn rm(args: RmArgs) -> anyhow::Result<i32> {
    let mut code = 0;
    for name in &args.names {
        match Sandbox::remove(name, args.force).await {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("standin: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub(crate) async fn secret_set(args: SecretSetArgs) -> anyhow::Result<i32> {
    let mut value = zeroize::Zeroizing::new(Vec::new());
    std::io::stdin()
        .read_to_end(&mut value)
        .context("reading the new value from standard input")?;
    if value.last() == Some(&b'\n') {
        value.pop();
        if value.last() == Some(&b'\r') {
            value.pop();
        }
    }
    if value.is_empty() {
        bail!(
            "secret set {} {}: standard input was empty; pipe the new value in",
            args.name,
            args.env
        );
    }
    let sb = Sandbox::get(&args.name).await?;
    sb.update_secret(&args.env, value.to_vec()).await?;
    eprintln!(
        "standin: secret {} of sandbox {} rotated",
        args.env, args.name
    );
    Ok(0)
}

pub(crate) async fn inspect(args: NameArg) -> anyhow::Result<i32> {
    let info = SandboxInfo::find(&args.name)?;
    let mut json = serde_json::to_value(&info)?;
    if info.state == SandboxState::Running {
        let sb = Sandbox::get(&args.name).await?;
        if let Some(usage) = sb.limit_usage() {
            json["usage"] = serde_json::to_value(usage)?;
        }
    }
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(0)
}

/// `NAME:PATH` when `arg` names a sandbox path; a host path otherwise (anything starting
/// with `/` or `.`, or whose part before `:` is not a sandbox name).
fn sandbox_path(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    let (name, path) = arg.split_once(':')?;
    standin::detached::validate_name(name).ok()?;
    Some((name, path))
}

pub(crate) async fn cp(args: CpArgs) -> anyhow::Result<i32> {
    match (sandbox_path(&args.src), sandbox_path(&args.dest)) {
        (None, Some((name, path))) => {
            let sb = Sandbox::get(name).await?;
            sb.fs().copy_from_host(&args.src, path).await?;
        }
        (Some((name, path)), None) => {
            let sb = Sandbox::get(name).await?;
            sb.fs().copy_to_host(path, &args.dest).await?;
        }
        (Some(_), Some(_)) => {
            bail!(
                "cp: copy between two sandboxes through the host (cp A:PATH DIR, then cp DIR B:PATH)"
            )
        }
        (None, None) => bail!(
            "cp: name a sandbox on one side, as NAME:PATH (for example `standin cp ./data agent:/workspace`)"
        ),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_paths_are_told_from_host_paths() {
        assert_eq!(
            sandbox_path("agent:/workspace"),
            Some(("agent", "/workspace"))
        );
        assert_eq!(sandbox_path("./agent:/x"), None);
        assert_eq!(sandbox_path("/tmp/a:b"), None);
        assert_eq!(sandbox_path("file.txt"), None);
        assert_eq!(sandbox_path("bad name:/x"), None);
    }
}
