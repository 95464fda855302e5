-- 001_core: facts about the installation itself, as key/value pairs.
-- installation_id identifies this database (one per deployment, shared by
-- every node); it is generated once, when this migration is applied.
-- gen_random_uuid() is built into PostgreSQL 13 and newer.
CREATE TABLE gn_meta (
	key text PRIMARY KEY,
	value text NOT NULL
);
INSERT INTO gn_meta (key, value) VALUES ('installation_id', gen_random_uuid()::text);
