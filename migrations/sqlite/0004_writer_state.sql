-- What the writer must know about its own unfinished work when a database is opened.
-- `link_counts_behind` = 1: `inlinks`/`anchors` lag `links` by changes the writer held in
-- memory, and the process stopped before applying them; the next open rebuilds the
-- counts from `links` (see src/store/link_counts.rs).
CREATE TABLE writer_state (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO writer_state (key, value) VALUES ('link_counts_behind', 0);
