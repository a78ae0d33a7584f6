-- A request record becomes one row of five columns: the fields SQLite
-- must see (id for lookups and uniqueness, time for the newest-first
-- listing), the content, which is large and usually NULL, and the rest as
-- one JSON array. As a row of requests, a row per attempt and 26 bound
-- parameters, recording cost 6.9 µs per request, most of it binding
-- parameters (for each TEXT one the driver allocates C memory, copies, and
-- takes SQLite's mutex three times) and B-tree inserts; as one row and 5
-- parameters it costs 3.4 µs (BenchmarkRecordRequests). In an experiment,
-- only moving the attempts into a column of requests cut 6.9 to 4.8 µs.
--
-- Not generated columns for the fields in the record: SQLite computes even
-- VIRTUAL ones on every insert (three of them cost 0.8 µs per request).
-- Instead the views requests and attempts below show the old tables'
-- columns, so SQL that read them still works; writes go to request_log.
CREATE TABLE request_log (
	id         TEXT    PRIMARY KEY,
	time       INTEGER NOT NULL,
	-- record is a JSON array of the requests view's columns from key_id to
	-- output_tokens, then the attempts: an array of arrays, each of the
	-- attempts view's columns from provider to reason. Readers take a
	-- missing trailing element as its zero value and ignore extra ones, so
	-- a field can be added at the end without rewriting rows. Not checked
	-- with json_valid: parsing every record on insert cost 0.8 µs per
	-- request; the one writer, appendRecord, is fuzzed to write JSON.
	record     TEXT    NOT NULL,
	-- prompt and completion are NULL unless the config records content.
	prompt     TEXT,
	completion TEXT
) STRICT;

INSERT INTO request_log (id, time, record, prompt, completion)
SELECT r.id, r.time,
	json_array(r.key_id, r.api, r.model, r.stream, r.provider, r.served_model, r.status, r.error,
		r.ttft_us, r.duration_us, r.input_tokens, r.output_tokens,
		-- json(): a subquery's value loses its JSON subtype, and json_array
		-- would quote it as a string.
		json((SELECT json_group_array(
				json_array(a.provider, a.model, a.start, a.duration_us, a.outcome, a.status, a.error, a.reason)
				ORDER BY a.seq)
			FROM attempts a WHERE a.request_id = r.id))),
	r.prompt, r.completion
FROM requests r;

-- attempts first: it references requests.
DROP TABLE attempts;
DROP TABLE requests;

CREATE INDEX request_log_time ON request_log (time DESC, id DESC);

CREATE VIEW requests AS
SELECT id, time,
	record->>0 AS key_id, record->>1 AS api, record->>2 AS model, record->>3 AS stream,
	record->>4 AS provider, record->>5 AS served_model, record->>6 AS status, record->>7 AS error,
	record->>8 AS ttft_us, record->>9 AS duration_us, record->>10 AS input_tokens, record->>11 AS output_tokens,
	prompt, completion
FROM request_log;

CREATE VIEW attempts AS
SELECT l.id AS request_id, a.key AS seq,
	a.value->>0 AS provider, a.value->>1 AS model, a.value->>2 AS start, a.value->>3 AS duration_us,
	a.value->>4 AS outcome, a.value->>5 AS status, a.value->>6 AS error, a.value->>7 AS reason
FROM request_log l, json_each(l.record, '$[12]') a;
