//! URL normalisation on any text, alone and as an href resolved against a base (the input's
//! first line, when it is a crawlable URL). Besides not panicking, a normalised URL must
//! be crawlable and normalise to itself: the frontier's unique `url` column is its dedup,
//! so two spellings of one normalised URL would be one page fetched twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipecrawl::urlnorm;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(url) = urlnorm::normalize_str(text) {
        check(&url);
    }
    let (base, href) = text.split_once('\n').unwrap_or(("", text));
    let base = urlnorm::normalize_str(base)
        .unwrap_or_else(|_| Url::parse("http://example.com/dir/page?q=1").expect("a constant URL"));
    if let Ok(url) = urlnorm::resolve(&base, href) {
        check(&url);
    }
});

fn check(url: &Url) {
    assert!(matches!(url.scheme(), "http" | "https"), "{url}");
    assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{url}");
    assert!(url.fragment().is_none(), "{url}");
    assert_eq!(
        urlnorm::normalize_str(url.as_str()).as_ref(),
        Ok(url),
        "a normalised URL normalises to itself"
    );
    assert!(!urlnorm::host_key(url).is_empty(), "{url}");
}
