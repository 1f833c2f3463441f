//! HTTP proxies inside the sandbox (`HTTPS_PROXY`, `curl -x`): the boundary answers `CONNECT`
//! itself.
//!
//! A tunnel is an opaque path to a name the sandbox chose; left alone it would carry TLS the
//! boundary cannot see into. So the boundary is the proxy: it reads the `CONNECT` request
//! (placeholders anywhere in it, `Proxy-Authorization` included, are violations: a proxy is
//! never a place a secret may go), resolves the target itself (with the sandbox's DNS policy,
//! rebind protection and pins), checks egress policy, answers `200`, and then treats the
//! tunnel like a direct connection to that target: TLS inside is intercepted with the
//! ClientHello's server name required to equal the `CONNECT` host, verified upstream, and
//! subject to the same substitution rules; plain HTTP and other bytes are handled as on a
//! direct connection. The proxy address the sandbox named is never contacted.
//!
//! This stage only opens the tunnel: it returns a [`Tunnel`], and the caller runs detection
//! and dispatch on it as on any connection.
//!
//! A plain-HTTP forward-proxy request (`GET http://host/…`) is not a tunnel: it goes through
//! the ordinary plain-HTTP path to the address dialed.

use super::admit;
use crate::conn::HANDSHAKE_TIMEOUT;
use crate::events::{EventKind, EventProtocol, Location};
use crate::http::{MAX_HEAD_BYTES, MAX_HEADERS};
use crate::io::SharedSocket;
use crate::state::SandboxState;
use crate::state::violation::{self, Place};
use standin_policy::egress::DomainName;
use standin_policy::secrets::scan::{scan_all, scan_name};
use standin_policy::secrets::{Destination, Form, Hit, ViolationAction, basic};
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An open tunnel: the sandbox was told `200`, and what it sends next goes to `dst`.
#[derive(Debug)]
pub(crate) struct Tunnel {
    /// The sandbox's side.
    pub(crate) stream: SharedSocket,
    /// The address the boundary chose for the target (resolved and admitted).
    pub(crate) dst: SocketAddr,
    /// The target's name (`None`: the target was an address).
    pub(crate) name: Option<DomainName>,
    /// The target host as the sandbox wrote it (lower-cased), for events.
    pub(crate) host: String,
    /// Bytes the sandbox sent after the `CONNECT` head.
    pub(crate) rest: Vec<u8>,
}

impl Tunnel {
    /// Whether a TLS ClientHello's server name `sni` may go through this tunnel: it must
    /// name the `CONNECT` target (reported as a refusal otherwise).
    pub(crate) fn admits_sni(&self, state: &SandboxState, sni: Option<&str>) -> bool {
        let sni_name = sni.and_then(|s| DomainName::parse(s).ok());
        if sni_name == self.name {
            return true;
        }
        violation::refused(
            state,
            &Place {
                addr: self.dst,
                sni,
                host: Some(&self.host),
                name: None,
                location: Location::Connect,
                protocol: EventProtocol::Tcp,
            },
            "the TLS server name does not match the CONNECT target",
        );
        false
    }
}

/// Answer the `CONNECT` request that starts `head` on `client`. `proxy` is the address the
/// sandbox dialed (only used in events and as the guard's listener). `None`: refused (the
/// caller resets).
pub(crate) async fn open(
    mut client: SharedSocket,
    proxy: SocketAddr,
    head: Vec<u8>,
    state: &SandboxState,
) -> Option<Tunnel> {
    let mut buf = head;
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let mut chunk = [0u8; 4096];
    let head_len = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return None;
        }
        match tokio::time::timeout_at(deadline, client.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(
        req.parse(&buf[..head_len]),
        Ok(httparse::Status::Complete(_))
    ) || req.method != Some("CONNECT")
    {
        return None;
    }
    let target = req.path.unwrap_or("").to_owned();
    if let Some((hit, action)) = placeholder_in(state, &target, req.headers) {
        if let Some(action) = action {
            violation::report(
                state,
                hit.secret,
                hit.form,
                action,
                &Place {
                    addr: proxy,
                    sni: None,
                    host: None,
                    name: None,
                    location: Location::Connect,
                    protocol: EventProtocol::Http,
                },
            );
        }
        return None;
    }

    // The target, resolved and checked by the boundary.
    let (host, port) = split_authority(&target)?;
    let (name, ips) = match host.parse::<IpAddr>() {
        Ok(ip) => (None, vec![ip]),
        Err(_) => {
            let name = DomainName::parse(&host).ok()?;
            let ips = crate::dns::resolve(state, &name).await;
            (Some(name), ips)
        }
    };
    let allowed = ips
        .iter()
        .copied()
        .find(|&ip| admit::allows_tls(state, SocketAddr::new(ip, port), proxy, name.as_ref()));
    let Some(ip) = allowed else {
        let mut e = state.event(EventKind::ConnectionDenied, EventProtocol::Tcp);
        e.name = Some(host.clone());
        e.addr = ips.first().map(|ip| SocketAddr::new(*ip, port).to_string());
        e.detail = Some(format!("CONNECT {target} via proxy address {proxy}"));
        state.config.events.emit(e);
        return None;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return None;
    }
    Some(Tunnel {
        stream: client,
        dst: SocketAddr::new(ip, port),
        name,
        host,
        rest: buf[head_len..].to_vec(),
    })
}

/// A placeholder anywhere in the `CONNECT` request (target, header names and values, Basic
/// credentials): nowhere in it may a secret go. Returns the hit and the secret's action here.
fn placeholder_in(
    state: &SandboxState,
    target: &str,
    headers: &[httparse::Header<'_>],
) -> Option<(Hit, Option<ViolationAction>)> {
    if !state.has_secrets() {
        return None;
    }
    let plan = state.plan(&Destination {
        host: None,
        host_pinned: false,
        pinned_names: &[],
        tls: false,
    });
    let found = scan_all(&plan.violations, target.as_bytes())
        .err()
        .or_else(|| {
            headers.iter().find_map(|h| {
                if let Err(hit) = scan_name(&plan.violations, h.name.as_bytes())
                    .and_then(|()| scan_all(&plan.violations, h.value))
                {
                    return Some(hit);
                }
                basic::readings(h.value)?.iter().find_map(|creds| {
                    scan_all(&plan.violations, creds).err().map(|hit| Hit {
                        form: Form::Base64,
                        ..hit
                    })
                })
            })
        })?;
    Some((found, plan.actions.get(found.secret).copied().flatten()))
}

/// `host:port` or `[v6]:port` (a CONNECT target); the port is required.
pub fn split_authority(target: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        (h.to_owned(), p)
    } else {
        let (h, p) = target.rsplit_once(':')?;
        (h.to_owned(), p)
    };
    let port = port.parse().ok().filter(|p| *p != 0)?;
    (!host.is_empty()).then_some((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        assert_eq!(
            split_authority("API.example.com:443"),
            Some(("api.example.com".into(), 443))
        );
        assert_eq!(
            split_authority("[2001:db8::1]:8443"),
            Some(("2001:db8::1".into(), 8443))
        );
        assert_eq!(split_authority("example.com"), None);
        assert_eq!(split_authority("example.com:0"), None);
        assert_eq!(split_authority(":443"), None);
    }
}
