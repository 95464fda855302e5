/*
 * modules/submission/limits.c: per-account sending limits per day (mox.md
 * 11: MaxOutgoingMessagesPerDay, default 1000, and
 * MaxFirstTimeRecipientsPerDay, default 200; past either 451 4.7.1).
 *
 * A day is the last 24 hours.  The module's tables (schema/):
 *   gn_submission_sent        one row per message handed to the queue;
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

/* A PostgreSQL text[] literal of the message's distinct recipients. */
static char *recipients_array(struct gn_pool *pool, const struct submission_message *msg)
{
	struct gn_buf *b = gn_buf_new(0);
	char *out;

	gn_buf_append_str(b, "{");
	for (size_t i = 0; i < msg->rcpt_count; i++) {
		const char *a = gn_addr_to_string(pool, gn_addr_fold(pool, msg->rcpts[i]));
		gn_buf_append_str(b, i > 0 ? ",\"" : "\"");
		for (const char *p = a; *p != '\0'; p++) {
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

int submission_limits_check(struct gn_pool *pool, struct submission_message *msg,
			    struct submission_refusal *refusal, const char **error_r)
{
	static const char counts_sql[] =
		"SELECT (SELECT count(*) FROM gn_submission_sent"
		"         WHERE account_id = $1 AND submitted > now() - interval '1 day'),"
		"       (SELECT count(*) FROM gn_submission_recipients"
		"         WHERE account_id = $1 AND first_sent > now() - interval '1 day'),"
		"       (SELECT messages_per_day FROM gn_submission_limits WHERE account_id = $1),"
		"       (SELECT first_time_recipients_per_day FROM gn_submission_limits"
		"         WHERE account_id = $1)";
	static const char new_sql[] =
		"SELECT DISTINCT a FROM unnest($2::text[]) AS a"
		" WHERE NOT EXISTS (SELECT 1 FROM gn_submission_recipients r"
		"                    WHERE r.account_id = $1 AND r.address = a)"
		" ORDER BY a";
	const char *params[2];
	struct gn_db_result *res;
	long long sent, recent_new, max_msgs, max_rcpts;

	params[0] = gn_pool_printf(pool, "%lld", (long long)msg->account_id);
	params[1] = recipients_array(pool, msg);
	res = gn_db_query(counts_sql, 1, params, error_r);
	if (res == NULL)
		return -1;
	sent = strtoll(gn_db_result_value(res, 0, 0), NULL, 10);
	recent_new = strtoll(gn_db_result_value(res, 0, 1), NULL, 10);
	max_msgs = gn_db_result_is_null(res, 0, 2) ? submission_settings.max_messages_per_day
		: strtoll(gn_db_result_value(res, 0, 2), NULL, 10);
	max_rcpts = gn_db_result_is_null(res, 0, 3)
		? submission_settings.max_first_time_recipients_per_day
		: strtoll(gn_db_result_value(res, 0, 3), NULL, 10);
	gn_db_result_free(&res);

	res = gn_db_query(new_sql, 2, params, error_r);
	if (res == NULL)
		return -1;
	size_t n = gn_db_result_rows(res);
	const char **first = gn_pool_alloc(pool, (n > 0 ? n : 1) * sizeof(*first));
	for (size_t i = 0; i < n; i++)
		first[i] = gn_pool_strdup(pool, gn_db_result_value(res, i, 0));
	gn_db_result_free(&res);
	msg->first_time = first;
	msg->first_time_count = n;

	if (sent >= max_msgs) {
		refusal->code = 451;
		refusal->enhanced = "4.7.1";
		refusal->text = "Message limit reached, try again later";
		return 1;
	}
	if (n > 0 && recent_new + (long long)n > max_rcpts) {
		refusal->code = 451;
		refusal->enhanced = "4.7.1";
		refusal->text = "First-time recipient limit reached, try again later";
		return 1;
	}
	return 0;
}

int submission_limits_record(struct gn_pool *pool, const struct submission_message *msg,
			     const char **error_r)
{
	const char *params[2];

	params[0] = gn_pool_printf(pool, "%lld", (long long)msg->account_id);
	params[1] = gn_pool_printf(pool, "%zu", msg->rcpt_count);
	if (gn_db_exec("INSERT INTO gn_submission_sent (account_id, recipients) VALUES ($1, $2)",
		       2, params, error_r) < 0)
		return -1;
	/* What no longer counts for any day. */
	if (gn_db_exec("DELETE FROM gn_submission_sent WHERE account_id = $1"
		       " AND submitted < now() - interval '2 days'", 1, params, error_r) < 0)
		return -1;
	for (size_t i = 0; i < msg->first_time_count; i++) {
		params[1] = msg->first_time[i];
		if (gn_db_exec("INSERT INTO gn_submission_recipients (account_id, address)"
			       " VALUES ($1, $2) ON CONFLICT DO NOTHING", 2, params, error_r) < 0)
			return -1;
	}
	return 0;
}
