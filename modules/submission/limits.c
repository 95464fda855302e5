/*
 * modules/submission/limits.c: per-account sending limits per day (mox.md
 * 11: MaxOutgoingMessagesPerDay, default 1000, and
 * MaxFirstTimeRecipientsPerDay, default 200; past either 451 4.7.1).
 *
 * A day is the last 24 hours, in whole hours: the messages of the hours
 * that began less than 24 hours ago (23 to 24 hours).  The module's
 * tables (schema/):
 *   gn_submission_counts      messages handed to the queue per account,
 *                             hour and shard (002_submission_counts.sql);
 *   gn_submission_recipients  every recipient an account ever sent to,
 *                             with the time of the first message: a
 *                             first-time recipient is one without a row;
 *   gn_submission_limits      an account's own limits (NULL: the module's
 *                             settings max_messages_per_day and
 *                             max_first_time_recipients_per_day).
 * Recipients are compared in folded canonical form (gn_addr_fold()).
 */
#include "submission.h"

#include <stdlib.h>
#include <string.h>

/* A PostgreSQL text[] literal of strings v[0..n). */
static char *text_array(struct gn_pool *pool, const char *const *v, size_t n)
{
	struct gn_buf *b = gn_buf_new(0);
	char *out;

	gn_buf_append_str(b, "{");
	for (size_t i = 0; i < n; i++) {
		gn_buf_append_str(b, i > 0 ? ",\"" : "\"");
		for (const char *p = v[i]; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				gn_buf_append(b, "\\", 1);
			gn_buf_append(b, p, 1);
		}
		gn_buf_append_str(b, "\"");
	}
	gn_buf_append_str(b, "}");
	out = gn_pool_strdup(pool, gn_buf_data(b));
	gn_buf_free(&b);
	return out;
}

/* The message's recipients in folded canonical form, as a text[]. */
static char *recipients_array(struct gn_pool *pool, const struct submission_message *msg)
{
	const char **a = gn_pool_alloc(pool, (msg->rcpt_count > 0 ? msg->rcpt_count : 1) * sizeof(*a));
	for (size_t i = 0; i < msg->rcpt_count; i++)
		a[i] = gn_addr_to_string(pool, gn_addr_fold(pool, msg->rcpts[i]));
	return text_array(pool, a, msg->rcpt_count);
}

int submission_limits_check(struct gn_pool *pool, struct submission_message *msg,
			    struct submission_refusal *refusal, const char **error_r)
{
	/* One question: the day's counts (the first-time recipients
	 * counted only up to their limit), the
	 * limits, whether rows older than two days wait to be removed, and
	 * the first-time recipients, one a row (none: one row with NULL). */
	static const char sql[] =
		"WITH l AS (SELECT coalesce((SELECT messages_per_day FROM gn_submission_limits"
		"             WHERE account_id = $1), $3::int) AS msgs,"
		"           coalesce((SELECT first_time_recipients_per_day FROM gn_submission_limits"
		"             WHERE account_id = $1), $4::int) AS rcpts),"
		" c AS (SELECT (SELECT coalesce(sum(messages), 0) FROM gn_submission_counts"
		"         WHERE account_id = $1 AND hour > now() - interval '1 day') AS sent,"
		"       (SELECT count(*) FROM (SELECT 1 FROM gn_submission_recipients"
		"         WHERE account_id = $1 AND first_sent > now() - interval '1 day'"
		"         LIMIT (SELECT rcpts FROM l) + 1) y) AS recent,"
		"       l.msgs, l.rcpts,"
		"       EXISTS (SELECT 1 FROM gn_submission_counts WHERE account_id = $1"
		"         AND hour < now() - interval '2 days') AS old FROM l)"
		" SELECT c.sent, c.recent, c.msgs, c.rcpts, c.old, n.a FROM c LEFT JOIN"
		" (SELECT DISTINCT a FROM unnest($2::text[]) AS a"
		"   WHERE NOT EXISTS (SELECT 1 FROM gn_submission_recipients r"
		"                     WHERE r.account_id = $1 AND r.address = a)) n ON true"
		" ORDER BY n.a";
	const char *params[4];
	struct gn_db_result *res;
	long long sent, recent_new, max_msgs, max_rcpts;

	params[0] = gn_pool_printf(pool, "%lld", (long long)msg->account_id);
	params[1] = recipients_array(pool, msg);
	params[2] = gn_pool_printf(pool, "%lld", (long long)submission_settings.max_messages_per_day);
	params[3] = gn_pool_printf(pool, "%lld",
				   (long long)submission_settings.max_first_time_recipients_per_day);
	res = gn_db_query(sql, 4, params, error_r);
	if (res == NULL)
		return -1;
	size_t rows = gn_db_result_rows(res);
	if (rows == 0) {
		gn_db_result_free(&res);
		*error_r = "the limits query returned no row";
		return -1;
	}
	sent = strtoll(gn_db_result_value(res, 0, 0), NULL, 10);
	recent_new = strtoll(gn_db_result_value(res, 0, 1), NULL, 10);
	max_msgs = strtoll(gn_db_result_value(res, 0, 2), NULL, 10);
	max_rcpts = strtoll(gn_db_result_value(res, 0, 3), NULL, 10);
	msg->limits_old_rows = gn_db_result_value(res, 0, 4)[0] == 't';
	const char **first = gn_pool_alloc(pool, rows * sizeof(*first));
	size_t n = 0;
	for (size_t i = 0; i < rows; i++)
		if (!gn_db_result_is_null(res, i, 5))
			first[n++] = gn_pool_strdup(pool, gn_db_result_value(res, i, 5));
	gn_db_result_free(&res);
	msg->first_time = first;
	msg->first_time_count = n;

	if (sent >= max_msgs) {
		refusal->code = 451;
		refusal->enhanced = "4.7.1";
		refusal->text = "Message limit reached, try again later";
		refusal->status = GN_SUBMIT_MESSAGE_LIMIT;
		return 1;
	}
	if (n > 0 && recent_new + (long long)n > max_rcpts) {
		refusal->code = 451;
		refusal->enhanced = "4.7.1";
		refusal->text = "First-time recipient limit reached, try again later";
		refusal->status = GN_SUBMIT_RECIPIENT_LIMIT;
		return 1;
	}
	return 0;
}

int submission_limits_record(struct gn_pool *pool, const struct submission_message *const *msgs,
			     size_t n, const char **error_r)
{
	/* The messages (all of one account), their first-time recipients,
	 * and (when a check saw some) the rows that no longer count for any
	 * day, in one statement: a batch of a group commit updates the
	 * hour's row once, not once a message. */
	size_t nfirst = 0, k = 0;
	bool old = false;
	for (size_t i = 0; i < n; i++) {
		nfirst += msgs[i]->first_time_count;
		old = old || msgs[i]->limits_old_rows;
	}
	const char **first = gn_pool_alloc(pool, (nfirst > 0 ? nfirst : 1) * sizeof(*first));
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < msgs[i]->first_time_count; j++)
			first[k++] = msgs[i]->first_time[j];
	const char *params[4] = {
		gn_pool_printf(pool, "%lld", (long long)msgs[0]->account_id),
		text_array(pool, first, nfirst),
		old ? "t" : "f",
		gn_pool_printf(pool, "%zu", n),
	};
	/* The hour's row of a shard no other transaction holds (SKIP
	 * LOCKED; the server process's own first): a transaction of
	 * another process that adds to a row waits for nothing, where the
	 * fixed shard of the process (its pid modulo 8) made two processes
	 * of one account take turns whenever they met on one, each waiting
	 * for the other's commit.  When every row of the hour is held, or
	 * there is none yet, a shard without a row, else the process's own. */
	if (gn_db_exec("WITH f AS (SELECT shard FROM gn_submission_counts WHERE account_id = $1"
		       "           AND hour = date_trunc('hour', now())"
		       "           ORDER BY (shard + 8 - pg_backend_pid() % 8) % 8"
		       "           LIMIT 1 FOR UPDATE SKIP LOCKED),"
		       " u AS (UPDATE gn_submission_counts c SET messages = c.messages + $4 FROM f"
		       "       WHERE c.account_id = $1 AND c.hour = date_trunc('hour', now())"
		       "       AND c.shard = f.shard),"
		       " s AS (INSERT INTO gn_submission_counts AS c (account_id, hour, shard, messages)"
		       "       SELECT $1, date_trunc('hour', now()), coalesce((SELECT min(x)"
		       "         FROM generate_series(0, 7) AS x WHERE NOT EXISTS (SELECT 1"
		       "         FROM gn_submission_counts WHERE account_id = $1"
		       "         AND hour = date_trunc('hour', now()) AND shard = x)),"
		       "         pg_backend_pid() % 8), $4 WHERE NOT EXISTS (SELECT 1 FROM f)"
		       "       ON CONFLICT (account_id, hour, shard)"
		       "       DO UPDATE SET messages = c.messages + $4),"
		       " r AS (INSERT INTO gn_submission_recipients (account_id, address)"
		       "       SELECT DISTINCT $1::bigint, a FROM unnest($2::text[]) AS a"
		       "       ON CONFLICT DO NOTHING),"
		       " d AS (DELETE FROM gn_submission_counts WHERE $3::boolean AND account_id = $1"
		       "       AND hour < now() - interval '2 days')"
		       " SELECT 1", 4, params, error_r) < 0)
		return -1;
	return 0;
}
