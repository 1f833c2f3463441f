//! Checking and rewriting one request: framing, host identity, headers, Basic credentials,
//! query and body.

use super::body::{BodyFilter, ContextRef, ReqBody, ScannedBody};
use super::limits::{MAX_REWRITE_BODY, PREFILL_BYTES, PREFILL_STALL};
use crate::conn::{Blocked, ConnCtx};
use crate::events::Location;
use crate::state::plan::Plan;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Uri};
use http_body::Body;
use hyper::body::Incoming;
use standin_policy::egress::DomainName;
use standin_policy::secrets::scan::{scan_all, scan_name};
use standin_policy::secrets::{Form, Hit, rewrite};
use std::collections::VecDeque;
use std::sync::Arc;

pub(crate) async fn prepare(
    info: &Arc<ConnCtx>,
    req: Request<Incoming>,
) -> Result<(Arc<Plan>, Request<ReqBody>), Blocked> {
    if info.state.is_terminated() {
        return Err(Blocked);
    }
    let (mut parts, body) = req.into_parts();
    check_framing(&parts.headers).map_err(|why| info.refuse(None, &why))?;
    let host_text = host_of(&parts).map_err(|why| info.refuse(None, &why))?;
    let host_ref = Some(host_text.as_str());
    let claim = match DomainName::parse(&host_text) {
        Ok(n) => Some(n),
        Err(_) if host_text.parse::<std::net::IpAddr>().is_ok() => None,
        Err(_) => return Err(info.refuse(host_ref, "the Host header is not a valid host name")),
    };
    let claim = if info.tls {
        match (&info.sni, &claim) {
            (Some(sni), Some(h)) if sni == h => Some(h.clone()),
            (Some(sni), _) => {
                return Err(info.refuse(
                    host_ref,
                    &format!("Host {host_text} does not match the TLS server name {sni}"),
                ));
            }
            // No SNI (the client dialed an address): no name identity.
            (None, _) => None,
        }
    } else {
        claim
    };
    let plan = info.plan(claim.as_ref());
    let scrubbed = !info.values_held(&plan).is_empty();
    if plan.is_inert() && !scrubbed {
        return Ok((plan, Request::from_parts(parts, ReqBody::Incoming(body))));
    }
    if scrubbed {
        // Responses will be scrubbed of real values: they must be readable.
        parts.headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
    }
    let real = info.real();

    // Method (any token is a valid method) and scheme (HTTP/2's `:scheme` is free text).
    scan_all(&plan.violations, parts.method.as_str().as_bytes())
        .and_then(|()| {
            scan_all(
                &plan.violations,
                parts.uri.scheme_str().unwrap_or("").as_bytes(),
            )
        })
        .map_err(|hit| info.violation(&plan, hit, host_ref, Location::Method))?;

    // Headers.
    for (name, value) in parts.headers.iter_mut() {
        let v = value.as_bytes();
        scan_name(&plan.violations, name.as_str().as_bytes())
            .and_then(|()| scan_all(&plan.violations, v))
            .map_err(|hit| info.violation(&plan, hit, host_ref, Location::Header))?;
        let is_auth = name == header::AUTHORIZATION || name == header::PROXY_AUTHORIZATION;
        if is_auth && let Some(creds) = rewrite::basic_credentials(v) {
            let creds = zeroize::Zeroizing::new(creds);
            scan_all(&plan.violations, &creds).map_err(|hit| {
                info.violation(
                    &plan,
                    Hit {
                        form: Form::Base64,
                        ..hit
                    },
                    host_ref,
                    Location::BasicAuth,
                )
            })?;
        }
        let mut new = None;
        if is_auth && !plan.sub_basic.is_empty() {
            new = rewrite::basic_auth(&plan.sub_basic, v, &real);
            // The value goes out inside base64: remember that form, so an echo of it comes
            // back as the sandbox wrote it (the scrubber would not see the raw value).
            if let Some(n) = &new
                && let (Some(sent), Some(original)) =
                    (rewrite::basic_token(n), rewrite::basic_token(v))
            {
                info.remember_sent(sent, original);
            }
        }
        if new.is_none() && !plan.sub_headers.is_empty() {
            new = rewrite::header_value(&plan.sub_headers, v, &real);
        }
        if let Some(n) = new {
            let n = zeroize::Zeroizing::new(n);
            let mut hv = HeaderValue::from_bytes(&n).map_err(|_| {
                info.refuse(
                    host_ref,
                    "a substituted header value is not a valid header value",
                )
            })?;
            hv.set_sensitive(true);
            *value = hv;
        }
    }

    // Request target.
    if let Some(pq) = parts.uri.path_and_query().cloned() {
        scan_all(&plan.violations, pq.path().as_bytes())
            .map_err(|hit| info.violation(&plan, hit, host_ref, Location::Path))?;
        if let Some(q) = pq.query() {
            scan_all(&plan.violations, q.as_bytes())
                .map_err(|hit| info.violation(&plan, hit, host_ref, Location::Query))?;
            if !plan.sub_query.is_empty()
                && let Some(newq) = rewrite::query(&plan.sub_query, q.as_bytes(), &real)
            {
                let mut target = pq.path().as_bytes().to_vec();
                target.push(b'?');
                target.extend_from_slice(&newq);
                let mut up = parts.uri.clone().into_parts();
                up.path_and_query = Some(
                    http::uri::PathAndQuery::from_maybe_shared(Bytes::from(target))
                        .map_err(|_| info.refuse(host_ref, "substituted query is not valid"))?,
                );
                parts.uri = Uri::from_parts(up)
                    .map_err(|_| info.refuse(host_ref, "substituted target is not valid"))?;
            }
        }
    }

    // Body.
    // Whether a body follows comes from hyper's framing, not from headers: an HTTP/2 request
    // body needs no Content-Length (gRPC sends none), and every body is scanned.
    let length = content_length(&parts.headers);
    let body = if body.is_end_stream() {
        ReqBody::Incoming(body)
    } else {
        let encoded = parts
            .headers
            .get(header::CONTENT_ENCODING)
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
        let scan = if encoded {
            plan.encoded_body.clone()
        } else {
            plan.violations.clone()
        };
        let sub = (!encoded && !plan.sub_body.is_empty()).then(|| plan.sub_body.clone());
        if scan.is_empty() && sub.is_none() {
            ReqBody::Incoming(body)
        } else {
            let rewrite_fixed = sub.is_some() && length.is_some();
            let mut scanned = ScannedBody {
                inner: body,
                filter: BodyFilter::new(scan, sub),
                queue: VecDeque::new(),
                queued: 0,
                trailers: None,
                ended: false,
                ctx: ContextRef {
                    plan: plan.clone(),
                    host: host_text.clone(),
                },
                conn: info.clone(),
            };
            let limit = if rewrite_fixed {
                MAX_REWRITE_BODY
            } else {
                PREFILL_BYTES
            };
            let stall = (!rewrite_fixed).then_some(PREFILL_STALL);
            scanned.prefill(limit, stall).await?;
            parts.headers.remove(header::EXPECT);
            if rewrite_fixed {
                if !scanned.ended {
                    return Err(info.refuse(
                        host_ref,
                        "a body with Content-Length over 16 MiB cannot be rewritten",
                    ));
                }
                let mut all = BytesMut::with_capacity(scanned.queued);
                for b in scanned.queue.drain(..) {
                    all.extend_from_slice(&b);
                }
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(all.len()));
                ReqBody::Full(Some(all.freeze()))
            } else {
                ReqBody::Scanned(Box::new(scanned))
            }
        }
    };
    Ok((plan, Request::from_parts(parts, body)))
}

/// Refuse framing the upstream could read differently from us.
pub(crate) fn check_framing(headers: &HeaderMap) -> Result<(), String> {
    let te: Vec<&HeaderValue> = headers.get_all(header::TRANSFER_ENCODING).iter().collect();
    let cl: Vec<&HeaderValue> = headers.get_all(header::CONTENT_LENGTH).iter().collect();
    if !te.is_empty() && !cl.is_empty() {
        return Err("both Transfer-Encoding and Content-Length".into());
    }
    if te.len() > 1
        || te
            .first()
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"chunked"))
    {
        return Err("a Transfer-Encoding other than a single 'chunked'".into());
    }
    if cl.len() > 1 && cl.windows(2).any(|w| w[0] != w[1]) {
        return Err("conflicting Content-Length values".into());
    }
    Ok(())
}

pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

/// The host the request claims: exactly one `Host`, port and trailing dot stripped, and an
/// absolute-form target's authority must agree with it.
pub(crate) fn host_of(parts: &http::request::Parts) -> Result<String, String> {
    let hosts: Vec<&HeaderValue> = parts.headers.get_all(header::HOST).iter().collect();
    if parts.version == http::Version::HTTP_2 && hosts.is_empty() {
        // HTTP/2: `:authority` names the host.
        let auth = parts
            .uri
            .authority()
            .ok_or("an HTTP/2 request without :authority")?;
        return Ok(strip_port(auth.as_str())?.to_ascii_lowercase());
    }
    let [host] = hosts.as_slice() else {
        return Err(format!(
            "{} Host headers (exactly one is required)",
            hosts.len()
        ));
    };
    let host = host
        .to_str()
        .map_err(|_| "a Host header that is not ASCII")?;
    let name = strip_port(host)?;
    if let Some(auth) = parts.uri.authority()
        && !strip_port(auth.as_str())?.eq_ignore_ascii_case(&name)
    {
        return Err(format!(
            "the request target's authority {auth} differs from Host {host}"
        ));
    }
    Ok(name.to_ascii_lowercase())
}

pub(crate) fn strip_port(authority: &str) -> Result<String, String> {
    let a = authority.trim();
    if let Some(rest) = a.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or("an unterminated IPv6 literal in Host")?;
        return Ok(rest[..end].to_owned());
    }
    let host = match a.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => a,
    };
    Ok(host.strip_suffix('.').unwrap_or(host).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(req: Request<()>) -> http::request::Parts {
        req.into_parts().0
    }

    #[test]
    fn host_rules() {
        let p = parts(
            Request::get("/x")
                .header("host", "API.example.com:443")
                .body(())
                .unwrap(),
        );
        assert_eq!(host_of(&p).unwrap(), "api.example.com");
        let p = parts(
            Request::get("http://evil.example/x")
                .header("host", "api.example.com")
                .body(())
                .unwrap(),
        );
        assert!(host_of(&p).is_err());
        let p = parts(
            Request::get("/x")
                .header("host", "a.example")
                .header("host", "b.example")
                .body(())
                .unwrap(),
        );
        assert!(host_of(&p).is_err());
        let p = parts(Request::get("/x").body(()).unwrap());
        assert!(host_of(&p).is_err());
        assert_eq!(strip_port("[2001:db8::1]:443").unwrap(), "2001:db8::1");
        assert_eq!(strip_port("a.example.").unwrap(), "a.example");
    }

    #[test]
    fn framing_rules() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        assert!(check_framing(&h).is_ok());
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        assert!(check_framing(&h).is_err());
        let mut h = HeaderMap::new();
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("gzip, chunked"),
        );
        assert!(check_framing(&h).is_err());
        let mut h = HeaderMap::new();
        h.append(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        h.append(header::CONTENT_LENGTH, HeaderValue::from_static("4"));
        assert!(check_framing(&h).is_err());
    }
}
