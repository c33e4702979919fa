-- Operators settle refunds too (ResolveRefund): their resolutions join the payments' in the
-- same journal, naming the refund; '' for a resolution of the payment itself (as
-- events.refund_id). A constant default makes this a catalogue-only change.
ALTER TABLE payment_resolutions ADD COLUMN refund_id text NOT NULL DEFAULT '';
