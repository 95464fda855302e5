-- 019_messages_settled_indexes: the UID and modseq indexes of gn_messages
-- hold settled rows only.
--
-- A pending row (005_settle: uid and modseq NULL) had an entry in both,
-- and the settle that numbers it added another: two index entries a
-- delivery wrote for nothing.  Worse, (account_id, ...) is their leading
-- column, so a lookup by the primary key (account_id, id) could be planned
-- on them with id as a filter.  While a table has no statistics (a new
-- installation, the minute before autovacuum's first ANALYZE), the planner
-- takes it for a few rows and costs every such index alike; a connection
-- that cached its generic plan then read every message of the account for
-- each delivery, 1 ms at 9,000 messages and growing (contrib/bench/smtp,
-- PostgreSQL's CPU a message 1 -> 5 ms).  A partial index serves only a
-- query whose conditions imply its predicate: every reader selects by a
-- UID or a modseq (a strict comparison implies IS NOT NULL), and a lookup
-- by id cannot use these at all.
--
-- The uniqueness of UIDs in a mailbox is the same: NULLs never conflicted.
-- The migration's transaction holds gn_messages while the two indexes
-- are built again (seconds for millions of messages).

DROP INDEX gn_messages_uid;
CREATE UNIQUE INDEX gn_messages_uid ON gn_messages (account_id, mailbox_id, uid)
	WHERE uid IS NOT NULL;
DROP INDEX gn_messages_modseq;
CREATE INDEX gn_messages_modseq ON gn_messages (account_id, mailbox_id, modseq)
	WHERE modseq IS NOT NULL;
