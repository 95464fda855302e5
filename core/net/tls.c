/*
 * core/net/tls.c: GnuTLS server credentials and priorities for every listener.
 *
 * The master calls tls_init() before it forks: all certificates of the config
 * (tls.certificates) go into one GnuTLS certificate credentials structure.
 * GnuTLS itself picks, for each handshake, the certificate whose names
 * (DNS subjectAltNames, else the CN) match the client's server name
 * indication (RFC 6066 section 3) and whose key suits the negotiated
 * algorithms; without SNI, or when no name matches, it serves the first
 * suitable one, i.e. the first certificate of the config.  t/unit/test_tls.c
 * checks that selection.
 *
 * Client certificates are requested (GNUTLS_CERT_REQUEST) only for protocols
 * with GN_PROTO_CLIENT_CERT, never required, and never verified against a
 * CA: gannet identifies clients by their public key (SASL EXTERNAL against
 * the keys stored for an account), so only the key matters.
 *
 * Client sessions (outbound STARTTLS, gn_conn_starttls_client()) use
 * credentials of their own, made on first use: the system's trust store
 * plus the files added with gn_conn_tls_client_trust().  They present no
 * certificate unless given an identity (gn_conn_tls_identity_*(): a key
 * and certificate from PEM, or a minimal self-signed certificate made in
 * memory for a raw Ed25519 seed, as mox's sendmail does), which then has
 * credentials of its own with the same trust; they send the server's name as SNI when it is a host name, and
 * leave the decision on the verification result to the protocol: SMTP
 * between MTAs is opportunistic (RFC 3207, RFC 7435) unless a policy (DANE,
 * MTA-STS) asks for more.
 */
#include "net/internal.h"

#include <string.h>
#include <time.h>
#include <gnutls/x509.h>

/* TLS 1.2 and 1.3 only, 128-bit security or better (RFC 8996 deprecates 1.0
 * and 1.1), server's cipher order. */
#define TLS_DEFAULT_PRIORITY \
	"SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE"

static gnutls_certificate_credentials_t tls_cred;
static gnutls_priority_t tls_prio;
static bool tls_global;
static gnutls_certificate_credentials_t tls_client_cred;
static gnutls_priority_t tls_client_prio;
/* The files given to gn_conn_tls_client_trust(), for identities made
 * later (each has credentials of its own). */
#define TLS_CLIENT_TRUST_MAX 16
static char *tls_client_trust_files[TLS_CLIENT_TRUST_MAX];
static unsigned tls_client_n_trust;

struct gn_tls_identity {
	gnutls_certificate_credentials_t cred;
};
/* Opportunistic TLS is better than none: what GnuTLS calls NORMAL, less
 * SSL 3.0 and TLS 1.0/1.1 (RFC 8996). */
#define TLS_CLIENT_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

static int tls_client_init(const char **error_r)
{
	const char *errpos = NULL;
	int ret;

	if (tls_client_cred != NULL)
		return 0;
	ret = gnutls_certificate_allocate_credentials(&tls_client_cred);
	if (ret < 0) {
		tls_client_cred = NULL;
		*error_r = gnutls_strerror(ret);
		return -1;
	}
	/* Without a system store (a bare container) nothing verifies, which
	 * the verification result then says; not an error here. */
	(void)gnutls_certificate_set_x509_system_trust(tls_client_cred);
	ret = gnutls_priority_init(&tls_client_prio, TLS_CLIENT_PRIORITY, &errpos);
	if (ret < 0) {
		gnutls_certificate_free_credentials(tls_client_cred);
		tls_client_cred = NULL;
		tls_client_prio = NULL;
		*error_r = gnutls_strerror(ret);
		return -1;
	}
	return 0;
}

int gn_conn_tls_client_trust(const char *path, const char **error_r)
{
	static char errbuf[1024];
	int ret;

	if (tls_client_init(error_r) < 0)
		return -1;
	ret = gnutls_certificate_set_x509_trust_file(tls_client_cred, path,
						     GNUTLS_X509_FMT_PEM);
	if (ret <= 0) {
		snprintf(errbuf, sizeof(errbuf), "cannot load CA certificates from %s: %s",
			 path, ret == 0 ? "no certificate in the file" : gnutls_strerror(ret));
		*error_r = errbuf;
		return -1;
	}
	if (tls_client_n_trust < TLS_CLIENT_TRUST_MAX)
		tls_client_trust_files[tls_client_n_trust++] = gn_strdup(path);
	return 0;
}

void tls_client_deinit(void)
{
	for (unsigned i = 0; i < tls_client_n_trust; i++)
		gn_free(tls_client_trust_files[i]);
	tls_client_n_trust = 0;
	if (tls_client_prio != NULL) {
		gnutls_priority_deinit(tls_client_prio);
		tls_client_prio = NULL;
	}
	if (tls_client_cred != NULL) {
		gnutls_certificate_free_credentials(tls_client_cred);
		tls_client_cred = NULL;
	}
}

/* ---- client identities ---- */

static char tls_id_errbuf[256];

static const char *tls_id_err(const char *what, int ret)
{
	snprintf(tls_id_errbuf, sizeof(tls_id_errbuf), "%s: %s", what, gnutls_strerror(ret));
	return tls_id_errbuf;
}

/* Credentials with the trust that the shared client credentials have. */
static int tls_id_new(struct gn_tls_identity **id_r, const char **error_r)
{
	struct gn_tls_identity *id;
	int ret;

	if (tls_client_init(error_r) < 0)
		return -1;
	id = gn_calloc(1, sizeof(*id));
	ret = gnutls_certificate_allocate_credentials(&id->cred);
	if (ret < 0) {
		gn_free(id);
		*error_r = tls_id_err("client credentials", ret);
		return -1;
	}
	(void)gnutls_certificate_set_x509_system_trust(id->cred);
	for (unsigned i = 0; i < tls_client_n_trust; i++)
		(void)gnutls_certificate_set_x509_trust_file(id->cred, tls_client_trust_files[i],
							     GNUTLS_X509_FMT_PEM);
	*id_r = id;
	return 0;
}

int gn_conn_tls_identity_pem(const char *pem, size_t len, struct gn_tls_identity **id_r,
			     const char **error_r)
{
	struct gn_tls_identity *id;
	gnutls_datum_t d = { (unsigned char *)pem, (unsigned)len };
	int ret;

	if (len == 0 || len > 1024 * 1024 || memchr(pem, '\0', len) != NULL) {
		*error_r = "not a PEM file with a private key and a certificate";
		return -1;
	}
	if (tls_id_new(&id, error_r) < 0)
		return -1;
	/* One buffer holds both: GnuTLS picks the key's block and the
	 * certificates' blocks out of it.  An encrypted key fails here (no
	 * password is given), as mox asks for an unencrypted PKCS#8 key. */
	ret = gnutls_certificate_set_x509_key_mem2(id->cred, &d, &d, GNUTLS_X509_FMT_PEM,
						   NULL, 0);
	if (ret < 0) {
		*error_r = tls_id_err("the private key and certificate", ret);
		gn_conn_tls_identity_free(&id);
		return -1;
	}
	*id_r = id;
	return 0;
}

int gn_conn_tls_identity_ed25519(const unsigned char *seed, size_t seed_len,
				 struct gn_tls_identity **id_r, const char **error_r)
{
	/* RFC 8410 7: the PKCS#8 OneAsymmetricKey of an Ed25519 key is this
	 * prefix (version 0, id-Ed25519, an OCTET STRING in an OCTET
	 * STRING) and the 32-byte seed; GnuTLS derives the public key. */
	static const unsigned char prefix[16] = {
		0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70,
		0x04, 0x22, 0x04, 0x20,
	};
	unsigned char der[48];
	gnutls_datum_t d = { der, sizeof(der) };
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	struct gn_tls_identity *id = NULL;
	const char *what = "";
	int ret;

	if (seed_len != 32) {
		*error_r = "an Ed25519 private key seed has 32 bytes";
		return -1;
	}
	memcpy(der, prefix, sizeof(prefix));
	memcpy(der + sizeof(prefix), seed, 32);
	/* A minimal certificate, as mox makes it: version 3, serial 1, no
	 * names, valid from now on; the server looks only at the key. */
	static const unsigned char serial[1] = { 1 };
	time_t now = time(NULL);
#define TRY(call, msg) do { what = (msg); if ((ret = (call)) < 0) goto fail; } while (0)
	TRY(gnutls_x509_privkey_init(&key), "key");
	TRY(gnutls_x509_privkey_import_pkcs8(key, &d, GNUTLS_X509_FMT_DER, NULL,
					     GNUTLS_PKCS_PLAIN), "the Ed25519 seed");
	TRY(gnutls_x509_crt_init(&crt), "certificate");
	TRY(gnutls_x509_crt_set_version(crt, 3), "certificate version");
	TRY(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)), "serial");
	TRY(gnutls_x509_crt_set_activation_time(crt, now - 60), "activation time");
	TRY(gnutls_x509_crt_set_expiration_time(crt, GNUTLS_X509_NO_WELL_DEFINED_EXPIRATION),
	    "expiration time");
	TRY(gnutls_x509_crt_set_key(crt, key), "certificate key");
	TRY(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_UNKNOWN, 0), "signing");
#undef TRY
	if (tls_id_new(&id, error_r) < 0)
		goto out;
	ret = gnutls_certificate_set_x509_key(id->cred, &crt, 1, key);
	if (ret < 0) {
		what = "client credentials";
		goto fail;
	}
	*id_r = id;
	id = NULL;
	ret = 0;
	goto out;
fail:
	*error_r = tls_id_err(what, ret);
	ret = -1;
out:
	gnutls_memset(der, 0, sizeof(der));
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	gn_conn_tls_identity_free(&id);
	return ret < 0 ? -1 : 0;
}

int tls_identity_cert_der(const struct gn_tls_identity *id, unsigned char **der_r,
			  size_t *len_r)
{
	gnutls_datum_t d;
	if (gnutls_certificate_get_crt_raw(id->cred, 0, 0, &d) < 0)
		return -1;
	/* The datum points into the credentials: a copy for the caller. */
	*der_r = gnutls_malloc(d.size);
	memcpy(*der_r, d.data, d.size);
	*len_r = d.size;
	return 0;
}

void gn_conn_tls_identity_free(struct gn_tls_identity **idp)
{
	struct gn_tls_identity *id = idp != NULL ? *idp : NULL;
	if (id == NULL)
		return;
	*idp = NULL;
	gnutls_certificate_free_credentials(id->cred);
	gn_free(id);
}

/* Whether name is a host name to send as SNI: RFC 6066 3 forbids
 * literal IPv4 and IPv6 addresses. */
static bool sni_name(const char *name)
{
	bool alpha = false;
	if (name == NULL || name[0] == '\0' || strchr(name, ':') != NULL)
		return false;
	for (const char *p = name; *p != '\0'; p++)
		if ((*p < '0' || *p > '9') && *p != '.')
			alpha = true;
	return alpha;
}

int tls_client_session_new(gnutls_session_t *session_r, const char *server_name,
			   const struct gn_tls_identity *id, const char **error_r)
{
	gnutls_session_t s;
	int ret;

	if (tls_client_init(error_r) < 0)
		return -1;
	ret = gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
	if (ret < 0) {
		*error_r = gnutls_strerror(ret);
		return -1;
	}
	ret = gnutls_priority_set(s, tls_client_prio);
	if (ret >= 0)
		ret = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
					     id != NULL ? id->cred : tls_client_cred);
	if (ret >= 0 && sni_name(server_name))
		ret = gnutls_server_name_set(s, GNUTLS_NAME_DNS, server_name,
					     strlen(server_name));
	if (ret < 0) {
		*error_r = gnutls_strerror(ret);
		gnutls_deinit(s);
		return -1;
	}
	gnutls_handshake_set_timeout(s, 0);	/* conn.c's timer bounds it */
	*session_r = s;
	return 0;
}

bool tls_ready(void)
{
	return tls_cred != NULL && tls_prio != NULL;
}

int tls_init(const struct core_conf *conf, const char **error_r)
{
	static char errbuf[1024];
	const char *prio = conf->tls_priority;
	const char *errpos = NULL;
	int ret;

	tls_deinit();
	if (conf->n_certs == 0)
		return 0;	/* no TLS; listeners_check_protocols() refused
				 * listeners that need it */
	if (!tls_global) {
		ret = gnutls_global_init();
		if (ret < 0) {
			*error_r = gnutls_strerror(ret);
			return -1;
		}
		tls_global = true;
	}
	ret = gnutls_certificate_allocate_credentials(&tls_cred);
	if (ret < 0) {
		*error_r = gnutls_strerror(ret);
		tls_cred = NULL;
		return -1;
	}
	for (size_t i = 0; i < conf->n_certs; i++) {
		const struct cert_conf *c = &conf->certs[i];
		ret = gnutls_certificate_set_x509_key_file2(tls_cred, c->cert_file,
							    c->key_file,
							    GNUTLS_X509_FMT_PEM,
							    NULL, 0);
		if (ret < 0) {
			snprintf(errbuf, sizeof(errbuf),
				 "cannot load TLS certificate %s with key %s: %s",
				 c->cert_file, c->key_file, gnutls_strerror(ret));
			*error_r = errbuf;
			tls_deinit();
			return -1;
		}
	}
	if (prio == NULL || prio[0] == '\0')
		prio = TLS_DEFAULT_PRIORITY;
	ret = gnutls_priority_init(&tls_prio, prio, &errpos);
	if (ret < 0) {
		snprintf(errbuf, sizeof(errbuf),
			 "bad TLS priority string \"%s\"%s%s: %s", prio,
			 errpos != NULL ? " at " : "",
			 errpos != NULL ? errpos : "", gnutls_strerror(ret));
		*error_r = errbuf;
		tls_prio = NULL;
		tls_deinit();
		return -1;
	}
	return 0;
}

void tls_deinit(void)
{
	if (tls_prio != NULL) {
		gnutls_priority_deinit(tls_prio);
		tls_prio = NULL;
	}
	if (tls_cred != NULL) {
		gnutls_certificate_free_credentials(tls_cred);
		tls_cred = NULL;
	}
}

int tls_session_new(gnutls_session_t *session_r, bool client_cert,
		    const char **error_r)
{
	gnutls_session_t s;
	int ret;

	if (!tls_ready()) {
		*error_r = "no TLS certificate configured";
		return -1;
	}
	ret = gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
	if (ret < 0) {
		*error_r = gnutls_strerror(ret);
		return -1;
	}
	ret = gnutls_priority_set(s, tls_prio);
	if (ret >= 0)
		ret = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, tls_cred);
	if (ret < 0) {
		*error_r = gnutls_strerror(ret);
		gnutls_deinit(s);
		return -1;
	}
	/* Asked for, never required (GNUTLS_CERT_REQUEST, not _REQUIRE), and
	 * never verified: the public key is what identifies the client. */
	gnutls_certificate_server_set_request(s, client_cert ? GNUTLS_CERT_REQUEST
							     : GNUTLS_CERT_IGNORE);
	gnutls_handshake_set_timeout(s, 0);	/* conn.c's timer bounds it */
	*session_r = s;
	return 0;
}
