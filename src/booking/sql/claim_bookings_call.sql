-- A batch of bookings on PostgreSQL, one statement (src/booking/batch.rs binds
-- the parameters in this order, one array element per booking): the function
-- (migrations/sql/claim_bookings.sql) checks each booking's snapshot, inserts
-- it, claims its seats and writes its outbox event, and answers for each.
--   $1 booking ids   $2 user ids   $3 show ids   $4 seat counts
--   $5 every booking's seat ids, one after another   $6 totals (cents)
--   $7 movie titles   $8 theatre names   $9 show starts
--   $10 idempotency keys ('' for none)   $11 event ids   $12 aggregate types
--   $13 aggregate ids   $14 event types   $15 encoded theatre.v1.EventEnvelopes
--   $16 the bookings' creation times
SELECT n, outcome, seats
FROM claim_bookings($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
