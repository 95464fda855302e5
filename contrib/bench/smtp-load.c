/*
 * contrib/bench/smtp-load.c: the load of contrib/bench/smtp --mailauth.
 *
 * smtp-source sends one file again and again (-F), so a cell of 2,000
 * messages from four signed files stored four bodies 500 times each, and
 * every delivery updated one of four blob rows that the other sessions'
 * transactions held too.  This sends every message once: message i is
 * file i % n with a line "X-Bench-Seq: TAG-i" in front, a field the
 * files' DKIM signatures do not cover (they sign From, To, Subject and
 * Date), so each message is new to the store and still verifies.
 *
 *     smtp-load HOST:PORT SESSIONS MESSAGES TAG RCPT FILE SENDER [FILE SENDER]...
 *
 * SESSIONS threads take the next message in turn, one connection a
 * message (EHLO, MAIL, RCPT, DATA, QUIT, one command at a time, as
 * smtp-source without -d).  The files have LF line ends (the signer's);
 * they are sent with CRLF and dot-stuffed.  Prints the number of messages
 * accepted (250 after the data); exit 0 when all were, else 1 with the
 * first refusal or error on stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct file {
	char *data;		/* CRLF, dot-stuffed, ending in CRLF */
	size_t len;
	const char *sender;
};

static struct sockaddr_in addr;
static struct file *files;
static int n_files;
static int total;
static const char *tag, *rcpt;
static atomic_int next_msg, accepted, failed;
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_error[512];

static void fail(const char *what, const char *detail)
{
	atomic_fetch_add(&failed, 1);
	pthread_mutex_lock(&err_lock);
	if (first_error[0] == '\0')
		snprintf(first_error, sizeof(first_error), "%.200s: %.300s", what, detail);
	pthread_mutex_unlock(&err_lock);
}

/* A file's bytes with CRLF line ends and dot-stuffing. */
static int load(const char *path, struct file *f)
{
	FILE *fp = fopen(path, "rb");
	if (fp == NULL)
		return -1;
	size_t cap = 4096, len = 0;
	char *out = malloc(cap);
	int c, bol = 1;
	while ((c = fgetc(fp)) != EOF) {
		if (len + 4 > cap)
			out = realloc(out, cap *= 2);
		if (c == '\r')
			continue;
		if (bol && c == '.')
			out[len++] = '.';
		if (c == '\n') {
			out[len++] = '\r';
			out[len++] = '\n';
			bol = 1;
			continue;
		}
		out[len++] = (char)c;
		bol = 0;
	}
	fclose(fp);
	if (!bol) {
		if (len + 2 > cap)
			out = realloc(out, cap + 2);
		out[len++] = '\r';
		out[len++] = '\n';
	}
	f->data = out;
	f->len = len;
	return 0;
}

struct conn {
	int fd;
	char buf[4096];
	size_t len;
};

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The reply's code (its last line's), or -1; text in line. */
static int reply(struct conn *c, char *line, size_t line_size)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl != NULL) {
			size_t l = (size_t)(nl - c->buf) + 1;
			int last = l >= 4 && c->buf[3] != '-';
			int code = l >= 3 ? atoi(c->buf) : -1;
			snprintf(line, line_size, "%.*s", (int)(l > 2 ? l - 2 : 0), c->buf);
			memmove(c->buf, c->buf + l, c->len - l);
			c->len -= l;
			if (last)
				return code;
			continue;
		}
		if (c->len == sizeof(c->buf))
			return -1;
		ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c->len += (size_t)r;
	}
}

/* Sends cmd (may be NULL) and wants the code: 0, or -1 (counted). */
static int step(struct conn *c, const char *cmd, int want)
{
	char line[512];
	if (cmd != NULL && send_all(c->fd, cmd, strlen(cmd)) < 0) {
		fail("send", strerror(errno));
		return -1;
	}
	int code = reply(c, line, sizeof(line));
	if (code != want) {
		fail(cmd != NULL ? cmd : "greeting", code < 0 ? "connection lost" : line);
		return -1;
	}
	return 0;
}

static void one(int i)
{
	const struct file *f = &files[i % n_files];
	struct conn c = { .fd = socket(AF_INET, SOCK_STREAM, 0), .len = 0 };
	char cmd[600], seq[128];
	if (c.fd < 0 || connect(c.fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		fail("connect", strerror(errno));
		if (c.fd >= 0)
			close(c.fd);
		return;
	}
	int one_ = 1;
	(void)setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one_, sizeof(one_));
	snprintf(seq, sizeof(seq), "X-Bench-Seq: %s-%d\r\n", tag, i);
	if (step(&c, NULL, 220) == 0 && step(&c, "EHLO client.test\r\n", 250) == 0) {
		snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>\r\n", f->sender);
		if (step(&c, cmd, 250) == 0) {
			snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>\r\n", rcpt);
			if (step(&c, cmd, 250) == 0 && step(&c, "DATA\r\n", 354) == 0) {
				if (send_all(c.fd, seq, strlen(seq)) < 0 ||
				    send_all(c.fd, f->data, f->len) < 0)
					fail("data", strerror(errno));
				else if (step(&c, ".\r\n", 250) == 0) {
					atomic_fetch_add(&accepted, 1);
					(void)step(&c, "QUIT\r\n", 221);
				}
			}
		}
	}
	close(c.fd);
}

static void *session(void *arg)
{
	(void)arg;
	for (;;) {
		int i = atomic_fetch_add(&next_msg, 1);
		if (i >= total)
			return NULL;
		one(i);
	}
}

int main(int argc, char **argv)
{
	if (argc < 8 || (argc - 6) % 2 != 0) {
		fprintf(stderr, "usage: smtp-load HOST:PORT SESSIONS MESSAGES TAG RCPT FILE SENDER "
			"[FILE SENDER]...\n");
		return 2;
	}
	char host[64];
	const char *colon = strrchr(argv[1], ':');
	if (colon == NULL || (size_t)(colon - argv[1]) >= sizeof(host)) {
		fprintf(stderr, "smtp-load: HOST:PORT\n");
		return 2;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - argv[1]), argv[1]);
	addr.sin_family = AF_INET;
	addr.sin_port = htons((unsigned short)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
		fprintf(stderr, "smtp-load: not an IPv4 address: %s\n", host);
		return 2;
	}
	int sessions = atoi(argv[2]);
	total = atoi(argv[3]);
	tag = argv[4];
	rcpt = argv[5];
	n_files = (argc - 6) / 2;
	files = calloc((size_t)n_files, sizeof(*files));
	for (int k = 0; k < n_files; k++) {
		if (load(argv[6 + 2 * k], &files[k]) < 0) {
			fprintf(stderr, "smtp-load: %s: %s\n", argv[6 + 2 * k], strerror(errno));
			return 2;
		}
		files[k].sender = argv[7 + 2 * k];
	}
	if (sessions < 1 || total < 0) {
		fprintf(stderr, "smtp-load: SESSIONS at least 1\n");
		return 2;
	}
	pthread_t *t = calloc((size_t)sessions, sizeof(*t));
	for (int s = 0; s < sessions; s++)
		if (pthread_create(&t[s], NULL, session, NULL) != 0) {
			fprintf(stderr, "smtp-load: no thread\n");
			return 2;
		}
	for (int s = 0; s < sessions; s++)
		pthread_join(t[s], NULL);
	printf("%d\n", atomic_load(&accepted));
	if (atomic_load(&failed) > 0) {
		fprintf(stderr, "smtp-load: %d failed, the first: %s\n", atomic_load(&failed), first_error);
		return 1;
	}
	return 0;
}
