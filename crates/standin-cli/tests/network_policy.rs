//! The network boundary: DNS forwarding, egress policy, rebind protection, events.
//! Real clients (curl, dig, getent, python) inside the sandbox, against the fake internet.

mod support;
use support::*;

/// Events written by standin to `path`, one JSON object per line.
fn events(file: &EventsFile) -> Vec<String> {
    file.read().lines().map(str::to_owned).collect()
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn public_destinations_work_by_name_and_address_over_v4_and_v6() {
    let net = FakeInternet::new(&[80], &[]);
    let o = net.run_sh(
        &[],
        &format!(
            "curl -4 -sS -m 5 http://api.openai.com/; curl -6 -sS -m 5 http://api.openai.com/; \
             curl -sS -m 5 http://{UPSTREAM_V4}/; curl -sS -m 5 'http://[{UPSTREAM_V6}]/'; \
             getent ahosts api.openai.com | head -1"
        ),
    );
    let s = stdout(&o);
    assert!(o.status.success(), "{s}\n{}", stderr(&o));
    assert_eq!(
        s.matches(&format!("local={UPSTREAM_V4}:80")).count(),
        2,
        "{s}"
    );
    assert_eq!(
        s.matches(&format!("local=[{UPSTREAM_V6}]:80")).count(),
        2,
        "{s}"
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn private_loopback_and_metadata_destinations_are_refused() {
    let net = FakeInternet::new(&[80], &[]);
    let ev = EventsFile::new();
    let o = net.run_sh(
        &["--events", ev.arg()],
        &format!(
            "for a in {PRIVATE_V4} {METADATA_V4} 127.0.0.1 {DNS_V4}; do \
               curl -sS -m 5 http://$a/ >/dev/null 2>&1; echo \"$a rc=$?\"; done"
        ),
    );
    let s = stdout(&o);
    for a in [PRIVATE_V4, METADATA_V4, DNS_V4] {
        let line = s
            .lines()
            .find(|l| l.starts_with(a))
            .unwrap_or_else(|| panic!("{a}: {s}"));
        assert!(!line.ends_with("rc=0"), "{a} was reachable: {s}");
    }
    let ev = events(&ev);
    for a in [PRIVATE_V4, METADATA_V4, DNS_V4] {
        assert!(
            ev.iter()
                .any(|e| e.contains("\"connection-denied\"") && e.contains(&format!("\"{a}:80\""))),
            "no event for {a}: {ev:?}"
        );
    }
    // The same addresses answer when allowed explicitly: the refusal above was the policy.
    let o = net.run_sh(
        &["--net-rule", &format!("allow@{PRIVATE_V4}:tcp:80")],
        &format!("curl -sS -m 5 http://{PRIVATE_V4}/"),
    );
    assert!(
        stdout(&o).contains(&format!("local={PRIVATE_V4}:80")),
        "{} {}",
        stdout(&o),
        stderr(&o)
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn ipv6_addresses_that_carry_ipv4_are_judged_by_the_ipv4_address() {
    // The fake internet serves the NAT64 form of the metadata address and the 6to4 form of a
    // private address, as a host behind such gateways would reach them.
    let net = FakeInternet::new(&[80], &[]);
    let ev = EventsFile::new();
    let o = net.run_sh(
        &["--events", ev.arg()],
        &format!(
            "dig +tries=1 +time=5 nat64-metadata.example AAAA | grep -o 'status: [A-Z]*'; \
             dig +tries=1 +time=5 sixtofour-private.example AAAA | grep -o 'status: [A-Z]*'; \
             for a in {NAT64_METADATA_V6} {SIXTOFOUR_PRIVATE_V6}; do \
               curl -sS -m 5 \"http://[$a]/\" >/dev/null 2>&1; echo \"$a rc=$?\"; done"
        ),
    );
    let s = stdout(&o);
    let lines: Vec<&str> = s.lines().map(str::trim).collect();
    assert_eq!(lines[..2], ["status: NXDOMAIN", "status: NXDOMAIN"], "{s}");
    for a in [NAT64_METADATA_V6, SIXTOFOUR_PRIVATE_V6] {
        assert!(s.contains(&format!("{a} rc=")), "{s}");
        assert!(!s.contains(&format!("{a} rc=0")), "{a} was reachable: {s}");
    }
    let ev = events(&ev);
    for a in [NAT64_METADATA_V6, SIXTOFOUR_PRIVATE_V6] {
        assert!(
            ev.iter().any(
                |e| e.contains("\"connection-denied\"") && e.contains(&format!("\"[{a}]:80\""))
            ),
            "no event for {a}: {ev:?}"
        );
    }
    // An IPv4 rule covers the IPv6 forms of its addresses: allowing the private network
    // makes its 6to4 form reachable (so the refusal above was the policy, not the route).
    let o = net.run_sh(
        &["--net-rule", "allow@10.0.0.0/8:tcp:80"],
        &format!("curl -sS -m 5 'http://[{SIXTOFOUR_PRIVATE_V6}]/'"),
    );
    assert!(
        stdout(&o).contains(&format!("local=[{SIXTOFOUR_PRIVATE_V6}]:80")),
        "{} {}",
        stdout(&o),
        stderr(&o)
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn names_resolving_to_private_addresses_get_nxdomain() {
    let net = FakeInternet::new(&[80], &[]);
    let ev = EventsFile::new();
    let o = net.run_sh(
        &["--events", ev.arg()],
        "dig +tries=1 +time=5 private.example A | grep -o 'status: [A-Z]*'; \
         dig +tries=1 +time=5 metadata.example A | grep -o 'status: [A-Z]*'; \
         dig +tries=1 +time=5 api.openai.com A | grep -o 'status: [A-Z]*'",
    );
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(
        lines,
        ["status: NXDOMAIN", "status: NXDOMAIN", "status: NOERROR"],
        "{}",
        stderr(&o)
    );
    let ev = events(&ev);
    assert!(
        ev.iter()
            .any(|e| e.contains("\"rebind-blocked\"") && e.contains("private.example")),
        "{ev:?}"
    );
    // An explicit rule for the address lifts the protection for it alone.
    let o = net.run_sh(
        &["--net-rule", "allow@10.0.0.0/24"],
        "dig +short +tries=1 +time=5 private.example A; dig +tries=1 +time=5 metadata.example A | grep -o 'status: [A-Z]*'",
    );
    assert_eq!(stdout(&o).trim(), format!("{PRIVATE_V4}\nstatus: NXDOMAIN"));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn denied_domains_get_nxdomain_and_queries_to_any_resolver_are_captured() {
    let net = FakeInternet::new(&[80], &[]);
    let ev = EventsFile::new();
    let o = net.run_sh(
        &["--net-rule", "deny@*.evil.example", "--events", ev.arg()],
        "dig +tries=1 +time=5 evil.example | grep -o 'status: [A-Z]*'; \
         dig +tries=1 +time=5 x.y.evil.example | grep -o 'status: [A-Z]*'; \
         dig +short +tries=1 +time=5 @8.8.8.8 api.openai.com A; \
         dig +short +tries=1 +time=5 +tcp @127.0.0.53 api.openai.com A; \
         getent hosts evil.example || echo getent-failed",
    );
    let s = stdout(&o);
    let lines: Vec<&str> = s.lines().map(str::trim).collect();
    assert_eq!(
        lines,
        [
            "status: NXDOMAIN",
            "status: NXDOMAIN",
            UPSTREAM_V4,
            UPSTREAM_V4,
            "getent-failed"
        ],
        "{}",
        stderr(&o)
    );
    let ev = events(&ev);
    assert!(
        ev.iter().any(|e| e.contains("\"dns-denied\"")
            && e.contains("\"x.y.evil.example\"")
            && e.contains("deny@*.evil.example")),
        "{ev:?}"
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn domain_rules_are_tied_to_the_sandboxes_own_dns_answers() {
    let net = FakeInternet::new(&[80], &[]);
    // Only api.openai.com is allowed; everything public is denied otherwise.
    let rules = [
        "--net-rule",
        "allow@api.openai.com:tcp:80",
        "--net-rule",
        "deny@public",
    ];
    let o = net.run_sh(
        &rules,
        &format!(
            "curl -4 -sS -m 5 http://api.openai.com/ 2>&1; echo; \
             curl -sS -m 5 --resolve api.openai.com:80:{EVIL_V4} http://api.openai.com/ >/dev/null 2>&1; echo borrowed=$?; \
             curl -sS -m 5 http://{UPSTREAM_V4}/ >/dev/null 2>&1; echo direct=$?"
        ),
    );
    let s = stdout(&o);
    assert!(
        s.contains(&format!("local={UPSTREAM_V4}:80")),
        "allowed name failed: {s}\n{}",
        stderr(&o)
    );
    // A hard-coded address cannot borrow the allowed name, and the bare address of the allowed
    // host is not allowed either: only what this sandbox resolved is.
    assert!(!s.contains("borrowed=0"), "{s}");
    // The direct connection happens after the name was resolved in the same sandbox, so the
    // address is pinned to api.openai.com and allowed: domain rules follow the address the
    // sandbox learned, whatever name the client writes.
    assert!(s.contains("direct=0"), "{s}");
    // In a fresh sandbox that never resolved the name, the bare address is denied.
    let o = net.run_sh(
        &rules,
        &format!("curl -sS -m 5 http://{UPSTREAM_V4}/ >/dev/null 2>&1; echo direct=$?"),
    );
    assert!(!stdout(&o).contains("direct=0"), "{}", stdout(&o));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn udp_other_than_dns_fails_fast_including_quic() {
    let net = FakeInternet::new(&[80], &[443]);
    let o = net.run_sh(
        &[],
        "python3 -c '
import socket, time
t = time.monotonic()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(b\"\\xc0quic\", (\"api.openai.com\", 443)); print(\"SENT\")
except OSError as e:
    print(\"errno\", e.errno, \"ms\", int((time.monotonic() - t) * 1000))
'",
    );
    let s = stdout(&o);
    assert!(s.starts_with("errno 1 "), "{s}\n{}", stderr(&o));
    let ms: u64 = s.split_whitespace().last().unwrap().parse().unwrap();
    // Resolution plus the refused send: well under a client's fallback timer, never a hang.
    assert!(ms < 5000, "{s}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn a_hundred_parallel_connections_all_relay() {
    let net = FakeInternet::new(&[80], &[]);
    let o = net.run_sh(
        &[],
        &format!(
            "python3 -c '
import concurrent.futures, urllib.request
def get(i):
    return urllib.request.urlopen(\"http://{UPSTREAM_V4}/?%d\" % i, timeout=20).read().decode()
with concurrent.futures.ThreadPoolExecutor(100) as ex:
    bodies = list(ex.map(get, range(100)))
print(sum(b.startswith(\"local={UPSTREAM_V4}:80\") for b in bodies))
'"
        ),
    );
    assert_eq!(stdout(&o).trim(), "100", "{}", stderr(&o));
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn a_dead_or_slow_resolver_gives_a_timely_servfail() {
    let net = FakeInternet::new(&[80], &[]);
    let ev = EventsFile::new();
    for upstream in ["45.90.1.99", "45.90.1.10:5353"] {
        // 45.90.1.99 is a black hole (timeout); nothing listens on 45.90.1.10:5353 (refused).
        let start = std::time::Instant::now();
        let o = net.run_sh(
            &["--dns-upstream", upstream, "--events", ev.arg()],
            "dig +tries=1 +time=10 api.openai.com | grep -o 'status: [A-Z]*'",
        );
        assert_eq!(
            stdout(&o).trim(),
            "status: SERVFAIL",
            "{upstream}: {}",
            stderr(&o)
        );
        // dig would have waited 10 s for an answer that never came.
        assert!(
            start.elapsed() < std::time::Duration::from_secs(9),
            "{upstream}: {:?}",
            start.elapsed()
        );
    }
    assert!(
        events(&ev)
            .iter()
            .any(|e| e.contains("\"upstream-failed\""))
    );
}

#[test]
fn bad_rules_and_config_are_rejected_before_anything_starts() {
    let o = run_sh(&["--net-rule", "allow@2001:db8::1"], "true");
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("brackets"), "{}", stderr(&o));
    let o = run_sh(&["--net-rule", "permit@x.com"], "true");
    assert!(stderr(&o).contains("\"permit\""), "{}", stderr(&o));
    let o = run_sh(&["--net-default", "maybe"], "true");
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("maybe"), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("standin.toml");
    std::fs::write(&cfg, "[network]\nrule = [\"deny@any\"]\n").unwrap();
    let o = run_sh(&["--config", cfg.to_str().unwrap()], "true");
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("unknown field `rule`"),
        "{}",
        stderr(&o)
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn config_file_expresses_the_flags() {
    let net = FakeInternet::new(&[80], &[]);
    let dir = tempfile::tempdir().unwrap();
    let ev = EventsFile::new();
    let cfg = dir.path().join("standin.toml");
    std::fs::write(
        &cfg,
        format!(
            "[sandbox]\nhostname = \"from-config\"\nenv = [\"MODE=cfg\"]\n\n[network]\ndefault = \"deny\"\n\
             rules = [\"deny@api.openai.com\"]\ndns_upstreams = [\"{DNS_V4}\"]\nevents = \"{}\"\n",
            ev.arg()
        ),
    )
    .unwrap();
    let o = net.run_sh(
        &["--config", cfg.to_str().unwrap()],
        "hostname; echo $MODE; dig +tries=1 +time=5 api.openai.com | grep -o 'status: [A-Z]*'",
    );
    assert_eq!(
        stdout(&o).trim(),
        "from-config\ncfg\nstatus: NXDOMAIN",
        "{}",
        stderr(&o)
    );
    assert!(events(&ev).iter().any(|e| e.contains("dns-denied")));
}

/// A python snippet that resolves (optionally) and sends a real ClientHello for `sni` to
/// `addr:443`, printing `<label> relayed` if the upstream saw it and `<label> refused` if the
/// boundary reset the connection.
fn hello_script(cases: &[(&str, &str, &str)]) -> String {
    let mut py = String::from(
        "import socket, ssl\n\
         def hello(label, addr, sni):\n\
         \x20   ctx = ssl.create_default_context()\n\
         \x20   inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()\n\
         \x20   obj = ctx.wrap_bio(inc, out, server_hostname=sni)\n\
         \x20   try:\n\
         \x20       obj.do_handshake()\n\
         \x20   except ssl.SSLWantReadError:\n\
         \x20       pass\n\
         \x20   s = socket.create_connection((addr, 443), timeout=5)\n\
         \x20   try:\n\
         \x20       s.sendall(out.read())\n\
         \x20       reply = s.recv(100)\n\
         \x20   except OSError:\n\
         \x20       reply = b''\n\
         \x20   print(label, 'relayed' if reply.startswith(b'TLS-SEEN') else 'refused')\n",
    );
    for (label, addr, sni) in cases {
        py.push_str(&format!("hello('{label}', {addr}, '{sni}')\n"));
    }
    format!("python3 -c \"{py}\"")
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn tls_server_names_decide_domain_rules() {
    let net = FakeInternet::new(&[443], &[]);
    let resolved = "socket.getaddrinfo('api.openai.com', 443, socket.AF_INET)[0][4][0]";
    let o = net.run_sh(
        &[
            "--net-rule",
            "allow@api.openai.com:tcp:443",
            "--net-rule",
            "deny@public",
        ],
        &hello_script(&[
            ("named", resolved, "api.openai.com"),
            ("fronted", resolved, "other.example"),
        ]),
    );
    let s = stdout(&o);
    assert!(s.contains("named relayed"), "{s}\n{}", stderr(&o));
    assert!(s.contains("fronted refused"), "{s}");
    // Same address, same SNI, but in a fresh sandbox that never resolved the name.
    let o = net.run_sh(
        &[
            "--net-rule",
            "allow@api.openai.com:tcp:443",
            "--net-rule",
            "deny@public",
        ],
        &hello_script(&[("unresolved", &format!("'{UPSTREAM_V4}'"), "api.openai.com")]),
    );
    assert!(stdout(&o).contains("unresolved refused"), "{}", stdout(&o));

    // A deny rule matches the server name alone: a hard-coded address cannot dodge it.
    let ev = EventsFile::new();
    let o = net.run_sh(
        &["--net-rule", "deny@*.evil.example", "--events", ev.arg()],
        &hello_script(&[
            ("evil", &format!("'{UPSTREAM_V4}'"), "www.evil.example"),
            ("other", &format!("'{UPSTREAM_V4}'"), "other.example"),
        ]),
    );
    let s = stdout(&o);
    assert!(s.contains("evil refused"), "{s}\n{}", stderr(&o));
    assert!(s.contains("other relayed"), "{s}");
    assert!(
        events(&ev)
            .iter()
            .any(|e| e.contains("www.evil.example") && e.contains("deny@*.evil.example")),
        "{:?}",
        events(&ev)
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn idle_relayed_connections_are_closed() {
    let net = FakeInternet::new(&[80], &[]);
    // The upstream itself waits 10 s for a request; the boundary's 1 s idle timeout must close
    // the silent connection long before that.
    let o = net.run_sh(
        &["--idle-timeout", "1"],
        &format!(
            "python3 -c '
import socket, time
s = socket.create_connection((\"{UPSTREAM_V4}\", 80), timeout=30)
t = time.monotonic()
try:
    data = s.recv(100)
except OSError:
    data = b\"\"
print(\"closed\", repr(data), round(time.monotonic() - t, 1))
'"
        ),
    );
    let s = stdout(&o);
    let secs: f64 = s
        .split_whitespace()
        .last()
        .unwrap_or("99")
        .parse()
        .unwrap_or(99.0);
    assert!(s.starts_with("closed b''"), "{s}\n{}", stderr(&o));
    assert!((0.9..8.0).contains(&secs), "closed after {secs} s: {s}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn https_passes_through_the_relay_untouched() {
    let net = FakeInternet::with_tls(&[80], &[], &[443]);
    let ca = net.ca_file();
    let mount = format!("{}:/ca:ro", ca.parent().unwrap().display());
    let o = net.run_sh(
        &["--mount", &mount],
        "curl -sS -m 5 --cacert /ca/ca.pem https://api.openai.com/; \
         curl -sS -m 5 -6 --cacert /ca/ca.pem https://api.openai.com/; \
         python3 -c 'import ssl, urllib.request; ctx = ssl.create_default_context(cafile=\"/ca/ca.pem\"); print(urllib.request.urlopen(\"https://api.openai.com/\", context=ctx, timeout=5).read().decode(), end=\"\")'",
    );
    let s = stdout(&o);
    assert_eq!(
        s.matches("sni=api.openai.com").count(),
        3,
        "{s}\n{}",
        stderr(&o)
    );
    assert!(s.contains(&format!("tls local={UPSTREAM_V4}:443")), "{s}");
    assert!(s.contains(&format!("tls local=[{UPSTREAM_V6}]:443")), "{s}");
}
