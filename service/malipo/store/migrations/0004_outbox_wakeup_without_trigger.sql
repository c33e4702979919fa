-- Writers no longer NOTIFY from a trigger. A transaction that NOTIFYs holds PostgreSQL's
-- global notify lock from pre-commit until its commit record is flushed, so every
-- event-writing commit waited for the previous one's fsync: commits of all payments ran one
-- at a time (no group commit). The relay is now woken in-process after a commit, by a
-- coalesced NOTIFY from other processes (outside their transactions), and by its poll.
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
DROP FUNCTION IF EXISTS malipo_outbox_notify();
