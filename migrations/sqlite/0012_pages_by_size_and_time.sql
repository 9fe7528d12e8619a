-- `pipecrawl query pages --sort bytes --desc` (the heaviest pages) and `--sort elapsed
-- --desc` (the slowest) read their first rows from these, where a crawl of a million
-- pages was otherwise read whole and sorted for the first hundred. Both directions: a
-- pass over the index for the pages with the value, then those without (`NULLS LAST`).
CREATE INDEX pages_bytes ON pages (bytes);
CREATE INDEX pages_elapsed ON pages (elapsed_ms);
