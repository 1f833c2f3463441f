//! Health endpoints of a pod boundary, on an address of their own: `GET /livez` answers 200
//! while the process serves; `GET /readyz` answers 200 while the boundary serves the pod and
//! 503 before that, after a block-and-terminate, and while shutting down. Anything else is
//! 404. HTTP/1.1 through hyper; nothing about the pod's traffic is revealed.

use crate::error::Error;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Readiness, as the health endpoint reports it.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
}

impl Health {
    /// Report ready (or not) from now on.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn answer(&self, path: &str) -> (StatusCode, &'static str) {
        match path {
            "/livez" => (StatusCode::OK, "ok\n"),
            "/readyz" if self.is_ready() => (StatusCode::OK, "ready\n"),
            "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
            _ => (StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

/// Serve the endpoints on `addr` until the returned task is aborted.
pub(super) async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Error::Io(std::io::Error::other(format!(
            "cannot listen on {addr} for health checks (--health): {e}"
        )))
    })?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let health = health.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (status, text) = if req.method() == hyper::Method::GET {
                            health.answer(req.uri().path())
                        } else {
                            (StatusCode::METHOD_NOT_ALLOWED, "GET only\n")
                        };
                        let mut resp =
                            Response::new(Full::new(Bytes::from_static(text.as_bytes())));
                        *resp.status_mut() = status;
                        async move { Ok::<_, std::convert::Infallible>(resp) }
                    });
                let io = hyper_util::rt::TokioIo::new(stream);
                let conn = hyper::server::conn::http1::Builder::new()
                    .max_buf_size(8 * 1024)
                    .serve_connection(io, service);
                // A probe that hangs is cut off; the endpoint answers at once.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), conn).await;
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_the_flag_and_liveness_does_not() {
        let h = Health::default();
        assert_eq!(h.answer("/livez").0, StatusCode::OK);
        assert_eq!(h.answer("/readyz").0, StatusCode::SERVICE_UNAVAILABLE);
        h.set_ready(true);
        assert_eq!(h.answer("/readyz").0, StatusCode::OK);
        assert_eq!(h.answer("/metrics").0, StatusCode::NOT_FOUND);
        h.set_ready(false);
        assert_eq!(h.answer("/readyz").0, StatusCode::SERVICE_UNAVAILABLE);
    }
}
