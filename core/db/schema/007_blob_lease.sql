-- 007_blob_lease: a blob being written is visibly pending and held by its
-- writer; a body's MIME structure is stored once, with the body
-- (core/store/blob.c has the design); deliveries leave a token.
--
-- A pending blob (hash NULL) carries writing_until, the end of its
-- writer's lease: the writer moves it forward with every chunk and at
-- least every minute while it writes, and the clean-up removes a pending
-- blob only after that time (a writer that died).  A finished blob has
-- its hash and no lease.
ALTER TABLE gn_blobs ADD COLUMN writing_until timestamptz;
-- Rows left pending by earlier versions: their lease is over.
UPDATE gn_blobs SET writing_until = created_at WHERE hash IS NULL;
ALTER TABLE gn_blobs ADD CONSTRAINT gn_blobs_pending
	CHECK ((hash IS NULL) = (writing_until IS NOT NULL));

-- The MIME structure (gn_mime_to_json_string) belongs to the body, not to
-- each copy of a message: one value a blob, however many messages use it.
ALTER TABLE gn_blobs ADD COLUMN mime jsonb;
UPDATE gn_blobs b SET mime = m.mime
	FROM (SELECT DISTINCT ON (blob_id) blob_id, mime FROM gn_messages
	      WHERE mime IS NOT NULL ORDER BY blob_id, id) m
	WHERE m.blob_id = b.id;
ALTER TABLE gn_messages DROP COLUMN mime;

-- Each delivery transaction writes a random token; when the connection
-- breaks during its COMMIT, the delivering process looks for it on a new
-- connection to learn whether the transaction committed, by inserting it
-- as a probe (core/store/deliver.c).  Kept a day by the clean-up.
CREATE TABLE gn_delivery_tokens (
	token bytea PRIMARY KEY,
	probe boolean NOT NULL DEFAULT false,	-- inserted by a probe: not committed
	created_at timestamptz NOT NULL DEFAULT now()
);
