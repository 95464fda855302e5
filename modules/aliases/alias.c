/*
 * modules/aliases/alias.c: the aliases and their members in the module's
 * tables (schema/001_aliases.sql), all of the module's SQL.
 *
 * Lookups fold the localpart to lower case the way the core's address
 * lookup does (gn_addr_fold()), so an alias and an account address compare
 * alike.  Changes run in one transaction each; the schema's own rules
 * (members reference address rows, an alias keeps one member, an address
 * and an alias never share a name) hold also against changes made
 * elsewhere (`gannet config address rm`, `account rm`), and the checks
 * here come first only to say what is wrong in the admin's terms.
 */
#include "aliases.h"

#include <stdlib.h>
#include <string.h>

static bool col_bool(const struct gn_db_result *res, size_t row, size_t col)
{
	const char *v = gn_db_result_value(res, row, col);
	return v != NULL && strcmp(v, "t") == 0;
}

static int64_t col_i64(const struct gn_db_result *res, size_t row, size_t col)
{
	const char *v = gn_db_result_value(res, row, col);
	return v != NULL ? strtoll(v, NULL, 10) : 0;
}

static struct gn_addr *addr_from_row(struct gn_pool *pool, const char *localpart,
				     const char *domain)
{
	struct gn_addr *a = NULL;
	const char *err;
	if (gn_addr_from_parts(pool, localpart, domain, &a, &err) < 0) {
		/* Stored addresses were valid when added; keep the parts. */
		a = gn_pool_alloc(pool, sizeof(*a));
		a->localpart = gn_pool_strdup(pool, localpart);
		a->domain = a->domain_utf8 = gn_pool_strdup(pool, domain);
	}
	return a;
}

/* A database error, copied out of the connection's static buffer. */
static const char *db_err(struct gn_pool *pool, const char *err)
{
	return gn_pool_strdup(pool, err != NULL ? err : "database error");
}

/* One lookup by key; 1 found (*alias_r), 0 not (*seps_r: the domain's
 * catchall separators, NULL for a domain not hosted), -1. */
static int find_key(struct gn_pool *pool, const char *domain, const char *key,
		    struct alias **alias_r, const char **seps_r, const char **error_r)
{
	const char *p[2] = { domain, key };
	struct gn_db_result *res = gn_db_query(
		"SELECT a.id, a.localpart, a.post_public, a.list_members, a.allow_msg_from, "
		"d.catchall_separators FROM gn_domains d LEFT JOIN gn_aliases a "
		"ON a.domain_id = d.id AND a.localpart_key = $2 WHERE d.name = $1", 2, p, error_r);
	if (res == NULL)
		return -1;
	*seps_r = NULL;
	if (gn_db_result_rows(res) == 0) {
		gn_db_result_free(&res);
		return 0;
	}
	*seps_r = gn_pool_strdup(pool, gn_db_result_value(res, 0, 5));
	if (gn_db_result_is_null(res, 0, 0)) {
		gn_db_result_free(&res);
		return 0;
	}
	struct alias *a = gn_pool_alloc(pool, sizeof(*a));
	a->id = col_i64(res, 0, 0);
	a->addr = addr_from_row(pool, gn_db_result_value(res, 0, 1), domain);
	a->flags.post_public = col_bool(res, 0, 2);
	a->flags.list_members = col_bool(res, 0, 3);
	a->flags.allow_msg_from = col_bool(res, 0, 4);
	gn_db_result_free(&res);
	*alias_r = a;
	return 1;
}

int alias_find(struct gn_pool *pool, const struct gn_addr *addr,
	       struct alias **alias_r, const char **error_r)
{
	if (addr == NULL || addr->domain[0] == '\0' || addr->domain[0] == '[')
		return 0;
	const char *seps = NULL;
	struct gn_addr *f = gn_addr_fold(pool, addr);
	int r = find_key(pool, addr->domain, f->localpart, alias_r, &seps, error_r);
	if (r != 0 || seps == NULL || seps[0] == '\0')
		return r;
	struct gn_addr *s = gn_addr_strip_catchall(pool, f, seps);
	if (s == f)
		return 0;
	return find_key(pool, addr->domain, s->localpart, alias_r, &seps, error_r);
}

int alias_members(struct gn_pool *pool, int64_t alias_id, struct alias_member **list_r,
		  size_t *count_r, const char **error_r)
{
	const char *p[1] = { gn_pool_printf(pool, "%lld", (long long)alias_id) };
	struct gn_db_result *res = gn_db_query(
		"SELECT ad.localpart, d.name, ad.account_id, acc.name FROM gn_alias_members m "
		"JOIN gn_addresses ad ON ad.domain_id = m.domain_id AND ad.localpart_key = m.localpart_key "
		"JOIN gn_domains d ON d.id = m.domain_id JOIN gn_accounts acc ON acc.id = ad.account_id "
		"WHERE m.alias_id = $1 ORDER BY d.name, m.localpart_key", 1, p, error_r);
	if (res == NULL)
		return -1;
	size_t n = gn_db_result_rows(res);
	struct alias_member *list = gn_pool_alloc(pool, (n + 1) * sizeof(*list));
	for (size_t i = 0; i < n; i++) {
		list[i].addr = addr_from_row(pool, gn_db_result_value(res, i, 0),
					     gn_db_result_value(res, i, 1));
		list[i].account_id = col_i64(res, i, 2);
		list[i].account = gn_pool_strdup(pool, gn_db_result_value(res, i, 3));
	}
	gn_db_result_free(&res);
	*list_r = list;
	*count_r = n;
	return 0;
}

static int exists(struct gn_db_result *res)
{
	if (res == NULL)
		return -1;
	int r = col_bool(res, 0, 0) ? 1 : 0;
	gn_db_result_free(&res);
	return r;
}

int alias_has_member(struct gn_pool *pool, int64_t alias_id, const struct gn_addr *addr,
		     const char **error_r)
{
	if (addr == NULL)
		return 0;
	const char *p[3] = { gn_pool_printf(pool, "%lld", (long long)alias_id), addr->domain,
			     gn_addr_fold(pool, addr)->localpart };
	return exists(gn_db_query("SELECT EXISTS (SELECT 1 FROM gn_alias_members m JOIN gn_domains d "
				  "ON d.id = m.domain_id WHERE m.alias_id = $1 AND d.name = $2 "
				  "AND m.localpart_key = $3)", 3, p, error_r));
}

int alias_has_account(struct gn_pool *pool, int64_t alias_id, int64_t account_id,
		      const char **error_r)
{
	const char *p[2] = { gn_pool_printf(pool, "%lld", (long long)alias_id),
			     gn_pool_printf(pool, "%lld", (long long)account_id) };
	return exists(gn_db_query("SELECT EXISTS (SELECT 1 FROM gn_alias_members m JOIN gn_addresses a "
				  "ON a.domain_id = m.domain_id AND a.localpart_key = m.localpart_key "
				  "WHERE m.alias_id = $1 AND a.account_id = $2)", 2, p, error_r));
}

int alias_list(struct gn_pool *pool, struct alias **list_r, size_t **counts_r,
	       size_t *count_r, const char **error_r)
{
	struct gn_db_result *res = gn_db_query(
		"SELECT a.id, a.localpart, d.name, a.post_public, a.list_members, a.allow_msg_from, "
		"(SELECT count(*) FROM gn_alias_members m WHERE m.alias_id = a.id) "
		"FROM gn_aliases a JOIN gn_domains d ON d.id = a.domain_id "
		"ORDER BY d.name, a.localpart_key", 0, NULL, error_r);
	if (res == NULL)
		return -1;
	size_t n = gn_db_result_rows(res);
	struct alias *list = gn_pool_alloc(pool, (n + 1) * sizeof(*list));
	size_t *counts = gn_pool_alloc(pool, (n + 1) * sizeof(*counts));
	for (size_t i = 0; i < n; i++) {
		list[i].id = col_i64(res, i, 0);
		list[i].addr = addr_from_row(pool, gn_db_result_value(res, i, 1),
					     gn_db_result_value(res, i, 2));
		list[i].flags.post_public = col_bool(res, i, 3);
		list[i].flags.list_members = col_bool(res, i, 4);
		list[i].flags.allow_msg_from = col_bool(res, i, 5);
		counts[i] = (size_t)col_i64(res, i, 6);
	}
	gn_db_result_free(&res);
	*list_r = list;
	*counts_r = counts;
	*count_r = n;
	return 0;
}

/* ---- changes ---- */

/* An address given by the admin: parsed, a hosted domain (*domain_id_r),
 * its lookup key (*key_r). */
static struct gn_addr *admin_addr(struct gn_pool *pool, const char *s, int64_t *domain_id_r,
				  const char **seps_r, const char **key_r, const char **error_r)
{
	struct gn_addr *a = NULL;
	const char *err = NULL;
	if (gn_addr_parse(pool, s, strlen(s), &a, &err) < 0) {
		*error_r = gn_pool_printf(pool, "invalid address \"%s\": %s", s, err ? err : "?");
		return NULL;
	}
	if (a->domain[0] == '[') {
		*error_r = gn_pool_printf(pool, "invalid address \"%s\": an address literal "
					  "cannot be configured", s);
		return NULL;
	}
	struct gn_store_domain *d = NULL;
	int r = gn_store_domain_find(pool, a->domain, &d, &err);
	if (r < 0) {
		*error_r = db_err(pool, err);
		return NULL;
	}
	if (r == 0) {
		*error_r = gn_pool_printf(pool, "unknown domain: %s (add it with `gannet config "
					  "domain add %s`)", a->domain_utf8, a->domain_utf8);
		return NULL;
	}
	*domain_id_r = gn_store_domain_id(d);
	if (seps_r != NULL)
		*seps_r = gn_pool_strdup(pool, gn_store_domain_catchall_separators(d));
	*key_r = gn_addr_fold(pool, a)->localpart;
	return a;
}

/* The alias row of address, locked for the change: 1 (*id_r), 0 none, -1. */
static int alias_lock(struct gn_pool *pool, const char *address, int64_t *id_r,
		      const char **display_r, const char **error_r)
{
	int64_t dom = 0;
	const char *key = NULL, *err = NULL;
	struct gn_addr *a = admin_addr(pool, address, &dom, NULL, &key, error_r);
	if (a == NULL)
		return -1;
	const char *p[2] = { gn_pool_printf(pool, "%lld", (long long)dom), key };
	struct gn_db_result *res = gn_db_query("SELECT id, localpart FROM gn_aliases WHERE domain_id = $1 "
					       "AND localpart_key = $2 FOR UPDATE", 2, p, &err);
	if (res == NULL) {
		*error_r = db_err(pool, err);
		return -1;
	}
	int found = gn_db_result_rows(res) > 0;
	if (found) {
		*id_r = col_i64(res, 0, 0);
		*display_r = gn_addr_to_display(pool, addr_from_row(pool, gn_db_result_value(res, 0, 1),
								    a->domain));
	} else {
		*error_r = gn_pool_printf(pool, "unknown alias: %s", gn_addr_to_display(pool, a));
	}
	gn_db_result_free(&res);
	return found;
}

/* A member given by the admin: an address of an account, exactly as
 * configured (not through a catchall, not an alias).  Returns 0 with
 * *domain_id_r and *key_r, or -1. */
static int member_row(struct gn_pool *pool, const char *s, const char **domain_id_r,
		      const char **key_r, const char **display_r, const char **error_r)
{
	int64_t dom = 0;
	const char *key = NULL, *err = NULL;
	struct gn_addr *a = admin_addr(pool, s, &dom, NULL, &key, error_r);
	if (a == NULL)
		return -1;
	const char *p[2] = { gn_pool_printf(pool, "%lld", (long long)dom), key };
	struct gn_db_result *res = gn_db_query(
		"SELECT (SELECT count(*) FROM gn_addresses WHERE domain_id = $1 AND localpart_key = $2), "
		"(SELECT count(*) FROM gn_aliases WHERE domain_id = $1 AND localpart_key = $2)",
		2, p, &err);
	if (res == NULL) {
		*error_r = db_err(pool, err);
		return -1;
	}
	bool is_address = col_i64(res, 0, 0) > 0, is_alias = col_i64(res, 0, 1) > 0;
	gn_db_result_free(&res);
	*display_r = gn_addr_to_display(pool, a);
	if (is_alias) {
		*error_r = gn_pool_printf(pool, "%s is an alias: members are addresses of accounts",
					  *display_r);
		return -1;
	}
	if (!is_address) {
		*error_r = gn_pool_printf(pool, "%s is no address of an account (members are "
					  "addresses added with `gannet config address add`, "
					  "not catchall forms)", *display_r);
		return -1;
	}
	*domain_id_r = p[0];
	*key_r = key;
	return 0;
}

/* Adds members to alias id (in the caller's transaction). */
static int members_insert(struct gn_pool *pool, int64_t id, const char *alias_display,
			  const char *const *members, size_t n, const char **error_r)
{
	const char *err = NULL;
	const char *ids = gn_pool_printf(pool, "%lld", (long long)id);
	for (size_t i = 0; i < n; i++) {
		const char *dom, *key, *display;
		if (member_row(pool, members[i], &dom, &key, &display, error_r) < 0)
			return -1;
		const char *p[3] = { ids, dom, key };
		struct gn_db_result *res = gn_db_query(
			"INSERT INTO gn_alias_members (alias_id, domain_id, localpart_key) "
			"VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", 3, p, &err);
		if (res == NULL) {
			*error_r = db_err(pool, err);
			return -1;
		}
		uint64_t added = gn_db_result_affected_rows(res);
		gn_db_result_free(&res);
		if (added == 0) {
			*error_r = gn_pool_printf(pool, "%s is a member of %s already", display,
						  alias_display);
			return -1;
		}
	}
	const char *p[1] = { ids };
	struct gn_db_result *res = gn_db_query("SELECT count(*) FROM gn_alias_members WHERE alias_id = $1",
					       1, p, &err);
	if (res == NULL) {
		*error_r = db_err(pool, err);
		return -1;
	}
	int64_t count = col_i64(res, 0, 0);
	gn_db_result_free(&res);
	if (count > ALIASES_MAX_MEMBERS) {
		*error_r = gn_pool_printf(pool, "an alias has at most %d members", ALIASES_MAX_MEMBERS);
		return -1;
	}
	return 0;
}

static int tx_begin(struct gn_pool *pool, const char **error_r)
{
	const char *err = NULL;
	if (gn_db_begin(&err) < 0) {
		*error_r = db_err(pool, err);
		return -1;
	}
	return 0;
}

static int tx_end(struct gn_pool *pool, int ret, const char **error_r)
{
	const char *err = NULL;
	if (ret < 0) {
		gn_db_rollback();
		return -1;
	}
	if (gn_db_commit(&err) < 0) {
		*error_r = db_err(pool, err);
		return -1;
	}
	return 0;
}

int alias_add(struct gn_pool *pool, const char *address, const char *const *members,
	      size_t n_members, const struct alias_flags *flags, const char **error_r)
{
	int64_t dom = 0;
	const char *key = NULL, *seps = NULL, *err = NULL;
	struct gn_addr *a = admin_addr(pool, address, &dom, &seps, &key, error_r);
	if (a == NULL)
		return -1;
	const char *display = gn_addr_to_display(pool, a);
	if (n_members == 0) {
		*error_r = "an alias needs at least one member";
		return -1;
	}
	if (n_members > ALIASES_MAX_MEMBERS) {
		*error_r = gn_pool_printf(pool, "an alias has at most %d members", ALIASES_MAX_MEMBERS);
		return -1;
	}
	/* mox.md 5: no catchall separator in an alias's localpart (alias+tag@
	 * is how the alias is reached with a tag). */
	if (gn_addr_strip_catchall(pool, a, seps) != a) {
		*error_r = gn_pool_printf(pool, "%s contains a catchall separator of its domain (\"%s\")",
					  display, seps);
		return -1;
	}
	if (tx_begin(pool, error_r) < 0)
		return -1;
	int ret = -1;
	const char *p[6] = { gn_pool_printf(pool, "%lld", (long long)dom), key, a->localpart,
			     flags->post_public ? "t" : "f", flags->list_members ? "t" : "f",
			     flags->allow_msg_from ? "t" : "f" };
	struct gn_db_result *res = gn_db_query(
		"SELECT count(*) FROM gn_addresses WHERE domain_id = $1 AND localpart_key = $2",
		2, p, &err);
	if (res == NULL) {
		*error_r = db_err(pool, err);
		goto end;
	}
	int64_t taken = col_i64(res, 0, 0);
	gn_db_result_free(&res);
	if (taken > 0) {
		*error_r = gn_pool_printf(pool, "%s is an address of an account: an alias needs an "
					  "address of its own", display);
		goto end;
	}
	res = gn_db_query("INSERT INTO gn_aliases (domain_id, localpart_key, localpart, post_public, "
			  "list_members, allow_msg_from) VALUES ($1, $2, $3, $4, $5, $6) "
			  "ON CONFLICT DO NOTHING RETURNING id", 6, p, &err);
	if (res == NULL) {
		*error_r = db_err(pool, err);
		goto end;
	}
	if (gn_db_result_rows(res) == 0) {
		gn_db_result_free(&res);
		*error_r = gn_pool_printf(pool, "alias exists: %s", display);
		goto end;
	}
	int64_t id = col_i64(res, 0, 0);
	gn_db_result_free(&res);
	ret = members_insert(pool, id, display, members, n_members, error_r);
end:
	return tx_end(pool, ret, error_r);
}

int alias_update(struct gn_pool *pool, const char *address, int post_public,
		 int list_members, int allow_msg_from, const char **error_r)
{
	if (tx_begin(pool, error_r) < 0)
		return -1;
	int64_t id = 0;
	const char *display = NULL, *err = NULL;
	int ret = alias_lock(pool, address, &id, &display, error_r) > 0 ? 0 : -1;
	if (ret == 0) {
		const char *p[4] = { gn_pool_printf(pool, "%lld", (long long)id),
				     post_public < 0 ? NULL : post_public ? "t" : "f",
				     list_members < 0 ? NULL : list_members ? "t" : "f",
				     allow_msg_from < 0 ? NULL : allow_msg_from ? "t" : "f" };
		if (gn_db_exec("UPDATE gn_aliases SET post_public = coalesce($2::boolean, post_public), "
			       "list_members = coalesce($3::boolean, list_members), "
			       "allow_msg_from = coalesce($4::boolean, allow_msg_from) WHERE id = $1",
			       4, p, &err) < 0) {
			*error_r = db_err(pool, err);
			ret = -1;
		}
	}
	return tx_end(pool, ret, error_r);
}

int alias_remove(struct gn_pool *pool, const char *address, const char **error_r)
{
	if (tx_begin(pool, error_r) < 0)
		return -1;
	int64_t id = 0;
	const char *display = NULL, *err = NULL;
	int ret = alias_lock(pool, address, &id, &display, error_r) > 0 ? 0 : -1;
	if (ret == 0) {
		const char *p[1] = { gn_pool_printf(pool, "%lld", (long long)id) };
		if (gn_db_exec("DELETE FROM gn_aliases WHERE id = $1", 1, p, &err) < 0) {
			*error_r = db_err(pool, err);
			ret = -1;
		}
	}
	return tx_end(pool, ret, error_r);
}

int alias_members_add(struct gn_pool *pool, const char *address, const char *const *members,
		      size_t n_members, const char **error_r)
{
	if (tx_begin(pool, error_r) < 0)
		return -1;
	int64_t id = 0;
	const char *display = NULL;
	int ret = alias_lock(pool, address, &id, &display, error_r) > 0 ? 0 : -1;
	if (ret == 0)
		ret = members_insert(pool, id, display, members, n_members, error_r);
	return tx_end(pool, ret, error_r);
}

int alias_members_remove(struct gn_pool *pool, const char *address, const char *const *members,
			 size_t n_members, const char **error_r)
{
	if (tx_begin(pool, error_r) < 0)
		return -1;
	int64_t id = 0;
	const char *display = NULL, *err = NULL;
	int ret = alias_lock(pool, address, &id, &display, error_r) > 0 ? 0 : -1;
	const char *ids = gn_pool_printf(pool, "%lld", (long long)id);
	for (size_t i = 0; ret == 0 && i < n_members; i++) {
		int64_t dom = 0;
		const char *key = NULL;
		struct gn_addr *m = admin_addr(pool, members[i], &dom, NULL, &key, error_r);
		if (m == NULL) {
			ret = -1;
			break;
		}
		const char *p[3] = { ids, gn_pool_printf(pool, "%lld", (long long)dom), key };
		/* Counted before the delete: the schema's trigger would
		 * refuse the last one too, in database terms. */
		struct gn_db_result *res = gn_db_query(
			"SELECT (SELECT count(*) FROM gn_alias_members WHERE alias_id = $1), "
			"(SELECT count(*) FROM gn_alias_members WHERE alias_id = $1 "
			"AND domain_id = $2 AND localpart_key = $3)", 3, p, &err);
		if (res == NULL) {
			*error_r = db_err(pool, err);
			ret = -1;
			break;
		}
		int64_t total = col_i64(res, 0, 0), is_member = col_i64(res, 0, 1);
		gn_db_result_free(&res);
		if (is_member == 0) {
			*error_r = gn_pool_printf(pool, "%s is not a member of %s",
						  gn_addr_to_display(pool, m), display);
			ret = -1;
		} else if (total <= 1) {
			*error_r = gn_pool_printf(pool, "%s is the last member of %s: an alias keeps at "
						  "least one (remove the alias instead: gannet config "
						  "alias rm %s)", gn_addr_to_display(pool, m), display,
						  display);
			ret = -1;
		} else if (gn_db_exec("DELETE FROM gn_alias_members WHERE alias_id = $1 AND "
				      "domain_id = $2 AND localpart_key = $3", 3, p, &err) < 0) {
			*error_r = db_err(pool, err);
			ret = -1;
		}
	}
	return tx_end(pool, ret, error_r);
}
