//! The one place that decides whether a failed fetch is tried again, and when.
//!
//! Transient trouble — a refused or timed-out connection, a body cut off, 5xx, 408,
//! 429 — is retried with exponential backoff and jitter, so many failing URLs do not come
//! back in lockstep. A server's `Retry-After` is obeyed as given. Everything else (other
//! 4xx, a name that does not resolve, a bad redirect) is an answer, stored as it is.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, DATE, RETRY_AFTER};

use crate::config::RetryConfig;
use crate::page::ErrorKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Store the outcome as it is.
    Keep,
    /// Put the URL back in the queue for this long.
    RetryIn(Duration),
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
}

impl RetryPolicy {
    pub fn new(config: &RetryConfig) -> Self {
        Self {
            max_attempts: config.max_attempts,
            base_delay: config.base_delay,
            max_delay: config.max_delay,
        }
    }

    /// Decides for attempt number `attempt` (1 for the first request). A `Retry-After`
    /// longer than `retry.max_delay_ms` is not waited for: the outcome is kept. One of
    /// zero leaves the usual backoff.
    pub fn decide(
        &self,
        status: Option<u16>,
        error: Option<ErrorKind>,
        retry_after: Option<Duration>,
        attempt: u32,
    ) -> Decision {
        if attempt >= self.max_attempts || !is_transient(status, error) {
            return Decision::Keep;
        }
        match retry_after {
            Some(wait) if wait > self.max_delay => Decision::Keep,
            // Zero (`0`, or a date already past) asks for no wait of its own; retrying at
            // once would spend the attempts in a burst.
            Some(wait) if !wait.is_zero() => Decision::RetryIn(wait),
            _ => Decision::RetryIn(self.backoff(attempt)),
        }
    }

    /// The longest wait: also the longest a `Retry-After` may pause a whole host.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// [`doubling`], scaled by a random factor in [0.5, 1].
    pub fn backoff(&self, attempt: u32) -> Duration {
        doubling(self.base_delay, attempt, self.max_delay).mul_f64(0.5 + fastrand::f64() / 2.0)
    }
}

/// Whether an answer with `status` asks its whole host to slow down, not just its URL:
/// a 429, and a server overloaded or down (503), or behind a gateway that cannot reach it
/// or waited for it in vain (502, 504), which its next URLs would find so too. A 500 is
/// most often one page's own fault, and its host's other pages go on.
pub fn pauses_host(status: Option<u16>) -> bool {
    matches!(status, Some(429 | 502 | 503 | 504))
}

/// When a URL `retry_in` from `now` (unix ms) is due: also, when its answer
/// [`pauses_host`], when its host may be asked again.
pub fn due_at(now: i64, retry_in: Option<Duration>) -> i64 {
    let wait = retry_in.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2));
    now.saturating_add(wait)
}

/// `base × 2^(attempt-1)`, at most `max`: the wait after the `attempt`-th failure in a row.
pub fn doubling(base: Duration, attempt: u32, max: Duration) -> Duration {
    base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(max)
}

/// Whether an outcome may be different if asked again later.
pub fn is_transient(status: Option<u16>, error: Option<ErrorKind>) -> bool {
    match error {
        Some(
            ErrorKind::Timeout
            | ErrorKind::Connect
            | ErrorKind::DnsTemporary
            | ErrorKind::Body
            | ErrorKind::RobotsUnavailable,
        ) => true,
        Some(_) => false,
        // An unknown 5xx is read as 500 (RFC 9110 §15), so as transient; these six say
        // the request itself cannot work.
        None => match status {
            Some(408 | 429) => true,
            Some(status @ 500..=599) => !matches!(status, 501 | 505 | 506 | 508 | 510 | 511),
            _ => false,
        },
    }
}

/// The outcomes [`is_transient`] calls so, as SQL over `pages`: a condition on `status`
/// and `error_kind` (for `--retry-failed`, which must ask again exactly what a retry
/// would have).
pub fn transient_condition() -> String {
    let statuses: Vec<String> = (100..=599)
        .filter(|s| is_transient(Some(*s), None))
        .map(|s| s.to_string())
        .collect();
    let kinds: Vec<String> = ErrorKind::ALL
        .into_iter()
        .filter(|k| is_transient(None, Some(*k)))
        .map(|k| format!("'{}'", k.as_str()))
        .collect();
    format!(
        "(error_kind IN ({}) OR (error_kind IS NULL AND status IN ({})))",
        kinds.join(", "),
        statuses.join(", ")
    )
}

/// The headers in which an API's 429 says when its quota resets, for want of a
/// `Retry-After`: the IETF draft's (GitLab's too) and the older one GitHub's sends.
const RATE_LIMIT_RESETS: [&str; 2] = ["ratelimit-reset", "x-ratelimit-reset"];

/// Above this a rate limit's reset is a unix time (GitHub's, GitLab's), below it
/// seconds to wait (the IETF draft's): 2001, or 31 years of seconds.
const RESET_IS_A_TIME: u64 = 1_000_000_000;

/// The wait an answer with `status` asks for: its `Retry-After`, else, on a 429, when
/// its rate limit resets, which many APIs say instead (read as no wait at all, the URL
/// spent its attempts within the quota's window and was lost). A date is the server's
/// clock's, so it is counted from the answer's own `Date` (as caches count `Expires`),
/// else from ours: a server clock minutes behind ours would otherwise ask for no wait at
/// all, and one ahead for a wait past `retry.max_delay_ms`, failing the URL.
pub fn retry_after(status: u16, headers: &HeaderMap) -> Option<Duration> {
    let server_now = || {
        headers
            .get(DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(http_date)
            .unwrap_or_else(SystemTime::now)
    };
    let named = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, server_now()));
    if named.is_some() || status != 429 {
        return named;
    }
    let reset = RATE_LIMIT_RESETS
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok()?.trim().parse().ok())?;
    Some(reset_wait(reset, server_now()))
}

/// The wait until a rate limit's `reset`: seconds, or a unix time counted from `now`.
/// A time past any the clock spells (a server's `18446744073709551615`) is longer than
/// any wait, as a `Retry-After` past a u64 is: added to 1970, it panicked the fetch.
fn reset_wait(reset: u64, now: SystemTime) -> Duration {
    if reset < RESET_IS_A_TIME {
        return Duration::from_secs(reset);
    }
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(reset))
        .map_or(Duration::MAX, |at| {
            at.duration_since(now).unwrap_or(Duration::ZERO)
        })
}

/// A `Retry-After` value: delay-seconds or an HTTP date, counted from `now`.
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More seconds than a u64 holds is longer than any wait, not no wait at all.
        return Some(value.parse().map_or(Duration::MAX, Duration::from_secs));
    }
    let at = http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An HTTP date as browsers read one: in any of HTTP's three forms, its zone `GMT` or
/// another, its weekday right or not.
fn http_date(value: &str) -> Option<SystemTime> {
    let value = value.trim();
    let read = |value: &str| {
        httpdate::parse_http_date(value)
            .ok()
            .or_else(|| date_in_zone(value))
    };
    read(value).or_else(|| with_its_weekday(value, read))
}

/// An HTTP date written with a weekday that is not the date's, read with the date's:
/// the date and time say when, as browsers read them, and a server that writes its
/// dates by hand gets the weekday wrong now and then. Refused by the date parser, such
/// a `Retry-After` was read as none, its URL retried on the crawl's backoff.
fn with_its_weekday(value: &str, read: impl Fn(&str) -> Option<SystemTime>) -> Option<SystemTime> {
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let end = value.find(|c: char| !c.is_ascii_alphabetic())?;
    let (written, rest) = value.split_at(end);
    // The three-letter form, or the whole name (RFC 850's form).
    let spelled = |day: &'static str| if written.len() == 3 { &day[..3] } else { day };
    if !DAYS.iter().any(|day| spelled(day) == written) {
        return None;
    }
    DAYS.iter()
        .find_map(|day| read(&format!("{}{rest}", spelled(day))))
}

/// An HTTP date whose zone is not `GMT` but `UTC`, `UT` or `±hhmm`: RFC 9110 asks for
/// `GMT`, and servers that spell it otherwise still mean a time, which read as no
/// `Retry-After` at all would have the URL retried at once and its host not paused.
fn date_in_zone(value: &str) -> Option<SystemTime> {
    let (date, zone) = value.rsplit_once(' ')?;
    let east = match zone {
        "UTC" | "UT" => 0,
        _ => crate::zone::offset_secs(zone)?,
    };
    let local = httpdate::parse_http_date(&format!("{date} GMT")).ok()?;
    crate::zone::to_utc(local, east)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::new(&RetryConfig {
            max_attempts: 4,
            base_delay: Duration::from_millis(1000),
            max_delay: Duration::from_secs(60),
            earlier_failures: false,
        })
    }

    #[test]
    fn transient_failures_are_retried_until_attempts_run_out() {
        let p = policy();
        for (status, error) in [
            (Some(503), None),
            (Some(429), None),
            (Some(408), None),
            (None, Some(ErrorKind::Timeout)),
            (None, Some(ErrorKind::Connect)),
            (None, Some(ErrorKind::DnsTemporary)),
        ] {
            assert!(
                matches!(p.decide(status, error, None, 1), Decision::RetryIn(_)),
                "{status:?} {error:?}"
            );
            assert_eq!(
                p.decide(status, error, None, 4),
                Decision::Keep,
                "{status:?} {error:?}"
            );
        }
    }

    #[test]
    fn permanent_answers_are_kept_at_once() {
        let p = policy();
        for (status, error) in [
            (Some(404), None),
            (Some(410), None),
            (Some(403), None),
            (Some(501), None),
            (Some(200), None),
            (None, Some(ErrorKind::Dns)),
            (Some(301), Some(ErrorKind::Redirect)),
        ] {
            assert_eq!(
                p.decide(status, error, None, 1),
                Decision::Keep,
                "{status:?} {error:?}"
            );
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = policy();
        for attempt in 1..=3 {
            let full = Duration::from_millis(1000 << (attempt - 1));
            let d = p.backoff(attempt);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert!(p.backoff(30) <= Duration::from_secs(60));
    }

    #[test]
    fn retry_after_is_obeyed_in_both_spellings_unless_too_long() {
        let p = policy();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("soon", now), None);
        let ra = Some(Duration::from_secs(2));
        assert_eq!(
            p.decide(Some(429), None, ra, 1),
            Decision::RetryIn(Duration::from_secs(2))
        );
        let past = parse_retry_after(&httpdate::fmt_http_date(now - Duration::from_secs(9)), now);
        assert_eq!(past, Some(Duration::ZERO));
        assert!(matches!(
            p.decide(Some(503), None, past, 1),
            Decision::RetryIn(d) if d >= Duration::from_millis(500)
        ));
        let too_long = Some(Duration::from_secs(3600));
        assert_eq!(p.decide(Some(503), None, too_long, 1), Decision::Keep);
    }

    /// A `Retry-After` of more seconds than a u64 holds (a server's "never") was read as
    /// none at all: the URL was retried within seconds, where one of an hour is not.
    #[test]
    fn a_retry_after_too_large_to_count_is_too_long_to_wait() {
        let p = policy();
        let never = parse_retry_after("99999999999999999999999", SystemTime::now());
        assert_eq!(p.decide(Some(503), None, never, 1), Decision::Keep);
        assert_eq!(parse_retry_after("-5", SystemTime::now()), None);
    }

    /// README and the example config name the 5xx statuses that are not retried; they
    /// said "5xx" while these six were final.
    #[test]
    fn the_docs_name_the_5xx_statuses_that_are_final() {
        let final_5xx: Vec<String> = (500..=599)
            .filter(|s| !is_transient(Some(*s), None))
            .map(|s| s.to_string())
            .collect();
        let (last, rest) = final_5xx.split_last().expect("some 5xx are final");
        let named = format!("{} and {last}", rest.join(", "));
        let readme = include_str!("../README.md").replace("\n  ", " ");
        let example = include_str!("../config/example.toml").replace("\n# ", " ");
        for (doc, text) in [("README.md", readme), ("example.toml", example)] {
            assert!(
                text.contains(&format!("5xx (but {named}, which")),
                "{doc}: {named}"
            );
        }
    }

    /// RFC 9110 asks for `GMT`, but servers send `UTC` or a numeric zone too; such a
    /// date was read as no `Retry-After` at all, and the URL retried within a second of
    /// a server asking for half a minute, its host not paused. The obsolete forms RFC
    /// 9110 says to accept are read as well.
    #[test]
    fn a_retry_after_date_is_read_in_any_zone_and_the_obsolete_forms() {
        let at = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("a date");
        let now = at - Duration::from_secs(30);
        for value in [
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37 UT",
            "Sun, 06 Nov 1994 08:49:37 +0000",
            "Sun, 06 Nov 1994 08:49:37 -0000",
            "Sun, 06 Nov 1994 10:49:37 +0200",
            "Sun, 06 Nov 1994 03:19:37 -0530",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(value, now),
                Some(Duration::from_secs(30)),
                "{value}"
            );
        }
        for value in [
            "Sun, 06 Nov 1994 08:49:37 +02",
            "Sun, 06 Nov 1994 08:49:37 +2400",
            "Sun, 06 Nov 1994 08:49:37 CET",
        ] {
            assert_eq!(parse_retry_after(value, now), None, "{value}");
        }
    }

    /// A date whose weekday is not its own (a server writing its dates by hand) still
    /// names its time, as browsers read it; it was read as no `Retry-After` at all.
    #[test]
    fn a_retry_after_date_with_the_wrong_weekday_names_its_time() {
        let at = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("a date");
        let now = at - Duration::from_secs(30);
        for value in [
            "Fri, 06 Nov 1994 08:49:37 GMT",
            "Mon, 06 Nov 1994 10:49:37 +0200",
            "Friday, 06-Nov-94 08:49:37 GMT",
            "Sat Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(value, now),
                Some(Duration::from_secs(30)),
                "{value}"
            );
        }
        for value in [
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Fri, 31 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(value, now), None, "{value}");
        }
    }

    /// The answer's `Date`, read as leniently as the `Retry-After` beside it, is the now a
    /// date counts from; seconds count from the answer whatever its `Date` says.
    #[test]
    fn a_retry_after_counts_from_the_answers_date() {
        let late = headers(&[
            ("date", "Fri, 06 Nov 1994 08:49:07 +0000"),
            ("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ]);
        assert_eq!(retry_after(503, &late), Some(Duration::from_secs(30)));
        let seconds = headers(&[
            ("date", "Sun, 06 Nov 1994 08:49:07 GMT"),
            ("retry-after", "5"),
        ]);
        assert_eq!(retry_after(503, &seconds), Some(Duration::from_secs(5)));
        let undated = headers(&[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")]);
        assert_eq!(retry_after(503, &undated), Some(Duration::ZERO));
        let unreadable = headers(&[
            ("date", "soon"),
            ("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ]);
        assert_eq!(retry_after(503, &unreadable), Some(Duration::ZERO));
    }

    /// A 429 without a (readable) `Retry-After` waits for its rate limit's reset, given in
    /// seconds or as a unix time counted from the answer's `Date`; other answers' reset
    /// headers (an API sends them with every answer) ask for no wait.
    #[test]
    fn a_429_without_retry_after_waits_for_its_rate_limits_reset() {
        let in_seconds = headers(&[("ratelimit-reset", "7")]);
        assert_eq!(retry_after(429, &in_seconds), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(503, &in_seconds), None);
        let at_a_time = headers(&[
            ("date", "Wed, 01 Jan 2025 00:00:00 GMT"),
            ("x-ratelimit-reset", "1735689630"),
        ]);
        assert_eq!(retry_after(429, &at_a_time), Some(Duration::from_secs(30)));
        let junk_beside = headers(&[("retry-after", "soon"), ("x-ratelimit-reset", "4")]);
        assert_eq!(retry_after(429, &junk_beside), Some(Duration::from_secs(4)));
        let both = headers(&[("retry-after", "2"), ("ratelimit-reset", "9")]);
        assert_eq!(retry_after(429, &both), Some(Duration::from_secs(2)));
    }

    /// A reset at a time past any the clock spells is a wait longer than any, not a panic.
    #[test]
    fn a_rate_limit_reset_past_any_time_is_too_long_to_wait() {
        let never = headers(&[("x-ratelimit-reset", "18446744073709551615")]);
        assert_eq!(retry_after(429, &never), Some(Duration::MAX));
        assert_eq!(
            policy().decide(Some(429), None, Some(Duration::MAX), 1),
            Decision::Keep
        );
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, reqwest::header::HeaderValue::from_static(value));
        }
        map
    }
}
