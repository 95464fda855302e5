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
 * certificate, send the server's name as SNI when it is a host name, and
 * leave the decision on the verification result to the protocol: SMTP
 * between MTAs is opportunistic (RFC 3207, RFC 7435) unless a policy (DANE,
 * MTA-STS) asks for more.
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
static gnutls_certificate_credentials_t tls_client_cred;
static gnutls_priority_t tls_client_prio;
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
	return 0;
}

void tls_client_deinit(void)
{
	if (tls_client_prio != NULL) {
		gnutls_priority_deinit(tls_client_prio);
		tls_client_prio = NULL;
	}
	if (tls_client_cred != NULL) {
		gnutls_certificate_free_credentials(tls_client_cred);
		tls_client_cred = NULL;
	}
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
			   const char **error_r)
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
		ret = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, tls_client_cred);
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
