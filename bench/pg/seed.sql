-- The database ceiling P: rows for pgbench's copy of the seat claim. :shows
-- shows (psql -v shows=N) of 1000 seats each, in a database the server has
-- already migrated.
INSERT INTO users VALUES ('00000000-0000-4000-8000-000000000001', 'pgbench@theatre.test',
  'pgbench', 'not-a-hash', 'USER', now(), now()) ON CONFLICT DO NOTHING;
INSERT INTO movies VALUES ('00000000-0000-4000-8000-000000000001', 'Pgbench', 'A film', 100,
  'Drama', now(), now()) ON CONFLICT DO NOTHING;
INSERT INTO theatres VALUES ('00000000-0000-4000-8000-000000000001', 'Pgbench', 'Lisbon', now())
  ON CONFLICT DO NOTHING;
-- One theatre is one room: show g runs in its own three-hour slot.
INSERT INTO shows (id, movie_id, theatre_id, starts_at, created_at, occupied_until)
SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid,
       '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000001',
       now() + interval '7 days' + g * interval '3 hours', now(),
       now() + interval '7 days' + g * interval '3 hours' + interval '115 minutes'
FROM generate_series(1, :shows) g ON CONFLICT DO NOTHING;
INSERT INTO seats
SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid,
       chr(65 + s / 100) || (s % 100 + 1), chr(65 + s / 100), s % 100 + 1, s, 1000, NULL
FROM generate_series(1, :shows) g, generate_series(0, 999) s ON CONFLICT DO NOTHING;
-- Booking history, as a database that has been selling tickets for a while
-- has: with an empty bookings table at ANALYZE time the planner believes it
-- stays empty, and the foreign-key check of every seat claim (seats.booking_id)
-- then scans it whole, more slowly with every booking. Autovacuum corrects
-- that within a minute where it runs; the harness does not depend on it (it
-- was off on the machine of the 2026-11-25 runs).
INSERT INTO bookings (id, user_id, show_id, status, seat_ids, total_cents, movie_title,
  theatre_name, starts_at, idempotency_key, cancel_reason, cancelled_at, created_at)
SELECT gen_random_uuid(), '00000000-0000-4000-8000-000000000001', NULL, 'CANCELLED', '["A1"]', 1000,
  'Pgbench', 'Pgbench', now() - interval '30 days', NULL, 'BY_USER', now() - interval '31 days',
  now() - interval '32 days'
FROM generate_series(1, :history);
-- Steady state for every table, the API-seeded ones included: planner
-- statistics, and hint bits and the visibility map set, so that neither P nor
-- the scenarios pay first-touch costs of freshly inserted rows.
VACUUM (ANALYZE);
