-- A URL found nearer the seeds while its frontier row is leased: the node that found it
-- does not lock the row to move it up (the row is its owner's to finish, and the lock
-- deadlocked with the owner's page batch), but notes the depth here. The owner takes
-- the notes of its batch's rows when it stores their pages, in the same transaction, and
-- stores each page at the lowest depth noted. A note that comes too late (the page was
-- stored meanwhile) waits for the URL's next visit.
--
-- No unique key, and no reference to `frontier`: adding a note then never waits on
-- another node's transaction.
CREATE TABLE frontier_nearer (
    id              BIGINT NOT NULL,  -- the leased row's frontier id
    depth           BIGINT NOT NULL,
    priority        BIGINT NOT NULL,
    discovered_from BIGINT
);
CREATE INDEX frontier_nearer_id ON frontier_nearer (id);
