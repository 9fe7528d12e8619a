//! The parse stage's extraction: any bytes, decoded as the parser decodes a body, then the
//! title and links taken out. Besides not panicking, what comes out must be what the
//! writer may store: links crawlable, normalised, never to the page itself, and texts with
//! their whitespace collapsed and their length bounded.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use pipecrawl::html::Syntax;
use pipecrawl::parser::{extract, MAX_TEXT_BYTES};
use pipecrawl::traps::Traps;
use pipecrawl::{charset, urlnorm, Config};
use url::Url;

/// The default trap limits (`traps.max_links_per_page` bounds a page's links).
static TRAPS: LazyLock<Traps> = LazyLock::new(|| {
    let config =
        Config::from_toml("seeds = ['http://example.com/']", "fuzz").expect("a constant config");
    Traps::new(&config.traps)
});

fuzz_target!(|data: &[u8]| {
    let page = Url::parse("http://example.com/dir/page.html").expect("a constant URL");
    // The first byte's low bit picks the markup's syntax: XHTML's empty tags end their
    // elements, a path HTML never takes.
    let syntax = match data.first() {
        Some(b) if b & 1 == 1 => Syntax::Xml,
        _ => Syntax::Html,
    };
    let html = charset::decode(data, Some("text/html"));
    let traps = &*TRAPS;
    let extracted = extract(
        &html.text,
        &page,
        (html.encoding, syntax),
        (None, traps),
        "pipecrawl",
    );
    assert!(
        extracted.links.len() <= traps.max_links_per_page(),
        "links are bounded"
    );
    if let Some(title) = &extracted.title {
        assert_collapsed(title);
        assert!(!title.is_empty());
    }
    for link in &extracted.links {
        assert_ne!(link.target, page, "a link to the page itself");
        assert_eq!(
            urlnorm::normalize_str(link.target.as_str()).as_ref(),
            Ok(&link.target),
            "link targets are normalised"
        );
        assert_collapsed(&link.anchor_text);
        if let Some(rel) = &link.rel {
            assert_collapsed(rel);
        }
    }
});

fn assert_collapsed(text: &str) {
    assert_eq!(
        text.split_ascii_whitespace().collect::<Vec<_>>().join(" "),
        text,
        "whitespace is collapsed"
    );
    assert!(text.len() <= MAX_TEXT_BYTES, "texts are bounded");
}
