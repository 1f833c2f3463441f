//! TLS towards the real destination: the roots it is verified against, and the one crypto
//! provider the whole boundary uses.

use rustls::ClientConfig;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;
use thiserror::Error;

/// Failure to set up upstream TLS.
#[derive(Debug, Error)]
pub enum UpstreamTlsError {
    /// An `--upstream-ca` file could not be read or holds no certificate.
    #[error("upstream CA {path}: {why}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// rustls refused.
    #[error("upstream TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider (ring), passed explicitly everywhere.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The provider of the sandbox-facing TLS servers: the same algorithms (ring), with the
/// suites that hash with SHA-256 first (SHA-256 has CPU instructions on current x86 and Arm
/// cores, SHA-384 does not: a resumed handshake's key schedule is mostly hashing).
pub(crate) fn sandbox_provider() -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites.sort_by_key(|s| match s.suite() {
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => 2,
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => 3,
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 4,
        _ => 5,
    });
    Arc::new(p)
}

/// Read every certificate of a PEM file.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, UpstreamTlsError> {
    let err = |why: String| UpstreamTlsError::CaFile {
        path: path.display().to_string(),
        why,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

/// `config` offering HTTP/1.1 only by ALPN: for sandbox clients that did not offer HTTP/2,
/// whose requests must reach the server as the HTTP/1.1 they were.
pub(crate) fn http1_only(config: &ClientConfig) -> Arc<ClientConfig> {
    let mut c = config.clone();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(c)
}

/// The client configuration for upstream connections: the host's system roots plus
/// `extra` (from `--upstream-ca`), HTTP/2 and HTTP/1.1 offered by ALPN.
pub fn client_config(
    extra: &[CertificateDer<'static>],
) -> Result<Arc<ClientConfig>, UpstreamTlsError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "skipping part of the system trust store");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(
        added,
        ignored,
        "system roots loaded for upstream verification"
    );
    for c in extra {
        roots.add(c.clone())?;
    }
    if roots.is_empty() {
        tracing::warn!(
            "no trusted roots for upstream TLS (no system store, no --upstream-ca): every intercepted TLS connection will fail"
        );
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
