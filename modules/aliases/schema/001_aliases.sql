-- 001_aliases: aliases (lists) of the aliases module (modules/aliases/
-- README; mox.md 5).  An alias is an address on a hosted domain whose mail
-- goes to its members, each an address of an account.

CREATE TABLE gn_aliases (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	-- A domain with aliases is not removed: remove its aliases first.
	domain_id bigint NOT NULL CONSTRAINT "the domain has aliases (gannet config alias list)"
		REFERENCES gn_domains (id) ON DELETE RESTRICT,
	localpart_key text NOT NULL,		-- NFC, lower-cased: the lookup key
	localpart text NOT NULL,		-- NFC, case as configured
	post_public boolean NOT NULL DEFAULT false,	-- anyone may send to it
	list_members boolean NOT NULL DEFAULT false,	-- members may see the members
	allow_msg_from boolean NOT NULL DEFAULT false,	-- members may send as it
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (domain_id, localpart_key)
);

-- Members reference the address row itself: removing an address (or its
-- account) removes it from its aliases, and the trigger below refuses the
-- removal of an alias's last member.
CREATE TABLE gn_alias_members (
	alias_id bigint NOT NULL REFERENCES gn_aliases (id) ON DELETE CASCADE,
	domain_id bigint NOT NULL,
	localpart_key text NOT NULL,
	PRIMARY KEY (alias_id, domain_id, localpart_key),
	FOREIGN KEY (domain_id, localpart_key)
		REFERENCES gn_addresses (domain_id, localpart_key) ON DELETE CASCADE
);
CREATE INDEX gn_alias_members_address ON gn_alias_members (domain_id, localpart_key);

-- An alias keeps at least one member.  AFTER the statement's rows are gone,
-- so that a statement that removes several members is judged on what it
-- leaves; an alias removed itself (its members cascading) is not refused.
CREATE FUNCTION gn_alias_members_keep_one() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	alias_addr text;
	member_addr text;
BEGIN
	SELECT a.localpart || '@' || d.name_utf8 INTO alias_addr
		FROM gn_aliases a JOIN gn_domains d ON d.id = a.domain_id
		WHERE a.id = OLD.alias_id;
	IF alias_addr IS NULL THEN
		RETURN NULL;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM gn_alias_members WHERE alias_id = OLD.alias_id) THEN
		SELECT OLD.localpart_key || '@' || d.name_utf8 INTO member_addr
			FROM gn_domains d WHERE d.id = OLD.domain_id;
		RAISE EXCEPTION '% is the last member of alias %: add another member or remove the alias first (gannet config alias rm %)',
			member_addr, alias_addr, alias_addr
			USING ERRCODE = 'integrity_constraint_violation';
	END IF;
	RETURN NULL;
END;
$$;
CREATE TRIGGER gn_alias_members_keep_one AFTER DELETE ON gn_alias_members
	FOR EACH ROW EXECUTE FUNCTION gn_alias_members_keep_one();

-- An address and an alias never share a name: the address that an
-- account would get is refused while an alias has it.
CREATE FUNCTION gn_aliases_address_free() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM gn_aliases WHERE domain_id = NEW.domain_id
		   AND localpart_key = NEW.localpart_key) THEN
		RAISE EXCEPTION 'an alias has this address: remove it first (gannet config alias rm)'
			USING ERRCODE = 'unique_violation';
	END IF;
	RETURN NEW;
END;
$$;
CREATE TRIGGER gn_aliases_address_free BEFORE INSERT OR UPDATE OF domain_id, localpart_key
	ON gn_addresses FOR EACH ROW EXECUTE FUNCTION gn_aliases_address_free();
