-- 011_dkim: the DKIM keys a hosted domain signs with (RFC 6376, RFC 8463),
-- one row a selector.  Every enabled key of the From domain signs each
-- submitted message (core/store/dkim.c); a disabled one is kept, e.g.
-- while its DNS record is not yet published or is being retired.
-- private_key is PKCS#8 PEM: a secret, never logged or printed.
CREATE TABLE gn_dkim_keys (
	domain_id bigint NOT NULL REFERENCES gn_domains (id) ON DELETE CASCADE,
	selector text NOT NULL,			-- lower case, LDH labels
	algorithm text NOT NULL CHECK (algorithm IN ('rsa-sha256', 'ed25519-sha256')),
	private_key text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	enabled boolean NOT NULL DEFAULT true,
	PRIMARY KEY (domain_id, selector)
);
