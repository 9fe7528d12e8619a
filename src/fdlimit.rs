//! The process's open-file limit, fitted to the crawl before it starts.
//!
//! Every request in flight holds a socket, and a finished one's connection waits in the
//! pool for its host's next request. systemd and most shells start a process with a soft
//! limit of 1,024 descriptors: with `fetch.workers = 1000` the crawl ran out, connections
//! failed and SQLite could not open its temporary files, which stopped the crawl. The
//! hard limit is usually far higher (524,288 under systemd), and a process may raise its
//! soft limit up to it, as Go's runtime does for every program.

use std::time::Duration;

use pipecrawl::Config;

/// Descriptors a crawl holds besides its connections: SQLite's database, WAL, shared
/// memory and temporary files, the PostgreSQL pool, the admin listener and the
/// connections it takes, the runtime's epoll and event descriptors, stdio and the
/// resolver's sockets.
const BESIDES_CONNECTIONS: u64 = 64 + pipecrawl::admin::MAX_CONNECTIONS as u64;

/// Connections to allow for each fetch worker: the one its request holds, and about one
/// more idling in the pool after an earlier request to another host.
const CONNECTIONS_PER_WORKER: u64 = 2;

/// About the quickest a fetch worker's request to a host across the internet ends, the
/// pace at which it leaves connections idling, each kept for its host's next request
/// (see `fetcher::idle_connection_time`): a broad crawl moves on to another host each
/// time, and its idle connections outnumbered its workers ten to one on loopback. Not
/// lower: a crawl of a few hosts keeps far fewer, and the benchmark's latency-bound
/// crawl (1,000 workers, five hosts) would lose its connections under a hard limit of
/// 20,000, as at 50 ms.
const QUICKEST_REQUEST: Duration = Duration::from_millis(100);

/// Raises the soft limit to the hard one, then lowers `fetch.workers` if even that
/// cannot hold them, saying so: a crawl that runs slower beats one that stops. Where it
/// cannot hold the connections keep-alive leaves idling too, they are not kept, so that
/// every connection is a request in flight.
pub fn fit(config: &mut Config) {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!("cannot read or raise the open-file limit (ulimit -n): {e}");
            return;
        }
    };
    let most = (limit.saturating_sub(BESIDES_CONNECTIONS) / CONNECTIONS_PER_WORKER).max(1);
    let workers = config.fetch.workers as u64;
    if workers > most {
        tracing::warn!(
            "fetch.workers = {workers} lowered to {most}: this process may open only {limit} \
             files (ulimit -n), about {CONNECTIONS_PER_WORKER} per worker and \
             {BESIDES_CONNECTIONS} more; raise the hard limit (LimitNOFILE= for a systemd \
             service) to fetch more at once"
        );
        config.fetch.workers = usize::try_from(most).unwrap_or(usize::MAX);
    }
    let idle = pipecrawl::fetcher::idle_connection_time(&config.politeness);
    let per_worker = u64::try_from(idle.as_millis() / QUICKEST_REQUEST.as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(CONNECTIONS_PER_WORKER);
    let kept = (config.fetch.workers as u64)
        .saturating_mul(per_worker)
        .saturating_add(BESIDES_CONNECTIONS);
    if limit < kept {
        tracing::warn!(
            "connections are not kept for their host's next request: this process may open \
             only {limit} files (ulimit -n), and a crawl of many hosts keeps one to each host \
             it asked in the last {idle:?}, about {kept}; raise the hard limit (LimitNOFILE= \
             for a systemd service) to keep them"
        );
        config.fetch.keep_alive = false;
    }
}

/// What to add to a failure's report when SQLite could not open a file under an
/// open-file limit too low for even one fetch worker: it says only "unable to open
/// database file", as of a path it may not write, so the limit is named here as the
/// likely cause.
pub fn too_few_files_note(message: &str) -> Option<String> {
    if !message.contains("unable to open database file") {
        return None;
    }
    #[cfg(unix)]
    {
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).ok()?;
        let needed = BESIDES_CONNECTIONS + CONNECTIONS_PER_WORKER;
        (soft < needed).then(|| {
            format!(
                "this process may open only {soft} files (`ulimit -n`, systemd's \
                 `LimitNOFILE`), and a crawl needs about {needed}: SQLite cannot open its \
                 files past that"
            )
        })
    }
    #[cfg(not(unix))]
    None
}
