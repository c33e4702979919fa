-- Optimistic concurrency: every guarded write of a payment bumps its version and requires
-- the version it decided from, so a writer that read without a row lock (one statement, no
-- BEGIN/COMMIT) can never overwrite a change it did not see. A constant default makes this
-- a catalogue-only change.
ALTER TABLE payments ADD COLUMN version bigint NOT NULL DEFAULT 0;
