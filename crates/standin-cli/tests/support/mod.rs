//! Shared fixtures for standin's end-to-end tests.
//!
//! - [`standin`]: run the real `standin` binary;
//! - [`FakeInternet`]: two network namespaces created for one test: `client`, where standin
//!   runs and whose only route leads to `inet`, which holds public-looking addresses served
//!   by a real upstream (`upstream.py`). Nothing is routed anywhere else. Dropping the fixture
//!   kills the upstream and deletes both namespaces, also when the test panics.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Path of the standin binary under test.
pub fn standin_bin() -> &'static str {
    env!("CARGO_BIN_EXE_standin")
}

/// `standin run [args] -- sh -c script`, collecting output.
pub fn run_sh(args: &[&str], script: &str) -> Output {
    let mut cmd = Command::new(standin_bin());
    cmd.arg("run").args(args).args(["--", "sh", "-c", script]);
    cmd.output().expect("run standin")
}

/// stdout as a string.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as a string.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether the tests run as root (CI does); some checks only mean something there.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique short name for per-test resources (digits after the prefix, so it also works as
/// a number, e.g. a `sleep` duration that marks a process).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}0{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Public-looking IPv4 address of the fake upstream.
pub const UPSTREAM_V4: &str = "45.90.1.10";
/// Public-looking IPv6 address of the fake upstream.
pub const UPSTREAM_V6: &str = "2a0b:4d07::10";

/// The fake internet of one test.
pub struct FakeInternet {
    pub client: String,
    pub inet: String,
    upstream: Option<Child>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn in_ns(ns: &str, args: &[&str]) {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    ip(&full);
}

impl FakeInternet {
    /// Build the namespaces and start the upstream on `tcp_ports` (and count UDP on
    /// `udp_ports`).
    pub fn new(tcp_ports: &[u16], udp_ports: &[u16]) -> FakeInternet {
        let base = unique("sti");
        let fx = FakeInternet {
            client: format!("{base}c"),
            inet: format!("{base}i"),
            upstream: None,
        };
        ip(&["netns", "add", &fx.client]);
        ip(&["netns", "add", &fx.inet]);
        let (c, i) = (fx.client.as_str(), fx.inet.as_str());
        in_ns(
            c,
            &[
                "link", "add", "c0", "type", "veth", "peer", "name", "i0", "netns", i,
            ],
        );
        for (ns, dev) in [(c, "c0"), (i, "i0")] {
            in_ns(ns, &["link", "set", "lo", "up"]);
            in_ns(ns, &["link", "set", dev, "up"]);
        }
        in_ns(c, &["addr", "add", "192.0.2.2/24", "dev", "c0"]);
        in_ns(c, &["addr", "add", "fd99::2/64", "dev", "c0", "nodad"]);
        in_ns(i, &["addr", "add", "192.0.2.1/24", "dev", "i0"]);
        in_ns(i, &["addr", "add", "fd99::1/64", "dev", "i0", "nodad"]);
        in_ns(c, &["route", "add", "default", "via", "192.0.2.1"]);
        in_ns(c, &["route", "add", "::/0", "via", "fd99::1"]);
        in_ns(
            i,
            &["addr", "add", &format!("{UPSTREAM_V4}/32"), "dev", "lo"],
        );
        in_ns(
            i,
            &[
                "addr",
                "add",
                &format!("{UPSTREAM_V6}/128"),
                "dev",
                "lo",
                "nodad",
            ],
        );
        fx.start_upstream(tcp_ports, udp_ports)
    }

    fn start_upstream(mut self, tcp_ports: &[u16], udp_ports: &[u16]) -> FakeInternet {
        let join = |p: &[u16]| p.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/upstream.py");
        let mut args = vec![
            "netns".to_owned(),
            "exec".to_owned(),
            self.inet.clone(),
            "python3".to_owned(),
            script.to_owned(),
            join(tcp_ports),
        ];
        if !udp_ports.is_empty() {
            args.push(join(udp_ports));
        }
        let mut child = Command::new("ip")
            .args(&args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start upstream");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read upstream readiness");
        self.upstream = Some(child);
        assert_eq!(line.trim(), "ready", "upstream did not start");
        self
    }

    /// `standin run [args] -- sh -c script`, inside the client namespace.
    pub fn run_sh(&self, args: &[&str], script: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.client, standin_bin(), "run"])
            .args(args)
            .args(["--", "sh", "-c", script])
            .output()
            .expect("run standin in the client namespace")
    }

    /// Run a command directly in the inet namespace (for checks from the upstream's side).
    pub fn in_inet(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.inet])
            .args(argv)
            .output()
            .expect("run in inet namespace")
    }
}

impl Drop for FakeInternet {
    fn drop(&mut self) {
        if let Some(mut child) = self.upstream.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.client, &self.inet] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
