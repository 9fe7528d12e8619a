//! Seeds a pipecrawl before 2026-12-07 stored with their user name and password.
//!
//! A seed written `http://user:pw@intranet/` was stored so then, and so was every URL its
//! relative links reached. A later pipecrawl takes them out of the seed, which makes it a
//! URL such a database has never seen: queued, it had the whole site fetched again beside
//! the rows stored, every page twice. The seed as stored is the seed: its rows are
//! crawled on, and the user is told why the password stays in the database.

use std::collections::HashSet;

use url::Url;

use crate::config::Config;
use crate::error::Error;
use crate::store::Store;
use crate::urlnorm;

/// The seeds of `config` with a user name and password whose frontier row writes them,
/// each named in a warning: they are queued already, as they were first written.
pub async fn stored_with_them(store: &Store, config: &Config) -> Result<HashSet<Url>, Error> {
    let with_them: Vec<(usize, &Url)> = config
        .seeds
        .iter()
        .enumerate()
        .filter(|(_, seed)| urlnorm::has_userinfo(seed))
        .collect();
    if with_them.is_empty() {
        return Ok(HashSet::new());
    }
    let written: Vec<&str> = with_them.iter().map(|(_, seed)| seed.as_str()).collect();
    let known: HashSet<String> = store.known_urls(&written).await?.into_iter().collect();
    let mut stored = HashSet::new();
    let mut found = Vec::new();
    for (i, seed) in with_them {
        if known.contains(seed.as_str()) && stored.insert(seed.clone()) {
            found.push(i);
        }
    }
    let says = |key: &str, seed: &str| {
        format!(
            "{key} ({seed}) is stored with its user name and password in its URL, as \
             pipecrawl stored seeds before 2026-12-07, and so are the URLs its links reached: \
             the crawl goes on with those rows rather than fetch the site again without them, \
             so the password stays in the database; crawl into a new database to store it \
             nowhere"
        )
    };
    config.warn_of_seeds(
        &found,
        says,
        "stored with a user name and password in their URLs",
    );
    Ok(stored)
}
