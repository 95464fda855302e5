/*
 * core/auth/sasl-cram-md5.c: CRAM-MD5 (RFC 2195).
 *
 * The server sends a unique challenge in msg-id form; the client answers
 * "user SP hex(HMAC-MD5(password, challenge))".  The server checks it
 * with the stored HMAC-MD5 midstates, which only accounts that opted in
 * have (gannet/auth.h): for any other account, and for unknown users, the
 * same digest is computed against dummy state and the answer is the same
 * failure, so neither existence nor opt-in shows.
 */
#include "auth/internal.h"

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <string.h>
#include <time.h>
#include <unistr.h>

struct cram_state {
	char *challenge;
};

static enum gn_sasl_status cram_start(struct gn_sasl *s, const unsigned char *ir,
				      size_t len)
{
	(void)ir;
	/* RFC 2195 2: the server speaks first; an initial response has no
	 * place here (an empty one is taken as none). */
	if (len > 0)
		return sasl_fail(s, GN_SASL_FAILURE_MALFORMED, GN_AUTH_BADPROTOCOL, NULL, NULL,
				 "CRAM-MD5: initial response");
	struct cram_state *st = gn_pool_alloc(sasl_pool(s), sizeof(*st));
	sasl_set_mech_state(s, st);
	const char *nonce = sasl_nonce(s, 12);
	if (nonce == NULL)
		return sasl_error(s, NULL, "no random numbers");
	if (sasl_test_cram_challenge() != NULL) {
		st->challenge = gn_pool_strdup(sasl_pool(s), sasl_test_cram_challenge());
	} else {
		/* RFC 2195 2: "<random.timestamp@hostname>"; the random part
		 * makes it unique, base64 of it without '+' and '/' which a
		 * msg-id's dot-atom does not allow. */
		char *r = gn_pool_strdup(sasl_pool(s), nonce);
		for (char *p = r; *p != '\0'; p++)
			if (*p == '+' || *p == '/' || *p == '=')
				*p = '0';
		st->challenge = gn_pool_printf(sasl_pool(s), "<%s.%lld@%s>", r,
					       (long long)time(NULL), sasl_peer(s)->hostname);
	}
	return sasl_challenge(s, st->challenge, strlen(st->challenge));
}

static enum gn_sasl_status cram_step(struct gn_sasl *s, const unsigned char *in,
				     size_t len)
{
	struct cram_state *st = sasl_mech_state(s);
	struct gn_pool *pool = sasl_pool(s);
	unsigned char want[16], got[16];
	struct auth_cram_md5 state;

	/* The user name may hold spaces; the digest is the last word. */
	const unsigned char *sp = NULL;
	for (size_t i = len; i > 0; i--)
		if (in[i - 1] == ' ') {
			sp = in + i - 1;
			break;
		}
	if (sp == NULL || sp == in || in + len - (sp + 1) != 32 ||
	    memchr(in, '\0', len) != NULL || u8_check(in, (size_t)(sp - in)) != NULL ||
	    hex_decode(want, (const char *)sp + 1, 32) < 0)
		return sasl_fail(s, GN_SASL_FAILURE_MALFORMED, GN_AUTH_BADPROTOCOL, NULL, NULL,
				 "CRAM-MD5: not \"user digest\"");
	char *user = gn_pool_strndup(pool, (const char *)in, (size_t)(sp - in));

	struct gn_auth_account *account = NULL;
	int r = sasl_lookup(s, user, &account);
	if (r < 0)
		return sasl_error(s, user, NULL);
	int have = 0;
	if (r == 1) {
		have = sasl_cram_md5_get(s, account->id, &state);
		if (have < 0)
			return sasl_error(s, user, NULL);
	}
	if (have == 0) {
		/* The same work against state that matches nothing. */
		memset(&state, 0, sizeof(state));
		if (gnutls_rnd(GNUTLS_RND_NONCE, &state, sizeof(state)) < 0)
			return sasl_error(s, user, "no random numbers");
	}
	cram_md5_digest(&state, st->challenge, strlen(st->challenge), got);
	gnutls_memset(&state, 0, sizeof(state));
	bool match = gn_auth_mem_equal(got, want, sizeof(got)) && have == 1;
	if (!match)
		return sasl_fail(s, GN_SASL_FAILURE_CREDENTIALS,
				 r == 0 ? GN_AUTH_BADUSER : GN_AUTH_BADPASSWORD, user,
				 r == 0 ? NULL : account,
				 r == 0 ? "no such login" : have == 0
				 ? "the account has no CRAM-MD5 state (not opted in, or no "
				   "password set since)" : "wrong digest");
	return sasl_success(s, account, user, NULL, NULL, 0);
}

const struct sasl_mech sasl_mech_cram_md5 = {
	.name = "CRAM-MD5",
	.record = "cram-md5",
	.flags = MECH_CRAM,
	.start = cram_start,
	.step = cram_step,
};
