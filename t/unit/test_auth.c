/*
 * t/unit/test_auth.c: credentials, logins, the failed-auth limiter, attempt
 * records (core/auth/auth.c) and TLS public keys (core/auth/tlspubkey.c).
 *
 * The pure parts are checked against published vectors: SCRAM-SHA-1
 * (RFC 5802 5) and SCRAM-SHA-256 (RFC 7677 3) by recomputing the example
 * exchanges' proofs and server signatures, HMAC-MD5 (RFC 2104, RFC 2202) and
 * CRAM-MD5 (RFC 2195 example) from the stored midstates.  The rest runs
 * against a real PostgreSQL, in a fresh database from t/lib/pgtest.c.
 */
#include "main.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pgtest.h"
#include "tap.h"

#ifndef GN_TEST_SRCDIR
#define GN_TEST_SRCDIR "."
#endif

/* ---- helpers ---- */

static void hex(const unsigned char *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
	out[2 * n] = '\0';
}

static char *b64(const unsigned char *in, size_t len)
{
	static const char a[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = gn_malloc((len + 2) / 3 * 4 + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0) |
			(i + 2 < len ? in[i + 2] : 0);
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		out[o++] = i + 1 < len ? a[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? a[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

static size_t unb64(const char *s, unsigned char *out)
{
	size_t o = 0;
	unsigned v = 0;
	int bits = 0;
	for (; *s && *s != '='; s++) {
		const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		v = v << 6 | (unsigned)(strchr(a, *s) - a);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
		}
	}
	return o;
}

/* ---- SCRAM (RFC 5802 5, RFC 7677 3) ---- */

/* Recomputes an example exchange: from password, salt and iterations the
 * client's proof and the server's signature must be those of the RFC. */
static void scram_example(enum scram_hash hash, const char *name,
			  const char *salt_b64, const char *auth_message,
			  const char *want_proof, const char *want_server)
{
	struct auth_scram s = { .hash = hash, .iterations = 4096 };
	unsigned char salted[32], client_key[32], sig[32], proof[32], ssig[32];
	const char *err = NULL;
	gnutls_mac_algorithm_t mac = hash == SCRAM_SHA1 ? GNUTLS_MAC_SHA1 : GNUTLS_MAC_SHA256;

	s.salt_len = unb64(salt_b64, s.salt);
	ok(scram_derive(&s, "pencil", 6, salted, &err) == 0, "%s: derive keys", name);
	is_int((long long)s.key_len, hash == SCRAM_SHA1 ? 20 : 32, "%s: key length", name);
	/* ClientKey from SaltedPassword; H(ClientKey) must be StoredKey. */
	gnutls_hmac_fast(mac, salted, s.key_len, "Client Key", 10, client_key);
	gnutls_hmac_fast(mac, s.stored_key, s.key_len, auth_message, strlen(auth_message), sig);
	for (size_t i = 0; i < s.key_len; i++)
		proof[i] = client_key[i] ^ sig[i];
	char *p = b64(proof, s.key_len);
	is_str(p, want_proof, "%s: ClientProof from StoredKey matches the RFC", name);
	gn_free(p);
	gnutls_hmac_fast(mac, s.server_key, s.key_len, auth_message, strlen(auth_message), ssig);
	p = b64(ssig, s.key_len);
	is_str(p, want_server, "%s: ServerSignature from ServerKey matches the RFC", name);
	gn_free(p);
}

static void test_scram_vectors(void)
{
	scram_example(SCRAM_SHA1, "SCRAM-SHA-1 (RFC 5802)", "QSXCR+Q6sek8bf92",
		      "n=user,r=fyko+d2lbbFgONRv9qkxdawL,"
		      "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,"
		      "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
		      "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "rmF9pqV8S7suAoZWja4dJRkFsKQ=");
	scram_example(SCRAM_SHA256, "SCRAM-SHA-256 (RFC 7677)", "W22ZaJ0SNY7soEsUEjb6gQ==",
		      "n=user,r=rOprNGfwEbeRWgbNEkqO,"
		      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		      "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
		      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
		      "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		      "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");

	struct auth_scram bad = { .hash = SCRAM_SHA256, .iterations = 0, .salt_len = 4 };
	const char *err = NULL;
	ok(scram_derive(&bad, "pencil", 6, NULL, &err) < 0 && err != NULL,
	   "SCRAM: zero iterations refused");
}

/* ---- HMAC-MD5 and CRAM-MD5 ---- */

static void hmac_md5_is(const char *key, size_t key_len, const char *text,
			size_t text_len, const char *want, const char *name)
{
	struct auth_cram_md5 st;
	unsigned char d[16];
	char h[33];
	cram_md5_prepare(key, key_len, &st);
	cram_md5_digest(&st, text, text_len, d);
	hex(d, 16, h);
	is_str(h, want, "%s", name);
}

static void test_cram_md5(void)
{
	char k16[16], k80[80];
	memset(k16, 0x0b, sizeof(k16));
	memset(k80, 0xaa, sizeof(k80));
	hmac_md5_is(k16, 16, "Hi There", 8, "9294727a3638bb1c13f48ef8158bfc9d",
		    "HMAC-MD5 RFC 2104 test 1");
	hmac_md5_is("Jefe", 4, "what do ya want for nothing?", 28,
		    "750c783e6ab0b503eaa86e310a5db738", "HMAC-MD5 RFC 2104 test 2");
	hmac_md5_is(k80, 80, "Test Using Larger Than Block-Size Key - Hash Key First", 54,
		    "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
		    "HMAC-MD5 RFC 2202 test 6: key longer than a block is hashed");
	/* RFC 2195 2: the example exchange. */
	const char *challenge = "<1896.697170952@postoffice.reston.mci.net>";
	hmac_md5_is("tanstaaftanstaaf", 16, challenge, strlen(challenge),
		    "b913a602c7eda7a495b4e6e7334d3890", "CRAM-MD5: RFC 2195 example");

	/* Every text length around the MD5 padding boundaries agrees with
	 * GnuTLS's HMAC-MD5. */
	unsigned char text[300], key[100], want[16], got[16];
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = (unsigned char)(i * 7 + 3);
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)(i * 13 + 1);
	int bad = 0;
	for (size_t kl = 0; kl <= sizeof(key); kl += 9) {
		struct auth_cram_md5 st;
		cram_md5_prepare((const char *)key, kl, &st);
		for (size_t tl = 0; tl <= sizeof(text); tl++) {
			cram_md5_digest(&st, (const char *)text, tl, got);
			if (gnutls_hmac_fast(GNUTLS_MAC_MD5, key, kl, text, tl, want) < 0 ||
			    memcmp(got, want, 16) != 0)
				bad++;
		}
	}
	is_int(bad, 0, "HMAC-MD5 from midstates equals GnuTLS's for keys 0..99 and texts 0..300 bytes");
}

static void test_helpers(void)
{
	ok(gn_auth_mem_equal("abcdef", "abcdef", 6), "mem_equal: equal");
	ok(!gn_auth_mem_equal("abcdef", "abcdeg", 6), "mem_equal: last byte differs");
	ok(!gn_auth_mem_equal("xbcdef", "abcdef", 6), "mem_equal: first byte differs");
	ok(gn_auth_mem_equal("", "", 0), "mem_equal: empty");
	is_str(gn_auth_result_name(GN_AUTH_BADPASSWORD), "badpassword", "result names");
	is_str(gn_auth_result_name((enum gn_auth_result)99), "error", "unknown result is error");

	/* SHA-256 of nothing, base64url without padding. */
	struct gn_pool *pool = gn_pool_new();
	is_str(gn_tlspubkey_spki_fingerprint(pool, (const unsigned char *)"", 0),
	       "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU", "fingerprint: base64url, no padding");
	gn_pool_free(&pool);
}

/* ---- the database ---- */

/* The first value of a query through db.c, as a new string; NULL on error. */
static char *q1(const char *sql, int n, const char *const *params)
{
	const char *err;
	PGresult *r = db_query(sql, n, params, &err);
	if (r == NULL) {
		diag("%s: %s", sql, err);
		return NULL;
	}
	char *v = gn_strdup(PQntuples(r) > 0 && PQnfields(r) > 0 ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	return v;
}

static bool q1_is(const char *sql, const char *want, const char *name)
{
	char *v = q1(sql, 0, NULL);
	bool r = is_str(v, want, "%s", name);
	gn_free(v);
	return r;
}

static void exec_ok(const char *sql)
{
	const char *err;
	if (gn_db_exec(sql, 0, NULL, &err) < 0)
		diag("%s: %s", sql, err);
}

/* An account with one address, made with the store's API.  Returns its
 * id, or 0. */
static int64_t make_account(const char *name, const char *localpart, const char *domain)
{
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_domain *dom;
	struct gn_store_account *acc = NULL;
	const char *err;
	if (gn_store_domain_find(pool, domain, &dom, &err) == 0 &&
	    gn_store_domain_add(pool, domain, NULL, NULL, &err) < 0)
		diag("domain add %s: %s", domain, err);
	char *addr = gn_pool_printf(pool, "%s@%s", localpart, domain);
	if (gn_store_account_add(pool, name, addr, NULL, &acc, &err) < 0)
		diag("account add %s: %s", name, err);
	int64_t id = acc != NULL ? acc->id : 0;
	gn_pool_free(&pool);
	return id;
}

static const struct gn_auth_client imap_plain = {
	.size = sizeof(struct gn_auth_client), .remote_ip = "192.0.2.10",
	.protocol = "imap", .mechanism = "plain",
};

static void test_passwords(void)
{
	const char *err = NULL;
	struct gn_pool *pool = gn_pool_new();
	struct gn_auth_account *acc = NULL;

	int64_t mjl = make_account("mjl", "Mjl", "example.org");
	ok(mjl > 0, "account made");

	ok(gn_auth_password_set(mjl, "short", 5, &err) < 0, "a 5-byte password is refused");
	like(err, "too short", "as too short");
	err = NULL;
	ok(gn_auth_password_set(mjl, "abc\x01" "defghij", 11, &err) < 0,
	   "a password with a control character is refused (PRECIS)");
	ok(err != NULL && strstr(err, "abc") == NULL, "the error does not show the password");
	ok(gn_auth_password_set(mjl, "", 0, &err) < 0, "an empty password is refused");
	/* "pässwörd" with precomposed umlauts: 10 bytes. */
	ok(gn_auth_password_set(mjl, "p\xc3\xa4sswörd", strlen("p\xc3\xa4sswörd"), &err) == 0,
	   "a non-ASCII password is set");

	/* Stored: keys only, never the password. */
	q1_is("SELECT count(*) FROM gn_credentials WHERE position('sswö'::bytea IN "
	      "scram_sha256_salt || scram_sha256_stored_key || scram_sha256_server_key || "
	      "scram_sha1_salt || scram_sha1_stored_key || scram_sha1_server_key || "
	      "coalesce(cram_md5_inner, '') || coalesce(cram_md5_outer, '')) > 0", "0",
	      "no plain text stored");
	q1_is("SELECT length(scram_sha256_stored_key) || ' ' || length(scram_sha1_stored_key) "
	      "|| ' ' || coalesce(length(cram_md5_inner)::text, 'none') || ' ' || "
	      "scram_sha256_iterations || ' ' || scram_sha1_iterations FROM gn_credentials",
	      "32 20 none 4096 8192", "key sizes; 4096 iterations for SCRAM-SHA-256, 8192 for "
	      "SCRAM-SHA-1 (mox); no CRAM-MD5 state without the opt-in");

	/* NFD spelling of the same password: PRECIS (NFC) makes it match. */
	const char *nfd = "pa\xcc\x88sswo\xcc\x88rd";
	is_int(gn_auth_password_verify(mjl, nfd, strlen(nfd), &err), 1,
	       "verify: NFD spelling of the password matches (PRECIS NFC)");
	is_int(gn_auth_password_verify(mjl, "passwörd", strlen("passwörd"), &err), 0,
	       "verify: another password does not");

	struct auth_scram s;
	is_int(credentials_scram_get(mjl, SCRAM_SHA256, &s, &err), 1, "SCRAM-SHA-256 keys stored");
	struct auth_scram again = s;
	scram_derive(&again, "p\xc3\xa4sswörd", strlen("p\xc3\xa4sswörd"), NULL, &err);
	ok(memcmp(again.stored_key, s.stored_key, 32) == 0 &&
	   memcmp(again.server_key, s.server_key, 32) == 0,
	   "SCRAM-SHA-256: stored keys derive from the stored salt and iterations");
	is_int((long long)s.salt_len, 16, "16-byte salt");
	is_int(credentials_scram_get(mjl, SCRAM_SHA1, &s, &err), 1, "SCRAM-SHA-1 keys stored");
	again = s;
	scram_derive(&again, "p\xc3\xa4sswörd", strlen("p\xc3\xa4sswörd"), NULL, &err);
	ok(memcmp(again.stored_key, s.stored_key, 20) == 0, "SCRAM-SHA-1 keys derive too");
	is_int(credentials_scram_get(mjl + 1000, SCRAM_SHA1, &s, &err), 0, "no keys for an unknown account");

	/* Setting again changes the salt. */
	char *salt1 = q1("SELECT encode(scram_sha256_salt, 'hex') FROM gn_credentials", 0, NULL);
	gn_auth_password_set(mjl, "p\xc3\xa4sswörd", strlen("p\xc3\xa4sswörd"), &err);
	char *salt2 = q1("SELECT encode(scram_sha256_salt, 'hex') FROM gn_credentials", 0, NULL);
	ok(salt1 && salt2 && strcmp(salt1, salt2) != 0, "a new password gets a new salt");
	gn_free(salt1);
	gn_free(salt2);

	int64_t tim = make_account("tim", "tim", "example.org");
	ok(gn_auth_password_set(tim, "tanstaaftanstaaf", 16, &err) == 0, "tim's password set");

	/* Lookup: NFC, case-insensitive localpart, canonical address back. */
	is_int(gn_auth_lookup(pool, "MJL@Example.ORG", &acc, &err), 1, "lookup: case-insensitive");
	is_str(gn_auth_account_address(acc), "Mjl@example.org", "lookup: the configured address");
	is_str(gn_auth_account_name(acc), "mjl", "lookup: the account name");
	is_int(gn_auth_lookup(pool, "mjl+tag@example.org", &acc, &err), 0, "lookup: no catchall for logins");
	is_int(gn_auth_lookup(pool, "not an address", &acc, &err), 0, "lookup: a non-address finds nothing");

	/* Logins. */
	const struct gn_auth_client cli = {
		.size = sizeof(cli), .protocol = "test", .mechanism = "plain",
		.flags = GN_AUTH_CLIENT_LOCAL,
	};
	acc = NULL;
	is_int(gn_auth_login(pool, &cli, "mjl@example.org", nfd, strlen(nfd), &acc, &err), GN_AUTH_OK,
	       "login: ok");
	ok(acc != NULL && gn_auth_account_id(acc) == mjl, "login: gives the account");
	is_int(gn_auth_login(pool, &cli, "mjl@example.org", "wrong password", 14, &acc, &err),
	       GN_AUTH_BADPASSWORD, "login: bad password");
	ok(acc == NULL, "login: no account on failure");
	is_int(gn_auth_login(pool, &cli, "nobody@example.org", "wrong password", 14, &acc, &err),
	       GN_AUTH_BADUSER, "login: bad user");
	is_int(gn_auth_login(pool, &cli, "mjl@example.org", "", 0, &acc, &err),
	       GN_AUTH_BADPASSWORD, "login: empty password (PRECIS refuses) is a bad password");
	exec_ok("UPDATE gn_accounts SET login_disabled = 'moved to another server' WHERE name = 'mjl'");
	is_int(gn_auth_login(pool, &cli, "mjl@example.org", nfd, strlen(nfd), &acc, &err),
	       GN_AUTH_LOGINDISABLED, "login: disabled account with the right password");
	is_str(gn_auth_account_login_disabled(acc), "moved to another server", "with its message");
	is_int(gn_auth_login(pool, &cli, "mjl@example.org", "wrong password", 14, &acc, &err),
	       GN_AUTH_BADPASSWORD, "login: disabled account with a wrong password is a bad password");
	exec_ok("UPDATE gn_accounts SET login_disabled = NULL");

	q1_is("SELECT string_agg(result || ':' || count, ',' ORDER BY result) FROM gn_auth_attempts "
	      "WHERE account_id IS NOT NULL", "badpassword:3,logindisabled:1,ok:1",
	      "attempts recorded per account and result, aggregated");
	q1_is("SELECT login || ' ' || protocol || ' ' || mechanism || ' ' || coalesce(host(remote_ip), '-') "
	      "FROM gn_auth_attempts WHERE result = 'baduser'", "nobody@example.org test plain -",
	      "bad user recorded with the login as given, protocol and mechanism");

	q1_is("SELECT count(*) FROM gn_credentials c JOIN gn_accounts a ON a.id = c.account_id "
	      "WHERE a.name = 'tim'", "1", "tim has credentials");
	is_int(gn_auth_password_clear(tim, &err), 1, "password cleared");
	is_int(gn_auth_password_verify(tim, "tanstaaftanstaaf", 16, &err), 0,
	       "no password: verify fails");
	gn_pool_free(&pool);
}

/* ---- the SASL server (gannet/sasl.h) ---- */

static int64_t rfc_account;	/* the account the RFC examples' "user" and "tim" map to */
static struct auth_scram rfc_scram;

/* The RFC examples log in as "user" and "tim", which are no addresses:
 * the test's lookup maps them to real accounts, everything else as
 * usual. */
static int hook_lookup(struct gn_pool *pool, const char *login,
		       struct gn_auth_account **account_r, const char **error_r)
{
	if (strcmp(login, "user") == 0)
		return gn_auth_lookup(pool, "rfcuser@example.net", account_r, error_r);
	if (strcmp(login, "tim") == 0)
		return gn_auth_lookup(pool, "tim@example.org", account_r, error_r);
	return gn_auth_lookup(pool, login, account_r, error_r);
}

static int hook_scram_get(int64_t id, enum scram_hash hash, struct auth_scram *scram_r,
			  const char **error_r)
{
	if (id == rfc_account && hash == rfc_scram.hash) {
		*scram_r = rfc_scram;
		return 1;
	}
	return credentials_scram_get(id, hash, scram_r, error_r);
}

static struct sasl_test_hooks hooks = { .lookup = hook_lookup, .scram_get = hook_scram_get };

/* A local peer: no limiter, so the many failures here do not add up. */
static const struct sasl_peer plain_peer = { .local = true, .hostname = "mail.test" };

/* Runs one step in base64 and returns the decoded challenge ("" when
 * none) through *out; the status is returned. */
static enum gn_sasl_status step_s(struct gn_sasl *s, bool start, const char *mech,
				  const char *msg, char **out)
{
	char *in = msg != NULL ? b64((const unsigned char *)msg, strlen(msg)) : NULL;
	enum gn_sasl_status st = start
		? gn_sasl_start64(s, mech, in, in != NULL ? strlen(in) : 0)
		: gn_sasl_step64(s, in, strlen(in));
	gn_free(in);
	const unsigned char *c;
	size_t n;
	gn_sasl_challenge(s, &c, &n);
	*out = gn_strndup((const char *)c, n);
	return st;
}

static void rfc_scram_exchange(enum scram_hash hash, const char *name, const char *salt_b64,
			       const char *snonce, const char *first, const char *want_server_first,
			       const char *final, const char *want_server_final)
{
	char *out;
	memset(&rfc_scram, 0, sizeof(rfc_scram));
	rfc_scram.hash = hash;
	rfc_scram.iterations = 4096;
	rfc_scram.salt_len = unb64(salt_b64, rfc_scram.salt);
	scram_derive(&rfc_scram, "pencil", 6, NULL, NULL);
	hooks.nonce = snonce;
	struct gn_sasl *s = sasl_new_peer(&plain_peer, "test", 0);
	is_int(step_s(s, true, name, first, &out), GN_SASL_CONTINUE, "%s: client-first accepted", name);
	is_str(out, want_server_first, "%s: server-first as in the RFC", name);
	gn_free(out);
	is_int(step_s(s, false, NULL, final, &out), GN_SASL_CONTINUE,
	       "%s: the proof verifies; the server signature comes as one more challenge", name);
	is_str(out, want_server_final, "%s: server-final as in the RFC", name);
	gn_free(out);
	is_int(gn_sasl_step64(s, "", 0), GN_SASL_OK, "%s: an empty answer ends it: authenticated", name);
	ok(gn_sasl_account_id(s) == rfc_account, "%s: as the account", name);
	is_str(gn_sasl_mechanism(s), name, "%s: mechanism", name);
	gn_sasl_free(&s);
	ok(s == NULL, "gn_sasl_free sets the pointer to NULL");
	hooks.nonce = NULL;
}

/* A SCRAM client of our own, for the cases the RFC has no example for:
 * returns client-final for server_first, with channel binding cb. */
static char *scram_client_final(enum scram_hash hash, const char *password, const char *gs2,
				const unsigned char *cb, size_t cb_len, const char *first_bare,
				const char *server_first, const char *proof_override)
{
	struct auth_scram k = { .hash = hash };
	char nonce[256];
	const char *r = strstr(server_first, "r="), *sp = strstr(server_first, ",s="),
		*ip = strstr(server_first, ",i=");
	snprintf(nonce, sizeof(nonce), "%.*s", (int)(sp - r - 2), r + 2);
	char salt64[128];
	snprintf(salt64, sizeof(salt64), "%.*s", (int)(ip - sp - 3), sp + 3);
	k.salt_len = unb64(salt64, k.salt);
	k.iterations = (unsigned)atoi(ip + 3);
	unsigned char salted[32], ckey[32], sig[32], proof[32];
	scram_derive(&k, password, strlen(password), salted, NULL);
	unsigned char cbin[512];
	size_t gl = strlen(gs2);
	memcpy(cbin, gs2, gl);
	if (cb_len > 0)
		memcpy(cbin + gl, cb, cb_len);
	char *c64 = b64(cbin, gl + cb_len);
	char *without = gn_strdup("");
	struct gn_buf *b = gn_buf_new(0);
	gn_buf_printf(b, "c=%s,r=%s", c64, nonce);
	gn_free(without);
	without = gn_strdup(gn_buf_data(b));
	char *am = gn_strdup("");
	gn_free(am);
	struct gn_buf *a = gn_buf_new(0);
	gn_buf_printf(a, "%s,%s,%s", first_bare, server_first, without);
	scram_hmac(hash, salted, k.key_len, "Client Key", 10, ckey);
	scram_hmac(hash, k.stored_key, k.key_len, gn_buf_data(a), gn_buf_len(a), sig);
	for (size_t i = 0; i < k.key_len; i++)
		proof[i] = ckey[i] ^ sig[i];
	char *p64 = b64(proof, k.key_len);
	gn_buf_printf(b, ",p=%s", proof_override != NULL ? proof_override : p64);
	char *outs = gn_strdup(gn_buf_data(b));
	gn_free(p64);
	gn_free(c64);
	gn_free(without);
	gn_buf_free(&a);
	gn_buf_free(&b);
	return outs;
}

/* A whole SCRAM exchange with our client; returns the final status and
 * leaves s for the caller to inspect. */
static enum gn_sasl_status scram_run(struct gn_sasl *s, const char *mech, enum scram_hash hash,
				     const char *gs2, const char *user, const char *password,
				     const unsigned char *cb, size_t cb_len, char **server_first_r)
{
	char *out, first[512], bare[400];
	snprintf(bare, sizeof(bare), "n=%s,r=clientnonce123", user);
	snprintf(first, sizeof(first), "%s%s", gs2, bare);
	enum gn_sasl_status st = step_s(s, true, mech, first, &out);
	if (server_first_r != NULL)
		*server_first_r = gn_strdup(out);
	if (st != GN_SASL_CONTINUE) {
		gn_free(out);
		return st;
	}
	char *final = scram_client_final(hash, password, gs2, cb, cb_len, bare, out, NULL);
	gn_free(out);
	st = step_s(s, false, NULL, final, &out);
	gn_free(final);
	gn_free(out);
	if (st == GN_SASL_CONTINUE)
		st = gn_sasl_step64(s, "", 0);
	return st;
}

static void test_sasl(void)
{
	const char *err = NULL;
	char *out;
	struct gn_sasl *s;
	const char *mjl_pw = "p\xc3\xa4sswörd";

	sasl_set_test_hooks(&hooks);
	rfc_account = make_account("rfcuser", "rfcuser", "example.net");
	int64_t tim = 0, mjl = 0;
	{
		struct gn_pool *pool = gn_pool_new();
		struct gn_auth_account *a;
		if (gn_auth_lookup(pool, "tim@example.org", &a, &err) == 1)
			tim = gn_auth_account_id(a);
		if (gn_auth_lookup(pool, "mjl@example.org", &a, &err) == 1)
			mjl = gn_auth_account_id(a);
		gn_pool_free(&pool);
	}

	/* RFC 5802 5 and RFC 7677 3, through the whole server. */
	rfc_scram_exchange(SCRAM_SHA1, "SCRAM-SHA-1", "QSXCR+Q6sek8bf92", "3rfcNHYJY1ZVvWVs7j",
			   "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
			   "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
			   "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
			   "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
	rfc_scram_exchange(SCRAM_SHA256, "SCRAM-SHA-256", "W22ZaJ0SNY7soEsUEjb6gQ==",
			   "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
			   "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
			   "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			   "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
			   "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			   "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
	q1_is("SELECT count FROM gn_auth_attempts a JOIN gn_accounts c ON c.id = a.account_id "
	      "WHERE c.name = 'rfcuser' AND result = 'ok' AND mechanism = 'scram-sha-1' "
	      "AND protocol = 'test'", "1", "the SCRAM login is recorded with protocol and mechanism");

	/* A wrong proof fails (and the RFC's proof for another nonce). */
	memset(&rfc_scram, 0, sizeof(rfc_scram));
	s = sasl_new_peer(&plain_peer, "test", 0);
	is_int(scram_run(s, "SCRAM-SHA-256", SCRAM_SHA256, "n,,", "mjl@example.org", "wrong password",
			 NULL, 0, NULL), GN_SASL_FAIL, "SCRAM: a wrong password fails");
	is_int(gn_sasl_failure(s), GN_SASL_FAILURE_CREDENTIALS, "as bad credentials");
	is_int(scram_run(s, "SCRAM-SHA-256", SCRAM_SHA256, "n,,", "mjl@example.org", mjl_pw,
			 NULL, 0, NULL), GN_SASL_OK, "SCRAM-SHA-256 with mjl's stored keys");
	is_str(gn_sasl_login(s), "mjl@example.org", "logged in as the login name");
	is_int(scram_run(s, "SCRAM-SHA-1", SCRAM_SHA1, "n,,", "MJL@example.org", mjl_pw,
			 NULL, 0, NULL), GN_SASL_OK, "SCRAM-SHA-1, login name in another case");

	/* Unknown users get a salt that never changes, and fail at the proof. */
	char *sf1, *sf2;
	is_int(scram_run(s, "SCRAM-SHA-256", SCRAM_SHA256, "n,,", "ghost@example.org", "whatever1",
			 NULL, 0, &sf1), GN_SASL_FAIL, "SCRAM: an unknown user fails");
	is_int(gn_sasl_failure(s), GN_SASL_FAILURE_CREDENTIALS, "like a wrong password");
	scram_run(s, "SCRAM-SHA-256", SCRAM_SHA256, "n,,", "ghost@example.org", "whatever1", NULL, 0, &sf2);
	ok(strstr(sf1, ",s=") != NULL && strcmp(strstr(sf1, ",s="), strstr(sf2, ",s=")) == 0,
	   "an unknown user gets the same salt every time (RFC 5802 9)");
	ok(strstr(sf1, ",i=4096") != NULL, "and the configured iteration count");
	gn_free(sf1);
	gn_free(sf2);

	/* Malformed and refused client-first messages. */
	static const struct { const char *msg, *name; enum gn_sasl_failure f; } bad[] = {
		{ "n,,m=ext,n=mjl@example.org,r=abc", "a mandatory extension", GN_SASL_FAILURE_MALFORMED },
		{ "x,,n=mjl@example.org,r=abc", "a bad gs2 flag", GN_SASL_FAILURE_MALFORMED },
		{ "n,,n=mjl=2Xexample.org,r=abc", "a bad =XX escape in the name", GN_SASL_FAILURE_MALFORMED },
		{ "n,,n=mjl@example.org,r=", "an empty nonce", GN_SASL_FAILURE_MALFORMED },
		{ "p=tls-unique,,n=mjl@example.org,r=abc", "channel binding with a non-PLUS mechanism",
		  GN_SASL_FAILURE_CREDENTIALS },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		is_int(step_s(s, true, "SCRAM-SHA-256", bad[i].msg, &out), GN_SASL_FAIL,
		       "SCRAM client-first refused: %s", bad[i].name);
		is_int(gn_sasl_failure(s), bad[i].f, "... as %s", gn_sasl_failure_name(bad[i].f));
		gn_free(out);
	}
	gn_sasl_free(&s);

	/* -PLUS: TLS 1.3 with tls-exporter data. */
	unsigned char cb[32];
	for (size_t i = 0; i < sizeof(cb); i++)
		cb[i] = (unsigned char)(i * 5 + 1);
	struct sasl_peer tls13 = plain_peer;
	tls13.tls = true;
	tls13.cb_type = "tls-exporter";
	tls13.cb_data = cb;
	tls13.cb_len = sizeof(cb);
	s = sasl_new_peer(&plain_peer, "test", 0);
	is_str(gn_sasl_mechanisms(s), "SCRAM-SHA-256 SCRAM-SHA-1",
	       "without TLS: SCRAM only (no PLAIN/LOGIN, no -PLUS, no CRAM-MD5: nobody opted in)");
	is_int(step_s(s, true, "PLAIN", NULL, &out), GN_SASL_FAIL, "PLAIN without TLS fails");
	is_int(gn_sasl_failure(s), GN_SASL_FAILURE_ENCRYPTION, "as needing encryption");
	gn_free(out);
	is_int(step_s(s, true, "SCRAM-SHA-256-PLUS", NULL, &out), GN_SASL_FAIL, "-PLUS without TLS fails");
	is_int(gn_sasl_failure(s), GN_SASL_FAILURE_MECHANISM, "as a mechanism not offered");
	gn_free(out);
	is_int(step_s(s, true, "EXTERNAL", NULL, &out), GN_SASL_FAIL, "EXTERNAL without TLS fails");
	is_int(gn_sasl_failure(s), GN_SASL_FAILURE_ENCRYPTION, "as needing encryption");
	gn_free(out);
	is_int(step_s(s, true, "DIGEST-MD5", NULL, &out), GN_SASL_FAIL, "an unknown mechanism fails");
	is_int(gn_sasl_failure(s), GN_SASL_FAILURE_MECHANISM, "as a mechanism not offered");
	gn_free(out);
	gn_sasl_free(&s);

	s = sasl_new_peer(&tls13, "test", 0);
	is_str(gn_sasl_mechanisms(s),
	       "SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 PLAIN LOGIN",
	       "TLS 1.3, no client certificate: -PLUS, SCRAM, PLAIN, LOGIN");
	ok(gn_sasl_mechanism_offered(s, "scram-sha-256-plus"), "mechanism names in any case");
	is_int(scram_run(s, "SCRAM-SHA-256-PLUS", SCRAM_SHA256, "p=tls-exporter,,", "mjl@example.org",
			 mjl_pw, cb, sizeof(cb), NULL), GN_SASL_OK,
	       "SCRAM-SHA-256-PLUS with the tls-exporter binding");
	is_int(scram_run(s, "SCRAM-SHA-1-PLUS", SCRAM_SHA1, "p=tls-exporter,,", "mjl@example.org",
			 mjl_pw, cb, sizeof(cb), NULL), GN_SASL_OK, "SCRAM-SHA-1-PLUS too");
	unsigned char other[32];
	memset(other, 7, sizeof(other));
	is_int(scram_run(s, "SCRAM-SHA-256-PLUS", SCRAM_SHA256, "p=tls-exporter,,", "mjl@example.org",
			 mjl_pw, other, sizeof(other), NULL), GN_SASL_FAIL,
	       "-PLUS: binding data of another channel fails (a man in the middle)");
	is_int(gn_sasl_failure(s), GN_SASL_FAILURE_CREDENTIALS, "as bad credentials");
	q1_is("SELECT count(*) FROM gn_auth_attempts WHERE result = 'badchanbind' "
	      "AND mechanism = 'scram-sha-256-plus'", "1", "recorded as badchanbind");
	is_int(scram_run(s, "SCRAM-SHA-256-PLUS", SCRAM_SHA256, "p=tls-unique,,", "mjl@example.org",
			 mjl_pw, cb, sizeof(cb), NULL), GN_SASL_FAIL,
	       "-PLUS: tls-unique on TLS 1.3 fails (RFC 9266)");
	is_int(scram_run(s, "SCRAM-SHA-256-PLUS", SCRAM_SHA256, "n,,", "mjl@example.org", mjl_pw,
			 NULL, 0, NULL), GN_SASL_FAIL, "-PLUS without binding (\"n\") fails");
	is_int(scram_run(s, "SCRAM-SHA-256", SCRAM_SHA256, "y,,", "mjl@example.org", mjl_pw,
			 NULL, 0, NULL), GN_SASL_FAIL,
	       "\"y\" while -PLUS was offered fails: a downgrade (RFC 5802 6)");
	is_int(scram_run(s, "SCRAM-SHA-256", SCRAM_SHA256, "n,,", "mjl@example.org", mjl_pw,
			 NULL, 0, NULL), GN_SASL_OK, "plain SCRAM over TLS still works");
	is_int(scram_run(s, "SCRAM-SHA-256", SCRAM_SHA256, "n,a=mjl@example.org,", "mjl@example.org",
			 mjl_pw, NULL, 0, NULL), GN_SASL_OK, "SCRAM with the account's own address as authzid");
	is_int(scram_run(s, "SCRAM-SHA-256", SCRAM_SHA256, "n,a=tim@example.org,", "mjl@example.org",
			 mjl_pw, NULL, 0, NULL), GN_SASL_FAIL, "SCRAM with another account as authzid fails");
	is_int(gn_sasl_failure(s), GN_SASL_FAILURE_AUTHZ, "as an authorization failure");
	gn_sasl_free(&s);

	struct sasl_peer tls12 = tls13;
	tls12.cb_type = "tls-unique";
	tls12.cb_len = 12;
	s = sasl_new_peer(&tls12, "test", GN_SASL_NO_LOGIN | GN_SASL_FINAL_DATA_OK);
	is_str(gn_sasl_mechanisms(s), "SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 PLAIN",
	       "GN_SASL_NO_LOGIN: no LOGIN");
	is_int(scram_run(s, "SCRAM-SHA-256-PLUS", SCRAM_SHA256, "p=tls-unique,,", "mjl@example.org",
			 mjl_pw, cb, 12, NULL), GN_SASL_OK, "TLS 1.2: -PLUS with tls-unique (RFC 5929)");
	is_int(scram_run(s, "SCRAM-SHA-256-PLUS", SCRAM_SHA256, "p=tls-exporter,,", "mjl@example.org",
			 mjl_pw, cb, 12, NULL), GN_SASL_FAIL, "TLS 1.2: tls-exporter is not this channel's binding");
	/* GN_SASL_FINAL_DATA_OK: the server signature comes with the success. */
	char bare[] = "n=mjl@example.org,r=abcdef";
	char first[64];
	snprintf(first, sizeof(first), "n,,%s", bare);
	is_int(step_s(s, true, "SCRAM-SHA-256", first, &out), GN_SASL_CONTINUE, "final data ok: first");
	char *final = scram_client_final(SCRAM_SHA256, mjl_pw, "n,,", NULL, 0, bare, out, NULL);
	gn_free(out);
	is_int(step_s(s, false, NULL, final, &out), GN_SASL_OK,
	       "GN_SASL_FINAL_DATA_OK: success at once");
	ok(strncmp(out, "v=", 2) == 0, "with the server signature as data");
	gn_free(out);
	gn_free(final);
	gn_sasl_free(&s);

	/* PLAIN and LOGIN (allowed without TLS here). */
	s = sasl_new_peer(&plain_peer, "test", GN_SASL_CLEARTEXT_OK);
	char plain[128];
	size_t pl = (size_t)snprintf(plain, sizeof(plain), "%cmjl@example.org%c%s", 0, 0, mjl_pw);
	is_int(gn_sasl_start(s, "PLAIN", plain, pl), GN_SASL_OK, "PLAIN with an initial response");
	is_str(gn_sasl_account_name(s), "mjl", "the account");
	pl = (size_t)snprintf(plain, sizeof(plain), "tim@example.org%cmjl@example.org%c%s", 0, 0, mjl_pw);
	is_int(gn_sasl_start(s, "PLAIN", plain, pl), GN_SASL_FAIL, "PLAIN: authzid of another account");
	is_int(gn_sasl_failure(s), GN_SASL_FAILURE_AUTHZ, "fails as authorization");
	const char *imap_code;
	is_str(gn_sasl_failure_imap(gn_sasl_failure(s), &imap_code), "NO", "IMAP: NO");
	is_str(imap_code, "AUTHORIZATIONFAILED", "[AUTHORIZATIONFAILED] (RFC 5530)");
	is_int(gn_sasl_start(s, "PLAIN", NULL, 0), GN_SASL_CONTINUE, "PLAIN without: an empty challenge");
	pl = (size_t)snprintf(plain, sizeof(plain), "%cmjl@example.org%cwrong password", 0, 0);
	is_int(gn_sasl_step(s, plain, pl), GN_SASL_FAIL, "PLAIN: a wrong password");
	int code;
	const char *enh;
	gn_sasl_failure_smtp(gn_sasl_failure(s), &code, &enh);
	ok(code == 535 && strcmp(enh, "5.7.8") == 0, "SMTP: 535 5.7.8 (RFC 4954)");
	is_int(gn_sasl_start(s, "PLAIN", "no nuls", 7), GN_SASL_FAIL, "PLAIN: not three fields");
	is_int(gn_sasl_failure(s), GN_SASL_FAILURE_MALFORMED, "malformed");
	is_int(gn_sasl_start64(s, "PLAIN", "not base64!", 11), GN_SASL_FAIL, "bad base64 fails");
	is_int(gn_sasl_failure(s), GN_SASL_FAILURE_MALFORMED, "as malformed");
	is_int(gn_sasl_start64(s, "PLAIN", "AA=A", 4), GN_SASL_FAIL, "padding inside base64 fails");
	is_int(gn_sasl_start64(s, "LOGIN", NULL, 0), GN_SASL_CONTINUE, "LOGIN");
	is_str(gn_sasl_challenge64(s), "VXNlcm5hbWU6", "asks Username:");
	char *u64 = b64((const unsigned char *)"mjl@example.org", 15);
	is_int(gn_sasl_step64(s, u64, strlen(u64)), GN_SASL_CONTINUE, "then");
	is_str(gn_sasl_challenge64(s), "UGFzc3dvcmQ6", "asks Password:");
	char *p64 = b64((const unsigned char *)mjl_pw, strlen(mjl_pw));
	is_int(gn_sasl_step64(s, p64, strlen(p64)), GN_SASL_OK, "LOGIN: authenticated");
	is_int(gn_sasl_start64(s, "LOGIN", u64, strlen(u64)), GN_SASL_CONTINUE,
	       "LOGIN with the user name as initial response");
	is_int(gn_sasl_step64(s, "*", 1), GN_SASL_FAIL, "\"*\" cancels");
	is_int(gn_sasl_failure(s), GN_SASL_FAILURE_CANCELLED, "as cancelled");
	gn_sasl_failure_smtp(gn_sasl_failure(s), &code, &enh);
	is_int(code, 501, "SMTP: 501 (RFC 4954 4)");
	is_str(gn_sasl_failure_imap(gn_sasl_failure(s), &imap_code), "BAD", "IMAP: BAD (RFC 9051 6.2.2)");
	gn_free(u64);
	gn_free(p64);
	/* Limits. */
	char *big = gn_malloc(9000);
	memset(big, 'A', 9000);
	is_int(gn_sasl_start(s, "PLAIN", big, 9000), GN_SASL_FAIL, "a 9000-byte response is refused");
	is_int(gn_sasl_failure(s), GN_SASL_FAILURE_LIMIT, "as over the limit");
	gn_free(big);
	/* A disabled account: told only with the right password. */
	exec_ok("UPDATE gn_accounts SET login_disabled = 'gone fishing' WHERE name = 'mjl'");
	pl = (size_t)snprintf(plain, sizeof(plain), "%cmjl@example.org%c%s", 0, 0, mjl_pw);
	is_int(gn_sasl_start(s, "PLAIN", plain, pl), GN_SASL_FAIL, "a disabled account fails");
	is_int(gn_sasl_failure(s), GN_SASL_FAILURE_DISABLED, "as disabled");
	is_str(gn_sasl_failure_text(s), "login disabled: gone fishing", "with the account's message");
	exec_ok("UPDATE gn_accounts SET login_disabled = NULL");
	gn_sasl_free(&s);

	/* CRAM-MD5: only for accounts that opted in; RFC 2195's example. */
	hooks.cram_challenge = "<1896.697170952@postoffice.reston.mci.net>";
	s = sasl_new_peer(&plain_peer, "test", 0);
	is_int(gn_auth_password_set(tim, "tanstaaftanstaaf", 16, &err), 0, "tim's password set");
	is_int(step_s(s, true, "CRAM-MD5", NULL, &out), GN_SASL_CONTINUE, "CRAM-MD5 starts");
	is_str(out, "<1896.697170952@postoffice.reston.mci.net>", "with the challenge");
	gn_free(out);
	is_int(step_s(s, false, NULL, "tim b913a602c7eda7a495b4e6e7334d3890", &out), GN_SASL_FAIL,
	       "CRAM-MD5: the RFC 2195 response fails while tim has not opted in");
	gn_free(out);
	is_int(gn_auth_cram_md5_set(tim, true, &err), 0, "tim opts in");
	is_int(gn_auth_password_set(tim, "tanstaaftanstaaf", 16, &err), 0, "and sets the password again");
	ok(strstr(gn_sasl_mechanisms(s), "CRAM-MD5") != NULL, "CRAM-MD5 is offered now that it can work");
	step_s(s, true, "CRAM-MD5", NULL, &out);
	gn_free(out);
	is_int(step_s(s, false, NULL, "tim b913a602c7eda7a495b4e6e7334d3890", &out), GN_SASL_OK,
	       "CRAM-MD5: RFC 2195's response verifies from the stored state");
	gn_free(out);
	ok(gn_sasl_account_id(s) == tim, "as tim");
	step_s(s, true, "CRAM-MD5", NULL, &out);
	gn_free(out);
	is_int(step_s(s, false, NULL, "tim B913A602C7EDA7A495B4E6E7334D3890", &out), GN_SASL_OK,
	       "upper-case hex too");
	gn_free(out);
	step_s(s, true, "CRAM-MD5", NULL, &out);
	gn_free(out);
	is_int(step_s(s, false, NULL, "tim b913a602c7eda7a495b4e6e7334d3891", &out), GN_SASL_FAIL,
	       "a wrong digest fails");
	gn_free(out);
	step_s(s, true, "CRAM-MD5", NULL, &out);
	gn_free(out);
	is_int(step_s(s, false, NULL, "tim b913", &out), GN_SASL_FAIL, "a short digest fails");
	is_int(gn_sasl_failure(s), GN_SASL_FAILURE_MALFORMED, "as malformed");
	gn_free(out);
	is_int(gn_auth_cram_md5_set(tim, false, &err), 0, "tim opts out");
	step_s(s, true, "CRAM-MD5", NULL, &out);
	gn_free(out);
	is_int(step_s(s, false, NULL, "tim b913a602c7eda7a495b4e6e7334d3890", &out), GN_SASL_FAIL,
	       "after the opt-out the state is gone: fails at once");
	gn_free(out);
	ok(strstr(gn_sasl_mechanisms(s), "CRAM-MD5") == NULL,
	   "and CRAM-MD5 is no longer offered (no account can use it)");
	gn_sasl_free(&s);
	hooks.cram_challenge = NULL;

	/* Every password check costs one derivation (5b): right or wrong
	 * password, unknown user, account without credentials. */
	int64_t nopw = make_account("nopw", "nopw", "example.org");
	ok(nopw > 0, "an account without a password");
	struct gn_pool *pool = gn_pool_new();
	struct gn_auth_account *acc;
	const struct gn_auth_client cli = { .size = sizeof(cli), .protocol = "test",
					    .mechanism = "plain", .flags = GN_AUTH_CLIENT_LOCAL };
	static const struct { const char *login, *pw, *name; } cases[] = {
		{ "mjl@example.org", "p\xc3\xa4sswörd", "the right password" },
		{ "mjl@example.org", "wrong password", "a wrong password" },
		{ "ghost@example.org", "wrong password", "an unknown user" },
		{ "nopw@example.org", "wrong password", "an account without credentials" },
		{ "mjl@example.org", "bad\x01password", "a password PRECIS refuses" },
	};
	s = sasl_new_peer(&plain_peer, "test", GN_SASL_CLEARTEXT_OK);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned long before = auth_derivations;
		gn_auth_login(pool, &cli, cases[i].login, cases[i].pw, strlen(cases[i].pw), &acc, &err);
		is_int((long long)(auth_derivations - before), 1, "login with %s: one derivation",
		       cases[i].name);
		before = auth_derivations;
		pl = (size_t)snprintf(plain, sizeof(plain), "%c%s%c%s", 0, cases[i].login, 0, cases[i].pw);
		gn_sasl_start(s, "PLAIN", plain, pl);
		is_int((long long)(auth_derivations - before), 1, "SASL PLAIN with %s: one derivation",
		       cases[i].name);
	}
	gn_sasl_free(&s);
	gn_pool_free(&pool);

	/* The SASL server feeds the limiter: 3 failures a minute (config). */
	exec_ok("DELETE FROM gn_auth_failures");
	struct sasl_peer remote = plain_peer;
	remote.local = false;
	remote.remote_ip = "192.0.2.201";
	s = sasl_new_peer(&remote, "test", GN_SASL_CLEARTEXT_OK);
	pl = (size_t)snprintf(plain, sizeof(plain), "%cmjl@example.org%cwrong password", 0, 0);
	for (int i = 0; i < 3; i++)
		gn_sasl_start(s, "PLAIN", plain, pl);
	pl = (size_t)snprintf(plain, sizeof(plain), "%cmjl@example.org%c%s", 0, 0, mjl_pw);
	is_int(gn_sasl_start(s, "PLAIN", plain, pl), GN_SASL_FAIL,
	       "SASL: the 4th attempt in a minute fails, right password or not");
	is_int(gn_sasl_failure(s), GN_SASL_FAILURE_RATELIMITED, "rate limited");
	ok(gn_sasl_failure_temporary(s), "a temporary failure");
	gn_sasl_failure_smtp(gn_sasl_failure(s), &code, &enh);
	ok(code == 454 && strcmp(enh, "4.7.0") == 0, "SMTP: 454 4.7.0");
	/* A cancelled exchange is taken back: it does not count. */
	exec_ok("DELETE FROM gn_auth_failures");
	for (int i = 0; i < 5; i++) {
		gn_sasl_start(s, "SCRAM-SHA-256", NULL, 0);
		gn_sasl_step64(s, "*", 1);
	}
	q1_is("SELECT coalesce(max(failures), 0) FROM gn_auth_failures", "0",
	      "5 cancelled exchanges leave no failures counted");
	gn_sasl_start(s, "SCRAM-SHA-256", NULL, 0);
	q1_is("SELECT max(failures) FROM gn_auth_failures", "1",
	      "an open exchange counts from its start");
	gn_sasl_free(&s);
	q1_is("SELECT coalesce(max(failures), 0) FROM gn_auth_failures", "0",
	      "gn_sasl_free() of an open exchange takes it back");
	exec_ok("DELETE FROM gn_auth_failures");
	(void)mjl;
	sasl_set_test_hooks(NULL);
}

/* One attempt from ip, begun and ended with result. */
static int attempt(const char *ip, const char *protocol, const char *mech,
		   const struct gn_auth_account *acc, const char *login,
		   enum gn_auth_result result)
{
	struct gn_pool *pool = gn_pool_new();
	const struct gn_auth_client c = {
		.size = sizeof(c), .remote_ip = ip, .protocol = protocol, .mechanism = mech,
	};
	struct gn_auth_attempt *a;
	const char *err = NULL;
	int r = gn_auth_begin(pool, &c, &a, &err);
	if (r < 0)
		diag("gn_auth_begin(%s): %s", ip != NULL ? ip : "NULL", err);
	else
		gn_auth_end(a, acc, login, result, NULL);
	gn_pool_free(&pool);
	return r;
}

/* Fails n times from ip. */
static void fail_from(const char *ip, int n)
{
	for (int i = 0; i < n; i++)
		attempt(ip, "imap", "plain", NULL, "x@example.org", GN_AUTH_BADUSER);
}

static void succeed_from(const char *ip)
{
	attempt(ip, "imap", "plain", NULL, "x@example.org", GN_AUTH_OK);
}

/* Whether ip may try now: an attempt that is begun and taken back
 * (aborted), so it leaves the counters as they were. */
static int allowed(const char *ip)
{
	return attempt(ip, "imap", "plain", NULL, "x@example.org", GN_AUTH_ABORTED);
}

/* The minute passes: the current minute's counters become last minute's. */
static void next_minute(void)
{
	/* An attempt taken back leaves its counter at 0: rows of the
	 * previous minute may exist. */
	exec_ok("DELETE FROM gn_auth_failures WHERE period = 60 AND slot < "
		"floor(extract(epoch FROM now()) / 60)::bigint");
	exec_ok("UPDATE gn_auth_failures SET slot = slot - 1 WHERE period = 60");
}

static void test_limiter(void)
{
	/* Limits of the config (main): per minute 3/5/7, per day 10/20/30. */
	exec_ok("DELETE FROM gn_auth_failures");
	is_int(allowed("198.51.100.1"), 1, "v4: a fresh IP may try");
	fail_from("198.51.100.1", 2);
	is_int(allowed("198.51.100.1"), 1, "v4: 2 failures, still allowed");
	fail_from("198.51.100.1", 1);
	is_int(allowed("198.51.100.1"), 0, "v4: 3 failures in a minute: refused");
	is_int(allowed("::ffff:198.51.100.1"), 0, "v4: the same IP as IPv4-mapped IPv6: refused");
	is_int(allowed("198.51.100.2"), 1, "v4: a neighbour in the /26 may still try");
	succeed_from("198.51.100.1");
	is_int(allowed("198.51.100.1"), 1, "v4: a success clears the counters");
	q1_is("SELECT coalesce(sum(failures), 0) FROM gn_auth_failures", "0",
	      "v4: all three levels cleared");

	/* The /26 level: five IPs, one failure each. */
	fail_from("198.51.100.10", 1);
	fail_from("198.51.100.11", 1);
	fail_from("198.51.100.12", 1);
	fail_from("198.51.100.13", 1);
	fail_from("198.51.100.14", 1);
	is_int(allowed("198.51.100.15"), 0, "v4 /26: 5 failures in the network: refused");
	is_int(allowed("198.51.100.70"), 1, "v4 /26: the next /26 may try (5 < 7 in the /21)");
	is_int(allowed("198.51.103.1"), 1, "v4 /21: another /26 of the /21 may try");
	fail_from("198.51.100.70", 1);
	fail_from("198.51.100.71", 1);
	is_int(allowed("198.51.103.1"), 0, "v4 /21: 7 failures in the /21: refused");
	is_int(allowed("198.51.104.1"), 1, "v4 /21: the next /21 may try");
	next_minute();
	is_int(allowed("198.51.100.15"), 1, "v4: a minute later the /26 may try again");

	/* The day window: failures spread over minutes still add up. */
	exec_ok("DELETE FROM gn_auth_failures");
	for (int i = 0; i < 3; i++) {
		fail_from("203.0.113.5", 3);
		is_int(allowed("203.0.113.5"), 0, "day: minute %d refused after 3", i + 1);
		next_minute();
		is_int(allowed("203.0.113.5"), 1, "day: next minute allowed again (%d of 10 today)",
		       3 * (i + 1));
	}
	fail_from("203.0.113.5", 1);
	is_int(allowed("203.0.113.5"), 0, "day: 10 failures today: refused though the minute has 1");
	exec_ok("DELETE FROM gn_auth_failures WHERE period = 86400 AND slot < "
		"floor(extract(epoch FROM now()) / 86400)::bigint");
	exec_ok("UPDATE gn_auth_failures SET slot = slot - 1 WHERE period = 86400");
	is_int(allowed("203.0.113.5"), 1, "day: the next day allowed again");

	/* IPv6: /64, /48, /32. */
	exec_ok("DELETE FROM gn_auth_failures");
	fail_from("2001:db8:1:2::5", 3);
	is_int(allowed("2001:db8:1:2::5"), 0, "v6: 3 failures: refused");
	is_int(allowed("2001:db8:1:2:ffff::1"), 0, "v6: the whole /64 counts as one client");
	is_int(allowed("2001:db8:1:3::1"), 1, "v6: another /64 of the /48 may try");
	fail_from("2001:db8:1:3::1", 1);
	fail_from("2001:db8:1:4::1", 1);
	is_int(allowed("2001:db8:1:ffff::1"), 0, "v6 /48: 5 failures: refused");
	is_int(allowed("2001:db8:2::1"), 1, "v6 /32: another /48 may try");
	fail_from("2001:db8:2::1", 2);
	is_int(allowed("2001:db8:ffff::1"), 0, "v6 /32: 7 failures: refused");
	is_int(allowed("2001:db9::1"), 1, "v6: another /32 may try");
	succeed_from("2001:db8:1:2::77");
	is_int(allowed("2001:db8:1:2::5"), 1, "v6: a success in the /64 clears it");
	is_int(allowed("2001:db8:2::1"), 1, "v6: and its /32 (as mox)");

	/* Fail closed: no IP or one that does not parse is refused; only
	 * an explicit local caller goes without the limiter. */
	struct gn_pool *p0 = gn_pool_new();
	struct gn_auth_attempt *a0;
	const char *e0;
	const struct gn_auth_client noip = { .size = sizeof(noip), .protocol = "imap" };
	const struct gn_auth_client badip = { .size = sizeof(badip), .remote_ip = "not-an-ip",
					      .protocol = "imap", .flags = GN_AUTH_CLIENT_LOCAL };
	const struct gn_auth_client local = { .size = sizeof(local), .protocol = "cli",
					      .flags = GN_AUTH_CLIENT_LOCAL };
	const struct gn_auth_client nosize = { .remote_ip = "192.0.2.1", .protocol = "imap" };
	is_int(gn_auth_begin(p0, &noip, &a0, &e0), -1, "no client IP: refused");
	is_int(gn_auth_begin(p0, &badip, &a0, &e0), -1,
	       "an unparsable IP is refused, even when flagged local");
	is_int(gn_auth_begin(p0, &local, &a0, &e0), 1, "an explicit local caller: no limiter");
	gn_auth_end(a0, NULL, "x", GN_AUTH_ABORTED, NULL);
	is_int(gn_auth_begin(p0, &nosize, &a0, &e0), -1,
	       "a struct gn_auth_client without its size is refused");
	struct gn_auth_account *acc0;
	const struct gn_auth_client badip2 = { .size = sizeof(badip2), .remote_ip = "300.1.2.3",
					       .protocol = "imap", .mechanism = "plain" };
	is_int(gn_auth_login(p0, &badip2, "mjl@example.org", "p\xc3\xa4sswörd",
			     strlen("p\xc3\xa4sswörd"), &acc0, &e0), GN_AUTH_ERROR,
	       "login from an unparsable IP: an error, not a login");
	gn_pool_free(&p0);

	/* Through gn_auth_login: refused before checking the password. */
	exec_ok("DELETE FROM gn_auth_failures");
	struct gn_pool *pool = gn_pool_new();
	struct gn_auth_account *acc;
	const char *err;
	const char *pw = "p\xc3\xa4sswörd";
	for (int i = 0; i < 3; i++)
		gn_auth_login(pool, &imap_plain, "mjl@example.org", "bad-password", 12, &acc, &err);
	is_int(gn_auth_login(pool, &imap_plain, "mjl@example.org", pw, strlen(pw), &acc, &err),
	       GN_AUTH_RATELIMITED, "login: rate limited after 3 bad passwords, even with the right one");
	q1_is("SELECT count FROM gn_auth_attempts WHERE result = 'ratelimited' AND protocol = 'imap'", "1",
	      "the rate-limited attempt is recorded");
	q1_is("SELECT host(remote_ip) FROM gn_auth_attempts WHERE result = 'ratelimited' "
	      "AND protocol = 'imap'",
	      "192.0.2.10", "with the remote IP");
	next_minute();
	is_int(gn_auth_login(pool, &imap_plain, "mjl@example.org", pw, strlen(pw), &acc, &err),
	       GN_AUTH_OK, "login: a minute later the right password works");
	q1_is("SELECT coalesce(sum(failures), 0) FROM gn_auth_failures", "0",
	      "and the success cleared the counters");
	gn_pool_free(&pool);
}

/* Parallel attempts (5b): N processes, each with its own database
 * connection, try a wrong password from one IP at the same moment.  The
 * limit is 3 a minute (config); the key derivation is made slow (200000
 * iterations) so that all of them are checking at once.  Counting at the
 * start lets exactly 3 through; counting after the check would let all
 * through. */
#define PARALLEL 8

static void test_parallel(void)
{
	const char *err = NULL;
	int64_t par = make_account("par", "par", "example.org");
	long long saved = auth_set.iter_sha256;
	auth_set.iter_sha256 = 200000;
	ok(gn_auth_password_set(par, "parallel password", 17, &err) == 0,
	   "a password with 200000 iterations");
	auth_set.iter_sha256 = saved;
	exec_ok("DELETE FROM gn_auth_failures");
	/* Not across a minute boundary: the minute window would split. */
	while (time(NULL) % 60 > 55)
		sleep(1);

	int ready[2], go[2], results[2];
	if (pipe(ready) < 0 || pipe(go) < 0 || pipe(results) < 0) {
		ok(false, "pipes");
		return;
	}
	db_close();
	pid_t pids[PARALLEL];
	for (int i = 0; i < PARALLEL; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			close(go[1]);
			unsigned char res = 255;
			if (db_init(pgtest_conninfo(), &err) == 0) {
				char c = 'r', g;
				(void)!write(ready[1], &c, 1);
				(void)!read(go[0], &g, 1);	/* EOF: go */
				struct gn_pool *pool = gn_pool_new();
				struct gn_auth_account *acc;
				res = (unsigned char)gn_auth_login(pool, &imap_plain, "par@example.org",
								   "wrong password", 14, &acc, &err);
				db_close();
			}
			(void)!write(results[1], &res, 1);
			_exit(0);
		}
	}
	close(go[0]);
	close(ready[1]);
	close(results[1]);
	int n_ready = 0;
	char c;
	while (n_ready < PARALLEL && read(ready[0], &c, 1) == 1)
		n_ready++;
	is_int(n_ready, PARALLEL, "%d processes connected", PARALLEL);
	close(go[1]);	/* all at once */
	int counts[256] = { 0 };
	unsigned char r;
	for (int i = 0; i < PARALLEL && read(results[0], &r, 1) == 1; i++)
		counts[r]++;
	for (int i = 0; i < PARALLEL; i++)
		waitpid(pids[i], NULL, 0);
	close(ready[0]);
	close(results[0]);
	if (db_init(pgtest_conninfo(), &err) < 0)
		diag("reconnect: %s", err);
	is_int(counts[GN_AUTH_BADPASSWORD], 3,
	       "parallel wrong passwords from one IP: exactly the limit (3) were checked");
	is_int(counts[GN_AUTH_RATELIMITED], PARALLEL - 3, "the other %d were refused", PARALLEL - 3);
	q1_is("SELECT failures FROM gn_auth_failures WHERE net = '192.0.2.10/32' AND period = 60",
	      "3", "the counter shows the 3 failures, the refusals taken back");
	exec_ok("DELETE FROM gn_auth_failures");
}

static void test_prune(void)
{
	const char *err = NULL;
	/* Config (main): attempts_max_failures = 5, attempts_keep = 7 days. */
	exec_ok("DELETE FROM gn_auth_attempts");
	exec_ok("DELETE FROM gn_auth_failures");
	struct gn_pool *pool = gn_pool_new();
	struct gn_auth_account acc = { .id = 0 };
	char *v = q1("SELECT id FROM gn_accounts WHERE name = 'mjl'", 0, NULL);
	acc.id = strtoll(v ? v : "0", NULL, 10);
	gn_free(v);
	acc.name = "mjl";
	for (int i = 0; i < 8; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "192.0.2.%d", 100 + i);
		attempt(ip, "smtp", "login", &acc, "mjl@example.org", GN_AUTH_BADPASSWORD);
		attempt(ip, "smtp", "login", NULL, "who@example.org", GN_AUTH_BADUSER);
	}
	attempt("192.0.2.1", "smtp", "login", &acc, "mjl@example.org", GN_AUTH_OK);
	exec_ok("UPDATE gn_auth_attempts SET last_at = now() - (host(remote_ip)::inet - '192.0.2.0'::inet) * interval '1 second'");
	q1_is("SELECT count(*) FROM gn_auth_attempts", "17", "17 distinct attempts recorded");
	exec_ok("UPDATE gn_auth_failures SET expires_at = now() - interval '1 second' WHERE period = 60");
	char *before = q1("SELECT count(*) FROM gn_auth_failures", 0, NULL);
	long n = gn_auth_prune(&err);
	ok(n > 0, "prune removes rows");
	q1_is("SELECT count(*) FROM gn_auth_attempts WHERE account_id IS NOT NULL AND result <> 'ok'", "5",
	      "failures of the account capped at 5");
	q1_is("SELECT min(host(remote_ip)) FROM gn_auth_attempts WHERE account_id IS NOT NULL AND result <> 'ok'",
	      "192.0.2.100", "the newest kept");
	q1_is("SELECT count(*) FROM gn_auth_attempts WHERE account_id IS NULL", "5",
	      "failures of unknown accounts capped at 5 too");
	q1_is("SELECT count(*) FROM gn_auth_attempts WHERE result = 'ok'", "1", "successes not capped");
	q1_is("SELECT count(*) FROM gn_auth_failures WHERE period = 60", "0",
	      "expired limiter counters removed");
	char *after = q1("SELECT count(*) FROM gn_auth_failures", 0, NULL);
	ok(before && after && atoi(after) == atoi(before) / 2, "day counters kept");
	gn_free(before);
	gn_free(after);
	exec_ok("UPDATE gn_auth_attempts SET last_at = now() - interval '8 days' WHERE result = 'ok'");
	gn_auth_prune(&err);
	q1_is("SELECT count(*) FROM gn_auth_attempts WHERE result = 'ok'", "0",
	      "records older than attempts_keep removed");
	q1_is("SELECT count(*) FROM gn_auth_attempts", "10", "the recent ones stay");
	gn_pool_free(&pool);
}

/* ---- TLS public keys ---- */

/* A self-signed certificate for a new key of algorithm pk (DER). */
static bool make_cert(gnutls_pk_algorithm_t pk, unsigned bits, const char *cn,
		      gnutls_datum_t *der_r, gnutls_datum_t *spki_r)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	gnutls_pubkey_t pub;
	bool okay = false;
	gnutls_x509_privkey_init(&key);
	gnutls_x509_crt_init(&crt);
	gnutls_pubkey_init(&pub);
	unsigned char serial[] = { 0x00, 0xab, 0xcd };
	if (gnutls_x509_privkey_generate(key, pk, bits, 0) == 0 &&
	    gnutls_x509_crt_set_version(crt, 3) == 0 &&
	    gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) == 0 &&
	    gnutls_x509_crt_set_activation_time(crt, time(NULL)) == 0 &&
	    gnutls_x509_crt_set_expiration_time(crt, time(NULL) + 86400) == 0 &&
	    (cn == NULL || gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
							  cn, (unsigned)strlen(cn)) == 0) &&
	    gnutls_x509_crt_set_key(crt, key) == 0 &&
	    gnutls_x509_crt_sign2(crt, crt, key, pk == GNUTLS_PK_EDDSA_ED25519 ? GNUTLS_DIG_UNKNOWN
				  : GNUTLS_DIG_SHA256, 0) == 0 &&
	    gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, der_r) == 0 &&
	    gnutls_pubkey_import_x509(pub, crt, 0) == 0 &&
	    gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, spki_r) == 0)
		okay = true;
	gnutls_pubkey_deinit(pub);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	return okay;
}

static void test_tlspubkeys(void)
{
	const char *err = NULL;
	struct gn_pool *pool = gn_pool_new();
	struct gn_tlspubkey *k = NULL, **list;
	gnutls_datum_t der, spki, der2, spki2, der3, spki3;

	int64_t kim = make_account("kim", "kim", "example.com");
	ok(make_cert(GNUTLS_PK_EDDSA_ED25519, 0, "kim's laptop", &der, &spki), "ed25519 certificate made");
	ok(gn_tlspubkey_add(pool, "kim@example.com", NULL, false, der.data, der.size, &k, &err) == 0,
	   "ed25519 key added");
	if (k == NULL) {
		diag("add: %s", err);
		gn_pool_free(&pool);
		return;
	}
	is_str(gn_tlspubkey_fingerprint(k), gn_tlspubkey_spki_fingerprint(pool, spki.data, spki.size),
	       "fingerprint: SHA-256 of the SubjectPublicKeyInfo");
	is_int((long long)strlen(gn_tlspubkey_fingerprint(k)), 43, "fingerprint: 43 characters");
	is_str(gn_tlspubkey_type(k), "ed25519", "type ed25519");
	is_str(gn_tlspubkey_name(k), "kim's laptop", "name from the CN");
	is_str(gn_tlspubkey_account(k), "kim", "account");
	ok(gn_tlspubkey_account_id(k) == kim, "account id");
	is_str(gn_tlspubkey_login_address(k), "kim@example.com", "login address");
	ok(!gn_tlspubkey_no_imap_preauth(k), "IMAP preauth by default");
	const unsigned char *kder;
	size_t kder_len;
	gn_tlspubkey_cert(k, &kder, &kder_len);
	ok(kder_len == der.size && memcmp(kder, der.data, der.size) == 0,
	   "the certificate is kept");

	ok(gn_tlspubkey_add(pool, "kim@example.com", NULL, false, der.data, der.size, NULL, &err) < 0,
	   "the same key again is refused");
	like(err, "already registered", "as already registered");

	struct gn_tlspubkey *found = NULL;
	is_int(gn_tlspubkey_lookup(pool, spki.data, spki.size, &found, &err), 1,
	       "lookup by the peer's SPKI finds it");
	ok(found != NULL && gn_tlspubkey_account_id(found) == kim && gn_tlspubkey_login_disabled(found) == NULL,
	   "lookup gives account and login state");
	exec_ok("UPDATE gn_accounts SET login_disabled = 'no' WHERE name = 'kim'");
	gn_tlspubkey_lookup(pool, spki.data, spki.size, &found, &err);
	is_str(gn_tlspubkey_login_disabled(found), "no", "lookup reports a disabled login");
	exec_ok("UPDATE gn_accounts SET login_disabled = NULL WHERE name = 'kim'");

	ok(make_cert(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1), NULL,
		     &der2, &spki2), "P-384 certificate without subject made");
	ok(gn_tlspubkey_add(pool, "kim@example.com", "", true, der2.data, der2.size, &k, &err) == 0,
	   "P-384 key added");
	is_str(gn_tlspubkey_type(k), "ecdsa-p384", "type ecdsa-p384");
	is_str(gn_tlspubkey_name(k), "serial abcd", "no CN: name from the serial, without leading zeros");
	ok(gn_tlspubkey_no_imap_preauth(k), "no-IMAP-preauth flag kept");

	ok(make_cert(GNUTLS_PK_RSA, 1024, "small", &der3, &spki3), "RSA-1024 certificate made");
	ok(gn_tlspubkey_add(pool, "kim@example.com", NULL, false, der3.data, der3.size, NULL, &err) < 0,
	   "RSA 1024 refused");
	like(err, "2048", "saying it needs 2048 bits");
	ok(gn_tlspubkey_add(pool, "kim@EXAMPLE.com", NULL, false, der2.data, der2.size, NULL, &err) < 0,
	   "non-canonical login address refused");
	like(err, "canonical", "saying it is not canonical");
	gnutls_free(der3.data);
	gnutls_free(spki3.data);
	ok(make_cert(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), "p256",
		     &der3, &spki3), "P-256 certificate made");
	ok(gn_tlspubkey_add(pool, "nobody@example.com", NULL, false, der3.data, der3.size, NULL, &err) < 0,
	   "a canonical address of no account refused");
	like(err, "no address of an account", "saying so");
	ok(gn_tlspubkey_add(pool, "kim@example.com", NULL, false, (const unsigned char *)"junk", 4,
			    NULL, &err) < 0, "junk is no certificate");

	is_int(gn_tlspubkey_list(pool, kim, &list, &err), 2, "list of the account: 2 keys");
	is_int(gn_tlspubkey_list(pool, kim + 1000, &list, &err), 0, "list of another account: none");
	is_int(gn_tlspubkey_list(pool, 0, &list, &err), 2, "list of all");

	/* The login address moves to another account: the key no longer logs in. */
	exec_ok("INSERT INTO gn_accounts (name) VALUES ('other')");
	exec_ok("UPDATE gn_addresses SET account_id = (SELECT id FROM gn_accounts WHERE name = 'other') "
		"WHERE localpart_key = 'kim'");
	is_int(gn_tlspubkey_lookup(pool, spki.data, spki.size, &found, &err), 0,
	       "a key whose address left the account is not used");
	exec_ok("UPDATE gn_addresses SET account_id = (SELECT id FROM gn_accounts WHERE name = 'kim') "
		"WHERE localpart_key = 'kim'");

	const char *fp = gn_tlspubkey_spki_fingerprint(pool, spki.data, spki.size);
	is_int(gn_tlspubkey_remove(fp, &err), 1, "remove");
	is_int(gn_tlspubkey_remove(fp, &err), 0, "remove again: none");
	is_int(gn_tlspubkey_lookup(pool, spki.data, spki.size, &found, &err), 0, "removed: not found");
	exec_ok("DELETE FROM gn_accounts WHERE name = 'kim'");
	is_int(gn_tlspubkey_list(pool, 0, &list, &err), 0, "keys go with their account");

	gnutls_free(der.data);
	gnutls_free(spki.data);
	gnutls_free(der2.data);
	gnutls_free(spki2.data);
	gnutls_free(der3.data);
	gnutls_free(spki3.data);
	gn_pool_free(&pool);
}

int main(void)
{
	const char *err = NULL;

	log_init("test_auth");
	test_scram_vectors();
	test_cram_md5();
	test_helpers();

	ok(conf_load_string("test.conf",
			    "auth = { failures_per_minute = 3; failures_per_minute_net = 5;\n"
			    "  failures_per_minute_wide = 7; failures_per_day = 10;\n"
			    "  failures_per_day_net = 20; failures_per_day_wide = 30;\n"
			    "  attempts_max_failures = 5; attempts_keep = \"7d\"; };\n") == 0,
	   "config with an auth section");
	log_set_level(NULL, GN_LOG_WARN);
	ok(auth_register() == 0, "auth registers");
	conf_check_unused();
	is_int((long long)conf_error_count(), 0, "the auth section is claimed: no unknown settings");
	if (conf_error_count() > 0)
		conf_errors_print(stderr);

	if (!pgtest_setup("auth")) {
		ok(false, "a PostgreSQL cluster for the test");
		return done_testing();
	}
	ok(db_init(pgtest_conninfo(), &err) == 0, "database connected");
	if (!ok(db_migrate(NULL, &err) >= 0, "migrated"))
		diag("%s", err);

	test_passwords();
	test_sasl();
	test_limiter();
	test_parallel();
	test_prune();
	test_tlspubkeys();

	db_close();
	return done_testing();
}
