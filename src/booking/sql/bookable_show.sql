-- The booking read on PostgreSQL (src/booking/repo/claim.rs; bench/pg/claim.sql
-- runs this file): the show with what a booking snapshots of it, joined with
-- each requested seat that exists (one row of NULLs when none does). No locks.
--   $1 show id (uuid)   $2 the requested seat ids (text[])
SELECT s.starts_at, m.title AS movie_title, t.name AS theatre_name,
       st.seat_id, st.price_cents, st.booking_id
FROM shows s
JOIN movies m ON m.id = s.movie_id
JOIN theatres t ON t.id = s.theatre_id
LEFT JOIN seats st ON st.show_id = s.id AND st.seat_id = ANY ($2)
WHERE s.id = $1
