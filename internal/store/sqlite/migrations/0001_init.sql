-- Times are UTC unix microseconds; durations are microseconds.

CREATE TABLE keys (
	id      TEXT    PRIMARY KEY,
	name    TEXT    NOT NULL,
	hash    BLOB    NOT NULL UNIQUE CHECK (length(hash) = 32),
	created INTEGER NOT NULL,
	revoked INTEGER -- NULL while the key is active
) STRICT;

CREATE TABLE requests (
	id            TEXT    PRIMARY KEY,
	time          INTEGER NOT NULL,
	key_id        TEXT    NOT NULL DEFAULT '',
	api           TEXT    NOT NULL DEFAULT '',
	model         TEXT    NOT NULL DEFAULT '',
	stream        INTEGER NOT NULL DEFAULT 0,
	provider      TEXT    NOT NULL DEFAULT '',
	served_model  TEXT    NOT NULL DEFAULT '',
	status        INTEGER NOT NULL DEFAULT 0,
	error         TEXT    NOT NULL DEFAULT '',
	ttft_us       INTEGER NOT NULL DEFAULT 0,
	duration_us   INTEGER NOT NULL DEFAULT 0,
	input_tokens  INTEGER NOT NULL DEFAULT 0,
	output_tokens INTEGER NOT NULL DEFAULT 0,
	-- prompt and completion are NULL unless the config records content.
	prompt        TEXT,
	completion    TEXT
) STRICT;

CREATE INDEX requests_time ON requests (time DESC, id DESC);
CREATE INDEX requests_key_time ON requests (key_id, time DESC);

-- Every call to an upstream, failed ones included, in the order made.
CREATE TABLE attempts (
	request_id  TEXT    NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
	seq         INTEGER NOT NULL,
	provider    TEXT    NOT NULL,
	model       TEXT    NOT NULL,
	start       INTEGER NOT NULL,
	duration_us INTEGER NOT NULL,
	outcome     TEXT    NOT NULL,
	status      INTEGER NOT NULL,
	error       TEXT    NOT NULL,
	PRIMARY KEY (request_id, seq)
) STRICT, WITHOUT ROWID;
