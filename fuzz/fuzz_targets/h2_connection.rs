//! The HTTP/2 server's frame reader and everything behind it: the input is what a client sends
//! after the preface, served by a router with no routes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static CONTEXT: OnceLock<switchyard::server::ConnContext> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let ctx = CONTEXT.get_or_init(switchyard::router::fuzz_context);
    switchyard::server::fuzz_connection(data, ctx);
});
