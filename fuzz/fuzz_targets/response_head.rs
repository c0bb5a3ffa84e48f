//! The hand-written HTTP/1.1 client's response-head parser (framing, Content-Length rules).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard::upstream::fuzz_response_head(data));
