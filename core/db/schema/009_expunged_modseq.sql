-- 009_expunged_modseq: the expunged UIDs of a mailbox by modseq, so that
-- "expunged since modseq n" (an IMAP session's refresh after every
-- command that may report changes, QRESYNC) reads only the recent ones
-- instead of every UID ever expunged from the mailbox.
CREATE INDEX gn_expunged_modseq ON gn_expunged (account_id, mailbox_id, modseq);
