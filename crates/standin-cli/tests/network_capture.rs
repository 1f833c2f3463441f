//! The network capture: all TCP reaches the host side with its original destination;
//! nothing leaves any other way. Runs standin inside a fake internet (see support/mod.rs).

mod support;
use support::*;

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn tcp_arrives_with_its_original_destination_v4_and_v6() {
    let net = FakeInternet::new(&[80, 8443], &[]);
    let o = net.run_sh(
        &[],
        &format!(
            "curl -sS -m 5 http://{UPSTREAM_V4}/; curl -sS -m 5 http://{UPSTREAM_V4}:8443/; \
             curl -sS -m 5 'http://[{UPSTREAM_V6}]/'; curl -sS -m 5 'http://[{UPSTREAM_V6}]:8443/'"
        ),
    );
    let s = stdout(&o);
    assert!(o.status.success(), "{s}\n{}", stderr(&o));
    assert!(s.contains(&format!("local={UPSTREAM_V4}:80 ")), "{s}");
    assert!(s.contains(&format!("local={UPSTREAM_V4}:8443 ")), "{s}");
    assert!(s.contains(&format!("local=[{UPSTREAM_V6}]:80 ")), "{s}");
    assert!(s.contains(&format!("local=[{UPSTREAM_V6}]:8443 ")), "{s}");
    // The upstream saw the host side (the client namespace's address), not the sandbox's own
    // addresses: the connection was relayed, not routed.
    assert!(s.contains("peer=192.0.2.2"), "{s}");
    assert!(s.contains("peer=fd99::2"), "{s}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn udp_fails_at_once_and_never_leaves() {
    let net = FakeInternet::new(&[80], &[443, 8053]);
    let o = net.run_sh(
        &[],
        &format!(
            "python3 -c '
import socket
for fam, addr in [(socket.AF_INET, (\"{UPSTREAM_V4}\", 443)), (socket.AF_INET6, (\"{UPSTREAM_V6}\", 443)), (socket.AF_INET, (\"{UPSTREAM_V4}\", 8053))]:
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        s.sendto(b\"quic-initial\", addr); print(\"SENT\", addr)
    except OSError as e:
        print(\"udp\", addr[1], e.errno)
'; curl -sS -m 5 http://{UPSTREAM_V4}/udp-count"
        ),
    );
    let s = stdout(&o);
    assert!(!s.contains("SENT"), "{s}");
    assert_eq!(
        s.matches(" 1\n").count(),
        3,
        "expected EPERM three times:\n{s}\n{}",
        stderr(&o)
    );
    assert!(s.contains("udp=0"), "datagrams reached the upstream:\n{s}");
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn host_local_and_own_addresses_are_refused() {
    let net = FakeInternet::new(&[80], &[]);
    // A server on the client namespace's loopback: the sandbox must not reach it through the
    // boundary (its own 127.0.0.1 is its own loopback; the boundary listener is refused).
    let o = net.run_sh(
        &[],
        "curl -sS -m 5 http://127.0.0.1:15001/ 2>&1; echo rc=$?; \
         curl -sS -m 5 http://10.200.0.2/ 2>&1; echo rc=$?",
    );
    let s = stdout(&o);
    let rcs: Vec<&str> = s.lines().filter_map(|l| l.strip_prefix("rc=")).collect();
    assert_eq!(rcs.len(), 2, "{s}");
    assert!(
        rcs.iter().all(|rc| *rc != "0"),
        "a refused destination answered:\n{s}"
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn in_sandbox_loopback_services_work() {
    let net = FakeInternet::new(&[80], &[]);
    let o = net.run_sh(
        &[],
        "python3 -m http.server 8000 --bind 127.0.0.1 >/dev/null 2>&1 & \
         for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8000/ && break; sleep 0.05; done; \
         curl -sS -m 5 -o /dev/null -w 'code=%{http_code}\\n' http://127.0.0.1:8000/",
    );
    assert!(
        stdout(&o).contains("code=200"),
        "{} {}",
        stdout(&o),
        stderr(&o)
    );
}

#[test]
#[ignore = "needs root (creates network namespaces); .ci/run runs it with --include-ignored"]
fn no_network_means_loopback_only() {
    let net = FakeInternet::new(&[80], &[]);
    let o = net.run_sh(
        &["--no-network"],
        &format!("curl -sS -m 5 http://{UPSTREAM_V4}/ 2>&1; echo rc=$?; ls /sys/class/net 2>/dev/null; cat /proc/net/dev | tail -n +3 | cut -d: -f1"),
    );
    let s = stdout(&o);
    assert!(!s.contains("local="), "{s}");
    assert!(!s.contains("rc=0"), "{s}");
    let ifaces: Vec<&str> = s
        .lines()
        .filter(|l| !l.starts_with("rc=") && !l.contains("curl"))
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, vec!["lo"], "{s}");
}
