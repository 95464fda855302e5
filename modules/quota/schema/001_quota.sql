-- 001_quota: per-account storage limits (modules/quota; mox.md 7).

-- An account's own limit and its warning state.  limit_bytes NULL: the
-- module's setting default_limit; negative: unlimited.  warned: the
-- warning message went out when usage crossed the threshold, and goes
-- out again only after usage was seen below it.
CREATE TABLE gn_quota_accounts (
	account_id bigint PRIMARY KEY REFERENCES gn_accounts (id) ON DELETE CASCADE,
	limit_bytes bigint,
	warned boolean NOT NULL DEFAULT false
);
