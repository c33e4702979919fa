-- A statement whose data-modifying parts must all happen or none: a callback's journal row,
-- the claim of its event and the guarded payment write it decided, written with their final
-- outcome in one commit (store/payments.py write_if_unchanged with a journaled delivery).
-- The write is guarded (version, status, reference); when the guard or the claim does not
-- hold, the statement calls this with false and the error rolls everything back, so no
-- journal row ever says APPLIED for a write that did not happen. The caller then takes the
-- path that journals first. The SQLSTATE is ours (class MA), so nothing else is mistaken
-- for it.
CREATE FUNCTION malipo_all_or_nothing(ok boolean) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT ok THEN
        RAISE EXCEPTION 'the guarded write did not happen: nothing of this statement is kept'
            USING ERRCODE = 'MA001';
    END IF;
    RETURN true;
END
$$;
