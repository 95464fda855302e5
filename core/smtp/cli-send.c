/*
 * core/smtp/cli-send.c: `gannet smtp send`, the SMTP client (client.c)
 * from the command line, for admins who want to see what a server says
 * to gannet, and for the client's tests.
 *
 *   gannet smtp send --server HOST:PORT [--server ...] --from ADDR --to ADDR
 *       [--to ...] [--tls require|opportunistic|none] [--tls-name NAME]
 *       [--tls-verify] [--ca FILE] [--helo NAME] [--timeout MS] [--trace]
 *       [--requiretls] [--message FILE ...]  (default: standard input)
 *
 * Every --message is sent on the same connection, one after the other
 * (RSET between), then QUIT.  HOST is an IP address ([v6]:port for IPv6)
 * or a name looked up with the system's resolver (this command only: the
 * client itself takes addresses).  The message is scanned before it is
 * sent: 8-bit octets in its header make it need SMTPUTF8 (RFC 6532), in its
 * body BODY=8BITMIME (RFC 6152); input that cannot be read twice (a pipe)
 * is copied to a temporary file first, so the message is never held in
 * memory whole.  --requiretls sends MAIL FROM ... REQUIRETLS (RFC 8689),
 * which the client refuses (554 5.7.30) without TLS or without the
 * server's REQUIRETLS; combine it with --tls require --tls-verify.
 *
 * Output, one line each: "session ..." once connected (or "failed ..."
 * when no address worked), "rcpt ..." per recipient, "sent ..." per
 * message; with --trace the command lines ("C: ") and reply lines ("S: ").
 * Exit 0 when every recipient of every message was accepted, 1 otherwise,
 * 2 on bad usage.
 */
#include "smtp/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SEND_READ_CHUNK (64u * 1024u)

struct send_msg {
	const char *path;	/* NULL: stdin */
	FILE *f;
	unsigned long long size;
	unsigned flags;
};

struct send_ctx {
	struct gn_smtp_client *client;
	const char *from;
	const char **rcpts;
	unsigned n_rcpts;
	struct send_msg *msgs;
	unsigned n_msgs, cur;
	char buf[SEND_READ_CHUNK];
	bool trace;
	bool requiretls;
	int status;
	bool done;
};

static int msg_read(void *data, const char **chunk_r, size_t *len_r, const char **error_r)
{
	struct send_ctx *s = data;
	FILE *f = s->msgs[s->cur].f;
	size_t n = fread(s->buf, 1, sizeof(s->buf), f);

	if (n == 0 && ferror(f)) {
		*error_r = "cannot read the message";
		return -1;
	}
	if (n == 0)
		return 0;
	*chunk_r = s->buf;
	*len_r = n;
	return 1;
}

/* Scans the message for what it needs, and sizes it with CRLF line ends. */
static int msg_prepare(struct send_msg *m)
{
	int ch, prev = '\n';
	bool header = true;
	unsigned long long bytes = 0, lfs = 0;

	if (m->path != NULL) {
		m->f = fopen(m->path, "rb");
		if (m->f == NULL) {
			fprintf(stderr, "gannet smtp send: cannot open %s: %s\n", m->path,
				strerror(errno));
			return -1;
		}
	} else if (fseek(stdin, 0, SEEK_CUR) == 0) {
		m->f = stdin;
	} else {
		/* A pipe: copied, so that it can be read twice. */
		char buf[8192];
		size_t n;
		m->f = tmpfile();
		if (m->f == NULL) {
			fprintf(stderr, "gannet smtp send: no temporary file: %s\n", strerror(errno));
			return -1;
		}
		while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
			if (fwrite(buf, 1, n, m->f) != n) {
				fprintf(stderr, "gannet smtp send: cannot copy the message\n");
				return -1;
			}
		rewind(m->f);
	}
	while ((ch = getc(m->f)) != EOF) {
		bytes++;
		if (ch == '\n') {
			lfs++;
			if (header && (prev == '\n'))
				header = false;
		}
		if (ch >= 0x80)
			m->flags |= header ? GN_SMTP_SEND_SMTPUTF8 : GN_SMTP_SEND_8BITMIME;
		if (ch != '\r')
			prev = ch;
	}
	if (ferror(m->f) || fseek(m->f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "gannet smtp send: cannot read the message %s\n",
			m->path != NULL ? m->path : "on standard input");
		return -1;
	}
	m->size = bytes + lfs;
	return 0;
}

static void print_result(const char *what, const struct gn_smtp_result *r)
{
	printf("%s phase=%s code=%d enhanced=%s local=%s permanent=%s text=%s\n", what,
	       gn_smtp_phase_name(r->phase), r->code, r->enhanced[0] ? r->enhanced : "-",
	       r->local ? "yes" : "no", r->permanent ? "yes" : "no",
	       gn_log_quote(0, r->text != NULL ? r->text : ""));
}

static void send_next(struct send_ctx *s);

static void on_ready(struct gn_smtp_client *client, const struct gn_smtp_result *failure,
		     void *data)
{
	struct send_ctx *s = data;
	static const char *const exts[] = {
		"PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE", "ENHANCEDSTATUSCODES",
		"STARTTLS", "CHUNKING", "DSN",
	};
	const char *params;
	bool first = true;

	if (failure != NULL) {
		print_result("failed", failure);
		s->status = 1;
		return;
	}
	printf("session server=%s port=%u tls=%s verified=%s", gn_smtp_client_remote_ip(client),
	       gn_smtp_client_remote_port(client),
	       gn_smtp_client_is_tls(client) ? gn_smtp_client_tls_version(client) : "none",
	       gn_smtp_client_tls_verified(client) ? "yes" : "no");
	if (gn_smtp_client_tls_verify_error(client) != NULL)
		printf(" verify_error=%s", gn_log_quote(0, gn_smtp_client_tls_verify_error(client)));
	printf(" extensions=");
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		if (gn_smtp_client_has_extension(client, exts[i], &params)) {
			printf("%s%s", first ? "" : ",", exts[i]);
			first = false;
		}
	}
	printf("%s\n", first ? "-" : "");
	send_next(s);
}

static void on_rcpt(struct gn_smtp_client *client, unsigned index,
		    const struct gn_smtp_result *r, void *data)
{
	struct send_ctx *s = data;
	char what[600];
	(void)client;
	snprintf(what, sizeof(what), "rcpt message=%u to=%s", s->cur + 1, s->rcpts[index]);
	print_result(what, r);
	if (r->code / 100 != 2)
		s->status = 1;
}

static void on_sent(struct gn_smtp_client *client, const struct gn_smtp_result *r,
		    void *data)
{
	struct send_ctx *s = data;
	char what[64];
	(void)client;
	snprintf(what, sizeof(what), "sent message=%u", s->cur + 1);
	print_result(what, r);
	if (r->code / 100 != 2)
		s->status = 1;
	s->cur++;
	send_next(s);
}

static void on_closed(struct gn_smtp_client *client, void *data)
{
	struct send_ctx *s = data;
	(void)client;
	if (s->cur < s->n_msgs) {
		printf("closed before message %u was sent\n", s->cur + 1);
		s->status = 1;
	}
	s->done = true;
	ev_break(core_loop, EVBREAK_ALL);
}

static void on_trace(struct gn_smtp_client *client, bool sent, const char *line,
		     size_t len, void *data)
{
	struct send_ctx *s = data;
	(void)client;
	if (s->trace)
		printf("%s %.*s\n", sent ? "C:" : "S:", (int)len, line);
}

static void send_next(struct send_ctx *s)
{
	const char *error;
	struct send_msg *m;

	fflush(stdout);
	if (s->cur >= s->n_msgs || !gn_smtp_client_usable(s->client)) {
		gn_smtp_client_quit(s->client);
		return;
	}
	m = &s->msgs[s->cur];
	if (gn_smtp_client_send(s->client, s->from, s->rcpts, s->n_rcpts, m->size,
				m->flags | (s->requiretls ? GN_SMTP_SEND_REQUIRETLS : 0u),
				msg_read, s, &error) < 0) {
		fprintf(stderr, "gannet smtp send: %s\n", error);
		s->status = 1;
		s->cur = s->n_msgs;
		gn_smtp_client_quit(s->client);
	}
}

/* HOST:PORT, [IPv6]:PORT; names through getaddrinfo.  The addresses go to
 * client when it is not NULL; *name_r gets the first host that is a name
 * (the name to verify the certificate for), else stays.  0 or -1. */
static int add_server(struct gn_smtp_client *client, const char *arg, char **name_r)
{
	char host[512];
	const char *colon, *port_s;
	struct addrinfo hints, *res = NULL;
	char *end;
	unsigned long port;
	const char *error;
	int n = 0;

	if (arg[0] == '[') {
		const char *rb = strchr(arg, ']');
		if (rb == NULL || rb[1] != ':' || (size_t)(rb - arg - 1) >= sizeof(host))
			goto bad;
		memcpy(host, arg + 1, (size_t)(rb - arg - 1));
		host[rb - arg - 1] = '\0';
		port_s = rb + 2;
	} else {
		colon = strrchr(arg, ':');
		if (colon == NULL || (size_t)(colon - arg) >= sizeof(host) || colon == arg)
			goto bad;
		memcpy(host, arg, (size_t)(colon - arg));
		host[colon - arg] = '\0';
		port_s = colon + 1;
	}
	port = strtoul(port_s, &end, 10);
	if (*port_s == '\0' || *end != '\0' || port == 0 || port > 65535)
		goto bad;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL) {
		fprintf(stderr, "gannet smtp send: cannot resolve %s\n", host);
		return -1;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		char ip[INET6_ADDRSTRLEN];
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, sizeof(ip), NULL, 0,
				NI_NUMERICHOST) != 0)
			continue;
		if (client == NULL ||
		    gn_smtp_client_add_address(client, ip, (unsigned)port, &error) == 0)
			n++;
	}
	freeaddrinfo(res);
	if (n == 0) {
		fprintf(stderr, "gannet smtp send: no address for %s\n", host);
		return -1;
	}
	{
		unsigned char sa[sizeof(struct in6_addr)];
		if (*name_r == NULL && inet_pton(AF_INET, host, sa) != 1 &&
		    inet_pton(AF_INET6, host, sa) != 1)
			*name_r = strdup(host);
	}
	return 0;
bad:
	fprintf(stderr, "gannet smtp send: --server wants HOST:PORT or [IPv6]:PORT, not %s\n",
		arg);
	return -1;
}

int smtp_cli_send(int argc, char **argv, void *data)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "tls", required_argument, NULL, 'T' },
		{ "tls-name", required_argument, NULL, 'N' },
		{ "tls-verify", no_argument, NULL, 'V' },
		{ "ca", required_argument, NULL, 'C' },
		{ "helo", required_argument, NULL, 'H' },
		{ "timeout", required_argument, NULL, 'o' },
		{ "message", required_argument, NULL, 'm' },
		{ "trace", no_argument, NULL, 'x' },
		{ "requiretls", no_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	struct gn_smtp_client_settings set;
	struct gn_smtp_client_handler h = {
		.size = sizeof(h), .ready = on_ready, .rcpt = on_rcpt, .sent = on_sent,
		.closed = on_closed, .trace = on_trace,
	};
	struct send_ctx *s = gn_calloc(1, sizeof(*s));
	const char **servers = gn_calloc((size_t)argc + 1, sizeof(char *));
	unsigned n_servers = 0;
	const char *error, *ca = NULL;
	const char *tls_name = NULL;
	char *looked_up_name = NULL;
	int opt, rc = 2;
	(void)data;

	gn_smtp_client_settings_init(&set);
	s->rcpts = gn_calloc((size_t)argc + 1, sizeof(char *));
	s->msgs = gn_calloc((size_t)argc + 1, sizeof(struct send_msg));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			servers[n_servers++] = optarg;
			break;
		case 'f':
			s->from = optarg;
			break;
		case 't':
			s->rcpts[s->n_rcpts++] = optarg;
			break;
		case 'T':
			if (strcmp(optarg, "require") == 0)
				set.tls = GN_SMTP_TLS_REQUIRE;
			else if (strcmp(optarg, "opportunistic") == 0)
				set.tls = GN_SMTP_TLS_OPPORTUNISTIC;
			else if (strcmp(optarg, "none") == 0)
				set.tls = GN_SMTP_TLS_NONE;
			else {
				fprintf(stderr, "gannet smtp send: --tls is require, "
					"opportunistic or none\n");
				goto out;
			}
			break;
		case 'N':
			tls_name = optarg;
			break;
		case 'V':
			set.tls_verify = true;
			break;
		case 'C':
			ca = optarg;
			break;
		case 'H':
			set.helo_name = optarg;
			break;
		case 'o': {
			char *end;
			unsigned long ms = strtoul(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || ms == 0) {
				fprintf(stderr, "gannet smtp send: --timeout wants milliseconds\n");
				goto out;
			}
			set.connect_timeout_ms = set.greeting_timeout_ms = set.command_timeout_ms =
				set.mail_timeout_ms = set.rcpt_timeout_ms = set.data_init_timeout_ms =
				set.data_block_timeout_ms = set.data_term_timeout_ms = ms;
			break;
		}
		case 'm':
			s->msgs[s->n_msgs++].path = optarg;
			break;
		case 'x':
			s->trace = true;
			break;
		case 'R':
			s->requiretls = true;
			break;
		default:
			goto out;
		}
	}
	if (optind < argc || n_servers == 0 || s->from == NULL || s->n_rcpts == 0) {
		fprintf(stderr, "gannet smtp send: needs --server, --from and --to (and no "
			"other arguments)\n");
		goto out;
	}
	rc = 1;
	if (s->n_msgs == 0)
		s->n_msgs = 1;	/* standard input */
	for (unsigned i = 0; i < s->n_msgs; i++)
		if (msg_prepare(&s->msgs[i]) < 0)
			goto out;
	if (ca != NULL && gn_conn_tls_client_trust(ca, &error) < 0) {
		fprintf(stderr, "gannet smtp send: %s\n", error);
		goto out;
	}
	loop_init();
	/* The first --server that is a name is the name to verify, unless
	 * --tls-name says another. */
	for (unsigned i = 0; i < n_servers; i++)
		if (add_server(NULL, servers[i], &looked_up_name) < 0)
			goto out;
	set.tls_name = tls_name != NULL ? tls_name : looked_up_name;
	s->client = gn_smtp_client_new(&set, &h, s, &error);
	if (s->client == NULL) {
		fprintf(stderr, "gannet smtp send: %s\n", error);
		goto out;
	}
	for (unsigned i = 0; i < n_servers; i++)
		if (add_server(s->client, servers[i], &looked_up_name) < 0)
			goto out;
	if (gn_smtp_client_connect(s->client, &error) < 0) {
		fprintf(stderr, "gannet smtp send: %s\n", error);
		goto out;
	}
	s->status = 0;
	ev_run(core_loop, 0);
	rc = s->done ? s->status : 1;
out:
	fflush(stdout);
	gn_smtp_client_free(&s->client);
	conns_close_all("exit");
	for (unsigned i = 0; i < s->n_msgs; i++)
		if (s->msgs[i].f != NULL && s->msgs[i].f != stdin)
			fclose(s->msgs[i].f);
	free(looked_up_name);
	gn_free(s->msgs);
	gn_free(s->rcpts);
	gn_free(servers);
	gn_free(s);
	tls_client_deinit();
	return rc;
}
