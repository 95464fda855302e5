-- 005_settle: deliveries store messages as pending, settled later
-- (core/store-mailbox.c has the design).
--
-- A pending message is a row of gn_messages with uid and modseq NULL: it is
-- durably stored (the delivery committed) but not yet in its mailbox's
-- IMAP state, so no reader sees it and no counter includes it.  Settling
-- gives the pending rows of an account their UIDs and a modseq in id order
-- and applies them to the counters, in one transaction under the account's
-- settle lock.  The primary key becomes (account_id, id), which a pending
-- row has from its insert; UIDs stay unique per mailbox.

ALTER TABLE gn_messages DROP CONSTRAINT gn_messages_pkey;
ALTER TABLE gn_messages ADD PRIMARY KEY (account_id, id);
ALTER TABLE gn_messages ALTER COLUMN uid DROP NOT NULL;
ALTER TABLE gn_messages ALTER COLUMN modseq DROP NOT NULL;
ALTER TABLE gn_messages ADD CONSTRAINT gn_messages_settled
	CHECK ((uid IS NULL) = (modseq IS NULL));
CREATE UNIQUE INDEX gn_messages_uid ON gn_messages (account_id, mailbox_id, uid);
-- The pending rows: few at any time, so this index stays small.
CREATE INDEX gn_messages_pending ON gn_messages (account_id, mailbox_id, id)
	WHERE uid IS NULL;
