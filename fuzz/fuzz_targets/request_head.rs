//! Request heads and CONNECT lines from the sandbox: sniffing and parsing never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use standin_boundary::fuzzing::looks_like_http;

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_http(data);
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    if let Ok(httparse::Status::Complete(_)) = req.parse(data) {
        if let Some(path) = req.path {
            let _ = standin_boundary::fuzzing::split_authority(path);
        }
    }
});
