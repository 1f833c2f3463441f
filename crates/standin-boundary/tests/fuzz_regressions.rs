//! Inputs the fuzz targets once failed on (`fuzz/regressions/<target>/`), replayed with the
//! same checks as the target, so a fixed finding stays fixed without running a fuzzer.

use standin_boundary::fuzzing::{PLACEHOLDER, VALUE, serve_bytes};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/regressions/").to_owned() + target;
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no regression inputs in {dir}");
    out
}

/// Same checks as `fuzz/fuzz_targets/http_exchange.rs`.
#[test]
fn http_exchange() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    for (name, data) in inputs("http_exchange") {
        let Some((&flags, input)) = data.split_first() else {
            continue;
        };
        let (h2, allowed) = (flags & 1 == 1, flags & 2 == 2);
        let mut bytes = Vec::new();
        if h2 {
            bytes.extend_from_slice(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        }
        bytes.extend_from_slice(input);
        let out = rt.block_on(serve_bytes(&bytes, h2, allowed));
        if !allowed {
            assert!(
                contains(input, VALUE.as_bytes())
                    || !contains(&out.upstream_received, VALUE.as_bytes()),
                "{name}: the real value reached a destination it is not allowed for"
            );
            assert!(
                !contains(&out.upstream_received, PLACEHOLDER.as_bytes()),
                "{name}: the placeholder reached a destination it is not allowed for:\n{}",
                String::from_utf8_lossy(&out.upstream_received)
            );
        }
    }
}
