//! Detection: the one place that decides what a connection's first bytes are (a TLS
//! ClientHello and its server name, a `CONNECT`, an HTTP/1 request, or something else), and
//! the bounded reads that get those bytes.
//!
//! Whatever is read here is kept and replayed to the next stage ([`Prefixed`](crate::io::Prefixed)).

use crate::tls::client_hello::{MAX_RECORD, Peeked, peek};
use standin_policy::egress::DomainName;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// How long a connection's first bytes are waited for, when domain rules need the TLS server
/// name or inspection needs the protocol. Server-first protocols (SSH, SMTP) pay this once per
/// connection, and only then.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_millis(250);

/// The first bytes of a connection and what they are.
#[derive(Debug)]
pub(crate) struct Detected {
    /// What was read (replayed upstream).
    pub(crate) head: Vec<u8>,
    /// What the bytes are as far as TLS goes.
    pub(crate) hello: Peeked,
}

/// The protocol a connection is handled as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A TLS ClientHello, with its server name if it sent one.
    Tls(Option<String>),
    /// An HTTP/1 request.
    Http,
    /// Anything else (or nothing within [`HELLO_TIMEOUT`]).
    Opaque,
}

impl Detected {
    /// Nothing was read (no stage needs the first bytes).
    pub(crate) fn nothing_read() -> Detected {
        Detected {
            head: Vec::new(),
            hello: Peeked::NotTls,
        }
    }

    /// Whether the bytes are, or start like, TLS (for the egress policy's TLS rules).
    pub(crate) fn looks_tls(&self) -> bool {
        self.hello != Peeked::NotTls
    }

    /// The ClientHello's server name, if it is a host name.
    pub(crate) fn sni(&self) -> Option<DomainName> {
        match &self.hello {
            Peeked::Tls(Some(name)) => DomainName::parse(name).ok(),
            _ => None,
        }
    }

    /// Whether this is a `CONNECT` request (the sandbox speaks to a proxy).
    pub(crate) fn is_connect(&self) -> bool {
        !matches!(self.hello, Peeked::Tls(_)) && self.head.starts_with(b"CONNECT ")
    }

    /// How the connection is handled (a `CONNECT` counts as HTTP here: see
    /// [`is_connect`](Self::is_connect)).
    pub(crate) fn kind(&self) -> Kind {
        match &self.hello {
            Peeked::Tls(sni) => Kind::Tls(sni.clone()),
            _ if looks_like_http(&self.head) => Kind::Http,
            _ => Kind::Opaque,
        }
    }
}

/// Read until the first TLS record is complete, the bytes are clearly not TLS, the record
/// limit is reached, or [`HELLO_TIMEOUT`] passes. `head` holds bytes already read (after a
/// `CONNECT`, what followed its head).
pub(crate) async fn read_first<S>(stream: &mut S, mut head: Vec<u8>) -> Detected
where
    S: AsyncRead + Unpin,
{
    let deadline = tokio::time::Instant::now() + HELLO_TIMEOUT;
    loop {
        if !head.is_empty() {
            match peek(&head) {
                Peeked::NeedMore if head.len() < MAX_RECORD => {}
                Peeked::NeedMore => {
                    return Detected {
                        head,
                        hello: Peeked::MalformedTls,
                    };
                }
                hello => return Detected { head, hello },
            }
        }
        // Straight into `head` (no chunk buffer in the connection's future).
        head.reserve(4096);
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut head)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => {
                let hello = if head.is_empty() {
                    Peeked::NotTls
                } else {
                    peek(&head)
                };
                return Detected { head, hello };
            }
        }
    }
}

/// The first plaintext bytes inside an intercepted TLS connection (one read, up to
/// [`HELLO_TIMEOUT`]; empty if the client sent nothing by then). `Err`: the read failed.
pub(crate) async fn read_plaintext_head<S>(stream: &mut S) -> std::io::Result<Vec<u8>>
where
    S: AsyncRead + Unpin,
{
    let mut first = vec![0; 4096];
    let n = match tokio::time::timeout(HELLO_TIMEOUT, stream.read(&mut first)).await {
        Ok(r) => r?,
        Err(_) => 0,
    };
    first.truncate(n);
    Ok(first)
}

/// Methods recognised before a whole request line has arrived.
const METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"HEAD ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
    b"PROPFIND ",
    b"PROPPATCH ",
    b"MKCOL ",
    b"COPY ",
    b"MOVE ",
    b"LOCK ",
    b"UNLOCK ",
    b"REPORT ",
    b"SEARCH ",
];

/// Whether `head` starts like an HTTP/1 request: a whole first line `TOKEN SP TARGET SP
/// HTTP/1.x`, or, while the line is incomplete, a well-known method.
pub fn looks_like_http(head: &[u8]) -> bool {
    let Some(end) = head.iter().position(|&b| b == b'\n') else {
        return METHODS.iter().any(|m| head.starts_with(m));
    };
    let line = head[..end].strip_suffix(b"\r").unwrap_or(&head[..end]);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !method.is_empty()
        && method
            .iter()
            .all(|b| b.is_ascii_uppercase() || *b == b'-' || *b == b'_')
        && !target.is_empty()
        && (version == b"HTTP/1.1" || version == b"HTTP/1.0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn recognises_request_lines() {
        assert!(looks_like_http(b"GET / HTTP/1.1\r\n"));
        assert!(looks_like_http(b"POST /x"));
        assert!(!looks_like_http(b"SSH-2.0-OpenSSH"));
        assert!(!looks_like_http(b"\x16\x03\x01"));
        assert!(!looks_like_http(b""));
        assert!(!looks_like_http(b"GE"));
        assert!(!looks_like_http(b"HELLO $MSB_X\n"));
        assert!(looks_like_http(b"BREW /pot HTTP/1.1\r\n"));
        assert!(!looks_like_http(b"BREW /pot"));
    }

    fn detected(head: &[u8]) -> Detected {
        Detected {
            head: head.to_vec(),
            hello: peek(head),
        }
    }

    #[test]
    fn classifies_first_bytes() {
        let hello = crate::tls::client_hello::tests::client_hello(Some("api.example.com"));
        let tls = detected(&hello);
        assert_eq!(tls.kind(), Kind::Tls(Some("api.example.com".into())));
        assert_eq!(
            tls.sni().map(|n| n.to_string()).as_deref(),
            Some("api.example.com")
        );
        assert!(tls.looks_tls() && !tls.is_connect());
        let connect = detected(b"CONNECT api.example.com:443 HTTP/1.1\r\n\r\n");
        assert!(connect.is_connect());
        assert_eq!(connect.kind(), Kind::Http);
        assert_eq!(detected(b"GET / HTTP/1.1\r\n").kind(), Kind::Http);
        assert_eq!(detected(b"SSH-2.0-OpenSSH_9\r\n").kind(), Kind::Opaque);
        let malformed = detected(b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00");
        assert_eq!(malformed.kind(), Kind::Opaque);
        assert!(malformed.looks_tls());
        assert!(!Detected::nothing_read().looks_tls());
    }

    #[tokio::test(start_paused = true)]
    async fn reads_a_hello_that_arrives_in_pieces() {
        let hello = crate::tls::client_hello::tests::client_hello(Some("a.example.com"));
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let (first, rest) = hello.split_at(7);
        client.write_all(first).await.unwrap();
        let rest = rest.to_vec();
        let writer = tokio::spawn(async move {
            tokio::task::yield_now().await;
            client.write_all(&rest).await.unwrap();
            client
        });
        let d = read_first(&mut server, Vec::new()).await;
        assert_eq!(d.head, hello);
        assert_eq!(d.kind(), Kind::Tls(Some("a.example.com".into())));
        drop(writer.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_opaque_after_the_timeout() {
        let (_client, mut server) = tokio::io::duplex(1024);
        let d = read_first(&mut server, Vec::new()).await;
        assert!(d.head.is_empty());
        assert_eq!(d.kind(), Kind::Opaque);
        // Bytes already read are classified without waiting.
        let (_client, mut server) = tokio::io::duplex(1024);
        let d = read_first(&mut server, b"GET / HTTP/1.1\r\n".to_vec()).await;
        assert_eq!(d.kind(), Kind::Http);
    }
}
