//! WebSocket client frames: the parser never panics, and a clean stream passes unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use standin_boundary::fuzzing::ClientFrames;
use standin_policy::secrets::Patterns;
use std::sync::Arc;

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (data, cuts) = input;
    let pats = Arc::new(Patterns::new([(0usize, b"$MSB_K".as_slice())]));
    let mut p = ClientFrames::new(pats);
    let mut points: Vec<usize> = cuts.iter().map(|c| usize::from(*c) % (data.len() + 1)).collect();
    points.sort_unstable();
    points.push(data.len());
    let mut out = Vec::new();
    let mut prev = 0;
    for &c in &points {
        match p.push(&data[prev..c]) {
            Ok(o) => out.extend(o),
            Err(_) => return,
        }
        prev = c;
    }
    if let Ok(rest) = p.finish() {
        out.extend(rest);
        // Frames are forwarded as sent, never altered or reordered.
        assert_eq!(out, data);
    }
});
