//! The config file: parsing and every check after it (errors name file, line and key).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(errors) = switchyard::config::Config::from_toml(text) {
            let _ = errors.to_string();
        }
    }
});
