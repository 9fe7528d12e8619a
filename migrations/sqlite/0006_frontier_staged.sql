-- URLs a committed batch discovered, waiting to be merged into `frontier`.
--
-- `frontier.url`'s unique index is ordered by URL, so a batch's new URLs land all over it:
-- once it outgrows the page cache nearly every new URL dirties an index page of its own,
-- and each commit wrote tens of megabytes of WAL for a megabyte of rows (the benchmark's
-- 1.2 M-URL crawl ran at 47% of its early speed by the end). Here they are appended in
-- commit order, and the writer merges them into `frontier` in URL order, many batches at
-- a time, so each index page is written once per merge. Rows here are as durable as the
-- batch that found them; the next merge (at the latest when the next crawl starts) sorts
-- out duplicates and URLs already known, and spends the hosts' page budgets. A batch
-- merges at once when a staged URL would be among the next leased (see
-- `Db::merge_due`), so the crawl's order is what it would be without staging.
CREATE TABLE frontier_staged (
    url             TEXT NOT NULL,
    host            TEXT NOT NULL,
    depth           INTEGER NOT NULL,
    priority        INTEGER NOT NULL,
    discovered_from INTEGER,
    redirect_hops   INTEGER NOT NULL,
    kind            TEXT NOT NULL
);
-- The best staged priority, read after every batch. Rows of one priority are appended
-- in rowid order, so keeping it costs little.
CREATE INDEX frontier_staged_priority ON frontier_staged (priority);
