//! Characters drawn as nothing, which text or a URL copied from a page or a document may
//! carry unseen: a zero-width space, TinyMCE's byte order mark, a soft hyphen, direction
//! marks. Text of these alone shows nothing, and around a URL they are no part of it.

/// Whether `c` is one of Unicode's default ignorable code points: drawn as nothing
/// (zero-width spaces and joiners, a soft hyphen, direction marks, variation selectors,
/// tags).
pub fn is(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{34f}'
            | '\u{61c}'
            | '\u{115f}'..='\u{1160}'
            | '\u{17b4}'..='\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff0}'..='\u{fff8}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e0fff}'
    )
}
