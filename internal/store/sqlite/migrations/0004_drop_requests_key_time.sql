-- No query reads requests by key yet, and the index made every recorded
-- request a third more expensive (BenchmarkRecordRequests: 15 µs → 10 µs).
-- A per-key listing will bring it back with the query that needs it.
DROP INDEX IF EXISTS requests_key_time;
