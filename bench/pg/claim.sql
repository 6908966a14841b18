-- One booking of two adjacent seats (as the book scenario makes): the two
-- statements CreateBooking runs on PostgreSQL, included from the files the
-- service runs (bench/pg/expand.py turns this template into the pgbench script):
-- the joined show-and-seats read (src/booking/sql/bookable_show.sql), then one
-- call of claim_booking (src/booking/sql/claim_booking_call.sql; the function,
-- migrations/sql/claim_booking.sql, inserts the booking, claims the seats as one
-- UPDATE of the requested seats a SKIP LOCKED subquery could lock, and inserts
-- the outbox event). Run with
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
--@ include src/booking/sql/bookable_show.sql
--@ $1 = ('00000000-0000-4000-8000-' || lpad(:show::text, 12, '0'))::uuid
--@ $2 = chr(65 + :a / 100) || (:a % 100 + 1), chr(65 + :b / 100) || (:b % 100 + 1)
--@ include src/booking/sql/claim_booking_call.sql
--@ $1 = gen_random_uuid()
--@ $2 = '00000000-0000-4000-8000-000000000001'::uuid
--@ $3 = ('00000000-0000-4000-8000-' || lpad(:show::text, 12, '0'))::uuid
--@ $4 = ARRAY[chr(65 + :a / 100) || (:a % 100 + 1), chr(65 + :b / 100) || (:b % 100 + 1)]
--@ $5 = 2000
--@ $6 = 'Pgbench'
--@ $7 = 'Pgbench'
--@ $8 = now() + interval '7 days'
--@ $9 = 'k' || :client_id || '-' || :i
--@ $10 = now()
--@ $11 = gen_random_uuid()
--@ $12 = 'booking'
--@ $13 = 'pgbench'
--@ $14 = 'theatre.v1.BookingConfirmed'
--@ $15 = '\x0a24'::bytea
