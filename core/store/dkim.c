/*
 * core/store/dkim.c: the DKIM keys of the hosted domains (migration
 * 011_dkim.sql), and signing a message with the enabled keys of its From
 * domain (gn_store_dkim_sign(), gannet/store.h).  The signing itself is
 * the mail layer's (gannet/dkim.h); this file picks the keys.  The
 * commands that drive it are in cli-dkim.c.
 *
 * A private key leaves the database only to be loaded for signing; it is
 * never logged, printed or put into an error message.
 */
#include "store/internal.h"

#include <string.h>

/* RFC 6376 3.1: a selector is one or more sub-domain labels. */
static const char *selector_norm(struct gn_pool *pool, const char *sel, const char **error_r)
{
	size_t len = sel ? strlen(sel) : 0, label = 0;
	if (len == 0 || len > 200) {
		*error_r = "a selector has 1 to 200 characters";
		return NULL;
	}
	char *s = gn_pool_strdup(pool, sel);
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c >= 'A' && c <= 'Z')
			s[i] = c = (char)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				goto bad;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			   (c == '-' && label > 0)) {
			if (++label > 63)
				goto bad;
		} else {
			goto bad;
		}
	}
	if (label == 0 || s[len - 1] == '-')
		goto bad;
	return s;
bad:
	*error_r = store_errf("invalid selector \"%s\": letters, digits and \"-\" in "
			      "dot-separated labels of at most 63", sel);
	return NULL;
}

/* The domain's id and A-label name: 1, 0 unknown (with *error_r), -1. */
static int domain_lookup(struct gn_pool *pool, const char *domain, int64_t *id_r,
			 const char **ascii_r, const char **error_r)
{
	struct gn_store_domain *d;
	int r = gn_store_domain_find(pool, domain, &d, error_r);
	if (r == 0)
		*error_r = store_errf("unknown domain: %s", domain ? domain : "");
	if (r <= 0)
		return r;
	*id_r = d->id;
	*ascii_r = d->name;
	return 1;
}

/* ---- the signing keys a process keeps ----
 *
 * Signing a message asked the database for its domain's keys and parsed
 * them each time.  A process that signs (a worker) keeps the loaded keys
 * of the domains it signed for (SIGN_CACHE_MAX at most, the oldest out
 * first) for SIGN_CACHE_S at most, and forgets them all when a key is
 * added, removed, enabled or disabled anywhere: those commands NOTIFY
 * DKIM_NOTIFY_CHANNEL, which every process that keeps keys LISTENs to
 * (again after a reconnection, db.c).  So a change reaches the next
 * message a worker signs once the notification came in (the loop's next
 * turn), and within SIGN_CACHE_S even if it got lost.  A process whose
 * LISTEN fails keeps nothing. */
#define SIGN_CACHE_MAX 64
#define SIGN_CACHE_S 60
#define DKIM_NOTIFY_CHANNEL "gn_dkim"

struct sign_entry {
	char *domain;			/* as asked: ASCII, lower case; NULL: free */
	time_t at;
	size_t n;
	char **names, **selectors;	/* each key's d= and s= */
	struct gn_dkim_key **keys;
};

static struct sign_entry sign_cache[SIGN_CACHE_MAX];
static int sign_listen = -1;	/* -1 not tried, 0 failed, 1 listening */

static void sign_entry_clear(struct sign_entry *e)
{
	for (size_t i = 0; i < e->n; i++) {
		gn_free(e->names[i]);
		gn_free(e->selectors[i]);
		gn_dkim_key_free(&e->keys[i]);
	}
	gn_free(e->names);
	gn_free(e->selectors);
	gn_free(e->keys);
	gn_free(e->domain);
	memset(e, 0, sizeof(*e));
}

static void sign_cache_clear(void)
{
	for (size_t i = 0; i < SIGN_CACHE_MAX; i++)
		sign_entry_clear(&sign_cache[i]);
}

static void sign_notified(const char *channel, const char *payload, void *data)
{
	(void)channel;
	(void)payload;
	(void)data;
	sign_cache_clear();
}

static bool sign_cache_usable(void)
{
	if (sign_listen < 0) {
		const char *err;
		sign_listen = gn_db_listen(DKIM_NOTIFY_CHANNEL, sign_notified, NULL, &err) == 0;
		if (!sign_listen)
			gn_log(GN_LOG_DEBUG, "store", "dkim: keys not kept: %s", err);
	}
	return sign_listen == 1;
}

static struct sign_entry *sign_cache_find(const char *domain, time_t now)
{
	for (size_t i = 0; i < SIGN_CACHE_MAX; i++) {
		struct sign_entry *e = &sign_cache[i];
		if (e->domain == NULL || strcmp(e->domain, domain) != 0)
			continue;
		if (now < e->at || now - e->at >= SIGN_CACHE_S) {
			sign_entry_clear(e);
			return NULL;
		}
		return e;
	}
	return NULL;
}

/* Keeps the loaded keys of list[0..n) for domain; takes the keys (the
 * list's key pointers are set to NULL). */
static void sign_cache_put(const char *domain, struct store_dkim_key **list, size_t n, time_t now)
{
	struct sign_entry *e = &sign_cache[0];
	for (size_t i = 0; i < SIGN_CACHE_MAX; i++) {
		if (sign_cache[i].domain == NULL) {
			e = &sign_cache[i];
			break;
		}
		if (sign_cache[i].at < e->at)
			e = &sign_cache[i];
	}
	sign_entry_clear(e);
	e->domain = gn_strdup(domain);
	e->at = now;
	e->n = n;
	e->names = gn_calloc(n + 1, sizeof(*e->names));
	e->selectors = gn_calloc(n + 1, sizeof(*e->selectors));
	e->keys = gn_calloc(n + 1, sizeof(*e->keys));
	for (size_t i = 0; i < n; i++) {
		e->names[i] = gn_strdup(list[i]->domain);
		e->selectors[i] = gn_strdup(list[i]->selector);
		e->keys[i] = list[i]->key;
		list[i]->key = NULL;
	}
}

/* After a change to the keys: every process forgets the ones it keeps. */
static void keys_changed(void)
{
	const char *err;
	sign_cache_clear();
	if (gn_db_notify(DKIM_NOTIFY_CHANNEL, "", &err) < 0)
		gn_log(GN_LOG_WARN, "store", "dkim: the change is not announced (%s): workers use "
		       "the keys they had for up to %d s", err, SIGN_CACHE_S);
}

const char *store_dkim_dns_name(struct gn_pool *pool, const char *domain, const char *selector)
{
	return gn_pool_printf(pool, "%s._domainkey.%s.", selector, domain);
}

int store_dkim_add(struct gn_pool *pool, const char *domain, const char *selector,
		   enum gn_dkim_algorithm alg, struct store_dkim_key **key_r, const char **error_r)
{
	int64_t id;
	const char *ascii;
	const char *sel = selector_norm(pool, selector, error_r);
	if (sel == NULL)
		return -1;
	int r = domain_lookup(pool, domain, &id, &ascii, error_r);
	if (r <= 0)
		return -1;
	char *pem = NULL;
	struct gn_dkim_key *key = NULL;
	if (gn_dkim_key_generate(alg, 0, &pem, error_r) < 0)
		return -1;
	if (gn_dkim_key_load(pem, strlen(pem), &key, error_r) < 0) {
		memset(pem, 0, strlen(pem));
		gn_free(pem);
		return -1;
	}
	const char *p[4] = { store_i64s(pool, id), sel, gn_dkim_algorithm_name(alg), pem };
	PGresult *res = store_q("INSERT INTO gn_dkim_keys (domain_id, selector, algorithm, private_key) "
				"VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING "
				"RETURNING extract(epoch FROM created_at)::bigint",
				4, p, error_r);
	memset(pem, 0, strlen(pem));
	gn_free(pem);
	int ret = -1;
	if (res == NULL)
		goto out;
	if (PQntuples(res) != 1) {
		*error_r = store_errf("selector %s exists for %s", sel, ascii);
		PQclear(res);
		goto out;
	}
	struct store_dkim_key *k = gn_pool_alloc(pool, sizeof(*k));
	k->domain = ascii;
	k->selector = sel;
	k->alg = alg;
	k->enabled = true;
	k->created = (time_t)store_col_i64(res, 0, 0);
	k->record = gn_dkim_key_record(pool, key);
	PQclear(res);
	gn_log(GN_LOG_INFO, "store", "dkim: added %s key %s for %s",
	       gn_dkim_algorithm_key_type(alg), sel, ascii);
	keys_changed();
	*key_r = k;
	ret = 0;
out:
	gn_dkim_key_free(&key);
	return ret;
}

int store_dkim_remove(const char *domain, const char *selector, const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	int64_t id;
	const char *ascii;
	int ret = -1;
	const char *sel = selector_norm(pool, selector, error_r);
	if (sel == NULL || domain_lookup(pool, domain, &id, &ascii, error_r) <= 0)
		goto out;
	const char *p[2] = { store_i64s(pool, id), sel };
	int64_t c = store_q_count("DELETE FROM gn_dkim_keys WHERE domain_id = $1 AND selector = $2",
				  2, p, error_r);
	ret = c < 0 ? -1 : c > 0 ? 1 : 0;
	if (ret == 1) {
		gn_log(GN_LOG_INFO, "store", "dkim: removed key %s of %s", sel, ascii);
		keys_changed();
	}
out:
	gn_pool_free(&pool);
	return ret;
}

int store_dkim_set_enabled(const char *domain, const char *selector, bool enabled,
			   const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	int64_t id;
	const char *ascii;
	int ret = -1;
	const char *sel = selector_norm(pool, selector, error_r);
	if (sel == NULL || domain_lookup(pool, domain, &id, &ascii, error_r) <= 0)
		goto out;
	const char *p[3] = { store_i64s(pool, id), sel, enabled ? "true" : "false" };
	int64_t c = store_q_count("UPDATE gn_dkim_keys SET enabled = $3 "
				  "WHERE domain_id = $1 AND selector = $2", 3, p, error_r);
	ret = c < 0 ? -1 : c > 0 ? 1 : 0;
	if (ret == 1) {
		gn_log(GN_LOG_INFO, "store", "dkim: key %s of %s %s", sel, ascii,
		       enabled ? "enabled" : "disabled");
		keys_changed();
	}
out:
	gn_pool_free(&pool);
	return ret;
}

/* The keys of the rows (domain, selector, algorithm, private key, created,
 * enabled), loaded when with_keys, with their records when with_record
 * too; the private keys are wiped from res. */
static int keys_from_rows(struct gn_pool *pool, PGresult *res, bool with_keys, bool with_record,
			  struct store_dkim_key ***list_r, size_t *count_r, const char **error_r)
{
	size_t n = (size_t)PQntuples(res);
	struct store_dkim_key **list = gn_pool_alloc(pool, (n + 1) * sizeof(*list));
	int ret = 0;
	for (size_t i = 0; i < n; i++) {
		struct store_dkim_key *k = gn_pool_alloc(pool, sizeof(*k));
		k->domain = store_col_str(pool, res, (int)i, 0);
		k->selector = store_col_str(pool, res, (int)i, 1);
		if (gn_dkim_algorithm_parse(PQgetvalue(res, (int)i, 2), &k->alg) < 0)
			k->alg = GN_DKIM_RSA_SHA256;
		char *pem = PQgetvalue(res, (int)i, 3);
		size_t pemlen = (size_t)PQgetlength(res, (int)i, 3);
		if (with_keys && ret == 0) {
			const char *err;
			if (gn_dkim_key_load(pem, pemlen, &k->key, &err) < 0) {
				*error_r = store_errf("DKIM key %s of %s in the database cannot be used: %s",
						      k->selector, k->domain, err);
				ret = -1;
			} else if (with_record) {
				k->record = gn_dkim_key_record(pool, k->key);
			}
		}
		memset(pem, 0, pemlen);
		k->created = (time_t)store_col_i64(res, (int)i, 4);
		k->enabled = strcmp(PQgetvalue(res, (int)i, 5), "t") == 0;
		list[i] = k;
	}
	*list_r = list;
	*count_r = n;
	if (ret < 0)
		store_dkim_keys_free(list, n);
	return ret;
}

void store_dkim_keys_free(struct store_dkim_key **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		gn_dkim_key_free(&list[i]->key);
}

#define KEY_COLS "d.name, k.selector, k.algorithm, k.private_key, " \
	"extract(epoch FROM k.created_at)::bigint, k.enabled"

int store_dkim_list(struct gn_pool *pool, const char *domain, const char *selector,
		    bool with_keys, struct store_dkim_key ***list_r, size_t *count_r,
		    const char **error_r)
{
	const char *p[2] = { NULL, NULL };
	int64_t id = 0;
	const char *ascii;
	if (domain != NULL) {
		if (domain_lookup(pool, domain, &id, &ascii, error_r) <= 0)
			return -1;
		p[0] = store_i64s(pool, id);
	}
	if (selector != NULL && (p[1] = selector_norm(pool, selector, error_r)) == NULL)
		return -1;
	/* Without the keys the private key column is read as ''. */
	const char *sql = with_keys
		? "SELECT " KEY_COLS " FROM gn_dkim_keys k JOIN gn_domains d ON d.id = k.domain_id "
		  "WHERE ($1::bigint IS NULL OR k.domain_id = $1) AND ($2::text IS NULL OR k.selector = $2) "
		  "ORDER BY d.name, k.selector"
		: "SELECT d.name, k.selector, k.algorithm, '', "
		  "extract(epoch FROM k.created_at)::bigint, k.enabled "
		  "FROM gn_dkim_keys k JOIN gn_domains d ON d.id = k.domain_id "
		  "WHERE ($1::bigint IS NULL OR k.domain_id = $1) AND ($2::text IS NULL OR k.selector = $2) "
		  "ORDER BY d.name, k.selector";
	PGresult *res = store_q(sql, 2, p, error_r);
	if (res == NULL)
		return -1;
	int r = keys_from_rows(pool, res, with_keys, with_keys, list_r, count_r, error_r);
	PQclear(res);
	return r;
}

int gn_store_dkim_sign(struct gn_dkim_signer *signer, const char *domain, time_t now,
		       struct gn_buf *out, const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	struct store_dkim_key **list = NULL;
	size_t n = 0;
	int ret = -1;
	PGresult *res;
	char *lower = NULL;
	/* An ASCII name is the domain's A-label name in lower case: the keys
	 * in one query, kept by the process.  Another (a U-label) is looked
	 * up first. */
	bool ascii = domain != NULL && domain[0] != '\0';
	for (const char *c = domain; ascii && *c != '\0'; c++)
		if ((unsigned char)*c >= 0x80)
			ascii = false;
	time_t wall = time(NULL);
	if (ascii) {
		lower = gn_pool_strdup(pool, domain);
		for (char *c = lower; *c != '\0'; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		struct sign_entry *e = sign_cache_usable() ? sign_cache_find(lower, wall) : NULL;
		if (e != NULL) {
			for (size_t i = 0; i < e->n; i++) {
				if (gn_dkim_signer_sign(signer, e->names[i], e->selectors[i], e->keys[i], now, 0,
							out, &err) < 0) {
					*error_r = store_errf("DKIM signing for %s with %s failed: %s", e->names[i],
							      e->selectors[i], err);
					goto out;
				}
			}
			ret = (int)e->n;
			goto out;
		}
		const char *p[1] = { lower };
		res = store_q("SELECT " KEY_COLS " FROM gn_dkim_keys k "
			      "JOIN gn_domains d ON d.id = k.domain_id "
			      "WHERE d.name = $1 AND k.enabled ORDER BY k.selector", 1, p, error_r);
	} else {
		struct gn_store_domain *d;
		int found = gn_store_domain_find(pool, domain, &d, error_r);
		if (found <= 0) {
			ret = found;
			goto out;
		}
		const char *p[1] = { store_i64s(pool, d->id) };
		res = store_q("SELECT " KEY_COLS " FROM gn_dkim_keys k "
			      "JOIN gn_domains d ON d.id = k.domain_id "
			      "WHERE k.domain_id = $1 AND k.enabled ORDER BY k.selector", 1, p, error_r);
	}
	if (res == NULL)
		goto out;
	/* Signing needs the keys, not their DNS records. */
	int r = keys_from_rows(pool, res, true, false, &list, &n, error_r);
	PQclear(res);
	if (r < 0) {
		gn_log(GN_LOG_ERROR, "store", "dkim: %s", *error_r);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (gn_dkim_signer_sign(signer, list[i]->domain, list[i]->selector, list[i]->key, now, 0,
					out, &err) < 0) {
			*error_r = store_errf("DKIM signing for %s with %s failed: %s", list[i]->domain,
					      list[i]->selector, err);
			goto out;
		}
	}
	ret = (int)n;
	if (ascii && sign_listen == 1)
		sign_cache_put(lower, list, n, wall);
out:
	store_dkim_keys_free(list, n);
	gn_pool_free(&pool);
	return ret;
}
