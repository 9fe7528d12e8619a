-- `pipecrawl query pages --content-type image/` matches types in any case of ASCII
-- letters (`Image/PNG` too). `content_type LIKE 'image/%'` does, but no index serves it
-- (SQLite's LIKE ignores case; `pages_content_type` is in byte order), so every page was
-- read to find a few thousand. The question asks for a range of this index instead:
-- `lower(content_type) >= 'image/' AND lower(content_type) < 'image0'`.
CREATE INDEX pages_content_type_folded ON pages (lower(content_type));
