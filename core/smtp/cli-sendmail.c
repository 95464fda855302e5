/*
 * core/smtp/cli-sendmail.c: `gannet sendmail`, a sendmail(8)-compatible
 * command that submits one message from standard input to a submission
 * server (gannet's, or any) with the SMTP client (client.c): STARTTLS,
 * then AUTH with a password (SCRAM chosen when offered, PLAIN only over
 * TLS) or a TLS client certificate (a PEM file, or a raw Ed25519 seed for
 * which a certificate is made in memory).  Installed as (or linked to)
 * "sendmail", the binary behaves as `gannet sendmail` (core/main.c).
 *
 *   gannet sendmail [-t] [-i] [-oi] [-f FROM] [-F NAME] [-C FILE] [-v]
 *                   [ignored options] [--] [RCPT...]
 *
 * Options, as Postfix's sendmail(1) takes them (the ones mutt, cron, git
 * send-email and mail(1) pass):
 *   -t        recipients also from To, Cc and Bcc (added to the command
 *             line's, as Postfix does); Bcc is removed from the message
 *   -f ADDR   the envelope sender (-fADDR, and -r ADDR, its old name)
 *   -F NAME   the display name of an added From
 *   -i, -oi   a line with only "." does not end the message (without
 *             them it does, as in traditional sendmail)
 *   -C FILE   the config file (also $GANNET_SENDMAIL_CONF)
 *   -v        the SMTP session to standard error (secrets hidden)
 *   -bm       the default mode; other -b modes are refused
 *   ignored, as Postfix ignores them: -o* (-oem, -odi, -oee, ...), -B
 *             TYPE, -N DSN, -R RET, -V ENVID, -L LABEL, -h N, -X FILE,
 *             -G, -U, -m, -n, -e*, -A*
 *
 * The message: at most max_message_size octets (default 64 MiB).  When it
 * has no From, "From: [NAME] <from>" is added with the config's address
 * (as Postfix's cleanup does); nothing else: the submission server adds
 * Date and Message-ID.
 *
 * The config file, /etc/gannet/sendmail.conf: "key = value" lines, "#"
 * comments (docs in README):
 *   host (required), port (587), tls (starttls | none), tls_verify (yes |
 *   no: check the server's certificate for tls_name, default host),
 *   tls_ca (a PEM file of CAs), helo_name, from (required: the envelope
 *   sender and From's address), username, password, client_cert_pem (a
 *   PEM file with an unencrypted key and the certificate),
 *   client_ed25519_seed (base64url, as `gannet config tlspubkey gen`
 *   prints it), auth_mechanism (EXTERNAL, SCRAM-SHA-256, ...),
 *   default_domain (for recipients without one: "root" on cron), and
 *   max_message_size.
 * Exactly one of password, client_cert_pem, client_ed25519_seed.  A file
 * with a password or a seed that others can read is refused, as is a
 * key file that others can read.
 *
 * Exit codes (sysexits.h): 0 every recipient accepted; 64 usage; 65 bad
 * input (no recipient, too big, a bad address); 66 a file not found; 69 a
 * permanent refusal (5xx); 74 standard input unreadable; 75 a temporary
 * failure (4xx, no connection, a timeout: try again); 77 the login was
 * refused (535, or no usable AUTH: a wrong password does not get better
 * by retrying, unlike what a 75 would make a caller do); 78 a config
 * problem.  Every failure is said on standard error.
 */
#include "smtp/internal.h"
#include "auth/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SM_EX_USAGE 64
#define SM_EX_DATAERR 65
#define SM_EX_NOINPUT 66
#define SM_EX_UNAVAILABLE 69
#define SM_EX_SOFTWARE 70
#define SM_EX_IOERR 74
#define SM_EX_TEMPFAIL 75
#define SM_EX_NOPERM 77
#define SM_EX_CONFIG 78

#define SM_DEFAULT_CONF "/etc/gannet/sendmail.conf"
#define SM_CONF_MAX (64u * 1024u)
#define SM_LINE_MAX 4096u
#define SM_DEFAULT_MAX_MESSAGE (64ull * 1024 * 1024)
/* The largest max_message_size: 4 GiB, far above any submission server's. */
#define SM_MAX_MESSAGE_LIMIT (4ull * 1024 * 1024 * 1024)
#define SM_MAX_RCPTS 1000u
#define SM_MAX_HEADERS 10000u

struct sm_conf {
	char *host, *tls_name, *tls_ca, *helo, *from, *username, *password;
	char *cert_pem, *seed, *mech, *default_domain;
	unsigned port;
	bool tls, tls_verify;
	unsigned long long max_message;
};

struct sm {
	struct gn_pool *pool;
	struct sm_conf conf;
	const char *from;		/* the envelope sender */
	const char *full_name;		/* -F */
	char **rcpts;
	unsigned n_rcpts;
	bool extract, ignore_dots, verbose;
	struct gn_buf *msg;		/* the message as it goes out */
	unsigned flags;
	bool sent_chunk;
	struct gn_smtp_client *client;
	int status;			/* the exit code so far */
	unsigned accepted;
	bool done;
};

static void sm_err(const char *fmt, ...) GN_PRINTF(1, 2);
static void sm_err(const char *fmt, ...)
{
	va_list ap;
	fputs("gannet sendmail: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Keeps the worse exit code: 77 and 78 before 69, 69 before 75. */
static void sm_status(struct sm *m, int code)
{
	static const int order[] = { 0, SM_EX_TEMPFAIL, SM_EX_UNAVAILABLE, SM_EX_DATAERR,
				     SM_EX_NOPERM, SM_EX_CONFIG };
	int a = 0, b = 0;
	for (int i = 0; i < (int)(sizeof(order) / sizeof(order[0])); i++) {
		if (order[i] == m->status)
			a = i;
		if (order[i] == code)
			b = i;
	}
	if (b > a || m->status == 0)
		m->status = code;
}

/* ---- the config file ---- */

static bool yes_no(const char *v, bool *out)
{
	if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0) {
		*out = true;
		return true;
	}
	if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0) {
		*out = false;
		return true;
	}
	return false;
}

/* Reads the whole of a small file that must not be readable by others
 * when secret (checked on the open file).  NULL after saying why, with
 * *code_r. */
static char *read_small(struct gn_pool *pool, const char *path, size_t max, size_t *len_r,
			bool *others_r, int *code_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	char *buf;
	size_t got = 0;

	if (fd < 0) {
		sm_err("%s: %s", path, strerror(errno));
		*code_r = errno == ENOENT ? SM_EX_NOINPUT : SM_EX_CONFIG;
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		sm_err("%s: not a regular file of at most %zu octets", path, max);
		close(fd);
		*code_r = SM_EX_CONFIG;
		return NULL;
	}
	*others_r = (st.st_mode & S_IROTH) != 0;
	buf = gn_pool_alloc(pool, (size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			sm_err("%s: %s", path, r < 0 ? strerror(errno) : "shorter than it was");
			close(fd);
			*code_r = SM_EX_CONFIG;
			return NULL;
		}
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	*len_r = got;
	return buf;
}

static char *trim(char *s)
{
	char *e;
	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int conf_read(struct sm *m, const char *path)
{
	struct sm_conf *c = &m->conf;
	size_t len;
	bool others;
	int code = SM_EX_CONFIG;
	char *text = read_small(m->pool, path, SM_CONF_MAX, &len, &others, &code);
	unsigned lineno = 0;

	if (text == NULL)
		return code;
	c->port = 587;
	c->tls = true;
	c->tls_verify = true;
	c->max_message = SM_DEFAULT_MAX_MESSAGE;
	if (memchr(text, '\0', len) != NULL) {
		sm_err("%s: a NUL byte in the file", path);
		return SM_EX_CONFIG;
	}
	for (char *line = text, *next; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		char *l = trim(line);
		if (*l == '\0' || *l == '#')
			continue;
		char *eq = strchr(l, '=');
		if (eq == NULL) {
			sm_err("%s:%u: \"key = value\" expected", path, lineno);
			return SM_EX_CONFIG;
		}
		*eq = '\0';
		char *k = trim(l), *v = trim(eq + 1);
		size_t vl = strlen(v);
		if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
			v[vl - 1] = '\0';
			v++;
		}
		v = gn_pool_strdup(m->pool, v);
		char **str = NULL;
		if (strcmp(k, "host") == 0)
			str = &c->host;
		else if (strcmp(k, "tls_name") == 0)
			str = &c->tls_name;
		else if (strcmp(k, "tls_ca") == 0)
			str = &c->tls_ca;
		else if (strcmp(k, "helo_name") == 0)
			str = &c->helo;
		else if (strcmp(k, "from") == 0)
			str = &c->from;
		else if (strcmp(k, "username") == 0)
			str = &c->username;
		else if (strcmp(k, "password") == 0)
			str = &c->password;
		else if (strcmp(k, "client_cert_pem") == 0)
			str = &c->cert_pem;
		else if (strcmp(k, "client_ed25519_seed") == 0)
			str = &c->seed;
		else if (strcmp(k, "auth_mechanism") == 0)
			str = &c->mech;
		else if (strcmp(k, "default_domain") == 0)
			str = &c->default_domain;
		if (str != NULL) {
			*str = v;
			continue;
		}
		if (strcmp(k, "port") == 0 || strcmp(k, "max_message_size") == 0) {
			char *end;
			errno = 0;
			unsigned long long n = strtoull(v, &end, 10);
			if (*v == '\0' || *end != '\0' || errno != 0 || n == 0 ||
			    (k[0] == 'p' && n > 65535)) {
				sm_err("%s:%u: %s: a number expected", path, lineno, k);
				return SM_EX_CONFIG;
			}
			/* The message's buffer is this plus room for a From
			 * line: no wrap to 0, which gn_buf takes as no limit. */
			if (k[0] == 'm' && n > SM_MAX_MESSAGE_LIMIT) {
				sm_err("%s:%u: max_message_size: at most %llu", path, lineno,
				       (unsigned long long)SM_MAX_MESSAGE_LIMIT);
				return SM_EX_CONFIG;
			}
			if (k[0] == 'p')
				c->port = (unsigned)n;
			else
				c->max_message = n;
		} else if (strcmp(k, "tls") == 0) {
			if (strcmp(v, "starttls") == 0)
				c->tls = true;
			else if (strcmp(v, "none") == 0)
				c->tls = false;
			else {
				sm_err("%s:%u: tls is starttls or none", path, lineno);
				return SM_EX_CONFIG;
			}
		} else if (strcmp(k, "tls_verify") == 0) {
			if (!yes_no(v, &c->tls_verify)) {
				sm_err("%s:%u: tls_verify is yes or no", path, lineno);
				return SM_EX_CONFIG;
			}
		} else {
			sm_err("%s:%u: unknown key %s", path, lineno, k);
			return SM_EX_CONFIG;
		}
	}
	int secrets = (c->password != NULL) + (c->cert_pem != NULL) + (c->seed != NULL);
	if (c->host == NULL || c->from == NULL) {
		sm_err("%s: host and from are required", path);
		return SM_EX_CONFIG;
	}
	if (secrets != 1) {
		sm_err("%s: exactly one of password, client_cert_pem and client_ed25519_seed "
		       "is needed", path);
		return SM_EX_CONFIG;
	}
	if (c->password != NULL && c->username == NULL) {
		sm_err("%s: a password needs a username", path);
		return SM_EX_CONFIG;
	}
	/* The secret would be any local user's. */
	if (others && (c->password != NULL || c->seed != NULL)) {
		sm_err("%s: holds a secret and is readable by others: refused (chmod o-r)", path);
		return SM_EX_CONFIG;
	}
	if (!c->tls && (c->cert_pem != NULL || c->seed != NULL)) {
		sm_err("%s: a client certificate needs tls = starttls", path);
		return SM_EX_CONFIG;
	}
	return 0;
}

/* base64url (RFC 4648 5), padded or not, into exactly 32 octets. */
static int seed_decode(struct gn_pool *pool, const char *s, unsigned char seed[32])
{
	size_t n = strlen(s);
	char *t;
	unsigned char *out;
	long got;

	if (n > 64)
		return -1;
	t = gn_pool_alloc(pool, n + 4);
	for (size_t i = 0; i < n; i++)
		t[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	while (n % 4 != 0)
		t[n++] = '=';
	t[n] = '\0';
	got = b64_decode(pool, t, n, &out);
	gnutls_memset(t, 0, n);
	if (got != 32)
		return -1;
	memcpy(seed, out, 32);
	gnutls_memset(out, 0, 32);
	return 0;
}

/* ---- the message ---- */

/* Reads standard input: to the end, or (without -i) to a line with only
 * ".".  Returns 0, or an exit code after saying why. */
static int read_message(struct sm *m, struct gn_buf *in)
{
	char buf[65536];
	size_t n;

	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
		if (gn_buf_append(in, buf, n) < 0) {
			sm_err("the message is larger than max_message_size (%llu octets)",
			       m->conf.max_message);
			return SM_EX_DATAERR;
		}
	}
	if (ferror(stdin)) {
		sm_err("cannot read the message on standard input: %s", strerror(errno));
		return SM_EX_IOERR;
	}
	if (!m->ignore_dots) {
		/* Traditional sendmail: "." alone on a line ends the input. */
		const char *d = gn_buf_data(in);
		size_t len = gn_buf_len(in);
		for (size_t i = 0; i < len;) {
			const char *nl = memchr(d + i, '\n', len - i);
			size_t e = nl != NULL ? (size_t)(nl - d) : len;
			size_t l = e - i;
			if (l > 0 && d[i + l - 1] == '\r')
				l--;
			if (l == 1 && d[i] == '.') {
				gn_buf_truncate(in, i);
				break;
			}
			i = e + 1;
		}
	}
	return 0;
}

struct sm_header {
	const char *start;	/* of the whole field */
	size_t len;		/* with its line ends */
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

static bool hname_is(const struct sm_header *h, const char *want)
{
	return h->name_len == strlen(want) && strncasecmp(h->name, want, h->name_len) == 0;
}

/* Splits the header section (ends at the first empty line, or at the end
 * of the message) into fields; returns how many, or -1 when there are too
 * many; *body_r is where the header section ends (the empty line). */
static long split_headers(struct gn_pool *pool, const char *d, size_t len,
			  struct sm_header **hs_r, size_t *body_r)
{
	size_t cap = 64, n = 0, i = 0;
	struct sm_header *hs = gn_pool_alloc(pool, cap * sizeof(*hs));

	while (i < len) {
		const char *nl = memchr(d + i, '\n', len - i);
		size_t e = nl != NULL ? (size_t)(nl - d) + 1 : len;
		size_t l = e - i;
		if (l == 1 || (l == 2 && d[i] == '\r') || (l == 0))
			break;	/* the empty line */
		if ((d[i] == ' ' || d[i] == '\t') && n > 0) {
			/* A continuation line. */
			hs[n - 1].len += l;
			hs[n - 1].value_len += l;
			i = e;
			continue;
		}
		const char *colon = memchr(d + i, ':', l);
		if (colon == NULL)
			break;	/* not a header: the body starts (no empty line) */
		if (n == cap) {
			if (cap >= SM_MAX_HEADERS)
				return -1;
			struct sm_header *nh = gn_pool_alloc(pool, 2 * cap * sizeof(*hs));
			memcpy(nh, hs, n * sizeof(*hs));
			hs = nh;
			cap *= 2;
		}
		hs[n].start = d + i;
		hs[n].len = l;
		hs[n].name = d + i;
		hs[n].name_len = (size_t)(colon - (d + i));
		while (hs[n].name_len > 0 && (hs[n].name[hs[n].name_len - 1] == ' ' ||
					      hs[n].name[hs[n].name_len - 1] == '\t'))
			hs[n].name_len--;
		hs[n].value = colon + 1;
		hs[n].value_len = e - (size_t)(colon + 1 - d);
		n++;
		i = e;
	}
	*hs_r = hs;
	*body_r = i;
	return (long)n;
}

static int add_rcpt(struct sm *m, const char *addr)
{
	if (m->n_rcpts >= SM_MAX_RCPTS) {
		sm_err("more than %u recipients", SM_MAX_RCPTS);
		return SM_EX_DATAERR;
	}
	if (strchr(addr, '@') == NULL) {
		/* cron mails "root" or a user name. */
		if (m->conf.default_domain == NULL || addr[0] == '\0') {
			sm_err("recipient %s has no domain, and the config sets no "
			       "default_domain", addr[0] ? addr : "\"\"");
			return SM_EX_DATAERR;
		}
		addr = gn_pool_printf(m->pool, "%s@%s", addr, m->conf.default_domain);
	}
	for (const unsigned char *p = (const unsigned char *)addr; *p != '\0'; p++)
		if (*p <= ' ' || *p == '<' || *p == '>' || *p == 0x7f) {
			sm_err("bad recipient address %s", addr);
			return SM_EX_DATAERR;
		}
	for (unsigned i = 0; i < m->n_rcpts; i++)
		if (strcasecmp(m->rcpts[i], addr) == 0)
			return 0;
	m->rcpts[m->n_rcpts++] = gn_pool_strdup(m->pool, addr);
	return 0;
}

/* -t's recipients, Bcc's removal, an added From; then the flags. */
static int prepare_message(struct sm *m, struct gn_buf *in)
{
	const char *d = gn_buf_data(in);
	size_t len = gn_buf_len(in), body;
	struct sm_header *hs;
	long n = split_headers(m->pool, d, len, &hs, &body);
	bool has_from = false;
	int rc;

	if (n < 0) {
		sm_err("more than %u header fields", SM_MAX_HEADERS);
		return SM_EX_DATAERR;
	}
	for (long i = 0; i < n; i++) {
		if (hname_is(&hs[i], "From"))
			has_from = true;
		if (!m->extract || !(hname_is(&hs[i], "To") || hname_is(&hs[i], "Cc") ||
				     hname_is(&hs[i], "Bcc")))
			continue;
		struct gn_addr_list list;
		const char *error;
		if (gn_addr_parse_header(m->pool, hs[i].value, hs[i].value_len, &list,
					 &error) < 0) {
			sm_err("%.*s: %s", (int)hs[i].name_len, hs[i].name, error);
			return SM_EX_DATAERR;
		}
		for (size_t k = 0; k < list.count; k++) {
			const struct gn_addr_item *it = list.items[k];
			if (it->kind != GN_ADDR_MAILBOX || it->addr == NULL)
				continue;
			if ((rc = add_rcpt(m, gn_addr_to_string(m->pool, it->addr))) != 0)
				return rc;
		}
	}
	/* The message as it goes out. */
	struct gn_buf *out = gn_buf_new(m->conf.max_message + 4096);
	if (!has_from) {
		/* RFC 5322 3.6.2: From is required; the address is the
		 * config's (the account's), as Postfix's cleanup adds one. */
		if (m->full_name != NULL && m->full_name[0] != '\0') {
			(void)gn_buf_append_str(out, "From: \"");
			for (const char *p = m->full_name; *p != '\0'; p++) {
				if (*p == '"' || *p == '\\')
					(void)gn_buf_append(out, "\\", 1);
				if ((unsigned char)*p >= ' ' || *p == '\t')
					(void)gn_buf_append(out, p, 1);
			}
			(void)gn_buf_printf(out, "\" <%s>\n", m->conf.from);
		} else {
			(void)gn_buf_printf(out, "From: <%s>\n", m->conf.from);
		}
	}
	size_t at = 0;
	for (long i = 0; i < n; i++) {
		/* RFC 5322 3.6.3: Bcc is not given to the recipients. */
		if (hname_is(&hs[i], "Bcc")) {
			size_t s = (size_t)(hs[i].start - d);
			(void)gn_buf_append(out, d + at, s - at);
			at = s + hs[i].len;
		}
	}
	if (gn_buf_append(out, d + at, len - at) < 0) {
		gn_buf_free(&out);
		sm_err("the message is too large");
		return SM_EX_DATAERR;
	}
	(void)body;
	m->msg = out;
	/* What the message needs from the server (as `smtp send`). */
	d = gn_buf_data(out);
	len = gn_buf_len(out);
	bool header = true;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)d[i];
		if (ch == '\n' && header && i + 1 < len &&
		    (d[i + 1] == '\n' || (d[i + 1] == '\r' && i + 2 < len && d[i + 2] == '\n')))
			header = false;
		if (ch >= 0x80)
			m->flags |= header ? GN_SMTP_SEND_SMTPUTF8 : GN_SMTP_SEND_8BITMIME;
	}
	return 0;
}

/* ---- the session ---- */

static int msg_read(void *data, const char **chunk_r, size_t *len_r, const char **error_r)
{
	struct sm *m = data;
	(void)error_r;
	if (m->sent_chunk)
		return 0;
	m->sent_chunk = true;
	*chunk_r = gn_buf_data(m->msg);
	*len_r = gn_buf_len(m->msg);
	return 1;
}

static void say_result(const char *what, const struct gn_smtp_result *r)
{
	sm_err("%s: %s%d%s%s %s", what, r->local ? "(local) " : "", r->code,
	       r->enhanced[0] ? " " : "", r->enhanced, r->text != NULL ? r->text : "");
}

static int result_status(const struct gn_smtp_result *r)
{
	if (r->phase == GN_SMTP_PHASE_AUTH && (r->code >= 500 || (r->local && r->permanent)))
		return SM_EX_NOPERM;
	if (r->code >= 500 || (r->local && r->permanent))
		return SM_EX_UNAVAILABLE;
	return SM_EX_TEMPFAIL;
}

static void on_ready(struct gn_smtp_client *client, const struct gn_smtp_result *failure,
		     void *data)
{
	struct sm *m = data;
	const char *error;

	if (failure != NULL) {
		char *what = gn_pool_printf(m->pool, "%s failed", gn_smtp_phase_name(failure->phase));
		if (failure->phase == GN_SMTP_PHASE_AUTH)
			what = failure->code == 535 || failure->code == 0
			       ? "authentication failed" : "AUTH failed";
		say_result(what, failure);
		sm_status(m, result_status(failure));
		return;
	}
	if (m->verbose)
		sm_err("session with %s port %u, tls %s", gn_smtp_client_remote_ip(client),
		       gn_smtp_client_remote_port(client),
		       gn_smtp_client_is_tls(client) ? gn_smtp_client_tls_version(client) : "none");
	if (gn_smtp_client_send(client, m->from, (const char *const *)m->rcpts, m->n_rcpts,
				gn_buf_len(m->msg), m->flags, msg_read, m, &error) < 0) {
		sm_err("%s", error);
		sm_status(m, SM_EX_DATAERR);
		gn_smtp_client_quit(client);
	}
}

static void on_rcpt(struct gn_smtp_client *client, unsigned index,
		    const struct gn_smtp_result *r, void *data)
{
	struct sm *m = data;
	(void)client;
	if (r->code / 100 == 2)
		return;
	say_result(gn_pool_printf(m->pool, "recipient %s", m->rcpts[index]), r);
	sm_status(m, result_status(r));
}

static void on_sent(struct gn_smtp_client *client, const struct gn_smtp_result *r,
		    void *data)
{
	struct sm *m = data;
	if (r->code / 100 != 2) {
		say_result(gn_pool_printf(m->pool, "the message was not accepted (%s)",
					  gn_smtp_phase_name(r->phase)), r);
		sm_status(m, result_status(r));
	} else {
		m->accepted = 1;
		if (m->verbose)
			sm_err("accepted: %d %s %s", r->code, r->enhanced, r->text);
	}
	gn_smtp_client_quit(client);
}

static void on_closed(struct gn_smtp_client *client, void *data)
{
	struct sm *m = data;
	(void)client;
	if (!m->accepted && m->status == 0) {
		sm_err("the connection closed before the message was accepted");
		m->status = SM_EX_TEMPFAIL;
	}
	m->done = true;
	ev_break(core_loop, EVBREAK_ALL);
}

static void on_trace(struct gn_smtp_client *client, bool sent, const char *line,
		     size_t len, void *data)
{
	struct sm *m = data;
	(void)client;
	if (m->verbose)
		fprintf(stderr, "%s %.*s\n", sent ? "C:" : "S:", (int)len, line);
}

/* The server's addresses (a name through the system's resolver). */
static int add_addresses(struct sm *m)
{
	struct addrinfo hints, *res = NULL;
	const char *error;
	int n = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(m->conf.host, NULL, &hints, &res) != 0 || res == NULL) {
		sm_err("cannot resolve %s", m->conf.host);
		return SM_EX_TEMPFAIL;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		char ip[INET6_ADDRSTRLEN];
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, sizeof(ip), NULL, 0,
				NI_NUMERICHOST) == 0 &&
		    gn_smtp_client_add_address(m->client, ip, m->conf.port, &error) == 0)
			n++;
	}
	freeaddrinfo(res);
	if (n == 0) {
		sm_err("no address for %s", m->conf.host);
		return SM_EX_TEMPFAIL;
	}
	return 0;
}

/* ---- options ---- */

/* An option's value: the rest of the word, or the next word. */
static const char *opt_value(int argc, char **argv, int *i)
{
	if (argv[*i][2] != '\0')
		return argv[*i] + 2;
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

static int parse_args(struct sm *m, int argc, char **argv, const char **conf_r)
{
	int i;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		switch (a[1]) {
		case 't':
		case 'i':
		case 'v':
			/* Flags may come together ("-ti"). */
			for (const char *p = a + 1; *p != '\0'; p++) {
				if (*p == 't')
					m->extract = true;
				else if (*p == 'i')
					m->ignore_dots = true;
				else if (*p == 'v')
					m->verbose = true;
				else {
					sm_err("unknown option -%c", *p);
					return SM_EX_USAGE;
				}
			}
			break;
		case 'f':
		case 'r':
		case 'F':
		case 'C':
		case 'B':
		case 'N':
		case 'R':
		case 'V':
		case 'L':
		case 'h':
		case 'X':
			if ((v = opt_value(argc, argv, &i)) == NULL) {
				sm_err("option -%c needs a value", a[1]);
				return SM_EX_USAGE;
			}
			if (a[1] == 'f' || a[1] == 'r')
				m->from = v;
			else if (a[1] == 'F')
				m->full_name = v;
			else if (a[1] == 'C')
				*conf_r = v;
			break;
		case 'o':
			/* -oi as -i; every other -o is ignored, as Postfix
			 * ignores most (-oem, -odi, -oee, -om, ...). */
			if (strcmp(a, "-oi") == 0)
				m->ignore_dots = true;
			break;
		case 'b':
			if (strcmp(a, "-bm") != 0) {
				sm_err("mode %s is not supported: gannet sendmail only submits "
				       "(-bm)", a);
				return SM_EX_USAGE;
			}
			break;
		case 'G':
		case 'U':
		case 'm':
		case 'n':
		case 'e':
		case 'A':
			break;	/* ignored */
		default:
			sm_err("unknown option %s", a);
			return SM_EX_USAGE;
		}
	}
	return -i;
}

int smtp_cli_sendmail(int argc, char **argv, void *data)
{
	struct sm *m = gn_calloc(1, sizeof(*m));
	struct gn_tls_identity *id = NULL;
	struct gn_buf *in = NULL;
	const char *conf = getenv("GANNET_SENDMAIL_CONF"), *error;
	int rc, first;
	(void)data;

	m->pool = gn_pool_new();
	m->rcpts = gn_pool_alloc(m->pool, SM_MAX_RCPTS * sizeof(char *));
	if (conf == NULL || conf[0] == '\0')
		conf = SM_DEFAULT_CONF;
	rc = parse_args(m, argc, argv, &conf);
	if (rc > 0)
		goto out;
	first = -rc;
	if ((rc = conf_read(m, conf)) != 0)
		goto out;
	for (int i = first; i < argc; i++)
		if ((rc = add_rcpt(m, argv[i])) != 0)
			goto out;
	if (m->from == NULL)
		m->from = m->conf.from;
	if (m->from[0] == '<' && m->from[strlen(m->from) - 1] == '>')
		/* "-f <>": the null sender; "-f <a@b>": a@b. */
		m->from = gn_pool_strndup(m->pool, m->from + 1, strlen(m->from) - 2);
	in = gn_buf_new(m->conf.max_message);
	if ((rc = read_message(m, in)) != 0 || (rc = prepare_message(m, in)) != 0)
		goto out;
	gn_buf_free(&in);
	if (m->n_rcpts == 0) {
		sm_err("no recipients%s", m->extract ? "" : " (-t takes them from the message)");
		rc = SM_EX_DATAERR;
		goto out;
	}

	/* The client certificate, checked before anything is sent. */
	rc = SM_EX_CONFIG;
	if (m->conf.tls_ca != NULL && gn_conn_tls_client_trust(m->conf.tls_ca, &error) < 0) {
		sm_err("%s", error);
		goto out;
	}
	if (m->conf.cert_pem != NULL) {
		size_t len;
		bool others;
		int code = SM_EX_CONFIG;
		char *pem = read_small(m->pool, m->conf.cert_pem, 1024 * 1024, &len, &others,
				       &code);
		if (pem == NULL) {
			rc = code;
			goto out;
		}
		if (others) {
			sm_err("%s: a private key readable by others: refused (chmod o-r)",
			       m->conf.cert_pem);
			gnutls_memset(pem, 0, len);
			goto out;
		}
		int r = gn_conn_tls_identity_pem(pem, len, &id, &error);
		gnutls_memset(pem, 0, len);
		if (r < 0) {
			sm_err("%s: %s", m->conf.cert_pem, error);
			goto out;
		}
	} else if (m->conf.seed != NULL) {
		unsigned char seed[32];
		if (seed_decode(m->pool, m->conf.seed, seed) < 0) {
			sm_err("%s: client_ed25519_seed is not 32 octets in base64url", conf);
			goto out;
		}
		int r = gn_conn_tls_identity_ed25519(seed, sizeof(seed), &id, &error);
		gnutls_memset(seed, 0, sizeof(seed));
		gnutls_memset(m->conf.seed, 0, strlen(m->conf.seed));
		if (r < 0) {
			sm_err("client_ed25519_seed: %s", error);
			goto out;
		}
	}

	struct gn_smtp_client_settings set;
	struct gn_smtp_client_handler h = {
		.size = sizeof(h), .ready = on_ready, .rcpt = on_rcpt, .sent = on_sent,
		.closed = on_closed, .trace = on_trace,
	};
	gn_smtp_client_settings_init(&set);
	set.helo_name = m->conf.helo;
	if (set.helo_name == NULL) {
		/* The local host name, for the submission server's Received. */
		static char host[256];
		if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
			snprintf(host, sizeof(host), "localhost");
		set.helo_name = host;
	}
	set.tls = m->conf.tls ? GN_SMTP_TLS_REQUIRE : GN_SMTP_TLS_NONE;
	set.tls_name = m->conf.tls_name != NULL ? m->conf.tls_name : m->conf.host;
	set.tls_verify = m->conf.tls && m->conf.tls_verify;
	set.auth_user = m->conf.username;
	set.auth_password = m->conf.password;
	set.auth_mechanism = m->conf.mech;
	/* EXTERNAL's authorization identity: the login, when given. */
	set.auth_authzid = id != NULL ? m->conf.username : NULL;
	set.tls_identity = id;
	loop_init();
	m->client = gn_smtp_client_new(&set, &h, m, &error);
	if (m->client == NULL) {
		sm_err("%s", error);
		goto out;
	}
	if ((rc = add_addresses(m)) != 0)
		goto out;
	if (gn_smtp_client_connect(m->client, &error) < 0) {
		sm_err("%s", error);
		rc = SM_EX_SOFTWARE;
		goto out;
	}
	ev_run(core_loop, 0);
	rc = m->done ? m->status : SM_EX_SOFTWARE;
out:
	gn_smtp_client_free(&m->client);
	conns_close_all("exit");
	gn_conn_tls_identity_free(&id);
	tls_client_deinit();
	if (m->conf.password != NULL)
		gnutls_memset(m->conf.password, 0, strlen(m->conf.password));
	gn_buf_free(&in);
	gn_buf_free(&m->msg);
	gn_pool_free(&m->pool);
	gn_free(m);
	return rc;
}
