/*
 * core/auth/sasl-password.c: the mechanisms that send the password itself,
 * PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login-00).  The engine
 * offers them only over TLS unless the protocol allows cleartext; both end
 * in sasl_password(), the same check as gn_auth_login().
 */
#include "auth/internal.h"

#include <string.h>
#include <unistr.h>

/* A string of the message: no NUL inside, valid UTF-8 (RFC 4616 2). */
static char *field(struct gn_pool *pool, const unsigned char *p, size_t len)
{
	if (memchr(p, '\0', len) != NULL || u8_check(p, len) != NULL)
		return NULL;
	return gn_pool_strndup(pool, (const char *)p, len);
}

/* ---- PLAIN ---- */

/* RFC 4616 2: message = [authzid] UTF8NUL authcid UTF8NUL passwd. */
static enum gn_sasl_status plain_message(struct gn_sasl *s, const unsigned char *m,
					 size_t len)
{
	struct gn_pool *pool = sasl_pool(s);
	const unsigned char *nul1 = memchr(m, '\0', len);
	const unsigned char *nul2 = nul1 != NULL
		? memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - m)) : NULL;
	if (nul2 == NULL)
		return sasl_fail(s, GN_SASL_FAILURE_MALFORMED, GN_AUTH_BADPROTOCOL, NULL, NULL,
				 "PLAIN: not three fields");
	const unsigned char *pw = nul2 + 1;
	size_t pw_len = len - (size_t)(pw - m);
	char *authzid = field(pool, m, (size_t)(nul1 - m));
	char *authcid = field(pool, nul1 + 1, (size_t)(nul2 - nul1 - 1));
	if (authzid == NULL || authcid == NULL || *authcid == '\0' || pw_len == 0 ||
	    memchr(pw, '\0', pw_len) != NULL)
		return sasl_fail(s, GN_SASL_FAILURE_MALFORMED, GN_AUTH_BADPROTOCOL,
				 authcid, NULL, "PLAIN: bad field");
	return sasl_password(s, authzid, authcid, (const char *)pw, pw_len);
}

static enum gn_sasl_status plain_start(struct gn_sasl *s, const unsigned char *ir,
				       size_t len)
{
	/* RFC 4422 5: no initial response, an empty challenge. */
	if (ir == NULL)
		return sasl_challenge(s, "", 0);
	return plain_message(s, ir, len);
}

static enum gn_sasl_status plain_step(struct gn_sasl *s, const unsigned char *in,
				      size_t len)
{
	return plain_message(s, in, len);
}

const struct sasl_mech sasl_mech_plain = {
	.name = "PLAIN",
	.record = "plain",
	.flags = MECH_CLEARTEXT,
	.start = plain_start,
	.step = plain_step,
};

/* ---- LOGIN ---- */

struct login_state {
	char *user;	/* NULL until given */
};

static enum gn_sasl_status login_start(struct gn_sasl *s, const unsigned char *ir,
				       size_t len)
{
	struct login_state *st = gn_pool_alloc(sasl_pool(s), sizeof(*st));
	sasl_set_mech_state(s, st);
	/* The user name may come as initial response (SMTP AUTH LOGIN
	 * <user>); an empty one is none. */
	if (ir != NULL && len > 0) {
		st->user = field(sasl_pool(s), ir, len);
		if (st->user == NULL)
			return sasl_fail(s, GN_SASL_FAILURE_MALFORMED, GN_AUTH_BADPROTOCOL,
					 NULL, NULL, "LOGIN: bad user name");
		return sasl_challenge(s, "Password:", 9);
	}
	return sasl_challenge(s, "Username:", 9);
}

static enum gn_sasl_status login_step(struct gn_sasl *s, const unsigned char *in,
				      size_t len)
{
	struct login_state *st = sasl_mech_state(s);
	if (st->user == NULL) {
		st->user = field(sasl_pool(s), in, len);
		if (st->user == NULL || *st->user == '\0')
			return sasl_fail(s, GN_SASL_FAILURE_MALFORMED, GN_AUTH_BADPROTOCOL,
					 NULL, NULL, "LOGIN: bad user name");
		return sasl_challenge(s, "Password:", 9);
	}
	if (len == 0 || memchr(in, '\0', len) != NULL)
		return sasl_fail(s, GN_SASL_FAILURE_MALFORMED, GN_AUTH_BADPROTOCOL, st->user,
				 NULL, "LOGIN: bad password");
	return sasl_password(s, NULL, st->user, (const char *)in, len);
}

const struct sasl_mech sasl_mech_login = {
	.name = "LOGIN",
	.record = "login",
	.flags = MECH_CLEARTEXT,
	.start = login_start,
	.step = login_step,
};
