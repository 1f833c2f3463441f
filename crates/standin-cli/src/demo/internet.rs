//! The demo's own small internet, built inside this process's private network namespaces:
//! nothing is sent anywhere else.
//!
//! `standin demo` first moves itself into a fresh network namespace (its boundary dials from
//! there). A helper thread creates a second one, the "internet", joined to the first by a veth
//! pair. In it, on public-looking addresses, run a DNS server for the demo names and HTTPS
//! servers (certificates from a demo CA that the boundary is told to trust) that record
//! exactly what they receive. Both namespaces are anonymous: they vanish with the process,
//! however it ends.

use anyhow::{Context, bail};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use standin_boundary::{LeafName, SandboxCa};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The demo's hosts.
pub(crate) const HOSTS: &[(&str, Ipv4Addr)] = &[
    ("api.openai.com", Ipv4Addr::new(45, 90, 1, 10)),
    ("evil.example", Ipv4Addr::new(45, 90, 1, 20)),
    ("traces.example", Ipv4Addr::new(45, 90, 1, 30)),
    ("registry.npmjs.org", Ipv4Addr::new(45, 90, 1, 40)),
];
/// The DNS server.
pub(crate) const DNS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 53);

/// One request a demo host received, exactly as it arrived (after TLS).
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// Which host (by the server name the client used).
    pub host: String,
    /// The request head and body.
    pub text: String,
}

/// The running fake internet.
pub(crate) struct Internet {
    /// Everything received so far.
    pub log: Arc<Mutex<Vec<Received>>>,
    /// The demo CA's certificate (PEM file), for `--upstream-ca`.
    pub ca_file: tempfile::NamedTempFile,
    listeners: Option<(std::net::TcpListener, std::net::UdpSocket)>,
    ca: Arc<SandboxCa>,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (apt-get install iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Internet {
    /// Move this process into a fresh network namespace and build the internet next to it.
    /// Must run before any other thread exists (namespaces are per thread).
    pub(crate) fn build() -> anyhow::Result<Internet> {
        if !nix::unistd::geteuid().is_root() {
            bail!(
                "the demo builds its own network namespaces and needs root (try `sudo standin demo`)"
            );
        }
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .context("creating the demo's network namespace")?;
        ip(&["link", "set", "lo", "up"])?;
        let main_pid = std::process::id().to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let result = (|| -> anyhow::Result<(std::net::TcpListener, std::net::UdpSocket)> {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .context("creating the demo internet's namespace")?;
                ip(&["link", "set", "lo", "up"])?;
                ip(&[
                    "link", "add", "i0", "type", "veth", "peer", "name", "d0", "netns", &main_pid,
                ])?;
                ip(&["addr", "add", "192.0.2.1/24", "dev", "i0"])?;
                ip(&["link", "set", "i0", "up"])?;
                for (_, addr) in HOSTS {
                    ip(&["addr", "add", &format!("{addr}/32"), "dev", "lo"])?;
                }
                let tcp = std::net::TcpListener::bind("0.0.0.0:443")?;
                let udp = std::net::UdpSocket::bind(DNS)?;
                Ok((tcp, udp))
            })();
            let _ = tx.send(result);
            // The sockets keep the namespace alive; this thread is no longer needed.
        });
        let (tcp, udp) = rx.recv().context("the internet thread died")??;
        ip(&["addr", "add", "192.0.2.2/24", "dev", "d0"])?;
        ip(&["link", "set", "d0", "up"])?;
        ip(&["route", "add", "default", "via", "192.0.2.1"])?;
        let ca = Arc::new(SandboxCa::generate("demo-internet")?);
        let mut ca_file = tempfile::NamedTempFile::new()?;
        std::io::Write::write_all(&mut ca_file, ca.cert_pem().as_bytes())?;
        Ok(Internet {
            log: Arc::new(Mutex::new(Vec::new())),
            ca_file,
            listeners: Some((tcp, udp)),
            ca,
        })
    }

    /// Start only the DNS server; the HTTPS listener (`0.0.0.0:443` in the internet) is
    /// returned for the caller to serve.
    pub(crate) fn serve_dns_only(&mut self) -> anyhow::Result<tokio::net::TcpListener> {
        let (tcp, udp) = self.listeners.take().context("already serving")?;
        tcp.set_nonblocking(true)?;
        udp.set_nonblocking(true)?;
        tokio::spawn(serve_dns(tokio::net::UdpSocket::from_std(udp)?));
        Ok(tokio::net::TcpListener::from_std(tcp)?)
    }

    /// The internet's CA (it issues the servers' certificates).
    pub(crate) fn ca(&self) -> Arc<SandboxCa> {
        self.ca.clone()
    }

    /// Start the servers on the current tokio runtime.
    pub(crate) fn serve(&mut self) -> anyhow::Result<()> {
        let (tcp, udp) = self.listeners.take().context("already serving")?;
        tcp.set_nonblocking(true)?;
        udp.set_nonblocking(true)?;
        let tcp = tokio::net::TcpListener::from_std(tcp)?;
        let udp = tokio::net::UdpSocket::from_std(udp)?;
        tokio::spawn(serve_dns(udp));
        let (ca, log) = (self.ca.clone(), self.log.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = tcp.accept().await {
                tokio::spawn(serve_https(stream, ca.clone(), log.clone()));
            }
        });
        Ok(())
    }

    /// What hosts received since `from` (an index into the log).
    pub(crate) fn since(&self, from: usize) -> Vec<Received> {
        self.log
            .lock()
            .map(|l| l[from.min(l.len())..].to_vec())
            .unwrap_or_default()
    }

    /// Number of requests received so far.
    pub(crate) fn count(&self) -> usize {
        self.log.lock().map(|l| l.len()).unwrap_or(0)
    }
}

async fn serve_dns(sock: tokio::net::UdpSocket) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(q) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        let mut m = Message::error_msg(q.metadata.id, q.metadata.op_code, ResponseCode::NoError);
        m.metadata.message_type = MessageType::Response;
        m.metadata.recursion_desired = q.metadata.recursion_desired;
        m.metadata.recursion_available = true;
        m.add_queries(q.queries.iter().cloned());
        let mut known = false;
        for query in &q.queries {
            let name = query
                .name()
                .to_ascii()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            // Any name under bench.example is api.openai.com's address (fresh names for the
            // first-connection benchmark).
            let bench = name.ends_with(".bench.example").then_some(HOSTS[0].1);
            if let Some(addr) = HOSTS
                .iter()
                .find(|(h, _)| *h == name)
                .map(|(_, a)| *a)
                .or(bench)
            {
                let addr = &addr;
                known = true;
                if query.query_type() == RecordType::A {
                    m.add_answer(Record::from_rdata(
                        query.name().clone(),
                        60,
                        RData::A(A(*addr)),
                    ));
                }
            }
        }
        if !known {
            m.metadata.response_code = ResponseCode::NXDomain;
        }
        if let Ok(bytes) = m.to_vec() {
            let _ = sock.send_to(&bytes, peer).await;
        }
    }
}

async fn serve_https(
    stream: tokio::net::TcpStream,
    ca: Arc<SandboxCa>,
    log: Arc<Mutex<Vec<Received>>>,
) -> anyhow::Result<()> {
    let acceptor =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let start = acceptor.await?;
    let host = start.client_hello().server_name().unwrap_or("-").to_owned();
    // This little server speaks HTTP/1.1 only.
    let mut config = (*ca.server_config(&LeafName::Dns(host.clone()))?).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let config = Arc::new(config);
    let mut tls = start.into_stream(config).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        // One request: head, then a Content-Length body.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let n = tls.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let len = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0usize);
        while buf.len() < head_end + len {
            let n = tls.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&buf[..head_end + len]).to_string();
        buf.drain(..head_end + len);
        if let Ok(mut l) = log.lock() {
            l.push(Received {
                host: host.clone(),
                text,
            });
        }
        tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            .await?;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
