//! The per-sandbox certificate authority and its leaf certificates.
//!
//! Each sandbox gets its own CA, generated at start; its private key exists only in this
//! process's memory and dies with the sandbox, so trusting it inside one sandbox grants
//! nothing anywhere else. Leaves are made on demand for each server name (or, for a
//! ClientHello without one, for the dialed address), valid from a little before now to
//! tolerate clock skew, and cached with their rustls `ServerConfig`. All leaves of a sandbox
//! share one key pair: signing a leaf is then one ECDSA signature, not a key generation.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use time::OffsetDateTime;

/// How long a sandbox CA is valid.
pub(crate) const CA_VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a leaf is valid (it is re-made before it runs out).
pub(crate) const LEAF_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// How far in the past certificates start, for clock skew between host and clients.
pub(crate) const BACKDATE: Duration = Duration::from_secs(3600);
/// Most leaves cached per sandbox; beyond it the cache starts over.
pub(crate) const MAX_CACHED_LEAVES: usize = 4096;

/// Failure to create the CA or a leaf.
#[derive(Debug, Error)]
pub enum CaError {
    /// rcgen refused.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the generated certificate.
    #[error("TLS configuration failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// What a leaf is issued for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LeafName {
    /// A DNS name (the ClientHello's SNI).
    Dns(String),
    /// An address (no SNI: the client dialed an IP).
    Ip(IpAddr),
}

struct Cached {
    config: Arc<ServerConfig>,
    renew_at: Instant,
}

/// A sandbox's CA.
pub struct SandboxCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    leaf_key: KeyPair,
    cache: Mutex<HashMap<LeafName, Cached>>,
    alpn: Vec<Vec<u8>>,
}

impl std::fmt::Debug for SandboxCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SandboxCa(<key redacted>)")
    }
}

impl SandboxCa {
    /// Generate a CA for sandbox `id`.
    pub fn generate(id: &str) -> Result<SandboxCa, CaError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("standin sandbox {id} CA"));
        dn.push(DnType::OrganizationName, "standin");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_VALIDITY;
        let key = KeyPair::generate()?;
        let issuer = CertifiedIssuer::self_signed(params, key)?;
        Ok(SandboxCa {
            issuer,
            leaf_key: KeyPair::generate()?,
            cache: Mutex::new(HashMap::new()),
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        })
    }

    /// The CA certificate (PEM), to install in the sandbox's trust store.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate (DER).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        self.issuer.der()
    }

    /// A server configuration presenting a leaf for `name`, from the cache or made now.
    pub fn server_config(&self, name: &LeafName) -> Result<Arc<ServerConfig>, CaError> {
        let now = Instant::now();
        if let Ok(cache) = self.cache.lock()
            && let Some(c) = cache.get(name)
            && c.renew_at > now
        {
            return Ok(c.config.clone());
        }
        let config = Arc::new(self.make(name)?);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED_LEAVES {
                cache.clear();
            }
            cache.insert(
                name.clone(),
                Cached {
                    config: config.clone(),
                    renew_at: now + LEAF_VALIDITY / 2,
                },
            );
        }
        Ok(config)
    }

    fn make(&self, name: &LeafName) -> Result<ServerConfig, CaError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let cn = match name {
            LeafName::Dns(n) => {
                params
                    .subject_alt_names
                    .push(SanType::DnsName(n.clone().try_into()?));
                n.clone()
            }
            LeafName::Ip(ip) => {
                params.subject_alt_names.push(SanType::IpAddress(*ip));
                ip.to_string()
            }
        };
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + LEAF_VALIDITY;
        let leaf = params.signed_by(&self.leaf_key, &self.issuer)?;
        let chain = vec![leaf.der().clone(), self.issuer.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(super::upstream::sandbox_provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = self.alpn.clone();
        // Our order, not the client's: the SHA-256 suites make the handshake (which the
        // sandbox pays on every new connection) cheaper than AES-256/SHA-384, which clients
        // such as rustls list first; this is the sandbox's link to its own host, the
        // destination gets its own negotiation.
        config.ignore_client_order = true;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_and_caches_leaves() {
        let ca = SandboxCa::generate("t").unwrap();
        assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let a = ca
            .server_config(&LeafName::Dns("api.example.com".into()))
            .unwrap();
        let b = ca
            .server_config(&LeafName::Dns("api.example.com".into()))
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        ca.server_config(&LeafName::Ip("192.0.2.1".parse().unwrap()))
            .unwrap();
    }

    #[test]
    fn sandbox_side_prefers_sha256_suites() {
        let ca = SandboxCa::generate("t").unwrap();
        let server = ca
            .server_config(&LeafName::Dns("api.example.com".into()))
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der().clone()).unwrap();
        // A client preferring AES-256 (rustls's own default order).
        let client = rustls::ClientConfig::builder_with_provider(crate::tls::upstream::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from("api.example.com").unwrap();
        let mut c = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
        let mut s = rustls::ServerConnection::new(server).unwrap();
        let mut wire = Vec::new();
        while c.is_handshaking() || s.is_handshaking() {
            wire.clear();
            c.write_tls(&mut wire).unwrap();
            s.read_tls(&mut &wire[..]).unwrap();
            s.process_new_packets().unwrap();
            wire.clear();
            s.write_tls(&mut wire).unwrap();
            c.read_tls(&mut &wire[..]).unwrap();
            c.process_new_packets().unwrap();
        }
        assert_eq!(
            s.negotiated_cipher_suite().map(|s| s.suite()),
            Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
        );
    }
}
