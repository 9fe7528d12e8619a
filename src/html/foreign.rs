//! The SVG and MathML elements open on a page, since the outermost `<svg>` or `<math>`:
//! what says whether a tag is SVG's or MathML's, where none of HTML's text-only elements
//! is (an SVG `<script>`'s text is markup), or HTML's again.
//!
//! Inside SVG's `<foreignObject>`, `<desc>` and `<title>` and MathML's text elements
//! (`<mi>`, `<mo>`, `<mn>`, `<ms>`, `<mtext>`, and an `<annotation-xml>` that says it holds
//! HTML) the tree builder reads start tags as HTML: a `<script>` there is a script, whose
//! text is not markup. Well-formed SVG is followed here alone, by pushing and popping; what
//! HTML opens inside those elements is not, as its end tags end nothing outside them.

use html5ever::{local_name, LocalName};

/// Elements followed at once, one inside another. Real drawings nest a few groups; past
/// this many, end tags are taken to end the elements left uncounted, innermost first.
const MAX_OPEN: usize = 256;

#[derive(Default)]
pub(super) struct Foreign {
    /// Outermost first.
    stack: Vec<Open>,
    /// Elements open past [`MAX_OPEN`], not followed.
    deeper: usize,
}

struct Open {
    name: LocalName,
    svg: bool,
    /// Its start tags are HTML's: one of the elements named above.
    holds_html: bool,
}

impl Foreign {
    /// Whether no SVG or MathML element is open.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.stack.is_empty()
    }

    /// Whether the markup read now is SVG's or MathML's: an element of theirs is the
    /// innermost open, and its content is not HTML.
    #[inline]
    pub(super) fn in_markup(&self) -> bool {
        self.deeper > 0 || self.stack.last().is_some_and(|e| !e.holds_html)
    }

    /// Follows a start tag (`empty`: self-closing, which ends an SVG or MathML element):
    /// ends the SVG or MathML it breaks out of (`breaks_out`: an HTML tag the tree builder
    /// takes to mean a forgotten end tag), then opens its own when it is theirs. Whether
    /// it is. Outside SVG and MathML, what every start tag of a page costs: one name
    /// compared.
    #[inline]
    pub(super) fn start<'a>(
        &mut self,
        name: &LocalName,
        attr: &impl Fn(&str) -> Option<&'a str>,
        breaks_out: impl FnOnce() -> bool,
        empty: bool,
    ) -> bool {
        if self.stack.is_empty() && !matches!(*name, local_name!("svg") | local_name!("math")) {
            return false;
        }
        self.start_inside((name, empty), attr, breaks_out)
    }

    fn start_inside<'a>(
        &mut self,
        (name, empty): (&LocalName, bool),
        attr: &impl Fn(&str) -> Option<&'a str>,
        breaks_out: impl FnOnce() -> bool,
    ) -> bool {
        if self.in_markup() && breaks_out() {
            self.break_out();
        }
        let svg = match self.stack.last() {
            _ if self.deeper > 0 => {
                self.deeper += usize::from(!empty);
                return true;
            }
            Some(top) if !top.holds_html => {
                top.svg
                    || (top.name == local_name!("annotation-xml") && *name == local_name!("svg"))
            }
            Some(top) if !top.svg && text_point(&top.name) && is_glyph(name) => false,
            _ => match *name {
                local_name!("svg") => true,
                local_name!("math") => false,
                _ => return false,
            },
        };
        if empty {
            return true;
        }
        if self.stack.len() == MAX_OPEN {
            self.deeper = 1;
            return true;
        }
        let holds_html = match svg {
            true => matches!(&**name, "foreignobject" | "desc" | "title"),
            false => {
                text_point(name)
                    || (*name == local_name!("annotation-xml")
                        && attr("encoding").is_some_and(|e| {
                            e.eq_ignore_ascii_case("text/html")
                                || e.eq_ignore_ascii_case("application/xhtml+xml")
                        }))
            }
        };
        self.stack.push(Open {
            name: name.clone(),
            svg,
            holds_html,
        });
        true
    }

    /// Follows an end tag: ends the innermost open element of its name and those inside
    /// it, and at `</p>` or `</br>` the SVG or MathML the tag breaks out of. Whether it
    /// ends none of them though SVG's or MathML's markup is being read: the tree builder
    /// then reads it by HTML's rules, and it ends the SVG when it ends an element open
    /// around it (`<a href="/x"><svg><use></a>`), which only the page's elements tell.
    #[inline]
    pub(super) fn end(&mut self, name: &LocalName) -> bool {
        if self.stack.is_empty() {
            return false;
        }
        self.end_inside(name)
    }

    fn end_inside(&mut self, name: &LocalName) -> bool {
        if self.deeper > 0 {
            self.deeper -= 1;
            return false;
        }
        let Some(top) = self.stack.last() else {
            return false;
        };
        if let Some(i) = self.stack.iter().rposition(|e| e.name == *name) {
            self.stack.truncate(i);
            return false;
        }
        // HTML's end tags inside an element that holds HTML end nothing outside it.
        if top.holds_html {
            return false;
        }
        if matches!(*name, local_name!("p") | local_name!("br")) {
            self.break_out();
            return false;
        }
        true
    }

    /// Ends the SVG or MathML open, down to an element whose content is HTML.
    pub(super) fn break_out(&mut self) {
        self.deeper = 0;
        while self.stack.last().is_some_and(|e| !e.holds_html) {
            self.stack.pop();
        }
    }

    /// Ends them all: the template they were opened in ends.
    pub(super) fn clear(&mut self) {
        self.deeper = 0;
        self.stack.clear();
    }
}

/// MathML's text integration points.
fn text_point(name: &str) -> bool {
    matches!(name, "mi" | "mo" | "mn" | "ms" | "mtext")
}

/// MathML's elements that stay MathML in its text elements.
fn is_glyph(name: &str) -> bool {
    matches!(name, "mglyph" | "malignmark")
}
