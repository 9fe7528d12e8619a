-- The columns of 0005 compare byte by byte, as every other text column of `pages` does
-- since 0002 (and as in SQLite): with the server's default collation, a database created
-- with a locale such as en_US.UTF-8 sorted `ORDER BY revisit_error` by language rules.
ALTER TABLE pages
    ALTER COLUMN revisit_failed_at TYPE text COLLATE "C",
    ALTER COLUMN revisit_error_kind TYPE text COLLATE "C",
    ALTER COLUMN revisit_error TYPE text COLLATE "C";
