//! Text compared as people read it, for `pages --title`: in any case, and in whatever
//! Unicode form it was stored or typed. SQL cannot do this alike on both databases
//! (SQLite's `LIKE` and PostgreSQL's `ILIKE` under the "C" collation fold ASCII letters
//! only, and neither normalizes), so titles are compared here as their rows stream by.

use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// The text `--title` looks for, folded once.
pub struct TitleMatch(String);

impl TitleMatch {
    pub fn new(typed: &str) -> Self {
        Self(fold(typed))
    }

    /// The text folded, when it is ASCII: then the only titles in ASCII that hold it are
    /// those SQL's `LIKE` finds in any case of ASCII letters, and no title in ASCII holds
    /// any other text. So SQL can leave out most titles of an English site unread.
    pub fn ascii(&self) -> Option<&str> {
        self.0.is_ascii().then_some(self.0.as_str())
    }

    /// Whether `title` contains the text, both folded. Composed, a letter with an accent
    /// is a letter of its own (`cafe` is not in `café`, as `uber` is not in `über`), and a
    /// Korean syllable stays whole (`하` is not in `한`, whose last consonant a
    /// decomposition would leave apart).
    pub fn is_in(&self, title: &str) -> bool {
        fold(title).contains(&self.0)
    }
}

/// `text` composed (NFKC: "é" stored as one code point or as "e" and an accent alike,
/// full-width `ＳＡＬＥ` as `SALE`) and in lower case, with `ß` as `ss` and a final `ς` as
/// `σ`, as Unicode's case folding has them (`straße` finds `STRASSE`), and without the dot
/// an `İ` has over its `i`, so that `istanbul` finds `İSTANBUL` (the Turkish dotless `ı` stays
/// a letter of its own); composed again, as lower case may leave a letter and its accent
/// apart.
fn fold(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    let mut folded = String::with_capacity(text.len());
    for c in text.nfkc().flat_map(char::to_lowercase) {
        match c {
            'ß' => folded.push_str("ss"),
            'ς' => folded.push('σ'),
            '\u{307}' if folded.ends_with('i') => {}
            c => folded.push(c),
        }
    }
    // Most titles come out of lower-casing composed: checked, not copied again.
    match is_nfc_quick(folded.chars()) {
        IsNormalized::Yes => folded,
        _ => folded.nfc().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_form_and_width_do_not_matter() {
        for (typed, title) in [
            ("über", "Über uns"),
            ("ÄÖÜ", "äöü"),
            ("Café", "Cafe\u{301} Müller"),
            ("cafe\u{301}", "CAFÉ"),
            ("straße", "HAUPTSTRASSE"),
            ("STRASSE", "Hauptstraße"),
            ("istanbul", "İSTANBUL"),
            ("İstanbul", "istanbul"),
            ("ΟΔΟΣ", "η οδος"),
            ("sale", "ＳＡＬＥ"),
            ("garden", "The Garden"),
            ("भारत", "भारतीय रेल"),
            ("❤", "I ❤\u{fe0f} NY"),
        ] {
            assert!(TitleMatch::new(typed).is_in(title), "{typed} in {title}");
        }
    }

    #[test]
    fn other_letters_stay_apart() {
        for (typed, title) in [
            ("ilik", "ılık"),
            ("über", "uber"),
            ("uber", "über"),
            ("cafe", "Café"),
            ("東京", "京都"),
            ("하", "한국"),
            ("사과", "사관학교"),
        ] {
            assert!(!TitleMatch::new(typed).is_in(title), "{typed} in {title}");
        }
    }
}
