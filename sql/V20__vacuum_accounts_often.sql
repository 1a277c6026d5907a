-- Issue 17, reads: every movement updates its accounts' rows, and a replica
-- cannot set hint bits on rows the primary has not vacuumed or read (it may
-- not write WAL, and wal_log_hints only ships what the primary hinted): each
-- read of such a row there checks the commit log again. Measured with the
-- bench's reads right after seeding: ~400 µs of the replica's CPU per read,
-- ~200 µs once VACUUM had run. So vacuum the (small, hot) accounts table
-- after 1% of its rows changed, not the default 20% (the launcher looks every
-- autovacuum_naptime, 10 s in replication/src/conf.rs).
ALTER TABLE accounts SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 500);
