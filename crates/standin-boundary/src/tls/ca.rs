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
    /// A stored CA state is unusable.
    #[error("stored CA state: {0}")]
    State(&'static str),
    /// rustls refused the generated certificate.
    #[error("TLS configuration failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// What makes a CA the same one after a restart: its name, its key (PEM, zeroized on drop;
/// never in `Debug`) and its validity. Made with [`CaState::generate`], kept by the owner
/// where only it can read it.
pub struct CaState {
    /// The id in the CA's name.
    pub id: String,
    /// Start of validity, seconds since the Unix epoch.
    pub not_before_unix: i64,
    /// Length of validity, in seconds.
    pub validity_secs: u64,
    /// The CA's private key, PKCS#8 PEM.
    pub key_pem: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for CaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaState")
            .field("id", &self.id)
            .field("not_before_unix", &self.not_before_unix)
            .field("validity_secs", &self.validity_secs)
            .finish_non_exhaustive()
    }
}

impl CaState {
    /// A new key for a CA named after `id`, valid from a little before now for `validity`.
    pub fn generate(id: &str, validity: Duration) -> Result<CaState, CaError> {
        let key = KeyPair::generate()?;
        Ok(CaState {
            id: id.to_owned(),
            not_before_unix: (OffsetDateTime::now_utc() - BACKDATE).unix_timestamp(),
            validity_secs: validity.as_secs(),
            key_pem: zeroize::Zeroizing::new(key.serialize_pem()),
        })
    }
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
        let not_before = OffsetDateTime::now_utc() - BACKDATE;
        SandboxCa::build(id, KeyPair::generate()?, not_before, CA_VALIDITY)
    }

    /// The CA that `state` describes: the same name, key and validity as when the state was
    /// made, so clients that trust the certificate published then trust this one's leaves
    /// (a pod's boundary restarting while its app keeps running).
    pub fn restore(state: &CaState) -> Result<SandboxCa, CaError> {
        let key = KeyPair::from_pem(&state.key_pem)?;
        let not_before = OffsetDateTime::from_unix_timestamp(state.not_before_unix)
            .map_err(|_| CaError::State("not_before out of range"))?;
        SandboxCa::build(
            &state.id,
            key,
            not_before,
            Duration::from_secs(state.validity_secs),
        )
    }

    fn build(
        id: &str,
        key: KeyPair,
        not_before: OffsetDateTime,
        validity: Duration,
    ) -> Result<SandboxCa, CaError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("standin sandbox {id} CA"));
        dn.push(DnType::OrganizationName, "standin");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = not_before;
        params.not_after = not_before + validity;
        // The serial follows from the key, so a restored CA's certificate names the same
        // issuer as the one it replaces.
        let spki = ring::digest::digest(&ring::digest::SHA256, key.public_key_raw());
        let mut serial = spki.as_ref()[..16].to_vec();
        serial[0] &= 0x7f;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
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
        let leaf = self.make_leaf_der(name)?;
        let chain = vec![leaf, self.issuer.der().clone()];
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

    /// A leaf certificate for `name`, signed by this CA.
    fn make_leaf_der(&self, name: &LeafName) -> Result<CertificateDer<'static>, CaError> {
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
        Ok(leaf.der().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restored_ca_is_the_same_authority_to_clients() {
        let state = CaState::generate("pod-1", Duration::from_secs(3600)).unwrap();
        let first = SandboxCa::restore(&state).unwrap();
        let again = SandboxCa::restore(&state).unwrap();
        // A client that trusts the first certificate verifies the second's leaves.
        let mut roots = rustls::RootCertStore::empty();
        roots.add(first.cert_der().clone()).unwrap();
        use rustls::client::danger::ServerCertVerifier;
        let verifier = rustls::client::WebPkiServerVerifier::builder(Arc::new(roots))
            .build()
            .unwrap();
        let name = LeafName::Dns("api.example".into());
        let leaf = again.make_leaf_der(&name).unwrap();
        let server = rustls_pki_types::ServerName::try_from("api.example").unwrap();
        let now = rustls_pki_types::UnixTime::now();
        verifier
            .verify_server_cert(&leaf, &[], &server, &[], now)
            .expect("the restored CA's leaf is trusted through the first certificate");
        // Another CA's leaves are not.
        let other = SandboxCa::generate("pod-2").unwrap();
        let foreign = other.make_leaf_der(&name).unwrap();
        assert!(
            verifier
                .verify_server_cert(&foreign, &[], &server, &[], now)
                .is_err()
        );
        assert!(!format!("{state:?}").contains("PRIVATE"));
    }

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
