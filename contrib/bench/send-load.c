/*
 * contrib/bench/send-load.c: the load generator of contrib/bench/send.
 *
 * Message submission (RFC 6409) with AUTH PLAIN (RFC 4954) after STARTTLS
 * (RFC 3207) or over implicit TLS (RFC 8314), as a mail client or an
 * application sending mail does.  --sessions threads, each with its own
 * connection, share --messages messages: a session takes the next one,
 * sends MAIL FROM, RCPT TO, DATA and the message one command at a time
 * (no PIPELINING: most clients wait for each reply), and after
 * --per-connection messages says QUIT and connects again (TCP, TLS,
 * EHLO, AUTH), as an application that sends its mail in batches does.
 *
 * Blocking sockets in one thread per session: with tens of sessions the
 * threads cost less than the servers they drive, and each session is a
 * straight line of code.
 *
 * A reply that is not the expected 2xx/3xx counts as an error of that
 * message (its text is kept, the transaction is reset with RSET); a lost
 * connection or --timeout seconds without a reply counts as an error of
 * the message in flight, and the session connects again (a session that
 * cannot connect or log in 3 times in a row stops; each failed login is
 * counted apart, in login_err).  A message counts as
 * accepted when its DATA got 250.
 *
 * Output, one line each, for contrib/bench/send to read:
 *   total ok=N err=N login_err=N seconds=S
 *   error TEXT                       (the first few)
 *
 * Build: cc -O2 -pthread -o send-load send-load.c $(pkg-config --cflags --libs gnutls)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "load-common.h"

#define MAX_REPLY	(64 * 1024)	/* one reply, all its lines */
#define MAX_RETRIES	3		/* failed logins in a row, then stop */

static struct {
	const char *host, *user, *password, *from, *to;
	int port;
	bool implicit;
	unsigned sessions, messages, per_connection, size;
	int timeout;
} opt = {
	.host = "127.0.0.1", .from = NULL, .to = NULL,
	.sessions = 20, .messages = 1000, .per_connection = 100, .size = 1024,
	.timeout = 60,
};

static gnutls_certificate_credentials_t creds;
static atomic_uint next_message;
static atomic_ulong n_ok, n_err, n_login_err;
static char *body;		/* the message body, --size octets */
static size_t body_len;
static char run_id[32];

struct session {
	unsigned index;
	int fd;
	gnutls_session_t tls;	/* NULL before STARTTLS */
	char *in;		/* what was read and not yet used */
	size_t in_len;
	char *reply;		/* the last reply */
	size_t reply_len;
	char *out;
	size_t out_cap;
};

static void s_close(struct session *s)
{
	if (s->tls != NULL) {
		gnutls_deinit(s->tls);
		s->tls = NULL;
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	s->in_len = 0;
}

static bool s_write(struct session *s, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n;
		if (s->tls != NULL) {
			n = gnutls_record_send(s->tls, data, len);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
				continue;
			if (n < 0) {
				error_text("session %u: TLS send: %s", s->index,
					   gnutls_strerror((int)n));
				return false;
			}
		} else {
			n = send(s->fd, data, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				error_text("session %u: send: %s", s->index, strerror(errno));
				return false;
			}
		}
		data += n;
		len -= (size_t)n;
	}
	return true;
}

static bool s_printf(struct session *s, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(s->out, s->out_cap, fmt, ap);
		va_end(ap);
		if (n < 0)
			return false;
		if ((size_t)n < s->out_cap)
			return s_write(s, s->out, (size_t)n);
		s->out_cap = (size_t)n + 1;
		s->out = realloc(s->out, s->out_cap);
		if (s->out == NULL)
			abort();
	}
}

/* Reads one reply (all its lines) into s->reply; returns its code, or -1
 * when the connection failed or the reply was malformed. */
static int s_reply(struct session *s)
{
	s->reply_len = 0;
	for (;;) {
		char *nl = memchr(s->in, '\n', s->in_len);
		if (nl != NULL) {
			size_t len = (size_t)(nl - s->in) + 1;
			if (s->reply_len + len >= MAX_REPLY) {
				error_text("session %u: reply longer than %d", s->index, MAX_REPLY);
				return -1;
			}
			memcpy(s->reply + s->reply_len, s->in, len);
			char *line = s->reply + s->reply_len;
			s->reply_len += len;
			s->reply[s->reply_len] = '\0';
			memmove(s->in, s->in + len, s->in_len - len);
			s->in_len -= len;
			if (len < 5 || line[0] < '2' || line[0] > '5') {
				error_text("session %u: malformed reply: %.80s", s->index, line);
				return -1;
			}
			if (line[3] == ' ' || line[3] == '\r' || line[3] == '\n')
				return atoi(line);
			continue;	/* "250-": more lines */
		}
		if (s->in_len >= MAX_REPLY) {
			error_text("session %u: reply line longer than %d", s->index, MAX_REPLY);
			return -1;
		}
		ssize_t n;
		if (s->tls != NULL) {
			n = gnutls_record_recv(s->tls, s->in + s->in_len, MAX_REPLY - s->in_len);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
				continue;
			if (n < 0) {
				error_text("session %u: TLS receive: %s", s->index,
					   gnutls_strerror((int)n));
				return -1;
			}
		} else {
			n = recv(s->fd, s->in + s->in_len, MAX_REPLY - s->in_len, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				error_text("session %u: receive: %s", s->index, strerror(errno));
				return -1;
			}
		}
		if (n == 0) {
			error_text("session %u: connection closed by the server", s->index);
			return -1;
		}
		s->in_len += (size_t)n;
	}
}

static bool expect(struct session *s, int want_class, const char *what)
{
	int code = s_reply(s);
	if (code < 0)
		return false;
	if (code / 100 != want_class) {
		error_text("%s: %.*s", what, (int)s->reply_len, s->reply);
		return false;
	}
	return true;
}

static bool tls_start(struct session *s)
{
	int r = gnutls_init(&s->tls, GNUTLS_CLIENT);
	if (r >= 0)
		r = gnutls_set_default_priority(s->tls);
	if (r >= 0)
		r = gnutls_credentials_set(s->tls, GNUTLS_CRD_CERTIFICATE, creds);
	if (r < 0) {
		error_text("session %u: TLS setup: %s", s->index, gnutls_strerror(r));
		return false;
	}
	gnutls_transport_set_int(s->tls, s->fd);
	gnutls_handshake_set_timeout(s->tls, (unsigned)opt.timeout * 1000);
	do {
		r = gnutls_handshake(s->tls);
	} while (r < 0 && !gnutls_error_is_fatal(r));
	if (r < 0) {
		error_text("session %u: TLS handshake: %s", s->index, gnutls_strerror(r));
		return false;
	}
	return true;
}

/* TCP, TLS, greeting, EHLO, STARTTLS, EHLO, AUTH PLAIN. */
static bool s_connect(struct session *s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port) };
	if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1) {
		error_text("bad address %s", opt.host);
		return false;
	}
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		error_text("socket: %s", strerror(errno));
		return false;
	}
	struct timeval tv = { .tv_sec = opt.timeout };
	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int one = 1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		error_text("session %u: connect: %s", s->index, strerror(errno));
		return false;
	}
	if (opt.implicit && !tls_start(s))
		return false;
	if (!expect(s, 2, "greeting"))
		return false;
	if (!s_printf(s, "EHLO client.bench.test\r\n") || !expect(s, 2, "EHLO"))
		return false;
	if (!opt.implicit) {
		if (!s_printf(s, "STARTTLS\r\n") || !expect(s, 2, "STARTTLS"))
			return false;
		if (s->in_len != 0) {
			error_text("session %u: data after STARTTLS's reply", s->index);
			return false;
		}
		if (!tls_start(s))
			return false;
		if (!s_printf(s, "EHLO client.bench.test\r\n") || !expect(s, 2, "EHLO after TLS"))
			return false;
	}
	size_t ul = strlen(opt.user), pl = strlen(opt.password);
	unsigned char *plain = malloc(ul + pl + 2);
	char *b64 = malloc((ul + pl + 2) / 3 * 4 + 5);
	if (plain == NULL || b64 == NULL)
		abort();
	plain[0] = '\0';
	memcpy(plain + 1, opt.user, ul);
	plain[1 + ul] = '\0';
	memcpy(plain + 2 + ul, opt.password, pl);
	base64(plain, ul + pl + 2, b64);
	bool ok = s_printf(s, "AUTH PLAIN %s\r\n", b64) && expect(s, 2, "AUTH");
	free(plain);
	free(b64);
	return ok;
}

/* One message; returns false when the connection is no longer usable. */
static bool s_send(struct session *s, unsigned n)
{
	if (!s_printf(s, "MAIL FROM:<%s>\r\n", opt.from))
		goto lost;
	int code = s_reply(s);
	if (code < 0)
		goto lost;
	if (code / 100 != 2) {
		error_text("MAIL: %.*s", (int)s->reply_len, s->reply);
		goto reset;
	}
	if (!s_printf(s, "RCPT TO:<%s>\r\n", opt.to) || (code = s_reply(s)) < 0)
		goto lost;
	if (code / 100 != 2) {
		error_text("RCPT: %.*s", (int)s->reply_len, s->reply);
		goto reset;
	}
	if (!s_printf(s, "DATA\r\n") || (code = s_reply(s)) < 0)
		goto lost;
	if (code != 354) {
		error_text("DATA: %.*s", (int)s->reply_len, s->reply);
		goto reset;
	}
	char date[64];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (!s_printf(s, "From: <%s>\r\nTo: <%s>\r\nSubject: bench message %u\r\n"
		      "Date: %s\r\nMessage-ID: <%s.%u@client.bench.test>\r\n"
		      "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
		      opt.from, opt.to, n, date, run_id, n)
	    || !s_write(s, body, body_len) || !s_write(s, ".\r\n", 3))
		goto lost;
	if ((code = s_reply(s)) < 0)
		goto lost;
	if (code / 100 != 2) {
		error_text("end of DATA: %.*s", (int)s->reply_len, s->reply);
		atomic_fetch_add(&n_err, 1);
		return true;
	}
	atomic_fetch_add(&n_ok, 1);
	return true;
reset:
	atomic_fetch_add(&n_err, 1);
	return s_printf(s, "RSET\r\n") && s_reply(s) >= 0;
lost:
	atomic_fetch_add(&n_err, 1);
	return false;
}

static void *session_main(void *arg)
{
	struct session *s = arg;
	unsigned failures = 0, sent_here = 0;
	bool connected = false;
	for (;;) {
		if (!connected) {
			if (s_connect(s)) {
				connected = true;
				failures = 0;
				sent_here = 0;
			} else {
				atomic_fetch_add(&n_login_err, 1);
				s_close(s);
				if (++failures >= MAX_RETRIES) {
					error_text("session %u: gave up after %u failed logins",
						   s->index, failures);
					return NULL;
				}
				continue;
			}
		}
		unsigned n = atomic_fetch_add(&next_message, 1);
		if (n >= opt.messages)
			break;
		if (!s_send(s, n + 1)) {
			s_close(s);
			connected = false;
			continue;
		}
		if (opt.per_connection > 0 && ++sent_here >= opt.per_connection) {
			if (s_printf(s, "QUIT\r\n"))
				(void)s_reply(s);
			s_close(s);
			connected = false;
		}
	}
	if (connected && s_printf(s, "QUIT\r\n"))
		(void)s_reply(s);
	s_close(s);
	return NULL;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: send-load --port N --user U --password P --from ADDR --to ADDR\n"
		"         [--host IPv4] [--implicit-tls] [--sessions N] [--messages N]\n"
		"         [--per-connection N (0: one connection a session)] [--size OCTETS]\n"
		"         [--timeout S]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "user", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'w' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "implicit-tls", no_argument, NULL, 'i' },
		{ "sessions", required_argument, NULL, 's' },
		{ "messages", required_argument, NULL, 'm' },
		{ "per-connection", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 'z' },
		{ "timeout", required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': opt.host = optarg; break;
		case 'p': opt.port = atoi(optarg); break;
		case 'u': opt.user = optarg; break;
		case 'w': opt.password = optarg; break;
		case 'f': opt.from = optarg; break;
		case 't': opt.to = optarg; break;
		case 'i': opt.implicit = true; break;
		case 's': opt.sessions = (unsigned)atoi(optarg); break;
		case 'm': opt.messages = (unsigned)atoi(optarg); break;
		case 'c': opt.per_connection = (unsigned)atoi(optarg); break;
		case 'z': opt.size = (unsigned)atoi(optarg); break;
		case 'T': opt.timeout = atoi(optarg); break;
		default: usage();
		}
	}
	if (optind != argc || opt.port <= 0 || opt.port > 65535 || opt.user == NULL
	    || opt.password == NULL || opt.from == NULL || opt.to == NULL
	    || opt.sessions < 1 || opt.sessions > 1000 || opt.timeout < 1
	    || opt.size > 64u * 1024 * 1024)
		usage();
	signal(SIGPIPE, SIG_IGN);

	/* The body: lines of 76 characters (none starts with a dot). */
	body = malloc(opt.size + 80);
	if (body == NULL)
		abort();
	while (body_len < opt.size) {
		for (int i = 0; i < 76; i++)
			body[body_len + (size_t)i] = (char)('a' + (body_len + (size_t)i) % 26);
		body[body_len++] = '\r';
		body[body_len++] = '\n';
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(run_id, sizeof(run_id), "%lx.%d", (unsigned long)ts.tv_sec, (int)getpid());

	/* The servers have self-signed certificates: not verified. */
	if (gnutls_global_init() < 0 || gnutls_certificate_allocate_credentials(&creds) < 0) {
		fprintf(stderr, "send-load: GnuTLS setup failed\n");
		return 1;
	}

	struct session *ss = calloc(opt.sessions, sizeof(*ss));
	pthread_t *th = calloc(opt.sessions, sizeof(*th));
	if (ss == NULL || th == NULL)
		abort();
	double t0 = now();
	for (unsigned i = 0; i < opt.sessions; i++) {
		ss[i].index = i;
		ss[i].fd = -1;
		ss[i].in = malloc(MAX_REPLY + 1);
		ss[i].reply = malloc(MAX_REPLY + 1);
		ss[i].out_cap = 1024;
		ss[i].out = malloc(ss[i].out_cap);
		if (ss[i].in == NULL || ss[i].reply == NULL || ss[i].out == NULL)
			abort();
		if (pthread_create(&th[i], NULL, session_main, &ss[i]) != 0) {
			fprintf(stderr, "send-load: pthread_create failed\n");
			return 1;
		}
	}
	for (unsigned i = 0; i < opt.sessions; i++) {
		pthread_join(th[i], NULL);
		free(ss[i].in);
		free(ss[i].reply);
		free(ss[i].out);
	}
	double secs = now() - t0;
	printf("total ok=%lu err=%lu login_err=%lu seconds=%.3f\n", atomic_load(&n_ok),
	       atomic_load(&n_err), atomic_load(&n_login_err), secs);
	error_texts_print();
	free(ss);
	free(th);
	free(body);
	gnutls_certificate_free_credentials(creds);
	gnutls_global_deinit();
	return 0;
}
