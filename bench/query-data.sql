-- A synthetic crawl for bench/query: @pages pages on 10 hosts and about @links links per
-- page, shaped like a real site where it matters to the queries. Run by bench/query in
-- the sqlite3 shell, from the repository's root, on a database pipecrawl created (so its
-- migrations and the full-text triggers on `pages` and `anchors` apply). No trigger
-- counts links (migration 0003 dropped them: the crawl's writer counts); the last step
-- counts them as a crawl does at its end, with the store's own SQL.
--
-- Pages: 1 in 250 is a 404, 1 in 1000 a 500, 1 in 500 a timeout, 1 in 500 blocked by
-- robots.txt; 1 in 100 is a 301 to the next page (some of which time out: broken chains).
-- The 220 home, about and popular pages all work, as on a real site: about 1% of the
-- links are broken.
-- Links: every page links its host's home ("Home") and about page ("About us"), three
-- of 200 popular pages, @links - 6 pages anywhere, and one URL outside the crawl. Most
-- anchor texts repeat their target's title words, as on real sites; one in six is a
-- random pair of words, skewed so that a few words are common.

PRAGMA synchronous = OFF;
PRAGMA cache_size = -262144;

CREATE TEMP TABLE words (n INTEGER PRIMARY KEY, w TEXT NOT NULL);
INSERT INTO words VALUES
    (0, 'time'), (1, 'year'), (2, 'people'), (3, 'way'), (4, 'day'), (5, 'man'),
    (6, 'thing'), (7, 'woman'), (8, 'life'), (9, 'child'), (10, 'world'), (11, 'school'),
    (12, 'state'), (13, 'family'), (14, 'student'), (15, 'group'), (16, 'country'),
    (17, 'problem'), (18, 'hand'), (19, 'part'), (20, 'place'), (21, 'case'), (22, 'week'),
    (23, 'company'), (24, 'system'), (25, 'program'), (26, 'question'), (27, 'work'),
    (28, 'government'), (29, 'number'), (30, 'night'), (31, 'point'), (32, 'home'),
    (33, 'water'), (34, 'room'), (35, 'mother'), (36, 'area'), (37, 'money'),
    (38, 'story'), (39, 'fact'), (40, 'month'), (41, 'lot'), (42, 'right'), (43, 'study'),
    (44, 'book'), (45, 'eye'), (46, 'job'), (47, 'word'), (48, 'business'), (49, 'issue'),
    (50, 'side'), (51, 'kind'), (52, 'head'), (53, 'house'), (54, 'service'),
    (55, 'friend'), (56, 'father'), (57, 'power'), (58, 'hour'), (59, 'game'),
    (60, 'line'), (61, 'end'), (62, 'member'), (63, 'law'), (64, 'car'), (65, 'city'),
    (66, 'community'), (67, 'name'), (68, 'president'), (69, 'team'), (70, 'minute'),
    (71, 'idea'), (72, 'kid'), (73, 'body'), (74, 'information'), (75, 'back'),
    (76, 'parent'), (77, 'face'), (78, 'others'), (79, 'level'), (80, 'office'),
    (81, 'door'), (82, 'health'), (83, 'person'), (84, 'art'), (85, 'war'),
    (86, 'history'), (87, 'party'), (88, 'result'), (89, 'change'), (90, 'morning'),
    (91, 'reason'), (92, 'research'), (93, 'girl'), (94, 'guy'), (95, 'moment'),
    (96, 'air'), (97, 'teacher'), (98, 'force'), (99, 'education'), (100, 'foot'),
    (101, 'boy'), (102, 'age'), (103, 'policy'), (104, 'music'), (105, 'market'),
    (106, 'sense'), (107, 'nation'), (108, 'plan'), (109, 'college'), (110, 'interest'),
    (111, 'death'), (112, 'experience'), (113, 'effect'), (114, 'use'), (115, 'class'),
    (116, 'control'), (117, 'care'), (118, 'field'), (119, 'development'), (120, 'role'),
    (121, 'effort'), (122, 'rate'), (123, 'heart'), (124, 'drug'), (125, 'show'),
    (126, 'leader'), (127, 'light'), (128, 'voice'), (129, 'wife'), (130, 'police'),
    (131, 'mind'), (132, 'price'), (133, 'report'), (134, 'decision'), (135, 'son'),
    (136, 'view'), (137, 'relationship'), (138, 'town'), (139, 'road'), (140, 'arm'),
    (141, 'difference'), (142, 'value'), (143, 'building'), (144, 'action'),
    (145, 'model'), (146, 'season'), (147, 'society'), (148, 'tax'), (149, 'director'),
    (150, 'position'), (151, 'player'), (152, 'record'), (153, 'paper'), (154, 'space'),
    (155, 'ground'), (156, 'form'), (157, 'event'), (158, 'official'), (159, 'matter'),
    (160, 'center'), (161, 'couple'), (162, 'site'), (163, 'project'), (164, 'activity'),
    (165, 'star'), (166, 'table'), (167, 'need'), (168, 'court'), (169, 'oil'),
    (170, 'situation'), (171, 'cost'), (172, 'industry'), (173, 'figure'), (174, 'street'),
    (175, 'image'), (176, 'phase'), (177, 'stock'), (178, 'energy'), (179, 'garden'),
    (180, 'river'), (181, 'mountain'), (182, 'ocean'), (183, 'forest'), (184, 'island'),
    (185, 'valley'), (186, 'desert'), (187, 'bridge'), (188, 'castle'), (189, 'tower'),
    (190, 'village'), (191, 'harbor'), (192, 'station'), (193, 'airport'), (194, 'museum'),
    (195, 'library'), (196, 'theater'), (197, 'stadium'), (198, 'hospital'),
    (199, 'church'), (200, 'temple'), (201, 'bakery'), (202, 'kitchen'), (203, 'bedroom'),
    (204, 'window'), (205, 'roof'), (206, 'wall'), (207, 'floor'), (208, 'ceiling'),
    (209, 'stair'), (210, 'chair'), (211, 'sofa'), (212, 'lamp'), (213, 'clock'),
    (214, 'mirror'), (215, 'carpet'), (216, 'curtain'), (217, 'pillow'), (218, 'blanket'),
    (219, 'towel'), (220, 'soap'), (221, 'brush'), (222, 'comb'), (223, 'razor'),
    (224, 'needle'), (225, 'thread'), (226, 'button'), (227, 'pocket'), (228, 'collar'),
    (229, 'sleeve'), (230, 'zipper');

BEGIN;
WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < @pages)
INSERT INTO frontier (id, url, host, depth, priority, state)
SELECT i, 'https://site' || ((i - 1) % 10) || '.test/p/' || i, 'site' || ((i - 1) % 10) || '.test',
       CASE WHEN i <= 10 THEN 0 ELSE 1 + i % 6 END, 0,
       CASE WHEN i > 220 AND i % 500 IN (3, 103) THEN 'failed' ELSE 'done' END
FROM seq;
INSERT INTO hosts (host) SELECT DISTINCT host FROM frontier;

INSERT INTO pages (id, url, final_url, status, content_type, title, depth, fetched_at,
                   changed_at, elapsed_ms, bytes, content_hash, location, error_kind, error)
SELECT id, url, coalesce(location, url), status, content_type,
       CASE WHEN status = 200 AND content_type LIKE 'text/html%'
            THEN 'Page ' || id || ' ' || (SELECT w FROM words WHERE n = (id * 7) % 231) || ' '
                 || (SELECT w FROM words WHERE n = (id * 11 + 3) % 231) END,
       depth, fetched_at, fetched_at, 20 + id % 300, 5000 + id % 40000, printf('%032x', id),
       location, error_kind,
       CASE error_kind WHEN 'timeout' THEN 'operation timed out'
                       WHEN 'robots' THEN 'disallowed by robots.txt' END
FROM (
    SELECT id, url, depth,
           strftime('%Y-%m-%dT%H:%M:%fZ', julianday('2025-01-01T00:00:00') + id * 0.05 / 86400)
               AS fetched_at,
           CASE WHEN id <= 220 THEN 200
                WHEN id % 500 IN (3, 103) THEN NULL WHEN id % 250 = 0 THEN 404
                WHEN id % 1000 = 1 THEN 500 WHEN id % 100 = 2 THEN 301 ELSE 200 END AS status,
           CASE WHEN id <= 220 THEN 'text/html; charset=utf-8'
                WHEN id % 500 IN (3, 103) THEN NULL WHEN id % 50 = 7 THEN 'application/pdf'
                WHEN id % 50 = 9 THEN 'image/png' ELSE 'text/html; charset=utf-8' END
               AS content_type,
           CASE WHEN id > 220 AND id % 100 = 2
                THEN 'https://site' || (id % 10) || '.test/p/' || (id + 1) END AS location,
           CASE WHEN id <= 220 THEN NULL
                WHEN id % 500 = 3 THEN 'timeout' WHEN id % 500 = 103 THEN 'robots' END
               AS error_kind
    FROM frontier
);

-- Links only on HTML pages that answered.
WITH RECURSIVE seq (x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM seq WHERE x < @pages * @links - 1),
     slot (s, k) AS (SELECT x / @links + 1, x % @links FROM seq),
     target (s, k, t) AS (
         SELECT s, k, CASE WHEN k = 0 THEN (s - 1) % 10 + 1
                           WHEN k = 1 THEN 11 + (s - 1) % 10
                           WHEN k < 5 THEN 21 + (s * k) % 200
                           ELSE 1 + (s * 7919 + k * 104729) % @pages END
         FROM slot)
INSERT INTO links (source_id, target_url, anchor_text, rel)
SELECT s,
       CASE WHEN k = @links - 1 THEN 'https://ext' || (s % 500) || '.example/x/' || (s % 37)
            ELSE 'https://site' || ((t - 1) % 10) || '.test/p/' || t END,
       CASE WHEN k = 0 THEN 'Home' WHEN k = 1 THEN 'About us'
            WHEN (s * k) % 6 < 4
                THEN (SELECT w FROM words WHERE n = (t * 7) % 231) || ' '
                     || (SELECT w FROM words WHERE n = (t * 11 + 3) % 231)
            WHEN (s * k) % 6 = 4 THEN 'Page ' || t
            ELSE (SELECT w FROM words WHERE n = ((s * 17 + k * 7) % 231) * ((s * k + 3) % 231) / 231)
                 || ' ' || (SELECT w FROM words WHERE n = (s + k * 29) % 231) END,
       CASE WHEN k = @links - 1 THEN 'nofollow' END
FROM target JOIN pages p ON p.id = s
WHERE p.title IS NOT NULL;

-- `inlinks` and `anchors`: `top`, `search` (by anchor text) and `broken --unchecked` read
-- them, and bench/query picks the most linked page for `links --to` from `inlinks`.
.read src/store/rebuild_link_counts.sql
COMMIT;
