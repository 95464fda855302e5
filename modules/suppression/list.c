/*
 * modules/suppression/list.c: base addresses and the table
 * gn_suppressions (schema/001_suppressions.sql); all of the module's SQL.
 */
#include "suppression.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gn_addr *suppression_base(struct gn_pool *pool, const struct gn_addr *addr)
{
	const char *lp = addr->localpart;
	size_t n = strcspn(lp, "+");
	size_t m = strcspn(lp, "-");
	if (m < n)
		n = m;
	char *b = gn_pool_alloc(pool, n + 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (lp[i] != '.')
			b[k++] = lp[i];
	b[k] = '\0';
	struct gn_addr *a = gn_pool_alloc(pool, sizeof(*a));
	a->localpart = b;
	a->domain = addr->domain;
	a->domain_utf8 = addr->domain_utf8;
	return gn_addr_fold(pool, a);
}

static const char *i64s(struct gn_pool *pool, int64_t v)
{
	return gn_pool_printf(pool, "%" PRId64, v);
}

#define COLUMNS "s.id, s.account_id, a.name, s.base_address, s.original_address, s.manual, " \
		"s.reason, extract(epoch FROM s.created_at)::bigint"

static void row(struct gn_pool *pool, const struct gn_db_result *res, size_t i, struct gn_suppression *s)
{
	s->id = strtoll(gn_db_result_value(res, i, 0), NULL, 10);
	s->account_id = strtoll(gn_db_result_value(res, i, 1), NULL, 10);
	s->account = gn_pool_strdup(pool, gn_db_result_value(res, i, 2));
	s->base_address = gn_pool_strdup(pool, gn_db_result_value(res, i, 3));
	s->original_address = gn_pool_strdup(pool, gn_db_result_value(res, i, 4));
	s->manual = gn_db_result_value(res, i, 5)[0] == 't';
	s->reason = gn_pool_strdup(pool, gn_db_result_value(res, i, 6));
	s->created = (time_t)strtoll(gn_db_result_value(res, i, 7), NULL, 10);
}

int suppression_lookup(struct gn_pool *pool, int64_t account_id, const struct gn_addr *addr,
		       struct gn_suppression *s_r, const char **error_r)
{
	const char *p[2] = { i64s(pool, account_id), gn_addr_to_string(pool, suppression_base(pool, addr)) };
	struct gn_db_result *res = gn_db_query("SELECT " COLUMNS " FROM gn_suppressions s JOIN gn_accounts a "
					       "ON a.id = s.account_id WHERE s.account_id = $1 AND "
					       "s.base_address = $2", 2, p, error_r);
	if (res == NULL)
		return -1;
	int r = gn_db_result_rows(res) > 0;
	if (r && s_r != NULL)
		row(pool, res, 0, s_r);
	gn_db_result_free(&res);
	return r;
}

/* A PostgreSQL text[] literal of strings v[0..n). */
static const char *text_array(struct gn_pool *pool, const char *const *v, size_t n)
{
	struct gn_buf *b = gn_buf_new(0);
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
	const char *out = gn_pool_strdup(pool, gn_buf_data(b));
	gn_buf_free(&b);
	return out;
}

int suppression_lookup_many(struct gn_pool *pool, int64_t account_id, const struct gn_addr *const *addrs,
			    size_t n, bool *suppressed_r, const char **error_r)
{
	const char **bases = gn_pool_alloc(pool, (n > 0 ? n : 1) * sizeof(*bases));
	for (size_t i = 0; i < n; i++) {
		suppressed_r[i] = false;
		bases[i] = gn_addr_to_string(pool, suppression_base(pool, addrs[i]));
	}
	if (n == 0)
		return 0;
	const char *p[2] = { i64s(pool, account_id), text_array(pool, bases, n) };
	struct gn_db_result *res = gn_db_query("SELECT u.i FROM unnest($2::text[]) WITH ORDINALITY AS u(b, i) "
					       "JOIN gn_suppressions s ON s.account_id = $1 AND "
					       "s.base_address = u.b", 2, p, error_r);
	if (res == NULL)
		return -1;
	int count = 0;
	for (size_t r = 0; r < gn_db_result_rows(res); r++) {
		long long i = strtoll(gn_db_result_value(res, r, 0), NULL, 10);
		if (i >= 1 && (size_t)i <= n && !suppressed_r[i - 1]) {
			suppressed_r[i - 1] = true;
			count++;
		}
	}
	gn_db_result_free(&res);
	return count;
}

static const char *reason_problem(const char *reason)
{
	if (strlen(reason) > SUPPRESSION_REASON_MAX)
		return "reason too long (at most " SUPPRESSION_STR(SUPPRESSION_REASON_MAX) " bytes)";
	for (const unsigned char *c = (const unsigned char *)reason; *c != '\0'; c++)
		if (*c < 0x20 || *c == 0x7f)
			return "reason has a control character";
	return NULL;
}

int suppression_add(int64_t account_id, const struct gn_addr *addr, bool manual, const char *reason,
		    const char **error_r)
{
	if (reason == NULL)
		reason = "";
	if ((*error_r = reason_problem(reason)) != NULL)
		return -1;
	struct gn_pool *pool = gn_pool_new();
	const char *p[6] = {
		i64s(pool, account_id), gn_addr_to_string(pool, suppression_base(pool, addr)),
		gn_addr_to_string(pool, addr), manual ? "t" : "f", reason,
		i64s(pool, SUPPRESSION_MAX_PER_ACCOUNT),
	};
	/* The limit: counted in the statement (two concurrent additions may
	 * pass it by one; it bounds growth, not an exact size). */
	struct gn_db_result *res = gn_db_query(
		"INSERT INTO gn_suppressions (account_id, base_address, original_address, manual, reason) "
		"SELECT $1, $2, $3, $4, $5 WHERE (SELECT count(*) FROM gn_suppressions WHERE "
		"account_id = $1) < $6::bigint ON CONFLICT (account_id, base_address) DO NOTHING "
		"RETURNING id", 6, p, error_r);
	int r = -1;
	if (res == NULL)
		goto out;
	r = gn_db_result_rows(res) > 0;
	gn_db_result_free(&res);
	if (r == 0) {
		/* Listed already, or the list is full. */
		int found = suppression_lookup(pool, account_id, addr, NULL, error_r);
		if (found == 0) {
			*error_r = "the account's suppression list is full (" SUPPRESSION_STR(SUPPRESSION_MAX_PER_ACCOUNT)
				   " addresses)";
			r = -1;
		} else if (found < 0) {
			r = -1;
		}
	}
out:
	gn_pool_free(&pool);
	return r;
}

int suppression_remove(int64_t account_id, const struct gn_addr *addr, const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	const char *p[2] = { i64s(pool, account_id), gn_addr_to_string(pool, suppression_base(pool, addr)) };
	struct gn_db_result *res = gn_db_query("DELETE FROM gn_suppressions WHERE account_id = $1 AND "
					       "base_address = $2 RETURNING id", 2, p, error_r);
	int r = -1;
	if (res != NULL) {
		r = gn_db_result_rows(res) > 0;
		gn_db_result_free(&res);
	}
	gn_pool_free(&pool);
	return r;
}

int suppression_list(struct gn_pool *pool, int64_t account_id, struct gn_suppression **list_r,
		     size_t *n_r, const char **error_r)
{
	const char *p[1] = { i64s(pool, account_id) };
	struct gn_db_result *res = gn_db_query("SELECT " COLUMNS " FROM gn_suppressions s JOIN gn_accounts a "
					       "ON a.id = s.account_id WHERE $1::bigint = 0 OR "
					       "s.account_id = $1 ORDER BY a.name, s.base_address", 1, p,
					       error_r);
	if (res == NULL)
		return -1;
	size_t n = gn_db_result_rows(res);
	struct gn_suppression *l = gn_pool_alloc(pool, (n > 0 ? n : 1) * sizeof(*l));
	for (size_t i = 0; i < n; i++)
		row(pool, res, i, &l[i]);
	gn_db_result_free(&res);
	*list_r = l;
	*n_r = n;
	return 0;
}
