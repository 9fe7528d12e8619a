//! HTML into a [`scraper::Html`] tree in time linear in the page's size.
//!
//! html5ever's tree builder scans its stack of open elements on many start tags (is a `<p>`
//! open in button scope?), so its cost grows with the square of the nesting depth: a page
//! of 100,000 nested `<div>`s held a parse thread for half a minute in a release build.
//! Browsers cap the depth of the tree for the same reason (Blink at 512). We do the same,
//! between html5ever's tokenizer and its tree builder: once [`MAX_DEPTH`] elements are open,
//! further start tags (and the end tags that close them) are dropped, so what they contain
//! lands in the deepest element kept. Text, links and titles all still reach the tree.

use std::cell::RefCell;
use std::collections::HashMap;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use html5ever::tree_builder::{TreeBuilder, TreeBuilderOpts, TreeSink};
use html5ever::{LocalName, TokenizerResult};
use scraper::{Html, HtmlTreeSink};

/// Open elements kept nested at most; deeper ones are flattened into the deepest.
pub const MAX_DEPTH: usize = 512;

/// Parses a whole document, with nesting capped at [`MAX_DEPTH`].
pub fn parse_document(html: &str) -> Html {
    let builder = TreeBuilder::new(
        HtmlTreeSink::new(Html::new_document()),
        TreeBuilderOpts::default(),
    );
    let tokenizer = Tokenizer::new(DepthLimit::new(builder), TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    // The tokenizer pauses for a script to run and at `<meta charset>`; the text is
    // already decoded and a crawler runs no script, so it just goes on.
    while !matches!(tokenizer.feed(&input), TokenizerResult::Done) {}
    tokenizer.end();
    tokenizer.sink.inner.sink.finish()
}

/// A token filter in front of the tree builder that drops start tags past the depth cap.
///
/// It keeps its own stack of the elements it let through, approximating the tree builder's:
/// elements that are void or close themselves implicitly (`<p>`, `<td>`) are not counted, a
/// new `<li>` closes the last one, and an end tag closes everything opened after its
/// element, as `</div>` does.
struct DepthLimit<S> {
    inner: S,
    open: RefCell<Vec<LocalName>>,
    /// Start tags dropped, by name, whose end tags are to be dropped too.
    dropped: RefCell<HashMap<LocalName, usize>>,
}

impl<S> DepthLimit<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            open: RefCell::default(),
            dropped: RefCell::default(),
        }
    }

    /// Whether the tree builder gets this tag.
    fn keep(&self, tag: &Tag) -> bool {
        if !nests(&tag.name) {
            return true;
        }
        let mut open = self.open.borrow_mut();
        let mut dropped = self.dropped.borrow_mut();
        if tag.kind == TagKind::StartTag {
            close_list_item(&mut open, &tag.name);
        }
        match tag.kind {
            // `<div/>` opens a div in HTML; only inside SVG or MathML does `/>` close it.
            TagKind::StartTag if tag.self_closing && in_foreign_content(&open) => true,
            TagKind::StartTag if open.len() < MAX_DEPTH => {
                open.push(tag.name.clone());
                true
            }
            TagKind::StartTag => {
                *dropped.entry(tag.name.clone()).or_default() += 1;
                false
            }
            TagKind::EndTag => {
                // Dropped elements were the innermost: their end tags come first.
                if let Some(count) = dropped.get_mut(&tag.name).filter(|n| **n > 0) {
                    *count -= 1;
                    return false;
                }
                if let Some(i) = open.iter().rposition(|name| *name == tag.name) {
                    open.truncate(i);
                }
                true
            }
        }
    }
}

impl<S: TokenSink> TokenSink for DepthLimit<S> {
    type Handle = S::Handle;

    fn process_token(&self, token: Token, line_number: u64) -> TokenSinkResult<S::Handle> {
        if let Token::TagToken(tag) = &token {
            if !self.keep(tag) {
                return TokenSinkResult::Continue;
            }
        }
        self.inner.process_token(token, line_number)
    }

    fn end(&self) {
        self.inner.end();
    }

    fn adjusted_current_node_present_but_not_in_html_namespace(&self) -> bool {
        self.inner
            .adjusted_current_node_present_but_not_in_html_namespace()
    }
}

/// Whether an element stays open until its end tag: not void, not closed implicitly by
/// its next sibling, and not one the link extractor needs wherever it is (`<a>`, `<title>`).
fn nests(name: &LocalName) -> bool {
    !matches!(
        &**name,
        "a" | "title"
            | "area"
            | "base"
            | "basefont"
            | "bgsound"
            | "br"
            | "col"
            | "embed"
            | "frame"
            | "hr"
            | "img"
            | "image"
            | "input"
            | "keygen"
            | "link"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
            | "p"
            | "option"
            | "optgroup"
            | "rb"
            | "rp"
            | "rt"
            | "rtc"
            | "tr"
            | "td"
            | "th"
            | "tbody"
            | "thead"
            | "tfoot"
            | "caption"
            | "colgroup"
            | "html"
            | "head"
            | "body"
    )
}

/// A new `<li>` closes the list item still open (`<dd>` and `<dt>` close either), as the
/// tree builder does, unless an element other than `<div>` or `<address>` comes between:
/// then the new item is nested in it.
fn close_list_item(open: &mut Vec<LocalName>, name: &LocalName) {
    let closes: &[&str] = match &**name {
        "li" => &["li"],
        "dd" | "dt" => &["dd", "dt"],
        _ => return,
    };
    for i in (0..open.len()).rev() {
        let open_name = &*open[i];
        if closes.contains(&open_name) {
            open.truncate(i);
            return;
        }
        if !matches!(open_name, "div" | "address") {
            return;
        }
    }
}

fn in_foreign_content(open: &[LocalName]) -> bool {
    open.iter()
        .any(|name| &**name == "svg" || &**name == "math")
}

#[cfg(test)]
mod tests {
    use super::*;
    use scraper::Selector;

    /// The deepest element's number of element ancestors.
    fn depth(doc: &Html) -> usize {
        doc.root_element()
            .descendants()
            .filter(|n| n.value().is_element())
            .map(|n| n.ancestors().filter(|a| a.value().is_element()).count())
            .max()
            .unwrap_or(0)
    }

    fn hrefs(doc: &Html) -> Vec<String> {
        let anchors = Selector::parse("a[href]").unwrap();
        doc.select(&anchors)
            .filter_map(|a| a.value().attr("href"))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn deep_nesting_is_flattened_and_its_content_kept() {
        let n = 100_000;
        let html = format!(
            "<title>Deep</title>{}<a href='/inside'>in</a>{}<a href='/after'>after</a>",
            "<div>".repeat(n),
            "</div>".repeat(n)
        );
        let doc = parse_document(&html);
        assert!(depth(&doc) <= MAX_DEPTH + 3, "depth {}", depth(&doc));
        assert_eq!(hrefs(&doc), ["/inside", "/after"]);
        let title = Selector::parse("title").unwrap();
        assert_eq!(
            doc.select(&title).next().map(|t| t.inner_html()).as_deref(),
            Some("Deep")
        );
    }

    #[test]
    fn other_ways_to_nest_deeply_are_flattened_too() {
        let n = 5_000;
        for html in [
            "<div/>".repeat(n),
            "<section><span></i>".repeat(n),
            format!("<svg>{}", "<g>".repeat(n)),
            "<ul><li>".repeat(n),
        ] {
            let doc = parse_document(&html);
            assert!(
                depth(&doc) <= 2 * MAX_DEPTH + 3,
                "{}…: depth {}",
                &html[..20],
                depth(&doc)
            );
        }
    }

    #[test]
    fn ordinary_pages_parse_as_html5ever_parses_them() {
        let html = "<html><head><meta charset=utf-8><title>T</title><script>x</script></head><body><ul><li>a<li><a href='/b'>b</a></ul>\
                    <svg><path d='M0'/><path d='M1'/></svg><p>x<p><div><span>y</span></div></body>";
        assert_eq!(
            parse_document(html).html(),
            Html::parse_document(html).html()
        );
    }
}
