-- The provider's own words that caused each event (ProviderUpdate.raw, masked and capped at
-- 16 KiB of JSON by the writer); '{}' for events Malipo caused itself. A constant default
-- makes this a catalogue-only change: existing rows are not rewritten.
ALTER TABLE events ADD COLUMN provider_payload jsonb NOT NULL DEFAULT '{}';
