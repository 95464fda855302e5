/*
 * core/smtp/client.c: the SMTP client (gannet/smtp.h, "the SMTP client"),
 * a state machine on an outbound connection (gn_conn_connect()).
 *
 *   CONNECTING -> GREETING -> EHLO [-> HELO] [-> STARTTLS -> TLS -> EHLO]
 *     [-> AUTH] -> READY -> TX (replies to RSET, MAIL, RCPTs, DATA, in order) ->
 *     DATA (the message) -> DATA_END -> READY ... -> QUIT
 *
 * A failure before READY fails the address: the next one is tried (RFC
 * 5321 5.1), and ready() hears of the last failure only when none is left.
 * A TLS handshake that fails, when TLS is not required, is retried once on
 * a new connection to the same address without STARTTLS (what MTAs do for
 * servers with broken TLS; RFC 7435 opportunistic security).
 *
 * Replies are matched to commands through a queue of what was sent and
 * not yet answered (pend[]), so pipelined (RFC 2920) and one-at-a-time
 * sessions take the same path; only what is written when differs.  Every
 * state change goes through set_state(), which also sets the timeout for
 * what the client now waits for (RFC 5321 4.5.3.2); every command line
 * goes through cmd().
 *
 * AUTH (RFC 4954) runs the client side of SASL of the auth layer
 * (sasl-client.c): the mechanism is chosen from the EHLO offer, each 334
 * challenge is answered, and a 235 is believed only when the mechanism
 * is complete (SCRAM: the server's signature checked).  Its lines reach
 * trace() without the secrets.
 *
 * Callbacks into the caller run from the loop: from the connection's
 * callbacks, or from a zero timer for outcomes decided inside a call of
 * the caller's (gn_smtp_client_send() refusing a message locally).  The
 * client holds a reference on itself while it calls out, so the caller
 * may free it from any callback.
 */
#include "smtp/internal.h"
#include "auth/internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#define CLIENT_MAX_RCPTS 1000u
/* The message is read and encoded this much at a time, and more is read
 * only while less than this is waiting to be sent. */
#define CLIENT_DATA_SLICE (64u * 1024u)
#define CLIENT_MAX_INPUT (64u * 1024u)

enum cstate {
	C_IDLE = 0,	/* not connected yet */
	C_CONNECTING,
	C_GREETING,
	C_EHLO,
	C_HELO,
	C_STARTTLS,
	C_TLS,		/* the handshake */
	C_AUTH,		/* AUTH sent, waiting for 334 or the end */
	C_READY,	/* session up, no transaction */
	C_TX,		/* waiting for replies to RSET/MAIL/RCPT/DATA */
	C_DATA,		/* sending the message */
	C_DATA_END,	/* waiting for the reply to the dot */
	C_QUIT,		/* QUIT sent, or closing on purpose */
	C_FAILED,	/* this address failed; closing */
	C_CLOSED,
};

static const char *const state_names[] = {
	"idle", "connecting", "greeting", "ehlo", "helo", "starttls", "tls", "auth",
	"ready", "tx", "data", "data_end", "quit", "failed", "closed",
};

enum pend { P_RSET, P_MAIL, P_RCPT, P_DATA, P_DOT };

struct client_addr {
	char *ip;
	unsigned port;
};

struct gn_smtp_client {
	struct gn_smtp_client_settings set;
	struct gn_smtp_client_handler h;
	void *data;
	struct gn_pool *pool;		/* the client's life */
	unsigned refs;
	bool freed;			/* gn_smtp_client_free() was called */

	struct client_addr *addrs;
	unsigned n_addrs, cap_addrs, cur;
	bool started;
	bool plain_retry;		/* this address again, without STARTTLS */
	bool no_tls;			/* the connection of a plain retry */

	struct gn_conn *conn;		/* referenced */
	enum cstate st;
	struct smtp_reply_parser rp;
	char *ehlo;			/* the EHLO reply's text; NULL after HELO */
	bool ready_sent;
	bool quit_wanted;
	struct sasl_client *sasl;	/* during AUTH */
	char *auth_password;		/* a copy, wiped on free */
	bool auth_refused;		/* no other address: same credentials */
	const char *auth_mech;		/* the mechanism used, or NULL */

	/* Of the current or last connection. */
	char *remote_ip;
	unsigned remote_port;
	bool is_tls, verified;
	char *tls_version, *verify_error, *tls_cipher;

	/* Why the address or the session failed, when known before the
	 * connection closes (a reply, a timeout, a local decision). */
	struct gn_smtp_result fail;
	bool fail_set;
	char *fail_text;
	char fail_enhanced[16];

	/* The transaction. */
	struct gn_pool *txp;		/* NULL: none */
	struct gn_pool *txp_old;	/* the last one, while sent() may read it */
	char *from;
	char **rcpts;
	unsigned char *rstate;		/* 0 waiting, 1 accepted, 2 answered */
	unsigned n_rcpts, accepted, next_rcpt;
	unsigned long long size;
	unsigned flags;
	gn_smtp_client_read_fn *read;
	void *read_data;
	bool pipelining, need_rset, mail_failed;
	struct gn_smtp_result tx_fail;	/* for sent() when nothing was accepted */
	char *tx_fail_text;
	char tx_fail_enhanced[16];
	enum pend *pend;
	unsigned pend_head, pend_len, pend_cap;
	struct smtp_dot dot;
	const char *chunk;
	size_t chunk_left;
	struct gn_buf *enc;
	struct gn_timer *local;		/* a local refusal, reported from the loop */
	struct gn_smtp_result local_res;
};

static const struct gn_protocol client_proto;

const char *gn_smtp_phase_name(enum gn_smtp_phase phase)
{
	static const char *const names[] = {
		"connect", "greeting", "ehlo", "starttls", "mail", "rcpt", "data", "quit",
		"auth",
	};
	return (unsigned)phase < sizeof(names) / sizeof(names[0]) ? names[phase] : "?";
}

void gn_smtp_client_settings_init(struct gn_smtp_client_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->size = sizeof(*s);
	s->tls = GN_SMTP_TLS_OPPORTUNISTIC;
	s->connect_timeout_ms = 30000;
	s->greeting_timeout_ms = 300000;
	s->command_timeout_ms = 300000;
	s->mail_timeout_ms = 300000;
	s->rcpt_timeout_ms = 300000;
	s->data_init_timeout_ms = 120000;
	s->data_block_timeout_ms = 180000;
	s->data_term_timeout_ms = 600000;
	s->max_reply_line = SMTP_CLIENT_REPLY_LINE;
	s->max_reply_lines = SMTP_CLIENT_REPLY_LINES;
}

/* ---- lifetime ---- */

static void client_destroy(struct gn_smtp_client *c)
{
	gn_timer_free(&c->local);
	sasl_client_free(&c->sasl);
	if (c->auth_password != NULL) {
		gnutls_memset(c->auth_password, 0, strlen(c->auth_password));
		gn_free(c->auth_password);
	}
	if (c->conn != NULL) {
		gn_conn_set_data(c->conn, NULL);
		gn_conn_close(c->conn, "smtp client freed");
		gn_conn_unref(&c->conn);
	}
	smtp_reply_parser_deinit(&c->rp);
	gn_buf_free(&c->enc);
	gn_pool_free(&c->txp);
	gn_pool_free(&c->txp_old);
	gn_pool_free(&c->pool);
	gn_free(c->fail_text);
	gn_free(c);
}

static void hold(struct gn_smtp_client *c)
{
	c->refs++;
}

/* Returns false when the client is gone (freed by a callback). */
static bool release(struct gn_smtp_client *c)
{
	if (--c->refs == 0) {
		client_destroy(c);
		return false;
	}
	return !c->freed;
}

static void set_state(struct gn_smtp_client *c, enum cstate st);

/* ---- results ---- */

static void result_local(struct gn_smtp_result *r, enum gn_smtp_phase phase, int code,
			 const char *enhanced, const char *text, bool permanent)
{
	memset(r, 0, sizeof(*r));
	r->size = sizeof(*r);
	r->phase = phase;
	r->code = code;
	r->enhanced = enhanced;
	r->text = text;
	r->local = true;
	r->permanent = permanent;
}

/* The parser's reply, valid until the next input. */
static void result_reply(struct gn_smtp_client *c, struct gn_smtp_result *r,
			 enum gn_smtp_phase phase)
{
	memset(r, 0, sizeof(*r));
	r->size = sizeof(*r);
	r->phase = phase;
	r->code = c->rp.code;
	r->enhanced = c->rp.enhanced;
	r->text = gn_buf_data(c->rp.text);
	r->permanent = c->rp.code >= 500;
}

/* Keeps r as the reason the address or session failed. */
static void fail_keep(struct gn_smtp_client *c, const struct gn_smtp_result *r)
{
	c->fail = *r;
	gn_free(c->fail_text);
	c->fail_text = gn_strdup(r->text != NULL ? r->text : "");
	snprintf(c->fail_enhanced, sizeof(c->fail_enhanced), "%s",
		 r->enhanced != NULL ? r->enhanced : "");
	c->fail.text = c->fail_text;
	c->fail.enhanced = c->fail_enhanced;
	c->fail_set = true;
}

static void tx_fail_keep(struct gn_smtp_client *c, const struct gn_smtp_result *r)
{
	c->tx_fail = *r;
	c->tx_fail_text = gn_pool_strdup(c->txp, r->text != NULL ? r->text : "");
	snprintf(c->tx_fail_enhanced, sizeof(c->tx_fail_enhanced), "%s",
		 r->enhanced != NULL ? r->enhanced : "");
	c->tx_fail.text = c->tx_fail_text;
	c->tx_fail.enhanced = c->tx_fail_enhanced;
}

static enum gn_smtp_phase state_phase(const struct gn_smtp_client *c)
{
	switch (c->st) {
	case C_IDLE:
	case C_CONNECTING:
		return GN_SMTP_PHASE_CONNECT;
	case C_GREETING:
		return GN_SMTP_PHASE_GREETING;
	case C_EHLO:
	case C_HELO:
		return GN_SMTP_PHASE_EHLO;
	case C_STARTTLS:
	case C_TLS:
		return GN_SMTP_PHASE_STARTTLS;
	case C_AUTH:
		return GN_SMTP_PHASE_AUTH;
	case C_TX:
		if (c->pend_len > 0) {
			enum pend p = c->pend[c->pend_head];
			return p == P_RCPT ? GN_SMTP_PHASE_RCPT
			       : p == P_DATA || p == P_DOT ? GN_SMTP_PHASE_DATA
			       : GN_SMTP_PHASE_MAIL;
		}
		return GN_SMTP_PHASE_MAIL;
	case C_DATA:
	case C_DATA_END:
		return GN_SMTP_PHASE_DATA;
	case C_READY:
	case C_QUIT:
	case C_FAILED:
	case C_CLOSED:
		break;
	}
	return GN_SMTP_PHASE_QUIT;
}

/* ---- writing ---- */

static void cmd(struct gn_smtp_client *c, const char *fmt, ...) GN_PRINTF(2, 3);
static void cmd(struct gn_smtp_client *c, const char *fmt, ...)
{
	struct gn_buf *b = gn_buf_new(SMTP_CMD_LINE_MAX);
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = gn_buf_vprintf(b, fmt, ap);
	va_end(ap);
	if (r >= 0 && c->conn != NULL) {
		if (c->h.trace != NULL) {
			/* trace may free the client (a callback may, header). */
			hold(c);
			c->h.trace(c, true, gn_buf_data(b), gn_buf_len(b), c->data);
			if (!release(c) || c->conn == NULL) {
				gn_buf_free(&b);
				return;
			}
		}
		(void)gn_buf_append(b, "\r\n", 2);
		(void)gn_conn_write(c->conn, gn_buf_data(b), gn_buf_len(b));
	}
	gn_buf_free(&b);
}

static void pend_push(struct gn_smtp_client *c, enum pend p)
{
	/* Capacity: RSET, MAIL, every RCPT, DATA, and a dot. */
	if (c->pend_len < c->pend_cap)
		c->pend[(c->pend_head + c->pend_len++) % c->pend_cap] = p;
}

static void pend_pop(struct gn_smtp_client *c)
{
	c->pend_head = (c->pend_head + 1) % c->pend_cap;
	c->pend_len--;
}

/* ---- state ---- */

static unsigned long state_timeout(const struct gn_smtp_client *c)
{
	const struct gn_smtp_client_settings *s = &c->set;
	switch (c->st) {
	case C_GREETING:
		return s->greeting_timeout_ms;
	case C_TX:
		if (c->pend_len > 0) {
			switch (c->pend[c->pend_head]) {
			case P_MAIL:
				return s->mail_timeout_ms;
			case P_RCPT:
				return s->rcpt_timeout_ms;
			case P_DATA:
				return s->data_init_timeout_ms;
			case P_DOT:
				return s->data_term_timeout_ms;
			case P_RSET:
				break;
			}
		}
		return s->command_timeout_ms;
	case C_DATA:
		return s->data_block_timeout_ms;
	case C_DATA_END:
		return s->data_term_timeout_ms;
	default:
		return s->command_timeout_ms;
	}
}

static void set_state(struct gn_smtp_client *c, enum cstate st)
{
	if (c->st != st)
		gn_log(GN_LOG_DEBUG, "smtp", "event=client_state id=%s from=%s to=%s",
		       c->conn != NULL ? gn_conn_id(c->conn) : "-", state_names[c->st],
		       state_names[st]);
	c->st = st;
	if (c->conn != NULL && st != C_CLOSED) {
		unsigned long ms = state_timeout(c);
		gn_conn_set_idle_timeout(c->conn, ms > 0 ? ms : 1);
	}
}

/* The address failed with r (when not already known): QUIT, politely,
 * and close; close() goes on with the next. */
static void address_fail(struct gn_smtp_client *c, const struct gn_smtp_result *r,
			 bool quit)
{
	fail_keep(c, r);
	gn_log(GN_LOG_INFO, "smtp", "event=client_address_failed id=%s remote=%s port=%u "
	       "phase=%s code=%d enhanced=%s text=%s", c->conn ? gn_conn_id(c->conn) : "-",
	       c->remote_ip ? c->remote_ip : "-", c->remote_port, gn_smtp_phase_name(r->phase),
	       r->code, r->enhanced[0] ? r->enhanced : "-", gn_log_quote(0, r->text));
	if (quit && c->conn != NULL)
		cmd(c, "QUIT");
	set_state(c, C_FAILED);
	if (c->conn != NULL)
		gn_conn_close(c->conn, "smtp address failed");
}

static void connect_next(struct gn_smtp_client *c);

/* After the connection of an address closed without a session. */
static void address_done(struct gn_smtp_client *c)
{
	if (c->quit_wanted) {
		/* gn_smtp_client_quit() before the session was up. */
		set_state(c, C_CLOSED);
		if (c->h.closed != NULL)
			c->h.closed(c, c->data);
		return;
	}
	if (c->auth_refused) {
		/* Another address of the same service would refuse the same
		 * credentials, and count one more failed login. */
		c->plain_retry = false;
		c->cur = c->n_addrs;
	} else if (c->plain_retry) {
		c->plain_retry = false;
		c->no_tls = true;
	} else {
		c->no_tls = false;
		c->cur++;
	}
	if (c->cur < c->n_addrs) {
		connect_next(c);
		return;
	}
	set_state(c, C_CLOSED);
	hold(c);
	c->h.ready(c, &c->fail, c->data);
	if (release(c) && c->h.closed != NULL)
		c->h.closed(c, c->data);
}

static void connect_failed_cb(void *data)
{
	struct gn_smtp_client *c = data;
	gn_timer_free(&c->local);
	hold(c);
	address_done(c);
	(void)release(c);
}

static void connect_next(struct gn_smtp_client *c)
{
	const struct client_addr *a = &c->addrs[c->cur];
	const char *error;
	struct gn_smtp_result r;

	for (;;) {
		c->fail_set = false;
		c->is_tls = c->verified = false;
		c->tls_version = c->verify_error = c->tls_cipher = NULL;
		c->ehlo = NULL;
		c->remote_ip = a->ip;
		c->remote_port = a->port;
		smtp_reply_parser_deinit(&c->rp);
		smtp_reply_parser_init(&c->rp, c->set.max_reply_line, c->set.max_reply_lines);
		c->st = C_CONNECTING;
		if (gn_conn_connect(a->ip, a->port, &client_proto, c, c->set.connect_timeout_ms,
				    &c->conn, &error) == 0) {
			gn_conn_ref(c->conn);
			gn_conn_set_data(c->conn, c);
			return;
		}
		c->conn = NULL;
		result_local(&r, GN_SMTP_PHASE_CONNECT, 0, "", error, false);
		fail_keep(c, &r);
		if (++c->cur >= c->n_addrs)
			break;
		a = &c->addrs[c->cur];
	}
	/* No connection to close: from a timer, so not from inside the
	 * caller's gn_smtp_client_connect(). */
	c->cur = c->n_addrs - 1;
	gn_timer_free(&c->local);
	c->local = gn_timer_new(0, false, connect_failed_cb, c);
}

/* ---- the session ---- */

static void session_ready(struct gn_smtp_client *c)
{
	set_state(c, C_READY);
	gn_log(GN_LOG_INFO, "smtp", "event=client_ready id=%s remote=%s port=%u tls=%s "
	       "verified=%s esmtp=%s", gn_conn_id(c->conn), c->remote_ip, c->remote_port,
	       c->is_tls ? c->tls_version : "none", c->verified ? "yes" : "no",
	       c->ehlo != NULL ? "yes" : "no");
	if (!c->ready_sent) {
		c->ready_sent = true;
		c->h.ready(c, NULL, c->data);
	}
}

/* Sends an AUTH line or a response: trace() sees shown, never the
 * secret. */
static void cmd_secret(struct gn_smtp_client *c, const char *shown, const char *line)
{
	size_t n = strlen(line);
	if (c->conn == NULL)
		return;
	if (c->h.trace != NULL)
		c->h.trace(c, true, shown, strlen(shown), c->data);
	(void)gn_conn_write(c->conn, line, n);
	(void)gn_conn_write(c->conn, "\r\n", 2);
}

static void auth_fail(struct gn_smtp_client *c, int code, const char *text, bool permanent)
{
	struct gn_smtp_result r;
	result_local(&r, GN_SMTP_PHASE_AUTH, code, code >= 500 ? "5.7.8" : "", text, permanent);
	sasl_client_free(&c->sasl);
	c->auth_refused = permanent;
	address_fail(c, &r, true);
}

static bool auth_wanted(const struct gn_smtp_client *c)
{
	return c->set.auth_password != NULL || c->set.tls_identity != NULL ||
	       c->set.auth_mechanism != NULL;
}

/* RFC 4954 4: AUTH mechanism [initial-response], "=" for an empty one. */
static void auth_start(struct gn_smtp_client *c)
{
	const char *offered = NULL, *mech, *error = "", *cb_type = NULL;
	const unsigned char *cb = NULL, *ir;
	size_t cb_len = 0, ir_len;

	if (c->ehlo == NULL || !smtp_ehlo_keyword(c->ehlo, "AUTH", &offered))
		offered = NULL;
	if (c->is_tls) {
		/* The binding the server side takes (RFC 9266 for TLS 1.3,
		 * RFC 5929 for TLS 1.2). */
		cb_type = c->tls_version != NULL && strcmp(c->tls_version, "TLS1.3") == 0
			  ? "tls-exporter" : "tls-unique";
		if (gn_conn_tls_channel_binding(c->conn, cb_type, &cb, &cb_len) != 1)
			cb_type = NULL;
	}
	if (c->set.auth_mechanism != NULL)
		mech = c->set.auth_mechanism;
	else if (c->set.tls_identity != NULL && c->is_tls && offered != NULL &&
		 sasl_client_offered(offered, "EXTERNAL"))
		mech = "EXTERNAL";
	else if (c->set.auth_password != NULL)
		mech = sasl_client_choose(offered, c->is_tls, cb_type != NULL, true);
	else
		mech = NULL;
	if (mech == NULL && c->set.auth_password == NULL && c->set.tls_identity != NULL &&
	    c->is_tls) {
		/* The certificate alone: the server knows it or refuses MAIL. */
		gn_log(GN_LOG_INFO, "smtp", "event=client_auth id=%s remote=%s mechanism=none "
		       "reason=certificate", gn_conn_id(c->conn), c->remote_ip);
		session_ready(c);
		return;
	}
	if (mech == NULL) {
		auth_fail(c, 0, offered == NULL
			  ? (c->is_tls ? "the server offers no AUTH"
			     : "the server offers no AUTH without TLS")
			  : gn_pool_printf(c->pool, "no AUTH mechanism the client can use%s "
					   "(the server offers %s)", c->is_tls ? ""
					   : " without TLS", offered), true);
		return;
	}
	if (!c->is_tls && strcasecmp(mech, "PLAIN") == 0) {
		/* RFC 4954 4: also when asked for by name. */
		auth_fail(c, 0, "AUTH PLAIN is never used without TLS", true);
		return;
	}
	/* RFC 5802 6: "y" (could bind, but the server cannot) only when the
	 * server offers no -PLUS; a SCRAM without -PLUS chosen by name
	 * while it does says "n", which the server takes. */
	size_t ml = strlen(mech);
	if (cb_type != NULL && (ml < 5 || strcasecmp(mech + ml - 5, "-PLUS") != 0) &&
	    (sasl_client_offered(offered, "SCRAM-SHA-256-PLUS") ||
	     sasl_client_offered(offered, "SCRAM-SHA-1-PLUS")))
		cb_type = NULL;
	c->sasl = sasl_client_new(mech, c->set.auth_user, c->set.auth_authzid,
				  c->set.auth_password, cb_type, cb, cb_len, &error);
	if (c->sasl == NULL || sasl_client_start(c->sasl, &ir, &ir_len, &error) < 0) {
		auth_fail(c, 0, gn_pool_printf(c->pool, "AUTH %s: %s", mech, error), true);
		return;
	}
	c->auth_mech = gn_pool_strdup(c->pool, mech);
	char *enc = ir_len > 0 ? b64_encode(c->pool, ir, ir_len) : "=";
	char *line = gn_pool_printf(c->pool, "AUTH %s %s", mech, enc);
	set_state(c, C_AUTH);
	cmd_secret(c, gn_pool_printf(c->pool, "AUTH %s (initial response hidden)", mech), line);
	gnutls_memset(line, 0, strlen(line));
	if (ir_len > 0)
		gnutls_memset(enc, 0, strlen(enc));
}

static void reply_auth(struct gn_smtp_client *c)
{
	struct gn_smtp_result r;
	const char *error = "";

	if (c->rp.code == 334 && c->sasl != NULL) {
		const char *text = gn_buf_data(c->rp.text);
		unsigned char *in;
		const unsigned char *out;
		size_t out_len;
		long n = b64_decode(c->pool, text, strlen(text), &in);
		if (n < 0 || sasl_client_step(c->sasl, in, (size_t)n, &out, &out_len, &error) < 0) {
			if (n < 0)
				error = "the server's challenge is not base64";
			/* RFC 4954 4: "*" cancels; the reply does not matter. */
			auth_fail(c, 0, gn_pool_printf(c->pool, "AUTH %s: %s", c->auth_mech,
						       error), true);
			return;
		}
		char *enc = out_len > 0 ? b64_encode(c->pool, out, out_len) : "";
		cmd_secret(c, "(response hidden)", enc);
		if (out_len > 0)
			gnutls_memset(enc, 0, strlen(enc));
		set_state(c, C_AUTH);
		return;
	}
	if (c->rp.code == 235 && c->sasl != NULL && !sasl_client_done(c->sasl)) {
		/* RFC 5802 3: the server proves it knows the password too. */
		auth_fail(c, 0, gn_pool_printf(c->pool, "AUTH %s: the server said success "
					       "without proving it knows the password",
					       c->auth_mech), true);
		return;
	}
	sasl_client_free(&c->sasl);
	if (c->rp.code == 235) {
		gn_log(GN_LOG_INFO, "smtp", "event=client_auth id=%s remote=%s mechanism=%s "
		       "result=ok", gn_conn_id(c->conn), c->remote_ip, c->auth_mech);
		session_ready(c);
		return;
	}
	result_reply(c, &r, GN_SMTP_PHASE_AUTH);
	c->auth_refused = c->rp.code >= 500;
	gn_log(GN_LOG_INFO, "smtp", "event=client_auth id=%s remote=%s mechanism=%s "
	       "result=failed code=%d", gn_conn_id(c->conn), c->remote_ip, c->auth_mech,
	       c->rp.code);
	address_fail(c, &r, c->rp.code != 421);
}

static void after_ehlo(struct gn_smtp_client *c)
{
	struct gn_smtp_result r;

	if (!c->is_tls && c->set.tls != GN_SMTP_TLS_NONE && !c->no_tls &&
	    c->ehlo != NULL && smtp_ehlo_keyword(c->ehlo, "STARTTLS", NULL)) {
		set_state(c, C_STARTTLS);
		cmd(c, "STARTTLS");
		return;
	}
	if (!c->is_tls && c->set.tls == GN_SMTP_TLS_REQUIRE) {
		result_local(&r, GN_SMTP_PHASE_STARTTLS, 0, "",
			     "TLS is required and the server does not offer STARTTLS", false);
		address_fail(c, &r, true);
		return;
	}
	if (auth_wanted(c)) {
		auth_start(c);
		return;
	}
	session_ready(c);
}

static void tx_end(struct gn_smtp_client *c, const struct gn_smtp_result *r);

/* Every recipient not answered yet gets r. */
static bool rcpts_fail(struct gn_smtp_client *c, const struct gn_smtp_result *r)
{
	for (unsigned i = 0; i < c->n_rcpts; i++) {
		if (c->rstate[i] == 2)
			continue;
		c->rstate[i] = 2;
		hold(c);
		c->h.rcpt(c, i, r, c->data);
		if (!release(c))
			return false;
	}
	return true;
}

static void send_rcpt(struct gn_smtp_client *c)
{
	unsigned i = c->next_rcpt++;
	cmd(c, "RCPT TO:<%s>", c->rcpts[i]);
	pend_push(c, P_RCPT);
}

static void send_mail(struct gn_smtp_client *c)
{
	char size[40] = "";
	bool utf8 = (c->flags & GN_SMTP_SEND_SMTPUTF8) != 0;
	bool eight = (c->flags & GN_SMTP_SEND_8BITMIME) != 0;

	/* RFC 1870 3: SIZE only to a server that offers it. */
	if (c->size > 0 && smtp_ehlo_keyword(c->ehlo, "SIZE", NULL))
		snprintf(size, sizeof(size), " SIZE=%llu", c->size);
	/* RFC 6152 2: BODY=8BITMIME; RFC 6531 3.4: SMTPUTF8 (which allows
	 * 8-bit content too, so BODY= is given anyway, as most MTAs do). */
	cmd(c, "MAIL FROM:<%s>%s%s%s%s", c->from, size, eight ? " BODY=8BITMIME" : "",
	    utf8 ? " SMTPUTF8" : "", (c->flags & GN_SMTP_SEND_REQUIRETLS) ? " REQUIRETLS" : "");
	pend_push(c, P_MAIL);
	if (c->pipelining) {
		while (c->next_rcpt < c->n_rcpts)
			send_rcpt(c);
		cmd(c, "DATA");
		pend_push(c, P_DATA);
	}
}

/* Reads and writes the message while little is waiting to go out. */
static void data_fill(struct gn_smtp_client *c)
{
	while (c->st == C_DATA && c->conn != NULL && !gn_conn_is_closed(c->conn) &&
	       gn_conn_output_pending(c->conn) < CLIENT_DATA_SLICE) {
		size_t n;
		if (c->chunk_left == 0) {
			const char *error = "reading the message failed";
			int r = c->read(c->read_data, &c->chunk, &c->chunk_left, &error);
			if (r < 0) {
				struct gn_smtp_result res;
				/* Never the dot after a part of a message. */
				result_local(&res, GN_SMTP_PHASE_DATA, 451, "4.3.0", error, false);
				fail_keep(c, &res);
				gn_log(GN_LOG_WARN, "smtp", "event=client_read_failed id=%s error=%s",
				       gn_conn_id(c->conn), gn_log_quote(0, error));
				set_state(c, C_FAILED);
				gn_conn_close(c->conn, "reading the message failed");
				return;
			}
			if (r == 0) {
				gn_buf_clear(c->enc);
				smtp_dot_finish(&c->dot, c->enc);
				(void)gn_conn_write(c->conn, gn_buf_data(c->enc), gn_buf_len(c->enc));
				if (c->h.trace != NULL)
					c->h.trace(c, true, ".", 1, c->data);
				set_state(c, C_DATA_END);
				return;
			}
			if (c->chunk_left == 0)
				continue;
		}
		n = c->chunk_left < CLIENT_DATA_SLICE ? c->chunk_left : CLIENT_DATA_SLICE;
		gn_buf_clear(c->enc);
		smtp_dot_encode(&c->dot, c->chunk, n, c->enc);
		c->chunk += n;
		c->chunk_left -= n;
		if (gn_conn_write(c->conn, gn_buf_data(c->enc), gn_buf_len(c->enc)) < 0)
			return;
	}
}

static void tx_end(struct gn_smtp_client *c, const struct gn_smtp_result *r)
{
	gn_log(GN_LOG_INFO, "smtp", "event=client_sent id=%s remote=%s rcpts=%u accepted=%u "
	       "phase=%s code=%d enhanced=%s", c->conn ? gn_conn_id(c->conn) : "-",
	       c->remote_ip ? c->remote_ip : "-", c->n_rcpts, c->accepted,
	       gn_smtp_phase_name(r->phase), r->code, r->enhanced[0] ? r->enhanced : "-");
	c->need_rset = true;
	c->read = NULL;
	if (c->st == C_TX || c->st == C_DATA_END)
		set_state(c, C_READY);
	hold(c);
	c->h.sent(c, r, c->data);
	if (!release(c))
		return;
	/* The transaction's memory goes only now: r may point into it
	 * (also when sent() started the next one). */
	gn_pool_free(&c->txp_old);
	if (c->st != C_TX && c->st != C_DATA)
		gn_pool_free(&c->txp);
}

static void reply_tx(struct gn_smtp_client *c)
{
	struct gn_smtp_result r;
	enum pend p;

	if (c->pend_len == 0) {
		result_local(&r, GN_SMTP_PHASE_MAIL, 0, "", "reply without a command", false);
		address_fail(c, &r, false);
		return;
	}
	p = c->pend[c->pend_head];
	pend_pop(c);
	switch (p) {
	case P_RSET:
		if (!c->pipelining)
			send_mail(c);
		break;
	case P_MAIL:
		if (c->rp.code / 100 == 2) {
			if (!c->pipelining)
				send_rcpt(c);
			break;
		}
		c->mail_failed = true;
		result_reply(c, &r, GN_SMTP_PHASE_MAIL);
		tx_fail_keep(c, &r);
		if (!rcpts_fail(c, &r))
			return;
		if (!c->pipelining)
			tx_end(c, &c->tx_fail);
		break;
	case P_RCPT: {
		unsigned i = c->next_rcpt - (c->pipelining ? 0 : 1);
		/* Pipelined: the replies come in the order sent. */
		if (c->pipelining)
			for (i = 0; i < c->n_rcpts && c->rstate[i] != 0; i++)
				;	/* the first recipient not answered yet */
		if (c->mail_failed || i >= c->n_rcpts)
			break;
		if (c->rp.code / 100 == 2) {
			c->rstate[i] = 1;
			c->accepted++;
		} else {
			result_reply(c, &r, GN_SMTP_PHASE_RCPT);
			tx_fail_keep(c, &r);
			c->rstate[i] = 2;
			hold(c);
			c->h.rcpt(c, i, &r, c->data);
			if (!release(c))
				return;
		}
		if (!c->pipelining) {
			if (c->next_rcpt < c->n_rcpts) {
				send_rcpt(c);
			} else if (c->accepted > 0) {
				cmd(c, "DATA");
				pend_push(c, P_DATA);
			} else {
				tx_end(c, &c->tx_fail);
				return;
			}
		}
		break;
	}
	case P_DATA:
		if (c->mail_failed || c->accepted == 0) {
			if (c->rp.code == 354) {
				/* RFC 2920 3.1: a server that accepts DATA
				 * after refusing every recipient gets an empty
				 * message, which it must refuse. */
				(void)gn_conn_write(c->conn, ".\r\n", 3);
				if (c->h.trace != NULL)
					c->h.trace(c, true, ".", 1, c->data);
				pend_push(c, P_DOT);
				break;
			}
			tx_end(c, &c->tx_fail);
			return;
		}
		if (c->rp.code == 354) {
			set_state(c, C_DATA);
			data_fill(c);
			return;
		}
		result_reply(c, &r, GN_SMTP_PHASE_DATA);
		if (!rcpts_fail(c, &r))
			return;
		tx_end(c, &r);
		return;
	case P_DOT:
		tx_end(c, &c->tx_fail);
		return;
	}
	set_state(c, c->st);	/* the timeout for the next reply */
}

/* A whole reply is in c->rp. */
static void reply(struct gn_smtp_client *c)
{
	struct gn_smtp_result r;

	switch (c->st) {
	case C_GREETING:
		if (c->rp.code == 220) {
			set_state(c, C_EHLO);
			cmd(c, "EHLO %s", c->set.helo_name);
			return;
		}
		result_reply(c, &r, GN_SMTP_PHASE_GREETING);
		address_fail(c, &r, true);
		return;
	case C_EHLO:
		if (c->rp.code == 250) {
			c->ehlo = gn_pool_strdup(c->pool, gn_buf_data(c->rp.text));
			after_ehlo(c);
			return;
		}
		if (c->rp.code == 421) {
			result_reply(c, &r, GN_SMTP_PHASE_EHLO);
			address_fail(c, &r, false);
			return;
		}
		/* RFC 5321 3.2: a server that does not know EHLO gets HELO. */
		set_state(c, C_HELO);
		cmd(c, "HELO %s", c->set.helo_name);
		return;
	case C_HELO:
		if (c->rp.code == 250) {
			c->ehlo = NULL;
			after_ehlo(c);
			return;
		}
		result_reply(c, &r, GN_SMTP_PHASE_EHLO);
		address_fail(c, &r, c->rp.code != 421);
		return;
	case C_STARTTLS:
		if (c->rp.code == 220) {
			const char *error;
			set_state(c, C_TLS);
			if (gn_conn_starttls_client_identity(c->conn, c->set.tls_name,
							     c->set.tls_identity, &error) < 0) {
				result_local(&r, GN_SMTP_PHASE_STARTTLS, 0, "", error, false);
				address_fail(c, &r, false);
			}
			return;
		}
		if (c->set.tls == GN_SMTP_TLS_REQUIRE || c->rp.code == 421) {
			result_reply(c, &r, GN_SMTP_PHASE_STARTTLS);
			address_fail(c, &r, c->rp.code != 421);
			return;
		}
		/* Opportunistic: on in the clear. */
		session_ready(c);
		return;
	case C_AUTH:
		reply_auth(c);
		return;
	case C_TX:
		reply_tx(c);
		break;
	case C_DATA_END:
		result_reply(c, &r, GN_SMTP_PHASE_DATA);
		if (!rcpts_fail(c, &r))
			return;
		tx_end(c, &r);
		break;
	case C_QUIT:
		if (c->conn != NULL)
			gn_conn_close(c->conn, "quit");
		return;
	case C_DATA:
	case C_READY:
	default:
		/* A reply nothing asked for (in the middle of the message, or
		 * idle): the session cannot go on in step. */
		result_reply(c, &r, state_phase(c));
		fail_keep(c, &r);
		set_state(c, C_FAILED);
		gn_conn_close(c->conn, "unexpected reply");
		return;
	}
	/* RFC 5321 3.8: 421 means the server closes the channel. */
	if (c->conn != NULL && c->rp.code == 421 && c->st == C_READY) {
		set_state(c, C_QUIT);
		gn_conn_close(c->conn, "server closing (421)");
	}
}

/* ---- the connection's callbacks ---- */

static int client_open(struct gn_conn *conn, void *pdata)
{
	struct gn_smtp_client *c = gn_conn_data(conn);
	(void)pdata;
	if (c == NULL)
		return -1;
	set_state(c, C_GREETING);
	return 0;
}

static void trace_reply_lines(struct gn_smtp_client *c, const char *data, size_t len)
{
	/* The reply's raw lines, as they came. */
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl != NULL ? (size_t)(nl - data) + 1 : len;
		size_t l = n;
		while (l > 0 && (data[l - 1] == '\n' || data[l - 1] == '\r'))
			l--;
		c->h.trace(c, false, data, l, c->data);
		data += n;
		len -= n;
	}
}

static void client_input(struct gn_conn *conn, void *pdata)
{
	struct gn_smtp_client *c = gn_conn_data(conn);
	(void)pdata;

	if (c == NULL)
		return;
	hold(c);
	while (c->conn == conn && !gn_conn_is_closed(conn) && c->st != C_FAILED) {
		const char *data, *error;
		size_t len, used;
		int r;

		gn_conn_input_peek(conn, &data, &len);
		if (len == 0)
			break;
		r = smtp_reply_parse(&c->rp, data, len, &used, &error);
		if (c->h.trace != NULL && used > 0)
			trace_reply_lines(c, data, used);
		gn_conn_input_consume(conn, used);
		if (c->freed)	/* by trace: no reply goes to a caller that is gone */
			break;
		if (r < 0) {
			struct gn_smtp_result res;
			gn_log(GN_LOG_INFO, "smtp", "event=client_bad_reply id=%s remote=%s "
			       "error=%s", gn_conn_id(conn), c->remote_ip, gn_log_quote(0, error));
			result_local(&res, state_phase(c), 0, "", error, false);
			if (c->st < C_READY)
				address_fail(c, &res, false);
			else {
				fail_keep(c, &res);
				set_state(c, C_FAILED);
				gn_conn_close(conn, "bad reply");
			}
			break;
		}
		if (r == 0)
			break;
		reply(c);
		if (c->freed)
			break;
	}
	(void)release(c);
}

static void client_writable(struct gn_conn *conn, void *pdata)
{
	struct gn_smtp_client *c = gn_conn_data(conn);
	(void)pdata;
	if (c == NULL || c->st != C_DATA)
		return;
	hold(c);
	data_fill(c);
	(void)release(c);
}

static void tls_done(struct gn_smtp_client *c, struct gn_conn *conn, int ok);

static void client_tls_done(struct gn_conn *conn, int ok, void *pdata)
{
	struct gn_smtp_client *c = gn_conn_data(conn);
	(void)pdata;

	if (c == NULL)
		return;
	/* What follows calls back (trace, the results), which may free c. */
	hold(c);
	tls_done(c, conn, ok);
	(void)release(c);
}

static void tls_done(struct gn_smtp_client *c, struct gn_conn *conn, int ok)
{
	struct gn_smtp_result r;

	if (!ok) {
		result_local(&r, GN_SMTP_PHASE_STARTTLS, 0, "",
			     gn_conn_close_reason(conn) != NULL ? gn_conn_close_reason(conn)
								 : "TLS handshake failed", false);
		fail_keep(c, &r);
		/* RFC 7435: opportunistic TLS that fails falls back to none,
		 * on a new connection (this one is unusable). */
		if (c->set.tls == GN_SMTP_TLS_OPPORTUNISTIC && !c->no_tls)
			c->plain_retry = true;
		set_state(c, C_FAILED);
		return;
	}
	c->is_tls = true;
	c->tls_version = gn_pool_strdup(c->pool, gn_conn_tls_version(conn));
	if (gn_conn_tls_cipher(conn) != NULL)
		c->tls_cipher = gn_pool_strdup(c->pool, gn_conn_tls_cipher(conn));
	c->verified = gn_conn_tls_verified(conn);
	if (gn_conn_tls_verify_error(conn) != NULL)
		c->verify_error = gn_pool_strdup(c->pool, gn_conn_tls_verify_error(conn));
	if (c->set.tls_verify && !c->verified) {
		char *text = gn_pool_printf(c->pool, "TLS certificate not verified for %s: %s",
					    c->set.tls_name != NULL ? c->set.tls_name : "(no name)",
					    c->verify_error != NULL ? c->verify_error : "no name to verify");
		result_local(&r, GN_SMTP_PHASE_STARTTLS, 0, "", text, false);
		address_fail(c, &r, true);
		return;
	}
	if (c->h.tls_check != NULL) {
		const unsigned char *certs[10];
		size_t lens[10], n = 0;
		const char *error = NULL;
		while (n < 10 && gn_conn_peer_chain_cert(conn, n, &certs[n], &lens[n]) == 1)
			n++;
		if (c->h.tls_check(c, certs, lens, n, c->data, &error) < 0) {
			result_local(&r, GN_SMTP_PHASE_STARTTLS, 0, "",
				     gn_pool_strdup(c->pool, error != NULL ? error : "TLS check failed"),
				     false);
			address_fail(c, &r, true);
			return;
		}
	}
	/* RFC 3207 4.2: what the server said before TLS is forgotten. */
	c->ehlo = NULL;
	set_state(c, C_EHLO);
	cmd(c, "EHLO %s", c->set.helo_name);
}

static void client_timeout(struct gn_conn *conn, void *pdata)
{
	struct gn_smtp_client *c = gn_conn_data(conn);
	struct gn_smtp_result r;
	char *text;
	(void)pdata;

	if (c == NULL || c->st == C_READY || c->st == C_QUIT || c->st == C_FAILED)
		return;
	text = gn_pool_printf(c->pool, "timeout after %lu ms waiting for the server (%s)",
			      state_timeout(c), gn_smtp_phase_name(state_phase(c)));
	result_local(&r, state_phase(c), 0, "", text, false);
	fail_keep(c, &r);
	gn_log(GN_LOG_INFO, "smtp", "event=client_timeout id=%s remote=%s state=%s",
	       gn_conn_id(conn), c->remote_ip, state_names[c->st]);
}

static void client_close(struct gn_conn *conn, void *pdata)
{
	struct gn_smtp_client *c = gn_conn_data(conn);
	struct gn_smtp_result r;
	enum cstate st;
	(void)pdata;

	if (c == NULL)
		return;
	gn_conn_set_data(conn, NULL);
	st = c->st;
	if (!c->fail_set) {
		const char *why = gn_conn_close_reason(conn);
		char *text = gn_pool_printf(c->pool, "connection lost: %s",
					    why != NULL ? why : "closed");
		if (st == C_CONNECTING)
			text = gn_pool_strdup(c->pool, why != NULL ? why : "connect failed");
		result_local(&r, state_phase(c), 0, "", text, false);
		fail_keep(c, &r);
	}
	if (c->conn == conn)
		gn_conn_unref(&c->conn);
	hold(c);
	if (!c->ready_sent) {
		/* No session on this address. */
		address_done(c);
		(void)release(c);
		return;
	}
	if (st == C_TX || st == C_DATA || st == C_DATA_END || (st == C_FAILED && c->txp != NULL &&
							       c->read != NULL)) {
		/* A local refusal still on its way is overtaken: one sent()
		 * for the transaction. */
		gn_timer_free(&c->local);
		set_state(c, C_CLOSED);
		if (rcpts_fail(c, &c->fail))
			tx_end(c, &c->fail);
		if (c->freed) {
			(void)release(c);
			return;
		}
	}
	set_state(c, C_CLOSED);
	if (c->h.closed != NULL)
		c->h.closed(c, c->data);
	(void)release(c);
}

static const struct gn_protocol client_proto = {
	.size = sizeof(struct gn_protocol),
	.name = "smtp-client",
	.max_input = CLIENT_MAX_INPUT,
	.open = client_open,
	.input = client_input,
	.writable = client_writable,
	.tls_done = client_tls_done,
	.timeout = client_timeout,
	.close = client_close,
};

/* ---- the caller's API ---- */

struct gn_smtp_client *gn_smtp_client_new(const struct gn_smtp_client_settings *settings,
					  const struct gn_smtp_client_handler *handler,
					  void *data, const char **error_r)
{
	struct gn_smtp_client *c;
	size_t n;

	if (settings == NULL || settings->size == 0 || handler == NULL ||
	    handler->size < offsetof(struct gn_smtp_client_handler, closed) ||
	    handler->ready == NULL || handler->rcpt == NULL || handler->sent == NULL) {
		*error_r = "SMTP client: settings, and a handler with ready, rcpt and sent, "
			   "are required";
		return NULL;
	}
	c = gn_calloc(1, sizeof(*c));
	c->refs = 1;
	c->pool = gn_pool_new();
	gn_smtp_client_settings_init(&c->set);
	n = settings->size < sizeof(c->set) ? settings->size : sizeof(c->set);
	memcpy(&c->set, settings, n);
	c->set.size = sizeof(c->set);
	n = handler->size < sizeof(c->h) ? handler->size : sizeof(c->h);
	memcpy(&c->h, handler, n);
	c->h.size = sizeof(c->h);
	c->data = data;
	c->set.helo_name = gn_pool_strdup(c->pool, settings->helo_name != NULL
					  ? settings->helo_name : gn_config_hostname());
	if (settings->tls_name != NULL)
		c->set.tls_name = gn_pool_strdup(c->pool, settings->tls_name);
	if (c->set.auth_user != NULL)
		c->set.auth_user = gn_pool_strdup(c->pool, c->set.auth_user);
	if (c->set.auth_authzid != NULL)
		c->set.auth_authzid = gn_pool_strdup(c->pool, c->set.auth_authzid);
	if (c->set.auth_mechanism != NULL)
		c->set.auth_mechanism = gn_pool_strdup(c->pool, c->set.auth_mechanism);
	if (c->set.auth_password != NULL)
		c->set.auth_password = c->auth_password = gn_strdup(c->set.auth_password);
	if (c->set.auth_password != NULL && (c->set.auth_user == NULL || c->set.auth_user[0] == '\0')) {
		*error_r = "SMTP client: a password needs a user name";
		client_destroy(c);
		return NULL;
	}
	if (c->set.max_reply_line == 0)
		c->set.max_reply_line = SMTP_CLIENT_REPLY_LINE;
	if (c->set.max_reply_lines == 0)
		c->set.max_reply_lines = SMTP_CLIENT_REPLY_LINES;
	smtp_reply_parser_init(&c->rp, c->set.max_reply_line, c->set.max_reply_lines);
	c->enc = gn_buf_new(2 * CLIENT_DATA_SLICE + 8);
	return c;
}

int gn_smtp_client_add_address(struct gn_smtp_client *c, const char *ip, unsigned port,
			       const char **error_r)
{
	if (c->started) {
		*error_r = "the client has started";
		return -1;
	}
	unsigned char sa[sizeof(struct in6_addr)];
	if (ip == NULL || (inet_pton(AF_INET, ip, sa) != 1 && inet_pton(AF_INET6, ip, sa) != 1) ||
	    port == 0 || port > 65535) {
		*error_r = "bad address or port";
		return -1;
	}
	if (c->n_addrs == c->cap_addrs) {
		struct client_addr *a;
		c->cap_addrs = c->cap_addrs ? c->cap_addrs * 2 : 4;
		a = gn_pool_alloc(c->pool, c->cap_addrs * sizeof(*a));
		if (c->n_addrs > 0)
			memcpy(a, c->addrs, c->n_addrs * sizeof(*a));
		c->addrs = a;
	}
	c->addrs[c->n_addrs].ip = gn_pool_strdup(c->pool, ip);
	c->addrs[c->n_addrs].port = port;
	c->n_addrs++;
	return 0;
}

int gn_smtp_client_connect(struct gn_smtp_client *c, const char **error_r)
{
	if (c->started || c->n_addrs == 0) {
		*error_r = c->started ? "the client has started" : "no address to connect to";
		return -1;
	}
	c->started = true;
	c->cur = 0;
	connect_next(c);
	return 0;
}

static bool addr_ok(const char *s, bool *utf8)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++, n++) {
		if (*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>')
			return false;
		if (*p >= 0x80)
			*utf8 = true;
	}
	/* RFC 5321 4.5.3.1.3: a path is at most 256 octets. */
	return n <= 254;
}

static void local_refusal_cb(void *data)
{
	struct gn_smtp_client *c = data;
	gn_timer_free(&c->local);
	hold(c);
	if (rcpts_fail(c, &c->local_res))
		tx_end(c, &c->local_res);
	(void)release(c);
}

int gn_smtp_client_send(struct gn_smtp_client *c, const char *from,
			const char *const *rcpts, unsigned n_rcpts,
			unsigned long long size, unsigned flags,
			gn_smtp_client_read_fn *read, void *read_data,
			const char **error_r)
{
	bool utf8 = false;
	const char *params;
	unsigned long long max;

	if (!gn_smtp_client_usable(c)) {
		*error_r = "the SMTP session is not ready for a message";
		return -1;
	}
	if (n_rcpts == 0 || n_rcpts > CLIENT_MAX_RCPTS || read == NULL) {
		*error_r = "between 1 and 1000 recipients, and a reader, are needed";
		return -1;
	}
	if (from == NULL || !addr_ok(from, &utf8)) {
		*error_r = "the sender address has spaces, control characters or brackets";
		return -1;
	}
	for (unsigned i = 0; i < n_rcpts; i++) {
		if (rcpts[i] == NULL || rcpts[i][0] == '\0' || !addr_ok(rcpts[i], &utf8)) {
			*error_r = "a recipient address is empty or has spaces, control "
				   "characters or brackets";
			return -1;
		}
	}
	if (utf8)
		flags |= GN_SMTP_SEND_SMTPUTF8;

	gn_pool_free(&c->txp_old);
	c->txp_old = c->txp;
	c->txp = gn_pool_new();
	c->from = gn_pool_strdup(c->txp, from);
	c->rcpts = gn_pool_alloc(c->txp, n_rcpts * sizeof(char *));
	for (unsigned i = 0; i < n_rcpts; i++)
		c->rcpts[i] = gn_pool_strdup(c->txp, rcpts[i]);
	c->rstate = gn_pool_alloc(c->txp, n_rcpts);
	c->n_rcpts = n_rcpts;
	c->accepted = 0;
	c->next_rcpt = 0;
	c->size = size;
	c->flags = flags;
	c->read = read;
	c->read_data = read_data;
	c->mail_failed = false;
	c->pend_cap = n_rcpts + 4;
	c->pend = gn_pool_alloc(c->txp, c->pend_cap * sizeof(enum pend));
	c->pend_head = c->pend_len = 0;
	memset(&c->dot, 0, sizeof(c->dot));
	c->chunk = NULL;
	c->chunk_left = 0;
	result_local(&c->tx_fail, GN_SMTP_PHASE_RCPT, 554, "5.5.1", "no valid recipients",
		     true);

	/* Refusals before anything is sent: from the loop, as replies
	 * would come. */
	if ((flags & GN_SMTP_SEND_SMTPUTF8) &&
	    (c->ehlo == NULL || !smtp_ehlo_keyword(c->ehlo, "SMTPUTF8", NULL)))
		/* RFC 6531 3.2: no downgrade here, so no delivery. */
		result_local(&c->local_res, GN_SMTP_PHASE_MAIL, 554, "5.6.7",
			     "the message needs SMTPUTF8 (UTF-8 addresses or headers) and the "
			     "server does not offer it", true);
	else if ((flags & GN_SMTP_SEND_REQUIRETLS) &&
		 (!c->is_tls || c->ehlo == NULL || !smtp_ehlo_keyword(c->ehlo, "REQUIRETLS", NULL)))
		/* RFC 8689: never to a server without TLS or without
		 * REQUIRETLS (5.7.30, RFC 8689). */
		result_local(&c->local_res, GN_SMTP_PHASE_MAIL, 554, "5.7.30",
			     c->is_tls ? "the message requires TLS (REQUIRETLS) and the server "
			     "does not offer REQUIRETLS" : "the message requires TLS (REQUIRETLS) "
			     "and the connection is not TLS", true);
	else if ((flags & GN_SMTP_SEND_8BITMIME) &&
		 (c->ehlo == NULL || !smtp_ehlo_keyword(c->ehlo, "8BITMIME", NULL)))
		/* RFC 6152 3: 8-bit data only to a server that offers it;
		 * the client does not convert. */
		result_local(&c->local_res, GN_SMTP_PHASE_MAIL, 554, "5.6.3",
			     "the message has 8-bit content and the server does not offer "
			     "8BITMIME", true);
	else if (size > 0 && c->ehlo != NULL && smtp_ehlo_keyword(c->ehlo, "SIZE", &params) &&
		 (max = smtp_ehlo_size(params)) > 0 && size > max)
		/* RFC 1870 6. */
		result_local(&c->local_res, GN_SMTP_PHASE_MAIL, 552, "5.3.4",
			     gn_pool_printf(c->txp, "the message (%llu octets) is larger than "
					    "the server takes (%llu)", size, max), true);
	else
		c->local_res.size = 0;
	if (c->local_res.size != 0) {
		gn_log(GN_LOG_INFO, "smtp", "event=client_refused_locally id=%s remote=%s "
		       "reason=%s", gn_conn_id(c->conn), c->remote_ip,
		       gn_log_quote(0, c->local_res.text));
		c->local = gn_timer_new(0, false, local_refusal_cb, c);
		set_state(c, C_TX);
		return 0;
	}

	c->pipelining = c->ehlo != NULL && smtp_ehlo_keyword(c->ehlo, "PIPELINING", NULL);
	set_state(c, C_TX);
	if (c->need_rset) {
		cmd(c, "RSET");
		pend_push(c, P_RSET);
		if (c->pipelining)
			send_mail(c);
	} else {
		send_mail(c);
	}
	set_state(c, C_TX);
	return 0;
}

bool gn_smtp_client_usable(const struct gn_smtp_client *c)
{
	return c->st == C_READY && c->conn != NULL && !gn_conn_is_closed(c->conn) &&
	       c->local == NULL;
}

static void quit_cb(void *data)
{
	struct gn_smtp_client *c = data;
	gn_timer_free(&c->local);
	set_state(c, C_CLOSED);
	if (c->h.closed != NULL)
		c->h.closed(c, c->data);
}

void gn_smtp_client_quit(struct gn_smtp_client *c)
{
	c->quit_wanted = true;
	if (c->conn != NULL && !gn_conn_is_closed(c->conn)) {
		if (c->st == C_READY) {
			set_state(c, C_QUIT);
			cmd(c, "QUIT");
		} else {
			set_state(c, C_QUIT);
			gn_conn_close(c->conn, "quit");
		}
		return;
	}
	if (c->conn == NULL && c->local == NULL && c->st != C_CLOSED)
		c->local = gn_timer_new(0, false, quit_cb, c);
}

void gn_smtp_client_free(struct gn_smtp_client **cp)
{
	struct gn_smtp_client *c;
	if (cp == NULL || *cp == NULL)
		return;
	c = *cp;
	*cp = NULL;
	if (c->freed)
		return;
	c->freed = true;
	(void)release(c);
}

const char *gn_smtp_client_remote_ip(const struct gn_smtp_client *c)
{
	return c->remote_ip;
}

unsigned gn_smtp_client_remote_port(const struct gn_smtp_client *c)
{
	return c->remote_port;
}

bool gn_smtp_client_is_tls(const struct gn_smtp_client *c)
{
	return c->is_tls;
}

const char *gn_smtp_client_tls_version(const struct gn_smtp_client *c)
{
	return c->tls_version;
}

const char *gn_smtp_client_tls_cipher(const struct gn_smtp_client *c)
{
	return c->is_tls ? c->tls_cipher : NULL;
}

bool gn_smtp_client_tls_verified(const struct gn_smtp_client *c)
{
	return c->verified;
}

const char *gn_smtp_client_tls_verify_error(const struct gn_smtp_client *c)
{
	return c->verify_error;
}

bool gn_smtp_client_has_extension(const struct gn_smtp_client *c, const char *keyword,
				  const char **params_r)
{
	if (c->ehlo == NULL) {
		if (params_r != NULL)
			*params_r = NULL;
		return false;
	}
	return smtp_ehlo_keyword(c->ehlo, keyword, params_r);
}
