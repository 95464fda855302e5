/*
 * core/store/fromid.c: the FromID login addresses of an account
 * (migration 013_fromid.sql, gannet/store.h): a login listed here sends
 * with a unique envelope sender per recipient (mox.md 2.5).  Addresses
 * are kept in folded canonical form; each is an address of the account
 * (itself or through the catchall) on a domain with catchall separators.
 * The commands that drive it are in cli-account.c.
 */
#include "store/internal.h"

#include <string.h>

/* The folded canonical form of address, or NULL with *error_r. */
static const char *folded(struct gn_pool *pool, const char *address, struct gn_addr **addr_r,
			  const char **error_r)
{
	struct gn_addr *a;
	const char *perr;
	if (address == NULL || gn_addr_parse(pool, address, strlen(address), &a, &perr) < 0) {
		*error_r = store_errf("invalid address: %s", address != NULL ? address : "");
		return NULL;
	}
	if (addr_r != NULL)
		*addr_r = a;
	return gn_addr_to_string(pool, gn_addr_fold(pool, a));
}

int gn_store_fromid_login_add(const char *account, const char *address, const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_account *acc;
	struct gn_store_domain *dom;
	struct gn_addr *a;
	int64_t owner = 0;
	int ret = -1;
	const char *key = folded(pool, address, &a, error_r);
	if (key == NULL)
		goto out;
	int r = gn_store_account_find(pool, account, &acc, error_r);
	if (r <= 0) {
		if (r == 0)
			*error_r = store_errf("unknown account: %s", account);
		goto out;
	}
	r = gn_store_domain_find(pool, a->domain, &dom, error_r);
	if (r <= 0) {
		if (r == 0)
			*error_r = store_errf("unknown domain: %s", a->domain);
		goto out;
	}
	if (gn_store_domain_catchall_separators(dom)[0] == '\0') {
		*error_r = store_errf("domain %s has no catchall separator: a FromID needs one "
				      "(gannet config domain add --catchall-separators)", a->domain);
		goto out;
	}
	r = gn_store_address_lookup(pool, a, &owner, NULL, error_r);
	if (r < 0)
		goto out;
	if (r == 0 || owner != gn_store_account_id(acc)) {
		*error_r = store_errf("not an address of account %s: %s", account, key);
		goto out;
	}
	const char *p[2] = { store_i64s(pool, gn_store_account_id(acc)), key };
	int64_t n = store_q_count("INSERT INTO gn_account_fromid_logins (account_id, address) "
				  "VALUES ($1, $2) ON CONFLICT DO NOTHING", 2, p, error_r);
	if (n < 0)
		goto out;
	if (n == 0) {
		*error_r = store_errf("already a FromID login address: %s", key);
		goto out;
	}
	ret = 0;
out:
	gn_pool_free(&pool);
	return ret;
}

int gn_store_fromid_login_remove(const char *account, const char *address, const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_account *acc;
	int ret = -1;
	const char *key = folded(pool, address, NULL, error_r);
	if (key == NULL)
		goto out;
	int r = gn_store_account_find(pool, account, &acc, error_r);
	if (r <= 0) {
		if (r == 0)
			*error_r = store_errf("unknown account: %s", account);
		goto out;
	}
	const char *p[2] = { store_i64s(pool, gn_store_account_id(acc)), key };
	int64_t n = store_q_count("DELETE FROM gn_account_fromid_logins WHERE account_id = $1 "
				  "AND address = $2", 2, p, error_r);
	ret = n < 0 ? -1 : n > 0 ? 1 : 0;
out:
	gn_pool_free(&pool);
	return ret;
}

int gn_store_fromid_login_list(struct gn_pool *pool, int64_t account_id, const char ***list_r,
			       size_t *count_r, const char **error_r)
{
	const char *p[1] = { store_i64s(pool, account_id) };
	PGresult *res = store_q("SELECT address FROM gn_account_fromid_logins WHERE account_id = $1 "
				"ORDER BY address", 1, p, error_r);
	if (res == NULL)
		return -1;
	size_t n = (size_t)PQntuples(res);
	const char **list = gn_pool_alloc(pool, (n > 0 ? n : 1) * sizeof(*list));
	for (size_t i = 0; i < n; i++)
		list[i] = store_col_str(pool, res, (int)i, 0);
	PQclear(res);
	*list_r = list;
	*count_r = n;
	return 0;
}

int gn_store_fromid_login_is(int64_t account_id, const char *login, const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	const char *key = folded(pool, login, NULL, error_r);
	int ret = 0;
	if (key != NULL) {
		const char *p[2] = { store_i64s(pool, account_id), key };
		PGresult *res = store_q("SELECT 1 FROM gn_account_fromid_logins WHERE account_id = $1 "
					"AND address = $2", 2, p, error_r);
		ret = res == NULL ? -1 : PQntuples(res) > 0;
		PQclear(res);
	}
	/* A login that is not an address (an account name) has no FromIDs. */
	gn_pool_free(&pool);
	return ret;
}
