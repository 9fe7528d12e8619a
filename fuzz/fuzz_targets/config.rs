//! The config loader on any text: TOML parsing, then validation. A config is the user's
//! input; whatever it says must end in a config or in an error that names the problem,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipecrawl::config::ConfigError;
use pipecrawl::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text, "fuzz") {
        Ok(config) => assert!(!config.seeds.is_empty(), "a valid config has seeds"),
        Err(ConfigError::Invalid { problems, .. }) => {
            assert!(!problems.is_empty(), "an invalid config says why");
        }
        Err(_) => {}
    }
});
