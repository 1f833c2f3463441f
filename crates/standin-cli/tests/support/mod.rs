//! Shared fixtures for standin's end-to-end tests.
//!
//! - [`standin`]: run the real `standin` binary;
//! - [`FakeInternet`]: two network namespaces created for one test: `client`, where standin
//!   runs and whose only route leads to `inet`, which holds public-looking addresses served
//!   by a real upstream (`upstream.py`) and a real DNS server (dnsmasq) resolving the test
//!   names ([`ZONE`]). The client's `/etc/resolv.conf` (through `/etc/netns/<client>/`) names
//!   that server, so standin's default upstream discovery is exercised too. Nothing is routed
//!   anywhere else. Dropping the fixture kills the servers and deletes both namespaces and the
//!   resolv.conf, also when the test panics.
#![allow(dead_code, reason = "each test binary uses only some of the helpers")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Path of the standin binary under test.
pub(crate) fn standin_bin() -> &'static str {
    env!("CARGO_BIN_EXE_standin")
}

/// `standin run [args] -- sh -c script`, collecting output.
pub(crate) fn run_sh(args: &[&str], script: &str) -> Output {
    let mut cmd = Command::new(standin_bin());
    cmd.arg("run").args(args).args(["--", "sh", "-c", script]);
    cmd.output().expect("run standin")
}

/// `python3 -c SCRIPT` as one shell word (single quotes escaped).
pub(crate) fn python(script: &str) -> String {
    format!("python3 -c '{}'", script.replace('\'', "'\\''"))
}

/// stdout as a string.
pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as a string.
pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether the tests run as root (CI does); some checks only mean something there.
/// Fail at once, saying why, unless running as root. End-to-end tests that need root are
/// `#[ignore]`d with that reason (so a plain `cargo test` lists them as ignored, never as
/// passed); `.ci/run`, as root, runs them with `--include-ignored`.
pub(crate) fn require_root() {
    assert!(
        is_root(),
        "this test needs root (it creates network namespaces); run it as root, as .ci/run does"
    );
}

/// A copy of the standin binary every user can execute (the build tree may not be
/// traversable), in a directory that lives as long as the returned guard.
pub(crate) fn standin_for_everyone() -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("standin");
    std::fs::copy(standin_bin(), &bin).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, bin)
}

pub(crate) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique short name for per-test resources (digits after the prefix, so it also works as
/// a number, e.g. a `sleep` duration that marks a process).
pub(crate) fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}0{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Public-looking IPv4 address of the fake upstream.
pub(crate) const UPSTREAM_V4: &str = "45.90.1.10";
/// Public-looking IPv6 address of the fake upstream.
pub(crate) const UPSTREAM_V6: &str = "2a0b:4d07::10";

/// Public-looking address of `evil.example`.
pub(crate) const EVIL_V4: &str = "45.90.1.20";
/// Private address served in the fake internet (reachable without policy).
pub(crate) const PRIVATE_V4: &str = "10.0.0.5";
/// The metadata address, served in the fake internet (reachable without policy).
pub(crate) const METADATA_V4: &str = "169.254.169.254";
/// Public-looking address of `traces.example` (a trace store: passthrough host in tests).
pub(crate) const TRACES_V4: &str = "45.90.1.30";
/// Public-looking address of `registry.npmjs.org` (in the fake internet).
pub(crate) const REGISTRY_V4: &str = "45.90.1.40";
/// Public-looking address of `registry.test`, where image tests run a registry.
pub(crate) const IMAGE_REGISTRY_V4: &str = "45.90.1.50";
/// Public-looking address of the S3 endpoint (`s3.eu-west-1.amazonaws.com`), where the AWS
/// tests run an S3 server that checks signatures.
pub(crate) const AWS_V4: &str = "45.90.1.60";
/// The NAT64 form (`64:ff9b::/96`) of the metadata address, served in the fake internet.
pub(crate) const NAT64_METADATA_V6: &str = "64:ff9b::a9fe:a9fe";
/// The 6to4 form (`2002::/16`) of [`PRIVATE_V4`], served in the fake internet.
pub(crate) const SIXTOFOUR_PRIVATE_V6: &str = "2002:a00:5::5";
/// The DNS server's address.
pub(crate) const DNS_V4: &str = "192.0.2.1";

/// Names the fake internet's DNS server answers, and their addresses.
pub(crate) const ZONE: &[(&str, &str)] = &[
    ("api.openai.com", UPSTREAM_V4),
    ("api.openai.com", UPSTREAM_V6),
    ("evil.example", EVIL_V4),
    ("private.example", PRIVATE_V4),
    ("metadata.example", METADATA_V4),
    ("traces.example", TRACES_V4),
    ("registry.npmjs.org", REGISTRY_V4),
    ("wrongcert.example", UPSTREAM_V4),
    ("registry.test", IMAGE_REGISTRY_V4),
    // The other hosts the reference's SDK examples name (told apart by their TLS server name).
    ("api.stripe.com", UPSTREAM_V4),
    ("files.stripe.com", UPSTREAM_V4),
    ("api.github.com", UPSTREAM_V4),
    ("api.anthropic.com", UPSTREAM_V4),
    ("s3.eu-west-1.amazonaws.com", AWS_V4),
    ("nat64-metadata.example", NAT64_METADATA_V6),
    ("sixtofour-private.example", SIXTOFOUR_PRIVATE_V6),
];

/// Names in [`ZONE`] that the fixture's server certificate does *not* cover.
pub(crate) const NOT_IN_CERT: &[&str] = &["wrongcert.example"];

/// What a test failure should show: the run's status and output, and what the fake
/// internet's hosts received.
pub(crate) fn report(o: &Output, net: &FakeInternet) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}\n--- received\n{}",
        o.status.code(),
        stdout(o),
        stderr(o),
        net.received()
    )
}

/// `standin run --upstream-ca <fixture CA> [--secret SECRET] EXTRA -- sh -c SCRIPT` with `env`
/// in standin's own environment.
pub(crate) fn run_with_secret(
    net: &FakeInternet,
    secret: Option<&str>,
    extra: &[&str],
    env: &[(&str, &str)],
    script: &str,
) -> Output {
    let ca = net.ca_file().display().to_string();
    let mut a = vec!["--upstream-ca", ca.as_str()];
    if let Some(s) = secret {
        a.extend_from_slice(&["--secret", s]);
    }
    a.extend_from_slice(extra);
    net.run_sh_env(&a, env, script)
}

/// An events file for one run (`--events PATH`), removed when dropped.
pub(crate) struct EventsFile(tempfile::NamedTempFile);

impl EventsFile {
    pub(crate) fn new() -> EventsFile {
        EventsFile(tempfile::NamedTempFile::new().unwrap())
    }

    /// The path, for `--events`.
    pub(crate) fn arg(&self) -> &str {
        self.0.path().to_str().unwrap()
    }

    /// Every event written so far, as JSON lines.
    pub(crate) fn read(&self) -> String {
        std::fs::read_to_string(self.0.path()).unwrap()
    }
}

/// One `standin run` of a secrets test: the fake internet's CA trusted, the value in
/// standin's environment, secret flags, and an events file of its own.
pub(crate) struct SecretRun<'a> {
    net: &'a FakeInternet,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The run's events (`--events`).
    pub(crate) events: EventsFile,
}

impl<'a> SecretRun<'a> {
    /// A run in `net` with `env` in standin's environment and nothing else set.
    pub(crate) fn new(net: &'a FakeInternet, env: &[(&str, &str)]) -> SecretRun<'a> {
        let events = EventsFile::new();
        SecretRun {
            net,
            args: vec!["--events".into(), events.arg().into()],
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            events,
        }
    }

    /// `--secret SPEC`.
    pub(crate) fn secret(self, spec: &str) -> Self {
        self.args(&["--secret", spec])
    }

    /// `--on-secret-violation block-and-log`: violations are events.
    pub(crate) fn logged(self) -> Self {
        self.args(&["--on-secret-violation", "block-and-log"])
    }

    /// More flags.
    pub(crate) fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Run `sh -c SCRIPT` in the sandbox.
    pub(crate) fn run(&self, script: &str) -> Output {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        run_with_secret(self.net, None, &args, &env, script)
    }
}

/// The fake internet of one test.
pub(crate) struct FakeInternet {
    pub client: String,
    pub inet: String,
    upstream: Option<Child>,
    dns: Option<Child>,
    tls_ports: Vec<u16>,
    http_ports: (Vec<u16>, Vec<u16>),
    h2_ports: (Vec<u16>, Vec<u16>),
    ws_ports: Vec<u16>,
    dual_ports: Vec<u16>,
    pki: Option<tempfile::TempDir>,
    log: Option<tempfile::TempDir>,
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
    pub(crate) fn new(tcp_ports: &[u16], udp_ports: &[u16]) -> FakeInternet {
        FakeInternet::build(tcp_ports, udp_ports, &[])
    }

    /// Like [`FakeInternet::new`], plus real HTTPS on `tls_ports` with a certificate for every
    /// name and address of [`ZONE`], issued by a test CA made for this fixture
    /// ([`FakeInternet::ca_file`]).
    pub(crate) fn with_tls(
        tcp_ports: &[u16],
        udp_ports: &[u16],
        tls_ports: &[u16],
    ) -> FakeInternet {
        FakeInternet::build(tcp_ports, udp_ports, tls_ports)
    }

    /// The directory of the test PKI: `ca.pem`, and `leaf.pem`/`leaf.key` for every name of
    /// [`ZONE`].
    pub(crate) fn pki_dir(&self) -> std::path::PathBuf {
        self.pki.as_ref().expect("with_tls").path().to_path_buf()
    }

    /// The test CA's certificate (PEM).
    pub(crate) fn ca_file(&self) -> std::path::PathBuf {
        self.pki.as_ref().expect("with_tls").path().join("ca.pem")
    }

    /// A fake internet whose hosts run a recording HTTP/1.1 server (keep-alive, chunked) on
    /// `http_ports` and HTTPS (test CA) on `https_ports`. Every byte a destination receives is
    /// logged; see [`FakeInternet::received`].
    pub(crate) fn with_http(http_ports: &[u16], https_ports: &[u16]) -> FakeInternet {
        FakeInternet::build_full(&[], &[], &[], (http_ports.to_vec(), https_ports.to_vec()))
    }

    /// Like [`FakeInternet::with_http`], plus UDP on `udp_ports` that counts datagrams and
    /// never answers (a resolver that times out, when the port is 53).
    pub(crate) fn with_http_udp(
        http_ports: &[u16],
        https_ports: &[u16],
        udp_ports: &[u16],
    ) -> FakeInternet {
        FakeInternet::build_full(
            &[],
            udp_ports,
            &[],
            (http_ports.to_vec(), https_ports.to_vec()),
        )
    }

    /// Like [`FakeInternet::with_http`], plus an HTTP/2-only HTTPS server (python h2) on
    /// `h2_ports` and a gRPC server (grpcio, TLS) on `grpc_ports`, both logging what they
    /// receive.
    pub(crate) fn with_h2(
        http_ports: &[u16],
        https_ports: &[u16],
        h2_ports: &[u16],
        grpc_ports: &[u16],
    ) -> FakeInternet {
        FakeInternet::with_peers(http_ports, https_ports, h2_ports, grpc_ports, &[])
    }

    /// Like [`FakeInternet::with_http`], plus an HTTPS server on `dual_ports` that offers
    /// both HTTP/2 and HTTP/1.1 by ALPN and logs which one each request came in (HTTP/2
    /// requests as `H2 :method: …`, HTTP/1.1 ones as their raw bytes).
    pub(crate) fn with_h2_or_h1(
        http_ports: &[u16],
        https_ports: &[u16],
        dual_ports: &[u16],
    ) -> FakeInternet {
        let mut fx = FakeInternet::namespaces();
        fx.dual_ports = dual_ports.to_vec();
        fx.finish(&[], &[], &[], (http_ports.to_vec(), https_ports.to_vec()))
    }

    /// All of the above plus a WebSocket echo server (python websockets, TLS) on `ws_ports`.
    pub(crate) fn with_peers(
        http_ports: &[u16],
        https_ports: &[u16],
        h2_ports: &[u16],
        grpc_ports: &[u16],
        ws_ports: &[u16],
    ) -> FakeInternet {
        let mut fx = FakeInternet::namespaces();
        fx.h2_ports = (h2_ports.to_vec(), grpc_ports.to_vec());
        fx.ws_ports = ws_ports.to_vec();
        fx.finish(&[], &[], &[], (http_ports.to_vec(), https_ports.to_vec()))
    }

    fn build(tcp_ports: &[u16], udp_ports: &[u16], tls_ports: &[u16]) -> FakeInternet {
        FakeInternet::build_full(tcp_ports, udp_ports, tls_ports, (Vec::new(), Vec::new()))
    }

    /// The upstream log: every read of every connection, in order (none without HTTP
    /// servers).
    fn records(&self) -> Vec<serde_json::Value> {
        let Some(log) = self.log.as_ref() else {
            return Vec::new();
        };
        let path = log.path().join("received.jsonl");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The upstream log file itself (one JSON line per read: `conn`, `local`, `sni`, `data`),
    /// for checks made by other programs (the SDK tests).
    pub(crate) fn received_log(&self) -> std::path::PathBuf {
        self.log
            .as_ref()
            .expect("with_http")
            .path()
            .join("received.jsonl")
    }

    /// Everything the destinations received, concatenated per connection (connections
    /// separated by a blank line), as latin-1 text.
    pub(crate) fn received(&self) -> String {
        self.received_at("")
    }

    /// Per upstream connection: the TLS server name it was opened with and what it received.
    pub(crate) fn connections(&self) -> Vec<(String, String)> {
        let mut by_conn: Vec<(u64, String, String)> = Vec::new();
        for r in self.records() {
            let id = r["conn"].as_u64().unwrap_or(0);
            let data = r["data"].as_str().unwrap_or("");
            match by_conn.iter_mut().find(|(c, _, _)| *c == id) {
                Some((_, _, s)) => s.push_str(data),
                None => by_conn.push((
                    id,
                    r["sni"].as_str().unwrap_or("-").to_owned(),
                    data.to_owned(),
                )),
            }
        }
        by_conn
            .into_iter()
            .map(|(_, sni, data)| (sni, data))
            .collect()
    }

    /// What the upstream connection that received `GET /{tag} ` received (empty if none).
    pub(crate) fn sent_with(&self, tag: &str) -> String {
        self.connections()
            .into_iter()
            .find(|(_, d)| d.contains(&format!("GET /{tag} ")))
            .map(|(_, d)| d)
            .unwrap_or_default()
    }

    /// What destinations whose local address starts with `addr` received.
    pub(crate) fn received_at(&self, addr: &str) -> String {
        let mut by_conn: Vec<(u64, String)> = Vec::new();
        for r in self.records() {
            if !r["local"].as_str().unwrap_or("").starts_with(addr) {
                continue;
            }
            let id = r["conn"].as_u64().unwrap_or(0);
            let data = r["data"].as_str().unwrap_or("");
            match by_conn.iter_mut().find(|(c, _)| *c == id) {
                Some((_, s)) => s.push_str(data),
                None => by_conn.push((id, data.to_owned())),
            }
        }
        by_conn
            .into_iter()
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    /// Wait (up to 10 s) until the destinations have received `needle`; used after a
    /// sentinel request so that later checks see every earlier byte.
    pub(crate) fn wait_received(&self, needle: &str) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if self.received().contains(needle) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }

    fn build_full(
        tcp_ports: &[u16],
        udp_ports: &[u16],
        tls_ports: &[u16],
        http_ports: (Vec<u16>, Vec<u16>),
    ) -> FakeInternet {
        FakeInternet::namespaces().finish(tcp_ports, udp_ports, tls_ports, http_ports)
    }

    /// The fixture's names, before anything exists (dropping it cleans up what was made).
    fn namespaces() -> FakeInternet {
        require_root();
        let base = unique("sti");
        FakeInternet {
            client: format!("{base}c"),
            inet: format!("{base}i"),
            upstream: None,
            dns: None,
            tls_ports: Vec::new(),
            http_ports: (Vec::new(), Vec::new()),
            h2_ports: (Vec::new(), Vec::new()),
            ws_ports: Vec::new(),
            dual_ports: Vec::new(),
            pki: None,
            log: None,
        }
    }

    fn finish(
        mut self,
        tcp_ports: &[u16],
        udp_ports: &[u16],
        tls_ports: &[u16],
        http_ports: (Vec<u16>, Vec<u16>),
    ) -> FakeInternet {
        self.http_ports = http_ports;
        let fx = self;
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
        for v6 in [UPSTREAM_V6, NAT64_METADATA_V6, SIXTOFOUR_PRIVATE_V6] {
            in_ns(
                i,
                &["addr", "add", &format!("{v6}/128"), "dev", "lo", "nodad"],
            );
        }
        for extra in [
            EVIL_V4,
            PRIVATE_V4,
            METADATA_V4,
            TRACES_V4,
            REGISTRY_V4,
            IMAGE_REGISTRY_V4,
            AWS_V4,
        ] {
            in_ns(i, &["addr", "add", &format!("{extra}/32"), "dev", "lo"]);
        }
        // A black hole for "slow resolver" tests: packets to it vanish.
        in_ns(i, &["route", "add", "blackhole", "45.90.1.99/32"]);
        let etc = format!("/etc/netns/{}", fx.client);
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(
            format!("{etc}/resolv.conf"),
            format!("nameserver {DNS_V4}\n"),
        )
        .unwrap();
        let mut fx = fx.start_dns();
        if !tls_ports.is_empty()
            || !fx.http_ports.1.is_empty()
            || !fx.h2_ports.0.is_empty()
            || !fx.h2_ports.1.is_empty()
            || !fx.ws_ports.is_empty()
            || !fx.dual_ports.is_empty()
        {
            fx.tls_ports = tls_ports.to_vec();
            fx.pki = Some(make_pki());
        }
        if !fx.http_ports.0.is_empty() || !fx.http_ports.1.is_empty() {
            let dir = tempfile::tempdir().unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            fx.log = Some(dir);
        }
        fx.start_upstream(tcp_ports, udp_ports)
    }

    fn start_dns(mut self) -> FakeInternet {
        let mut args: Vec<String> = [
            "netns",
            "exec",
            &self.inet,
            "dnsmasq",
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--conf-file=/dev/null",
            "--pid-file",
            "--user=root",
            "--bind-interfaces",
            "--listen-address=192.0.2.1",
            "--port=53",
            "--log-facility=-",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (name, addr) in ZONE {
            args.push(format!("--host-record={name},{addr}"));
        }
        let mut child = Command::new("ip")
            .args(&args)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dnsmasq (apt-get install dnsmasq-base)");
        let mut reader = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let mut log = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                panic!("dnsmasq did not start:\n{log}");
            }
            log.push_str(&line);
            if line.contains("started") {
                break;
            }
        }
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        self.dns = Some(child);
        self
    }

    fn start_upstream(mut self, tcp_ports: &[u16], udp_ports: &[u16]) -> FakeInternet {
        let join = |p: &[u16]| p.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/upstream.py");
        let mut args = vec![
            "netns".to_owned(),
            "exec".to_owned(),
            self.inet.clone(),
            // The system interpreter: the one the sandbox runs, with the test packages.
            "/usr/bin/python3".to_owned(),
            script.to_owned(),
            format!("--tcp={}", join(tcp_ports)),
            format!("--udp={}", join(udp_ports)),
        ];
        if let Some(pki) = self.pki.as_ref() {
            args.push(format!("--tls={}", join(&self.tls_ports)));
            args.push(format!("--cert={}", pki.path().join("leaf.pem").display()));
            args.push(format!("--key={}", pki.path().join("leaf.key").display()));
        }
        let (h2, grpc) = self.h2_ports.clone();
        if !h2.is_empty()
            || !grpc.is_empty()
            || !self.ws_ports.is_empty()
            || !self.dual_ports.is_empty()
        {
            args.push(format!("--h2={}", join(&h2)));
            args.push(format!("--h2-or-h1={}", join(&self.dual_ports)));
            args.push(format!("--grpc={}", join(&grpc)));
            args.push(format!("--ws={}", join(&self.ws_ports)));
        }
        if let Some(log) = self.log.as_ref() {
            args.push(format!("--http={}", join(&self.http_ports.0)));
            args.push(format!("--https={}", join(&self.http_ports.1)));
            args.push(format!(
                "--log={}",
                log.path().join("received.jsonl").display()
            ));
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
    pub(crate) fn run_sh(&self, args: &[&str], script: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.client, standin_bin(), "run"])
            .args(args)
            .args(["--", "sh", "-c", script])
            .output()
            .expect("run standin in the client namespace")
    }

    /// Like [`FakeInternet::run_sh`] with extra variables in standin's own environment (where
    /// `--secret` reads values from).
    pub(crate) fn run_sh_env(&self, args: &[&str], env: &[(&str, &str)], script: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.client, standin_bin(), "run"])
            .args(args)
            .args(["--", "sh", "-c", script])
            .envs(env.iter().copied())
            .output()
            .expect("run standin in the client namespace")
    }

    /// `program` in the client namespace as a long-lived host program (an SDK user) runs:
    /// with the host's `/sys`, so its cgroup hierarchies are visible (`ip netns exec` mounts a
    /// fresh sysfs without them), and the client's `/etc/resolv.conf` bound in a mount
    /// namespace of its own.
    pub(crate) fn host_program(&self, program: &str) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(r#"r=$1 n=$2; shift 2; mount --bind "$r" /etc/resolv.conf && exec nsenter --net="$n" -- "$0" "$@""#)
            .arg(program)
            .arg(format!("/etc/netns/{}/resolv.conf", self.client))
            .arg(format!("/run/netns/{}", self.client));
        cmd
    }

    /// Run a command directly in the inet namespace (for checks from the upstream's side).
    pub(crate) fn in_inet(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.inet])
            .args(argv)
            .output()
            .expect("run in inet namespace")
    }
}

impl Drop for FakeInternet {
    fn drop(&mut self) {
        for child in [self.upstream.take(), self.dns.take()]
            .into_iter()
            .flatten()
        {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.client));
        for ns in [&self.client, &self.inet] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// A throw-away CA and one leaf certificate for every name and address of [`ZONE`], made with
/// the openssl CLI (P-256, valid two days).
fn make_pki() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut san: Vec<String> = Vec::new();
    for (name, addr) in ZONE.iter().filter(|(n, _)| !NOT_IN_CERT.contains(n)) {
        for entry in [format!("DNS:{name}"), format!("IP:{addr}")] {
            if !san.contains(&entry) {
                san.push(entry);
            }
        }
    }
    for n in ["other.example", "www.evil.example"] {
        san.push(format!("DNS:{n}"));
    }
    std::fs::write(
        d.join("leaf.ext"),
        format!(
            "subjectAltName={}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
            san.join(",")
        ),
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(d)
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=standin test CA",
    ]);
    openssl(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=api.openai.com",
    ]);
    openssl(&csr);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
    // Readable by the sandbox's unprivileged root when mounted in.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(d.join("ca.pem"), std::fs::Permissions::from_mode(0o644)).unwrap();
    dir
}
