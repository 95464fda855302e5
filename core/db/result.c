/*
 * core/db/result.c: query results for modules (gannet/db.h).
 *
 * libpq changes on its own schedule, so its PGresult never appears in a
 * public header: a module's query comes back as a struct gn_db_result that
 * wraps it, read through the accessors below.  The core's own layers call
 * db_query() (db.c) and use libpq directly.  Indexes are size_t here and
 * int in libpq; anything past INT_MAX is out of range for libpq anyway.
 */
#include "db/internal.h"

#include <stdlib.h>

struct gn_db_result {
	PGresult *pg;
};

static struct gn_db_result *wrap(PGresult *pg)
{
	if (pg == NULL)
		return NULL;
	struct gn_db_result *res = gn_malloc(sizeof(*res));
	res->pg = pg;
	return res;
}

struct gn_db_result *gn_db_query_params(const char *sql, int nparams,
					const char *const *values,
					const int *lengths, const int *formats,
					int result_format, const char **error_r)
{
	return wrap(db_query_params(sql, nparams, values, lengths, formats,
				    result_format, error_r));
}

struct gn_db_result *gn_db_query(const char *sql, int nparams,
				 const char *const *params,
				 const char **error_r)
{
	return wrap(db_query(sql, nparams, params, error_r));
}

void gn_db_result_free(struct gn_db_result **res)
{
	if (res == NULL || *res == NULL)
		return;
	PQclear((*res)->pg);
	gn_free(*res);
	*res = NULL;
}

size_t gn_db_result_rows(const struct gn_db_result *res)
{
	return (size_t)PQntuples(res->pg);
}

size_t gn_db_result_columns(const struct gn_db_result *res)
{
	return (size_t)PQnfields(res->pg);
}

/* Whether (row, col) is a cell of the result. */
static bool in_range(const struct gn_db_result *res, size_t row, size_t col)
{
	return row < (size_t)PQntuples(res->pg) && col < (size_t)PQnfields(res->pg);
}

const char *gn_db_result_column_name(const struct gn_db_result *res, size_t col)
{
	if (col >= (size_t)PQnfields(res->pg))
		return NULL;
	return PQfname(res->pg, (int)col);
}

int gn_db_result_column_index(const struct gn_db_result *res, const char *name)
{
	return PQfnumber(res->pg, name);
}

const char *gn_db_result_value(const struct gn_db_result *res, size_t row,
			       size_t col)
{
	if (!in_range(res, row, col))
		return NULL;
	return PQgetvalue(res->pg, (int)row, (int)col);
}

bool gn_db_result_is_null(const struct gn_db_result *res, size_t row,
			  size_t col)
{
	if (!in_range(res, row, col))
		return true;
	return PQgetisnull(res->pg, (int)row, (int)col) != 0;
}

size_t gn_db_result_length(const struct gn_db_result *res, size_t row,
			   size_t col)
{
	if (!in_range(res, row, col))
		return 0;
	return (size_t)PQgetlength(res->pg, (int)row, (int)col);
}

const void *gn_db_result_binary(const struct gn_db_result *res, size_t row,
				size_t col, size_t *len_r)
{
	*len_r = 0;
	if (!in_range(res, row, col) || PQgetisnull(res->pg, (int)row, (int)col))
		return NULL;
	*len_r = (size_t)PQgetlength(res->pg, (int)row, (int)col);
	return PQgetvalue(res->pg, (int)row, (int)col);
}

uint64_t gn_db_result_affected_rows(const struct gn_db_result *res)
{
	/* libpq gives the count as text, "" for commands without one. */
	const char *s = PQcmdTuples(res->pg);
	return s[0] != '\0' ? strtoull(s, NULL, 10) : 0;
}
