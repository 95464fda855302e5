/*
 * t/modules/smtptest/smtptest.c: a policy on the SMTP engine
 * (gannet/smtp.h) for the engine's own tests (t/integration/150-smtp-
 * engine.t), with no database: built like any module, <gannet/gannet.h>
 * only.
 *
 * Protocol "smtptest".  Config:
 *   smtptest = { dir = "/tmp/x"; omit = "rcpt,data_end";
 *                <engine settings: gn_smtp_settings_read()> };
 * omit leaves those policy callbacks NULL (connect, helo, mail, rcpt,
 * data_begin, data_chunk, data_end), for the tests of what the engine does
 * without them.
 *
 * Each accepted message is written to DIR/<tx id>.eml exactly as the engine
 * handed it over (dot-unstuffed), and its envelope to DIR/<tx id>.env:
 * "from <addr or <>>", "smtputf8 0|1", "body 7bit|8bitmime", "protocol P",
 * "helo H", "auth 0|1", "mail-auth V" and "mail-xvalue V" (MAIL parameters,
 * when given), then "rcpt <addr>" a line, with " notify=V" and " orcpt=V"
 * when given; and the engine's Received field for it to DIR/<tx id>.received.
 * Chunks go to DIR/<tx id>.tmp while the message arrives; reset() removes
 * it, so an aborted transaction leaves nothing.
 *
 * Extensions (gannet/smtp.h), each as a module would add it:
 *   EHLO  "AUTH PLAIN X-STEPS" through an offer() callback (over TLS also
 *         "X-TLS", to show parameters that depend on the session);
 *         "DSN"; "XTLSONLY" only over TLS (GN_SMTP_KEYWORD_TLS).
 *   MAIL  AUTH=<xtext> (comes with AUTH, xtext decoded; RFC 4954 5);
 *         XVALUE=<value> (always; a value needed; "bad" is refused by its
 *         check with 550 5.7.9, "badenh" with 550 and the enhanced code
 *         4.7.1, of the wrong class); XTLS (no value, comes with XTLSONLY).
 *   RCPT  NOTIFY=<list> (with DSN; its check takes SUCCESS, FAILURE, DELAY,
 *         NEVER, else 501 5.5.4 "Bad NOTIFY"); ORCPT=<xtext> (with DSN).
 *   AUTH  a SASL-style exchange (RFC 4954) over continuation lines, lines
 *         up to 12288 octets, at most 4 continuation lines:
 *           AUTH PLAIN [initial-response]  "\0test\0secret" in base64
 *                 gets 235 2.7.0 (the session is then authenticated:
 *                 protocol ESMTPA), anything else 535 5.7.8; without an
 *                 initial response, "334 " first; "=" is an empty one.
 *           AUTH X-STEPS N   N challenges "334 base64(step I)", each
 *                 answered with base64("ok"), then 235 2.7.0; with N over
 *                 4 the engine's line limit ends it (501 5.5.4).
 *         A "*" line cancels: 501 5.0.0 (RFC 4954 4).  Bad base64: 501
 *         5.5.2.  AUTH when authenticated: 503 5.5.1.  cancel() logs
 *         "event=smtptest_cancel verb=AUTH".
 *   XRESTART  no arguments, after HELO: answers 220 2.0.0 and the session
 *         starts over (GN_SMTP_CMD_RESTART, as XCLIENT will).
 *
 * Decisions by HELO/EHLO name (first label):
 *   "refused"      550 5.7.1 at once       "slowrefused"  550 5.7.1 after 100 ms
 *   "late"         answered (250) only once the connection is closed: a timer
 *                  looks every 20 ms and, when gn_conn_is_closed(), logs
 *                  "event=smtptest_late_answer output_pending=N" and answers,
 *                  as a policy whose lookup ends after a timeout or shutdown
 *                  closed the session would (the engine must then write
 *                  nothing: the client was told 421).
 *   "check"        refused with 550 5.5.0 when gn_smtp_session_helo() or
 *                  gn_smtp_session_is_ehlo() does not describe the name being
 *                  decided, else accepted; other names are accepted.
 *
 * Decisions by localpart:
 *   MAIL  "badsender"    550 5.7.1
 *         "hookrefuse"   550 5.7.9 through gn_smtp_answer_hook(), with a reply
 *                        (code, enhanced code, text) in memory that reset()
 *                        overwrites and frees: an engine that reads the reply
 *                        after the transaction ended shows garbage (or, built
 *                        with sanitizers, dies).
 *         "fill"         accepted after 1 ms with a 250 reply of about 70 kB
 *                        while less than 256 kB of output wait to be sent
 *                        (more than the kernel takes later, for a client with
 *                        a small window), with a short one after: pipelined
 *                        "MAIL FROM:<fill@...>" and RSET from a client that
 *                        does not read fill the socket's buffers and the
 *                        connection's, so a later 421 stays unsent.
 *   RCPT  "unknown..."   550 5.1.1      "temp..."  451 4.3.0
 *         "slow..."      accepted after 100 ms (an asynchronous answer)
 *         "bye..."       DISCONNECT through gn_smtp_answer_hook()
 *   DATA begin: a transaction with a recipient "nodata..." gets 554 5.7.9
 *         through gn_smtp_answer_hook(), its reply freed by reset() as for
 *         "hookrefuse".
 *   DATA end: a message whose first line is "Subject: tempfail" gets
 *         451 4.3.0 (and nothing is kept); "Subject: hook-tempfail" gets
 *         451 4.3.9 through gn_smtp_answer_hook() with an enhanced code and
 *         text from the transaction's pool, which the engine frees when the
 *         answered transaction ends; "Subject: slow-end" is stored and
 *         answered after 4 s (a policy still committing when a time limit
 *         passes).
 */
#include <gannet/gannet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *dir = "/tmp";

/* A SASL-style exchange in progress. */
enum auth_mech { MECH_NONE = 0, MECH_PLAIN, MECH_STEPS };

struct sess {
	struct gn_smtp_session *s;
	struct gn_timer *timer;
	struct gn_timer *helo_timer;	/* "slowrefused", "late" */
	char *helo_name;		/* the name helo_timer answers about */
	struct gn_timer *fill_timer;	/* "fill" */
	/* A hook reply whose strings live until reset() (or disconnect()). */
	struct gn_hook_reply reply;
	char *reply_enh, *reply_text;
	FILE *tmp;
	char *tmp_path;
	bool first_line_checked;
	bool tempfail;
	char head[32];
	size_t head_len;
	/* AUTH */
	enum auth_mech mech;
	unsigned steps, step;
	struct gn_timer *end_timer;	/* "slow-end" */
};

static void drop_tmp(struct sess *ss)
{
	if (ss->tmp != NULL) {
		fclose(ss->tmp);
		ss->tmp = NULL;
	}
	if (ss->tmp_path != NULL) {
		unlink(ss->tmp_path);
		gn_free(ss->tmp_path);
		ss->tmp_path = NULL;
	}
	ss->head_len = 0;
}

/* Overwrites the reply's strings, then frees them: read after this, they
 * are garbage even where freed memory keeps its content. */
static void reply_drop(struct sess *ss)
{
	if (ss->reply_enh != NULL)
		memset(ss->reply_enh, '#', strlen(ss->reply_enh));
	if (ss->reply_text != NULL)
		memset(ss->reply_text, '#', strlen(ss->reply_text));
	gn_free(ss->reply_enh);
	gn_free(ss->reply_text);
	ss->reply_enh = ss->reply_text = NULL;
	memset(&ss->reply, 0, sizeof(ss->reply));
}

static const struct gn_hook_reply *reply_set(struct sess *ss, int code, const char *enh,
					     char *text)
{
	reply_drop(ss);
	ss->reply_enh = gn_strdup(enh);
	ss->reply_text = text;
	ss->reply.code = code;
	ss->reply.enhanced = ss->reply_enh;
	ss->reply.text = ss->reply_text;
	return &ss->reply;
}

/* Whether label is the first label of a HELO name. */
static bool label_is(const char *name, const char *label)
{
	size_t n = strlen(label);
	return strncmp(name, label, n) == 0 && (name[n] == '.' || name[n] == '\0');
}

/* The session's state, made at its first use (connect() may be omitted). */
static struct sess *sess_of(struct gn_smtp_session *s)
{
	struct sess *ss = gn_smtp_session_data(s);

	if (ss == NULL) {
		ss = gn_calloc(1, sizeof(*ss));
		ss->s = s;
		gn_smtp_session_set_data(s, ss);
	}
	return ss;
}

static void st_connect(struct gn_smtp_session *s, void *data)
{
	(void)data;
	sess_of(s);
	gn_smtp_answer(s, 220, NULL, NULL);
}

static void slowrefused_done(void *data)
{
	struct sess *ss = data;
	gn_timer_free(&ss->helo_timer);
	gn_smtp_answer(ss->s, 550, "5.7.1", "Greeting from %s refused after a while",
		       ss->helo_name);
	gn_free(ss->helo_name);
	ss->helo_name = NULL;
}

static void late_check(void *data)
{
	struct sess *ss = data;
	struct gn_conn *conn = gn_smtp_session_conn(ss->s);

	if (!gn_conn_is_closed(conn))
		return;
	gn_timer_free(&ss->helo_timer);
	gn_log(GN_LOG_INFO, "smtptest", "event=smtptest_late_answer id=%s output_pending=%zu",
	       gn_conn_id(conn), gn_conn_output_pending(conn));
	gn_smtp_answer(ss->s, 250, NULL, NULL);
}

static void st_helo(struct gn_smtp_session *s, const char *name, bool ehlo, void *data)
{
	struct sess *ss = sess_of(s);
	const char *seen = gn_smtp_session_helo(s);
	(void)data;

	if (label_is(name, "check") &&
	    (seen == NULL || strcmp(seen, name) != 0 || gn_smtp_session_is_ehlo(s) != ehlo)) {
		gn_smtp_answer(s, 550, "5.5.0", "gn_smtp_session_helo() says %s (%s)",
			       seen != NULL ? seen : "nothing",
			       gn_smtp_session_is_ehlo(s) ? "EHLO" : "HELO");
	} else if (label_is(name, "refused")) {
		gn_smtp_answer(s, 550, "5.7.1", "Greeting from %s refused", name);
	} else if (label_is(name, "slowrefused")) {
		gn_free(ss->helo_name);
		ss->helo_name = gn_strdup(name);
		ss->helo_timer = gn_timer_new(100, false, slowrefused_done, ss);
	} else if (label_is(name, "late")) {
		ss->helo_timer = gn_timer_new(20, true, late_check, ss);
	} else {
		gn_smtp_answer(s, 250, NULL, NULL);
	}
}

#define FILL_LINES 1000
#define FILL_WIDTH 64

static void fill_done(void *data)
{
	struct sess *ss = data;
	size_t len = (size_t)FILL_LINES * (FILL_WIDTH + 1);
	char *big;

	gn_timer_free(&ss->fill_timer);
	if (gn_conn_output_pending(gn_smtp_session_conn(ss->s)) >= 256 * 1024) {
		gn_smtp_answer(ss->s, 250, NULL, "Filler");
		return;
	}
	/* FILL_LINES lines of FILL_WIDTH octets, "\n" between them. */
	big = gn_malloc(len);
	memset(big, 'f', len);
	for (size_t i = 1; i < FILL_LINES; i++)
		big[i * (FILL_WIDTH + 1) - 1] = '\n';
	big[len - 1] = '\0';
	gn_smtp_answer(ss->s, 250, NULL, "%s", big);
	gn_free(big);
}

static void st_mail(struct gn_smtp_session *s, const struct gn_addr *from, void *data)
{
	struct sess *ss = sess_of(s);
	(void)data;
	if (from != NULL && strcmp(from->localpart, "badsender") == 0) {
		gn_smtp_answer(s, 550, "5.7.1", "Sender %s not welcome", from->localpart);
		return;
	}
	if (from != NULL && strcmp(from->localpart, "hookrefuse") == 0) {
		gn_smtp_answer_hook(s, GN_HOOK_REJECT, reply_set(ss, 550, "5.7.9",
			gn_strdup_printf("Sender %s@%s refused by the hook", from->localpart,
					 from->domain)));
		return;
	}
	if (from != NULL && strcmp(from->localpart, "fill") == 0) {
		ss->fill_timer = gn_timer_new(1, false, fill_done, ss);
		return;
	}
	gn_smtp_answer(s, 250, NULL, NULL);
}

static void slow_done(void *data)
{
	struct sess *ss = data;
	gn_timer_free(&ss->timer);
	gn_smtp_answer(ss->s, 250, NULL, "Recipient OK after a while");
}

static void st_rcpt(struct gn_smtp_session *s, struct gn_smtp_rcpt *rcpt, void *data)
{
	struct sess *ss = sess_of(s);
	const char *lp = gn_smtp_rcpt_addr(rcpt)->localpart;
	(void)data;

	if (strncmp(lp, "unknown", 7) == 0) {
		gn_smtp_answer(s, 550, "5.1.1", "No such user here");
	} else if (strncmp(lp, "temp", 4) == 0) {
		gn_smtp_answer(s, 451, "4.3.0", "Try again");
	} else if (strncmp(lp, "slow", 4) == 0) {
		ss->timer = gn_timer_new(100, false, slow_done, ss);
	} else if (strncmp(lp, "bye", 3) == 0) {
		struct gn_hook_reply r = { 421, "4.7.0", "Go away", NULL };
		gn_smtp_answer_hook(s, GN_HOOK_DISCONNECT, &r);
	} else {
		gn_smtp_answer(s, 250, NULL, NULL);
	}
}

static void st_data_begin(struct gn_smtp_session *s, void *data)
{
	struct sess *ss = sess_of(s);
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	(void)data;

	for (size_t i = 0; i < gn_smtp_tx_rcpt_count(tx); i++) {
		const struct gn_addr *a = gn_smtp_rcpt_addr(gn_smtp_tx_rcpt(tx, i));
		if (strncmp(a->localpart, "nodata", 6) == 0) {
			gn_smtp_answer_hook(s, GN_HOOK_REJECT, reply_set(ss, 554, "5.7.9",
				gn_strdup_printf("Recipient %s@%s takes no message",
						 a->localpart, a->domain)));
			return;
		}
	}
	ss->tmp_path = gn_strdup_printf("%s/%s.tmp", dir, gn_smtp_tx_id(tx));
	ss->tmp = fopen(ss->tmp_path, "wb");
	ss->head_len = 0;
	if (ss->tmp == NULL) {
		gn_smtp_answer(s, 451, "4.3.0", "Cannot open %s", ss->tmp_path);
		gn_free(ss->tmp_path);
		ss->tmp_path = NULL;
		return;
	}
	gn_smtp_answer(s, 250, NULL, NULL);
}

static int st_data_chunk(struct gn_smtp_session *s, const char *buf, size_t len, void *data)
{
	struct sess *ss = sess_of(s);
	(void)data;
	if (ss->head_len < sizeof(ss->head)) {
		size_t n = sizeof(ss->head) - ss->head_len;
		n = n < len ? n : len;
		memcpy(ss->head + ss->head_len, buf, n);
		ss->head_len += n;
	}
	if (ss->tmp == NULL)
		return 0;	/* data_begin() omitted: nothing is kept */
	return fwrite(buf, 1, len, ss->tmp) == len ? 0 : -1;
}

/* The envelope, with the parameters the extensions brought. */
static void write_env(struct gn_smtp_session *s, struct sess *ss, const char *path)
{
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	struct gn_pool *pool = gn_smtp_tx_pool(tx);
	const struct gn_addr *from = gn_smtp_tx_from(tx);
	const char *v;
	FILE *f = fopen(path, "w");

	(void)ss;
	if (f == NULL)
		return;
	fprintf(f, "from %s\nsmtputf8 %d\nbody %s\nprotocol %s\nhelo %s\nauth %d\n",
		from != NULL ? gn_addr_to_string(pool, from) : "<>",
		gn_smtp_tx_smtputf8(tx) ? 1 : 0,
		gn_smtp_tx_body(tx) == GN_SMTP_BODY_8BITMIME ? "8bitmime" : "7bit",
		gn_smtp_session_protocol(s), gn_smtp_session_helo(s),
		gn_smtp_session_is_authenticated(s) ? 1 : 0);
	if (gn_smtp_tx_param(tx, "auth", &v) > 0)
		fprintf(f, "mail-auth %s\n", v != NULL ? v : "(none)");
	if (gn_smtp_tx_param(tx, "XVALUE", &v) > 0)
		fprintf(f, "mail-xvalue %s\n", v != NULL ? v : "(none)");
	if (gn_smtp_tx_param(tx, "XTLS", &v) > 0)
		fprintf(f, "mail-xtls %s\n", v != NULL ? v : "(none)");
	for (size_t i = 0; i < gn_smtp_tx_rcpt_count(tx); i++) {
		struct gn_smtp_rcpt *r = gn_smtp_tx_rcpt(tx, i);
		fprintf(f, "rcpt %s", gn_addr_to_string(pool, gn_smtp_rcpt_addr(r)));
		if (gn_smtp_rcpt_param(r, "NOTIFY", &v) > 0)
			fprintf(f, " notify=%s", v);
		if (gn_smtp_rcpt_param(r, "orcpt", &v) > 0)
			fprintf(f, " orcpt=%s", v);
		fputc('\n', f);
	}
	fclose(f);
}

/* Stores the message: .eml (the .tmp renamed; empty when data_begin() was
 * omitted), .env, .received. */
static void store(struct gn_smtp_session *s, struct sess *ss)
{
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	struct gn_pool *pool = gn_smtp_tx_pool(tx);
	const char *id = gn_smtp_tx_id(tx);
	char *eml = gn_pool_printf(pool, "%s/%s.eml", dir, id);
	FILE *f;

	write_env(s, ss, gn_pool_printf(pool, "%s/%s.env", dir, id));
	f = fopen(gn_pool_printf(pool, "%s/%s.received", dir, id), "w");
	if (f != NULL) {
		fputs(gn_smtp_session_received(s, pool, gn_smtp_tx_rcpt_count(tx) > 0 ?
			gn_smtp_rcpt_addr(gn_smtp_tx_rcpt(tx, 0)) : NULL), f);
		fclose(f);
	}
	if (ss->tmp_path != NULL) {
		rename(ss->tmp_path, eml);
		gn_free(ss->tmp_path);
		ss->tmp_path = NULL;
	} else if ((f = fopen(eml, "w")) != NULL) {
		fclose(f);
	}
}

static void slow_end_done(void *data)
{
	struct sess *ss = data;
	struct gn_smtp_tx *tx = gn_smtp_session_tx(ss->s);

	gn_timer_free(&ss->end_timer);
	store(ss->s, ss);
	gn_smtp_answer(ss->s, 250, "2.0.0", "Ok: queued as %s after a while", gn_smtp_tx_id(tx));
}

static bool head_is(const struct sess *ss, const char *subject)
{
	size_t n = strlen(subject);
	return ss->head_len >= n && memcmp(ss->head, subject, n) == 0;
}

static void st_data_end(struct gn_smtp_session *s, void *data)
{
	struct sess *ss = sess_of(s);
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	struct gn_pool *pool = gn_smtp_tx_pool(tx);
	(void)data;

	if (head_is(ss, "Subject: tempfail")) {
		drop_tmp(ss);
		gn_smtp_answer(s, 451, "4.3.0", "Temporary failure as asked");
		return;
	}
	if (head_is(ss, "Subject: hook-tempfail")) {
		struct gn_hook_reply r = { 451, gn_pool_strdup(pool, "4.3.9"),
			gn_pool_strdup(pool, "Try again later, says the hook"), NULL };
		drop_tmp(ss);
		gn_smtp_answer_hook(s, GN_HOOK_TEMPFAIL, &r);
		return;
	}
	if (ss->tmp != NULL && fclose(ss->tmp) != 0) {
		ss->tmp = NULL;
		drop_tmp(ss);
		gn_smtp_answer(s, 451, "4.3.0", "Write error");
		return;
	}
	ss->tmp = NULL;
	if (head_is(ss, "Subject: slow-end")) {
		ss->end_timer = gn_timer_new(4000, false, slow_end_done, ss);
		return;
	}
	store(s, ss);
	gn_smtp_answer(s, 250, "2.0.0", "Ok: queued as %s", gn_smtp_tx_id(tx));
}

static void st_reset(struct gn_smtp_session *s, void *data)
{
	struct sess *ss = gn_smtp_session_data(s);
	(void)data;
	if (ss != NULL) {
		gn_timer_free(&ss->end_timer);
		drop_tmp(ss);
		reply_drop(ss);
	}
}

static void st_disconnect(struct gn_smtp_session *s, void *data)
{
	struct sess *ss = gn_smtp_session_data(s);
	(void)data;
	if (ss == NULL)
		return;
	gn_timer_free(&ss->timer);
	gn_timer_free(&ss->helo_timer);
	gn_timer_free(&ss->fill_timer);
	gn_timer_free(&ss->end_timer);
	gn_free(ss->helo_name);
	drop_tmp(ss);
	reply_drop(ss);
	gn_free(ss);
}

/* ---- extensions ---- */

/* RFC 4648 4 base64, strict: padding required, nothing else.  The decoded
 * octets (gn_malloc'd, NUL-terminated, *len_r), or NULL. */
static char *b64_decode(const char *in, size_t *len_r)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;
	char *out;

	if (n % 4 != 0)
		return NULL;
	out = gn_malloc(n / 4 * 3 + 1);
	for (size_t i = 0; i < n; i += 4) {
		unsigned v = 0, pad = 0;
		for (size_t j = 0; j < 4; j++) {
			const char *c = in[i + j] != '\0' ? strchr(alphabet, in[i + j]) : NULL;
			if (in[i + j] == '=' && i + 4 == n && j >= 2) {
				pad++;
				v <<= 6;
				continue;
			}
			if (c == NULL || pad > 0) {
				gn_free(out);
				return NULL;
			}
			v = v << 6 | (unsigned)(c - alphabet);
		}
		out[o++] = (char)(v >> 16);
		if (pad < 2)
			out[o++] = (char)(v >> 8 & 0xff);
		if (pad < 1)
			out[o++] = (char)(v & 0xff);
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}

static char *b64_encode(const char *in)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;
	char *out = gn_malloc((n + 2) / 3 * 4 + 1);

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

static bool auth_offer(struct gn_smtp_session *s, struct gn_buf *params, void *data)
{
	(void)data;
	gn_buf_append_str(params, "PLAIN X-STEPS");
	if (gn_conn_is_tls(gn_smtp_session_conn(s)))
		gn_buf_append_str(params, " X-TLS");
	return true;
}

static void auth_done(struct gn_smtp_session *s, struct sess *ss, bool ok)
{
	ss->mech = MECH_NONE;
	if (!ok) {
		gn_smtp_answer(s, 535, "5.7.8", "Authentication credentials invalid");
		return;
	}
	gn_smtp_session_set_authenticated(s, true);
	gn_smtp_answer(s, 235, "2.7.0", "Authentication successful");
}

/* PLAIN's one response (RFC 4616): "\0test\0secret". */
static void auth_plain(struct gn_smtp_session *s, struct sess *ss, const char *b64)
{
	static const char want[] = "\0test\0secret";
	size_t len = 0;
	char *raw = strcmp(b64, "=") == 0 ? gn_strdup("") : b64_decode(b64, &len);

	if (raw == NULL) {
		ss->mech = MECH_NONE;
		gn_smtp_answer(s, 501, "5.5.2", "Bad base64");
		return;
	}
	auth_done(s, ss, len == sizeof(want) - 1 && memcmp(raw, want, len) == 0);
	gn_free(raw);
}

static void auth_challenge(struct gn_smtp_session *s, struct sess *ss)
{
	char *step = gn_strdup_printf("step %u", ++ss->step);
	char *b64 = b64_encode(step);
	gn_smtp_answer_more(s, 334, "%s", b64);
	gn_free(b64);
	gn_free(step);
}

static void auth_start(struct gn_smtp_session *s, const char *args, void *data)
{
	struct sess *ss = sess_of(s);
	const char *sp = strchr(args, ' ');
	size_t mlen = sp != NULL ? (size_t)(sp - args) : strlen(args);
	(void)data;

	if (gn_smtp_session_is_authenticated(s)) {
		gn_smtp_answer(s, 503, "5.5.1", "Already authenticated");
		return;
	}
	if (mlen == 5 && strncasecmp(args, "PLAIN", 5) == 0) {
		ss->mech = MECH_PLAIN;
		if (sp != NULL)
			auth_plain(s, ss, sp + 1);
		else
			gn_smtp_answer_more(s, 334, "%s", "");
		return;
	}
	if (mlen == 7 && strncasecmp(args, "X-STEPS", 7) == 0 && sp != NULL) {
		ss->mech = MECH_STEPS;
		ss->steps = (unsigned)strtoul(sp + 1, NULL, 10);
		ss->step = 0;
		auth_challenge(s, ss);
		return;
	}
	gn_smtp_answer(s, 504, "5.5.4", "Unrecognized authentication type");
}

static void auth_line(struct gn_smtp_session *s, const char *line, void *data)
{
	struct sess *ss = sess_of(s);
	size_t len = 0;
	char *raw;
	(void)data;

	if (strcmp(line, "*") == 0) {
		/* RFC 4954 4: the client cancels; the server says 501. */
		ss->mech = MECH_NONE;
		gn_smtp_answer(s, 501, "5.0.0", "Authentication cancelled");
		return;
	}
	if (ss->mech == MECH_PLAIN) {
		auth_plain(s, ss, line);
		return;
	}
	raw = b64_decode(line, &len);
	if (raw == NULL || strcmp(raw, "ok") != 0) {
		gn_free(raw);
		ss->mech = MECH_NONE;
		gn_smtp_answer(s, 501, "5.5.2", "Bad response");
		return;
	}
	gn_free(raw);
	if (ss->step >= ss->steps)
		auth_done(s, ss, true);
	else
		auth_challenge(s, ss);
}

static void auth_cancel(struct gn_smtp_session *s, void *data)
{
	struct sess *ss = gn_smtp_session_data(s);
	(void)data;
	gn_log(GN_LOG_INFO, "smtptest", "event=smtptest_cancel id=%s verb=AUTH step=%u",
	       gn_conn_id(gn_smtp_session_conn(s)), ss != NULL ? ss->step : 0);
	if (ss != NULL)
		ss->mech = MECH_NONE;
}

static void restart_start(struct gn_smtp_session *s, const char *args, void *data)
{
	(void)args, (void)data;
	gn_smtp_answer(s, 220, "2.0.0", "%s ready to start over", gn_smtp_session_hostname(s));
}

static int check_xvalue(struct gn_smtp_session *s, const char *value,
			struct gn_hook_reply *reply, void *data)
{
	(void)s, (void)data;
	if (strcmp(value, "bad") == 0) {
		reply->code = 550;
		reply->enhanced = "5.7.9";
		reply->text = "XVALUE=bad is refused by its check";
		return -1;
	}
	if (strcmp(value, "badenh") == 0) {
		/* An enhanced code of the wrong class. */
		reply->code = 550;
		reply->enhanced = "4.7.1";
		reply->text = "XVALUE=badenh is refused with a bad enhanced code";
		return -1;
	}
	return 0;
}

/* RFC 3461 4.1: NEVER, or a list of SUCCESS, FAILURE, DELAY. */
static int check_notify(struct gn_smtp_session *s, const char *value,
			struct gn_hook_reply *reply, void *data)
{
	char *copy = gn_strdup(value), *save = NULL;
	bool ok = true;
	(void)s, (void)data;

	if (strcasecmp(value, "NEVER") != 0) {
		for (char *w = strtok_r(copy, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save))
			if (strcasecmp(w, "SUCCESS") != 0 && strcasecmp(w, "FAILURE") != 0 &&
			    strcasecmp(w, "DELAY") != 0)
				ok = false;
	}
	gn_free(copy);
	if (!ok)
		reply->text = "Bad NOTIFY";
	return ok ? 0 : -1;
}

static int add_extensions(struct gn_smtp_server *srv, const char **error_r)
{
	const struct gn_smtp_keyword keywords[] = {
		{ .size = sizeof(struct gn_smtp_keyword), .keyword = "AUTH",
		  .offer = auth_offer },
		{ .size = sizeof(struct gn_smtp_keyword), .keyword = "DSN" },
		{ .size = sizeof(struct gn_smtp_keyword), .keyword = "XTLSONLY",
		  .flags = GN_SMTP_KEYWORD_TLS },
	};
	const struct gn_smtp_param params[] = {
		{ .size = sizeof(struct gn_smtp_param), .cmd = GN_SMTP_PARAM_MAIL,
		  .keyword = "AUTH", .extension = "AUTH",
		  .flags = GN_SMTP_PARAM_VALUE | GN_SMTP_PARAM_XTEXT },
		{ .size = sizeof(struct gn_smtp_param), .cmd = GN_SMTP_PARAM_MAIL,
		  .keyword = "XVALUE", .flags = GN_SMTP_PARAM_VALUE, .max_length = 20,
		  .check = check_xvalue },
		{ .size = sizeof(struct gn_smtp_param), .cmd = GN_SMTP_PARAM_MAIL,
		  .keyword = "XTLS", .extension = "XTLSONLY", .flags = GN_SMTP_PARAM_NO_VALUE },
		{ .size = sizeof(struct gn_smtp_param), .cmd = GN_SMTP_PARAM_RCPT,
		  .keyword = "NOTIFY", .extension = "DSN", .flags = GN_SMTP_PARAM_VALUE,
		  .check = check_notify },
		{ .size = sizeof(struct gn_smtp_param), .cmd = GN_SMTP_PARAM_RCPT,
		  .keyword = "ORCPT", .extension = "DSN",
		  .flags = GN_SMTP_PARAM_VALUE | GN_SMTP_PARAM_XTEXT },
	};
	const struct gn_smtp_command commands[] = {
		{ .size = sizeof(struct gn_smtp_command), .verb = "AUTH", .extension = "AUTH",
		  .states = GN_SMTP_STATE_HELO, .flags = GN_SMTP_CMD_ARGS,
		  .max_line_length = 12288, .max_lines = 4,
		  .start = auth_start, .line = auth_line, .cancel = auth_cancel },
		{ .size = sizeof(struct gn_smtp_command), .verb = "XRESTART",
		  .states = GN_SMTP_STATE_HELO, .flags = GN_SMTP_CMD_NOARGS | GN_SMTP_CMD_RESTART,
		  .start = restart_start },
	};

	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
		if (gn_smtp_server_add_keyword(srv, &keywords[i], error_r) < 0)
			return -1;
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		if (gn_smtp_server_add_param(srv, &params[i], error_r) < 0)
			return -1;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (gn_smtp_server_add_command(srv, &commands[i], error_r) < 0)
			return -1;
	return 0;
}

static int st_register(struct gn_module_ctx *ctx, const char **error_r)
{
	struct gn_config *sect = gn_module_config(ctx);
	struct gn_smtp_settings set;
	struct gn_smtp_policy policy = {
		.size = sizeof(struct gn_smtp_policy),
		.connect = st_connect,
		.helo = st_helo,
		.mail = st_mail,
		.rcpt = st_rcpt,
		.data_begin = st_data_begin,
		.data_chunk = st_data_chunk,
		.data_end = st_data_end,
		.reset = st_reset,
		.disconnect = st_disconnect,
	};
	struct gn_smtp_server *srv;
	const char *omit = "";

	gn_config_string(sect, "dir", "/tmp", &dir);
	gn_config_string(sect, "omit", "", &omit);
	if (strstr(omit, "connect") != NULL)
		policy.connect = NULL;
	if (strstr(omit, "helo") != NULL)
		policy.helo = NULL;
	if (strstr(omit, "mail") != NULL)
		policy.mail = NULL;
	if (strstr(omit, "rcpt") != NULL)
		policy.rcpt = NULL;
	if (strstr(omit, "data_begin") != NULL)
		policy.data_begin = NULL;
	if (strstr(omit, "data_chunk") != NULL)
		policy.data_chunk = NULL;
	if (strstr(omit, "data_end") != NULL)
		policy.data_end = NULL;
	gn_smtp_settings_init(&set);
	gn_smtp_settings_read(sect, &set);
	srv = gn_smtp_server_register(ctx, "smtptest", &set, &policy, NULL, error_r);
	if (srv == NULL)
		return -1;
	return add_extensions(srv, error_r);
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "smtptest",
	.version = "1.0",
	.register_fn = st_register,
};
