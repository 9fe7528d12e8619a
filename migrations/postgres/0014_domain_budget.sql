-- The host names the crawl has admitted, and how many of them each registrable domain
-- has: what `traps.max_hosts_per_domain` is checked against, by every node alike. Kept
-- by the writers in the transaction that adds a new host's first URLs, as `host_budget`
-- is, so a URL of a host known already costs nothing. The seeds' hosts and the names
-- `scope.hosts` writes without a wildcard are admitted uncounted; so are the hosts of a
-- crawl made before.
CREATE TABLE known_hosts (
    host TEXT PRIMARY KEY
);
CREATE TABLE domain_budget (
    domain TEXT PRIMARY KEY,
    hosts BIGINT NOT NULL
);
INSERT INTO known_hosts (host) SELECT host FROM host_budget;
