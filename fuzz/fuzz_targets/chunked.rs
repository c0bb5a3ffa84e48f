//! The hand-written HTTP/1.1 client's chunked body decoder (sizes, extensions, trailers).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard::upstream::fuzz_chunked(data));
