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
 * Decisions by localpart:
 *   MAIL  "badsender"    550 5.7.1
 *   RCPT  "unknown..."   550 5.1.1      "temp..."  451 4.3.0
 *         "slow..."      accepted after 100 ms (an asynchronous answer)
 *         "bye..."       DISCONNECT through gn_smtp_answer_hook()
 *   DATA end: a message whose first line is "Subject: tempfail" gets
 *         451 4.3.0 (and nothing is kept).
 */
#include <gannet/gannet.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *dir = "/tmp";

struct sess {
	struct gn_smtp_session *s;
	struct gn_timer *timer;
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

static void st_connect(struct gn_smtp_session *s, void *data)
{
	struct sess *ss = gn_calloc(1, sizeof(*ss));
	(void)data;
	ss->s = s;
	gn_smtp_session_set_data(s, ss);
	gn_smtp_answer(s, 220, NULL, NULL);
}

static void st_mail(struct gn_smtp_session *s, const struct gn_addr *from, void *data)
{
	(void)data;
	if (from != NULL && strcmp(from->localpart, "badsender") == 0) {
		gn_smtp_answer(s, 550, "5.7.1", "Sender %s not welcome", from->localpart);
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
	if (ss != NULL)
		drop_tmp(ss);
}

static void st_disconnect(struct gn_smtp_session *s, void *data)
{
	struct sess *ss = gn_smtp_session_data(s);
	(void)data;
	if (ss == NULL)
		return;
	gn_timer_free(&ss->timer);
	drop_tmp(ss);
	gn_free(ss);
}

static const struct gn_smtp_policy policy = {
	.size = sizeof(struct gn_smtp_policy),
	.connect = st_connect,
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
