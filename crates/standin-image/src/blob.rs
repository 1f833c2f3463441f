//! From a layer blob to an unpacked directory: decompression (gzip, zstd or none, told by the
//! magic bytes as Docker does), the diff ID, and the unpacker, on two threads.
//!
//! Decompressing and writing files are the two costs of a pull, about equal in size, so they
//! run as a pipeline: one thread decompresses and hashes the tar stream (the diff ID must cover
//! every byte, including the padding after the archive), the calling thread unpacks it. A
//! bounded queue of [`PIPE_CHUNK`]-byte buffers, [`PIPE_DEPTH`] deep, sits between them, so
//! memory stays bounded whatever the layer's size. Either side stopping stops the other: an
//! unpacker that refuses an entry drops the queue, and the decompressor's next send fails; a
//! decompressor that fails sends its error, which the unpacker reads as a failed read.

use crate::error::LayerRefusal;
use crate::limits::Limits;
use crate::unpack::{Ownership, UnpackError, unpack};
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Bytes tolerated after a tar's end-of-archive marker (real archives pad to 10 KiB).
pub(crate) const MAX_TRAILING: u64 = 1 << 20;
/// Size of one buffer of decompressed tar bytes handed to the unpacker.
const PIPE_CHUNK: usize = 256 << 10;
/// Buffers queued between the decompressor and the unpacker.
const PIPE_DEPTH: usize = 8;
/// Read-ahead on the compressed side.
const COMPRESSED_BUFFER: usize = 128 << 10;

/// Decompress `blob`, unpack it into `dest` under the hostile-layer rules, and return the
/// diff ID (`sha256:…` of the tar stream).
pub fn unpack_blob<R: Read + Send>(
    mut blob: R,
    dest: &Path,
    owners: &Ownership,
    limits: &Limits,
) -> Result<String, UnpackError> {
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut blob, &mut magic)?;
    let joined = BufReader::with_capacity(
        COMPRESSED_BUFFER,
        io::Cursor::new(magic).take(got as u64).chain(blob),
    );
    let kind = Compression::of(&magic[..got]);
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel(PIPE_DEPTH);
        let decompressing = std::thread::Builder::new()
            .name("layer-decompress".into())
            .spawn_scoped(scope, move || decompress_and_hash(kind, joined, tx))
            .map_err(UnpackError::Io)?;
        let unpacked = unpack_all(PipeReader::new(rx), dest, owners, limits);
        let diff_id = decompressing
            .join()
            .map_err(|_| io::Error::other("the layer decompressor panicked"))?;
        unpacked?;
        // The unpacker read to the end, so the decompressor saw every byte.
        Ok(diff_id?)
    })
}

/// How a blob is compressed.
#[derive(Clone, Copy)]
enum Compression {
    Gzip,
    Zstd,
    None,
}

impl Compression {
    fn of(magic: &[u8]) -> Compression {
        if magic.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// The decompressor's side: read the whole stream, hash it, hand it on. Returns the diff ID,
/// or the read error (which the unpacker has also been sent).
fn decompress_and_hash<R: BufRead>(
    kind: Compression,
    compressed: R,
    tx: SyncSender<io::Result<Vec<u8>>>,
) -> io::Result<String> {
    let mut tar: Box<dyn Read> = match kind {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(compressed)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(compressed)?),
        Compression::None => Box::new(compressed),
    };
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    loop {
        let mut chunk = vec![0u8; PIPE_CHUNK];
        let n = match read_up_to(&mut tar, &mut chunk) {
            Ok(n) => n,
            Err(e) => {
                let kind = e.kind();
                let message = e.to_string();
                let _ = tx.send(Err(e));
                return Err(io::Error::new(kind, message));
            }
        };
        if n == 0 {
            return Ok(format!(
                "sha256:{}",
                crate::pull::hex(ctx.finish().as_ref())
            ));
        }
        chunk.truncate(n);
        ctx.update(&chunk);
        if tx.send(Ok(chunk)).is_err() {
            // The unpacker stopped (it refused an entry, or failed); its error says why.
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the unpacker stopped reading",
            ));
        }
    }
}

/// The unpacker's side: every entry, then no more than [`MAX_TRAILING`] bytes of padding.
fn unpack_all(
    mut tar: PipeReader,
    dest: &Path,
    owners: &Ownership,
    limits: &Limits,
) -> Result<(), UnpackError> {
    let (_stats, mut rest) = unpack(&mut tar, dest, owners, limits)?;
    let trailing = io::copy(&mut (&mut rest).take(MAX_TRAILING + 1), &mut io::sink())?;
    if trailing > MAX_TRAILING {
        return Err(LayerRefusal::TooLarge {
            what: "data after the end of the archive",
            limit: MAX_TRAILING,
        }
        .into());
    }
    Ok(())
}

/// Fill `buf` as far as the reader allows; fewer bytes only at the end of the stream.
fn read_up_to<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads the decompressor's buffers in order.
struct PipeReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
}

impl PipeReader {
    fn new(rx: Receiver<io::Result<Vec<u8>>>) -> PipeReader {
        PipeReader {
            rx,
            current: Vec::new(),
            at: 0,
        }
    }
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match self.rx.recv() {
                // The decompressor finished (or stopped after sending its error).
                Err(_) => return Ok(0),
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    use crate::unpack::tests::owners;

    /// A regular file's header, owned by root, of `size` bytes.
    fn file_header(mut h: tar::Header, size: usize) -> tar::Header {
        h.set_size(size as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        h
    }

    /// A tar of `files` (name, size in bytes of a repeating pattern) and its diff ID.
    fn tar_of(files: &[(&str, usize)]) -> (Vec<u8>, String) {
        let mut b = tar::Builder::new(Vec::new());
        for (name, size) in files {
            let data: Vec<u8> = (0..*size).map(|i| (i % 251) as u8).collect();
            let mut h = file_header(tar::Header::new_gnu(), data.len());
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let id = format!(
            "sha256:{}",
            crate::pull::hex(ring::digest::digest(&ring::digest::SHA256, &tar).as_ref())
        );
        (tar, id)
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn unpack_into(blob: &[u8]) -> (tempfile::TempDir, Result<String, UnpackError>) {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("layer");
        std::fs::create_dir(&dest).unwrap();
        let r = unpack_blob(blob, &dest, &owners(), &Limits::default());
        (dir, r)
    }

    #[test]
    fn every_compression_gives_the_tar_diff_id() {
        // Several pipe chunks' worth, so the queue fills and drains.
        let (tar, id) = tar_of(&[("a", 3 * PIPE_CHUNK + 17), ("dir/b", 5), ("c", 0)]);
        let zstd = zstd::encode_all(&tar[..], 1).unwrap();
        for (what, blob) in [("plain", tar.clone()), ("gzip", gzip(&tar)), ("zstd", zstd)] {
            let (dir, r) = unpack_into(&blob);
            assert_eq!(r.unwrap(), id, "{what}");
            let a = std::fs::read(dir.path().join("layer/a")).unwrap();
            assert_eq!(a.len(), 3 * PIPE_CHUNK + 17, "{what}");
            assert_eq!(a[1000], (1000 % 251) as u8, "{what}");
            assert_eq!(
                std::fs::read(dir.path().join("layer/dir/b")).unwrap().len(),
                5
            );
        }
    }

    #[test]
    fn a_corrupt_stream_is_an_error_not_a_layer() {
        let (tar, _) = tar_of(&[("a", 4 * PIPE_CHUNK)]);
        let mut gz = gzip(&tar);
        let mid = gz.len() / 2;
        gz[mid..].iter_mut().for_each(|b| *b ^= 0x5a);
        let (_dir, r) = unpack_into(&gz);
        assert!(matches!(r, Err(UnpackError::Io(_))), "{r:?}");
        // Cut short: the tar ends early.
        let (_dir, r) = unpack_into(&gzip(&tar)[..mid]);
        assert!(r.is_err(), "{r:?}");
    }

    #[test]
    fn too_much_after_the_archive_is_refused() {
        let (mut tar, _) = tar_of(&[("a", 10)]);
        tar.extend(std::iter::repeat_n(0u8, MAX_TRAILING as usize + 4096));
        let (_dir, r) = unpack_into(&gzip(&tar));
        assert!(
            matches!(r, Err(UnpackError::Refused(LayerRefusal::TooLarge { .. }))),
            "{r:?}"
        );
    }

    /// The unpacker refuses the first entry while the decompressor still has many chunks to
    /// send: the decompressor must notice and stop, not block on a full queue forever.
    #[test]
    fn a_refusal_early_in_a_long_stream_stops_both_sides() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..5].copy_from_slice(b"../x\0");
        b.append(&file_header(h, 0), &[][..]).unwrap();
        let data = vec![7u8; (PIPE_DEPTH + 4) * PIPE_CHUNK];
        let mut h = file_header(tar::Header::new_gnu(), data.len());
        b.append_data(&mut h, "big", &data[..]).unwrap();
        let (_dir, r) = unpack_into(&gzip(&b.into_inner().unwrap()));
        assert!(matches!(r, Err(UnpackError::Refused(_))), "{r:?}");
    }
}
