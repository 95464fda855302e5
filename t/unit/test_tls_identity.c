/*
 * t/unit/test_tls_identity.c: client certificates for outbound TLS
 * (core/net/tls.c, gn_conn_tls_identity_*()).  A raw Ed25519 seed gives a
 * self-signed certificate whose public key is the seed's: checked against
 * RFC 8032 7.1 TEST 1 (the seed and the public key it derives), and its
 * signature verifies with its own key.  A PEM with key and certificate is
 * taken, a PEM without a key, an encrypted key and a seed of the wrong
 * length are refused with a reason.
 */
#include "main.h"

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>

#include "tap.h"

static void unhex(const char *h, unsigned char *out)
{
	for (size_t i = 0; h[2 * i] != '\0'; i++) {
		unsigned v;
		sscanf(h + 2 * i, "%2x", &v);
		out[i] = (unsigned char)v;
	}
}

static void test_seed(void)
{
	unsigned char seed[32], pub[32];
	struct gn_tls_identity *id = NULL;
	const char *err = NULL;
	unsigned char *der = NULL;
	size_t len = 0;

	/* RFC 8032 7.1 TEST 1. */
	unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed);
	unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pub);
	is_int(gn_conn_tls_identity_ed25519(seed, 32, &id, &err), 0, "an identity from a seed");
	if (id == NULL) {
		diag("%s", err);
		return;
	}
	is_int(tls_identity_cert_der(id, &der, &len), 0, "it holds a certificate");

	gnutls_x509_crt_t crt;
	gnutls_datum_t d = { der, (unsigned)len }, x = { NULL, 0 };
	gnutls_ecc_curve_t curve;
	gnutls_x509_crt_init(&crt);
	is_int(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER), 0, "the certificate parses");
	is_int(gnutls_x509_crt_get_pk_algorithm(crt, NULL), GNUTLS_PK_EDDSA_ED25519,
	       "its key is Ed25519");
	ok(gnutls_x509_crt_get_pk_ecc_raw(crt, &curve, &x, NULL) == 0 && x.size == 32 &&
	   memcmp(x.data, pub, 32) == 0, "its public key is the seed's (RFC 8032 7.1 TEST 1)");
	is_int(gnutls_x509_crt_get_version(crt), 3, "version 3");
	unsigned int status = 1;
	ok(gnutls_x509_crt_verify(crt, &crt, 1, GNUTLS_VERIFY_ALLOW_UNSORTED_CHAIN |
				  GNUTLS_VERIFY_DISABLE_TIME_CHECKS, &status) == 0 && status == 0,
	   "self-signed: its signature verifies with its own key");
	time_t act = gnutls_x509_crt_get_activation_time(crt);
	ok(act <= time(NULL) && act > time(NULL) - 3600, "valid from now");
	gnutls_free(x.data);
	gnutls_x509_crt_deinit(crt);
	gnutls_free(der);
	gn_conn_tls_identity_free(&id);
	ok(id == NULL, "freed, the pointer cleared");
	gn_conn_tls_identity_free(&id);

	err = NULL;
	int r = gn_conn_tls_identity_ed25519(seed, 31, &id, &err);
	ok(r < 0 && id == NULL && err != NULL && strstr(err, "32") != NULL,
	   "a seed of 31 bytes is refused: %s", err ? err : "");
}

/* A key and a self-signed certificate, as PEM, made here. */
static char *make_pem(bool encrypted, bool with_key)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	gnutls_datum_t kp = { NULL, 0 }, cp = { NULL, 0 };
	static const unsigned char serial[1] = { 7 };
	char *out;

	gnutls_x509_privkey_init(&key);
	gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
				     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
	gnutls_x509_crt_init(&crt);
	gnutls_x509_crt_set_version(crt, 3);
	gnutls_x509_crt_set_serial(crt, serial, 1);
	gnutls_x509_crt_set_activation_time(crt, time(NULL) - 60);
	gnutls_x509_crt_set_expiration_time(crt, time(NULL) + 86400);
	gnutls_x509_crt_set_key(crt, key);
	gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
	if (encrypted)
		gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, "secret",
						  GNUTLS_PKCS_PBES2_AES_256, &kp);
	else
		gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL,
						  GNUTLS_PKCS_PLAIN, &kp);
	gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cp);
	out = gn_malloc(kp.size + cp.size + 1);
	size_t n = 0;
	if (with_key) {
		memcpy(out, kp.data, kp.size);
		n = kp.size;
	}
	memcpy(out + n, cp.data, cp.size);
	out[n + cp.size] = '\0';
	gnutls_free(kp.data);
	gnutls_free(cp.data);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	return out;
}

static void test_pem(void)
{
	struct gn_tls_identity *id = NULL;
	const char *err = NULL;
	char *pem = make_pem(false, true);

	is_int(gn_conn_tls_identity_pem(pem, strlen(pem), &id, &err), 0,
	       "a PEM with an unencrypted key and its certificate");
	gn_conn_tls_identity_free(&id);
	gn_free(pem);

	pem = make_pem(true, true);
	err = NULL;
	int r = gn_conn_tls_identity_pem(pem, strlen(pem), &id, &err);
	ok(r < 0 && id == NULL && err != NULL, "an encrypted key is refused: %s", err ? err : "");
	gn_free(pem);

	pem = make_pem(false, false);
	err = NULL;
	r = gn_conn_tls_identity_pem(pem, strlen(pem), &id, &err);
	ok(r < 0 && id == NULL && err != NULL, "a certificate without its key is refused: %s",
	   err ? err : "");
	gn_free(pem);

	err = NULL;
	r = gn_conn_tls_identity_pem("junk", 4, &id, &err);
	ok(r < 0 && err != NULL, "junk is refused: %s", err ? err : "");
}

int main(void)
{
	log_init("test_tls_identity");
	test_seed();
	test_pem();
	tls_client_deinit();
	return done_testing();
}
