//! The output log of a detached sandbox: the main command's stdout and stderr, in the order
//! they arrive, in parts of at most [`MAX_LOG_PART`] bytes. When a part is full it becomes
//! `output.log.1` (replacing the one before) and a new part starts, so a chatty or hostile
//! command can hold at most two parts of the host's disk.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Largest part of an output log.
pub const MAX_LOG_PART: u64 = 16 << 20;

/// The writing end, shared by the stdout and stderr copiers.
#[derive(Debug)]
pub(crate) struct Log {
    path: PathBuf,
    file: File,
    written: u64,
}

fn open(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

/// The file a full part is moved to.
pub(crate) fn previous_part(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

impl Log {
    pub(crate) fn create(path: &Path) -> io::Result<Log> {
        let file = open(path)?;
        let written = file.metadata()?.len();
        Ok(Log {
            path: path.to_owned(),
            file,
            written,
        })
    }

    fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.written >= MAX_LOG_PART {
                std::fs::rename(&self.path, previous_part(&self.path))?;
                self.file = open(&self.path)?;
                self.written = 0;
            }
            let room = usize::try_from(MAX_LOG_PART - self.written).unwrap_or(usize::MAX);
            let n = bytes.len().min(room);
            self.file.write_all(&bytes[..n])?;
            self.written += n as u64;
            bytes = &bytes[n..];
        }
        Ok(())
    }
}

/// Copy `from` into `log` until end of file, on a thread of its own.
pub(crate) fn copy_into(
    mut from: impl Read + Send + 'static,
    log: Arc<Mutex<Log>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let Ok(mut log) = log.lock() else { break };
            if let Err(e) = log.write(&buf[..n]) {
                tracing::warn!(error = %e, "cannot write the output log; output is dropped");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_part_moves_aside_and_at_most_two_parts_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        let mut log = Log::create(&path).unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..(3 * MAX_LOG_PART / chunk.len() as u64) {
            log.write(&chunk).unwrap();
        }
        log.write(b"tail").unwrap();
        let now = std::fs::metadata(&path).unwrap().len();
        let before = std::fs::metadata(previous_part(&path)).unwrap().len();
        assert_eq!((now, before), (4, MAX_LOG_PART));
        assert!(std::fs::read(&path).unwrap().ends_with(b"tail"));
    }
}
