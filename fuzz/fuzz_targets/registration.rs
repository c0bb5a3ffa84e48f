//! gorouter's registration JSON, as the admin API (and later NATS and etcd) receive it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    if let Ok(messages) = switchyard::registry::parse_messages(data) {
        for message in messages {
            let _ = message.registrations(Duration::from_secs(120));
            let _ = message.removals();
        }
    }
});
