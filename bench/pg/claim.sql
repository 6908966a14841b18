-- One booking of two adjacent seats (as the book scenario makes), statement for
-- statement what CreateBooking runs on PostgreSQL (src/booking/repo/claim.rs):
-- the joined show-and-seats read, then one call of claim_booking
-- (migrations/sql/claim_booking.sql: the booking insert, the seat claim as one
-- UPDATE of the requested seats a SKIP LOCKED subquery could lock, the outbox
-- insert). Run with
-- `-M prepared`: the service's driver prepares every statement too (the simple
-- protocol re-plans each one and halved the ceiling: 1,213 against 2,424 tps).
--
-- Like a book VU, each client books its own shows' seats in order, two at a
-- time, so no booking finds its seats sold (claim_booking would raise, and
-- pgbench would stop the client): -D i=N starts a run's per-client counter,
-- each client takes shows client_id + 1, client_id + 11, ... (10 clients), 500
-- bookings per show. bench/run runs this on a copy of the service's database
-- that no relay reads, so that P is the cost of the booking's statements alone.
\set i :i + 1
\set show 1 + :client_id + 10 * (:i / 500)
\set a 2 * (:i % 500)
\set b :a + 1
SELECT s.starts_at, m.title AS movie_title, t.name AS theatre_name, st.seat_id, st.price_cents,
  st.booking_id FROM shows s
  JOIN movies m ON m.id = s.movie_id JOIN theatres t ON t.id = s.theatre_id
  LEFT JOIN seats st ON st.show_id = s.id
    AND st.seat_id IN (chr(65 + :a / 100) || (:a % 100 + 1), chr(65 + :b / 100) || (:b % 100 + 1))
  WHERE s.id = ('00000000-0000-4000-8000-' || lpad(:show::text, 12, '0'))::uuid;
SELECT claim_booking(gen_random_uuid(), '00000000-0000-4000-8000-000000000001',
  ('00000000-0000-4000-8000-' || lpad(:show::text, 12, '0'))::uuid,
  ARRAY[chr(65 + :a / 100) || (:a % 100 + 1), chr(65 + :b / 100) || (:b % 100 + 1)], 2000,
  'Pgbench', 'Pgbench', now() + interval '7 days', 'k' || :client_id || '-' || :i, now(),
  gen_random_uuid(), 'booking', 'pgbench', 'theatre.v1.BookingConfirmed', '\x0a24'::bytea);
