//! robots.txt rules on any bytes (`src/robots/rules.rs`, read as a 2xx body), asked about
//! the paths its own lines name, with a `x` and a `/x` after each (so that patterns meet
//! paths they nearly match). Besides not panicking and taking no time, a verdict must
//! allow or disallow (a file that was served is never "unavailable"), never close
//! robots.txt itself, and the file's sitemaps and delay must be what the crawler can use.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pipecrawl::robots::{Robots, Verdict};
use pipecrawl::urlnorm;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let location = Url::parse("http://example.com/robots.txt").expect("a constant URL");
    let robots = Robots::from_body(data, &location, "pipecrawl", tokio::time::Instant::now());
    assert_eq!(
        robots.verdict(&location),
        Verdict::Allowed,
        "robots.txt itself"
    );
    assert!(
        robots
            .crawl_delay
            .is_none_or(|d| d <= Duration::from_secs(86_400)),
        "{:?}",
        robots.crawl_delay
    );
    for sitemap in &robots.sitemaps {
        assert!(matches!(sitemap.scheme(), "http" | "https"), "{sitemap}");
    }
    let text = String::from_utf8_lossy(data);
    for line in text.split(['\n', '\r', '\0']) {
        let value = line
            .split_once([':', ' '])
            .map_or(line, |(_, value)| value)
            .trim();
        for path in [value.to_owned(), format!("{value}x"), format!("{value}/x")] {
            let Ok(url) = urlnorm::resolve(&location, &path) else {
                continue;
            };
            let verdict = robots.verdict(&url);
            assert_ne!(verdict, Verdict::Unavailable, "{url}");
            assert_eq!(robots.verdict(&url), verdict, "asked twice: {url}");
        }
    }
});
