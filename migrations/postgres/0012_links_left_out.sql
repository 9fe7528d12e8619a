-- A page with more distinct (target, anchor text) links than traps.max_links_per_page
-- keeps the first ones as rows; this says how many it left out, so that a big index page
-- is not taken for whole. 0 when it kept them all; NULL when the page was not parsed, or
-- was stored before this column.
ALTER TABLE pages ADD COLUMN links_left_out BIGINT;
