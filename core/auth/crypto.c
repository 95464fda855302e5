/*
 * core/auth/crypto.c: the pure computations of the auth layer, no I/O.
 *
 *   - SCRAM keys (RFC 5802 3, RFC 7677) with GnuTLS's PBKDF2 and HMAC;
 *     every derivation is counted (auth_derivations) so the tests can see
 *     that each password check costs the same.
 *   - CRAM-MD5 (RFC 2195) from the HMAC-MD5 (RFC 2104) midstates: GnuTLS
 *     has no API for MD5 midstates, so a small MD5 (RFC 1321) lives here;
 *     it is used for CRAM-MD5 only.
 *   - base64 (RFC 4648 4), strict, as SASL carries it.
 */
#include "auth/internal.h"

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <stdint.h>
#include <string.h>

unsigned long auth_derivations;

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

void cram_md5_prepare(const char *key, size_t key_len,
		      struct auth_cram_md5 *state_r)
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

void cram_md5_digest(const struct auth_cram_md5 *state, const void *text,
		     size_t text_len, unsigned char digest_r[16])
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

static int scram_algs(enum scram_hash hash, gnutls_mac_algorithm_t *mac_r,
		      gnutls_digest_algorithm_t *dig_r)
{
	switch (hash) {
	case SCRAM_SHA1:
		*mac_r = GNUTLS_MAC_SHA1;
		*dig_r = GNUTLS_DIG_SHA1;
		return 20;
	case SCRAM_SHA256:
		*mac_r = GNUTLS_MAC_SHA256;
		*dig_r = GNUTLS_DIG_SHA256;
		return 32;
	}
	return -1;
}

size_t scram_key_len(enum scram_hash hash)
{
	gnutls_mac_algorithm_t mac;
	gnutls_digest_algorithm_t dig;
	int n = scram_algs(hash, &mac, &dig);
	return n < 0 ? 0 : (size_t)n;
}

int scram_hmac(enum scram_hash hash, const unsigned char *key, size_t key_len,
	       const void *data, size_t len, unsigned char *out)
{
	gnutls_mac_algorithm_t mac;
	gnutls_digest_algorithm_t dig;
	if (scram_algs(hash, &mac, &dig) < 0)
		return -1;
	return gnutls_hmac_fast(mac, key, key_len, data, len, out) < 0 ? -1 : 0;
}

int scram_h(enum scram_hash hash, const void *data, size_t len,
	    unsigned char *out)
{
	gnutls_mac_algorithm_t mac;
	gnutls_digest_algorithm_t dig;
	if (scram_algs(hash, &mac, &dig) < 0)
		return -1;
	return gnutls_hash_fast(dig, data, len, out) < 0 ? -1 : 0;
}

int scram_derive(struct auth_scram *scram, const char *password,
		 size_t password_len, unsigned char *salted_r,
		 const char **error_r)
{
	gnutls_mac_algorithm_t mac;
	gnutls_digest_algorithm_t dig;
	unsigned char salted[SCRAM_KEY_MAX], client_key[SCRAM_KEY_MAX];

	int n = scram_algs(scram->hash, &mac, &dig);
	if (n < 0)
		return auth_err(error_r, "unknown SCRAM hash");
	scram->key_len = (size_t)n;
	if (scram->iterations == 0 || scram->salt_len == 0 ||
	    scram->salt_len > sizeof(scram->salt))
		return auth_err(error_r, "bad SCRAM salt or iteration count");

	/* SaltedPassword := Hi(Normalize(password), salt, i): Hi is PBKDF2
	 * with HMAC as the PRF and dkLen the hash's output length. */
	gnutls_datum_t key = { (unsigned char *)password, (unsigned)password_len };
	gnutls_datum_t salt = { scram->salt, (unsigned)scram->salt_len };
	auth_derivations++;
	if (gnutls_pbkdf2(mac, &key, &salt, scram->iterations, salted,
			  scram->key_len) < 0)
		return auth_err(error_r, "PBKDF2 failed");
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
		return auth_err(error_r, "HMAC failed");
	return 0;
}

/* ---- base64 (RFC 4648 4) ---- */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *b64_encode(struct gn_pool *pool, const void *data, size_t len)
{
	const unsigned char *in = data;
	char *out = gn_pool_alloc(pool, (len + 2) / 3 * 4 + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = i + 1 < len ? b64_alphabet[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long b64_decode(struct gn_pool *pool, const char *in, size_t len,
		unsigned char **out_r)
{
	/* Padded groups of four only; "=" only at the end, and the bits
	 * the padding drops must be zero (RFC 4648 3.5: a strict decoder
	 * refuses non-canonical encodings). */
	if (len % 4 != 0)
		return -1;
	unsigned char *out = gn_pool_alloc(pool, len / 4 * 3 + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		size_t pad = 0;
		for (int j = 0; j < 4; j++) {
			unsigned char c = (unsigned char)in[i + (size_t)j];
			if (c == '=' && i + 4 == len && j >= 2) {
				v[j] = 0;
				pad++;
				continue;
			}
			if (pad > 0)
				return -1;
			v[j] = b64_value(c);
			if (v[j] < 0)
				return -1;
		}
		unsigned w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 |
			(unsigned)v[2] << 6 | (unsigned)v[3];
		if ((pad == 1 && (w & 0xff) != 0) || (pad == 2 && (w & 0xffff) != 0))
			return -1;
		out[o++] = (unsigned char)(w >> 16);
		if (pad < 2)
			out[o++] = (unsigned char)(w >> 8);
		if (pad < 1)
			out[o++] = (unsigned char)w;
	}
	out[o] = '\0';
	*out_r = out;
	return (long)o;
}
