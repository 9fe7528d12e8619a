//! Heritrix's SURT prefixes (`http://(org,example,)/docs/`), the form in which a Heritrix
//! user writes a crawl's scope, read to say which regular expression over URLs each stands
//! for. Pasted into a URL rule one compiles, yet matches no URL (a host has no commas), so
//! the crawl would fetch its seeds alone with nothing said.

/// A SURT prefix read: its scheme (optional) then `(`, the host's labels last first, each
/// ended by `,`, then an optional `:port` and `)` and a path. One left open after a label
/// (`http://(org,example,`) stands for the host and every name under it, on any port. A
/// leading `+`, as Heritrix's seeds and SURT files write a prefix, or `^`, as a regular
/// expression anchors one, is no part of it.
struct Surt {
    scheme: Option<&'static str>,
    host: String,
    port: Option<String>,
    /// None when the prefix is left open after a label.
    path: Option<String>,
}

fn parse(prefix: &str) -> Option<Surt> {
    // Every seed and URL rule is asked: most are no SURT, and need no copy to say so.
    if !prefix.contains('(') {
        return None;
    }
    let prefix = prefix.strip_prefix(['+', '^']).unwrap_or(prefix);
    let lower = prefix.to_ascii_lowercase();
    let scheme = ["http", "https"]
        .into_iter()
        .find(|scheme| lower.starts_with(&format!("{scheme}://")));
    let rest = lower[scheme.map_or(0, |scheme| scheme.len() + 3)..].strip_prefix('(')?;
    let (inside, path) = match rest.split_once(')') {
        Some((inside, path)) => (inside, Some(&prefix[prefix.len() - path.len()..])),
        None => (rest, None),
    };
    let (labels, port) = match inside.split_once(':') {
        Some((labels, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            (labels, Some(port.to_owned()))
        }
        Some(_) => return None,
        None => (inside, None),
    };
    let labels: Vec<&str> = labels.strip_suffix(',')?.split(',').collect();
    let is_label = |label: &&str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !labels.iter().all(is_label) {
        return None;
    }
    let host = labels.into_iter().rev().collect::<Vec<_>>().join(".");
    let path = match path {
        Some("") => Some("/".to_owned()),
        Some(path) if path.starts_with('/') => Some(path.to_owned()),
        Some(_) => return None,
        None if port.is_some() => return None,
        None => None,
    };
    Some(Surt {
        scheme,
        host,
        port,
        path,
    })
}

/// The regular expression, over URLs as pipecrawl spells them, that `prefix` stands for
/// when it is a SURT prefix (see [`Surt`]). Heritrix compares https URLs as http ones, so
/// the rule takes both schemes.
pub fn as_regex(prefix: &str) -> Option<String> {
    let surt = parse(prefix)?;
    let host = regex::escape(&surt.host);
    Some(match surt.path {
        None => format!(r"^https?://([^/:]+\.)?{host}[:/]"),
        Some(path) => format!(
            "^https?://{host}{}{}",
            surt.port.map(|port| format!(":{port}")).unwrap_or_default(),
            regex::escape(&path)
        ),
    })
}

/// Why a seed that is a SURT prefix (`http://(org,example,)/`) is no URL to fetch: as one
/// its host is `(org,example,)`, which no name server knows, and the crawl's one page was
/// a `dns` error.
pub fn seed_problem(seed: &str) -> Option<String> {
    let surt = parse(seed)?;
    let url = format!(
        "{}://{}{}{}",
        surt.scheme?,
        surt.host,
        surt.port.map(|port| format!(":{port}")).unwrap_or_default(),
        surt.path.unwrap_or_else(|| "/".to_owned())
    );
    Some(format!(
        "{seed:?} is a SURT prefix, as Heritrix writes scope, not a URL: write the seed \
         `{url}`"
    ))
}

/// Why a URL rule (`scope.include`, a boost's pattern, …) that is a SURT prefix cannot
/// work as written, with the regular expression it means.
pub fn rule_problem(pattern: &str) -> Option<String> {
    as_regex(pattern).map(|regex| {
        format!(
            "{pattern:?} is a SURT prefix, as Heritrix writes scope, which as a regular \
             expression matches no URL: write `'{regex}'` (http and https, as Heritrix \
             compares them)"
        )
    })
}

/// Why a line of a seeds file that starts with `+` is no seed: in Heritrix's seeds.txt it
/// adds a SURT prefix to the scope, written as one or as a URL whose directory is one
/// (`+http://example.org/a/b.html` is `/a/`), which here is a `scope.include` rule.
pub fn seeds_line_problem(line: &str) -> Option<String> {
    let rest = line.strip_prefix('+')?;
    let rule = as_regex(rest).or_else(|| {
        let url = url::Url::parse(rest).ok()?;
        let path = url.path();
        let directory = &path[..path.rfind('/').map_or(0, |end| end + 1)];
        Some(format!(
            "^https?://{}{}",
            regex::escape(&url[url::Position::BeforeHost..url::Position::BeforePath]),
            regex::escape(directory)
        ))
    });
    let write = match rule {
        Some(rule) => format!("write `'{rule}'`"),
        None => "write a regular expression for the URLs it keeps".to_owned(),
    };
    Some(format!(
        "{line:?} is a scope line of Heritrix's seeds.txt (a SURT prefix), not a seed: leave \
         it out and {write} in `scope.include` (a host no seed is on goes in `scope.hosts` \
         too)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_no_surt_prefix_is_let_be() {
        for rule in [
            "/(a|b),c/",
            "^https://example\\.org/",
            "(org,example)",
            "http://(org,,)/",
            "http://(org,example,:80",
            "(a|b,)x",
        ] {
            assert_eq!(as_regex(rule), None, "{rule}");
        }
    }
}
