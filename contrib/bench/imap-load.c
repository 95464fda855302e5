/*
 * contrib/bench/imap-load.c: the load generator of contrib/bench/imap.
 *
 * One process, one epoll loop, N concurrent IMAP sessions over TCP or
 * implicit TLS (GnuTLS), each a state machine that sends one command at a
 * time and reads the answer as it streams in (literals are skipped by
 * count, never buffered), so that the generator stays cheaper than the
 * servers it drives.  Modes:
 *
 *   mix         each session loops: connect (TCP, TLS, greeting), LOGIN,
 *               SELECT INBOX, FETCH of ten messages' header fields, FETCH
 *               of one whole message, STORE of a flag, SEARCH on a header,
 *               APPEND of a 2 KB message, expunge of that message (UID
 *               STORE \Deleted and UID EXPUNGE: only the session's own
 *               message goes), LOGOUT;
 *   persistent  the same without reconnecting: connect, LOGIN and SELECT
 *               once, then the FETCH .. expunge part in a loop;
 *   idle        connect, LOGIN, SELECT INBOX, IDLE on every session, at
 *               most --burst setting up at once; prints "idling N" when all
 *               are idling, then holds them until standard input closes.
 *
 * A tagged NO or BAD, a lost connection or a command without answer
 * within --timeout seconds is an error of its operation.  The expunge
 * needs the UID that APPEND's [APPENDUID] (RFC 4315) gave: without it the
 * expunge is counted as skipped, not as done.  Messages the sessions pick
 * are numbered 1..--messages, the messages that were in the mailbox
 * before the run: appended messages come after them and only their own
 * session removes them, so no session asks for a message another session
 * expunged.
 *
 * Output, one line each, for contrib/bench/imap to read:
 *   op NAME ok=N err=N skipped=N rate=R mean_ms=M
 *   total ok=N err=N skipped=N rate=R seconds=S
 *   error NAME TEXT                  (the first few of each kind)
 *
 * Build: cc -O2 -o imap-load imap-load.c $(pkg-config --cflags --libs gnutls)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Limits on what the server sends us. */
#define MAX_LINE	(64 * 1024)		/* one response line */
#define MAX_LITERAL	(256u * 1024 * 1024)	/* one literal, skipped */
#define ERRORS_KEPT	3			/* error texts kept per kind */

enum op {
	OP_CONNECT, OP_LOGIN, OP_SELECT, OP_FETCH_HEADERS, OP_FETCH_BODY,
	OP_STORE, OP_SEARCH, OP_APPEND, OP_EXPUNGE, OP_LOGOUT, OP_IDLE,
	OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	"connect", "login", "select", "fetch_headers", "fetch_body",
	"store", "search", "append", "expunge", "logout", "idle",
};

static const enum op seq_mix[] = {
	OP_CONNECT, OP_LOGIN, OP_SELECT, OP_FETCH_HEADERS, OP_FETCH_BODY,
	OP_STORE, OP_SEARCH, OP_APPEND, OP_EXPUNGE, OP_LOGOUT,
};
/* persistent: the loop starts at FETCH_HEADERS and ends before LOGOUT. */
#define PERSIST_LOOP_START 3
#define PERSIST_LOOP_END 9
static const enum op seq_idle[] = { OP_CONNECT, OP_LOGIN, OP_SELECT, OP_IDLE };

enum mode { MODE_MIX, MODE_PERSISTENT, MODE_IDLE };

enum phase {
	PH_WAITING,		/* not connected: starts at restart_at */
	PH_CONNECTING,		/* TCP connect in progress */
	PH_HANDSHAKE,		/* TLS handshake */
	PH_GREETING,		/* waiting for "* OK" */
	PH_COMMAND,		/* waiting for the tagged answer */
	PH_APPEND_CONT,		/* APPEND sent, waiting for "+" */
	PH_IDLE_CONT,		/* IDLE sent, waiting for "+" */
	PH_IDLING,
	PH_FINISHED,
};

struct op_stats {
	unsigned long ok, err, skipped;
	double ms_sum;
	unsigned n_texts;
	char texts[ERRORS_KEPT][200];
};

struct session {
	int fd;
	uint32_t index;		/* in sessions[] */
	uint32_t gen;		/* counts connections: tells a stale event */
	gnutls_session_t tls;
	enum phase phase;
	size_t step;
	unsigned sub;		/* expunge: 0 the STORE, 1 the UID EXPUNGE */
	bool sub_failed;
	unsigned tagno;
	char tag[16];
	double op_start, restart_at;
	uint32_t appended_uid;	/* 0: none to expunge */
	bool in_setup;		/* idle mode: counted in setups_running */
	/* Input: a line being read, or a literal being skipped. */
	char *in;
	size_t in_len, in_cap;
	uint64_t literal_left;
	bool continued;		/* the response goes on after a literal */
	/* Output: one command (and APPEND's literal) at a time. */
	char *out;
	size_t out_len, out_off, out_cap;
	uint32_t events;	/* what epoll watches now */
};

static struct {
	const char *host, *user, *password;
	int port;
	bool tls;
	enum mode mode;
	unsigned sessions, messages, burst;
	double duration, timeout;
	unsigned seed;
} opt = {
	.host = "127.0.0.1", .sessions = 10, .messages = 0, .burst = 50,
	.duration = 10, .timeout = 30, .mode = MODE_MIX, .seed = 1,
};

static struct session *sessions;
static int epfd;
static gnutls_certificate_credentials_t tls_cred;
static struct op_stats stats[OP_COUNT];
static double t_start, t_end;
static bool stopping;
static unsigned idling, setups_running, started;
static unsigned long lost_idlers;
static uint64_t rng_state;
static char *append_msg;
static size_t append_len;
static unsigned long append_counter;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("imap-load: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (p == NULL)
		die("out of memory");
	return p;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t rnd(uint32_t n)
{
	/* xorshift64: fast, and the same sequence for the same --seed. */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return n == 0 ? 0 : (uint32_t)(rng_state % n);
}

static const enum op *sequence(size_t *len_r)
{
	if (opt.mode == MODE_IDLE) {
		*len_r = sizeof(seq_idle) / sizeof(seq_idle[0]);
		return seq_idle;
	}
	*len_r = sizeof(seq_mix) / sizeof(seq_mix[0]);
	return seq_mix;
}

static enum op current_op(const struct session *s)
{
	size_t n;
	return sequence(&n)[s->step];
}

/* ---- statistics ---- */

static void record(enum op op, bool ok, double t0, const char *text, size_t text_len)
{
	double t = now();
	/* Only what completed within the measured time counts (idle mode
	 * counts everything: it measures no rate). */
	if (opt.mode != MODE_IDLE && t > t_end)
		return;
	struct op_stats *st = &stats[op];
	if (ok) {
		st->ok++;
		st->ms_sum += (t - t0) * 1000.0;
		return;
	}
	st->err++;
	if (st->n_texts == ERRORS_KEPT)
		return;
	/* The first few different texts: every session sends the same. */
	char buf[sizeof(st->texts[0])];
	if (text_len > sizeof(buf) - 1)
		text_len = sizeof(buf) - 1;
	memcpy(buf, text, text_len);
	buf[text_len] = '\0';
	for (char *p = buf; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	for (unsigned i = 0; i < st->n_texts; i++)
		if (strcmp(st->texts[i], buf) == 0)
			return;
	memcpy(st->texts[st->n_texts++], buf, sizeof(buf));
}

/* ---- I/O ---- */

/* An event names its session and connection: events of a connection
 * closed while the batch they came in was handled are dropped. */
static uint64_t event_key(const struct session *s)
{
	return (uint64_t)s->gen << 32 | s->index;
}

#define EVENT_STDIN UINT64_MAX

static void watch(struct session *s, uint32_t events)
{
	if (s->fd < 0 || events == s->events)
		return;
	struct epoll_event ev = { .events = events, .data.u64 = event_key(s) };
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
	s->events = events;
}

static void session_close(struct session *s)
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
	s->literal_left = 0;
	s->continued = false;
	s->out_len = s->out_off = 0;
	s->events = 0;
	if (s->phase == PH_IDLING) {
		idling--;
		lost_idlers++;
	}
	if (s->in_setup) {
		s->in_setup = false;
		setups_running--;
	}
}

static void start_op(struct session *s);

/* The connection failed in the middle of an operation: count the error and
 * start the sequence again on a new connection, a little later so that a
 * server refusing connections is not hammered in a loop. */
static void session_fail(struct session *s, const char *why)
{
	record(current_op(s), false, s->op_start, why, strlen(why));
	session_close(s);
	s->step = 0;
	s->appended_uid = 0;
	s->phase = PH_WAITING;
	s->restart_at = now() + 0.1;
}

static void out_add(struct session *s, const char *data, size_t len)
{
	if (s->out_len + len > s->out_cap) {
		s->out_cap = (s->out_len + len) * 2;
		s->out = xrealloc(s->out, s->out_cap);
	}
	memcpy(s->out + s->out_len, data, len);
	s->out_len += len;
}

static void out_printf(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct session *s, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		die("command too long");
	out_add(s, buf, (size_t)n);
}

/* A new command: the next tag, then the text. */
static void command(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void command(struct session *s, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	snprintf(s->tag, sizeof(s->tag), "a%u", ++s->tagno);
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		die("command too long");
	out_printf(s, "%s %s\r\n", s->tag, buf);
}

/* Sends what is queued; returns false when the connection failed (the
 * session was restarted). */
static bool flush(struct session *s)
{
	while (s->out_off < s->out_len) {
		const char *p = s->out + s->out_off;
		size_t n = s->out_len - s->out_off;
		ssize_t r;
		if (s->tls != NULL) {
			/* GnuTLS: after E_AGAIN the same data is passed again,
			 * which holds since nothing is queued meanwhile. */
			r = gnutls_record_send(s->tls, p, n);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
				watch(s, EPOLLIN | (gnutls_record_get_direction(s->tls) ? EPOLLOUT : 0));
				return true;
			}
			if (r < 0) {
				session_fail(s, gnutls_strerror((int)r));
				return false;
			}
		} else {
			r = send(s->fd, p, n, MSG_NOSIGNAL);
			if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
				watch(s, EPOLLIN | EPOLLOUT);
				return true;
			}
			if (r < 0) {
				session_fail(s, strerror(errno));
				return false;
			}
		}
		s->out_off += (size_t)r;
	}
	s->out_len = s->out_off = 0;
	watch(s, EPOLLIN);
	return true;
}

/* ---- the sequence ---- */

static void begin_connect(struct session *s)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port) };
	if (inet_pton(AF_INET, opt.host, &sin.sin_addr) != 1)
		die("--host takes an IPv4 address: %s", opt.host);
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		session_fail(s, strerror(errno));
		return;
	}
	int one = 1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->gen++;
	s->events = EPOLLOUT;
	struct epoll_event ev = { .events = EPOLLOUT, .data.u64 = event_key(s) };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
	s->phase = PH_CONNECTING;
	if (connect(s->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno != EINPROGRESS)
		session_fail(s, strerror(errno));
}

static void handshake(struct session *s)
{
	int r = gnutls_handshake(s->tls);
	if (r == 0) {
		s->phase = PH_GREETING;
		watch(s, EPOLLIN);
	} else if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
		watch(s, gnutls_record_get_direction(s->tls) ? EPOLLOUT : EPOLLIN);
	} else {
		session_fail(s, gnutls_strerror(r));
	}
}

static void connected(struct session *s)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		session_fail(s, strerror(err));
		return;
	}
	if (!opt.tls) {
		s->phase = PH_GREETING;
		watch(s, EPOLLIN);
		return;
	}
	int r = gnutls_init(&s->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK);
	if (r == 0)
		r = gnutls_set_default_priority(s->tls);
	if (r == 0)
		r = gnutls_credentials_set(s->tls, GNUTLS_CRD_CERTIFICATE, tls_cred);
	if (r != 0)
		die("gnutls: %s", gnutls_strerror(r));
	gnutls_transport_set_int(s->tls, s->fd);
	s->phase = PH_HANDSHAKE;
	handshake(s);
}

/* The operation is over (its answer came, or it was skipped): on to the
 * next one of the sequence. */
static void next_step(struct session *s)
{
	size_t n;
	sequence(&n);
	s->step++;
	if (opt.mode == MODE_PERSISTENT && s->step == PERSIST_LOOP_END)
		s->step = PERSIST_LOOP_START;
	if (s->step >= n) {
		/* mix: LOGOUT was the last; a new connection. */
		session_close(s);
		s->step = 0;
	}
	start_op(s);
}

static void start_op(struct session *s)
{
	if (opt.mode != MODE_IDLE && now() >= t_end) {
		session_close(s);
		s->phase = PH_FINISHED;
		return;
	}
	enum op op = current_op(s);
	uint32_t base = opt.messages;
	s->op_start = now();
	s->phase = PH_COMMAND;
	switch (op) {
	case OP_CONNECT:
		begin_connect(s);
		return;
	case OP_LOGIN:
		if (opt.mode == MODE_IDLE && !s->in_setup) {
			s->in_setup = true;
			setups_running++;
		}
		command(s, "LOGIN \"%s\" \"%s\"", opt.user, opt.password);
		break;
	case OP_SELECT:
		command(s, "SELECT INBOX");
		break;
	case OP_FETCH_HEADERS: {
		/* Ten messages' header fields, as a client's message list. */
		uint32_t first = base > 10 ? 1 + rnd(base - 9) : 1;
		uint32_t last = base > 10 ? first + 9 : base;
		command(s, "FETCH %u:%u (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS "
			"(FROM TO SUBJECT DATE MESSAGE-ID)])", first, last);
		break;
	}
	case OP_FETCH_BODY:
		command(s, "FETCH %u BODY.PEEK[]", 1 + rnd(base));
		break;
	case OP_STORE:
		command(s, "STORE %u %sFLAGS (\\Flagged)", 1 + rnd(base), rnd(2) ? "+" : "-");
		break;
	case OP_SEARCH:
		/* The bench's messages come from sender-00 .. sender-49. */
		command(s, "UID SEARCH FROM \"sender-%02u@\"", rnd(50));
		break;
	case OP_APPEND:
		s->appended_uid = 0;
		command(s, "APPEND INBOX (\\Seen) {%zu}", append_len);
		s->phase = PH_APPEND_CONT;
		break;
	case OP_EXPUNGE:
		if (s->appended_uid == 0) {
			/* APPEND failed or gave no UID: nothing of ours to
			 * remove. */
			stats[op].skipped += now() <= t_end;
			next_step(s);
			return;
		}
		s->sub = 0;
		s->sub_failed = false;
		command(s, "UID STORE %u +FLAGS.SILENT (\\Deleted)", s->appended_uid);
		break;
	case OP_LOGOUT:
		command(s, "LOGOUT");
		break;
	case OP_IDLE:
		command(s, "IDLE");
		s->phase = PH_IDLE_CONT;
		break;
	case OP_COUNT:
		abort();
	}
	flush(s);
}

/* The tagged answer to the current command. */
static void tagged(struct session *s, const char *line, size_t len)
{
	enum op op = current_op(s);
	const char *status = line + strlen(s->tag) + 1;
	size_t rest = len - strlen(s->tag) - 1;
	bool ok = rest >= 2 && strncmp(status, "OK", 2) == 0;

	if (op == OP_APPEND && ok) {
		/* RFC 4315: OK [APPENDUID uidvalidity uid] */
		const char *p = memmem(status, rest, "[APPENDUID ", 11);
		unsigned long v, uid;
		if (p != NULL && sscanf(p + 11, "%lu %lu", &v, &uid) == 2 && uid > 0 &&
		    uid <= UINT32_MAX)
			s->appended_uid = (uint32_t)uid;
	}
	if (op == OP_EXPUNGE && s->sub == 0) {
		if (!ok) {
			record(op, false, s->op_start, status, rest);
			s->sub_failed = true;
		}
		s->sub = 1;
		command(s, "UID EXPUNGE %u", s->appended_uid);
		s->appended_uid = 0;
		flush(s);
		return;
	}
	if (!(op == OP_EXPUNGE && s->sub_failed))
		record(op, ok, s->op_start, status, rest);
	if (!ok && (op == OP_LOGIN || op == OP_SELECT)) {
		/* Nothing else can work on this connection. */
		session_close(s);
		s->step = 0;
		s->phase = PH_WAITING;
		s->restart_at = now() + 0.1;
		return;
	}
	if (op == OP_LOGOUT)
		session_close(s);
	next_step(s);
}

/* A continuation request: APPEND's literal goes out, or IDLE has begun. */
static void continuation(struct session *s, const char *line, size_t len)
{
	if (s->phase == PH_APPEND_CONT) {
		s->phase = PH_COMMAND;
		out_add(s, append_msg, append_len);
		out_add(s, "\r\n", 2);
		flush(s);
	} else if (s->phase == PH_IDLE_CONT) {
		record(OP_IDLE, true, s->op_start, NULL, 0);
		s->phase = PH_IDLING;
		idling++;
		if (s->in_setup) {
			s->in_setup = false;
			setups_running--;
		}
		if (idling == opt.sessions) {
			printf("idling %u\n", idling);
			fflush(stdout);
		}
	} else {
		session_fail(s, len > 0 ? line : "unexpected continuation");
	}
}

/* A literal's announcement at the end of a line: {n}; returns its size or
 * -1 when there is none. */
static int64_t trailing_literal(const char *line, size_t len)
{
	if (len < 3 || line[len - 1] != '}')
		return -1;
	size_t i = len - 1;
	uint64_t n = 0, mul = 1;
	while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9') {
		if (mul > 1000000000000ULL)
			return -2;
		n += (uint64_t)(line[i - 1] - '0') * mul;
		mul *= 10;
		i--;
	}
	if (i == len - 1 || i == 0 || line[i - 1] != '{')
		return -1;
	return n > MAX_LITERAL ? -2 : (int64_t)n;
}

/* One line of a response (a response is lines joined by literals). */
static void response_line(struct session *s, const char *line, size_t len)
{
	bool first = !s->continued;
	int64_t lit = trailing_literal(line, len);
	if (lit == -2) {
		session_fail(s, "literal over the generator's limit");
		return;
	}
	s->continued = lit >= 0;
	s->literal_left = lit >= 0 ? (uint64_t)lit : 0;
	if (!first)
		return;

	if (len >= 1 && line[0] == '+') {
		continuation(s, line, len);
		return;
	}
	if (len >= 2 && line[0] == '*' && line[1] == ' ') {
		if (s->phase == PH_GREETING) {
			if (len >= 4 && strncmp(line + 2, "OK", 2) == 0) {
				record(OP_CONNECT, true, s->op_start, NULL, 0);
				next_step(s);
			} else {
				session_fail(s, line);
			}
			return;
		}
		if (len >= 5 && strncmp(line + 2, "BYE", 3) == 0 && current_op(s) != OP_LOGOUT)
			session_fail(s, line);
		/* EXISTS, EXPUNGE, FETCH, SEARCH ...: nothing to keep, since
		 * the messages picked are the ones before the run. */
		return;
	}
	size_t tl = strlen(s->tag);
	if (s->phase != PH_GREETING && s->phase != PH_IDLING && len > tl &&
	    memcmp(line, s->tag, tl) == 0 && line[tl] == ' ') {
		if (s->phase == PH_APPEND_CONT || s->phase == PH_IDLE_CONT)
			s->phase = PH_COMMAND;	/* refused before its "+" */
		tagged(s, line, len);
		return;
	}
	session_fail(s, "unexpected response line");
}

/* Reads what the connection has and handles it. */
static void readable(struct session *s)
{
	const uint32_t gen = s->gen;
	for (;;) {
		/* A response may end the connection (LOGOUT, a failure) and
		 * start the next: what is left is the old one's. */
		if (s->fd < 0 || s->gen != gen)
			return;
		char buf[65536];
		ssize_t r;
		if (s->tls != NULL) {
			r = gnutls_record_recv(s->tls, buf, sizeof(buf));
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
				return;
			if (r < 0) {
				session_fail(s, gnutls_strerror((int)r));
				return;
			}
		} else {
			r = recv(s->fd, buf, sizeof(buf), 0);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			if (r < 0) {
				session_fail(s, strerror(errno));
				return;
			}
		}
		if (r == 0) {
			session_fail(s, "connection closed by the server");
			return;
		}
		size_t pos = 0, n = (size_t)r;
		while (pos < n && s->fd >= 0 && s->gen == gen) {
			if (s->literal_left > 0) {
				size_t take = n - pos < s->literal_left ? n - pos
					: (size_t)s->literal_left;
				s->literal_left -= take;
				pos += take;
				continue;
			}
			const char *nl = memchr(buf + pos, '\n', n - pos);
			size_t take = nl != NULL ? (size_t)(nl - (buf + pos)) + 1 : n - pos;
			if (s->in_len + take >= MAX_LINE) {
				session_fail(s, "response line over the generator's limit");
				return;
			}
			if (s->in_len + take + 1 > s->in_cap) {
				s->in_cap = (s->in_len + take + 1) * 2;
				s->in = xrealloc(s->in, s->in_cap);
			}
			memcpy(s->in + s->in_len, buf + pos, take);
			s->in_len += take;
			pos += take;
			if (nl == NULL)
				break;
			size_t len = s->in_len - 1;
			if (len > 0 && s->in[len - 1] == '\r')
				len--;
			s->in[len] = '\0';
			s->in_len = 0;
			response_line(s, s->in, len);
		}
	}
}

static void handle_event(struct session *s, uint32_t events)
{
	switch (s->phase) {
	case PH_CONNECTING:
		connected(s);
		return;
	case PH_HANDSHAKE:
		handshake(s);
		return;
	default:
		break;
	}
	if (events & EPOLLOUT) {
		if (!flush(s))
			return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		readable(s);
}

/* ---- the run ---- */

static void make_append_message(void)
{
	/* A 2 KB message with CRLF line ends, as APPEND wants (RFC 9051
	 * 6.3.12: the message is in RFC 5322 form). */
	static char buf[4096];
	size_t n = (size_t)snprintf(buf, sizeof(buf),
		"From: Load Generator <sender-99@bench.test>\r\n"
		"To: bench@bench.test\r\n"
		"Subject: appended by imap-load\r\n"
		"Date: Sat, 05 Dec 2026 12:00:00 +0000\r\n"
		"Message-ID: <imap-load-%u@bench.test>\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: text/plain; charset=us-ascii\r\n"
		"\r\n", (unsigned)getpid());
	while (n < 2048 - 80) {
		n += (size_t)snprintf(buf + n, sizeof(buf) - n,
			"line %04lu of the message the load generator appends.....\r\n",
			append_counter++);
	}
	append_msg = buf;
	append_len = n;
}

static void report(double seconds)
{
	unsigned long ok = 0, err = 0, skipped = 0;
	for (int i = 0; i < OP_COUNT; i++) {
		struct op_stats *st = &stats[i];
		if (st->ok + st->err + st->skipped == 0)
			continue;
		printf("op %s ok=%lu err=%lu skipped=%lu rate=%.1f mean_ms=%.2f\n", op_names[i],
		       st->ok, st->err, st->skipped, (double)st->ok / seconds,
		       st->ok > 0 ? st->ms_sum / (double)st->ok : 0.0);
		ok += st->ok;
		err += st->err;
		skipped += st->skipped;
	}
	printf("total ok=%lu err=%lu skipped=%lu rate=%.1f seconds=%.2f\n", ok, err, skipped,
	       (double)ok / seconds, seconds);
	for (int i = 0; i < OP_COUNT; i++)
		for (unsigned j = 0; j < stats[i].n_texts; j++)
			printf("error %s %s\n", op_names[i], stats[i].texts[j]);
	if (opt.mode == MODE_IDLE)
		printf("idle held=%u lost=%lu\n", idling, lost_idlers);
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: imap-load --port N --user U --password P --messages N [--tls]\n"
		"         [--mode mix|persistent|idle] [--sessions N] [--duration S]\n"
		"         [--timeout S] [--burst N] [--host 127.0.0.1] [--seed N]\n"
		"  mix, persistent: run for --duration seconds, then print the rates.\n"
		"  idle: --sessions connections idling (at most --burst setting up at\n"
		"        once; --duration is the time allowed for that); prints \"idling N\"\n"
		"        and holds them until standard input closes.\n");
	exit(2);
}

static unsigned long num(const char *s, const char *name, unsigned long max)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v > max)
		die("bad %s: %s", name, s);
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host", 1, NULL, 'h' }, { "port", 1, NULL, 'p' }, { "user", 1, NULL, 'u' },
		{ "password", 1, NULL, 'w' }, { "tls", 0, NULL, 't' }, { "mode", 1, NULL, 'm' },
		{ "sessions", 1, NULL, 's' }, { "duration", 1, NULL, 'd' },
		{ "messages", 1, NULL, 'n' }, { "timeout", 1, NULL, 'T' },
		{ "burst", 1, NULL, 'b' }, { "seed", 1, NULL, 'S' }, { NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': opt.host = optarg; break;
		case 'p': opt.port = (int)num(optarg, "--port", 65535); break;
		case 'u': opt.user = optarg; break;
		case 'w': opt.password = optarg; break;
		case 't': opt.tls = true; break;
		case 'm':
			if (strcmp(optarg, "mix") == 0)
				opt.mode = MODE_MIX;
			else if (strcmp(optarg, "persistent") == 0)
				opt.mode = MODE_PERSISTENT;
			else if (strcmp(optarg, "idle") == 0)
				opt.mode = MODE_IDLE;
			else
				usage();
			break;
		case 's': opt.sessions = (unsigned)num(optarg, "--sessions", 1000000); break;
		case 'd': opt.duration = (double)num(optarg, "--duration", 86400); break;
		case 'n': opt.messages = (unsigned)num(optarg, "--messages", UINT32_MAX); break;
		case 'T': opt.timeout = (double)num(optarg, "--timeout", 3600); break;
		case 'b': opt.burst = (unsigned)num(optarg, "--burst", 1000000); break;
		case 'S': opt.seed = (unsigned)num(optarg, "--seed", UINT32_MAX); break;
		default: usage();
		}
	}
	if (optind != argc || opt.port == 0 || opt.user == NULL || opt.password == NULL ||
	    opt.sessions == 0 || opt.duration <= 0 || opt.burst == 0 ||
	    (opt.mode != MODE_IDLE && opt.messages == 0))
		usage();
	if (strpbrk(opt.user, "\"\\\r\n") != NULL || strpbrk(opt.password, "\"\\\r\n") != NULL)
		die("--user and --password are sent as quoted strings: no quotes, backslashes "
		    "or line ends");

	/* Every session is a descriptor; the hard limit is what we may take. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < opt.sessions + 16)
		die("%u sessions need more descriptors than RLIMIT_NOFILE's %llu",
		    opt.sessions, (unsigned long long)rl.rlim_cur);
	signal(SIGPIPE, SIG_IGN);
	rng_state = 0x9e3779b97f4a7c15ULL ^ opt.seed;

	if (opt.tls) {
		int r = gnutls_global_init();
		if (r == 0)
			r = gnutls_certificate_allocate_credentials(&tls_cred);
		if (r != 0)
			die("gnutls: %s", gnutls_strerror(r));
		/* No trust anchors: the servers use throwaway self-signed
		 * certificates on loopback. */
	}
	make_append_message();
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1: %s", strerror(errno));
	if (opt.mode == MODE_IDLE) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EVENT_STDIN };
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) < 0)
			die("epoll_ctl stdin: %s", strerror(errno));
	}

	struct session *ss = calloc(opt.sessions, sizeof(*ss));
	if (ss == NULL)
		die("out of memory");
	sessions = ss;
	for (unsigned i = 0; i < opt.sessions; i++) {
		ss[i].index = i;
		ss[i].fd = -1;
		ss[i].phase = PH_WAITING;
	}
	t_start = now();
	t_end = t_start + opt.duration;
	bool announced_short = false;
	double last_scan = t_start;
	struct epoll_event evs[256];

	while (!stopping) {
		double t = now();
		/* Start waiting sessions; in idle mode only --burst at once. */
		for (unsigned i = 0; i < opt.sessions; i++) {
			struct session *s = &ss[i];
			if (s->phase != PH_WAITING || s->restart_at > t)
				continue;
			if (opt.mode == MODE_IDLE) {
				if (setups_running >= opt.burst)
					break;
				s->in_setup = true;
				setups_running++;
			}
			started++;
			start_op(s);
		}
		if (t - last_scan >= 0.5) {
			last_scan = t;
			for (unsigned i = 0; i < opt.sessions; i++) {
				struct session *s = &ss[i];
				if (s->phase == PH_WAITING || s->phase == PH_IDLING ||
				    s->phase == PH_FINISHED)
					continue;
				if (t - s->op_start > opt.timeout)
					session_fail(s, "no answer within --timeout");
			}
		}
		if (opt.mode != MODE_IDLE) {
			unsigned active = 0;
			for (unsigned i = 0; i < opt.sessions; i++)
				active += ss[i].phase != PH_FINISHED;
			if (active == 0)
				break;
			/* The commands still under way when the time is up
			 * are not counted; give them a moment, no more. */
			if (t > t_end + opt.timeout)
				break;
		} else if (!announced_short && t > t_end && idling < opt.sessions) {
			/* Not all got there in time: say how many did, so that
			 * the caller can measure those and tell. */
			announced_short = true;
			printf("idling %u\n", idling);
			fflush(stdout);
		}
		int n = epoll_wait(epfd, evs, 256, 50);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			uint64_t key = evs[i].data.u64;
			if (key == EVENT_STDIN) {
				/* Standard input: EOF (or anything) ends the hold. */
				char b[64];
				if (read(0, b, sizeof(b)) <= 0)
					stopping = true;
				continue;
			}
			struct session *s = &sessions[(uint32_t)key];
			if (s->fd >= 0 && s->gen == (uint32_t)(key >> 32))
				handle_event(s, evs[i].events);
		}
	}
	double seconds = opt.mode == MODE_IDLE ? now() - t_start : opt.duration;
	report(seconds);
	for (unsigned i = 0; i < opt.sessions; i++) {
		if (ss[i].phase == PH_IDLING) {
			ss[i].phase = PH_FINISHED;
			idling--;
		}
		session_close(&ss[i]);
		free(ss[i].in);
		free(ss[i].out);
	}
	free(ss);
	if (opt.tls)
		gnutls_certificate_free_credentials(tls_cred);
	return 0;
}
