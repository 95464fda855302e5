/*
 * core/mail/dkim-sign.c: DKIM keys and signatures (gannet/dkim.h) with
 * GnuTLS: RSA-SHA256 with keys of 2048 bits or more (RFC 8301 3.2) and
 * Ed25519-SHA256 (RFC 8463), and the signer that takes a message in
 * pieces and writes DKIM-Signature fields for it (RFC 6376 3.5, 5).
 *
 * Every signature is relaxed/relaxed, has t=, never l= (a signature that
 * covers part of the body lets anyone append to it), and x= only when the
 * caller asks.  The header fields signed are chosen once per message
 * (sign_fields below).  Private keys never reach a log line or an error
 * message.
 */
#include "mail/internal.h"

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdint.h>
#include <string.h>

struct gn_dkim_key {
	enum gn_dkim_algorithm alg;
	gnutls_privkey_t priv;
};

/* ---- keys ---- */

int gn_dkim_key_generate(enum gn_dkim_algorithm alg, unsigned bits, char **pem_r,
			 const char **error_r)
{
	if (alg == GN_DKIM_RSA_SHA256) {
		if (bits == 0)
			bits = 2048;
		if (bits < 2048 || bits > 8192) {
			*error_r = "RSA keys for DKIM have 2048 to 8192 bits";
			return -1;
		}
	}
	gnutls_x509_privkey_t x;
	if (gnutls_x509_privkey_init(&x) < 0) {
		*error_r = "could not set up a key";
		return -1;
	}
	int r = alg == GN_DKIM_ED25519_SHA256
		? gnutls_x509_privkey_generate(x, GNUTLS_PK_EDDSA_ED25519, 0, 0)
		: gnutls_x509_privkey_generate(x, GNUTLS_PK_RSA, bits, 0);
	gnutls_datum_t pem = { NULL, 0 };
	if (r >= 0)
		r = gnutls_x509_privkey_export2_pkcs8(x, GNUTLS_X509_FMT_PEM, NULL,
						      GNUTLS_PKCS_PLAIN, &pem);
	gnutls_x509_privkey_deinit(x);
	if (r < 0) {
		*error_r = "could not generate the key";
		return -1;
	}
	*pem_r = gn_strndup((const char *)pem.data, pem.size);
	gnutls_memset(pem.data, 0, pem.size);
	gnutls_free(pem.data);
	return 0;
}

static int key_from_x509(gnutls_x509_privkey_t x, struct gn_dkim_key **key_r,
			 const char **error_r)
{
	unsigned bits = 0;
	int pk = gnutls_x509_privkey_get_pk_algorithm2(x, &bits);
	enum gn_dkim_algorithm alg;
	if (pk == GNUTLS_PK_RSA) {
		if (bits < 2048) {
			*error_r = "RSA key under 2048 bits (RFC 8301 3.2)";
			return -1;
		}
		alg = GN_DKIM_RSA_SHA256;
	} else if (pk == GNUTLS_PK_EDDSA_ED25519) {
		alg = GN_DKIM_ED25519_SHA256;
	} else {
		*error_r = "not an RSA or Ed25519 key";
		return -1;
	}
	gnutls_privkey_t priv;
	if (gnutls_privkey_init(&priv) < 0) {
		*error_r = "could not set up a key";
		return -1;
	}
	if (gnutls_privkey_import_x509(priv, x, GNUTLS_PRIVKEY_IMPORT_COPY) < 0) {
		gnutls_privkey_deinit(priv);
		*error_r = "could not read the key";
		return -1;
	}
	struct gn_dkim_key *k = gn_calloc(1, sizeof(*k));
	k->alg = alg;
	k->priv = priv;
	*key_r = k;
	return 0;
}

static int key_import(const unsigned char *data, size_t len, gnutls_x509_crt_fmt_t fmt,
		      struct gn_dkim_key **key_r, const char **error_r)
{
	gnutls_x509_privkey_t x;
	if (gnutls_x509_privkey_init(&x) < 0) {
		*error_r = "could not set up a key";
		return -1;
	}
	gnutls_datum_t d = { (unsigned char *)data, (unsigned)len };
	int r = gnutls_x509_privkey_import2(x, &d, fmt, NULL, GNUTLS_PKCS_PLAIN);
	if (r < 0) {
		gnutls_x509_privkey_deinit(x);
		*error_r = "not a private key in PEM form";
		return -1;
	}
	r = key_from_x509(x, key_r, error_r);
	gnutls_x509_privkey_deinit(x);
	return r;
}

int gn_dkim_key_load(const char *pem, size_t len, struct gn_dkim_key **key_r,
		     const char **error_r)
{
	if (len > 64 * 1024) {
		*error_r = "private key too long";
		return -1;
	}
	return key_import((const unsigned char *)pem, len, GNUTLS_X509_FMT_PEM, key_r, error_r);
}

int gn_dkim_key_from_ed25519_seed(const unsigned char seed[32], struct gn_dkim_key **key_r,
				  const char **error_r)
{
	/* RFC 8410 7: the PKCS#8 DER of an Ed25519 key is this prefix and
	 * the seed. */
	static const unsigned char prefix[16] = {
		0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
		0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
	};
	unsigned char der[48];
	memcpy(der, prefix, sizeof(prefix));
	memcpy(der + 16, seed, 32);
	int r = key_import(der, sizeof(der), GNUTLS_X509_FMT_DER, key_r, error_r);
	gnutls_memset(der, 0, sizeof(der));
	return r;
}

void gn_dkim_key_free(struct gn_dkim_key **key)
{
	if (key == NULL || *key == NULL)
		return;
	gnutls_privkey_deinit((*key)->priv);
	gn_free(*key);
	*key = NULL;
}

enum gn_dkim_algorithm gn_dkim_key_algorithm(const struct gn_dkim_key *key)
{
	return key->alg;
}

static const char *b64_pool(struct gn_pool *pool, const unsigned char *data, size_t len)
{
	char *s = mime_b64_encode(data, len);
	const char *r = gn_pool_strdup(pool, s);
	gn_free(s);
	return r;
}

const char *gn_dkim_key_record(struct gn_pool *pool, const struct gn_dkim_key *key)
{
	gnutls_pubkey_t pub;
	if (gnutls_pubkey_init(&pub) < 0)
		return NULL;
	const char *p = NULL;
	if (gnutls_pubkey_import_privkey(pub, key->priv, 0, 0) >= 0) {
		gnutls_datum_t d = { NULL, 0 };
		gnutls_ecc_curve_t curve;
		int r = key->alg == GN_DKIM_ED25519_SHA256
			? gnutls_pubkey_export_ecc_raw(pub, &curve, &d, NULL)
			: gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &d);
		if (r >= 0)
			p = b64_pool(pool, d.data, d.size);
		gnutls_free(d.data);
	}
	gnutls_pubkey_deinit(pub);
	if (p == NULL)
		return NULL;
	return gn_pool_printf(pool, "v=DKIM1; k=%s; p=%s", gn_dkim_algorithm_key_type(key->alg), p);
}

int gn_dkim_key_sign(struct gn_pool *pool, const struct gn_dkim_key *key,
		     const unsigned char hash[GN_DKIM_HASH_SIZE], const char **b64_r,
		     const char **error_r)
{
	gnutls_datum_t h = { (unsigned char *)hash, GN_DKIM_HASH_SIZE };
	gnutls_datum_t sig = { NULL, 0 };
	int r;
	if (key->alg == GN_DKIM_ED25519_SHA256)
		/* RFC 8463 3: Ed25519 signs the SHA-256 hash itself. */
		r = gnutls_privkey_sign_data2(key->priv, GNUTLS_SIGN_EDDSA_ED25519, 0, &h, &sig);
	else
		/* RFC 6376 3.3.1: RSASSA-PKCS1-v1_5 over the hash. */
		r = gnutls_privkey_sign_hash(key->priv, GNUTLS_DIG_SHA256, 0, &h, &sig);
	if (r < 0) {
		*error_r = "signing failed";
		return -1;
	}
	*b64_r = b64_pool(pool, sig.data, sig.size);
	gnutls_free(sig.data);
	return 0;
}

/* Appends a DER length. */
static void der_len(struct gn_buf *b, size_t n)
{
	unsigned char l[3];
	if (n < 0x80) {
		l[0] = (unsigned char)n;
		gn_buf_append(b, l, 1);
	} else if (n < 0x100) {
		l[0] = 0x81;
		l[1] = (unsigned char)n;
		gn_buf_append(b, l, 2);
	} else {
		l[0] = 0x82;
		l[1] = (unsigned char)(n >> 8);
		l[2] = (unsigned char)n;
		gn_buf_append(b, l, 3);
	}
}

/* An RSAPublicKey (RFC 3447 A.1.1, what RFC 6376 3.6.1 names for p=) as
 * the SubjectPublicKeyInfo that GnuTLS reads (and most records hold). */
static struct gn_buf *rsa_spki(const unsigned char *key, size_t len)
{
	static const unsigned char alg[15] = {
		0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
	};
	struct gn_buf *bits = gn_buf_new(0);
	gn_buf_append(bits, "\x03", 1);
	der_len(bits, len + 1);
	gn_buf_append(bits, "", 1);	/* no unused bits */
	gn_buf_append(bits, key, len);
	struct gn_buf *b = gn_buf_new(0);
	gn_buf_append(b, "\x30", 1);
	der_len(b, sizeof(alg) + gn_buf_len(bits));
	gn_buf_append(b, alg, sizeof(alg));
	gn_buf_append(b, gn_buf_data(bits), gn_buf_len(bits));
	gn_buf_free(&bits);
	return b;
}

/* Reads a public key: p= as DER (a SubjectPublicKeyInfo, or an
 * RSAPublicKey wrapped into one) for RSA, 32 raw octets for Ed25519.
 * Returns 0 with the key in *pk_r, -1 (unreadable, or over 8192 bits) or
 * -2 (RSA under 1024 bits) with *error_r; *bits_r once the key read. */
static int pubkey_import(enum gn_dkim_algorithm alg, const unsigned char *pub, size_t pub_len,
		      gnutls_pubkey_t *pk_r, unsigned *bits_r, const char **error_r)
{
	gnutls_pubkey_t pk;
	if (gnutls_pubkey_init(&pk) < 0) {
		*error_r = "could not set up a key";
		return -1;
	}
	gnutls_datum_t k = { (unsigned char *)pub, (unsigned)pub_len };
	int r;
	if (alg == GN_DKIM_ED25519_SHA256) {
		r = gnutls_pubkey_import_ecc_raw(pk, GNUTLS_ECC_CURVE_ED25519, &k, NULL);
		if (r >= 0)
			*bits_r = 256;
	} else {
		r = gnutls_pubkey_import(pk, &k, GNUTLS_X509_FMT_DER);
		if (r < 0) {
			struct gn_buf *spki = rsa_spki(pub, pub_len);
			gnutls_datum_t k2 = { (unsigned char *)gn_buf_data(spki), (unsigned)gn_buf_len(spki) };
			r = gnutls_pubkey_import(pk, &k2, GNUTLS_X509_FMT_DER);
			gn_buf_free(&spki);
		}
		unsigned bits = 0;
		if (r >= 0 && (gnutls_pubkey_get_pk_algorithm(pk, &bits) != GNUTLS_PK_RSA)) {
			gnutls_pubkey_deinit(pk);
			*error_r = "k=rsa but the key is no RSA key";
			return -1;
		}
		if (r >= 0)
			*bits_r = bits;
		if (r >= 0 && bits > 8192) {
			/* Larger keys only make a verifier work: none signs
			 * with them. */
			gnutls_pubkey_deinit(pk);
			*error_r = "RSA key over 8192 bits";
			return -1;
		}
		if (r >= 0 && bits < 1024) {
			/* RFC 8301 3.2: shorter keys are not valid. */
			gnutls_pubkey_deinit(pk);
			*error_r = "RSA key under 1024 bits";
			return -2;
		}
	}
	if (r < 0) {
		gnutls_pubkey_deinit(pk);
		*error_r = "public key cannot be read";
		return -1;
	}
	*pk_r = pk;
	return 0;
}

/* The keys this process read last, by algorithm and p= octets: a sender
 * domain's mail comes with the same key (the resolver keeps the record
 * for its TTL), and reading an RSA key (DER through libtasn1, the
 * numbers into GMP) costs as much as checking the signature.  Only what
 * the octets alone decide is kept, so an entry is never stale; the
 * least recently used one makes room. */
#define KEY_CACHE_SIZE 32

static struct key_cache {
	enum gn_dkim_algorithm alg;
	unsigned char *pub;	/* NULL: unused */
	size_t pub_len;
	gnutls_pubkey_t pk;
	unsigned bits;
	uint64_t used;
} key_cache[KEY_CACHE_SIZE];
static uint64_t key_cache_clock;

static int key_get(enum gn_dkim_algorithm alg, const unsigned char *pub, size_t pub_len,
		   gnutls_pubkey_t *pk_r, unsigned *bits_r, const char **error_r)
{
	struct key_cache *victim = NULL;	/* an unused entry, else the oldest */
	for (size_t i = 0; i < KEY_CACHE_SIZE; i++) {
		struct key_cache *e = &key_cache[i];
		if (e->pub != NULL && e->alg == alg && e->pub_len == pub_len &&
		    memcmp(e->pub, pub, pub_len) == 0) {
			e->used = ++key_cache_clock;
			*pk_r = e->pk;
			*bits_r = e->bits;
			return 0;
		}
		if (victim == NULL || (victim->pub != NULL && (e->pub == NULL || e->used < victim->used)))
			victim = e;
	}
	int r = pubkey_import(alg, pub, pub_len, pk_r, bits_r, error_r);
	if (r < 0)
		return r;
	if (victim->pub != NULL) {
		gnutls_pubkey_deinit(victim->pk);
		gn_free(victim->pub);
	}
	victim->alg = alg;
	victim->pub = gn_malloc(pub_len > 0 ? pub_len : 1);
	memcpy(victim->pub, pub, pub_len);
	victim->pub_len = pub_len;
	victim->pk = *pk_r;
	victim->bits = *bits_r;
	victim->used = ++key_cache_clock;
	return 0;
}

int dkim_verify_hash_bits(enum gn_dkim_algorithm alg, const unsigned char *pub, size_t pub_len,
			  const unsigned char hash[GN_DKIM_HASH_SIZE], const unsigned char *sig,
			  size_t sig_len, unsigned *bits_r, const char **error_r)
{
	*bits_r = 0;
	if (pub_len > 16384) {
		*error_r = "public key too long";
		return -1;
	}
	gnutls_pubkey_t pk;
	int r = key_get(alg, pub, pub_len, &pk, bits_r, error_r);
	if (r < 0)
		return r;
	gnutls_datum_t h = { (unsigned char *)hash, GN_DKIM_HASH_SIZE };
	gnutls_datum_t s = { (unsigned char *)sig, (unsigned)sig_len };
	r = alg == GN_DKIM_ED25519_SHA256
		? gnutls_pubkey_verify_data2(pk, GNUTLS_SIGN_EDDSA_ED25519, 0, &h, &s)
		: gnutls_pubkey_verify_hash2(pk, GNUTLS_SIGN_RSA_SHA256, 0, &h, &s);
	return r >= 0 ? 1 : 0;
}

int gn_dkim_verify_hash(enum gn_dkim_algorithm alg, const unsigned char *pub, size_t pub_len,
			const unsigned char hash[GN_DKIM_HASH_SIZE], const unsigned char *sig,
			size_t sig_len, const char **error_r)
{
	unsigned bits;
	int r = dkim_verify_hash_bits(alg, pub, pub_len, hash, sig, sig_len, &bits, error_r);
	return r < 0 ? -1 : r;
}

/* ---- the signer ---- */

/* The fields signed, each as often as it occurs.  Those marked are also
 * oversigned: listed once more than they occur (RFC 6376 8.15), so that
 * nobody can add one (a second From, a Reply-To that was not there)
 * without breaking the signature.  List-* fields are signed when present
 * but not oversigned: a mailing list adds its own and signs them. */
static const struct {
	const char *name;
	bool oversign;
} sign_fields[] = {
	{ "From", true }, { "Reply-To", true }, { "Subject", true }, { "Date", true },
	{ "To", true }, { "Cc", true }, { "Message-ID", true }, { "In-Reply-To", true },
	{ "References", true }, { "MIME-Version", true }, { "Content-Type", true },
	{ "Content-Transfer-Encoding", true },
	{ "List-Id", false }, { "List-Help", false }, { "List-Unsubscribe", false },
	{ "List-Unsubscribe-Post", false }, { "List-Subscribe", false }, { "List-Post", false },
	{ "List-Owner", false }, { "List-Archive", false },
};
#define N_SIGN_FIELDS (sizeof(sign_fields) / sizeof(sign_fields[0]))

struct gn_dkim_signer {
	struct gn_pool *pool;
	struct gn_buf *header;
	bool in_body, finished;
	size_t line_len;	/* octets other than CR in the header's line */
	struct gn_dkim_body *body;
	unsigned char bh[GN_DKIM_HASH_SIZE];
	struct gn_dkim_field *fields;
	size_t n_fields;
	const char **names;
	size_t n_names;
};

struct gn_dkim_signer *gn_dkim_signer_new(void)
{
	struct gn_dkim_signer *s = gn_calloc(1, sizeof(*s));
	s->pool = gn_pool_new();
	/* The header and its empty line. */
	s->header = gn_buf_new(GN_DKIM_MAX_HEADER + 2);
	s->body = gn_dkim_body_new(GN_DKIM_RELAXED);
	return s;
}

void gn_dkim_signer_free(struct gn_dkim_signer **s)
{
	if (s == NULL || *s == NULL)
		return;
	gn_buf_free(&(*s)->header);
	gn_dkim_body_free(&(*s)->body);
	gn_pool_free(&(*s)->pool);
	gn_free(*s);
	*s = NULL;
}

int gn_dkim_signer_update(struct gn_dkim_signer *s, const void *data, size_t len,
			  const char **error_r)
{
	const char *p = data;
	if (s->finished) {
		*error_r = "message already ended";
		return -1;
	}
	size_t i = 0;
	if (!s->in_body) {
		/* Up to and with the empty line that ends the header. */
		for (; i < len && !s->in_body; i++) {
			if (p[i] == '\n') {
				if (s->line_len == 0)
					s->in_body = true;
				s->line_len = 0;
			} else if (p[i] != '\r') {
				s->line_len++;
			}
		}
		if (gn_buf_append(s->header, p, i) < 0) {
			*error_r = "message header too large for DKIM (over 1 MiB)";
			return -1;
		}
	}
	if (i < len)
		gn_dkim_body_update(s->body, p + i, len - i);
	return 0;
}

int gn_dkim_signer_finish(struct gn_dkim_signer *s, const char **error_r)
{
	if (s->finished) {
		*error_r = "message already ended";
		return -1;
	}
	s->finished = true;
	gn_dkim_body_finish(s->body, s->bh);
	if (gn_dkim_header_split(s->pool, gn_buf_data(s->header), gn_buf_len(s->header),
				 &s->fields, &s->n_fields, error_r) < 0)
		return -1;
	size_t counts[N_SIGN_FIELDS] = { 0 };
	size_t total = 0;
	for (size_t k = 0; k < N_SIGN_FIELDS; k++) {
		for (size_t i = 0; i < s->n_fields; i++)
			if (gn_dkim_field_is(&s->fields[i], sign_fields[k].name))
				counts[k]++;
		total += counts[k] + (sign_fields[k].oversign ? 1 : 0);
	}
	/* RFC 6376 5.4: From must be signed; a message with several From
	 * fields is refused rather than signed in a way a verifier reads
	 * differently (RFC 5322 3.6 allows one). */
	if (counts[0] != 1) {
		*error_r = counts[0] == 0 ? "message has no From field"
					  : "message has more than one From field";
		return -1;
	}
	s->names = gn_pool_alloc(s->pool, (total + 1) * sizeof(*s->names));
	for (size_t k = 0; k < N_SIGN_FIELDS; k++) {
		size_t n = counts[k] + (sign_fields[k].oversign ? 1 : 0);
		for (size_t j = 0; j < n; j++)
			s->names[s->n_names++] = sign_fields[k].name;
	}
	return 0;
}

/* A domain name or selector as it may appear in d= and s=: LDH labels
 * (and "_"), dot-separated. */
bool dkim_name_ok(const char *s)
{
	size_t len = strlen(s), label = 0;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

/* Appends text to b, folding first when the line would pass 78 columns. */
static void fold_add(struct gn_buf *b, size_t *col, const char *text)
{
	size_t n = strlen(text);
	if (*col > 1 && *col + n > 78) {
		gn_buf_append(b, "\r\n\t", 3);
		*col = 1;
		while (*text == ' ') {
			text++;
			n--;
		}
	}
	gn_buf_append(b, text, n);
	*col += n;
}

int gn_dkim_signer_sign(struct gn_dkim_signer *s, const char *domain, const char *selector,
			const struct gn_dkim_key *key, time_t now, time_t expires,
			struct gn_buf *out, const char **error_r)
{
	if (!s->finished || s->names == NULL) {
		*error_r = "the message was not ended, or could not be read";
		return -1;
	}
	if (!dkim_name_ok(domain)) {
		*error_r = "bad signing domain";
		return -1;
	}
	if (!dkim_name_ok(selector)) {
		*error_r = "bad selector";
		return -1;
	}
	if (expires != 0 && expires <= now) {
		*error_r = "signature expiry not after its time";
		return -1;
	}
	struct gn_pool *pool = gn_pool_new();
	struct gn_buf *b = gn_buf_new(0);
	size_t col = 0;
	fold_add(b, &col, "DKIM-Signature: v=1;");
	fold_add(b, &col, gn_pool_printf(pool, " a=%s;", gn_dkim_algorithm_name(key->alg)));
	fold_add(b, &col, " c=relaxed/relaxed;");
	fold_add(b, &col, gn_pool_printf(pool, " d=%s;", domain));
	fold_add(b, &col, gn_pool_printf(pool, " s=%s;", selector));
	fold_add(b, &col, gn_pool_printf(pool, " t=%lld;", (long long)now));
	if (expires != 0)
		fold_add(b, &col, gn_pool_printf(pool, " x=%lld;", (long long)expires));
	for (size_t i = 0; i < s->n_names; i++)
		fold_add(b, &col, gn_pool_printf(pool, "%s%s%s", i == 0 ? " h=" : "",
						 s->names[i], i + 1 < s->n_names ? ":" : ";"));
	char *bh = mime_b64_encode(s->bh, sizeof(s->bh));
	fold_add(b, &col, gn_pool_printf(pool, " bh=%s;", bh));
	gn_free(bh);
	fold_add(b, &col, " b=");

	unsigned char hash[GN_DKIM_HASH_SIZE];
	const char *sig = NULL;
	int ret = -1;
	if (gn_dkim_header_hash(GN_DKIM_RELAXED, s->fields, s->n_fields, s->names, s->n_names,
				gn_buf_data(b), gn_buf_len(b), hash, error_r) < 0 ||
	    gn_dkim_key_sign(pool, key, hash, &sig, error_r) < 0)
		goto out;
	/* The signature, folded: FWS inside b= is ignored (RFC 6376 3.5). */
	size_t len = strlen(sig);
	for (size_t i = 0; i < len;) {
		size_t room = col < 77 ? 77 - col : 0;
		if (room == 0) {
			gn_buf_append(b, "\r\n\t", 3);
			col = 1;
			continue;
		}
		size_t n = len - i < room ? len - i : room;
		gn_buf_append(b, sig + i, n);
		col += n;
		i += n;
	}
	gn_buf_append(b, "\r\n", 2);
	if (gn_buf_append(out, gn_buf_data(b), gn_buf_len(b)) < 0) {
		*error_r = "signature does not fit";
		goto out;
	}
	ret = 0;
out:
	gn_buf_free(&b);
	gn_pool_free(&pool);
	return ret;
}
