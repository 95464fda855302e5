/*
 * t/unit/test_net.c: listeners, connections and TLS without the master.
 *
 * A child process is the server: it registers a small line protocol, binds
 * listeners on loopback (plain+STARTTLS, implicit TLS, IPv6 when the machine
 * has ::1) with two certificates and runs the loop.  The test itself is the
 * client, with blocking sockets and GnuTLS: it checks line handling, the
 * input limit, STARTTLS dropping pipelined input (RFC 3207 5), which
 * certificate SNI selects, the client's public key as the server sees it,
 * channel bindings, the idle timeout, and compression (input the client
 * compressed right after asking, the input limit on inflated input, no
 * STARTTLS under it, corrupt input).
 */
#include "net/internal.h"
#include "tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>
#include <zlib.h>

static char dir[] = "/tmp/gannet-test-net-XXXXXX";
static char cert_a[256], key_a[256], cert_b[256], key_b[256], cert_c[256], key_c[256];

/* ---- the server's protocol ---- */

/* DRAIN: the handler takes all buffered input, pauses, and resumes from a
 * timer (as a protocol waiting for a hook or a query does). */
static struct gn_conn *paused;
static struct gn_timer *resume_timer;

static void s_resume(void *data)
{
	(void)data;
	gn_timer_free(&resume_timer);
	if (!gn_conn_is_closed(paused))
		gn_conn_input_resume(paused);
	gn_conn_unref(&paused);
}

static int s_open(struct gn_conn *c, void *d)
{
	const char *v = gn_conn_tls_version(c);
	(void)d;
	gn_conn_printf(c, "* hello %s\r\n", v ? v : "plain");
	return 0;
}

static void s_input(struct gn_conn *c, void *d)
{
	const char *line;
	size_t len;
	(void)d;
	while (!gn_conn_is_closed(c) && gn_conn_read_line(c, &line, &len) > 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (len == 8 && memcmp(line, "STARTTLS", 8) == 0) {
			gn_conn_printf(c, "* go ahead\r\n");
			if (gn_conn_starttls(c) < 0)
				gn_conn_close(c, "no starttls");
			return;
		} else if (len == 5 && memcmp(line, "DRAIN", 5) == 0) {
			const char *rest;
			size_t n;
			gn_conn_input_peek(c, &rest, &n);
			gn_conn_input_consume(c, n);
			gn_conn_printf(c, "* drained %zu\r\n", n);
			gn_conn_input_pause(c);
			gn_conn_ref(c);
			paused = c;
			resume_timer = gn_timer_new(20, false, s_resume, NULL);
			return;
		} else if (len == 5 && memcmp(line, "PAUSE", 5) == 0) {
			/* A long pause, input left in the socket. */
			gn_conn_printf(c, "* paused\r\n");
			gn_conn_input_pause(c);
			gn_conn_ref(c);
			paused = c;
			resume_timer = gn_timer_new(400, false, s_resume, NULL);
			return;
		} else if (len == 8 && memcmp(line, "COMPRESS", 8) == 0) {
			const char *error;
			gn_conn_printf(c, "* compressing\r\n");
			if (gn_conn_compress_start(c, &error) < 0)
				gn_conn_printf(c, "* not compressing: %s\r\n", error);
		} else if (len == 3 && memcmp(line, "SNI", 3) == 0) {
			gn_conn_printf(c, "* sni %s\r\n", gn_conn_tls_sni(c) ? gn_conn_tls_sni(c) : "none");
		} else if (len == 4 && memcmp(line, "SPKI", 4) == 0) {
			const unsigned char *der;
			size_t n;
			if (gn_conn_peer_spki(c, &der, &n) == 1) {
				gn_conn_printf(c, "* spki ");
				for (size_t i = 0; i < n; i++)
					gn_conn_printf(c, "%02x", der[i]);
				gn_conn_printf(c, "\r\n");
			} else {
				gn_conn_printf(c, "* spki none\r\n");
			}
		} else if (len > 3 && memcmp(line, "CB ", 3) == 0) {
			char *type = gn_pool_strndup(gn_conn_pool(c), line + 3, len - 3);
			const unsigned char *cb;
			size_t n;
			if (gn_conn_tls_channel_binding(c, type, &cb, &n) == 1)
				gn_conn_printf(c, "* cb %zu\r\n", n);
			else
				gn_conn_printf(c, "* cb none\r\n");
		} else if (len == 4 && memcmp(line, "PEER", 4) == 0) {
			gn_conn_printf(c, "* peer %s %s %s\r\n", gn_conn_remote_ip(c),
				       gn_conn_local_ip(c), gn_conn_listener(c));
		} else if (len == 4 && memcmp(line, "QUIT", 4) == 0) {
			gn_conn_printf(c, "* bye\r\n");
			gn_conn_close(c, "quit");
			return;
		} else {
			gn_conn_printf(c, "= %.*s\r\n", (int)len, line);
		}
	}
}

static void s_full(struct gn_conn *c, void *d)
{
	(void)d;
	gn_conn_printf(c, "* too long\r\n");
	gn_conn_close(c, "too long");
}

static void s_timeout(struct gn_conn *c, void *d)
{
	(void)d;
	gn_conn_printf(c, "* idle\r\n");
}

static const struct gn_protocol proto = {
	.size = sizeof(struct gn_protocol),
	.name = "unit-echo",
	.flags = GN_PROTO_CLIENT_CERT,
	.max_input = 256,
	.idle_timeout_ms = 1500,
	.open = s_open,
	.input = s_input,
	.input_full = s_full,
	.timeout = s_timeout,
};

static void server(unsigned p_plain, unsigned p_tls, unsigned p_v6)
{
	static struct core_conf conf;
	static struct listener_conf l[3];
	static struct cert_conf certs[2];
	const char *error;
	size_t n = 0;

	log_init("test_net");
	/* GANNET_TEST_VERBOSE=1 shows the server's log lines. */
	if (getenv("GANNET_TEST_VERBOSE") == NULL)
		log_set_level(NULL, GN_LOG_WARN);
	core_conf = &conf;
	certs[0].cert_file = cert_a;
	certs[0].key_file = key_a;
	certs[1].cert_file = cert_b;
	certs[1].key_file = key_b;
	conf.certs = certs;
	conf.n_certs = 2;
	conf.idle_timeout_ms = 300000;
	l[n++] = (struct listener_conf){ "plain", "127.0.0.1", p_plain, "unit-echo",
					 TLS_MODE_STARTTLS, "unit.conf", 1 };
	l[n++] = (struct listener_conf){ "tls", "127.0.0.1", p_tls, "unit-echo",
					 TLS_MODE_IMPLICIT, "unit.conf", 2 };
	if (p_v6 != 0)
		l[n++] = (struct listener_conf){ "v6", "::1", p_v6, "unit-echo",
						 TLS_MODE_NONE, "unit.conf", 3 };
	conf.listeners = l;
	conf.n_listeners = n;

	if (gn_protocol_register(modules_core_ctx(), &proto, NULL, &error) < 0 ||
	    listeners_check_protocols() < 0 || tls_init(&conf, &error) < 0 ||
	    listeners_bind(&conf, &error) < 0) {
		fprintf(stderr, "server setup failed: %s\n", error);
		_exit(1);
	}
	loop_init();
	listeners_start();
	ev_run(core_loop, 0);
	_exit(0);
}

/* ---- the client ---- */

struct cl {
	int fd;
	gnutls_session_t tls;
	char buf[8192];
	size_t len;
};

static unsigned free_port(int family)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = socket(family, SOCK_STREAM, 0);
	unsigned port = 0;
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	else
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&ss,
			    family == AF_INET6 ? sizeof(struct sockaddr_in6)
					       : sizeof(struct sockaddr_in)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		port = family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					  : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int cl_connect(struct cl *c, const char *ip, unsigned port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct timeval tv = { 5, 0 };

	memset(c, 0, sizeof(*c));
	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, ip, &s4->sin_addr);
		len = sizeof(*s4);
	}
	c->fd = socket(ss.ss_family, SOCK_STREAM, 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&ss, len) < 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

static void cl_close(struct cl *c)
{
	if (c->tls) {
		gnutls_deinit(c->tls);
		c->tls = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void cl_send(struct cl *c, const char *s)
{
	size_t len = strlen(s);
	if (c->tls)
		gnutls_record_send(c->tls, s, len);
	else
		(void)!send(c->fd, s, len, MSG_NOSIGNAL);
}

/* Next line without CRLF, "" on EOF or timeout.  Result in a static. */
static const char *cl_line(struct cl *c)
{
	static char line[8192];
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl != NULL) {
			size_t n = (size_t)(nl - c->buf) + 1;
			size_t m = n;
			while (m > 0 && (c->buf[m - 1] == '\n' || c->buf[m - 1] == '\r'))
				m--;
			memcpy(line, c->buf, m);
			line[m] = '\0';
			memmove(c->buf, c->buf + n, c->len - n);
			c->len -= n;
			return line;
		}
		if (c->len == sizeof(c->buf))
			return "";
		ssize_t r = c->tls ? gnutls_record_recv(c->tls, c->buf + c->len, sizeof(c->buf) - c->len)
				   : recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (r <= 0)
			return "";
		c->len += (size_t)r;
	}
}

/* 1 when the server closed (EOF), 0 otherwise. */
static int cl_eof(struct cl *c)
{
	char b[64];
	ssize_t r = c->tls ? gnutls_record_recv(c->tls, b, sizeof(b)) : recv(c->fd, b, sizeof(b), 0);
	if (c->tls && r == GNUTLS_E_PREMATURE_TERMINATION)
		return 1;
	return r == 0;
}

/* A compressing client (raw DEFLATE both ways, as IMAP COMPRESS): zc_start()
 * after the server's "* compressing" line; what the client read past
 * that line is compressed already. */
static z_stream zc_out, zc_in;
static char zc_plain[65536];
static size_t zc_len;

static void zc_inflate(const char *data, size_t len)
{
	zc_in.next_in = (Bytef *)data;
	zc_in.avail_in = (uInt)len;
	while (zc_in.avail_in > 0 && zc_len < sizeof(zc_plain)) {
		zc_in.next_out = (Bytef *)zc_plain + zc_len;
		zc_in.avail_out = (uInt)(sizeof(zc_plain) - zc_len);
		int r = inflate(&zc_in, Z_SYNC_FLUSH);
		zc_len = sizeof(zc_plain) - zc_in.avail_out;
		if (r != Z_OK)
			break;
	}
}

static void zc_start(struct cl *c)
{
	deflateEnd(&zc_out);
	inflateEnd(&zc_in);
	memset(&zc_out, 0, sizeof(zc_out));
	memset(&zc_in, 0, sizeof(zc_in));
	deflateInit2(&zc_out, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
	inflateInit2(&zc_in, -15);
	zc_len = 0;
	zc_inflate(c->buf, c->len);
	c->len = 0;
}

/* Compressed bytes of data (with a sync flush when flush), into out. */
static size_t zc_deflate(const void *data, size_t len, bool flush, unsigned char *out, size_t cap)
{
	zc_out.next_in = (Bytef *)data;
	zc_out.avail_in = (uInt)len;
	zc_out.next_out = out;
	zc_out.avail_out = (uInt)cap;
	(void)deflate(&zc_out, flush ? Z_SYNC_FLUSH : Z_NO_FLUSH);
	return cap - zc_out.avail_out;
}

static void zc_send(struct cl *c, const char *s)
{
	static unsigned char out[65536];
	size_t n = zc_deflate(s, strlen(s), true, out, sizeof(out));
	(void)!send(c->fd, out, n, MSG_NOSIGNAL);
}

/* The next inflated line without CRLF, "" on EOF. */
static const char *zc_line(struct cl *c)
{
	static char line[8192];
	for (;;) {
		char *nl = memchr(zc_plain, '\n', zc_len);
		if (nl != NULL) {
			size_t n = (size_t)(nl - zc_plain) + 1, m = n;
			while (m > 0 && (zc_plain[m - 1] == '\n' || zc_plain[m - 1] == '\r'))
				m--;
			memcpy(line, zc_plain, m < sizeof(line) ? m : sizeof(line) - 1);
			line[m < sizeof(line) ? m : sizeof(line) - 1] = '\0';
			memmove(zc_plain, zc_plain + n, zc_len - n);
			zc_len -= n;
			return line;
		}
		char raw[4096];
		ssize_t r = recv(c->fd, raw, sizeof(raw), 0);
		if (r <= 0)
			return "";
		zc_inflate(raw, (size_t)r);
	}
}

static gnutls_certificate_credentials_t cred_plain, cred_client;

static int cl_tls(struct cl *c, const char *sni, bool client_cert)
{
	int r;
	gnutls_init(&c->tls, GNUTLS_CLIENT);
	gnutls_set_default_priority(c->tls);
	gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE,
			       client_cert ? cred_client : cred_plain);
	if (sni)
		gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, sni, strlen(sni));
	gnutls_transport_set_int(c->tls, c->fd);
	do
		r = gnutls_handshake(c->tls);
	while (r < 0 && !gnutls_error_is_fatal(r));
	if (r < 0)
		diag("client handshake: %s", gnutls_strerror(r));
	return r;
}

/* CN of the certificate the server presented. */
static const char *served_cn(struct cl *c)
{
	static char cn[256];
	unsigned n = 0;
	const gnutls_datum_t *peers = gnutls_certificate_get_peers(c->tls, &n);
	gnutls_x509_crt_t crt;
	size_t len = sizeof(cn);
	cn[0] = '\0';
	if (peers == NULL || n == 0)
		return cn;
	gnutls_x509_crt_init(&crt);
	if (gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) == 0)
		gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &len);
	gnutls_x509_crt_deinit(crt);
	return cn;
}

static int make_cert(const char *name, const char *cn, char *cert, char *key)
{
	char cmd[1024];
	snprintf(cert, 256, "%s/%s.pem", dir, name);
	snprintf(key, 256, "%s/%s.key", dir, name);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -nodes -days 2 -subj /CN=%s -addext subjectAltName=DNS:%s "
		 "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout %s -out %s "
		 ">/dev/null 2>&1", cn, cn, key, cert);
	return system(cmd);
}

/* The client certificate's SubjectPublicKeyInfo in hex. */
static char *client_spki_hex(void)
{
	gnutls_datum_t pem, der;
	gnutls_x509_crt_t crt;
	gnutls_pubkey_t pk;
	char *hex = NULL;
	if (gnutls_load_file(cert_c, &pem) < 0)
		return NULL;
	gnutls_x509_crt_init(&crt);
	gnutls_pubkey_init(&pk);
	if (gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM) == 0 &&
	    gnutls_pubkey_import_x509(pk, crt, 0) == 0 &&
	    gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &der) == 0) {
		hex = gn_malloc(der.size * 2 + 1);
		for (unsigned i = 0; i < der.size; i++)
			snprintf(hex + 2 * i, 3, "%02x", der.data[i]);
		gnutls_free(der.data);
	}
	gnutls_pubkey_deinit(pk);
	gnutls_x509_crt_deinit(crt);
	gnutls_free(pem.data);
	return hex;
}

/* CPU ticks (user + system) a process used so far, or -1. */
static long proc_ticks(pid_t p)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)p);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After the command's ")": state is field 3; utime 14, stime 15. */
	const char *q = strrchr(buf, ')');
	long ut = 0, st = 0;
	if (q == NULL || sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld",
				&ut, &st) != 2)
		return -1;
	return ut + st;
}

int main(void)
{
	unsigned p_plain, p_tls, p_v6;
	pid_t pid;
	struct cl c;
	char big[1200];
	char cmd[300];
	int up = 0;

	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(dir) == NULL ||
	    make_cert("a", "a.test", cert_a, key_a) != 0 ||
	    make_cert("b", "b.test", cert_b, key_b) != 0 ||
	    make_cert("client", "client.test", cert_c, key_c) != 0) {
		ok(false, "certificates made with openssl");
		return done_testing();
	}
	p_plain = free_port(AF_INET);
	p_tls = free_port(AF_INET);
	p_v6 = free_port(AF_INET6);	/* 0 without IPv6 loopback */

	pid = fork();
	if (pid == 0)
		server(p_plain, p_tls, p_v6);
	for (int i = 0; i < 200 && !up; i++) {
		if (cl_connect(&c, "127.0.0.1", p_tls) == 0) {
			up = 1;
			cl_close(&c);
		} else {
			usleep(25000);
		}
	}
	if (!ok(up, "the server listens"))
		goto out;

	gnutls_certificate_allocate_credentials(&cred_plain);
	gnutls_certificate_allocate_credentials(&cred_client);
	gnutls_certificate_set_x509_key_file(cred_client, cert_c, key_c, GNUTLS_X509_FMT_PEM);

	/* Plain lines. */
	cl_connect(&c, "127.0.0.1", p_plain);
	is_str(cl_line(&c), "* hello plain", "plain connection: greeting from open()");
	cl_send(&c, "one\r\ntwo\nthree\r\n");
	is_str(cl_line(&c), "= one", "pipelined lines are seen one by one (CRLF)");
	is_str(cl_line(&c), "= two", "bare LF ends a line too");
	is_str(cl_line(&c), "= three", "third pipelined line");
	cl_send(&c, "par");
	usleep(50000);
	cl_send(&c, "tial\r\n");
	is_str(cl_line(&c), "= partial", "a line split over two packets arrives whole");
	cl_send(&c, "PEER\r\n");
	is_str(cl_line(&c), "* peer 127.0.0.1 127.0.0.1 plain", "remote and local address, listener name");
	cl_send(&c, "SPKI\r\n");
	is_str(cl_line(&c), "* spki none", "no client key without TLS");
	cl_send(&c, "QUIT\r\n");
	is_str(cl_line(&c), "* bye", "QUIT answered");
	ok(cl_eof(&c), "and the server closed after flushing");
	cl_close(&c);

	/* Input that comes while the handler is paused waits in the socket
	 * (the read interest, kept while nothing came, is dropped once
	 * something does: else the loop would spin on a readable socket for
	 * the whole pause) and is read after the resume. */
	cl_connect(&c, "127.0.0.1", p_plain);
	cl_line(&c);
	cl_send(&c, "PAUSE\r\n");
	is_str(cl_line(&c), "* paused", "PAUSE: the handler pauses for 400 ms");
	{
		long before = proc_ticks(pid);
		cl_send(&c, "LATE\r\n");
		is_str(cl_line(&c), "= LATE", "a line sent while paused is read after the resume");
		long used = proc_ticks(pid) - before;
		ok(before >= 0 && used < 10, "the server did not spin while paused (%ld ticks of "
		   "CPU in the 400 ms)", used);
	}
	cl_close(&c);

	/* The input limit (256). */
	cl_connect(&c, "127.0.0.1", p_plain);
	cl_line(&c);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cl_send(&c, big);
	is_str(cl_line(&c), "* too long", "a line past max_input reaches input_full()");
	ok(cl_eof(&c), "which closed the connection (and the reply was not lost to a reset)");
	cl_close(&c);

	/* Compression: the request and the first compressed line in one
	 * packet (the core takes the buffered rest as compressed). */
	cl_connect(&c, "127.0.0.1", p_plain);
	cl_line(&c);
	{
		static unsigned char pkt[65536];
		size_t n = strlen("COMPRESS\r\n");
		memcpy(pkt, "COMPRESS\r\n", n);
		memset(&zc_out, 0, sizeof(zc_out));
		deflateInit2(&zc_out, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
		n += zc_deflate("one\r\nPEER\r\n", 11, true, pkt + n, sizeof(pkt) - n);
		(void)!send(c.fd, pkt, n, MSG_NOSIGNAL);
		is_str(cl_line(&c), "* compressing", "COMPRESS: the answer goes out uncompressed");
		/* Keep the client's deflate stream: the server inflates it on. */
		z_stream keep = zc_out;
		memset(&zc_in, 0, sizeof(zc_in));
		inflateInit2(&zc_in, -15);
		zc_len = 0;
		zc_inflate(c.buf, c.len);
		c.len = 0;
		zc_out = keep;
	}
	is_str(zc_line(&c), "= one", "what the client sent compressed with the request is inflated");
	is_str(zc_line(&c), "* peer 127.0.0.1 127.0.0.1 plain", "and the answers come compressed");
	zc_send(&c, "COMPRESS\r\n");
	is_str(zc_line(&c), "* compressing", "a second COMPRESS");
	is_str(zc_line(&c), "* not compressing: compression is already active",
	       "gn_conn_compress_start() refuses it");
	zc_send(&c, "STARTTLS\r\n");
	is_str(zc_line(&c), "* go ahead", "STARTTLS under compression");
	is_str(zc_line(&c), "", "is refused (gn_conn_starttls: -1, the handler closed)");
	cl_close(&c);

	/* A compressed line that inflates past the input limit (256): a
	 * bomb of 1 MB in a few hundred bytes. */
	cl_connect(&c, "127.0.0.1", p_plain);
	cl_line(&c);
	cl_send(&c, "COMPRESS\r\n");
	is_str(cl_line(&c), "* compressing", "COMPRESS again");
	zc_start(&c);
	{
		static unsigned char pkt[65536], ones[1000 * 1000];
		memset(ones, 'x', sizeof(ones));
		size_t n = zc_deflate(ones, sizeof(ones), true, pkt, sizeof(pkt));
		diag("1 MB of one byte in %zu compressed bytes", n);
		(void)!send(c.fd, pkt, n, MSG_NOSIGNAL);
	}
	is_str(zc_line(&c), "* too long", "inflated input past max_input reaches input_full()");
	is_str(zc_line(&c), "", "which closed the connection");
	cl_close(&c);

	/* Input that does not inflate. */
	cl_connect(&c, "127.0.0.1", p_plain);
	cl_line(&c);
	cl_send(&c, "COMPRESS\r\n");
	cl_line(&c);
	zc_start(&c);
	cl_send(&c, "\xff\xff\xff\xff\xff\xff\xff\xffPEER\r\n");
	is_str(zc_line(&c), "", "corrupt compressed input closes the connection");
	cl_close(&c);
	deflateEnd(&zc_out);
	inflateEnd(&zc_in);

	/* A client that half-closes while the handler is paused (over TLS,
	 * the end is read together with the last record, before the pause):
	 * resuming sees the end of input and closes, without waiting for the
	 * idle timeout (1.5 s here, minutes in real protocols). */
	cl_connect(&c, "127.0.0.1", p_tls);
	cl_tls(&c, "a.test", false);
	cl_line(&c);
	{
		/* One segment for the line and the close_notify (a clean
		 * half-close), so that the server reads both at once. */
		int on = 1, off = 0;
		setsockopt(c.fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
		cl_send(&c, "DRAIN\r\n");
		gnutls_bye(c.tls, GNUTLS_SHUT_WR);
		setsockopt(c.fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
		shutdown(c.fd, SHUT_WR);
	}
	is_str(cl_line(&c), "* drained 0", "DRAIN, then the client shuts its side");
	is_str(cl_line(&c), "", "resuming finds the end of input and closes (no idle timeout)");
	cl_close(&c);

	/* STARTTLS with pipelined input. */
	cl_connect(&c, "127.0.0.1", p_plain);
	cl_line(&c);
	cl_send(&c, "STARTTLS\r\nSMUGGLED\r\n");
	is_str(cl_line(&c), "* go ahead", "STARTTLS: the go-ahead comes in the clear");
	ok(cl_tls(&c, "b.test", false) == 0, "STARTTLS handshake");
	is_str(served_cn(&c), "b.test", "SNI b.test selects the second certificate");
	cl_send(&c, "AFTER\r\n");
	is_str(cl_line(&c), "= AFTER",
	       "input pipelined after STARTTLS was dropped (RFC 3207 5), not run under TLS");
	cl_send(&c, "SNI\r\n");
	is_str(cl_line(&c), "* sni b.test", "gn_conn_tls_sni after STARTTLS");
	cl_send(&c, "STARTTLS\r\n");
	is_str(cl_line(&c), "* go ahead", "(the protocol always says go ahead)");
	ok(cl_eof(&c), "a second STARTTLS is refused (the protocol closes)");
	cl_close(&c);

	/* Implicit TLS and certificate selection. */
	cl_connect(&c, "127.0.0.1", p_tls);
	ok(cl_tls(&c, "a.test", false) == 0, "implicit TLS handshake with SNI a.test");
	is_str(served_cn(&c), "a.test", "SNI a.test selects the first certificate");
	like(cl_line(&c), "* hello TLS1.", "greeting after the handshake names the TLS version");
	cl_send(&c, "SPKI\r\n");
	is_str(cl_line(&c), "* spki none", "no client certificate offered: no key");
	cl_send(&c, "CB tls-exporter\r\n");
	is_str(cl_line(&c), "* cb 32", "tls-exporter channel binding is 32 bytes (RFC 9266)");
	cl_send(&c, "CB nonsense\r\n");
	is_str(cl_line(&c), "* cb none", "unknown channel binding type");
	/* One TLS record longer than the input buffer (256): its tail stays
	 * inside GnuTLS, where the socket cannot signal it.  The handler takes
	 * all the buffer holds and pauses; resuming must still find the tail. */
	{
		char rec[300];
		memset(rec, 'x', sizeof(rec));
		memcpy(rec, "DRAIN\r\n", 7);
		memcpy(rec + 256, "TAIL\r\n", 7);
		rec[263] = '\0';
		cl_send(&c, rec);
		like(cl_line(&c), "* drained ", "DRAIN: the handler took the buffer and paused");
		is_str(cl_line(&c), "= TAIL",
		       "after resuming, input held inside GnuTLS is read (no stall)");
	}
	cl_close(&c);

	cl_connect(&c, "127.0.0.1", p_tls);
	cl_tls(&c, "b.test", false);
	is_str(served_cn(&c), "b.test", "implicit TLS: SNI b.test selects the second certificate");
	cl_close(&c);

	cl_connect(&c, "127.0.0.1", p_tls);
	cl_tls(&c, NULL, false);
	is_str(served_cn(&c), "a.test", "no SNI: the first certificate");
	cl_send(&c, "SNI\r\n");
	cl_line(&c);
	is_str(cl_line(&c), "* sni none", "no SNI: gn_conn_tls_sni is NULL");
	cl_close(&c);

	cl_connect(&c, "127.0.0.1", p_tls);
	cl_tls(&c, "unknown.test", false);
	is_str(served_cn(&c), "a.test", "unknown SNI: the first certificate");
	cl_close(&c);

	/* Client certificate: its key is what the protocol sees. */
	{
		char *want = client_spki_hex();
		char expect[2048];
		snprintf(expect, sizeof(expect), "* spki %s", want ? want : "?");
		cl_connect(&c, "127.0.0.1", p_tls);
		ok(cl_tls(&c, "a.test", true) == 0, "handshake with a self-signed client certificate");
		cl_line(&c);
		cl_send(&c, "SPKI\r\n");
		is_str(cl_line(&c), expect, "gn_conn_peer_spki is the client's SubjectPublicKeyInfo");
		cl_close(&c);
		gn_free(want);
	}

	/* A failed handshake closes without open(). */
	cl_connect(&c, "127.0.0.1", p_tls);
	cl_send(&c, "HELLO IN THE CLEAR\r\n");
	is_str(cl_line(&c), "", "garbage instead of a ClientHello: no greeting, the connection ends");
	cl_close(&c);

	/* IPv6. */
	if (p_v6 != 0) {
		cl_connect(&c, "::1", p_v6);
		is_str(cl_line(&c), "* hello plain", "IPv6 listener on ::1");
		cl_send(&c, "PEER\r\n");
		is_str(cl_line(&c), "* peer ::1 ::1 v6", "IPv6 addresses as text");
		cl_close(&c);
	}

	/* Idle timeout (1.5 s for this protocol). */
	cl_connect(&c, "127.0.0.1", p_plain);
	cl_line(&c);
	is_str(cl_line(&c), "* idle", "an idle connection gets timeout() after its idle time");
	ok(cl_eof(&c), "and is closed");
	cl_close(&c);

out:
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)!system(cmd);
	return done_testing();
}
