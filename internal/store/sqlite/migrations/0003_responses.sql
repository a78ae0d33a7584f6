-- Issue 4: responses of the OpenAI Responses API, kept so that a request
-- can continue from one by previous_response_id. input and output hold
-- conversation content (JSON arrays of Responses items): a row exists only
-- because the client asked for it with store: true (OpenAI's default).
CREATE TABLE responses (
	id          TEXT    PRIMARY KEY,
	-- The key that stored the response; only it may read the row back.
	-- Empty when keel runs open.
	key_id      TEXT    NOT NULL DEFAULT '',
	created     INTEGER NOT NULL,
	model       TEXT    NOT NULL DEFAULT '',
	previous_id TEXT    NOT NULL DEFAULT '',
	input       TEXT    NOT NULL,
	output      TEXT    NOT NULL
) STRICT;

-- For expiring old responses.
CREATE INDEX responses_created ON responses (created);
