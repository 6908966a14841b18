-- P's booking read (bench/pg/claim.sql runs this file; before group commit it
-- was the service's own read on PostgreSQL): the show with what a booking
-- snapshots of it, joined with each requested seat that exists (one row of
-- NULLs when none does). No locks.
--   $1 show id (uuid)
--   $2 the requested seat ids, one parameter each: the code writes `$2, $3, …`
--      for as many seats as were asked for.
--
-- One parameter per seat, not one array: with an array the planner cannot know
-- how many seats its generic plan is for, finds it dearer than a plan for the
-- actual seats, and so plans the statement anew on every execution (all
-- custom plans in pg_prepared_statements), about a sixth of PostgreSQL's CPU
-- per booking. With a parameter per seat each seat count is a statement of its
-- own whose generic plan is as good as a custom one, and is kept.
SELECT s.starts_at, m.title AS movie_title, t.name AS theatre_name,
       st.seat_id, st.price_cents, st.booking_id
FROM shows s
JOIN movies m ON m.id = s.movie_id
JOIN theatres t ON t.id = s.theatre_id
LEFT JOIN seats st ON st.show_id = s.id AND st.seat_id IN ($2)
WHERE s.id = $1
