/*
 * core/auth/auth.c: password credentials, logins, the failed-auth limiter and the
 * record of auth attempts (gannet/auth.h), and `gannet setpassword`.
 *
 * How the parts fit:
 *   - Credentials: gn_auth_password_set() prepares the password with PRECIS
 *     OpaqueString and stores SCRAM-SHA-256 and SCRAM-SHA-1 keys (RFC 5802,
 *     RFC 7677; GnuTLS's PBKDF2 and HMAC) and the two HMAC-MD5 midstates for
 *     CRAM-MD5 (RFC 2195, RFC 2104).  GnuTLS has no API for MD5 midstates,
 *     so a small MD5 (RFC 1321) lives here; it is used for CRAM-MD5 only.
 *   - Logins: gn_auth_login() is the whole PLAIN/LOGIN path; the pieces
 *     (lookup, stored keys, finish) are public for SCRAM, CRAM-MD5 and
 *     EXTERNAL in the protocol modules.
 *   - The limiter keeps failure counters per network and fixed window in
 *     gn_auth_failures, so every process and node shares them.  Windows are
 *     aligned on the database's clock (epoch / period), like mox's limiter
 *     truncates time to the window.
 *   - Attempts are aggregated rows in gn_auth_attempts, pruned hourly by the
 *     runner job "auth-prune".
 *
 * All SQL of credentials, limiter and attempts is in this file; the TLS
 * public keys are in auth/tlspubkey.c.
 */
#include "auth/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <unistr.h>

#define SALT_LEN 16
#define PASSWORD_READ_MAX 4096
#define LOGIN_RECORD_MAX 256

/* ---- settings ---- */

static struct {
	long long minute[3], day[3];	/* failures per window, per level */
	long long keep_ms;		/* attempt records */
	long long max_failures;		/* failure records per account */
	long long iter_sha256, iter_sha1;
} set = {
	/* mox's defaults (mox.md 9.6). */
	.minute = { 10, 30, 90 },
	.day = { 50, 150, 450 },
	.keep_ms = 30LL * 86400 * 1000,
	.max_failures = 10000,
	/* mox.md 9.7: SCRAM-SHA-256 4096, SCRAM-SHA-1 8192 iterations. */
	.iter_sha256 = 4096,
	.iter_sha1 = 8192,
};

static const char *const result_names[] = {
	[GN_AUTH_OK] = "ok",
	[GN_AUTH_BADUSER] = "baduser",
	[GN_AUTH_BADPASSWORD] = "badpassword",
	[GN_AUTH_LOGINDISABLED] = "logindisabled",
	[GN_AUTH_RATELIMITED] = "ratelimited",
	[GN_AUTH_ERROR] = "error",
};

const char *gn_auth_result_name(enum gn_auth_result result)
{
	if ((unsigned)result < sizeof(result_names) / sizeof(result_names[0]))
		return result_names[result];
	return "error";
}

/* ---- small helpers ---- */

bool gn_auth_mem_equal(const void *a, const void *b, size_t len)
{
	/* gnutls_memcmp() takes time that depends on n only. */
	return gnutls_memcmp(a, b, len) == 0;
}

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

/* "\x<hex>": bytea input in text form. */
static char *bytea_param(const unsigned char *data, size_t len)
{
	char *s = gn_malloc(2 * len + 3);
	s[0] = '\\';
	s[1] = 'x';
	hex_encode(s + 2, data, len);
	return s;
}

static int set_err(const char **error_r, const char *msg)
{
	if (error_r != NULL)
		*error_r = msg;
	return -1;
}

/* The client IP in canonical text (IPv4-mapped IPv6 becomes IPv4).  Returns
 * 4 or 6, or 0 when ip is NULL or no address. */
static int ip_normalise(const char *ip, char out[INET6_ADDRSTRLEN])
{
	unsigned char a[16];
	if (ip == NULL)
		return 0;
	if (inet_pton(AF_INET, ip, a) == 1) {
		inet_ntop(AF_INET, a, out, INET6_ADDRSTRLEN);
		return 4;
	}
	if (inet_pton(AF_INET6, ip, a) != 1)
		return 0;
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (memcmp(a, mapped, 12) == 0) {
		inet_ntop(AF_INET, a + 12, out, INET6_ADDRSTRLEN);
		return 4;
	}
	inet_ntop(AF_INET6, a, out, INET6_ADDRSTRLEN);
	return 6;
}

/* ---- MD5 (RFC 1321), for the HMAC-MD5 midstates of CRAM-MD5 ---- */

struct md5 {
	uint32_t s[4];
	uint64_t bytes;
	unsigned char buf[64];
	size_t used;
};

static const uint32_t md5_k[64] = {
	0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee,
	0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
	0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
	0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
	0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa,
	0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
	0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
	0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
	0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
	0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
	0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05,
	0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
	0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039,
	0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
	0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
	0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

static const unsigned char md5_r[64] = {
	7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
	5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
	4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
	6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
};

static void md5_block(uint32_t s[4], const unsigned char *p)
{
	uint32_t w[16], a = s[0], b = s[1], c = s[2], d = s[3];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
			(uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
	for (int i = 0; i < 64; i++) {
		uint32_t f;
		int g;
		if (i < 16) {
			f = (b & c) | (~b & d);
			g = i;
		} else if (i < 32) {
			f = (d & b) | (~d & c);
			g = (5 * i + 1) % 16;
		} else if (i < 48) {
			f = b ^ c ^ d;
			g = (3 * i + 5) % 16;
		} else {
			f = c ^ (b | ~d);
			g = (7 * i) % 16;
		}
		uint32_t t = d;
		d = c;
		c = b;
		uint32_t x = a + f + md5_k[i] + w[g];
		b = b + (x << md5_r[i] | x >> (32 - md5_r[i]));
		a = t;
	}
	s[0] += a;
	s[1] += b;
	s[2] += c;
	s[3] += d;
}

static void md5_init(struct md5 *m)
{
	m->s[0] = 0x67452301;
	m->s[1] = 0xefcdab89;
	m->s[2] = 0x98badcfe;
	m->s[3] = 0x10325476;
	m->bytes = 0;
	m->used = 0;
}

static void md5_update(struct md5 *m, const void *data, size_t len)
{
	const unsigned char *p = data;
	m->bytes += len;
	while (len > 0) {
		size_t n = 64 - m->used < len ? 64 - m->used : len;
		memcpy(m->buf + m->used, p, n);
		m->used += n;
		p += n;
		len -= n;
		if (m->used == 64) {
			md5_block(m->s, m->buf);
			m->used = 0;
		}
	}
}

static void md5_words_out(const uint32_t s[4], unsigned char out[16])
{
	for (int i = 0; i < 4; i++) {
		out[4 * i] = (unsigned char)s[i];
		out[4 * i + 1] = (unsigned char)(s[i] >> 8);
		out[4 * i + 2] = (unsigned char)(s[i] >> 16);
		out[4 * i + 3] = (unsigned char)(s[i] >> 24);
	}
}

static void md5_words_in(uint32_t s[4], const unsigned char in[16])
{
	for (int i = 0; i < 4; i++)
		s[i] = (uint32_t)in[4 * i] | (uint32_t)in[4 * i + 1] << 8 |
			(uint32_t)in[4 * i + 2] << 16 | (uint32_t)in[4 * i + 3] << 24;
}

static void md5_final(struct md5 *m, unsigned char out[16])
{
	uint64_t bits = m->bytes * 8;
	unsigned char pad[72] = { 0x80 };
	size_t n = m->used < 56 ? 56 - m->used : 120 - m->used;
	unsigned char len[8];
	for (int i = 0; i < 8; i++)
		len[i] = (unsigned char)(bits >> (8 * i));
	md5_update(m, pad, n);
	md5_update(m, len, 8);
	md5_words_out(m->s, out);
	gnutls_memset(m, 0, sizeof(*m));
}

/* ---- CRAM-MD5 (RFC 2195) over HMAC-MD5 (RFC 2104) ---- */

void gn_auth_cram_md5_prepare(const char *key, size_t key_len,
			      struct gn_auth_cram_md5 *state_r)
{
	unsigned char k[64] = { 0 }, block[64];
	struct md5 m;

	/* RFC 2104 2: keys longer than the block are hashed first. */
	if (key_len > 64) {
		md5_init(&m);
		md5_update(&m, key, key_len);
		md5_final(&m, k);
	} else {
		memcpy(k, key, key_len);
	}
	for (int i = 0; i < 64; i++)
		block[i] = k[i] ^ 0x36;
	md5_init(&m);
	md5_block(m.s, block);
	md5_words_out(m.s, state_r->inner);
	for (int i = 0; i < 64; i++)
		block[i] = k[i] ^ 0x5c;
	md5_init(&m);
	md5_block(m.s, block);
	md5_words_out(m.s, state_r->outer);
	gnutls_memset(k, 0, sizeof(k));
	gnutls_memset(block, 0, sizeof(block));
	gnutls_memset(&m, 0, sizeof(m));
}

void gn_auth_cram_md5_digest(const struct gn_auth_cram_md5 *state,
			     const char *text, size_t text_len,
			     unsigned char digest_r[16])
{
	struct md5 m;
	unsigned char inner[16];

	md5_init(&m);
	md5_words_in(m.s, state->inner);
	m.bytes = 64;
	md5_update(&m, text, text_len);
	md5_final(&m, inner);

	md5_init(&m);
	md5_words_in(m.s, state->outer);
	m.bytes = 64;
	md5_update(&m, inner, sizeof(inner));
	md5_final(&m, digest_r);
}

/* ---- SCRAM (RFC 5802 3, RFC 7677) ---- */

int gn_auth_scram_derive(struct gn_auth_scram *scram, const char *password,
			 size_t password_len, unsigned char *salted_r,
			 const char **error_r)
{
	gnutls_mac_algorithm_t mac;
	gnutls_digest_algorithm_t dig;
	unsigned char salted[GN_SCRAM_KEY_MAX], client_key[GN_SCRAM_KEY_MAX];

	switch (scram->hash) {
	case GN_SCRAM_SHA1:
		mac = GNUTLS_MAC_SHA1;
		dig = GNUTLS_DIG_SHA1;
		scram->key_len = 20;
		break;
	case GN_SCRAM_SHA256:
		mac = GNUTLS_MAC_SHA256;
		dig = GNUTLS_DIG_SHA256;
		scram->key_len = 32;
		break;
	default:
		return set_err(error_r, "unknown SCRAM hash");
	}
	if (scram->iterations == 0 || scram->salt_len == 0 ||
	    scram->salt_len > sizeof(scram->salt))
		return set_err(error_r, "bad SCRAM salt or iteration count");

	/* SaltedPassword := Hi(Normalize(password), salt, i): Hi is PBKDF2
	 * with HMAC as the PRF and dkLen the hash's output length. */
	gnutls_datum_t key = { (unsigned char *)password, (unsigned)password_len };
	gnutls_datum_t salt = { scram->salt, (unsigned)scram->salt_len };
	if (gnutls_pbkdf2(mac, &key, &salt, scram->iterations, salted,
			  scram->key_len) < 0)
		return set_err(error_r, "PBKDF2 failed");
	/* ClientKey := HMAC(SaltedPassword, "Client Key"); StoredKey :=
	 * H(ClientKey); ServerKey := HMAC(SaltedPassword, "Server Key"). */
	int r = gnutls_hmac_fast(mac, salted, scram->key_len, "Client Key", 10,
				 client_key);
	if (r == 0)
		r = gnutls_hash_fast(dig, client_key, scram->key_len,
				     scram->stored_key);
	if (r == 0)
		r = gnutls_hmac_fast(mac, salted, scram->key_len, "Server Key", 10,
				     scram->server_key);
	if (r == 0 && salted_r != NULL)
		memcpy(salted_r, salted, scram->key_len);
	gnutls_memset(salted, 0, sizeof(salted));
	gnutls_memset(client_key, 0, sizeof(client_key));
	if (r < 0)
		return set_err(error_r, "HMAC failed");
	return 0;
}

/* ---- credentials ---- */

/* PRECIS OpaqueString (RFC 8265 4.2), for setting and checking alike. */
static int password_prepare(const char *password, size_t len, char **out_r,
			    const char **error_r)
{
	return gn_precis_opaque(password, len, out_r, error_r);
}

static void free_secret(char *s)
{
	if (s != NULL) {
		gnutls_memset(s, 0, strlen(s));
		gn_free(s);
	}
}

static int scram_new(struct gn_auth_scram *s, enum gn_auth_scram_hash hash,
		     unsigned iterations, const char *password,
		     const char **error_r)
{
	memset(s, 0, sizeof(*s));
	s->hash = hash;
	s->iterations = iterations;
	s->salt_len = SALT_LEN;
	if (gnutls_rnd(GNUTLS_RND_RANDOM, s->salt, SALT_LEN) < 0)
		return set_err(error_r, "no random numbers");
	return gn_auth_scram_derive(s, password, strlen(password), NULL, error_r);
}

int gn_auth_password_set(int64_t account_id, const char *password,
			 size_t password_len, const char **error_r)
{
	char *prep = NULL;
	struct gn_auth_scram s256, s1;
	struct gn_auth_cram_md5 cram;

	if (password_prepare(password, password_len, &prep, error_r) < 0)
		return -1;
	if (strlen(prep) < GN_AUTH_PASSWORD_MIN) {
		free_secret(prep);
		return set_err(error_r, "password too short: at least 8 bytes");
	}
	if (scram_new(&s256, GN_SCRAM_SHA256, (unsigned)set.iter_sha256, prep, error_r) < 0 ||
	    scram_new(&s1, GN_SCRAM_SHA1, (unsigned)set.iter_sha1, prep, error_r) < 0) {
		free_secret(prep);
		return -1;
	}
	gn_auth_cram_md5_prepare(prep, strlen(prep), &cram);
	free_secret(prep);

	char id[24], it256[16], it1[16];
	snprintf(id, sizeof(id), "%lld", (long long)account_id);
	snprintf(it256, sizeof(it256), "%u", s256.iterations);
	snprintf(it1, sizeof(it1), "%u", s1.iterations);
	char *v[] = {
		bytea_param(s256.salt, s256.salt_len),
		bytea_param(s256.stored_key, s256.key_len),
		bytea_param(s256.server_key, s256.key_len),
		bytea_param(s1.salt, s1.salt_len),
		bytea_param(s1.stored_key, s1.key_len),
		bytea_param(s1.server_key, s1.key_len),
		bytea_param(cram.inner, 16),
		bytea_param(cram.outer, 16),
	};
	const char *params[] = { id, v[0], it256, v[1], v[2], v[3], it1, v[4],
				 v[5], v[6], v[7] };
	int r = gn_db_exec(
		"INSERT INTO gn_credentials (account_id, scram_sha256_salt, "
		"scram_sha256_iterations, scram_sha256_stored_key, scram_sha256_server_key, "
		"scram_sha1_salt, scram_sha1_iterations, scram_sha1_stored_key, "
		"scram_sha1_server_key, cram_md5_inner, cram_md5_outer) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
		"ON CONFLICT (account_id) DO UPDATE SET "
		"scram_sha256_salt = $2, scram_sha256_iterations = $3, "
		"scram_sha256_stored_key = $4, scram_sha256_server_key = $5, "
		"scram_sha1_salt = $6, scram_sha1_iterations = $7, "
		"scram_sha1_stored_key = $8, scram_sha1_server_key = $9, "
		"cram_md5_inner = $10, cram_md5_outer = $11, changed_at = now()",
		11, params, error_r);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
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
	snprintf(id, sizeof(id), "%lld", (long long)account_id);
	const char *params[] = { id };
	PGresult *res = gn_db_query("DELETE FROM gn_credentials WHERE account_id = $1",
				    1, params, error_r);
	if (res == NULL)
		return -1;
	int n = atoi(PQcmdTuples(res));
	PQclear(res);
	return n > 0 ? 1 : 0;
}

int gn_auth_scram_get(int64_t account_id, enum gn_auth_scram_hash hash,
		      struct gn_auth_scram *scram_r, const char **error_r)
{
	const char *sql;
	size_t key_len;
	if (hash == GN_SCRAM_SHA256) {
		sql = "SELECT encode(scram_sha256_salt, 'hex'), scram_sha256_iterations, "
			"encode(scram_sha256_stored_key, 'hex'), encode(scram_sha256_server_key, 'hex') "
			"FROM gn_credentials WHERE account_id = $1";
		key_len = 32;
	} else if (hash == GN_SCRAM_SHA1) {
		sql = "SELECT encode(scram_sha1_salt, 'hex'), scram_sha1_iterations, "
			"encode(scram_sha1_stored_key, 'hex'), encode(scram_sha1_server_key, 'hex') "
			"FROM gn_credentials WHERE account_id = $1";
		key_len = 20;
	} else {
		return set_err(error_r, "unknown SCRAM hash");
	}
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)account_id);
	const char *params[] = { id };
	PGresult *res = gn_db_query(sql, 1, params, error_r);
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
		bytea_get(res, 0, 2, scram_r->stored_key, GN_SCRAM_KEY_MAX, &l1) < 0 ||
		bytea_get(res, 0, 3, scram_r->server_key, GN_SCRAM_KEY_MAX, &l2) < 0 ||
		l1 != key_len || l2 != key_len || iter <= 0;
	PQclear(res);
	if (bad)
		return set_err(error_r, "stored SCRAM keys are damaged");
	scram_r->iterations = (unsigned)iter;
	return 1;
}

/* Checks an already prepared password against the stored SCRAM-SHA-256
 * keys: 1 match, 0 no, -1 error. */
static int verify_prepared(int64_t account_id, const char *prep,
			   const char **error_r)
{
	struct gn_auth_scram stored, mine;
	int r = gn_auth_scram_get(account_id, GN_SCRAM_SHA256, &stored, error_r);
	if (r <= 0)
		return r;
	mine = stored;
	if (gn_auth_scram_derive(&mine, prep, strlen(prep), NULL, error_r) < 0)
		return -1;
	r = gn_auth_mem_equal(mine.stored_key, stored.stored_key, stored.key_len) ? 1 : 0;
	gnutls_memset(&mine, 0, sizeof(mine));
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
	int r = verify_prepared(account_id, prep, error_r);
	free_secret(prep);
	return r;
}

int gn_auth_cram_md5_verify(int64_t account_id, const char *challenge,
			    size_t challenge_len, const char *hex_digest,
			    const char **error_r)
{
	unsigned char want[16], got[16];
	struct gn_auth_cram_md5 state;
	size_t l1, l2;

	if (hex_digest == NULL || strlen(hex_digest) != 32 ||
	    hex_decode(want, hex_digest, 32) < 0)
		return 0;
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)account_id);
	const char *params[] = { id };
	PGresult *res = gn_db_query(
		"SELECT encode(cram_md5_inner, 'hex'), encode(cram_md5_outer, 'hex') "
		"FROM gn_credentials WHERE account_id = $1", 1, params, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	int bad = bytea_get(res, 0, 0, state.inner, 16, &l1) < 0 ||
		bytea_get(res, 0, 1, state.outer, 16, &l2) < 0 || l1 != 16 || l2 != 16;
	PQclear(res);
	if (bad)
		return set_err(error_r, "stored CRAM-MD5 state is damaged");
	gn_auth_cram_md5_digest(&state, challenge, challenge_len, got);
	gnutls_memset(&state, 0, sizeof(state));
	return gn_auth_mem_equal(got, want, 16) ? 1 : 0;
}

/* ---- looking up logins ---- */

static struct gn_auth_account *account_from_row(struct gn_pool *pool,
						const PGresult *res, int row)
{
	struct gn_auth_account *a = gn_pool_alloc(pool, sizeof(*a));
	a->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
	a->name = gn_pool_strdup(pool, PQgetvalue(res, row, 1));
	a->login_disabled = PQgetisnull(res, row, 2) ? NULL
		: gn_pool_strdup(pool, PQgetvalue(res, row, 2));
	struct gn_addr *addr;
	const char *err;
	if (gn_addr_from_parts(pool, PQgetvalue(res, row, 3), PQgetvalue(res, row, 4),
			       &addr, &err) == 0)
		a->address = gn_addr_to_string(pool, addr);
	else
		a->address = gn_pool_printf(pool, "%s@%s", PQgetvalue(res, row, 3),
					    PQgetvalue(res, row, 4));
	return a;
}

int gn_auth_lookup(struct gn_pool *pool, const char *login,
		   struct gn_auth_account **account_r, const char **error_r)
{
	struct gn_addr *addr;
	const char *err;

	/* gn_addr_parse() normalises the localpart to NFC and the domain to
	 * A-labels; the lookup key is the lower-cased localpart, as stored. */
	if (login == NULL || gn_addr_parse(pool, login, strlen(login), &addr, &err) < 0)
		return 0;
	struct gn_addr *key = gn_addr_fold(pool, addr);
	const char *params[] = { key->domain, key->localpart };
	PGresult *res = gn_db_query(
		"SELECT a.id, a.name, a.login_disabled, ad.localpart, d.name "
		"FROM gn_addresses ad JOIN gn_domains d ON d.id = ad.domain_id "
		"JOIN gn_accounts a ON a.id = ad.account_id "
		"WHERE d.name = $1 AND ad.localpart_key = $2", 2, params, error_r);
	if (res == NULL)
		return -1;
	int n = PQntuples(res);
	if (n > 0)
		*account_r = account_from_row(pool, res, 0);
	PQclear(res);
	return n > 0 ? 1 : 0;
}

/* ---- the limiter ---- */

/* The three masks of an address family, as a PostgreSQL int[] literal. */
static const char *masks_for(int family)
{
	return family == 4 ? "{32,26,21}" : "{64,48,32}";
}

/* The client's networks at the three levels, with their level (1..3). */
#define NETS_CTE \
	"WITH n AS (SELECT network(set_masklen($1::inet, m)) AS net, lvl::int AS lvl " \
	"FROM unnest($2::int[]) WITH ORDINALITY AS u(m, lvl)) "

int gn_auth_allowed(const char *ip, const char **error_r)
{
	char norm[INET6_ADDRSTRLEN];
	int family = ip_normalise(ip, norm);
	if (family == 0)
		return 1;
	char minute[64], day[64];
	snprintf(minute, sizeof(minute), "{%lld,%lld,%lld}", set.minute[0],
		 set.minute[1], set.minute[2]);
	snprintf(day, sizeof(day), "{%lld,%lld,%lld}", set.day[0], set.day[1],
		 set.day[2]);
	const char *params[] = { norm, masks_for(family), minute, day };
	PGresult *res = gn_db_query(
		NETS_CTE
		"SELECT count(*) FROM gn_auth_failures f JOIN n ON f.net = n.net "
		"WHERE (f.period = 60 AND f.slot = floor(extract(epoch FROM now()) / 60)::bigint "
		"       AND f.failures >= ($3::int[])[n.lvl]) "
		"   OR (f.period = 86400 AND f.slot = floor(extract(epoch FROM now()) / 86400)::bigint "
		"       AND f.failures >= ($4::int[])[n.lvl])", 4, params, error_r);
	if (res == NULL)
		return -1;
	long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return n > 0 ? 0 : 1;
}

static int limiter_failed(const char *norm, int family, const char **error_r)
{
	const char *params[] = { norm, masks_for(family) };
	return gn_db_exec(
		NETS_CTE
		"INSERT INTO gn_auth_failures (net, period, slot, failures, expires_at) "
		"SELECT n.net, p.period, floor(extract(epoch FROM now()) / p.period)::bigint, 1, "
		"       to_timestamp((floor(extract(epoch FROM now()) / p.period) + 1) * p.period) "
		"FROM n CROSS JOIN (VALUES (60), (86400)) AS p(period) "
		"ON CONFLICT (net, period, slot) DO UPDATE "
		"SET failures = gn_auth_failures.failures + 1", 2, params, error_r);
}

static int limiter_reset(const char *norm, int family, const char **error_r)
{
	/* As mox: a success clears the counters of all three levels. */
	const char *params[] = { norm, masks_for(family) };
	return gn_db_exec(NETS_CTE
			  "DELETE FROM gn_auth_failures WHERE net IN (SELECT net FROM n)",
			  2, params, error_r);
}

/* ---- attempt records ---- */

/* The login as given, made storable: valid UTF-8 without controls, at most
 * LOGIN_RECORD_MAX bytes; other bytes become '?'. */
static char *login_for_record(struct gn_pool *pool, const char *login)
{
	return text_clean(pool, login, login != NULL ? strlen(login) : 0, LOGIN_RECORD_MAX);
}

/* The key of an aggregated attempt row: SHA-256 over length-prefixed
 * fields, in hex. */
static void attempt_key(char out[65], const char *const *fields, size_t n)
{
	gnutls_hash_hd_t h;
	unsigned char d[32];
	if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0) {
		memset(d, 0, sizeof(d));
	} else {
		for (size_t i = 0; i < n; i++) {
			const char *f = fields[i] != NULL ? fields[i] : "";
			char len[24];
			int l = snprintf(len, sizeof(len), "%zu:", strlen(f));
			gnutls_hash(h, len, (size_t)l);
			gnutls_hash(h, f, strlen(f));
		}
		gnutls_hash_deinit(h, d);
	}
	hex_encode(out, d, sizeof(d));
}

static int attempt_record(const struct gn_auth_client *client,
			  const struct gn_auth_account *account,
			  const char *login, const char *ip,
			  enum gn_auth_result result, const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	char id[24] = "", key[65];
	if (account != NULL)
		snprintf(id, sizeof(id), "%lld", (long long)account->id);
	const char *protocol = client != NULL && client->protocol != NULL
		? client->protocol : "unknown";
	const char *mech = client != NULL && client->mechanism != NULL
		? client->mechanism : "unknown";
	const char *fields[] = { id, login_for_record(pool, login), ip != NULL ? ip : "",
				 protocol, mech, gn_auth_result_name(result) };
	attempt_key(key, fields, 6);
	const char *params[] = { key, account != NULL ? id : NULL, fields[1], ip,
				 protocol, mech, fields[5] };
	int r = gn_db_exec(
		"INSERT INTO gn_auth_attempts (attempt_key, account_id, login, remote_ip, "
		"protocol, mechanism, result) VALUES (decode($1, 'hex'), $2, $3, $4::inet, $5, $6, $7) "
		"ON CONFLICT (attempt_key) DO UPDATE SET last_at = now(), "
		"count = gn_auth_attempts.count + 1", 7, params, error_r);
	gn_pool_free(&pool);
	return r;
}

int gn_auth_finish(const struct gn_auth_client *client,
		   const struct gn_auth_account *account, const char *login,
		   enum gn_auth_result result, const char **error_r)
{
	char norm[INET6_ADDRSTRLEN];
	int family = ip_normalise(client != NULL ? client->remote_ip : NULL, norm);
	int ret = 0;
	const char *err = NULL;

	if (attempt_record(client, account, login, family ? norm : NULL, result, &err) < 0)
		ret = -1;
	if (family != 0) {
		int r = 0;
		if (result == GN_AUTH_OK)
			r = limiter_reset(norm, family, ret < 0 ? NULL : &err);
		else if (result == GN_AUTH_BADUSER || result == GN_AUTH_BADPASSWORD)
			r = limiter_failed(norm, family, ret < 0 ? NULL : &err);
		if (r < 0)
			ret = -1;
	}
	if (ret < 0 && error_r != NULL)
		*error_r = err;
	gn_log(result == GN_AUTH_OK ? GN_LOG_DEBUG : GN_LOG_INFO, "auth",
	       "event=auth result=%s protocol=%s mech=%s ip=%s account=%s",
	       gn_auth_result_name(result),
	       client != NULL && client->protocol != NULL ? client->protocol : "-",
	       client != NULL && client->mechanism != NULL ? client->mechanism : "-",
	       family ? norm : "-",
	       account != NULL ? gn_log_quote(0, account->name) : "-");
	return ret;
}

/* Spends the time of a real check when the user does not exist, so timing
 * does not tell which logins exist. */
static void dummy_check(const char *prep)
{
	struct gn_auth_scram s = { .hash = GN_SCRAM_SHA256, .salt_len = SALT_LEN };
	s.iterations = (unsigned)set.iter_sha256;
	memset(s.salt, 0x5a, SALT_LEN);
	(void)gn_auth_scram_derive(&s, prep, strlen(prep), NULL, NULL);
}

enum gn_auth_result gn_auth_login(struct gn_pool *pool,
				  const struct gn_auth_client *client,
				  const char *login, const char *password,
				  size_t password_len,
				  struct gn_auth_account **account_r,
				  const char **error_r)
{
	struct gn_auth_account *account = NULL;
	enum gn_auth_result result;
	const char *err = NULL;
	char *prep = NULL;

	*account_r = NULL;
	int r = gn_auth_allowed(client != NULL ? client->remote_ip : NULL, &err);
	if (r < 0) {
		if (error_r != NULL)
			*error_r = err;
		return GN_AUTH_ERROR;
	}
	if (r == 0) {
		result = GN_AUTH_RATELIMITED;
		goto done;
	}
	r = gn_auth_lookup(pool, login, &account, &err);
	if (r < 0) {
		result = GN_AUTH_ERROR;
		goto done;
	}
	const char *perr;
	bool prepared = password_prepare(password, password_len, &prep, &perr) == 0;
	if (r == 0) {
		if (prepared)
			dummy_check(prep);
		result = GN_AUTH_BADUSER;
		goto done;
	}
	if (!prepared) {
		result = GN_AUTH_BADPASSWORD;
		goto done;
	}
	r = verify_prepared(account->id, prep, &err);
	if (r < 0)
		result = GN_AUTH_ERROR;
	else if (r == 0)
		result = GN_AUTH_BADPASSWORD;
	/* As mox: the disabled flag is told only to who knows the password. */
	else if (account->login_disabled != NULL)
		result = GN_AUTH_LOGINDISABLED;
	else
		result = GN_AUTH_OK;
done:
	free_secret(prep);
	if (result == GN_AUTH_ERROR) {
		if (error_r != NULL)
			*error_r = err != NULL ? gn_pool_strdup(pool, err) : "error";
	}
	(void)gn_auth_finish(client, result == GN_AUTH_BADUSER ? NULL : account,
			     login, result, NULL);
	if (result == GN_AUTH_OK || result == GN_AUTH_LOGINDISABLED)
		*account_r = account;
	return result;
}

/* ---- pruning ---- */

static long exec_count(const char *sql, int n, const char *const *params,
		       const char **error_r)
{
	PGresult *res = gn_db_query(sql, n, params, error_r);
	if (res == NULL)
		return -1;
	long c = strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return c;
}

long gn_auth_prune(const char **error_r)
{
	char keep[32], max[32];
	snprintf(keep, sizeof(keep), "%lld", set.keep_ms / 1000);
	snprintf(max, sizeof(max), "%lld", set.max_failures);
	const char *p1[] = { keep };
	const char *p2[] = { max };
	long a = exec_count("DELETE FROM gn_auth_attempts "
			    "WHERE last_at < now() - make_interval(secs => $1::bigint)",
			    1, p1, error_r);
	if (a < 0)
		return -1;
	/* Failure rows beyond the cap, per account; unknown accounts (NULL)
	 * form one partition. */
	long b = exec_count("DELETE FROM gn_auth_attempts a USING ("
			    "SELECT attempt_key, row_number() OVER (PARTITION BY account_id "
			    "ORDER BY last_at DESC, attempt_key) AS rn FROM gn_auth_attempts "
			    "WHERE result <> 'ok') x "
			    "WHERE a.attempt_key = x.attempt_key AND x.rn > $1::bigint",
			    1, p2, error_r);
	if (b < 0)
		return -1;
	long c = exec_count("DELETE FROM gn_auth_failures WHERE expires_at <= now()",
			    0, NULL, error_r);
	if (c < 0)
		return -1;
	return a + b + c;
}

static void prune_job(void *data)
{
	(void)data;
	const char *error;
	long n = gn_auth_prune(&error);
	if (n < 0)
		gn_log(GN_LOG_WARN, "auth", "event=prune_failed error=%s",
		       gn_log_quote(0, error));
	else if (n > 0)
		gn_log(GN_LOG_DEBUG, "auth", "event=pruned rows=%ld", n);
}

/* ---- gannet setpassword ACCOUNT ---- */

/* Reads one line from fd 0 into buf (without the line end).  Returns its
 * length, or -1 at end of input without data or when it is too long. */
static ssize_t read_line(char *buf, size_t size)
{
	size_t n = 0;
	for (;;) {
		char c;
		ssize_t r = read(0, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return n > 0 ? (ssize_t)n : -1;
		if (c == '\n')
			break;
		if (n + 1 >= size)
			return -1;
		buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (ssize_t)n;
}

static ssize_t prompt_secret(const char *prompt, char *buf, size_t size)
{
	struct termios old, quiet;
	/* Echo goes off before the prompt shows, so nothing typed after
	 * the prompt is ever echoed. */
	bool restore = tcgetattr(0, &old) == 0;
	if (restore) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		tcsetattr(0, TCSAFLUSH, &quiet);
	}
	fputs(prompt, stderr);
	fflush(stderr);
	ssize_t n = read_line(buf, size);
	if (restore)
		tcsetattr(0, TCSANOW, &old);
	return n;
}

static int cmd_setpassword(int argc, char **argv, void *data)
{
	(void)data;
	const char *error;
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: gannet setpassword ACCOUNT\n");
		return 2;
	}
	const char *params[] = { argv[1] };
	PGresult *res = gn_db_query("SELECT id FROM gn_accounts WHERE name = $1",
				    1, params, &error);
	if (res == NULL) {
		fprintf(stderr, "gannet: database: %s\n", error);
		return 1;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		fprintf(stderr, "gannet: no such account: %s\n", argv[1]);
		return 1;
	}
	int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);

	char *pw = gn_malloc(PASSWORD_READ_MAX), *again = gn_malloc(PASSWORD_READ_MAX);
	ssize_t n;
	int ret = 1;
	if (isatty(0)) {
		n = prompt_secret("New password: ", pw, PASSWORD_READ_MAX);
		ssize_t n2 = n < 0 ? -1 : prompt_secret("Repeat password: ", again, PASSWORD_READ_MAX);
		if (n < 0 || n2 < 0) {
			fprintf(stderr, "gannet: no password given\n");
			goto out;
		}
		if (n != n2 || memcmp(pw, again, (size_t)n) != 0) {
			fprintf(stderr, "gannet: the passwords do not match\n");
			goto out;
		}
	} else {
		/* Not a terminal: the first line of stdin. */
		n = read_line(pw, PASSWORD_READ_MAX);
		if (n < 0) {
			fprintf(stderr, "gannet: no password on stdin (or longer than %d bytes)\n",
				PASSWORD_READ_MAX - 1);
			goto out;
		}
	}
	if (gn_auth_password_set(id, pw, (size_t)n, &error) < 0) {
		fprintf(stderr, "gannet: password for %s: %s\n", argv[1], error);
		goto out;
	}
	fprintf(stderr, "gannet: password of %s set\n", argv[1]);
	ret = 0;
out:
	gnutls_memset(pw, 0, PASSWORD_READ_MAX);
	gnutls_memset(again, 0, PASSWORD_READ_MAX);
	gn_free(pw);
	gn_free(again);
	return ret;
}

/* ---- register ---- */

static void read_settings(void)
{
	/* The top-level group "auth" is the core's: reading it through the
	 * section getters marks it, so conf_check_unused() accepts it. */
	struct gn_config *c = conf_module_section("auth");
	static const char *const minute[] = { "failures_per_minute",
		"failures_per_minute_net", "failures_per_minute_wide" };
	static const char *const day[] = { "failures_per_day",
		"failures_per_day_net", "failures_per_day_wide" };
	static const long long dmin[] = { 10, 30, 90 }, dday[] = { 50, 150, 450 };
	for (int i = 0; i < 3; i++) {
		gn_config_int(c, minute[i], dmin[i], 1, 1000000000, &set.minute[i]);
		gn_config_int(c, day[i], dday[i], 1, 1000000000, &set.day[i]);
	}
	gn_config_duration_ms(c, "attempts_keep", 30LL * 86400 * 1000, &set.keep_ms);
	if (set.keep_ms < 1000)
		set.keep_ms = 1000;
	gn_config_int(c, "attempts_max_failures", 10000, 1, 100000000, &set.max_failures);
	gn_config_int(c, "scram_sha256_iterations", 4096, 4096, 10000000, &set.iter_sha256);
	gn_config_int(c, "scram_sha1_iterations", 8192, 4096, 10000000, &set.iter_sha1);
}

int auth_register(void)
{
	const char *error;
	int ret = 0;

	read_settings();
	struct gn_module_ctx *ctx = modules_core_ctx();
	if (gn_cli_register(ctx, "setpassword", "ACCOUNT  (reads the password from the terminal or stdin)",
			    cmd_setpassword, NULL, &error) < 0) {
		conf_error("%s", error);
		ret = -1;
	}
	if (gn_runner_job_register(ctx, "auth-prune", 3600UL * 1000, prune_job, NULL,
				   &error) < 0) {
		conf_error("%s", error);
		ret = -1;
	}
	return ret;
}
