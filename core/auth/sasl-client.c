/*
 * core/auth/sasl-client.c: the client side of SASL, for gannet's own
 * clients (the SMTP client's AUTH, RFC 4954): PLAIN (RFC 4616), EXTERNAL
 * (RFC 4422 appendix A), SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC
 * 7677) with their -PLUS variants (channel binding as the server side
 * takes it: "tls-unique" for TLS 1.2, "tls-exporter" for TLS 1.3).
 *
 * The caller moves raw (decoded) messages: sasl_client_start() gives the
 * initial response, sasl_client_step() answers each challenge.  SCRAM's
 * keys come from crypto.c (scram_derive(), scram_hmac(), scram_h()), the
 * ones the server side uses; the password is prepared the same way
 * (PRECIS OpaqueString, credentials.c).  The server's final message is
 * checked (RFC 5802 3: ServerSignature), so a server that does not know
 * the password cannot pass for one that does.
 */
#include "auth/internal.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <string.h>
#include <strings.h>

/* A server may ask for at most this many PBKDF2 iterations: more is a
 * way to make the client spin (RFC 5802 9 leaves the count to the server;
 * gannet's own default is 4096 to 15000). */
#define SCRAM_CLIENT_MAX_ITER 1000000u
#define SCRAM_CLIENT_NONCE_BYTES 18
/* The longest challenge taken. */
#define SASL_CLIENT_MAX_CHALLENGE 4096u

enum sc_step { SC_START, SC_FIRST, SC_FINAL, SC_DONE };

struct sasl_client {
	struct gn_pool *pool;
	enum sasl_client_mech mech;
	enum scram_hash hash;
	bool plus;
	char *authcid, *authzid;
	char *password;			/* prepared; wiped on free */
	const char *cb_type;
	unsigned char *cb_data;
	size_t cb_len;
	char *nonce;			/* the client nonce */
	enum sc_step step;
	char *gs2;			/* the gs2-header */
	char *first_bare;
	unsigned char server_key[SCRAM_KEY_MAX];
	size_t key_len;
	char *auth_message;
	char *out;
};

static const struct {
	const char *name;
	enum sasl_client_mech mech;
	enum scram_hash hash;
	bool plus;
} sc_mechs[] = {
	{ "SCRAM-SHA-256-PLUS", SASL_CLIENT_SCRAM, SCRAM_SHA256, true },
	{ "SCRAM-SHA-256", SASL_CLIENT_SCRAM, SCRAM_SHA256, false },
	{ "SCRAM-SHA-1-PLUS", SASL_CLIENT_SCRAM, SCRAM_SHA1, true },
	{ "SCRAM-SHA-1", SASL_CLIENT_SCRAM, SCRAM_SHA1, false },
	{ "PLAIN", SASL_CLIENT_PLAIN, 0, false },
	{ "EXTERNAL", SASL_CLIENT_EXTERNAL, 0, false },
};

bool sasl_client_offered(const char *offered, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = offered; p != NULL && *p != '\0';) {
		while (*p == ' ')
			p++;
		size_t w = strcspn(p, " ");
		if (w == n && strncasecmp(p, name, n) == 0)
			return true;
		p += w;
	}
	return false;
}

const char *sasl_client_choose(const char *offered, bool tls, bool cb, bool password)
{
	for (size_t i = 0; i < sizeof(sc_mechs) / sizeof(sc_mechs[0]); i++) {
		if (sc_mechs[i].mech == SASL_CLIENT_EXTERNAL || !password)
			continue;
		if (sc_mechs[i].plus && !cb)
			continue;
		/* RFC 4954 4: a password in the clear only inside TLS. */
		if (sc_mechs[i].mech == SASL_CLIENT_PLAIN && !tls)
			continue;
		if (sasl_client_offered(offered, sc_mechs[i].name))
			return sc_mechs[i].name;
	}
	return NULL;
}

struct sasl_client *sasl_client_new(const char *mech, const char *authcid,
				    const char *authzid, const char *password,
				    const char *cb_type, const unsigned char *cb_data,
				    size_t cb_len, const char **error_r)
{
	struct sasl_client *c;
	size_t i;

	for (i = 0; i < sizeof(sc_mechs) / sizeof(sc_mechs[0]); i++)
		if (strcasecmp(mech, sc_mechs[i].name) == 0)
			break;
	if (i == sizeof(sc_mechs) / sizeof(sc_mechs[0])) {
		*error_r = "unknown SASL mechanism";
		return NULL;
	}
	if (sc_mechs[i].mech != SASL_CLIENT_EXTERNAL &&
	    (authcid == NULL || authcid[0] == '\0' || password == NULL)) {
		*error_r = "a login and a password are needed";
		return NULL;
	}
	if (sc_mechs[i].plus && (cb_type == NULL || cb_data == NULL || cb_len == 0)) {
		*error_r = "channel binding is not available";
		return NULL;
	}
	c = gn_calloc(1, sizeof(*c));
	c->pool = gn_pool_new();
	c->mech = sc_mechs[i].mech;
	c->hash = sc_mechs[i].hash;
	c->plus = sc_mechs[i].plus;
	if (authcid != NULL)
		c->authcid = gn_pool_strdup(c->pool, authcid);
	if (authzid != NULL && authzid[0] != '\0')
		c->authzid = gn_pool_strdup(c->pool, authzid);
	if (password != NULL &&
	    password_prepare(password, strlen(password), &c->password, error_r) < 0) {
		sasl_client_free(&c);
		return NULL;
	}
	if (cb_type != NULL && cb_data != NULL && cb_len > 0) {
		c->cb_type = gn_pool_strdup(c->pool, cb_type);
		c->cb_data = gn_pool_alloc(c->pool, cb_len);
		memcpy(c->cb_data, cb_data, cb_len);
		c->cb_len = cb_len;
	}
	return c;
}

void sasl_client_free(struct sasl_client **cp)
{
	struct sasl_client *c = cp != NULL ? *cp : NULL;
	if (c == NULL)
		return;
	*cp = NULL;
	secret_free(c->password);
	gnutls_memset(c->server_key, 0, sizeof(c->server_key));
	gn_pool_free(&c->pool);
	gn_free(c);
}

void sasl_client_set_nonce(struct sasl_client *c, const char *nonce)
{
	c->nonce = gn_pool_strdup(c->pool, nonce);
}

/* RFC 5802 5.1: "," and "=" in a saslname are "=2C" and "=3D". */
static char *saslname_encode(struct gn_pool *pool, const char *s)
{
	struct gn_buf *b = gn_buf_new(strlen(s) * 3 + 1);
	char *out;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == ',')
			(void)gn_buf_append(b, "=2C", 3);
		else if (*p == '=')
			(void)gn_buf_append(b, "=3D", 3);
		else
			(void)gn_buf_append(b, p, 1);
	}
	out = gn_pool_strndup(pool, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	return out;
}

static int start_scram(struct sasl_client *c, const char **error_r)
{
	if (c->nonce == NULL) {
		unsigned char rnd[SCRAM_CLIENT_NONCE_BYTES];
		if (gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd)) < 0)
			return auth_err(error_r, "no random numbers");
		c->nonce = b64_encode(c->pool, rnd, sizeof(rnd));
	}
	/* RFC 5802 6/7: gs2-cbind-flag: "p=" with the binding for -PLUS,
	 * "y" when the client could bind but the server offers no -PLUS
	 * (the caller chose the mechanism from the offer), "n" without. */
	const char *flag = c->plus ? gn_pool_printf(c->pool, "p=%s", c->cb_type)
			   : c->cb_type != NULL ? "y" : "n";
	c->gs2 = gn_pool_printf(c->pool, "%s,%s%s,", flag, c->authzid != NULL ? "a=" : "",
				c->authzid != NULL ? saslname_encode(c->pool, c->authzid) : "");
	c->first_bare = gn_pool_printf(c->pool, "n=%s,r=%s",
				       saslname_encode(c->pool, c->authcid), c->nonce);
	c->out = gn_pool_printf(c->pool, "%s%s", c->gs2, c->first_bare);
	c->step = SC_FIRST;
	return 0;
}

int sasl_client_start(struct sasl_client *c, const unsigned char **out_r, size_t *len_r,
		      const char **error_r)
{
	if (c->step != SC_START)
		return auth_err(error_r, "SASL exchange already started");
	switch (c->mech) {
	case SASL_CLIENT_PLAIN: {
		/* RFC 4616 2: [authzid] NUL authcid NUL passwd. */
		const char *z = c->authzid != NULL ? c->authzid : "";
		size_t zl = strlen(z), ul = strlen(c->authcid), pl = strlen(c->password);
		char *m = gn_pool_alloc(c->pool, zl + ul + pl + 3);
		memcpy(m, z, zl);
		m[zl] = '\0';
		memcpy(m + zl + 1, c->authcid, ul);
		m[zl + 1 + ul] = '\0';
		memcpy(m + zl + ul + 2, c->password, pl);
		*out_r = (const unsigned char *)m;
		*len_r = zl + ul + pl + 2;
		c->step = SC_DONE;
		return 0;
	}
	case SASL_CLIENT_EXTERNAL:
		/* RFC 4422 A.1: the authorization identity, or empty. */
		c->out = gn_pool_strdup(c->pool, c->authzid != NULL ? c->authzid : "");
		*out_r = (const unsigned char *)c->out;
		*len_r = strlen(c->out);
		c->step = SC_DONE;
		return 0;
	case SASL_CLIENT_SCRAM:
		if (start_scram(c, error_r) < 0)
			return -1;
		*out_r = (const unsigned char *)c->out;
		*len_r = strlen(c->out);
		return 0;
	}
	return auth_err(error_r, "unknown SASL mechanism");
}

/* The value of attribute k at *p (RFC 5802 5.1 "k=value,"); moves *p
 * past it. */
static const char *attr(const char **p, const char *end, char k, size_t *len_r)
{
	const char *s = *p;
	if (end - s < 2 || s[0] != k || s[1] != '=')
		return NULL;
	s += 2;
	const char *e = memchr(s, ',', (size_t)(end - s));
	if (e == NULL)
		e = end;
	*len_r = (size_t)(e - s);
	*p = e < end ? e + 1 : end;
	return s;
}

static int server_first(struct sasl_client *c, const char *m, size_t len,
			const unsigned char **out_r, size_t *len_r, const char **error_r)
{
	const char *p = m, *end = m + len;
	size_t nl, sl, il;
	unsigned char *salt;
	long salt_len;
	unsigned long iter = 0;

	if (len >= 2 && m[0] == 'm' && m[1] == '=')
		return auth_err(error_r, "SCRAM: the server asks for an unknown mandatory extension");
	const char *nonce = attr(&p, end, 'r', &nl);
	const char *s64 = attr(&p, end, 's', &sl);
	const char *it = attr(&p, end, 'i', &il);
	if (nonce == NULL || s64 == NULL || it == NULL)
		return auth_err(error_r, "SCRAM: malformed server-first-message");
	/* RFC 5802 5.1: the server's nonce starts with ours and adds to it. */
	size_t cl = strlen(c->nonce);
	if (nl <= cl || memcmp(nonce, c->nonce, cl) != 0)
		return auth_err(error_r, "SCRAM: the server's nonce does not extend ours");
	for (size_t i = 0; i < nl; i++)
		if (nonce[i] <= ' ' || nonce[i] == ',' || (unsigned char)nonce[i] >= 0x7f)
			return auth_err(error_r, "SCRAM: bad nonce");
	if (il == 0 || il > 9)
		return auth_err(error_r, "SCRAM: bad iteration count");
	for (size_t i = 0; i < il; i++) {
		if (it[i] < '0' || it[i] > '9')
			return auth_err(error_r, "SCRAM: bad iteration count");
		iter = iter * 10 + (unsigned long)(it[i] - '0');
	}
	if (iter == 0 || iter > SCRAM_CLIENT_MAX_ITER)
		return auth_err(error_r, "SCRAM: iteration count out of range");
	salt_len = b64_decode(c->pool, s64, sl, &salt);
	if (salt_len <= 0 || (size_t)salt_len > SCRAM_SALT_MAX)
		return auth_err(error_r, "SCRAM: bad salt");

	struct auth_scram k = { .hash = c->hash, .iterations = (unsigned)iter,
				.salt_len = (size_t)salt_len };
	unsigned char salted[SCRAM_KEY_MAX], client_key[SCRAM_KEY_MAX], sig[SCRAM_KEY_MAX];
	memcpy(k.salt, salt, (size_t)salt_len);
	if (scram_derive(&k, c->password, strlen(c->password), salted, error_r) < 0)
		return -1;
	c->key_len = k.key_len;
	memcpy(c->server_key, k.server_key, k.key_len);

	/* c=base64(gs2-header [cbind-data]) */
	size_t gl = strlen(c->gs2);
	unsigned char *cbind = gn_pool_alloc(c->pool, gl + c->cb_len + 1);
	memcpy(cbind, c->gs2, gl);
	if (c->plus)
		memcpy(cbind + gl, c->cb_data, c->cb_len);
	char *without_proof = gn_pool_printf(c->pool, "c=%s,r=%.*s",
					     b64_encode(c->pool, cbind,
							gl + (c->plus ? c->cb_len : 0)),
					     (int)nl, nonce);
	/* RFC 5802 3: AuthMessage, ClientKey, StoredKey, ClientSignature,
	 * ClientProof := ClientKey XOR ClientSignature. */
	c->auth_message = gn_pool_printf(c->pool, "%s,%.*s,%s", c->first_bare, (int)len, m,
					 without_proof);
	int r = scram_hmac(c->hash, salted, k.key_len, "Client Key", 10, client_key);
	unsigned char stored[SCRAM_KEY_MAX];
	if (r == 0)
		r = scram_h(c->hash, client_key, k.key_len, stored);
	if (r == 0)
		r = scram_hmac(c->hash, stored, k.key_len, c->auth_message,
			       strlen(c->auth_message), sig);
	for (size_t i = 0; i < k.key_len; i++)
		client_key[i] ^= sig[i];
	if (r == 0)
		c->out = gn_pool_printf(c->pool, "%s,p=%s", without_proof,
					b64_encode(c->pool, client_key, k.key_len));
	gnutls_memset(salted, 0, sizeof(salted));
	gnutls_memset(client_key, 0, sizeof(client_key));
	gnutls_memset(&k, 0, sizeof(k));
	if (r < 0)
		return auth_err(error_r, "SCRAM: HMAC failed");
	*out_r = (const unsigned char *)c->out;
	*len_r = strlen(c->out);
	c->step = SC_FINAL;
	return 1;
}

static int server_final(struct sasl_client *c, const char *m, size_t len,
			const char **error_r)
{
	const char *p = m, *end = m + len;
	size_t vl;
	unsigned char *v, sig[SCRAM_KEY_MAX];

	if (len >= 2 && m[0] == 'e' && m[1] == '=')
		return auth_err(error_r, gn_pool_printf(c->pool, "SCRAM: the server says %.*s",
							(int)(len > 200 ? 200 : len), m));
	const char *v64 = attr(&p, end, 'v', &vl);
	long n = v64 != NULL ? b64_decode(c->pool, v64, vl, &v) : -1;
	if (n < 0 || (size_t)n != c->key_len)
		return auth_err(error_r, "SCRAM: malformed server-final-message");
	if (scram_hmac(c->hash, c->server_key, c->key_len, c->auth_message,
		       strlen(c->auth_message), sig) < 0)
		return auth_err(error_r, "SCRAM: HMAC failed");
	if (gnutls_memcmp(sig, v, c->key_len) != 0)
		return auth_err(error_r, "SCRAM: the server's signature is wrong "
			       "(the server does not know the password)");
	c->step = SC_DONE;
	return 0;
}

int sasl_client_step(struct sasl_client *c, const unsigned char *in, size_t len,
		     const unsigned char **out_r, size_t *len_r, const char **error_r)
{
	if (len > SASL_CLIENT_MAX_CHALLENGE)
		return auth_err(error_r, "SASL: the server's challenge is too long");
	if (memchr(in, '\0', len) != NULL && c->mech == SASL_CLIENT_SCRAM)
		return auth_err(error_r, "SCRAM: NUL in the server's message");
	if (c->mech != SASL_CLIENT_SCRAM || c->step == SC_START || c->step == SC_DONE)
		return auth_err(error_r, "SASL: a challenge the mechanism does not expect");
	if (c->step == SC_FIRST)
		return server_first(c, (const char *)in, len, out_r, len_r, error_r);
	if (server_final(c, (const char *)in, len, error_r) < 0)
		return -1;
	/* RFC 4954 4: the server's final data came as a challenge; the
	 * answer is an empty response. */
	*out_r = (const unsigned char *)"";
	*len_r = 0;
	return 1;
}

bool sasl_client_done(const struct sasl_client *c)
{
	return c->step == SC_DONE;
}
