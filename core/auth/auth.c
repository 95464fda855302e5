/*
 * core/auth/auth.c: logins, the failed-auth limiter, the record of auth
 * attempts (gannet/auth.h), and the auth settings.
 *
 * How the parts fit:
 *   - gn_auth_lookup() finds the account of a login name (an address).
 *   - An attempt runs from gn_auth_begin() to gn_auth_end().  Begin counts
 *     it as a failure at once, in one statement that increments the
 *     counters of the client's IP and networks and reads them back, so
 *     parallel attempts see each other (row locks order them): no more
 *     pass than the limit allows.  End settles it: a success clears the
 *     counters (as mox), a failure stays counted, an attempt that checked
 *     nothing is taken back in the windows it was counted in.
 *   - The counters live in gn_auth_failures, per network and fixed window,
 *     so every process and node shares them.  Windows are aligned on the
 *     database's clock (epoch / period), as mox truncates time to the
 *     window.
 *   - Attempts are aggregated rows in gn_auth_attempts, pruned hourly by
 *     the runner job "auth-prune".
 *   - gn_auth_login() is the whole password login (HTTP Basic, web forms);
 *     the SASL server (sasl.c) runs the same steps for its mechanisms.
 *
 * All SQL of the limiter and the attempts is in this file; credentials
 * are in credentials.c, TLS public keys in tlspubkey.c.
 */
#include "auth/internal.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LOGIN_RECORD_MAX 256

/* ---- settings ---- */

struct auth_settings auth_set = {
	/* mox's defaults (mox.md 9.6). */
	.minute = { 10, 30, 90 },
	.day = { 50, 150, 450 },
	.keep_ms = 30LL * 86400 * 1000,
	.max_failures = 10000,
	/* mox.md 9.7: SCRAM-SHA-256 4096, SCRAM-SHA-1 8192 iterations. */
	.iter_sha256 = 4096,
	.iter_sha1 = 8192,
	.cram_md5 = true,
	.sasl_max_response = 8192,
	.sasl_max_steps = 8,
};

static const char *const result_names[] = {
	[GN_AUTH_OK] = "ok",
	[GN_AUTH_BADUSER] = "baduser",
	[GN_AUTH_BADPASSWORD] = "badpassword",
	[GN_AUTH_LOGINDISABLED] = "logindisabled",
	[GN_AUTH_RATELIMITED] = "ratelimited",
	[GN_AUTH_ERROR] = "error",
	[GN_AUTH_ABORTED] = "aborted",
	[GN_AUTH_BADPROTOCOL] = "badprotocol",
	[GN_AUTH_BADCHANBIND] = "badchanbind",
	[GN_AUTH_BADAUTHZ] = "badauthz",
};

const char *gn_auth_result_name(enum gn_auth_result result)
{
	if ((unsigned)result < sizeof(result_names) / sizeof(result_names[0]))
		return result_names[result];
	return "error";
}

/* ---- small helpers ---- */

bool gn_auth_mem_equal(const void *a, const void *b, size_t len)
{
	/* gnutls_memcmp() takes time that depends on n only. */
	return gnutls_memcmp(a, b, len) == 0;
}

int auth_err(const char **error_r, const char *msg)
{
	if (error_r != NULL)
		*error_r = msg;
	return -1;
}

/* The client IP in canonical text (IPv4-mapped IPv6 becomes IPv4).  Returns
 * 4 or 6, or 0 when ip is NULL or no address. */
static int ip_normalise(const char *ip, char out[INET6_ADDRSTRLEN])
{
	unsigned char a[16];
	if (ip == NULL)
		return 0;
	if (inet_pton(AF_INET, ip, a) == 1) {
		inet_ntop(AF_INET, a, out, INET6_ADDRSTRLEN);
		return 4;
	}
	if (inet_pton(AF_INET6, ip, a) != 1)
		return 0;
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (memcmp(a, mapped, 12) == 0) {
		inet_ntop(AF_INET, a + 12, out, INET6_ADDRSTRLEN);
		return 4;
	}
	inet_ntop(AF_INET6, a, out, INET6_ADDRSTRLEN);
	return 6;
}

/* ---- accounts ---- */

int64_t gn_auth_account_id(const struct gn_auth_account *account)
{
	return account != NULL ? account->id : 0;
}

const char *gn_auth_account_name(const struct gn_auth_account *account)
{
	return account != NULL ? account->name : NULL;
}

const char *gn_auth_account_address(const struct gn_auth_account *account)
{
	return account != NULL ? account->address : NULL;
}

const char *gn_auth_account_login_disabled(const struct gn_auth_account *account)
{
	return account != NULL ? account->login_disabled : NULL;
}

static struct gn_auth_account *account_from_row(struct gn_pool *pool,
						const PGresult *res, int row)
{
	struct gn_auth_account *a = gn_pool_alloc(pool, sizeof(*a));
	a->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
	a->name = gn_pool_strdup(pool, PQgetvalue(res, row, 1));
	a->login_disabled = PQgetisnull(res, row, 2) ? NULL
		: gn_pool_strdup(pool, PQgetvalue(res, row, 2));
	struct gn_addr *addr;
	const char *err;
	if (gn_addr_from_parts(pool, PQgetvalue(res, row, 3), PQgetvalue(res, row, 4),
			       &addr, &err) == 0)
		a->address = gn_addr_to_string(pool, addr);
	else
		a->address = gn_pool_printf(pool, "%s@%s", PQgetvalue(res, row, 3),
					    PQgetvalue(res, row, 4));
	return a;
}

int gn_auth_lookup(struct gn_pool *pool, const char *login,
		   struct gn_auth_account **account_r, const char **error_r)
{
	struct gn_addr *addr;
	const char *err;

	/* gn_addr_parse() normalises the localpart to NFC and the domain to
	 * A-labels; the lookup key is the lower-cased localpart, as stored. */
	if (login == NULL || gn_addr_parse(pool, login, strlen(login), &addr, &err) < 0)
		return 0;
	struct gn_addr *key = gn_addr_fold(pool, addr);
	const char *params[] = { key->domain, key->localpart };
	PGresult *res = db_query(
		"SELECT a.id, a.name, a.login_disabled, ad.localpart, d.name "
		"FROM gn_addresses ad JOIN gn_domains d ON d.id = ad.domain_id "
		"JOIN gn_accounts a ON a.id = ad.account_id "
		"WHERE d.name = $1 AND ad.localpart_key = $2", 2, params, error_r);
	if (res == NULL)
		return -1;
	int n = PQntuples(res);
	if (n > 0)
		*account_r = account_from_row(pool, res, 0);
	PQclear(res);
	return n > 0 ? 1 : 0;
}

/* ---- the limiter ---- */

struct gn_auth_attempt {
	struct gn_pool *pool;
	struct gn_auth_client client;	/* strings copied into pool */
	char ip[INET6_ADDRSTRLEN];	/* normalised; "" when local */
	int family;			/* 4, 6, 0: local, no limiter */
	bool counted;			/* begin incremented the counters */
	bool ended;
	char minute_slot[24], day_slot[24];
};

/* The three masks of an address family, as a PostgreSQL int[] literal. */
static const char *masks_for(int family)
{
	return family == 4 ? "{32,26,21}" : "{64,48,32}";
}

/* The client's networks at the three levels, with their level (1..3). */
#define NETS_CTE \
	"WITH n AS (SELECT network(set_masklen($1::inet, m)) AS net, lvl::int AS lvl " \
	"FROM unnest($2::int[]) WITH ORDINALITY AS u(m, lvl)) "

/* Counts the attempt in both windows at the three levels and tells
 * whether any counter is now past its limit.  The increments take row
 * locks in one order (ORDER BY), so parallel attempts queue instead of
 * deadlocking, and each one sees the ones before it.  Returns 1 within
 * the limits, 0 past them, -1 on error. */
static int limiter_begin(struct gn_auth_attempt *a, const char **error_r)
{
	char minute[64], day[64];
	snprintf(minute, sizeof(minute), "{%lld,%lld,%lld}", auth_set.minute[0],
		 auth_set.minute[1], auth_set.minute[2]);
	snprintf(day, sizeof(day), "{%lld,%lld,%lld}", auth_set.day[0],
		 auth_set.day[1], auth_set.day[2]);
	const char *params[] = { a->ip, masks_for(a->family), minute, day };
	PGresult *res = db_query(
		NETS_CTE ", "
		"p AS (SELECT period, floor(extract(epoch FROM now()) / period)::bigint AS slot "
		"      FROM (VALUES (60), (86400)) AS v(period)), "
		"up AS (INSERT INTO gn_auth_failures (net, period, slot, failures, expires_at) "
		"       SELECT n.net, p.period, p.slot, 1, to_timestamp((p.slot + 1) * p.period) "
		"       FROM n CROSS JOIN p ORDER BY n.net, p.period "
		"       ON CONFLICT (net, period, slot) DO UPDATE "
		"       SET failures = gn_auth_failures.failures + 1 "
		"       RETURNING net, period, failures) "
		"SELECT (SELECT count(*) FROM up JOIN n ON up.net = n.net "
		"        WHERE up.failures > CASE WHEN up.period = 60 THEN ($3::int[])[n.lvl] "
		"                                 ELSE ($4::int[])[n.lvl] END), "
		"       (SELECT slot FROM p WHERE period = 60), "
		"       (SELECT slot FROM p WHERE period = 86400)", 4, params, error_r);
	if (res == NULL)
		return -1;
	long over = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	snprintf(a->minute_slot, sizeof(a->minute_slot), "%s", PQgetvalue(res, 0, 1));
	snprintf(a->day_slot, sizeof(a->day_slot), "%s", PQgetvalue(res, 0, 2));
	PQclear(res);
	a->counted = true;
	return over > 0 ? 0 : 1;
}

/* Takes back what limiter_begin() counted, in the windows it counted in
 * (a window may have passed meanwhile). */
static int limiter_undo(const struct gn_auth_attempt *a, const char **error_r)
{
	const char *params[] = { a->ip, masks_for(a->family), a->minute_slot,
				 a->day_slot };
	return gn_db_exec(
		NETS_CTE
		"UPDATE gn_auth_failures SET failures = failures - 1 "
		"WHERE (net, period, slot) IN (SELECT f.net, f.period, f.slot "
		"  FROM gn_auth_failures f JOIN n ON f.net = n.net "
		"  WHERE ((f.period = 60 AND f.slot = $3::bigint) "
		"      OR (f.period = 86400 AND f.slot = $4::bigint)) AND f.failures > 0 "
		"  ORDER BY f.net, f.period FOR UPDATE)", 4, params, error_r);
}

static int limiter_reset(const struct gn_auth_attempt *a, const char **error_r)
{
	/* As mox: a success clears the counters of all three levels. */
	const char *params[] = { a->ip, masks_for(a->family) };
	return gn_db_exec(
		NETS_CTE
		"DELETE FROM gn_auth_failures WHERE (net, period, slot) IN ("
		"  SELECT f.net, f.period, f.slot FROM gn_auth_failures f JOIN n ON f.net = n.net "
		"  ORDER BY f.net, f.period, f.slot FOR UPDATE)", 2, params, error_r);
}

/* The size of struct gn_auth_client in ABI 1.0: the smallest a module may
 * pass. */
#define CLIENT_SIZE_1_0 (offsetof(struct gn_auth_client, flags) + sizeof(unsigned))

int gn_auth_begin(struct gn_pool *pool, const struct gn_auth_client *client,
		  struct gn_auth_attempt **attempt_r, const char **error_r)
{
	if (client == NULL || client->size < CLIENT_SIZE_1_0)
		return auth_err(error_r, "gn_auth_begin: struct gn_auth_client without "
				"its size (set .size = sizeof(struct gn_auth_client))");
	struct gn_auth_attempt *a = gn_pool_alloc(pool, sizeof(*a));
	memset(a, 0, sizeof(*a));
	a->pool = pool;
	/* Only what the module's size covers; the rest stays zero. */
	memcpy(&a->client, client, client->size < sizeof(a->client)
	       ? client->size : sizeof(a->client));
	a->client.size = sizeof(a->client);
	a->client.remote_ip = client->remote_ip != NULL
		? gn_pool_strdup(pool, client->remote_ip) : NULL;
	a->client.protocol = gn_pool_strdup(pool, client->protocol != NULL
					    ? client->protocol : "unknown");
	a->client.mechanism = gn_pool_strdup(pool, client->mechanism != NULL
					     ? client->mechanism : "unknown");

	a->family = ip_normalise(client->remote_ip, a->ip);
	if (a->family == 0) {
		/* Fail closed: only an explicit local caller goes without
		 * the limiter, never a client whose address did not parse. */
		if (!(a->client.flags & GN_AUTH_CLIENT_LOCAL) || client->remote_ip != NULL) {
			gn_log(GN_LOG_WARN, "auth", "event=auth_refused protocol=%s "
			       "reason=no_client_ip ip=%s", a->client.protocol,
			       gn_log_quote(0, client->remote_ip != NULL
					    ? client->remote_ip : "-"));
			return auth_err(error_r, "no usable client IP address");
		}
		a->ip[0] = '\0';
		*attempt_r = a;
		return 1;
	}
	int r = limiter_begin(a, error_r);
	if (r < 0)
		return -1;
	*attempt_r = a;
	return r;
}

/* ---- attempt records ---- */

char *auth_login_for_record(struct gn_pool *pool, const char *login)
{
	/* Valid UTF-8 without controls, at most LOGIN_RECORD_MAX bytes. */
	return text_clean(pool, login, login != NULL ? strlen(login) : 0, LOGIN_RECORD_MAX);
}

/* The key of an aggregated attempt row: SHA-256 over length-prefixed
 * fields, in hex. */
static void attempt_key(char out[65], const char *const *fields, size_t n)
{
	gnutls_hash_hd_t h;
	unsigned char d[32];
	if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0) {
		memset(d, 0, sizeof(d));
	} else {
		for (size_t i = 0; i < n; i++) {
			const char *f = fields[i] != NULL ? fields[i] : "";
			char len[24];
			int l = snprintf(len, sizeof(len), "%zu:", strlen(f));
			gnutls_hash(h, len, (size_t)l);
			gnutls_hash(h, f, strlen(f));
		}
		gnutls_hash_deinit(h, d);
	}
	hex_encode(out, d, sizeof(d));
}

static int attempt_record(const struct gn_auth_attempt *a,
			  const struct gn_auth_account *account,
			  const char *login, enum gn_auth_result result,
			  const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	char id[24] = "", key[65];
	if (account != NULL)
		snprintf(id, sizeof(id), "%lld", (long long)account->id);
	const char *ip = a->family != 0 ? a->ip : NULL;
	const char *fields[] = { id, auth_login_for_record(pool, login), ip != NULL ? ip : "",
				 a->client.protocol, a->client.mechanism,
				 gn_auth_result_name(result) };
	attempt_key(key, fields, 6);
	const char *params[] = { key, account != NULL ? id : NULL, fields[1], ip,
				 fields[3], fields[4], fields[5] };
	int r = gn_db_exec(
		"INSERT INTO gn_auth_attempts (attempt_key, account_id, login, remote_ip, "
		"protocol, mechanism, result) VALUES (decode($1, 'hex'), $2, $3, $4::inet, $5, $6, $7) "
		"ON CONFLICT (attempt_key) DO UPDATE SET last_at = now(), "
		"count = gn_auth_attempts.count + 1", 7, params, error_r);
	gn_pool_free(&pool);
	return r;
}

int gn_auth_end(struct gn_auth_attempt *a, const struct gn_auth_account *account,
		const char *login, enum gn_auth_result result, const char **error_r)
{
	int ret = 0;
	const char *err = NULL;

	if (a == NULL || a->ended)
		return 0;
	a->ended = true;
	if (attempt_record(a, account, login, result, &err) < 0)
		ret = -1;
	if (a->counted) {
		int r;
		switch (result) {
		case GN_AUTH_OK:
			r = limiter_reset(a, ret < 0 ? NULL : &err);
			break;
		case GN_AUTH_BADUSER:
		case GN_AUTH_BADPASSWORD:
		case GN_AUTH_BADPROTOCOL:
		case GN_AUTH_BADCHANBIND:
		case GN_AUTH_BADAUTHZ:
			r = 0;	/* counted when it began */
			break;
		default:
			/* Nothing was checked, or the password was right
			 * (login disabled): not a failure. */
			r = limiter_undo(a, ret < 0 ? NULL : &err);
			break;
		}
		if (r < 0)
			ret = -1;
	}
	if (ret < 0 && error_r != NULL)
		*error_r = err;
	gn_log(result == GN_AUTH_OK ? GN_LOG_DEBUG : GN_LOG_INFO, "auth",
	       "event=auth result=%s protocol=%s mech=%s ip=%s account=%s",
	       gn_auth_result_name(result), a->client.protocol, a->client.mechanism,
	       a->family ? a->ip : "-",
	       account != NULL ? gn_log_quote(0, account->name) : "-");
	return ret;
}

/* ---- password logins ---- */

enum gn_auth_result gn_auth_login(struct gn_pool *pool,
				  const struct gn_auth_client *client,
				  const char *login, const char *password,
				  size_t password_len,
				  struct gn_auth_account **account_r,
				  const char **error_r)
{
	struct gn_auth_account *account = NULL;
	struct gn_auth_attempt *attempt;
	enum gn_auth_result result;
	const char *err = NULL;
	char *prep = NULL;

	*account_r = NULL;
	int r = gn_auth_begin(pool, client, &attempt, &err);
	if (r < 0) {
		if (error_r != NULL)
			*error_r = err;
		return GN_AUTH_ERROR;
	}
	if (r == 0) {
		result = GN_AUTH_RATELIMITED;
		goto done;
	}
	r = gn_auth_lookup(pool, login, &account, &err);
	if (r < 0) {
		result = GN_AUTH_ERROR;
		goto done;
	}
	const char *perr;
	bool prepared = password_prepare(password, password_len, &prep, &perr) == 0;
	if (r == 0) {
		/* The time of a real check, so timing does not tell which
		 * logins exist. */
		credentials_dummy_check(prepared ? prep : "");
		result = GN_AUTH_BADUSER;
		goto done;
	}
	if (!prepared) {
		credentials_dummy_check("");
		result = GN_AUTH_BADPASSWORD;
		goto done;
	}
	r = credentials_verify_prepared(account->id, prep, &err);
	if (r < 0)
		result = GN_AUTH_ERROR;
	else if (r == 0)
		result = GN_AUTH_BADPASSWORD;
	/* As mox: the disabled flag is told only to who knows the password. */
	else if (account->login_disabled != NULL)
		result = GN_AUTH_LOGINDISABLED;
	else
		result = GN_AUTH_OK;
done:
	secret_free(prep);
	if (result == GN_AUTH_ERROR) {
		if (error_r != NULL)
			*error_r = err != NULL ? gn_pool_strdup(pool, err) : "error";
	}
	(void)gn_auth_end(attempt, result == GN_AUTH_BADUSER ? NULL : account,
			  login, result, NULL);
	if (result == GN_AUTH_OK || result == GN_AUTH_LOGINDISABLED)
		*account_r = account;
	return result;
}

/* ---- pruning ---- */

static long exec_count(const char *sql, int n, const char *const *params,
		       const char **error_r)
{
	PGresult *res = db_query(sql, n, params, error_r);
	if (res == NULL)
		return -1;
	long c = strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return c;
}

long gn_auth_prune(const char **error_r)
{
	char keep[32], max[32];
	snprintf(keep, sizeof(keep), "%lld", auth_set.keep_ms / 1000);
	snprintf(max, sizeof(max), "%lld", auth_set.max_failures);
	const char *p1[] = { keep };
	const char *p2[] = { max };
	long a = exec_count("DELETE FROM gn_auth_attempts "
			    "WHERE last_at < now() - make_interval(secs => $1::bigint)",
			    1, p1, error_r);
	if (a < 0)
		return -1;
	/* Failure rows beyond the cap, per account; unknown accounts (NULL)
	 * form one partition. */
	long b = exec_count("DELETE FROM gn_auth_attempts a USING ("
			    "SELECT attempt_key, row_number() OVER (PARTITION BY account_id "
			    "ORDER BY last_at DESC, attempt_key) AS rn FROM gn_auth_attempts "
			    "WHERE result <> 'ok') x "
			    "WHERE a.attempt_key = x.attempt_key AND x.rn > $1::bigint",
			    1, p2, error_r);
	if (b < 0)
		return -1;
	long c = exec_count("DELETE FROM gn_auth_failures WHERE expires_at <= now()",
			    0, NULL, error_r);
	if (c < 0)
		return -1;
	return a + b + c;
}

static void prune_job(void *data)
{
	(void)data;
	const char *error;
	long n = gn_auth_prune(&error);
	if (n < 0)
		gn_log(GN_LOG_WARN, "auth", "event=prune_failed error=%s",
		       gn_log_quote(0, error));
	else if (n > 0)
		gn_log(GN_LOG_DEBUG, "auth", "event=pruned rows=%ld", n);
}

/* ---- register ---- */

static void read_settings(void)
{
	/* The top-level group "auth" is the core's: reading it through the
	 * section getters marks it, so conf_check_unused() accepts it. */
	struct gn_config *c = conf_module_section("auth");
	static const char *const minute[] = { "failures_per_minute",
		"failures_per_minute_net", "failures_per_minute_wide" };
	static const char *const day[] = { "failures_per_day",
		"failures_per_day_net", "failures_per_day_wide" };
	static const long long dmin[] = { 10, 30, 90 }, dday[] = { 50, 150, 450 };
	for (int i = 0; i < 3; i++) {
		gn_config_int(c, minute[i], dmin[i], 1, 1000000000, &auth_set.minute[i]);
		gn_config_int(c, day[i], dday[i], 1, 1000000000, &auth_set.day[i]);
	}
	gn_config_duration_ms(c, "attempts_keep", 30LL * 86400 * 1000, &auth_set.keep_ms);
	if (auth_set.keep_ms < 1000)
		auth_set.keep_ms = 1000;
	gn_config_int(c, "attempts_max_failures", 10000, 1, 100000000, &auth_set.max_failures);
	gn_config_int(c, "scram_sha256_iterations", 4096, 4096, 10000000, &auth_set.iter_sha256);
	gn_config_int(c, "scram_sha1_iterations", 8192, 4096, 10000000, &auth_set.iter_sha1);
	gn_config_bool(c, "cram_md5", true, &auth_set.cram_md5);
	/* A SCRAM client-final with a channel binding is a few hundred
	 * bytes; 8 KiB leaves room for long names and still bounds work. */
	gn_config_int(c, "sasl_max_response", 8192, 512, 1048576, &auth_set.sasl_max_response);
	gn_config_int(c, "sasl_max_steps", 8, 3, 100, &auth_set.sasl_max_steps);
}

int auth_register(void)
{
	const char *error;
	int ret = 0;

	read_settings();
	struct gn_module_ctx *ctx = modules_core_ctx();
	if (cli_password_register() < 0 || cli_cram_md5_register() < 0)
		ret = -1;
	if (gn_runner_job_register(ctx, "auth-prune", 3600UL * 1000, prune_job, NULL,
				   &error) < 0) {
		conf_error("%s", error);
		ret = -1;
	}
	return ret;
}
