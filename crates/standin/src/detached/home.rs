//! Where detached sandboxes live on the host: one directory per name under
//! `<state dir>/sandboxes/` (the state directory images use), only the owner may enter.
//!
//! ```text
//! sandboxes/<name>/  0700, created with mkdir: the name is claimed atomically
//!   record.json      what `ls` and `inspect` show (no secret values), replaced atomically
//!   control.sock     the supervisor's control channel
//!   lock             flock'ed by the supervisor for its whole life: free means it is gone
//!   output.log       the main command's stdout and stderr (output.log.1: the previous part)
//!   supervisor.log   the supervisor's own diagnostics
//! ```

use super::SandboxState;
use crate::Error;
use crate::limits::{LimitUsage, ResourceLimits};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Longest sandbox name.
pub const MAX_NAME_LEN: usize = 63;
/// Largest record file read.
const MAX_RECORD_BYTES: u64 = 1 << 20;

/// Check a sandbox name: 1 to 63 characters from `a-z A-Z 0-9 _ . -`, starting with a letter
/// or digit (Docker's rule, so names are safe as file names and in shells).
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "sandbox name {:?}: use 1 to {MAX_NAME_LEN} characters from a-z, A-Z, 0-9, '_', '.' and '-', starting with a letter or digit",
            name.chars().take(80).collect::<String>()
        ))
    }
}

/// The directory holding every detached sandbox of this user.
pub(crate) fn sandboxes_dir() -> PathBuf {
    standin_image::state_dir().join("sandboxes")
}

/// One sandbox's directory.
#[derive(Debug, Clone)]
pub(crate) struct SandboxDir {
    pub(crate) path: PathBuf,
}

impl SandboxDir {
    /// The directory of `name` (which is checked).
    pub(crate) fn of(name: &str) -> Result<SandboxDir, Error> {
        validate_name(name).map_err(Error::config)?;
        Ok(SandboxDir {
            path: sandboxes_dir().join(name),
        })
    }

    /// Claim `name`: create its directory, failing when it exists.
    pub(crate) fn claim(name: &str) -> Result<SandboxDir, Error> {
        let dir = SandboxDir::of(name)?;
        let parent = sandboxes_dir();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&parent)
            .map_err(|e| io_error(format!("creating {}", parent.display()), e))?;
        match std::fs::DirBuilder::new().mode(0o700).create(&dir.path) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let state = match dir.read_record() {
                    Ok(r) => dir.state(&r),
                    Err(_) => SandboxState::Dead,
                };
                Err(Error::config(match state {
                    SandboxState::Running => format!(
                        "a sandbox named {name:?} is already running; pick another name, or `standin rm -f {name}` it first"
                    ),
                    _ => format!(
                        "a sandbox named {name:?} exists ({}); remove it first with `standin rm {name}`",
                        state.as_str()
                    ),
                }))
            }
            Err(e) => Err(io_error(format!("creating {}", dir.path.display()), e)),
        }
    }

    pub(crate) fn record_path(&self) -> PathBuf {
        self.path.join("record.json")
    }

    pub(crate) fn control(&self) -> PathBuf {
        self.path.join("control.sock")
    }

    pub(crate) fn lock_path(&self) -> PathBuf {
        self.path.join("lock")
    }

    pub(crate) fn output_log(&self) -> PathBuf {
        self.path.join("output.log")
    }

    pub(crate) fn supervisor_log(&self) -> PathBuf {
        self.path.join("supervisor.log")
    }

    /// The record, as last written.
    pub(crate) fn read_record(&self) -> Result<Record, Error> {
        use std::io::Read;
        let mut text = Vec::new();
        std::fs::File::open(self.record_path())
            .and_then(|f| f.take(MAX_RECORD_BYTES).read_to_end(&mut text))
            .map_err(|e| io_error(format!("reading {}", self.record_path().display()), e))?;
        serde_json::from_slice(&text).map_err(|e| {
            Error::Io(std::io::Error::other(format!(
                "{} is damaged ({e}); remove the sandbox with `standin rm`",
                self.record_path().display()
            )))
        })
    }

    /// Replace the record atomically.
    pub(crate) fn write_record(&self, record: &Record) -> Result<(), Error> {
        let tmp = self.path.join("record.json.tmp");
        let text = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&text)?;
        f.sync_data()?;
        std::fs::rename(&tmp, self.record_path())?;
        Ok(())
    }

    /// Take the supervisor's lock (held as long as the returned descriptor is open).
    pub(crate) fn lock(&self) -> Result<OwnedFd, Error> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(self.lock_path())?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| io_error("locking the sandbox".into(), e.into()))?;
        Ok(f.into())
    }

    /// Whether a supervisor holds the lock.
    pub(crate) fn supervised(&self) -> bool {
        let Ok(f) = std::fs::File::open(self.lock_path()) else {
            return false;
        };
        rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockShared).is_err()
    }

    /// The state `record` is in, given whether its supervisor still lives.
    pub(crate) fn state(&self, record: &Record) -> SandboxState {
        match (&record.exit, self.supervised()) {
            (Some(_), _) => SandboxState::Exited,
            (None, true) => SandboxState::Running,
            (None, false) => SandboxState::Dead,
        }
    }
}

/// What a detached sandbox's supervisor records: everything `inspect` shows but the live
/// figures. Never a secret value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) hostname: String,
    /// Seconds since the epoch.
    pub(crate) created: u64,
    pub(crate) supervisor_pid: u32,
    pub(crate) init_pid: i32,
    /// The image reference, the rootfs directory, or `host`.
    pub(crate) root: String,
    pub(crate) command: Option<Vec<String>>,
    pub(crate) limits: ResourceLimits,
    pub(crate) warnings: Vec<String>,
    /// The configuration it was created with (secrets without their values).
    pub(crate) config: serde_json::Value,
    /// Set once the main command (or the sandbox) has ended.
    pub(crate) exit: Option<Exit>,
}

/// How a detached sandbox ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Exit {
    pub(crate) code: i32,
    /// Seconds since the epoch.
    pub(crate) finished: u64,
    pub(crate) usage: Option<LimitUsage>,
    pub(crate) terminated_by_violation: bool,
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) fn io_error(what: String, e: std::io::Error) -> Error {
    Error::Io(std::io::Error::new(e.kind(), format!("{what}: {e}")))
}

/// Remove a sandbox's directory (its record, logs, socket).
pub(crate) fn remove_dir(path: &Path) -> Result<(), Error> {
    std::fs::remove_dir_all(path).map_err(|e| io_error(format!("removing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        for ok in ["agent", "a", "agent-1.b_c", &"x".repeat(63)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            ".a",
            "a/b",
            "a b",
            "ä",
            &"x".repeat(64),
            "..",
            "a\0",
        ] {
            let err = validate_name(bad).unwrap_err();
            assert!(err.contains("1 to 63 characters"), "{err}");
        }
    }
}
