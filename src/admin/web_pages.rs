//! Telling the requests of a web page from the user's own, for an API without a token.
//!
//! Without a token the API listens on loopback and trusts what can reach it: the
//! programs of this machine. A browser on it is one, acting for whatever page it shows.
//! A page may post a form to `127.0.0.1:7878/pause` unasked (no CORS preflight guards a
//! form), and may read `/stats` through a name of its own that its DNS then points at
//! 127.0.0.1 (DNS rebinding). Browsers say both: a page's request carries its `Origin`
//! (and `Sec-Fetch-Site: cross-site`), and a rebound name's its `Host`. curl, scripts and
//! a browser's address bar send neither, and are served.

use std::net::IpAddr;

use axum::http::{header, HeaderMap, HeaderValue};

use crate::{netguard, urlnorm};

/// Why a request with `headers` comes from a web page rather than from the user, if it
/// does.
pub(super) fn sent_by_a_page(headers: &HeaderMap) -> Option<String> {
    if let Some(host) = headers.get(header::HOST) {
        let Some(host) = text(host) else {
            return Some(format!("it names the host {host:?}, not a loopback name"));
        };
        let name = urlnorm::host_name(host);
        if !is_loopback(name) {
            let port = host.strip_prefix(name).unwrap_or_default();
            return Some(format!(
                "it names the host {host:?}, not a loopback name; without a token this \
                 machine's own name (or a proxy's) is refused too, as the API cannot tell it \
                 from a web page's own name that its DNS points here: ask for \
                 localhost{port} or 127.0.0.1{port}"
            ));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = text(origin)
            .and_then(|origin| url::Url::parse(origin).ok())
            .and_then(|origin| origin.host_str().map(str::to_owned));
        if !host.is_some_and(|host| is_loopback(&host)) {
            return Some(format!("it comes from the web page {origin:?}"));
        }
    }
    if headers
        .get("sec-fetch-site")
        .is_some_and(|site| site == "cross-site")
    {
        return Some("it comes from another site's web page".to_owned());
    }
    None
}

fn text(value: &HeaderValue) -> Option<&str> {
    value.to_str().ok()
}

/// `localhost`, a name under it (RFC 6761: browsers keep those on loopback), or a
/// loopback address, bracketed or not.
fn is_loopback(name: &str) -> bool {
    let name = name.trim_start_matches('[').trim_end_matches(']');
    netguard::names_loopback(name)
        || name
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|&(name, value)| {
                (
                    header::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn the_users_requests_pass_and_a_pages_do_not() {
        for own in [
            &[][..],
            &[("host", "127.0.0.1:7878")],
            &[("host", "localhost")],
            &[("host", "LocalHost.:7878")],
            &[("host", "[::1]:7878")],
            &[
                ("host", "api.localhost:7878"),
                ("origin", "http://localhost:3000"),
            ],
            &[("host", "127.0.0.2"), ("sec-fetch-site", "none")],
            &[
                ("origin", "http://[::1]:7878"),
                ("sec-fetch-site", "same-origin"),
            ],
        ] {
            assert_eq!(sent_by_a_page(&headers(own)), None, "{own:?}");
        }
        for page in [
            &[("host", "rebound.example:7878")][..],
            &[("host", "127.0.0.1.example")],
            &[("origin", "https://evil.example")],
            &[("origin", "null")],
            &[("sec-fetch-site", "cross-site")],
        ] {
            assert!(sent_by_a_page(&headers(page)).is_some(), "{page:?}");
        }
    }
}
