-- 001_submission: per-account sending limits per day (modules/submission/
-- limits.c; mox.md 11: MaxOutgoingMessagesPerDay and
-- MaxFirstTimeRecipientsPerDay).

-- One row per message handed to the queue; rows older than two days are
-- removed as new ones come.
CREATE TABLE gn_submission_sent (
	id bigserial PRIMARY KEY,
	account_id bigint NOT NULL REFERENCES gn_accounts (id) ON DELETE CASCADE,
	submitted timestamptz NOT NULL DEFAULT now(),
	recipients integer NOT NULL CHECK (recipients > 0)
);
CREATE INDEX gn_submission_sent_account ON gn_submission_sent (account_id, submitted);

-- Every recipient an account ever sent to (folded canonical address), with
-- the time of the first message: the past recipients that make a
-- recipient not first-time.
CREATE TABLE gn_submission_recipients (
	account_id bigint NOT NULL REFERENCES gn_accounts (id) ON DELETE CASCADE,
	address text NOT NULL,
	first_sent timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account_id, address)
);
CREATE INDEX gn_submission_recipients_first ON gn_submission_recipients (account_id, first_sent);

-- An account's own limits; NULL: the module's settings.
CREATE TABLE gn_submission_limits (
	account_id bigint PRIMARY KEY REFERENCES gn_accounts (id) ON DELETE CASCADE,
	messages_per_day integer CHECK (messages_per_day >= 0),
	first_time_recipients_per_day integer CHECK (first_time_recipients_per_day >= 0)
);
