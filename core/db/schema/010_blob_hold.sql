-- 010_blob_hold: a body just finished is held for its message
-- (core/store/blob.c has the design).
--
-- A message's body is finished (gn_store_blob_finish()) before or in the
-- transaction that adds the message; when the body existed already, the
-- blob's last other reference could go (an expunge, or the clean-up of an
-- unreferenced blob) in between, and the message then pointed at nothing
-- ("no such blob").  finished_at is the last time a writer finished the
-- body (set by the UPDATE that also locks the row, instead of the SELECT
-- FOR SHARE that let two deliveries of one body deadlock): an expunge
-- leaves a blob finished within the last hour to the clean-up, which goes
-- by the last finish instead of the creation.  A pending blob (hash NULL)
-- has no finish time.
ALTER TABLE gn_blobs ADD COLUMN finished_at timestamptz;
UPDATE gn_blobs SET finished_at = created_at WHERE hash IS NOT NULL;
ALTER TABLE gn_blobs ADD CONSTRAINT gn_blobs_finished
	CHECK ((hash IS NULL) = (finished_at IS NULL));

-- The clean-up's candidates, with the predicate the queries use
-- (refcount <= 0; 003 had refcount = 0, which no query could use).
DROP INDEX gn_blobs_unused;
CREATE INDEX gn_blobs_unused ON gn_blobs (finished_at) WHERE refcount <= 0;
