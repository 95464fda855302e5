/*
 * core/smtp/server.c: the SMTP server engine (gannet/smtp.h): the session.
 *
 * One engine, many policies: the inbound MX (modules/smtp) and later
 * submission register a server each, with their own settings, policy
 * callbacks and extensions; the engine speaks the protocol.  Modelled on
 * OpenSMTPD's smtp_session.c (a static command table, every state change
 * through one function that logs it, one function that writes replies) and
 * Dovecot's lib-smtp (a server engine with the policy behind callbacks).
 * internal.h says which file holds what; this one holds:
 *
 *   smtp_input()      the connection's input handler: a loop that, while no
 *                     policy answer is awaited and no reply is held back,
 *                     takes what the buffer holds and hands it to the
 *                     parser of the current state: command and continuation
 *                     lines (command.c), DATA text or BDAT chunk octets
 *                     (data.c).  Each consumes what it used and keeps its
 *                     state in the session, so a partial read resumes where
 *                     it stopped (STYLE.md habit 6).
 *   smtp_set_state()  every state change: logs it and sets the timeout
 *                     RFC 5321 4.5.3.2 gives the state.
 *   smtp_reply()      every reply: enhanced status codes (RFC 2034),
 *                     multi-line replies, error counting and the delay of
 *                     replies to a client that makes too many errors.
 *   time limits       a timer for the whole session and one for the
 *                     transfer of each message: the idle timeouts alone let
 *                     a client that sends a byte a minute hold a slot for
 *                     ever.
 */
#include "smtp/internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *const smtp_state_names[] = {
	"connect", "init", "helo", "mail", "rcpt", "bdat", "data", "chunk",
	"tls", "more", "quit",
};

static unsigned long long tx_serial;

/* ---- settings ---- */

void gn_smtp_settings_init(struct gn_smtp_settings *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	st->hostname = NULL;
	st->max_message_size = 50ull * 1024 * 1024;
	st->max_recipients = 100;
	st->max_line_length = 512;
	st->max_commands = 1000;
	st->error_delay_after = 10;
	st->error_delay_ms = 1000;
	st->max_errors = 20;
	st->timeout_initial_ms = 5 * 60 * 1000;
	st->timeout_mail_ms = 5 * 60 * 1000;
	st->timeout_rcpt_ms = 5 * 60 * 1000;
	st->timeout_data_init_ms = 2 * 60 * 1000;
	st->timeout_data_block_ms = 3 * 60 * 1000;
	st->timeout_data_term_ms = 10 * 60 * 1000;
	st->chunking = true;
	st->smtputf8 = true;
	/* 50 MB at 50 kB/s takes 17 min. */
	st->timeout_data_total_ms = 20 * 60 * 1000;
	st->timeout_session_ms = 60 * 60 * 1000;
	/* RFC 5321 6.3: "normally at least 100". */
	st->max_received_headers = 100;
}

static int read_uint(struct gn_config *sect, const char *name, unsigned *v,
		     long long min, long long max)
{
	long long x;
	int r = gn_config_int(sect, name, (long long)*v, min, max, &x);
	if (r >= 0)
		*v = (unsigned)x;
	return r;
}

static int read_ms(struct gn_config *sect, const char *name, unsigned long *v)
{
	long long x;
	int r = gn_config_duration_ms(sect, name, (long long)*v, &x);
	if (r > 0 && (x < 1000 || x > 24LL * 3600 * 1000)) {
		gn_config_error(sect, name, "%s.%s: must be between 1s and 1d",
				gn_config_path(sect), name);
		return -1;
	}
	if (r >= 0)
		*v = (unsigned long)x;
	return r;
}

int gn_smtp_settings_read(struct gn_config *sect, struct gn_smtp_settings *st)
{
	int bad = 0;
	unsigned long long size;
	long long ms;
	int r;

	r = gn_config_size(sect, "max_message_size", st->max_message_size, &size);
	if (r > 0 && (size < 1024 || size > (1ull << 40))) {
		gn_config_error(sect, "max_message_size", "%s.max_message_size: must be "
				"between 1k and 1024G", gn_config_path(sect));
		r = -1;
	}
	if (r >= 0)
		st->max_message_size = size;
	bad |= r < 0;
	bad |= read_uint(sect, "max_recipients", &st->max_recipients, 1, 100000) < 0;
	/* RFC 5321 4.5.3.1.4: 512 at least; the input buffer bounds it. */
	bad |= read_uint(sect, "max_line_length", &st->max_line_length, 512,
			 SMTP_MAX_INPUT / 2) < 0;
	bad |= read_uint(sect, "max_commands", &st->max_commands, 10, 10000000) < 0;
	bad |= read_uint(sect, "max_errors", &st->max_errors, 1, 100000) < 0;
	bad |= read_uint(sect, "error_delay_after", &st->error_delay_after, 0, 100000) < 0;
	r = gn_config_duration_ms(sect, "error_delay", (long long)st->error_delay_ms, &ms);
	if (r > 0 && (ms < 0 || ms > 60000)) {
		gn_config_error(sect, "error_delay", "%s.error_delay: must be between "
				"0s and 1m", gn_config_path(sect));
		r = -1;
	}
	if (r >= 0)
		st->error_delay_ms = (unsigned long)ms;
	bad |= r < 0;
	bad |= read_ms(sect, "timeout_initial", &st->timeout_initial_ms) < 0;
	bad |= read_ms(sect, "timeout_mail", &st->timeout_mail_ms) < 0;
	bad |= read_ms(sect, "timeout_rcpt", &st->timeout_rcpt_ms) < 0;
	bad |= read_ms(sect, "timeout_data_init", &st->timeout_data_init_ms) < 0;
	bad |= read_ms(sect, "timeout_data_block", &st->timeout_data_block_ms) < 0;
	bad |= read_ms(sect, "timeout_data_term", &st->timeout_data_term_ms) < 0;
	bad |= read_ms(sect, "timeout_data_total", &st->timeout_data_total_ms) < 0;
	bad |= read_ms(sect, "timeout_session", &st->timeout_session_ms) < 0;
	bad |= read_uint(sect, "max_received_headers", &st->max_received_headers,
			 1, 100000) < 0;
	bad |= gn_config_bool(sect, "chunking", st->chunking, &st->chunking) < 0;
	bad |= gn_config_bool(sect, "smtputf8", st->smtputf8, &st->smtputf8) < 0;
	return bad ? -1 : 0;
}

const struct gn_smtp_settings *gn_smtp_server_settings(const struct gn_smtp_server *srv)
{
	return &srv->set;
}

/* ---- small helpers ---- */

const char *smtp_hostname(const struct gn_smtp_session *s)
{
	if (s->srv->set.hostname != NULL)
		return s->srv->set.hostname;
	return gn_config_hostname();
}

const char *smtp_area(const struct gn_smtp_session *s)
{
	return s->srv->area;
}

void smtp_input_update(struct gn_smtp_session *s)
{
	bool want_pause = s->pending != GN_SMTP_STAGE_NONE || s->holding;

	if (gn_conn_is_closed(s->conn))
		return;
	if (want_pause && !s->paused) {
		s->paused = true;
		gn_conn_input_pause(s->conn);
	} else if (!want_pause && s->paused) {
		s->paused = false;
		gn_conn_input_resume(s->conn);
	}
}

/* ---- the one function for state changes ---- */

void smtp_set_state(struct gn_smtp_session *s, enum sstate st)
{
	const struct gn_smtp_settings *set = &s->srv->set;
	unsigned long ms = 0;

	if (s->state != st)
		gn_log(GN_LOG_DEBUG, smtp_area(s), "event=smtp_state id=%s from=%s to=%s",
		       gn_conn_id(s->conn), smtp_state_names[s->state], smtp_state_names[st]);
	/* RFC 5321 4.5.3.2: how long the client may take in this state.  A
	 * continuation line gets the time of the state its command was given
	 * in. */
	switch (st == ST_MORE ? s->cmd_return : st) {
	case ST_INIT:
	case ST_HELO:
		ms = set->timeout_initial_ms;
		break;
	case ST_MAIL:
		ms = set->timeout_mail_ms;
		break;
	case ST_RCPT:
	case ST_BDAT:
		ms = set->timeout_rcpt_ms;
		break;
	case ST_DATA:
	case ST_CHUNK:
		ms = set->timeout_data_init_ms;
		s->data_started = false;
		break;
	case ST_CONNECT:
	case ST_TLS:
	case ST_MORE:
	case ST_QUIT:
		break;
	}
	s->state = st;
	if (ms > 0 && !gn_conn_is_closed(s->conn))
		gn_conn_set_idle_timeout(s->conn, ms);
}

/* ---- the one function for replies ---- */

static void delay_done(void *data)
{
	struct gn_smtp_session *s = data;

	s->holding = false;
	if (!gn_conn_is_closed(s->conn) && gn_buf_len(s->held) > 0)
		gn_conn_write(s->conn, gn_buf_data(s->held), gn_buf_len(s->held));
	gn_buf_clear(s->held);
	smtp_input_update(s);
}

/* Formats a reply: text may hold lines separated by "\n"; each line gets
 * the code and (when enh is not NULL) the enhanced status code (RFC 2034
 * 3: on every line of the reply).  Control characters in the text are
 * replaced, so a policy's text can never break the protocol.  A 3xx reply
 * keeps an empty text (AUTH's "334 ") and may be longer. */
static void reply_format(struct gn_buf *b, int code, const char *enh, const char *text)
{
	bool more = code >= 300 && code < 400;
	const char *p = text != NULL && (*text != '\0' || more) ? text : "OK";
	size_t max = more ? SMTP_MORE_LINE_MAX : SMTP_REPLY_LINE_MAX;

	for (;;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		size_t n = len > max ? max : len;

		gn_buf_printf(b, "%03d%c", code, nl != NULL ? '-' : ' ');
		if (enh != NULL)
			gn_buf_printf(b, "%s ", enh);
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)p[i];
			char ch = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
			gn_buf_append(b, &ch, 1);
		}
		gn_buf_append(b, "\r\n", 2);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
}

/* Writes held replies at once (before a 421). */
static void flush_held(struct gn_smtp_session *s)
{
	if (s->holding && gn_buf_len(s->held) > 0) {
		gn_conn_write(s->conn, gn_buf_data(s->held), gn_buf_len(s->held));
		gn_buf_clear(s->held);
	}
}

void smtp_reply_text(struct gn_smtp_session *s, int code, const char *enh,
		     const char *text)
{
	struct gn_buf *b = gn_buf_new(0);
	const struct gn_smtp_settings *set = &s->srv->set;
	bool counted = false;

	reply_format(b, code, enh, text);
	gn_log(GN_LOG_DEBUG, smtp_area(s), "event=smtp_reply id=%s code=%d enhanced=%s",
	       gn_conn_id(s->conn), code, enh != NULL ? enh : "-");

	/* Errors: every 4xx/5xx but "too many recipients" (a client's normal
	 * flow control, RFC 5321 4.5.3.1.10) and 421 (the end anyway). */
	if (code >= 400 && code != 421 &&
	    !(code == 452 && enh != NULL && strcmp(enh, "4.5.3") == 0)) {
		s->errors++;
		counted = true;
	}
	if (counted && s->errors >= set->max_errors) {
		flush_held(s);
		gn_conn_write(s->conn, gn_buf_data(b), gn_buf_len(b));
		gn_buf_free(&b);
		gn_log(GN_LOG_INFO, smtp_area(s), "event=smtp_too_many_errors id=%s remote=%s "
		       "errors=%u", gn_conn_id(s->conn), gn_conn_remote_ip(s->conn),
		       s->errors);
		gn_conn_printf(s->conn, "421 4.7.0 %s Too many errors, closing connection\r\n",
			       smtp_hostname(s));
		smtp_set_state(s, ST_QUIT);
		gn_conn_close(s->conn, "too many errors");
		return;
	}
	if (counted && set->error_delay_after > 0 && s->errors > set->error_delay_after &&
	    set->error_delay_ms > 0 && !s->holding) {
		/* Postfix's smtpd_error_sleep_time: a client that keeps making
		 * errors waits for each answer. */
		s->holding = true;
		if (s->delay_timer == NULL)
			s->delay_timer = gn_timer_new(set->error_delay_ms, false,
						      delay_done, s);
		else
			gn_timer_reset(s->delay_timer);
	}
	if (s->holding)
		gn_buf_append(s->held, gn_buf_data(b), gn_buf_len(b));
	else
		gn_conn_write(s->conn, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	smtp_input_update(s);
}

void smtp_reply(struct gn_smtp_session *s, int code, const char *enh, const char *fmt, ...)
{
	va_list ap;
	char *text;
	struct gn_buf *b = gn_buf_new(0);

	va_start(ap, fmt);
	gn_buf_vprintf(b, fmt, ap);
	va_end(ap);
	text = gn_buf_steal(&b);
	smtp_reply_text(s, code, enh, text);
	gn_free(text);
}

/* The last reply, "CODE ENH HOSTNAME TEXT", and close: held replies go
 * first, no delay.  Nothing when the connection is closing already (the
 * reply before it may have reached max_errors, which said 421 and
 * closed). */
void smtp_reply_bye(struct gn_smtp_session *s, int code, const char *enh,
		    const char *text, const char *reason)
{
	if (gn_conn_is_closed(s->conn))
		return;
	flush_held(s);
	gn_log(GN_LOG_DEBUG, smtp_area(s), "event=smtp_reply id=%s code=%d enhanced=%s",
	       gn_conn_id(s->conn), code, enh);
	gn_conn_printf(s->conn, "%03d %s %s %s\r\n", code, enh, smtp_hostname(s), text);
	smtp_set_state(s, ST_QUIT);
	gn_conn_close(s->conn, reason);
}

void smtp_reply_close(struct gn_smtp_session *s, const char *enh, const char *text,
		      const char *reason)
{
	smtp_reply_bye(s, 421, enh, text, reason);
}

/* ---- transactions ---- */

void smtp_tx_free(struct gn_smtp_tx **txp)
{
	struct gn_smtp_tx *tx = *txp;
	if (tx == NULL)
		return;
	gn_free(tx->rcpts);
	gn_free(tx->slots);
	gn_buf_free(&tx->added);
	gn_pool_free(&tx->pool);
	gn_free(tx);
	*txp = NULL;
}

struct gn_smtp_tx *smtp_tx_new(struct gn_smtp_session *s)
{
	struct gn_smtp_tx *tx = gn_calloc(1, sizeof(*tx));
	tx->pool = gn_pool_new();
	snprintf(tx->id, sizeof(tx->id), "%lx%x%llx", (unsigned long)gn_now(),
		 (unsigned)base_pid() & 0xfffff, ++tx_serial);
	s->tx_counter++;
	return tx;
}

/* Ends the transaction; with call_reset, tells the policy it was
 * abandoned. */
void smtp_tx_end(struct gn_smtp_session *s, bool call_reset)
{
	smtp_data_timer_stop(s);
	if (s->tx == NULL)
		return;
	if (call_reset && s->srv->policy.reset != NULL)
		s->srv->policy.reset(s, s->srv->data);
	smtp_taps_tx_end(s);
	smtp_tx_free(&s->tx);
}

enum sstate smtp_idle_state(const struct gn_smtp_session *s)
{
	return s->helo != NULL ? ST_HELO : ST_INIT;
}

/* RFC 3207 4.2: after STARTTLS the server forgets what the client told it;
 * GN_SMTP_CMD_RESTART commands (XCLIENT) do the same.  The caller sets the
 * state. */
void smtp_forget_client(struct gn_smtp_session *s)
{
	smtp_tx_end(s, true);
	gn_free(s->helo);
	s->helo = NULL;
	s->ehlo = false;
	s->offered = 0;
	s->authenticated = false;
}

/* ---- time limits ---- */

/* One of the limits passed: 421 4.4.2 and close, except while the policy
 * decides about a complete message (it may be committing it: the client
 * hears its answer, then the 421). */
void smtp_time_limit(struct gn_smtp_session *s, enum smtp_limit which)
{
	if (gn_conn_is_closed(s->conn) || s->state == ST_QUIT)
		return;
	if (s->pending == GN_SMTP_STAGE_DATA_END) {
		s->expired = which;
		return;
	}
	s->expired = LIMIT_NONE;
	gn_log(GN_LOG_INFO, smtp_area(s), "event=smtp_time_limit id=%s remote=%s limit=%s "
	       "state=%s tx=%s", gn_conn_id(s->conn), gn_conn_remote_ip(s->conn),
	       which == LIMIT_DATA ? "data" : "session", smtp_state_names[s->state],
	       s->tx != NULL ? s->tx->id : "-");
	if (s->state == ST_TLS) {
		/* Mid-handshake: no reply can be read. */
		smtp_set_state(s, ST_QUIT);
		gn_conn_close(s->conn, "session time limit");
		return;
	}
	/* RFC 5321 4.5.3.2: a timeout is 421 4.4.2 (4.4.2: "bad connection"). */
	if (which == LIMIT_DATA)
		smtp_reply_close(s, "4.4.2", "Data transfer time limit exceeded, closing "
				 "connection", "data time limit");
	else
		smtp_reply_close(s, "4.4.2", "Session time limit exceeded, closing "
				 "connection", "session time limit");
}

static void session_expired(void *data)
{
	smtp_time_limit(data, LIMIT_SESSION);
}

static void data_expired(void *data)
{
	smtp_time_limit(data, LIMIT_DATA);
}

/* From the acceptance of DATA or of the first BDAT to the end of the
 * message. */
void smtp_data_timer_start(struct gn_smtp_session *s)
{
	gn_timer_free(&s->data_timer);
	s->data_timer = gn_timer_new(s->srv->set.timeout_data_total_ms, false,
				     data_expired, s);
}

void smtp_data_timer_stop(struct gn_smtp_session *s)
{
	gn_timer_free(&s->data_timer);
}

/* ---- the protocol handler ---- */

static void smtp_input(struct gn_conn *conn, void *data)
{
	struct gn_smtp_session *s = gn_conn_data(conn);
	(void)data;

	if (s == NULL)
		return;
	while (!gn_conn_is_closed(conn) && s->pending == GN_SMTP_STAGE_NONE &&
	       !s->holding && s->state != ST_QUIT && s->state != ST_TLS &&
	       s->state != ST_CONNECT) {
		const char *p;
		size_t n;

		gn_conn_input_peek(conn, &p, &n);
		if (n == 0 && !(s->state == ST_CHUNK && s->chunk_left == 0))
			break;
		if (s->state == ST_DATA) {
			gn_conn_input_consume(conn, smtp_data_feed(s, p, n));
		} else if (s->state == ST_CHUNK) {
			gn_conn_input_consume(conn, smtp_chunk_feed(s, p, n));
		} else if (!smtp_line_input(s, p, n)) {
			break;
		}
	}
	smtp_input_update(s);
}

static int smtp_open(struct gn_conn *conn, void *data)
{
	struct gn_smtp_server *srv = data;
	struct gn_smtp_session *s = gn_calloc(1, sizeof(*s));

	s->srv = srv;
	s->conn = conn;
	s->state = ST_CONNECT;
	s->line = gn_malloc(srv->max_read_line + 1);
	s->held = gn_buf_new(0);
	gn_conn_set_data(conn, s);
	gn_conn_set_idle_timeout(conn, srv->set.timeout_initial_ms);
	s->session_timer = gn_timer_new(srv->set.timeout_session_ms, false,
					session_expired, s);
	smtp_policy_call(s, GN_SMTP_STAGE_CONNECT);
	return 0;
}

static void smtp_tls_done(struct gn_conn *conn, int ok, void *data)
{
	struct gn_smtp_session *s = gn_conn_data(conn);
	(void)data;
	if (s == NULL || !ok)
		return;
	gn_log(GN_LOG_DEBUG, smtp_area(s), "event=smtp_tls id=%s version=%s cipher=%s",
	       gn_conn_id(conn), gn_conn_tls_version(conn) ? gn_conn_tls_version(conn) : "?",
	       gn_conn_tls_cipher(conn) ? gn_conn_tls_cipher(conn) : "?");
	smtp_set_state(s, ST_INIT);
}

static void smtp_timeout(struct gn_conn *conn, void *data)
{
	struct gn_smtp_session *s = gn_conn_data(conn);
	(void)data;
	if (s == NULL)
		return;
	gn_log(GN_LOG_INFO, smtp_area(s), "event=smtp_timeout id=%s state=%s pending=%d",
	       gn_conn_id(conn), smtp_state_names[s->state], (int)s->pending);
	/* RFC 5321 4.5.3.2. */
	gn_conn_printf(conn, "421 4.4.2 %s Timeout, closing connection\r\n", smtp_hostname(s));
}

static void smtp_shutdown(struct gn_conn *conn, void *data)
{
	struct gn_smtp_session *s = gn_conn_data(conn);
	const char *p;
	size_t n;
	(void)data;

	if (s == NULL)
		return;
	s->shutdown = true;
	gn_conn_input_peek(conn, &p, &n);
	/* Idle between commands (or in a command's exchange, waiting for the
	 * client): say goodbye now.  Otherwise the command or message in
	 * progress finishes first. */
	if (s->pending == GN_SMTP_STAGE_NONE && n == 0 && !s->skipping &&
	    (s->state == ST_INIT || s->state == ST_HELO || s->state == ST_MAIL ||
	     s->state == ST_RCPT || s->state == ST_BDAT || s->state == ST_MORE))
		smtp_reply_close(s, "4.3.2", "Service shutting down, closing connection",
				 "shutdown");
}

static void smtp_close(struct gn_conn *conn, void *data)
{
	struct gn_smtp_session *s = gn_conn_data(conn);
	(void)data;

	if (s == NULL)
		return;
	/* Nothing pending can be answered any more: the command's cancel(),
	 * the policy's reset() and disconnect() cancel their work. */
	if (s->cmd != NULL)
		smtp_ext_command_end(s, true);
	if (s->tx != NULL) {
		char id[sizeof(s->tx->id)];
		memcpy(id, s->tx->id, sizeof(id));
		smtp_tx_end(s, true);
		gn_log(GN_LOG_INFO, smtp_area(s), "event=smtp_aborted id=%s tx=%s state=%s",
		       gn_conn_id(conn), id, smtp_state_names[s->state]);
	}
	if (s->srv->policy.disconnect != NULL)
		s->srv->policy.disconnect(s, s->srv->data);
	gn_timer_free(&s->delay_timer);
	gn_timer_free(&s->session_timer);
	gn_timer_free(&s->data_timer);
	gn_buf_free(&s->held);
	gn_free(s->helo);
	gn_free(s->helo_pending);
	gn_free(s->chunk_text);
	gn_free(s->line);
	gn_conn_set_data(conn, NULL);
	gn_free(s);
}

struct gn_smtp_server *gn_smtp_server_register(struct gn_module_ctx *ctx,
					       const char *proto_name,
					       const struct gn_smtp_settings *settings,
					       const struct gn_smtp_policy *policy,
					       void *data, const char **error_r)
{
	struct gn_smtp_server *srv;
	struct gn_smtp_policy pol;
	size_t n;

	/* Nothing fails open (gannet/smtp.h): without these the engine would
	 * have to invent a decision about every recipient and message. */
	memset(&pol, 0, sizeof(pol));
	if (policy != NULL) {
		n = policy->size < sizeof(pol) ? policy->size : sizeof(pol);
		memcpy(&pol, policy, n);
	}
	pol.size = sizeof(pol);
	if (pol.rcpt == NULL) {
		*error_r = "the SMTP policy has no rcpt callback (it must decide about "
			   "every recipient)";
		return NULL;
	}
	if (pol.data_end == NULL) {
		*error_r = "the SMTP policy has no data_end callback (it must store or "
			   "refuse every message)";
		return NULL;
	}
	srv = gn_calloc(1, sizeof(*srv));
	srv->policy = pol;
	gn_smtp_settings_init(&srv->set);
	if (settings != NULL) {
		n = settings->size < sizeof(srv->set) ? settings->size : sizeof(srv->set);
		memcpy(&srv->set, settings, n);
		srv->set.size = sizeof(srv->set);
	}
	if (srv->set.max_line_length < 512)
		srv->set.max_line_length = 512;
	if (srv->set.max_line_length > SMTP_MAX_INPUT / 2)
		srv->set.max_line_length = SMTP_MAX_INPUT / 2;
	/* A settings struct of an older module has no time limits. */
	if (srv->set.timeout_data_total_ms == 0 || srv->set.timeout_session_ms == 0 ||
	    srv->set.max_received_headers == 0) {
		struct gn_smtp_settings def;
		gn_smtp_settings_init(&def);
		if (srv->set.timeout_data_total_ms == 0)
			srv->set.timeout_data_total_ms = def.timeout_data_total_ms;
		if (srv->set.timeout_session_ms == 0)
			srv->set.timeout_session_ms = def.timeout_session_ms;
		if (srv->set.max_received_headers == 0)
			srv->set.max_received_headers = def.max_received_headers;
	}
	srv->max_read_line = srv->set.max_line_length;
	srv->data = data;
	srv->area = gn_strdup(gn_module_name(ctx));
	srv->proto_name = gn_strdup(proto_name);
	srv->proto.size = sizeof(srv->proto);
	srv->proto.name = srv->proto_name;
	srv->proto.max_input = SMTP_MAX_INPUT;
	srv->proto.idle_timeout_ms = srv->set.timeout_initial_ms;
	srv->proto.open = smtp_open;
	srv->proto.input = smtp_input;
	srv->proto.tls_done = smtp_tls_done;
	srv->proto.timeout = smtp_timeout;
	srv->proto.shutdown = smtp_shutdown;
	srv->proto.close = smtp_close;
	if (srv->set.client_cert)
		srv->proto.flags |= GN_PROTO_CLIENT_CERT;
	/* RFC 5321 3.8: a server that cannot serve says 421 and closes. */
	srv->proto.busy_reply = "421 4.7.0 Too many connections, try again later\r\n";
	if (gn_protocol_register(ctx, &srv->proto, srv, error_r) < 0) {
		gn_free(srv->area);
		gn_free(srv->proto_name);
		gn_free(srv);
		return NULL;
	}
	return srv;
}

/* ---- accessors ---- */

struct gn_conn *gn_smtp_session_conn(struct gn_smtp_session *s)
{
	return s->conn;
}

void gn_smtp_session_set_data(struct gn_smtp_session *s, void *data)
{
	s->data = data;
}

void *gn_smtp_session_data(const struct gn_smtp_session *s)
{
	return s->data;
}

/* While the policy decides about a HELO, the name being decided (a second
 * EHLO's, not the first's); after a refusal, the last accepted one. */
const char *gn_smtp_session_helo(const struct gn_smtp_session *s)
{
	return s->helo_pending != NULL ? s->helo_pending : s->helo;
}

bool gn_smtp_session_is_ehlo(const struct gn_smtp_session *s)
{
	return s->helo_pending != NULL ? s->helo_pending_ehlo : s->ehlo;
}

const char *gn_smtp_session_protocol(const struct gn_smtp_session *s)
{
	static const char *const names[2][2][2][2] = {
		/* [utf8][ehlo][tls][auth]; RFC 3848 and RFC 6531 3.7.3 */
		{ { { "SMTP", "SMTP" }, { "SMTPS", "SMTPS" } },
		  { { "ESMTP", "ESMTPA" }, { "ESMTPS", "ESMTPSA" } } },
		{ { { "UTF8SMTP", "UTF8SMTPA" }, { "UTF8SMTPS", "UTF8SMTPSA" } },
		  { { "UTF8SMTP", "UTF8SMTPA" }, { "UTF8SMTPS", "UTF8SMTPSA" } } },
	};
	bool utf8 = s->tx != NULL && s->tx->smtputf8;

	return names[utf8][s->ehlo][gn_conn_is_tls(s->conn)][s->authenticated];
}

void gn_smtp_session_set_authenticated(struct gn_smtp_session *s, bool authenticated)
{
	s->authenticated = authenticated;
}

bool gn_smtp_session_is_authenticated(const struct gn_smtp_session *s)
{
	return s->authenticated;
}

const char *gn_smtp_session_hostname(const struct gn_smtp_session *s)
{
	return smtp_hostname(s);
}

enum gn_smtp_stage gn_smtp_session_stage(const struct gn_smtp_session *s)
{
	return s->pending;
}

struct gn_smtp_tx *gn_smtp_session_tx(struct gn_smtp_session *s)
{
	return s->tx;
}

/* ---- Received (RFC 5321 4.4) ---- */

/* RFC 5322 3.3 date-time in UTC ("Mon, 02 Jan 2026 15:04:05 +0000"),
 * independent of the locale. */
static char *rfc5322_date(struct gn_pool *pool, time_t now)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&now, &tm);
	return gn_pool_printf(pool, "%s, %02d %s %04d %02d:%02d:%02d +0000",
			      days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
			      tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The client's HELO name as a trace header may carry it: 7-bit printable,
 * nothing that would end the "from" clause early.  A Unicode name that is
 * a domain becomes A-labels (RFC 6531 3.7.3 keeps trace fields readable by
 * 7-bit software); any other octet is escaped as \xHH, never copied: an
 * 8-bit HELO is invalid UTF-8 in a header otherwise. */
static const char *received_helo(struct gn_pool *pool, const char *name)
{
	struct gn_buf *b;
	const char *ascii = NULL, *err = NULL;
	bool plain = true;
	char *out;

	if (name == NULL)
		return "unknown";
	for (const char *p = name; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x21 || c > 0x7e || c == '(' || c == ')' || c == ';' || c == '\\')
			plain = false;
	}
	if (plain)
		return name;
	if (gn_addr_parse_domain(pool, name, strlen(name), &ascii, NULL, &err) == 0)
		return ascii;
	b = gn_buf_new(0);
	for (const char *p = name; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x21 || c > 0x7e || c == '(' || c == ')' || c == ';' || c == '\\')
			gn_buf_printf(b, "\\x%02X", c);
		else
			gn_buf_append(b, p, 1);
	}
	out = gn_pool_strndup(pool, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	return out;
}

char *gn_smtp_session_received(struct gn_smtp_session *s, struct gn_pool *pool,
			       const struct gn_addr *rcpt)
{
	struct gn_conn *conn = s->conn;
	const char *ip = gn_conn_remote_ip(conn);
	char *tls = NULL, *for_clause = NULL;

	if (s->tx == NULL)
		return NULL;
	if (gn_conn_is_tls(conn)) {
		const char *v = gn_conn_tls_version(conn), *c = gn_conn_tls_cipher(conn);
		/* RFC 8314 4.3 asks for the TLS details in Received; in the
		 * comment form Postfix made familiar. */
		tls = gn_pool_printf(pool, "\r\n\t(using %s with cipher %s)",
				     v != NULL ? v : "TLS", c != NULL ? c : "unknown");
	}
	if (rcpt != NULL)
		for_clause = gn_pool_printf(pool, "\r\n\tfor <%s>",
					    gn_addr_to_string(pool, rcpt));
	return gn_pool_printf(pool,
			      "Received: from %s (%s%s]) by %s (Gannet)\r\n"
			      "\twith %s%s id %s%s; %s\r\n",
			      received_helo(pool, gn_smtp_session_helo(s)),
			      strchr(ip, ':') != NULL ? "[IPv6:" : "[", ip,
			      smtp_hostname(s), gn_smtp_session_protocol(s),
			      tls != NULL ? tls : "", s->tx->id,
			      for_clause != NULL ? for_clause : "",
			      rfc5322_date(pool, time(NULL)));
}

/* ---- transactions and recipients ---- */

struct gn_pool *gn_smtp_tx_pool(struct gn_smtp_tx *tx)
{
	return tx->pool;
}

const char *gn_smtp_tx_id(const struct gn_smtp_tx *tx)
{
	return tx->id;
}

const struct gn_addr *gn_smtp_tx_from(const struct gn_smtp_tx *tx)
{
	return tx->from;
}

bool gn_smtp_tx_smtputf8(const struct gn_smtp_tx *tx)
{
	return tx->smtputf8;
}

enum gn_smtp_body gn_smtp_tx_body(const struct gn_smtp_tx *tx)
{
	return tx->body;
}

unsigned long long gn_smtp_tx_declared_size(const struct gn_smtp_tx *tx)
{
	return tx->declared_size;
}

unsigned long long gn_smtp_tx_size(const struct gn_smtp_tx *tx)
{
	return tx->size;
}

size_t gn_smtp_tx_rcpt_count(const struct gn_smtp_tx *tx)
{
	return tx->n_rcpts;
}

struct gn_smtp_rcpt *gn_smtp_tx_rcpt(struct gn_smtp_tx *tx, size_t i)
{
	return i < tx->n_rcpts ? tx->rcpts[i] : NULL;
}

int gn_smtp_tx_param(const struct gn_smtp_tx *tx, const char *keyword,
		     const char **value_r)
{
	return smtp_pval_find(tx->params, tx->n_params, keyword, value_r);
}

const struct gn_addr *gn_smtp_rcpt_addr(const struct gn_smtp_rcpt *rcpt)
{
	return rcpt->addr;
}

void gn_smtp_rcpt_set_data(struct gn_smtp_rcpt *rcpt, void *data)
{
	rcpt->data = data;
}

void *gn_smtp_rcpt_data(const struct gn_smtp_rcpt *rcpt)
{
	return rcpt->data;
}

int gn_smtp_rcpt_param(const struct gn_smtp_rcpt *rcpt, const char *keyword,
		       const char **value_r)
{
	return smtp_pval_find(rcpt->params, rcpt->n_params, keyword, value_r);
}
