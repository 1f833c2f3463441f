//! What the store remembers of one pulled image.

use serde::{Deserialize, Serialize};

/// One pulled image: enough to run it without contacting the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The normalised reference it was pulled as.
    pub reference: String,
    /// Digest of the platform manifest.
    pub manifest_digest: String,
    /// Digest of the image index it was picked from, when the reference named one.
    #[serde(default)]
    pub index_digest: Option<String>,
    /// Digest of the image config.
    pub config_digest: String,
    /// Layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// The parts of the image config a sandbox honours.
    pub config: RunConfig,
    /// Unix seconds of the pull.
    pub pulled_at: u64,
    /// Unix seconds of the last run (or the pull).
    pub last_used: u64,
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the uncompressed tar (the store key).
    pub diff_id: String,
    /// Digest of the blob as the registry serves it.
    pub digest: String,
    /// Bytes on disk once unpacked.
    pub size: u64,
}

/// The image config fields a sandbox honours.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunConfig {
    /// `Env`: `K=V` strings, applied before the user's own.
    #[serde(default)]
    pub env: Vec<String>,
    /// `Entrypoint`.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    #[serde(default)]
    pub cmd: Vec<String>,
    /// `WorkingDir`.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// `User`: `name`, `uid`, `name:group` or `uid:gid`.
    #[serde(default)]
    pub user: Option<String>,
}

impl RunConfig {
    /// The command a sandbox runs when given none: `Entrypoint` followed by `Cmd`.
    pub fn default_command(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }
}

impl ImageRecord {
    /// Bytes on disk of all its layers (shared layers counted in each image).
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}
