-- `scope.max_pages` holds for the database: a node leases URLs only while the pages it
-- counts and the URLs leased, by all nodes together, are fewer. Counting the pages read
-- the whole `pages` table at every lease, under a lock every node's lease waits for: at
-- 500,000 pages 0.12 s a lease, growing with the crawl. Their sum grows only by leases
-- (a page is stored only from a URL its node holds leased, which that stops: one for
-- one), so every lease adds what it took to `bound`, and `bound` is never below it: a
-- lease that `bound` shows to be far from the limit counts nothing. Nearer, or with
-- `bound` NULL (not known: set at the first lease near a limit), a lease counts and
-- sets `bound` to the count. Its one row is also the lock that leases against the
-- limit take one at a time.
CREATE TABLE page_limit (
    id    BIGINT PRIMARY KEY CHECK (id = 0),
    bound BIGINT
);
INSERT INTO page_limit (id, bound) VALUES (0, NULL);
