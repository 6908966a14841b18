-- The database ceiling P: rows for pgbench's copy of the seat claim. :shows
-- shows (psql -v shows=N) of 1000 seats each, in a database the server has
-- already migrated.
INSERT INTO users VALUES ('00000000-0000-4000-8000-000000000001', 'pgbench@theatre.test',
  'pgbench', 'not-a-hash', 'USER', now(), now()) ON CONFLICT DO NOTHING;
INSERT INTO movies VALUES ('00000000-0000-4000-8000-000000000001', 'Pgbench', 'A film', 100,
  'Drama', now(), now()) ON CONFLICT DO NOTHING;
INSERT INTO theatres VALUES ('00000000-0000-4000-8000-000000000001', 'Pgbench', 'Lisbon', now())
  ON CONFLICT DO NOTHING;
INSERT INTO shows
SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid,
       '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000001',
       now() + interval '7 days', now()
FROM generate_series(1, :shows) g ON CONFLICT DO NOTHING;
INSERT INTO seats
SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid,
       chr(65 + s / 100) || (s % 100 + 1), chr(65 + s / 100), s % 100 + 1, s, 1000, NULL
FROM generate_series(1, :shows) g, generate_series(0, 999) s ON CONFLICT DO NOTHING;
-- Steady state for every table, the API-seeded ones included: planner
-- statistics, and hint bits and the visibility map set, so that neither P nor
-- the scenarios pay first-touch costs of freshly inserted rows.
VACUUM (ANALYZE);
