-- One row per run of `pipecrawl crawl` or `serve` on this database: what a reader of its
-- rows asks of them (which build crawled, as whom, with which config, when, and how each
-- run ended). Written as a run starts and again as it ends; a run killed (`kill -9`, a
-- power cut) or still going has no end. The config is named by its file's path and hash,
-- not kept: it may hold tokens and passwords, and the database is there to be shared.
-- Each node of a crawl writes its own. Text compares byte by byte, as in `pages`.
CREATE TABLE runs (
    id          BIGSERIAL PRIMARY KEY,
    node_id     TEXT COLLATE "C" NOT NULL,  -- `cluster.node_id`: given, or generated
    command     TEXT COLLATE "C" NOT NULL,  -- 'crawl' or 'serve'
    version     TEXT COLLATE "C" NOT NULL,  -- pipecrawl's
    user_agent  TEXT COLLATE "C" NOT NULL,  -- `fetch.user_agent`, as sent
    config_path TEXT COLLATE "C",           -- the config file, absolute; NULL: none
    config_hash TEXT COLLATE "C",           -- xxh3-128 of its bytes, hex (`xxhsum -H2`)
    started_at  TEXT COLLATE "C" NOT NULL,  -- RFC 3339, UTC, as `pages.fetched_at`
    ended_at    TEXT COLLATE "C",
    ended       TEXT COLLATE "C",           -- 'finished', 'page_limit', 'signal', 'error'
    pages       BIGINT                      -- the pages the run stored, as its summary says
);
