/*
 * core/auth/tlspubkey.c: TLS public keys for client-certificate login
 * (gannet/auth.h), and `gannet config tlspubkey list|get|add|rm|gen`.
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

#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <unistr.h>

#define CERT_READ_MAX (1024 * 1024)
#define NAME_MAX_LEN 256

static int set_err(const char **error_r, const char *msg)
{
	if (error_r != NULL)
		*error_r = msg;
	return -1;
}

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
static int cert_spki(const unsigned char *der, size_t len,
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
static char *base64url(struct gn_pool *pool, const unsigned char *in, size_t len)
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

const char *gn_tlspubkey_fingerprint(struct gn_pool *pool,
				     const unsigned char *spki, size_t len)
{
	unsigned char d[32];
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, spki, len, d) < 0)
		return NULL;
	return base64url(pool, d, sizeof(d));
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
			return set_err(error_r, "RSA key too small: at least 2048 bits");
		*type_r = gn_pool_printf(pool, "rsa-%u", bits);
		return 0;
	case GNUTLS_PK_ECDSA: {
		gnutls_ecc_curve_t curve;
		gnutls_datum_t x = { NULL, 0 }, y = { NULL, 0 };
		if (gnutls_x509_crt_get_pk_ecc_raw(crt, &curve, &x, &y) < 0)
			return set_err(error_r, "cannot read the ECDSA key");
		gnutls_free(x.data);
		gnutls_free(y.data);
		if (curve == GNUTLS_ECC_CURVE_SECP256R1)
			*type_r = "ecdsa-p256";
		else if (curve == GNUTLS_ECC_CURVE_SECP384R1)
			*type_r = "ecdsa-p384";
		else if (curve == GNUTLS_ECC_CURVE_SECP521R1)
			*type_r = "ecdsa-p521";
		else
			return set_err(error_r, "unsupported ECDSA curve: P-256, P-384 or P-521 only");
		return 0;
	}
	case GNUTLS_PK_EDDSA_ED25519:
		*type_r = "ed25519";
		return 0;
	default:
		return set_err(error_r, "unsupported key type: RSA, ECDSA (P-256, P-384, P-521) or Ed25519 only");
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

/* ---- the table ---- */

#define KEY_COLUMNS \
	"k.fingerprint, k.account_id, a.name, k.login_address, k.name, k.key_type, " \
	"k.no_imap_preauth, encode(k.cert_der, 'hex'), " \
	"extract(epoch FROM k.created_at)::bigint "

static struct gn_tlspubkey *key_from_row(struct gn_pool *pool,
					 const PGresult *res, int row)
{
	struct gn_tlspubkey *k = gn_pool_alloc(pool, sizeof(*k));
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
	PGresult *res = gn_db_query(
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
		      struct gn_tlspubkey **keys_r, const char **error_r)
{
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)account_id);
	const char *params[] = { id };
	PGresult *res = gn_db_query(
		"SELECT " KEY_COLUMNS "FROM gn_tls_pubkeys k "
		"JOIN gn_accounts a ON a.id = k.account_id "
		"WHERE $1::bigint = 0 OR k.account_id = $1::bigint "
		"ORDER BY a.name, k.name, k.fingerprint", 1, params, error_r);
	if (res == NULL)
		return -1;
	int n = PQntuples(res);
	struct gn_tlspubkey *keys = gn_pool_alloc(pool, (size_t)(n ? n : 1) * sizeof(*keys));
	for (int i = 0; i < n; i++)
		keys[i] = *key_from_row(pool, res, i);
	PQclear(res);
	*keys_r = keys;
	return n;
}

int gn_tlspubkey_lookup(struct gn_pool *pool, const unsigned char *spki,
			size_t spki_len, struct gn_tlspubkey **key_r,
			const char **error_r)
{
	const char *fp = gn_tlspubkey_fingerprint(pool, spki, spki_len);
	struct gn_tlspubkey *key;
	struct gn_auth_account *account;
	if (fp == NULL)
		return set_err(error_r, "SHA-256 failed");
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
	    cert_spki(der, len, &spki, &spki_len) == 0)
		return gn_tlspubkey_lookup(pool, spki, spki_len, key_r, error_r);
	if (gn_conn_peer_spki(conn, &spki, &spki_len) == 1)
		return gn_tlspubkey_lookup(pool, spki, spki_len, key_r, error_r);
	return 0;
}

static char *bytea_param(const unsigned char *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	char *s = gn_malloc(2 * len + 3);
	s[0] = '\\';
	s[1] = 'x';
	for (size_t i = 0; i < len; i++) {
		s[2 + 2 * i] = digits[data[i] >> 4];
		s[3 + 2 * i] = digits[data[i] & 15];
	}
	s[2 + 2 * len] = '\0';
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

	if (cert_spki(cert_der, cert_len, &spki, &spki_len) < 0)
		return set_err(error_r, "not a DER X.509 certificate");
	if (gnutls_x509_crt_init(&crt) < 0)
		return set_err(error_r, "out of memory");
	gnutls_datum_t d = { (unsigned char *)cert_der, (unsigned)cert_len };
	if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(crt);
		return set_err(error_r, "not a valid X.509 certificate");
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
		return set_err(error_r, gn_pool_printf(pool, "invalid login address %s: %s",
						       login_address, err));
	if (r == 0)
		return set_err(error_r, gn_pool_printf(pool,
			"login address %s is not in canonical form: %s",
			login_address, canonical));
	r = gn_auth_lookup(pool, login_address, &account, error_r);
	if (r < 0)
		return -1;
	if (r == 0)
		return set_err(error_r, gn_pool_printf(pool,
			"login address %s is no address of an account", login_address));

	const char *fp = gn_tlspubkey_fingerprint(pool, spki, spki_len);
	if (fp == NULL)
		return set_err(error_r, "SHA-256 failed");
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)account->id);
	char *der_hex = bytea_param(cert_der, cert_len);
	const char *params[] = { fp, id, account->address, name, type,
				 no_imap_preauth ? "true" : "false", der_hex };
	PGresult *res = gn_db_query(
		"INSERT INTO gn_tls_pubkeys (fingerprint, account_id, login_address, name, "
		"key_type, no_imap_preauth, cert_der) VALUES ($1, $2, $3, $4, $5, $6, $7) "
		"ON CONFLICT (fingerprint) DO NOTHING", 7, params, error_r);
	gn_free(der_hex);
	if (res == NULL)
		return -1;
	int n = atoi(PQcmdTuples(res));
	PQclear(res);
	if (n == 0)
		return set_err(error_r, gn_pool_printf(pool, "key %s is already registered", fp));
	if (key_r != NULL && gn_tlspubkey_get(pool, fp, key_r, error_r) <= 0)
		return set_err(error_r, "key added but not found again");
	return 0;
}

int gn_tlspubkey_remove(const char *fingerprint, const char **error_r)
{
	const char *params[] = { fingerprint };
	PGresult *res = gn_db_query("DELETE FROM gn_tls_pubkeys WHERE fingerprint = $1",
				    1, params, error_r);
	if (res == NULL)
		return -1;
	int n = atoi(PQcmdTuples(res));
	PQclear(res);
	return n > 0 ? 1 : 0;
}

/* ---- CLI ---- */

static int usage_err(const char *usage)
{
	fprintf(stderr, "usage: gannet config tlspubkey %s\n", usage);
	return 2;
}

static char *pem_of(const unsigned char *der, size_t len)
{
	gnutls_datum_t in = { (unsigned char *)der, (unsigned)len }, out;
	if (gnutls_pem_base64_encode2("CERTIFICATE", &in, &out) < 0)
		return gn_strdup("");
	char *s = gn_strndup((const char *)out.data, out.size);
	gnutls_free(out.data);
	return s;
}

static int cmd_list(int argc, char **argv, void *data)
{
	(void)data;
	const char *error;
	int64_t account_id = 0;
	if (argc > 2 || (argc == 2 && argv[1][0] == '-'))
		return usage_err("list [ACCOUNT]");
	struct gn_pool *pool = gn_pool_new();
	int ret = 1;
	if (argc == 2) {
		const char *params[] = { argv[1] };
		PGresult *res = gn_db_query("SELECT id FROM gn_accounts WHERE name = $1",
					    1, params, &error);
		if (res == NULL) {
			fprintf(stderr, "gannet: database: %s\n", error);
			goto out;
		}
		if (PQntuples(res) == 0) {
			PQclear(res);
			fprintf(stderr, "gannet: no such account: %s\n", argv[1]);
			goto out;
		}
		account_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	struct gn_tlspubkey *keys;
	int n = gn_tlspubkey_list(pool, account_id, &keys, &error);
	if (n < 0) {
		fprintf(stderr, "gannet: database: %s\n", error);
		goto out;
	}
	printf("# fingerprint\ttype\tname\taccount\taddress\tno-imap-preauth\n");
	for (int i = 0; i < n; i++)
		printf("%s\t%s\t%s\t%s\t%s\t%s\n", keys[i].fingerprint, keys[i].type,
		       keys[i].name, keys[i].account, keys[i].login_address,
		       keys[i].no_imap_preauth ? "yes" : "no");
	ret = 0;
out:
	gn_pool_free(&pool);
	return ret;
}

static int cmd_get(int argc, char **argv, void *data)
{
	(void)data;
	const char *error;
	struct gn_tlspubkey *k;
	/* A fingerprint may start with "-" (base64url): no options here. */
	if (argc != 2)
		return usage_err("get FINGERPRINT");
	struct gn_pool *pool = gn_pool_new();
	int r = gn_tlspubkey_get(pool, argv[1], &k, &error);
	if (r < 0)
		fprintf(stderr, "gannet: database: %s\n", error);
	else if (r == 0)
		fprintf(stderr, "gannet: no such key: %s\n", argv[1]);
	if (r <= 0) {
		gn_pool_free(&pool);
		return 1;
	}
	char created[32] = "";
	struct tm tm;
	if (gmtime_r(&k->created, &tm) != NULL)
		strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	char *pem = pem_of(k->cert_der, k->cert_len);
	printf("fingerprint: %s\ntype: %s\nname: %s\naccount: %s\naddress: %s\n"
	       "no imap preauth: %s\ncreated: %s\n\n%s", k->fingerprint, k->type,
	       k->name, k->account, k->login_address,
	       k->no_imap_preauth ? "yes" : "no", created, pem);
	gn_free(pem);
	gn_pool_free(&pool);
	return 0;
}

/* Reads all of stdin (at most CERT_READ_MAX bytes).  NULL when too long
 * or unreadable. */
static char *read_stdin(size_t *len_r)
{
	size_t cap = 8192, len = 0;
	char *buf = gn_malloc(cap + 1);
	for (;;) {
		if (len == cap) {
			if (cap >= CERT_READ_MAX) {
				gn_free(buf);
				return NULL;
			}
			cap *= 2;
			buf = gn_realloc(buf, cap + 1);
		}
		ssize_t r = read(0, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			gn_free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	*len_r = len;
	return buf;
}

/* Exactly one PEM block, of type CERTIFICATE (as mox). */
static int one_certificate(const char *pem, size_t len, gnutls_datum_t *der_r,
			   const char **error_r)
{
	int blocks = 0;
	const char *p = pem, *end = pem + len;
	while ((p = memmem(p, (size_t)(end - p), "-----BEGIN ", 11)) != NULL) {
		if (p == pem || p[-1] == '\n') {
			blocks++;
			if (strncmp(p, "-----BEGIN CERTIFICATE-----", 27) != 0)
				return set_err(error_r, "the PEM block is not a CERTIFICATE");
		}
		p += 11;
	}
	if (blocks != 1)
		return set_err(error_r, blocks == 0 ? "no PEM CERTIFICATE block on stdin"
			       : "more than one PEM block on stdin: give one CERTIFICATE");
	gnutls_datum_t in = { (unsigned char *)pem, (unsigned)len };
	if (gnutls_pem_base64_decode2("CERTIFICATE", &in, der_r) < 0)
		return set_err(error_r, "bad PEM CERTIFICATE block");
	return 0;
}

static int cmd_add(int argc, char **argv, void *data)
{
	(void)data;
	const char *usage = "add [--no-imap-preauth] ADDRESS [NAME] < cert.pem";
	const char *error;
	bool no_preauth = false;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--no-imap-preauth") == 0 ||
		    strcmp(argv[i], "-no-imap-preauth") == 0) {
			no_preauth = true;
		} else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else {
			fprintf(stderr, "gannet: unknown option %s\n", argv[i]);
			return usage_err(usage);
		}
	}
	if (argc - i < 1 || argc - i > 2)
		return usage_err(usage);
	const char *address = argv[i], *name = argc - i == 2 ? argv[i + 1] : NULL;

	size_t len;
	char *pem = read_stdin(&len);
	if (pem == NULL) {
		fprintf(stderr, "gannet: cannot read the certificate from stdin (at most 1 MB)\n");
		return 1;
	}
	gnutls_datum_t der;
	if (one_certificate(pem, len, &der, &error) < 0) {
		gn_free(pem);
		fprintf(stderr, "gannet: %s\n", error);
		return 1;
	}
	gn_free(pem);
	struct gn_pool *pool = gn_pool_new();
	struct gn_tlspubkey *key;
	int ret = 0;
	if (gn_tlspubkey_add(pool, address, name, no_preauth, der.data, der.size,
			     &key, &error) < 0) {
		fprintf(stderr, "gannet: %s\n", error);
		ret = 1;
	} else {
		printf("%s\n", key->fingerprint);
	}
	gnutls_free(der.data);
	gn_pool_free(&pool);
	return ret;
}

static int cmd_rm(int argc, char **argv, void *data)
{
	(void)data;
	const char *error;
	/* A fingerprint may start with "-" (base64url): no options here. */
	if (argc != 2)
		return usage_err("rm FINGERPRINT");
	int r = gn_tlspubkey_remove(argv[1], &error);
	if (r < 0)
		fprintf(stderr, "gannet: database: %s\n", error);
	else if (r == 0)
		fprintf(stderr, "gannet: no such key: %s\n", argv[1]);
	return r > 0 ? 0 : 1;
}

/* Writes data to a new file of mode 0600 (never over an existing one). */
static int write_new(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "gannet: %s: %s\n", path, strerror(errno));
		return -1;
	}
	const char *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			fprintf(stderr, "gannet: %s: %s\n", path, strerror(errno));
			close(fd);
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	if (close(fd) < 0) {
		fprintf(stderr, "gannet: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* An ed25519 key and a minimal self-signed certificate for it: serial =
 * the unix time, no subject, as mox's `config tlspubkey gen`. */
static int cmd_gen(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 2 || argv[1][0] == '-' || argv[1][0] == '\0')
		return usage_err("gen STEM");
	const char *stem = argv[1];
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t key_pem = { NULL, 0 }, crt_pem = { NULL, 0 }, crt_der = { NULL, 0 };
	gnutls_datum_t x = { NULL, 0 }, y = { NULL, 0 }, k = { NULL, 0 };
	struct gn_pool *pool = gn_pool_new();
	int ret = 1, r;
	const char *what = "";

	time_t now = time(NULL);
	unsigned char serial[8];
	for (int i = 0; i < 8; i++)
		serial[i] = (unsigned char)((unsigned long long)now >> (56 - 8 * i));
	size_t skip = 0;
	while (skip < 7 && serial[skip] == 0)
		skip++;

#define TRY(call, msg) do { what = (msg); if ((r = (call)) < 0) goto fail; } while (0)
	TRY(gnutls_x509_privkey_init(&key), "key");
	TRY(gnutls_x509_privkey_generate(key, GNUTLS_PK_EDDSA_ED25519, 0, 0), "generating the key");
	TRY(gnutls_x509_crt_init(&crt), "certificate");
	TRY(gnutls_x509_crt_set_version(crt, 3), "certificate version");
	TRY(gnutls_x509_crt_set_serial(crt, serial + skip, sizeof(serial) - skip), "serial");
	TRY(gnutls_x509_crt_set_activation_time(crt, now), "activation time");
	TRY(gnutls_x509_crt_set_expiration_time(crt, GNUTLS_X509_NO_WELL_DEFINED_EXPIRATION),
	    "expiration time");
	TRY(gnutls_x509_crt_set_key(crt, key), "certificate key");
	TRY(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_UNKNOWN, 0), "signing");
	TRY(gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL,
					      GNUTLS_PKCS_PLAIN, &key_pem), "exporting the key");
	TRY(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &crt_pem), "exporting the certificate");
	TRY(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &crt_der), "exporting the certificate");
#undef TRY

	const unsigned char *spki;
	size_t spki_len;
	if (cert_spki(crt_der.data, crt_der.size, &spki, &spki_len) < 0) {
		fprintf(stderr, "gannet: the generated certificate does not parse\n");
		goto out;
	}
	const char *fp = gn_tlspubkey_fingerprint(pool, spki, spki_len);

	char ts[32];
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y%m%d%H%M", &tm);
	char *p_key = gn_pool_printf(pool, "%s.%s.ed25519privatekey.pkcs8.pem", stem, ts);
	char *p_crt = gn_pool_printf(pool, "%s.%s.certificate.pem", stem, ts);
	char *p_both = gn_pool_printf(pool, "%s.%s.ed25519privatekey-certificate.pem", stem, ts);
	struct gn_buf *both = gn_buf_new(0);
	gn_buf_append(both, key_pem.data, key_pem.size);
	gn_buf_append(both, crt_pem.data, crt_pem.size);
	int w = write_new(p_key, key_pem.data, key_pem.size);
	if (w == 0)
		w = write_new(p_crt, crt_pem.data, crt_pem.size);
	if (w == 0)
		w = write_new(p_both, gn_buf_data(both), gn_buf_len(both));
	gnutls_memset((void *)gn_buf_data(both), 0, gn_buf_len(both));
	gn_buf_free(&both);
	if (w < 0)
		goto out;
	fprintf(stderr, "wrote %s\nwrote %s\nwrote %s\n", p_key, p_crt, p_both);
	/* The 32-byte seed, as mox prints it for `sendmail` configs. */
	gnutls_ecc_curve_t curve;
	if (gnutls_x509_privkey_export_ecc_raw(key, &curve, &x, &y, &k) == 0 && k.size == 32)
		fprintf(stderr, "ed25519 private key seed (base64url): %s\n",
			base64url(pool, k.data, k.size));
	printf("%s\n", fp);
	ret = 0;
	goto out;
fail:
	fprintf(stderr, "gannet: %s: %s\n", what, gnutls_strerror(r));
out:
	if (k.data != NULL) {
		gnutls_memset(k.data, 0, k.size);
		gnutls_free(k.data);
	}
	gnutls_free(x.data);
	gnutls_free(y.data);
	if (key_pem.data != NULL) {
		gnutls_memset(key_pem.data, 0, key_pem.size);
		gnutls_free(key_pem.data);
	}
	gnutls_free(crt_pem.data);
	gnutls_free(crt_der.data);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	gn_pool_free(&pool);
	return ret;
}

/* ---- register ---- */

int tlspubkey_register(void)
{
	static const struct {
		const char *words, *usage;
		gn_cli_fn *fn;
	} cmds[] = {
		{ "config tlspubkey list", "[ACCOUNT]", cmd_list },
		{ "config tlspubkey get", "FINGERPRINT", cmd_get },
		{ "config tlspubkey add", "[--no-imap-preauth] ADDRESS [NAME] < cert.pem", cmd_add },
		{ "config tlspubkey rm", "FINGERPRINT", cmd_rm },
		{ "config tlspubkey gen", "STEM  (writes an ed25519 key and certificate)", cmd_gen },
	};
	int ret = 0;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *error;
		if (gn_cli_register(modules_core_ctx(), cmds[i].words, cmds[i].usage,
				    cmds[i].fn, NULL, &error) < 0) {
			conf_error("%s", error);
			ret = -1;
		}
	}
	return ret;
}
