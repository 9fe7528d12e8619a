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
        // `seeds = []` is valid (a service fed over its API, a database that holds its
        // seeds); what the frontier relies on is that every seed given is crawlable.
        Ok(config) => {
            for seed in &config.seeds {
                assert!(matches!(seed.scheme(), "http" | "https"), "{seed}");
                assert!(seed.host_str().is_some_and(|h| !h.is_empty()), "{seed}");
            }
        }
        Err(ConfigError::Invalid { problems, .. }) => {
            assert!(!problems.is_empty(), "an invalid config says why");
        }
        Err(_) => {}
    }
});
