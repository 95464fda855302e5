/*
 * t/unit/test_net_client.c: outbound connections (gn_conn_connect()) and
 * client STARTTLS (gn_conn_starttls_client()) in core/net/conn.c and tls.c.
 *
 * A child process is a small blocking server with GnuTLS: it greets,
 * echoes lines, and on STARTTLS answers "go", sends a line in the clear
 * right after it (which the client must drop, as RFC 3207 5 wants from
 * the other side), then does the handshake and says which SNI it saw.  The
 * test is the client, on the loop: a refused connect and one that times
 * out reach close() without open(), with the reason; a connection opens,
 * lines go both ways; TLS verifies for the certificate's name against a
 * trust file and not for another name, and the injected line never
 * reaches input().
 */
#include "net/internal.h"
#include "tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/gannet-test-netc-XXXXXX";
static char cert[256], key[256];

/* ---- the server (child) ---- */

static int srv_line(int fd, gnutls_session_t tls, char *buf, size_t size)
{
	size_t n = 0;
	while (n + 1 < size) {
		char ch;
		ssize_t r = tls ? gnutls_record_recv(tls, &ch, 1) : recv(fd, &ch, 1, 0);
		if (r <= 0)
			return -1;
		if (ch == '\n')
			break;
		if (ch != '\r')
			buf[n++] = ch;
	}
	buf[n] = '\0';
	return 0;
}

static void srv_send(int fd, gnutls_session_t tls, const char *s)
{
	if (tls)
		(void)gnutls_record_send(tls, s, strlen(s));
	else
		(void)!send(fd, s, strlen(s), MSG_NOSIGNAL);
}

static void server(int lfd)
{
	gnutls_certificate_credentials_t cred;
	gnutls_certificate_allocate_credentials(&cred);
	gnutls_certificate_set_x509_key_file(cred, cert, key, GNUTLS_X509_FMT_PEM);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		gnutls_session_t tls = NULL;
		char line[512], sni[256] = "-";
		if (fd < 0)
			continue;
		srv_send(fd, NULL, "hello\r\n");
		while (srv_line(fd, tls, line, sizeof(line)) == 0) {
			if (strcmp(line, "STARTTLS") == 0 && tls == NULL) {
				size_t len = sizeof(sni) - 1;
				unsigned type;
				/* The go-ahead and an injected line in one write. */
				srv_send(fd, NULL, "go\r\ninjected\r\n");
				gnutls_init(&tls, GNUTLS_SERVER);
				gnutls_set_default_priority(tls);
				gnutls_credentials_set(tls, GNUTLS_CRD_CERTIFICATE, cred);
				gnutls_transport_set_int(tls, fd);
				int r;
				do
					r = gnutls_handshake(tls);
				while (r < 0 && !gnutls_error_is_fatal(r));
				if (r < 0)
					break;
				if (gnutls_server_name_get(tls, sni, &len, &type, 0) != 0)
					snprintf(sni, sizeof(sni), "-");
			} else if (strcmp(line, "QUIT") == 0) {
				srv_send(fd, tls, "bye\r\n");
				break;
			} else {
				char out[800];
				snprintf(out, sizeof(out), "%s %s sni=%s\r\n", tls ? "tls" : "plain",
					 line, sni);
				srv_send(fd, tls, out);
			}
		}
		if (tls)
			gnutls_deinit(tls);
		close(fd);
	}
}

/* ---- the client (the test, on the loop) ---- */

struct probe {
	bool opened, closed, tls_ok, tls_failed;
	char reason[200];
	char lines[4096];
	const char *starttls_name;	/* STARTTLS after "hello" when set */
	bool sent_echo;
};

static int p_open(struct gn_conn *c, void *d)
{
	struct probe *p = gn_conn_data(c);
	(void)d;
	p->opened = true;
	return 0;
}

static void p_input(struct gn_conn *c, void *d)
{
	struct probe *p = gn_conn_data(c);
	const char *line;
	size_t len;
	(void)d;
	while (gn_conn_read_line(c, &line, &len) == 1) {
		size_t have = strlen(p->lines);
		snprintf(p->lines + have, sizeof(p->lines) - have, "%.*s", (int)len, line);
		if (len >= 5 && strncmp(line, "hello", 5) == 0) {
			if (p->starttls_name != NULL)
				gn_conn_printf(c, "STARTTLS\r\n");
			else
				gn_conn_printf(c, "ECHO one\r\n");
		} else if (strncmp(line, "go", 2) == 0) {
			const char *error;
			const char *name = strcmp(p->starttls_name, "-") == 0 ? NULL
					   : p->starttls_name;
			if (gn_conn_starttls_client(c, name, &error) < 0)
				gn_conn_close(c, error);
			return;
		} else if (strncmp(line, "plain ECHO", 10) == 0 ||
			   strncmp(line, "tls ECHO", 8) == 0) {
			gn_conn_printf(c, "QUIT\r\n");
		} else if (strncmp(line, "bye", 3) == 0) {
			gn_conn_close(c, "done");
		}
	}
}

static void p_tls_done(struct gn_conn *c, int ok, void *d)
{
	struct probe *p = gn_conn_data(c);
	(void)d;
	if (ok) {
		p->tls_ok = true;
		gn_conn_printf(c, "ECHO two\r\n");
	} else {
		p->tls_failed = true;
	}
}

static void p_close(struct gn_conn *c, void *d)
{
	struct probe *p = gn_conn_data(c);
	(void)d;
	p->closed = true;
	snprintf(p->reason, sizeof(p->reason), "%s",
		 gn_conn_close_reason(c) ? gn_conn_close_reason(c) : "(none)");
	ev_break(core_loop, EVBREAK_ALL);
}

static const struct gn_protocol proto = {
	.size = sizeof(struct gn_protocol),
	.name = "unit-client",
	.max_input = 1024,
	.open = p_open,
	.input = p_input,
	.tls_done = p_tls_done,
	.close = p_close,
};

static struct gn_timer *guard;
static void guard_cb(void *data)
{
	(void)data;
	ev_break(core_loop, EVBREAK_ALL);
}

/* Connects and runs the loop until close() (or 20 s). */
static int run(struct probe *p, const char *ip, unsigned port, unsigned long timeout_ms,
	       struct gn_conn **conn_r)
{
	const char *error;
	struct gn_conn *c = NULL;
	if (gn_conn_connect(ip, port, &proto, NULL, timeout_ms, &c, &error) < 0) {
		snprintf(p->reason, sizeof(p->reason), "%s", error);
		return -1;
	}
	gn_conn_set_data(c, p);
	gn_conn_ref(c);
	guard = gn_timer_new(20000, false, guard_cb, NULL);
	ev_run(core_loop, 0);
	gn_timer_free(&guard);
	if (conn_r != NULL)
		*conn_r = c;
	else
		gn_conn_unref(&c);
	return 0;
}

static int open_stop(struct gn_conn *c, void *d)
{
	struct probe *p = gn_conn_data(c);
	(void)d;
	p->opened = true;
	gn_conn_close(c, "seen");
	return 0;
}

static const struct gn_protocol proto_open = {
	.size = sizeof(struct gn_protocol),
	.name = "unit-client-open",
	.open = open_stop,
	.close = p_close,
};

/* Connects and runs the loop until open() has closed it again. */
static void run_until_open(struct probe *p, const char *ip, unsigned port)
{
	const char *error;
	struct gn_conn *c = NULL;
	if (gn_conn_connect(ip, port, &proto_open, NULL, 5000, &c, &error) < 0)
		return;
	gn_conn_set_data(c, p);
	guard = gn_timer_new(20000, false, guard_cb, NULL);
	ev_run(core_loop, 0);
	gn_timer_free(&guard);
}

static int listen_on(unsigned *port_r, int backlog)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, backlog) < 0 || getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	*port_r = ntohs(sa.sin_port);
	return fd;
}

int main(void)
{
	char cmd[1024];
	unsigned port, dead_port, full_port;
	int lfd, dfd, ffd;
	pid_t pid;
	const char *error;
	struct probe p;
	struct gn_conn *c;

	signal(SIGPIPE, SIG_IGN);
	log_init("test_net_client");
	if (getenv("GANNET_TEST_VERBOSE") == NULL)
		log_set_level(NULL, GN_LOG_WARN);
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(cert, sizeof(cert), "%s/a.pem", dir);
	snprintf(key, sizeof(key), "%s/a.key", dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -nodes -days 2 -subj /CN=a.test -addext subjectAltName=DNS:a.test "
		 "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout %s -out %s >/dev/null 2>&1",
		 key, cert);
	if (!ok(system(cmd) == 0, "certificate made with openssl"))
		return done_testing();

	lfd = listen_on(&port, 16);
	pid = fork();
	if (pid == 0)
		server(lfd);
	close(lfd);
	loop_init();

	error = NULL;
	{
		int r = gn_conn_connect("not-an-ip", 25, &proto, NULL, 1000, &c, &error);
		ok(r < 0 && error != NULL && strstr(error, "address") != NULL,
		   "a name that is no address is refused: %s", error ? error : "(null)");
	}

	/* Refused: a port bound and closed again. */
	dfd = listen_on(&dead_port, 1);
	close(dfd);
	memset(&p, 0, sizeof(p));
	run(&p, "127.0.0.1", dead_port, 5000, NULL);
	ok(p.closed && !p.opened, "a refused connect calls close() without open()");
	like(p.reason, "Connection refused", "and says why");

	/* Timeout: a listener that accepts nothing, its queue full. */
	ffd = listen_on(&full_port, 0);
	for (int i = 0; i < 4; i++) {
		struct sockaddr_in sa;
		int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_port = htons((uint16_t)full_port);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		(void)connect(s, (struct sockaddr *)&sa, sizeof(sa));
	}
	usleep(100000);
	memset(&p, 0, sizeof(p));
	run(&p, "127.0.0.1", full_port, 300, NULL);
	ok(p.closed && !p.opened, "a connect that does not finish calls close() without open()");
	is_str(p.reason, "connect timeout", "and says it timed out");
	close(ffd);

	/* Plain lines. */
	memset(&p, 0, sizeof(p));
	run(&p, "127.0.0.1", port, 5000, &c);
	ok(p.opened && p.closed, "connected: open(), then close()");
	is_str(p.lines, "hello\r\nplain ECHO one sni=-\r\nbye\r\n", "lines both ways");
	is_str(gn_conn_remote_ip(c), "127.0.0.1", "remote address");
	ok(gn_conn_local_port(c) != 0, "local port known");
	ok(!gn_conn_is_tls(c), "not TLS");
	gn_conn_unref(&c);

	/* Client TLS without a trusted CA yet: TLS works, unverified. */
	memset(&p, 0, sizeof(p));
	p.starttls_name = "a.test";
	run(&p, "127.0.0.1", port, 5000, &c);
	ok(p.tls_ok, "STARTTLS as the client: tls_done(1)");
	is_str(p.lines, "hello\r\ngo\r\ntls ECHO two sni=a.test\r\nbye\r\n",
	       "the line sent in the clear after the go-ahead never reaches input(); SNI sent");
	ok(gn_conn_is_tls(c) && gn_conn_tls_version(c) != NULL, "TLS, with a version");
	ok(!gn_conn_tls_verified(c), "not verified without a trusted CA");
	ok(gn_conn_tls_verify_error(c) != NULL, "and why: %s",
	   gn_conn_tls_verify_error(c) ? gn_conn_tls_verify_error(c) : "(null)");
	gn_conn_unref(&c);

	ok(gn_conn_tls_client_trust("/nonexistent.pem", &error) < 0, "a missing CA file is refused");
	ok(gn_conn_tls_client_trust(cert, &error) == 0, "the certificate as a trusted CA");

	memset(&p, 0, sizeof(p));
	p.starttls_name = "a.test";
	run(&p, "127.0.0.1", port, 5000, &c);
	ok(p.tls_ok && gn_conn_tls_verified(c), "verified for the certificate's name");
	ok(gn_conn_tls_verify_error(c) == NULL, "no verification error");
	gn_conn_unref(&c);

	memset(&p, 0, sizeof(p));
	p.starttls_name = "b.test";
	run(&p, "127.0.0.1", port, 5000, &c);
	ok(p.tls_ok && !gn_conn_tls_verified(c), "not verified for another name");
	like(p.lines, "tls ECHO two sni=b.test", "the connection goes on (the protocol decides)");
	gn_conn_unref(&c);

	memset(&p, 0, sizeof(p));
	p.starttls_name = "-";
	run(&p, "127.0.0.1", port, 5000, &c);
	ok(p.tls_ok && !gn_conn_tls_verified(c), "no name: nothing verified");
	like(p.lines, "sni=-", "and no SNI sent");
	gn_conn_unref(&c);

	/* IPv6, when the machine has ::1: a refused connect says so the same
	 * way (the address is parsed and used as IPv6). */
	{
		struct sockaddr_in6 s6;
		socklen_t l6 = sizeof(s6);
		int fd6 = socket(AF_INET6, SOCK_STREAM, 0);
		memset(&s6, 0, sizeof(s6));
		s6.sin6_family = AF_INET6;
		s6.sin6_addr = in6addr_loopback;
		if (fd6 >= 0 && bind(fd6, (struct sockaddr *)&s6, sizeof(s6)) == 0 &&
		    listen(fd6, 1) == 0 && getsockname(fd6, (struct sockaddr *)&s6, &l6) == 0) {
			memset(&p, 0, sizeof(p));
			p.starttls_name = NULL;
			/* Accepted by the kernel, never served: open() follows. */
			run_until_open(&p, "::1", ntohs(s6.sin6_port));
			ok(p.opened, "IPv6: connected to [::1]");
		} else {
			ok(1, "IPv6: no ::1 on this machine (nothing to check)");
		}
		if (fd6 >= 0)
			close(fd6);
	}

	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	conns_close_all("end");
	tls_client_deinit();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)!system(cmd);
	return done_testing();
}
