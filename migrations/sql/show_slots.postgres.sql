-- A theatre is one room: two of its shows may not occupy it at once. Each show
-- keeps the end of its occupancy (start + the movie's duration + the
-- changeover in force when it was scheduled), and an exclusion constraint
-- refuses overlapping occupancies in one theatre, whatever the concurrency.
-- Existing shows get the default changeover of 15 minutes; if two of them
-- already overlap, the constraint (and so this migration) fails naming them,
-- and one of them must be moved or deleted first.
ALTER TABLE shows ADD COLUMN occupied_until timestamptz;
UPDATE shows s SET occupied_until = s.starts_at + make_interval(mins => m.duration_minutes + 15)
FROM movies m WHERE m.id = s.movie_id;
ALTER TABLE shows ALTER COLUMN occupied_until SET NOT NULL;
-- btree_gist gives uuid an equality operator class for GiST; it is a trusted
-- extension, so the database's owner may create it.
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE shows ADD CONSTRAINT ex_shows_theatre_occupancy
    EXCLUDE USING gist (theatre_id WITH =, tstzrange(starts_at, occupied_until) WITH &&);
