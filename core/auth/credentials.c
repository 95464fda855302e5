/*
 * core/auth/credentials.c: the stored keys of an account (gn_credentials)
 * and what is derived from them.
 *
 * Setting a password stores SCRAM-SHA-256 and SCRAM-SHA-1 keys (salted,
 * iterated: RFC 5802 3) and, only for accounts in gn_auth_cram_md5 (the
 * opt-in), the HMAC-MD5 midstates CRAM-MD5 needs.  Checking a password
 * always costs one derivation: with keys, against them; without (no such
 * account, no password), against a dummy salt, so timing does not tell
 * which logins exist or have a password.  SCRAM shows a mock salt for a
 * login without keys, made from a per-installation secret
 * (gn_auth_secret) so that it never changes.
 *
 * All SQL of gn_credentials, gn_auth_cram_md5 and gn_auth_secret is here.
 */
#include "auth/internal.h"

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ---- */

/* A bytea column read as encode(x, 'hex') into out, at most max bytes. */
static int bytea_get(const PGresult *res, int row, int col, unsigned char *out,
		     size_t max, size_t *len_r)
{
	const char *s = PQgetvalue(res, row, col);
	size_t n = strlen(s);
	if (n % 2 != 0 || n / 2 > max || hex_decode(out, s, n) < 0)
		return -1;
	*len_r = n / 2;
	return 0;
}

/* "\x<hex>": bytea input in text form; wiped by the caller. */
static char *bytea_param(const unsigned char *data, size_t len)
{
	char *s = gn_malloc(2 * len + 3);
	s[0] = '\\';
	s[1] = 'x';
	hex_encode(s + 2, data, len);
	return s;
}

static void id_text(char out[24], int64_t id)
{
	snprintf(out, 24, "%lld", (long long)id);
}

int password_prepare(const char *password, size_t len, char **out_r,
		     const char **error_r)
{
	return gn_precis_opaque(password, len, out_r, error_r);
}

void secret_free(char *s)
{
	if (s != NULL) {
		gnutls_memset(s, 0, strlen(s));
		gn_free(s);
	}
}

/* ---- setting ---- */

static int scram_new(struct auth_scram *s, enum scram_hash hash,
		     unsigned iterations, const char *password,
		     const char **error_r)
{
	memset(s, 0, sizeof(*s));
	s->hash = hash;
	s->iterations = iterations;
	s->salt_len = SCRAM_SALT_LEN;
	if (gnutls_rnd(GNUTLS_RND_RANDOM, s->salt, SCRAM_SALT_LEN) < 0)
		return auth_err(error_r, "no random numbers");
	return scram_derive(s, password, strlen(password), NULL, error_r);
}

int gn_auth_cram_md5_get(int64_t account_id, bool *on_r, bool *stored_r,
			 const char **error_r)
{
	char id[24];
	id_text(id, account_id);
	const char *params[] = { id };
	PGresult *res = db_query(
		"SELECT EXISTS (SELECT 1 FROM gn_auth_cram_md5 WHERE account_id = $1), "
		"EXISTS (SELECT 1 FROM gn_credentials WHERE account_id = $1 "
		"        AND cram_md5_inner IS NOT NULL)", 1, params, error_r);
	if (res == NULL)
		return -1;
	if (on_r != NULL)
		*on_r = PQgetvalue(res, 0, 0)[0] == 't';
	if (stored_r != NULL)
		*stored_r = PQgetvalue(res, 0, 1)[0] == 't';
	PQclear(res);
	return 0;
}

int gn_auth_cram_md5_set(int64_t account_id, bool on, const char **error_r)
{
	char id[24];
	id_text(id, account_id);
	const char *params[] = { id };
	int r;
	if (on) {
		/* The state needs the password: it is written at the next
		 * gn_auth_password_set(). */
		r = gn_db_exec("INSERT INTO gn_auth_cram_md5 (account_id) VALUES ($1) "
			       "ON CONFLICT (account_id) DO NOTHING", 1, params, error_r);
	} else {
		/* One statement: the opt-in and the state go together. */
		r = gn_db_exec("WITH d AS (DELETE FROM gn_auth_cram_md5 WHERE account_id = $1) "
			       "UPDATE gn_credentials SET cram_md5_inner = NULL, "
			       "cram_md5_outer = NULL WHERE account_id = $1",
			       1, params, error_r);
	}
	return r < 0 ? -1 : 0;
}

int gn_auth_password_set(int64_t account_id, const char *password,
			 size_t password_len, const char **error_r)
{
	char *prep = NULL;
	struct auth_scram s256, s1;
	struct auth_cram_md5 cram;
	bool cram_on = false;

	if (password_prepare(password, password_len, &prep, error_r) < 0)
		return -1;
	if (strlen(prep) < GN_AUTH_PASSWORD_MIN) {
		secret_free(prep);
		return auth_err(error_r, "password too short: at least 8 bytes");
	}
	if (gn_auth_cram_md5_get(account_id, &cram_on, NULL, error_r) < 0 ||
	    scram_new(&s256, SCRAM_SHA256, (unsigned)auth_set.iter_sha256, prep, error_r) < 0 ||
	    scram_new(&s1, SCRAM_SHA1, (unsigned)auth_set.iter_sha1, prep, error_r) < 0) {
		secret_free(prep);
		return -1;
	}
	if (cram_on)
		cram_md5_prepare(prep, strlen(prep), &cram);
	secret_free(prep);

	char id[24], it256[16], it1[16];
	id_text(id, account_id);
	snprintf(it256, sizeof(it256), "%u", s256.iterations);
	snprintf(it1, sizeof(it1), "%u", s1.iterations);
	char *v[] = {
		bytea_param(s256.salt, s256.salt_len),
		bytea_param(s256.stored_key, s256.key_len),
		bytea_param(s256.server_key, s256.key_len),
		bytea_param(s1.salt, s1.salt_len),
		bytea_param(s1.stored_key, s1.key_len),
		bytea_param(s1.server_key, s1.key_len),
		cram_on ? bytea_param(cram.inner, 16) : NULL,
		cram_on ? bytea_param(cram.outer, 16) : NULL,
	};
	const char *params[] = { id, v[0], it256, v[1], v[2], v[3], it1, v[4],
				 v[5], v[6], v[7] };
	/* The CRAM-MD5 state is written only while the opt-in row exists,
	 * checked again in the statement: an opt-out that raced this set
	 * leaves no state behind. */
	int r = gn_db_exec(
		"WITH o AS (SELECT EXISTS (SELECT 1 FROM gn_auth_cram_md5 "
		"           WHERE account_id = $1) AS opted) "
		"INSERT INTO gn_credentials (account_id, scram_sha256_salt, "
		"scram_sha256_iterations, scram_sha256_stored_key, scram_sha256_server_key, "
		"scram_sha1_salt, scram_sha1_iterations, scram_sha1_stored_key, "
		"scram_sha1_server_key, cram_md5_inner, cram_md5_outer) "
		"SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, "
		"CASE WHEN o.opted THEN $10::bytea END, CASE WHEN o.opted THEN $11::bytea END FROM o "
		"ON CONFLICT (account_id) DO UPDATE SET "
		"scram_sha256_salt = EXCLUDED.scram_sha256_salt, "
		"scram_sha256_iterations = EXCLUDED.scram_sha256_iterations, "
		"scram_sha256_stored_key = EXCLUDED.scram_sha256_stored_key, "
		"scram_sha256_server_key = EXCLUDED.scram_sha256_server_key, "
		"scram_sha1_salt = EXCLUDED.scram_sha1_salt, "
		"scram_sha1_iterations = EXCLUDED.scram_sha1_iterations, "
		"scram_sha1_stored_key = EXCLUDED.scram_sha1_stored_key, "
		"scram_sha1_server_key = EXCLUDED.scram_sha1_server_key, "
		"cram_md5_inner = EXCLUDED.cram_md5_inner, "
		"cram_md5_outer = EXCLUDED.cram_md5_outer, changed_at = now()",
		11, params, error_r);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (v[i] == NULL)
			continue;
		gnutls_memset(v[i], 0, strlen(v[i]));
		gn_free(v[i]);
	}
	gnutls_memset(&s256, 0, sizeof(s256));
	gnutls_memset(&s1, 0, sizeof(s1));
	gnutls_memset(&cram, 0, sizeof(cram));
	return r < 0 ? -1 : 0;
}

int gn_auth_password_clear(int64_t account_id, const char **error_r)
{
	char id[24];
	id_text(id, account_id);
	const char *params[] = { id };
	PGresult *res = db_query("DELETE FROM gn_credentials WHERE account_id = $1",
				 1, params, error_r);
	if (res == NULL)
		return -1;
	int n = atoi(PQcmdTuples(res));
	PQclear(res);
	return n > 0 ? 1 : 0;
}

/* ---- reading ---- */

int credentials_scram_get(int64_t account_id, enum scram_hash hash,
			  struct auth_scram *scram_r, const char **error_r)
{
	const char *sql;
	if (hash == SCRAM_SHA256)
		sql = "SELECT encode(scram_sha256_salt, 'hex'), scram_sha256_iterations, "
			"encode(scram_sha256_stored_key, 'hex'), encode(scram_sha256_server_key, 'hex') "
			"FROM gn_credentials WHERE account_id = $1";
	else if (hash == SCRAM_SHA1)
		sql = "SELECT encode(scram_sha1_salt, 'hex'), scram_sha1_iterations, "
			"encode(scram_sha1_stored_key, 'hex'), encode(scram_sha1_server_key, 'hex') "
			"FROM gn_credentials WHERE account_id = $1";
	else
		return auth_err(error_r, "unknown SCRAM hash");
	size_t key_len = scram_key_len(hash);
	char id[24];
	id_text(id, account_id);
	const char *params[] = { id };
	PGresult *res = db_query(sql, 1, params, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	memset(scram_r, 0, sizeof(*scram_r));
	scram_r->hash = hash;
	scram_r->key_len = key_len;
	size_t l1, l2;
	long iter = strtol(PQgetvalue(res, 0, 1), NULL, 10);
	int bad = bytea_get(res, 0, 0, scram_r->salt, sizeof(scram_r->salt), &scram_r->salt_len) < 0 ||
		bytea_get(res, 0, 2, scram_r->stored_key, SCRAM_KEY_MAX, &l1) < 0 ||
		bytea_get(res, 0, 3, scram_r->server_key, SCRAM_KEY_MAX, &l2) < 0 ||
		l1 != key_len || l2 != key_len || iter <= 0 || scram_r->salt_len == 0;
	PQclear(res);
	if (bad)
		return auth_err(error_r, "stored SCRAM keys are damaged");
	scram_r->iterations = (unsigned)iter;
	return 1;
}

int credentials_cram_md5_get(int64_t account_id, struct auth_cram_md5 *state_r,
			     const char **error_r)
{
	char id[24];
	id_text(id, account_id);
	const char *params[] = { id };
	PGresult *res = db_query(
		"SELECT encode(cram_md5_inner, 'hex'), encode(cram_md5_outer, 'hex') "
		"FROM gn_credentials WHERE account_id = $1 AND cram_md5_inner IS NOT NULL",
		1, params, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	size_t l1, l2;
	int bad = bytea_get(res, 0, 0, state_r->inner, 16, &l1) < 0 ||
		bytea_get(res, 0, 1, state_r->outer, 16, &l2) < 0 || l1 != 16 || l2 != 16;
	PQclear(res);
	if (bad)
		return auth_err(error_r, "stored CRAM-MD5 state is damaged");
	return 1;
}

/* ---- checking ---- */

void credentials_dummy_check(const char *prep)
{
	struct auth_scram s = { .hash = SCRAM_SHA256, .salt_len = SCRAM_SALT_LEN };
	s.iterations = (unsigned)auth_set.iter_sha256;
	memset(s.salt, 0x5a, SCRAM_SALT_LEN);
	(void)scram_derive(&s, prep, strlen(prep), NULL, NULL);
	gnutls_memset(&s, 0, sizeof(s));
}

int credentials_verify_prepared(int64_t account_id, const char *prep,
				const char **error_r)
{
	struct auth_scram stored, mine;
	int r = credentials_scram_get(account_id, SCRAM_SHA256, &stored, error_r);
	if (r < 0)
		return -1;
	if (r == 0) {
		/* No password: as long as a check, so that timing does not
		 * tell an account without credentials from one with. */
		credentials_dummy_check(prep);
		return 0;
	}
	mine = stored;
	if (scram_derive(&mine, prep, strlen(prep), NULL, error_r) < 0)
		return -1;
	r = gn_auth_mem_equal(mine.stored_key, stored.stored_key, stored.key_len) ? 1 : 0;
	gnutls_memset(&mine, 0, sizeof(mine));
	gnutls_memset(&stored, 0, sizeof(stored));
	return r;
}

int gn_auth_password_verify(int64_t account_id, const char *password,
			    size_t password_len, const char **error_r)
{
	char *prep;
	const char *perr;
	/* A password that PRECIS refuses can never have been set. */
	if (password_prepare(password, password_len, &prep, &perr) < 0)
		return 0;
	int r = credentials_verify_prepared(account_id, prep, error_r);
	secret_free(prep);
	return r;
}

/* ---- mock salts ---- */

static unsigned char secret[64];
static size_t secret_len;

static int secret_load(const char **error_r)
{
	if (secret_len > 0)
		return 0;
	PGresult *res = db_query("SELECT encode(secret, 'hex') FROM gn_auth_secret "
				 "WHERE id = 1", 0, NULL, error_r);
	if (res == NULL)
		return -1;
	size_t n = 0;
	int bad = PQntuples(res) != 1 ||
		bytea_get(res, 0, 0, secret, sizeof(secret), &n) < 0 || n < 16;
	PQclear(res);
	if (bad)
		return auth_err(error_r, "gn_auth_secret is missing or damaged");
	secret_len = n;
	return 0;
}

int credentials_mock_scram(const char *login, enum scram_hash hash,
			   struct auth_scram *scram_r, const char **error_r)
{
	unsigned char mac[32];
	if (secret_load(error_r) < 0)
		return -1;
	/* Per hash, so the two SCRAMs show unrelated salts as real
	 * accounts do. */
	struct gn_buf *b = gn_buf_new(0);
	gn_buf_printf(b, "scram-%d:", (int)hash);
	gn_buf_append(b, login != NULL ? login : "", login != NULL ? strlen(login) : 0);
	int r = gnutls_hmac_fast(GNUTLS_MAC_SHA256, secret, secret_len, gn_buf_data(b),
				 gn_buf_len(b), mac);
	gn_buf_free(&b);
	if (r < 0)
		return auth_err(error_r, "HMAC failed");
	memset(scram_r, 0, sizeof(*scram_r));
	scram_r->hash = hash;
	scram_r->key_len = scram_key_len(hash);
	scram_r->salt_len = SCRAM_SALT_LEN;
	memcpy(scram_r->salt, mac, SCRAM_SALT_LEN);
	scram_r->iterations = (unsigned)(hash == SCRAM_SHA1 ? auth_set.iter_sha1
					 : auth_set.iter_sha256);
	/* Keys no proof can match: H(ClientKey) of a random ClientKey. */
	if (gnutls_rnd(GNUTLS_RND_NONCE, scram_r->stored_key, scram_r->key_len) < 0 ||
	    gnutls_rnd(GNUTLS_RND_NONCE, scram_r->server_key, scram_r->key_len) < 0)
		return auth_err(error_r, "no random numbers");
	return 0;
}

/* ---- is CRAM-MD5 of any use here? ---- */

int credentials_cram_md5_any(const char **error_r)
{
	/* Asked at every EHLO and CAPABILITY, in every worker: not cached,
	 * so an opt-in shows at once everywhere; the partial index
	 * gn_credentials_cram_md5 makes it one index probe. */
	PGresult *res = db_query("SELECT EXISTS (SELECT 1 FROM gn_credentials "
				 "WHERE cram_md5_inner IS NOT NULL)", 0, NULL, error_r);
	if (res == NULL)
		return -1;
	int r = PQgetvalue(res, 0, 0)[0] == 't' ? 1 : 0;
	PQclear(res);
	return r;
}
