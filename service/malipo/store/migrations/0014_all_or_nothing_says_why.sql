-- malipo_all_or_nothing (migration 0011) with the reason it refuses: a journaled callback
-- write whose event was claimed before (a re-sent delivery) raises MA002, one whose guard did
-- not hold (the row moved since it was read) MA001. The caller of a re-sent delivery then
-- journals it as a duplicate straight away, rather than reading the row to decide again what
-- cannot be written anyway. Both roll the whole statement back, as before.
CREATE FUNCTION malipo_all_or_nothing(ok boolean, claimed boolean) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT claimed THEN
        RAISE EXCEPTION 'the event was claimed before: nothing of this statement is kept'
            USING ERRCODE = 'MA002';
    END IF;
    RETURN malipo_all_or_nothing(ok);
END
$$;
