-- 004_auth: credentials, the failed-auth limiter, auth attempt records and
-- TLS public keys (core/auth.c, core/tlspubkey.c, gannet/auth.h).

-- Password-derived keys, never the password (RFC 5802, RFC 7677, RFC 2195).
CREATE TABLE gn_credentials (
	account_id bigint NOT NULL REFERENCES gn_accounts (id) ON DELETE CASCADE,
	scram_sha256_salt bytea NOT NULL,
	scram_sha256_iterations integer NOT NULL CHECK (scram_sha256_iterations > 0),
	scram_sha256_stored_key bytea NOT NULL,	-- H(ClientKey), 32 bytes
	scram_sha256_server_key bytea NOT NULL,	-- 32 bytes
	scram_sha1_salt bytea NOT NULL,
	scram_sha1_iterations integer NOT NULL CHECK (scram_sha1_iterations > 0),
	scram_sha1_stored_key bytea NOT NULL,	-- 20 bytes
	scram_sha1_server_key bytea NOT NULL,	-- 20 bytes
	-- HMAC-MD5 states after key^ipad and key^opad (16 bytes each).
	cram_md5_inner bytea NOT NULL,
	cram_md5_outer bytea NOT NULL,
	changed_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account_id)
);

-- The failed-auth limiter: failures per network and fixed time window.
-- net is the client's address masked to one of three levels (IPv4 /32,
-- /26, /21; IPv6 /64, /48, /32); period is the window length in seconds
-- (60 or 86400) and slot the window's number (epoch seconds / period).
CREATE TABLE gn_auth_failures (
	net cidr NOT NULL,
	period integer NOT NULL,
	slot bigint NOT NULL,
	failures integer NOT NULL DEFAULT 0,
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (net, period, slot)
);
CREATE INDEX gn_auth_failures_expires ON gn_auth_failures (expires_at);

-- Auth attempts, aggregated: one row per distinct (account, login as given,
-- remote IP, protocol, mechanism, result) with first and last time and a
-- count, so a client that logs in every minute keeps one row.  The account
-- is unknown (NULL) for a bad user name, so this log is keyed by a hash of
-- those fields (attempt_key) rather than by account_id first; it is indexed
-- by account for the account pages.
CREATE TABLE gn_auth_attempts (
	attempt_key bytea PRIMARY KEY,		-- SHA-256 of the fields below
	account_id bigint REFERENCES gn_accounts (id) ON DELETE CASCADE,
	login text NOT NULL,
	remote_ip inet,
	protocol text NOT NULL,
	mechanism text NOT NULL,
	result text NOT NULL CHECK (result IN ('ok', 'baduser', 'badpassword',
		'logindisabled', 'ratelimited', 'error')),
	first_at timestamptz NOT NULL DEFAULT now(),
	last_at timestamptz NOT NULL DEFAULT now(),
	count bigint NOT NULL DEFAULT 1
);
CREATE INDEX gn_auth_attempts_account ON gn_auth_attempts (account_id, last_at);
CREATE INDEX gn_auth_attempts_last ON gn_auth_attempts (last_at);

-- TLS public keys for client-certificate login (mox.md 4.1).
CREATE TABLE gn_tls_pubkeys (
	fingerprint text PRIMARY KEY,		-- base64url(SHA-256(SPKI)), no padding
	account_id bigint NOT NULL REFERENCES gn_accounts (id) ON DELETE CASCADE,
	login_address text NOT NULL,		-- canonical form
	name text NOT NULL,
	key_type text NOT NULL,			-- rsa-2048, ecdsa-p256, ed25519, ...
	no_imap_preauth boolean NOT NULL DEFAULT false,
	cert_der bytea NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gn_tls_pubkeys_account ON gn_tls_pubkeys (account_id);
