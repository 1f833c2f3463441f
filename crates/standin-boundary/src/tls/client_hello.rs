//! Reading the server name (SNI) from a TLS ClientHello, without consuming it.
//!
//! Hand-written rather than taken from rustls: the relay only *peeks* at the first record of
//! a connection it does not terminate, and must never panic, allocate per byte, or wait
//! forever on hostile input. The parser is bounded by [`MAX_RECORD`] and returns a typed
//! outcome for every input.

/// Largest TLS record (2^14 bytes of payload plus the 5-byte header).
pub(crate) const MAX_RECORD: usize = 16_384 + 5;

/// What the first bytes of a connection are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peeked {
    /// A complete ClientHello with this server name (`None`: no SNI extension).
    Tls(Option<String>),
    /// Looks like TLS but the ClientHello is not complete in these bytes yet.
    NeedMore,
    /// A TLS handshake record that could not be parsed.
    MalformedTls,
    /// Not TLS.
    NotTls,
}

/// Classify `buf`, the first bytes the client sent.
pub fn peek(buf: &[u8]) -> Peeked {
    let Some(&content_type) = buf.first() else {
        return Peeked::NeedMore;
    };
    if content_type != 22 {
        return Peeked::NotTls;
    }
    if buf.len() < 5 {
        return if buf.get(1).is_none_or(|&v| v == 3) {
            Peeked::NeedMore
        } else {
            Peeked::NotTls
        };
    }
    if buf[1] != 3 {
        return Peeked::NotTls;
    }
    let len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
    if len == 0 || len + 5 > MAX_RECORD {
        return Peeked::MalformedTls;
    }
    let Some(record) = buf.get(5..5 + len) else {
        return Peeked::NeedMore;
    };
    match parse_client_hello(record) {
        Some(sni) => Peeked::Tls(sni),
        None => Peeked::MalformedTls,
    }
}

/// A cursor that never reads past its slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|b| usize::from(b[0]))
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(n)
    }
}

/// Whether the complete ClientHello at the start of `buf` offers HTTP/2 by ALPN (`h2`).
/// `false` for anything else, including a ClientHello that [`peek`] would not accept.
pub(crate) fn offers_h2(buf: &[u8]) -> bool {
    let Some(record) = buf
        .get(3..5)
        .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        .and_then(|len| buf.get(5..5 + len))
    else {
        return false;
    };
    let mut h2 = false;
    parse_extensions(record, &mut |ext_type, data| {
        if ext_type == ALPN {
            h2 |= alpn_offers(data, b"h2").unwrap_or(false);
        }
        Some(())
    })
    .is_some()
        && h2
}

/// The ALPN extension's type.
const ALPN: usize = 16;

/// Whether an ALPN extension body lists `proto`; `None` if it is malformed.
fn alpn_offers(data: &[u8], proto: &[u8]) -> Option<bool> {
    let mut list = Reader(Reader(data).vec16()?);
    let mut found = false;
    while !list.0.is_empty() {
        found |= list.vec8()? == proto;
    }
    Some(found)
}

/// Walk a well-formed ClientHello's extensions (the handshake must fit in this record),
/// calling `each(type, data)`; `None` if the hello is malformed or `each` says so.
fn parse_extensions(record: &[u8], each: &mut dyn FnMut(usize, &[u8]) -> Option<()>) -> Option<()> {
    let mut r = Reader(record);
    if r.u8()? != 1 {
        return None; // not a ClientHello
    }
    let body_len = r.u24()?;
    let mut body = Reader(r.take(body_len)?);
    body.take(2 + 32)?; // legacy_version, random
    body.vec8()?; // session id
    body.vec16()?; // cipher suites
    body.vec8()?; // compression methods
    if body.0.is_empty() {
        return Some(()); // no extensions at all
    }
    let mut exts = Reader(body.vec16()?);
    while !exts.0.is_empty() {
        let ext_type = exts.u16()?;
        let data = exts.vec16()?;
        each(ext_type, data)?;
    }
    Some(())
}

/// `Some(sni)` for a well-formed ClientHello (the handshake must fit in this record).
fn parse_client_hello(record: &[u8]) -> Option<Option<String>> {
    let mut sni = None;
    parse_extensions(record, &mut |ext_type, data| {
        if ext_type != 0 {
            return Some(());
        }
        if sni.is_some() {
            return None; // duplicate extension: malformed
        }
        let mut list = Reader(Reader(data).vec16()?);
        while !list.0.is_empty() {
            let name_type = list.u8()?;
            let name = list.vec16()?;
            if name_type == 0 {
                if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) {
                    return None;
                }
                sni = Some(String::from_utf8(name.to_vec()).ok()?);
            }
        }
        Some(())
    })?;
    Some(sni)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ClientHello record with `sni` (and optionally junk extensions first).
    pub(crate) fn client_hello(sni: Option<&str>) -> Vec<u8> {
        let mut exts = Vec::new();
        exts.extend_from_slice(&[0x00, 0x17, 0x00, 0x00]); // extended_master_secret, empty
        if let Some(name) = sni {
            let n = name.as_bytes();
            let mut list = vec![0u8];
            list.extend_from_slice(&(n.len() as u16).to_be_bytes());
            list.extend_from_slice(n);
            let mut data = (list.len() as u16).to_be_bytes().to_vec();
            data.extend_from_slice(&list);
            exts.extend_from_slice(&[0, 0]);
            exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
            exts.extend_from_slice(&data);
        }
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7u8; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
        body.extend_from_slice(&[1, 0]); // null compression
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut hs = vec![1];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    /// First records of real clients connecting to `api.example.com` (captured on loopback:
    /// curl 7.88 with OpenSSL 3, Python 3.11 `ssl`, Node 20 `tls`, Go 1.19 `crypto/tls`,
    /// Java 17 `SSLSocket`).
    const CAPTURED: &[(&str, &[u8])] = &[
        ("curl", include_bytes!("testdata/curl-api-example-com.bin")),
        (
            "python",
            include_bytes!("testdata/python-api-example-com.bin"),
        ),
        ("node", include_bytes!("testdata/node-api-example-com.bin")),
        ("go", include_bytes!("testdata/go-api-example-com.bin")),
        ("java", include_bytes!("testdata/java-api-example-com.bin")),
    ];

    #[test]
    fn reads_the_server_name_of_real_clients() {
        for (client, rec) in CAPTURED {
            assert_eq!(
                peek(rec),
                Peeked::Tls(Some("api.example.com".into())),
                "{client}"
            );
            for cut in 0..rec.len() {
                assert_eq!(peek(&rec[..cut]), Peeked::NeedMore, "{client} cut at {cut}");
            }
            // Bytes after the record (the client's next flight) change nothing.
            let mut more = rec.to_vec();
            more.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
            assert_eq!(
                peek(&more),
                Peeked::Tls(Some("api.example.com".into())),
                "{client}"
            );
        }
    }

    #[test]
    fn tells_whether_a_client_offers_http2() {
        let offers: Vec<(&str, bool)> = CAPTURED.iter().map(|(c, r)| (*c, offers_h2(r))).collect();
        // curl offers h2 and http/1.1; the others were captured without ALPN.
        assert_eq!(
            offers,
            [
                ("curl", true),
                ("python", false),
                ("node", false),
                ("go", false),
                ("java", false)
            ]
        );
        assert!(!offers_h2(&client_hello(Some("a.example"))));
        for cut in 0..CAPTURED[0].1.len() {
            assert!(!offers_h2(&CAPTURED[0].1[..cut]), "cut at {cut}");
        }
    }

    #[test]
    fn finds_the_server_name() {
        let rec = client_hello(Some("api.openai.com"));
        assert_eq!(peek(&rec), Peeked::Tls(Some("api.openai.com".into())));
        assert_eq!(peek(&client_hello(None)), Peeked::Tls(None));
        for cut in 0..rec.len() {
            assert_eq!(peek(&rec[..cut]), Peeked::NeedMore, "cut at {cut}");
        }
    }

    #[test]
    fn classifies_other_input() {
        assert_eq!(peek(b"GET / HTTP/1.1\r\n"), Peeked::NotTls);
        assert_eq!(peek(b"SSH-2.0-OpenSSH"), Peeked::NotTls);
        assert_eq!(peek(&[22, 2, 0, 0, 1, 1]), Peeked::NotTls);
        assert_eq!(peek(&[22, 3, 1, 0, 0]), Peeked::MalformedTls);
        assert_eq!(
            peek(&[22, 3, 1, 0, 4, 2, 0, 0, 0]),
            Peeked::MalformedTls,
            "ServerHello"
        );
        let mut bad = client_hello(Some("a.example"));
        let n = bad.len();
        bad[n - 1] = b' ';
        assert_eq!(peek(&bad), Peeked::MalformedTls, "control/space in name");
        let mut twice = client_hello(Some("a.example"));
        let sni_ext = twice[twice.len() - 16..].to_vec();
        twice.extend_from_slice(&sni_ext); // trailing bytes beyond the handshake length
        assert!(matches!(
            peek(&twice),
            Peeked::Tls(_) | Peeked::MalformedTls
        ));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = peek(&bytes);
        }

        #[test]
        fn mutated_hellos_never_panic(pos in 0usize..80, byte: u8) {
            let mut rec = client_hello(Some("api.openai.com"));
            let i = pos % rec.len();
            rec[i] = byte;
            let _ = peek(&rec);
        }
    }
}
