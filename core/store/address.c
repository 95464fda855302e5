/*
 * core/store/address.c: the addresses that reach accounts (gannet/store.h),
 * normalised with gannet/addr.h and looked up by their folded localpart,
 * catchall separators included.  The commands that drive them are in
 * cli-address.c.
 */
#include "store/internal.h"

#include <inttypes.h>
#include <string.h>


/* Parses address for configuration: a domain name (no literal). */
static struct gn_addr *address_parse(struct gn_pool *pool, const char *address,
				     const char **error_r)
{
	struct gn_addr *a = NULL;
	const char *err = NULL;
	if (address == NULL || gn_addr_parse(pool, address, strlen(address), &a, &err) < 0) {
		*error_r = store_errf("invalid address \"%s\": %s", address ? address : "", err ? err : "empty");
		return NULL;
	}
	if (a->domain[0] == '[') {
		*error_r = store_errf("invalid address \"%s\": an address literal cannot be configured", address);
		return NULL;
	}
	return a;
}

int store_address_insert(struct gn_pool *pool, const char *address, int64_t account_id,
			 const char *account, const char **error_r)
{
	struct gn_addr *a = address_parse(pool, address, error_r);
	if (a == NULL)
		return -1;
	struct gn_store_domain *d;
	int r = gn_store_domain_find(pool, a->domain, &d, error_r);
	if (r < 0)
		return -1;
	if (r == 0) {
		*error_r = store_errf("unknown domain: %s (add it with `gannet config domain add %s`)",
				a->domain_utf8, a->domain_utf8);
		return -1;
	}
	if (account_id == 0) {
		struct gn_store_account *acc;
		r = gn_store_account_find(pool, account, &acc, error_r);
		if (r < 0)
			return -1;
		if (r == 0) {
			*error_r = store_errf("unknown account: %s", account);
			return -1;
		}
		account_id = acc->id;
	}
	struct gn_addr *f = gn_addr_fold(pool, a);
	const char *p[4] = { store_i64s(pool, d->id), f->localpart, a->localpart, store_i64s(pool, account_id) };
	PGresult *res = store_q("INSERT INTO gn_addresses (domain_id, localpart_key, localpart, account_id) "
			  "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", 4, p, error_r);
	if (res == NULL)
		return -1;
	bool added = strcmp(PQcmdTuples(res), "1") == 0;
	PQclear(res);
	if (!added) {
		*error_r = store_errf("address exists: %s", gn_addr_to_display(pool, a));
		return -1;
	}
	return 0;
}

int gn_store_address_add(const char *address, const char *account,
			 const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	struct store_tx tx;
	int ret = -1;
	/* Checks before the transaction so that the errors come in order. */
	struct gn_addr *a = address_parse(tmp, address, error_r);
	if (a == NULL)
		goto out;
	if (store_tx_begin(&tx, error_r) < 0)
		goto out;
	ret = store_address_insert(tmp, address, 0, account, error_r);
	ret = store_tx_end(&tx, ret, error_r);
out:
	gn_pool_free(&tmp);
	return ret;
}

int gn_store_address_remove(const char *address, const char **error_r)
{
	struct gn_pool *tmp = gn_pool_new();
	struct store_tx tx;
	int ret = -1;
	struct gn_addr *a = address_parse(tmp, address, error_r);
	if (a == NULL)
		goto out;
	struct gn_addr *f = gn_addr_fold(tmp, a);
	if (store_tx_begin(&tx, error_r) < 0)
		goto out;
	const char *p[2] = { a->domain, f->localpart };
	PGresult *res = store_q("SELECT a.account_id, acc.name, "
			  "(SELECT count(*) FROM gn_addresses o WHERE o.account_id = a.account_id) "
			  "FROM gn_addresses a JOIN gn_domains d ON d.id = a.domain_id "
			  "JOIN gn_accounts acc ON acc.id = a.account_id "
			  "WHERE d.name = $1 AND a.localpart_key = $2 FOR UPDATE OF acc", 2, p, error_r);
	if (res == NULL)
		goto end;
	if (PQntuples(res) == 0) {
		PQclear(res);
		ret = 0;
		goto end;
	}
	int64_t count = store_col_i64(res, 0, 2);
	char *acc = gn_pool_strdup(tmp, PQgetvalue(res, 0, 1));
	PQclear(res);
	if (count <= 1) {
		*error_r = store_errf("address %s is the last of account %s: remove the account instead",
				address, acc);
		goto end;
	}
	int64_t c = store_q_count("DELETE FROM gn_addresses a USING gn_domains d WHERE d.id = a.domain_id "
			    "AND d.name = $1 AND a.localpart_key = $2", 2, p, error_r);
	ret = c < 0 ? -1 : c > 0 ? 1 : 0;
end:
	ret = store_tx_end(&tx, ret, error_r);
out:
	gn_pool_free(&tmp);
	return ret;
}

static void address_from_parts(struct gn_pool *pool, const char *localpart,
			       const char *domain, const char **canonical_r,
			       const char **display_r)
{
	struct gn_addr *a = NULL;
	const char *err;
	if (gn_addr_from_parts(pool, localpart, domain, &a, &err) < 0) {
		/* stored addresses were valid when added */
		const char *s = gn_pool_printf(pool, "%s@%s", localpart, domain);
		if (canonical_r)
			*canonical_r = s;
		if (display_r)
			*display_r = s;
		return;
	}
	if (canonical_r)
		*canonical_r = gn_addr_to_string(pool, a);
	if (display_r)
		*display_r = gn_addr_to_display(pool, a);
}

int gn_store_address_list(struct gn_pool *pool, int64_t account_id,
			  struct gn_store_address ***list_r, size_t *count_r,
			  const char **error_r)
{
	const char *p[1] = { store_i64s(pool, account_id) };
	PGresult *res = store_q("SELECT a.localpart, d.name, a.account_id, acc.name FROM gn_addresses a "
			  "JOIN gn_domains d ON d.id = a.domain_id JOIN gn_accounts acc ON acc.id = a.account_id "
			  "WHERE a.account_id = $1 ORDER BY d.name, a.localpart_key", 1, p, error_r);
	if (res == NULL)
		return -1;
	size_t n = (size_t)PQntuples(res);
	struct gn_store_address **list = gn_pool_alloc(pool, (n + 1) * sizeof(*list));
	for (size_t i = 0; i < n; i++) {
		struct gn_store_address *a = list[i] = gn_pool_alloc(pool, sizeof(*a));
		address_from_parts(pool, PQgetvalue(res, (int)i, 0), PQgetvalue(res, (int)i, 1),
				   &a->address, &a->display);
		a->account_id = store_col_i64(res, (int)i, 2);
		a->account = store_col_str(pool, res, (int)i, 3);
	}
	PQclear(res);
	*list_r = list;
	*count_r = n;
	return 0;
}

int gn_store_address_lookup(struct gn_pool *pool, const struct gn_addr *addr,
			    int64_t *account_id_r, const char **canonical_r,
			    const char **error_r)
{
	if (addr == NULL || addr->domain == NULL || addr->domain[0] == '\0' || addr->domain[0] == '[')
		return 0;
	struct gn_addr *f = gn_addr_fold(pool, addr);
	const char *p[2] = { addr->domain, f->localpart };
	PGresult *res = store_q("SELECT a.account_id, a.localpart, d.catchall_separators "
			  "FROM gn_domains d LEFT JOIN gn_addresses a "
			  "ON a.domain_id = d.id AND a.localpart_key = $2 WHERE d.name = $1",
			  2, p, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;	/* not our domain */
	}
	if (PQgetisnull(res, 0, 0)) {
		const char *seps = store_col_str(pool, res, 0, 2);
		PQclear(res);
		struct gn_addr *s = gn_addr_strip_catchall(pool, addr, seps);
		if (s == addr)
			return 0;
		f = gn_addr_fold(pool, s);
		p[1] = f->localpart;
		res = store_q("SELECT a.account_id, a.localpart FROM gn_domains d JOIN gn_addresses a "
			"ON a.domain_id = d.id WHERE d.name = $1 AND a.localpart_key = $2", 2, p, error_r);
		if (res == NULL)
			return -1;
		if (PQntuples(res) == 0) {
			PQclear(res);
			return 0;
		}
	}
	if (account_id_r != NULL)
		*account_id_r = store_col_i64(res, 0, 0);
	if (canonical_r != NULL)
		address_from_parts(pool, PQgetvalue(res, 0, 1), addr->domain, canonical_r, NULL);
	PQclear(res);
	return 1;
}

/* ---- sending as an address ---- */

struct gn_store_send_as {
	int64_t account_id;
	const struct gn_addr *addr;
};

#define SEND_AS_TIMEOUT_MS 5000UL

int64_t gn_store_send_as_account(const struct gn_store_send_as *s)
{
	return s != NULL ? s->account_id : 0;
}

const struct gn_addr *gn_store_send_as_address(const struct gn_store_send_as *s)
{
	return s != NULL ? s->addr : NULL;
}

struct send_as_run {
	bool done;
	enum gn_hook_result result;
};

static void send_as_done(enum gn_hook_result result, const struct gn_hook_reply *reply,
			 void *data)
{
	struct send_as_run *run = data;
	(void)reply;
	run->done = true;
	run->result = result;
}

int gn_store_send_as_check(struct gn_pool *pool, int64_t account_id,
			   const struct gn_addr *addr, const char **error_r)
{
	int64_t found = 0;
	int r = gn_store_address_lookup(pool, addr, &found, NULL, error_r);
	if (r < 0)
		return -1;
	if (r > 0)
		return found == account_id ? 1 : 0;
	struct gn_hook_point *point = gn_hook_point_find(GN_STORE_SEND_AS);
	if (point == NULL)
		return 0;
	struct gn_store_send_as ctx = { account_id, addr };
	struct send_as_run run = { false, GN_HOOK_CONTINUE };
	struct gn_hook_call *call = gn_hook_run(point, &ctx, send_as_done, &run);
	if (!run.done) {
		/* The chain is synchronous by contract: ctx lives on this
		 * stack only. */
		gn_hook_cancel(call);
		gn_log(GN_LOG_WARN, "store", "event=send_as_hook_pending account=%lld",
		       (long long)account_id);
		*error_r = "a hook of account.send_as did not answer at once";
		return -1;
	}
	if (run.result == GN_HOOK_TEMPFAIL || run.result == GN_HOOK_DISCONNECT) {
		*error_r = "a hook of account.send_as failed temporarily";
		return -1;
	}
	return run.result == GN_HOOK_ACCEPT ? 1 : 0;
}

int store_send_as_register(void)
{
	const char *error;
	if (gn_hook_point_define(modules_core_ctx(), GN_STORE_SEND_AS, SEND_AS_TIMEOUT_MS,
				 GN_HOOK_CONTINUE, &error) < 0) {
		conf_error("%s", error);
		return -1;
	}
	return 0;
}
