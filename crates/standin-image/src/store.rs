//! The local image store: unpacked layers shared by diff ID, and one record per image.
//!
//! ```text
//! $STANDIN_HOME/                     0711: sandboxes traverse it to reach their layers
//!   images/store.json                the uid/gid mapping the layers were unpacked for
//!   images/refs/<sha256 of ref>.json one record per reference (ImageRecord)
//!   images/layers/<diff-id hex>/     one unpacked layer, published by rename
//!   images/locks/store.lock          shared by pulls and runs, exclusive for rmi and prune
//!   images/locks/<diff-id hex>.lock  exclusive while unpacking, shared while a sandbox runs
//!   images/tmp/                      staging; never read by anything but its writer
//! ```
//!
//! Publication is a `rename(2)` of a fully written directory or file, so a reader sees a
//! layer either whole or not at all, and an interrupted pull leaves only staging behind
//! (removed by `prune`). Layers are removed by renaming them into staging first.

use crate::error::ImageError;
use crate::lock::{FileLock, LockMode};
use crate::record::ImageRecord;
use crate::tree::remove_path;
use crate::unpack::Ownership;
use serde::{Deserialize, Serialize};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The store at one state directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    owners: Ownership,
}

#[derive(Serialize, Deserialize)]
struct StoreMeta {
    uid_base: u32,
    gid_base: u32,
}

/// A layer a sandbox is using: held until the sandbox ends, so neither `rmi` nor `prune`
/// removes it underneath.
#[derive(Debug)]
pub struct LayerLease {
    _locks: Vec<FileLock>,
    /// The layer directories, bottom first.
    pub dirs: Vec<PathBuf>,
}

impl Store {
    /// Open (creating when needed) the store under `state_dir`, for layers owned through
    /// `owners`.
    pub fn open(state_dir: &Path, owners: Ownership) -> Result<Store, ImageError> {
        let root = state_dir.join("images");
        for (dir, mode) in [
            (state_dir.to_path_buf(), 0o711),
            (root.clone(), 0o711),
            (root.join("layers"), 0o711),
            (root.join("refs"), 0o700),
            (root.join("locks"), 0o700),
            (root.join("tmp"), 0o700),
        ] {
            mkdir(&dir, mode)?;
        }
        let store = Store { root, owners };
        store.check_mapping()?;
        Ok(store)
    }

    fn check_mapping(&self) -> Result<(), ImageError> {
        let path = self.root.join("store.json");
        let current = StoreMeta {
            uid_base: self.owners.uid_base,
            gid_base: self.owners.gid_base,
        };
        match fs::read(&path) {
            Ok(bytes) => {
                let stored: StoreMeta =
                    serde_json::from_slice(&bytes).map_err(|e| ImageError::Io {
                        path: path.clone(),
                        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                    })?;
                let empty = fs::read_dir(self.root.join("layers"))
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(true);
                if (stored.uid_base != current.uid_base || stored.gid_base != current.gid_base)
                    && !empty
                {
                    return Err(ImageError::MappingChanged {
                        dir: self.root.clone(),
                        stored: stored.uid_base,
                        current: current.uid_base,
                    });
                }
                if stored.uid_base == current.uid_base && stored.gid_base == current.gid_base {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ImageError::io(&path, e)),
        }
        let json = serde_json::to_vec(&current).unwrap_or_default();
        self.write_atomic(&path, &json)
    }

    /// The store's directory (`…/images`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How layer ownership is mapped.
    pub fn owners(&self) -> &Ownership {
        &self.owners
    }

    /// The directory of the layer with diff ID `diff_id` (`sha256:…`).
    pub fn layer_dir(&self, diff_id: &str) -> PathBuf {
        self.root.join("layers").join(hex_of(diff_id))
    }

    /// Whether that layer is published.
    pub fn has_layer(&self, diff_id: &str) -> bool {
        self.layer_dir(diff_id).is_dir()
    }

    pub(crate) fn layer_lock(&self, diff_id: &str, mode: LockMode) -> Result<FileLock, ImageError> {
        FileLock::acquire(
            &self
                .root
                .join("locks")
                .join(format!("{}.lock", hex_of(diff_id))),
            mode,
        )
    }

    pub(crate) fn store_lock(&self, mode: LockMode) -> Result<FileLock, ImageError> {
        FileLock::acquire(&self.root.join("locks/store.lock"), mode)
    }

    /// A fresh, empty staging directory.
    pub(crate) fn staging_dir(&self, hint: &str) -> Result<PathBuf, ImageError> {
        let dir = self.staging_path(hint);
        let _ = remove_path(&dir);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| ImageError::io(&dir, e))?;
        Ok(dir)
    }

    /// A staging path unique to this process and call (nothing is created).
    fn staging_path(&self, hint: &str) -> PathBuf {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let hex = hex_of(hint);
        self.root.join("tmp").join(format!(
            "{}.{}.{n}",
            &hex[..hex.len().min(16)],
            std::process::id()
        ))
    }

    /// Publish a fully unpacked staging directory as the layer `diff_id`.
    pub(crate) fn publish_layer(&self, staged: &Path, diff_id: &str) -> Result<(), ImageError> {
        let dest = self.layer_dir(diff_id);
        fs::rename(staged, &dest).map_err(|e| ImageError::io(&dest, e))
    }

    fn record_path(&self, reference: &str) -> PathBuf {
        let digest = ring::digest::digest(&ring::digest::SHA256, reference.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        self.root.join("refs").join(format!("{hex}.json"))
    }

    /// The record of `reference` (its normalised text), if it was pulled.
    pub fn record(&self, reference: &str) -> Result<Option<ImageRecord>, ImageError> {
        let path = self.record_path(reference);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ImageError::Io {
                    path,
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImageError::io(&path, e)),
        }
    }

    /// Write (replace) a record.
    pub fn put_record(&self, record: &ImageRecord) -> Result<(), ImageError> {
        let json = serde_json::to_vec_pretty(record).unwrap_or_default();
        self.write_atomic(&self.record_path(&record.reference), &json)
    }

    /// Every record, sorted by reference.
    pub fn records(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let dir = self.root.join("refs");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| ImageError::io(&dir, e))? {
            let entry = entry.map_err(|e| ImageError::io(&dir, e))?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json")
                && let Ok(bytes) = fs::read(&path)
                && let Ok(r) = serde_json::from_slice::<ImageRecord>(&bytes)
            {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(out)
    }

    /// Lease the layers of `record` for a sandbox's lifetime.
    pub fn lease(&self, record: &ImageRecord) -> Result<LayerLease, ImageError> {
        let _store = self.store_lock(LockMode::Shared)?;
        let mut locks = Vec::with_capacity(record.layers.len());
        let mut dirs = Vec::with_capacity(record.layers.len());
        for layer in &record.layers {
            locks.push(self.layer_lock(&layer.diff_id, LockMode::Shared)?);
            let dir = self.layer_dir(&layer.diff_id);
            if !dir.is_dir() {
                return Err(ImageError::NotPulled {
                    reference: record.reference.clone(),
                });
            }
            dirs.push(dir);
        }
        Ok(LayerLease {
            _locks: locks,
            dirs,
        })
    }

    /// Remove the record of `reference`, then every layer no remaining record uses and no
    /// sandbox holds. Returns the layers removed.
    pub fn remove_image(&self, reference: &str) -> Result<Vec<String>, ImageError> {
        let _store = self.store_lock(LockMode::Exclusive)?;
        let path = self.record_path(reference);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ImageError::NotPulled {
                    reference: reference.to_owned(),
                });
            }
            Err(e) => return Err(ImageError::io(&path, e)),
        }
        self.prune_locked()
    }

    /// Remove layers no record uses (and no sandbox holds), and leftover staging. Returns the
    /// layers removed.
    pub fn prune(&self) -> Result<Vec<String>, ImageError> {
        let _store = self.store_lock(LockMode::Exclusive)?;
        self.prune_locked()
    }

    fn prune_locked(&self) -> Result<Vec<String>, ImageError> {
        let used: std::collections::HashSet<String> = self
            .records()?
            .iter()
            .flat_map(|r| r.layers.iter().map(|l| hex_of(&l.diff_id).to_owned()))
            .collect();
        let layers = self.root.join("layers");
        let mut removed = Vec::new();
        for entry in fs::read_dir(&layers).map_err(|e| ImageError::io(&layers, e))? {
            let entry = entry.map_err(|e| ImageError::io(&layers, e))?;
            let Some(hex) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if used.contains(&hex) {
                continue;
            }
            let diff_id = format!("sha256:{hex}");
            // A running sandbox holds its layers' locks shared; skip those.
            let Ok(_lock) = FileLock::try_acquire(
                &self.root.join("locks").join(format!("{hex}.lock")),
                LockMode::Exclusive,
            ) else {
                continue;
            };
            let staged = self.staging_path(&diff_id);
            fs::rename(entry.path(), &staged).map_err(|e| ImageError::io(entry.path(), e))?;
            remove_path(&staged).map_err(|e| ImageError::io(&staged, e))?;
            let _ = fs::remove_file(self.root.join("locks").join(format!("{hex}.lock")));
            removed.push(diff_id);
        }
        // Staging left by interrupted pulls (a live pull holds the store lock shared, so none
        // is running now).
        let tmp = self.root.join("tmp");
        if let Ok(rd) = fs::read_dir(&tmp) {
            for entry in rd.flatten() {
                let _ = remove_path(&entry.path());
            }
        }
        Ok(removed)
    }

    /// Bytes used by a layer on disk (file sizes, counted once per hard-linked inode).
    pub fn layer_size(&self, diff_id: &str) -> u64 {
        disk_usage(&self.layer_dir(diff_id))
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
        let tmp = self.root.join("tmp").join(format!(
            "{}.{}.json",
            path.file_stem().and_then(|s| s.to_str()).unwrap_or("file"),
            std::process::id()
        ));
        fs::write(&tmp, bytes).map_err(|e| ImageError::io(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| ImageError::io(path, e))
    }
}

/// The hex part of `sha256:…` (the whole string when it has no algorithm).
pub(crate) fn hex_of(digest: &str) -> &str {
    digest.split_once(':').map_or(digest, |(_, h)| h)
}

fn mkdir(dir: &Path, mode: u32) -> Result<(), ImageError> {
    match fs::DirBuilder::new().recursive(true).mode(mode).create(dir) {
        Ok(()) => {}
        Err(e) => return Err(ImageError::io(dir, e)),
    }
    // Correct the mode of a directory an older version or umask created.
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(mode));
    Ok(())
}

/// Bytes used on disk below `dir`, hard-linked inodes counted once.
pub(crate) fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for entry in rd.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.nlink() <= 1 || seen.insert(meta.ino()) {
                total += meta.blocks() * 512;
            }
        }
    }
    total
}
