-- `pipecrawl query pages --sort bytes --desc` (the heaviest pages) and `--sort elapsed
-- --desc` (the slowest) read their first rows from these, where a crawl of a million
-- pages was otherwise read whole and sorted for the first hundred. In the order those
-- ask (`DESC NULLS LAST`); the ascending order is sorted.
CREATE INDEX pages_bytes ON pages (bytes DESC NULLS LAST);
CREATE INDEX pages_elapsed ON pages (elapsed_ms DESC NULLS LAST);
