//! The groups of a robots.txt that apply to one user agent (RFC 9309), held as the text
//! of their patterns and matched without a regex.
//!
//! A compiled regex per wildcard rule held hundreds of times a file's size (500 KiB of
//! `Disallow: /*7$` lines took 377 MB), which the cache's bound in bytes did not see,
//! and took seconds to build. Here a rule is its pattern's bytes in one buffer and an
//! index entry, and a match is a prefix test and a few substring searches: time linear
//! in the pattern and the path, whatever the wildcards.
//!
//! The reading of the file is the one the crawler had from `texting_robots`, with what
//! this crate added over it: keys in any case, misspelt `Disallow`s and a blank in place
//! of the colon; a `User-agent` cut to its product token; lines ended by CR, LF or NUL;
//! an empty `Disallow` that allows all and weighs nothing; `Crawl-delay` from the group,
//! else from above the first group.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::fmt::Write;

mod index;
mod pieces;

use crate::urlnorm;

use super::product_token;
use index::{Filed, Index};
use pieces::Pieces;

/// A robots.txt read for one user agent.
#[derive(Debug)]
pub(super) struct Parsed {
    pub(super) rules: RuleSet,
    /// Seconds; the file's own value, which the caller bounds.
    pub(super) delay: Option<f32>,
    /// The values of every `Sitemap` line that has one, whichever group it is in.
    pub(super) sitemaps: Vec<String>,
}

/// The `Allow` and `Disallow` rules of the groups for one user agent.
#[derive(Debug, Default)]
pub(super) struct RuleSet {
    /// Every pattern, one after another, spelled as the crawler spells URLs.
    patterns: String,
    /// Longest pattern first, `Allow` first among equals: the first that matches decides.
    /// A rule's place here is its rank.
    rules: Box<[Rule]>,
    /// The rules by the head of their pattern, which begins every path they match.
    by_head: Index,
    /// The rules anchored by `$` whose tail (after their last `*`) is no shorter than
    /// their head or any other piece (`/*.pdf$`), by that tail, which ends every path
    /// they match.
    by_tail: Index,
    /// The wildcard rules with a piece longer than their head (`/*x123`), by that piece,
    /// which lies somewhere in every path they match.
    by_piece: Pieces,
}

#[derive(Debug, Clone, Copy)]
struct Rule {
    start: u32,
    len: u32,
    allow: bool,
}

impl RuleSet {
    /// Whether `path` (a URL's path and query) may be fetched: the longest pattern that
    /// matches decides, `Allow` winning a tie; none, it may. `/robots.txt` always may.
    pub(super) fn allows(&self, path: &str) -> bool {
        if path == "/robots.txt" {
            return true;
        }
        let path = with_literal_specials(path);
        let mut best: Option<u32> = None;
        let mut first_match = |ranks: &[u32]| {
            let rule = |&rank: &u32| &self.rules[rank as usize];
            best = ranks
                .iter()
                .take_while(|&&rank| best.is_none_or(|best| rank < best))
                .find(|rank| matches(self.pattern(rule(rank)), &path))
                .copied()
                .or(best);
        };
        self.by_head
            .candidates(&self.patterns, &path, &mut first_match);
        self.by_tail
            .candidates(&self.patterns, &path, &mut first_match);
        self.by_piece.candidates(&path, &mut first_match);
        best.is_none_or(|rank| self.rules[rank as usize].allow)
    }

    /// Bytes these rules hold, which the cache counts against its bound.
    pub(super) fn held(&self) -> usize {
        self.patterns.capacity()
            + std::mem::size_of_val::<[Rule]>(&self.rules)
            + self.by_head.held()
            + self.by_tail.held()
            + self.by_piece.held()
    }

    /// `rules` (in `patterns`) ranked, and each filed by the longest of its head, its
    /// tail (when anchored) and the pieces between its wildcards: the key that says the
    /// most of the paths it matches, a tail or head winning a tie.
    fn new(patterns: String, mut rules: Vec<Rule>) -> Self {
        rules.sort_by_key(|rule| (Reverse(rule.len), !rule.allow));
        let (mut heads, mut tails, mut pieces) = (Vec::new(), Vec::new(), Vec::new());
        for (rank, rule) in (0..).zip(&rules) {
            let pattern = &patterns[rule.start as usize..][..rule.len as usize];
            let (body, anchored) = match pattern.strip_suffix('$') {
                Some(body) => (body, true),
                None => (pattern, false),
            };
            let head = body.find('*').unwrap_or(body.len());
            let tail = body.len() - body.rfind('*').map_or(0, |star| star + 1);
            let piece = body[head..]
                .split('*')
                .max_by_key(|piece| piece.len())
                .unwrap_or_default();
            let by_tail = anchored && head < body.len() && tail >= head.max(piece.len());
            // Lengths within a rule's, which fits a u32.
            let (head, tail) = (head as u32, tail as u32);
            let filed = |start: u32, len: u32| Filed { start, len, rank };
            if by_tail {
                tails.push(filed(rule.start + body.len() as u32 - tail, tail));
            } else if piece.len() as u32 > head {
                pieces.push((piece, rank));
            } else {
                heads.push(filed(rule.start, head));
            }
        }
        Self {
            by_head: Index::new(&patterns, heads, false),
            by_tail: Index::new(&patterns, tails, true),
            by_piece: Pieces::new(pieces),
            rules: rules.into_boxed_slice(),
            patterns,
        }
    }

    fn pattern(&self, rule: &Rule) -> &str {
        let start = rule.start as usize;
        &self.patterns[start..start + rule.len as usize]
    }
}

/// A `*` and a `$` as characters, in a pattern (where the bare ones are a wildcard and
/// an end) and in a path: one character each, which no URL the crawler asks about holds
/// bare (it escapes everything past ASCII), so that a wildcard's piece (`/*A`) cannot
/// match half of an escape (`%2A`) as it could of the escaped form. Each is as long as
/// `%2A`, which a rule's weight (its length as written) counts.
const STAR: &str = "\u{E000}";
const DOLLAR: &str = "\u{E001}";

/// `path` with its `*` and `$` as a rule writes them to mean the characters (RFC 9309
/// §2.2.3), whether the URL holds them bare or escaped. A URL seldom holds either, and
/// the path is borrowed as it is.
fn with_literal_specials(path: &str) -> Cow<'_, str> {
    if !path.contains(['*', '$']) && !path.contains("%2A") && !path.contains("%24") {
        return Cow::Borrowed(path);
    }
    Cow::Owned(
        path.replace('*', STAR)
            .replace("%2A", STAR)
            .replace('$', DOLLAR)
            .replace("%24", DOLLAR),
    )
}

/// Whether `pattern` matches the start of `path`, or all of it when it ends in `$`; a `*`
/// matches any run of characters. Each piece between wildcards is placed at its first
/// place after the one before (that leaves the most room to those after), so the time is
/// linear in the pattern and the path.
fn matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(pattern) => (pattern, true),
        None => (pattern, false),
    };
    let Some((head, tail)) = pattern.split_once('*') else {
        return if anchored {
            path == pattern
        } else {
            path.starts_with(pattern)
        };
    };
    let Some(mut rest) = path.strip_prefix(head) else {
        return false;
    };
    let (middle, last) = tail.rsplit_once('*').unwrap_or(("", tail));
    for piece in middle.split('*').filter(|p| !p.is_empty()) {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    if anchored {
        rest.ends_with(last)
    } else {
        rest.contains(last)
    }
}

/// The groups of `body` for `agent` (a product token): every group naming it, else every
/// group for `*`, else those of a file without `User-agent` lines.
pub(super) fn parse(agent: &str, body: &[u8]) -> Parsed {
    let body = without_bom(body);
    let lines = || {
        body.split(|b| matches!(b, b'\n' | b'\r' | b'\0'))
            .filter_map(line)
    };
    let mut named = false;
    let mut any_agent = false;
    for line in lines() {
        if let Line::Agent(name) = line {
            any_agent = true;
            named |= name.eq_ignore_ascii_case(agent.as_bytes());
        }
    }
    let ours: &[u8] = if named { agent.as_bytes() } else { b"*" };
    let mut parsed = Parsed {
        rules: RuleSet::default(),
        delay: None,
        sitemaps: Vec::new(),
    };
    let mut rules = Vec::new();
    let (mut capturing, mut in_agents, mut before_groups) = (!any_agent, false, true);
    let mut delay_above = None;
    for line in lines() {
        match line {
            Line::Agent(name) => {
                if !in_agents {
                    capturing = false;
                }
                capturing |= name.eq_ignore_ascii_case(ours);
                in_agents = true;
                before_groups = false;
            }
            // An empty value names no sitemap: read against robots.txt's address, it
            // would be robots.txt.
            Line::Sitemap(url) if !url.is_empty() => {
                if let Ok(url) = std::str::from_utf8(url) {
                    parsed.sitemaps.push(url.to_owned());
                }
            }
            Line::Sitemap(_) => {}
            Line::Delay(delay) => {
                in_agents = false;
                if before_groups {
                    delay_above = Some(delay);
                }
                if capturing && parsed.delay.is_none() {
                    parsed.delay = Some(delay);
                }
            }
            Line::Rule(allow, pattern) => {
                in_agents = false;
                if capturing && !pattern.is_empty() {
                    let start = parsed.rules.patterns.len();
                    canonical_pattern(pattern, &mut parsed.rules.patterns);
                    let len = parsed.rules.patterns.len() - start;
                    // The buffer holds at most a few times the 500 KiB read.
                    if let (Ok(start), Ok(len)) = (u32::try_from(start), u32::try_from(len)) {
                        rules.push(Rule { start, len, allow });
                    }
                }
            }
        }
    }
    parsed.delay = parsed.delay.or(delay_above);
    let mut patterns = std::mem::take(&mut parsed.rules.patterns);
    patterns.shrink_to_fit();
    parsed.rules = RuleSet::new(patterns, rules);
    parsed
}

/// A UTF-8 byte order mark, or what is left of one, is no part of the first line.
fn without_bom(body: &[u8]) -> &[u8] {
    let body = body.strip_prefix(b"\xef").unwrap_or(body);
    let body = body.strip_prefix(b"\xbb").unwrap_or(body);
    body.strip_prefix(b"\xbf").unwrap_or(body)
}

/// A line of robots.txt that counts.
#[derive(Debug, Clone, Copy)]
enum Line<'a> {
    /// The product token a `User-agent` line names.
    Agent(&'a [u8]),
    /// `Allow` (true) or `Disallow`, and its pattern as written.
    Rule(bool, &'a [u8]),
    Delay(f32),
    Sitemap(&'a [u8]),
}

/// The keys read, each spelling with what it is.
const KEYS: [(&str, Key); 16] = [
    ("user-agent", Key::Agent),
    ("user agent", Key::Agent),
    ("useragent", Key::Agent),
    ("allow", Key::Allow),
    ("disallow", Key::Disallow),
    ("dissallow", Key::Disallow),
    ("dissalow", Key::Disallow),
    ("disalow", Key::Disallow),
    ("diasllow", Key::Disallow),
    ("disallaw", Key::Disallow),
    ("sitemap", Key::Sitemap),
    ("site-map", Key::Sitemap),
    ("site map", Key::Sitemap),
    ("crawl-delay", Key::Delay),
    ("crawl delay", Key::Delay),
    ("crawldelay", Key::Delay),
];

#[derive(Debug, Clone, Copy)]
enum Key {
    Agent,
    Allow,
    Disallow,
    Sitemap,
    Delay,
}

/// `text` as a [`Line`], or `None` for a blank line, a comment, an unknown key, or a
/// `Crawl-delay` that is no number of seconds (`inf`, `NaN`, `1e400` past what an `f32`
/// holds): none of those ends a group's `User-agent` lines, nor hides the group's next,
/// valid delay. A key is any case, then a colon (blanks before it allowed) or a blank.
fn line(text: &[u8]) -> Option<Line<'_>> {
    let text = text.trim_ascii_start();
    let (key, rest) = KEYS.iter().find_map(|(name, key)| {
        let rest = text
            .get(..name.len())
            .filter(|k| k.eq_ignore_ascii_case(name.as_bytes()))
            .map(|_| &text[name.len()..])?;
        let after_blanks = rest.trim_ascii_start();
        match after_blanks.strip_prefix(b":") {
            Some(value) => Some((*key, value)),
            None if after_blanks.len() < rest.len() => Some((*key, rest)),
            None => None,
        }
    })?;
    let value = rest.split(|&b| b == b'#').next().unwrap_or_default();
    let value = value.trim_ascii();
    Some(match key {
        Key::Agent => Line::Agent(agent_token(value)),
        Key::Allow => Line::Rule(true, value),
        Key::Disallow => Line::Rule(false, value),
        Key::Sitemap => Line::Sitemap(value),
        Key::Delay => Line::Delay(
            std::str::from_utf8(value)
                .ok()?
                .parse()
                .ok()
                .filter(|d: &f32| d.is_finite() && *d >= 0.0)?,
        ),
    })
}

/// The product token a `User-agent` value names: `pipecrawl/0.1` names pipecrawl, as
/// Google's reference parser reads it, the value cut as our own user agent is (see
/// [`product_token`]), so that a name with digits or dots (`MJ12bot`) matches whole.
fn agent_token(value: &[u8]) -> &[u8] {
    match std::str::from_utf8(value) {
        Ok(value) => product_token(value).as_bytes(),
        Err(_) => value,
    }
}

/// Appends `pattern` to `out` spelled as the crawler spells URLs, so that a rule matches
/// the URLs it names however either escapes them (RFC 9309 §2.2.2): bytes past ASCII,
/// controls and the characters the URL parser escapes (the WHATWG URL standard's sets:
/// `{` and `}` in a path, `'` in a query), escaped; a `\` in a path made the `/` the
/// parser makes of it in an http(s) URL; escapes of unreserved characters decoded and
/// the others in upper case ([`urlnorm::canonical_escapes`]).
/// A `$` that does not end the pattern is the character, not the end; it and an escaped
/// `*` are held as [`DOLLAR`] and [`STAR`], as a URL's are when matched: a pattern's
/// `*` and last `$` are all it holds of either.
fn canonical_pattern(pattern: &[u8], out: &mut String) {
    let (body, anchored) = match pattern.strip_suffix(b"$") {
        Some(body) => (body, true),
        None => (pattern, false),
    };
    let mut escaped = String::with_capacity(body.len());
    let mut in_query = false;
    for &byte in body {
        in_query |= byte == b'?';
        let escapes: &[u8] = if in_query { b"\"<>$'" } else { b"\"<>`${}" };
        if byte == b'\\' && !in_query {
            escaped.push('/');
        } else if byte.is_ascii_graphic() && !escapes.contains(&byte) {
            escaped.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(escaped, "%{byte:02X}");
        }
    }
    let canonical = urlnorm::canonical_escapes(&escaped);
    let canonical = canonical.as_deref().unwrap_or(&escaped);
    // A `%2A` of the canonical form is an escape: a `%` that starts none is kept only
    // where no two hex digits follow it.
    if canonical.contains("%2A") || canonical.contains("%24") {
        out.push_str(&canonical.replace("%2A", STAR).replace("%24", DOLLAR));
    } else {
        out.push_str(canonical);
    }
    if anchored {
        out.push('$');
    }
}

/// Cases from the unit tests of Google's C++ parser and of Moz's reppy and rep-cpp, as
/// `texting_robots` carried them over, read as RFC 9309 and this crawler read them.
#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `agent` may fetch `url` by `txt`: a path as the crawler has it, or a URL
    /// normalised first, as the crawler's are.
    fn allowed(agent: &str, txt: &str, url: &str) -> bool {
        let rules = parse(agent, txt.as_bytes()).rules;
        match url.strip_prefix("http") {
            Some(_) => {
                let url = urlnorm::normalize_str(url).expect("a URL");
                rules.allows(&url[url::Position::BeforePath..url::Position::AfterQuery])
            }
            None => rules.allows(url),
        }
    }

    /// Whether `Allow: rule` opens `url` in a group that disallows everything else.
    fn opened_by(rule: &str, url: &str) -> bool {
        allowed(
            "FooBot",
            &format!("user-agent: FooBot\ndisallow: /\nallow: {rule}"),
            url,
        )
    }

    fn delay(agent: &str, txt: &[u8]) -> Option<f32> {
        parse(agent, txt).delay
    }

    #[test]
    fn the_matcher_places_each_piece_where_it_leaves_the_most_room() {
        for (pattern, path, matched) in [
            ("/fish", "/fish.html", true),
            ("/fish", "/Fish", false),
            ("/fish$", "/fish", true),
            ("/fish$", "/fishy", false),
            ("/*.php", "/a/b.php?x", true),
            ("/*.php$", "/a/b.php?x", false),
            ("/*.php$", "/a.php/b.php", true),
            ("/*ab*ab$", "/abab", true),
            ("/*ab*ab$", "/ab", false),
            ("/*aa$", "/aaa", true),
            ("/a*$", "/a", true),
            ("*", "/", true),
            ("/x***y/", "/x/y/", true),
            ("/a*b*c", "/acb", false),
        ] {
            assert_eq!(matches(pattern, path), matched, "{pattern} on {path}");
        }
    }

    /// A pattern of many wildcards against a long path that almost matches: a
    /// backtracking matcher takes time exponential in the wildcards; this one does not.
    #[test]
    fn many_wildcards_against_a_long_path_take_no_time() {
        let pattern = format!("/{}b$", "a*".repeat(5_000));
        let path = format!("/{}", "a".repeat(20_000));
        let started = std::time::Instant::now();
        assert!(!matches(&pattern, &path));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn groups_are_chosen_by_product_token_and_merged() {
        for (txt, agent, path, open) in [
            (
                "User-agent: *\nUser-agent: BobBot\nUser-AGENT: SmerBot",
                "SmerBot",
                "/index.html",
                true,
            ),
            (
                "User-agent: one\nUser-agent: two\nDisallow: /tmp",
                "one",
                "/tmp",
                false,
            ),
            (
                "User-agent: one\nUser-agent: two\nDisallow: /tmp",
                "two",
                "/tmp",
                false,
            ),
            (
                "User-agent: *\nDisallow: /tmp\n\nUser-agent: other\nAllow: /tmp",
                "agent",
                "/tmp",
                false,
            ),
            (
                "User-agent: *\nDisallow: /tmp\n\nUser-agent: other\nAllow: /tmp",
                "agent",
                "/path",
                true,
            ),
            (
                "User-agent: *\nDisallow: /tmp\n\nUser-agent: agent\nAllow: /tmp",
                "agent",
                "/tmp",
                true,
            ),
            (
                "User-agent: Agent\nDisallow: /path",
                "agent",
                "/path",
                false,
            ),
            (
                "User-agent: Agent\nDisallow: /path",
                "AGeNT",
                "/path",
                false,
            ),
        ] {
            assert_eq!(allowed(agent, txt, path), open, "{agent} {path} by {txt:?}");
        }

        let txt = "allow: /foo/bar/\n\nuser-agent: FooBot\ndisallow: /\nallow: /x/\nuser-agent: BarBot\ndisallow: /\nallow: /y/\n\n\nallow: /w/\nuser-agent: BazBot\n\nuser-agent: FooBot\nallow: /z/\ndisallow: /";
        assert!(allowed("FooBot", txt, "http://foo.bar/x/b"));
        assert!(allowed("FooBot", txt, "http://foo.bar/z/d"));
        assert!(!allowed("FooBot", txt, "http://foo.bar/y/c"));
        assert!(!allowed("FooBot", txt, "http://foo.bar/foo/bar/"));
        assert!(allowed("BarBot", txt, "http://foo.bar/y/c"));
        assert!(allowed("BarBot", txt, "http://foo.bar/w/a"));
        assert!(!allowed("BarBot", txt, "http://foo.bar/z/d"));
        assert!(allowed("BazBot", txt, "http://foo.bar/z/d"));
        assert!(!allowed("BazBot", txt, "http://foo.bar/foo/bar/"));

        // A sitemap or an unknown line does not end a group's `User-agent` lines.
        let txt =
            "User-agent: BarBot\nSitemap: https://foo.bar/sitemap\nUser-agent: *\nDisallow: /";
        assert!(!allowed("FooBot", txt, "/"));
        assert!(!allowed("BarBot", txt, "/"));
        let txt = "User-agent: FooBot\nInvalid-Unknown-Line: unknown\nUser-agent: *\nDisallow: /\n";
        assert!(!allowed("FooBot", txt, "/"));

        let txt = "user-agent: *\nallow: /\nuser-agent: FooBot\ndisallow: /";
        assert!(!allowed("FooBot", txt, "/x/y"));
        assert!(allowed("BarBot", txt, "/x/y"));
        let txt = "user-agent: FooBot\nallow: /\nuser-agent: BarBot\ndisallow: /";
        assert!(allowed("QuxBot", txt, "/x/y"));
    }

    #[test]
    fn keys_are_read_in_any_case_and_spelling_but_values_are_not() {
        let txt = "USER-AGENT: FooBot\nALLOW: /x/\nDISALLOW: /\n\nuSeR-aGeNt: BAZBOT\nAlLoW: /x/\ndIsAlLoW: /";
        for bot in ["FooBot", "BazBot"] {
            assert!(allowed(bot, txt, "/x/y"), "{bot}");
            assert!(!allowed(bot, txt, "/a/b"), "{bot}");
        }
        assert!(allowed(
            "FooBot",
            "user-agent: FooBot\ndisallow: /X/",
            "/x/y"
        ));
        assert!(!allowed("FooBot", "user-agent FooBot\ndisallow /\n", "/"));

        let txt = "user-agent: FooBot\ndisallow: /a\ndissallow: /b\ndissalow: /c\ndisalow: /d\ndiasllow: /e\ndisallaw: /f\n";
        for path in ["/a", "/b", "/c", "/d", "/e", "/f"] {
            assert!(!allowed("FooBot", txt, path), "{path}");
        }
        let txt = "user-agent: FooBot\ndisallow:/a\ndissallow/b\ndisallow    /c\n";
        assert!(!allowed("FooBot", txt, "/a"));
        assert!(allowed("FooBot", txt, "/b"));
        assert!(!allowed("FooBot", txt, "/c"));

        let txt = "user-agent: FooBot\ndisallow: /a\nuser agent: BobBot\ndisallow: /b\nuseragent: EveBot\ndisallow: /e\n";
        assert!(!allowed("FooBot", txt, "/a"));
        assert!(!allowed("BobBot", txt, "/b"));
        assert!(!allowed("EveBot", txt, "/e"));

        assert!(allowed("FooBot", "foo: FooBot\nbar: /\n", "/"));
    }

    #[test]
    fn the_longest_match_wins_and_allow_wins_a_tie() {
        let ask =
            |txt: &str, path: &str| allowed("FooBot", &format!("user-agent: FooBot\n{txt}"), path);
        assert!(!ask("disallow: /x/page.html\nallow: /x/", "/x/page.html"));
        assert!(ask("allow: /x/page.html\ndisallow: /x/", "/x/page.html"));
        assert!(!ask("allow: /x/page.html\ndisallow: /x/", "/x/"));
        assert!(ask("disallow: \nallow: ", "/x/page.html"));
        assert!(ask("disallow: /\nallow: /", "/x/page.html"));
        assert!(!ask("disallow: /x\nallow: /x/", "/x"));
        assert!(ask("disallow: /x\nallow: /x/", "/x/"));
        assert!(ask(
            "disallow: /x/page.html\nallow: /x/page.html",
            "/x/page.html"
        ));
        assert!(!ask("allow: /page\ndisallow: /*.html", "/page.html"));
        assert!(ask("allow: /page\ndisallow: /*.html", "/page"));
        assert!(ask("allow: /x/page.\ndisallow: /*.html", "/x/page.html"));
        assert!(!ask("allow: /x/page.\ndisallow: /*.html", "/x/y.html"));
        assert!(ask("allow: /p\ndisallow: /", "/page"));
        assert!(ask("allow: /$\ndisallow: /", "/"));
        assert!(!ask("allow: /$\ndisallow: /", "/page.htm"));
        assert!(ask(
            "Disallow: /\nDisallow: /*/about\nAllow: /about$",
            "/about"
        ));
        assert!(!ask(
            "Disallow: /\nDisallow: /*/about\nAllow: /about$",
            "/about/"
        ));

        let txt = "User-agent: *\nDisallow: /x/\nUser-agent: FooBot\nDisallow: /y/";
        assert!(allowed("FooBot", txt, "/x/page"));
        assert!(!allowed("FooBot", txt, "/y/page"));
    }

    #[test]
    fn wildcards_and_anchors_as_google_documents_them() {
        for rule in ["/fish", "/fish*"] {
            for path in [
                "/fish",
                "/fish/salmon",
                "/fishheads",
                "/fish.html?id=anything",
            ] {
                assert!(opened_by(rule, path), "{rule} {path}");
            }
            for path in ["/bar", "/Fish.asp", "/catfish", "/?id=fish"] {
                assert!(!opened_by(rule, path), "{rule} {path}");
            }
        }
        for path in ["/fish/", "/fish/?salmon", "/fish/salmon.html"] {
            assert!(opened_by("/fish/", path), "{path}");
        }
        for path in ["/fish", "/fish.html", "/Fish/Salmon.html"] {
            assert!(!opened_by("/fish/", path), "{path}");
        }
        for path in [
            "/filename.php",
            "/folder/filename.php",
            "//folder/any.php.file.html",
            "/index?f=filename.php/",
        ] {
            assert!(opened_by("/*.php", path), "{path}");
        }
        for path in ["/php/", "/index?php", "/windows.PHP"] {
            assert!(!opened_by("/*.php", path), "{path}");
        }
        for path in ["/filename.php", "/folder/filename.php"] {
            assert!(opened_by("/*.php$", path), "{path}");
        }
        for path in [
            "/filename.php?parameters",
            "/filename.php/",
            "/filename.php5",
            "/aaaphpaaa",
        ] {
            assert!(!opened_by("/*.php$", path), "{path}");
        }
        assert!(opened_by("/fish*.php", "/fishheads/catfish.php?parameters"));
        assert!(!opened_by("/fish*.php", "/Fish.PHP"));

        let txt = "User-agent: FooBot\nDisallow: /foo/bar$\nAllow: /foo/bar/qux";
        assert!(!allowed("FooBot", txt, "/foo/bar"));
        assert!(allowed("FooBot", txt, "/foo/bar/"));
        let txt = "User-agent: FooBot\n# Disallow: /\nDisallow: /foo/quz#qux\nAllow: /";
        assert!(allowed("FooBot", txt, "/foo/bar"));
        assert!(!allowed("FooBot", txt, "/foo/quz"));

        let txt = "User-agent: *\nAllow: /ocean\nDisallow: /tooth$\nDisallow: /fish*$";
        assert!(allowed("BobBot", txt, "/shark/tooth"));
        assert!(!allowed("BobBot", txt, "/tooth"));
        assert!(allowed("BobBot", txt, "/toothy"));
        assert!(allowed("BobBot", txt, "/shark/fish"));
        assert!(!allowed("BobBot", txt, "/fishy"));

        let txt = "User-agent: meow\nDisallow: /\nAllow: ****/cats\nAllow: */kangaroos";
        assert!(!allowed("meow", txt, "/kangaroo/zebra/cat/page.html"));
        assert!(allowed("meow", txt, "/get/more/cats/page.html"));
        assert!(allowed("meow", txt, "/kangaroosandkoalas/page.html"));

        let txt = "User-agent: *\nDisallow: /basket*\nDisallow: /*?*****************donotindex=1*";
        assert!(!allowed("BobBot", txt, "/basket/ball"));
        assert!(allowed("BobBot", txt, "/example/file?xyz=42"));
        assert!(!allowed("BobBot", txt, "/example/file?xyz=42&donotindex=1"));

        // Nothing else of a regex is one.
        let txt = "User-Agent: *\nDisallow: /\nAllow: /(Cat|Dog).html";
        assert!(allowed("BobBot", txt, "/(Cat|Dog).html"));
        assert!(!allowed("BobBot", txt, "/Cat.html"));
    }

    #[test]
    fn rules_are_spelled_as_the_crawler_spells_urls() {
        assert!(opened_by(
            "/foo/bar?qux=taz&baz=http://foo.bar?tar&par",
            "http://foo.bar/foo/bar?qux=taz&baz=http://foo.bar?tar&par"
        ));
        for rule in ["/foo/bar/ツ", "/foo/bar/%E3%83%84", "/foo/bar/%e3%83%84"] {
            for url in [
                "http://foo.bar/foo/bar/ツ",
                "http://foo.bar/foo/bar/%E3%83%84",
            ] {
                assert!(opened_by(rule, url), "{rule} {url}");
            }
        }
        assert!(opened_by(
            "/foo/bar/%62%61%7A",
            "http://foo.bar/foo/bar/baz"
        ));
        assert!(opened_by("/a b", "http://foo.bar/a%20b"));
        assert!(opened_by("/a`?b`", "http://foo.bar/a%60?b`"));
        // A `$` inside a pattern is the character, as `%24` is.
        for url in ["http://foo.bar/a$b", "http://foo.bar/a%24b/c"] {
            assert!(opened_by("/a$b", url), "{url}");
        }
        assert!(!opened_by("/a$b", "http://foo.bar/a"));
        // Latin-1, as a URL of it is escaped.
        let rules = parse("A", b"User-Agent: A\nDisallow: /caf\xe9\n").rules;
        assert!(!rules.allows("/caf%E9"));
    }

    #[test]
    fn crawl_delay_comes_from_the_group_else_from_above_the_groups() {
        let txt = b"User-Agent: A\nCrawl-Delay: 42\n# A B\nUser-Agent: B\nUser-Agent: C\nCrawl-Delay: 420\nUser-Agent: D\nCrawl-Delay: -1.25\nUser-Agent: E\nCrawl-Delay: 8\nUser-Agent: *\nCRAWL-Delay : 3600\nUser-Agent: Zero\nCrawl-Delay: 0";
        assert_eq!(delay("A", txt), Some(42.0));
        assert_eq!(delay("B", txt), Some(420.0));
        assert_eq!(delay("C", txt), Some(420.0));
        // A delay that is no number of seconds is no line: D's group runs on into E's.
        assert_eq!(delay("D", txt), Some(8.0));
        assert_eq!(delay("Zero", txt), Some(0.0));
        assert_eq!(delay("F", txt), Some(3600.0));

        let txt = b"User-Agent: A\nCrawl-Delay:1.0\nUser-Agent: B\nCrawl-Delay:4.2\nUser-Agent: C\nCrawl-Delay: \x41\xc2\xc3\xb1\x42";
        assert_eq!(delay("A", txt), Some(1.0));
        assert_eq!(delay("B", txt), Some(4.2));
        assert_eq!(delay("C", txt), None);
        assert_eq!(delay("A", b"User-agent: *\nCrawl-delay: word"), None);
        let txt = b"Crawl-delay: inf\nCrawl-delay: 7\nUser-agent: *\nCrawl-delay: NaN\nCrawl-delay: 1e400\nCrawl-delay: -inf\nCrawl-delay: 2\n";
        assert_eq!(delay("A", txt), Some(2.0));
        let txt = b"Crawl-delay: inf\nCrawl-delay: 7\nUser-agent: *\nCrawl-delay: 1e400\n";
        assert_eq!(delay("A", txt), Some(7.0));

        let txt = b"Crawl-Delay: 42\nUser-Agent: *\nDisallow: /blah\nUser-Agent: SpecialFriend\nAllow: /\nCrawl-Delay: 1";
        assert_eq!(delay("BobBot", txt), Some(42.0));
        assert_eq!(delay("SpecialFriend", txt), Some(1.0));

        let txt = b"user-agent: FooBot\ncrawl-delay: 42\nuser-agent: BobBot\ncrawl delay: 420\nuser-agent: EveBot\ncrawldelay: 360\n";
        assert_eq!(delay("FooBot", txt), Some(42.0));
        assert_eq!(delay("BobBot", txt), Some(420.0));
        assert_eq!(delay("EveBot", txt), Some(360.0));

        let txt = b"Disallow: /path\nAllow: /path/exception\nCrawl-delay: 5.2";
        assert_eq!(delay("Agent", txt), Some(5.2));
        assert!(allowed(
            "Agent",
            "Disallow: /path\nAllow: /path/exception",
            "/path/exception"
        ));
        assert!(!allowed(
            "Agent",
            "Disallow: /path\nAllow: /path/exception",
            "/path"
        ));
    }

    #[test]
    fn sitemaps_are_every_groups() {
        let txt = "user-agent: otherbot\ndisallow: /kale\n\nsitemap: https://example.com/sitemap.xml\nSitemap: https://cdn.example.org/other-sitemap.xml\nsite-map: /a\nsite map: /b";
        let expected = [
            "https://example.com/sitemap.xml",
            "https://cdn.example.org/other-sitemap.xml",
            "/a",
            "/b",
        ];
        assert_eq!(parse("otherbot", txt.as_bytes()).sitemaps, expected);
        assert_eq!(parse("blah", txt.as_bytes()).sitemaps, expected);
    }

    #[test]
    fn odd_bytes_and_line_ends_are_read_as_google_reads_them() {
        let txt =
            "User-Agent: *\n\x00\x00Allow: /family\x00\x00\nDisallow: /family/photos\x00\x00\x00\n";
        assert!(allowed("BobBot", txt, "/family"));
        assert!(!allowed("BobBot", txt, "/family/photos"));

        let txt = "\r\nUser-agent: *\r\r\nDisallow: /en-AU/party\r\r\r\n\n\r\nUser-Agent: BobBot\nDisallow: /fi-FI/party\r\r\n\r\n\r\r\r\n\nCrawl-Delay: 4";
        assert!(!allowed("RandomBot", txt, "/en-AU/party"));
        assert!(allowed("BobBot", txt, "/en-AU/party"));
        assert!(!allowed("BobBot", txt, "/fi-FI/party"));
        assert_eq!(delay("BobBot", txt.as_bytes()), Some(4.0));

        for bom in ["\u{feff}", ""] {
            let txt = format!("{bom}User-Agent: foo\nDisallow: /x\nUser-agent: *\nDisallow: /\n");
            assert!(!allowed("foo", &txt, "/x"));
            assert!(allowed("foo", &txt, "/y"));
        }
        let txt = b"User-Agent: A\nAllow: \x41\xc2\xc3\xb1\x42\nSiteMap: \x41\xc2\xc3\xb1\x42\nDisallow: /bob/";
        let parsed = parse("A", txt);
        assert!(!parsed.rules.allows("/bob/"));
        assert!(parsed.sitemaps.is_empty());
        assert!(allowed("A", "", "/"));
        assert!(allowed("A", "User-agent: *\nDisallow: /\n", "/robots.txt"));
    }

    #[test]
    fn the_rfc_example_is_read_as_it_says() {
        let txt = "# /robots.txt for http://www.fict.org/\n# comments to webmaster@fict.org\n\nUser-agent: unhipbot\nDisallow: /\n\nUser-agent: webcrawler\nUser-agent: excite\nDisallow:\n\nUser-agent: *\nDisallow: /org/plans.html\nAllow: /org/\nAllow: /serv\nAllow: /~mak\nDisallow: /";
        let paths = [
            "/",
            "/index.html",
            "/server.html",
            "/services/fast.html",
            "/orgo.gif",
            "/org/about.html",
            "/org/plans.html",
            "/%7Ejim/jim.html",
            "/~mak/mak.html",
        ];
        for path in paths {
            assert!(!allowed("unhipbot", txt, path), "{path}");
            assert!(allowed("webcrawler", txt, path), "{path}");
            assert!(allowed("excite", txt, path), "{path}");
        }
        let open = [
            "/server.html",
            "/services/fast.html",
            "/org/about.html",
            "/~mak/mak.html",
        ];
        for path in paths {
            assert_eq!(
                allowed("anything", txt, path),
                open.contains(&path),
                "{path}"
            );
        }
    }

    #[test]
    fn rules_are_held_once_as_their_text() {
        let rules = parse(
            "A",
            b"User-agent: *\nDisallow: /*1$\nAllow: /x/\nDisallow: /private/\n",
        )
        .rules;
        assert_eq!(rules.patterns.len(), "/*1$/x//private/".len());
        assert_eq!(
            rules.held(),
            rules.patterns.capacity()
                + 3 * std::mem::size_of::<Rule>()
                + rules.by_head.held()
                + rules.by_tail.held()
        );
    }

    /// Whether `rules` allow `path` by trying each rule in rank order, as the matcher did
    /// before it had an index: what the index must answer too.
    fn allowed_trying_every_rule(rules: &RuleSet, path: &str) -> bool {
        if path == "/robots.txt" {
            return true;
        }
        let path = with_literal_specials(path);
        rules
            .rules
            .iter()
            .find(|rule| matches(rules.pattern(rule), &path))
            .is_none_or(|rule| rule.allow)
    }

    /// The rules a verdict on `path` tries, over every index.
    fn tried(rules: &RuleSet, path: &str) -> usize {
        let mut tried = 0;
        let mut count = |ranks: &[u32]| tried += ranks.len();
        rules.by_head.candidates(&rules.patterns, path, &mut count);
        rules.by_tail.candidates(&rules.patterns, path, &mut count);
        rules.by_piece.candidates(path, &mut count);
        tried
    }

    /// A file of unanchored wildcard rules that share their head (`/*x1` … `/*x27000`,
    /// 500 KiB): a verdict tries the rules whose piece past the wildcard is in the path,
    /// not every rule of the file.
    #[test]
    fn a_verdict_tries_only_the_rules_whose_pieces_the_path_holds() {
        let txt: String = std::iter::once("User-agent: *\n".to_owned())
            .chain((1..=27_000).map(|n| format!("Disallow: /*x{n}\n")))
            .collect();
        let rules = parse("A", txt.as_bytes()).rules;
        assert!(!rules.allows("/a/x123/b"));
        assert!(rules.allows("/a/y/b"));
        assert_eq!(tried(&rules, "/a/y/b"), 0);
        assert_eq!(tried(&rules, "/a/x123/b"), 3, "x1, x12 and x123");
    }

    /// Random files of rules made of a few pieces that overlap (so that heads and tails
    /// begin and end one another, and rules of one length tie), asked about random paths
    /// of the same pieces: the index's verdict is the one of trying every rule.
    #[test]
    fn the_index_gives_the_verdict_of_trying_every_rule() {
        const PIECES: [&str; 11] = ["/", "a", "b", "ab", "*", "**", ".", "%2A", "$", "?", "\\"];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |below: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % below as u64) as usize
        };
        let text = |next: &mut dyn FnMut(usize) -> usize, most: usize| {
            let len = next(most);
            (0..len)
                .map(|_| PIECES[next(PIECES.len())])
                .collect::<String>()
        };
        for _ in 0..3_000 {
            let mut txt = String::from("User-agent: *\n");
            for _ in 0..next(12) {
                let key = ["Allow", "Disallow"][next(2)];
                let start = ["/", "", "*"][next(3)];
                let end = ["", "$"][next(2)];
                txt.push_str(&format!("{key}: {start}{}{end}\n", text(&mut next, 6)));
            }
            let rules = parse("A", txt.as_bytes()).rules;
            for _ in 0..30 {
                let path = format!("/{}", text(&mut next, 8).replace('\\', "/"));
                assert_eq!(
                    rules.allows(&path),
                    allowed_trying_every_rule(&rules, &path),
                    "{path} by {txt:?}"
                );
            }
        }
    }
}
