-- callback_journal_body (provider, account, body_sha256) served no statement. Its one
-- reader, the support read of a payment's callbacks (store/exchange_log.py), compares
-- body_sha256 inside an OR with two other conditions, so PostgreSQL filters the account's
-- journal rows with a hashed subplan and never searches the index by digest (EXPLAIN over
-- 200,000 journal rows: a scan of callback_journal_pkey with that filter; on a small table
-- the planner may walk this index by its (provider, account) prefix instead, the same rows).
-- Every delivery still paid for it: an index entry keyed by a SHA-256, which lands on a
-- random leaf of an index as large as the journal, the costliest kind of entry to keep (the
-- same reason migration 0013 dropped the events' random event_id index).
DROP INDEX callback_journal_body;
