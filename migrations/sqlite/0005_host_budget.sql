-- How many of each host's URLs are in the frontier to be fetched (trap rows not counted):
-- what `traps.max_pages_per_host` is checked against. Kept by the writer in the
-- transaction that adds the rows, so it is exact after a crash and across a resume; a
-- table of its own, so counting never waits on the politeness state in `hosts`.
CREATE TABLE host_budget (
    host TEXT PRIMARY KEY,
    urls INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO host_budget (host, urls)
    SELECT host, count(*) FROM frontier f
    WHERE NOT EXISTS (SELECT 1 FROM pages p WHERE p.id = f.id AND p.error_kind = 'trap')
    GROUP BY host;
