/*
 * core/auth/sasl-external.c: EXTERNAL (RFC 4422 appendix A) with TLS
 * client certificates: the certificate's public key must be registered
 * (gannet/tlspubkey.h); it logs in as the key's login address.  The
 * message is the authorization identity, empty for none; a non-empty one
 * must be an address of the key's account (mox.md 4.5), and becomes the
 * login.  The engine refuses EXTERNAL without TLS.
 */
#include "auth/internal.h"

#include <string.h>
#include <unistr.h>

static enum gn_sasl_status external_message(struct gn_sasl *s, const unsigned char *m,
					    size_t len)
{
	struct gn_pool *pool = sasl_pool(s);
	const struct sasl_peer *peer = sasl_peer(s);
	if (memchr(m, '\0', len) != NULL || u8_check(m, len) != NULL)
		return sasl_fail(s, GN_SASL_FAILURE_MALFORMED, GN_AUTH_BADPROTOCOL, NULL, NULL,
				 "EXTERNAL: bad authzid");
	char *authzid = gn_pool_strndup(pool, (const char *)m, len);
	if (peer->spki == NULL)
		return sasl_fail(s, GN_SASL_FAILURE_CREDENTIALS, GN_AUTH_BADUSER, authzid, NULL,
				 "EXTERNAL: no client certificate");
	struct gn_tlspubkey *key;
	const char *err;
	int r = gn_tlspubkey_lookup(pool, peer->spki, peer->spki_len, &key, &err);
	if (r < 0)
		return sasl_error(s, authzid, err);
	if (r == 0)
		return sasl_fail(s, GN_SASL_FAILURE_CREDENTIALS, GN_AUTH_BADUSER, authzid, NULL,
				 "EXTERNAL: the certificate's key is not registered");
	const char *login = gn_tlspubkey_login_address(key);
	struct gn_auth_account *account;
	r = sasl_lookup(s, login, &account);
	if (r < 0)
		return sasl_error(s, login, NULL);
	/* gn_tlspubkey_lookup() checked that the address leads to the key's
	 * account; a change since is a failure, not a guess. */
	if (r == 0 || account->id != gn_tlspubkey_account_id(key))
		return sasl_fail(s, GN_SASL_FAILURE_CREDENTIALS, GN_AUTH_BADUSER, login, NULL,
				 "EXTERNAL: the key's address moved");
	return sasl_success(s, account, login, authzid, NULL, 0);
}

static enum gn_sasl_status external_start(struct gn_sasl *s, const unsigned char *ir,
					  size_t len)
{
	if (ir == NULL)
		return sasl_challenge(s, "", 0);
	return external_message(s, ir, len);
}

static enum gn_sasl_status external_step(struct gn_sasl *s, const unsigned char *in,
					 size_t len)
{
	return external_message(s, in, len);
}

const struct sasl_mech sasl_mech_external = {
	.name = "EXTERNAL",
	.record = "external",
	.flags = MECH_CERT,
	.start = external_start,
	.step = external_step,
};
