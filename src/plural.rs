//! Counts in what people read on stderr and in the log, their nouns agreeing: "1 links to
//! 1 URLs" reads as a slip, and a slip makes a reader doubt the figure beside it.

use std::fmt;

/// `self.0` and the noun `self.1` ("link"), with an `s` unless the count is 1: the nouns
/// counted in messages all take one.
pub struct Count<'a>(pub u64, pub &'a str);

impl fmt::Display for Count<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(count, noun) = *self;
        write!(f, "{count} {noun}{}", if count == 1 { "" } else { "s" })
    }
}

#[cfg(test)]
mod tests {
    use super::Count;

    #[test]
    fn one_is_singular_and_any_other_count_plural() {
        assert_eq!(Count(1, "link").to_string(), "1 link");
        assert_eq!(Count(0, "link").to_string(), "0 links");
        assert_eq!(Count(2, "broken link").to_string(), "2 broken links");
    }
}
