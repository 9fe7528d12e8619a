-- A service's revisits are leased apart from new URLs (`recrawl_interval_ms IS NOT NULL`:
-- a row queued for a revisit keeps the interval that scheduled it), and no index told
-- them from the rest of the queue: each such lease read the whole frontier (a sequential
-- scan, 0.19 s on a million queued URLs), and "when is the next one's retry due" walked
-- `frontier_due` past every new URL (0.22 s). This one serves both: the lease reads the
-- revisits due from it and sorts those alone. Partial, so the first visit of a URL
-- (queued with no interval) never writes an entry: only a revisit queued does.
CREATE INDEX frontier_revisits_due ON frontier (not_before)
    WHERE state = 'queued' AND recrawl_interval_ms IS NOT NULL;
