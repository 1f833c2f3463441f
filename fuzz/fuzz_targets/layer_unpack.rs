//! Unpacking a layer never panics and never writes outside its directory, whatever the bytes
//! (compressed or not): the unpacking path is fed arbitrary input into a fresh directory
//! inside a sentinel directory, and the sentinel must hold nothing else afterwards.
#![no_main]
use libfuzzer_sys::fuzz_target;
use standin_image::limits::Limits;
use standin_image::{Ownership, unpack_blob};

fuzz_target!(|data: &[u8]| {
    let sentinel = tempfile::tempdir().expect("tempdir");
    let dest = sentinel.path().join("layer");
    std::fs::create_dir(&dest).expect("mkdir");
    let owners = Ownership {
        uid_base: 0,
        gid_base: 0,
        len: 65536,
        chown: false,
    };
    let limits = Limits {
        max_total: 1 << 20,
        max_file: 1 << 20,
        max_entries: 10_000,
        ..Limits::default()
    };
    let _ = unpack_blob(data, &dest, &owners, &limits);
    let names: Vec<_> = std::fs::read_dir(sentinel.path())
        .expect("read sentinel")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("layer")], "wrote outside the layer");
});
