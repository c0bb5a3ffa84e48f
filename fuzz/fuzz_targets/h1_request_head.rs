//! The hand-written HTTP/1.1 server's request-head parser, over pipelined heads.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard::server::fuzz_request_head(data));
