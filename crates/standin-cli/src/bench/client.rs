//! `standin __bench-client MODE …`: the load generator, run as its own process (directly on
//! the host side, or inside a sandbox through the boundary). Prints one JSON object.

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

struct Opts {
    mode: String,
    host: String,
    port: u16,
    path: String,
    conc: usize,
    secs: f64,
    bytes: usize,
    count: usize,
    auth_env: Option<String>,
    ca: Option<String>,
    server: Option<String>,
    addr: Option<String>,
}

fn parse(args: &[String]) -> anyhow::Result<Opts> {
    let mut o = Opts {
        mode: args.first().cloned().context("mode")?,
        host: "api.openai.com".into(),
        port: 443,
        path: "/tiny".into(),
        conc: 1,
        secs: 2.0,
        bytes: 0,
        count: 200,
        auth_env: None,
        ca: None,
        server: None,
        addr: None,
    };
    let mut it = args[1..].iter();
    while let Some(k) = it.next() {
        let v = it.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--host" => o.host = v.clone(),
            "--port" => o.port = v.parse()?,
            "--path" => o.path = v.clone(),
            "--conc" => o.conc = v.parse()?,
            "--secs" => o.secs = v.parse()?,
            "--bytes" => o.bytes = v.parse()?,
            "--count" => o.count = v.parse()?,
            "--auth-env" => o.auth_env = Some(v.clone()),
            "--ca" => o.ca = Some(v.clone()),
            "--server" => o.server = Some(v.clone()),
            "--addr" => o.addr = Some(v.clone()),
            _ => bail!("unknown option {k}"),
        }
    }
    Ok(o)
}

/// Entry point of the hidden subcommand.
pub(crate) fn main(args: &[String]) -> i32 {
    let rt = match crate::new_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench client: {e}");
            return 1;
        }
    };
    match rt.block_on(run(args)) {
        Ok(json) => {
            println!("{json}");
            0
        }
        Err(e) => {
            eprintln!("bench client: {e:#}");
            1
        }
    }
}

/// TLS handshakes that resumed an earlier session (no certificate sent or verified).
static RESUMED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(o: &Opts, tls: &Arc<rustls::ClientConfig>, host: &str) -> anyhow::Result<Sender> {
    // `--addr` dials a fixed address (no DNS on the host side); the name still goes in SNI.
    let tcp = match &o.addr {
        Some(a) => TcpStream::connect((a.as_str(), o.port)).await?,
        None => TcpStream::connect((host, o.port)).await?,
    };
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(host.to_owned())?;
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await?;
    if stream.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
        RESUMED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn request(o: &Opts, host: &str, path: &str, body: Bytes) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(if body.is_empty() { "GET" } else { "POST" })
        .uri(path)
        .header("host", host);
    if let Some(env) = &o.auth_env
        && let Ok(v) = std::env::var(env)
    {
        b = b.header("authorization", format!("Bearer {v}"));
    }
    b.body(Full::new(body)).unwrap_or_default()
}

async fn one(sender: &mut Sender, req: Request<Full<Bytes>>) -> anyhow::Result<usize> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    if !resp.status().is_success() {
        bail!("status {}", resp.status());
    }
    Ok(resp.into_body().collect().await?.to_bytes().len())
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn run(args: &[String]) -> anyhow::Result<String> {
    let mut o = parse(args)?;
    // Throughput runs resolve the name once, like a client with a DNS cache: the cost of a
    // lookup is its own row (`dns`), and "direct" dials a fixed address too.
    if o.addr.is_none() && matches!(o.mode.as_str(), "keepalive" | "newconn" | "idle") {
        let addr = tokio::net::lookup_host((o.host.as_str(), o.port))
            .await?
            .next()
            .with_context(|| format!("{} has no address", o.host))?;
        o.addr = Some(addr.ip().to_string());
    }
    let mut extra = Vec::new();
    if let Some(ca) = &o.ca {
        extra = standin_boundary::read_ca_file(std::path::Path::new(ca))?;
    }
    let mut cfg = (*standin_boundary::client_config(&extra)?).clone();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tls = Arc::new(cfg);
    let o = Arc::new(o);
    match o.mode.as_str() {
        "keepalive" | "newconn" => {
            let deadline = Instant::now() + Duration::from_secs_f64(o.secs);
            let start = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..o.conc {
                let (o, tls) = (o.clone(), tls.clone());
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut sender = None;
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        if sender.is_none() || o.mode == "newconn" {
                            sender = Some(connect(&o, &tls, &o.host).await?);
                        }
                        let s = sender.as_mut().context("connected")?;
                        one(s, request(&o, &o.host, &o.path, Bytes::new())).await?;
                        lat.push(t.elapsed().as_micros() as u64);
                    }
                    anyhow::Ok(lat)
                }));
            }
            let mut lat = Vec::new();
            for t in tasks {
                lat.extend(t.await??);
            }
            let secs = start.elapsed().as_secs_f64();
            lat.sort_unstable();
            Ok(format!(
                "{{\"requests\":{},\"rps\":{:.1},\"p50_us\":{},\"p99_us\":{},\"resumed\":{}}}",
                lat.len(),
                lat.len() as f64 / secs,
                percentile(&lat, 0.5),
                percentile(&lat, 0.99),
                RESUMED.load(std::sync::atomic::Ordering::Relaxed)
            ))
        }
        "idle" => {
            // Open `count` connections (64 at a time), one request each, then hold them.
            let sem = Arc::new(tokio::sync::Semaphore::new(64));
            let mut tasks = Vec::new();
            for _ in 0..o.count {
                let (o, tls, sem) = (o.clone(), tls.clone(), sem.clone());
                tasks.push(tokio::spawn(async move {
                    let _permit = sem.acquire().await?;
                    let mut s = connect(&o, &tls, &o.host).await?;
                    one(&mut s, request(&o, &o.host, "/tiny", Bytes::new())).await?;
                    anyhow::Ok(s)
                }));
            }
            let mut held = Vec::new();
            for t in tasks {
                held.push(t.await??);
            }
            println!("connected {}", held.len());
            use std::io::Write;
            let _ = std::io::stdout().flush();
            tokio::time::sleep(Duration::from_secs_f64(o.secs)).await;
            Ok(format!("{{\"held\":{}}}", held.len()))
        }
        "newhost" => {
            let mut lat = Vec::new();
            let tag = std::process::id();
            for i in 0..o.count {
                let host = format!("h{tag}x{i}.bench.example");
                let t = Instant::now();
                let mut s = connect(&o, &tls, &host).await?;
                one(&mut s, request(&o, &host, "/tiny", Bytes::new())).await?;
                lat.push(t.elapsed().as_micros() as u64);
            }
            lat.sort_unstable();
            Ok(format!(
                "{{\"connections\":{},\"p50_us\":{},\"p99_us\":{}}}",
                lat.len(),
                percentile(&lat, 0.5),
                percentile(&lat, 0.99)
            ))
        }
        "download" | "upload" => {
            let mut s = connect(&o, &tls, &o.host).await?;
            let t = Instant::now();
            let n = if o.mode == "download" {
                one(
                    &mut s,
                    request(
                        &o,
                        &o.host,
                        &format!("/bulk?bytes={}", o.bytes),
                        Bytes::new(),
                    ),
                )
                .await?
            } else {
                let body = Bytes::from(vec![b'x'; o.bytes]);
                one(&mut s, request(&o, &o.host, "/upload", body)).await?;
                o.bytes
            };
            let secs = t.elapsed().as_secs_f64();
            Ok(format!(
                "{{\"bytes\":{n},\"mb_per_s\":{:.1}}}",
                n as f64 / secs / 1e6
            ))
        }
        "dns" => {
            use hickory_proto::op::{Message, MessageType, OpCode, Query};
            use hickory_proto::rr::{Name, RecordType};
            let server = o.server.clone().unwrap_or_else(|| {
                std::fs::read_to_string("/etc/resolv.conf")
                    .ok()
                    .and_then(|t| {
                        t.lines().find_map(|l| {
                            l.strip_prefix("nameserver ")
                                .map(|s| format!("{}:53", s.trim()))
                        })
                    })
                    .unwrap_or_else(|| "127.0.0.1:53".into())
            });
            let sock = tokio::net::UdpSocket::bind("0.0.0.0:0").await?;
            sock.connect(&server).await?;
            let mut lat = Vec::new();
            let mut buf = vec![0u8; 2048];
            for i in 0..o.count {
                let mut m = Message::new(i as u16, MessageType::Query, OpCode::Query);
                m.metadata.recursion_desired = true;
                m.add_query(Query::query(
                    Name::from_ascii("api.openai.com.")?,
                    RecordType::A,
                ));
                let raw = m.to_vec()?;
                let t = Instant::now();
                sock.send(&raw).await?;
                tokio::time::timeout(Duration::from_secs(2), sock.recv(&mut buf)).await??;
                lat.push(t.elapsed().as_micros() as u64);
            }
            lat.sort_unstable();
            Ok(format!(
                "{{\"queries\":{},\"p50_us\":{},\"p99_us\":{}}}",
                lat.len(),
                percentile(&lat, 0.5),
                percentile(&lat, 0.99)
            ))
        }
        other => bail!("unknown mode {other}"),
    }
}
