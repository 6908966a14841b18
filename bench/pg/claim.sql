-- One booking of two adjacent seats (as the book scenario makes), statement for
-- statement what CreateBooking runs on PostgreSQL (src/booking/repo.rs): the
-- joined show-and-seats read, then the write transaction: booking insert, the
-- seat claim (one UPDATE of the seats a SKIP LOCKED subquery could lock), outbox
-- insert. Run with `-M prepared`: the service's driver prepares every statement
-- too (the simple protocol re-plans each one and halves the ceiling: 1,213
-- against 2,424 tps). `-D shows=N` must match the shows bench/pg/seed.sql made.
-- pgbench has no per-client counter, so pairs are drawn at random: a pair
-- already sold is claimed again for nothing (0 rows updated), which the
-- service would refuse after its read; bench/run reports how often.
\set show random(1, :shows)
\set a 2 * random(0, 499)
\set b :a + 1
\set nonce random(1, 1000000000000)
SELECT s.starts_at, m.title AS movie_title, t.name AS theatre_name, st.seat_id, st.price_cents,
  st.booking_id FROM shows s
  JOIN movies m ON m.id = s.movie_id JOIN theatres t ON t.id = s.theatre_id
  LEFT JOIN seats st ON st.show_id = s.id
    AND st.seat_id IN (chr(65 + :a / 100) || (:a % 100 + 1), chr(65 + :b / 100) || (:b % 100 + 1))
  WHERE s.id = ('00000000-0000-4000-8000-' || lpad(:show::text, 12, '0'))::uuid;
BEGIN;
INSERT INTO bookings (id, user_id, show_id, status, seat_ids, total_cents, movie_title,
  theatre_name, starts_at, idempotency_key, cancel_reason, cancelled_at, created_at)
  VALUES (gen_random_uuid(), '00000000-0000-4000-8000-000000000001',
  ('00000000-0000-4000-8000-' || lpad(:show::text, 12, '0'))::uuid, 'CONFIRMED',
  chr(65 + :a / 100) || (:a % 100 + 1) || ',' || chr(65 + :b / 100) || (:b % 100 + 1), 2000,
  'Pgbench', 'Pgbench',
  now() + interval '7 days', 'k' || :client_id || '-' || :nonce, NULL, NULL, now())
  RETURNING id AS booking \gset
UPDATE seats SET booking_id = :booking::uuid
  WHERE show_id = ('00000000-0000-4000-8000-' || lpad(:show::text, 12, '0'))::uuid
  AND seat_id IN (SELECT seat_id FROM seats
    WHERE show_id = ('00000000-0000-4000-8000-' || lpad(:show::text, 12, '0'))::uuid
    AND seat_id IN (chr(65 + :a / 100) || (:a % 100 + 1), chr(65 + :b / 100) || (:b % 100 + 1))
    FOR UPDATE SKIP LOCKED)
  AND booking_id IS NULL
  RETURNING show_id, seat_id, row_label, number, position, price_cents, booking_id;
-- Written as already published, so that the running server's relay leaves
-- pgbench's rows alone and P stays the cost of the transaction alone.
INSERT INTO outbox_events (id, aggregate_type, aggregate_id, event_type, payload, created_at,
  published_at)
  VALUES (gen_random_uuid(), 'booking', 'pgbench', 'theatre.v1.BookingConfirmed',
  '\x0a24'::bytea, now(), now());
COMMIT;
