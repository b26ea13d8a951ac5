//! Any text as a config file: loading and validation must answer with a
//! config or named errors, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = farol_common::config::parse_toml(text);
    }
});
