//! Translating a checked request between HTTP/1.1 and HTTP/2.

use super::body::ReqBody;
use crate::conn::ConnCtx;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Uri};

/// Connection-specific headers, meaningless (and forbidden in HTTP/2) past one hop.
pub(crate) const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for h in HOP_BY_HOP {
        headers.remove(*h);
    }
    if headers
        .get(header::TE)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"trailers"))
    {
        headers.remove(header::TE);
    }
}

/// Shape a checked request for the upstream's HTTP version.
pub(crate) fn to_version(mut req: Request<ReqBody>, h2: bool, info: &ConnCtx) -> Request<ReqBody> {
    if !h2 && req.version() != http::Version::HTTP_2 {
        // HTTP/1.1 to HTTP/1.1, the common case: nothing to translate.
        *req.version_mut() = http::Version::HTTP_11;
        return req;
    }
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            req.headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| info.dst.to_string());
    let path = req
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    if h2 {
        let scheme = if info.tls { "https" } else { "http" };
        if let Ok(uri) = Uri::builder()
            .scheme(scheme)
            .authority(authority.as_str())
            .path_and_query(path.as_str())
            .build()
        {
            *req.uri_mut() = uri;
        }
        *req.version_mut() = http::Version::HTTP_2;
        strip_hop_by_hop(req.headers_mut());
        req.headers_mut().remove(header::HOST);
    } else {
        if req.version() == http::Version::HTTP_2 {
            if let Ok(uri) = path.parse::<Uri>() {
                *req.uri_mut() = uri;
            }
            if !req.headers().contains_key(header::HOST)
                && let Ok(v) = HeaderValue::from_str(&authority)
            {
                req.headers_mut().insert(header::HOST, v);
            }
        }
        *req.version_mut() = http::Version::HTTP_11;
    }
    req
}
