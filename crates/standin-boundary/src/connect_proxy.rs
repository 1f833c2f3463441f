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
//! A plain-HTTP forward-proxy request (`GET http://host/…`) is not a tunnel: it goes through
//! the ordinary plain-HTTP path to the address dialed.

use crate::abort::Abort;
use crate::client_hello::{MAX_RECORD, Peeked, peek};
use crate::events::EventKind;
use crate::http::{self, ConnInfo, MAX_HEAD_BYTES, MAX_HEADERS, Proto};
use crate::intercept::{HANDSHAKE_TIMEOUT, connect, looks_like_http, tls};
use crate::prefixed::Prefixed;
use crate::relay::HELLO_TIMEOUT;
use crate::scanned_relay;
use crate::shared::Shared;
use crate::shared_socket::SharedSocket;
use crate::violation::{self, Place};
use standin_policy::egress::{Action, DomainName, Flow, Protocol};
use standin_policy::secrets::scan::{scan_all, scan_name};
use standin_policy::secrets::{Destination, Form, Hit, rewrite};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Handle a connection whose first bytes are a `CONNECT` request. `proxy` is the address the
/// sandbox dialed (only used in events). `None`: refused (the caller resets).
pub async fn handle(
    mut client: SharedSocket,
    proxy: SocketAddr,
    head: Vec<u8>,
    shared: &Arc<Shared>,
    abort: Arc<Abort>,
) -> Option<Arc<ConnInfo>> {
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
    let place = |location| Place {
        addr: proxy,
        sni: None,
        host: None,
        name: None,
        location,
        protocol: "http/1.1",
    };

    // Placeholders in the outer request: nowhere in it may a secret go.
    if shared.secrets.is_some() {
        let plan = shared.plan(&Destination {
            host: None,
            host_pinned: false,
            pinned_names: &[],
            tls: false,
        });
        let mut found: Option<(Hit, &'static str)> = None;
        if let Err(hit) = scan_all(&plan.violations, target.as_bytes()) {
            found = Some((hit, "connect"));
        }
        for h in req.headers.iter() {
            if found.is_some() {
                break;
            }
            if let Err(hit) = scan_name(&plan.violations, h.name.as_bytes())
                .and_then(|()| scan_all(&plan.violations, h.value))
            {
                found = Some((hit, "connect"));
            } else if let Some(creds) = rewrite::basic_credentials(h.value)
                && let Err(hit) = scan_all(&plan.violations, &creds)
            {
                found = Some((
                    Hit {
                        form: Form::Base64,
                        ..hit
                    },
                    "connect",
                ));
            }
        }
        if let Some((hit, location)) = found {
            if let Some(action) = plan.actions.get(hit.secret).copied().flatten() {
                violation::report(shared, hit.secret, hit.form, action, &place(location));
            }
            return None;
        }
    }

    // The target, resolved and checked by the boundary.
    let (host, port) = split_authority(&target)?;
    let (name, ips) = match host.parse::<IpAddr>() {
        Ok(ip) => (None, vec![ip]),
        Err(_) => {
            let name = DomainName::parse(&host).ok()?;
            let ips = crate::dns::resolve(shared, &name).await;
            (Some(name), ips)
        }
    };
    let names: Vec<DomainName> = name.iter().cloned().collect();
    let allowed = ips.iter().copied().find(|&ip| {
        let flow = Flow {
            ip,
            port,
            protocol: Protocol::Tcp,
            names: &names,
            tls: true,
            sni: name.as_ref(),
        };
        crate::guard::check(
            SocketAddr::new(ip, port),
            proxy,
            &shared.config.sandbox_addrs,
        )
        .is_ok()
            && shared
                .config
                .policy
                .evaluate(&flow, &|a| shared.is_host(a))
                .action
                == Action::Allow
    });
    let Some(ip) = allowed else {
        let mut e = shared.event(EventKind::ConnectionDenied, "tcp");
        e.name = Some(host.clone());
        e.addr = ips.first().map(|ip| SocketAddr::new(*ip, port).to_string());
        e.detail = Some(format!("CONNECT {target} via proxy address {proxy}"));
        shared.config.events.emit(e);
        return None;
    };
    let dst = SocketAddr::new(ip, port);
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return None;
    }

    // The tunnel: what the client sends first decides, as on a direct connection.
    let mut rest = buf[head_len..].to_vec();
    let hello = loop {
        match peek(&rest) {
            Peeked::NeedMore if rest.len() < MAX_RECORD => {}
            Peeked::NeedMore => break Peeked::MalformedTls,
            Peeked::NotTls if !rest.is_empty() => break Peeked::NotTls,
            Peeked::NotTls => {}
            other => break other,
        }
        match tokio::time::timeout(HELLO_TIMEOUT, client.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => rest.extend_from_slice(&chunk[..n]),
            _ => break peek(&rest),
        }
    };
    let _ = client.set_nodelay(true);
    match hello {
        Peeked::Tls(sni) => {
            let sni_name = sni.as_deref().and_then(|s| DomainName::parse(s).ok());
            if sni_name != name {
                violation::refused(
                    shared,
                    &Place {
                        addr: dst,
                        sni: sni.as_deref(),
                        host: Some(&host),
                        name: None,
                        location: "connect",
                        protocol: "tcp",
                    },
                    "the TLS server name does not match the CONNECT target",
                );
                return None;
            }
            tls(client, dst, rest, sni, names, shared, abort).await
        }
        _ => {
            let upstream = SharedSocket::new(connect(shared, dst, &names).await?);
            abort.add(&upstream);
            let info = Arc::new(ConnInfo::new(
                shared.clone(),
                dst,
                names,
                None,
                false,
                abort,
            ));
            let http1 = looks_like_http(&rest);
            let guest = Prefixed::new(rest, client);
            if http1 {
                http::serve(guest, Proto::H1, upstream, Proto::H1, info.clone()).await;
            } else {
                scanned_relay::relay(guest, upstream, info.clone()).await;
            }
            Some(info)
        }
    }
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
