/*
 * core/auth/tlspubkey.c: TLS public keys for client-certificate login
 * (gannet/tlspubkey.h); the CLI `gannet config tlspubkey` is in
 * cli-tlspubkey.c.
 *
 * A key is identified by the SHA-256 of the certificate's DER
 * SubjectPublicKeyInfo exactly as it appears in the certificate (mox's
 * RawSubjectPublicKeyInfo), in base64url without padding.  A small DER
 * walker finds those bytes; GnuTLS's x509 API reads the key type, CN and
 * serial and makes the certificates of `gen`.  Only the public key counts:
 * issuer, validity and names are never checked (mox.md 4.1).
 *
 * All SQL of gn_tls_pubkeys is in this file.
 */
#include "auth/internal.h"

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NAME_MAX_LEN 256

/* ---- DER (ITU-T X.690) ---- */

/* Reads one TLV at p[0..len): *hdr_r header bytes, *body_r content bytes.
 * Returns the tag, or -1 when malformed.  Definite lengths only (DER). */
static int der_tlv(const unsigned char *p, size_t len, size_t *hdr_r,
		   size_t *body_r)
{
	if (len < 2 || (p[0] & 0x1f) == 0x1f)
		return -1;
	size_t h = 2, n = p[1];
	if (n & 0x80) {
		size_t k = n & 0x7f;
		if (k == 0 || k > 4 || len < 2 + k)
			return -1;
		n = 0;
		for (size_t i = 0; i < k; i++)
			n = n << 8 | p[2 + i];
		h += k;
	}
	if (n > len - h)
		return -1;
	*hdr_r = h;
	*body_r = n;
	return p[0];
}

/* RFC 5280 4.1: Certificate ::= SEQUENCE { tbsCertificate, ... };
 * TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber,
 * signature, issuer, validity, subject, subjectPublicKeyInfo, ... }. */
int tlspubkey_cert_spki(const unsigned char *der, size_t len,
		     const unsigned char **spki_r, size_t *spki_len_r)
{
	size_t h, b;
	if (der_tlv(der, len, &h, &b) != 0x30)
		return -1;
	const unsigned char *p = der + h;
	size_t left = b;
	if (der_tlv(p, left, &h, &b) != 0x30)
		return -1;
	p += h;
	left = b;
	int tag = der_tlv(p, left, &h, &b);
	if (tag == 0xa0) {	/* version */
		p += h + b;
		left -= h + b;
	}
	/* serialNumber, signature, issuer, validity, subject */
	static const int skip[] = { 0x02, 0x30, 0x30, 0x30, 0x30 };
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
		if (der_tlv(p, left, &h, &b) != skip[i])
			return -1;
		p += h + b;
		left -= h + b;
	}
	if (der_tlv(p, left, &h, &b) != 0x30)
		return -1;
	*spki_r = p;
	*spki_len_r = h + b;
	return 0;
}

/* ---- fingerprints ---- */

/* RFC 4648 5: base64url, no padding. */
char *tlspubkey_base64url(struct gn_pool *pool, const unsigned char *in, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = gn_pool_alloc(pool, (len + 2) / 3 * 4 + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		if (i + 1 < len)
			out[o++] = alphabet[v >> 6 & 63];
		if (i + 2 < len)
			out[o++] = alphabet[v & 63];
	}
	out[o] = '\0';
	return out;
}

const char *gn_tlspubkey_spki_fingerprint(struct gn_pool *pool,
					  const unsigned char *spki, size_t len)
{
	unsigned char d[32];
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, spki, len, d) < 0)
		return NULL;
	return tlspubkey_base64url(pool, d, sizeof(d));
}

/* ---- certificates ---- */

/* Text from a certificate made storable: valid UTF-8 without control
 * characters, at most NAME_MAX_LEN bytes. */
static char *clean_text(struct gn_pool *pool, const char *s, size_t len)
{
	return text_clean(pool, s, len, NAME_MAX_LEN);
}

/* The key type: "rsa-BITS" (at least 2048 bits), "ecdsa-p256" / p384 /
 * p521, "ed25519"; others are refused (mox.md 4.1). */
static int key_type(struct gn_pool *pool, gnutls_x509_crt_t crt,
		    const char **type_r, const char **error_r)
{
	unsigned bits = 0;
	int alg = gnutls_x509_crt_get_pk_algorithm(crt, &bits);
	switch (alg) {
	case GNUTLS_PK_RSA:
		if (bits < 2048)
			return auth_err(error_r, "RSA key too small: at least 2048 bits");
		*type_r = gn_pool_printf(pool, "rsa-%u", bits);
		return 0;
	case GNUTLS_PK_ECDSA: {
		gnutls_ecc_curve_t curve;
		gnutls_datum_t x = { NULL, 0 }, y = { NULL, 0 };
		if (gnutls_x509_crt_get_pk_ecc_raw(crt, &curve, &x, &y) < 0)
			return auth_err(error_r, "cannot read the ECDSA key");
		gnutls_free(x.data);
		gnutls_free(y.data);
		if (curve == GNUTLS_ECC_CURVE_SECP256R1)
			*type_r = "ecdsa-p256";
		else if (curve == GNUTLS_ECC_CURVE_SECP384R1)
			*type_r = "ecdsa-p384";
		else if (curve == GNUTLS_ECC_CURVE_SECP521R1)
			*type_r = "ecdsa-p521";
		else
			return auth_err(error_r, "unsupported ECDSA curve: P-256, P-384 or P-521 only");
		return 0;
	}
	case GNUTLS_PK_EDDSA_ED25519:
		*type_r = "ed25519";
		return 0;
	default:
		return auth_err(error_r, "unsupported key type: RSA, ECDSA (P-256, P-384, P-521) or Ed25519 only");
	}
}

/* The certificate's subject CN, else "serial <hex>" (mox.md 4.1). */
static const char *default_name(struct gn_pool *pool, gnutls_x509_crt_t crt)
{
	size_t size = 0;
	int r = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0,
					      NULL, &size);
	if (r == GNUTLS_E_SHORT_MEMORY_BUFFER && size > 1 && size < 65536) {
		char *buf = gn_pool_alloc(pool, size + 1);
		if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0,
						  buf, &size) == 0 && buf[0] != '\0')
			return clean_text(pool, buf, strlen(buf));
	}
	unsigned char serial[64];
	size = sizeof(serial);
	if (gnutls_x509_crt_get_serial(crt, serial, &size) < 0)
		return "serial 0";
	/* Like Go's %x of a big.Int: lower case, no leading zeros. */
	size_t i = 0;
	while (i + 1 < size && serial[i] == 0)
		i++;
	struct gn_buf *b = gn_buf_new(0);
	gn_buf_printf(b, "serial %x", serial[i]);
	for (i++; i < size; i++)
		gn_buf_printf(b, "%02x", serial[i]);
	char *s = gn_pool_strdup(pool, gn_buf_data(b));
	gn_buf_free(&b);
	return s;
}

/* ---- keys ---- */

struct gn_tlspubkey {
	const char *fingerprint;
	int64_t account_id;
	const char *account;
	const char *login_address;
	const char *name;
	const char *type;
	bool no_imap_preauth;
	const unsigned char *cert_der;
	size_t cert_len;
	time_t created;
	const char *login_disabled;
};

const char *gn_tlspubkey_fingerprint(const struct gn_tlspubkey *key)
{
	return key->fingerprint;
}

int64_t gn_tlspubkey_account_id(const struct gn_tlspubkey *key)
{
	return key->account_id;
}

const char *gn_tlspubkey_account(const struct gn_tlspubkey *key)
{
	return key->account;
}

const char *gn_tlspubkey_login_address(const struct gn_tlspubkey *key)
{
	return key->login_address;
}

const char *gn_tlspubkey_name(const struct gn_tlspubkey *key)
{
	return key->name;
}

const char *gn_tlspubkey_type(const struct gn_tlspubkey *key)
{
	return key->type;
}

bool gn_tlspubkey_no_imap_preauth(const struct gn_tlspubkey *key)
{
	return key->no_imap_preauth;
}

void gn_tlspubkey_cert(const struct gn_tlspubkey *key,
		       const unsigned char **der_r, size_t *len_r)
{
	*der_r = key->cert_der;
	*len_r = key->cert_len;
}

time_t gn_tlspubkey_created(const struct gn_tlspubkey *key)
{
	return key->created;
}

const char *gn_tlspubkey_login_disabled(const struct gn_tlspubkey *key)
{
	return key->login_disabled;
}

/* ---- the table ---- */

#define KEY_COLUMNS \
	"k.fingerprint, k.account_id, a.name, k.login_address, k.name, k.key_type, " \
	"k.no_imap_preauth, encode(k.cert_der, 'hex'), " \
	"extract(epoch FROM k.created_at)::bigint "

static struct gn_tlspubkey *key_from_row(struct gn_pool *pool,
					 const PGresult *res, int row)
{
	struct gn_tlspubkey *k = gn_pool_alloc(pool, sizeof(*k));
	memset(k, 0, sizeof(*k));
	k->fingerprint = gn_pool_strdup(pool, PQgetvalue(res, row, 0));
	k->account_id = strtoll(PQgetvalue(res, row, 1), NULL, 10);
	k->account = gn_pool_strdup(pool, PQgetvalue(res, row, 2));
	k->login_address = gn_pool_strdup(pool, PQgetvalue(res, row, 3));
	k->name = gn_pool_strdup(pool, PQgetvalue(res, row, 4));
	k->type = gn_pool_strdup(pool, PQgetvalue(res, row, 5));
	k->no_imap_preauth = PQgetvalue(res, row, 6)[0] == 't';
	const char *hex = PQgetvalue(res, row, 7);
	size_t n = strlen(hex) / 2;
	unsigned char *der = gn_pool_alloc(pool, n ? n : 1);
	if (hex_decode(der, hex, 2 * n) < 0)
		n = 0;	/* encode(..., 'hex') never gives that */
	k->cert_der = der;
	k->cert_len = n;
	k->created = (time_t)strtoll(PQgetvalue(res, row, 8), NULL, 10);
	return k;
}

int gn_tlspubkey_get(struct gn_pool *pool, const char *fingerprint,
		     struct gn_tlspubkey **key_r, const char **error_r)
{
	const char *params[] = { fingerprint };
	PGresult *res = db_query(
		"SELECT " KEY_COLUMNS "FROM gn_tls_pubkeys k "
		"JOIN gn_accounts a ON a.id = k.account_id WHERE k.fingerprint = $1",
		1, params, error_r);
	if (res == NULL)
		return -1;
	int n = PQntuples(res);
	if (n > 0)
		*key_r = key_from_row(pool, res, 0);
	PQclear(res);
	return n > 0 ? 1 : 0;
}

int gn_tlspubkey_list(struct gn_pool *pool, int64_t account_id,
		      struct gn_tlspubkey ***keys_r, const char **error_r)
{
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)account_id);
	const char *params[] = { id };
	PGresult *res = db_query(
		"SELECT " KEY_COLUMNS "FROM gn_tls_pubkeys k "
		"JOIN gn_accounts a ON a.id = k.account_id "
		"WHERE $1::bigint = 0 OR k.account_id = $1::bigint "
		"ORDER BY a.name, k.name, k.fingerprint", 1, params, error_r);
	if (res == NULL)
		return -1;
	int n = PQntuples(res);
	struct gn_tlspubkey **keys = gn_pool_alloc(pool, (size_t)(n ? n : 1) * sizeof(*keys));
	for (int i = 0; i < n; i++)
		keys[i] = key_from_row(pool, res, i);
	PQclear(res);
	*keys_r = keys;
	return n;
}

int gn_tlspubkey_lookup(struct gn_pool *pool, const unsigned char *spki,
			size_t spki_len, struct gn_tlspubkey **key_r,
			const char **error_r)
{
	const char *fp = gn_tlspubkey_spki_fingerprint(pool, spki, spki_len);
	struct gn_tlspubkey *key;
	struct gn_auth_account *account;
	if (fp == NULL)
		return auth_err(error_r, "SHA-256 failed");
	int r = gn_tlspubkey_get(pool, fp, &key, error_r);
	if (r <= 0)
		return r;
	/* mox.md 4.2: the login address must lead to the key's account. */
	r = gn_auth_lookup(pool, key->login_address, &account, error_r);
	if (r < 0)
		return -1;
	if (r == 0 || account->id != key->account_id) {
		gn_log(GN_LOG_WARN, "auth",
		       "event=tlspubkey_mismatch fingerprint=%s address=%s account=%s",
		       fp, gn_log_quote(0, key->login_address),
		       gn_log_quote(1, key->account));
		return 0;
	}
	key->login_disabled = account->login_disabled;
	*key_r = key;
	return 1;
}

int gn_tlspubkey_lookup_conn(struct gn_pool *pool, const struct gn_conn *conn,
			     struct gn_tlspubkey **key_r, const char **error_r)
{
	const unsigned char *der, *spki;
	size_t len, spki_len;
	if (gn_conn_peer_cert(conn, &der, &len) == 1 &&
	    tlspubkey_cert_spki(der, len, &spki, &spki_len) == 0)
		return gn_tlspubkey_lookup(pool, spki, spki_len, key_r, error_r);
	if (gn_conn_peer_spki(conn, &spki, &spki_len) == 1)
		return gn_tlspubkey_lookup(pool, spki, spki_len, key_r, error_r);
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

int gn_tlspubkey_add(struct gn_pool *pool, const char *login_address,
		     const char *name, bool no_imap_preauth,
		     const unsigned char *cert_der, size_t cert_len,
		     struct gn_tlspubkey **key_r, const char **error_r)
{
	const unsigned char *spki;
	size_t spki_len;
	const char *canonical = NULL, *type = NULL, *err;
	struct gn_auth_account *account;
	gnutls_x509_crt_t crt;

	if (tlspubkey_cert_spki(cert_der, cert_len, &spki, &spki_len) < 0)
		return auth_err(error_r, "not a DER X.509 certificate");
	if (gnutls_x509_crt_init(&crt) < 0)
		return auth_err(error_r, "out of memory");
	gnutls_datum_t d = { (unsigned char *)cert_der, (unsigned)cert_len };
	if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(crt);
		return auth_err(error_r, "not a valid X.509 certificate");
	}
	int r = key_type(pool, crt, &type, error_r);
	if (r == 0 && (name == NULL || *name == '\0'))
		name = default_name(pool, crt);
	gnutls_x509_crt_deinit(crt);
	if (r < 0)
		return -1;
	name = clean_text(pool, name, strlen(name));

	/* mox.md 4.1: the login address must be in canonical form. */
	r = gn_addr_is_canonical(pool, login_address, &canonical, &err);
	if (r < 0)
		return auth_err(error_r, gn_pool_printf(pool, "invalid login address %s: %s",
						       login_address, err));
	if (r == 0)
		return auth_err(error_r, gn_pool_printf(pool,
			"login address %s is not in canonical form: %s",
			login_address, canonical));
	r = gn_auth_lookup(pool, login_address, &account, error_r);
	if (r < 0)
		return -1;
	if (r == 0)
		return auth_err(error_r, gn_pool_printf(pool,
			"login address %s is no address of an account", login_address));

	const char *fp = gn_tlspubkey_spki_fingerprint(pool, spki, spki_len);
	if (fp == NULL)
		return auth_err(error_r, "SHA-256 failed");
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)account->id);
	char *der_hex = bytea_param(cert_der, cert_len);
	const char *params[] = { fp, id, account->address, name, type,
				 no_imap_preauth ? "true" : "false", der_hex };
	PGresult *res = db_query(
		"INSERT INTO gn_tls_pubkeys (fingerprint, account_id, login_address, name, "
		"key_type, no_imap_preauth, cert_der) VALUES ($1, $2, $3, $4, $5, $6, $7) "
		"ON CONFLICT (fingerprint) DO NOTHING", 7, params, error_r);
	gn_free(der_hex);
	if (res == NULL)
		return -1;
	int n = atoi(PQcmdTuples(res));
	PQclear(res);
	if (n == 0)
		return auth_err(error_r, gn_pool_printf(pool, "key %s is already registered", fp));
	if (key_r != NULL && gn_tlspubkey_get(pool, fp, key_r, error_r) <= 0)
		return auth_err(error_r, "key added but not found again");
	return 0;
}

int gn_tlspubkey_remove(const char *fingerprint, const char **error_r)
{
	const char *params[] = { fingerprint };
	PGresult *res = db_query("DELETE FROM gn_tls_pubkeys WHERE fingerprint = $1",
				 1, params, error_r);
	if (res == NULL)
		return -1;
	int n = atoi(PQcmdTuples(res));
	PQclear(res);
	return n > 0 ? 1 : 0;
}

/* ---- register ---- */

int tlspubkey_register(void)
{
	return cli_tlspubkey_register();
}
