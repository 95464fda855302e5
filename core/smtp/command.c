/*
 * core/smtp/command.c: command lines (gannet/smtp.h).
 *
 *   smtp_line_input()  takes one line from the input: a command line, or a
 *                      continuation line for an added command (ST_MORE).
 *   command()          the verb: the engine's own command table first, then
 *                      the commands users added (extension.c); checks the
 *                      line length, the state and the arguments.
 *   cmd_mail(),        the paths (core/mail/addr.c) and their parameters:
 *   cmd_rcpt()         the engine's (SIZE, BODY, SMTPUTF8) and those users
 *                      added, all parsed by RFC 5321 4.1.2's rules here.
 *
 * Deliberate choices, with the standards they follow:
 *
 *   - Command lines: at most max_line_length octets with CRLF (RFC 5321
 *     4.5.3.1.4, 512; an added command may take more: AUTH 12288); a longer
 *     line is read to its end and answered 500 5.5.2.  A command line may
 *     end in a bare LF (lenient: nothing can be smuggled through a command
 *     line, and hand-typed sessions work).
 *   - An HTTP request line (GET, POST, CONNECT, ...) ends the session at
 *     once, as Postfix's smtpd_forbidden_commands does: a browser made to
 *     POST to port 25 must not be able to carry an SMTP transaction in its
 *     body, line after line.
 *   - MAIL FROM takes localparts longer than 64 octets (SRS and VERP
 *     return paths are; RFC 5321 4.5.3.1 asks servers not to enforce the
 *     limit where they can avoid it); RCPT TO keeps the limit, since a
 *     recipient here is one of ours.
 */
#include "smtp/internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#define CMD_NOARGS 0x1u	/* takes no parameters */
#define CMD_ARGS 0x2u	/* requires a parameter */

struct smtp_cmd {
	const char *verb;
	unsigned states;	/* SB(...) bits the command is valid in */
	unsigned flags;
	void (*fn)(struct gn_smtp_session *s, char *args);
};

/* Case-insensitive prefix match of an ASCII keyword. */
static bool has_prefix(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- HELO, EHLO ---- */

static void helo_common(struct gn_smtp_session *s, char *args, bool ehlo)
{
	size_t len = strlen(args);

	/* RFC 5321 4.1.1.1: a domain or an address literal.  Checked
	 * leniently (4.1.4: a server must not refuse mail because the name
	 * does not verify): one word of printable characters.  What reaches
	 * a header is made safe there (gn_smtp_session_received()). */
	while (len > 0 && args[len - 1] == ' ')
		args[--len] = '\0';
	if (len == 0 || len > 255 || strchr(args, ' ') != NULL) {
		smtp_reply(s, 501, "5.5.4", "Syntax: %s domain", ehlo ? "EHLO" : "HELO");
		return;
	}
	/* RFC 5321 4.1.4: EHLO in a transaction is a RSET too. */
	smtp_tx_end(s, true);
	if (s->state != ST_INIT)
		smtp_set_state(s, smtp_idle_state(s));
	gn_free(s->helo_pending);
	s->helo_pending = gn_strdup(args);
	s->helo_pending_ehlo = ehlo;
	smtp_policy_call(s, GN_SMTP_STAGE_HELO);
}

static void cmd_helo(struct gn_smtp_session *s, char *args)
{
	helo_common(s, args, false);
}

static void cmd_ehlo(struct gn_smtp_session *s, char *args)
{
	helo_common(s, args, true);
}

/* ---- parameters (RFC 5321 4.1.2 Mail-parameters, Rcpt-parameters) ---- */

struct param {
	char *key;
	char *value;	/* NULL when there is none */
};

/* Splits "KEY[=VALUE]" parameters at single or repeated spaces.  Returns
 * their number, max + 1 when there are more. */
static size_t params_split(char *p, struct param *out, size_t max)
{
	size_t n = 0;

	while (*p != '\0') {
		char *start, *eq;
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ' ')
			p++;
		if (*p == ' ')
			*p++ = '\0';
		if (n == max)
			return max + 1;
		eq = strchr(start, '=');
		if (eq != NULL)
			*eq = '\0';
		out[n].key = start;
		out[n].value = eq != NULL ? eq + 1 : NULL;
		n++;
	}
	return n;
}

/* esmtp-value = 1*(%d33-60 / %d62-126), and UTF-8 after SMTPUTF8 (RFC 6531
 * 3.3). */
static bool value_valid(const char *v, bool utf8)
{
	bool high = false;

	if (*v == '\0')
		return false;
	for (const char *p = v; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x80)
			high = true;
		else if (c < 33 || c > 126 || c == '=')
			return false;
	}
	return !high || (utf8 && u8_check((const uint8_t *)v, strlen(v)) == NULL);
}

/* RFC 3461 4: xtext, "+" and two hex digits for an octet.  The decoded
 * value from pool, or NULL when it is no xtext or would hold a control
 * character (none of the values carried so, addresses and ids, has one;
 * a policy should not meet one in a value it logs). */
static char *xtext_decode(struct gn_pool *pool, const char *v)
{
	size_t len = strlen(v), n = 0;
	char *out = gn_pool_alloc(pool, len + 1);

	for (size_t i = 0; i < len; i++) {
		if (v[i] != '+') {
			out[n++] = v[i];
			continue;
		}
		if (i + 2 >= len || hex_digit(v[i + 1]) < 0 || hex_digit(v[i + 2]) < 0)
			return NULL;
		out[n] = (char)(hex_digit(v[i + 1]) * 16 + hex_digit(v[i + 2]));
		if ((unsigned char)out[n] < 0x20 || out[n] == 0x7f)
			return NULL;
		n++;
		i += 2;
	}
	out[n] = '\0';
	return out;
}

/* MAIL's own parameters (RFC 1870, RFC 6152, RFC 6531). */
struct mail_params {
	bool have_size, have_body, smtputf8;
	unsigned long long size;
	enum gn_smtp_body body;
};

static bool all_digits(const char *v)
{
	if (v == NULL || *v == '\0')
		return false;
	for (; *v; v++)
		if (!isdigit((unsigned char)*v))
			return false;
	return true;
}

/* One of the engine's MAIL parameters: 1 taken, 0 not one of them, -1
 * refused (replied). */
static int mail_builtin(struct gn_smtp_session *s, const char *k, const char *v,
			struct mail_params *mp)
{
	if (strcasecmp(k, "SIZE") == 0) {
		/* RFC 1870 6. */
		if (mp->have_size || !all_digits(v) || strlen(v) > 19) {
			smtp_reply(s, 501, "5.5.4", "Bad or repeated SIZE parameter");
			return -1;
		}
		mp->size = strtoull(v, NULL, 10);
		mp->have_size = true;
		return 1;
	}
	if (strcasecmp(k, "BODY") == 0) {
		/* RFC 6152 2. */
		if (mp->have_body) {
			smtp_reply(s, 501, "5.5.4", "Bad or repeated BODY parameter");
			return -1;
		}
		if (v != NULL && strcasecmp(v, "7BIT") == 0) {
			mp->body = GN_SMTP_BODY_7BIT;
		} else if (v != NULL && strcasecmp(v, "8BITMIME") == 0) {
			mp->body = GN_SMTP_BODY_8BITMIME;
		} else {
			smtp_reply(s, 501, "5.5.4", "Unsupported BODY type");
			return -1;
		}
		mp->have_body = true;
		return 1;
	}
	if (strcasecmp(k, "SMTPUTF8") == 0 && s->srv->set.smtputf8) {
		/* RFC 6531 3.4. */
		if (v != NULL || mp->smtputf8) {
			smtp_reply(s, 501, "5.5.4", "Bad or repeated SMTPUTF8 parameter");
			return -1;
		}
		mp->smtputf8 = true;
		return 1;
	}
	return 0;
}

/* One added parameter: appends its value to vals.  0, or -1 refused
 * (replied). */
static int param_added(struct gn_smtp_session *s, struct gn_pool *pool,
		       const struct smtp_param *def, const char *v,
		       struct smtp_pval *vals, size_t *n_vals)
{
	struct gn_hook_reply rp;
	const char *value = v;

	if (smtp_pval_find(vals, *n_vals, def->keyword, NULL) > 0) {
		smtp_reply(s, 501, "5.5.4", "Repeated %s parameter", def->keyword);
		return -1;
	}
	if ((def->flags & GN_SMTP_PARAM_VALUE) && v == NULL) {
		smtp_reply(s, 501, "5.5.4", "%s needs a value", def->keyword);
		return -1;
	}
	if ((def->flags & GN_SMTP_PARAM_NO_VALUE) && v != NULL) {
		smtp_reply(s, 501, "5.5.4", "%s takes no value", def->keyword);
		return -1;
	}
	if (v != NULL && strlen(v) > def->max_length) {
		smtp_reply(s, 501, "5.5.4", "%s value too long", def->keyword);
		return -1;
	}
	if (v != NULL && (def->flags & GN_SMTP_PARAM_XTEXT)) {
		value = xtext_decode(pool, v);
		if (value == NULL) {
			smtp_reply(s, 501, "5.5.4", "Bad xtext in %s", def->keyword);
			return -1;
		}
	} else if (v != NULL) {
		value = gn_pool_strdup(pool, v);
	}
	memset(&rp, 0, sizeof(rp));
	if (def->check != NULL && def->check(s, value, &rp, def->data) < 0) {
		/* The check's reply, made to fit (found by t/fuzz/fuzz_smtp: an
		 * enhanced code of another class went out as given). */
		int code = rp.code >= 400 && rp.code <= 599 && rp.code != 421 ? rp.code : 501;
		const char *enh = smtp_enh_valid(rp.enhanced, code) ? rp.enhanced :
				  code < 500 ? "4.5.4" : "5.5.4";
		smtp_reply(s, code, enh, "%s", rp.text != NULL ? rp.text : "Bad parameter value");
		return -1;
	}
	vals[*n_vals].keyword = def->keyword;
	vals[*n_vals].value = value;
	(*n_vals)++;
	return 0;
}

/* The parameters of MAIL (mp not NULL) or RCPT after the path: syntax,
 * the engine's, the added ones (555 5.5.4 for the rest, RFC 5321
 * 4.1.1.11).  Values of added parameters from pool into *vals_r.  0, or -1
 * refused (replied). */
static int params_parse(struct gn_smtp_session *s, enum gn_smtp_param_cmd cmd,
			char *p, bool utf8, struct gn_pool *pool, struct mail_params *mp,
			struct smtp_pval **vals_r, size_t *n_vals_r)
{
	struct param params[SMTP_MAX_PARAMS];
	struct smtp_pval *vals = NULL;
	size_t n = params_split(p, params, SMTP_MAX_PARAMS), n_vals = 0;

	if (n > SMTP_MAX_PARAMS) {
		smtp_reply(s, 501, "5.5.4", "Too many parameters");
		return -1;
	}
	if (n > 0 && !s->ehlo) {
		/* Parameters are service extensions: EHLO only. */
		smtp_reply(s, 555, "5.5.4", "%s parameters need EHLO",
			   cmd == GN_SMTP_PARAM_MAIL ? "MAIL" : "RCPT");
		return -1;
	}
	if (mp != NULL) {
		/* RFC 6531 3.3: UTF-8 values only with SMTPUTF8, wherever it
		 * stands among them. */
		for (size_t i = 0; i < n; i++)
			if (strcasecmp(params[i].key, "SMTPUTF8") == 0 && s->srv->set.smtputf8)
				utf8 = true;
	}
	if (n > 0)
		vals = gn_pool_alloc(pool, n * sizeof(*vals));
	for (size_t i = 0; i < n; i++) {
		const char *k = params[i].key, *v = params[i].value;
		const struct smtp_param *def;
		int r;

		if (!smtp_esmtp_keyword_valid(k, 64) || (v != NULL && !value_valid(v, utf8))) {
			smtp_reply(s, 501, "5.5.4", "Bad parameter syntax");
			return -1;
		}
		if (mp != NULL && (r = mail_builtin(s, k, v, mp)) != 0) {
			if (r < 0)
				return -1;
			continue;
		}
		def = smtp_ext_param_find(s->srv, cmd, k);
		if (def == NULL || !smtp_ext_offered(s, def->ext)) {
			smtp_reply(s, 555, "5.5.4", "Unsupported parameter");
			return -1;
		}
		if (param_added(s, pool, def, v, vals, &n_vals) < 0)
			return -1;
	}
	*vals_r = vals;
	*n_vals_r = n_vals;
	return 0;
}

/* ---- MAIL, RCPT ---- */

static void cmd_mail(struct gn_smtp_session *s, char *args)
{
	const struct gn_smtp_settings *set = &s->srv->set;
	struct gn_smtp_tx *tx;
	struct gn_addr *addr = NULL;
	struct mail_params mp;
	size_t used = 0;
	const char *err = NULL;
	char *path;

	if (!has_prefix(args, "FROM:")) {
		smtp_reply(s, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
		return;
	}
	path = args + 5;
	/* Lenient: "MAIL FROM: <a@b>" (a space RFC 5321 does not allow,
	 * sent by many clients). */
	while (*path == ' ')
		path++;
	tx = smtp_tx_new(s);
	if (gn_addr_parse_path(tx->pool, path, strlen(path), GN_ADDR_PATH_NULL |
			       GN_ADDR_PATH_LONG_LOCALPART, &addr, &used, &err) < 0) {
		/* The reply first: err may live in the transaction's pool. */
		smtp_reply(s, 501, "5.1.7", "Bad sender address syntax: %s", err);
		smtp_tx_free(&tx);
		return;
	}
	if (path[used] != '\0' && path[used] != ' ') {
		smtp_tx_free(&tx);
		smtp_reply(s, 501, "5.1.7", "Bad sender address syntax");
		return;
	}
	memset(&mp, 0, sizeof(mp));
	if (params_parse(s, GN_SMTP_PARAM_MAIL, path + used, false, tx->pool, &mp,
			 &tx->params, &tx->n_params) < 0) {
		smtp_tx_free(&tx);
		return;
	}
	if (!mp.smtputf8) {
		/* RFC 6531 3.4/3.5: without SMTPUTF8 the path must be ASCII. */
		struct gn_addr *a2 = NULL;
		if (gn_addr_parse_path(tx->pool, path, used, GN_ADDR_PATH_NULL |
				       GN_ADDR_PATH_LONG_LOCALPART | GN_ADDR_PATH_ASCII,
				       &a2, NULL, &err) < 0) {
			smtp_tx_free(&tx);
			smtp_reply(s, 553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
			return;
		}
	}
	if (mp.have_size && mp.size > set->max_message_size) {
		/* RFC 1870 6.1. */
		smtp_tx_free(&tx);
		smtp_reply(s, 552, "5.3.4", "Message size exceeds fixed maximum message size");
		return;
	}
	tx->from = addr;
	tx->smtputf8 = mp.smtputf8;
	tx->body = mp.body;
	tx->declared_size = mp.size;
	s->tx = tx;
	gn_log(GN_LOG_DEBUG, smtp_area(s), "event=smtp_mail id=%s tx=%s from=%s",
	       gn_conn_id(s->conn), tx->id,
	       gn_log_quote(0, addr != NULL ? gn_addr_to_string(tx->pool, addr) : "<>"));
	smtp_policy_call(s, GN_SMTP_STAGE_MAIL);
}

static void cmd_rcpt(struct gn_smtp_session *s, char *args)
{
	struct gn_smtp_tx *tx = s->tx;
	struct gn_addr *addr = NULL;
	struct gn_smtp_rcpt *rcpt;
	size_t used = 0;
	const char *err = NULL;
	char *path;
	unsigned flags = GN_ADDR_PATH_POSTMASTER;
	int r;

	if (!has_prefix(args, "TO:")) {
		smtp_reply(s, 501, "5.5.4", "Syntax: RCPT TO:<address>");
		return;
	}
	path = args + 3;
	while (*path == ' ')
		path++;
	if (!tx->smtputf8)
		flags |= GN_ADDR_PATH_ASCII;
	r = gn_addr_parse_path(tx->pool, path, strlen(path), flags, &addr, &used, &err);
	if (r < 0) {
		struct gn_addr *a2 = NULL;
		if (!tx->smtputf8 &&
		    gn_addr_parse_path(tx->pool, path, strlen(path), GN_ADDR_PATH_POSTMASTER,
				       &a2, NULL, &err) >= 0)
			smtp_reply(s, 553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
		else
			smtp_reply(s, 501, "5.1.3", "Bad recipient address syntax: %s", err);
		return;
	}
	if (path[used] != '\0' && path[used] != ' ') {
		smtp_reply(s, 501, "5.1.3", "Bad recipient address syntax");
		return;
	}
	rcpt = gn_pool_alloc(tx->pool, sizeof(*rcpt));
	memset(rcpt, 0, sizeof(*rcpt));
	rcpt->addr = addr;
	if (params_parse(s, GN_SMTP_PARAM_RCPT, path + used, tx->smtputf8, tx->pool, NULL,
			 &rcpt->params, &rcpt->n_params) < 0)
		return;
	if (tx->n_rcpts >= s->srv->set.max_recipients) {
		/* RFC 5321 4.5.3.1.10: 452, the client sends the rest in a
		 * later transaction. */
		smtp_reply(s, 452, "4.5.3", "Too many recipients");
		return;
	}
	s->rcpt_pending = rcpt;
	gn_log(GN_LOG_DEBUG, smtp_area(s), "event=smtp_rcpt id=%s tx=%s to=%s",
	       gn_conn_id(s->conn), tx->id, gn_log_quote(0, gn_addr_to_string(tx->pool, addr)));
	smtp_policy_call(s, GN_SMTP_STAGE_RCPT);
}

/* ---- DATA, BDAT ---- */

static void cmd_data(struct gn_smtp_session *s, char *args)
{
	(void)args;
	if (s->state == ST_MAIL) {
		/* RFC 5321 3.3: DATA without a valid recipient. */
		smtp_reply(s, 554, "5.5.1", "No valid recipients");
		return;
	}
	smtp_policy_call(s, GN_SMTP_STAGE_DATA_BEGIN);
}

/* "chunk-size [ LAST ]" (RFC 3030 2): 0 and the size, or -1. */
static int bdat_args(const char *p, unsigned long long *n_r, bool *last_r)
{
	char *end;

	*last_r = false;
	if (!isdigit((unsigned char)*p) || strlen(p) > 64)
		return -1;
	errno = 0;
	*n_r = strtoull(p, &end, 10);
	if (errno != 0)
		return -1;
	p = end;
	if (*p == '\0')
		return 0;
	if (*p != ' ')
		return -1;
	while (*p == ' ')
		p++;
	if (strcasecmp(p, "LAST") == 0)
		*last_r = true;
	else if (*p != '\0')
		return -1;
	return 0;
}

static void cmd_bdat(struct gn_smtp_session *s, char *args)
{
	const struct gn_smtp_settings *set = &s->srv->set;
	unsigned long long n = 0;
	bool last = false;

	if (!set->chunking || !s->ehlo) {
		/* Not offered: whether octets follow is unknown. */
		smtp_reply(s, 502, "5.5.1", "Command not implemented");
		return;
	}
	if (bdat_args(args, &n, &last) < 0) {
		smtp_reply(s, 501, "5.5.4", "Syntax: BDAT chunk-size [LAST]");
		smtp_reply_close(s, "4.7.0", "Cannot find the end of the chunk, closing "
				 "connection", "bad BDAT");
		return;
	}
	if (n > set->max_message_size) {
		smtp_reply(s, 552, "5.3.4", "Chunk exceeds the maximum message size");
		smtp_reply_close(s, "4.7.0", "Closing connection", "BDAT chunk too big");
		return;
	}
	s->chunk_size = n;
	s->chunk_left = n;
	s->chunk_last = last;
	s->chunk_discard = false;
	if (s->state != ST_RCPT && s->state != ST_BDAT) {
		const char *text = s->state == ST_MAIL ? "No valid recipients" :
				   s->state == ST_INIT || s->state == ST_HELO ?
				   "MAIL first" : "Bad sequence of commands";
		smtp_chunk_discard(s, s->state == ST_MAIL ? 554 : 503, "5.5.1", text,
				   s->state, false);
		return;
	}
	if (s->state == ST_RCPT) {
		s->tx->bdat = true;
		s->last_cr = false;
		smtp_policy_call(s, GN_SMTP_STAGE_DATA_BEGIN);
		return;
	}
	smtp_chunk_start(s);
}

/* ---- the others ---- */

static void cmd_rset(struct gn_smtp_session *s, char *args)
{
	(void)args;
	smtp_tx_end(s, true);
	smtp_set_state(s, smtp_idle_state(s));
	smtp_reply(s, 250, "2.0.0", "OK");
}

static void cmd_noop(struct gn_smtp_session *s, char *args)
{
	(void)args;
	smtp_reply(s, 250, "2.0.0", "OK");
}

static void cmd_quit(struct gn_smtp_session *s, char *args)
{
	(void)args;
	smtp_tx_end(s, true);
	smtp_reply_bye(s, 221, "2.0.0", "Bye", "quit");
}

static void cmd_help(struct gn_smtp_session *s, char *args)
{
	struct gn_buf *b = gn_buf_new(0);
	char *text;
	(void)args;

	gn_buf_append_str(b, "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT "
			  "HELP VRFY EXPN STARTTLS");
	for (size_t i = 0; i < s->srv->n_commands; i++)
		if (smtp_ext_offered(s, s->srv->commands[i].ext))
			gn_buf_printf(b, " %s", s->srv->commands[i].verb);
	gn_buf_append_str(b, "\nSee RFC 5321");
	text = gn_buf_steal(&b);
	smtp_reply_text(s, 214, "2.0.0", text);
	gn_free(text);
}

static void cmd_vrfy(struct gn_smtp_session *s, char *args)
{
	(void)args;
	/* RFC 5321 3.5.3: 252 tells nothing about the address. */
	smtp_reply(s, 252, "2.5.0", "Cannot VRFY user, but will accept message and "
		   "attempt delivery");
}

static void cmd_starttls(struct gn_smtp_session *s, char *args)
{
	(void)args;
	if (gn_conn_is_tls(s->conn)) {
		smtp_reply(s, 503, "5.5.1", "Already in TLS");
		return;
	}
	if (!gn_conn_can_starttls(s->conn)) {
		smtp_reply(s, 502, "5.5.1", "STARTTLS not offered here");
		return;
	}
	smtp_reply(s, 220, "2.0.0", "Ready to start TLS");
	if (gn_conn_starttls(s->conn) < 0) {
		smtp_reply_close(s, "4.7.0", "TLS not available", "starttls failed");
		return;
	}
	/* RFC 3207 4.2: all that was known is forgotten; the buffered input
	 * was dropped by the core (RFC 3207 5). */
	smtp_forget_client(s);
	smtp_set_state(s, ST_TLS);
}

static const struct smtp_cmd commands[] = {
	{ "HELO", S_ANY, CMD_ARGS, cmd_helo },
	{ "EHLO", S_ANY, CMD_ARGS, cmd_ehlo },
	{ "MAIL", SB(ST_HELO), CMD_ARGS, cmd_mail },
	{ "RCPT", SB(ST_MAIL) | SB(ST_RCPT), CMD_ARGS, cmd_rcpt },
	{ "DATA", SB(ST_MAIL) | SB(ST_RCPT), CMD_NOARGS, cmd_data },
	/* Any state: the chunk's octets must be read even when refused. */
	{ "BDAT", S_ANY, CMD_ARGS, cmd_bdat },
	{ "RSET", S_ANY, CMD_NOARGS, cmd_rset },
	{ "NOOP", S_ANY, 0, cmd_noop },
	{ "QUIT", S_ANY, CMD_NOARGS, cmd_quit },
	{ "HELP", S_ANY, 0, cmd_help },
	{ "VRFY", S_ANY, CMD_ARGS, cmd_vrfy },
	{ "EXPN", S_ANY, CMD_ARGS, cmd_vrfy },
	{ "STARTTLS", SB(ST_INIT) | SB(ST_HELO) | SB(ST_MAIL) | SB(ST_RCPT), CMD_NOARGS,
	  cmd_starttls },
};

/* HTTP methods (RFC 9110 9, RFC 5789, and HTTP/2's "PRI" preface), and
 * what Postfix's smtpd_forbidden_commands lists. */
static const char *const http_verbs[] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE",
	"PATCH", "PRI",
};

bool smtp_verb_reserved(const char *verb, size_t len)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strlen(commands[i].verb) == len && strncasecmp(commands[i].verb, verb, len) == 0)
			return true;
	for (size_t i = 0; i < sizeof(http_verbs) / sizeof(http_verbs[0]); i++)
		if (strlen(http_verbs[i]) == len && strncasecmp(http_verbs[i], verb, len) == 0)
			return true;
	return false;
}

static bool is_http(const char *verb, size_t len)
{
	for (size_t i = 0; i < sizeof(http_verbs) / sizeof(http_verbs[0]); i++)
		if (strlen(http_verbs[i]) == len && strncasecmp(http_verbs[i], verb, len) == 0)
			return true;
	return false;
}

static const char *sequence_error(const struct gn_smtp_session *s, const char *verb)
{
	if (s->state == ST_INIT)
		return "Send EHLO or HELO first";
	if (s->state == ST_BDAT)
		return "Only BDAT, RSET, NOOP or QUIT in a BDAT transaction";
	if (strcasecmp(verb, "MAIL") == 0)
		return "Nested MAIL command";
	if (strcasecmp(verb, "RCPT") == 0 || strcasecmp(verb, "DATA") == 0)
		return "Send MAIL first";
	return "Bad sequence of commands";
}

/* A command of the engine's table, its arguments checked. */
static void builtin(struct gn_smtp_session *s, const struct smtp_cmd *cmd, char *args)
{
	gn_log(GN_LOG_DEBUG, smtp_area(s), "event=smtp_command id=%s state=%s verb=%s",
	       gn_conn_id(s->conn), smtp_state_names[s->state], cmd->verb);
	if ((cmd->flags & CMD_NOARGS) && *args != '\0') {
		smtp_reply(s, 501, "5.5.4", "Syntax: %s takes no parameters", cmd->verb);
		return;
	}
	if ((cmd->flags & CMD_ARGS) && *args == '\0') {
		smtp_reply(s, 501, "5.5.4", "Syntax: %s needs a parameter", cmd->verb);
		return;
	}
	if (!(cmd->states & SB(s->state))) {
		smtp_reply(s, 503, "5.5.1", "%s", sequence_error(s, cmd->verb));
		return;
	}
	cmd->fn(s, args);
}

/* One command line in s->line (len octets, without its line ending; raw:
 * with it). */
static void command(struct gn_smtp_session *s, size_t len, size_t raw)
{
	const struct smtp_cmd *cmd = NULL;
	const struct smtp_command *ext = NULL;
	size_t vlen = 0;
	char *args;

	if (++s->commands > s->srv->set.max_commands) {
		smtp_reply_close(s, "4.7.0", "Too many commands, closing connection",
				 "too many commands");
		return;
	}
	while (vlen < len && s->line[vlen] != ' ')
		vlen++;
	if (is_http(s->line, vlen)) {
		/* The verb is one of http_verbs[], ASCII letters. */
		gn_log(GN_LOG_INFO, smtp_area(s), "event=smtp_http_request id=%s remote=%s "
		       "verb=%.*s", gn_conn_id(s->conn), gn_conn_remote_ip(s->conn),
		       (int)vlen, s->line);
		smtp_tx_end(s, true);
		smtp_reply_bye(s, 221, "2.7.0", "This is an SMTP server, not a web server; "
			       "closing connection", "http request");
		return;
	}
	if (memchr(s->line, '\0', len) != NULL || memchr(s->line, '\r', len) != NULL) {
		smtp_reply(s, 500, "5.5.2", "Syntax error: NUL or bare CR in command");
		return;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strlen(commands[i].verb) == vlen &&
		    strncasecmp(commands[i].verb, s->line, vlen) == 0) {
			cmd = &commands[i];
			break;
		}
	}
	if (cmd == NULL)
		ext = smtp_ext_command_find(s->srv, s->line, vlen);
	/* RFC 5321 4.5.3.1.4 and 4.2.4; lines up to the longest any added
	 * command takes are read whole, then held to their own verb's limit. */
	if (raw > (ext != NULL ? ext->max_line_length : s->srv->set.max_line_length)) {
		smtp_reply(s, 500, "5.5.2", "Line too long");
		return;
	}
	args = s->line + vlen;
	while (*args == ' ')
		args++;
	if (cmd != NULL)
		builtin(s, cmd, args);
	else if (ext != NULL)
		smtp_ext_command_start(s, ext, args);
	else
		smtp_reply(s, 500, "5.5.1", "Command not recognized");
}

/* A line too long, read to its end. */
static void line_too_long(struct gn_smtp_session *s)
{
	if (s->state == ST_MORE)
		smtp_ext_command_end(s, true);
	smtp_reply(s, 500, "5.5.2", "Line too long");
}

/* Command and continuation lines.  Returns false when more input is
 * needed. */
bool smtp_line_input(struct gn_smtp_session *s, const char *p, size_t n)
{
	size_t max = s->state == ST_MORE ? s->cmd->max_line_length : s->srv->max_read_line;
	const char *nl;
	size_t len, l;

	if (s->skipping) {
		/* The rest of a line that was too long. */
		nl = memchr(p, '\n', n);
		if (nl == NULL) {
			gn_conn_input_consume(s->conn, n);
			return false;
		}
		gn_conn_input_consume(s->conn, (size_t)(nl - p) + 1);
		s->skipping = false;
		line_too_long(s);
		return true;
	}
	nl = memchr(p, '\n', n < max ? n : max);
	if (nl == NULL) {
		if (n >= max) {
			/* Drop what we have of it; the rest (up to its LF)
			 * follows in skipping mode. */
			s->skipping = true;
			gn_conn_input_consume(s->conn, max);
			return true;
		}
		return false;
	}
	len = (size_t)(nl - p) + 1;
	l = len - 1;
	if (l > 0 && p[l - 1] == '\r')
		l--;
	/* A copy: the buffer may move while the command runs. */
	memcpy(s->line, p, l);
	s->line[l] = '\0';
	gn_conn_input_consume(s->conn, len);
	if (s->state == ST_MORE) {
		if (memchr(s->line, '\0', l) != NULL || memchr(s->line, '\r', l) != NULL) {
			smtp_ext_command_end(s, true);
			smtp_reply(s, 500, "5.5.2", "Syntax error: NUL or bare CR in line");
			return true;
		}
		smtp_ext_command_line(s, s->line);
		return true;
	}
	if (s->shutdown) {
		smtp_reply_close(s, "4.3.2", "Service shutting down, closing connection",
				 "shutdown");
		return true;
	}
	command(s, l, len);
	return true;
}
