/*
 * modules/webhooks/cli.c: the module's commands.
 *
 *   gannet config account webhook show ACCOUNT
 *   gannet config account webhook set ACCOUNT outgoing URL [EVENTS [-]]
 *   gannet config account webhook set ACCOUNT incoming URL [-]
 *   gannet config account webhook clear ACCOUNT outgoing|incoming
 *   gannet config account webhook keep ACCOUNT DURATION|default
 *   gannet config account webhook secret ACCOUNT        (a new one)
 *   gannet queue webhook list [ACCOUNT]
 *   gannet queue webhook print ID
 *   gannet queue webhook schedule ID +DURATION|now
 *   gannet queue webhook cancel ID
 *   gannet queue webhook run                            (one pass, waits)
 *   gannet queue webhook retired list [ACCOUNT]
 *   gannet queue webhook retired print ID
 *
 * EVENTS is "all" or a comma-separated list of mox's event names.  "-"
 * reads the Authorization value from the first line of stdin: a secret is
 * never an argument (arguments are visible to every user in ps).
 */
#include "webhooks.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define LIST_MAX 1000

static int fail(const char *error)
{
	fprintf(stderr, "gannet: %s\n", error);
	return 1;
}

static int account_arg(struct gn_pool *pool, const char *name, int64_t *id_r)
{
	struct gn_store_account *a;
	const char *err = NULL;
	int r = gn_store_account_find(pool, name, &a, &err);
	if (r < 0)
		return fail(gn_pool_printf(pool, "reading the account: %s", err));
	if (r == 0)
		return fail(gn_pool_printf(pool, "unknown account: %s", name));
	*id_r = gn_store_account_id(a);
	return 0;
}

/* "30s", "5m", "2h", "3d", or seconds: -1 when malformed. */
static long long duration(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || v < 0)
		return -1;
	double mult = 1;
	if (strcmp(end, "s") == 0 || *end == '\0')
		mult = 1;
	else if (strcmp(end, "m") == 0)
		mult = 60;
	else if (strcmp(end, "h") == 0)
		mult = 3600;
	else if (strcmp(end, "d") == 0)
		mult = 86400;
	else
		return -1;
	if (v * mult > (double)WEBHOOKS_KEEP_MAX_S)
		return -1;
	return (long long)(v * mult);
}

static int id_arg(const char *s, int64_t *id_r)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || v <= 0) {
		fprintf(stderr, "gannet: invalid webhook id: %s\n", s);
		return 2;
	}
	*id_r = v;
	return 0;
}

/* The effective keeping period and where it comes from. */
static const char *keep_text(struct gn_pool *pool, const struct webhooks_account *a)
{
	return gn_pool_printf(pool, "%llds (%s)", a->keep_retired_s,
			      a->keep_retired_default ? "the default, webhooks.retired_keep" : "its own setting");
}

static int cmd_show(int argc, char **argv, void *data)
{
	(void)argc;
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	int64_t acc = 0;
	struct webhooks_account a;
	const char *err = NULL;
	int ret = account_arg(pool, argv[1], &acc);
	if (ret == 0) {
		int r = webhooks_account_get(pool, acc, &a, &err);
		if (r < 0) {
			ret = fail(gn_pool_printf(pool, "reading the webhook settings: %s", err));
		} else if (r == 0) {
			printf("outgoing: none\nincoming: none\nkeep-retired: %llds (the default, "
			       "webhooks.retired_keep)\n", webhooks_settings.retired_keep_s);
		} else {
			struct gn_buf *ev = gn_buf_new(0);
			for (size_t i = 0; i < a.n_events; i++)
				gn_buf_printf(ev, "%s%s", i > 0 ? "," : "", a.events[i]);
			if (a.outgoing_url[0] == '\0')
				printf("outgoing: none\n");
			else
				printf("outgoing: %s events=%s authorization=%s\n", a.outgoing_url,
				       a.n_events == 0 ? "all" : gn_buf_data(ev), a.outgoing_auth[0] != '\0' ? "yes" : "no");
			gn_buf_free(&ev);
			if (a.incoming_url[0] == '\0')
				printf("incoming: none\n");
			else
				printf("incoming: %s authorization=%s\n", a.incoming_url,
				       a.incoming_auth[0] != '\0' ? "yes" : "no");
			printf("secret: %s\nkeep-retired: %s\n", a.secret, keep_text(pool, &a));
		}
	}
	gn_pool_free(&pool);
	return ret;
}

static int check_text(const char *what, const char *s, size_t max)
{
	if (strlen(s) > max) {
		fprintf(stderr, "gannet: %s too long (at most %zu bytes)\n", what, max);
		return 1;
	}
	for (const char *c = s; *c != '\0'; c++)
		if ((unsigned char)*c < ' ' || *c == 0x7f) {
			fprintf(stderr, "gannet: %s with a control character\n", what);
			return 1;
		}
	return 0;
}

/* The first line of stdin (without its line end) into buf; -1 when there
 * is none or it is longer than max bytes. */
static ssize_t read_auth_line(char *buf, size_t max)
{
	if (fgets(buf, (int)max + 2, stdin) == NULL)
		return -1;
	size_t n = strlen(buf);
	bool line_end = n > 0 && buf[n - 1] == '\n';
	if (line_end)
		buf[--n] = '\0';
	else if (n > max)
		return -1;
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return n > max ? -1 : (ssize_t)n;
}

static int cmd_set(int argc, char **argv, void *data)
{
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	int64_t acc = 0;
	const char *err = NULL, *host, *path;
	unsigned port;
	bool out = strcmp(argv[2], "outgoing") == 0;
	int ret = 0;
	if (!out && strcmp(argv[2], "incoming") != 0) {
		fprintf(stderr, "gannet: expecting outgoing or incoming, not %s\n", argv[2]);
		ret = 2;
	} else if (!out && argc > 5) {
		fprintf(stderr, "gannet: an incoming webhook has no events: set ACCOUNT incoming URL "
			"[AUTHORIZATION]\n");
		ret = 2;
	}
	const char *auth_arg = out ? (argc > 5 ? argv[5] : NULL) : (argc > 4 ? argv[4] : NULL);
	const char *auth = "";
	if (ret == 0 && auth_arg != NULL && strcmp(auth_arg, "-") != 0) {
		fprintf(stderr, "gannet: the Authorization value is read from stdin: give \"-\", not the "
			"value (arguments are visible in ps)\n");
		ret = 2;
	} else if (ret == 0 && auth_arg != NULL) {
		char *buf = gn_pool_alloc(pool, WEBHOOKS_AUTH_MAX + 3);
		ssize_t n = read_auth_line(buf, WEBHOOKS_AUTH_MAX);
		if (n <= 0)
			ret = fail(gn_pool_printf(pool, "no Authorization value on stdin (or longer than %d "
						  "bytes)", WEBHOOKS_AUTH_MAX));
		auth = buf;
	}
	if (ret == 0 && webhooks_url_parse(pool, argv[3], &host, &port, &path, &err) < 0)
		ret = fail(gn_pool_printf(pool, "invalid URL \"%s\": %s", argv[3], err));
	if (ret == 0)
		ret = check_text("authorization", auth, WEBHOOKS_AUTH_MAX);
	const char **events = NULL;
	size_t n = 0;
	if (ret == 0 && out && argc > 4 && strcmp(argv[4], "all") != 0) {
		char *list = gn_pool_strdup(pool, argv[4]);
		events = gn_pool_alloc(pool, (strlen(list) / 2 + 2) * sizeof(*events));
		for (char *save = NULL, *t = strtok_r(list, ",", &save); t != NULL && ret == 0;
		     t = strtok_r(NULL, ",", &save)) {
			if (!webhooks_event_valid(t))
				ret = fail(gn_pool_printf(pool, "unknown event \"%s\" (delivered, suppressed, delayed, "
							  "failed, relayed, expanded, canceled, unrecognized)", t));
			events[n++] = t;
		}
		if (ret == 0 && n == 0)
			ret = fail("no events: give \"all\" or a list");
	}
	if (ret == 0)
		ret = account_arg(pool, argv[1], &acc);
	if (ret == 0 && webhooks_account_set(acc, argv[2], argv[3], auth, events, n, &err) < 0)
		ret = fail(gn_pool_printf(pool, "storing the webhook settings: %s", err));
	gn_pool_free(&pool);
	return ret;
}

static int cmd_clear(int argc, char **argv, void *data)
{
	(void)argc;
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	int64_t acc = 0;
	const char *err = NULL;
	int ret = 0;
	if (strcmp(argv[2], "outgoing") != 0 && strcmp(argv[2], "incoming") != 0) {
		fprintf(stderr, "gannet: expecting outgoing or incoming, not %s\n", argv[2]);
		ret = 2;
	}
	if (ret == 0)
		ret = account_arg(pool, argv[1], &acc);
	if (ret == 0 && webhooks_account_set(acc, argv[2], "", "", NULL, 0, &err) < 0)
		ret = fail(gn_pool_printf(pool, "storing the webhook settings: %s", err));
	gn_pool_free(&pool);
	return ret;
}

static int cmd_keep(int argc, char **argv, void *data)
{
	(void)argc;
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	int64_t acc = 0;
	const char *err = NULL;
	struct webhooks_account a;
	long long d = strcmp(argv[2], "default") == 0 ? -1 : duration(argv[2]);
	int ret = d < 0 && strcmp(argv[2], "default") != 0
		? fail(gn_pool_printf(pool, "invalid duration: %s", argv[2])) : 0;
	if (ret == 0)
		ret = account_arg(pool, argv[1], &acc);
	if (ret == 0 && webhooks_account_set_keep(acc, d, &err) < 0)
		ret = fail(gn_pool_printf(pool, "storing the webhook settings: %s", err));
	if (ret == 0 && webhooks_account_get(pool, acc, &a, &err) <= 0)
		ret = fail(gn_pool_printf(pool, "reading the webhook settings: %s", err != NULL ? err : "gone"));
	if (ret == 0)
		printf("account %s keeps retired webhooks for %s\n", argv[1], keep_text(pool, &a));
	gn_pool_free(&pool);
	return ret;
}

static int cmd_secret(int argc, char **argv, void *data)
{
	(void)argc;
	(void)data;
	struct gn_pool *pool = gn_pool_new();
	int64_t acc = 0;
	const char *err = NULL, *secret = NULL;
	int ret = account_arg(pool, argv[1], &acc);
	if (ret == 0 && webhooks_account_new_secret(pool, acc, &secret, &err) < 0)
		ret = fail(gn_pool_printf(pool, "storing the secret: %s", err));
	if (ret == 0)
		printf("%s\n", secret);
	gn_pool_free(&pool);
	return ret;
}

static void print_line(struct gn_pool *pool, const struct webhooks_hook *h)
{
	printf("%" PRId64 " account=%s event=%s queue_msg=%" PRId64 " attempts=%u ", h->id, h->account,
	       h->is_incoming ? "incoming" : h->event, h->queue_msg_id, h->attempts);
	if (h->retired)
		printf("success=%s superseded_by=%" PRId64 " last_activity=%s keep_until=%s url=%s\n",
		       h->success ? "yes" : "no", h->superseded_by, webhooks_time(pool, h->last_activity),
		       webhooks_time(pool, h->keep_until), h->url);
	else
		printf("next=%s url=%s\n", webhooks_time(pool, h->next_attempt), h->url);
}

static int list(int argc, char **argv, bool retired)
{
	struct gn_pool *pool = gn_pool_new();
	int64_t acc = 0;
	struct webhooks_hook *l = NULL;
	size_t n = 0;
	const char *err = NULL;
	int ret = argc > 1 ? account_arg(pool, argv[1], &acc) : 0;
	if (ret == 0 && webhooks_list(pool, retired, acc, LIST_MAX, &l, &n, &err) < 0)
		ret = fail(gn_pool_printf(pool, "reading the webhooks: %s", err));
	for (size_t i = 0; ret == 0 && i < n; i++)
		print_line(pool, &l[i]);
	gn_pool_free(&pool);
	return ret;
}

static int print(char **argv, bool retired)
{
	struct gn_pool *pool = gn_pool_new();
	int64_t id = 0;
	struct webhooks_hook h;
	const char *err = NULL;
	int ret = id_arg(argv[1], &id);
	if (ret == 0) {
		int r = webhooks_get(pool, retired, id, &h, &err);
		if (r < 0)
			ret = fail(gn_pool_printf(pool, "reading the webhook: %s", err));
		else if (r == 0)
			ret = fail(gn_pool_printf(pool, "no %swebhook %" PRId64, retired ? "retired " : "", id));
	}
	if (ret == 0) {
		print_line(pool, &h);
		printf("submitted: %s\nauthorization: %s\nfrom_id: %s\nmessage_id: %s\nsubject: %s\n",
		       webhooks_time(pool, h.submitted), h.has_auth ? "yes" : "no", h.from_id, h.message_id,
		       h.subject);
		printf("payload: %s\nresults: %s\n", h.payload, h.results);
	}
	gn_pool_free(&pool);
	return ret;
}

static int cmd_list(int argc, char **argv, void *data)
{
	(void)data;
	return list(argc, argv, false);
}

static int cmd_retired_list(int argc, char **argv, void *data)
{
	(void)data;
	return list(argc, argv, true);
}

static int cmd_print(int argc, char **argv, void *data)
{
	(void)argc;
	(void)data;
	return print(argv, false);
}

static int cmd_retired_print(int argc, char **argv, void *data)
{
	(void)argc;
	(void)data;
	return print(argv, true);
}

static int cmd_schedule(int argc, char **argv, void *data)
{
	(void)argc;
	(void)data;
	int64_t id = 0;
	int ret = id_arg(argv[1], &id);
	if (ret != 0)
		return ret;
	double when = gn_queue_now();
	if (strcmp(argv[2], "now") != 0) {
		long long d = argv[2][0] == '+' ? duration(argv[2] + 1) : -1;
		if (d < 0) {
			fprintf(stderr, "gannet: expecting now or +DURATION, not %s\n", argv[2]);
			return 2;
		}
		when += (double)d;
	}
	const char *err = NULL;
	int r = webhooks_schedule(id, when, &err);
	if (r < 0) {
		fprintf(stderr, "gannet: scheduling the webhook: %s\n", err);
		return 1;
	}
	if (r == 0) {
		fprintf(stderr, "gannet: no pending webhook %" PRId64 "\n", id);
		return 1;
	}
	return 0;
}

static int cmd_cancel(int argc, char **argv, void *data)
{
	(void)argc;
	(void)data;
	int64_t id = 0;
	int ret = id_arg(argv[1], &id);
	if (ret != 0)
		return ret;
	const char *err = NULL;
	int r = webhooks_cancel(id, &err);
	if (r < 0) {
		fprintf(stderr, "gannet: canceling the webhook: %s\n", err);
		return 1;
	}
	if (r == 0) {
		fprintf(stderr, "gannet: no pending webhook %" PRId64 "\n", id);
		return 1;
	}
	return 0;
}

static void on_idle(void *data)
{
	(void)data;
	gn_loop_break();
}

/* One pass of the runner's job, waiting for its requests. */
static int cmd_run(int argc, char **argv, void *data)
{
	(void)argc;
	(void)argv;
	(void)data;
	webhooks_send_pass();
	/* Set after the pass: one that ended at once must not break the
	 * loop before the others are waited for. */
	if (webhooks_in_flight() > 0) {
		webhooks_send_on_idle(on_idle);
		gn_loop_run();
		webhooks_send_on_idle(NULL);
	}
	return 0;
}

int webhooks_cli_register(struct gn_module_ctx *ctx, const char **error_r)
{
	static const struct gn_cli_command cmds[] = {
		{ sizeof(struct gn_cli_command), "config account webhook show", "ACCOUNT",
		  "The account's webhooks, signing secret and how long retired webhooks are kept.",
		  1, 1, cmd_show, NULL },
		{ sizeof(struct gn_cli_command), "config account webhook set",
		  "ACCOUNT outgoing URL [EVENTS [-]] | ACCOUNT incoming URL [-]",
		  "Sets the account's outgoing webhook (events: \"all\" or a comma-separated list of\n"
		  "delivered, suppressed, delayed, failed, relayed, expanded, canceled, unrecognized)\n"
		  "or incoming webhook.  URLs are https:// or http://.  \"-\": the Authorization header's value\n"
		  "is read from the first line of stdin and sent as is.",
		  3, 5, cmd_set, NULL },
		{ sizeof(struct gn_cli_command), "config account webhook clear", "ACCOUNT outgoing|incoming",
		  "Removes the account's outgoing or incoming webhook (queued ones are still sent).",
		  2, 2, cmd_clear, NULL },
		{ sizeof(struct gn_cli_command), "config account webhook keep", "ACCOUNT DURATION|default",
		  "How long the account's retired webhooks are kept (0: not kept), e.g. 72h; \"default\":\n"
		  "webhooks.retired_keep's period (0 unless set).",
		  2, 2, cmd_keep, NULL },
		{ sizeof(struct gn_cli_command), "config account webhook secret", "ACCOUNT",
		  "A new signing secret for the account's webhooks, printed.", 1, 1, cmd_secret, NULL },
		{ sizeof(struct gn_cli_command), "queue webhook list", "[ACCOUNT]",
		  "The webhooks waiting to be delivered, one line each.", 0, 1, cmd_list, NULL },
		{ sizeof(struct gn_cli_command), "queue webhook print", "ID",
		  "A waiting webhook with its payload and results.", 1, 1, cmd_print, NULL },
		{ sizeof(struct gn_cli_command), "queue webhook schedule", "ID now|+DURATION",
		  "Sets when a waiting webhook is next attempted.", 2, 2, cmd_schedule, NULL },
		{ sizeof(struct gn_cli_command), "queue webhook cancel", "ID",
		  "Retires a waiting webhook with the result \"canceled by admin\".", 1, 1, cmd_cancel, NULL },
		{ sizeof(struct gn_cli_command), "queue webhook run", NULL,
		  "Delivers the webhooks that are due now, once, and waits for them.", 0, 0, cmd_run, NULL },
		{ sizeof(struct gn_cli_command), "queue webhook retired list", "[ACCOUNT]",
		  "The retired webhooks kept, one line each.", 0, 1, cmd_retired_list, NULL },
		{ sizeof(struct gn_cli_command), "queue webhook retired print", "ID",
		  "A retired webhook with its payload and results.", 1, 1, cmd_retired_print, NULL },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (gn_cli_command_register(ctx, &cmds[i], error_r) < 0)
			return -1;
	return 0;
}
