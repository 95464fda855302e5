-- 013_fromid: the FromID login addresses of an account (issue 9 item 5,
-- mox.md 2.5).  A message submitted by a login listed here gets a unique
-- envelope sender per recipient, local<sep><fromid>@domain, kept in
-- gn_queue_recipients.from_id (012_queue.sql); a bounce to that address
-- is matched to the message with gn_queue_fromid_find().
--
-- address: the login address in folded canonical form (gn_addr_fold(),
-- gn_addr_to_string()), on a domain with catchall separators.

CREATE TABLE gn_account_fromid_logins (
	account_id bigint NOT NULL REFERENCES gn_accounts (id) ON DELETE CASCADE,
	address text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account_id, address)
);
