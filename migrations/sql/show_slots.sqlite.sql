-- SQLite has no exclusion constraints: the overlap check runs inside the
-- write transaction, which SQLite's single writer makes race-free (see
-- create_show). Timestamps are RFC 3339 text in UTC, which sorts in time
-- order; minutes are added by SQLite and the fraction and offset kept as
-- they were, so the text stays in the form the driver writes.
ALTER TABLE shows ADD COLUMN occupied_until timestamp_with_timezone_text NOT NULL DEFAULT '';
UPDATE shows SET occupied_until = strftime('%Y-%m-%dT%H:%M:%S', starts_at,
    '+' || ((SELECT duration_minutes FROM movies WHERE movies.id = shows.movie_id) + 15) || ' minutes')
    || substr(starts_at, 20);
