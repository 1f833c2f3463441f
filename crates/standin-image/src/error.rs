//! Everything that can go wrong with an image, each with what to do about it.

use std::path::PathBuf;

/// Why a layer was refused while unpacking: the layer is hostile or broken, and nothing of it
/// was published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerRefusal {
    /// An entry path climbs out of the layer root.
    #[error("entry {path:?} contains '..'")]
    DotDot {
        /// The path as written in the layer.
        path: String,
    },
    /// An entry path is absolute.
    #[error("entry {path:?} is an absolute path")]
    Absolute {
        /// The path as written in the layer.
        path: String,
    },
    /// An entry would be written through a symlink or a non-directory.
    #[error("entry {path:?} goes through a symlink or a non-directory ({component:?})")]
    ThroughSymlink {
        /// The path as written in the layer.
        path: String,
        /// The component that is not a real directory.
        component: String,
    },
    /// A hard link points outside the layer or at something that is not there.
    #[error("hard link {path:?} points at {target:?}, which is not a file of this layer")]
    HardLinkTarget {
        /// The link.
        path: String,
        /// Its target.
        target: String,
    },
    /// A size limit was exceeded.
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// Something the unpacker does not accept.
    #[error("{0}")]
    Malformed(String),
}

/// An image operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The image name does not parse.
    #[error(
        "{name:?} is not a valid image reference ({reason}); write it as [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST], for example python:3.12 or ghcr.io/org/app@sha256:…"
    )]
    BadReference {
        /// What was given.
        name: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The registry has no such repository or tag.
    #[error(
        "{reference}: not found in the registry ({detail}); check the repository name and tag (`skopeo list-tags docker://…` lists the tags)"
    )]
    NotFound {
        /// The reference.
        reference: String,
        /// The registry's words.
        detail: String,
    },
    /// The registry cannot be reached.
    #[error(
        "cannot reach the registry of {reference}: {detail}; check the name and the network, or use --pull never with an image already in the store"
    )]
    Unreachable {
        /// The reference.
        reference: String,
        /// What failed.
        detail: String,
    },
    /// The registry's TLS certificate is not trusted.
    #[error(
        "the registry of {reference} presented a certificate standin does not trust ({detail}); add its CA with --registry-ca FILE, or (for a test registry on plain HTTP) --insecure-registry HOST"
    )]
    Tls {
        /// The reference.
        reference: String,
        /// What failed.
        detail: String,
    },
    /// The registry refused the credentials, or asked for some and there were none.
    #[error(
        "the registry refused access to {reference} ({detail}); log in with `skopeo login`/`docker login` (standin reads {auth_files}) or check the repository name"
    )]
    Denied {
        /// The reference.
        reference: String,
        /// The registry's words.
        detail: String,
        /// The credential files that were consulted.
        auth_files: String,
    },
    /// The image has no manifest for this host's platform.
    #[error(
        "{reference} has no image for {wanted} (it has: {available}); pick a tag built for {wanted}"
    )]
    Platform {
        /// The reference.
        reference: String,
        /// This host's platform.
        wanted: String,
        /// What the index lists.
        available: String,
    },
    /// Content did not match its digest.
    #[error(
        "{what} of {reference} does not match its digest (expected {expected}, got {actual}); the registry or the network corrupted it, nothing was stored: pull again"
    )]
    DigestMismatch {
        /// The reference.
        reference: String,
        /// Which content.
        what: String,
        /// The digest the manifest or config names.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// A layer was refused by the unpacker.
    #[error("layer {digest} of {reference} was refused: {refusal}; nothing of it was stored")]
    LayerRefused {
        /// The reference.
        reference: String,
        /// The layer.
        digest: String,
        /// Why.
        refusal: LayerRefusal,
    },
    /// The registry sent something that is not a valid image.
    #[error("{reference}: {detail}")]
    Invalid {
        /// The reference.
        reference: String,
        /// What is wrong.
        detail: String,
    },
    /// The image is not in the local store and pulling was not allowed.
    #[error(
        "{reference} is not in the local image store; pull it with `standin pull {reference}` or use --pull missing"
    )]
    NotPulled {
        /// The reference.
        reference: String,
    },
    /// The disk is full.
    #[error(
        "no space left under {}: free some space (`standin image prune` removes unused layers) or set STANDIN_HOME to a larger disk",
        dir.display()
    )]
    DiskFull {
        /// The store directory.
        dir: PathBuf,
    },
    /// A credentials file is unreadable or malformed.
    #[error("credentials file {}: {detail}", path.display())]
    AuthFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A CA file given with --registry-ca is unusable.
    #[error("--registry-ca {}: {detail}", path.display())]
    RegistryCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The image is in use by a running sandbox.
    #[error("{reference} is used by a running sandbox; stop it first")]
    InUse {
        /// The reference.
        reference: String,
    },
    /// The store was unpacked for another uid mapping.
    #[error(
        "the image store {} was unpacked for sandbox uids starting at host uid {stored}, but this host now maps them from {current}; remove the store's layers (`standin image prune --all`) and pull again",
        dir.display()
    )]
    MappingChanged {
        /// The store.
        dir: PathBuf,
        /// The mapping recorded in the store.
        stored: u32,
        /// The mapping in force.
        current: u32,
    },
    /// Any other I/O failure, naming the path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

impl ImageError {
    /// An I/O error on `path`, turned into [`ImageError::DiskFull`] when the disk is full.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> ImageError {
        let path = path.into();
        if source.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error())
            || source.raw_os_error() == Some(rustix::io::Errno::DQUOT.raw_os_error())
        {
            return ImageError::DiskFull { dir: path };
        }
        ImageError::Io { path, source }
    }
}
