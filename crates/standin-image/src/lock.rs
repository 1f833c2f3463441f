//! Advisory file locks (`flock(2)`) between standin processes sharing one store.

use crate::error::ImageError;
use rustix::fs::{FlockOperation, flock};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Shared or exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockMode {
    /// Many holders.
    Shared,
    /// One holder.
    Exclusive,
}

/// A held lock; released on drop (the descriptor closes).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

impl FileLock {
    /// Wait for the lock.
    pub(crate) fn acquire(path: &Path, mode: LockMode) -> Result<FileLock, ImageError> {
        Self::take(path, mode, false)
    }

    /// Take the lock only if it is free now.
    pub(crate) fn try_acquire(path: &Path, mode: LockMode) -> Result<FileLock, ImageError> {
        Self::take(path, mode, true)
    }

    fn take(path: &Path, mode: LockMode, nonblocking: bool) -> Result<FileLock, ImageError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| ImageError::io(path, e))?;
        let op = match (mode, nonblocking) {
            (LockMode::Shared, false) => FlockOperation::LockShared,
            (LockMode::Exclusive, false) => FlockOperation::LockExclusive,
            (LockMode::Shared, true) => FlockOperation::NonBlockingLockShared,
            (LockMode::Exclusive, true) => FlockOperation::NonBlockingLockExclusive,
        };
        loop {
            match flock(&file, op) {
                Ok(()) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(ImageError::io(path, e.into())),
            }
        }
        Ok(FileLock {
            _file: file,
            path: path.to_owned(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
