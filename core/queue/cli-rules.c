/*
 * core/queue/cli-rules.c: `gannet queue holdrules list|add|rm` and
 * `gannet queue retired list|print|keep`: the hold rules and the history
 * of recipients that left the queue (registered by cli.c); how long an
 * account keeps it is its own setting or queue.retired_keep.
 */
#include "queue/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_id(const char *s, int64_t *id_r)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v <= 0)
		return -1;
	*id_r = v;
	return 0;
}

/* ---- hold rules ---- */

int queue_cli_holdrules_list(int argc, char **argv, void *data)
{
	(void)argv;
	(void)data;
	if (argc != 1)
		return queue_cli_usage("queue holdrules list");
	const char *err;
	PGresult *res = store_q("SELECT h.id, coalesce(a.name, ''), h.sender_domain, h.recipient_domain "
				"FROM gn_queue_holdrules h LEFT JOIN gn_accounts a ON a.id = h.account_id "
				"ORDER BY h.id", 0, NULL, &err);
	if (res == NULL)
		return queue_cli_fail(err);
	for (int i = 0; i < PQntuples(res); i++) {
		const char *a = PQgetvalue(res, i, 1), *s = PQgetvalue(res, i, 2), *r = PQgetvalue(res, i, 3);
		printf("%s account=%s sender-domain=%s recipient-domain=%s%s\n", PQgetvalue(res, i, 0),
		       *a ? a : "*", *s ? s : "*", *r ? r : "*",
		       !*a && !*s && !*r ? " (everything)" : "");
	}
	PQclear(res);
	return 0;
}

int queue_cli_holdrules_add(int argc, char **argv, void *data)
{
	(void)data;
	static const char usage[] = "queue holdrules add [--account ACCOUNT] [--sender-domain DOMAIN] "
		"[--recipient-domain DOMAIN]";
	const char *acc = NULL, *sd = NULL, *rd = NULL;
	for (int i = 1; i < argc; i++) {
		const char **slot = strcmp(argv[i], "--account") == 0 ? &acc
			: strcmp(argv[i], "--sender-domain") == 0 ? &sd
			: strcmp(argv[i], "--recipient-domain") == 0 ? &rd : NULL;
		if (slot == NULL || i + 1 >= argc) {
			if (slot == NULL)
				fprintf(stderr, "gannet: unknown option %s\n", argv[i]);
			return queue_cli_usage(usage);
		}
		*slot = argv[++i];
	}
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	int64_t account = 0, id = 0;
	if (acc != NULL) {
		struct gn_store_account *a = NULL;
		int r = gn_store_account_find(pool, acc, &a, &err);
		if (r <= 0) {
			gn_pool_free(&pool);
			if (r == 0)
				fprintf(stderr, "gannet: no such account: %s\n", acc);
			return r < 0 ? queue_cli_fail(err) : 1;
		}
		account = gn_store_account_id(a);
	}
	gn_pool_free(&pool);
	int held = gn_queue_holdrule_add(account, sd, rd, &id, &err);
	if (held < 0)
		return queue_cli_fail(err);
	printf("hold rule %" PRId64 " added, %d queued recipient%s held\n", id, held, held == 1 ? "" : "s");
	return 0;
}

int queue_cli_holdrules_rm(int argc, char **argv, void *data)
{
	(void)data;
	int64_t id;
	if (argc != 2 || parse_id(argv[1], &id) < 0)
		return queue_cli_usage("queue holdrules rm ID");
	const char *err = NULL;
	int r = gn_queue_holdrule_rm(id, &err);
	if (r < 0)
		return queue_cli_fail(err);
	if (r == 0) {
		fprintf(stderr, "gannet: no hold rule with id %s\n", argv[1]);
		return 1;
	}
	printf("hold rule %s removed (held recipients stay held)\n", argv[1]);
	return 0;
}

/* ---- retired ---- */

int queue_cli_retired_list(int argc, char **argv, void *data)
{
	(void)data;
	const char *acc = NULL;
	if (argc == 3 && strcmp(argv[1], "--account") == 0)
		acc = argv[2];
	else if (argc != 1)
		return queue_cli_usage("queue retired list [--account ACCOUNT]");
	const char *p[1] = { acc }, *err;
	PGresult *res = store_q("SELECT t.id, t.message_id, a.name, t.sender, t.rcpt, t.result, t.attempts, "
				QUEUE_TS("t.retired_at") ", " QUEUE_TS("t.keep_until") " "
				"FROM gn_queue_retired t JOIN gn_accounts a ON a.id = t.account_id "
				"WHERE $1::text IS NULL OR a.name = $1 ORDER BY t.retired_at, t.id", 1, p, &err);
	if (res == NULL)
		return queue_cli_fail(err);
	for (int i = 0; i < PQntuples(res); i++)
		printf("%s message=%s account=%s from=<%s> to=<%s> result=%s attempts=%s retired=%s "
		       "keep-until=%s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
		       PQgetvalue(res, i, 3), PQgetvalue(res, i, 4), PQgetvalue(res, i, 5),
		       PQgetvalue(res, i, 6), PQgetvalue(res, i, 7), PQgetvalue(res, i, 8));
	PQclear(res);
	return 0;
}

int queue_cli_retired_print(int argc, char **argv, void *data)
{
	(void)data;
	int64_t id;
	if (argc != 2 || parse_id(argv[1], &id) < 0)
		return queue_cli_usage("queue retired print ID");
	const char *p[1] = { argv[1] }, *err;
	PGresult *res = store_q("SELECT t.id, t.message_id, a.name, t.sender, t.rcpt, t.result, t.attempts, "
				QUEUE_TS("t.queued_at") ", " QUEUE_TS("t.retired_at") ", "
				QUEUE_TS("t.keep_until") ", t.size, t.message_id_field, t.subject, t.extra::text, "
				"coalesce(t.last_code::text, ''), coalesce(t.last_enhanced, ''), "
				"coalesce(t.last_text, ''), t.account_id, "
				"CASE t.require_tls WHEN true THEN 'requiretls' WHEN false THEN 'relaxed' "
				"ELSE 'default' END "
				"FROM gn_queue_retired t JOIN gn_accounts a ON a.id = t.account_id WHERE t.id = $1",
				1, p, &err);
	if (res == NULL)
		return queue_cli_fail(err);
	if (PQntuples(res) == 0) {
		PQclear(res);
		fprintf(stderr, "gannet: no retired recipient with id %s\n", argv[1]);
		return 1;
	}
	static const char *const names[] = { "id", "message", "account", "from", "to", "result", "attempts",
					     "queued", "retired", "keep-until", "size", "message-id",
					     "subject", "extra", "last-code", "last-enhanced", "last-text" };
	for (int c = 0; c < 17; c++)
		printf("%s: %s\n", names[c], PQgetvalue(res, 0, c));
	/* RFC 8689: what the message asked of the TLS (016_requiretls.sql). */
	printf("tls: %s\n", PQgetvalue(res, 0, 18));
	const char *pa[2] = { PQgetvalue(res, 0, 17), argv[1] };
	PGresult *at = store_q("SELECT seq, " QUEUE_TS("started_at") ", duration_ms, host, ip, code, enhanced, "
			       "text, tls_version, tls_cipher, tls_policy FROM gn_queue_retired_attempts "
			       "WHERE account_id = $1 AND recipient_id = $2 ORDER BY seq", 2, pa, &err);
	PQclear(res);
	if (at == NULL)
		return queue_cli_fail(err);
	/* The transport security last ("-": not reported, or no TLS), so
	 * that the fields before it read as they always did. */
	for (int i = 0; i < PQntuples(at); i++) {
		const char *tv = PQgetvalue(at, i, 8), *tc = PQgetvalue(at, i, 9), *tp = PQgetvalue(at, i, 10);
		printf("attempt %s: %s duration=%sms host=%s ip=%s code=%s enhanced=%s text=\"%s\" "
		       "tls=%s cipher=%s policy=%s\n",
		       PQgetvalue(at, i, 0), PQgetvalue(at, i, 1), PQgetvalue(at, i, 2), PQgetvalue(at, i, 3),
		       PQgetvalue(at, i, 4), PQgetvalue(at, i, 5), PQgetvalue(at, i, 6), PQgetvalue(at, i, 7),
		       tv[0] != '\0' ? tv : "-", tc[0] != '\0' ? tc : "-", tp[0] != '\0' ? tp : "-");
	}
	PQclear(at);
	return 0;
}

/* `queue retired keep ACCOUNT [DURATION|default]`: sets the account's
 * own keeping time, or with "default" returns it to queue.retired_keep
 * (018_retired_keep_default.sql); without one, only says.  Either way it
 * prints the effective time and where it comes from. */
int queue_cli_retired_keep(int argc, char **argv, void *data)
{
	(void)data;
	static const char usage[] = "queue retired keep ACCOUNT [DURATION|default]";
	bool set = argc == 3, to_default = set && strcmp(argv[2], "default") == 0;
	long long d = set && !to_default ? queue_parse_duration(argv[2]) : 0;
	if ((argc != 2 && argc != 3) || d < 0 || (set && (argv[2][0] == '+' || strcmp(argv[2], "now") == 0)))
		return queue_cli_usage(usage);
	struct gn_pool *pool = gn_pool_new();
	const char *def = store_i64s(pool, queue_retired_keep_default()), *err;
	PGresult *res;
	/* The row as it is after the change, in the statement that makes it. */
	if (set) {
		const char *p[3] = { argv[1], to_default ? NULL : store_i64s(pool, d), def };
		res = store_q("UPDATE gn_accounts SET queue_retired_keep_s = $2::bigint WHERE name = $1 "
			      "RETURNING COALESCE(queue_retired_keep_s, $3::bigint), queue_retired_keep_s IS NULL",
			      3, p, &err);
	} else {
		const char *p[2] = { argv[1], def };
		res = store_q("SELECT COALESCE(queue_retired_keep_s, $2::bigint), queue_retired_keep_s IS NULL "
			      "FROM gn_accounts WHERE name = $1", 2, p, &err);
	}
	gn_pool_free(&pool);
	if (res == NULL)
		return queue_cli_fail(err);
	if (PQntuples(res) != 1) {
		PQclear(res);
		fprintf(stderr, "gannet: no such account: %s\n", argv[1]);
		return 1;
	}
	printf("account %s keeps retired queue records for %" PRId64 "s (%s)\n", argv[1], store_col_i64(res, 0, 0),
	       PQgetvalue(res, 0, 1)[0] == 't' ? "the default, queue.retired_keep" : "its own setting");
	PQclear(res);
	return 0;
}
