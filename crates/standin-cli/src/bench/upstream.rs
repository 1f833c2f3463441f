//! The benchmark's upstream: HTTPS (HTTP/1.1, keep-alive) on the fake internet, with
//! `/tiny` (2 bytes), `/bulk?bytes=N` and `/upload`. It counts requests and checks that each
//! one's `Authorization` carries the real value (so a run proves every request arrived
//! substituted).

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use standin_boundary::{LeafName, SandboxCa};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Request counters.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Requests served.
    pub requests: AtomicU64,
    /// Requests whose Authorization was `Bearer <expected>`.
    pub authorized: AtomicU64,
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

/// Serve `listener` forever.
pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    ca: Arc<SandboxCa>,
    expected: String,
    counters: Arc<Counters>,
) {
    let expected = Arc::new(format!("Bearer {expected}"));
    while let Ok((stream, _)) = listener.accept().await {
        let (ca, expected, counters) = (ca.clone(), expected.clone(), counters.clone());
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let acceptor =
                tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
            let Ok(start) = acceptor.await else { return };
            let name = start
                .client_hello()
                .server_name()
                .unwrap_or("api.openai.com")
                .to_owned();
            let Ok(config) = ca.server_config(&LeafName::Dns(name)) else {
                return;
            };
            let mut config = (*config).clone();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let Ok(tls) = start.into_stream(Arc::new(config)).await else {
                return;
            };
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let (expected, counters) = (expected.clone(), counters.clone());
                async move { Ok::<_, std::convert::Infallible>(handle(req, &expected, &counters).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), svc)
                .await;
        });
    }
}

async fn handle(req: Request<Incoming>, expected: &str, counters: &Counters) -> Response<Body> {
    counters.requests.fetch_add(1, Ordering::Relaxed);
    if req
        .headers()
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == expected.as_bytes())
    {
        counters.authorized.fetch_add(1, Ordering::Relaxed);
    }
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let body: Body = match path.as_str() {
        "/bulk" => {
            let n: usize = query
                .strip_prefix("bytes=")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let chunk = Bytes::from(vec![b'y'; 64 * 1024]);
            let chunks = n / chunk.len();
            let rest = n % chunk.len();
            let iter = (0..chunks)
                .map(move |_| chunk.clone())
                .chain((rest > 0).then(|| Bytes::from(vec![b'y'; rest])))
                .map(|b| Ok::<_, std::convert::Infallible>(Frame::data(b)));
            return Response::builder()
                .header("content-length", n)
                .body(BodyExt::boxed(StreamBody::new(futures_iter(iter))))
                .unwrap_or_default();
        }
        "/upload" => {
            let n = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().len())
                .unwrap_or(0);
            Full::new(Bytes::from(n.to_string())).boxed()
        }
        _ => Full::new(Bytes::from_static(b"ok")).boxed(),
    };
    Response::new(body)
}

/// An iterator as a stream (no futures crate needed).
fn futures_iter<I: Iterator + Unpin>(iter: I) -> IterStream<I> {
    IterStream(iter)
}

/// See [`futures_iter`].
pub(super) struct IterStream<I>(I);

impl<I: Iterator + Unpin> futures_core::Stream for IterStream<I> {
    type Item = I::Item;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<I::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}
