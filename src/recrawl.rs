//! When a fetched page is due again.
//!
//! A fixed interval (global, or the first matching per-pattern rule), or adaptive: a page
//! that changed since the last visit comes back twice as soon, one that did not half as
//! late again, within the configured bounds — so a crawl's revisits go where the web
//! changes. A failed visit keeps its interval: it tells nothing about change.

use std::time::Duration;

use url::Url;

use crate::config::RecrawlConfig;
use crate::scope::Spellings;

#[derive(Debug, Clone)]
pub struct RecrawlPolicy {
    config: RecrawlConfig,
}

impl RecrawlPolicy {
    pub fn new(config: &RecrawlConfig) -> Self {
        Self {
            config: config.clone(),
        }
    }

    /// A hash of the config: revisits another one scheduled are scheduled again by this
    /// one (see [`crate::store::Store::unschedule_recrawls`]).
    pub fn fingerprint(&self) -> i64 {
        crate::store::fingerprint(&self.config)
    }

    /// Whether any page is ever revisited.
    pub fn enabled(&self) -> bool {
        self.config.interval.is_some() || self.config.rules.iter().any(|r| r.interval.is_some())
    }

    /// How long until `url` is due again, given the interval that brought this visit
    /// (None on a first visit) and whether its content changed; None: never. `changed` is
    /// None when the visit failed (no answer, a server error): that says nothing about
    /// the content, so an adaptive interval stays as it was.
    pub fn next(
        &self,
        url: &Url,
        previous: Option<Duration>,
        changed: Option<bool>,
    ) -> Option<Duration> {
        let configured = self.configured(url)?;
        if !self.config.adaptive {
            return Some(configured);
        }
        let (min, max) = (self.config.min_interval, self.config.max_interval);
        Some(match (previous, changed) {
            (None, _) => configured.clamp(min, max),
            (Some(last), None) => last.clamp(min, max),
            (Some(last), Some(true)) => (last / 2).clamp(min, max),
            (Some(last), Some(false)) => last.mul_f64(1.5).clamp(min, max),
        })
    }

    /// Whether `url` is ever revisited. A revisit scheduled by an earlier config that
    /// now says never (`interval_s = 0`, or a rule's) is not made.
    pub fn revisits(&self, url: &Url) -> bool {
        self.configured(url).is_some()
    }

    /// The interval the config gives `url`: the first matching rule's (matching the URL
    /// as stored or as it reads, as `scope.include` does), else the global one; None:
    /// never.
    fn configured(&self, url: &Url) -> Option<Duration> {
        let url = Spellings::of(url);
        match self
            .config
            .rules
            .iter()
            .find(|r| url.matched_by(&r.pattern))
        {
            Some(rule) => rule.interval,
            None => self.config.interval,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn policy(extra: &str) -> RecrawlPolicy {
        let config =
            Config::from_toml(&format!("seeds = ['http://h/']\n[recrawl]\n{extra}"), "t").unwrap();
        RecrawlPolicy::new(&config.recrawl)
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn rules_override_the_global_interval() {
        let p = policy("interval_s = 600\n[[recrawl.rule]]\npattern = '/news/'\ninterval_s = 60\n[[recrawl.rule]]\npattern = '/archive/'\ninterval_s = 0\n");
        assert!(p.enabled());
        assert_eq!(
            p.next(&url("http://h/a"), None, Some(true)),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            p.next(&url("http://h/news/1"), None, Some(true)),
            Some(Duration::from_secs(60))
        );
        assert_eq!(p.next(&url("http://h/archive/1"), None, Some(true)), None);
        assert!(!policy("").enabled());
    }

    #[test]
    fn adaptive_intervals_shrink_on_change_and_grow_without_within_bounds() {
        let p = policy(
            "interval_s = 3600\nadaptive = true\nmin_interval_s = 1000\nmax_interval_s = 5000\n",
        );
        let u = url("http://h/a");
        let s = Duration::from_secs;
        assert_eq!(p.next(&u, None, Some(true)), Some(s(3600)));
        assert_eq!(p.next(&u, Some(s(3600)), Some(true)), Some(s(1800)));
        assert_eq!(p.next(&u, Some(s(1800)), Some(true)), Some(s(1000)));
        assert_eq!(p.next(&u, Some(s(3000)), Some(false)), Some(s(4500)));
        assert_eq!(p.next(&u, Some(s(4500)), Some(false)), Some(s(5000)));
        assert_eq!(p.next(&u, Some(s(3000)), None), Some(s(3000)));
    }

    /// With `min_interval_s = 0` a page that changed at every visit (a timestamp in its
    /// HTML) halved its interval to nothing, and nothing stretched by 1.5 stays nothing:
    /// revisited as fast as politeness allows, forever, changed or not. The floor is a
    /// second, and an interval at it grows back once the page stops changing.
    #[test]
    fn an_adaptive_interval_at_its_floor_grows_back() {
        let text = "seeds = ['http://h/']\n[recrawl]\ninterval_s = 60\nadaptive = true\n\
                    min_interval_s = 0\n";
        let refused = Config::from_toml(text, "t").map(|_| ()).unwrap_err();
        assert!(
            refused.to_string().contains("recrawl.min_interval_s"),
            "{refused}"
        );
        let p = policy("interval_s = 60\nadaptive = true\nmin_interval_s = 1\n");
        let u = url("http://h/a");
        let mut interval = Duration::from_secs(60);
        for changed in [true; 40].into_iter().chain([false; 5]) {
            // As the frontier stores it, in milliseconds.
            let next = p.next(&u, Some(interval), Some(changed)).unwrap();
            interval = Duration::from_millis(u64::try_from(next.as_millis()).unwrap());
        }
        assert!(interval > Duration::from_secs(7), "{interval:?}");
    }
}
