/*
 * core/queue/cli-mtasts.c: `gannet dns mtasts DOMAIN`: what the queue's
 * MTA-STS discovery (mtasts.c) sees for a domain and how it evaluates it,
 * for admins debugging mail.  It always fetches the policy (as a refresh
 * would) and never writes the cache.  Registered with the queue because it
 * reads the queue's cache (the database), which the dns layer below may
 * not.
 *
 * Output, one item a line:
 *   domain NAME
 *   txt-status OK|NODATA|NXDOMAIN|...
 *   txt "v=STSv1; id=..."          (the record, when there is one)
 *   txt-id ID | txt-error TEXT
 *   fetch ok | fetch-error TEXT
 *   policy-text LINE               (each line of the fetched text)
 *   fetched mode=M max_age=N mx=P,P...
 *   cached id=ID mode=M max_age=N mx=P,... expires=EPOCH [expired] [last-error=TEXT]
 *   applies mode=M source=fetched|cache|none
 *   mx PREF HOST matches|does-not-match   (the domain's MX hosts against
 *                                          the policy that applies)
 * Exits 0 when a policy applies (enforce, testing or none), 1 when none.
 *
 * `gannet queue mtasts refresh`: the runner's refresh job, once, now.
 */
#include "queue/internal.h"

#include <stdio.h>
#include <string.h>
#include <gannet/dns.h>
#include <gannet/loop.h>

struct cli_state {
	struct gn_pool *pool;
	const char *domain;
	struct queue_mtasts_policy policy;
	bool have_policy;
	int code;
	bool done;
};

static void print_policy(const char *what, const struct queue_mtasts_policy *p)
{
	printf("%s", what);
	if (p->id != NULL)
		printf(" id=%s", p->id);
	printf(" mode=%s max_age=%lld mx=", queue_mtasts_mode_name(p->mode), p->max_age);
	for (size_t i = 0; i < p->n_mx; i++)
		printf("%s%s", i > 0 ? "," : "", p->mx[i]);
	if (p->expires_at > 0 && strcmp(what, "cached") == 0) {
		printf(" expires=%.0f", p->expires_at);
		if (p->expired)
			printf(" expired");
		if (p->last_error != NULL)
			printf(" last-error=%s", gn_log_quote(0, p->last_error));
	}
	putchar('\n');
}

static void mx_cb(const struct gn_dns_result *res, void *data)
{
	struct cli_state *st = data;
	if (res->status != GN_DNS_OK) {
		printf("mx-status %s\n", gn_dns_status_name(res->status));
	} else {
		for (size_t i = 0; i < res->n; i++)
			printf("mx %u %s %s\n", res->mx[i].preference, res->mx[i].host[0] != '\0' ? res->mx[i].host : ".",
			       st->have_policy && st->policy.mode != QUEUE_MTASTS_NONE
			       ? (queue_mtasts_mx_match(&st->policy, res->mx[i].host) ? "matches" : "does-not-match")
			       : "no-policy");
	}
	st->done = true;
	gn_loop_break();
}

static const char **copy_mx(struct gn_pool *pool, const struct queue_mtasts_policy *p)
{
	const char **mx = gn_pool_alloc(pool, (p->n_mx + 1) * sizeof(*mx));
	for (size_t i = 0; i < p->n_mx; i++)
		mx[i] = gn_pool_strdup(pool, p->mx[i]);
	return mx;
}

static void lookup_cb(const struct queue_mtasts_result *r, void *data)
{
	struct cli_state *st = data;
	printf("domain %s\n", st->domain);
	printf("txt-status %s\n", r->txt_status != NULL ? r->txt_status : "-");
	if (r->txt != NULL)
		printf("txt %s\n", gn_log_quote(0, r->txt));
	if (r->txt_id != NULL)
		printf("txt-id %s\n", r->txt_id);
	if (r->txt_error != NULL)
		printf("txt-error %s\n", r->txt_error);
	if (r->fetched)
		printf("fetch ok\n");
	else if (r->fetch_error != NULL)
		printf("fetch-error %s\n", r->fetch_error);
	if (r->body != NULL) {
		const char *s = r->body;
		while (*s != '\0') {
			const char *nl = strchr(s, '\n');
			size_t l = nl != NULL ? (size_t)(nl - s) : strlen(s);
			size_t pl = l > 0 && s[l - 1] == '\r' ? l - 1 : l;
			printf("policy-text %.*s\n", (int)pl, s);
			s += l + (nl != NULL);
		}
	}
	if (r->fetched)
		print_policy("fetched", r->policy);
	if (r->cached != NULL)
		print_policy("cached", r->cached);
	const struct queue_mtasts_policy *p = r->policy;
	printf("applies mode=%s source=%s\n", p != NULL ? queue_mtasts_mode_name(p->mode) : "none",
	       p == NULL ? "none" : r->fetched ? "fetched" : "cache");
	if (p != NULL) {
		st->policy = *p;
		st->policy.mx = copy_mx(st->pool, p);
		st->have_policy = true;
	}
	st->code = p != NULL ? 0 : 1;
	(void)gn_dns_lookup(st->domain, GN_DNS_MX, mx_cb, st);
}

static int cli_mtasts(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 2)	/* argv[0]: the command; min_args/max_args checked it */
		return queue_cli_usage("dns mtasts DOMAIN");
	struct cli_state st = { 0 };
	st.pool = gn_pool_new();
	const char *err;
	if (gn_dns_name_check(st.pool, argv[1], &st.domain, &err) < 0) {
		gn_pool_free(&st.pool);
		return queue_cli_fail(err);
	}
	(void)queue_mtasts_lookup(st.domain, QUEUE_MTASTS_FETCH | QUEUE_MTASTS_NO_STORE, lookup_cb, &st);
	while (!st.done)
		if (gn_loop_run() < 0)
			break;
	gn_pool_free(&st.pool);
	return st.code;
}

/* `gannet queue mtasts refresh`: what the runner's job does, now. */
static int cli_refresh(int argc, char **argv, void *data)
{
	(void)argc;
	(void)argv;
	(void)data;
	const char *err;
	int n = queue_mtasts_refresh(100, &err);
	if (n < 0)
		return queue_cli_fail(err);
	while (queue_mtasts_refreshing() > 0)
		ev_run(core_loop, EVRUN_ONCE);
	printf("%d polic%s refreshed\n", n, n == 1 ? "y" : "ies");
	return 0;
}

int queue_mtasts_cli_register(void)
{
	static const struct gn_cli_command cmd = {
		sizeof(struct gn_cli_command), "dns mtasts", "DOMAIN",
		"Looks up DOMAIN's MTA-STS policy (RFC 8461) as the queue does: the\n"
		"_mta-sts TXT record, the policy fetched from https://mta-sts.DOMAIN/\n"
		"(always, as a refresh would), the copy cached in the database, the\n"
		"policy that applies and the domain's MX hosts checked against it.\n"
		"Never writes the cache.  Exits 0 when a policy applies, 1 when none.",
		1, 1, cli_mtasts, NULL,
	};
	static const struct gn_cli_command refresh = {
		sizeof(struct gn_cli_command), "queue mtasts refresh", "",
		"Fetches again the cached MTA-STS policies that expire soon (within a\n"
		"day, or a quarter of their max_age), as the runner's job\n"
		"queue-mtasts-refresh does every 5 minutes, and waits for the fetches.",
		0, 0, cli_refresh, NULL,
	};
	const char *err;
	if (gn_cli_command_register(modules_core_ctx(), &cmd, &err) < 0 ||
	    gn_cli_command_register(modules_core_ctx(), &refresh, &err) < 0) {
		conf_error("queue: %s", err);
		return -1;
	}
	return 0;
}
