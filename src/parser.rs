//! The parse pool: OS threads turning fetched HTML into a title, links and the new URLs
//! worth crawling.
//!
//! Parsing is the crawl's CPU work, and `scraper::Html` is not `Send`, so each document
//! lives and dies on one plain thread; the pool is sized to the cores. Scope and priority
//! are decided here too, keeping the single writer's work to inserting rows.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use scraper::{ElementRef, Html, Selector};
use url::Url;
use xxhash_rust::xxh3::xxh3_128;

use crate::charset;
use crate::page::{Discovered, ErrorKind, FetchError, Fetched, Link, PageRecord};
use crate::scope::Scope;
use crate::urlnorm;

pub struct ParsePool;

impl ParsePool {
    /// Starts `workers` threads; each stops when its input closes or its output is gone.
    pub fn spawn(
        workers: usize,
        fetched: flume::Receiver<Fetched>,
        records: flume::Sender<PageRecord>,
        scope: Arc<Scope>,
    ) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
        (0..workers)
            .map(|i| {
                let worker = ParseWorker {
                    fetched: fetched.clone(),
                    records: records.clone(),
                    scope: Arc::clone(&scope),
                };
                std::thread::Builder::new()
                    .name(format!("parse-{i}"))
                    .spawn(move || worker.run())
            })
            .collect()
    }
}

struct ParseWorker {
    fetched: flume::Receiver<Fetched>,
    records: flume::Sender<PageRecord>,
    scope: Arc<Scope>,
}

impl ParseWorker {
    fn run(self) {
        let extractor = Extractor::new();
        while let Ok(fetched) = self.fetched.recv() {
            let record = to_record(fetched, &extractor, &self.scope);
            if self.records.send(record).is_err() {
                break;
            }
        }
    }
}

/// Builds the page's row: parses HTML bodies, and turns links and a redirect target
/// into frontier candidates that are in scope.
pub fn to_record(f: Fetched, extractor: &Extractor, scope: &Scope) -> PageRecord {
    let content_hash = f.body.as_deref().map(|b| format!("{:032x}", xxh3_128(b)));
    let mut error = f.error;
    let mut title = None;
    let mut links = Vec::new();
    // The fetcher reads a body only for successful HTML.
    if let (None, Some(body)) = (&error, &f.body) {
        let text = charset::decode(body, f.content_type.as_deref());
        match catch_unwind(AssertUnwindSafe(|| extractor.extract(&text, &f.job.url))) {
            Ok(extracted) => {
                title = extracted.title;
                links = extracted.links;
            }
            Err(_) => {
                error = Some(FetchError {
                    kind: ErrorKind::Parse,
                    message: "the HTML parser failed on this page".to_owned(),
                });
            }
        }
    }

    let mut discovered = Vec::new();
    let mut seen = HashSet::new();
    let next_depth = f.job.depth + 1;
    for link in &links {
        if seen.insert(link.target.as_str()) && scope.admits(&link.target, next_depth) {
            discovered.push(candidate(scope, &link.target, next_depth, 0));
        }
    }
    if let (None, Some(target)) = (&error, &f.location) {
        if scope.admits(target, f.job.depth) {
            discovered.push(candidate(
                scope,
                target,
                f.job.depth,
                f.job.redirect_hops + 1,
            ));
        }
    }

    PageRecord {
        status: f.status,
        content_type: f.content_type,
        title,
        location: f.location,
        bytes: f.bytes,
        truncated: f.truncated,
        content_hash,
        etag: f.etag,
        last_modified: f.last_modified,
        fetched_at: f.fetched_at,
        elapsed_ms: f.elapsed_ms,
        error,
        links,
        discovered,
        job: f.job,
    }
}

fn candidate(scope: &Scope, url: &Url, depth: u32, redirect_hops: u32) -> Discovered {
    Discovered {
        url: url.clone(),
        host: urlnorm::host_key(url),
        depth,
        priority: scope.priority(url, depth),
        redirect_hops,
    }
}

/// What a page says about itself and where it points.
#[derive(Debug, Default)]
pub struct Extracted {
    pub title: Option<String>,
    pub links: Vec<Link>,
}

/// Compiled selectors, made once per parse thread.
pub struct Extractor {
    title: Selector,
    base: Selector,
    anchors: Selector,
    images: Selector,
}

impl Default for Extractor {
    fn default() -> Self {
        Self::new()
    }
}

impl Extractor {
    pub fn new() -> Self {
        let css = |s: &str| {
            Selector::parse(s).unwrap_or_else(|e| panic!("selector {s:?} is a constant: {e}"))
        };
        Self {
            title: css("title"),
            base: css("base[href]"),
            anchors: css("a[href], area[href]"),
            images: css("img[alt]"),
        }
    }

    /// The title (whitespace collapsed) and one link per distinct (target, anchor text),
    /// resolved against `<base href>` or the page URL. Links to the page itself and to
    /// schemes other than http(s) are left out.
    pub fn extract(&self, html: &str, page_url: &Url) -> Extracted {
        let doc = Html::parse_document(html);
        let title = doc
            .select(&self.title)
            .next()
            .map(|t| collapse_whitespace(t.text()))
            .filter(|t| !t.is_empty());
        let base = doc
            .select(&self.base)
            .next()
            .and_then(|b| b.value().attr("href"))
            .and_then(|href| page_url.join(href.trim()).ok())
            .unwrap_or_else(|| page_url.clone());

        let mut links = Vec::new();
        let mut seen = HashSet::new();
        for anchor in doc.select(&self.anchors) {
            let Some(href) = anchor.value().attr("href") else {
                continue;
            };
            let Ok(target) = urlnorm::resolve(&base, href) else {
                continue;
            };
            if target == *page_url {
                continue;
            }
            let anchor_text = self.anchor_text(anchor);
            if seen.insert((target.as_str().to_owned(), anchor_text.clone())) {
                let rel = anchor
                    .value()
                    .attr("rel")
                    .map(|r| collapse_whitespace(std::iter::once(r)))
                    .filter(|r| !r.is_empty());
                links.push(Link {
                    target,
                    anchor_text,
                    rel,
                });
            }
        }
        Extracted { title, links }
    }

    /// The link's text; for an image link without text, the images' alt text.
    fn anchor_text(&self, anchor: ElementRef<'_>) -> String {
        let text = collapse_whitespace(anchor.text());
        if !text.is_empty() {
            return text;
        }
        let alts = anchor
            .select(&self.images)
            .filter_map(|img| img.value().attr("alt"));
        collapse_whitespace(alts)
    }
}

/// Joins the pieces with runs of whitespace turned into single spaces, trimmed.
fn collapse_whitespace<'a>(pieces: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for word in pieces.flat_map(str::split_whitespace) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(html: &str, url: &str) -> Extracted {
        Extractor::new().extract(html, &Url::parse(url).unwrap())
    }

    fn pairs(e: &Extracted) -> Vec<(String, String)> {
        e.links
            .iter()
            .map(|l| (l.target.to_string(), l.anchor_text.clone()))
            .collect()
    }

    #[test]
    fn title_and_anchor_texts_have_whitespace_collapsed() {
        let e = extract(
            "<title>\n  A   <b>page</b> </title><a href='/x'> one\n <em>two</em> </a>",
            "http://h/",
        );
        assert_eq!(e.title.as_deref(), Some("A <b>page</b>"));
        assert_eq!(pairs(&e), vec![("http://h/x".into(), "one two".into())]);
    }

    #[test]
    fn links_resolve_against_base_href() {
        let e = extract(
            "<head><base href='/docs/'></head><a href='a.html'>A</a><a href='../b'>B</a><a href='//o.test/c'>C</a>",
            "http://h/index.html",
        );
        assert_eq!(
            pairs(&e),
            vec![
                ("http://h/docs/a.html".into(), "A".into()),
                ("http://h/b".into(), "B".into()),
                ("http://o.test/c".into(), "C".into()),
            ]
        );
    }

    #[test]
    fn self_links_other_schemes_and_repeats_are_not_links() {
        let e = extract(
            "<a href='#top'>top</a><a href='mailto:x@y'>m</a><a href='javascript:go()'>j</a>\
             <a href='/p#s'>P</a><a href='/p'>P</a><a href='/p'>again</a><a href='/p'><img alt='pic'></a>",
            "http://h/",
        );
        assert_eq!(
            pairs(&e),
            vec![
                ("http://h/p".into(), "P".into()),
                ("http://h/p".into(), "again".into()),
                ("http://h/p".into(), "pic".into()),
            ]
        );
    }

    #[test]
    fn rel_is_kept() {
        let e = extract("<a href='/n' rel=' nofollow  ugc'>n</a>", "http://h/");
        assert_eq!(e.links[0].rel.as_deref(), Some("nofollow ugc"));
    }

    #[test]
    fn malformed_html_still_yields_what_it_can() {
        let e = extract(
            "<title>T<a href='/a'>A<div><a href='/b'>B</p></table>",
            "http://h/",
        );
        assert_eq!(
            e.title.as_deref(),
            Some("T<a href='/a'>A<div><a href='/b'>B</p></table>")
        );
        let e = extract(
            "<html><title>T</title><a href='/a'>A<div><a href='/b'>B</p></table>",
            "http://h/",
        );
        assert_eq!(e.title.as_deref(), Some("T"));
        let targets: HashSet<&str> = e.links.iter().map(|l| l.target.as_str()).collect();
        assert_eq!(targets, HashSet::from(["http://h/a", "http://h/b"]));
    }
}
