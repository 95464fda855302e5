/*
 * t/modules/smtptest/smtptest.c: a policy on the SMTP engine
 * (gannet/smtp.h) for the engine's own tests (t/integration/150-smtp-
 * engine.t), with no database: built like any module, <gannet/gannet.h>
 * only.
 *
 * Protocol "smtptest".  Config:
 *   smtptest = { dir = "/tmp/x"; <engine settings: gn_smtp_settings_read()> };
 *
 * Each accepted message is written to DIR/<tx id>.eml exactly as the engine
 * handed it over (dot-unstuffed), and its envelope to DIR/<tx id>.env:
 * "from <addr or <>>", "smtputf8 0|1", "body 7bit|8bitmime", then
 * "rcpt <addr>" a line.  Chunks go to DIR/<tx id>.tmp while the message
 * arrives; reset() removes it, so an aborted transaction leaves nothing.
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
 *         answered transaction ends.
 */
#include <gannet/gannet.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *dir = "/tmp";

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

static void st_connect(struct gn_smtp_session *s, void *data)
{
	struct sess *ss = gn_calloc(1, sizeof(*ss));
	(void)data;
	ss->s = s;
	gn_smtp_session_set_data(s, ss);
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
	struct sess *ss = gn_smtp_session_data(s);
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
	struct sess *ss = gn_smtp_session_data(s);
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
	struct sess *ss = gn_smtp_session_data(s);
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
	struct sess *ss = gn_smtp_session_data(s);
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
	struct sess *ss = gn_smtp_session_data(s);
	(void)data;
	if (ss->head_len < sizeof(ss->head)) {
		size_t n = sizeof(ss->head) - ss->head_len;
		n = n < len ? n : len;
		memcpy(ss->head + ss->head_len, buf, n);
		ss->head_len += n;
	}
	return fwrite(buf, 1, len, ss->tmp) == len ? 0 : -1;
}

static void st_data_end(struct gn_smtp_session *s, void *data)
{
	struct sess *ss = gn_smtp_session_data(s);
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	struct gn_pool *pool = gn_smtp_tx_pool(tx);
	const struct gn_addr *from = gn_smtp_tx_from(tx);
	char *eml, *env;
	FILE *f;
	(void)data;

	if (ss->head_len >= 17 && memcmp(ss->head, "Subject: tempfail", 17) == 0) {
		drop_tmp(ss);
		gn_smtp_answer(s, 451, "4.3.0", "Temporary failure as asked");
		return;
	}
	if (ss->head_len >= 22 && memcmp(ss->head, "Subject: hook-tempfail", 22) == 0) {
		struct gn_hook_reply r = { 451, gn_pool_strdup(pool, "4.3.9"),
			gn_pool_strdup(pool, "Try again later, says the hook"), NULL };
		drop_tmp(ss);
		gn_smtp_answer_hook(s, GN_HOOK_TEMPFAIL, &r);
		return;
	}
	if (fclose(ss->tmp) != 0) {
		ss->tmp = NULL;
		drop_tmp(ss);
		gn_smtp_answer(s, 451, "4.3.0", "Write error");
		return;
	}
	ss->tmp = NULL;
	env = gn_pool_printf(pool, "%s/%s.env", dir, gn_smtp_tx_id(tx));
	eml = gn_pool_printf(pool, "%s/%s.eml", dir, gn_smtp_tx_id(tx));
	f = fopen(env, "w");
	if (f != NULL) {
		fprintf(f, "from %s\nsmtputf8 %d\nbody %s\nprotocol %s\nhelo %s\n",
			from != NULL ? gn_addr_to_string(pool, from) : "<>",
			gn_smtp_tx_smtputf8(tx) ? 1 : 0,
			gn_smtp_tx_body(tx) == GN_SMTP_BODY_8BITMIME ? "8bitmime" : "7bit",
			gn_smtp_session_protocol(s), gn_smtp_session_helo(s));
		for (size_t i = 0; i < gn_smtp_tx_rcpt_count(tx); i++)
			fprintf(f, "rcpt %s\n", gn_addr_to_string(pool,
				gn_smtp_rcpt_addr(gn_smtp_tx_rcpt(tx, i))));
		fclose(f);
	}
	rename(ss->tmp_path, eml);
	gn_free(ss->tmp_path);
	ss->tmp_path = NULL;
	gn_smtp_answer(s, 250, "2.0.0", "Ok: queued as %s", gn_smtp_tx_id(tx));
}

static void st_reset(struct gn_smtp_session *s, void *data)
{
	struct sess *ss = gn_smtp_session_data(s);
	(void)data;
	if (ss != NULL) {
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
	gn_free(ss->helo_name);
	drop_tmp(ss);
	reply_drop(ss);
	gn_free(ss);
}

static const struct gn_smtp_policy policy = {
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

static int st_register(struct gn_module_ctx *ctx, const char **error_r)
{
	struct gn_config *sect = gn_module_config(ctx);
	struct gn_smtp_settings set;

	gn_config_string(sect, "dir", "/tmp", &dir);
	gn_smtp_settings_init(&set);
	gn_smtp_settings_read(sect, &set);
	return gn_smtp_server_register(ctx, "smtptest", &set, &policy, NULL, error_r)
		!= NULL ? 0 : -1;
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "smtptest",
	.version = "1.0",
	.register_fn = st_register,
};
