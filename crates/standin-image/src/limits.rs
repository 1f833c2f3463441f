//! Named limits on what a layer may contain. A layer is hostile input: anything beyond these
//! is refused, and nothing of the layer is published.

/// Limits applied while unpacking one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Tar entries in one layer (headers included).
    pub max_entries: u64,
    /// Bytes in one entry path or link target.
    pub max_path: usize,
    /// Bytes in one regular file.
    pub max_file: u64,
    /// Bytes of file contents in one layer.
    pub max_total: u64,
    /// Bytes in one PAX extended header (or GNU long name record).
    pub max_pax: u64,
    /// Extended attributes on one entry.
    pub max_xattrs: usize,
    /// Bytes in one extended attribute value.
    pub max_xattr_value: usize,
}

/// Entries in one layer: a full Debian userland has ~10 000; node_modules-heavy layers a few
/// hundred thousand.
pub const MAX_ENTRIES: u64 = 2_000_000;
/// Linux's `PATH_MAX`.
pub const MAX_PATH: usize = 4096;
/// One file: 16 GiB.
pub const MAX_FILE: u64 = 16 << 30;
/// One layer's file contents: 64 GiB.
pub const MAX_TOTAL: u64 = 64 << 30;
/// One PAX header: 1 MiB.
pub const MAX_PAX: u64 = 1 << 20;
/// Extended attributes per entry.
pub const MAX_XATTRS: usize = 64;
/// One extended attribute value: the kernel's own limit (`XATTR_SIZE_MAX`).
pub const MAX_XATTR_VALUE: usize = 64 << 10;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_entries: MAX_ENTRIES,
            max_path: MAX_PATH,
            max_file: MAX_FILE,
            max_total: MAX_TOTAL,
            max_pax: MAX_PAX,
            max_xattrs: MAX_XATTRS,
            max_xattr_value: MAX_XATTR_VALUE,
        }
    }
}
