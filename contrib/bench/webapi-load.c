/*
 * contrib/bench/webapi-load.c: the load generator of contrib/bench/webapi.
 *
 * The webapi's Send (mox's webapi v0, as its Go client calls it): POST
 * /webapi/v0/Send with HTTP Basic auth and a form-urlencoded body whose
 * field "request" holds the JSON request.  --sessions threads, each with
 * its own keep-alive HTTP/1.1 connection (plain HTTP), share --messages
 * calls: a session takes the next one, sends it and reads the whole
 * answer before the next (no pipelining, as an application's HTTP client
 * does).  Each request: one To recipient, a Subject with the call's
 * number, a Text of --size bytes (lines of 76 characters).
 *
 * Blocking sockets in one thread per session, as send-load.c.  An answer
 * other than 200 counts as an error of that call (its status and the
 * first bytes of its body are kept); a lost connection or --timeout
 * seconds without an answer counts as an error of the call in flight and
 * the session connects again (3 failed connects in a row: the session
 * stops).  The server may close a connection after an answer
 * ("Connection: close"): the session connects again, counted in
 * reconnects.
 *
 * Output, one line each, for contrib/bench/webapi to read:
 *   total ok=N err=N reconnects=N seconds=S cpu=S
 *   error TEXT                       (the first few)
 * cpu is this process's user + system CPU seconds (getrusage), so the
 * bench can show that the client is not the bottleneck.
 *
 * Build: cc -O2 -pthread -o webapi-load webapi-load.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
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
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "load-common.h"

#define MAX_HEAD	(16 * 1024)	/* status line and header fields */
#define MAX_BODY	(1024 * 1024)	/* an answer's body */
#define MAX_RETRIES	3		/* failed connects in a row, then stop */

static struct {
	const char *host, *path, *user, *password, *to;
	int port;
	unsigned sessions, messages, size;
	int timeout;
} opt = {
	.host = "127.0.0.1", .path = "/webapi/v0/Send",
	.sessions = 20, .messages = 1000, .size = 1024, .timeout = 60,
};

static atomic_uint next_call;
static atomic_ulong n_ok, n_err, n_reconnects;
static char *auth;		/* "Basic ..." */
static char *text_enc;		/* the Text, JSON-escaped and percent-encoded */
static char run_id[32];

struct session {
	unsigned index;
	int fd;
	char *in;		/* read and not yet used */
	size_t in_len, in_cap;
	char *out;
	size_t out_cap;
};

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (p == NULL)
		abort();
	return p;
}

/* application/x-www-form-urlencoded: unreserved characters stay, the
 * rest is %XX (a space too; '+' would do as well). */
static char *form_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = xmalloc(strlen(s) * 3 + 1), *o = out;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
		    || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

static void s_close(struct session *s)
{
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	s->in_len = 0;
}

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
	return true;
}

static bool s_write(struct session *s, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(s->fd, data, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error_text("session %u: send: %s", s->index, strerror(errno));
			return false;
		}
		data += n;
		len -= (size_t)n;
	}
	return true;
}

/* Reads more into s->in; false on a closed or failed connection. */
static bool s_fill(struct session *s)
{
	if (s->in_len == s->in_cap) {
		if (s->in_cap >= MAX_HEAD + MAX_BODY + 64) {
			error_text("session %u: answer too long", s->index);
			return false;
		}
		s->in_cap *= 2;
		s->in = realloc(s->in, s->in_cap + 1);
		if (s->in == NULL)
			abort();
	}
	for (;;) {
		ssize_t n = recv(s->fd, s->in + s->in_len, s->in_cap - s->in_len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error_text("session %u: receive: %s", s->index,
				   errno == EAGAIN ? "no answer within --timeout" : strerror(errno));
			return false;
		}
		if (n == 0) {
			error_text("session %u: connection closed by the server", s->index);
			return false;
		}
		s->in_len += (size_t)n;
		s->in[s->in_len] = '\0';
		return true;
	}
}

/* The value of header field name in head (the lines after the status
 * line), or NULL; its length in *len. */
static const char *header(const char *head, const char *name, size_t *len)
{
	size_t nl = strlen(name);
	for (const char *l = strstr(head, "\r\n"); l != NULL; l = strstr(l, "\r\n")) {
		l += 2;
		if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
			const char *v = l + nl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			const char *e = strstr(v, "\r\n");
			*len = e != NULL ? (size_t)(e - v) : strlen(v);
			return v;
		}
	}
	return NULL;
}

/* Reads one answer: its status, or -1 when the connection failed.
 * *keep is false when the connection cannot carry another request.
 * The body's first bytes go to snippet. */
static int s_answer(struct session *s, bool *keep, char *snippet, size_t snip_len)
{
	char *end;
	while ((end = strstr(s->in, "\r\n\r\n")) == NULL) {
		if (s->in_len > MAX_HEAD) {
			error_text("session %u: header longer than %d", s->index, MAX_HEAD);
			return -1;
		}
		if (!s_fill(s))
			return -1;
	}
	size_t head_len = (size_t)(end - s->in) + 4;
	end[2] = '\0';	/* the head as a string, its last CRLF kept */
	int major = 0, minor = 0, status = 0;
	if (sscanf(s->in, "HTTP/%d.%d %d", &major, &minor, &status) != 3) {
		error_text("session %u: malformed status line: %.80s", s->index, s->in);
		return -1;
	}
	*keep = major == 1 && minor >= 1;
	size_t vl;
	const char *v = header(s->in, "Connection", &vl);
	if (v != NULL && vl == 5 && strncasecmp(v, "close", 5) == 0)
		*keep = false;
	v = header(s->in, "Transfer-Encoding", &vl);
	if (v != NULL && !(vl == 8 && strncasecmp(v, "identity", 8) == 0)) {
		/* libmicrohttpd sends a Content-Length for every answer
		 * Gannet makes; anything else is not what we measure. */
		error_text("session %u: Transfer-Encoding %.*s not read here", s->index, (int)vl, v);
		return -1;
	}
	v = header(s->in, "Content-Length", &vl);
	if (v == NULL) {
		error_text("session %u: answer without Content-Length (status %d)", s->index, status);
		return -1;
	}
	size_t body_len = strtoul(v, NULL, 10);
	if (body_len > MAX_BODY) {
		error_text("session %u: body of %zu bytes", s->index, body_len);
		return -1;
	}
	while (s->in_len < head_len + body_len)
		if (!s_fill(s))
			return -1;
	size_t n = body_len < snip_len - 1 ? body_len : snip_len - 1;
	memcpy(snippet, s->in + head_len, n);
	snippet[n] = '\0';
	memmove(s->in, s->in + head_len + body_len, s->in_len - head_len - body_len);
	s->in_len -= head_len + body_len;
	s->in[s->in_len] = '\0';
	return status;
}

static bool s_printf(struct session *s, size_t *len, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(s->out, s->out_cap, fmt, ap);
		va_end(ap);
		if (n < 0)
			return false;
		if ((size_t)n < s->out_cap) {
			*len = (size_t)n;
			return true;
		}
		s->out_cap = (size_t)n + 1;
		s->out = realloc(s->out, s->out_cap);
		if (s->out == NULL)
			abort();
	}
}

/* One call; false when the connection is no longer usable. */
static bool s_call(struct session *s, unsigned n)
{
	/* The JSON: {"To":[{"Address":TO}],"Subject":"...","Text":"..."},
	 * form-encoded; only the subject differs between calls. */
	char subject[512], *req_head;
	snprintf(subject, sizeof(subject), "{\"To\":[{\"Address\":\"%s\"}],"
		 "\"Subject\":\"bench %s %u\",\"Text\":\"", opt.to, run_id, n);
	req_head = form_encode(subject);
	static const char tail_json[] = "\"}";
	char *tail_enc = form_encode(tail_json);
	size_t body_len = strlen("request=") + strlen(req_head) + strlen(text_enc) + strlen(tail_enc);
	size_t len;
	bool ok = s_printf(s, &len, "POST %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: %s\r\n"
			   "Content-Type: application/x-www-form-urlencoded\r\n"
			   "Content-Length: %zu\r\n\r\nrequest=%s%s%s",
			   opt.path, opt.host, opt.port, auth, body_len, req_head, text_enc, tail_enc);
	free(req_head);
	free(tail_enc);
	if (!ok || !s_write(s, s->out, len)) {
		atomic_fetch_add(&n_err, 1);
		return false;
	}
	bool keep = false;
	char snippet[200];
	int status = s_answer(s, &keep, snippet, sizeof(snippet));
	if (status < 0) {
		atomic_fetch_add(&n_err, 1);
		return false;
	}
	if (status != 200) {
		error_text("HTTP %d: %s", status, snippet);
		atomic_fetch_add(&n_err, 1);
	} else {
		atomic_fetch_add(&n_ok, 1);
	}
	if (!keep)
		atomic_fetch_add(&n_reconnects, 1);
	return keep;
}

static void *session_main(void *arg)
{
	struct session *s = arg;
	unsigned failures = 0;
	bool connected = false;
	for (;;) {
		if (!connected) {
			if (s_connect(s)) {
				connected = true;
				failures = 0;
			} else {
				s_close(s);
				if (++failures >= MAX_RETRIES) {
					error_text("session %u: gave up after %u failed connects",
						   s->index, failures);
					return NULL;
				}
				continue;
			}
		}
		unsigned n = atomic_fetch_add(&next_call, 1);
		if (n >= opt.messages)
			break;
		if (!s_call(s, n + 1)) {
			s_close(s);
			connected = false;
		}
	}
	s_close(s);
	return NULL;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: webapi-load --port N --user ADDR --password P --to ADDR\n"
		"         [--host IPv4] [--path /webapi/v0/Send] [--sessions N]\n"
		"         [--messages N] [--size OCTETS] [--timeout S]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "path", required_argument, NULL, 'P' },
		{ "user", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'w' },
		{ "to", required_argument, NULL, 't' },
		{ "sessions", required_argument, NULL, 's' },
		{ "messages", required_argument, NULL, 'm' },
		{ "size", required_argument, NULL, 'z' },
		{ "timeout", required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': opt.host = optarg; break;
		case 'p': opt.port = atoi(optarg); break;
		case 'P': opt.path = optarg; break;
		case 'u': opt.user = optarg; break;
		case 'w': opt.password = optarg; break;
		case 't': opt.to = optarg; break;
		case 's': opt.sessions = (unsigned)atoi(optarg); break;
		case 'm': opt.messages = (unsigned)atoi(optarg); break;
		case 'z': opt.size = (unsigned)atoi(optarg); break;
		case 'T': opt.timeout = atoi(optarg); break;
		default: usage();
		}
	}
	if (optind != argc || opt.port <= 0 || opt.port > 65535 || opt.user == NULL
	    || opt.password == NULL || opt.to == NULL || strlen(opt.to) > 200
	    || strpbrk(opt.to, "\"\\") != NULL
	    || opt.sessions < 1 || opt.sessions > 1000 || opt.timeout < 1
	    || opt.size > 512u * 1024)
		usage();
	signal(SIGPIPE, SIG_IGN);

	/* Basic auth: base64 of user:password. */
	size_t ul = strlen(opt.user), pl = strlen(opt.password);
	char *cred = xmalloc(ul + pl + 2);
	snprintf(cred, ul + pl + 2, "%s:%s", opt.user, opt.password);
	auth = xmalloc((ul + pl + 1) / 3 * 4 + 16);
	strcpy(auth, "Basic ");
	base64((const unsigned char *)cred, ul + pl + 1, auth + 6);
	free(cred);

	/* The Text: --size bytes in lines of 76 characters and a LF (JSON
	 * "\n"), as send-load.c's body. */
	char *json = xmalloc((size_t)opt.size * 2 + 160);
	size_t jl = 0, tl = 0;
	while (tl < opt.size) {
		for (int i = 0; i < 76; i++, tl++)
			json[jl++] = (char)('a' + tl % 26);
		json[jl++] = '\\';
		json[jl++] = 'n';
		tl++;
	}
	json[jl] = '\0';
	text_enc = form_encode(json);
	free(json);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(run_id, sizeof(run_id), "%lx.%d", (unsigned long)ts.tv_sec, (int)getpid());

	struct session *ss = calloc(opt.sessions, sizeof(*ss));
	pthread_t *th = calloc(opt.sessions, sizeof(*th));
	if (ss == NULL || th == NULL)
		abort();
	double t0 = now();
	for (unsigned i = 0; i < opt.sessions; i++) {
		ss[i].index = i;
		ss[i].fd = -1;
		ss[i].in_cap = 4096;
		ss[i].in = xmalloc(ss[i].in_cap + 1);
		ss[i].in[0] = '\0';
		ss[i].out_cap = 8192;
		ss[i].out = xmalloc(ss[i].out_cap);
		if (pthread_create(&th[i], NULL, session_main, &ss[i]) != 0) {
			fprintf(stderr, "webapi-load: pthread_create failed\n");
			return 1;
		}
	}
	for (unsigned i = 0; i < opt.sessions; i++) {
		pthread_join(th[i], NULL);
		free(ss[i].in);
		free(ss[i].out);
	}
	double secs = now() - t0;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6
		     + (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	printf("total ok=%lu err=%lu reconnects=%lu seconds=%.3f cpu=%.3f\n", atomic_load(&n_ok),
	       atomic_load(&n_err), atomic_load(&n_reconnects), secs, cpu);
	error_texts_print();
	free(ss);
	free(th);
	free(text_enc);
	free(auth);
	return 0;
}
