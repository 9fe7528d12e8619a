-- What a run must know of the runs before it, as named values.
-- `scope_fingerprint`: the scope (hosts, include, exclude, max_depth, link rules) the
-- last run started or reloaded with. A run with another looks again at the URLs that one
-- left out, and queues those it takes (src/frontier/readmit.rs). Absent: not known.
-- `recrawl_fingerprint`: the same for `[recrawl]`; revisits another one scheduled are
-- scheduled again by a run's own (src/pipeline.rs).
-- `paused` (on PostgreSQL `paused:<cluster.node_id>`): 1 while the service is paused
-- (POST /pause), so that a restart keeps it paused.
CREATE TABLE crawl_state (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
