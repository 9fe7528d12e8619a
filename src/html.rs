//! The elements a crawl reads from a page, taken from html5ever's token stream.
//!
//! A crawler needs a page's title, its links and their text, `<base href>`, robots
//! `<meta>` tags and the canonical `<link>`: tags and the text between them, in document
//! order, which is what the tokenizer emits. Building scraper's tree to select them took
//! 30% of the parse: a benchmark page took 88 µs through the tree, 62 µs from the tokens.
//! And html5ever's tree builder scans its stack of open elements on many start tags, so its
//! cost grew with the square of the nesting depth (100,000 nested `<div>`s held a parse
//! thread for half a minute until the depth was capped); the tokenizer alone is linear.
//!
//! Of what the tree builder decides, this redoes what changes the answer: which elements
//! hold text rather than markup (`<script>`, `<style>`, `<title>`, …, as with scripting on,
//! so `<noscript>` too), which text is never shown, where a link's text ends, what a
//! `<template>` holds aside, and SVG and MathML, where none of that applies and
//! `<![CDATA[` is text.

use std::cell::RefCell;

use foldhash::{HashMap, HashSet};
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use html5ever::{LocalName, TokenizerResult};

use crate::parser::MAX_TEXT_BYTES;

mod follow;
mod foreign;
mod open;

use follow::Follower;
use foreign::Foreign;
use open::OpenElements;

/// What a page holds that a crawl reads, as written (whitespace and all).
#[derive(Debug, Default, PartialEq)]
pub struct PageElements {
    /// The first `<title>`'s text.
    pub title: Option<String>,
    /// The first `<base href>`.
    pub base_href: Option<String>,
    /// `<a href>` (`xlink:href` in SVG), `<area href>` and `<frame src>` / `<iframe src>`
    /// (`rel` = `frame`), in document order, and the URL of the refresh a browser acts on
    /// (`rel` = `refresh`, no text; none for one after 100 s or more).
    pub anchors: Vec<Anchor>,
    /// The content of each `<meta name="robots">`, and of each robots `<meta>` naming
    /// this crawler (`<meta name="acmebot">`, as `<meta name="googlebot">` names Google's).
    pub meta_robots: Vec<String>,
    /// The first `<link rel="canonical" href>`.
    pub canonical_href: Option<String>,
    /// Read by [`read_labels`] only: the label of the first element of each id asked for,
    /// its whitespace collapsed.
    pub labels: HashMap<String, String>,
}

/// A link as the page writes it.
#[derive(Debug, Default, PartialEq)]
pub struct Anchor {
    pub href: String,
    pub rel: Option<String>,
    /// The text inside the link; a space stands where a block (`<div>`, `<br>`, …) begins or
    /// ends, as it does on screen.
    pub text: String,
    /// The alt texts of the link's images (an inline SVG's `<title>`), each after a space:
    /// what an image link says.
    pub image_alts: String,
    /// The `aria-label`, else the `title`: what a screen reader says for a link with
    /// nothing to read (an icon drawn by a font or CSS, or marked `aria-hidden`).
    pub label: String,
    /// The `aria-labelledby` ids, as written: the elements they name, anywhere on the
    /// page, name a link with nothing to read before its `aria-label` does
    /// ([`read_labels`] reads them).
    pub labelled_by: Option<String>,
    /// What `href` resolves against.
    pub base: Base,
    /// Set on the page's refresh only (its `rel` says `refresh` too): an author's
    /// `rel="refresh"` on a link of their own does not make it one.
    pub refresh: bool,
}

/// The base URL a link's `href` resolves against.
#[derive(Debug, Default, PartialEq)]
pub enum Base {
    /// The page's: its `<base href>`, wherever on the page it stands, else its URL.
    #[default]
    Page,
    /// The `<base href>` read before the link, or the page's URL (`None`), whatever base
    /// comes after: a refresh's, which a browser parses when it acts on it, at the
    /// `<meta>` or, for a `Refresh` header, before the document is read.
    ReadBefore(Option<String>),
}

/// How a page's markup is read. A page served as `application/xhtml+xml` is XML to a
/// browser: an empty element's tag (`<script src="app.js"/>`, `<title/>`, `<a id="x"/>`)
/// ends it, where HTML knows no empty tags and would read the rest of the page as the
/// script's or the title's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    Html,
    Xml,
}

impl Syntax {
    /// The syntax a response's `Content-Type` names.
    pub fn of(content_type: Option<&str>) -> Self {
        let essence = content_type.map(crate::sniff::essence).unwrap_or_default();
        match essence.eq_ignore_ascii_case("application/xhtml+xml") {
            true => Self::Xml,
            false => Self::Html,
        }
    }
}

/// Reads a whole document, its links all in `anchors`, as crawler `pipecrawl` on a page
/// at `http://h/`: what the tests look at.
#[cfg(test)]
pub fn read_page(html: &str, syntax: Syntax, refresh_header: Option<&str>) -> PageElements {
    let page_url = url::Url::parse("http://h/").expect("a URL");
    let parses = |href: &str, base: Option<&str>| {
        let base = base.map_or(Ok(page_url.clone()), |base| page_url.join(base));
        base.and_then(|base| base.join(href)).is_ok()
    };
    let mut anchors = Vec::new();
    let mut page = read_page_with(
        html,
        (syntax, "pipecrawl"),
        (refresh_header, &parses),
        &mut |anchor, _| {
            anchors.push(anchor);
        },
    );
    page.anchors = anchors;
    page
}

/// Reads a whole document, handing each link to `sink` once its text is read, in
/// document order, with the `<base href>` read so far; `anchors` is left empty. A page can
/// hold hundreds of thousands of links, most of them past what a crawl keeps: held all at
/// once, their strings cost many times the page's own bytes.
///
/// `crawler` is the name robots `<meta>` tags address this crawler by, and
/// `refresh_header` the response's `Refresh`: browsers act on it before the document, so
/// its URL is the page's refresh link, and a `<meta http-equiv="refresh">` is not.
/// `parses` says whether a refresh's URL parses, which only the caller, knowing the
/// page's URL, can tell.
pub fn read_page_with(
    html: &str,
    (syntax, crawler): (Syntax, &str),
    (refresh_header, parses): (Option<&str>, &UrlParses<'_>),
    sink: &mut AnchorSink<'_>,
) -> PageElements {
    let state = ReadState {
        xml: syntax == Syntax::Xml,
        crawler,
        ..ReadState::default()
    };
    read(html, state, (refresh_header, parses), sink)
}

/// The labels the elements of the ids in `wanted` give (`<span id="t1">Next page</span>`),
/// by id, for the links `aria-labelledby` names by them: a page read once more, only when
/// it has such links. An element's label is its `aria-label`, else its text and its
/// images' alt texts in document order (an `<img>`'s own alt), less what is never shown or
/// what it marks hidden, as a link's text is; the first element of an id is the one named,
/// as `getElementById` finds it. Each is cut a little past [`MAX_TEXT_BYTES`], however
/// large the element, and at most [`MAX_OPEN_LABELS`] are read at once.
pub fn read_labels(
    html: &str,
    syntax: Syntax,
    wanted: &HashSet<String>,
) -> HashMap<String, String> {
    let state = ReadState {
        xml: syntax == Syntax::Xml,
        wanted: Some(wanted),
        ..ReadState::default()
    };
    read(html, state, (None, &|_, _| true), &mut |_, _| {}).labels
}

fn read(
    html: &str,
    state: ReadState<'_>,
    (refresh_header, parses): (Option<&str>, &UrlParses<'_>),
    sink: &mut AnchorSink<'_>,
) -> PageElements {
    let xml = state.xml;
    let reader = Reader {
        page: RefCell::default(),
        state: RefCell::new(state),
        sink: RefCell::new(sink),
        parses,
    };
    if let Some(refresh) = refresh_header.and_then(refresh_of) {
        let mut state = reader.state.borrow_mut();
        state.refresh(refresh, &mut reader.page.borrow_mut(), parses);
    }
    let tokenizer = Tokenizer::new(reader, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    // The tokenizer pauses when its sink asks it to: this one does at an end tag that
    // only the page's open elements say SVG or MathML ends at, which `Follower` follows.
    let mut follower = None;
    loop {
        match tokenizer.feed(&input) {
            TokenizerResult::Done => break,
            TokenizerResult::Script(()) => {
                let rest = input.pop_front().map_or(0, |rest| {
                    let len = rest.len();
                    input.push_front(rest);
                    len
                });
                let follower = follower.get_or_insert_with(|| Follower::new(xml));
                let html_after = follower.html_after(html, html.len() - rest);
                tokenizer.sink.state.borrow_mut().html_after(html_after);
            }
            TokenizerResult::EncodingIndicator(_) => {}
        }
    }
    tokenizer.end();
    tokenizer.sink.state.borrow_mut().open_anchor = None;
    tokenizer.sink.hand_over();
    tokenizer.sink.page.into_inner()
}

/// Takes each link read, with the `<base href>` read before it was handed over.
pub type AnchorSink<'a> = dyn FnMut(Anchor, Option<&str>) + 'a;

/// Whether a URL parses against the page's `<base href>` (its URL when `None`).
pub type UrlParses<'a> = dyn Fn(&str, Option<&str>) -> bool + 'a;

/// Links read but not yet handed over wait behind an open `<a>`, whose text is still
/// being read. Past this many (an `<a>` never closed, `<area>`s after it), the open link's
/// text ends, so that they cannot pile up.
const MAX_WAITING: usize = 1024;

/// Labelling elements read at once, one inside another ([`read_labels`]): each start and
/// end tag is checked against every one open, so a page nesting the elements of many ids
/// cannot make that slow. Real labels are a heading or a `<span>`, nested one or two deep.
pub const MAX_OPEN_LABELS: usize = 16;

struct Reader<'s> {
    /// What the page says; `anchors` holds the open link and the links read after it.
    page: RefCell<PageElements>,
    state: RefCell<ReadState<'s>>,
    sink: RefCell<&'s mut AnchorSink<'s>>,
    parses: &'s UrlParses<'s>,
}

#[derive(Default)]
struct ReadState<'c> {
    /// The page is XML ([`Syntax::Xml`]).
    xml: bool,
    /// The name a robots `<meta>` addresses this crawler by.
    crawler: &'c str,
    /// Inside the first `<title>`.
    in_title: bool,
    /// The index in `anchors` of the `<a>` whose text is being read: the first, as links
    /// before it are handed over.
    open_anchor: Option<usize>,
    /// `<table>` elements open, now and when the open link began.
    tables: usize,
    anchor_tables: usize,
    /// The SVG and MathML elements open.
    foreign: Foreign,
    /// A refresh a browser acts on was read (a `Refresh` header's, or a
    /// `<meta http-equiv="refresh">`'s): the standard's "will declaratively refresh".
    refreshed: bool,
    /// Inside text no reader sees (`<script>`, `<style>`, `<noscript>`, …): it is kept out
    /// of a link's text, where a lazy-loaded image's `<noscript>` copy would otherwise
    /// put its markup and hide the alt text that names the link.
    hidden: bool,
    /// Inside an SVG `<title>` (hidden too): a tooltip on screen, but an inline icon's
    /// name, which names a link with no text as an image's alt does.
    icon_title: bool,
    /// The element inside the open link or label whose content is hidden
    /// (`aria-hidden="true"`, `hidden`, a media element's fallback): an icon's glyph
    /// (`<span aria-hidden="true">»</span>`), decoration the page says names nothing, or
    /// text not shown at all. Its text and images are not the link's, which is then named
    /// by its label.
    muted: Option<Element>,
    /// The elements open inside the link or the labels being read, followed only while
    /// there are such: they say where the tree builder ends the muted element, or a
    /// labelling one, when an end tag of an element around it comes.
    open_elements: OpenElements,
    /// The ids whose elements' labels are read ([`read_labels`]); `None` in other reads,
    /// which then spend nothing on ids.
    wanted: Option<&'c HashSet<String>>,
    /// The elements of wanted ids open, by id, whose labels are being read.
    labelling: Vec<(String, Element)>,
    /// HTML `<template>` elements open. Their content is not the page's: a browser keeps
    /// it aside for scripts, which fill in its placeholders (`<a href="/item/${id}">`),
    /// and neither shows it nor follows its links. Only how it is tokenized is tracked.
    /// A declarative shadow root's (`<template shadowrootmode="open">`, a web component
    /// rendered on the server) is shown, so it is not counted.
    templates: usize,
    /// The tree builder has started the page's body: a canonical `<link>` after this is
    /// not in the head, where search engines read it ([`starts_body`]).
    in_body: bool,
}

impl TokenSink for Reader<'_> {
    type Handle = ();

    fn process_token(&self, token: Token, _line_number: u64) -> TokenSinkResult<()> {
        let result = self.read_token(token);
        self.hand_over();
        result
    }

    fn adjusted_current_node_present_but_not_in_html_namespace(&self) -> bool {
        !self.state.borrow().foreign.is_empty()
    }
}

impl Reader<'_> {
    /// Hands over the links waiting, unless an open link's text is still being read.
    fn hand_over(&self) {
        let mut page = self.page.borrow_mut();
        let mut state = self.state.borrow_mut();
        if page.anchors.len() >= MAX_WAITING {
            state.open_anchor = None;
        }
        if state.open_anchor.is_some() || page.anchors.is_empty() {
            return;
        }
        let PageElements {
            anchors, base_href, ..
        } = &mut *page;
        let mut sink = self.sink.borrow_mut();
        for anchor in anchors.drain(..) {
            sink(anchor, base_href.as_deref());
        }
    }

    fn read_token(&self, token: Token) -> TokenSinkResult<()> {
        let mut page = self.page.borrow_mut();
        let mut state = self.state.borrow_mut();
        match token {
            Token::TagToken(tag) if tag.kind == TagKind::StartTag => {
                return state.start_tag(tag, &mut page, self.parses);
            }
            Token::TagToken(tag) => return state.end_tag(&tag, &mut page),
            Token::CharacterTokens(_) if state.templates > 0 => {}
            Token::CharacterTokens(text) => {
                // Text in the head (not a title's, a script's or a style's) starts the body;
                // once it has started, a page's text is not looked through again for it.
                if !state.in_body && !state.hidden && text.chars().any(|c| !c.is_ascii_whitespace())
                {
                    state.in_body = true;
                }
                if state.in_title {
                    if let Some(title) = &mut page.title {
                        title.push_str(&text);
                    }
                }
                if state.hidden && !state.icon_title {
                    return TokenSinkResult::Continue;
                }
                let icon_title = state.icon_title;
                if state.muted.is_some() {
                    return TokenSinkResult::Continue;
                }
                state.add_to_labels(&[&text], &mut page);
                if let Some(anchor) = state.open_link(&mut page) {
                    match icon_title {
                        true => anchor.image_alts.push_str(&text),
                        false => anchor.text.push_str(&text),
                    }
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

impl ReadState<'_> {
    fn start_tag(
        &mut self,
        tag: Tag,
        page: &mut PageElements,
        parses: &UrlParses<'_>,
    ) -> TokenSinkResult<()> {
        let attr = |name: &str| attribute(&tag, name);
        let breaks_out = || breaks_out_of_foreign(&tag.name, &attr);
        let foreign = self
            .foreign
            .start(&tag.name, &attr, breaks_out, tag.self_closing);
        let read_as = self.open(&tag, foreign, page, parses);
        // SVG's and MathML's own empty tags are read as such already, in HTML too.
        if self.xml && tag.self_closing && !foreign {
            return self.end_tag(&tag, page);
        }
        read_as
    }

    /// What a start tag opens (`foreign`: an SVG or MathML element), and how the text
    /// after it is to be read.
    fn open(
        &mut self,
        tag: &Tag,
        foreign: bool,
        page: &mut PageElements,
        parses: &UrlParses<'_>,
    ) -> TokenSinkResult<()> {
        let attr = |name: &str| attribute(tag, name);
        let name = &*tag.name;
        if name == "template" && !foreign && (self.templates > 0 || !shadow_root(&attr)) {
            self.templates += 1;
        }
        let inert = self.templates > 0;
        if !inert {
            self.breaks_text(name, page);
            self.read_start_tag((name, foreign), &attr, page, parses);
            self.in_body = self.in_body || foreign || starts_body(name);
            // An empty element holds nothing to hide; in SVG a tag ends it as in XML, and
            // so does an `<svg>`'s or `<math>`'s own (`<svg aria-hidden="true"/>`). Asked
            // only inside a link or a label: every start tag of every page comes here.
            let empty = || is_void(name) || (tag.self_closing && foreign);
            let kept = self.follow_start(&tag.name, foreign, &empty);
            if self
                .muted
                .as_mut()
                .is_some_and(|m| !m.goes_on_at_start(&tag.name, &empty, kept))
            {
                self.muted = None;
            }
            if !self.labelling.is_empty() {
                self.labelling
                    .retain_mut(|(_, element)| element.goes_on_at_start(&tag.name, &empty, kept));
            }
            // A labelling element's own content is its label, even when it is hidden (a
            // label written for screen readers only); a hidden element inside it is not.
            let labels = match self.wanted {
                Some(wanted) => {
                    let element = (&tag.name, foreign, &attr);
                    self.start_label(wanted, element, &empty, kept, page)
                }
                None => false,
            };
            let reading = self.reading();
            // The cheap tests first: every start tag of every page comes here.
            if self.muted.is_none()
                && reading
                && !labels
                && name != "a"
                && (hides(&attr) || (!foreign && is_media(name)))
                && !empty()
            {
                self.muted = Some(Element::hiding(&tag.name, kept));
            }
            // An icon drawn as an image is named by its `aria-label` in place of its
            // content, as an image is by its alt.
            let icon = (self.muted.is_none() && reading && !labels && name != "a")
                .then(|| icon_label(name, &attr))
                .flatten();
            if let Some(label) = icon {
                self.add_image_alt(label, page);
                if !empty() {
                    self.muted = Some(Element::hiding(&tag.name, kept));
                }
            }
        }
        if foreign {
            // Its text is not markup here, so it ends at its end tag as in HTML.
            if !tag.self_closing && is_hidden_in_svg(name) {
                self.hidden = true;
                self.icon_title = name == "title";
                if let (true, false, Some(anchor)) = (self.icon_title, inert, self.open_link(page))
                {
                    anchor.image_alts.push(' ');
                }
            }
            return TokenSinkResult::Continue;
        }
        self.hidden = is_hidden(name);
        self.icon_title = false;
        if name == "title" && page.title.is_none() && !inert {
            page.title = Some(String::new());
            self.in_title = true;
        }
        text_after(name)
    }

    /// What a start tag outside any `<template>` adds to the page.
    fn read_start_tag<'a>(
        &mut self,
        (name, foreign): (&str, bool),
        attr: &impl Fn(&str) -> Option<&'a str>,
        page: &mut PageElements,
        parses: &UrlParses<'_>,
    ) {
        match name {
            // A new link ends the one open, as the tree builder's adoption agency does.
            "a" => {
                self.open_anchor = None;
                self.muted = None;
                // SVG 1.1 links by `xlink:href`, SVG 2 by `href`, which wins; HTML has
                // no `xlink:href`.
                let href = attr("href").or_else(|| attr("xlink:href").filter(|_| foreign));
                if let Some(anchor) = anchor(href, attr("rel")) {
                    page.anchors.push(Anchor {
                        label: label_of(attr),
                        labelled_by: attr("aria-labelledby").map(str::to_owned),
                        ..anchor
                    });
                    self.open_anchor = Some(page.anchors.len() - 1);
                    self.anchor_tables = self.tables;
                }
            }
            "table" => self.tables += 1,
            // A new cell or row ends the cell before it.
            "td" | "th" | "tr" | "caption" => self.end_cell(),
            // An area has no content: its alt is its text, as an image's is its link's;
            // with none, it is named as a link is.
            "area" => page
                .anchors
                .extend(anchor(attr("href"), attr("rel")).map(|area| Anchor {
                    image_alts: attr("alt").map(str::to_owned).unwrap_or_default(),
                    label: label_of(attr),
                    labelled_by: attr("aria-labelledby").map(str::to_owned),
                    ..area
                })),
            // A frame's document is part of the page (a frameset's are all of it), so its
            // `src` is followed as a link is: `rel` `frame`, and what a screen reader says
            // for the frame, its `aria-label` or `title`, as its label.
            "frame" | "iframe" if !foreign => {
                page.anchors.extend(attr("src").map(|src| Anchor {
                    href: src.to_owned(),
                    rel: Some("frame".to_owned()),
                    label: label_of(attr),
                    labelled_by: attr("aria-labelledby").map(str::to_owned),
                    ..Anchor::default()
                }));
            }
            // HTML reads `<image>` as `<img>`; in SVG (which `<img>` ends) it is SVG's.
            // An image with no alt but an `aria-label` is named by the label, as a screen
            // reader names it (a lazy-loading script's `<img aria-label="Logo">`).
            "img" | "image" if !foreign => {
                let alt = attr("alt")
                    .filter(|alt| !alt.trim().is_empty())
                    .or_else(|| attr("aria-label"))
                    .filter(|_| self.muted.is_none() && !hides(attr));
                if let Some(alt) = alt {
                    self.add_image_alt(alt, page);
                }
            }
            // In SVG or MathML a `<base>` is that language's element, not the page's base.
            "base" if page.base_href.is_none() && !foreign => {
                page.base_href = attr("href").map(str::to_owned);
            }
            "meta" => {
                let robots = attr("name").is_some_and(|n| {
                    let n = n.trim();
                    n.eq_ignore_ascii_case("robots") || n.eq_ignore_ascii_case(self.crawler)
                });
                if let (true, Some(content)) = (robots, attr("content")) {
                    page.meta_robots.push(content.to_owned());
                }
                let refresh =
                    attr("http-equiv").is_some_and(|e| e.trim().eq_ignore_ascii_case("refresh"));
                let content = attr("content").filter(|_| refresh && !self.refreshed);
                if let Some(refresh) = content.and_then(refresh_of) {
                    self.refresh(refresh, page, parses);
                }
            }
            "link" if page.canonical_href.is_none() && !self.in_body => {
                let canonical =
                    attr("rel").is_some_and(|rel| crate::scope::rel_names(rel, "canonical"));
                if canonical {
                    page.canonical_href = attr("href").map(str::to_owned);
                }
            }
            _ => {}
        }
    }

    /// Reads an end tag; asks for the tokenizer to pause when only the page's open
    /// elements say whether it ends the SVG or MathML open ([`Self::html_after`]).
    fn end_tag(&mut self, tag: &Tag, page: &mut PageElements) -> TokenSinkResult<()> {
        let name = &*tag.name;
        let kept = match (self.reading(), self.templates) {
            (false, _) => {
                self.open_elements.clear();
                None
            }
            (true, 0) => self.open_elements.end(&tag.name),
            (true, _) => None,
        };
        if self
            .muted
            .as_mut()
            .is_some_and(|m| !m.goes_on_at_end(&tag.name, kept))
        {
            self.muted = None;
        }
        if !self.labelling.is_empty() {
            self.labelling
                .retain_mut(|(_, element)| element.goes_on_at_end(&tag.name, kept));
        }
        let in_markup = self.foreign.in_markup();
        let unmatched = self.foreign.end(&tag.name);
        match name {
            // SVG or MathML left open in a template (`<template><svg><path></template>`, a
            // forgotten `</svg>`) ends with it, as the tree builder pops it to the
            // template; what follows is the page again. A `<template>` inside SVG is
            // SVG's and not counted, so SVG open while one is counted was opened in it.
            "template" if !in_markup || self.templates > 0 => {
                self.foreign.clear();
                self.templates = self.templates.saturating_sub(1);
            }
            _ if self.templates > 0 => {}
            "a" => {
                self.open_anchor = None;
                self.muted = None;
            }
            "title" => self.in_title = false,
            "td" | "th" | "tr" | "caption" => self.end_cell(),
            "table" => {
                self.end_cell();
                self.tables = self.tables.saturating_sub(1);
            }
            _ => {}
        }
        // HTML's text-only elements end only at their own end tag, so this is the one;
        // SVG's end at theirs, or with the SVG around them.
        self.hidden &= self.foreign.in_markup() && !is_hidden_in_svg(name);
        self.icon_title &= self.hidden;
        if self.templates == 0 {
            self.breaks_text(name, page);
        }
        match unmatched && self.foreign.in_markup() {
            true => TokenSinkResult::Script(()),
            false => TokenSinkResult::Continue,
        }
    }

    /// Follows the answer to an end tag that ended no SVG or MathML element: whether HTML
    /// comes after it, the tree builder having ended an element open around them, or
    /// `None` when the page's elements are not known. Then the SVG or MathML is taken to
    /// end: its markup read as HTML's drops its links, where HTML's read as its markup
    /// would take a script's strings for links.
    fn html_after(&mut self, html: Option<bool>) {
        if html != Some(false) {
            self.foreign.break_out();
            self.hidden = false;
            self.icon_title = false;
        }
    }

    /// Acts on a refresh, as a browser acts on the first refresh it can read only: one
    /// without content, whose content names no time (`refresh_of` says so), or whose URL
    /// does not parse, is passed over. A URL that parses but names no page
    /// (`javascript:`, `mailto:`) is acted on: browsers then refuse to go there, and the
    /// refreshes after it are not read. So is one after [`MAX_REFRESH_DELAY_S`] or more,
    /// which moves the page nowhere.
    fn refresh(&mut self, refresh: Refresh<'_>, page: &mut PageElements, parses: &UrlParses<'_>) {
        let (base, url) = (&page.base_href, refresh.url);
        if url.is_some_and(|url| !parses(url, base.as_deref())) {
            return;
        }
        self.refreshed = true;
        if refresh.seconds >= MAX_REFRESH_DELAY_S {
            return;
        }
        let anchor = url.map(|url| refresh_anchor(url, base.clone()));
        page.anchors.extend(anchor);
    }

    /// Whether a link's text or a label is being read.
    fn reading(&self) -> bool {
        self.open_anchor.is_some() || !self.labelling.is_empty()
    }

    /// Follows a start tag (`empty`: of an element that opens nothing) on the elements
    /// open in what is being read, and forgets them when nothing is. Where it stands among
    /// them, which is how many stayed open before it; `None` when they are not followed.
    fn follow_start(
        &mut self,
        name: &LocalName,
        foreign: bool,
        empty: &impl Fn() -> bool,
    ) -> Option<usize> {
        if !self.reading() {
            self.open_elements.clear();
            return None;
        }
        self.open_elements.start(name, foreign, empty())
    }

    /// The link whose text is being read.
    fn open_link<'p>(&self, page: &'p mut PageElements) -> Option<&'p mut Anchor> {
        self.open_anchor.and_then(|i| page.anchors.get_mut(i))
    }

    /// A link left open in a table's cell ends with the cell: the tree builder does not
    /// carry it on past the cell. A link around a whole table goes on.
    fn end_cell(&mut self) {
        if self.tables > 0 && self.anchor_tables >= self.tables {
            self.open_anchor = None;
        }
    }

    /// Text on either side of a block's edge is two pieces, not one word.
    fn breaks_text(&self, name: &str, page: &mut PageElements) {
        if !self.reading() || !is_block(name) {
            return;
        }
        if let Some(anchor) = self.open_link(page) {
            anchor.text.push(' ');
        }
        self.add_to_labels(&[" "], page);
    }

    /// Starts reading the label of an element (`name`, its attributes `attr`) whose id is
    /// wanted, unless an element of that id came before it: its `aria-label` is its label,
    /// an empty element's is its alt text (`<img>`'s), and the rest's is read from its
    /// content. Whether its content is read. `wanted`: the ids whose labels are read.
    fn start_label<'a>(
        &mut self,
        wanted: &HashSet<String>,
        (name, foreign, attr): (&LocalName, bool, &impl Fn(&str) -> Option<&'a str>),
        empty: &impl Fn() -> bool,
        kept: Option<usize>,
        page: &mut PageElements,
    ) -> bool {
        let Some(id) = attr("id").filter(|id| wanted.contains(*id)) else {
            return false;
        };
        if page.labels.contains_key(id) || self.labelling.len() >= MAX_OPEN_LABELS {
            return false;
        }
        let own = attr("aria-label").filter(|l| l.contains(|c: char| !c.is_whitespace()));
        let image = matches!(&**name, "img" | "image") && !foreign;
        let mut label = String::new();
        match (own, empty()) {
            (Some(own), _) => push_collapsed(&mut label, own),
            (None, true) => push_collapsed(&mut label, attr("alt").filter(|_| image).unwrap_or("")),
            (None, false) => {
                self.labelling
                    .push((id.to_owned(), Element::new(name, kept)));
                // The first label read outside a link is the first element followed.
                let first = kept
                    .is_none()
                    .then(|| self.follow_start(name, foreign, empty));
                if let (Some(at), Some((_, element))) = (first, self.labelling.last_mut()) {
                    element.at = at;
                }
            }
        }
        page.labels.insert(id.to_owned(), label);
        own.is_none() && !empty()
    }

    /// Adds an image's alt text to the open link's and to the labels being read, where it
    /// is a word of its own.
    fn add_image_alt(&self, alt: &str, page: &mut PageElements) {
        self.add_to_labels(&[" ", alt, " "], page);
        if let Some(anchor) = self.open_link(page) {
            anchor.image_alts.push(' ');
            anchor.image_alts.push_str(alt);
        }
    }

    /// Adds the pieces of `text` to the labels being read.
    fn add_to_labels(&self, text: &[&str], page: &mut PageElements) {
        for (id, _) in &self.labelling {
            if let Some(label) = page.labels.get_mut(id) {
                for piece in text {
                    push_collapsed(label, piece);
                }
            }
        }
    }
}

/// An element followed to its end: its name, how many elements of that name are open in
/// it, itself included, and where it stands among the [`OpenElements`] (`None`: they were
/// not followed), which say where the tree builder ends it while they are followed; past
/// that, it ends at its own end tag, or a `<p>` at what closes a `<p>`.
struct Element {
    name: LocalName,
    open: usize,
    at: Option<usize>,
}

impl Element {
    fn new(name: &LocalName, at: Option<usize>) -> Self {
        Self {
            name: name.clone(),
            open: 1,
            at,
        }
    }

    /// A hidden element, standing at `kept` among the open elements. A formatting one
    /// (`<i aria-hidden="true">`) that the tree builder pops before its end tag is built
    /// again, hidden, around what follows (`<div><i hidden>»</div>Next`: "Next" is in
    /// the rebuilt `<i>`), so it is followed to its own end tag only.
    fn hiding(name: &LocalName, kept: Option<usize>) -> Self {
        Self::new(name, kept.filter(|_| !open::is_formatting(name)))
    }

    /// Whether the element is still open after a start tag (`empty`: one that opens
    /// nothing) that left `kept` of the open elements open. A `<p>` holds no block, so the
    /// tree builder ends one left open at a block's start tag or another `<p>`.
    fn goes_on_at_start(
        &mut self,
        name: &LocalName,
        empty: &impl Fn() -> bool,
        kept: Option<usize>,
    ) -> bool {
        if &*self.name == "p" && closes_p(name) {
            return self.followed(kept).unwrap_or(false);
        }
        if *name == self.name && !empty() {
            self.open += 1;
        }
        self.followed(kept).unwrap_or(true)
    }

    /// Whether the element is still open after an end tag that left `kept` of the open
    /// elements open.
    fn goes_on_at_end(&mut self, name: &LocalName, kept: Option<usize>) -> bool {
        // An end tag the tree builder ignores (`</span>` across a `<div>`) is counted too.
        if *name == self.name {
            self.open = self.open.saturating_sub(1);
        }
        self.followed(kept).unwrap_or(self.open > 0)
    }

    /// Whether the element is still open among the elements followed, when it and they
    /// are.
    fn followed(&self, kept: Option<usize>) -> Option<bool> {
        Some(kept? > self.at?)
    }
}

/// Appends `text` to `out` with runs of ASCII whitespace as one space (none leading), until
/// `out` is past [`MAX_TEXT_BYTES`], which its reader cuts to at a word's end: a label is
/// kept as long as anchor text is, however large the element it is read from.
fn push_collapsed(out: &mut String, text: &str) {
    for c in text.chars() {
        if out.len() > MAX_TEXT_BYTES {
            return;
        }
        match c.is_ascii_whitespace() {
            true if out.is_empty() || out.ends_with(' ') => {}
            true => out.push(' '),
            false => out.push(c),
        }
    }
}

/// What names a link, an area or a frame that has nothing to read: its `aria-label`,
/// else its `title`, the first that is not blank (what a screen reader says for it).
fn label_of<'a>(attr: &impl Fn(&str) -> Option<&'a str>) -> String {
    [attr("aria-label"), attr("title")]
        .into_iter()
        .flatten()
        .find(|label| label.contains(|c: char| !c.is_whitespace()))
        .map(str::to_owned)
        .unwrap_or_default()
}

/// The `aria-label` of an icon drawn as an image: an inline `<svg>`, or an element whose
/// role is `img` (an icon font's `<i role="img" aria-label="Twitter">`). An `<img>` has
/// its alt.
fn icon_label<'a>(name: &str, attr: &impl Fn(&str) -> Option<&'a str>) -> Option<&'a str> {
    let label = attr("aria-label").filter(|l| l.contains(|c: char| !c.is_whitespace()))?;
    let role = attr("role").and_then(|r| r.split_ascii_whitespace().next());
    let image = name == "svg" || role.is_some_and(|r| r.eq_ignore_ascii_case("img"));
    image.then_some(label)
}

/// Whether a `<template>` is a declarative shadow root, whose content the browser shows
/// in its parent's place.
fn shadow_root<'a>(attr: &impl Fn(&str) -> Option<&'a str>) -> bool {
    attr("shadowrootmode").is_some_and(|mode| {
        ["open", "closed"]
            .iter()
            .any(|m| mode.eq_ignore_ascii_case(m))
    })
}

/// Whether an element's content is hidden: `hidden` (not shown), or `aria-hidden="true"`
/// (shown, but decoration, left out of what a screen reader says).
fn hides<'a>(attr: &impl Fn(&str) -> Option<&'a str>) -> bool {
    attr("hidden").is_some()
        || attr("aria-hidden").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Elements whose content a browser never shows: a `<video>`'s or `<audio>`'s is fallback
/// for browsers with no player ("Your browser does not support the video tag."), which a
/// linked video thumbnail would otherwise give its link as anchor text.
fn is_media(name: &str) -> bool {
    matches!(name, "video" | "audio")
}

/// The start tags that end a `<p>` left open (the HTML standard's "close a p element"
/// on them): a block's but a line break's or a table row's or cell's, and a few more
/// that [`is_block`] does not list.
fn closes_p(name: &str) -> bool {
    (is_block(name) && !matches!(name, "br" | "td" | "th" | "tr"))
        || matches!(
            name,
            "center"
                | "details"
                | "dialog"
                | "dir"
                | "fieldset"
                | "hgroup"
                | "listing"
                | "menu"
                | "plaintext"
                | "search"
                | "summary"
                | "xmp"
        )
}

/// HTML's elements that have no content (`<img>`, `<br>`, …): no end tag follows theirs.
fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "image"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "source"
            | "track"
            | "wbr"
    )
}

fn anchor(href: Option<&str>, rel: Option<&str>) -> Option<Anchor> {
    Some(Anchor {
        href: href?.to_owned(),
        rel: rel.map(str::to_owned),
        ..Anchor::default()
    })
}

/// HTML start tags that end SVG or MathML left open, as the tree builder does: markup
/// that cannot be drawing or formula (`<p>`, `<div>`, `<table>`, …) means the author
/// forgot to close it, and what follows is HTML again.
fn breaks_out_of_foreign<'a>(name: &str, attr: &impl Fn(&str) -> Option<&'a str>) -> bool {
    match name {
        "font" => ["color", "face", "size"].iter().any(|a| attr(a).is_some()),
        _ => matches!(
            name,
            "b" | "big"
                | "blockquote"
                | "body"
                | "br"
                | "center"
                | "code"
                | "dd"
                | "div"
                | "dl"
                | "dt"
                | "em"
                | "embed"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "head"
                | "hr"
                | "i"
                | "img"
                | "li"
                | "listing"
                | "menu"
                | "meta"
                | "nobr"
                | "ol"
                | "p"
                | "pre"
                | "ruby"
                | "s"
                | "small"
                | "span"
                | "strong"
                | "strike"
                | "sub"
                | "sup"
                | "table"
                | "tt"
                | "u"
                | "ul"
                | "var"
        ),
    }
}

/// The value of `tag`'s attribute `name` (the tokenizer keeps the first of a name
/// written twice).
fn attribute<'t>(tag: &'t Tag, name: &str) -> Option<&'t str> {
    tag.attrs
        .iter()
        .find(|a| &*a.name.local == name)
        .map(|a| &*a.value)
}

/// How the text after an HTML start tag is read: HTML's text-only elements' (`<script>`,
/// `<style>`, `<title>`, …, as with scripting on, so `<noscript>` too) is not markup.
fn text_after(name: &str) -> TokenSinkResult<()> {
    match name {
        "title" | "textarea" => TokenSinkResult::RawData(RawKind::Rcdata),
        "script" => TokenSinkResult::RawData(RawKind::ScriptData),
        "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => {
            TokenSinkResult::RawData(RawKind::Rawtext)
        }
        "plaintext" => TokenSinkResult::Plaintext,
        _ => TokenSinkResult::Continue,
    }
}

/// Whether an HTML start tag starts the body: any element but those a head holds (the
/// tree builder's "in head" and "after head" modes put these in the head).
fn starts_body(name: &str) -> bool {
    !matches!(
        name,
        "html"
            | "head"
            | "base"
            | "basefont"
            | "bgsound"
            | "link"
            | "meta"
            | "noframes"
            | "noscript"
            | "script"
            | "style"
            | "template"
            | "title"
    )
}

/// Elements whose text is never shown: a script, a style sheet, what is shown in place of
/// scripts, frames and embeds that pipecrawl (a browser with scripting on) does not show,
/// and a title, which is the tab's.
fn is_hidden(name: &str) -> bool {
    matches!(
        name,
        "script" | "style" | "noscript" | "iframe" | "noembed" | "noframes" | "title"
    )
}

/// SVG's elements whose text is never drawn: a style sheet, a script, a description and a
/// title (a tooltip).
fn is_hidden_in_svg(name: &str) -> bool {
    matches!(name, "style" | "script" | "title" | "desc")
}

/// Elements shown as blocks (or line breaks): their edges separate words.
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "br"
            | "dd"
            | "div"
            | "dl"
            | "dt"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "hr"
            | "li"
            | "main"
            | "nav"
            | "ol"
            | "p"
            | "pre"
            | "section"
            | "table"
            | "td"
            | "th"
            | "tr"
            | "ul"
    )
}

/// A refresh's URL as a link: `rel` `refresh`, no text, resolved against `base_href`
/// (the page's URL when `None`).
fn refresh_anchor(url: &str, base_href: Option<String>) -> Anchor {
    Anchor {
        href: url.to_owned(),
        rel: Some("refresh".to_owned()),
        base: Base::ReadBefore(base_href),
        refresh: true,
        ..Anchor::default()
    }
}

/// The wait from which a refresh no longer moves its page, as Scrapy's
/// `METAREFRESH_MAXDELAY` (which follows one under it): a page that moves only after minutes (a session running out,
/// to `/logout` or a sign-in host) has long been read by then, and following it as the
/// page's redirect would crawl the sign-in host, or a seed's `/logout` whatever `exclude`
/// says.
const MAX_REFRESH_DELAY_S: u64 = 100;

/// A refresh a browser acts on: after `seconds`, to `url` (`None`: the page itself).
#[derive(Debug, PartialEq)]
struct Refresh<'a> {
    seconds: u64,
    url: Option<&'a str>,
}

/// The refresh a `<meta http-equiv="refresh">`'s content, or a `Refresh` header, names
/// (`5; url='/next'`), read as the HTML standard's declarative refresh does: `None` for
/// content a browser does not act on (no time).
fn refresh_of(content: &str) -> Option<Refresh<'_>> {
    let rest = content.trim_start_matches(is_space);
    let time_end = rest
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(rest.len());
    if !rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let whole = rest[..time_end].split('.').next().unwrap_or_default();
    // More seconds than a u64 holds are as long as any wait; none before a `.` is none.
    let seconds = whole
        .parse()
        .unwrap_or(if whole.is_empty() { 0 } else { u64::MAX });
    let rest = &rest[time_end..];
    if !rest.is_empty() && !rest.starts_with([';', ',']) && !rest.starts_with(is_space) {
        return None;
    }
    let rest = rest.trim_start_matches(is_space);
    let rest = rest
        .strip_prefix([';', ','])
        .unwrap_or(rest)
        .trim_start_matches(is_space);
    let rest = match rest.get(..3) {
        Some(word) if word.eq_ignore_ascii_case("url") => {
            let after = rest[3..].trim_start_matches(is_space);
            match after.strip_prefix('=') {
                Some(value) => value.trim_start_matches(is_space),
                None => rest,
            }
        }
        _ => rest,
    };
    let url = match rest.chars().next() {
        Some(quote @ ('\'' | '"')) => {
            let quoted = &rest[1..];
            quoted.find(quote).map_or(quoted, |end| &quoted[..end])
        }
        _ => rest,
    };
    let url = url.trim_matches(is_space);
    Some(Refresh {
        seconds,
        url: (!url.is_empty()).then_some(url),
    })
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_page(html: &str, refresh_header: Option<&str>) -> PageElements {
        super::read_page(html, Syntax::Html, refresh_header)
    }

    fn texts(page: &PageElements) -> Vec<(&str, &str)> {
        page.anchors
            .iter()
            .map(|a| (a.href.as_str(), a.text.as_str()))
            .collect()
    }

    /// Links wait behind an open link until its text is read, so that they are handed
    /// over in document order; an `<a>` left open across more than [`MAX_WAITING`] of them
    /// holds them no longer: its text ends there, and they go.
    #[test]
    fn links_waiting_behind_an_open_link_keep_their_order_up_to_a_bound() {
        let page = |areas: usize| {
            let areas: String = (0..areas)
                .map(|i| format!("<area href='/{i}' alt='{i}'>"))
                .collect();
            read_page(&format!("<a href='/open'>before {areas} after"), None)
        };
        let few = page(10);
        assert_eq!(few.anchors[0].text.trim(), "before  after");
        let many = page(2 * MAX_WAITING);
        assert_eq!(many.anchors.len(), 2 * MAX_WAITING + 1);
        assert_eq!(many.anchors[0].text.trim(), "before");
        assert!(many.anchors[1..]
            .iter()
            .enumerate()
            .all(|(i, a)| a.href == format!("/{i}")));
    }

    #[test]
    fn deep_nesting_costs_no_more_than_its_length() {
        let n = 100_000;
        let html = format!(
            "<title>Deep</title>{}<a href='/inside'>in</a>{}<a href='/after'>after</a>",
            "<div>".repeat(n),
            "</div>".repeat(n)
        );
        let started = std::time::Instant::now();
        let page = read_page(&html, None);
        assert_eq!(texts(&page), [("/inside", "in"), ("/after", "after")]);
        assert_eq!(page.title.as_deref(), Some("Deep"));
        // Quadratic work over 100,000 levels (html5ever's tree builder) takes minutes in
        // a debug build; the linear read takes half a second here, and seven beside
        // other tests on a busy machine.
        assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    }

    #[test]
    fn text_elements_hide_markup() {
        let page = read_page(
            "<title>A <a href='/t'>b</a></title><script>x='<a href=\"/s\">'</script>\
             <style>a{}</style><noscript><a href='/n'>n</a></noscript><textarea><a href='/x'></textarea>\
             <!-- <a href='/c'> --><a href='/real'>real</a>", None);
        assert_eq!(page.title.as_deref(), Some("A <a href='/t'>b</a>"));
        assert_eq!(texts(&page), [("/real", "real")]);
    }

    #[test]
    fn a_links_text_leaves_out_what_is_never_shown() {
        let page = read_page(
            "<a href='/lazy'><img alt='Red shoes'><noscript><img src='x.jpg' alt='Red shoes'>\
             </noscript></a><a href='/buy'>Buy<style>.x{color:red}</style>\
             <script>track('buy')</script> now</a><a href='/after'>after</a>",
            None,
        );
        assert_eq!(
            texts(&page),
            [("/lazy", ""), ("/buy", "Buy now"), ("/after", "after")]
        );
        assert_eq!(page.anchors[0].image_alts, " Red shoes");
    }

    #[test]
    fn a_meta_refresh_url_is_read_as_browsers_read_it() {
        for (content, refresh) in [
            ("0; url=/next", Some((0, Some("/next")))),
            ("5;URL='/q?a=1' trailing", Some((5, Some("/q?a=1")))),
            ("0 , url = \"/x\"", Some((0, Some("/x")))),
            ("1.5; /bare", Some((1, Some("/bare")))),
            (".5; /half", Some((0, Some("/half")))),
            (
                "99999999999999999999; /never",
                Some((u64::MAX, Some("/never"))),
            ),
            ("3", Some((3, None))),
            ("0;", Some((0, None))),
            ("", None),
            ("url=/no-time", None),
            ("0x; url=/bad-time", None),
        ] {
            let read = refresh_of(content).map(|r| (r.seconds, r.url));
            assert_eq!(read, refresh, "{content:?}");
        }
        let page = read_page(
            "<meta http-equiv=REFRESH content='0;url=/a'><meta http-equiv=refresh content='0;url=/b'>", None);
        assert_eq!(page.anchors.len(), 1, "the first refresh only");
        assert_eq!(
            (
                page.anchors[0].href.as_str(),
                page.anchors[0].rel.as_deref()
            ),
            ("/a", Some("refresh"))
        );
    }

    /// A refresh after 100 s or more (a session running out) moves the page nowhere, and
    /// is the one a browser acts on, so a quicker one after it is not read either.
    #[test]
    fn a_refresh_after_minutes_is_no_move() {
        let page = read_page(
            "<meta http-equiv=refresh content='900; url=/logout'>\
             <meta http-equiv=refresh content='0; url=/b'>",
            None,
        );
        assert!(page.anchors.is_empty(), "{:?}", page.anchors);
        let hrefs = |header: &str| -> Vec<String> {
            let page = read_page("<title>t</title>", Some(header));
            page.anchors.into_iter().map(|a| a.href).collect()
        };
        assert!(hrefs("100; url=/later").is_empty());
        assert_eq!(hrefs("99.9; url=/soon"), ["/soon"]);
    }

    /// SVG 1.1 links by `xlink:href`, which browsers still follow; SVG 2's `href` wins
    /// when both are there.
    #[test]
    fn svg_links_by_xlink_href_are_links() {
        let page = read_page(
            "<svg><a xlink:href='/old'><text>old</text></a>\
             <a href='/new' xlink:href='/ignored'><text>new</text></a></svg>\
             <a xlink:href='/html-has-no-xlink'>html</a>",
            None,
        );
        assert_eq!(texts(&page), [("/old", "old"), ("/new", "new")]);
    }

    #[test]
    fn html_markup_ends_an_svg_left_open() {
        let page = read_page(
            "<svg><path d='M0'></div><p>text</p><title>Real</title>\
             <script>var s = '<a href=\"/not-a-link\">x</a>';</script>\
             <math><mi>x</mi></p><a href='/after'>after</a>",
            None,
        );
        assert_eq!(page.title.as_deref(), Some("Real"));
        assert_eq!(texts(&page), [("/after", "after")]);
    }

    #[test]
    fn only_the_first_title_counts_and_svg_titles_are_not_it() {
        let page = read_page(
            "<svg><title>icon</title><style><a href='/in-svg'>x</a></style></svg>\
             <title>Page</title><title>Other</title>",
            None,
        );
        assert_eq!(page.title.as_deref(), Some("Page"));
        // SVG's `<style>` holds markup, not raw text, but draws none of it.
        assert_eq!(texts(&page), [("/in-svg", "")]);
    }

    #[test]
    fn a_link_ends_at_the_next_link_a_cell_end_or_its_own_end() {
        let page = read_page(
            "<a href='/1'>one<a href='/2'>two</a> out<table><tr><td><a href='/3'>three</td>\
             <td>cell</td></tr></table><a href='/4'>four",
            None,
        );
        assert_eq!(
            texts(&page),
            [
                ("/1", "one"),
                ("/2", "two"),
                ("/3", "three"),
                ("/4", "four")
            ]
        );
    }

    #[test]
    fn a_link_around_a_table_holds_its_cells_text() {
        let page = read_page(
            "<a href='/t'><table><tr><td>cell</td><td>two</td></tr></table>after</a>\
             <table><tr><td><a href='/c'>in cell<td>next cell</table>",
            None,
        );
        let words: Vec<(&str, String)> = page
            .anchors
            .iter()
            .map(|a| {
                (
                    a.href.as_str(),
                    a.text.split_whitespace().collect::<Vec<_>>().join(" "),
                )
            })
            .collect();
        assert_eq!(
            words,
            [
                ("/t", "cell two after".to_owned()),
                ("/c", "in cell".to_owned())
            ]
        );
    }

    #[test]
    fn blocks_separate_words_and_inline_markup_does_not() {
        let page = read_page(
            "<a href='/x'><div>Title</div><div>Sub</div>Java<b>Script</b><br>end</a>",
            None,
        );
        assert_eq!(texts(&page), [("/x", " Title  Sub JavaScript end")]);
    }

    /// Search engines take a canonical `<link>` only from the page's head (Google: "only
    /// accepted if it appears in the <head> section"), which ends where the tree builder
    /// starts the body: at `<body>`, at text, or at an element the head cannot hold (a
    /// plugin's `<div>` or `<img>` before it, a common audit finding). One after that was
    /// stored as the page's `canonical_url`, an audit's "canonical elsewhere" naming a
    /// URL no search engine reads.
    #[test]
    fn a_canonical_link_outside_the_head_is_not_the_pages() {
        let canonical = |html: &str| read_page(html, None).canonical_href;
        for in_head in [
            "<!DOCTYPE html><html><head><title>T</title><link rel=canonical href='/c'></head>",
            "<meta charset=utf-8>\n  <script>var a = '<div>';</script><style>p{}</style>\
             <noscript><img src=x></noscript><link rel=canonical href='/c'>",
            // Between `</head>` and `<body>` the tree builder puts it in the head.
            "<head><title>T</title></head>\n<link rel=canonical href='/c'><body>",
        ] {
            assert_eq!(canonical(in_head).as_deref(), Some("/c"), "{in_head}");
        }
        for in_body in [
            "<head><title>T</title></head><body><link rel=canonical href='/c'>",
            "<head><div class=banner></div><link rel=canonical href='/c'></head>",
            "<head><title>T</title>Hello<link rel=canonical href='/c'></head>",
            "<a href='/x'>x</a><link rel=canonical href='/c'>",
        ] {
            assert_eq!(canonical(in_body), None, "{in_body}");
        }
    }

    #[test]
    fn attributes_and_character_references_are_read() {
        let page = read_page(
            "<base href='/docs/'><base href='/other/'><meta name=' Robots ' content='noindex'>\
             <meta name=robots content=nofollow><link rel='alternate canonical' href='/main'>\
             <a href='/a?x=1&amp;y=2' rel=nofollow>A&eacute;<img alt='pic'><img></a>\
             <map><area href='/area' alt='zone'></map>",
            None,
        );
        assert_eq!(page.base_href.as_deref(), Some("/docs/"));
        assert_eq!(page.meta_robots, ["noindex", "nofollow"]);
        assert_eq!(page.canonical_href.as_deref(), Some("/main"));
        assert_eq!(texts(&page), [("/a?x=1&y=2", "Aé"), ("/area", "")]);
        assert_eq!(page.anchors[0].rel.as_deref(), Some("nofollow"));
        assert_eq!(page.anchors[0].image_alts, " pic");
    }

    #[test]
    fn cdata_in_svg_is_text() {
        let page = read_page(
            "<svg><a href='/s'><![CDATA[<b>x</b>]]></a></svg><a href='/h'>h</a>",
            None,
        );
        assert_eq!(texts(&page), [("/s", "<b>x</b>"), ("/h", "h")]);
    }

    /// An inline SVG icon's style sheet, script and description are never shown, and its
    /// `<title>` is a tooltip: like an image's alt, it names a link that has no text,
    /// unless the icon is `aria-hidden`.
    #[test]
    fn an_inline_svg_icon_lends_a_link_only_its_title_and_only_when_it_has_no_text() {
        let page = read_page(
            "<a href='/home'><svg><defs><style>.c{fill:#fff}</style></defs>\
             <script>go()</script><path class='c'/></svg>Home</a>\
             <a href='/next'><svg aria-hidden='true'><title>Arrow</title><desc>An arrow</desc>\
             <use href='#a'/></svg>Next page</a>\
             <a href='/cart'><svg role='img'><title>Cart</title><title/><desc>A cart</desc></svg></a>\
             <a href='/open'><svg><title>Unclosed</svg>Text</a><a href='/after'>after</a>", None);
        assert_eq!(
            texts(&page),
            [
                ("/home", "Home"),
                ("/next", "Next page"),
                ("/cart", ""),
                ("/open", "Text"),
                ("/after", "after")
            ]
        );
        assert_eq!(
            page.anchors[1].image_alts.trim(),
            "",
            "an aria-hidden icon's"
        );
        assert_eq!(page.anchors[2].image_alts, " Cart");
    }

    /// HTML inside an SVG's `<foreignObject>` (a chart's or diagram's labels) is where
    /// it belongs, not markup that ends the SVG: after the object's end the SVG goes on,
    /// its links by `xlink:href` and its tooltips as SVG's.
    #[test]
    fn html_in_a_foreign_object_does_not_end_its_svg() {
        let page = read_page(
            "<svg><g><foreignObject><div><span>Start</span></div></foreignObject></g>\
             <a xlink:href='/node'><text>Node</text></a><title>Diagram</title></svg>\
             <a href='/x'><svg><foreignObject><p>in</p></foreignObject><title>tip</title></svg>out</a>\
             <title>Page</title>", None);
        assert_eq!(page.title.as_deref(), Some("Page"));
        assert_eq!(texts(&page), [("/node", "Node"), ("/x", " in out")]);
        assert_eq!(page.anchors[1].image_alts, " tip");
    }

    /// SVG's `<foreignObject>`, `<desc>` and `<title>` and MathML's text elements hold
    /// HTML: a script or a style sheet in them is one, its text not markup, and a `<title>`
    /// is HTML's (the page's, when it is the first).
    #[test]
    fn html_in_svgs_and_mathmls_text_elements_is_html() {
        let page = read_page(
            "<svg><title><script>\"<a href='/svg-title'>\"</script></title>\
             <desc><style>a[title='<a href=/svg-desc>']{}</style></desc></svg>\
             <math><mi><script>'<a href=\"/mi\">'</script></mi><mtext><style>\
             <a href='/mtext'></style></mtext></math>\
             <math><annotation-xml encoding='text/html'><title>Formula</title></annotation-xml></math>\
             <title>Page</title>",
            None,
        );
        assert_eq!(texts(&page), Vec::<(&str, &str)>::new());
        assert_eq!(page.title.as_deref(), Some("Formula"));
    }

    /// An end tag that ends none of the SVG or MathML open ends them when it ends an
    /// element open around them, as a forgotten `</svg>` before a link's `</a>` does; what
    /// follows is HTML, its scripts' strings no links. A stray one ends nothing.
    #[test]
    fn an_end_tag_of_an_element_around_svg_left_open_ends_the_svg() {
        let page = read_page(
            "<a href=/x><svg><use></a><section><script>\"<a href='/a'>\"</script></section>\
             <div><svg><path></div><script>'<a href=/div>'</script>\
             <my-icon><math><mrow></my-icon><nav><script>'<a href=/custom>'</script></nav>\
             <svg><g></span></g><a xlink:href='/svg'>s</a></svg>",
            None,
        );
        assert_eq!(texts(&page), [("/x", ""), ("/svg", "s")]);
    }

    /// A `<template>`'s content is not part of the page: a browser neither shows it nor
    /// follows its links, and scripts fill it in (`<a href="/item/${id}">${name}</a>`).
    /// Its title, links, base and robots tags are not the page's; a link open around it
    /// goes on after it.
    #[test]
    fn a_templates_content_is_not_the_pages() {
        let page = read_page(
            "<head><template><title>Row</title><base href='http://o.test/'>\
             <meta name=robots content=noindex><link rel=canonical href='/tpl'>\
             <meta http-equiv=refresh content='0;url=/tpl'></template><title>Page</title></head>\
             <a href='/x'>one<template><a href='/item/${id}'>${name}</a><template>\
             <a href='/nested'>n</a></template><td>cell</td></template>two</a>\
             <a href='/after'><template><script>go()</script></template>after</a>\
             <svg><template><a href='/svg'>svg</a></template></svg>",
            None,
        );
        assert_eq!(page.title.as_deref(), Some("Page"));
        assert_eq!(page.base_href, None);
        assert!(page.meta_robots.is_empty());
        assert_eq!(page.canonical_href, None);
        assert_eq!(
            texts(&page),
            [("/x", "onetwo"), ("/after", "after"), ("/svg", "svg")]
        );
    }

    /// A declarative shadow root (`<template shadowrootmode>`, a web component rendered
    /// on the server) is shown where its parent is: its links are the page's. One inside
    /// an ordinary template is kept aside with it.
    #[test]
    fn a_declarative_shadow_roots_links_are_the_pages() {
        let page = read_page(
            "<site-nav><template shadowrootmode='open'><a href='/docs'>Docs</a>\
             <template><a href='/tpl'>t</a></template><a href='/blog'>Blog</a></template>\
             </site-nav><template><div><template shadowrootmode=closed>\
             <a href='/aside'>a</a></template></div></template><a href='/end'>end</a>",
            None,
        );
        assert_eq!(
            texts(&page),
            [("/docs", "Docs"), ("/blog", "Blog"), ("/end", "end")]
        );
    }

    /// The HTML parser reads `<image>` as `<img>` (the standard's "don't ask" rule), so a
    /// logo written that way names its link as any image does; in SVG it is SVG's image.
    #[test]
    fn an_image_tag_is_an_img() {
        let page = read_page(
            "<a href='/home'><image src='logo.png' alt='Home'></a>\
             <a href='/svg'><svg><image href='i.png' alt='not html'/></svg></a>",
            None,
        );
        assert_eq!(page.anchors[0].image_alts, " Home");
        assert_eq!(page.anchors[1].image_alts, "");
    }

    #[test]
    fn frames_are_links_to_their_documents() {
        let page = read_page(
            "<frameset cols='20%,*'><frame src='/menu' title='Menu'><frame src='/main'>\
             <noframes><a href='/plain'>plain</a></noframes></frameset>\
             <iframe src='/map' title='Map'><a href='/inside'>x</a></iframe>\
             <svg><iframe src='/svg'></iframe></svg>",
            None,
        );
        let links: Vec<_> = page
            .anchors
            .iter()
            .map(|a| (a.href.as_str(), a.rel.as_deref(), a.label.as_str()))
            .collect();
        assert_eq!(
            links,
            [
                ("/menu", Some("frame"), "Menu"),
                ("/main", Some("frame"), ""),
                ("/map", Some("frame"), "Map"),
            ]
        );
    }

    /// Elements of wanted ids nested in one another are read [`MAX_OPEN_LABELS`] at a
    /// time, so that each tag is checked against no more; a `<p>` left open ends where
    /// HTML ends it, and so does its label.
    #[test]
    fn labels_read_at_once_are_bounded() {
        let wanted: HashSet<String> = (0..100).map(|i| format!("n{i}")).collect();
        let nested: String = (0..100).map(|i| format!("<b id='n{i}'>{i} ")).collect();
        let labels = read_labels(&nested, Syntax::Html, &wanted);
        assert_eq!(labels.len(), MAX_OPEN_LABELS);
        assert!(labels["n0"].starts_with("0 1 2") && labels["n0"].ends_with(" 99 "));
        let closed: String = (0..100).map(|i| format!("<p id='n{i}'>{i}")).collect();
        let labels = read_labels(&closed, Syntax::Html, &wanted);
        assert_eq!((labels.len(), labels["n7"].trim()), (100, "7"));
    }

    /// In XML an empty tag ends its element: `<script/>` reads no text after it, and an
    /// empty `<a/>` has none; in HTML the same tags start text that runs on.
    #[test]
    fn an_empty_tag_ends_its_element_in_xml_only() {
        let page = "<head><script src='a.js'/><title/><style/></head>\
                    <a href='/anchor'/>after<template/><a href='/x'>x</a>\
                    <svg><title/><a href='/svg'>s</a></svg><title>late</title>";
        let xml = super::read_page(page, Syntax::Xml, None);
        assert_eq!(xml.title.as_deref(), Some(""));
        assert_eq!(texts(&xml), [("/anchor", ""), ("/x", "x"), ("/svg", "s")]);
        let html = read_page(page, None);
        assert_eq!((html.title.as_deref(), texts(&html).len()), (None, 0));
        assert_eq!(
            Syntax::of(Some("Application/XHTML+XML; charset=utf-8")),
            Syntax::Xml
        );
        assert_eq!(Syntax::of(Some("text/html")), Syntax::Html);
    }

    /// The text of each element `selector` selects less what it hides, as html5ever's
    /// tree holds it (scraper builds the tree with html5ever): its descendants' text
    /// outside its hidden elements and text-only elements, without whitespace, which block
    /// edges add; by its `href`.
    fn tree_texts(html: &str, selector: &str) -> Vec<(String, String)> {
        use scraper::{ElementRef, Html, Node};
        fn text_of(element: ElementRef<'_>, out: &mut String) {
            for child in element.children() {
                if let Node::Text(text) = child.value() {
                    out.extend(text.chars().filter(|c| !c.is_whitespace()));
                }
                let Some(child) = ElementRef::wrap(child) else {
                    continue;
                };
                let e = child.value();
                let hidden = e.attr("hidden").is_some()
                    || e.attr("aria-hidden")
                        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
                if !hidden && !is_hidden(e.name()) {
                    text_of(child, out);
                }
            }
        }
        let tree = Html::parse_document(html);
        let links = scraper::Selector::parse(selector).expect("a selector");
        tree.select(&links)
            .map(|a| {
                let mut text = String::new();
                text_of(a, &mut text);
                (a.attr("href").unwrap_or_default().to_owned(), text)
            })
            .collect()
    }

    /// Hiding in a link ends where html5ever's tree ends the hidden element: at its own
    /// end tag, at an end tag of an element around it (`</div>`, `</li>`, `</td>`, unless
    /// an element the tree builder will not close across stands between), and where a
    /// start tag closes it (a `<p>` at a block, an `<li>` at the next `<li>`, a `<dd>` or
    /// `<dt>` at the next of either, a heading at another).
    #[test]
    fn hiding_in_a_link_ends_where_the_tree_ends_the_hidden_element() {
        for html in [
            "<a href=/n><div><span aria-hidden=true>&raquo;</div>Next page</a>",
            "<a href=/l><ul><li hidden>x<li>Shown</ul></a>",
            "<a href=/d><dl><dt hidden>term<dd>Def</dl></a>",
            "<a href=/dd><dl><dd><span aria-hidden=true>*</span>Def<dt hidden>t<dd>More</dl>After</a>",
            "<a href=/s><span><div hidden>x</span>y</div>z</a>",
            "<a href=/t><table><tr><td><span hidden>x</td><td>Cell</td></tr></table>After</a>",
            "<a href=/tt><table><tr><td><span hidden>x<td>Cell</table>After</a>",
            "<a href=/tr><table><tr><td><div hidden>x</tr><tr><td>Row</table>After</a>",
            "<a href=/scope><div><table><tr><td><span hidden>x</div>y</td></tr></table></div>After</a>",
            "<a href=/p><p><span hidden>x<div>Block</div></a>",
            "<a href=/h><h2><span hidden>x</h2>Title</a>",
            "<a href=/h3><h2 hidden>x<h3>Sub</h3></a>",
            "<a href=/h4><h2><span hidden>x</h4>Title</a>",
            "<a href=/stray><span hidden>x</div>y</span>z</a>",
            "<a href=/li2><ul><li><span hidden>x<li>Second</ul></a>",
            "<a href=/div-li><ul><li hidden><div>x<li>Next</ul></a>",
            "<a href=/ul-li><ul><li hidden><ul><li>x</ul>y<li>z</ul></a>",
            "<a href=/ol><ol><li><p hidden>x</ol>After</a>",
            "<a href=/btn><button><span hidden>x</button>y</a>",
            "<a href=/sec><section><span hidden><i>x</section>y</a>",
            "<a href=/nest><span hidden><span>x</span>y</span>z</a>",
            "<a href=/void><span hidden><img alt=i><br>x</span>y</a>",
            "<a href=/b><b hidden>x</b>y</a>",
            "<a href=/i><div><i aria-hidden=true>&raquo;</div>Next</a>",
            "<a href=/end><span hidden>x</a>y<a href=/after>after</a>",
            "<a href=/across><span hidden><div>x</span>y</div>z</a>",
            "<a href=/svg><svg aria-hidden=true><path><span>Text</span></a>",
            "<a href=/fo><div><svg><foreignObject><span hidden>x</div>y</svg>z</a>",
            "<a href=/two>1<a href=/2><span hidden>x</a>y",
        ] {
            let reader: Vec<(String, String)> = read_page(html, None)
                .anchors
                .into_iter()
                .map(|a| (a.href, a.text.split_whitespace().collect()))
                .collect();
            assert_eq!(reader, tree_texts(html, "a[href]"), "{html}");
        }
    }

    /// A label is read where html5ever's tree ends the labelling element and what it
    /// hides, as a link's text is: `tree_texts`, for the element of id `t`.
    #[test]
    fn a_label_and_what_it_hides_end_where_the_tree_ends_them() {
        let wanted: HashSet<String> = ["t".to_owned()].into_iter().collect();
        for html in [
            "<span id=t><div><span aria-hidden=true>&raquo;</div>Next</span>",
            "<span id=t><div><i aria-hidden=true>&raquo;</div>Next</span>",
            "<ul><li id=t>One<span hidden>x<li>Two</ul>",
            "<dl><dt id=t>Term<dd>Definition</dl>",
            "<h2 id=t>Title<span hidden>x</h2>Body",
        ] {
            let label: String = read_labels(html, Syntax::Html, &wanted)["t"]
                .split_whitespace()
                .collect();
            let tree = tree_texts(html, "#t");
            assert_eq!(label, tree[0].1, "{html}");
        }
    }
}
