/*
 * core/auth/sasl.c: the SASL server engine (gannet/sasl.h, RFC 4422).
 *
 * The engine owns what every mechanism shares, so each rule exists once:
 * which mechanisms a connection may use (TLS, channel binding, client
 * certificate, CRAM-MD5 state), the limits (response size, number of
 * steps), the attempt (gn_auth_begin() when an exchange starts,
 * gn_auth_end() when it ends: the failed-login limiter and the record),
 * the authorization identity rule and the login-disabled flag, the final
 * data of a success, cancelling, and the base64 framing.  The mechanisms
 * (sasl-*.c) parse their messages and check credentials through the
 * helpers declared in auth/internal.h; none of them talks to the client
 * or to the limiter itself.
 *
 * Each exchange has a pool of its own, cleared at the next start, so a
 * long connection that authenticates many times does not grow.
 */
#include "auth/internal.h"

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <strings.h>
#include <string.h>

struct gn_sasl {
	struct gn_conn *conn;		/* NULL: a test's peer */
	struct gn_pool *pool;		/* this exchange and its results */
	struct sasl_peer peer;
	char *protocol;
	unsigned flags;

	const struct sasl_mech *mech;
	void *mech_state;
	struct gn_auth_attempt *attempt;
	bool open;			/* an exchange runs */
	bool final_pending;		/* success data sent, empty answer due */
	unsigned steps;
	const unsigned char *challenge;
	size_t challenge_len;
	char *challenge64;
	char *mechanisms;

	struct gn_auth_account *account;
	const char *login;
	enum gn_sasl_failure failure;
	const char *failure_text;
};

static const struct sasl_test_hooks *test_hooks;

void sasl_set_test_hooks(const struct sasl_test_hooks *hooks)
{
	test_hooks = hooks;
}

const char *sasl_test_cram_challenge(void)
{
	return test_hooks != NULL ? test_hooks->cram_challenge : NULL;
}

/* Strongest first: the order of gn_sasl_mechanisms(). */
static const struct sasl_mech *const mechs[] = {
	&sasl_mech_external,
	&sasl_mech_scram_sha256_plus,
	&sasl_mech_scram_sha256,
	&sasl_mech_scram_sha1_plus,
	&sasl_mech_scram_sha1,
	&sasl_mech_cram_md5,
	&sasl_mech_plain,
	&sasl_mech_login,
};
#define N_MECHS (sizeof(mechs) / sizeof(mechs[0]))

/* ---- the object ---- */

static struct gn_sasl *sasl_alloc(const char *protocol, unsigned flags)
{
	struct gn_sasl *s = gn_calloc(1, sizeof(*s));
	s->pool = gn_pool_new();
	s->protocol = gn_strdup(protocol != NULL && *protocol != '\0' ? protocol : "unknown");
	s->flags = flags;
	return s;
}

struct gn_sasl *gn_sasl_new(struct gn_conn *conn, const char *protocol,
			    unsigned flags)
{
	struct gn_sasl *s = sasl_alloc(protocol, flags);
	s->conn = conn;
	return s;
}

struct gn_sasl *sasl_new_peer(const struct sasl_peer *peer, const char *protocol,
			      unsigned flags)
{
	struct gn_sasl *s = sasl_alloc(protocol, flags);
	s->peer = *peer;
	return s;
}

void gn_sasl_free(struct gn_sasl **sp)
{
	struct gn_sasl *s = sp != NULL ? *sp : NULL;
	if (s == NULL)
		return;
	gn_sasl_cancel(s);
	gn_pool_free(&s->pool);
	gn_free(s->protocol);
	gn_free(s->mechanisms);
	gn_free(s);
	*sp = NULL;
}

/* The connection's state now (STARTTLS may have happened since the last
 * look).  Channel binding data is fetched only when fetch_cb: listing
 * needs to know the type only. */
static void peer_refresh(struct gn_sasl *s, bool fetch_cb)
{
	if (s->conn == NULL)
		return;	/* a test's peer stays as given */
	struct sasl_peer *p = &s->peer;
	memset(p, 0, sizeof(*p));
	p->remote_ip = gn_conn_remote_ip(s->conn);
	p->tls = gn_conn_is_tls(s->conn);
	p->hostname = core_conf != NULL && core_conf->hostname != NULL
		? core_conf->hostname : "localhost";
	if (!p->tls)
		return;
	const char *v = gn_conn_tls_version(s->conn);
	/* RFC 9266 2: tls-unique is undefined for TLS 1.3, whose binding is
	 * tls-exporter; RFC 5929 3: tls-unique for TLS 1.2. */
	if (v != NULL && strcmp(v, "TLS1.3") == 0)
		p->cb_type = "tls-exporter";
	else if (v != NULL && strcmp(v, "TLS1.2") == 0)
		p->cb_type = "tls-unique";
	if (p->cb_type != NULL && fetch_cb &&
	    gn_conn_tls_channel_binding(s->conn, p->cb_type, &p->cb_data, &p->cb_len) != 1)
		p->cb_type = NULL;
	const unsigned char *der;
	size_t len;
	/* The SubjectPublicKeyInfo exactly as in the certificate (the
	 * fingerprint is over those bytes), else as GnuTLS exports it. */
	if (gn_conn_peer_cert(s->conn, &der, &len) == 1 &&
	    tlspubkey_cert_spki(der, len, &p->spki, &p->spki_len) == 0)
		return;
	if (gn_conn_peer_spki(s->conn, &der, &len) == 1) {
		p->spki = der;
		p->spki_len = len;
	}
}

/* Whether mech may run here; *failure_r why not. */
static bool mech_allowed(const struct gn_sasl *s, const struct sasl_mech *m,
			 enum gn_sasl_failure *failure_r)
{
	const struct sasl_peer *p = &s->peer;
	*failure_r = GN_SASL_FAILURE_MECHANISM;
	if (m == &sasl_mech_login && (s->flags & GN_SASL_NO_LOGIN))
		return false;
	if ((m->flags & MECH_CRAM) && !auth_set.cram_md5)
		return false;
	if ((m->flags & MECH_PLUS) && (!p->tls || p->cb_type == NULL))
		return false;
	/* RFC 4616 4, RFC 4954 4: no cleartext passwords over a connection
	 * without TLS unless the protocol says the network is trusted. */
	if ((m->flags & MECH_CLEARTEXT) && !p->tls && !(s->flags & GN_SASL_CLEARTEXT_OK)) {
		*failure_r = GN_SASL_FAILURE_ENCRYPTION;
		return false;
	}
	/* mox.md 4.5: EXTERNAL without TLS is an encryption failure. */
	if ((m->flags & MECH_CERT) && !p->tls) {
		*failure_r = GN_SASL_FAILURE_ENCRYPTION;
		return false;
	}
	return true;
}

/* Listed: allowed, and of use (a certificate for EXTERNAL, some account
 * with CRAM-MD5 state). */
static bool mech_listed(struct gn_sasl *s, const struct sasl_mech *m)
{
	enum gn_sasl_failure f;
	if (!mech_allowed(s, m, &f))
		return false;
	if ((m->flags & MECH_CERT) && s->peer.spki == NULL)
		return false;
	if (m->flags & MECH_CRAM) {
		const char *err;
		int r = credentials_cram_md5_any(&err);
		if (r < 0)
			gn_log(GN_LOG_WARN, "auth", "event=sasl_cram_md5_check_failed error=%s",
			       gn_log_quote(0, err));
		return r == 1;
	}
	return true;
}

const char *gn_sasl_mechanisms(struct gn_sasl *s)
{
	peer_refresh(s, false);
	struct gn_buf *b = gn_buf_new(0);
	for (size_t i = 0; i < N_MECHS; i++) {
		if (!mech_listed(s, mechs[i]))
			continue;
		if (gn_buf_len(b) > 0)
			gn_buf_append(b, " ", 1);
		gn_buf_append(b, mechs[i]->name, strlen(mechs[i]->name));
	}
	/* In the exchange pool, but not cleared by a start: kept in the
	 * object instead. */
	gn_free(s->mechanisms);
	s->mechanisms = gn_buf_steal(&b);
	return s->mechanisms;
}

bool gn_sasl_mechanism_offered(struct gn_sasl *s, const char *mech)
{
	peer_refresh(s, false);
	for (size_t i = 0; i < N_MECHS; i++)
		if (mech != NULL && strcasecmp(mech, mechs[i]->name) == 0)
			return mech_listed(s, mechs[i]);
	return false;
}

bool sasl_plus_offered(const struct gn_sasl *s)
{
	enum gn_sasl_failure f;
	return mech_allowed(s, &sasl_mech_scram_sha256_plus, &f);
}

/* ---- for the mechanisms ---- */

struct gn_pool *sasl_pool(struct gn_sasl *s)
{
	return s->pool;
}

const struct sasl_peer *sasl_peer(const struct gn_sasl *s)
{
	return &s->peer;
}

const struct sasl_mech *sasl_mech(const struct gn_sasl *s)
{
	return s->mech;
}

void *sasl_mech_state(struct gn_sasl *s)
{
	return s->mech_state;
}

void sasl_set_mech_state(struct gn_sasl *s, void *state)
{
	s->mech_state = state;
}

enum gn_sasl_status sasl_challenge(struct gn_sasl *s, const void *data, size_t len)
{
	unsigned char *c = gn_pool_alloc(s->pool, len + 1);
	if (len > 0)
		memcpy(c, data, len);
	s->challenge = c;
	s->challenge_len = len;
	s->challenge64 = NULL;
	return GN_SASL_CONTINUE;
}

int sasl_lookup(struct gn_sasl *s, const char *login, struct gn_auth_account **account_r)
{
	const char *err = NULL;
	int r = test_hooks != NULL && test_hooks->lookup != NULL
		? test_hooks->lookup(s->pool, login, account_r, &err)
		: gn_auth_lookup(s->pool, login, account_r, &err);
	if (r < 0)
		s->failure_text = err;
	return r;
}

int sasl_scram_get(struct gn_sasl *s, int64_t account_id, enum scram_hash hash,
		   struct auth_scram *scram_r)
{
	const char *err = NULL;
	int r = test_hooks != NULL && test_hooks->scram_get != NULL
		? test_hooks->scram_get(account_id, hash, scram_r, &err)
		: credentials_scram_get(account_id, hash, scram_r, &err);
	if (r < 0)
		s->failure_text = err;
	return r;
}

int sasl_cram_md5_get(struct gn_sasl *s, int64_t account_id,
		      struct auth_cram_md5 *state_r)
{
	const char *err = NULL;
	int r = test_hooks != NULL && test_hooks->cram_md5_get != NULL
		? test_hooks->cram_md5_get(account_id, state_r, &err)
		: credentials_cram_md5_get(account_id, state_r, &err);
	if (r < 0)
		s->failure_text = err;
	return r;
}

const char *sasl_nonce(struct gn_sasl *s, size_t n)
{
	if (test_hooks != NULL && test_hooks->nonce != NULL)
		return test_hooks->nonce;
	unsigned char *r = gn_pool_alloc(s->pool, n);
	if (gnutls_rnd(GNUTLS_RND_NONCE, r, n) < 0)
		return NULL;
	return b64_encode(s->pool, r, n);
}

static const char *failure_default_text(enum gn_sasl_failure f)
{
	switch (f) {
	case GN_SASL_FAILURE_NONE:
		return "";
	case GN_SASL_FAILURE_CREDENTIALS:
		return "authentication failed";
	case GN_SASL_FAILURE_AUTHZ:
		return "not authorized for that identity";
	case GN_SASL_FAILURE_DISABLED:
		return "login disabled";
	case GN_SASL_FAILURE_MECHANISM:
		return "mechanism not available";
	case GN_SASL_FAILURE_ENCRYPTION:
		return "this mechanism needs TLS";
	case GN_SASL_FAILURE_MALFORMED:
		return "malformed SASL message";
	case GN_SASL_FAILURE_CANCELLED:
		return "authentication cancelled";
	case GN_SASL_FAILURE_LIMIT:
		return "SASL response too long or too many steps";
	case GN_SASL_FAILURE_RATELIMITED:
		return "too many failed logins, try again later";
	case GN_SASL_FAILURE_TEMPORARY:
		return "temporary authentication failure";
	}
	return "authentication failed";
}

enum gn_sasl_status sasl_fail(struct gn_sasl *s, enum gn_sasl_failure failure,
			      enum gn_auth_result result, const char *login,
			      const struct gn_auth_account *account, const char *why)
{
	if (s->attempt != NULL)
		(void)gn_auth_end(s->attempt, account, login, result, NULL);
	s->attempt = NULL;
	s->open = false;
	s->final_pending = false;
	s->account = NULL;
	s->login = NULL;
	s->failure = failure;
	if (failure == GN_SASL_FAILURE_DISABLED && account != NULL &&
	    account->login_disabled != NULL)
		s->failure_text = gn_pool_printf(s->pool, "login disabled: %s",
						 account->login_disabled);
	else
		s->failure_text = failure_default_text(failure);
	s->challenge = NULL;
	s->challenge_len = 0;
	s->challenge64 = NULL;
	gn_log(GN_LOG_DEBUG, "auth", "event=sasl_failed protocol=%s mech=%s failure=%s why=%s",
	       s->protocol, s->mech != NULL ? s->mech->name : "-",
	       gn_sasl_failure_name(failure), gn_log_quote(0, why != NULL ? why : "-"));
	return GN_SASL_FAIL;
}

enum gn_sasl_status sasl_error(struct gn_sasl *s, const char *login, const char *error)
{
	const char *e = error != NULL ? error : s->failure_text;
	gn_log(GN_LOG_WARN, "auth", "event=sasl_error protocol=%s mech=%s error=%s",
	       s->protocol, s->mech != NULL ? s->mech->name : "-",
	       gn_log_quote(0, e != NULL ? e : "-"));
	return sasl_fail(s, GN_SASL_FAILURE_TEMPORARY, GN_AUTH_ERROR, login, NULL, e);
}

enum gn_sasl_status sasl_success(struct gn_sasl *s, struct gn_auth_account *account,
				 const char *login, const char *authzid,
				 const void *final, size_t final_len)
{
	/* As mox: the disabled flag is told only to who proved the
	 * credentials. */
	if (account->login_disabled != NULL)
		return sasl_fail(s, GN_SASL_FAILURE_DISABLED, GN_AUTH_LOGINDISABLED,
				 login, account, "login disabled");
	if (authzid != NULL && *authzid != '\0') {
		/* RFC 4422 3.4.1: the server decides whether the
		 * authenticated identity may act as the authorization
		 * identity.  Here: only as another address of the same
		 * account (mox.md 4.5). */
		struct gn_auth_account *as;
		int r = sasl_lookup(s, authzid, &as);
		if (r < 0)
			return sasl_error(s, login, NULL);
		if (r == 0 || as->id != account->id)
			return sasl_fail(s, GN_SASL_FAILURE_AUTHZ, GN_AUTH_BADAUTHZ, login,
					 account, "authzid is not an address of the account");
		login = as->address;
	}
	if (s->peer.spki != NULL && s->mech != NULL && !(s->mech->flags & MECH_CERT)) {
		/* mox.md 4.5: a connection whose client certificate is
		 * registered may log in with another mechanism, but only
		 * as the key's account. */
		struct gn_tlspubkey *key;
		const char *err;
		int r = gn_tlspubkey_lookup(s->pool, s->peer.spki, s->peer.spki_len, &key, &err);
		if (r < 0)
			return sasl_error(s, login, err);
		if (r == 1 && gn_tlspubkey_account_id(key) != account->id)
			return sasl_fail(s, GN_SASL_FAILURE_CREDENTIALS, GN_AUTH_BADAUTHZ, login,
					 account, "the client certificate belongs to another account");
	}
	if (s->attempt != NULL)
		(void)gn_auth_end(s->attempt, account, login, GN_AUTH_OK, NULL);
	s->attempt = NULL;
	s->account = account;
	s->login = gn_pool_strdup(s->pool, login != NULL ? login : account->address);
	s->failure = GN_SASL_FAILURE_NONE;
	s->failure_text = NULL;
	if (final != NULL && final_len > 0) {
		(void)sasl_challenge(s, final, final_len);
		if (!(s->flags & GN_SASL_FINAL_DATA_OK)) {
			/* RFC 4954 4, RFC 9051 6.2.2: the data goes in one
			 * more challenge, answered with an empty response. */
			s->final_pending = true;
			return GN_SASL_CONTINUE;
		}
	} else {
		s->challenge = NULL;
		s->challenge_len = 0;
		s->challenge64 = NULL;
	}
	s->open = false;
	return GN_SASL_OK;
}

enum gn_sasl_status sasl_password(struct gn_sasl *s, const char *authzid,
				  const char *login, const char *password,
				  size_t password_len)
{
	struct gn_auth_account *account = NULL;
	char *prep = NULL;
	const char *perr, *err = NULL;

	int r = sasl_lookup(s, login, &account);
	if (r < 0)
		return sasl_error(s, login, NULL);
	bool prepared = password_prepare(password, password_len, &prep, &perr) == 0;
	if (r == 0 || !prepared) {
		/* One derivation whatever happens, so timing does not tell
		 * which logins exist. */
		credentials_dummy_check(prepared ? prep : "");
		secret_free(prep);
		return sasl_fail(s, GN_SASL_FAILURE_CREDENTIALS,
				 r == 0 ? GN_AUTH_BADUSER : GN_AUTH_BADPASSWORD, login,
				 r == 0 ? NULL : account, r == 0 ? "no such login" : "PRECIS");
	}
	r = credentials_verify_prepared(account->id, prep, &err);
	secret_free(prep);
	if (r < 0)
		return sasl_error(s, login, err);
	if (r == 0)
		return sasl_fail(s, GN_SASL_FAILURE_CREDENTIALS, GN_AUTH_BADPASSWORD, login,
				 account, "wrong password");
	return sasl_success(s, account, login, authzid, NULL, 0);
}

/* ---- exchanges ---- */

static const struct sasl_mech *mech_find(const char *name)
{
	for (size_t i = 0; i < N_MECHS; i++)
		if (name != NULL && strcasecmp(name, mechs[i]->name) == 0)
			return mechs[i];
	return NULL;
}

/* Everything a start does before the mechanism: returns GN_SASL_CONTINUE
 * to go on, or GN_SASL_FAIL. */
static enum gn_sasl_status open_exchange(struct gn_sasl *s, const char *name)
{
	gn_sasl_cancel(s);
	gn_pool_clear(s->pool);
	s->mech = NULL;
	s->mech_state = NULL;
	s->account = NULL;
	s->login = NULL;
	s->steps = 0;
	s->final_pending = false;
	s->challenge = NULL;
	s->challenge_len = 0;
	s->challenge64 = NULL;
	s->failure = GN_SASL_FAILURE_NONE;
	s->failure_text = NULL;

	const struct sasl_mech *m = mech_find(name);
	if (m == NULL)
		return sasl_fail(s, GN_SASL_FAILURE_MECHANISM, GN_AUTH_ERROR, NULL, NULL,
				 "unknown mechanism");
	s->mech = m;
	peer_refresh(s, (m->flags & MECH_PLUS) != 0);
	enum gn_sasl_failure f;
	if (!mech_allowed(s, m, &f))
		return sasl_fail(s, f, GN_AUTH_ERROR, NULL, NULL, "mechanism not allowed here");

	/* The attempt counts from here (gannet/auth.h). */
	struct gn_auth_client client = {
		.size = sizeof(client),
		.remote_ip = s->peer.remote_ip,
		.protocol = s->protocol,
		.mechanism = m->record,
		.flags = s->peer.local ? GN_AUTH_CLIENT_LOCAL : 0,
	};
	const char *err;
	struct gn_auth_attempt *attempt = NULL;
	int r = gn_auth_begin(s->pool, &client, &attempt, &err);
	if (r < 0)
		return sasl_error(s, NULL, err);
	s->attempt = attempt;
	s->open = true;
	if (r == 0)
		return sasl_fail(s, GN_SASL_FAILURE_RATELIMITED, GN_AUTH_RATELIMITED, NULL,
				 NULL, "rate limited");
	return GN_SASL_CONTINUE;
}

static bool too_long(size_t len)
{
	return len > (size_t)auth_set.sasl_max_response;
}

enum gn_sasl_status gn_sasl_start(struct gn_sasl *s, const char *mech,
				  const void *ir, size_t len)
{
	if (open_exchange(s, mech) != GN_SASL_CONTINUE)
		return GN_SASL_FAIL;
	if (ir != NULL && too_long(len))
		return sasl_fail(s, GN_SASL_FAILURE_LIMIT, GN_AUTH_BADPROTOCOL, NULL, NULL,
				 "initial response too long");
	return s->mech->start(s, ir, ir != NULL ? len : 0);
}

enum gn_sasl_status gn_sasl_start64(struct gn_sasl *s, const char *mech,
				    const char *ir64, size_t len)
{
	if (open_exchange(s, mech) != GN_SASL_CONTINUE)
		return GN_SASL_FAIL;
	if (ir64 == NULL)
		return s->mech->start(s, NULL, 0);
	/* RFC 4959 3, RFC 4954 4: "=" is an empty initial response. */
	if (len == 1 && ir64[0] == '=')
		return s->mech->start(s, (const unsigned char *)"", 0);
	if (too_long(len / 4 * 3))
		return sasl_fail(s, GN_SASL_FAILURE_LIMIT, GN_AUTH_BADPROTOCOL, NULL, NULL,
				 "initial response too long");
	unsigned char *ir;
	long n = b64_decode(s->pool, ir64, len, &ir);
	if (n < 0)
		return sasl_fail(s, GN_SASL_FAILURE_MALFORMED, GN_AUTH_BADPROTOCOL, NULL, NULL,
				 "bad base64");
	return s->mech->start(s, ir, (size_t)n);
}

enum gn_sasl_status gn_sasl_step(struct gn_sasl *s, const void *response, size_t len)
{
	if (!s->open) {
		/* A protocol bug, not the client's: refuse. */
		s->failure = GN_SASL_FAILURE_MALFORMED;
		s->failure_text = failure_default_text(s->failure);
		return GN_SASL_FAIL;
	}
	if (++s->steps > (unsigned)auth_set.sasl_max_steps)
		return sasl_fail(s, GN_SASL_FAILURE_LIMIT, GN_AUTH_BADPROTOCOL, NULL, NULL,
				 "too many steps");
	if (too_long(len))
		return sasl_fail(s, GN_SASL_FAILURE_LIMIT, GN_AUTH_BADPROTOCOL, NULL, NULL,
				 "response too long");
	if (s->final_pending) {
		/* The attempt was settled as a success already. */
		s->final_pending = false;
		s->open = false;
		if (len != 0) {
			s->account = NULL;
			s->login = NULL;
			s->failure = GN_SASL_FAILURE_MALFORMED;
			s->failure_text = "the answer to the final data must be empty";
			return GN_SASL_FAIL;
		}
		s->challenge = NULL;
		s->challenge_len = 0;
		s->challenge64 = NULL;
		return GN_SASL_OK;
	}
	return s->mech->step(s, response, len);
}

enum gn_sasl_status gn_sasl_step64(struct gn_sasl *s, const char *line, size_t len)
{
	if (s->open && len == 1 && line[0] == '*') {
		/* RFC 4954 4, RFC 9051 6.2.2: the client cancels. */
		gn_sasl_cancel(s);
		return GN_SASL_FAIL;
	}
	if (s->open && too_long(len / 4 * 3))
		return sasl_fail(s, GN_SASL_FAILURE_LIMIT, GN_AUTH_BADPROTOCOL, NULL, NULL,
				 "response too long");
	unsigned char *data = NULL;
	long n = b64_decode(s->pool, line, len, &data);
	if (n < 0) {
		if (!s->open)
			return gn_sasl_step(s, NULL, 0);
		return sasl_fail(s, GN_SASL_FAILURE_MALFORMED, GN_AUTH_BADPROTOCOL, NULL, NULL,
				 "bad base64");
	}
	return gn_sasl_step(s, data, (size_t)n);
}

void gn_sasl_cancel(struct gn_sasl *s)
{
	if (s == NULL || !s->open)
		return;
	if (s->final_pending) {
		/* Authenticated, but the client did not take the final
		 * data: no session, the attempt stays a success. */
		s->open = false;
		s->final_pending = false;
		s->account = NULL;
		s->login = NULL;
		s->failure = GN_SASL_FAILURE_CANCELLED;
		s->failure_text = failure_default_text(s->failure);
		return;
	}
	(void)sasl_fail(s, GN_SASL_FAILURE_CANCELLED, GN_AUTH_ABORTED, NULL, NULL,
			"cancelled");
}

/* ---- results ---- */

void gn_sasl_challenge(const struct gn_sasl *s, const unsigned char **data_r,
		       size_t *len_r)
{
	*data_r = s->challenge != NULL ? s->challenge : (const unsigned char *)"";
	*len_r = s->challenge_len;
}

const char *gn_sasl_challenge64(struct gn_sasl *s)
{
	if (s->challenge64 == NULL)
		s->challenge64 = b64_encode(s->pool, s->challenge != NULL ? s->challenge
					    : (const unsigned char *)"", s->challenge_len);
	return s->challenge64;
}

int64_t gn_sasl_account_id(const struct gn_sasl *s)
{
	return s->account != NULL && !s->open ? s->account->id : 0;
}

const char *gn_sasl_account_name(const struct gn_sasl *s)
{
	return s->account != NULL && !s->open ? s->account->name : NULL;
}

const char *gn_sasl_login(const struct gn_sasl *s)
{
	return s->account != NULL && !s->open ? s->login : NULL;
}

const char *gn_sasl_mechanism(const struct gn_sasl *s)
{
	return s->account != NULL && !s->open && s->mech != NULL ? s->mech->name : NULL;
}

enum gn_sasl_failure gn_sasl_failure(const struct gn_sasl *s)
{
	return s->failure;
}

bool gn_sasl_failure_temporary(const struct gn_sasl *s)
{
	return s->failure == GN_SASL_FAILURE_RATELIMITED ||
		s->failure == GN_SASL_FAILURE_TEMPORARY;
}

const char *gn_sasl_failure_text(const struct gn_sasl *s)
{
	if (s->failure == GN_SASL_FAILURE_NONE)
		return "";
	/* A database error's text stays in the log. */
	if (s->failure == GN_SASL_FAILURE_TEMPORARY)
		return failure_default_text(s->failure);
	return s->failure_text != NULL ? s->failure_text : failure_default_text(s->failure);
}

static const struct {
	const char *name;
	int smtp;
	const char *enhanced;
	const char *imap, *imap_code;
} failures[] = {
	/* RFC 4954 6: 535 5.7.8, 538 5.7.11, 504 5.5.4 ("unrecognized
	 * authentication type"), 501 5.5.2 (cannot decode), 500 5.5.6
	 * (line too long), 454 4.7.0 (temporary); RFC 5248: 525 5.7.13
	 * (user account disabled); cancelling: 501 (RFC 4954 4).  IMAP:
	 * RFC 9051 6.2.2 (BAD for a cancel or bad base64), RFC 5530
	 * response codes. */
	[GN_SASL_FAILURE_NONE] = { "none", 0, "", "", NULL },
	[GN_SASL_FAILURE_CREDENTIALS] = { "credentials", 535, "5.7.8", "NO", "AUTHENTICATIONFAILED" },
	[GN_SASL_FAILURE_AUTHZ] = { "authz", 535, "5.7.8", "NO", "AUTHORIZATIONFAILED" },
	[GN_SASL_FAILURE_DISABLED] = { "disabled", 525, "5.7.13", "NO", "CONTACTADMIN" },
	[GN_SASL_FAILURE_MECHANISM] = { "mechanism", 504, "5.5.4", "NO", NULL },
	[GN_SASL_FAILURE_ENCRYPTION] = { "encryption", 538, "5.7.11", "NO", "PRIVACYREQUIRED" },
	[GN_SASL_FAILURE_MALFORMED] = { "malformed", 501, "5.5.2", "BAD", NULL },
	[GN_SASL_FAILURE_CANCELLED] = { "cancelled", 501, "5.7.0", "BAD", NULL },
	[GN_SASL_FAILURE_LIMIT] = { "limit", 500, "5.5.6", "BAD", "TOOBIG" },
	[GN_SASL_FAILURE_RATELIMITED] = { "ratelimited", 454, "4.7.0", "NO", "UNAVAILABLE" },
	[GN_SASL_FAILURE_TEMPORARY] = { "temporary", 454, "4.7.0", "NO", "UNAVAILABLE" },
};

static unsigned failure_index(enum gn_sasl_failure f)
{
	/* Unknown values read as CREDENTIALS (sasl.h). */
	return (unsigned)f < sizeof(failures) / sizeof(failures[0])
		? (unsigned)f : (unsigned)GN_SASL_FAILURE_CREDENTIALS;
}

void gn_sasl_failure_smtp(enum gn_sasl_failure f, int *code_r, const char **enhanced_r)
{
	unsigned i = failure_index(f);
	*code_r = failures[i].smtp;
	*enhanced_r = failures[i].enhanced;
}

const char *gn_sasl_failure_imap(enum gn_sasl_failure f, const char **code_r)
{
	unsigned i = failure_index(f);
	*code_r = failures[i].imap_code;
	return failures[i].imap;
}

const char *gn_sasl_failure_name(enum gn_sasl_failure f)
{
	return failures[failure_index(f)].name;
}
