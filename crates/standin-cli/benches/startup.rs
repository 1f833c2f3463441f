//! Start-up latency: `standin run -- true` end to end, wall clock, as a user sees it.
//!
//! Run with `cargo bench -p standin-cli --bench startup` (as root, or as a user allowed to
//! create user namespaces). Prints a table; `STANDIN_BENCH_RUNS` sets the sample count.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let runs: usize = std::env::var("STANDIN_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let bin = env!("CARGO_BIN_EXE_standin");
    println!("standin start-up, {runs} runs each (after 5 warm-up runs)\n");
    println!(
        "{:<44} {:>8} {:>8} {:>8} {:>8}",
        "case", "min ms", "p50 ms", "p90 ms", "max ms"
    );
    let cases: &[(&str, &[&str])] = &[
        ("standin run -- true", &["run", "--", "true"]),
        (
            "standin run --no-network -- true",
            &["run", "--no-network", "--", "true"],
        ),
    ];
    for (name, args) in cases {
        let mut samples = Vec::with_capacity(runs);
        for i in 0..runs + 5 {
            let start = Instant::now();
            let status = Command::new(bin)
                .args(*args)
                .stdin(Stdio::null())
                .status()
                .expect("run standin");
            let took = start.elapsed();
            assert!(status.success(), "{name} failed: {status}");
            if i >= 5 {
                samples.push(took);
            }
        }
        samples.sort();
        let pick = |q: f64| ms(samples[((samples.len() - 1) as f64 * q).round() as usize]);
        println!(
            "{:<44} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            name,
            ms(samples[0]),
            pick(0.5),
            pick(0.9),
            ms(*samples.last().unwrap())
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
