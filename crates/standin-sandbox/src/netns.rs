//! Network namespace setup, run by stage1 inside the sandbox's fresh user+network namespaces.
//!
//! Captured mode: `lo` up, a veth pair whose two ends both stay in the namespace (the sandbox
//! needs a non-loopback route for IPv4 redirection to work; a route via `lo` does not), its
//! addresses and default routes, the capture ruleset, then the listeners the host side will
//! serve. The listeners are created here, inside the namespace, and handed to the supervisor
//! over the control socket, so the supervisor never has to enter the namespace.

use crate::capture_rules::{self, DNS_PORT, RELAY_PORT};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

/// The sandbox's own IPv4 address (on `sbx0`).
pub const SANDBOX_V4: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
/// The address written to the sandbox's `resolv.conf` (any address works: port 53 is
/// captured whatever the destination).
pub const RESOLVER_V4: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);
/// The sandbox's own IPv6 address (on `sbx0`).
pub const SANDBOX_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x200, 0, 0, 0, 0, 0, 1);

/// Addresses that belong to the sandbox itself; the boundary refuses them as destinations.
pub fn sandbox_addresses() -> Vec<IpAddr> {
    vec![
        IpAddr::V4(SANDBOX_V4),
        IpAddr::V4(RESOLVER_V4),
        IpAddr::V6(SANDBOX_V6),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0x200, 0, 0, 0, 0, 0, 2)),
    ]
}

/// The listening sockets created inside the sandbox's network namespace.
#[derive(Debug)]
pub struct CaptureSockets {
    /// TCP relay listener on `127.0.0.1`.
    pub relay_v4: OwnedFd,
    /// TCP relay listener on `::1`.
    pub relay_v6: OwnedFd,
    /// UDP DNS socket on `127.0.0.1`.
    pub dns_udp_v4: OwnedFd,
    /// UDP DNS socket on `::1`.
    pub dns_udp_v6: OwnedFd,
    /// TCP DNS listener on `127.0.0.1`.
    pub dns_tcp_v4: OwnedFd,
    /// TCP DNS listener on `::1`.
    pub dns_tcp_v6: OwnedFd,
}

impl CaptureSockets {
    /// Number of descriptors, in wire order.
    pub const COUNT: usize = 6;

    pub(crate) fn into_vec(self) -> Vec<OwnedFd> {
        vec![
            self.relay_v4,
            self.relay_v6,
            self.dns_udp_v4,
            self.dns_udp_v6,
            self.dns_tcp_v4,
            self.dns_tcp_v6,
        ]
    }

    pub(crate) fn from_vec(fds: Vec<OwnedFd>) -> Option<CaptureSockets> {
        let [
            relay_v4,
            relay_v6,
            dns_udp_v4,
            dns_udp_v6,
            dns_tcp_v4,
            dns_tcp_v6,
        ]: [OwnedFd; 6] = fds.try_into().ok()?;
        Some(CaptureSockets {
            relay_v4,
            relay_v6,
            dns_udp_v4,
            dns_udp_v6,
            dns_tcp_v4,
            dns_tcp_v6,
        })
    }
}

/// Bring up `lo` only (`--no-network`).
pub fn configure_loopback_only() -> Result<(), String> {
    run_tool("ip", &["-batch", "-"], "link set lo up\n")
}

/// Configure capture and create the listeners.
pub fn configure_capture() -> Result<CaptureSockets, String> {
    let batch = format!(
        "link set lo up\n\
         link add sbx0 type veth peer name sbx1\n\
         link set sbx1 up\n\
         link set sbx0 up\n\
         addr add {SANDBOX_V4}/30 dev sbx0\n\
         addr add {SANDBOX_V6}/64 dev sbx0 nodad\n\
         route add default dev sbx0\n\
         route add ::/0 dev sbx0\n"
    );
    // The ruleset does not refer to the interfaces, so both tools run at once.
    let ip = start_tool("ip", &["-batch", "-"], &batch)?;
    let nft = start_tool("nft", &["-f", "-"], &capture_rules::ruleset());
    let ip_done = finish_tool("ip", ip);
    nft.and_then(|child| finish_tool("nft", child))?;
    ip_done?;
    bind_listeners("the sandbox")
}

/// Install the pod capture ruleset ([`capture_rules::pod_ruleset`]) in the current network
/// namespace (needs `CAP_NET_ADMIN` there): `standin boundary init`.
pub fn install_pod_capture(exempt_uid: u32) -> Result<(), String> {
    run_tool("nft", &["-f", "-"], &capture_rules::pod_ruleset(exempt_uid))
}

/// Whether the pod capture table is present in the current network namespace (`None` when
/// that cannot be told: listing needs `CAP_NET_ADMIN` too).
pub fn pod_capture_installed() -> Option<bool> {
    let path = find_tool("nft").ok()?;
    let out = Command::new(path)
        .args(["list", "table", "inet", capture_rules::POD_TABLE])
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if out.status.success() {
        return Some(true);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    err.contains("No such file or directory").then_some(false)
}

/// Create the six capture listeners in the current network namespace, on the loopback
/// addresses and the ports the capture rules redirect to; `place` names it in errors.
pub fn bind_listeners(place: &str) -> Result<CaptureSockets, String> {
    let lo4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let lo6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let tcp = |ip, port| -> Result<OwnedFd, String> {
        TcpListener::bind(SocketAddr::new(ip, port))
            .map(OwnedFd::from)
            .map_err(|e| format!("cannot listen on {ip} port {port} in {place}: {e}"))
    };
    let udp = |ip, port| -> Result<OwnedFd, String> {
        UdpSocket::bind(SocketAddr::new(ip, port))
            .map(OwnedFd::from)
            .map_err(|e| format!("cannot bind UDP {ip} port {port} in {place}: {e}"))
    };
    Ok(CaptureSockets {
        relay_v4: tcp(lo4, RELAY_PORT)?,
        relay_v6: tcp(lo6, RELAY_PORT)?,
        dns_udp_v4: udp(lo4, DNS_PORT)?,
        dns_udp_v6: udp(lo6, DNS_PORT)?,
        dns_tcp_v4: tcp(lo4, DNS_PORT)?,
        dns_tcp_v6: tcp(lo6, DNS_PORT)?,
    })
}

/// Run `ip` or `nft` with `input` on stdin and wait for it.
fn run_tool(tool: &str, args: &[&str], input: &str) -> Result<(), String> {
    let child = start_tool(tool, args, input)?;
    finish_tool(tool, child)
}

/// Start `ip` or `nft` (from the usual sbin directories) and feed it `input`.
fn start_tool(tool: &str, args: &[&str], input: &str) -> Result<std::process::Child, String> {
    let path = find_tool(tool)?;
    let mut child = Command::new(&path)
        .args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    if let Some(mut stdin) = child.stdin.take()
        && let Err(e) = stdin.write_all(input.as_bytes())
    {
        // The tool stopped reading (it failed early): its own message says why, not the
        // broken pipe.
        drop(stdin);
        return Err(match finish_tool(tool, child) {
            Err(why) => why,
            Ok(()) => format!("{tool} exited before reading its input ({e})"),
        });
    }
    Ok(child)
}

/// `ip` or `nft`, from the usual sbin directories (never from `PATH`).
fn find_tool(tool: &str) -> Result<std::path::PathBuf, String> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| std::path::Path::new(d).join(tool))
        .find(|p| p.exists())
        .ok_or_else(|| missing_tool_hint(tool))
}

fn finish_tool(tool: &str, child: std::process::Child) -> Result<(), String> {
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{tool}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{tool} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn missing_tool_hint(tool: &str) -> String {
    let package = if tool == "nft" {
        "nftables"
    } else {
        "iproute2"
    };
    let alternative = if tool == "nft" {
        ", or run with --no-network"
    } else {
        ""
    };
    format!(
        "`{tool}` was not found in /usr/sbin, /sbin, /usr/bin or /bin; standin needs it to set up \
         the sandbox's network. Install it (Debian/Ubuntu: `apt-get install {package}`){alternative}"
    )
}

/// Move the calling thread into the network namespace at `path` (a `/proc/PID/ns/net` or a
/// bind mount of one, as `ip netns` makes). Call it before any other thread is started:
/// threads started later inherit it, threads already running do not.
pub fn enter_netns(path: &std::path::Path) -> Result<(), String> {
    let ns = std::fs::File::open(path)
        .map_err(|e| format!("opening the network namespace {}: {e}", path.display()))?;
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
        format!(
            "entering the network namespace {}: {e} (it needs CAP_SYS_ADMIN; in a pod, leave \
             out --netns: the sidecar already shares the pod's namespace)",
            path.display()
        )
    })
}
