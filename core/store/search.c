/*
 * core/store/search.c: searching a mailbox (gannet/store.h,
 * gn_store_query_*): a tree of conditions compiled into one SQL statement.
 *
 * The builder writes the WHERE clause as it is called: each condition
 * appends a fragment with placeholders ($3, $4 ...) to the text and its
 * value to the parameter list, so a value never becomes SQL text.  Groups
 * are a stack of (kind, conditions so far): a condition is preceded by its
 * group's joiner (AND, OR) when it is not the group's first, and an empty
 * group closes as TRUE (AND, NOT) or FALSE (OR).  $1 and $2 are the
 * account and the mailbox, filled in by gn_store_query_run().
 *
 * Days (RFC 9051 6.4.4, "disregarding time and timezone") are compared in
 * UTC, so every node of a deployment gives the same answer: the caller
 * passes 00:00 UTC of the day, and ON is [day, day + 86400).
 */
#include "store/internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The deepest nesting of groups; deeper is a builder error (the IMAP
 * parser refuses far less). */
#define QUERY_DEPTH_MAX 100

enum group_kind { GROUP_AND, GROUP_OR, GROUP_NOT };

struct query_group {
	enum group_kind kind;
	size_t count;		/* conditions in it so far */
};

struct gn_store_query {
	struct gn_pool *pool;
	char *where;		/* the WHERE clause so far, from the pool */
	size_t len, cap;
	const char **params;	/* $3 on */
	size_t n_params, cap_params;
	struct query_group stack[QUERY_DEPTH_MAX + 1];	/* [0]: the top level */
	size_t depth;
	size_t conditions;
	const char *error;	/* the first builder error */
};

/* Appends to the WHERE clause (the pool has no realloc: doubling keeps
 * the copies few). */
static void wr(struct gn_store_query *q, const char *fmt, ...) GN_PRINTF(2, 3);
static void wr(struct gn_store_query *q, const char *fmt, ...)
{
	char piece[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(piece, sizeof(piece), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(piece))
		abort();	/* the fragments are ours and short */
	if (q->len + (size_t)n + 1 > q->cap) {
		size_t cap = q->cap == 0 ? 256 : q->cap;
		while (cap < q->len + (size_t)n + 1)
			cap *= 2;
		char *w = gn_pool_alloc(q->pool, cap);
		if (q->len > 0)
			memcpy(w, q->where, q->len);
		q->where = w;
		q->cap = cap;
	}
	memcpy(q->where + q->len, piece, (size_t)n + 1);
	q->len += (size_t)n;
}

struct gn_store_query *gn_store_query_new(struct gn_pool *pool)
{
	struct gn_store_query *q = gn_pool_alloc(pool, sizeof(*q));
	memset(q, 0, sizeof(*q));
	q->pool = pool;
	q->stack[0].kind = GROUP_AND;
	return q;
}

static void query_fail(struct gn_store_query *q, const char *error)
{
	if (q->error == NULL)
		q->error = error;
}

/* Starts a condition in the current group: its joiner, and the count.
 * False when the query is already broken or full. */
static bool cond_begin(struct gn_store_query *q)
{
	if (q->error != NULL)
		return false;
	if (++q->conditions > GN_STORE_QUERY_MAX) {
		query_fail(q, "search too complex");
		return false;
	}
	struct query_group *g = &q->stack[q->depth];
	if (g->count++ > 0)
		wr(q, "%s", g->kind == GROUP_OR ? " OR " : " AND ");
	return true;
}

/* Adds a parameter and returns its placeholder number. */
static size_t param(struct gn_store_query *q, const char *value)
{
	if (q->n_params == q->cap_params) {
		size_t cap = q->cap_params == 0 ? 16 : q->cap_params * 2;
		const char **p = gn_pool_alloc(q->pool, cap * sizeof(*p));
		if (q->n_params > 0)
			memcpy(p, q->params, q->n_params * sizeof(*p));
		q->params = p;
		q->cap_params = cap;
	}
	q->params[q->n_params++] = value;
	return q->n_params + 2;
}

static void group_open(struct gn_store_query *q, enum group_kind kind)
{
	if (!cond_begin(q))
		return;
	if (q->depth == QUERY_DEPTH_MAX) {
		query_fail(q, "search nested too deeply");
		return;
	}
	wr(q, "%s", kind == GROUP_NOT ? "NOT (" : "(");
	q->depth++;
	q->stack[q->depth].kind = kind;
	q->stack[q->depth].count = 0;
}

void gn_store_query_and(struct gn_store_query *q)
{
	group_open(q, GROUP_AND);
}

void gn_store_query_or(struct gn_store_query *q)
{
	group_open(q, GROUP_OR);
}

void gn_store_query_not(struct gn_store_query *q)
{
	group_open(q, GROUP_NOT);
}

void gn_store_query_end(struct gn_store_query *q)
{
	if (q->error != NULL)
		return;
	if (q->depth == 0) {
		query_fail(q, "search group ended that was not opened");
		return;
	}
	struct query_group *g = &q->stack[q->depth];
	if (g->count == 0)
		wr(q, "%s", g->kind == GROUP_OR ? "FALSE" : "TRUE");
	wr(q, "%s", ")");
	q->depth--;
}

void gn_store_query_uids(struct gn_store_query *q, const uint32_t *ranges, size_t n)
{
	if (!cond_begin(q))
		return;
	if (n == 0) {
		wr(q, "%s", "FALSE");
		return;
	}
	if (ranges == NULL) {
		query_fail(q, "UID ranges missing");
		return;
	}
	/* One multirange (PostgreSQL 14+; the store needs 15): the database
	 * merges the ranges and tests a UID against them by binary search,
	 * however many the client wrote. */
	struct gn_buf *r = gn_buf_new(0);
	gn_buf_append_str(r, "{");
	for (size_t i = 0; i < n; i++) {
		uint32_t lo = ranges[2 * i], hi = ranges[2 * i + 1];
		gn_buf_printf(r, "%s[%" PRIu32 ",%" PRIu32 "]", i > 0 ? "," : "", lo < hi ? lo : hi,
			      lo < hi ? hi : lo);
	}
	gn_buf_append_str(r, "}");
	size_t p = param(q, gn_pool_strdup(q->pool, gn_buf_data(r)));
	gn_buf_free(&r);
	wr(q, "m.uid <@ $%zu::int8multirange", p);
}

void gn_store_query_flags(struct gn_store_query *q, unsigned flags, bool set)
{
	if (!cond_begin(q))
		return;
	size_t p = param(q, gn_pool_printf(q->pool, "%u", flags & GN_STORE_FLAGS_ALL));
	if (set)
		wr(q, "(m.flags & $%zu::int) = $%zu::int", p, p);
	else
		wr(q, "(m.flags & $%zu::int) = 0", p);
}

void gn_store_query_keyword(struct gn_store_query *q, const char *keyword, bool set)
{
	if (!cond_begin(q))
		return;
	if (keyword == NULL) {
		query_fail(q, "keyword missing");
		return;
	}
	size_t p = param(q, gn_pool_strdup(q->pool, keyword));
	wr(q, "%sEXISTS (SELECT 1 FROM unnest(m.keywords) k WHERE lower(k) = lower($%zu))",
		      set ? "" : "NOT ", p);
}

void gn_store_query_size(struct gn_store_query *q, bool larger, uint64_t bytes)
{
	if (!cond_begin(q))
		return;
	/* A size past bigint matches no LARGER and every SMALLER. */
	if (bytes > INT64_MAX) {
		wr(q, "%s", larger ? "FALSE" : "TRUE");
		return;
	}
	size_t p = param(q, store_u64s(q->pool, bytes));
	wr(q, "m.size %s $%zu::bigint", larger ? ">" : "<", p);
}

static const char *date_column(enum gn_store_query_date which)
{
	switch (which) {
	case GN_STORE_QUERY_SENT:
		return "m.sent_date";
	case GN_STORE_QUERY_SAVED:
		/* RFC 8514 4.3: without a save date, the internal date. */
		return "COALESCE(m.save_date, m.internal_date)";
	case GN_STORE_QUERY_INTERNAL:
	default:
		return "m.internal_date";
	}
}

void gn_store_query_date(struct gn_store_query *q, enum gn_store_query_date which,
			 enum gn_store_query_cmp cmp, time_t day)
{
	if (!cond_begin(q))
		return;
	const char *col = date_column(which);
	size_t p = param(q, gn_pool_printf(q->pool, "%lld", (long long)day));
	switch (cmp) {
	case GN_STORE_QUERY_BEFORE:
		wr(q, "%s < to_timestamp($%zu::bigint)", col, p);
		break;
	case GN_STORE_QUERY_ON:
		wr(q, "(%s >= to_timestamp($%zu::bigint) AND "
			      "%s < to_timestamp($%zu::bigint + 86400))", col, p, col, p);
		break;
	case GN_STORE_QUERY_SINCE:
	default:
		wr(q, "%s >= to_timestamp($%zu::bigint)", col, p);
		break;
	}
}

void gn_store_query_time(struct gn_store_query *q, bool older, time_t t)
{
	if (!cond_begin(q))
		return;
	size_t p = param(q, gn_pool_printf(q->pool, "%lld", (long long)t));
	wr(q, "m.internal_date %s to_timestamp($%zu::bigint)", older ? "<" : ">=", p);
}

void gn_store_query_modseq(struct gn_store_query *q, uint64_t min)
{
	if (!cond_begin(q))
		return;
	if (min > INT64_MAX) {
		wr(q, "%s", "FALSE");
		return;
	}
	size_t p = param(q, store_u64s(q->pool, min));
	wr(q, "m.modseq >= $%zu::bigint", p);
}

void gn_store_query_header(struct gn_store_query *q, enum gn_store_query_header field,
			   const char *text)
{
	if (!cond_begin(q))
		return;
	if (text == NULL) {
		query_fail(q, "header text missing");
		return;
	}
	const char *col = field == GN_STORE_QUERY_FROM ? "m.from_field" :
			  field == GN_STORE_QUERY_MESSAGE_ID ? "m.message_id" : "m.subject";
	/* strpos, not LIKE: the text needs no escaping of % and _. */
	size_t p = param(q, gn_pool_strdup(q->pool, text));
	wr(q, "strpos(lower(%s), lower($%zu::text)) > 0", col, p);
}

int gn_store_query_run(struct gn_pool *pool, const struct gn_store_query *q,
		       int64_t account_id, int64_t mailbox_id, uint32_t **uids_r,
		       uint64_t **modseqs_r, const char **error_r)
{
	if (q->error != NULL) {
		*error_r = q->error;
		return -1;
	}
	if (q->depth != 0) {
		*error_r = "search group not ended";
		return -1;
	}
	const char *where = q->len > 0 ? q->where : "TRUE";
	const char *sql = gn_pool_printf(pool, "SELECT m.uid, m.modseq FROM gn_messages m "
					 "WHERE m.account_id = $1 AND m.mailbox_id = $2 AND m.uid IS NOT NULL "
					 "AND (%s) ORDER BY m.uid", where);
	size_t n = q->n_params + 2;
	const char **p = gn_pool_alloc(pool, n * sizeof(*p));
	p[0] = store_i64s(pool, account_id);
	p[1] = store_i64s(pool, mailbox_id);
	for (size_t i = 0; i < q->n_params; i++)
		p[i + 2] = q->params[i];
	PGresult *res = store_q(sql, (int)n, p, error_r);
	if (res == NULL)
		return -1;
	size_t rows = (size_t)PQntuples(res);
	uint32_t *uids = gn_pool_alloc(pool, (rows + 1) * sizeof(*uids));
	uint64_t *modseqs = modseqs_r != NULL ? gn_pool_alloc(pool, (rows + 1) * sizeof(*modseqs)) : NULL;
	for (size_t i = 0; i < rows; i++) {
		uids[i] = (uint32_t)store_col_i64(res, (int)i, 0);
		if (modseqs != NULL)
			modseqs[i] = (uint64_t)store_col_i64(res, (int)i, 1);
	}
	PQclear(res);
	*uids_r = uids;
	if (modseqs_r != NULL)
		*modseqs_r = modseqs;
	return (int)rows;
}
