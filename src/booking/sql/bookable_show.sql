-- The booking read on PostgreSQL (src/booking/repo/claim.rs; bench/pg/claim.sql
-- runs this file): the show with what a booking snapshots of it, and one row
-- per requested seat, with that seat's price and booking when it exists (NULLs
-- when it does not). No locks.
--   $1 show id (uuid)   $2 the requested seat ids (text[])
--
-- Each requested seat is one probe of the primary key (show_id, seat_id): the
-- LATERAL subquery with its LIMIT is planned per seat and is not flattened
-- into a join. Joined as `seat_id = ANY ($2)` instead, the generic plan of
-- the prepared statement (which knows neither the array's length nor how many
-- seats a new show has) read every seat of the show with a bitmap scan and
-- filtered them: about a thousand rows per booking.
SELECT s.starts_at, m.title AS movie_title, t.name AS theatre_name,
       st.seat_id, st.price_cents, st.booking_id
FROM shows s
JOIN movies m ON m.id = s.movie_id
JOIN theatres t ON t.id = s.theatre_id
CROSS JOIN LATERAL unnest($2::text[]) AS wanted(seat_id)
LEFT JOIN LATERAL (
    SELECT seat_id, price_cents, booking_id FROM seats
    WHERE show_id = s.id AND seat_id = wanted.seat_id
    LIMIT 1
) st ON true
WHERE s.id = $1
