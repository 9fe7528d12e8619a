-- A service leases its revisits longest overdue first (`recrawl_at`, when each fell
-- due), not by priority: by priority, revisits due faster than the crawl could make them
-- went to the pages nearest the seeds, due again as soon as they were fetched, and the
-- others were never revisited. The revisits' index is read in that order, so a lease
-- still stops at its limit rather than sorting every revisit queued.
DROP INDEX frontier_revisits;
CREATE INDEX frontier_revisits ON frontier (recrawl_at, priority DESC, id)
    WHERE state = 'queued' AND recrawl_interval_ms IS NOT NULL;
