//! Differential: the streaming placeholder scanner and substituter give the one-shot answer
//! on any chunking, and nothing the scanner calls safe before a hit contains a placeholder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use standin_policy::secrets::scan::{replace_all, scan_all};
use standin_policy::secrets::{Patterns, StreamScanner, StreamSubstituter};
use std::sync::Arc;

fn values(i: usize) -> &'static [u8] {
    [b"REAL-ONE".as_slice(), b"R2".as_slice(), b"a-much-longer-real-value".as_slice()][i]
}

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (data, cuts) = input;
    let pats = Arc::new(Patterns::new([
        (0usize, b"$MSB_KEY".as_slice()),
        (1, b"$MSB_KEY_2".as_slice()),
        (2, b"{{tok}}".as_slice()),
    ]));
    let mut points: Vec<usize> = cuts.iter().map(|c| usize::from(*c) % (data.len() + 1)).collect();
    points.sort_unstable();
    points.push(data.len());

    let expected = replace_all(&pats, &data, &values).unwrap_or_else(|| data.clone());
    let mut sub = StreamSubstituter::new(pats.clone());
    let mut out = Vec::new();
    let mut prev = 0;
    for &p in &points {
        sub.push(&data[prev..p], &values, &mut out);
        prev = p;
    }
    sub.finish(&values, &mut out);
    assert_eq!(out, expected);

    let one_shot = scan_all(&pats, &data).is_err();
    let mut sc = StreamScanner::new(pats.clone());
    let (mut prev, mut hit, mut safe) = (0, false, 0u64);
    for &p in &points {
        match sc.push(&data[prev..p]) {
            Ok(s) => {
                assert!(s >= safe && s <= p as u64);
                safe = s;
            }
            Err(_) => {
                hit = true;
                break;
            }
        }
        prev = p;
    }
    if !hit {
        hit = sc.finish().is_err();
    }
    assert_eq!(hit, one_shot);
    assert!(scan_all(&pats, &data[..safe as usize]).is_ok());
});
