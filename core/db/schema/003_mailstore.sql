-- 003_mailstore: mailboxes, messages and their bodies (core/store.c).
--
-- Bodies are blobs stored once by SHA-256 in chunks of 256 KiB, shared by
-- every message (any account) that has the same body; refcount counts the
-- messages using a blob and is kept exact in the same transaction as every
-- message added or removed.  A blob whose hash is NULL is being written.
-- Every per-account table has account_id first in its primary key.

CREATE TABLE gn_blobs (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	hash bytea UNIQUE,			-- SHA-256; NULL while written
	size bigint NOT NULL DEFAULT 0,
	refcount bigint NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gn_blobs_unused ON gn_blobs (created_at) WHERE refcount = 0;

CREATE TABLE gn_blob_chunks (
	blob_id bigint NOT NULL REFERENCES gn_blobs (id) ON DELETE CASCADE,
	seq integer NOT NULL,			-- 0, 1, ...: offset / chunk size
	data bytea NOT NULL,
	PRIMARY KEY (blob_id, seq)
);
ALTER TABLE gn_blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE gn_mailboxes (
	account_id bigint NOT NULL REFERENCES gn_accounts (id) ON DELETE CASCADE,
	id bigint GENERATED ALWAYS AS IDENTITY,
	name text NOT NULL,			-- NFC, "/" separated
	special_use smallint NOT NULL DEFAULT 0,	-- enum gn_store_special_use
	uidvalidity bigint NOT NULL,
	uidnext bigint NOT NULL DEFAULT 1,
	highestmodseq bigint NOT NULL,
	-- exact counters, changed with every message change
	messages bigint NOT NULL DEFAULT 0,
	unseen bigint NOT NULL DEFAULT 0,
	deleted bigint NOT NULL DEFAULT 0,
	size bigint NOT NULL DEFAULT 0,
	deleted_size bigint NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account_id, id),
	UNIQUE (account_id, name)
);

CREATE TABLE gn_subscriptions (
	account_id bigint NOT NULL REFERENCES gn_accounts (id) ON DELETE CASCADE,
	name text NOT NULL,
	PRIMARY KEY (account_id, name)
);

-- flags: bit mask of GN_STORE_SEEN ...; keywords as given, unique
-- case-insensitively.
CREATE TABLE gn_messages (
	account_id bigint NOT NULL,
	mailbox_id bigint NOT NULL,
	uid bigint NOT NULL,
	id bigint GENERATED ALWAYS AS IDENTITY,
	modseq bigint NOT NULL,
	blob_id bigint NOT NULL REFERENCES gn_blobs (id),
	prefix bytea NOT NULL DEFAULT ''::bytea,
	size bigint NOT NULL,			-- prefix + blob
	flags integer NOT NULL DEFAULT 0,
	keywords text[] NOT NULL DEFAULT '{}',
	internal_date timestamptz NOT NULL,
	-- from the MIME parse (gn_mime_to_json_string) and its envelope
	mime jsonb,
	subject text,
	from_field text,
	message_id text,
	sent_date timestamptz,
	PRIMARY KEY (account_id, mailbox_id, uid),
	FOREIGN KEY (account_id, mailbox_id)
		REFERENCES gn_mailboxes (account_id, id) ON DELETE CASCADE
);
CREATE INDEX gn_messages_modseq ON gn_messages (account_id, mailbox_id, modseq);
CREATE INDEX gn_messages_blob ON gn_messages (blob_id);

-- RFC 7162 QRESYNC: UIDs expunged with the modseq of their expunge.
CREATE TABLE gn_expunged (
	account_id bigint NOT NULL,
	mailbox_id bigint NOT NULL,
	uid bigint NOT NULL,
	modseq bigint NOT NULL,
	PRIMARY KEY (account_id, mailbox_id, uid),
	FOREIGN KEY (account_id, mailbox_id)
		REFERENCES gn_mailboxes (account_id, id) ON DELETE CASCADE
);
