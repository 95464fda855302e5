-- 001_suppressions: the suppression lists of the suppression module
-- (modules/suppression/README; mox.md 2.7): per account, recipient
-- addresses the queue does not deliver to, keyed by base address.

CREATE TABLE gn_suppressions (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account_id bigint NOT NULL REFERENCES gn_accounts (id) ON DELETE CASCADE,
	-- localpart cut at the first "+" and "-", dots removed, lower-cased;
	-- canonical form (gn_addr_to_string())
	base_address text NOT NULL,
	original_address text NOT NULL,		-- as added, canonical form
	manual boolean NOT NULL DEFAULT false,
	reason text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (account_id, base_address)
);
