-- Every change a visit found in a stored page, as it stood before and after: `pages`
-- keeps only the latest answer, and a user watching sites asks what a page said last
-- week. Written by the trigger below in the transaction that stores the page, so it is
-- as crash-safe as the page; nothing is written for a page's first visit, an unchanged
-- revisit (a 304 included) or a revisit that failed for now, which leaves a page stored
-- with an answer as it was, and replaces one whose last visit failed too (a 503, then
-- no answer): a failure for a failure is no news of the page. The change rule is the
-- store's (`changed_at`: status, redirect target, body hash, or validators and size
-- where no body was hashed); a failure is no answer, or one `retry::is_transient` calls
-- so (the condition below says it of OLD and NEW). Rows stay until a user deletes them.
CREATE TABLE page_changes (
    id               INTEGER PRIMARY KEY,
    page_id          INTEGER NOT NULL,  -- pages.id
    url              TEXT NOT NULL,
    changed_at       TEXT NOT NULL,     -- the visit that saw the new answer
    old_changed_at   TEXT NOT NULL,     -- the visit that first saw the old one
    old_status       INTEGER,
    new_status       INTEGER,
    old_title        TEXT,
    new_title        TEXT,
    old_content_hash TEXT,
    new_content_hash TEXT,
    old_bytes        INTEGER,
    new_bytes        INTEGER,
    old_location     TEXT,
    new_location     TEXT,
    old_error_kind   TEXT,
    new_error_kind   TEXT
);
-- A page's history, and a host's (its URLs are adjacent); the newest changes first.
CREATE INDEX page_changes_url ON page_changes (url, changed_at);
CREATE INDEX page_changes_time ON page_changes (changed_at, id);

CREATE TRIGGER page_changes_kept AFTER UPDATE OF changed_at ON pages
WHEN NEW.changed_at IS NOT OLD.changed_at
 AND NOT ((OLD.status IS NULL
           OR coalesce(OLD.error_kind, '')
              IN ('timeout', 'connect', 'dns_temporary', 'body', 'robots_unavailable')
           OR (OLD.error_kind IS NULL
               AND (OLD.status IN (408, 429)
                    OR (OLD.status BETWEEN 500 AND 599
                        AND OLD.status NOT IN (501, 505, 506, 508, 510, 511)))))
          AND (NEW.status IS NULL
               OR coalesce(NEW.error_kind, '')
                  IN ('timeout', 'connect', 'dns_temporary', 'body', 'robots_unavailable')
               OR (NEW.error_kind IS NULL
                   AND (NEW.status IN (408, 429)
                        OR (NEW.status BETWEEN 500 AND 599
                            AND NEW.status NOT IN (501, 505, 506, 508, 510, 511))))))
BEGIN
    INSERT INTO page_changes (page_id, url, changed_at, old_changed_at,
                              old_status, new_status, old_title, new_title,
                              old_content_hash, new_content_hash, old_bytes, new_bytes,
                              old_location, new_location, old_error_kind, new_error_kind)
    VALUES (NEW.id, NEW.url, NEW.changed_at, OLD.changed_at,
            OLD.status, NEW.status, OLD.title, NEW.title,
            OLD.content_hash, NEW.content_hash, OLD.bytes, NEW.bytes,
            OLD.location, NEW.location, OLD.error_kind, NEW.error_kind);
END;
