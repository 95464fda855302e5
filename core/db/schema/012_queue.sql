-- 012_queue: the outbound queue (core/queue/queue.c has the design).
--
-- A message is stored once (its body a blob of the store, holding one
-- reference while queued), with one row a recipient.  A recipient row is
-- 'queued' (waiting for next_attempt) or 'delivering' (claimed by a
-- runner: next_attempt is then the end of the runner's lease, after which
-- another runner takes it again, so a runner that dies loses nothing).
-- held rows are never claimed.  Every attempt is recorded.  A recipient
-- that is done (delivered, failed, dropped) moves to the retired tables
-- when its account keeps history (gn_accounts.queue_retired_keep_s > 0);
-- the message goes when its last recipient went.
-- Every per-account table has account_id first in its primary key.

ALTER TABLE gn_accounts ADD COLUMN queue_retired_keep_s bigint NOT NULL DEFAULT 0
	CHECK (queue_retired_keep_s >= 0);

-- ON DELETE RESTRICT: an account with queued mail is not removed (its
-- messages hold blob references and may still need a DSN); the
-- constraint's name is what the refusal says.
CREATE TABLE gn_queue_messages (
	account_id bigint NOT NULL CONSTRAINT "the account has queued mail (gannet queue list)"
		REFERENCES gn_accounts (id) ON DELETE RESTRICT,
	id bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
	blob_id bigint NOT NULL REFERENCES gn_blobs (id),
	sender text NOT NULL,			-- canonical address; '' for <>
	sender_domain text NOT NULL,		-- A-labels; '' for <>
	size bigint NOT NULL,
	message_id text NOT NULL DEFAULT '',	-- Message-ID field
	subject text NOT NULL DEFAULT '',
	smtputf8 boolean NOT NULL DEFAULT false,
	max_attempts integer NOT NULL DEFAULT 0,	-- 0: the setting
	extra jsonb NOT NULL DEFAULT '{}',	-- string to string
	queued_at timestamptz NOT NULL,
	release_at timestamptz,			-- FUTURERELEASE: not before
	PRIMARY KEY (account_id, id)
);

CREATE TABLE gn_queue_recipients (
	account_id bigint NOT NULL,
	id bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
	message_id bigint NOT NULL,
	rcpt text NOT NULL,			-- canonical address
	rcpt_domain text NOT NULL,		-- A-labels
	from_id text,				-- unique MAIL FROM (issue 9 item 5)
	state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'delivering')),
	held boolean NOT NULL DEFAULT false,
	next_attempt timestamptz NOT NULL,
	attempts integer NOT NULL DEFAULT 0,
	last_attempt timestamptz,
	last_code integer,
	last_enhanced text,
	last_text text,
	delayed_dsn boolean NOT NULL DEFAULT false,	-- the delayed DSN was sent
	PRIMARY KEY (account_id, id),
	FOREIGN KEY (account_id, message_id)
		REFERENCES gn_queue_messages (account_id, id) ON DELETE CASCADE
);
CREATE INDEX gn_queue_recipients_due ON gn_queue_recipients (next_attempt) WHERE NOT held;
CREATE INDEX gn_queue_recipients_message ON gn_queue_recipients (account_id, message_id, rcpt_domain);
CREATE UNIQUE INDEX gn_queue_recipients_from_id ON gn_queue_recipients (from_id) WHERE from_id IS NOT NULL;

-- code 0: no answer from a server (connection failure, or a local problem).
CREATE TABLE gn_queue_attempts (
	account_id bigint NOT NULL,
	recipient_id bigint NOT NULL,
	seq integer NOT NULL,			-- 1, 2, ...: the attempt's number
	started_at timestamptz NOT NULL,
	duration_ms bigint NOT NULL,
	host text NOT NULL DEFAULT '',
	ip text NOT NULL DEFAULT '',
	code integer NOT NULL,
	enhanced text NOT NULL DEFAULT '',
	text text NOT NULL DEFAULT '',
	PRIMARY KEY (account_id, recipient_id, seq),
	FOREIGN KEY (account_id, recipient_id)
		REFERENCES gn_queue_recipients (account_id, id) ON DELETE CASCADE
);

-- A recipient that left the queue; id is its queue id.  The body is not
-- kept.  result: delivered, failed, dropped.
CREATE TABLE gn_queue_retired (
	account_id bigint NOT NULL REFERENCES gn_accounts (id) ON DELETE CASCADE,
	id bigint NOT NULL,
	message_id bigint NOT NULL,
	sender text NOT NULL,
	rcpt text NOT NULL,
	rcpt_domain text NOT NULL,
	from_id text,
	size bigint NOT NULL,
	message_id_field text NOT NULL DEFAULT '',
	subject text NOT NULL DEFAULT '',
	extra jsonb NOT NULL DEFAULT '{}',
	queued_at timestamptz NOT NULL,
	release_at timestamptz,
	attempts integer NOT NULL,
	last_attempt timestamptz,
	last_code integer,
	last_enhanced text,
	last_text text,
	result text NOT NULL CHECK (result IN ('delivered', 'failed', 'dropped')),
	retired_at timestamptz NOT NULL,
	keep_until timestamptz NOT NULL,
	PRIMARY KEY (account_id, id)
);
CREATE INDEX gn_queue_retired_keep ON gn_queue_retired (keep_until);
CREATE UNIQUE INDEX gn_queue_retired_from_id ON gn_queue_retired (from_id) WHERE from_id IS NOT NULL;

CREATE TABLE gn_queue_retired_attempts (
	account_id bigint NOT NULL,
	recipient_id bigint NOT NULL,
	seq integer NOT NULL,
	started_at timestamptz NOT NULL,
	duration_ms bigint NOT NULL,
	host text NOT NULL DEFAULT '',
	ip text NOT NULL DEFAULT '',
	code integer NOT NULL,
	enhanced text NOT NULL DEFAULT '',
	text text NOT NULL DEFAULT '',
	PRIMARY KEY (account_id, recipient_id, seq),
	FOREIGN KEY (account_id, recipient_id)
		REFERENCES gn_queue_retired (account_id, id) ON DELETE CASCADE
);

-- Hold rules: a queued recipient matches when every non-empty field of
-- the rule equals its (AND; all empty: everything).  Not per account (a
-- rule may cover all accounts), so its key is its id.
CREATE TABLE gn_queue_holdrules (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account_id bigint REFERENCES gn_accounts (id) ON DELETE CASCADE,	-- NULL: any
	sender_domain text NOT NULL DEFAULT '',		-- A-labels; '': any
	recipient_domain text NOT NULL DEFAULT '',	-- A-labels; '': any
	created_at timestamptz NOT NULL DEFAULT now()
);
