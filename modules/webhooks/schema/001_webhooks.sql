-- 001_webhooks: the webhooks module (modules/webhooks/README; mox.md
-- 1.4, 1.5): each account's webhook settings, the hooks waiting to be
-- delivered and the retired ones kept for a while.

CREATE TABLE gn_webhook_accounts (
	account_id bigint PRIMARY KEY REFERENCES gn_accounts (id) ON DELETE CASCADE,
	outgoing_url text NOT NULL DEFAULT '',		-- '' none
	outgoing_authorization text NOT NULL DEFAULT '',
	outgoing_events text[] NOT NULL DEFAULT '{}',	-- empty: all
	incoming_url text NOT NULL DEFAULT '',
	incoming_authorization text NOT NULL DEFAULT '',
	-- Standard Webhooks signing secret: "whsec_" and the key in base64
	secret text NOT NULL,
	keep_retired_s bigint NOT NULL DEFAULT 0 CHECK (keep_retired_s >= 0)
);

CREATE TABLE gn_webhooks (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account_id bigint NOT NULL REFERENCES gn_accounts (id) ON DELETE CASCADE,
	queue_msg_id bigint NOT NULL DEFAULT 0,		-- 0 for incoming
	from_id text NOT NULL DEFAULT '',
	message_id text NOT NULL DEFAULT '',
	subject text NOT NULL DEFAULT '',
	url text NOT NULL,				-- copied at queue time
	auth_header text NOT NULL DEFAULT '',	-- the Authorization value, "" none
	is_incoming boolean NOT NULL,
	event text NOT NULL DEFAULT '',			-- outgoing event; '' incoming
	payload text NOT NULL,
	submitted timestamptz NOT NULL,
	attempts integer NOT NULL DEFAULT 0,
	next_attempt timestamptz NOT NULL,
	results jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX gn_webhooks_next ON gn_webhooks (next_attempt);
-- mox's supersede rule: at most one pending outgoing hook a queue message
CREATE UNIQUE INDEX gn_webhooks_queue_msg ON gn_webhooks (account_id, queue_msg_id) WHERE queue_msg_id <> 0;

CREATE TABLE gn_webhooks_retired (
	id bigint PRIMARY KEY,
	account_id bigint NOT NULL REFERENCES gn_accounts (id) ON DELETE CASCADE,
	queue_msg_id bigint NOT NULL,
	from_id text NOT NULL,
	message_id text NOT NULL,
	subject text NOT NULL,
	url text NOT NULL,
	has_authorization boolean NOT NULL,
	is_incoming boolean NOT NULL,
	event text NOT NULL,
	payload text NOT NULL,
	submitted timestamptz NOT NULL,
	attempts integer NOT NULL,
	results jsonb NOT NULL,
	superseded_by bigint,
	success boolean NOT NULL,
	last_activity timestamptz NOT NULL,
	keep_until timestamptz NOT NULL
);
CREATE INDEX gn_webhooks_retired_keep ON gn_webhooks_retired (keep_until);
