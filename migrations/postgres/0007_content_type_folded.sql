-- `pipecrawl query pages --content-type image/` matches types in any case of ASCII
-- letters (`Image/PNG` too), as a range of this index:
-- `lower(content_type) >= 'image/' AND lower(content_type) < 'image0'`, in byte order
-- as the column's "C" collation compares (lower() under it changes ASCII letters only,
-- as ILIKE there and SQLite's lower() do).
CREATE INDEX pages_content_type_folded ON pages (lower(content_type));
