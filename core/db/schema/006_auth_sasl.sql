-- 006_auth_sasl: what the SASL server needs (core/auth/, gannet/sasl.h).
--
-- CRAM-MD5 state (the HMAC-MD5 midstates of the password, RFC 2195) is
-- unsalted and as good as the password to whoever reads it: a dump of
-- gn_credentials could be attacked at MD5 speed.  It is now kept only for
-- accounts that opt in (gn_auth_cram_md5, `gannet config account cram-md5
-- ACCOUNT on`), written at their next password set; what was stored for
-- everybody before is removed here.
ALTER TABLE gn_credentials ALTER COLUMN cram_md5_inner DROP NOT NULL,
	ALTER COLUMN cram_md5_outer DROP NOT NULL;
UPDATE gn_credentials SET cram_md5_inner = NULL, cram_md5_outer = NULL;
ALTER TABLE gn_credentials ADD CONSTRAINT gn_credentials_cram_md5_both
	CHECK ((cram_md5_inner IS NULL) = (cram_md5_outer IS NULL));

-- Whether CRAM-MD5 can work for anybody, asked at every EHLO/CAPABILITY.
CREATE INDEX gn_credentials_cram_md5 ON gn_credentials (account_id)
	WHERE cram_md5_inner IS NOT NULL;

CREATE TABLE gn_auth_cram_md5 (
	account_id bigint PRIMARY KEY REFERENCES gn_accounts (id) ON DELETE CASCADE,
	since timestamptz NOT NULL DEFAULT now()
);

-- The secret behind the mock SCRAM salts of unknown logins (RFC 5802 9:
-- the same name must always get the same salt, on every node).
-- gen_random_uuid() draws from the server's strong random source; two of
-- them give 244 random bits.
CREATE TABLE gn_auth_secret (
	id smallint PRIMARY KEY CHECK (id = 1),
	secret bytea NOT NULL
);
INSERT INTO gn_auth_secret (id, secret) VALUES (1,
	decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));

-- The results of SASL exchanges beside those of password logins.
ALTER TABLE gn_auth_attempts DROP CONSTRAINT gn_auth_attempts_result_check;
ALTER TABLE gn_auth_attempts ADD CONSTRAINT gn_auth_attempts_result_check
	CHECK (result IN ('ok', 'baduser', 'badpassword', 'logindisabled',
		'ratelimited', 'error', 'aborted', 'badprotocol', 'badchanbind',
		'badauthz'));
