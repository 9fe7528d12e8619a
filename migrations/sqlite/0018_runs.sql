-- One row per run of `pipecrawl crawl` or `serve` on this database: what a reader of its
-- rows asks of them (which build crawled, as whom, with which config, when, and how each
-- run ended). Written as a run starts and again as it ends; a run killed (`kill -9`, a
-- power cut) or still going has no end. The config is named by its file's path and hash,
-- not kept: it may hold tokens and passwords, and the database is there to be shared.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    node_id     TEXT NOT NULL,  -- `cluster.node_id`: given, or generated
    command     TEXT NOT NULL,  -- 'crawl' or 'serve'
    version     TEXT NOT NULL,  -- pipecrawl's
    user_agent  TEXT NOT NULL,  -- `fetch.user_agent`, as sent
    config_path TEXT,           -- the config file, absolute; NULL: none
    config_hash TEXT,           -- xxh3-128 of its bytes, hex (`xxhsum -H2`)
    started_at  TEXT NOT NULL,  -- RFC 3339, UTC, as `pages.fetched_at`
    ended_at    TEXT,
    ended       TEXT,           -- 'finished', 'page_limit', 'signal', 'error'
    pages       INTEGER         -- the pages the run stored, as its summary says
);
