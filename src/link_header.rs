//! The `Link` response header (RFC 8288): how a document that has no `<head>` (a PDF,
//! an image) names its canonical URL, which search engines read as they read the
//! `<link rel="canonical">` element.

use reqwest::header::{HeaderMap, LINK};

/// The target, as written, of the first link the `Link` lines give the relation
/// `canonical` (`</a.pdf>; rel="canonical"`, or one of several: `rel="alternate
/// canonical"`); None when none does. A line that breaks the syntax counts up to the
/// break. A link with an `anchor` parameter is another resource's (RFC 8288 §3.2: a
/// header may name the canonical URL of each of a page's parts), not the document's.
pub fn canonical(headers: &HeaderMap) -> Option<String> {
    headers.get_all(LINK).iter().find_map(|value| {
        // Its target's bytes as a `Location`'s are read: one not UTF-8 is its escape.
        let line = crate::urlnorm::header_url_text(value.as_bytes());
        // Bound, so that the iterator borrowing `line` is dropped before it.
        let target = links(&line)
            .find(|(_, params)| {
                param(params, "rel").is_some_and(|rels| crate::scope::rel_names(rels, "canonical"))
                    && param(params, "anchor").is_none_or(str::is_empty)
            })
            .map(|(target, _)| target.to_owned());
        target
    })
}

/// The link-values of one line: each target (between `<` and `>`) with its parameters,
/// the text up to the next comma outside quotes.
fn links(line: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = line;
    std::iter::from_fn(move || {
        let start = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        let (target, after) = start.strip_prefix('<')?.split_once('>')?;
        let params = split_unquoted(after, ',').next().unwrap_or(after);
        rest = &after[params.len()..];
        Some((target.trim(), params))
    })
}

/// The value, unquoted, of the first parameter `name` (in any case) of `params` (`;
/// rel="next alternate"; title="…"`): the one RFC 8288 reads.
fn param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    split_unquoted(params, ';').skip(1).find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"'))
    })
}

/// `text` split at `separator`, but where it stands in a quoted string (whose `\`
/// escapes the next character): header values' parameters (`charset="a,b"`).
pub(crate) fn split_unquoted(text: &str, separator: char) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (i, c) in text.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                c if c == separator && !quoted => {
                    rest = Some(&text[i + c.len_utf8()..]);
                    return Some(&text[..i]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn canonical_of(lines: &[&str]) -> Option<String> {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(LINK, HeaderValue::from_str(line).expect("a header value"));
        }
        canonical(&headers)
    }

    #[test]
    fn the_canonical_link_is_found_among_others_and_on_any_line() {
        assert_eq!(
            canonical_of(&[r#"</a.pdf>; rel="canonical""#]).as_deref(),
            Some("/a.pdf")
        );
        assert_eq!(
            canonical_of(&[
                r#"</s.css>; rel=preload; as=style, <https://x.example/b>; title="a, b; c"; REL="Alternate CANONICAL""#
            ])
            .as_deref(),
            Some("https://x.example/b")
        );
        assert_eq!(
            canonical_of(&[
                "</next>; rel=next",
                " <https://x.example/c> ; rel = canonical"
            ])
            .as_deref(),
            Some("https://x.example/c")
        );
    }

    #[test]
    fn other_relations_quoted_words_and_broken_lines_name_no_canonical() {
        assert_eq!(
            canonical_of(&[r#"</a>; rel="next"; title="canonical""#]),
            None
        );
        assert_eq!(canonical_of(&[r#"</a>; title="x; rel=canonical""#]), None);
        assert_eq!(canonical_of(&["</a>; rel=next; rel=canonical"]), None);
        assert_eq!(
            canonical_of(&["rel=canonical", "<unclosed; rel=canonical"]),
            None
        );
        assert_eq!(canonical_of(&[]), None);
    }

    #[test]
    fn a_canonical_anchored_to_another_resource_is_not_the_documents() {
        assert_eq!(
            canonical_of(&[
                r#"<https://x.example/en>; rel=canonical; anchor="https://x.example/de""#,
                r##"<https://x.example/part>; anchor="#part"; rel="canonical""##,
            ]),
            None
        );
        assert_eq!(
            canonical_of(&[
                r#"</other>; anchor="/x"; rel=canonical, </doc>; rel=canonical; anchor="""#
            ])
            .as_deref(),
            Some("/doc")
        );
    }
}
