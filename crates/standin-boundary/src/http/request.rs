//! Checking and rewriting one request: framing, host identity, headers, Basic credentials,
//! query and body.

use super::body::{BodyFilter, ContextRef, ReqBody, ScannedBody};
use super::limits::{MAX_REWRITE_BODY, PREFILL_BYTES, PREFILL_STALL};
use super::sigv4::{Payload, RequestLine, Resign};
use crate::conn::{ConnCtx, Denied};
use crate::events::Location;
use crate::state::plan::Plan;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Uri};
use http_body::Body;
use hyper::body::Incoming;
use standin_policy::egress::DomainName;
use standin_policy::secrets::scan::{scan_all, scan_name};
use standin_policy::secrets::{Form, Hit, SecretSet, aws, basic, rewrite};
use std::collections::VecDeque;
use std::sync::Arc;

/// Check and rewrite one request before anything of it goes upstream. A refusal is
/// reported and returned as [`Denied`]; the caller resets or answers it.
pub(crate) async fn prepare(
    info: &Arc<ConnCtx>,
    req: Request<Incoming>,
) -> Result<(Arc<Plan>, Request<ReqBody>), Denied> {
    if info.state.is_terminated() {
        return Err(Denied {
            text: String::new(),
            answer: false,
        });
    }
    let (mut parts, body) = req.into_parts();
    check_framing(&parts.headers).map_err(|why| info.deny(None, &why))?;
    let host_text = host_of(&parts).map_err(|why| info.deny(None, &why))?;
    let host_ref = Some(host_text.as_str());
    let claim = match DomainName::parse(&host_text) {
        Ok(n) => Some(n),
        Err(_) if host_text.parse::<std::net::IpAddr>().is_ok() => None,
        Err(_) => return Err(info.deny(host_ref, "the Host header is not a valid host name")),
    };
    let claim = if info.tls {
        match (&info.sni, &claim) {
            (Some(sni), Some(h)) if sni == h => Some(h.clone()),
            (Some(sni), _) => {
                return Err(info.deny(
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
    // One snapshot of the values for the whole request (rotation swaps the set, never a
    // value under a request being rewritten); `used` records which secrets went in.
    let values = info.real_values();
    // The head (method, headers, target) is checked and rewritten synchronously; the block
    // ends before the body is awaited.
    let (resign, used) = {
        let used = std::cell::RefCell::new(Vec::<(usize, Location)>::new());
        // Where the rewrite being made is: recorded with each secret it puts in.
        let at = std::cell::Cell::new(Location::Header);
        let real = |i: usize| {
            used.borrow_mut().push((i, at.get()));
            values.get(i)
        };
        let deny_hit = |hit: Hit, location| info.deny_violation(&plan, hit, host_ref, location);

        // Method (any token is a valid method) and scheme (HTTP/2's `:scheme` is free text).
        scan_all(&plan.violations, parts.method.as_str().as_bytes())
            .and_then(|()| {
                scan_all(
                    &plan.violations,
                    parts.uri.scheme_str().unwrap_or("").as_bytes(),
                )
            })
            .map_err(|hit| deny_hit(hit, Location::Method))?;

        // Headers.
        let mut resign: Option<Resign> = None;
        for (name, value) in parts.headers.iter_mut() {
            let v = value.as_bytes();
            scan_name(&plan.violations, name.as_str().as_bytes())
                .and_then(|()| scan_all(&plan.violations, v))
                .map_err(|hit| deny_hit(hit, Location::Header))?;
            let is_auth = name == header::AUTHORIZATION || name == header::PROXY_AUTHORIZATION;
            // Basic credentials, read as leniently as any server would (every reading).
            let readings = if is_auth { basic::readings(v) } else { None };
            for creds in readings.iter().flatten() {
                scan_all(&plan.violations, creds).map_err(|hit| {
                    deny_hit(
                        Hit {
                            form: Form::Base64,
                            ..hit
                        },
                        Location::BasicAuth,
                    )
                })?;
            }
            if is_auth && aws::claims_sigv4(v) {
                if let Some(found) = sigv4_secret(info, &values.0, &plan, v, host_ref)? {
                    if name != header::AUTHORIZATION || resign.is_some() {
                        return Err(info.deny(host_ref, "more than one AWS SigV4 Authorization"));
                    }
                    resign = Some(found);
                }
                continue;
            }
            let mut new = None;
            if is_auth && !plan.sub_basic.is_empty() {
                at.set(Location::BasicAuth);
                new = basic::substitute(&plan.sub_basic, v, &real);
                // The value goes out inside base64: remember that form, so an echo of it comes
                // back as the sandbox wrote it (the scrubber would not see the raw value).
                if let Some(n) = &new
                    && let (Some(sent), Some(original)) = (basic::token(n), basic::token(v))
                {
                    info.remember_sent(sent, original);
                }
                // Fail closed: a placeholder only a lenient decoder finds would reach the
                // server as the placeholder (substitution reads the standard form only).
                if new.is_none()
                    && readings
                        .iter()
                        .flatten()
                        .any(|r| scan_all(&plan.sub_basic, r).is_err())
                {
                    return Err(info.deny(
                        host_ref,
                        "Basic credentials with a placeholder in a form the boundary does not rewrite; send `Basic` and standard, padded base64",
                    ));
                }
            }
            if new.is_none() && !plan.sub_headers.is_empty() {
                at.set(Location::Header);
                new = rewrite::header_value(&plan.sub_headers, v, &real);
            }
            if let Some(n) = new {
                let n = zeroize::Zeroizing::new(n);
                let mut hv = HeaderValue::from_bytes(&n).map_err(|_| {
                    info.deny(
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
                .map_err(|hit| deny_hit(hit, Location::Path))?;
            if let Some(q) = pq.query() {
                scan_all(&plan.violations, q.as_bytes())
                    .map_err(|hit| deny_hit(hit, Location::Query))?;
                presigned(info, &values.0, &plan, q.as_bytes(), host_ref)?;
                at.set(Location::Query);
                if !plan.sub_query.is_empty()
                    && let Some(newq) = rewrite::query(&plan.sub_query, q.as_bytes(), &real)
                {
                    let mut target = pq.path().as_bytes().to_vec();
                    target.push(b'?');
                    target.extend_from_slice(&newq);
                    let mut up = parts.uri.clone().into_parts();
                    up.path_and_query = Some(
                        http::uri::PathAndQuery::from_maybe_shared(Bytes::from(target))
                            .map_err(|_| info.deny(host_ref, "substituted query is not valid"))?,
                    );
                    parts.uri = Uri::from_parts(up)
                        .map_err(|_| info.deny(host_ref, "substituted target is not valid"))?;
                }
            }
        }

        // Require: a host bound to a secret with `require` gets it on every request.
        (resign, used.into_inner())
    };
    let carried = |i: &usize| {
        used.iter().any(|u| u.0 == *i) || resign.as_ref().is_some_and(|r| r.secret == *i)
    };
    if let Some(&missing) = plan.required.iter().find(|i| !carried(i)) {
        let env = values
            .0
            .entries
            .get(missing)
            .map_or("?", |e| e.env_var.as_str());
        return Err(info.deny(
            host_ref,
            &format!(
                "{host_text} must be reached with the managed secret {env} (require), and this request does not carry it"
            ),
        ));
    }

    // Body.
    // Whether a body follows comes from hyper's framing, not from headers: an HTTP/2 request
    // body needs no Content-Length (gRPC sends none), and every body is scanned.
    let length = content_length(&parts.headers);
    // A signed request is read whole when its payload hash must be computed: no
    // `x-amz-content-sha256`, or a body the boundary rewrites under a declared hash.
    let sign_body = resign.is_some()
        && (Resign::needs_body(&parts.headers) || body_rewritten(&plan, &parts.headers));
    let (body, whole) = if body.is_end_stream() {
        (ReqBody::Incoming(body), Some(Bytes::new()))
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
        let rewrite_fixed = sub.is_some() && length.is_some();
        if scan.is_empty() && sub.is_none() && !sign_body {
            (ReqBody::Incoming(body), None)
        } else {
            let whole = rewrite_fixed || sign_body;
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
                    values: values.clone(),
                },
                conn: info.clone(),
                denied: None,
                reported: Vec::new(),
            };
            let limit = if whole {
                MAX_REWRITE_BODY
            } else {
                PREFILL_BYTES
            };
            let stall = (!whole).then_some(PREFILL_STALL);
            scanned.prefill(limit, stall).await?;
            parts.headers.remove(header::EXPECT);
            if whole {
                if !scanned.ended {
                    return Err(info.deny(
                        host_ref,
                        "a body over 16 MiB cannot be rewritten or signed whole",
                    ));
                }
                let mut all = BytesMut::with_capacity(scanned.queued);
                for b in scanned.queue.drain(..) {
                    all.extend_from_slice(&b);
                }
                let all = all.freeze();
                if rewrite_fixed || length.is_some() {
                    parts
                        .headers
                        .insert(header::CONTENT_LENGTH, HeaderValue::from(all.len()));
                }
                (ReqBody::Full(Some(all.clone())), Some(all))
            } else {
                (ReqBody::Scanned(Box::new(scanned)), None)
            }
        }
    };

    // Audit: what this request substitutes in its head (the body reports its own), and
    // placeholders it carries unchanged to a passthrough host.
    if info.state.config.events.is_active() {
        let mut used = used;
        used.extend(resign.as_ref().map(|r| (r.secret, Location::Header)));
        info.report_used(&used, false, host_ref);
        if !plan.passthrough.is_empty() {
            info.report_used(&passthrough_in(&plan, &parts), true, host_ref);
        }
    }

    // AWS SigV4: signed afresh with the real key, now that the body is known.
    if let Some(r) = resign {
        let entry = values.0.entries.get(r.secret);
        let aws = entry.and_then(|e| e.aws.as_ref());
        let (Some(entry), Some(aws)) = (entry, aws) else {
            return Err(info.deny(host_ref, "an AWS secret that no longer exists"));
        };
        let payload = match &whole {
            Some(b) if sign_body => Payload::Bytes(b),
            _ => Payload::AsDeclared,
        };
        let authority = authority_of(&parts).unwrap_or_else(|| host_text.clone());
        let target = parts
            .uri
            .path_and_query()
            .map_or("/".to_owned(), |pq| pq.as_str().to_owned());
        let method = parts.method.as_str().to_owned();
        let line = RequestLine {
            method: &method,
            host: &authority,
            target: &target,
        };
        r.apply(aws, &entry.value, &line, &mut parts.headers, payload)
            .map_err(|why| info.deny(host_ref, &why))?;
    }
    Ok((plan, Request::from_parts(parts, body)))
}

/// The passthrough placeholders in a request head, where they are.
fn passthrough_in(plan: &Plan, parts: &http::request::Parts) -> Vec<(usize, Location)> {
    let pats = &plan.passthrough;
    let mut found: Vec<(usize, Location)> = Vec::new();
    for v in parts.headers.values() {
        found.extend(pats.matches(v.as_bytes()).map(|m| (m.0, Location::Header)));
    }
    if let Some(pq) = parts.uri.path_and_query() {
        found.extend(
            pats.matches(pq.path().as_bytes())
                .map(|m| (m.0, Location::Path)),
        );
        if let Some(q) = pq.query() {
            for (secret, ..) in pats.matches(q.as_bytes()) {
                found.push((secret, Location::Query));
            }
        }
    }
    found
}

/// Whether the boundary substitutes in this request's body (a signed hash must then be
/// computed again).
fn body_rewritten(plan: &Plan, headers: &HeaderMap) -> bool {
    !plan.sub_body.is_empty()
        && headers
            .get(header::CONTENT_ENCODING)
            .is_none_or(|v| v.as_bytes().eq_ignore_ascii_case(b"identity"))
}

/// The authority the client wrote (`Host`, or HTTP/2's `:authority`), port included.
fn authority_of(parts: &http::request::Parts) -> Option<String> {
    parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()))
}

/// An `Authorization` that claims SigV4: the request to re-sign if it is signed with one of
/// this sandbox's AWS credentials and may be re-signed here; a violation if that credential
/// may not go here; a refusal if it names one of them but is malformed. `None`: not ours
/// (forwarded as it is: a signature made with a placeholder reveals nothing).
fn sigv4_secret(
    info: &ConnCtx,
    set: &SecretSet,
    plan: &Plan,
    value: &[u8],
    host: Option<&str>,
) -> Result<Option<Resign>, Denied> {
    let parsed = aws::SigV4Authorization::parse(value);
    let secret = match &parsed {
        Some(a) => set.by_key_id(&a.access_key_id),
        None => set.entries.iter().position(|e| {
            e.aws
                .as_ref()
                .is_some_and(|a| aws::mentions_key_id(value, &a.access_key_id))
        }),
    };
    let Some(secret) = secret else {
        return Ok(None);
    };
    if plan.actions.get(secret).copied().flatten().is_some() {
        return Err(info.deny_violation(
            plan,
            Hit {
                secret,
                form: Form::Raw,
            },
            host,
            Location::Header,
        ));
    }
    if !plan.resign.contains(&secret) {
        // Passthrough, or an allowed host without TLS identity: forwarded unchanged.
        return Ok(None);
    }
    match parsed {
        Some(auth) => Ok(Some(Resign { secret, auth })),
        None => Err(info.deny(
            host,
            "an AWS SigV4 Authorization for a managed credential that does not parse",
        )),
    }
}

/// A presigned URL signed with one of this sandbox's AWS credentials: a violation where the
/// credential may not go, refused where it may (query signatures are not re-signed).
fn presigned(
    info: &ConnCtx,
    set: &SecretSet,
    plan: &Plan,
    query: &[u8],
    host: Option<&str>,
) -> Result<(), Denied> {
    let Some(key) = aws::presigned_key_id(query) else {
        return Ok(());
    };
    let Some(secret) = set.by_key_id(&key) else {
        return Ok(());
    };
    if plan.actions.get(secret).copied().flatten().is_some() {
        return Err(info.deny_violation(
            plan,
            Hit {
                secret,
                form: Form::Raw,
            },
            host,
            Location::Query,
        ));
    }
    if plan.resign.contains(&secret) {
        return Err(info.deny(
            host,
            "a presigned AWS URL (signature in the query) for a managed credential is not re-signed; sign requests in headers instead",
        ));
    }
    Ok(())
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
