//! The SigV4 readers on sandbox bytes: the strict `Authorization` parser, the lenient
//! key-ID and presigned-URL recognisers, and the payload mode. None may panic; whatever the
//! strict parser accepts must also be recognised as SigV4 and name its own key ID.
#![no_main]

use libfuzzer_sys::fuzz_target;
use standin_policy::secrets::aws::{
    PayloadMode, SigV4Authorization, claims_sigv4, mentions_key_id, presigned_key_id,
};

fuzz_target!(|data: &[u8]| {
    let _ = presigned_key_id(data);
    let _ = PayloadMode::from_header(Some(data));
    let _ = mentions_key_id(data, "AKIAIOSFODNN7EXAMPLE");
    if let Some(a) = SigV4Authorization::parse(data) {
        assert!(claims_sigv4(data));
        assert!(mentions_key_id(data, &a.access_key_id) || a.access_key_id.is_empty());
    }
});
