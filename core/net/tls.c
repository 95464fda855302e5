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
 */
#include "net/internal.h"

#include <string.h>

/* TLS 1.2 and 1.3 only, 128-bit security or better (RFC 8996 deprecates 1.0
 * and 1.1), server's cipher order. */
#define TLS_DEFAULT_PRIORITY \
	"SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE"

static gnutls_certificate_credentials_t tls_cred;
static gnutls_priority_t tls_prio;
static bool tls_global;

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
