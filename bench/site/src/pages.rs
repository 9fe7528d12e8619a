//! The deterministic site: which paths exist and the HTML behind them.
//!
//! Nothing here is cached per page. Every page is rebuilt on request from its number
//! alone (a seeded RNG keyed by the page), so a 50,000-page site costs no memory and
//! two runs, or two requests, always see byte-identical pages. The expensive part,
//! prose, is made once in [`Site::new`] and only copied afterwards.

use std::fmt::Write as _;

/// What the generator needs to know about the site's shape.
#[derive(Clone, Debug)]
pub struct SiteConfig {
    /// Pages `0..pages`; page `i` lives on host `i % hosts`.
    pub pages: u64,
    pub hosts: usize,
    /// Links on a page, drawn uniformly from `links_min..=links_max`. The three links
    /// that keep the site connected are always there, even if that is more than `links_max`.
    pub links_min: u32,
    pub links_max: u32,
    /// Roughly how big a page's HTML is; filler prose pads pages up to it.
    pub page_bytes: usize,
    /// Extra links per page to `/u/{page}/{k}`, URLs no other page links to (all 404).
    pub unique_links: u32,
}

/// What a path on a host is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Index,
    Robots,
    Page(u64),
    NotFound,
}

/// Pages of each host listed on every host's `/`.
const INDEX_PAGES_PER_HOST: u64 = 20;
/// Paragraphs of prose made at start-up; pages take runs of them.
const FILLER_PARAGRAPHS: usize = 1024;
/// Links per `<ul>` inside the article body.
const LINKS_PER_SECTION: usize = 6;
/// Links in the header nav and in the sidebar, at most.
const NAV_LINKS: usize = 6;
const SIDEBAR_LINKS: usize = 8;

const PAGE_SEED: u64 = 0x7069_7065_6372_6177;
const PHRASE_SEED: u64 = 0x6265_6e63_6873_6974;
const FILLER_SEED: u64 = 0x6669_6c6c_6572;

pub const ROBOTS_TXT: &str = "User-agent: *\nAllow: /\n";

/// SplitMix64: tiny, fast, and good enough that link targets look random.
struct SplitMix(u64);

impl SplitMix {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0), by multiply-shift rather than `%` to avoid bias.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// A one-off hash, for choices that must depend on a number alone (a page's anchor
/// text is the same on every page that links to it, as on real sites).
fn mix(x: u64) -> u64 {
    SplitMix::new(x).next_u64()
}

const TOPICS: &[&str] = &[
    "garden soil",
    "river maps",
    "sourdough bread",
    "bicycle repair",
    "home networking",
    "tax returns",
    "mountain trails",
    "jazz records",
    "coffee brewing",
    "solar panels",
    "chess openings",
    "knitting patterns",
    "city buses",
    "bird watching",
    "kitchen knives",
    "rust programming",
    "old cameras",
    "wine regions",
    "sleep habits",
    "board games",
    "winter tyres",
    "public libraries",
    "tide tables",
    "houseplants",
    "running shoes",
    "pottery glazes",
    "train timetables",
    "beekeeping",
    "watch straps",
    "piano practice",
    "camping stoves",
    "rainwater tanks",
    "fountain pens",
    "street food",
    "tiny houses",
    "desk lamps",
    "ocean currents",
    "film scanning",
    "local history",
    "paper planes",
    "spice blends",
    "woodworking joints",
    "cloud storage",
    "mechanical keyboards",
    "wild mushrooms",
    "night trains",
    "star charts",
    "electric kettles",
];

/// `{}` is the topic; a template starting with it gets the topic capitalised.
const TEMPLATES: &[&str] = &[
    "{} guide",
    "Notes on {}",
    "All about {}",
    "Getting started with {}",
    "{} explained",
    "Why {} matters",
    "{} in practice",
    "A short history of {}",
    "Common questions about {}",
    "The best {} this year",
];

const WORDS: &[&str] = &[
    "the", "a", "of", "and", "to", "in", "is", "that", "it", "for", "on", "with", "as", "was",
    "by", "this", "from", "at", "which", "but", "be", "are", "have", "or", "an", "they", "you",
    "one", "all", "were", "there", "more", "when", "can", "out", "about", "many", "then", "them",
    "some", "would", "like", "time", "two", "people", "first", "water", "been", "long", "day",
    "find", "way", "could", "most", "over", "know", "work", "place", "year", "live", "back",
    "give", "very", "after", "thing", "just", "name", "good", "great", "where", "help", "through",
    "much", "before", "line", "right", "too", "means", "old", "same", "tell", "does", "set",
    "three", "want", "air", "well", "also", "play", "small", "end", "put", "home", "read", "hand",
    "port", "large", "add", "even", "land", "here", "must", "big", "high", "such", "follow", "act",
    "why", "ask", "change", "went", "light", "kind", "off", "need", "house", "picture", "try",
    "again", "animal", "point", "world", "near", "build", "earth", "garden", "river", "bread",
    "map", "trail", "morning", "evening", "season", "careful", "simple", "quiet", "village",
    "market", "window", "letter", "winter", "summer", "station", "library", "kitchen", "harbour",
];

/// The generator: configuration, base URLs, and the prose and phrases made once.
pub struct Site {
    cfg: SiteConfig,
    /// `http://127.0.0.N:PORT`, no trailing slash, one per host.
    bases: Vec<String>,
    phrases: Vec<String>,
    paragraphs: Vec<String>,
}

impl Site {
    /// `bases` must have one entry per host; it is what absolute links to that host start with.
    pub fn new(cfg: SiteConfig, bases: Vec<String>) -> Self {
        assert_eq!(bases.len(), cfg.hosts, "one base URL per host");
        Self {
            cfg,
            bases,
            phrases: make_phrases(),
            paragraphs: make_paragraphs(),
        }
    }

    pub fn config(&self) -> &SiteConfig {
        &self.cfg
    }

    pub fn host_of(&self, page: u64) -> usize {
        (page % self.cfg.hosts as u64) as usize
    }

    /// Only canonical page numbers exist (`/p/7`, not `/p/07`), so every page has
    /// exactly one URL and the crawler's page count can be checked against `pages`.
    pub fn route(&self, host: usize, path: &str) -> Route {
        match path {
            "/" => Route::Index,
            "/robots.txt" => Route::Robots,
            _ => match path.strip_prefix("/p/").and_then(parse_canonical_u64) {
                Some(i) if i < self.cfg.pages && self.host_of(i) == host => Route::Page(i),
                _ => Route::NotFound,
            },
        }
    }

    /// The pages page `i` links to, in page order.
    #[cfg(test)]
    pub fn links(&self, i: u64) -> Vec<u64> {
        let mut rng = SplitMix::new(i ^ PAGE_SEED);
        self.draw_links(i, &mut rng)
    }

    /// Draws first from `rng`, so [`Site::links`] and [`Site::render_page`] agree.
    fn draw_links(&self, i: u64, rng: &mut SplitMix) -> Vec<u64> {
        let n = self.cfg.pages;
        let span = u64::from(self.cfg.links_max.saturating_sub(self.cfg.links_min)) + 1;
        let total = (u64::from(self.cfg.links_min) + rng.below(span)) as usize;
        let mut links = Vec::with_capacity(total.max(3));
        // i+1 and the binary-tree children 2i+1, 2i+2 make every page reachable from page 0.
        for j in [i + 1, 2 * i + 1, 2 * i + 2] {
            if j < n {
                links.push(j);
            }
        }
        while links.len() < total {
            // A quarter of links go to the first hundred pages, the site's "popular" ones,
            // so in-degree is skewed as on real sites.
            let j = if rng.below(4) == 0 {
                rng.below(n.min(100))
            } else {
                rng.below(n)
            };
            links.push(j);
        }
        links
    }

    fn phrase(&self, page: u64) -> &str {
        &self.phrases[(mix(page ^ PHRASE_SEED) % self.phrases.len() as u64) as usize]
    }

    /// Same-host links come in three spellings (root-relative, relative, `./`-relative)
    /// because real sites mix them and the crawler must resolve all of them.
    fn push_href(&self, out: &mut String, from_host: usize, target: u64, style: u64) {
        let host = self.host_of(target);
        if host != from_host {
            out.push_str(&self.bases[host]);
            out.push_str("/p/");
        } else {
            match style % 3 {
                0 => out.push_str("/p/"),
                1 => {}
                _ => out.push_str("./"),
            }
        }
        push_u64(out, target);
    }

    /// `style` picks the href spelling (see [`Site::push_href`]); 0 is root-relative,
    /// the only one that works from `/` as well as from `/p/`.
    fn push_link(&self, out: &mut String, from_host: usize, target: u64, style: u64) {
        out.push_str("<li><a href=\"");
        self.push_href(out, from_host, target, style);
        out.push_str("\">");
        out.push_str(self.phrase(target));
        out.push_str("</a></li>\n");
    }

    /// At least one paragraph, so no section is only a heading and a list.
    fn push_paragraphs_until(&self, out: &mut String, len: usize, next: &mut usize) {
        loop {
            out.push_str("<p>");
            out.push_str(&self.paragraphs[*next % self.paragraphs.len()]);
            out.push_str("</p>\n");
            *next += 1;
            if out.len() >= len {
                break;
            }
        }
    }

    /// Page `i`'s HTML. `i` must be below `pages` (see [`Site::route`]).
    pub fn render_page(&self, i: u64) -> String {
        let mut rng = SplitMix::new(i ^ PAGE_SEED);
        let links = self.draw_links(i, &mut rng);
        let host = self.host_of(i);
        let unique = self.cfg.unique_links as usize;
        let mut out = String::with_capacity(self.cfg.page_bytes + 4096 + unique * 48);
        let phrase = self.phrase(i);
        let mut para = rng.below(self.paragraphs.len() as u64) as usize;

        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"description\" content=\"{phrase}: page {i} of the benchmark site.\">\n\
             <meta name=\"keywords\" content=\"{}, {}, {}\">\n\
             <meta name=\"generator\" content=\"pipecrawl-bench-site\">\n\
             <title>Page {i} — {phrase}</title>\n\
             <style>body{{font-family:sans-serif;margin:0}}.wrap{{max-width:60em;margin:auto}}\
             .sidebar{{float:right;width:14em}}</style>\n</head>\n\
             <body>\n<div class=\"wrap\">\n<header class=\"site-header\">\n\
             <div class=\"logo\"><a href=\"/\">Home</a></div>\n<nav class=\"main-nav\">\n<ul>\n",
            TOPICS[rng.below(TOPICS.len() as u64) as usize],
            TOPICS[rng.below(TOPICS.len() as u64) as usize],
            TOPICS[rng.below(TOPICS.len() as u64) as usize],
        );

        let nav = links.len().min(NAV_LINKS);
        let sidebar = (links.len() - nav).min(SIDEBAR_LINKS);
        let (nav_links, rest) = links.split_at(nav);
        let (body_links, side_links) = rest.split_at(rest.len() - sidebar);
        for &j in nav_links {
            self.push_link(&mut out, host, j, rng.next_u64());
        }
        let _ = write!(
            out,
            "</ul>\n</nav>\n</header>\n<div class=\"content\">\n<main>\n<article>\n\
             <h1>{phrase}</h1>\n<p class=\"byline\">Page {i}, section {}</p>\n",
            host + 1
        );

        // Prose is spread over the sections so links sit between paragraphs; what comes
        // after the article is estimated so the whole page lands near `page_bytes`.
        let tail = 400 + side_links.len() * 80 + unique * 50;
        let budget = self.cfg.page_bytes.saturating_sub(tail);
        let start = out.len();
        let sections = body_links.len().div_ceil(LINKS_PER_SECTION).max(1);
        let mut chunks = body_links.chunks(LINKS_PER_SECTION);
        for s in 0..sections {
            out.push_str("<section>\n<h2>");
            out.push_str(self.phrase(mix(i.wrapping_add(s as u64))));
            out.push_str("</h2>\n");
            let goal = start + budget.saturating_sub(start) * (s + 1) / sections;
            self.push_paragraphs_until(&mut out, goal, &mut para);
            if let Some(chunk) = chunks.next() {
                out.push_str("<ul class=\"related\">\n");
                for &j in chunk {
                    self.push_link(&mut out, host, j, rng.next_u64());
                }
                out.push_str("</ul>\n");
            }
            out.push_str("</section>\n");
        }
        out.push_str("</article>\n</main>\n<aside class=\"sidebar\">\n<h3>Popular</h3>\n<ul>\n");
        for &j in side_links {
            self.push_link(&mut out, host, j, rng.next_u64());
        }
        out.push_str("</ul>\n</aside>\n</div>\n<footer>\n");
        if unique > 0 {
            out.push_str("<ul class=\"archive\">\n");
            for k in 0..unique {
                let _ = writeln!(out, "<li><a href=\"/u/{i}/{k}\">Archive entry {k}</a></li>");
            }
            out.push_str("</ul>\n");
        }
        out.push_str(
            "<p class=\"copyright\">© pipecrawl benchmark site. All text is generated.</p>\n\
             </footer>\n</div>\n</body>\n</html>\n",
        );
        out
    }

    /// Host `host`'s `/`: the first pages of every host, its own first, and every host's
    /// `/`, so the whole site (through page 0 and its descendants) is reachable from here.
    pub fn render_index(&self, host: usize) -> String {
        let hosts = self.cfg.hosts;
        let mut out = String::with_capacity(4096 + hosts * INDEX_PAGES_PER_HOST as usize * 64);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"description\" content=\"Home of section {} of the benchmark site.\">\n\
             <title>Home — section {} of the benchmark site</title>\n</head>\n<body>\n\
             <div class=\"wrap\">\n<header class=\"site-header\"><h1>Section {}</h1>\n\
             <nav class=\"sections\">\n<ul>\n",
            host + 1,
            host + 1,
            host + 1
        );
        for (g, base) in self.bases.iter().enumerate() {
            if g != host {
                let _ = writeln!(
                    out,
                    "<li><a href=\"{base}/\">Section {} home</a></li>",
                    g + 1
                );
            }
        }
        out.push_str("</ul>\n</nav>\n</header>\n<main>\n");
        let mut rng = SplitMix::new(PAGE_SEED ^ host as u64);
        let mut para = rng.below(self.paragraphs.len() as u64) as usize;
        for g in (0..hosts).map(|k| (host + k) % hosts) {
            let _ = write!(
                out,
                "<div class=\"section\">\n<h2>Latest in section {}</h2>\n",
                g + 1
            );
            // A goal already reached still gets one paragraph.
            self.push_paragraphs_until(&mut out, 0, &mut para);
            out.push_str("<ul>\n");
            let first = (0..INDEX_PAGES_PER_HOST)
                .map(|k| g as u64 + k * hosts as u64)
                .take_while(|&j| j < self.cfg.pages);
            for j in first {
                self.push_link(&mut out, host, j, 0);
            }
            out.push_str("</ul>\n</div>\n");
        }
        out.push_str("</main>\n</div>\n</body>\n</html>\n");
        out
    }
}

/// Digits only, no sign, no leading zero (except "0" itself), no overflow.
fn parse_canonical_u64(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical {
        s.parse().ok()
    } else {
        None
    }
}

fn push_u64(out: &mut String, n: u64) {
    let _ = write!(out, "{n}");
}

fn make_phrases() -> Vec<String> {
    let mut phrases = Vec::with_capacity(TEMPLATES.len() * TOPICS.len());
    for topic in TOPICS {
        for template in TEMPLATES {
            let phrase = if template.starts_with("{}") {
                capitalize(&template.replace("{}", topic))
            } else {
                template.replace("{}", topic)
            };
            phrases.push(phrase);
        }
    }
    phrases
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Plain English-looking sentences; their sense is irrelevant, their size and word
/// shapes (for the parser and the store) are what count.
fn make_paragraphs() -> Vec<String> {
    let mut rng = SplitMix::new(FILLER_SEED);
    let mut paragraphs = Vec::with_capacity(FILLER_PARAGRAPHS);
    for _ in 0..FILLER_PARAGRAPHS {
        let mut p = String::new();
        let sentences = 3 + rng.below(5);
        for s in 0..sentences {
            if s > 0 {
                p.push(' ');
            }
            let words = 6 + rng.below(13);
            for w in 0..words {
                let word = WORDS[rng.below(WORDS.len() as u64) as usize];
                if w == 0 {
                    p.push_str(&capitalize(word));
                } else {
                    p.push(' ');
                    p.push_str(word);
                    if w + 1 < words && rng.below(8) == 0 {
                        p.push(',');
                    }
                }
            }
            p.push('.');
        }
        paragraphs.push(p);
    }
    paragraphs
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashSet, VecDeque};

    fn site(pages: u64, hosts: usize) -> Site {
        let cfg = SiteConfig {
            pages,
            hosts,
            links_min: 30,
            links_max: 60,
            page_bytes: 20_000,
            unique_links: 0,
        };
        let bases = (0..hosts)
            .map(|h| format!("http://127.0.0.{}:8000", h + 1))
            .collect();
        Site::new(cfg, bases)
    }

    /// Every `href="..."` in the HTML, in order.
    fn hrefs(html: &str) -> Vec<&str> {
        html.split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect()
    }

    /// Resolves an href found on `path` of `host` the way a browser would, for the
    /// forms the generator uses; `None` for anything else so the test notices.
    fn resolve(site: &Site, host: usize, path: &str, href: &str) -> Option<(usize, String)> {
        for (g, base) in site.bases.iter().enumerate() {
            if let Some(p) = href.strip_prefix(base.as_str()) {
                return p.starts_with('/').then(|| (g, p.to_owned()));
            }
        }
        if href.starts_with('/') {
            return Some((host, href.to_owned()));
        }
        let dir = &path[..=path.rfind('/')?];
        let rel = href.strip_prefix("./").unwrap_or(href);
        (!rel.contains(':') && !rel.starts_with('.')).then(|| (host, format!("{dir}{rel}")))
    }

    #[test]
    fn same_page_same_html() {
        let a = site(50_000, 3);
        let b = site(50_000, 3);
        for i in [0, 1, 2, 999, 12_345, 49_999] {
            assert_eq!(a.render_page(i), a.render_page(i));
            assert_eq!(a.render_page(i), b.render_page(i));
        }
        assert_eq!(a.render_index(1), b.render_index(1));
        assert_ne!(a.render_page(1), a.render_page(2));
    }

    #[test]
    fn pages_are_about_page_bytes_and_look_like_html() {
        let s = site(50_000, 2);
        for i in [0, 7, 4_242, 49_999] {
            let html = s.render_page(i);
            assert!(
                (16_000..26_000).contains(&html.len()),
                "page {i}: {}",
                html.len()
            );
            assert!(html.starts_with("<!DOCTYPE html>"));
            assert!(html.contains(&format!("<title>Page {i} — ")));
            assert!(html.ends_with("</html>\n"));
        }
    }

    #[test]
    fn link_counts_follow_the_config() {
        let s = site(50_000, 1);
        for i in 0..200 {
            let n = s.links(i).len();
            assert!((30..=60).contains(&n), "page {i} has {n} links");
            // Home, plus one anchor per link.
            assert_eq!(hrefs(&s.render_page(i)).len(), n + 1);
        }
    }

    #[test]
    fn unique_links_are_unique_and_not_pages() {
        let mut s = site(100, 2);
        s.cfg.unique_links = 5;
        let html = s.render_page(3);
        let unique: Vec<_> = hrefs(&html)
            .into_iter()
            .filter(|h| h.starts_with("/u/"))
            .collect();
        assert_eq!(unique, ["/u/3/0", "/u/3/1", "/u/3/2", "/u/3/3", "/u/3/4"]);
        assert_eq!(s.route(1, "/u/3/0"), Route::NotFound);
    }

    #[test]
    fn routes() {
        let s = site(1000, 3);
        assert_eq!(s.route(0, "/"), Route::Index);
        assert_eq!(s.route(2, "/robots.txt"), Route::Robots);
        assert_eq!(s.route(0, "/p/0"), Route::Page(0));
        assert_eq!(s.route(1, "/p/997"), Route::Page(997));
        assert_eq!(
            s.route(0, "/p/1"),
            Route::NotFound,
            "page 1 lives on host 1"
        );
        for bad in [
            "/p/",
            "/p/01",
            "/p/+3",
            "/p/3/",
            "/p/1000",
            "/p/99999999999999999999",
            "/x",
        ] {
            assert_eq!(s.route(0, bad), Route::NotFound, "{bad}");
        }
    }

    #[test]
    fn every_page_is_reachable_from_every_index_through_the_html() {
        let s = site(1000, 3);
        for start in 0..3 {
            let mut seen = HashSet::from([(start, "/".to_owned())]);
            let mut queue = VecDeque::from([(start, "/".to_owned())]);
            let mut pages = HashSet::new();
            while let Some((host, path)) = queue.pop_front() {
                let html = match s.route(host, &path) {
                    Route::Index => s.render_index(host),
                    Route::Page(i) => {
                        pages.insert(i);
                        s.render_page(i)
                    }
                    other => panic!("link to {path} on host {host} is {other:?}"),
                };
                for href in hrefs(&html) {
                    let target = resolve(&s, host, &path, href)
                        .unwrap_or_else(|| panic!("unexpected href {href:?} on {path}"));
                    if seen.insert(target.clone()) {
                        queue.push_back(target);
                    }
                }
            }
            assert_eq!(pages.len(), 1000, "from host {start}'s /");
        }
    }
}
