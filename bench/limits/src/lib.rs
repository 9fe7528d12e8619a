//! What the two limit binaries share: which pages to take from the bench site, how CPU
//! time is read, the bare parse, and the one-line report `bench/run` reads.
//!
//! The limits are a floor, not a crawler: `limit-fetch` only downloads and drops,
//! `limit-parse` only finds the title and the hrefs. Their CPU per page, summed and
//! spread over the cores, is the time a perfectly pipelined crawl of the same pages
//! could not beat (before storing anything).

use std::time::Duration;

use clap::Args;
use scraper::{Html, Selector};

/// The pages to take: page `i` of the bench site is `/p/{i}` on host `i % hosts`.
#[derive(Args, Debug, Clone)]
pub struct SiteArgs {
    /// A host's base URL as bench-site's `--ready-file` lists them (`http://127.0.0.1:PORT/`);
    /// repeat for several hosts, in the same order.
    #[arg(long = "base", required = true)]
    pub bases: Vec<String>,
    /// Pages 0..N of the site.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub pages: u64,
}

impl SiteArgs {
    pub fn page_url(&self, i: u64) -> String {
        let base = &self.bases[(i % self.bases.len() as u64) as usize];
        format!("{}/p/{i}", base.trim_end_matches('/'))
    }
}

/// User and system CPU time.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Cpu {
    pub user: Duration,
    pub sys: Duration,
}

impl Cpu {
    /// The whole process.
    pub fn process() -> Self {
        usage(libc::RUSAGE_SELF)
    }

    /// The calling thread only, so a thread can time its own work while others run.
    pub fn thread() -> Self {
        usage(libc::RUSAGE_THREAD)
    }

    pub fn since(self, earlier: Self) -> Self {
        Self {
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
        }
    }

    pub fn add(&mut self, other: Self) {
        self.user += other.user;
        self.sys += other.sys;
    }

    pub fn total(self) -> Duration {
        self.user + self.sys
    }
}

fn usage(who: libc::c_int) -> Cpu {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes into the struct we own; zeroed() already made it valid,
    // so even a failed call leaves a readable (all-zero) value.
    let rc = unsafe { libc::getrusage(who, ru.as_mut_ptr()) };
    // SAFETY: see above; the struct is initialised whether or not the call succeeded.
    let ru = unsafe { ru.assume_init() };
    if rc != 0 {
        return Cpu::default();
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Cpu {
        user: tv(ru.ru_utime),
        sys: tv(ru.ru_stime),
    }
}

/// What the bare parse found on a page; kept and summed so none of the work can be
/// optimised away, and printed as a check that the pages were real.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Extracted {
    pub titles: u64,
    pub title_bytes: u64,
    pub hrefs: u64,
    pub href_bytes: u64,
}

impl Extracted {
    pub fn add(&mut self, other: Self) {
        self.titles += other.titles;
        self.title_bytes += other.title_bytes;
        self.hrefs += other.hrefs;
        self.href_bytes += other.href_bytes;
    }
}

/// The selectors, parsed once.
pub struct BareParser {
    title: Selector,
    anchors: Selector,
}

impl Default for BareParser {
    fn default() -> Self {
        let parse =
            |s| Selector::parse(s).unwrap_or_else(|e| panic!("selector {s:?} is a constant: {e}"));
        Self {
            title: parse("title"),
            anchors: parse("a[href]"),
        }
    }
}

impl BareParser {
    /// UTF-8 check, a full HTML parse, the title (whitespace collapsed) and every href.
    pub fn extract(&self, body: &[u8]) -> Extracted {
        let html = String::from_utf8_lossy(body);
        let doc = Html::parse_document(&html);
        let mut out = Extracted::default();
        if let Some(title) = doc.select(&self.title).next() {
            let text = title.text().collect::<String>();
            let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
            out.titles = 1;
            out.title_bytes = collapsed.len() as u64;
        }
        for a in doc.select(&self.anchors) {
            if let Some(href) = a.value().attr("href") {
                out.hrefs += 1;
                out.href_bytes += href.len() as u64;
            }
        }
        out
    }
}

/// The line `bench/run` reads: `NAME: key=value ...`, one line, nothing else on stdout.
/// A run that got no page is an error, not a very fast limit.
pub fn report(
    name: &str,
    pages: u64,
    errors: u64,
    wall: Duration,
    cpu: Cpu,
    extra: &str,
) -> Result<(), String> {
    let per_page_ms = if pages > 0 {
        cpu.total().as_secs_f64() * 1000.0 / pages as f64
    } else {
        0.0
    };
    println!(
        "{name}: pages={pages} errors={errors} wall_s={:.3} user_s={:.3} sys_s={:.3} \
         cpu_ms_per_page={per_page_ms:.4}{}{extra}",
        wall.as_secs_f64(),
        cpu.user.as_secs_f64(),
        cpu.sys.as_secs_f64(),
        if extra.is_empty() { "" } else { " " },
    );
    if pages == 0 {
        return Err(format!(
            "no page fetched ({errors} errors): is the site up?"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_spread_over_hosts_like_the_site() {
        let site = SiteArgs {
            bases: vec![
                "http://127.0.0.1:8000/".into(),
                "http://127.0.0.2:8000".into(),
            ],
            pages: 4,
        };
        assert_eq!(site.page_url(0), "http://127.0.0.1:8000/p/0");
        assert_eq!(site.page_url(3), "http://127.0.0.2:8000/p/3");
    }

    #[test]
    fn bare_parse_finds_title_and_hrefs() {
        let html = b"<!DOCTYPE html><html><head><title>  A \n page </title></head>\
            <body><a href=\"/p/1\">one</a><a name=\"x\">no href</a>\
            <ul><li><a href=\"http://127.0.0.2/p/22\">two</a></ul></body></html>";
        let found = BareParser::default().extract(html);
        assert_eq!(
            found,
            Extracted {
                titles: 1,
                title_bytes: "A page".len() as u64,
                hrefs: 2,
                href_bytes: ("/p/1".len() + "http://127.0.0.2/p/22".len()) as u64,
            }
        );
    }

    #[test]
    fn cpu_time_moves_forward() {
        let before = Cpu::thread();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let spent = Cpu::thread().since(before);
        assert!(Cpu::process().total() >= spent.total());
    }
}
