//! The DNS listener. Until the DNS forwarder lands, every query is answered `SERVFAIL` at
//! once, with its question echoed, so resolvers accept the answer and fail fast instead of
//! retrying into a timeout.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// Largest DNS message accepted over UDP or TCP.
pub const MAX_DNS_MESSAGE: usize = 4096;
const HEADER: usize = 12;
const RCODE_SERVFAIL: u8 = 2;

/// Serve UDP queries.
pub async fn serve_udp(sock: UdpSocket) {
    let mut buf = vec![0u8; MAX_DNS_MESSAGE];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(reply) = servfail(&buf[..n]) {
            let _ = sock.send_to(&reply, peer).await;
        }
    }
}

/// Serve TCP queries (length-prefixed).
pub async fn serve_tcp(listener: TcpListener) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_DNS_MESSAGE];
            loop {
                let Ok(len) = stream.read_u16().await else {
                    return;
                };
                let len = usize::from(len);
                if len > MAX_DNS_MESSAGE || stream.read_exact(&mut buf[..len]).await.is_err() {
                    return;
                }
                let Some(reply) = servfail(&buf[..len]) else {
                    return;
                };
                let mut out = Vec::with_capacity(reply.len() + 2);
                out.extend_from_slice(&(reply.len() as u16).to_be_bytes());
                out.extend_from_slice(&reply);
                if stream.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Build a SERVFAIL answer to `query`: same ID, opcode, RD and question; no records.
/// `None` for anything that is not a one-question query.
pub fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < HEADER || query[2] & 0x80 != 0 {
        return None;
    }
    let qdcount = u16::from_be_bytes([query[4], query[5]]);
    if qdcount != 1 {
        return None;
    }
    let end = question_end(query, HEADER)?;
    let mut reply = query[..end].to_vec();
    reply[2] = 0x80 | (query[2] & 0x79); // QR, keep opcode and RD, clear AA/TC
    reply[3] = 0x80 | RCODE_SERVFAIL; // RA
    reply[6..12].fill(0); // ANCOUNT, NSCOUNT, ARCOUNT
    Some(reply)
}

/// Offset just past the question starting at `pos` (an uncompressed name, type, class).
fn question_end(msg: &[u8], mut pos: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = usize::from(*msg.get(pos)?);
        if len == 0 {
            let end = pos + 1 + 4;
            return (end <= msg.len()).then_some(end);
        }
        if len & 0xc0 != 0 {
            return None;
        }
        pos += 1 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servfail_echoes_question() {
        // id 0x1234, RD, 1 question: example.com A IN
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        q.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        q.extend_from_slice(&[0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 0]); // EDNS OPT
        let r = servfail(&q).unwrap();
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[2], 0x81);
        assert_eq!(r[3] & 0x0f, RCODE_SERVFAIL);
        assert_eq!(&r[4..6], &[0, 1]);
        assert_eq!(&r[6..12], &[0; 6]);
        assert_eq!(r.len(), 12 + 17);
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(servfail(&[]).is_none());
        assert!(servfail(&[0; 11]).is_none());
        assert!(servfail(&[0, 0, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0]).is_none());
        assert!(servfail(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63]).is_none());
        assert!(servfail(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0]).is_none());
    }
}
