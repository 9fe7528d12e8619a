-- pipecrawl schema, SQLite.
-- The names of `pages` and `links` and their columns are a contract: users write SQL
-- against them. Change them only with a new migration and a README note.

-- Per host (host[:port]): politeness and robots.txt state shared by every URL on it.
CREATE TABLE hosts (
    host              TEXT PRIMARY KEY,
    robots_status     INTEGER,          -- NULL: not fetched yet
    robots_txt        TEXT,             -- at most the first 500 KiB
    robots_fetched_at INTEGER,          -- unix ms
    crawl_delay_ms    INTEGER           -- as robots.txt asks, before the config's cap
);

-- One row per known URL: the crawl's to-do list and its memory of what was seen.
-- state: queued -> leased -> done | failed
CREATE TABLE frontier (
    id              INTEGER PRIMARY KEY,
    url             TEXT NOT NULL UNIQUE,
    host            TEXT NOT NULL,
    depth           INTEGER NOT NULL,
    priority        INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'leased', 'done', 'failed')),
    not_before      INTEGER NOT NULL DEFAULT 0,  -- unix ms; not handed out before this
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_expires   INTEGER,                     -- unix ms
    discovered_from INTEGER REFERENCES frontier (id),
    redirect_hops   INTEGER NOT NULL DEFAULT 0,
    kind            TEXT NOT NULL DEFAULT 'page' CHECK (kind IN ('page', 'sitemap')),
    recrawl_at      INTEGER,                     -- unix ms; when a done URL is due again
    recrawl_interval_ms INTEGER                  -- the interval that set it (adaptive)
);
-- Serves the lease query; partial, so it shrinks as the crawl gets done.
CREATE INDEX frontier_queued ON frontier (priority DESC, id) WHERE state = 'queued';
CREATE INDEX frontier_leased ON frontier (lease_expires) WHERE state = 'leased';
-- Serves "when is the next retry due", so a crawl waiting on one sleeps until then.
CREATE INDEX frontier_due ON frontier (not_before) WHERE state = 'queued';
-- Serves "which finished URLs are due for a revisit".
CREATE INDEX frontier_recrawl ON frontier (recrawl_at)
    WHERE state IN ('done', 'failed') AND recrawl_at IS NOT NULL;

-- One row per fetched URL. `id` is the URL's frontier id.
CREATE TABLE pages (
    id            INTEGER PRIMARY KEY REFERENCES frontier (id),
    url           TEXT NOT NULL UNIQUE,
    final_url     TEXT,             -- where redirects starting here end
    status        INTEGER,          -- NULL when there was no response
    content_type  TEXT,
    title         TEXT,
    depth         INTEGER NOT NULL,
    fetched_at    TEXT NOT NULL,    -- RFC 3339, UTC; the last visit (a 304 included)
    changed_at    TEXT NOT NULL,    -- the visit that first saw the current content
    elapsed_ms    INTEGER,
    bytes         INTEGER,
    truncated     INTEGER NOT NULL DEFAULT 0,  -- 1 when the body was cut at fetch.max_body_bytes
    content_hash  TEXT,             -- xxh3-128 of the body, hex
    etag          TEXT,
    last_modified TEXT,
    location      TEXT,             -- a redirect's target
    canonical_url TEXT,             -- <link rel="canonical">
    noindex       INTEGER NOT NULL DEFAULT 0,  -- 1: meta robots / X-Robots-Tag said noindex
    nofollow      INTEGER NOT NULL DEFAULT 0,  -- 1: ... said nofollow; its links were not followed
    error_kind    TEXT,             -- see README: timeout, connect, dns, robots, ...
    error         TEXT
);
-- Serves following redirect chains: which redirects end at a given URL.
CREATE INDEX pages_redirect_final ON pages (final_url) WHERE location IS NOT NULL;

-- The link/title pairs: one row per distinct (target, anchor text) on a page.
CREATE TABLE links (
    id          INTEGER PRIMARY KEY,
    source_id   INTEGER NOT NULL REFERENCES pages (id),
    target_url  TEXT NOT NULL,      -- absolute, normalised, no fragment
    anchor_text TEXT NOT NULL,      -- whitespace collapsed
    rel         TEXT
);
CREATE INDEX links_source ON links (source_id);
CREATE INDEX links_target ON links (target_url);
