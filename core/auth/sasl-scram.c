/*
 * core/auth/sasl-scram.c: SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC
 * 7677), and their -PLUS variants with channel binding (RFC 5802 6:
 * "tls-unique", RFC 5929, for TLS 1.2; "tls-exporter", RFC 9266, for TLS
 * 1.3; the engine says which one this connection has).
 *
 *   client-first  gs2-header client-first-bare ("n,,n=user,r=cnonce")
 *   server-first  "r=cnonce+snonce,s=salt,i=iterations"
 *   client-final  "c=base64(gs2-header [cb-data]),r=nonce,p=proof"
 *   server-final  "v=base64(ServerSignature)"  (a failure ends the
 *                 exchange instead of an "e=" message: the protocol's
 *                 own failure reply says it)
 *
 * The server never sees the password: it checks the proof against the
 * stored StoredKey (RFC 5802 3).  A login without keys (no such user, no
 * password) gets a mock salt that never changes (credentials.c) and fails
 * at the proof, like a wrong password.
 */
#include "auth/internal.h"

#include <gnutls/gnutls.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#define SNONCE_BYTES 18

struct scram_state {
	char *gs2_header;		/* "n,," / "p=tls-exporter,a=x," */
	size_t gs2_len;
	bool cb;			/* "p=": channel binding in use */
	char *authzid;			/* NULL: none */
	char *user;
	char *first_bare;		/* client-first-message-bare */
	char *server_first;
	char *nonce;			/* cnonce + snonce */
	struct gn_auth_account *account;	/* NULL: unknown user */
	bool keys;			/* real keys (not a mock) */
	struct auth_scram scram;
};

/* RFC 5802 7: saslname = 1*(value-safe-char / "=2C" / "=3D"): decodes
 * into a string from pool; NULL when malformed or not UTF-8. */
static char *saslname(struct gn_pool *pool, const char *p, size_t len)
{
	if (len == 0)
		return NULL;
	char *out = gn_pool_alloc(pool, len + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == ',' || p[i] == '\0')
			return NULL;
		if (p[i] == '=') {
			if (i + 2 < len && p[i + 1] == '2' && p[i + 2] == 'C')
				out[o++] = ',';
			else if (i + 2 < len && p[i + 1] == '3' && p[i + 2] == 'D')
				out[o++] = '=';
			else
				return NULL;
			i += 2;
			continue;
		}
		out[o++] = p[i];
	}
	out[o] = '\0';
	if (u8_check((const uint8_t *)out, o) != NULL)
		return NULL;
	return out;
}

/* The value of attribute "k=" at *p (up to the next ',' or the end);
 * advances *p past the comma.  NULL when the attribute is not k. */
static const char *attr(const char **p, const char *end, char k, size_t *len_r)
{
	const char *s = *p;
	if (end - s < 2 || s[0] != k || s[1] != '=')
		return NULL;
	s += 2;
	const char *c = memchr(s, ',', (size_t)(end - s));
	const char *e = c != NULL ? c : end;
	*len_r = (size_t)(e - s);
	*p = c != NULL ? c + 1 : end;
	return s;
}

/* RFC 5802 7: printable = %x21-2B / %x2D-7E. */
static bool nonce_ok(const char *n, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)n[i] < 0x21 || (unsigned char)n[i] > 0x7e || n[i] == ',')
			return false;
	return true;
}

static enum gn_sasl_status malformed(struct gn_sasl *s, const char *user, const char *why)
{
	return sasl_fail(s, GN_SASL_FAILURE_MALFORMED, GN_AUTH_BADPROTOCOL, user, NULL, why);
}

static enum gn_sasl_status chanbind(struct gn_sasl *s, const char *user, const char *why)
{
	return sasl_fail(s, GN_SASL_FAILURE_CREDENTIALS, GN_AUTH_BADCHANBIND, user, NULL, why);
}

static enum gn_sasl_status client_first(struct gn_sasl *s, const char *m, size_t len)
{
	struct gn_pool *pool = sasl_pool(s);
	const struct sasl_mech *mech = sasl_mech(s);
	const struct sasl_peer *peer = sasl_peer(s);
	struct scram_state *st = gn_pool_alloc(pool, sizeof(*st));
	sasl_set_mech_state(s, st);
	const char *p = m, *end = m + len;
	size_t n;

	if (memchr(m, '\0', len) != NULL)
		return malformed(s, NULL, "NUL in client-first");
	/* gs2-cbind-flag (RFC 5802 6 and 7). */
	if (len >= 2 && p[0] == 'p' && p[1] == '=') {
		const char *name = attr(&p, end, 'p', &n);
		if (!(mech->flags & MECH_PLUS))
			return chanbind(s, NULL, "channel binding asked for with a non-PLUS mechanism");
		if (peer->cb_type == NULL || strlen(peer->cb_type) != n ||
		    memcmp(name, peer->cb_type, n) != 0)
			return chanbind(s, NULL, "unsupported channel binding type");
		st->cb = true;
	} else if (len >= 2 && (p[0] == 'n' || p[0] == 'y') && p[1] == ',') {
		if (mech->flags & MECH_PLUS)
			return chanbind(s, NULL, "a PLUS mechanism without channel binding");
		/* RFC 5802 6: "y" says the client could bind but thinks we
		 * cannot; when we offered -PLUS that is a downgrade. */
		if (p[0] == 'y' && sasl_plus_offered(s))
			return chanbind(s, NULL, "\"y\" although -PLUS was offered (downgrade)");
		p += 2;
	} else {
		return malformed(s, NULL, "bad gs2-cbind-flag");
	}
	/* [ authzid ] "," */
	if (p < end && *p == 'a') {
		const char *a = attr(&p, end, 'a', &n);
		if (a == NULL || (st->authzid = saslname(pool, a, n)) == NULL)
			return malformed(s, NULL, "bad authzid");
	} else if (p < end && *p == ',') {
		p++;
	} else {
		return malformed(s, NULL, "bad gs2-header");
	}
	if (p[-1] != ',')
		return malformed(s, NULL, "bad gs2-header");
	st->gs2_len = (size_t)(p - m);
	st->gs2_header = gn_pool_strndup(pool, m, st->gs2_len);
	st->first_bare = gn_pool_strndup(pool, p, (size_t)(end - p));

	/* RFC 5802 5.1: "m" is reserved for mandatory extensions, which
	 * this server has none of: fail. */
	if (p < end && *p == 'm')
		return malformed(s, NULL, "mandatory extension");
	const char *u = attr(&p, end, 'n', &n);
	if (u == NULL || (st->user = saslname(pool, u, n)) == NULL)
		return malformed(s, NULL, "bad username");
	const char *cn = attr(&p, end, 'r', &n);
	if (cn == NULL || !nonce_ok(cn, n))
		return malformed(s, st->user, "bad client nonce");
	/* Optional extensions after the nonce are ignored (RFC 5802 5.1). */

	int r = sasl_lookup(s, st->user, &st->account);
	if (r < 0)
		return sasl_error(s, st->user, NULL);
	if (r == 1) {
		int k = sasl_scram_get(s, st->account->id, mech->hash, &st->scram);
		if (k < 0)
			return sasl_error(s, st->user, NULL);
		st->keys = k == 1;
	} else {
		st->account = NULL;
	}
	if (!st->keys) {
		const char *err;
		if (credentials_mock_scram(st->user, mech->hash, &st->scram, &err) < 0)
			return sasl_error(s, st->user, err);
	}
	const char *sn = sasl_nonce(s, SNONCE_BYTES);
	if (sn == NULL)
		return sasl_error(s, st->user, "no random numbers");
	st->nonce = gn_pool_printf(pool, "%.*s%s", (int)n, cn, sn);
	st->server_first = gn_pool_printf(pool, "r=%s,s=%s,i=%u", st->nonce,
					  b64_encode(pool, st->scram.salt, st->scram.salt_len),
					  st->scram.iterations);
	return sasl_challenge(s, st->server_first, strlen(st->server_first));
}

static enum gn_sasl_status client_final(struct gn_sasl *s, const char *m, size_t len)
{
	struct gn_pool *pool = sasl_pool(s);
	const struct sasl_mech *mech = sasl_mech(s);
	const struct sasl_peer *peer = sasl_peer(s);
	struct scram_state *st = sasl_mech_state(s);
	const char *p = m, *end = m + len;
	size_t n;

	if (memchr(m, '\0', len) != NULL)
		return malformed(s, st->user, "NUL in client-final");
	/* channel-binding: c=base64(gs2-header [cbind-data]) */
	const char *c = attr(&p, end, 'c', &n);
	unsigned char *cbind;
	long cl = c != NULL ? b64_decode(pool, c, n, &cbind) : -1;
	if (cl < 0)
		return malformed(s, st->user, "bad channel-binding attribute");
	size_t want_len = st->gs2_len + (st->cb ? peer->cb_len : 0);
	if ((size_t)cl != want_len || memcmp(cbind, st->gs2_header, st->gs2_len) != 0 ||
	    (st->cb && !gn_auth_mem_equal(cbind + st->gs2_len, peer->cb_data, peer->cb_len)))
		return chanbind(s, st->user, "channel binding data differ");
	const char *r = attr(&p, end, 'r', &n);
	if (r == NULL || n != strlen(st->nonce) || memcmp(r, st->nonce, n) != 0)
		return malformed(s, st->user, "nonce differs");
	/* Extensions may follow; the proof is the last attribute. */
	const char *proof_at = NULL;
	for (const char *q = m; q + 3 <= end; q++)
		if (q[0] == ',' && q[1] == 'p' && q[2] == '=')
			proof_at = q;
	if (proof_at == NULL || proof_at < r + n)
		return malformed(s, st->user, "no proof");
	unsigned char *proof;
	long pl = b64_decode(pool, proof_at + 3, (size_t)(end - proof_at - 3), &proof);
	if (pl < 0 || (size_t)pl != st->scram.key_len)
		return malformed(s, st->user, "bad proof");

	/* RFC 5802 3: AuthMessage := client-first-message-bare + "," +
	 * server-first-message + "," + client-final-message-without-proof;
	 * ClientSignature := HMAC(StoredKey, AuthMessage); ClientKey :=
	 * ClientProof XOR ClientSignature; the proof holds when H(ClientKey)
	 * = StoredKey. */
	char *auth_message = gn_pool_printf(pool, "%s,%s,%.*s", st->first_bare,
					    st->server_first, (int)(proof_at - m), m);
	size_t am_len = strlen(auth_message), kl = st->scram.key_len;
	unsigned char sig[SCRAM_KEY_MAX], key[SCRAM_KEY_MAX], stored[SCRAM_KEY_MAX];
	if (scram_hmac(mech->hash, st->scram.stored_key, kl, auth_message, am_len, sig) < 0)
		return sasl_error(s, st->user, "HMAC failed");
	for (size_t i = 0; i < kl; i++)
		key[i] = proof[i] ^ sig[i];
	if (scram_h(mech->hash, key, kl, stored) < 0)
		return sasl_error(s, st->user, "hash failed");
	bool match = gn_auth_mem_equal(stored, st->scram.stored_key, kl) && st->keys;
	gnutls_memset(key, 0, sizeof(key));
	if (!match)
		return sasl_fail(s, GN_SASL_FAILURE_CREDENTIALS,
				 st->account == NULL ? GN_AUTH_BADUSER : GN_AUTH_BADPASSWORD,
				 st->user, st->account,
				 st->account == NULL ? "no such login"
				 : st->keys ? "wrong proof" : "no password");
	/* ServerSignature := HMAC(ServerKey, AuthMessage). */
	if (scram_hmac(mech->hash, st->scram.server_key, kl, auth_message, am_len, sig) < 0)
		return sasl_error(s, st->user, "HMAC failed");
	char *final = gn_pool_printf(pool, "v=%s", b64_encode(pool, sig, kl));
	gnutls_memset(&st->scram, 0, sizeof(st->scram));
	return sasl_success(s, st->account, st->user, st->authzid, final, strlen(final));
}

static enum gn_sasl_status scram_start(struct gn_sasl *s, const unsigned char *ir,
				       size_t len)
{
	/* Client first: without an initial response, an empty challenge. */
	if (ir == NULL)
		return sasl_challenge(s, "", 0);
	return client_first(s, (const char *)ir, len);
}

static enum gn_sasl_status scram_step(struct gn_sasl *s, const unsigned char *in,
				      size_t len)
{
	if (sasl_mech_state(s) == NULL)
		return client_first(s, (const char *)in, len);
	return client_final(s, (const char *)in, len);
}

#define SCRAM_MECH(var, nm, rec, fl, h) \
	const struct sasl_mech var = { \
		.name = nm, .record = rec, .flags = fl, .hash = h, \
		.start = scram_start, .step = scram_step, \
	}

SCRAM_MECH(sasl_mech_scram_sha256_plus, "SCRAM-SHA-256-PLUS", "scram-sha-256-plus",
	   MECH_PLUS, SCRAM_SHA256);
SCRAM_MECH(sasl_mech_scram_sha256, "SCRAM-SHA-256", "scram-sha-256", 0, SCRAM_SHA256);
SCRAM_MECH(sasl_mech_scram_sha1_plus, "SCRAM-SHA-1-PLUS", "scram-sha-1-plus",
	   MECH_PLUS, SCRAM_SHA1);
SCRAM_MECH(sasl_mech_scram_sha1, "SCRAM-SHA-1", "scram-sha-1", 0, SCRAM_SHA1);
