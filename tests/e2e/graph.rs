//! A generated link graph over several hosts, and the model of it a correct crawl must
//! reproduce: which URLs are reachable, at what depth, with which title and links.
//!
//! The HTML is written with the variety real pages have (relative, root-relative,
//! protocol-relative and absolute hrefs, fragments, repeated links, mailto:, whitespace
//! and entities in texts), while the model records what those must normalise to.

use std::collections::{BTreeSet, HashMap, VecDeque};

use super::site::{Resource, SiteBuilder};

/// A host no server listens on (the tests bind at most 127.0.0.1–127.0.0.12): linked to,
/// out of scope, never to be requested.
pub const OUTSIDE: &str = "http://127.0.0.99:9/elsewhere";

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Html {
        title: String,
        links: BTreeSet<(String, String)>,
    },
    Status(u16),
    Redirect(String),
    Other(&'static str),
}

pub struct Model {
    pub nodes: HashMap<String, Node>,
    pub seeds: Vec<String>,
}

/// Which URLs may be crawled, as the config under test says.
pub struct Rules<'a> {
    pub hosts: &'a [String],
    pub include: Option<regex::Regex>,
    pub exclude: Option<regex::Regex>,
    pub max_depth: Option<u32>,
}

impl Model {
    /// The URLs a correct crawl stores, with their depths: breadth-first from the seeds;
    /// links add one to the depth, redirects none.
    pub fn reachable(&self, rules: &Rules<'_>) -> HashMap<String, u32> {
        let mut depth: HashMap<String, u32> = HashMap::new();
        let mut queue = VecDeque::new();
        for seed in &self.seeds {
            depth.insert(seed.clone(), 0);
            queue.push_back(seed.clone());
        }
        let admits = |url: &str, d: u32| {
            let host = url.split('/').nth(2).unwrap_or_default();
            rules.hosts.iter().any(|h| h == host)
                && rules.include.as_ref().is_none_or(|re| re.is_match(url))
                && !rules.exclude.as_ref().is_some_and(|re| re.is_match(url))
                && rules.max_depth.is_none_or(|m| d <= m)
        };
        while let Some(url) = queue.pop_front() {
            let d = depth[&url];
            let next: Vec<(String, u32)> = match self.nodes.get(&url) {
                Some(Node::Html { links, .. }) => {
                    links.iter().map(|(t, _)| (t.clone(), d + 1)).collect()
                }
                Some(Node::Redirect(target)) => vec![(target.clone(), d)],
                _ => Vec::new(),
            };
            for (target, td) in next {
                if admits(&target, td) && depth.get(&target).is_none_or(|&old| td < old) {
                    depth.insert(target.clone(), td);
                    if td == d {
                        queue.push_front(target);
                    } else {
                        queue.push_back(target);
                    }
                }
            }
        }
        depth
    }
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Builds `pages_per_host` linked pages on every bound host, plus special resources, and
/// returns the model. Seeds are each host's `/`.
pub fn generate(site: &mut SiteBuilder, hosts: usize, pages_per_host: usize, seed: u64) -> Model {
    let mut rng = Rng(seed | 1);
    let auth: Vec<String> = (0..hosts).map(|i| site.authority(i)).collect();
    let abs = |h: usize, path: &str| format!("http://{}{}", auth[h], path);
    let mut nodes = HashMap::new();

    for h in 0..hosts {
        let mut add_html = |site: &mut SiteBuilder,
                            path: &str,
                            title_html: &str,
                            title: &str,
                            body: &str,
                            links: BTreeSet<(String, String)>| {
            let html = format!(
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title_html}</title></head>\n<body><h1>{title}</h1>\n{body}</body></html>"
            );
            site.add(&auth[h], path, Resource::Html(html));
            nodes.insert(
                abs(h, path),
                Node::Html {
                    title: title.to_owned(),
                    links,
                },
            );
        };

        // The home page: into this host's pages, over to the next host, and to specials.
        let mut body = String::new();
        let mut links = BTreeSet::new();
        for i in 0..3 {
            body.push_str(&format!("<a href=\"p/{i}\">Start {i}</a>\n"));
            links.insert((abs(h, &format!("/p/{i}")), format!("Start {i}")));
        }
        let next = abs((h + 1) % hosts, "/");
        body.push_str(&format!("<a href=\"{next}\">Next   host</a>\n"));
        links.insert((next, "Next host".to_owned()));
        for (href, text) in [
            ("/error", "Broken server"),
            ("/moved", "Old address"),
            ("/chain", "Older address"),
            ("/doc.pdf", "The PDF"),
            ("/img.png", "A picture"),
            ("/based/index.html", "Base test"),
            ("/nowhere", "Missing page"),
        ] {
            body.push_str(&format!("<p>See <a href=\"{href}\">{text}</a>.</p>\n"));
            links.insert((abs(h, href), text.to_owned()));
        }
        body.push_str(&format!(
            "<a href=\"{OUTSIDE}\">Elsewhere</a> <a href=\"#top\">Top</a> <a href=\"mailto:web@example.com\">Mail</a> <a href=\"javascript:void(0)\">JS</a>\n"
        ));
        links.insert((OUTSIDE.to_owned(), "Elsewhere".to_owned()));
        add_html(
            site,
            "/",
            &format!("Home of host {h}"),
            &format!("Home of host {h}"),
            &body,
            links,
        );

        // The numbered pages: random links within and across hosts, in many spellings.
        for i in 0..pages_per_host {
            let mut body = String::new();
            let mut links = BTreeSet::new();
            for _ in 0..(3 + rng.below(4)) {
                let th = if rng.below(10) < 7 {
                    h
                } else {
                    rng.below(hosts)
                };
                // A few targets past the last page: links to pages that do not exist.
                let ti = rng.below(pages_per_host + 3);
                let target = abs(th, &format!("/p/{ti}"));
                let href = match (th == h, rng.below(5)) {
                    (true, 0) => format!("{ti}"),
                    (true, 1) => format!("../p/{ti}#part"),
                    (true, 2) => format!("/p/{ti}?"),
                    (_, 3) => format!("//{}/p/{ti}", auth[th]),
                    _ => target.clone(),
                };
                let text = format!("Page {ti} on host {th}");
                body.push_str(&format!(
                    "<li><a href=\"{href}\">  Page {ti}\n on <b>host</b> {th} </a></li>\n"
                ));
                // The same link again, same text: still one row.
                if rng.below(4) == 0 {
                    body.push_str(&format!(
                        "<a href=\"{target}\">Page {ti} on host {th}</a>\n"
                    ));
                }
                if target != abs(h, &format!("/p/{i}")) {
                    links.insert((target, text));
                }
            }
            body.push_str("<a href=\"#top\">back to top</a>\n");
            let title_html = format!("  Page {i}\n of host {h} &amp; friends ");
            let title = format!("Page {i} of host {h} & friends");
            add_html(site, &format!("/p/{i}"), &title_html, &title, &body, links);
        }

        // Pages that exist but nothing links to: a crawl must not find them.
        for k in 0..3 {
            let path = format!("/orphan/{k}");
            add_html(site, &path, "Orphan", "Orphan", "", BTreeSet::new());
        }

        // <base href> changes what relative links mean.
        let mut links = BTreeSet::new();
        links.insert((abs(h, "/p/1"), "One via base".to_owned()));
        links.insert((abs(h, "/p/2"), "Two via base".to_owned()));
        add_html(
            site,
            "/based/index.html",
            "Based",
            "Based",
            "<base href=\"/p/\"><a href=\"1\">One via base</a><a href=\"./2\">Two via base</a>",
            links,
        );

        site.add(
            &auth[h],
            "/error",
            Resource::Status(500, "<title>Oops</title><a href=\"/p/0\">x</a>".into()),
        );
        nodes.insert(abs(h, "/error"), Node::Status(500));
        site.add(&auth[h], "/moved", Resource::Redirect(301, "/p/1".into()));
        nodes.insert(abs(h, "/moved"), Node::Redirect(abs(h, "/p/1")));
        site.add(
            &auth[h],
            "/chain",
            Resource::Redirect(302, abs(h, "/moved")),
        );
        nodes.insert(abs(h, "/chain"), Node::Redirect(abs(h, "/moved")));
        site.add(
            &auth[h],
            "/doc.pdf",
            Resource::Typed(
                "application/pdf",
                b"%PDF-1.4 <a href=\"/secret\">not a link</a>".to_vec(),
            ),
        );
        nodes.insert(abs(h, "/doc.pdf"), Node::Other("application/pdf"));
        site.add(
            &auth[h],
            "/img.png",
            Resource::Typed("image/png", vec![0x89, b'P', b'N', b'G']),
        );
        nodes.insert(abs(h, "/img.png"), Node::Other("image/png"));
        for ti in pages_per_host..pages_per_host + 3 {
            nodes.insert(abs(h, &format!("/p/{ti}")), Node::Status(404));
        }
        nodes.insert(abs(h, "/nowhere"), Node::Status(404));
    }

    Model {
        nodes,
        seeds: (0..hosts).map(|h| abs(h, "/")).collect(),
    }
}

/// `include` and `exclude` are written for pages. The sitemap files that list them match
/// neither (`/blog/` does not name `/sitemap.xml`; an `exclude` of archives such as the
/// example config's `\.gz$` names `sitemap.xml.gz`), so held to them, `sitemaps = true`
/// read nothing. A sitemap is read when its host is in scope; the pages it lists are
/// held to the rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sitemaps_are_read_whatever_include_and_exclude_say_of_their_own_urls() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let base = format!("http://{h}");
    b.add(&h, "/", Resource::Html("<title>Home</title>".into()));
    // No robots.txt: /sitemap.xml is asked for, an index here.
    let index =
        format!("<sitemapindex><sitemap><loc>{base}/pages.xml.gz</loc></sitemap></sitemapindex>");
    b.add(
        &h,
        "/sitemap.xml",
        Resource::Typed("application/xml", index.into_bytes()),
    );
    // Plain text, whatever its name says: gzip is told by its bytes.
    b.add(
        &h,
        "/pages.xml.gz",
        Resource::Typed(
            "application/xml",
            format!("{base}/blog/one\n{base}/blog/two.gz\n{base}/about\n").into_bytes(),
        ),
    );
    for path in ["/blog/one", "/blog/two.gz", "/about"] {
        b.add(&h, path, Resource::Html("<title>Listed</title>".into()));
    }
    let site = b.start();

    let harness = super::Harness::default();
    let config = "[scope]\nsitemaps = true\ninclude = ['/blog/']\nexclude = ['\\.gz$']\n";
    harness.crawl(&[site.url(0, "/")], config).await;
    assert_eq!(
        site.count(&site.url(0, "/pages.xml.gz")),
        1,
        "the sitemaps are read"
    );
    assert_eq!(
        site.count(&site.url(0, "/blog/one")),
        1,
        "a listed page in scope is fetched"
    );
    for out in ["/blog/two.gz", "/about"] {
        assert_eq!(site.count(&site.url(0, out)), 0, "{out} is out of scope");
    }
}
