/*
 * core/store/domain.c: the hosted domains (gannet/store.h): their names in
 * A-label and U-label form, and their catchall separators.  The commands
 * that drive them are in cli-domain.c.
 */
#include "store/internal.h"

#include <inttypes.h>
#include <string.h>
#include <unistr.h>


static const char *separators_problem(const char *seps)
{
	if (u8_check((const uint8_t *)seps, strlen(seps)) != NULL)
		return "not valid UTF-8";
	const uint8_t *p = (const uint8_t *)seps;
	ucs4_t c;
	while ((p = u8_next(&c, p)) != NULL && c != 0) {
		if (c <= 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) ||
		    (c < 0x80 && (c == '@' || c == '.' || c == '"' || c == '\\' ||
				  (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
				  (c >= 'A' && c <= 'Z'))))
			return "letters, digits, \"@\", \".\", quotes, backslashes, spaces and controls cannot separate";
	}
	return NULL;
}

static void domain_from_row(struct gn_pool *pool, const PGresult *res, int row,
			    struct gn_store_domain *d)
{
	d->id = store_col_i64(res, row, 0);
	d->name = store_col_str(pool, res, row, 1);
	d->name_utf8 = store_col_str(pool, res, row, 2);
	d->catchall_separators = store_col_str(pool, res, row, 3);
}

#define DOMAIN_COLS "id, name, name_utf8, catchall_separators"

/* The A-label form of a domain name, or NULL with *error_r. */
static const char *domain_ascii(struct gn_pool *pool, const char *name,
				const char **utf8_r, const char **error_r)
{
	const char *ascii = NULL, *err = NULL;
	if (name == NULL || gn_addr_parse_domain(pool, name, strlen(name), &ascii, utf8_r, &err) < 0) {
		*error_r = store_errf("invalid domain \"%s\": %s", name ? name : "", err ? err : "empty");
		return NULL;
	}
	return ascii;
}

int gn_store_domain_add(struct gn_pool *pool, const char *name,
			const char *catchall_separators,
			struct gn_store_domain **domain_r, const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	const char *utf8 = NULL;
	const char *ascii = domain_ascii(tmp, name, &utf8, error_r);
	int ret = -1;
	if (ascii == NULL)
		goto out;
	const char *seps = catchall_separators ? catchall_separators : "";
	const char *prob = separators_problem(seps);
	if (prob != NULL) {
		*error_r = store_errf("invalid catchall separators \"%s\": %s", seps, prob);
		goto out;
	}
	const char *p[3] = { ascii, utf8, seps };
	PGresult *res = store_q("INSERT INTO gn_domains (name, name_utf8, catchall_separators) "
			  "VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING " DOMAIN_COLS,
			  3, p, error_r);
	if (res == NULL)
		goto out;
	if (PQntuples(res) != 1) {
		PQclear(res);
		*error_r = store_errf("domain exists: %s", utf8);
		goto out;
	}
	if (domain_r != NULL) {
		*domain_r = gn_pool_alloc(pool, sizeof(**domain_r));
		domain_from_row(pool, res, 0, *domain_r);
	}
	PQclear(res);
	ret = 0;
out:
	gn_pool_free(&tmp);
	return ret;
}

int gn_store_domain_remove(const char *name, const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	const char *ascii = domain_ascii(tmp, name, NULL, error_r);
	int ret = -1;
	if (ascii == NULL)
		goto out;
	const char *p[1] = { ascii };
	PGresult *res = store_q("SELECT (SELECT count(*) FROM gn_addresses a WHERE a.domain_id = d.id) "
			  "FROM gn_domains d WHERE d.name = $1", 1, p, error_r);
	if (res == NULL)
		goto out;
	if (PQntuples(res) == 0) {
		PQclear(res);
		ret = 0;
		goto out;
	}
	int64_t used = store_col_i64(res, 0, 0);
	PQclear(res);
	if (used > 0) {
		*error_r = store_errf("domain %s is used by %" PRId64 " address%s: remove %s first",
				name, used, used == 1 ? "" : "es", used == 1 ? "it" : "them");
		goto out;
	}
	int64_t c = store_q_count("DELETE FROM gn_domains d WHERE name = $1 AND NOT EXISTS "
			    "(SELECT 1 FROM gn_addresses a WHERE a.domain_id = d.id)", 1, p, error_r);
	ret = c < 0 ? -1 : c > 0 ? 1 : 0;
out:
	gn_pool_free(&tmp);
	return ret;
}

int gn_store_domain_set_catchall(const char *name, const char *separators,
				 const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	const char *ascii = domain_ascii(tmp, name, NULL, error_r);
	int ret = -1;
	if (ascii == NULL)
		goto out;
	const char *seps = separators ? separators : "";
	const char *prob = separators_problem(seps);
	if (prob != NULL) {
		*error_r = store_errf("invalid catchall separators \"%s\": %s", seps, prob);
		goto out;
	}
	const char *p[2] = { ascii, seps };
	int64_t c = store_q_count("UPDATE gn_domains SET catchall_separators = $2 WHERE name = $1",
			    2, p, error_r);
	ret = c < 0 ? -1 : c > 0 ? 1 : 0;
out:
	gn_pool_free(&tmp);
	return ret;
}

int gn_store_domain_list(struct gn_pool *pool, struct gn_store_domain ***list_r,
			 size_t *count_r, const char **error_r)
{
	PGresult *res = store_q("SELECT " DOMAIN_COLS " FROM gn_domains ORDER BY name", 0, NULL, error_r);
	if (res == NULL)
		return -1;
	size_t n = (size_t)PQntuples(res);
	struct gn_store_domain **list = gn_pool_alloc(pool, (n + 1) * sizeof(*list));
	for (size_t i = 0; i < n; i++) {
		list[i] = gn_pool_alloc(pool, sizeof(*list[i]));
		domain_from_row(pool, res, (int)i, list[i]);
	}
	PQclear(res);
	*list_r = list;
	*count_r = n;
	return 0;
}

int gn_store_domain_find(struct gn_pool *pool, const char *name,
			 struct gn_store_domain **domain_r, const char **error_r)
{
	const char *err;
	const char *ascii = domain_ascii(pool, name, NULL, &err);
	if (ascii == NULL)
		return 0;
	const char *p[1] = { ascii };
	PGresult *res = store_q("SELECT " DOMAIN_COLS " FROM gn_domains WHERE name = $1", 1, p, error_r);
	if (res == NULL)
		return -1;
	int found = PQntuples(res) == 1;
	if (found && domain_r != NULL) {
		*domain_r = gn_pool_alloc(pool, sizeof(**domain_r));
		domain_from_row(pool, res, 0, *domain_r);
	}
	PQclear(res);
	return found;
}
