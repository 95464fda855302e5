/*
 * t/unit/test_smtp_client_session.c: the SMTP client (core/smtp/client.c)
 * through its library API, against a scripted server in a child process
 * (blocking sockets, plain text), for what `gannet smtp send` cannot show:
 *
 * - two transactions on one connection with PIPELINING, the second with
 *   RSET in the same write as MAIL, and the reader called in chunks;
 * - a reader that fails in the middle of the message: the connection is
 *   dropped and the server never sees the dot (a truncated message must
 *   not be delivered), each recipient gets a local temporary failure;
 * - the caller frees the client from inside its sent() callback, and the
 *   client calls nothing after (ASan sees any use after free);
 * - gn_smtp_client_send() refuses bad addresses and a send while one is
 *   under way.
 */
#include "smtp/internal.h"
#include "tap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the server: answers every command, writes what it read to out ---- */

static void server(int lfd, int out)
{
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		char buf[4096];
		char line[2048];
		size_t ll = 0;
		bool data = false;
		ssize_t n;
		if (fd < 0)
			continue;
		(void)!write(fd, "220 fake ESMTP\r\n", 16);
		while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
			for (ssize_t i = 0; i < n; i++) {
				if (ll + 1 < sizeof(line))
					line[ll++] = buf[i];
				if (buf[i] != '\n')
					continue;
				line[ll] = '\0';
				(void)!write(out, line, ll);
				const char *r = NULL;
				if (data) {
					if (strcmp(line, ".\r\n") == 0) {
						data = false;
						r = "250 2.0.0 taken\r\n";
					}
				} else if (strncmp(line, "EHLO", 4) == 0) {
					r = "250-fake\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
					    "250 ENHANCEDSTATUSCODES\r\n";
				} else if (strncmp(line, "DATA", 4) == 0) {
					data = true;
					r = "354 go\r\n";
				} else if (strncmp(line, "RCPT TO:<bad", 12) == 0) {
					r = "550 5.1.1 bad\r\n";
				} else if (strncmp(line, "QUIT", 4) == 0) {
					r = "221 bye\r\n";
				} else {
					r = "250 2.0.0 ok\r\n";
				}
				if (r != NULL)
					(void)!write(fd, r, strlen(r));
				ll = 0;
			}
		}
		(void)!write(out, "<closed>\n", 9);
		close(fd);
	}
}

/* ---- the client ---- */

struct run {
	struct gn_smtp_client *c;
	int ready, sent, closed;
	int codes[8];
	char phases[256];
	const char *chunks[8];
	unsigned next_chunk;
	bool fail_read;
	bool free_in_sent;
	unsigned messages;	/* to send, one after another */
	bool late_call;		/* a callback after free */
};

static const char *const rcpts2[] = { "a@x.test", "bad@x.test" };

static int reader(void *data, const char **chunk_r, size_t *len_r, const char **error_r)
{
	struct run *r = data;
	if (r->fail_read && r->next_chunk == 2) {
		*error_r = "disk on fire";
		return -1;
	}
	if (r->chunks[r->next_chunk] == NULL)
		return 0;
	*chunk_r = r->chunks[r->next_chunk++];
	*len_r = strlen(*chunk_r);
	return 1;
}

static void send_one(struct run *r)
{
	const char *error;
	r->next_chunk = 0;
	if (gn_smtp_client_send(r->c, "s@x.test", rcpts2, 2, 0, 0, reader, r, &error) < 0)
		diag("send: %s", error);
}

static void on_ready(struct gn_smtp_client *c, const struct gn_smtp_result *f, void *data)
{
	struct run *r = data;
	const char *error;
	(void)c;
	r->ready++;
	if (f != NULL)
		return;
	send_one(r);
	ok(gn_smtp_client_send(r->c, "s@x.test", rcpts2, 2, 0, 0, reader, r, &error) < 0,
	   "a second send while one is under way is refused");
}

static void on_rcpt(struct gn_smtp_client *c, unsigned i, const struct gn_smtp_result *res,
		    void *data)
{
	struct run *r = data;
	size_t have = strlen(r->phases);
	(void)c;
	snprintf(r->phases + have, sizeof(r->phases) - have, "%u:%s:%d:%s%s ", i,
		 gn_smtp_phase_name(res->phase), res->code, res->enhanced,
		 res->local ? ":local" : "");
}

static void on_sent(struct gn_smtp_client *c, const struct gn_smtp_result *res, void *data)
{
	struct run *r = data;
	(void)c;
	if (r->c == NULL)
		r->late_call = true;
	r->codes[r->sent++ & 7] = res->code;
	if (r->free_in_sent) {
		gn_smtp_client_free(&r->c);
		ev_break(core_loop, EVBREAK_ALL);
		return;
	}
	if ((unsigned)r->sent < r->messages && gn_smtp_client_usable(r->c))
		send_one(r);
	else if (r->c != NULL)
		gn_smtp_client_quit(r->c);
}

static void on_closed(struct gn_smtp_client *c, void *data)
{
	struct run *r = data;
	(void)c;
	if (r->c == NULL)
		r->late_call = true;
	r->closed++;
	ev_break(core_loop, EVBREAK_ALL);
}

static const struct gn_smtp_client_handler handler = {
	.size = sizeof(struct gn_smtp_client_handler),
	.ready = on_ready, .rcpt = on_rcpt, .sent = on_sent, .closed = on_closed,
};

static void guard_cb(void *data)
{
	(void)data;
	ev_break(core_loop, EVBREAK_ALL);
}

static void go(struct run *r, unsigned port)
{
	struct gn_smtp_client_settings set;
	const char *error;
	struct gn_timer *guard;

	gn_smtp_client_settings_init(&set);
	set.helo_name = "client.test";
	set.command_timeout_ms = set.mail_timeout_ms = set.rcpt_timeout_ms =
		set.data_init_timeout_ms = set.data_term_timeout_ms = 10000;
	r->c = gn_smtp_client_new(&set, &handler, r, &error);
	gn_smtp_client_add_address(r->c, "127.0.0.1", port, &error);
	gn_smtp_client_connect(r->c, &error);
	guard = gn_timer_new(20000, false, guard_cb, NULL);
	ev_run(core_loop, 0);
	gn_timer_free(&guard);
}

/* What the server read since the last call, up to its "<closed>". */
static char *server_saw(int fd)
{
	static char buf[65536];
	size_t n = 0;
	while (n + 1 < sizeof(buf)) {
		ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
		buf[n] = '\0';
		if (strstr(buf, "<closed>\n") != NULL)
			break;
	}
	buf[n] = '\0';
	return buf;
}

int main(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int lfd, pipefd[2];
	unsigned port;
	pid_t pid;
	struct run r;
	char *saw;

	signal(SIGPIPE, SIG_IGN);
	log_init("test_smtp_client_session");
	if (getenv("GANNET_TEST_VERBOSE") == NULL)
		log_set_level(NULL, GN_LOG_WARN);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 8) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) < 0 || pipe(pipefd) < 0)
		return 1;
	port = ntohs(sa.sin_port);
	pid = fork();
	if (pid == 0) {
		close(pipefd[0]);
		server(lfd, pipefd[1]);
	}
	close(pipefd[1]);
	close(lfd);
	loop_init();

	{
		const char *error;
		struct gn_smtp_client_settings set;
		struct gn_smtp_client *c;
		gn_smtp_client_settings_init(&set);
		c = gn_smtp_client_new(&set, &handler, NULL, &error);
		ok(gn_smtp_client_add_address(c, "mx.example", 25, &error) < 0,
		   "a host name is no address");
		ok(gn_smtp_client_send(c, "a@b", rcpts2, 2, 0, 0, reader, NULL, &error) < 0,
		   "no send before the session is ready");
		ok(gn_smtp_client_connect(c, &error) < 0, "no connect without an address");
		gn_smtp_client_free(&c);
		ok(c == NULL, "free sets the pointer to NULL");
	}

	/* Two messages, pipelined, on one connection. */
	memset(&r, 0, sizeof(r));
	r.chunks[0] = "Subject: x\n\n";
	r.chunks[1] = ".dot\nmid";
	r.chunks[2] = "dle\n";
	r.messages = 2;
	go(&r, port);
	saw = server_saw(pipefd[0]);
	is_int(r.ready, 1, "ready once");
	is_int(r.sent, 2, "two transactions");
	ok(r.codes[0] == 250 && r.codes[1] == 250, "both ended with 250");
	is_str(r.phases, "1:rcpt:550:5.1.1 0:data:250:2.0.0 1:rcpt:550:5.1.1 0:data:250:2.0.0 ",
	       "per recipient: 550 at RCPT, 250 after DATA, twice");
	like(saw, "Subject: x\r\n\r\n..dot\r\nmiddle\r\n.\r\n",
	     "the message from three chunks: CRLF, dot-stuffed, the dot");
	like(saw, "RSET\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<a@x.test>\r\nRCPT TO:<bad@x.test>\r\nDATA\r\n",
	     "the second transaction: RSET, MAIL, RCPTs and DATA");
	like(saw, "QUIT\r\n<closed>", "QUIT at the end");
	is_int(r.closed, 1, "closed() once");
	gn_smtp_client_free(&r.c);

	/* A reader that fails: no dot. */
	memset(&r, 0, sizeof(r));
	r.chunks[0] = "Subject: x\n\n";
	r.chunks[1] = "part one\n";
	r.chunks[2] = "never\n";
	r.fail_read = true;
	r.messages = 1;
	go(&r, port);
	saw = server_saw(pipefd[0]);
	like(saw, "part one\r\n<closed>", "a failing reader: the connection is dropped after what was read");
	ok(strstr(saw, "\r\n.\r\n") == NULL, "and the server never saw the dot");
	like(r.phases, "0:data:451:4.3.0:local", "the accepted recipient: local 451 4.3.0 in DATA");
	is_int(r.sent, 1, "one sent()");
	is_int(r.closed, 1, "then closed()");
	gn_smtp_client_free(&r.c);

	/* Freed from sent(). */
	memset(&r, 0, sizeof(r));
	r.chunks[0] = "Subject: x\n\nbody\n";
	r.free_in_sent = true;
	r.messages = 1;
	go(&r, port);
	ok(r.c == NULL && r.sent == 1, "freed from inside sent()");
	{
		struct gn_timer *t = gn_timer_new(300, false, guard_cb, NULL);
		ev_run(core_loop, 0);	/* what the client might still do */
		gn_timer_free(&t);
	}
	ok(!r.late_call && r.closed == 0, "and nothing called after");
	saw = server_saw(pipefd[0]);
	like(saw, "<closed>", "the connection was closed");

	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	conns_close_all("end");
	return done_testing();
}
