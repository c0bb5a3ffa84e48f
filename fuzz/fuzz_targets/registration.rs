//! gorouter's registration JSON, as the admin API, NATS and etcd receive it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::time::Duration;
use switchyard::routing::Source;

fuzz_target!(|data: &[u8]| {
    if let Ok(messages) = switchyard::registry::parse_messages(data) {
        for message in messages {
            let _ = message.removals();
            let _ = message.registrations(Source::Nats, Some(Duration::from_secs(120)));
        }
    }
});
