-- 002_accounts: domains, accounts, and the addresses that reach them.
-- Addresses are stored normalised (gannet/addr.h): domains as lower-case
-- A-labels with the U-label kept for display, localparts in NFC with a
-- lower-cased key for lookups.

CREATE TABLE gn_domains (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE,		-- A-labels, lower case
	name_utf8 text NOT NULL,		-- U-labels, for display
	-- Each character separates a catchall tag: "+" makes user+x@d reach user@d.
	catchall_separators text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gn_accounts (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE,
	full_name text NOT NULL DEFAULT '',
	-- NULL: the account may log in; otherwise the message a login gets.
	login_disabled text,
	-- The last modification sequence handed out in this account (RFC 7162):
	-- every change to a message or mailbox takes the next one.
	modseq bigint NOT NULL DEFAULT 1,
	-- The last UIDVALIDITY given to a mailbox of the account: each new
	-- mailbox takes the next, so a name used again never gets an old one
	-- (RFC 9051 2.3.1.1).  Starts from the time of creation.
	uidvalidity bigint NOT NULL DEFAULT (extract(epoch FROM now())::bigint % 2000000000),
	-- Bytes of all messages in all mailboxes, kept exact with every change.
	total_size bigint NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gn_addresses (
	domain_id bigint NOT NULL REFERENCES gn_domains (id),
	localpart_key text NOT NULL,		-- NFC, lower-cased: the lookup key
	localpart text NOT NULL,		-- NFC, case as configured
	account_id bigint NOT NULL REFERENCES gn_accounts (id) ON DELETE CASCADE,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (domain_id, localpart_key)
);
CREATE INDEX gn_addresses_account ON gn_addresses (account_id);
