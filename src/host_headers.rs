//! The `[[fetch.host]]` rules (a token for some hosts), and over which schemes each may
//! send its headers.
//!
//! A rule whose seeds are all `https://` is for a site served over TLS: a link or a
//! redirect to `http://` on its name would otherwise carry its token in clear text, for
//! anyone on the path to read (curl's CVE-2022-27776). Its headers go over plain http
//! while a seed on a host it matches is `http://` (an http-only intranet), or while no
//! seed is on such a host (a rule for hosts reached by links only). Seeds count as they
//! come, wherever from: the config's and the database's at the start, a reload's, and
//! those sent over the admin API, once stored.
//!
//! A seed's user name and password (`http://user:pw@host/`) are kept here, for its
//! origin, and not in its URL: the URL is stored, logged and shared, and a page on the
//! origin linked with them (relatively, from the seed) and without (absolutely) would be
//! two rows and two fetches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};

use reqwest::header::HeaderMap;
use url::Url;

use crate::config::HostHeaders;
use crate::urlnorm;

pub struct HostRules {
    rules: Box<[(HostHeaders, Seeded)]>,
    /// The user name and password of seeds, percent-decoded, by origin (`http://host:port`):
    /// one entry for each origin a seed names them for, the last seed's winning.
    credentials: RwLock<HashMap<String, (String, String)>>,
}

/// The schemes of the seeds on a rule's hosts so far. Only ever set: a seed stays one.
#[derive(Default)]
struct Seeded {
    http: AtomicBool,
    https: AtomicBool,
}

impl HostRules {
    pub fn new(rules: &[HostHeaders]) -> Self {
        Self {
            rules: rules
                .iter()
                .map(|rule| (rule.clone(), Seeded::default()))
                .collect(),
            credentials: RwLock::default(),
        }
    }

    /// Keeps the user name and password `seeds` write for their origins, before the seeds
    /// are queued without them ([`crate::scope::Scope::seed`]), so their first fetch has them.
    pub fn learn_credentials<'a>(&self, seeds: impl IntoIterator<Item = &'a Url>) {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let mut credentials = self
            .credentials
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for seed in seeds.into_iter().filter(|s| urlnorm::has_userinfo(s)) {
            let pair = (
                decode(seed.username()),
                decode(seed.password().unwrap_or_default()),
            );
            credentials.insert(seed.origin().ascii_serialization(), pair);
        }
    }

    /// The user name and password a seed gave for `url`'s origin, unless `url` writes
    /// its own (a URL stored with them before they were kept here), which it is sent with.
    pub fn credentials_for(&self, url: &Url) -> Option<(String, String)> {
        if urlnorm::has_userinfo(url) {
            return None;
        }
        let credentials = self
            .credentials
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        // Most crawls have none: no origin spelt out (an allocation) for every request.
        if credentials.is_empty() {
            return None;
        }
        credentials
            .get(&url.origin().ascii_serialization())
            .cloned()
    }

    /// Counts `seeds` for every rule matching their hosts.
    pub fn learn<'a>(&self, seeds: impl IntoIterator<Item = &'a Url>) {
        for seed in seeds {
            let host = seed.host_str().unwrap_or_default();
            for (_, seeded) in self.rules.iter().filter(|(r, _)| r.pattern.matches(host)) {
                let scheme = match seed.scheme() {
                    "http" => &seeded.http,
                    _ => &seeded.https,
                };
                scheme.store(true, Ordering::Relaxed);
            }
        }
    }

    /// The headers of the first rule matching `url`'s host, unless its seeds say they
    /// go over https only and `url` is plain http.
    pub fn headers_for(&self, url: &Url) -> Option<&HeaderMap> {
        let host = url.host_str().unwrap_or_default();
        let (rule, seeded) = self.rules.iter().find(|(r, _)| r.pattern.matches(host))?;
        let plain_http =
            seeded.http.load(Ordering::Relaxed) || !seeded.https.load(Ordering::Relaxed);
        (plain_http || url.scheme() == "https").then_some(&rule.headers)
    }
}

/// Warns when `fetch.headers` holds what looks like a credential (`Authorization`, a
/// `Cookie`, an API key or token): those headers go to every host the crawl reaches, a
/// host a seed redirects to included (an intranet's outside single sign-on page), where a
/// `[[fetch.host]]` rule keeps a token to its hosts. Said, not refused: a crawl of one
/// host that redirects nowhere may mean it.
pub fn warn_of_tokens_for_every_host(headers: &HeaderMap) {
    let names: Vec<String> = headers
        .keys()
        .filter(|name| carries_credentials(name.as_str()))
        .map(|name| title_case(name.as_str()))
        .collect();
    if names.is_empty() {
        return;
    }
    tracing::warn!(
        "fetch.headers sends {} to every host the crawl reaches, those a seed redirects to \
         included: a token for some hosts goes in a [[fetch.host]] rule naming them",
        names.join(", ")
    );
}

/// Whether a header named `name` (any case) most likely carries a credential: an
/// `Authorization`, a `Cookie`, an `X-Api-Key`, a session's or a token's.
pub fn carries_credentials(name: &str) -> bool {
    const CREDENTIAL_WORDS: [&str; 6] = ["auth", "cookie", "token", "key", "secret", "session"];
    let name = name.to_ascii_lowercase();
    CREDENTIAL_WORDS.iter().any(|w| name.contains(w))
}

/// A header's name as it is usually written (`X-Api-Key`): `HeaderMap` holds it in lower
/// case.
fn title_case(name: &str) -> String {
    let words: Vec<String> = name
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    words.join("-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// A rule's headers go over plain http unless every seed on a host it matches is
    /// https: an http-only intranet keeps its token, and a rule no seed names sends it
    /// as it did. Seeds learnt later (over the API) count as the config's do.
    #[test]
    fn a_rule_goes_over_plain_http_unless_its_seeds_are_all_https() {
        let text = "seeds = []\n[[fetch.host]]\npattern = '*.corp.example'\n\
                    headers = { Authorization = 'Bearer t' }\n";
        let config = Config::from_toml(text, "t").unwrap();
        let u = |s: &str| Url::parse(s).unwrap();
        let plain_http = |seeds: &[&str]| {
            let rules = HostRules::new(&config.fetch.host_headers);
            rules.learn(&seeds.iter().map(|s| u(s)).collect::<Vec<_>>());
            let sent = |url| rules.headers_for(&u(url)).is_some();
            assert!(sent("https://a.corp.example/x"), "{seeds:?}");
            assert!(!sent("http://example.com/x"), "{seeds:?}");
            sent("http://a.corp.example/x")
        };
        let cases: [(&[&str], bool); 5] = [
            (&["https://a.corp.example/", "https://example.com/"], false),
            (&["https://a.corp.example/", "http://b.corp.example/"], true),
            (&["http://a.corp.example:8080/"], true),
            (&["https://example.com/"], true),
            (&[], true),
        ];
        for (seeds, expected) in cases {
            assert_eq!(plain_http(seeds), expected, "{seeds:?}");
        }
    }
}
