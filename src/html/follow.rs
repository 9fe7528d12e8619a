//! The page's open elements, as the tree builder keeps them, followed only on a page whose
//! SVG or MathML has an end tag that ends none of its elements (`<a href="/x"><svg><use>
//! </a>`): whether that tag ends an element open around the SVG, and so the SVG with it,
//! is theirs to say. The reader's own pass follows nothing of the kind, as most pages never
//! ask; this one reads the page again, from where it was last asked to where it is asked
//! now, so a page asking many times is still read twice at most.

use std::cell::RefCell;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use html5ever::{local_name, TokenizerResult};

use super::open::OpenElements;

/// Elements followed at once, one inside another: each tag may be checked against every
/// one, so a page nesting thousands cannot make that slow. Past this many, the page's
/// elements are not known.
const MAX_OPEN: usize = 256;

pub(super) struct Follower {
    tokenizer: Tokenizer<Sink>,
    input: BufferQueue,
    /// How much of the page was read.
    read: usize,
}

struct Sink {
    open: RefCell<OpenElements>,
    xml: bool,
}

impl Follower {
    /// `xml`: the page is XML ([`super::Syntax::Xml`]).
    pub(super) fn new(xml: bool) -> Self {
        let sink = Sink {
            open: RefCell::new(OpenElements::with_cap(MAX_OPEN)),
            xml,
        };
        Self {
            tokenizer: Tokenizer::new(sink, TokenizerOpts::default()),
            input: BufferQueue::default(),
            read: 0,
        }
    }

    /// Whether HTML's markup comes after `page[..read]`, which ends at a tag: the SVG or
    /// MathML open before it has ended. `None` when the page's elements are not known.
    pub(super) fn html_after(&mut self, page: &str, read: usize) -> Option<bool> {
        if let Some(more) = page.get(self.read..read).filter(|more| !more.is_empty()) {
            self.input.push_back(StrTendril::from_slice(more));
            self.read = read;
            while !matches!(self.tokenizer.feed(&self.input), TokenizerResult::Done) {}
        }
        let open = self.tokenizer.sink.open.borrow();
        open.followed().then(|| !open.in_foreign())
    }
}

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line_number: u64) -> TokenSinkResult<()> {
        let Token::TagToken(tag) = token else {
            return TokenSinkResult::Continue;
        };
        let mut open = self.open.borrow_mut();
        let name = &tag.name;
        let in_foreign = open.in_foreign();
        if tag.kind == TagKind::EndTag {
            if in_foreign && matches!(*name, local_name!("p") | local_name!("br")) {
                open.break_out();
            }
            open.end(name);
            return TokenSinkResult::Continue;
        }
        let attr = |name: &str| super::attribute(&tag, name);
        let foreign = (in_foreign && !super::breaks_out_of_foreign(name, &attr))
            || matches!(*name, local_name!("svg") | local_name!("math"));
        let empty_tag = tag.self_closing && (foreign || self.xml);
        open.start(
            name,
            foreign,
            empty_tag || (!foreign && super::is_void(name)),
        );
        match foreign || empty_tag {
            true => TokenSinkResult::Continue,
            false => super::text_after(name),
        }
    }

    fn adjusted_current_node_present_but_not_in_html_namespace(&self) -> bool {
        self.open.borrow().in_foreign()
    }
}
