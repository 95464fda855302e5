-- 002_submission_counts: the day's messages of an account counted per hour
-- (modules/submission/limits.c), not one row a message: the check sums at
-- most 25 hours of a few rows each, however many messages an account sends.
-- A count row is the account's, the hour's and one of COUNT_SHARDS shards
-- (the server process of the session's connection, modulo 8), so that
-- sessions of one account that end their DATA at the same moment mostly
-- add to different rows and do not wait for each other's commits.

CREATE TABLE gn_submission_counts (
	account_id bigint NOT NULL REFERENCES gn_accounts (id) ON DELETE CASCADE,
	hour timestamptz NOT NULL,		-- date_trunc('hour', the time)
	shard smallint NOT NULL CHECK (shard >= 0 AND shard < 8),
	messages integer NOT NULL CHECK (messages > 0),
	PRIMARY KEY (account_id, hour, shard)
);

INSERT INTO gn_submission_counts (account_id, hour, shard, messages)
	SELECT account_id, date_trunc('hour', submitted), 0, count(*)
	FROM gn_submission_sent GROUP BY account_id, date_trunc('hour', submitted);
DROP TABLE gn_submission_sent;
