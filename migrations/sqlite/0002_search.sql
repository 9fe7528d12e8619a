-- What `pipecrawl query` needs to answer quickly: full-text search over titles and anchor
-- texts, in-link counts, and indexes for following links backwards and redirects.
--
-- Everything here is derived from `pages` and `links` and kept current by triggers, so
-- the writer needs no change. The triggers follow INSERT, UPDATE and DELETE; an
-- `INSERT OR REPLACE` on `pages` or `links` would delete rows without firing them (SQLite
-- skips delete triggers on REPLACE), so writers must not use it on these tables.

-- Titles, searchable. External content: the text stays in `pages`, the index holds tokens.
CREATE VIRTUAL TABLE pages_fts USING fts5 (
    title,
    content = 'pages', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER pages_fts_insert AFTER INSERT ON pages WHEN NEW.title IS NOT NULL BEGIN
    INSERT INTO pages_fts (rowid, title) VALUES (NEW.id, NEW.title);
END;

CREATE TRIGGER pages_fts_delete AFTER DELETE ON pages WHEN OLD.title IS NOT NULL BEGIN
    INSERT INTO pages_fts (pages_fts, rowid, title) VALUES ('delete', OLD.id, OLD.title);
END;

CREATE TRIGGER pages_fts_update AFTER UPDATE OF id, title ON pages BEGIN
    INSERT INTO pages_fts (pages_fts, rowid, title)
        SELECT 'delete', OLD.id, OLD.title WHERE OLD.title IS NOT NULL;
    INSERT INTO pages_fts (rowid, title) SELECT NEW.id, NEW.title WHERE NEW.title IS NOT NULL;
END;

-- One row per distinct (target, anchor text): what the web calls a page. A menu link
-- repeated on every page is one row here with a large `links`, not thousands of rows in
-- the search index, so searching anchor texts stays fast and ranks by what links say.
CREATE TABLE anchors (
    id          INTEGER PRIMARY KEY,
    target_url  TEXT NOT NULL,
    anchor_text TEXT NOT NULL,
    links       INTEGER NOT NULL,   -- link rows with this target and text
    UNIQUE (target_url, anchor_text)
);

CREATE VIRTUAL TABLE anchors_fts USING fts5 (
    anchor_text,
    content = 'anchors', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER anchors_fts_insert AFTER INSERT ON anchors BEGIN
    INSERT INTO anchors_fts (rowid, anchor_text) VALUES (NEW.id, NEW.anchor_text);
END;

CREATE TRIGGER anchors_fts_delete AFTER DELETE ON anchors BEGIN
    INSERT INTO anchors_fts (anchors_fts, rowid, anchor_text)
        VALUES ('delete', OLD.id, OLD.anchor_text);
END;

-- Per link target: how many distinct pages link to it. Counting that at query time
-- means reading every link; here `top` reads one row per target.
CREATE TABLE inlinks (
    url           TEXT PRIMARY KEY,
    linking_pages INTEGER NOT NULL,  -- distinct pages with a link here
    links         INTEGER NOT NULL   -- link rows (a page links once per anchor text)
) WITHOUT ROWID;

-- `links_target` again, wider: the same lookups by target; it also answers "does this
-- page already link there?", which keeps `inlinks.linking_pages` distinct; and it holds
-- all that `broken` and `links --to` read of a link, so they never visit the table
-- itself (several times faster for thousands of links, for ~15% more file).
DROP INDEX links_target;
CREATE INDEX links_target ON links (target_url, source_id, anchor_text, rel);

CREATE TRIGGER links_count_insert AFTER INSERT ON links BEGIN
    INSERT INTO inlinks (url, linking_pages, links) VALUES (NEW.target_url, 1, 1)
    ON CONFLICT (url) DO UPDATE SET
        links = links + 1,
        linking_pages = linking_pages + NOT EXISTS (
            SELECT 1 FROM links
            WHERE target_url = NEW.target_url AND source_id = NEW.source_id AND id <> NEW.id);
    INSERT INTO anchors (target_url, anchor_text, links)
    VALUES (NEW.target_url, NEW.anchor_text, 1)
    ON CONFLICT (target_url, anchor_text) DO UPDATE SET links = links + 1;
END;

CREATE TRIGGER links_count_delete AFTER DELETE ON links BEGIN
    UPDATE inlinks SET
        links = links - 1,
        linking_pages = linking_pages - NOT EXISTS (
            SELECT 1 FROM links WHERE target_url = OLD.target_url AND source_id = OLD.source_id)
    WHERE url = OLD.target_url;
    DELETE FROM inlinks WHERE url = OLD.target_url AND links <= 0;
    UPDATE anchors SET links = links - 1
    WHERE target_url = OLD.target_url AND anchor_text = OLD.anchor_text;
    DELETE FROM anchors
    WHERE target_url = OLD.target_url AND anchor_text = OLD.anchor_text AND links <= 0;
END;

-- Links are written once and deleted, never edited: an edit would have to be mirrored in
-- both tables above, so it is refused instead.
CREATE TRIGGER links_no_update BEFORE UPDATE OF source_id, target_url, anchor_text ON links
BEGIN
    SELECT RAISE(ABORT, 'links are not edited in place: delete the row and insert a new one');
END;

-- For `pages` filters and sorts, and so that `stats` counts from indexes instead of
-- sorting every page once per section. One entry per page: cheap beside the links'.
CREATE INDEX pages_fetched_at ON pages (fetched_at);
CREATE INDEX pages_status ON pages (status, error_kind);
CREATE INDEX pages_depth ON pages (depth);
CREATE INDEX pages_content_type ON pages (content_type);

-- Databases crawled before this migration: derive everything from what is there.
INSERT INTO inlinks (url, linking_pages, links)
    SELECT target_url, count(DISTINCT source_id), count(*) FROM links GROUP BY target_url;
INSERT INTO anchors (target_url, anchor_text, links)
    SELECT target_url, anchor_text, count(*) FROM links GROUP BY target_url, anchor_text;
INSERT INTO pages_fts (pages_fts) VALUES ('rebuild');
