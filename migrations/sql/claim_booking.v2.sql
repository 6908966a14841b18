-- The booking's writes as one statement (see src/booking/repo/claim.rs): the
-- booking insert, the seat claim, the outbox event. Since m20261201_000005 the
-- booking keeps its seats as a JSON array (`to_jsonb(p_seats)`); the rest is
-- as sql/claim_booking.sql (m20261201_000003) had it. Raises SQLSTATE TH409 with
-- the seat ids it could not claim, comma-separated, undoing all of it.
--
-- The insert comes first, so its foreign-key check takes the key-share lock on
-- the show before any seat row is locked (the order DeleteShow takes them in,
-- so the two never deadlock), and a concurrent retry with the same idempotency
-- key waits on the unique index instead of finding its own seats locked.
--
-- Both sides of the claim name the requested seats (`seat_id = ANY (p_seats)`),
-- so the primary key bounds each to the seats asked for whatever the planner
-- believes about the show. With the outer UPDATE filtered on the show alone,
-- a show created after `seats` was analyzed (no statistics, so "a few rows")
-- planned as a semi join that probed the subquery once per seat of the show:
-- 2,000 loops and about a second for a one-seat booking.
CREATE OR REPLACE FUNCTION claim_booking(
    p_booking uuid, p_user uuid, p_show uuid, p_seats text[], p_total_cents bigint,
    p_movie_title text, p_theatre_name text, p_starts_at timestamptz, p_idempotency_key text,
    p_now timestamptz, p_event_id uuid, p_aggregate_type text, p_aggregate_id text,
    p_event_type text, p_payload bytea
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    claimed text[];
BEGIN
    INSERT INTO bookings (id, user_id, show_id, status, seat_ids, total_cents, movie_title,
        theatre_name, starts_at, idempotency_key, created_at)
    VALUES (p_booking, p_user, p_show, 'CONFIRMED', to_jsonb(p_seats),
        p_total_cents, p_movie_title, p_theatre_name, p_starts_at, p_idempotency_key, p_now);

    WITH got AS (
        UPDATE seats SET booking_id = p_booking
        WHERE show_id = p_show AND seat_id = ANY (p_seats) AND booking_id IS NULL
          AND seat_id IN (
            SELECT seat_id FROM seats WHERE show_id = p_show AND seat_id = ANY (p_seats)
            FOR UPDATE SKIP LOCKED)
        RETURNING seat_id)
    SELECT coalesce(array_agg(seat_id), '{}') INTO claimed FROM got;

    IF cardinality(claimed) < cardinality(p_seats) THEN
        RAISE EXCEPTION USING ERRCODE = 'TH409', MESSAGE = array_to_string(
            ARRAY(SELECT s FROM unnest(p_seats) s WHERE s <> ALL (claimed) ORDER BY s), ',');
    END IF;

    INSERT INTO outbox_events (id, aggregate_type, aggregate_id, event_type, payload, created_at)
    VALUES (p_event_id, p_aggregate_type, p_aggregate_id, p_event_type, p_payload, p_now);
END
$$
