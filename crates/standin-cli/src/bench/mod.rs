//! `standin bench`: what the boundary costs, measured on this machine, in one run.
//!
//! The same workloads run directly against an HTTPS upstream in the demo's fake internet
//! (private network namespaces, no internet) and through a sandbox with a secret substituted
//! in every request. The load generator (`standin __bench-client`) is a separate process in
//! both cases: on the host side for "direct", inside the sandbox for "standin". The upstream
//! checks that every request through the boundary arrived with the real value.

pub(crate) mod client;
mod images;
mod mitmproxy;
mod nginx;
mod upstream;

use crate::demo::internet::{DNS, Internet};
use anyhow::{Context, bail};
use standin::{MountSpec, Sandbox};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

const VALUE: &str = "sk-bench-0123456789abcdef";

/// A group of measurements `standin bench --only` can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Workload {
    /// Tiny requests on keep-alive connections, c=1 and c=32.
    Keepalive,
    /// A new TLS connection per request.
    Newconn,
    /// The first connection to a new host name (leaf generation).
    Newhost,
    /// 64 MiB down and up.
    Bulk,
    /// DNS queries through the forwarder.
    Dns,
    /// Sandbox create-to-exec.
    Startup,
    /// Memory with many idle connections.
    Idle,
    /// Image pull (against skopeo) and image start-up, from a local registry.
    Images,
}

/// What one `standin bench` run measures.
struct Plan {
    only: Vec<Workload>,
    idle: u32,
    secs: String,
}

impl Plan {
    fn wants(&self, w: Workload) -> bool {
        self.only.is_empty() || self.only.contains(&w)
    }
}

/// Run the benchmarks; returns the process exit code.
pub(crate) fn run(args: &crate::cli::BenchArgs) -> i32 {
    if !(args.secs > 0.0 && args.secs <= 600.0) {
        eprintln!(
            "standin bench: --secs {} is out of range; give a duration between 0 and 600 seconds",
            args.secs
        );
        return 2;
    }
    let plan = Plan {
        only: args.only.clone(),
        idle: args.idle,
        secs: args.secs.to_string(),
    };
    // Idle connections need descriptors (three each here: the boundary's two and the
    // upstream server's end). As root the hard limit can go up too; otherwise the soft one
    // goes to the hard one.
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let want = 4 * u64::from(args.idle) + 4_096;
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && hard < want
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, want, want);
    }
    if let Err(e) = standin::raise_descriptor_limit() {
        eprintln!("standin bench: cannot raise the descriptor limit: {e}");
    }
    if plan.wants(Workload::Images) {
        match images::run() {
            Ok(_) => println!(),
            Err(e) => {
                eprintln!("standin bench: images: {e:#}");
                return 125;
            }
        }
        if plan.only == [Workload::Images] {
            return 0;
        }
    }
    let internet = match Internet::build() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("standin bench: {e:#}");
            return 125;
        }
    };
    let runtime = match crate::new_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("standin bench: {e}");
            return 125;
        }
    };
    match runtime.block_on(bench(internet, plan)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("standin bench: {e:#}");
            125
        }
    }
}

/// CPU time (user + system) of this process, in seconds.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime), counted from the state field (3) here.
    (ticks(11) + ticks(12)) / 100.0
}

/// A `/proc/self/status` field in KiB.
fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn field(json: &str, key: &str) -> f64 {
    let pat = format!("\"{key}\":");
    json.find(&pat)
        .map(|i| &json[i + pat.len()..])
        .and_then(|r| r.split([',', '}']).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

struct Runner {
    exe: std::path::PathBuf,
    ca: std::path::PathBuf,
    sandbox: Sandbox,
    nginx: Option<nginx::Nginx>,
    mitm: Option<mitmproxy::Mitmproxy>,
}

impl Runner {
    async fn direct(&self, args: &[&str]) -> anyhow::Result<(String, f64)> {
        let cpu = cpu_secs();
        let mut cmd = std::process::Command::new(&self.exe);
        cmd.arg("__bench-client")
            .args(args)
            .args([
                "--ca",
                self.ca.to_str().unwrap_or_default(),
                "--auth-env",
                "BENCH_KEY",
            ])
            .args(["--addr", "45.90.1.10"])
            .env("BENCH_KEY", VALUE);
        let out = tokio::task::spawn_blocking(move || cmd.output()).await??;
        if !out.status.success() {
            bail!("direct {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok((
            String::from_utf8_lossy(&out.stdout).into_owned(),
            cpu_secs() - cpu,
        ))
    }

    /// Through nginx (which adds the credential itself), if it runs.
    async fn nginx(&self, args: &[&str]) -> anyhow::Result<Option<String>> {
        match &self.nginx {
            Some(n) => self.proxied(args, n.client_args(), "nginx").await.map(Some),
            None => Ok(None),
        }
    }

    /// Through mitmproxy (which adds the credential itself), if it runs.
    async fn mitm(&self, args: &[&str]) -> anyhow::Result<Option<String>> {
        match &self.mitm {
            Some(m) => self
                .proxied(args, m.client_args(), "mitmproxy")
                .await
                .map(Some),
            None => Ok(None),
        }
    }

    async fn proxied(&self, args: &[&str], via: Vec<String>, name: &str) -> anyhow::Result<String> {
        let mut cmd = std::process::Command::new(&self.exe);
        cmd.arg("__bench-client").args(args).args(via);
        let out = tokio::task::spawn_blocking(move || cmd.output()).await??;
        if !out.status.success() {
            bail!(
                "via {name} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The same workload through nginx and mitmproxy (those that run): one row each with
    /// its `key` figure and the ratio to `direct`'s.
    async fn peer_rows(&self, args: &[&str], direct: &str, key: &str) -> anyhow::Result<()> {
        let d = field(direct, key);
        let peers = [
            (
                "  via nginx (re-encrypting reverse proxy)",
                self.nginx(args).await?,
            ),
            ("  via mitmproxy (reverse proxy)", self.mitm(args).await?),
        ];
        for (name, out) in peers {
            if let Some(out) = out {
                let v = field(&out, key);
                println!("{name:<46} {:>12} {v:>9.1}    {:>6.2}x", "", v / d);
            }
        }
        Ok(())
    }

    async fn boundary(&self, args: &[&str]) -> anyhow::Result<(String, f64)> {
        let cpu = cpu_secs();
        let mut argv = vec!["__bench-client"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--auth-env", "BENCH_KEY"]);
        let out = self.sandbox.exec("/opt/standin/standin", argv).await?;
        if out.code != 0 {
            bail!(
                "through the boundary {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok((out.stdout_str(), cpu_secs() - cpu))
    }
}

async fn bench(mut internet: Internet, plan: Plan) -> anyhow::Result<()> {
    let listener = internet.serve_dns_only()?;
    let counters = Arc::new(upstream::Counters::default());
    tokio::spawn(upstream::serve(
        listener,
        internet.ca(),
        VALUE.to_owned(),
        counters.clone(),
    ));
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable directory")?.to_path_buf();
    let ca = internet.ca_file.path().to_path_buf();
    let started = Instant::now();
    // Sandbox start-up first, on a quiet machine; then a pause, so the kernel's deferred
    // teardown of those namespaces does not land in the next measurement.
    let mut create_ms = Vec::new();
    if plan.wants(Workload::Startup) {
        for _ in 0..20 {
            let t = Instant::now();
            let sb = Sandbox::builder("bench-start")
                .no_network()
                .create()
                .await?;
            let out = sb.exec("true", Vec::<String>::new()).await?;
            create_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            if out.code != 0 {
                bail!("`true` failed in a sandbox");
            }
        }
        create_ms.sort_by(f64::total_cmp);
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    let sandbox = Sandbox::builder("bench")
        .secret(|s| {
            s.env("BENCH_KEY")
                .value(VALUE)
                .allow_host("api.openai.com")
                .allow_host_pattern("*.bench.example")
        })
        .mount(MountSpec::parse(&format!(
            "{}:/opt/standin:ro",
            dir.display()
        ))?)
        .network(|n| {
            n.dns_upstream(&DNS.to_string())
                .upstream_ca(&ca)
                .max_connections(plan.idle as usize + 1_024)
        })
        .create()
        .await
        .context("creating the benchmark sandbox")?;
    let nginx = match nginx::Nginx::start("45.90.1.10:443", &ca, VALUE) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("standin bench: nginx is installed but did not start ({e:#}); skipping it");
            None
        }
    };
    let mitm = match mitmproxy::Mitmproxy::start("45.90.1.10", &ca, VALUE) {
        Ok(m) => m,
        Err(e) => {
            eprintln!(
                "standin bench: mitmproxy is installed but did not start ({e:#}); skipping it"
            );
            None
        }
    };
    let r = Runner {
        exe,
        ca,
        sandbox,
        nginx,
        mitm,
    };
    println!("standin bench: direct vs through the boundary (secret substituted in every request)");
    println!(
        "(HTTPS upstream in private network namespaces; {}-second runs; this machine: {} cpus)\n",
        plan.secs,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<46} {:>12} {:>12} {:>7}  target",
        "workload", "direct", "standin", "ratio"
    );
    let row = |name: &str, d: f64, b: f64, unit: &str, higher_better: bool, target: &str| {
        let ratio = if higher_better { b / d } else { d / b };
        println!(
            "{name:<46} {:>9.1} {unit:<2} {:>9.1} {unit:<2} {ratio:>6.2}x  {target}",
            d, b
        );
    };

    let before = counters.requests.load(Ordering::Relaxed);
    let before_ok = counters.authorized.load(Ordering::Relaxed);
    let mut boundary_requests = 0.0;
    let secs = plan.secs.as_str();
    for (conc, target) in [("1", "≥ 0.6x"), ("32", "≥ 0.5x")] {
        if !plan.wants(Workload::Keepalive) {
            break;
        }
        let args = ["keepalive", "--conc", conc, "--secs", secs];
        let (d, dcpu) = r.direct(&args).await?;
        let (b, bcpu) = r.boundary(&args).await?;
        boundary_requests += field(&b, "requests");
        row(
            &format!("keep-alive tiny requests, c={conc} (req/s)"),
            field(&d, "rps"),
            field(&b, "rps"),
            "",
            true,
            target,
        );
        r.peer_rows(&args, &d, "rps").await?;
        row(
            &format!("  p50 latency, c={conc} (µs)"),
            field(&d, "p50_us"),
            field(&b, "p50_us"),
            "",
            false,
            "",
        );
        row(
            &format!("  p99 latency, c={conc} (µs)"),
            field(&d, "p99_us"),
            field(&b, "p99_us"),
            "",
            false,
            if conc == "1" { "added < 300 µs" } else { "" },
        );
        // Host-side CPU: the upstream runs in this process in both runs; the difference per
        // request is the boundary's.
        let per_req = (bcpu / field(&b, "requests") - dcpu / field(&d, "requests")) * 1e6;
        println!(
            "{:<46} {:>25.1} µs          < 50 µs",
            format!("  boundary CPU per request, c={conc}"),
            per_req
        );
    }
    if plan.wants(Workload::Newconn) {
        let args = ["newconn", "--conc", "4", "--secs", secs];
        let (d, _) = r.direct(&args).await?;
        let (b, _) = r.boundary(&args).await?;
        boundary_requests += field(&b, "requests");
        row(
            "new TLS connections, c=4 (conn/s)",
            field(&d, "rps"),
            field(&b, "rps"),
            "",
            true,
            "≥ 0.8x",
        );
        println!(
            "{:<46} {:>11.0}% {:>11.0}%",
            "  TLS sessions resumed",
            100.0 * field(&d, "resumed") / field(&d, "requests"),
            100.0 * field(&b, "resumed") / field(&b, "requests"),
        );
        r.peer_rows(&args, &d, "rps").await?;
    }
    if plan.wants(Workload::Newhost) {
        let args = ["newhost", "--count", "100"];
        let (d, _) = r.direct(&args).await?;
        let (b, _) = r.boundary(&args).await?;
        boundary_requests += field(&b, "connections");
        row(
            "first connection to a new host, p50 (µs)",
            field(&d, "p50_us"),
            field(&b, "p50_us"),
            "",
            false,
            "",
        );
    }
    if plan.wants(Workload::Bulk) {
        for mode in ["download", "upload"] {
            let args = [mode, "--bytes", "67108864"];
            let (d, _) = r.direct(&args).await?;
            let (b, _) = r.boundary(&args).await?;
            boundary_requests += 1.0;
            row(
                &format!("bulk {mode}, 64 MiB (MB/s)"),
                field(&d, "mb_per_s"),
                field(&b, "mb_per_s"),
                "",
                true,
                "≥ 0.5x",
            );
            r.peer_rows(&args, &d, "mb_per_s").await?;
        }
    }
    if plan.wants(Workload::Dns) {
        let dns_server = DNS.to_string();
        let (d, _) = r
            .direct(&["dns", "--count", "500", "--server", &dns_server])
            .await?;
        let (b, _) = r.boundary(&["dns", "--count", "500"]).await?;
        row(
            "DNS query p50 (µs)",
            field(&d, "p50_us"),
            field(&b, "p50_us"),
            "",
            false,
            "",
        );
    }
    if plan.wants(Workload::Startup) {
        println!(
            "{:<46} {:>25.2} ms          < 15 ms",
            "sandbox create-to-exec p50 (no network)",
            create_ms[create_ms.len() / 2]
        );
    }
    if plan.wants(Workload::Idle) {
        // Memory: idle connections through the boundary (each after one request). While busy
        // each costs this process 3 descriptors (sandbox side, upstream side, the upstream
        // server's end), once idle one (the upstream goes back to the pool), so the
        // descriptor limit may cap how many are held.
        let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_or(1024, |(soft, _)| soft);
        let idle: u32 =
            u32::try_from(limit.saturating_sub(4_000).min(u64::from(plan.idle))).unwrap_or(1_000);
        let rss_before = status_kib("VmRSS");
        let mut child = r.sandbox.spawn(
            [
                "/opt/standin/standin",
                "__bench-client",
                "idle",
                "--count",
                &idle.to_string(),
                "--secs",
                "6",
                "--auth-env",
                "BENCH_KEY",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            &[],
            standin::StdioSpec::default().stdout(std::process::Stdio::piped()),
        )?;
        let stdout = child.stdout.take().context("client stdout")?;
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
            line
        })
        .await?;
        // Idle client connections give their upstream connections back after a while.
        let settle = standin_boundary::RELEASE_AFTER_BUSY * 3;
        let rss_fresh = status_kib("VmRSS");
        tokio::time::sleep(settle).await;
        let rss_held = status_kib("VmRSS");
        let fds_held = std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count);
        let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        if line.starts_with("connected") {
            boundary_requests += f64::from(idle);
            println!(
                "{:<46} {:>25.1} KiB        (RSS {} → {} MiB, {} MiB just after connecting)",
                format!("memory per idle connection ({idle} held)"),
                (rss_held.saturating_sub(rss_before)) as f64 / f64::from(idle),
                rss_before / 1024,
                rss_held / 1024,
                rss_fresh / 1024
            );
            println!(
                "{:<46} {:>25.2}",
                "  descriptors per idle connection",
                fds_held as f64 / f64::from(idle)
            );
        } else {
            println!("idle connections: the client could not hold {idle} connections ({line:?})");
        }
    }
    println!(
        "{:<46} {:>25} MiB",
        "peak RSS of the host side (boundary + upstream)",
        status_kib("VmHWM") / 1024
    );
    let served = counters.requests.load(Ordering::Relaxed) - before;
    let authorized = counters.authorized.load(Ordering::Relaxed) - before_ok;
    println!(
        "\nupstream: {served} requests, {authorized} with the real value (direct runs send it themselves; {boundary_requests:.0} went through the boundary)"
    );
    println!(
        "nginx: {}; mitmproxy: {} (\"via\" rows: the ratio is to direct)",
        if r.nginx.is_some() {
            "measured"
        } else {
            "not installed, not measured"
        },
        if r.mitm.is_some() {
            "measured"
        } else {
            "not installed, not measured"
        }
    );
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    if authorized != served {
        bail!(
            "{} requests arrived without the real value",
            served - authorized
        );
    }
    Ok(())
}
