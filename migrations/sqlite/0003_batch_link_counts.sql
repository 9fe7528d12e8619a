-- `inlinks` and `anchors` are now kept by the writer, once per batch of pages, instead of
-- by a trigger per link row: the triggers ran three statements for each of the ~45 links
-- of every page and cost about a fifth of the crawl's throughput. A page's links are
-- always written (and replaced) in one batch, so the writer knows every change exactly.
-- The tables, their meaning and the search triggers on `pages` and `anchors` stay.
DROP TRIGGER links_count_insert;
DROP TRIGGER links_count_delete;
