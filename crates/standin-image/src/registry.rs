//! Talking to a registry: `oci-client` (reqwest on the project's rustls/ring stack and tokio)
//! configured with standin's trust and platform choices, and its errors turned into ones
//! that say what to do.

use crate::auth::auth_files;
use crate::error::ImageError;
use crate::reference::ImageRef;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::ImageIndexEntry;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// PEM files with extra CA certificates trusted besides the host's roots
    /// (`--registry-ca`).
    pub extra_cas: Vec<PathBuf>,
    /// Registries (`host[:port]`) reached over plain HTTP (`--insecure-registry`). Only
    /// these; every other registry is HTTPS with verified certificates.
    pub insecure: Vec<String>,
}

/// Seconds to wait for a registry connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Seconds a registry may stay silent mid-transfer.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest `--registry-ca` file read.
const MAX_CA_FILE: u64 = 4 << 20;

/// The platforms an index offered, recorded by the resolver for error messages.
#[derive(Debug, Default)]
pub(crate) struct SeenPlatforms(Mutex<Option<Vec<String>>>);

impl SeenPlatforms {
    pub(crate) fn take(&self) -> Option<Vec<String>> {
        self.0.lock().ok().and_then(|mut g| g.take())
    }
}

/// This host's platform as OCI names it.
pub fn host_platform() -> String {
    format!("linux/{}", oci_arch(std::env::consts::ARCH))
}

fn oci_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// A client for `opts`.
pub(crate) fn client(
    opts: &RegistryOptions,
) -> Result<(oci_client::Client, Arc<SeenPlatforms>), ImageError> {
    // reqwest is built without a default crypto provider: use the ring provider the rest of
    // standin uses. An error only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut extra = Vec::new();
    for path in &opts.extra_cas {
        let bad = |detail: String| ImageError::RegistryCa {
            path: path.clone(),
            detail,
        };
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if meta.len() > MAX_CA_FILE {
            return Err(bad(format!("larger than {MAX_CA_FILE} bytes")));
        }
        let data = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        if !data
            .windows(b"-----BEGIN CERTIFICATE-----".len())
            .any(|w| w == b"-----BEGIN CERTIFICATE-----")
        {
            return Err(bad("no PEM certificate in it".into()));
        }
        extra.push(Certificate {
            encoding: CertificateEncoding::Pem,
            data,
        });
    }
    let seen = Arc::new(SeenPlatforms::default());
    let recorder = Arc::clone(&seen);
    let resolver = move |entries: &[ImageIndexEntry]| -> Option<String> {
        let want_arch = oci_arch(std::env::consts::ARCH);
        let mut offered = Vec::new();
        let mut pick = None;
        for e in entries {
            let Some(p) = &e.platform else { continue };
            let (os, arch) = (p.os.to_string(), p.architecture.to_string());
            offered.push(format!("{os}/{arch}"));
            if pick.is_none() && os == "linux" && arch == want_arch {
                pick = Some(e.digest.clone());
            }
        }
        if pick.is_none()
            && let Ok(mut g) = recorder.0.lock()
        {
            *g = Some(offered);
        }
        pick
    };
    let config = ClientConfig {
        protocol: if opts.insecure.is_empty() {
            ClientProtocol::Https
        } else {
            ClientProtocol::HttpsExcept(opts.insecure.clone())
        },
        extra_root_certificates: extra,
        platform_resolver: Some(Box::new(resolver)),
        connect_timeout: Some(CONNECT_TIMEOUT),
        read_timeout: Some(READ_TIMEOUT),
        ..ClientConfig::default()
    };
    let client = oci_client::Client::try_from(config).map_err(|e| ImageError::Unreachable {
        reference: "(any)".into(),
        detail: format!("cannot build the registry client: {e}"),
    })?;
    Ok((client, seen))
}

/// Turn a registry error into one that names what to do.
pub(crate) fn classify(
    reference: &ImageRef,
    err: OciDistributionError,
    seen: &SeenPlatforms,
) -> ImageError {
    let r = reference.to_string();
    if let Some(offered) = seen.take() {
        return ImageError::Platform {
            reference: r,
            wanted: host_platform(),
            available: if offered.is_empty() {
                "no platforms listed".into()
            } else {
                offered.join(", ")
            },
        };
    }
    let detail = chain(&err);
    match err {
        OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::UnauthorizedError { .. } => denied(r, detail),
        OciDistributionError::ServerError {
            code: 401 | 403, ..
        } => denied(r, detail),
        OciDistributionError::ImageManifestNotFoundError(_)
        | OciDistributionError::ServerError { code: 404, .. } => ImageError::NotFound {
            reference: r,
            detail,
        },
        OciDistributionError::RegistryError { ref envelope, .. } => {
            let codes: Vec<String> = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}", e.code))
                .collect();
            let codes = codes.join(",").to_ascii_uppercase();
            if codes.contains("UNAUTHORIZED") || codes.contains("DENIED") {
                denied(r, detail)
            } else if codes.contains("UNKNOWN") {
                ImageError::NotFound {
                    reference: r,
                    detail,
                }
            } else {
                ImageError::Invalid {
                    reference: r,
                    detail,
                }
            }
        }
        OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
            expected,
            actual,
        }) => ImageError::DigestMismatch {
            reference: r,
            what: "the manifest or config".into(),
            expected,
            actual,
        },
        OciDistributionError::RequestError(_) | OciDistributionError::IoError(_) => {
            transport(r, detail)
        }
        _ => ImageError::Invalid {
            reference: r,
            detail,
        },
    }
}

/// A failed transfer: TLS trust problems are told apart from unreachable hosts.
pub(crate) fn transport(reference: String, detail: String) -> ImageError {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("tls") {
        ImageError::Tls { reference, detail }
    } else {
        ImageError::Unreachable { reference, detail }
    }
}

fn denied(reference: String, detail: String) -> ImageError {
    let files: Vec<String> = auth_files()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    ImageError::Denied {
        reference,
        detail,
        auth_files: if files.is_empty() {
            "no credential files".into()
        } else {
            files.join(", ")
        },
    }
}

/// The error and its sources on one line.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let m = e.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = e.source();
    }
    s
}
