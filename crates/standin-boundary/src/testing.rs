//! An in-memory harness for the inspected-HTTP path (not an API; hidden from the docs).
//!
//! [`exchange`] runs the real path of one inspected connection (hyper's server on the
//! sandbox side, the boundary's checks, rewriting, body scanning and response scrubbing,
//! hyper's client towards the destination) over in-memory streams, with the secrets, server
//! name and pinned names a [`Case`] gives. It returns what the destination received, what the
//! sandbox received back, whether the connection was blocked, and the events. No namespace,
//! no socket, no root: HTTP semantics are tested here in milliseconds, and end-to-end tests
//! keep what only real clients, real TLS and real DNS can show. Run it under a runtime with
//! paused time: stalls and timeouts then pass at once.

use crate::config::BoundaryConfig;
use crate::conn::ConnCtx;
use crate::events::{Event, EventSink};
use crate::http::Proto;
use crate::io::Abort;
use crate::state::SandboxState;
use standin_policy::egress::DomainName;
use standin_policy::secrets::{Refusal, SecretSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How the in-memory destination answers each request head it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// `200 OK` with the body `ok`.
    Ok,
    /// `200 OK` whose body is the request head as received (an echo of what it was sent).
    EchoHead,
    /// The same echo as a JSON string, escaped as some encoders do unasked (PHP's `/` as
    /// `\/`, Java's and .NET's "safe" modes): `/` as `\/`, every other character that is not
    /// a letter or digit as `\u00XX`.
    EchoHeadAsJson,
}

/// `bytes` as a JSON string, escaped as [`Destination::EchoHeadAsJson`] says.
fn json_escape_everything(bytes: &[u8]) -> Vec<u8> {
    let mut out = b"\"".to_vec();
    for &b in bytes {
        match b {
            b'/' => out.extend_from_slice(b"\\/"),
            b if b.is_ascii_alphanumeric() => out.push(b),
            b => out.extend_from_slice(format!("\\u{b:04X}").as_bytes()),
        }
    }
    out.push(b'"');
    out
}

/// One inspected connection to test.
#[derive(Debug, Clone)]
pub struct Case {
    /// The sandbox's secrets.
    pub secrets: Arc<SecretSet>,
    /// Intercepted TLS with a verified upstream (`false`: plain HTTP).
    pub tls: bool,
    /// The TLS server name (with `tls`; `None`: the sandbox dialed an address).
    pub sni: Option<String>,
    /// Names this sandbox resolved to the dialed address.
    pub pinned: Vec<String>,
    /// The sandbox speaks HTTP/2 (else HTTP/1.1); the destination speaks HTTP/1.1.
    pub h2: bool,
    /// How the destination answers.
    pub destination: Destination,
    /// The sandbox's bytes are written in pieces of at most this many bytes (`0`: at once).
    pub write_size: usize,
    /// How refused requests are answered.
    pub refusal: Refusal,
}

impl Case {
    /// Intercepted TLS to `sni`, which this sandbox resolved, over HTTP/1.1, answered `200`.
    pub fn tls(secrets: Arc<SecretSet>, sni: &str) -> Case {
        Case {
            secrets,
            tls: true,
            sni: Some(sni.to_owned()),
            pinned: vec![sni.to_owned()],
            h2: false,
            destination: Destination::Ok,
            write_size: 0,
            refusal: Refusal::Reset,
        }
    }

    /// Plain HTTP to an address this sandbox resolved `name` to.
    pub fn plain(secrets: Arc<SecretSet>, name: &str) -> Case {
        Case {
            tls: false,
            sni: None,
            ..Case::tls(secrets, name)
        }
    }
}

/// What one connection did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every byte the destination received.
    pub upstream_received: Vec<u8>,
    /// Every byte the sandbox received back.
    pub client_received: Vec<u8>,
    /// Whether the boundary blocked the connection.
    pub blocked: bool,
    /// The events the connection produced.
    pub events: Vec<Event>,
}

impl Outcome {
    /// What the destination received, as text.
    pub fn upstream_text(&self) -> String {
        String::from_utf8_lossy(&self.upstream_received).into_owned()
    }

    /// What the sandbox received, as text.
    pub fn client_text(&self) -> String {
        String::from_utf8_lossy(&self.client_received).into_owned()
    }

    /// The events as JSON lines (as the events file has them).
    pub fn events_json(&self) -> String {
        self.events
            .iter()
            .filter_map(|e| serde_json::to_string(e).ok())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The address every case dials.
pub const DST: ([u8; 4], u16) = ([203, 0, 113, 7], 443);

/// Serve `input` as the sandbox's side of one inspected connection described by `case`.
pub async fn exchange(case: &Case, input: &[u8]) -> Outcome {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = {
        let events = events.clone();
        EventSink::new(vec![Box::new(move |e: &Event| {
            if let Ok(mut l) = events.lock() {
                l.push(e.clone());
            }
        })])
    };
    let config = BoundaryConfig {
        sandbox_id: "test".into(),
        secrets: Some(case.secrets.clone()),
        refusal: case.refusal,
        events: sink,
        ..BoundaryConfig::default()
    };
    let state = Arc::new(SandboxState::new(config, Vec::new()));
    let names = |v: &[String]| -> Vec<DomainName> {
        v.iter().filter_map(|n| DomainName::parse(n).ok()).collect()
    };
    let sni = case.sni.as_deref().and_then(|s| DomainName::parse(s).ok());
    let dst: SocketAddr = DST.into();
    let ctx = Arc::new(ConnCtx::new(
        state,
        dst,
        names(&case.pinned),
        if case.tls { sni } else { None },
        case.tls,
        Arc::new(Abort::default()),
    ));

    let (guest, mut sandbox) = tokio::io::duplex(64 * 1024);
    let (upstream, destination) = tokio::io::duplex(64 * 1024);
    let input = input.to_vec();
    let write_size = case.write_size;
    // The sandbox writes its bytes and keeps its side open (a client that half-closes may
    // get no answer) until the boundary closes the connection: on a block, or at the idle
    // keep-alive timeout, which paused time reaches at once.
    let client = tokio::spawn(async move {
        let (mut rd, mut wr) = tokio::io::split(&mut sandbox);
        let write = async {
            let size = if write_size == 0 {
                input.len().max(1)
            } else {
                write_size
            };
            for piece in input.chunks(size) {
                if wr.write_all(piece).await.is_err() {
                    return;
                }
                wr.flush().await.ok();
                tokio::task::yield_now().await;
            }
        };
        let mut got = Vec::new();
        let _ = tokio::join!(write, rd.read_to_end(&mut got));
        got
    });
    let server = tokio::spawn(destination_task(destination, case.destination));
    let guest_proto = if case.h2 { Proto::H2 } else { Proto::H1 };
    let served = crate::http::serve(guest, guest_proto, upstream, Proto::H1, ctx.clone());
    // Paused time: a wait with nothing left to do ends here instead of hanging.
    let _ = tokio::time::timeout(Duration::from_secs(600), served).await;
    let upstream_received = match tokio::time::timeout(Duration::from_secs(600), server).await {
        Ok(Ok(got)) => got,
        _ => Vec::new(),
    };
    let client_received = match tokio::time::timeout(Duration::from_secs(600), client).await {
        Ok(Ok(got)) => got,
        _ => Vec::new(),
    };
    let events = events.lock().map(|e| e.clone()).unwrap_or_default();
    Outcome {
        upstream_received,
        client_received,
        blocked: ctx.is_blocked(),
        events,
    }
}

/// An HTTP/1.1 destination: one answer per request head (bodies are not parsed, so a test
/// request's body must not itself contain a blank line).
async fn destination_task(mut end: tokio::io::DuplexStream, mode: Destination) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let mut answered = 0;
    loop {
        match end.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        let heads: Vec<usize> = got
            .windows(4)
            .enumerate()
            .filter(|(_, w)| w == b"\r\n\r\n")
            .map(|(i, _)| i + 4)
            .collect();
        while answered < heads.len() {
            let start = if answered == 0 {
                0
            } else {
                heads[answered - 1]
            };
            let head = &got[start..heads[answered]];
            answered += 1;
            let json;
            let body: &[u8] = match mode {
                Destination::Ok => b"ok",
                Destination::EchoHead => head,
                Destination::EchoHeadAsJson => {
                    json = json_escape_everything(head);
                    &json
                }
            };
            let mut resp =
                format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
            resp.extend_from_slice(body);
            if end.write_all(&resp).await.is_err() {
                return got;
            }
        }
    }
    got
}
