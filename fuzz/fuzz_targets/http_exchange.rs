//! The whole inspected-HTTP path on sandbox bytes: hyper's HTTP/1.1 server (request heads,
//! chunked and fixed bodies, pipelining) or HTTP/2 server (frames, HPACK, flow control), our
//! checks, rewriting and body scanning, and hyper's client towards the destination.
//!
//! Besides "never panics", two properties are checked on what the destination received:
//! - a destination the secret does not allow never sees the real value;
//! - nor the placeholder itself, raw: that is a violation and must be blocked first.
#![no_main]
use libfuzzer_sys::fuzz_target;
use standin_boundary::fuzzing::{PLACEHOLDER, VALUE, serve_bytes};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, input)) = data.split_first() else {
        return;
    };
    let h2 = flags & 1 == 1;
    let allowed = flags & 2 == 2;
    let mut bytes = Vec::with_capacity(input.len() + 24);
    if h2 {
        // Past the connection preface, so the fuzzer spends its time on frames.
        bytes.extend_from_slice(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    }
    bytes.extend_from_slice(input);
    let out = RT.with(|rt| rt.block_on(serve_bytes(&bytes, h2, allowed)));
    if !allowed {
        let sent_value = contains(input, VALUE.as_bytes());
        assert!(
            sent_value || !contains(&out.upstream_received, VALUE.as_bytes()),
            "the real value reached a destination it is not allowed for"
        );
        assert!(
            !contains(&out.upstream_received, PLACEHOLDER.as_bytes()),
            "the placeholder reached a destination it is not allowed for"
        );
    }
});
