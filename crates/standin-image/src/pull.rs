//! Pulling an image into the store.
//!
//! The manifest and config come first (the platform picked from an index, digests checked).
//! Then up to [`PARALLEL_LAYERS`] layers at once, each streamed straight from the network
//! through decompression into the unpacker ([`crate::blob`]), with no temporary copy of the
//! blob: the registry
//! digest is checked on the compressed bytes as they stream, the diff ID on the tar bytes as
//! the unpacker reads them, and the layer is published (renamed into place) only when both
//! match and the unpacker accepted every entry. A layer already in the store (from any image)
//! is not downloaded again.

use crate::auth::credentials_for;
use crate::blob::unpack_blob;
use crate::error::ImageError;
use crate::limits::Limits;
use crate::lock::LockMode;
use crate::record::{ImageRecord, LayerRecord, RunConfig};
use crate::reference::ImageRef;
use crate::registry::{RegistryOptions, SeenPlatforms, chain, classify, client, transport};
use crate::store::Store;
use crate::tree::remove_path;
use crate::unpack::UnpackError;
use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::manifest::OciDescriptor;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Layers downloaded and unpacked at once.
pub const PARALLEL_LAYERS: usize = 3;
/// Chunks queued between the download and the unpacker.
const QUEUE_CHUNKS: usize = 16;

/// When to contact the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Only when the image is not in the store (the default).
    #[default]
    Missing,
    /// Every time: a moved tag is followed; layers already stored are not downloaded again.
    Always,
    /// Never: the image must be in the store.
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<PullPolicy, String> {
        match s {
            "missing" | "if-missing" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            other => Err(format!(
                "unknown pull policy {other:?}: use missing, always or never"
            )),
        }
    }
}

/// What a pull reports as it goes (all methods default to nothing).
pub trait PullProgress: Send + Sync {
    /// The manifest is known: `layers` layers, `bytes` compressed bytes in all.
    fn resolved(&self, _reference: &str, _layers: usize, _bytes: u64) {}
    /// A layer is already stored.
    fn layer_cached(&self, _digest: &str, _size: u64) {}
    /// `n` more compressed bytes of a layer arrived.
    fn layer_bytes(&self, _digest: &str, _n: u64) {}
    /// A layer is unpacked and published.
    fn layer_done(&self, _digest: &str) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;
impl PullProgress for Quiet {}

/// Pulls images into one store.
pub struct Puller {
    store: Store,
    options: RegistryOptions,
    progress: Arc<dyn PullProgress>,
    limits: Limits,
}

impl std::fmt::Debug for Puller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Puller")
            .field("store", &self.store)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Puller {
    /// A puller into `store`.
    pub fn new(store: Store, options: RegistryOptions) -> Puller {
        Puller {
            store,
            options,
            progress: Arc::new(Quiet),
            limits: Limits::default(),
        }
    }

    /// Report progress to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn PullProgress>) -> Puller {
        self.progress = progress;
        self
    }

    /// Use other unpacking limits (tests).
    pub fn with_limits(mut self, limits: Limits) -> Puller {
        self.limits = limits;
        self
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The image `reference` in the store, pulled according to `policy`.
    pub async fn ensure(
        &self,
        reference: &ImageRef,
        policy: PullPolicy,
    ) -> Result<ImageRecord, ImageError> {
        if policy != PullPolicy::Always
            && let Some(record) = self.store.record(&reference.to_string())?
            && record
                .layers
                .iter()
                .all(|l| self.store.has_layer(&l.diff_id))
        {
            return Ok(record);
        }
        if policy == PullPolicy::Never {
            return Err(ImageError::NotPulled {
                reference: reference.to_string(),
            });
        }
        self.pull(reference).await
    }

    /// Pull `reference` from its registry now.
    pub async fn pull(&self, reference: &ImageRef) -> Result<ImageRecord, ImageError> {
        let store = self.store.clone();
        // Held for the whole pull so a prune cannot remove a layer published here before the
        // record that uses it is written.
        let _store_lock = blocking(move || store.store_lock(LockMode::Shared)).await?;
        let (client, seen) = client(&self.options)?;
        let auth = credentials_for(reference.registry())?;
        let (manifest, digest, config_json, index_digest) = client
            .pull_manifest_and_config_and_list_digest(reference.oci(), &auth)
            .await
            .map_err(|e| classify(reference, e, &seen))?;
        check_pinned(reference, &digest, index_digest.as_deref())?;
        let config_digest = sha256_hex(config_json.as_bytes());
        if manifest.config.digest != config_digest {
            return Err(ImageError::DigestMismatch {
                reference: reference.to_string(),
                what: "the image config".into(),
                expected: manifest.config.digest.clone(),
                actual: config_digest,
            });
        }
        let config: oci_client::config::ConfigFile = serde_json::from_str(&config_json)
            .map_err(|e| invalid(reference, format!("the image config does not parse: {e}")))?;
        let diff_ids = config.rootfs.diff_ids.clone();
        if diff_ids.len() != manifest.layers.len() {
            return Err(invalid(
                reference,
                format!(
                    "the manifest lists {} layers but the config {} diff IDs",
                    manifest.layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        for d in diff_ids
            .iter()
            .chain(manifest.layers.iter().map(|l| &l.digest))
        {
            if !is_sha256(d) {
                return Err(invalid(reference, format!("{d:?} is not a sha256 digest")));
            }
        }
        let total: u64 = manifest.layers.iter().map(|l| l.size.max(0) as u64).sum();
        self.progress
            .resolved(&reference.to_string(), manifest.layers.len(), total);

        let jobs = manifest
            .layers
            .iter()
            .cloned()
            .zip(diff_ids.iter().cloned())
            .map(|(desc, diff_id)| self.fetch_layer(&client, reference, desc, diff_id, &seen));
        let mut results = futures_util::stream::iter(jobs).buffered(PARALLEL_LAYERS);
        let mut layers = Vec::with_capacity(manifest.layers.len());
        while let Some(r) = results.next().await {
            layers.push(r?);
        }
        let now = unix_now();
        let run = run_config(config.config.as_ref());
        let record = ImageRecord {
            reference: reference.to_string(),
            manifest_digest: digest,
            index_digest,
            config_digest: manifest.config.digest.clone(),
            layers,
            config: run,
            pulled_at: now,
            last_used: now,
        };
        self.store.put_record(&record)?;
        Ok(record)
    }

    async fn fetch_layer(
        &self,
        client: &oci_client::Client,
        reference: &ImageRef,
        desc: OciDescriptor,
        diff_id: String,
        seen: &SeenPlatforms,
    ) -> Result<LayerRecord, ImageError> {
        let record = |size| LayerRecord {
            diff_id: diff_id.clone(),
            digest: desc.digest.clone(),
            size,
        };
        if self.store.has_layer(&diff_id) {
            let size = self.store.layer_size(&diff_id);
            self.progress
                .layer_cached(&desc.digest, desc.size.max(0) as u64);
            return Ok(record(size));
        }
        let store = self.store.clone();
        let id = diff_id.clone();
        let _lock = blocking(move || store.layer_lock(&id, LockMode::Exclusive)).await?;
        if self.store.has_layer(&diff_id) {
            // Another process unpacked it while we waited.
            let size = self.store.layer_size(&diff_id);
            self.progress
                .layer_cached(&desc.digest, desc.size.max(0) as u64);
            return Ok(record(size));
        }
        let staged = self.store.staging_dir(&diff_id)?;
        let result = self
            .download_into(client, reference, &desc, &diff_id, &staged, seen)
            .await;
        match result {
            Ok(()) => {
                let size = crate::store::disk_usage(&staged);
                if let Err(e) = self.store.publish_layer(&staged, &diff_id) {
                    let _ = remove_path(&staged);
                    return Err(e);
                }
                self.progress.layer_done(&desc.digest);
                Ok(record(size))
            }
            Err(e) => {
                let _ = remove_path(&staged);
                Err(e)
            }
        }
    }

    async fn download_into(
        &self,
        client: &oci_client::Client,
        reference: &ImageRef,
        desc: &OciDescriptor,
        diff_id: &str,
        staged: &Path,
        seen: &SeenPlatforms,
    ) -> Result<(), ImageError> {
        let mut stream = client
            .pull_blob_stream(reference.oci(), desc)
            .await
            .map_err(|e| classify(reference, e, seen))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(QUEUE_CHUNKS);
        let owners = *self.store.owners();
        let limits = self.limits;
        let dest = staged.to_path_buf();
        let unpacker = tokio::task::spawn_blocking(move || {
            unpack_blob(ChannelReader::new(rx), &dest, &owners, &limits)
        });
        let mut download_error = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(bytes) => {
                    self.progress.layer_bytes(&desc.digest, bytes.len() as u64);
                    if tx.send(Ok(bytes)).await.is_err() {
                        break; // the unpacker stopped; its error says why
                    }
                }
                Err(e) => {
                    download_error = Some(e);
                    break;
                }
            }
        }
        if download_error.is_some() {
            let _ = tx
                .send(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the download failed",
                )))
                .await;
        }
        drop(tx);
        let outcome = unpacker.await.map_err(|e| ImageError::Io {
            path: staged.to_path_buf(),
            source: io::Error::other(e.to_string()),
        })?;
        if let Some(e) = download_error {
            return Err(download_failure(reference, desc, e));
        }
        let actual = match outcome {
            Ok(actual) => actual,
            Err(UnpackError::Refused(refusal)) => {
                return Err(ImageError::LayerRefused {
                    reference: reference.to_string(),
                    digest: desc.digest.clone(),
                    refusal,
                });
            }
            Err(UnpackError::Io(e)) => return Err(ImageError::io(staged, e)),
        };
        if actual != diff_id {
            return Err(ImageError::DigestMismatch {
                reference: reference.to_string(),
                what: format!("the uncompressed layer {}", desc.digest),
                expected: diff_id.to_owned(),
                actual,
            });
        }
        Ok(())
    }
}

fn download_failure(reference: &ImageRef, desc: &OciDescriptor, e: io::Error) -> ImageError {
    if let Some(oci_client::errors::DigestError::VerificationError { expected, actual }) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<oci_client::errors::DigestError>())
    {
        return ImageError::DigestMismatch {
            reference: reference.to_string(),
            what: format!("layer {}", desc.digest),
            expected: expected.clone(),
            actual: actual.clone(),
        };
    }
    let detail = chain(&e);
    if detail.contains("Invalid digest") {
        return ImageError::DigestMismatch {
            reference: reference.to_string(),
            what: format!("layer {}", desc.digest),
            expected: desc.digest.clone(),
            actual: detail,
        };
    }
    transport(reference.to_string(), detail)
}

/// One piece of a blob, or the reason the download stopped.
type Chunk = Result<Bytes, io::Error>;

/// The blocking side of the download queue.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Chunk>,
    current: Bytes,
}

impl ChannelReader {
    fn new(rx: tokio::sync::mpsc::Receiver<Chunk>) -> ChannelReader {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(bytes)) => self.current = bytes,
                Some(Err(e)) => return Err(e),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

fn check_pinned(reference: &ImageRef, digest: &str, index: Option<&str>) -> Result<(), ImageError> {
    if let Some(pinned) = reference.digest()
        && pinned != digest
        && Some(pinned) != index
    {
        return Err(ImageError::DigestMismatch {
            reference: reference.to_string(),
            what: "the manifest".into(),
            expected: pinned.to_owned(),
            actual: index.unwrap_or(digest).to_owned(),
        });
    }
    Ok(())
}

fn run_config(c: Option<&oci_client::config::Config>) -> RunConfig {
    let Some(c) = c else {
        return RunConfig::default();
    };
    RunConfig {
        env: c.env.clone().unwrap_or_default(),
        entrypoint: c.entrypoint.clone().unwrap_or_default(),
        cmd: c.cmd.clone().unwrap_or_default(),
        working_dir: c.working_dir.clone().filter(|w| !w.is_empty()),
        user: c.user.clone().filter(|u| !u.is_empty()),
    }
}

fn invalid(reference: &ImageRef, detail: String) -> ImageError {
    ImageError::Invalid {
        reference: reference.to_string(),
        detail,
    }
}

fn is_sha256(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
    )
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, ImageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ImageError::Io {
            path: PathBuf::from("(lock)"),
            source: io::Error::other(e.to_string()),
        })?
}

/// Seconds since the epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
