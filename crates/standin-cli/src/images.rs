//! `standin pull`, `standin images`, `standin rmi`, `standin image prune`.

use crate::cli::{PullArgs, RegistryArgs, RmiArgs};
use crate::progress::TerminalProgress;
use standin::{ImageRef, Puller, RegistryOptions};
use std::io::IsTerminal;
use std::sync::Arc;

/// Registry options from the flags (and the config file's lists, given first).
pub(crate) fn registry_options(
    args: &RegistryArgs,
    cfg_cas: &[std::path::PathBuf],
    cfg_insecure: &[String],
) -> RegistryOptions {
    RegistryOptions {
        extra_cas: cfg_cas.iter().chain(&args.registry_ca).cloned().collect(),
        insecure: cfg_insecure
            .iter()
            .chain(&args.insecure_registry)
            .cloned()
            .collect(),
    }
}

/// Progress on a terminal; nothing otherwise.
pub(crate) fn progress() -> Option<Arc<TerminalProgress>> {
    std::io::stderr()
        .is_terminal()
        .then(|| Arc::new(TerminalProgress::default()))
}

pub(crate) async fn pull(args: &PullArgs) -> anyhow::Result<i32> {
    let reference = ImageRef::parse(&args.image)?;
    let store = tokio::task::spawn_blocking(standin::image_store).await??;
    let mut puller = Puller::new(store, registry_options(&args.registry, &[], &[]));
    let progress = progress();
    if let Some(p) = &progress {
        puller = puller.with_progress(p.clone());
    }
    let record = puller.pull(&reference).await;
    if let Some(p) = &progress {
        p.finish();
    }
    let record = record?;
    println!("{} {}", record.reference, record.manifest_digest);
    Ok(0)
}

pub(crate) fn list() -> anyhow::Result<i32> {
    let store = standin::image_store()?;
    let records = store.records()?;
    println!(
        "{:<50} {:<19} {:>10} {:>12}",
        "REFERENCE", "DIGEST", "SIZE", "LAST USED"
    );
    let now = unix_now();
    for r in records {
        let short = r
            .manifest_digest
            .strip_prefix("sha256:")
            .map(|h| &h[..h.len().min(12)])
            .unwrap_or(&r.manifest_digest);
        println!(
            "{:<50} sha256:{:<12} {:>10} {:>12}",
            r.reference,
            short,
            human_bytes(r.size()),
            ago(now.saturating_sub(r.last_used))
        );
    }
    Ok(0)
}

pub(crate) fn rmi(args: &RmiArgs) -> anyhow::Result<i32> {
    let store = standin::image_store()?;
    let mut code = 0;
    for name in &args.images {
        let reference = match ImageRef::parse(name) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("standin: {e}");
                code = 1;
                continue;
            }
        };
        match store.remove_image(&reference.to_string()) {
            Ok(layers) => println!(
                "removed {reference} ({} layer{} freed)",
                layers.len(),
                if layers.len() == 1 { "" } else { "s" }
            ),
            Err(e) => {
                eprintln!("standin: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub(crate) fn prune() -> anyhow::Result<i32> {
    let store = standin::image_store()?;
    let removed = store.prune()?;
    for l in &removed {
        println!("removed layer {l}");
    }
    println!(
        "{} unused layer{} removed",
        removed.len(),
        if removed.len() == 1 { "" } else { "s" }
    );
    Ok(0)
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `1.5 MB`-style sizes (powers of 1000, as docker prints them).
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub(crate) fn ago(secs: u64) -> String {
    match secs {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86400 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86400),
    }
}
