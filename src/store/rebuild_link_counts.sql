-- `inlinks` and `anchors` counted afresh from `links` (see src/store/link_counts.rs), in
-- the transaction of whatever runs it: the store, at the end of a crawl that kept no
-- counts or when a crash left them behind, and bench/query-data.sql, whose links are
-- inserted without counts. The same SQL for SQLite and PostgreSQL.
DELETE FROM inlinks;
INSERT INTO inlinks (url, linking_pages, links)
SELECT target_url, count(DISTINCT source_id), count(*) FROM links GROUP BY target_url;
DELETE FROM anchors;
INSERT INTO anchors (target_url, anchor_text, links)
SELECT target_url, anchor_text, count(*) FROM links GROUP BY target_url, anchor_text;
UPDATE writer_state SET value = 0 WHERE key = 'link_counts_behind';
