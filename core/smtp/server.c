/*
 * core/smtp/server.c: the SMTP server engine (gannet/smtp.h).
 *
 * One engine, many policies: the inbound MX (modules/smtp) and later
 * submission register a server each, with their own settings and policy
 * callbacks; the engine speaks the protocol.  Modelled on OpenSMTPD's
 * smtp_session.c (a static command table, every state change through one
 * function that logs it, one function that writes replies) and Dovecot's
 * lib-smtp (a server engine with the policy behind callbacks).
 *
 * How the parts fit:
 *
 *   smtp_input()      the connection's input handler: a loop that, while no
 *                     policy answer is awaited and no reply is held back,
 *                     takes what the buffer holds and hands it to the
 *                     parser of the current state: command lines
 *                     (line_input), DATA text (data_feed) or BDAT chunk
 *                     octets (chunk_feed).  Each consumes what it used and
 *                     keeps its state in the session, so a partial read
 *                     resumes where it stopped (STYLE.md habit 6).
 *   commands[]        verb, states it is valid in, flags, handler.
 *   set_state()       every state change: logs it and sets the timeout
 *                     RFC 5321 4.5.3.2 gives the state.
 *   reply()           every reply: enhanced status codes (RFC 2034),
 *                     multi-line replies, error counting and the delay of
 *                     replies to a client that makes too many errors.
 *   policy_call() /   a policy decision: input pauses until the answer
 *   gn_smtp_answer()  comes (PIPELINING, RFC 2920: commands are answered in
 *                     order; the core sends the replies of a pipelined group
 *                     together when the input is used up).
 *
 * Deliberate choices, with the standards they follow:
 *
 *   - SMTP smuggling: in DATA only CRLF "." CRLF ends the message (RFC 5321
 *     4.1.1.4); a bare CR or a bare LF anywhere in the message (RFC 5321
 *     2.3.8 forbids them) makes the whole message be refused with 554 5.6.0
 *     once its real end has come.  Refused, not normalised: a normalising
 *     server and the next hop could still disagree about where a message
 *     ends, and a refusal tells the sender's administrator at once.  This
 *     is the "reject" mode of Postfix's smtpd_forbid_bare_newline, except
 *     that the session goes on (only the message is refused, nothing that
 *     followed the bare line ending is read as a command).  BDAT chunks are
 *     checked the same way (BINARYMIME is not offered, so the content must
 *     be CRLF lines there too).
 *   - Command lines: at most max_line_length octets with CRLF (RFC 5321
 *     4.5.3.1.4, 512); a longer line is read to its end and answered
 *     500 5.5.2.  A command line may end in a bare LF (lenient: nothing can
 *     be smuggled through a command line, and hand-typed sessions work).
 *   - Text lines in DATA longer than 1000 octets (RFC 5321 4.5.3.1.6) are
 *     accepted as they are: RFC 5321 4.5.3.1 asks servers to impose no
 *     length limits where they can, the parser never buffers a line, and
 *     real mail does carry such lines.  The message size limit still holds.
 *   - A BDAT chunk larger than the whole message size limit is answered
 *     552 5.3.4 and the connection closes, since staying in step would mean
 *     reading all of it; smaller chunks that take the message over the
 *     limit are read, dropped and answered 552 5.3.4.  A BDAT whose size
 *     does not parse is answered 501 and the connection closes: the server
 *     can no longer tell where the chunk ends (RFC 3030 2).
 */
#include "smtp/internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SMTP_MAX_INPUT (64u * 1024u)
#define SMTP_REPLY_LINE_MAX 400u	/* text per reply line */

/* Session states.  The command states are bits for the command table. */
enum sstate {
	ST_CONNECT = 0,	/* waiting for the policy's connect answer */
	ST_INIT,	/* greeted; no HELO yet */
	ST_HELO,	/* HELO/EHLO done, no transaction */
	ST_MAIL,	/* MAIL accepted, no recipient yet */
	ST_RCPT,	/* at least one recipient */
	ST_BDAT,	/* BDAT chunks received, LAST not yet */
	ST_DATA,	/* reading DATA text */
	ST_CHUNK,	/* reading a BDAT chunk's octets */
	ST_TLS,		/* STARTTLS handshake */
	ST_QUIT,	/* closing */
};

static const char *const state_names[] = {
	"connect", "init", "helo", "mail", "rcpt", "bdat", "data", "chunk",
	"tls", "quit",
};

#define SB(st) (1u << (st))
#define S_ANY (SB(ST_INIT) | SB(ST_HELO) | SB(ST_MAIL) | SB(ST_RCPT) | SB(ST_BDAT))

/* DATA parser states (RFC 5321 4.5.2 and 4.1.1.4). */
enum dstate {
	D_BOL = 0,	/* at the start of a line */
	D_DOT,		/* "." at the start of a line */
	D_DOTCR,	/* "." CR at the start of a line */
	D_TEXT,		/* inside a line */
	D_CR,		/* CR inside a line */
};

struct gn_smtp_rcpt {
	struct gn_addr *addr;
	void *data;
};

struct gn_smtp_tx {
	struct gn_pool *pool;
	char id[40];
	struct gn_addr *from;
	bool smtputf8;
	enum gn_smtp_body body;
	unsigned long long declared_size;
	unsigned long long size;
	struct gn_smtp_rcpt **rcpts;
	size_t n_rcpts, cap_rcpts;
	bool bdat;		/* the message comes in BDAT chunks */
	bool data_begun;	/* data_begin was accepted */
	bool too_big;
	bool bad_newline;
	bool chunks_stopped;	/* data_chunk returned -1 */
};

struct gn_smtp_server {
	struct gn_smtp_settings set;
	struct gn_smtp_policy policy;
	void *data;
	char *area;		/* log area: the module's name */
	char *proto_name;
	struct gn_protocol proto;
};

struct gn_smtp_session {
	struct gn_smtp_server *srv;
	struct gn_conn *conn;
	void *data;			/* the policy's */
	enum sstate state;
	enum gn_smtp_stage pending;	/* awaited answer */
	bool paused;			/* we paused the input */
	bool holding;			/* replies are held back (error delay) */
	bool shutdown;			/* the server is stopping */
	bool skipping;			/* reading the rest of a too long line */
	bool ehlo;
	char *helo;			/* gn_malloc'd */
	char *helo_pending;		/* the name of a HELO being decided */
	bool helo_pending_ehlo;
	struct gn_smtp_tx *tx;
	struct gn_smtp_rcpt *rcpt_pending;
	char *line;			/* the current command line, NUL-terminated */
	unsigned commands, errors;
	unsigned long long tx_counter;
	struct gn_buf *held;
	struct gn_timer *delay_timer;
	/* DATA */
	enum dstate dstate;
	bool data_started;
	/* BDAT */
	unsigned long long chunk_left;
	unsigned long long chunk_size;
	bool chunk_last;
	bool chunk_discard;		/* drop the octets, then send chunk_reply */
	bool chunk_ends_tx;		/* after the reply, the transaction ends */
	enum sstate chunk_return;	/* state after a discarded chunk */
	int chunk_code;
	char chunk_enh[16];
	char *chunk_text;		/* gn_malloc'd */
	bool last_cr;			/* the previous chunk octet was CR */
};

static unsigned long long tx_serial;

static void reply(struct gn_smtp_session *s, int code, const char *enh,
		  const char *fmt, ...) GN_PRINTF(4, 5);
static void smtp_input(struct gn_conn *conn, void *data);

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
	bad |= gn_config_bool(sect, "chunking", st->chunking, &st->chunking) < 0;
	bad |= gn_config_bool(sect, "smtputf8", st->smtputf8, &st->smtputf8) < 0;
	return bad ? -1 : 0;
}

const struct gn_smtp_settings *gn_smtp_server_settings(const struct gn_smtp_server *srv)
{
	return &srv->set;
}

/* ---- small helpers ---- */

static const char *hostname(const struct gn_smtp_session *s)
{
	if (s->srv->set.hostname != NULL)
		return s->srv->set.hostname;
	return gn_config_hostname();
}

static const char *area(const struct gn_smtp_session *s)
{
	return s->srv->area;
}

/* Case-insensitive prefix match of an ASCII keyword. */
static bool has_prefix(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static void input_update(struct gn_smtp_session *s)
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

static void set_state(struct gn_smtp_session *s, enum sstate st)
{
	const struct gn_smtp_settings *set = &s->srv->set;
	unsigned long ms = 0;

	if (s->state != st)
		gn_log(GN_LOG_DEBUG, area(s), "event=smtp_state id=%s from=%s to=%s",
		       gn_conn_id(s->conn), state_names[s->state], state_names[st]);
	s->state = st;
	/* RFC 5321 4.5.3.2: how long the client may take in this state. */
	switch (st) {
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
	case ST_QUIT:
		break;
	}
	if (ms > 0 && !gn_conn_is_closed(s->conn))
		gn_conn_set_idle_timeout(s->conn, ms);
}

/* ---- the one function for replies ---- */

static bool enh_valid(const char *e, int code)
{
	/* RFC 3463 2: class "." subject "." detail, 1-3 digits each; the
	 * class agrees with the reply code's first digit. */
	int parts = 0, digits = 0;

	if (e == NULL || e[0] != '0' + code / 100 || e[1] != '.')
		return false;
	for (const char *p = e; ; p++) {
		if (*p >= '0' && *p <= '9') {
			if (++digits > 3)
				return false;
		} else if (*p == '.' || *p == '\0') {
			if (digits == 0)
				return false;
			parts++;
			digits = 0;
			if (*p == '\0')
				break;
		} else {
			return false;
		}
	}
	return parts == 3;
}

static void delay_done(void *data)
{
	struct gn_smtp_session *s = data;

	s->holding = false;
	if (!gn_conn_is_closed(s->conn) && gn_buf_len(s->held) > 0)
		gn_conn_write(s->conn, gn_buf_data(s->held), gn_buf_len(s->held));
	gn_buf_clear(s->held);
	input_update(s);
}

/* Writes a reply: text may hold lines separated by "\n"; each line gets
 * the code and (when enh is not NULL) the enhanced status code (RFC 2034
 * 3: on every line of the reply).  Control characters in the text are
 * replaced, so a policy's text can never break the protocol. */
static void reply_text(struct gn_smtp_session *s, int code, const char *enh,
		       const char *text)
{
	struct gn_buf *b = gn_buf_new(0);
	const char *p = text != NULL && *text != '\0' ? text : "OK";
	const struct gn_smtp_settings *set = &s->srv->set;
	bool counted = false;

	for (;;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		size_t n = len > SMTP_REPLY_LINE_MAX ? SMTP_REPLY_LINE_MAX : len;

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
	gn_log(GN_LOG_DEBUG, area(s), "event=smtp_reply id=%s code=%d enhanced=%s",
	       gn_conn_id(s->conn), code, enh != NULL ? enh : "-");

	/* Errors: every 4xx/5xx but "too many recipients" (a client's normal
	 * flow control, RFC 5321 4.5.3.1.10) and 421 (the end anyway). */
	if (code >= 400 && code != 421 &&
	    !(code == 452 && enh != NULL && strcmp(enh, "4.5.3") == 0)) {
		s->errors++;
		counted = true;
	}
	if (counted && s->errors >= set->max_errors) {
		if (s->holding) {
			gn_conn_write(s->conn, gn_buf_data(s->held), gn_buf_len(s->held));
			gn_buf_clear(s->held);
		}
		gn_conn_write(s->conn, gn_buf_data(b), gn_buf_len(b));
		gn_buf_free(&b);
		gn_log(GN_LOG_INFO, area(s), "event=smtp_too_many_errors id=%s remote=%s "
		       "errors=%u", gn_conn_id(s->conn), gn_conn_remote_ip(s->conn),
		       s->errors);
		gn_conn_printf(s->conn, "421 4.7.0 %s Too many errors, closing connection\r\n",
			       hostname(s));
		set_state(s, ST_QUIT);
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
	input_update(s);
}

static void reply(struct gn_smtp_session *s, int code, const char *enh,
		  const char *fmt, ...)
{
	va_list ap;
	char *text;
	struct gn_buf *b = gn_buf_new(0);

	va_start(ap, fmt);
	gn_buf_vprintf(b, fmt, ap);
	va_end(ap);
	text = gn_buf_steal(&b);
	reply_text(s, code, enh, text);
	gn_free(text);
}

/* 421 and close; nothing when the connection is closing already (the reply
 * before it may have reached max_errors, which said 421 and closed). */
static void reply_close(struct gn_smtp_session *s, const char *enh,
			const char *text, const char *reason)
{
	if (gn_conn_is_closed(s->conn))
		return;
	if (s->holding) {
		gn_conn_write(s->conn, gn_buf_data(s->held), gn_buf_len(s->held));
		gn_buf_clear(s->held);
	}
	gn_conn_printf(s->conn, "421 %s %s %s\r\n", enh, hostname(s), text);
	set_state(s, ST_QUIT);
	gn_conn_close(s->conn, reason);
}

/* ---- transactions ---- */

static void tx_free(struct gn_smtp_tx **txp)
{
	struct gn_smtp_tx *tx = *txp;
	if (tx == NULL)
		return;
	gn_free(tx->rcpts);
	gn_pool_free(&tx->pool);
	gn_free(tx);
	*txp = NULL;
}

static struct gn_smtp_tx *tx_new(struct gn_smtp_session *s)
{
	struct gn_smtp_tx *tx = gn_calloc(1, sizeof(*tx));
	tx->pool = gn_pool_new();
	snprintf(tx->id, sizeof(tx->id), "%lx%x%llx", (unsigned long)gn_now(),
		 (unsigned)getpid() & 0xfffff, ++tx_serial);
	s->tx_counter++;
	return tx;
}

/* Ends the transaction; with call_reset, tells the policy it was
 * abandoned. */
static void tx_end(struct gn_smtp_session *s, bool call_reset)
{
	if (s->tx == NULL)
		return;
	if (call_reset && s->srv->policy.reset != NULL)
		s->srv->policy.reset(s, s->srv->data);
	tx_free(&s->tx);
}

static enum sstate idle_state(const struct gn_smtp_session *s)
{
	return s->helo != NULL ? ST_HELO : ST_INIT;
}

/* ---- policy calls and answers ---- */

static void answer(struct gn_smtp_session *s, int code, const char *enh,
		   const char *text, bool close_after);

static void policy_call(struct gn_smtp_session *s, enum gn_smtp_stage stage)
{
	const struct gn_smtp_policy *p = &s->srv->policy;
	void *d = s->srv->data;
	bool called = true;

	s->pending = stage;
	switch (stage) {
	case GN_SMTP_STAGE_CONNECT:
		if (p->connect != NULL)
			p->connect(s, d);
		else
			called = false;
		break;
	case GN_SMTP_STAGE_HELO:
		if (p->helo != NULL)
			p->helo(s, s->helo_pending, s->helo_pending_ehlo, d);
		else
			called = false;
		break;
	case GN_SMTP_STAGE_MAIL:
		if (p->mail != NULL)
			p->mail(s, s->tx->from, d);
		else
			called = false;
		break;
	case GN_SMTP_STAGE_RCPT:
		if (p->rcpt != NULL)
			p->rcpt(s, s->rcpt_pending, d);
		else
			called = false;
		break;
	case GN_SMTP_STAGE_DATA_BEGIN:
		if (p->data_begin != NULL)
			p->data_begin(s, d);
		else
			called = false;
		break;
	case GN_SMTP_STAGE_DATA_END:
		if (p->data_end != NULL)
			p->data_end(s, d);
		else
			called = false;
		break;
	case GN_SMTP_STAGE_NONE:
		called = false;
		break;
	}
	if (!called && s->pending == stage)
		answer(s, 250, NULL, NULL, false);
	input_update(s);
}

static const char *default_text(enum gn_smtp_stage stage, int code)
{
	if (code >= 400 && code < 500)
		return "Temporary failure, please try again later";
	if (code >= 500) {
		switch (stage) {
		case GN_SMTP_STAGE_CONNECT: return "Service not available";
		case GN_SMTP_STAGE_HELO: return "Greeting refused";
		case GN_SMTP_STAGE_MAIL: return "Sender refused";
		case GN_SMTP_STAGE_RCPT: return "Recipient refused";
		default: return "Message refused";
		}
	}
	switch (stage) {
	case GN_SMTP_STAGE_MAIL: return "Sender OK";
	case GN_SMTP_STAGE_RCPT: return "Recipient OK";
	case GN_SMTP_STAGE_DATA_END: return "Message accepted";
	default: return "OK";
	}
}

static const char *default_enh(enum gn_smtp_stage stage, int code)
{
	if (code == 421)
		return "4.7.0";
	if (code >= 400 && code < 500)
		return "4.3.0";
	if (code >= 500)
		return "5.7.1";
	switch (stage) {
	case GN_SMTP_STAGE_MAIL: return "2.1.0";
	case GN_SMTP_STAGE_RCPT: return "2.1.5";
	default: return "2.0.0";
	}
}

static void ehlo_reply(struct gn_smtp_session *s)
{
	const struct gn_smtp_settings *set = &s->srv->set;
	struct gn_buf *b = gn_buf_new(0);
	char *text;

	/* RFC 5321 4.1.1.1: the first line names the server; then one
	 * extension a line. */
	gn_buf_printf(b, "%s\nPIPELINING\nSIZE %llu\n8BITMIME\n", hostname(s),
		      set->max_message_size);
	if (set->smtputf8)
		gn_buf_append_str(b, "SMTPUTF8\n");
	gn_buf_append_str(b, "ENHANCEDSTATUSCODES\n");
	if (gn_conn_can_starttls(s->conn))
		gn_buf_append_str(b, "STARTTLS\n");
	if (set->chunking)
		gn_buf_append_str(b, "CHUNKING\n");
	gn_buf_append_str(b, "HELP");
	text = gn_buf_steal(&b);
	reply_text(s, 250, NULL, text);
	gn_free(text);
}

static void chunk_start(struct gn_smtp_session *s);
static void chunk_discard(struct gn_smtp_session *s, int code, const char *enh,
			  const char *text, enum sstate ret, bool ends_tx);

static void answer(struct gn_smtp_session *s, int code, const char *enh_in,
		   const char *text_in, bool close_after)
{
	enum gn_smtp_stage stage = s->pending;
	bool ok;
	/* Copies: the policy's strings may live in memory its reset() frees
	 * (a hook reply, the transaction's pool), and the transaction may end
	 * below before the reply is written. */
	char *enh_copy = enh_in != NULL ? gn_strdup(enh_in) : NULL;
	char *text_copy = text_in != NULL ? gn_strdup(text_in) : NULL;
	const char *enh = enh_copy, *text = text_copy;

	if (stage == GN_SMTP_STAGE_NONE) {
		gn_log(GN_LOG_ERROR, area(s), "event=bug id=%s reason=\"smtp answer "
		       "without a pending call\"", gn_conn_id(s->conn));
		gn_free(enh_copy);
		gn_free(text_copy);
		return;
	}
	s->pending = GN_SMTP_STAGE_NONE;
	if (gn_conn_is_closed(s->conn)) {
		/* The connection closed while the policy was deciding (a
		 * timeout, a shutdown): the client was told 421; nothing more
		 * goes out.  A transaction whose data_end() was answered ends
		 * without reset(); any other ends in smtp_close(). */
		gn_free(s->helo_pending);
		s->helo_pending = NULL;
		s->rcpt_pending = NULL;
		if (stage == GN_SMTP_STAGE_DATA_END)
			tx_end(s, false);
		gn_free(enh_copy);
		gn_free(text_copy);
		return;
	}
	if (code < 200 || code > 599) {
		gn_log(GN_LOG_WARN, area(s), "event=smtp_bad_answer id=%s code=%d",
		       gn_conn_id(s->conn), code);
		code = 451;
		enh = NULL;
		text = NULL;
	}
	ok = code < 400;
	if (close_after && ok) {
		code = 421;
		ok = false;
	}
	if (ok) {
		code = 250;
		enh = NULL;
	}
	if (!enh_valid(enh, code))
		enh = default_enh(stage, code);
	if (text == NULL || *text == '\0')
		text = default_text(stage, code);
	if (code == 421)
		close_after = true;

	switch (stage) {
	case GN_SMTP_STAGE_CONNECT:
		if (ok) {
			/* RFC 5321 4.2: the greeting has no enhanced code. */
			reply(s, 220, NULL, "%s ESMTP Gannet", hostname(s));
			set_state(s, ST_INIT);
		} else {
			/* RFC 5321 3.1: 554 instead of the greeting; a
			 * temporary refusal is 421.  Either way, goodbye. */
			reply_text(s, code >= 500 ? 554 : 421, NULL, text);
			set_state(s, ST_QUIT);
			gn_conn_close(s->conn, "refused at connect");
		}
		break;
	case GN_SMTP_STAGE_HELO:
		if (ok) {
			gn_free(s->helo);
			s->helo = s->helo_pending;
			s->helo_pending = NULL;
			s->ehlo = s->helo_pending_ehlo;
			if (s->ehlo)
				ehlo_reply(s);
			else
				reply(s, 250, NULL, "%s", hostname(s));
			set_state(s, ST_HELO);
		} else {
			gn_free(s->helo_pending);
			s->helo_pending = NULL;
			reply_text(s, code, enh, text);
		}
		break;
	case GN_SMTP_STAGE_MAIL:
		if (ok) {
			reply_text(s, 250, enh, text);
			set_state(s, ST_MAIL);
		} else {
			tx_end(s, true);
			reply_text(s, code, enh, text);
		}
		break;
	case GN_SMTP_STAGE_RCPT: {
		struct gn_smtp_rcpt *r = s->rcpt_pending;
		s->rcpt_pending = NULL;
		if (ok && s->tx != NULL) {
			struct gn_smtp_tx *tx = s->tx;
			if (tx->n_rcpts == tx->cap_rcpts) {
				tx->cap_rcpts = tx->cap_rcpts ? tx->cap_rcpts * 2 : 8;
				tx->rcpts = gn_realloc(tx->rcpts, tx->cap_rcpts * sizeof(*tx->rcpts));
			}
			tx->rcpts[tx->n_rcpts++] = r;
			reply_text(s, 250, enh, text);
			set_state(s, ST_RCPT);
		} else {
			reply_text(s, code, enh, text);
		}
		break;
	}
	case GN_SMTP_STAGE_DATA_BEGIN:
		if (s->tx == NULL)
			break;
		if (s->tx->bdat) {
			if (ok) {
				s->tx->data_begun = true;
				chunk_start(s);
			} else if (close_after) {
				/* No point reading the chunk. */
				reply_text(s, code, enh, text);
			} else {
				/* The chunk's octets still come: read them, then
				 * answer (RFC 3030 2). */
				chunk_discard(s, code, enh, text, idle_state(s), true);
			}
		} else if (ok) {
			s->tx->data_begun = true;
			/* RFC 5321 4.1.1.4; no enhanced code on 3xx. */
			reply(s, 354, NULL, "Start mail input; end with <CRLF>.<CRLF>");
			s->dstate = D_BOL;
			set_state(s, ST_DATA);
		} else {
			tx_end(s, true);
			reply_text(s, code, enh, text);
			set_state(s, idle_state(s));
		}
		break;
	case GN_SMTP_STAGE_DATA_END:
		/* Answered, whatever the answer: the transaction is over. */
		tx_end(s, false);
		if (ok) {
			/* Postfix's error counts also start again after a
			 * delivered message. */
			s->errors = 0;
			s->commands = 0;
		}
		reply_text(s, ok ? 250 : code, ok ? "2.0.0" : enh, text);
		if (!gn_conn_is_closed(s->conn))
			set_state(s, idle_state(s));
		break;
	case GN_SMTP_STAGE_NONE:
		break;
	}
	if (close_after && !gn_conn_is_closed(s->conn) && stage != GN_SMTP_STAGE_CONNECT) {
		if (code == 421) {
			/* The reply said it: just close. */
			set_state(s, ST_QUIT);
			gn_conn_close(s->conn, "policy disconnect");
		} else {
			reply_close(s, "4.7.0", "Closing connection", "policy disconnect");
		}
	}
	input_update(s);
	gn_free(enh_copy);
	gn_free(text_copy);
	/* Pipelined input waits in the buffer: input_update() resumed it when
	 * we had paused; the core calls smtp_input() from the loop. */
}

void gn_smtp_answer(struct gn_smtp_session *s, int code, const char *enhanced,
		    const char *fmt, ...)
{
	char *text = NULL;

	if (fmt != NULL) {
		va_list ap;
		struct gn_buf *b = gn_buf_new(0);
		va_start(ap, fmt);
		gn_buf_vprintf(b, fmt, ap);
		va_end(ap);
		text = gn_buf_steal(&b);
	}
	answer(s, code, enhanced, text, false);
	gn_free(text);
}

void gn_smtp_answer_hook(struct gn_smtp_session *s, enum gn_hook_result result,
			 const struct gn_hook_reply *rp)
{
	int code = rp != NULL ? rp->code : 0;
	const char *enh = rp != NULL ? rp->enhanced : NULL;
	const char *text = rp != NULL ? rp->text : NULL;
	bool data = s->pending == GN_SMTP_STAGE_DATA_BEGIN ||
		    s->pending == GN_SMTP_STAGE_DATA_END;

	switch (result) {
	case GN_HOOK_CONTINUE:
	case GN_HOOK_ACCEPT:
		answer(s, 250, NULL, NULL, false);
		return;
	case GN_HOOK_REJECT:
		if (code < 500 || code > 599)
			code = data ? 554 : 550;
		answer(s, code, enh, text, false);
		return;
	case GN_HOOK_DISCONNECT:
		if (code < 400 || code > 599)
			code = 421;
		answer(s, code, enh, text, true);
		return;
	case GN_HOOK_TEMPFAIL:
	case GN_HOOK_PENDING:
	default:
		if (code < 400 || code > 499)
			code = 451;
		answer(s, code, enh, text, false);
		return;
	}
}

/* ---- commands ---- */

#define CMD_NOARGS 0x1u	/* takes no parameters */
#define CMD_ARGS 0x2u	/* requires a parameter */

struct smtp_cmd {
	const char *verb;
	unsigned states;	/* SB(...) bits the command is valid in */
	unsigned flags;
	void (*fn)(struct gn_smtp_session *s, char *args);
};

static void helo_common(struct gn_smtp_session *s, char *args, bool ehlo)
{
	size_t len = strlen(args);

	/* RFC 5321 4.1.1.1: a domain or an address literal.  Checked
	 * leniently (4.1.4: a server must not refuse mail because the name
	 * does not verify): one word of printable characters. */
	while (len > 0 && args[len - 1] == ' ')
		args[--len] = '\0';
	if (len == 0 || len > 255 || strchr(args, ' ') != NULL) {
		reply(s, 501, "5.5.4", "Syntax: %s domain", ehlo ? "EHLO" : "HELO");
		return;
	}
	/* RFC 5321 4.1.4: EHLO in a transaction is a RSET too. */
	tx_end(s, true);
	if (s->state != ST_INIT)
		set_state(s, idle_state(s));
	gn_free(s->helo_pending);
	s->helo_pending = gn_strdup(args);
	s->helo_pending_ehlo = ehlo;
	policy_call(s, GN_SMTP_STAGE_HELO);
}

static void cmd_helo(struct gn_smtp_session *s, char *args)
{
	helo_common(s, args, false);
}

static void cmd_ehlo(struct gn_smtp_session *s, char *args)
{
	helo_common(s, args, true);
}

/* Splits "KEY[=VALUE]" parameters (RFC 5321 4.1.2 Mail-parameters);
 * calls fn for each.  Returns 0 or the first failure of fn. */
struct param {
	char *key;
	char *value;	/* NULL when there is none */
};

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

static bool all_digits(const char *v)
{
	if (v == NULL || *v == '\0')
		return false;
	for (; *v; v++)
		if (!isdigit((unsigned char)*v))
			return false;
	return true;
}

static void cmd_mail(struct gn_smtp_session *s, char *args)
{
	const struct gn_smtp_settings *set = &s->srv->set;
	struct gn_smtp_tx *tx;
	struct gn_addr *addr = NULL;
	struct param params[8];
	size_t used = 0, n;
	const char *err = NULL;
	char *path;
	int r;
	bool smtputf8 = false, have_size = false, have_body = false;
	enum gn_smtp_body body = GN_SMTP_BODY_7BIT;
	unsigned long long size = 0;

	if (!has_prefix(args, "FROM:")) {
		reply(s, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
		return;
	}
	path = args + 5;
	/* Lenient: "MAIL FROM: <a@b>" (a space RFC 5321 does not allow,
	 * sent by many clients). */
	while (*path == ' ')
		path++;
	tx = tx_new(s);
	r = gn_addr_parse_path(tx->pool, path, strlen(path), GN_ADDR_PATH_NULL,
			       &addr, &used, &err);
	if (r < 0) {
		/* The reply first: err may live in the transaction's pool. */
		reply(s, 501, "5.1.7", "Bad sender address syntax: %s", err);
		tx_free(&tx);
		return;
	}
	if (path[used] != '\0' && path[used] != ' ') {
		tx_free(&tx);
		reply(s, 501, "5.1.7", "Bad sender address syntax");
		return;
	}
	n = params_split(path + used, params, 8);
	if (n > 8) {
		tx_free(&tx);
		reply(s, 501, "5.5.4", "Too many parameters");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *k = params[i].key, *v = params[i].value;
		if (!s->ehlo) {
			/* Parameters are service extensions: EHLO only. */
			tx_free(&tx);
			reply(s, 555, "5.5.4", "MAIL parameters need EHLO");
			return;
		}
		if (strcasecmp(k, "SIZE") == 0 && !have_size) {
			/* RFC 1870 6. */
			if (!all_digits(v) || strlen(v) > 19) {
				tx_free(&tx);
				reply(s, 501, "5.5.4", "Bad SIZE parameter");
				return;
			}
			size = strtoull(v, NULL, 10);
			have_size = true;
		} else if (strcasecmp(k, "BODY") == 0 && !have_body) {
			/* RFC 6152 2. */
			if (v != NULL && strcasecmp(v, "7BIT") == 0) {
				body = GN_SMTP_BODY_7BIT;
			} else if (v != NULL && strcasecmp(v, "8BITMIME") == 0) {
				body = GN_SMTP_BODY_8BITMIME;
			} else {
				tx_free(&tx);
				reply(s, 501, "5.5.4", "Unsupported BODY type");
				return;
			}
			have_body = true;
		} else if (strcasecmp(k, "SMTPUTF8") == 0 && set->smtputf8 &&
			   v == NULL && !smtputf8) {
			/* RFC 6531 3.4. */
			smtputf8 = true;
		} else if (strcasecmp(k, "SIZE") == 0 || strcasecmp(k, "BODY") == 0 ||
			   strcasecmp(k, "SMTPUTF8") == 0) {
			tx_free(&tx);
			reply(s, 501, "5.5.4", "Bad or repeated %s parameter",
			      strcasecmp(k, "SIZE") == 0 ? "SIZE" :
			      strcasecmp(k, "BODY") == 0 ? "BODY" : "SMTPUTF8");
			return;
		} else {
			/* RFC 5321 4.1.1.11: 555 for parameters not known. */
			tx_free(&tx);
			reply(s, 555, "5.5.4", "Unsupported parameter");
			return;
		}
	}
	if (!smtputf8) {
		/* RFC 6531 3.4/3.5: without SMTPUTF8 the path must be ASCII. */
		struct gn_addr *a2 = NULL;
		if (gn_addr_parse_path(tx->pool, path, used, GN_ADDR_PATH_NULL |
				       GN_ADDR_PATH_ASCII, &a2, NULL, &err) < 0) {
			tx_free(&tx);
			reply(s, 553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
			return;
		}
	}
	if (have_size && size > set->max_message_size) {
		/* RFC 1870 6.1. */
		tx_free(&tx);
		reply(s, 552, "5.3.4", "Message size exceeds fixed maximum message size");
		return;
	}
	tx->from = addr;
	tx->smtputf8 = smtputf8;
	tx->body = body;
	tx->declared_size = size;
	s->tx = tx;
	gn_log(GN_LOG_DEBUG, area(s), "event=smtp_mail id=%s tx=%s from=%s",
	       gn_conn_id(s->conn), tx->id,
	       gn_log_quote(0, addr != NULL ? gn_addr_to_string(tx->pool, addr) : "<>"));
	policy_call(s, GN_SMTP_STAGE_MAIL);
}

static void cmd_rcpt(struct gn_smtp_session *s, char *args)
{
	struct gn_smtp_tx *tx = s->tx;
	struct gn_addr *addr = NULL;
	struct gn_smtp_rcpt *rcpt;
	size_t used = 0;
	const char *err = NULL;
	char *path, *rest;
	unsigned flags = GN_ADDR_PATH_POSTMASTER;
	int r;

	if (!has_prefix(args, "TO:")) {
		reply(s, 501, "5.5.4", "Syntax: RCPT TO:<address>");
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
			reply(s, 553, "5.6.7", "Non-ASCII address needs SMTPUTF8");
		else
			reply(s, 501, "5.1.3", "Bad recipient address syntax: %s", err);
		return;
	}
	rest = path + used;
	while (*rest == ' ')
		rest++;
	if (path[used] != '\0' && path[used] != ' ') {
		reply(s, 501, "5.1.3", "Bad recipient address syntax");
		return;
	}
	if (*rest != '\0') {
		/* No RCPT parameters are offered (DSN comes later). */
		reply(s, 555, "5.5.4", "Unsupported parameter");
		return;
	}
	if (tx->n_rcpts >= s->srv->set.max_recipients) {
		/* RFC 5321 4.5.3.1.10: 452, the client sends the rest in a
		 * later transaction. */
		reply(s, 452, "4.5.3", "Too many recipients");
		return;
	}
	rcpt = gn_pool_alloc(tx->pool, sizeof(*rcpt));
	rcpt->addr = addr;
	s->rcpt_pending = rcpt;
	gn_log(GN_LOG_DEBUG, area(s), "event=smtp_rcpt id=%s tx=%s to=%s",
	       gn_conn_id(s->conn), tx->id, gn_log_quote(0, gn_addr_to_string(tx->pool, addr)));
	policy_call(s, GN_SMTP_STAGE_RCPT);
}

static void cmd_data(struct gn_smtp_session *s, char *args)
{
	(void)args;
	if (s->state == ST_MAIL) {
		/* RFC 5321 3.3: DATA without a valid recipient. */
		reply(s, 554, "5.5.1", "No valid recipients");
		return;
	}
	policy_call(s, GN_SMTP_STAGE_DATA_BEGIN);
}

/* BDAT chunk-size [ LAST ] (RFC 3030 2). */
static void cmd_bdat(struct gn_smtp_session *s, char *args)
{
	const struct gn_smtp_settings *set = &s->srv->set;
	char *p = args, *end;
	unsigned long long n;
	bool last = false;

	if (!set->chunking || !s->ehlo) {
		/* Not offered: whether octets follow is unknown. */
		reply(s, 502, "5.5.1", "Command not implemented");
		return;
	}
	errno = 0;
	if (!isdigit((unsigned char)*p) || strlen(p) > 64) {
		n = 0;
		errno = EINVAL;
	} else {
		n = strtoull(p, &end, 10);
		p = end;
	}
	if (errno == 0) {
		if (*p == ' ') {
			while (*p == ' ')
				p++;
			if (strcasecmp(p, "LAST") == 0)
				last = true;
			else if (*p != '\0')
				errno = EINVAL;
		} else if (*p != '\0') {
			errno = EINVAL;
		}
	}
	if (errno != 0) {
		reply(s, 501, "5.5.4", "Syntax: BDAT chunk-size [LAST]");
		reply_close(s, "4.7.0", "Cannot find the end of the chunk, closing connection",
			    "bad BDAT");
		return;
	}
	if (n > set->max_message_size) {
		reply(s, 552, "5.3.4", "Chunk exceeds the maximum message size");
		reply_close(s, "4.7.0", "Closing connection", "BDAT chunk too big");
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
		chunk_discard(s, s->state == ST_MAIL ? 554 : 503, "5.5.1", text,
			      s->state, false);
		return;
	}
	if (s->state == ST_RCPT) {
		s->tx->bdat = true;
		s->last_cr = false;
		policy_call(s, GN_SMTP_STAGE_DATA_BEGIN);
		return;
	}
	chunk_start(s);
}

static void cmd_rset(struct gn_smtp_session *s, char *args)
{
	(void)args;
	tx_end(s, true);
	set_state(s, idle_state(s));
	reply(s, 250, "2.0.0", "OK");
}

static void cmd_noop(struct gn_smtp_session *s, char *args)
{
	(void)args;
	reply(s, 250, "2.0.0", "OK");
}

static void cmd_quit(struct gn_smtp_session *s, char *args)
{
	(void)args;
	reply(s, 221, "2.0.0", "%s Bye", hostname(s));
	tx_end(s, true);
	set_state(s, ST_QUIT);
	gn_conn_close(s->conn, "quit");
}

static void cmd_help(struct gn_smtp_session *s, char *args)
{
	(void)args;
	reply(s, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT "
	      "HELP VRFY EXPN STARTTLS\nSee RFC 5321");
}

static void cmd_vrfy(struct gn_smtp_session *s, char *args)
{
	(void)args;
	/* RFC 5321 3.5.3: 252 tells nothing about the address. */
	reply(s, 252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_starttls(struct gn_smtp_session *s, char *args)
{
	(void)args;
	if (gn_conn_is_tls(s->conn)) {
		reply(s, 503, "5.5.1", "Already in TLS");
		return;
	}
	if (!gn_conn_can_starttls(s->conn)) {
		reply(s, 502, "5.5.1", "STARTTLS not offered here");
		return;
	}
	reply(s, 220, "2.0.0", "Ready to start TLS");
	if (gn_conn_starttls(s->conn) < 0) {
		reply_close(s, "4.7.0", "TLS not available", "starttls failed");
		return;
	}
	/* RFC 3207 4.2: all that was known is forgotten; the buffered input
	 * was dropped by the core (RFC 3207 5). */
	tx_end(s, true);
	gn_free(s->helo);
	s->helo = NULL;
	s->ehlo = false;
	set_state(s, ST_TLS);
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

/* One command line, without its line ending. */
static void command(struct gn_smtp_session *s, const char *line, size_t len)
{
	const struct smtp_cmd *cmd = NULL;
	size_t vlen = 0;
	char *args;

	if (++s->commands > s->srv->set.max_commands) {
		reply_close(s, "4.7.0", "Too many commands, closing connection",
			    "too many commands");
		return;
	}
	if (memchr(line, '\0', len) != NULL || memchr(line, '\r', len) != NULL) {
		reply(s, 500, "5.5.2", "Syntax error: NUL or bare CR in command");
		return;
	}
	memcpy(s->line, line, len);
	s->line[len] = '\0';
	while (vlen < len && s->line[vlen] != ' ')
		vlen++;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strlen(commands[i].verb) == vlen &&
		    strncasecmp(commands[i].verb, s->line, vlen) == 0) {
			cmd = &commands[i];
			break;
		}
	}
	if (cmd == NULL) {
		reply(s, 500, "5.5.1", "Command not recognized");
		return;
	}
	args = s->line + vlen;
	while (*args == ' ')
		args++;
	gn_log(GN_LOG_DEBUG, area(s), "event=smtp_command id=%s state=%s verb=%s",
	       gn_conn_id(s->conn), state_names[s->state], cmd->verb);
	if ((cmd->flags & CMD_NOARGS) && *args != '\0') {
		reply(s, 501, "5.5.4", "Syntax: %s takes no parameters", cmd->verb);
		return;
	}
	if ((cmd->flags & CMD_ARGS) && *args == '\0') {
		reply(s, 501, "5.5.4", "Syntax: %s needs a parameter", cmd->verb);
		return;
	}
	if (!(cmd->states & SB(s->state))) {
		reply(s, 503, "5.5.1", "%s", sequence_error(s, cmd->verb));
		return;
	}
	cmd->fn(s, args);
}

/* ---- DATA (RFC 5321 4.1.1.4, 4.5.2) ---- */

static void feed(struct gn_smtp_session *s, const char *p, size_t n)
{
	struct gn_smtp_tx *tx = s->tx;

	if (n == 0 || tx == NULL)
		return;
	if (tx->size + n > s->srv->set.max_message_size)
		tx->too_big = true;
	tx->size += n;
	if (tx->too_big || tx->bad_newline || tx->chunks_stopped)
		return;
	if (s->srv->policy.data_chunk != NULL &&
	    s->srv->policy.data_chunk(s, p, n, s->srv->data) < 0)
		tx->chunks_stopped = true;
}

/* The message is complete: refuse what the engine found wrong, or ask the
 * policy. */
static void message_done(struct gn_smtp_session *s)
{
	struct gn_smtp_tx *tx = s->tx;

	if (tx->too_big) {
		gn_log(GN_LOG_INFO, area(s), "event=smtp_too_big id=%s tx=%s size=%llu",
		       gn_conn_id(s->conn), tx->id, tx->size);
		tx_end(s, true);
		set_state(s, idle_state(s));
		reply(s, 552, "5.3.4", "Message size exceeds fixed maximum message size");
		return;
	}
	if (tx->bad_newline) {
		gn_log(GN_LOG_INFO, area(s), "event=smtp_bare_newline id=%s tx=%s remote=%s",
		       gn_conn_id(s->conn), tx->id, gn_conn_remote_ip(s->conn));
		tx_end(s, true);
		set_state(s, idle_state(s));
		reply(s, 554, "5.6.0", "Message refused: bare CR or LF found; lines must end "
		      "with CRLF (RFC 5321 2.3.8, SMTP smuggling defence)");
		return;
	}
	gn_conn_set_idle_timeout(s->conn, s->srv->set.timeout_data_term_ms);
	policy_call(s, GN_SMTP_STAGE_DATA_END);
}

/* Parses DATA text from p[0..n); returns the octets used.  Stops after the
 * end of data. */
static size_t data_feed(struct gn_smtp_session *s, const char *p, size_t n)
{
	struct gn_smtp_tx *tx = s->tx;
	size_t i = 0, span = 0;	/* span: start of octets not yet fed */

	if (!s->data_started && n > 0) {
		s->data_started = true;
		gn_conn_set_idle_timeout(s->conn, s->srv->set.timeout_data_block_ms);
	}
	while (i < n) {
		char c = p[i];
		switch (s->dstate) {
		case D_BOL:
			if (c == '.') {
				/* A dot at the start of a line: feed what came
				 * before, hold the dot back. */
				feed(s, p + span, i - span);
				s->dstate = D_DOT;
				span = i + 1;
			} else if (c == '\r') {
				s->dstate = D_CR;
			} else {
				/* A bare LF here starts no line: only CRLF
				 * does, or "<CRLF><LF>.<CRLF>" would end the
				 * data where the sender's server saw text. */
				if (c == '\n')
					tx->bad_newline = true;
				s->dstate = D_TEXT;
			}
			break;
		case D_DOT:
			if (c == '\r') {
				/* Held back too: it ends the data when LF
				 * follows, and the input may end here. */
				s->dstate = D_DOTCR;
				span = i + 1;
			} else {
				/* RFC 5321 4.5.2: the first dot of a line
				 * with more on it is dropped (already: span
				 * starts after it). */
				if (c == '\n')
					tx->bad_newline = true;	/* ".<LF>": no line end */
				s->dstate = D_TEXT;
			}
			break;
		case D_DOTCR:
			if (c == '\n') {
				/* CRLF "." CRLF: the end.  The dot and its CRLF
				 * are not part of the message. */
				i++;
				message_done(s);
				return i;
			}
			/* ".\r" and more: a bare CR (and the dot was a
			 * stuffing dot; the CR is message text). */
			tx->bad_newline = true;
			feed(s, "\r", 1);
			span = i;
			s->dstate = c == '\r' ? D_CR : D_TEXT;
			break;
		case D_TEXT:
			if (c == '\r')
				s->dstate = D_CR;
			else if (c == '\n')
				tx->bad_newline = true;	/* bare LF */
			break;
		case D_CR:
			if (c == '\n') {
				s->dstate = D_BOL;
			} else {
				tx->bad_newline = true;	/* bare CR */
				if (c != '\r')
					s->dstate = D_TEXT;
			}
			break;
		}
		i++;
	}
	feed(s, p + span, n - span);
	return n;
}

/* ---- BDAT chunks (RFC 3030) ---- */

static void chunk_discard(struct gn_smtp_session *s, int code, const char *enh,
			  const char *text, enum sstate ret, bool ends_tx)
{
	s->chunk_discard = true;
	s->chunk_code = code;
	snprintf(s->chunk_enh, sizeof(s->chunk_enh), "%s", enh != NULL ? enh : "5.5.1");
	gn_free(s->chunk_text);
	s->chunk_text = gn_strdup(text != NULL ? text : "Refused");
	s->chunk_return = ret;
	s->chunk_ends_tx = ends_tx;
	set_state(s, ST_CHUNK);
}

static void chunk_start(struct gn_smtp_session *s)
{
	s->chunk_discard = false;
	set_state(s, ST_CHUNK);
}

static void chunk_done(struct gn_smtp_session *s)
{
	struct gn_smtp_tx *tx = s->tx;

	if (s->chunk_discard) {
		s->chunk_discard = false;
		if (s->chunk_ends_tx)
			tx_end(s, true);
		set_state(s, s->chunk_ends_tx ? idle_state(s) : s->chunk_return);
		reply_text(s, s->chunk_code, s->chunk_enh, s->chunk_text);
		return;
	}
	if (tx->too_big) {
		message_done(s);	/* 552, transaction over */
		return;
	}
	if (!s->chunk_last) {
		set_state(s, ST_BDAT);
		reply(s, 250, "2.0.0", "%llu octets received", s->chunk_size);
		return;
	}
	if (s->last_cr)
		tx->bad_newline = true;	/* the message ends in a bare CR */
	message_done(s);
}

/* Takes chunk octets from p[0..n); returns the octets used. */
static size_t chunk_feed(struct gn_smtp_session *s, const char *p, size_t n)
{
	size_t take = n < s->chunk_left ? n : (size_t)s->chunk_left;

	if (take > 0 && !s->data_started) {
		s->data_started = true;
		gn_conn_set_idle_timeout(s->conn, s->srv->set.timeout_data_block_ms);
	}
	if (!s->chunk_discard && take > 0) {
		struct gn_smtp_tx *tx = s->tx;
		/* Line endings: CRLF only (RFC 5321 2.3.8), across chunks. */
		for (size_t i = 0; i < take && !tx->bad_newline; i++) {
			if (s->last_cr && p[i] != '\n')
				tx->bad_newline = true;
			else if (!s->last_cr && p[i] == '\n')
				tx->bad_newline = true;
			s->last_cr = p[i] == '\r';
		}
		feed(s, p, take);
	}
	s->chunk_left -= take;
	if (s->chunk_left == 0)
		chunk_done(s);
	return take;
}

/* ---- input ---- */

/* Command lines.  Returns false when more input is needed. */
static bool line_input(struct gn_smtp_session *s, const char *p, size_t n)
{
	size_t max = s->srv->set.max_line_length;
	const char *nl;

	if (s->skipping) {
		/* The rest of a line that was too long. */
		nl = memchr(p, '\n', n);
		if (nl == NULL) {
			gn_conn_input_consume(s->conn, n);
			return false;
		}
		gn_conn_input_consume(s->conn, (size_t)(nl - p) + 1);
		s->skipping = false;
		/* RFC 5321 4.5.3.1.4 and 4.2.4. */
		reply(s, 500, "5.5.2", "Line too long");
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
	{
		size_t len = (size_t)(nl - p) + 1;
		size_t l = len - 1;
		char *copy;

		if (l > 0 && p[l - 1] == '\r')
			l--;
		/* The buffer may move during the command (nothing reads
		 * input there), but copy anyway to keep it simple. */
		copy = gn_strndup(p, l);
		gn_conn_input_consume(s->conn, len);
		if (s->shutdown) {
			gn_free(copy);
			reply_close(s, "4.3.2", "Service shutting down, closing connection",
				    "shutdown");
			return true;
		}
		command(s, copy, l);
		gn_free(copy);
	}
	return true;
}

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
			gn_conn_input_consume(conn, data_feed(s, p, n));
		} else if (s->state == ST_CHUNK) {
			gn_conn_input_consume(conn, chunk_feed(s, p, n));
		} else if (!line_input(s, p, n)) {
			break;
		}
	}
	input_update(s);
}

/* ---- the protocol handler ---- */

static int smtp_open(struct gn_conn *conn, void *data)
{
	struct gn_smtp_server *srv = data;
	struct gn_smtp_session *s = gn_calloc(1, sizeof(*s));

	s->srv = srv;
	s->conn = conn;
	s->state = ST_CONNECT;
	s->line = gn_malloc(srv->set.max_line_length + 1);
	s->held = gn_buf_new(0);
	gn_conn_set_data(conn, s);
	gn_conn_set_idle_timeout(conn, srv->set.timeout_initial_ms);
	policy_call(s, GN_SMTP_STAGE_CONNECT);
	return 0;
}

static void smtp_tls_done(struct gn_conn *conn, int ok, void *data)
{
	struct gn_smtp_session *s = gn_conn_data(conn);
	(void)data;
	if (s == NULL || !ok)
		return;
	gn_log(GN_LOG_DEBUG, area(s), "event=smtp_tls id=%s version=%s cipher=%s",
	       gn_conn_id(conn), gn_conn_tls_version(conn) ? gn_conn_tls_version(conn) : "?",
	       gn_conn_tls_cipher(conn) ? gn_conn_tls_cipher(conn) : "?");
	set_state(s, ST_INIT);
}

static void smtp_timeout(struct gn_conn *conn, void *data)
{
	struct gn_smtp_session *s = gn_conn_data(conn);
	(void)data;
	if (s == NULL)
		return;
	gn_log(GN_LOG_INFO, area(s), "event=smtp_timeout id=%s state=%s pending=%d",
	       gn_conn_id(conn), state_names[s->state], (int)s->pending);
	/* RFC 5321 4.5.3.2. */
	gn_conn_printf(conn, "421 4.4.2 %s Timeout, closing connection\r\n", hostname(s));
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
	/* Idle between commands: say goodbye now.  Otherwise the command or
	 * message in progress finishes first. */
	if (s->pending == GN_SMTP_STAGE_NONE && n == 0 && !s->skipping &&
	    (s->state == ST_INIT || s->state == ST_HELO || s->state == ST_MAIL ||
	     s->state == ST_RCPT || s->state == ST_BDAT))
		reply_close(s, "4.3.2", "Service shutting down, closing connection", "shutdown");
}

static void smtp_close(struct gn_conn *conn, void *data)
{
	struct gn_smtp_session *s = gn_conn_data(conn);
	(void)data;

	if (s == NULL)
		return;
	if (s->tx != NULL) {
		char id[sizeof(s->tx->id)];
		memcpy(id, s->tx->id, sizeof(id));
		/* Nothing pending can be answered any more: the policy's
		 * reset and disconnect cancel its work. */
		tx_end(s, true);
		gn_log(GN_LOG_INFO, area(s), "event=smtp_aborted id=%s tx=%s state=%s",
		       gn_conn_id(conn), id, state_names[s->state]);
	}
	if (s->srv->policy.disconnect != NULL)
		s->srv->policy.disconnect(s, s->srv->data);
	gn_timer_free(&s->delay_timer);
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
	struct gn_smtp_server *srv = gn_calloc(1, sizeof(*srv));
	size_t n;

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
	if (policy != NULL) {
		n = policy->size < sizeof(srv->policy) ? policy->size : sizeof(srv->policy);
		memcpy(&srv->policy, policy, n);
	}
	srv->policy.size = sizeof(srv->policy);
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
	bool tls = gn_conn_is_tls(s->conn);
	/* RFC 6531 3.7.3 and RFC 3848. */
	if (s->tx != NULL && s->tx->smtputf8)
		return tls ? "UTF8SMTPS" : "UTF8SMTP";
	if (!s->ehlo)
		return tls ? "SMTPS" : "SMTP";
	return tls ? "ESMTPS" : "ESMTP";
}

const char *gn_smtp_session_hostname(const struct gn_smtp_session *s)
{
	return hostname(s);
}

enum gn_smtp_stage gn_smtp_session_stage(const struct gn_smtp_session *s)
{
	return s->pending;
}

struct gn_smtp_tx *gn_smtp_session_tx(struct gn_smtp_session *s)
{
	return s->tx;
}

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
