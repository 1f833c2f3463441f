//! TLS building blocks: the per-sandbox CA and its leaves ([`ca`]), the bounded ClientHello
//! reader ([`client_hello`]), and the configuration that verifies the real destination
//! ([`upstream`]). The handshakes themselves are run by the pipeline
//! (`pipeline::intercept`).

pub(crate) mod ca;
pub(crate) mod client_hello;
pub(crate) mod upstream;
