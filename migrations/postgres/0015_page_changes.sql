-- Every change a visit found in a stored page, as it stood before and after: `pages`
-- keeps only the latest answer, and a user watching sites asks what a page said last
-- week. Written by the trigger below in the transaction that stores the page, so it is
-- as crash-safe as the page; nothing is written for a page's first visit, an unchanged
-- revisit (a 304 included) or a revisit that failed for now, which leaves a page stored
-- with an answer as it was, and replaces one whose last visit failed too (a 503, then
-- no answer): a failure for a failure is no news of the page. The change rule is the
-- store's (`changed_at`: status, redirect target, body hash, or validators and size
-- where no body was hashed); a failure is no answer, or one `retry::is_transient` calls
-- so (`page_failed_for_now` below). Rows stay until a user deletes them.
-- Text compares byte by byte, as in `pages` (0002_query.sql).
CREATE TABLE page_changes (
    id               BIGSERIAL PRIMARY KEY,
    page_id          BIGINT NOT NULL,  -- pages.id
    url              TEXT COLLATE "C" NOT NULL,
    changed_at       TEXT COLLATE "C" NOT NULL,  -- the visit that saw the new answer
    old_changed_at   TEXT COLLATE "C" NOT NULL,  -- the visit that first saw the old one
    old_status       BIGINT,
    new_status       BIGINT,
    old_title        TEXT COLLATE "C",
    new_title        TEXT COLLATE "C",
    old_content_hash TEXT COLLATE "C",
    new_content_hash TEXT COLLATE "C",
    old_bytes        BIGINT,
    new_bytes        BIGINT,
    old_location     TEXT COLLATE "C",
    new_location     TEXT COLLATE "C",
    old_error_kind   TEXT COLLATE "C",
    new_error_kind   TEXT COLLATE "C"
);
-- A page's history, and a host's (its URLs are adjacent); the newest changes first.
CREATE INDEX page_changes_url ON page_changes (url, changed_at);
CREATE INDEX page_changes_time ON page_changes (changed_at, id);

CREATE FUNCTION page_changes_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO page_changes (page_id, url, changed_at, old_changed_at,
                              old_status, new_status, old_title, new_title,
                              old_content_hash, new_content_hash, old_bytes, new_bytes,
                              old_location, new_location, old_error_kind, new_error_kind)
    VALUES (NEW.id, NEW.url, NEW.changed_at, OLD.changed_at,
            OLD.status, NEW.status, OLD.title, NEW.title,
            OLD.content_hash, NEW.content_hash, OLD.bytes, NEW.bytes,
            OLD.location, NEW.location, OLD.error_kind, NEW.error_kind);
    RETURN NULL;
END
$$;
-- Whether a visit failed for now (no answer, or one `retry::is_transient` calls so):
-- one the next visit replaces with another failure is no change worth a row.
CREATE FUNCTION page_failed_for_now(status BIGINT, error_kind TEXT) RETURNS BOOLEAN
    LANGUAGE sql IMMUTABLE AS $$
    SELECT status IS NULL
        OR coalesce(error_kind, '')
           IN ('timeout', 'connect', 'dns_temporary', 'body', 'robots_unavailable')
        OR (error_kind IS NULL
            AND (status IN (408, 429)
                 OR (status BETWEEN 500 AND 599
                     AND status NOT IN (501, 505, 506, 508, 510, 511))))
$$;
CREATE TRIGGER page_changes_kept AFTER UPDATE OF changed_at ON pages
    FOR EACH ROW WHEN (
        NEW.changed_at IS DISTINCT FROM OLD.changed_at
        AND NOT (page_failed_for_now(OLD.status, OLD.error_kind)
                 AND page_failed_for_now(NEW.status, NEW.error_kind)))
    EXECUTE FUNCTION page_changes_kept();
