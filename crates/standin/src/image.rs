//! Images for [`SandboxBuilder::image`](crate::SandboxBuilder::image): the store this process
//! uses, and resolving a reference to layers held for the sandbox's lifetime.

use crate::Error;
use standin_image::{
    ImageRecord, ImageRef, LayerLease, Ownership, PullPolicy, PullProgress, Puller,
    RegistryOptions, Store,
};
use std::sync::Arc;

/// The image store of this process: under [`standin_image::state_dir`], with layer ownership
/// mapped the way this process's sandboxes map uids (see `standin_sandbox::idmap`).
pub fn image_store() -> Result<Store, standin_image::ImageError> {
    let maps = standin_sandbox::idmap::IdMaps::for_current_user();
    let owners = Ownership {
        uid_base: maps.uid.outside,
        gid_base: maps.gid.outside,
        len: maps.uid.len.min(maps.gid.len),
        // A range of ids is mapped only when running as root, which alone may chown.
        chown: maps.uid.len > 1,
    };
    Store::open(&standin_image::state_dir(), owners)
}

/// An image ready to stack: its record, and its layers held until the sandbox ends.
#[derive(Debug)]
pub(crate) struct ResolvedImage {
    pub(crate) record: ImageRecord,
    pub(crate) lease: LayerLease,
}

/// What the builder was told about the image.
#[derive(Clone, Default)]
pub(crate) struct ImageChoice {
    pub(crate) reference: Option<ImageRef>,
    pub(crate) policy: PullPolicy,
    pub(crate) registry: RegistryOptions,
    pub(crate) progress: Option<Arc<dyn PullProgress>>,
}

impl std::fmt::Debug for ImageChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageChoice")
            .field("reference", &self.reference)
            .field("policy", &self.policy)
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl ImageChoice {
    /// Pull (per the policy) and lease the layers.
    pub(crate) async fn resolve(&self) -> Result<Option<ResolvedImage>, Error> {
        let Some(reference) = &self.reference else {
            return Ok(None);
        };
        let store = tokio::task::spawn_blocking(image_store)
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        let mut puller = Puller::new(store.clone(), self.registry.clone());
        if let Some(p) = &self.progress {
            puller = puller.with_progress(p.clone());
        }
        let mut record = puller.ensure(reference, self.policy).await?;
        let lease = {
            let (store, record) = (store.clone(), record.clone());
            tokio::task::spawn_blocking(move || store.lease(&record))
                .await
                .map_err(|e| Error::Io(std::io::Error::other(e)))??
        };
        record.last_used = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if let Err(e) = store.put_record(&record) {
            tracing::debug!(error = %e, "cannot record the image's last use");
        }
        Ok(Some(ResolvedImage { record, lease }))
    }
}

/// `STANDIN_IMAGE_ROOT=copy` asks for the copy fallback instead of overlayfs (for file
/// systems overlayfs cannot stack, and to test the fallback); `overlay` or unset is the
/// default, which still falls back to a copy, with a warning, when overlayfs fails.
pub(crate) fn copy_requested() -> Result<bool, crate::Error> {
    match std::env::var("STANDIN_IMAGE_ROOT").as_deref() {
        Err(_) | Ok("" | "overlay") => Ok(false),
        Ok("copy") => Ok(true),
        Ok(other) => Err(crate::Error::config(format!(
            "STANDIN_IMAGE_ROOT={other:?} is not understood: use overlay (the default) or copy"
        ))),
    }
}
