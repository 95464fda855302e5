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

-- Mail delivered to a FromID address (a bounce, or a reply to the unique
-- envelope sender), matched to the recipient the FromID was made for
-- (core/queue/fromid.c, the "deliver.after" hook; mox.md 1.8).  Keyed by
-- the FromID, so a row outlives the recipient's move from the queue to
-- the retired table.  kind: 'dsn' when the message is a multipart/report
-- whose second part is a delivery status (message/delivery-status or
-- message/global-delivery-status), else 'message'.
CREATE TABLE gn_queue_fromid_incoming (
	account_id bigint NOT NULL REFERENCES gn_accounts (id) ON DELETE CASCADE,
	id bigint GENERATED ALWAYS AS IDENTITY,
	from_id text NOT NULL,
	kind text NOT NULL CHECK (kind IN ('dsn', 'message')),
	mailbox_id bigint NOT NULL,
	uid bigint NOT NULL,			-- 0 when it was not known yet
	received_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account_id, id)
);
CREATE INDEX gn_queue_fromid_incoming_from_id ON gn_queue_fromid_incoming (from_id);
