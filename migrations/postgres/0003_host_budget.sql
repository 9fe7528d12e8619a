-- How many of each host's URLs are in the frontier to be fetched (trap rows not counted):
-- what `traps.max_pages_per_host` is checked against, by every node alike. Kept by the
-- writers in the transaction that adds the rows; a table of its own, so a writer's count
-- never waits on (or deadlocks with) the host leases in `hosts`.
CREATE TABLE host_budget (
    host TEXT PRIMARY KEY,
    urls BIGINT NOT NULL
);
INSERT INTO host_budget (host, urls)
    SELECT host, count(*) FROM frontier f
    WHERE NOT EXISTS (SELECT 1 FROM pages p WHERE p.id = f.id AND p.error_kind = 'trap')
    GROUP BY host;
