/*
 * core/smtp/answer.c: the policy's decisions (gannet/smtp.h).
 *
 * smtp_policy_call() asks the policy (or an added command, extension.c)
 * and pauses the input; gn_smtp_answer(), gn_smtp_answer_hook() and
 * gn_smtp_answer_more() bring the answer, now or later from the loop
 * (PIPELINING, RFC 2920: commands are answered in order; the core sends
 * the replies of a pipelined group together when the input is used up).
 * answer() checks and normalises it once, then one function a stage says
 * what it means: a greeting, an EHLO reply, a sender or recipient taken,
 * the start or the end of a message, or the end of an added command.
 *
 * A callback left NULL: rcpt() and data_end() cannot be (the server's
 * registration refuses such a policy); should one be missing anyway, the
 * answer is 451 4.3.5 (RFC 3463: "system incorrectly configured"), never a
 * 250.  The others accept: they grant nothing by themselves.
 */
#include "smtp/internal.h"

#include <stdarg.h>
#include <string.h>

/* ---- asking ---- */

void smtp_policy_call(struct gn_smtp_session *s, enum gn_smtp_stage stage)
{
	const struct gn_smtp_policy *p = &s->srv->policy;
	void *d = s->srv->data;
	int fallback = 250;

	s->pending = stage;
	switch (stage) {
	case GN_SMTP_STAGE_CONNECT:
		if (p->connect != NULL) {
			p->connect(s, d);
			fallback = 0;
		}
		break;
	case GN_SMTP_STAGE_HELO:
		if (p->helo != NULL) {
			p->helo(s, s->helo_pending, s->helo_pending_ehlo, d);
			fallback = 0;
		}
		break;
	case GN_SMTP_STAGE_MAIL:
		if (p->mail != NULL) {
			p->mail(s, s->tx->from, d);
			fallback = 0;
		}
		break;
	case GN_SMTP_STAGE_RCPT:
		if (p->rcpt != NULL) {
			p->rcpt(s, s->rcpt_pending, d);
			fallback = 0;
		} else {
			fallback = 451;		/* fail closed */
		}
		break;
	case GN_SMTP_STAGE_DATA_BEGIN:
		if (p->data_begin != NULL) {
			p->data_begin(s, d);
			fallback = 0;
		}
		break;
	case GN_SMTP_STAGE_DATA_END:
		if (p->data_end != NULL) {
			p->data_end(s, d);
			fallback = 0;
		} else {
			fallback = 451;		/* fail closed */
		}
		break;
	case GN_SMTP_STAGE_COMMAND:	/* extension.c calls the command */
	case GN_SMTP_STAGE_NONE:
		fallback = 0;
		break;
	}
	if (fallback != 0 && s->pending == stage) {
		if (fallback == 250)
			gn_smtp_answer(s, 250, NULL, NULL);
		else
			gn_smtp_answer(s, 451, "4.3.5", "Not configured to accept this, "
				       "try again later");
	}
	smtp_input_update(s);
}

/* ---- what an answer says ---- */

bool smtp_enh_valid(const char *e, int code)
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
		case GN_SMTP_STAGE_COMMAND: return "Command refused";
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

/* ---- one function a stage ---- */

static void ehlo_reply(struct gn_smtp_session *s)
{
	const struct gn_smtp_settings *set = &s->srv->set;
	struct gn_buf *b = gn_buf_new(0);
	char *text;

	/* RFC 5321 4.1.1.1: the first line names the server; then one
	 * extension a line: the engine's, then those added. */
	gn_buf_printf(b, "%s\nPIPELINING\nSIZE %llu\n8BITMIME\n", smtp_hostname(s),
		      set->max_message_size);
	if (set->smtputf8)
		gn_buf_append_str(b, "SMTPUTF8\n");
	gn_buf_append_str(b, "ENHANCEDSTATUSCODES\n");
	if (gn_conn_can_starttls(s->conn))
		gn_buf_append_str(b, "STARTTLS\n");
	if (set->chunking)
		gn_buf_append_str(b, "CHUNKING\n");
	smtp_ext_ehlo_keywords(s, b);
	gn_buf_append_str(b, "HELP");
	text = gn_buf_steal(&b);
	smtp_reply_text(s, 250, NULL, text);
	gn_free(text);
}

static void answer_connect(struct gn_smtp_session *s, int code, const char *text, bool ok)
{
	if (ok) {
		/* RFC 5321 4.2: the greeting has no enhanced code. */
		smtp_reply(s, 220, NULL, "%s ESMTP Gannet", smtp_hostname(s));
		smtp_set_state(s, ST_INIT);
		return;
	}
	/* RFC 5321 3.1: 554 instead of the greeting; a temporary refusal is
	 * 421.  Either way, goodbye. */
	smtp_reply_text(s, code >= 500 ? 554 : 421, NULL, text);
	smtp_set_state(s, ST_QUIT);
	gn_conn_close(s->conn, "refused at connect");
}

static void answer_helo(struct gn_smtp_session *s, int code, const char *enh,
			const char *text, bool ok)
{
	if (!ok) {
		gn_free(s->helo_pending);
		s->helo_pending = NULL;
		smtp_reply_text(s, code, enh, text);
		return;
	}
	gn_free(s->helo);
	s->helo = s->helo_pending;
	s->helo_pending = NULL;
	s->ehlo = s->helo_pending_ehlo;
	s->offered = 0;
	if (s->ehlo)
		ehlo_reply(s);
	else
		smtp_reply(s, 250, NULL, "%s", smtp_hostname(s));
	smtp_set_state(s, ST_HELO);
}

static void answer_mail(struct gn_smtp_session *s, int code, const char *enh,
			const char *text, bool ok)
{
	if (ok) {
		smtp_reply_text(s, 250, enh, text);
		smtp_set_state(s, ST_MAIL);
	} else {
		smtp_tx_end(s, true);
		smtp_reply_text(s, code, enh, text);
	}
}

/* A refused recipient is dropped here: it never joins the transaction, so
 * it counts against no limit and reaches no later stage. */
static void answer_rcpt(struct gn_smtp_session *s, int code, const char *enh,
			const char *text, bool ok)
{
	struct gn_smtp_rcpt *r = s->rcpt_pending;
	struct gn_smtp_tx *tx = s->tx;

	s->rcpt_pending = NULL;
	if (!ok || tx == NULL) {
		smtp_reply_text(s, code, enh, text);
		return;
	}
	if (tx->n_rcpts == tx->cap_rcpts) {
		tx->cap_rcpts = tx->cap_rcpts ? tx->cap_rcpts * 2 : 8;
		tx->rcpts = gn_realloc(tx->rcpts, tx->cap_rcpts * sizeof(*tx->rcpts));
	}
	tx->rcpts[tx->n_rcpts++] = r;
	smtp_reply_text(s, 250, enh, text);
	smtp_set_state(s, ST_RCPT);
}

static void answer_data_begin(struct gn_smtp_session *s, int code, const char *enh,
			      const char *text, bool ok, bool close_after)
{
	struct gn_smtp_tx *tx = s->tx;

	if (tx == NULL)
		return;
	if (ok) {
		tx->data_begun = true;
		smtp_data_timer_start(s);
	}
	if (tx->bdat) {
		if (ok)
			smtp_chunk_start(s);
		else if (close_after)
			smtp_reply_text(s, code, enh, text);	/* no point reading the chunk */
		else
			/* The chunk's octets still come: read them, then
			 * answer (RFC 3030 2). */
			smtp_chunk_discard(s, code, enh, text, smtp_idle_state(s), true);
	} else if (ok) {
		/* RFC 5321 4.1.1.4; no enhanced code on 3xx. */
		smtp_reply(s, 354, NULL, "Start mail input; end with <CRLF>.<CRLF>");
		s->dstate = D_BOL;
		smtp_set_state(s, ST_DATA);
	} else {
		smtp_tx_end(s, true);
		smtp_reply_text(s, code, enh, text);
		smtp_set_state(s, smtp_idle_state(s));
	}
}

static void answer_data_end(struct gn_smtp_session *s, int code, const char *enh,
			    const char *text, bool ok)
{
	/* Answered, whatever the answer: the transaction is over. */
	smtp_tx_end(s, false);
	if (ok) {
		/* Postfix's error counts also start again after a delivered
		 * message. */
		s->errors = 0;
		s->commands = 0;
	}
	smtp_reply_text(s, ok ? 250 : code, ok ? "2.0.0" : enh, text);
	if (gn_conn_is_closed(s->conn))
		return;
	smtp_set_state(s, smtp_idle_state(s));
	/* A time limit passed while the message was being decided. */
	if (s->expired != LIMIT_NONE)
		smtp_time_limit(s, s->expired);
}

static void answer_command(struct gn_smtp_session *s, int code, const char *enh,
			   const char *text, bool ok)
{
	smtp_ext_command_answered(s, ok);
	smtp_reply_text(s, code, enh, text);
}

/* ---- answers ---- */

/* The answer's code as the stage may use it.  Policy stages send every 2xx
 * as 250; an added command keeps its 2xx (235 for AUTH). */
static int answer_code(struct gn_smtp_session *s, enum gn_smtp_stage stage, int code,
		       bool close_after)
{
	if (code < 200 || code > 599 || (code >= 300 && code < 400)) {
		gn_log(GN_LOG_WARN, smtp_area(s), "event=smtp_bad_answer id=%s code=%d",
		       gn_conn_id(s->conn), code);
		return 451;
	}
	if (code < 300 && close_after)
		return 421;
	if (code < 300 && stage != GN_SMTP_STAGE_COMMAND)
		return 250;
	return code;
}

/* An answer that comes when the connection closed while the policy was
 * deciding (a timeout, a shutdown): the client was told 421; nothing more
 * goes out.  A transaction whose data_end() was answered ends without
 * reset(); any other ends in smtp_close(). */
static void answer_after_close(struct gn_smtp_session *s, enum gn_smtp_stage stage)
{
	gn_free(s->helo_pending);
	s->helo_pending = NULL;
	s->rcpt_pending = NULL;
	if (stage == GN_SMTP_STAGE_DATA_END)
		smtp_tx_end(s, false);
	if (stage == GN_SMTP_STAGE_COMMAND)
		smtp_ext_command_end(s, false);
}

static void answer(struct gn_smtp_session *s, int code, const char *enh_in,
		   const char *text_in, bool close_after)
{
	enum gn_smtp_stage stage = s->pending;
	int given = code;
	bool ok;
	/* Copies: the policy's strings may live in memory its reset() frees
	 * (a hook reply, the transaction's pool), and the transaction may end
	 * below before the reply is written. */
	char *enh_copy = enh_in != NULL ? gn_strdup(enh_in) : NULL;
	char *text_copy = text_in != NULL ? gn_strdup(text_in) : NULL;
	const char *enh = enh_copy, *text = text_copy;

	if (stage == GN_SMTP_STAGE_NONE) {
		gn_log(GN_LOG_ERROR, smtp_area(s), "event=bug id=%s reason=\"smtp answer "
		       "without a pending call\"", gn_conn_id(s->conn));
		goto out;
	}
	s->pending = GN_SMTP_STAGE_NONE;
	if (gn_conn_is_closed(s->conn)) {
		answer_after_close(s, stage);
		goto out;
	}
	code = answer_code(s, stage, code, close_after);
	ok = code < 400;
	if (code != given && !(ok && given < 300)) {
		enh = NULL;		/* the policy's text was for another code */
		text = NULL;
	}
	if (!smtp_enh_valid(enh, code) || (ok && stage != GN_SMTP_STAGE_COMMAND))
		enh = default_enh(stage, code);
	if (text == NULL || *text == '\0')
		text = default_text(stage, code);
	if (code == 421)
		close_after = true;

	switch (stage) {
	case GN_SMTP_STAGE_CONNECT:
		answer_connect(s, code, text, ok);
		break;
	case GN_SMTP_STAGE_HELO:
		answer_helo(s, code, enh, text, ok);
		break;
	case GN_SMTP_STAGE_MAIL:
		answer_mail(s, code, enh, text, ok);
		break;
	case GN_SMTP_STAGE_RCPT:
		answer_rcpt(s, code, enh, text, ok);
		break;
	case GN_SMTP_STAGE_DATA_BEGIN:
		answer_data_begin(s, code, enh, text, ok, close_after);
		break;
	case GN_SMTP_STAGE_DATA_END:
		answer_data_end(s, code, enh, text, ok);
		break;
	case GN_SMTP_STAGE_COMMAND:
		answer_command(s, code, enh, text, ok);
		break;
	case GN_SMTP_STAGE_NONE:
		break;
	}
	if (close_after && !gn_conn_is_closed(s->conn) && stage != GN_SMTP_STAGE_CONNECT) {
		if (code == 421) {
			/* The reply said it: just close. */
			smtp_set_state(s, ST_QUIT);
			gn_conn_close(s->conn, "policy disconnect");
		} else {
			smtp_reply_close(s, "4.7.0", "Closing connection", "policy disconnect");
		}
	}
	smtp_input_update(s);
	/* Pipelined input waits in the buffer: smtp_input_update() resumed it
	 * when we had paused; the core calls smtp_input() from the loop. */
out:
	gn_free(enh_copy);
	gn_free(text_copy);
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

void gn_smtp_answer_more(struct gn_smtp_session *s, int code, const char *fmt, ...)
{
	struct gn_buf *b = gn_buf_new(0);
	char *text;

	if (s->pending != GN_SMTP_STAGE_COMMAND || s->cmd == NULL) {
		gn_log(GN_LOG_ERROR, smtp_area(s), "event=bug id=%s reason=\"smtp answer_more "
		       "without a pending command\"", gn_conn_id(s->conn));
		gn_buf_free(&b);
		return;
	}
	if (code < 300 || code > 399 || s->cmd->line == NULL) {
		gn_log(GN_LOG_WARN, smtp_area(s), "event=smtp_bad_answer id=%s verb=%s code=%d",
		       gn_conn_id(s->conn), s->cmd->verb, code);
		gn_buf_free(&b);
		answer(s, 451, "4.3.0", NULL, false);
		return;
	}
	if (fmt != NULL) {
		va_list ap;
		va_start(ap, fmt);
		gn_buf_vprintf(b, fmt, ap);
		va_end(ap);
	}
	text = gn_buf_steal(&b);
	s->pending = GN_SMTP_STAGE_NONE;
	if (gn_conn_is_closed(s->conn)) {
		/* The command waits for a line that will not come: smtp_close()
		 * cancels it. */
		gn_free(text);
		return;
	}
	if (s->cmd_lines >= s->cmd->max_lines) {
		gn_log(GN_LOG_INFO, smtp_area(s), "event=smtp_command_too_long id=%s verb=%s "
		       "lines=%u", gn_conn_id(s->conn), s->cmd->verb, s->cmd_lines);
		smtp_ext_command_end(s, true);
		smtp_reply(s, 501, "5.5.4", "Too many lines in the exchange");
		smtp_input_update(s);
		gn_free(text);
		return;
	}
	/* One line: a continuation reply is no multi-line reply. */
	for (char *p = text; *p != '\0'; p++)
		if (*p == '\n')
			*p = ' ';
	smtp_reply_text(s, code, NULL, text);
	gn_free(text);
	smtp_set_state(s, ST_MORE);
	smtp_input_update(s);
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
