-- A revisit that fails for now (no answer, a 5xx, a 429, after its retries) of a page
-- stored with an answer leaves the page as it was: its title, links and status stay, and
-- these columns say when the last revisit failed and how (as `status`, `error_kind` and
-- `error` would have). A revisit answered since (a 304 too) clears them.
ALTER TABLE pages ADD COLUMN revisit_failed_at TEXT;   -- RFC 3339, UTC; NULL: none failed
ALTER TABLE pages ADD COLUMN revisit_status INTEGER;   -- the failed revisit's status, if any
ALTER TABLE pages ADD COLUMN revisit_error_kind TEXT;
ALTER TABLE pages ADD COLUMN revisit_error TEXT;
