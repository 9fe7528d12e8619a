-- A node's lease of new URLs takes the best queued rows of the hosts it owns, priority
-- first across its hosts. `frontier_queued` orders rows within a host only, so each
-- lease read and sorted every queued row of the node's hosts, to keep 5,000 of them:
-- on a million queued URLs (a lone node owns every host) 1.3 s a lease and a 37 MB sort
-- spilled to disk, growing with the frontier. Read in this order, the lease stops once
-- it has its rows; a node whose hosts hold only the lowest priorities reads past the
-- other nodes' rows first (at worst the queued rows once, as the sort did).
-- Partial, as `frontier_queued` is: a URL leaves it when leased. Each queued URL
-- writes one entry more (inserting 200,000 new URLs: 13% more WAL).
CREATE INDEX frontier_by_priority ON frontier (priority DESC, id) WHERE state = 'queued';
