//! What a crawl did, counted by the writer as pages commit.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::metrics;
use crate::page::{ErrorKind, JobKind, PageRecord};
use crate::plural::Count;
use crate::stages::StageReport;

/// Running counts of committed pages.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Tally {
    pub pages: u64,
    /// Of `pages`, those stored for the first time (not revisits).
    pub new_pages: u64,
    /// Pages requested for the first time, which `scope.max_pages` counts: neither a URL
    /// robots.txt disallowed or the address guard refused (not requested) nor a revisit
    /// of a page requested before.
    pub requested_pages: u64,
    pub links: u64,
    /// Distinct links past `traps.max_links_per_page`, not stored, and the pages that had
    /// them: a crawl whose pages were cut so is not taken for whole.
    pub links_left_out: u64,
    pub pages_leaving_links_out: u64,
    /// Of `pages`, those whose body was cut at `fetch.max_body_bytes` (`truncated`; not a
    /// sitemap, cut at the protocol's limit): a crawl whose captures were cut is not
    /// taken for one that kept them whole.
    pub truncated: u64,
    /// HTML pages read for links (answered 2xx and parsed), and of them those that had
    /// none: a crawl whose every page read had none, a single-page app's whose links its
    /// scripts make in the browser, is told why it went no further.
    pub pages_read: u64,
    pub pages_read_without_links: u64,
    /// Fetches that failed transiently and were queued to be tried again.
    pub retries: u64,
    /// Of `pages`, those whose last outcome would have been retried (no answer, a 5xx, a
    /// 429: their retries ran out, or a `Retry-After` was past `retry.max_delay_ms`), which
    /// `--retry-failed` asks again: a throttled host's URLs are not taken for answered.
    /// Failed revisits, whose pages stay as stored, are `revisits_failed`, said on the
    /// revisits line (`--retry-failed` asks them too): not counted twice.
    pub failed_for_now: u64,
    /// Pages by status class: `1xx` … `9xx`, or `error` when there was no response.
    #[serde(rename = "pages_by_class")]
    pub by_class: BTreeMap<&'static str, u64>,
    /// Pages with an error, by kind.
    #[serde(rename = "errors_by_kind")]
    pub errors: BTreeMap<&'static str, u64>,
    /// Of the revisits, those that found the page changed, and those that failed for now
    /// and left it as stored: the rest found it as it was (a 304 among them), so that a
    /// nightly run's summary says what its revisits found.
    pub revisits_changed: u64,
    pub revisits_failed: u64,
    /// How long after it fell due the last revisit stored was made, in milliseconds:
    /// revisits go longest overdue first, so one that grows says the crawl is falling
    /// behind its revisits. None until a revisit is stored.
    pub revisit_late_ms: Option<u64>,
    /// Of `pages`, the sitemaps read for their URLs, and the pages in scope they listed:
    /// a crawl that sitemaps fed counts their files among its pages and their URLs
    /// nowhere else.
    pub sitemaps: u64,
    pub sitemap_urls: u64,
}

impl Tally {
    pub fn add(&mut self, page: &PageRecord) {
        if page.retry_in.is_some() {
            self.retries += 1;
            metrics::retry();
            return;
        }
        self.pages += 1;
        self.new_pages += u64::from(page.job.previous.is_none());
        let requested = page.error.as_ref().is_none_or(|e| e.kind.requested());
        let before = page.job.previous.as_ref().is_some_and(|p| p.requested);
        self.requested_pages += u64::from(requested && !before);
        if page.job.previous.is_some() {
            self.revisits_failed += u64::from(page.failed_revisit);
            self.revisits_changed += u64::from(page.changed && !page.failed_revisit);
        }
        if let Some(due_at) = page.job.previous.as_ref().and_then(|p| p.due_at) {
            let late = crate::store::unix_ms(std::time::SystemTime::now()).saturating_sub(due_at);
            let late_ms = u64::try_from(late).unwrap_or(0);
            self.revisit_late_ms = Some(late_ms);
            metrics::revisit_late(Duration::from_millis(late_ms));
        }
        self.links += page.links.len() as u64;
        if let Some(urls) = page.sitemap_urls {
            self.sitemaps += 1;
            self.sitemap_urls += urls;
        }
        let left_out = page.links_left_out.unwrap_or(0);
        self.links_left_out += left_out;
        self.pages_leaving_links_out += u64::from(left_out > 0);
        // A sitemap is cut at the protocol's 50 MiB, not at `fetch.max_body_bytes`.
        let page_cut = page.truncated && page.job.kind == JobKind::Page;
        self.truncated += u64::from(page_cut && !page.failed_revisit);
        if page.links_left_out.is_some() {
            self.pages_read += 1;
            self.pages_read_without_links += u64::from(page.links.is_empty());
        }
        let class = status_class(page.status);
        *self.by_class.entry(class).or_default() += 1;
        // A revisit that failed keeps its page as stored: counted on the revisits line.
        let kind = page.error.as_ref().map(|e| e.kind);
        self.failed_for_now +=
            u64::from(!page.failed_revisit && crate::retry::is_transient(page.status, kind));
        let error = page.error.as_ref().map(|e| e.kind.as_str());
        if let Some(kind) = error {
            *self.errors.entry(kind).or_default() += 1;
        }
        metrics::page(class, page.links.len(), left_out, error);
    }

    /// Trap rows stored: page rows of URLs not fetched, which the database counts among
    /// its pages and errors as it does a URL robots.txt disallows. Not among `new_pages`,
    /// nor among `requested_pages`: `scope.max_pages` leaves them out.
    pub fn add_trapped(&mut self, rows: u64) {
        self.count_trapped(rows);
        metrics::trapped(rows);
    }

    /// Rows of URLs robots.txt disallows that the writer recorded as it found them
    /// (`Discovered::disallowed`), as the fetcher's are counted: among the pages stored
    /// for the first time and the `robots` errors, never among `requested_pages`.
    pub fn add_disallowed(&mut self, rows: u64) {
        let kind = ErrorKind::Robots.as_str();
        self.count_unfetched(rows, kind);
        self.new_pages += rows;
        metrics::unfetched(rows, kind);
    }

    /// [`Tally::add_trapped`] for rows whose metrics were counted as they were stored
    /// ([`crate::frontier::dispatcher::Progress::trapped_apart`]).
    pub fn count_trapped(&mut self, rows: u64) {
        self.count_unfetched(rows, TRAP);
    }

    /// `rows` pages stored with no response, of the error `kind`.
    fn count_unfetched(&mut self, rows: u64, kind: &'static str) {
        if rows == 0 {
            return;
        }
        self.pages += rows;
        *self.by_class.entry(NO_RESPONSE).or_default() += rows;
        *self.errors.entry(kind).or_default() += rows;
    }

    /// Of `pages`, the rows of URLs never requested: trap rows, and those of the kinds
    /// [`ErrorKind::requested`] says were refused before a request.
    pub fn unrequested(&self) -> u64 {
        self.errors
            .iter()
            .filter(|(&kind, _)| {
                kind == TRAP || ErrorKind::from_stored(kind).is_some_and(|k| !k.requested())
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// Of `pages`, those fetched: not the rows of URLs never requested, which a crawl cut at
    /// its page budgets stores by the hundred thousand in one merge. The rate counts these,
    /// or a crawl that fetched 80 pages a second said thousands.
    pub fn fetched(&self) -> u64 {
        self.pages.saturating_sub(self.unrequested())
    }

    /// Of `pages`, those stored before: neither new nor trap rows, which are counted
    /// among the pages but not among `new_pages`.
    pub fn revisits(&self) -> u64 {
        let trapped = self.errors.get(TRAP).copied().unwrap_or(0);
        self.pages
            .saturating_sub(self.new_pages)
            .saturating_sub(trapped)
    }
}

/// The class of a page with no response.
const NO_RESPONSE: &str = "error";

/// The errors of a URL whose server was not reached: down, unreachable, or unknown to DNS
/// (robots.txt unavailable: most often its host did not answer it either).
pub const UNREACHED: [ErrorKind; 5] = [
    ErrorKind::Timeout,
    ErrorKind::Connect,
    ErrorKind::Dns,
    ErrorKind::DnsTemporary,
    ErrorKind::RobotsUnavailable,
];

/// `pages.error_kind` of a trap row, beside the kinds of [`crate::page::ErrorKind`].
pub const TRAP: &str = "trap";

/// What [`status_class`] answers.
pub const STATUS_CLASSES: [&str; 10] = [
    "1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "7xx", "8xx", "9xx", "error",
];

/// `1xx` … `9xx` by the status' first digit, as `query stats` classes them (a server may
/// answer up to 999: LinkedIn's 999 is no server error), or `error` when there was no
/// response.
pub fn status_class(status: Option<u16>) -> &'static str {
    let Some(status) = status else {
        return NO_RESPONSE;
    };
    STATUS_CLASSES[usize::from(status / 100).clamp(1, 9) - 1]
}

/// The end-of-crawl report.
#[derive(Debug, Clone)]
pub struct Summary {
    pub tally: Tally,
    pub elapsed: Duration,
    /// Of `elapsed`, the time a one-off crawl spent at its end indexing and counting the
    /// links it deferred, fetching nothing: said apart, or the rate reads lower than
    /// the crawl ran (by a third on 20,000 pages).
    pub indexing: Option<Duration>,
    /// Why the crawl ended.
    pub ended: EndReason,
    /// Where each stage's time went: which one limited the crawl.
    pub stages: StageReport,
    /// Whether an earlier run of this crawl, killed or stopped before its end, stored a
    /// page its server answered: the crawl reached its sites, whatever this run met.
    pub answered_earlier: bool,
    /// A run that found the crawl finished ([`Summary::found_nothing_left`]) whose
    /// database holds no page any server answered: the earlier runs reached no site,
    /// and neither did the crawl, however often it is run again.
    pub never_answered: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Nothing left to fetch.
    FrontierEmpty,
    /// `scope.max_pages` reached; the rest stays queued for a later run.
    PageLimit,
    /// Stopped by a signal; unfinished URLs went back to the queue.
    Interrupted,
}

impl Summary {
    /// Whether the crawl reached none of its sites: this run's URLs got no answer
    /// ([`Summary::nothing_answered`]), or it found the crawl finished with none ever
    /// answered. `crawl` exits 4, and `runs.ended` says `unreached`.
    pub fn unreached(&self) -> bool {
        self.nothing_answered().is_some() || self.never_answered
    }

    /// The URLs this run tried, when it tried some and not one got an answer from its
    /// server (every host down, a firewall, no network): a crawl that failed as a whole,
    /// which its exit status says. Not one stopped by a signal, whose status is 0.
    /// Only errors that say the server was not reached count: a site whose robots.txt
    /// closes it, a seed the address guard refuses or a certificate that does not verify
    /// answered, and the rows say why. A run resuming a crawl whose earlier runs got
    /// answers ends as that crawl would have, had it never stopped: it reached its sites.
    pub fn nothing_answered(&self) -> Option<u64> {
        if self.answered_earlier {
            return None;
        }
        let t = &self.tally;
        let only_errors = t.by_class.keys().all(|&class| class == NO_RESPONSE);
        let unreached = t
            .errors
            .keys()
            .all(|&kind| UNREACHED.iter().any(|k| k.as_str() == kind));
        (self.ended != EndReason::Interrupted && t.pages > 0 && only_errors && unreached)
            .then_some(t.pages)
    }

    /// Whether this run found the crawl finished by earlier ones (`stored_before` pages
    /// in the database as it started) and fetched nothing: a run again of a finished
    /// crawl, which those used to crawlers that start over on every run take for a
    /// site that did not answer.
    pub fn found_nothing_left(&self, stored_before: u64) -> bool {
        self.ended == EndReason::FrontierEmpty && self.tally.pages == 0 && stored_before > 0
    }

    pub fn pages_per_sec(&self) -> f64 {
        rate(self.tally.fetched(), self.elapsed)
    }
}

/// The summary as figures, for `--log-format json`: a log pipeline alerts on fields, and
/// the text's dozen lines were neither one record nor a count it could read. The tally's
/// counts as they are, with what is derived from them; named as `/stats` names its
/// figures, and `ended` as `runs.ended` says it.
#[derive(Debug, serde::Serialize)]
pub struct Figures<'a> {
    /// The text's first line, for whoever reads the record.
    pub message: String,
    pub ended: &'static str,
    #[serde(flatten)]
    pub tally: &'a Tally,
    pub not_requested: u64,
    pub revisits: u64,
    pub elapsed_s: f64,
    /// Of `elapsed_s`, a one-off crawl's indexing of its links at its end.
    pub indexing_s: Option<f64>,
    pub pages_per_sec: f64,
    pub pipeline: &'a StageReport,
}

impl Summary {
    /// Its [`Figures`]; a service's run (`service`) is never `unreached`.
    pub fn figures(&self, service: bool) -> Figures<'_> {
        let t = &self.tally;
        let text = self.to_string();
        Figures {
            message: text.lines().next().unwrap_or_default().to_owned(),
            ended: crate::store::RunEnd::of(self, service).as_str(),
            tally: t,
            not_requested: t.unrequested(),
            revisits: t.revisits(),
            elapsed_s: self.elapsed.as_secs_f64(),
            indexing_s: self.indexing.map(|d| d.as_secs_f64()),
            pages_per_sec: self.pages_per_sec(),
            pipeline: &self.stages,
        }
    }
}

/// `pages` per second over `took`; 0 over no time.
fn rate(pages: u64, took: Duration) -> f64 {
    let secs = took.as_secs_f64();
    if secs > 0.0 {
        pages as f64 / secs
    } else {
        0.0
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        let classes: Vec<String> = t.by_class.iter().map(|(c, n)| format!("{n} {c}")).collect();
        let why = match self.ended {
            EndReason::FrontierEmpty => "frontier empty",
            EndReason::PageLimit => "page limit reached",
            EndReason::Interrupted => "interrupted",
        };
        writeln!(
            f,
            "crawled {} ({}), {} in {:.1} s: {:.1} pages/s ({why})",
            Count(t.pages, "page"),
            if classes.is_empty() {
                "none".to_owned()
            } else {
                classes.join(", ")
            },
            Count(t.links, "link"),
            self.elapsed.as_secs_f64(),
            self.pages_per_sec(),
        )?;
        if let Some(indexing) = self.indexing {
            let crawling = self.elapsed.saturating_sub(indexing);
            writeln!(
                f,
                "indexing links at the end: {:.1} s; before it, {:.1} pages/s",
                indexing.as_secs_f64(),
                rate(t.fetched(), crawling),
            )?;
        }
        if t.links_left_out > 0 {
            let pages = t.pages_leaving_links_out;
            writeln!(
                f,
                "links left out (traps.max_links_per_page): {}, on {}",
                t.links_left_out,
                Count(pages, "page")
            )?;
        }
        if t.truncated > 0 {
            writeln!(
                f,
                "bodies cut at fetch.max_body_bytes: {} (of the pages crawled, stored as far \
                 as read: `truncated = 1`)",
                t.truncated
            )?;
        }
        if t.pages_read > 0 && t.pages_read_without_links == t.pages_read {
            writeln!(
                f,
                "no links on the {} read: if the site builds its pages with scripts in the \
                 browser (a single-page app), its HTML has none, and pipecrawl runs no JavaScript \
                 (README: \"JavaScript is not run\")",
                Count(t.pages_read, "HTML page")
            )?;
        }
        // A service or a crawl with `[recrawl]` counts its revisits among the pages
        // crawled: said apart, or the first line reads as more pages than the database
        // holds.
        let revisits = t.revisits();
        if revisits > 0 {
            let failed = t.revisits_failed;
            let unchanged = revisits.saturating_sub(t.revisits_changed + failed);
            write!(
                f,
                "revisits: {revisits} (of the pages crawled, those stored before): {} changed, \
                 {unchanged} unchanged",
                t.revisits_changed
            )?;
            if failed > 0 {
                write!(
                    f,
                    ", {failed} failed (kept as stored: `crawl --retry-failed` asks them again)"
                )?;
            }
            writeln!(f)?;
        }
        // Trap rows, robots.txt's refusals and refused addresses are pages stored that
        // were never fetched: said apart, or the first line reads as more requests than
        // the sites got.
        let unrequested = t.unrequested();
        if unrequested > 0 {
            writeln!(
                f,
                "not requested: {unrequested} (of the pages crawled, rows of URLs never \
                 fetched: traps, robots.txt's refusals, refused addresses)"
            )?;
        }
        if t.sitemaps > 0 {
            writeln!(
                f,
                "sitemaps: {} (of the pages crawled, files read for the URLs they list), \
                 listing {} in scope",
                t.sitemaps,
                Count(t.sitemap_urls, "URL")
            )?;
        }
        if t.retries > 0 {
            writeln!(f, "retries: {}", t.retries)?;
        }
        if t.failed_for_now > 0 {
            writeln!(
                f,
                "failed for now: {} (of the pages crawled, no answer, a 5xx, a 408, a 429, a \
                 body cut off or robots.txt unavailable once their retries ran out or a \
                 Retry-After was past retry.max_delay_ms: `crawl --retry-failed` asks them \
                 again)",
                t.failed_for_now
            )?;
        }
        if !t.errors.is_empty() {
            let errors: Vec<String> = t.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
            writeln!(f, "errors by kind: {}", errors.join(", "))?;
        }
        // The shares of a run that stored nothing (one run again over a finished crawl,
        // or at its page limit) are of workers with nothing to do: noise beside the log's
        // "nothing left to crawl".
        if t.pages > 0 || self.ended == EndReason::Interrupted {
            write!(f, "{}", self.stages)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{status_class, STATUS_CLASSES};

    #[test]
    fn every_status_class_is_listed() {
        let mut seen: Vec<&str> = (100..=999)
            .map(Some)
            .chain([None])
            .map(status_class)
            .collect();
        seen.dedup();
        assert_eq!(seen, STATUS_CLASSES);
    }

    /// A status past 599 (LinkedIn's 999 to crawlers) is its own class, as `query stats`
    /// counts it (`status / 100`), not a server error: `/stats` and
    /// `pipecrawl_pages_total{class="5xx"}` counted it so, and an alert on a site's server
    /// errors fired for a site that answered 999.
    #[test]
    fn a_status_past_599_is_not_a_server_error() {
        let classes = [600, 999].map(|status| status_class(Some(status)));
        assert_eq!(classes, ["6xx", "9xx"]);
    }
}
