-- A batch of bookings as one statement and one transaction (group commit; see
-- src/booking/batch.rs). Parameters are parallel arrays, one element per
-- booking; the seats of all bookings are flattened into p_seats, booking i's
-- being the next p_seat_counts[i] of them. Returns one row per booking, in
-- order: (n, outcome, seats).
--
--   OK         booked: the booking row, its seats and its outbox event written
--   SOLD       seats: those of the requested seats that a committed booking (or
--              an earlier one of this batch) has (sorted); nothing was written
--   TAKEN      seats: those of the requested seats that an in-flight claim
--              holds (sorted; it may yet fail); nothing of this booking is kept
--   KEY_USED   the user's idempotency key is on another booking already
--   NOT_FOUND  the show does not exist
--   STARTED    the show has started
--   STALE      the caller priced the booking from a snapshot of the show that
--              no longer matches (start, movie title, theatre name, the seats'
--              existence or total price): it reloads and asks again
--
-- Each booking is all-or-nothing and isolated from the others in the batch
-- without a subtransaction per booking (an EXCEPTION block would be one, and
-- more than 64 per transaction overflow PostgreSQL's subtransaction cache): a
-- booking is checked before it writes, and one whose claim comes up short
-- undoes its own two writes. A later booking in the batch sees an earlier one's
-- seats as sold, as it would in a later transaction.
--
-- As in claim_booking (sql/claim_booking.v2.sql): a loser never waits on a
-- winner (the claim skips locked seats), the booking row is written before the
-- seats are claimed (a concurrent retry with the same key waits on the unique
-- index, then sees KEY_USED), and both sides of the claim name the requested
-- seats so that its plan is bounded by them. The show is read FOR KEY SHARE,
-- the lock the booking insert's foreign-key check takes anyway, so a
-- concurrent delete of the show orders against the batch instead of failing
-- it. The caller sorts a batch by show, so two batches take those locks in
-- one order.
--
-- Generic plans only (`SET plan_cache_mode`): with the seats as an array the
-- planner would plan three of the statements anew for every booking (it cannot
-- tell how many seats a generic plan is for, so it prices the generic plan
-- above a custom one), which was 40% of PostgreSQL's CPU per booking (pgbench,
-- batches of 10: 0.454 ms per booking planned each time, 0.264 ms generic).
-- The generic plans are bounded by the requested seats: both sides of the
-- claim name them, and tests/it/booking.rs checks the plans under exactly this
-- setting on a show the statistics do not know.
--
-- One statement per step and booking, in a loop, rather than one set-based
-- statement for the batch: measured the same way, a set-based version (one
-- statement of CTEs reading, inserting and claiming for the whole batch, then
-- the short claims deleted and the outbox written) cost the same per booking
-- in batches of 10 (0.277 ms) and 2.5 times as much for a booking alone
-- (1.567 ms against 0.621 ms), and most batches are small.
CREATE OR REPLACE FUNCTION claim_bookings(
    p_bookings uuid[], p_users uuid[], p_shows uuid[], p_seat_counts int[], p_seats text[],
    p_totals bigint[], p_movie_titles text[], p_theatre_names text[], p_starts_at timestamptz[],
    p_idempotency_keys text[], p_event_ids uuid[], p_aggregate_types text[], p_aggregate_ids text[],
    p_event_types text[], p_payloads bytea[], p_created_at timestamptz[]
) RETURNS TABLE (n int, outcome text, seats text[]) LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    next_seat int := 1;
    wanted text[];
    shown record;
    asked record;
    claimed text[];
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_bookings), 0) LOOP
        n := i;
        seats := NULL;
        wanted := p_seats[next_seat : next_seat + p_seat_counts[i] - 1];
        next_seat := next_seat + p_seat_counts[i];

        SELECT s.starts_at, m.title, t.name INTO shown
        FROM shows s JOIN movies m ON m.id = s.movie_id JOIN theatres t ON t.id = s.theatre_id
        WHERE s.id = p_shows[i]
        FOR KEY SHARE OF s;
        IF NOT FOUND THEN
            outcome := 'NOT_FOUND'; RETURN NEXT; CONTINUE;
        END IF;
        IF shown.starts_at <= p_created_at[i] THEN
            outcome := 'STARTED'; RETURN NEXT; CONTINUE;
        END IF;

        SELECT count(*) AS found, coalesce(sum(price_cents), 0) AS total,
               array_agg(seat_id ORDER BY seat_id) FILTER (WHERE booking_id IS NOT NULL) AS sold
        INTO asked
        FROM seats WHERE show_id = p_shows[i] AND seat_id = ANY (wanted);
        IF asked.found < cardinality(wanted) OR asked.total <> p_totals[i]
           OR shown.starts_at <> p_starts_at[i] OR shown.title <> p_movie_titles[i]
           OR shown.name <> p_theatre_names[i] THEN
            outcome := 'STALE'; RETURN NEXT; CONTINUE;
        END IF;
        IF asked.sold IS NOT NULL THEN
            outcome := 'SOLD'; seats := asked.sold; RETURN NEXT; CONTINUE;
        END IF;

        INSERT INTO bookings (id, user_id, show_id, status, seat_ids, total_cents, movie_title,
            theatre_name, starts_at, idempotency_key, created_at)
        VALUES (p_bookings[i], p_users[i], p_shows[i], 'CONFIRMED', to_jsonb(wanted),
            p_totals[i], p_movie_titles[i], p_theatre_names[i], p_starts_at[i],
            nullif(p_idempotency_keys[i], ''), p_created_at[i])
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            outcome := 'KEY_USED'; RETURN NEXT; CONTINUE;
        END IF;

        WITH got AS (
            UPDATE seats SET booking_id = p_bookings[i]
            WHERE show_id = p_shows[i] AND seat_id = ANY (wanted) AND booking_id IS NULL
              AND seat_id IN (
                SELECT seat_id FROM seats WHERE show_id = p_shows[i] AND seat_id = ANY (wanted)
                FOR UPDATE SKIP LOCKED)
            RETURNING seat_id)
        SELECT coalesce(array_agg(seat_id), '{}') INTO claimed FROM got;
        IF cardinality(claimed) < cardinality(wanted) THEN
            UPDATE seats SET booking_id = NULL
            WHERE show_id = p_shows[i] AND seat_id = ANY (claimed);
            DELETE FROM bookings WHERE id = p_bookings[i];
            outcome := 'TAKEN';
            seats := ARRAY(SELECT s FROM unnest(wanted) s WHERE s <> ALL (claimed) ORDER BY s);
            RETURN NEXT; CONTINUE;
        END IF;

        INSERT INTO outbox_events (id, aggregate_type, aggregate_id, event_type, payload, created_at)
        VALUES (p_event_ids[i], p_aggregate_types[i], p_aggregate_ids[i], p_event_types[i],
            p_payloads[i], p_created_at[i]);
        outcome := 'OK'; RETURN NEXT;
    END LOOP;
END
$$
