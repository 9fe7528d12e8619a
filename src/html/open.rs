//! The elements open inside a link or a label being read, as html5ever's tree builder
//! keeps them on its stack of open elements: where it ends an element is where what that
//! element hides ends. Besides an element's own end tag, an end tag of an element around
//! it ends it (`<div><span aria-hidden="true">»</div>Next page`), and so do a few start
//! tags (the next `<li>`, a `<dd>` or `<dt>`, a block after a `<p>`, another heading),
//! unless an element the tree builder does not close across stands between.
//!
//! Only what the "in body" rules pop is redone: the adoption agency, which rebuilds
//! misnested formatting elements (`<b><div>x</b>`), is not, and a formatting element's end
//! tag across a block pops nothing here.

use html5ever::LocalName;

/// Elements followed at once, one inside another. Real links and labels nest a handful;
/// past this many, the reader falls back to counting an element's own tags.
const MAX_OPEN: usize = 32;

/// The elements open since a link or label began to be read, innermost last; `None` once
/// more than [`MAX_OPEN`] were. What is open around the link is not known: an end tag of
/// an element that is not open here pops nothing.
pub(super) struct OpenElements {
    stack: Vec<Open>,
    overflowed: bool,
    /// How many are followed at most.
    cap: usize,
}

impl Default for OpenElements {
    fn default() -> Self {
        Self::with_cap(MAX_OPEN)
    }
}

struct Open {
    name: LocalName,
    /// An SVG or MathML element.
    foreign: bool,
}

impl OpenElements {
    /// Follows at most `cap` open at once.
    pub(super) fn with_cap(cap: usize) -> Self {
        Self {
            stack: Vec::new(),
            overflowed: false,
            cap,
        }
    }

    /// Whether they are still followed.
    pub(super) fn followed(&self) -> bool {
        !self.overflowed
    }

    /// Whether the innermost is an SVG or MathML element whose content is not HTML.
    pub(super) fn in_foreign(&self) -> bool {
        self.stack
            .last()
            .is_some_and(|e| e.foreign && !holds_html(&e.name))
    }

    /// Ends the SVG or MathML open, down to an element whose content is HTML
    /// (`<foreignObject>`, MathML's text elements): HTML markup is there.
    pub(super) fn break_out(&mut self) {
        while self.in_foreign() {
            self.stack.pop();
        }
    }

    /// Forgets them: nothing is being read. Costs nothing when there are none.
    #[inline]
    pub(super) fn clear(&mut self) {
        if !self.stack.is_empty() || self.overflowed {
            self.stack.clear();
            self.overflowed = false;
        }
    }

    /// Follows a start tag (`foreign`: SVG's or MathML's; `empty`: of an element that opens
    /// nothing): pops the elements it ends, then opens its own. How many stayed open
    /// before it, which is where it stands; `None` when they are no longer followed.
    pub(super) fn start(&mut self, name: &LocalName, foreign: bool, empty: bool) -> Option<usize> {
        if self.overflowed {
            return None;
        }
        if !foreign {
            self.break_out();
            let kept = self.closed_by_start(name);
            self.stack.truncate(kept);
        }
        let kept = self.stack.len();
        if !empty {
            if kept == self.cap {
                self.overflowed = true;
                self.stack.clear();
                return None;
            }
            self.stack.push(Open {
                name: name.clone(),
                foreign,
            });
        }
        Some(kept)
    }

    /// Follows an end tag: pops the elements it ends. How many stay open; `None` when they
    /// are no longer followed.
    pub(super) fn end(&mut self, name: &LocalName) -> Option<usize> {
        if self.overflowed {
            return None;
        }
        // A link's own `</a>` with nothing open in it, as most links end: nothing to pop,
        // and the name need not be looked up among the tree builder's rules.
        if self.stack.is_empty() {
            return Some(0);
        }
        // In SVG or MathML an end tag ends the nearest element of its name, down to the
        // first HTML element, from which HTML's rules go on.
        let mut foreign = self.stack.iter().rev().take_while(|e| e.foreign);
        let kept = match foreign.position(|e| e.name == *name) {
            Some(i) => self.stack.len() - 1 - i,
            None => self.closed_by_end(name),
        };
        self.stack.truncate(kept);
        Some(kept)
    }

    /// How many of the open elements an HTML start tag leaves open.
    fn closed_by_start(&self, name: &str) -> usize {
        let len = self.stack.len();
        let p = || self.in_scope(Scope::Button, |n| n == "p").unwrap_or(len);
        match name {
            "li" => self.sibling(|n| n == "li").min(p()),
            "dd" | "dt" => self.sibling(|n| matches!(n, "dd" | "dt")).min(p()),
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                let kept = p();
                match self.stack[..kept].last() {
                    Some(e) if !e.foreign && is_heading(&e.name) => kept - 1,
                    _ => kept,
                }
            }
            "button" => self
                .in_scope(Scope::Default, |n| n == "button")
                .unwrap_or(len),
            "td" | "th" => self
                .in_scope(Scope::Table, |n| matches!(n, "td" | "th"))
                .unwrap_or(len),
            "tr" => self.in_scope(Scope::Table, |n| n == "tr").unwrap_or(len),
            "tbody" | "thead" | "tfoot" => self
                .in_scope(Scope::Table, |n| matches!(n, "tbody" | "thead" | "tfoot"))
                .unwrap_or(len),
            // A link open ends at a new one, as the adoption agency ends it.
            "a" => self.closed_by_end(name),
            _ if super::closes_p(name) => p(),
            _ => len,
        }
    }

    /// How many of the open elements an HTML end tag leaves open.
    fn closed_by_end(&self, name: &str) -> usize {
        let len = self.stack.len();
        let scoped = |scope, matches: fn(&str) -> bool| self.in_scope(scope, matches);
        let kept = match name {
            "li" => scoped(Scope::ListItem, |n| n == "li"),
            "p" => scoped(Scope::Button, |n| n == "p"),
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => scoped(Scope::Default, is_heading),
            "td" | "th" | "tr" | "tbody" | "thead" | "tfoot" | "table" | "caption" => {
                self.in_scope(Scope::Table, |n| n == name)
            }
            "template" => self.stack.iter().rposition(|e| &*e.name == "template"),
            // Their end tags pop nothing (`</br>` is read as `<br>`, `</form>` takes the
            // form alone off the stack, `</body>` and `</html>` end no element).
            "br" | "form" | "body" | "html" => None,
            _ if ends_in_scope(name) => self.in_scope(Scope::Default, |n| n == name),
            // The adoption agency: with no block inside it, a formatting element's end
            // pops what is open in it; across one, it rebuilds the tree, which this does
            // not follow.
            _ if is_formatting(name) => self
                .stack
                .iter()
                .rposition(|e| !e.foreign && e.name == *name)
                .filter(|&i| !self.stack[i + 1..].iter().any(is_special)),
            // Any other: its nearest element, unless a special one is nearer.
            _ => self
                .stack
                .iter()
                .rposition(|e| (!e.foreign && e.name == *name) || is_special(e))
                .filter(|&i| self.stack[i].name == *name && !self.stack[i].foreign),
        };
        kept.unwrap_or(len)
    }

    /// The nearest open element `matches` names, unless an element bounding `scope` is
    /// nearer: the standard's "has an element in scope".
    fn in_scope(&self, scope: Scope, matches: impl Fn(&str) -> bool) -> Option<usize> {
        let i = self
            .stack
            .iter()
            .rposition(|e| (!e.foreign && matches(&e.name)) || scope.bounded_by(e))?;
        let e = &self.stack[i];
        (!e.foreign && matches(&e.name)).then_some(i)
    }

    /// The nearest open sibling a `<li>`, `<dd>` or `<dt>` ends, which `matches` names,
    /// unless a special element other than `<address>`, `<div>` or `<p>` is nearer.
    fn sibling(&self, matches: impl Fn(&str) -> bool) -> usize {
        let found = self.stack.iter().rposition(|e| {
            (!e.foreign && matches(&e.name))
                || (is_special(e) && !matches!(&*e.name, "address" | "div" | "p"))
        });
        found
            .filter(|&i| !self.stack[i].foreign && matches(&self.stack[i].name))
            .unwrap_or(self.stack.len())
    }
}

/// The kinds of scope the tree builder looks for an element in.
#[derive(Clone, Copy)]
enum Scope {
    Default,
    ListItem,
    Button,
    Table,
}

impl Scope {
    /// Whether an open element bounds the scope: nothing outside it is in scope.
    fn bounded_by(self, e: &Open) -> bool {
        let name = &*e.name;
        if e.foreign {
            return !matches!(self, Scope::Table) && holds_html(name);
        }
        match self {
            Scope::Table => matches!(name, "html" | "table" | "template"),
            Scope::Default => bounds_html(name),
            Scope::ListItem => bounds_html(name) || matches!(name, "ol" | "ul"),
            Scope::Button => bounds_html(name) || name == "button",
        }
    }
}

fn bounds_html(name: &str) -> bool {
    matches!(
        name,
        "applet" | "caption" | "html" | "table" | "td" | "th" | "marquee" | "object" | "template"
    )
}

/// SVG's and MathML's elements whose content is HTML: they bound a scope and are special,
/// and HTML markup in them ends nothing outside them. The tokenizer gives
/// `<foreignObject>` in lower case.
fn holds_html(name: &str) -> bool {
    matches!(
        name,
        "mi" | "mo" | "mn" | "ms" | "mtext" | "annotation-xml" | "foreignobject" | "desc" | "title"
    )
}

fn is_heading(name: &str) -> bool {
    matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
}

/// End tags that pop to their element when it is in scope, and pop nothing otherwise.
fn ends_in_scope(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "button"
            | "center"
            | "dd"
            | "details"
            | "dialog"
            | "dir"
            | "div"
            | "dl"
            | "dt"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "header"
            | "hgroup"
            | "listing"
            | "main"
            | "menu"
            | "nav"
            | "ol"
            | "pre"
            | "search"
            | "section"
            | "summary"
            | "ul"
    )
}

/// The formatting elements, which the tree builder rebuilds when popped before their end
/// tags.
pub(super) fn is_formatting(name: &str) -> bool {
    matches!(
        name,
        "a" | "b"
            | "big"
            | "code"
            | "em"
            | "font"
            | "i"
            | "nobr"
            | "s"
            | "small"
            | "strike"
            | "strong"
            | "tt"
            | "u"
    )
}

/// The standard's special elements: an end tag of another element does not close them.
fn is_special(e: &Open) -> bool {
    let name = &*e.name;
    if e.foreign {
        return holds_html(name);
    }
    ends_in_scope(name)
        || is_heading(name)
        || matches!(
            name,
            "applet"
                | "area"
                | "base"
                | "basefont"
                | "bgsound"
                | "body"
                | "br"
                | "caption"
                | "col"
                | "colgroup"
                | "embed"
                | "form"
                | "frame"
                | "frameset"
                | "head"
                | "hr"
                | "html"
                | "iframe"
                | "img"
                | "input"
                | "keygen"
                | "li"
                | "link"
                | "marquee"
                | "meta"
                | "noembed"
                | "noframes"
                | "noscript"
                | "object"
                | "p"
                | "param"
                | "plaintext"
                | "script"
                | "select"
                | "source"
                | "style"
                | "table"
                | "tbody"
                | "td"
                | "template"
                | "textarea"
                | "tfoot"
                | "th"
                | "thead"
                | "title"
                | "tr"
                | "track"
                | "wbr"
                | "xmp"
        )
}
