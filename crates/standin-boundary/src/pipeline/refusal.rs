//! Readable refusals of denied connections: with [`Refusal::Forbidden`], a connection the
//! egress policy denied is answered by the boundary itself with `403` and a text naming the
//! rule, if it is HTTP, or TLS the boundary can terminate (the sandbox has a CA, and the
//! ClientHello named a host); anything else is reset, as without readable refusals. Nothing
//! is dialed.

use super::detect::{Detected, Kind};
use super::inspection::Inspection;
use crate::conn::HANDSHAKE_TIMEOUT;
use crate::http::{Proto, answer_refused};
use crate::io::{Prefixed, reset};
use crate::tls::ca::LeafName;
#[cfg(doc)]
use standin_policy::secrets::Refusal;
use std::sync::Arc;
use tokio::net::TcpStream;

/// Answer `client` (whose first bytes are `first`) with `text`, or reset it.
pub(crate) async fn answer(
    client: TcpStream,
    first: Detected,
    text: String,
    inspection: Option<&Arc<Inspection>>,
) {
    match (first.kind(), inspection) {
        (Kind::Http, _) if !first.is_connect() => {
            answer_refused(Prefixed::new(first.head, client), Proto::H1, text).await;
        }
        (Kind::Tls(Some(sni)), Some(insp)) => {
            let Ok(config) = insp.ca.server_config(&LeafName::Dns(sni)) else {
                reset(client);
                return;
            };
            let acceptor = tokio_rustls::LazyConfigAcceptor::new(
                rustls::server::Acceptor::default(),
                Prefixed::new(first.head, client),
            );
            let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
                acceptor.await?.into_stream(config).await
            })
            .await;
            if let Ok(Ok(tls)) = tls {
                let proto = Proto::from_alpn(tls.get_ref().1.alpn_protocol());
                answer_refused(tls, proto, text).await;
            }
        }
        _ => reset(client),
    }
}
