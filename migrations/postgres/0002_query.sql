-- Text compares byte by byte, as in SQLite, whatever the server's locale.
--
-- A database created with a locale such as en_US.UTF-8 sorts text by language rules
-- that skip punctuation, so `ORDER BY url` and a host's URL range
-- (`url >= 'http://host/' AND url < 'http://host0'`, as `pipecrawl query` asks) would
-- differ from SQLite's answers, or miss rows. The "C" collation is byte order, and is
-- also the fastest to compare. Indexes on these columns are rebuilt; no table is.

ALTER TABLE hosts ALTER COLUMN host TYPE text COLLATE "C";

ALTER TABLE frontier
    ALTER COLUMN url TYPE text COLLATE "C",
    ALTER COLUMN host TYPE text COLLATE "C";

ALTER TABLE pages
    ALTER COLUMN url TYPE text COLLATE "C",
    ALTER COLUMN final_url TYPE text COLLATE "C",
    ALTER COLUMN content_type TYPE text COLLATE "C",
    ALTER COLUMN title TYPE text COLLATE "C",
    ALTER COLUMN fetched_at TYPE text COLLATE "C",
    ALTER COLUMN changed_at TYPE text COLLATE "C",
    ALTER COLUMN content_hash TYPE text COLLATE "C",
    ALTER COLUMN etag TYPE text COLLATE "C",
    ALTER COLUMN last_modified TYPE text COLLATE "C",
    ALTER COLUMN location TYPE text COLLATE "C",
    ALTER COLUMN canonical_url TYPE text COLLATE "C",
    ALTER COLUMN error_kind TYPE text COLLATE "C",
    ALTER COLUMN error TYPE text COLLATE "C";

ALTER TABLE links
    ALTER COLUMN target_url TYPE text COLLATE "C",
    ALTER COLUMN anchor_text TYPE text COLLATE "C",
    ALTER COLUMN rel TYPE text COLLATE "C";

ALTER TABLE anchors
    ALTER COLUMN target_url TYPE text COLLATE "C",
    ALTER COLUMN anchor_text TYPE text COLLATE "C";

ALTER TABLE inlinks ALTER COLUMN url TYPE text COLLATE "C";
