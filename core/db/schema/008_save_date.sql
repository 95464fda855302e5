-- 008_save_date: when a message was saved in its mailbox (RFC 8514
-- SAVEDATE), for FETCH SAVEDATE and the SEARCH keys SAVEDBEFORE, SAVEDON,
-- SAVEDSINCE.
--
-- Every insert into gn_messages is a message saved into a mailbox (an
-- add, a delivery, a copy, the copy half of a move), so the column's
-- default is the save date: no statement has to name it.  A delivery's
-- save date is its commit's transaction time, not the later settle (the
-- message was durably in the mailbox from then on).  Messages stored
-- before this migration keep NULL: their save date is unknown (FETCH
-- answers NIL; searches compare their internal date instead, RFC 8514
-- 4.3), which is truer than the migration's own time.
ALTER TABLE gn_messages ADD COLUMN save_date timestamptz;
ALTER TABLE gn_messages ALTER COLUMN save_date SET DEFAULT now();
