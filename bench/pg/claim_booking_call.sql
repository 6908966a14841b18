-- P's booking writes, one statement per booking (bench/pg/claim.sql runs this
-- file; before group commit they were the service's own on PostgreSQL): the
-- function (migrations/sql/claim_booking.sql) inserts the booking, claims the
-- seats and writes the outbox event, or raises TH409 and undoes it.
--   $1 booking id   $2 user id   $3 show id   $4 seat ids (text[])
--   $5 total cents   $6 movie title   $7 theatre name   $8 show start
--   $9 idempotency key (NULL: none)   $10 now
--   $11 event id   $12 aggregate type   $13 aggregate id   $14 event type
--   $15 the encoded theatre.v1.EventEnvelope
SELECT claim_booking($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
