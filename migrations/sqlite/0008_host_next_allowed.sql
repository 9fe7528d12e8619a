-- When a host may next be sent a request, left by a run that stopped while the host's
-- delay (or a Crawl-delay, or a Retry-After) still ran: the next run waits for it.
-- unix ms; NULL or past: at once. PostgreSQL's `hosts` has had it from the start.
ALTER TABLE hosts ADD COLUMN next_allowed_at INTEGER;
