//! The aligned table people read on a terminal.
//!
//! Column widths come from the first [`LOOKAHEAD`] rows, values wider than [`MAX_WIDTH`]
//! aside; later rows are printed as they arrive with the same widths (a longer value just
//! pushes its line out), so a table of a million rows needs no more memory than one of a
//! thousand.

use std::io::{self, Write};

use unicode_width::UnicodeWidthStr;

use super::output::{Cell, Sink};

/// Rows held back to size the columns.
const LOOKAHEAD: usize = 1000;

/// The widest a value makes its column (in terminal columns): a longer value (a title of
/// an unclosed `<title>` is 4,096 bytes) pushes its own line out rather than every line.
const MAX_WIDTH: usize = 80;

const GAP: &str = "  ";

pub struct Table<'w> {
    out: &'w mut dyn Write,
    /// Leading columns printed only when they change.
    group: usize,
    columns: Vec<String>,
    held: Vec<Vec<Rendered>>,
    /// Set once the header is printed; from then on rows print as they come.
    layout: Option<Layout>,
    previous: Vec<String>,
}

struct Rendered {
    text: String,
    number: bool,
}

struct Layout {
    widths: Vec<usize>,
    right: Vec<bool>,
}

impl<'w> Table<'w> {
    pub fn new(out: &'w mut dyn Write, group: usize) -> Self {
        Self {
            out,
            group,
            columns: Vec::new(),
            held: Vec::new(),
            layout: None,
            previous: Vec::new(),
        }
    }

    /// Sizes the columns from the header and the rows held, prints them, and switches to
    /// printing rows as they come.
    fn lay_out(&mut self) -> io::Result<()> {
        let mut widths: Vec<usize> = self.columns.iter().map(|c| terminal_width(c)).collect();
        // A column is right-aligned when every value in it is a number.
        let mut right = vec![true; self.columns.len()];
        let mut any = vec![false; self.columns.len()];
        for row in &self.held {
            for (i, cell) in row.iter().enumerate().take(widths.len()) {
                widths[i] = widths[i].max(terminal_width(&cell.text).min(MAX_WIDTH));
                if !cell.text.is_empty() {
                    right[i] &= cell.number;
                    any[i] = true;
                }
            }
        }
        for (right, any) in right.iter_mut().zip(any) {
            *right &= any;
        }
        let layout = Layout { widths, right };
        let header: Vec<&str> = self.columns.iter().map(String::as_str).collect();
        print_line(self.out, &layout, &header)?;
        let rules: Vec<String> = layout.widths.iter().map(|w| "-".repeat(*w)).collect();
        let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
        print_line(self.out, &layout, &rules)?;
        self.layout = Some(layout);
        for row in std::mem::take(&mut self.held) {
            self.print_row(row)?;
        }
        Ok(())
    }

    fn print_row(&mut self, row: Vec<Rendered>) -> io::Result<()> {
        let Some(layout) = &self.layout else {
            return Ok(());
        };
        let texts: Vec<String> = row.into_iter().map(|r| r.text).collect();
        // A grouping column is blank while it and every grouping column before it repeat.
        let mut same = !self.previous.is_empty();
        let shown: Vec<&str> = texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                same &= i < self.group && self.previous.get(i) == Some(text);
                if same {
                    ""
                } else {
                    text.as_str()
                }
            })
            .collect();
        print_line(self.out, layout, &shown)?;
        self.previous = texts;
        Ok(())
    }
}

impl Sink for Table<'_> {
    fn columns(&mut self, names: &[String]) -> io::Result<()> {
        // A name is the SQL's, or a table's in a database from elsewhere: escaped as a
        // value is.
        self.columns = names.iter().cloned().map(escape_controls).collect();
        Ok(())
    }

    fn row(&mut self, cells: &[Cell<'_>]) -> io::Result<()> {
        let row = cells
            .iter()
            .map(|cell| {
                let mut text = String::new();
                cell.write_plain(&mut text);
                Rendered {
                    text: escape_controls(text),
                    number: cell.is_number(),
                }
            })
            .collect();
        if self.layout.is_some() {
            return self.print_row(row);
        }
        self.held.push(row);
        if self.held.len() >= LOOKAHEAD {
            self.lay_out()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.layout.is_none() {
            self.lay_out()?;
        }
        self.out.flush()
    }
}

fn print_line(out: &mut dyn Write, layout: &Layout, cells: &[&str]) -> io::Result<()> {
    let mut line = String::new();
    let last = cells.len().saturating_sub(1);
    for (i, text) in cells.iter().enumerate() {
        if i > 0 {
            line.push_str(GAP);
        }
        let pad = layout
            .widths
            .get(i)
            .map_or(0, |w| w.saturating_sub(terminal_width(text)));
        let right = layout.right.get(i).copied().unwrap_or(false);
        if right {
            line.extend(std::iter::repeat_n(' ', pad));
        }
        line.push_str(text);
        if !right && i < last {
            line.extend(std::iter::repeat_n(' ', pad));
        }
    }
    let line = line.trim_end();
    writeln!(out, "{line}")
}

/// The cells `text` takes on a terminal. `unicode-width` counts a string as a typesetter
/// draws it, an Arabic lam-alef (`لا`) one letter, a Khmer or Tifinagh consonant after
/// its joiner none, a soft hyphen none; a terminal gives each of those characters a
/// cell, as glibc's `wcwidth` has them, so they are counted so: the columns after them
/// stood a cell to the left. (Other ligatures it knows, of rarer scripts, are left.)
fn terminal_width(text: &str) -> usize {
    let soft_hyphens = text.matches('\u{ad}').count();
    // Cut after each lam and joiner, no ligature is left to count as one.
    let joins = |c: char| is_lam(c) || matches!(c, '\u{17d2}' | '\u{2d7f}');
    let letters: usize = text.split_inclusive(joins).map(str::width).sum();
    letters + soft_hyphens
}

/// Whether `c` is of Unicode's Arabic joining group Lam, the first of a lam-alef.
fn is_lam(c: char) -> bool {
    matches!(c, '\u{644}' | '\u{6b5}'..='\u{6b8}' | '\u{8a6}')
}

/// A line break or tab inside a value would break the table's lines (so would U+2028 and
/// U+2029, no controls, where editors and Python's `splitlines()` read it), and escape
/// sequences (ESC, CSI) from a hostile page's title would drive the user's terminal;
/// bidi controls would show its text in another order than stored (`exe.pdf` for
/// `fdp.exe`) and reorder the columns after it. All are shown escaped.
fn escape_controls(text: String) -> String {
    let hidden = |c: char| c.is_control() || is_bidi_control(c) || is_line_separator(c);
    if !text.chars().any(hidden) {
        return text;
    }
    text.chars()
        .map(|c| {
            if hidden(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Unicode's line and paragraph separators.
fn is_line_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

/// Unicode's explicit bidi formatting characters: marks, embeddings, overrides and
/// isolates.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(group: usize, rows: &[Vec<Cell<'_>>]) -> String {
        let mut out = Vec::new();
        {
            let mut table = Table::new(&mut out, group);
            table
                .columns(&["kind".to_owned(), "url".to_owned(), "n".to_owned()])
                .expect("write to memory");
            for row in rows {
                table.row(row).expect("write to memory");
            }
            table.finish().expect("write to memory");
        }
        String::from_utf8(out).expect("UTF-8 output")
    }

    /// The table of one row.
    fn one_row(cells: [Cell<'_>; 3]) -> String {
        table(0, &[cells.to_vec()])
    }

    #[test]
    fn columns_are_aligned_and_numbers_right_aligned() {
        let text = table(
            0,
            &[
                vec![Cell::Text("a"), Cell::Text("http://x/"), Cell::Int(5)],
                vec![Cell::Text("bb"), Cell::Null, Cell::Int(100)],
            ],
        );
        assert_eq!(
            text,
            "kind  url          n\n----  ---------  ---\na     http://x/    5\nbb               100\n"
        );
    }

    #[test]
    fn grouping_columns_are_shown_once_per_group() {
        let text = table(
            2,
            &[
                vec![Cell::Text("broken"), Cell::Text("u1"), Cell::Int(1)],
                vec![Cell::Text("broken"), Cell::Text("u1"), Cell::Int(2)],
                vec![Cell::Text("broken"), Cell::Text("u2"), Cell::Int(3)],
                vec![Cell::Text("robots"), Cell::Text("u2"), Cell::Int(4)],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            &lines[2..],
            [
                "broken  u1   1",
                "             2",
                "        u2   3",
                "robots  u2   4"
            ]
        );
    }

    #[test]
    fn one_very_long_value_does_not_widen_every_line() {
        let long = "t".repeat(4096);
        let text = table(
            0,
            &[
                vec![Cell::Text("a"), Cell::Text(&long), Cell::Int(1)],
                vec![Cell::Text("b"), Cell::Text("short"), Cell::Int(2)],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], format!("a     {long}  1"), "shown in full");
        assert_eq!(
            lines[3],
            format!("b     short{}  2", " ".repeat(MAX_WIDTH - 5))
        );
    }

    #[test]
    fn bidi_controls_in_values_are_escaped_so_text_shows_in_the_order_stored() {
        // A title that shows as "invoice exe.pdf" where bidi is displayed.
        let text = one_row([
            Cell::Text("invoice \u{202e}fdp.exe\u{202c}"),
            Cell::Text("\u{2067}x\u{2069}\u{200f}"),
            Cell::Int(1),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[2],
            "invoice \\u{202e}fdp.exe\\u{202c}  \\u{2067}x\\u{2069}\\u{200f}  1"
        );
    }

    /// U+2028 and U+2029 are no controls, yet editors and Python's `splitlines()` end a
    /// line at them: a title holding one showed as a line of its own in a saved table.
    #[test]
    fn unicode_line_and_paragraph_separators_in_values_are_escaped() {
        let text = one_row([
            Cell::Text("a\u{2028}b"),
            Cell::Text("c\u{2029}d"),
            Cell::Null,
        ]);
        let lines: Vec<&str> = text.split(['\n', '\u{2028}', '\u{2029}']).collect();
        assert_eq!(lines[2], "a\\u{2028}b  c\\u{2029}d", "{text:?}");
    }

    /// A terminal gives each letter of an Arabic lam-alef (`لا`, in many a word) a cell
    /// of its own, and a soft hyphen one too; counted as the one and none a typesetter
    /// gives them, every column after such a title stood one cell to the left.
    #[test]
    fn columns_after_lam_alef_and_soft_hyphens_are_aligned_as_a_terminal_draws_them() {
        let arabic = table(
            0,
            &[
                vec![Cell::Text("لا"), Cell::Text("a"), Cell::Int(1)],
                vec![Cell::Text("xyz"), Cell::Text("b"), Cell::Int(2)],
            ],
        );
        let lines: Vec<&str> = arabic.lines().collect();
        assert_eq!(lines[2], "لا    a    1", "{arabic}");
        let hyphenated = table(
            0,
            &[
                vec![
                    Cell::Text("Silben\u{ad}trennung"),
                    Cell::Text("a"),
                    Cell::Int(1),
                ],
                vec![Cell::Text("xyz"), Cell::Text("b"), Cell::Int(2)],
            ],
        );
        let lines: Vec<&str> = hyphenated.lines().collect();
        assert_eq!(
            lines[3],
            format!("xyz{}b    2", " ".repeat(14)),
            "{hyphenated}"
        );
        // Khmer's coeng (U+17D2) before a consonant: two cells, as `wcswidth` has them.
        assert_eq!(terminal_width("\u{1780}\u{17d2}\u{1780}"), 2);
    }

    /// A column's name is the SQL's (`sql "SELECT 1 AS \"a<TAB>b\""`), or a table's in a
    /// database from elsewhere: a tab in it broke the header's alignment, an escape
    /// sequence drove the terminal. Names are escaped as values are.
    #[test]
    fn controls_in_column_names_are_escaped() {
        let mut out = Vec::new();
        {
            let mut table = Table::new(&mut out, 0);
            table
                .columns(&["a\tb".to_owned(), "\u{1b}[31mred".to_owned()])
                .expect("write to memory");
            table
                .row(&[Cell::Int(1), Cell::Int(2)])
                .expect("write to memory");
            table.finish().expect("write to memory");
        }
        let text = String::from_utf8(out).expect("UTF-8 output");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "a\\tb  \\u{1b}[31mred", "{text:?}");
        assert_eq!(lines[1], format!("{}  {}", "-".repeat(4), "-".repeat(13)));
    }

    #[test]
    fn line_breaks_in_values_are_escaped_and_wide_characters_count_double() {
        let text = table(
            0,
            &[
                vec![Cell::Text("日本"), Cell::Text("a\nb"), Cell::Null],
                vec![Cell::Text("x"), Cell::Text("c"), Cell::Null],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], "日本  a\\nb");
        assert_eq!(lines[3], "x     c");
    }
}
