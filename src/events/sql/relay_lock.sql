-- One relay pass at a time across instances (src/events/relay.rs): the lock
-- is the transaction's, so it ends with the pass. $1 the lock key (bigint).
SELECT pg_try_advisory_xact_lock($1) AS leader
