//! The config loader: any text must load or be refused with an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let env = |_: &str| Some("x".repeat(40));
        let _ = amp_core::AmpConfig::from_toml_str(text, &env, std::iter::empty());
    }
});
