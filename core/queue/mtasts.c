/*
 * core/queue/mtasts.c: MTA-STS (RFC 8461) for the queue's SMTP transport.
 *
 * Discovery, once a delivery (queue_mtasts_lookup()):
 *
 *   cache   the domain's policy from gn_mtasts_policies (017_mtasts.sql),
 *           when it has not expired (fetched_at + max_age);
 *   TXT     _mta-sts.<domain>: exactly one record starting "v=STSv1"
 *           with an id (RFC 8461 3.1), else "no record";
 *   policy  with a record whose id is not the cached policy's (or no
 *           cached policy): https://mta-sts.<domain>/.well-known/mta-sts.txt
 *           (RFC 8461 3.3) through the core's HTTPS client: the
 *           certificate must verify for mta-sts.<domain>, 200 only, no
 *           redirects, text/plain, at most 64 KiB, parsed strictly
 *           (queue_mtasts_policy_parse()), then stored;
 *   outcome a fetched policy; else the cached one when there is one (a
 *           failed fetch, a missing record or a DNS failure keep it,
 *           RFC 8461 5.1); else none.
 *
 * A fetch is shared: deliveries to one domain that start together (a
 * runner claims many at once) wait for the one fetch under way for the
 * same domain and id in this process, which alone writes the cache.
 *
 * Enforcement lives in transport-smtp.c through the small interface of
 * queue/internal.h: MX hosts filtered by queue_mtasts_mx_match() and, in
 * enforce mode, TLS required and verified (PKIX) for the MX host's name.
 *
 * Refresh (the runner's job queue-mtasts-refresh, queue_mtasts_refresh()):
 * policies that expire within a day (or a quarter of their max_age) are
 * fetched again, so a domain that one mails rarely keeps its policy
 * (RFC 8461 10.2's advice against an attacker who waits out the cache).
 *
 * The cache's answers for deliveries are remembered in the process for
 * MEMO_SECONDS (MEMO_MAX domains), policy or none, so that a runner
 * delivering many messages to one domain reads the table once a minute,
 * not once a delivery; the TXT lookup still runs for each delivery
 * (libunbound keeps it for its TTL) and a new id is seen at once.  A
 * policy this process stores or fails to refresh is forgotten at once;
 * one another node stores is seen within MEMO_SECONDS.
 *
 * Times are the queue's clock (gn_queue_now(), which tests shift with
 * GANNET_TEST_CLOCK_OFFSET).
 */
#include "queue/internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <gannet/conn.h>
#include <gannet/dns.h>
#include <gannet/httpclient.h>
#include <gannet/loop.h>

#define MTASTS_TIMEOUT_MS 30000UL
#define MEMO_SECONDS 60.0
#define MEMO_MAX 256

/* ---- the cache ---- */

/* What cache_load() found for a domain, remembered until until. */
struct memo {
	char *domain;			/* NULL: a free slot */
	double until;
	bool found;
	struct gn_pool *pool;		/* policy's strings */
	struct queue_mtasts_policy policy;
};

static struct memo memos[MEMO_MAX];

static void memo_clear(struct memo *m)
{
	gn_free(m->domain);
	gn_pool_free(&m->pool);
	memset(m, 0, sizeof(*m));
}

static void memo_forget(const char *domain)
{
	for (size_t i = 0; i < MEMO_MAX; i++)
		if (memos[i].domain != NULL && strcmp(memos[i].domain, domain) == 0)
			memo_clear(&memos[i]);
}

static void policy_copy(struct gn_pool *pool, struct queue_mtasts_policy *dst,
			const struct queue_mtasts_policy *src)
{
	*dst = *src;
	dst->id = src->id != NULL ? gn_pool_strdup(pool, src->id) : NULL;
	dst->last_error = src->last_error != NULL ? gn_pool_strdup(pool, src->last_error) : NULL;
	dst->mx = gn_pool_alloc(pool, (src->n_mx + 1) * sizeof(*dst->mx));
	for (size_t i = 0; i < src->n_mx; i++)
		dst->mx[i] = gn_pool_strdup(pool, src->mx[i]);
}

/* 1 (*p from pool) or 0 when remembered and still valid, -1 when not
 * remembered. */
static int memo_get(struct gn_pool *pool, const char *domain, struct queue_mtasts_policy *p)
{
	double now = gn_queue_now();
	for (size_t i = 0; i < MEMO_MAX; i++) {
		struct memo *m = &memos[i];
		if (m->domain == NULL || strcmp(m->domain, domain) != 0)
			continue;
		/* A policy past its max_age is not one any more (and the
		 * clock of tests moves). */
		if (now >= m->until || now < m->until - MEMO_SECONDS ||
		    (m->found && m->policy.expires_at <= now)) {
			memo_clear(m);
			return -1;
		}
		if (!m->found)
			return 0;
		policy_copy(pool, p, &m->policy);
		return 1;
	}
	return -1;
}

static void memo_put(const char *domain, int found, const struct queue_mtasts_policy *p)
{
	struct memo *slot = NULL;
	for (size_t i = 0; i < MEMO_MAX && slot == NULL; i++)
		if (memos[i].domain == NULL)
			slot = &memos[i];
	if (slot == NULL) {
		/* Full: the one that ends first. */
		slot = &memos[0];
		for (size_t i = 1; i < MEMO_MAX; i++)
			if (memos[i].until < slot->until)
				slot = &memos[i];
	}
	memo_clear(slot);
	slot->domain = gn_strdup(domain);
	slot->until = gn_queue_now() + MEMO_SECONDS;
	slot->found = found > 0;
	if (slot->found) {
		slot->pool = gn_pool_new();
		policy_copy(slot->pool, &slot->policy, p);
	}
}

static const char *mx_join(struct gn_pool *pool, const struct queue_mtasts_policy *p)
{
	size_t total = 1;
	for (size_t i = 0; i < p->n_mx; i++)
		total += strlen(p->mx[i]) + 1;
	char *s = gn_pool_alloc(pool, total), *w = s;
	for (size_t i = 0; i < p->n_mx; i++) {
		size_t l = strlen(p->mx[i]);
		memcpy(w, p->mx[i], l);
		w += l;
		*w++ = '\n';
	}
	*w = '\0';
	return s;
}

static void mx_split(struct gn_pool *pool, const char *s, struct queue_mtasts_policy *p)
{
	p->mx = gn_pool_alloc(pool, QUEUE_MTASTS_MAX_MX * sizeof(*p->mx));
	p->n_mx = 0;
	while (*s != '\0' && p->n_mx < QUEUE_MTASTS_MAX_MX) {
		const char *nl = strchr(s, '\n');
		size_t l = nl != NULL ? (size_t)(nl - s) : strlen(s);
		if (l > 0)
			p->mx[p->n_mx++] = gn_pool_strndup(pool, s, l);
		s += l + (nl != NULL);
	}
}

/* The cached policy of domain (expired ones too when with_expired): 1
 * with *p, 0 none, -1 on a database error. */
static int cache_load(struct gn_pool *pool, const char *domain, bool with_expired,
		      struct queue_mtasts_policy *p, const char **error_r)
{
	if (!with_expired) {
		int m = memo_get(pool, domain, p);
		if (m >= 0)
			return m;
	}
	const char *params[2] = { domain, queue_now_param(pool) };
	struct gn_db_result *res = gn_db_query(
		"SELECT policy_id, mode, mx, max_age, extract(epoch FROM fetched_at)::float8, "
		"extract(epoch FROM expires_at)::float8, expires_at <= to_timestamp($2::float8), "
		"coalesce(last_error, '') FROM gn_mtasts_policies WHERE domain = $1", 2, params, error_r);
	if (res == NULL)
		return -1;
	int r = 0;
	if (gn_db_result_rows(res) == 1 &&
	    (with_expired || strcmp(gn_db_result_value(res, 0, 6), "f") == 0)) {
		memset(p, 0, sizeof(*p));
		p->id = gn_pool_strdup(pool, gn_db_result_value(res, 0, 0));
		p->mode = queue_mtasts_mode_parse(gn_db_result_value(res, 0, 1));
		if (p->mode < 0)
			p->mode = QUEUE_MTASTS_NONE;
		mx_split(pool, gn_db_result_value(res, 0, 2), p);
		p->max_age = strtoll(gn_db_result_value(res, 0, 3), NULL, 10);
		p->fetched_at = strtod(gn_db_result_value(res, 0, 4), NULL);
		p->expires_at = strtod(gn_db_result_value(res, 0, 5), NULL);
		p->expired = strcmp(gn_db_result_value(res, 0, 6), "t") == 0;
		const char *le = gn_db_result_value(res, 0, 7);
		p->last_error = le[0] != '\0' ? gn_pool_strdup(pool, le) : NULL;
		r = 1;
	}
	gn_db_result_free(&res);
	if (!with_expired)
		memo_put(domain, r, p);
	return r;
}

static int cache_store(struct gn_pool *pool, const char *domain, const struct queue_mtasts_policy *p,
		       const char **error_r)
{
	double now = gn_queue_now();
	memo_forget(domain);
	const char *params[6] = {
		domain, p->id, queue_mtasts_mode_name(p->mode), mx_join(pool, p),
		gn_pool_printf(pool, "%lld", p->max_age), gn_pool_printf(pool, "%.6f", now),
	};
	return gn_db_exec("INSERT INTO gn_mtasts_policies (domain, policy_id, mode, mx, max_age, fetched_at, "
			  "expires_at, checked_at, last_error) VALUES ($1, $2, $3, $4, $5::integer, "
			  "to_timestamp($6::float8), to_timestamp($6::float8) + make_interval(secs => $5::integer), "
			  "to_timestamp($6::float8), NULL) ON CONFLICT (domain) DO UPDATE SET policy_id = $2, "
			  "mode = $3, mx = $4, max_age = $5::integer, fetched_at = to_timestamp($6::float8), "
			  "expires_at = to_timestamp($6::float8) + make_interval(secs => $5::integer), "
			  "checked_at = to_timestamp($6::float8), last_error = NULL",
			  6, params, error_r);
}

static void cache_note_error(struct gn_pool *pool, const char *domain, const char *error)
{
	const char *err;
	const char *params[3] = { domain, queue_now_param(pool), error };
	memo_forget(domain);
	if (gn_db_exec("UPDATE gn_mtasts_policies SET checked_at = to_timestamp($2::float8), last_error = "
		       "left($3, 1000) WHERE domain = $1", 3, params, &err) < 0)
		gn_log(GN_LOG_WARN, "core", "event=mtasts_cache_failed domain=%s error=%s",
		       gn_log_quote(0, domain), gn_log_quote(1, err));
}

/* ---- discovery ---- */

struct queue_mtasts_lookup {
	struct gn_pool *pool;
	const char *domain, *host;
	unsigned flags;
	queue_mtasts_fn *fn;
	void *data;
	struct gn_dns_query *query;
	struct gn_httpclient *http;
	struct gn_timer *done;
	const char **addrs;
	size_t n_addrs;
	int a_status;
	struct queue_mtasts_policy cached, fetched;
	struct queue_mtasts_result res;
	/* Fetches are shared: a lookup that would fetch what another one of
	 * this process is fetching (same domain, same id) waits for it. */
	bool fetching;				/* in fetching_list */
	struct queue_mtasts_lookup *next_fetching;
	struct queue_mtasts_lookup *leader;	/* the one this one waits for */
	struct queue_mtasts_lookup *waiters, *next_waiter;
};

static struct queue_mtasts_lookup *fetching_list;

static void finish(struct queue_mtasts_lookup *l);

static void fetching_remove(struct queue_mtasts_lookup *l)
{
	for (struct queue_mtasts_lookup **pp = &fetching_list; *pp != NULL; pp = &(*pp)->next_fetching)
		if (*pp == l) {
			*pp = l->next_fetching;
			break;
		}
	l->fetching = false;
	l->next_fetching = NULL;
}

/* The leader's fetch is over (or cancelled: leader NULL): each waiter
 * takes a copy of its outcome and finishes. */
static void waiters_release(struct queue_mtasts_lookup *l, bool cancelled)
{
	struct queue_mtasts_lookup *w = l->waiters, *next;
	l->waiters = NULL;
	for (; w != NULL; w = next) {
		next = w->next_waiter;
		w->leader = NULL;
		w->next_waiter = NULL;
		if (!cancelled && l->res.fetched) {
			w->fetched = l->fetched;
			w->fetched.mx = gn_pool_alloc(w->pool, (l->fetched.n_mx + 1) * sizeof(char *));
			for (size_t i = 0; i < l->fetched.n_mx; i++)
				w->fetched.mx[i] = gn_pool_strdup(w->pool, l->fetched.mx[i]);
			w->fetched.id = w->res.txt_id;
			w->res.fetched = true;
			w->res.body = l->res.body != NULL ? gn_pool_strdup(w->pool, l->res.body) : NULL;
		} else {
			w->res.fetch_error = gn_pool_strdup(w->pool, cancelled ? "the shared fetch was cancelled"
							    : l->res.fetch_error != NULL ? l->res.fetch_error
							    : "the fetch failed");
		}
		finish(w);
	}
}

static void done_cb(void *data)
{
	struct queue_mtasts_lookup *l = data;
	gn_timer_free(&l->done);
	l->fn(&l->res, l->data);
	gn_pool_free(&l->pool);
	gn_free(l);
}

/* The outcome: the fetched policy, else the cached one, else none. */
static void finish(struct queue_mtasts_lookup *l)
{
	if (l->fetching) {
		fetching_remove(l);
		waiters_release(l, false);
	}
	if (l->res.fetched)
		l->res.policy = &l->fetched;
	else if (l->res.cached != NULL && !l->res.cached->expired)
		l->res.policy = l->res.cached;
	if (l->done == NULL)
		l->done = gn_timer_new(0, false, done_cb, l);
}

static void fetch_failed(struct queue_mtasts_lookup *l, const char *error)
{
	l->res.fetch_error = gn_pool_strdup(l->pool, error);
	gn_log(GN_LOG_INFO, "core", "event=mtasts_fetch_failed domain=%s cached=%s error=%s",
	       gn_log_quote(0, l->domain), l->res.cached != NULL && !l->res.cached->expired ? "yes" : "no",
	       gn_log_quote(1, error));
	if (!(l->flags & QUEUE_MTASTS_NO_STORE) && l->res.cached != NULL)
		cache_note_error(l->pool, l->domain, error);
	finish(l);
}

static void http_cb(const struct gn_httpclient_response *r, void *data)
{
	struct queue_mtasts_lookup *l = data;
	const char *err;
	l->http = NULL;
	if (r->error != NULL) {
		fetch_failed(l, gn_pool_printf(l->pool, "https://%s/.well-known/mta-sts.txt: %s", l->host, r->error));
		return;
	}
	/* RFC 8461 3.3: only 200 counts; redirects are not followed. */
	if (r->status != 200) {
		fetch_failed(l, gn_pool_printf(l->pool, "https://%s/.well-known/mta-sts.txt: HTTP status %d", l->host,
					       r->status));
		return;
	}
	const char *ct = gn_httpclient_header(r, "Content-Type");
	/* RFC 8461 3.2: the policy is text/plain. */
	if (ct == NULL || strncasecmp(ct, "text/plain", 10) != 0 || (ct[10] != '\0' && ct[10] != ';' &&
								       ct[10] != ' ')) {
		fetch_failed(l, gn_pool_printf(l->pool, "the policy's Content-Type is %s, not text/plain",
					       ct != NULL ? ct : "missing"));
		return;
	}
	l->res.body = gn_pool_strndup(l->pool, r->body, r->body_len);
	if (queue_mtasts_policy_parse(l->pool, r->body, r->body_len, &l->fetched, &err) < 0) {
		fetch_failed(l, gn_pool_printf(l->pool, "the policy is not valid: %s", err));
		return;
	}
	l->fetched.id = l->res.txt_id;
	l->fetched.fetched_at = gn_queue_now();
	l->fetched.expires_at = l->fetched.fetched_at + (double)l->fetched.max_age;
	l->res.fetched = true;
	gn_log(GN_LOG_INFO, "core", "event=mtasts_fetched domain=%s id=%s mode=%s mx=%zu max_age=%lld",
	       gn_log_quote(0, l->domain), l->fetched.id, queue_mtasts_mode_name(l->fetched.mode),
	       l->fetched.n_mx, l->fetched.max_age);
	if (!(l->flags & QUEUE_MTASTS_NO_STORE) && cache_store(l->pool, l->domain, &l->fetched, &err) < 0)
		gn_log(GN_LOG_WARN, "core", "event=mtasts_cache_failed domain=%s error=%s",
		       gn_log_quote(0, l->domain), gn_log_quote(1, err));
	finish(l);
}

static void add_addr(struct queue_mtasts_lookup *l, int family, const void *bin)
{
	char text[INET6_ADDRSTRLEN];
	if (l->n_addrs < GN_HTTPCLIENT_MAX_ADDRS && inet_ntop(family, bin, text, sizeof(text)) != NULL)
		l->addrs[l->n_addrs++] = gn_pool_strdup(l->pool, text);
}

static void addr_cb(const struct gn_dns_result *res, void *data)
{
	struct queue_mtasts_lookup *l = data;
	l->query = NULL;
	if (res->type == GN_DNS_A) {
		if (res->status == GN_DNS_OK)
			for (size_t i = 0; i < res->n; i++)
				add_addr(l, AF_INET, &res->a[i]);
		l->a_status = res->status;
		l->query = gn_dns_lookup(l->host, GN_DNS_AAAA, addr_cb, l);
		return;
	}
	if (res->status == GN_DNS_OK)
		for (size_t i = 0; i < res->n; i++)
			add_addr(l, AF_INET6, &res->aaaa[i]);
	if (l->n_addrs == 0) {
		fetch_failed(l, gn_pool_printf(l->pool, "no address for %s: A %s, AAAA %s", l->host,
					       gn_dns_status_name(l->a_status), gn_dns_status_name(res->status)));
		return;
	}
	struct gn_httpclient_request req;
	gn_httpclient_request_init(&req);
	req.host = l->host;
	req.port = core_conf != NULL && core_conf->queue_mta_sts_port > 0 ? core_conf->queue_mta_sts_port : 443;
	req.path = "/.well-known/mta-sts.txt";
	req.addrs = l->addrs;
	req.n_addrs = l->n_addrs;
	req.max_body = QUEUE_MTASTS_BODY_MAX;
	req.timeout_ms = core_conf != NULL && core_conf->queue_mta_sts_timeout_ms > 0
			 ? (unsigned long)core_conf->queue_mta_sts_timeout_ms : MTASTS_TIMEOUT_MS;
	const char *err;
	l->http = gn_httpclient_start(&req, http_cb, l, &err);
	if (l->http == NULL)
		fetch_failed(l, err);
}

static void txt_cb(const struct gn_dns_result *res, void *data)
{
	struct queue_mtasts_lookup *l = data;
	l->query = NULL;
	size_t found = 0;
	const char *id = NULL, *err = NULL, *record = NULL;
	l->res.txt_status = gn_dns_status_name(res->status);
	if (res->status == GN_DNS_OK) {
		for (size_t i = 0; i < res->n; i++) {
			const char *e = NULL, *rid = NULL;
			int r = queue_mtasts_txt_parse(l->pool, res->txt[i].text, res->txt[i].len, &rid, &e);
			if (r == 0)
				continue;	/* not an STS record: discarded (RFC 8461 3.1) */
			found++;
			record = gn_pool_strndup(l->pool, res->txt[i].text, res->txt[i].len);
			if (r < 0)
				err = e;
			else
				id = rid;
		}
	}
	l->res.txt = record;
	if (found > 1) {
		l->res.txt_error = "more than one v=STSv1 record";
	} else if (found == 1 && err != NULL) {
		l->res.txt_error = gn_pool_printf(l->pool, "the record is not valid: %s", err);
	} else if (found == 0) {
		l->res.txt_error = res->status == GN_DNS_OK || res->status == GN_DNS_NODATA ||
					   res->status == GN_DNS_NXDOMAIN
				   ? "no v=STSv1 record"
				   : gn_pool_printf(l->pool, "the lookup failed: %s", gn_dns_status_name(res->status));
	}
	if (l->res.txt_error != NULL || id == NULL) {
		/* RFC 8461 5.1: no usable record: a cached policy still
		 * applies until it expires; none otherwise. */
		finish(l);
		return;
	}
	l->res.txt_id = gn_pool_strdup(l->pool, id);
	if (l->res.cached != NULL && !l->res.cached->expired && strcmp(l->res.cached->id, id) == 0 &&
	    !(l->flags & QUEUE_MTASTS_FETCH)) {
		finish(l);
		return;
	}
	/* No policy yet, another id (RFC 8461 5.1: the policy changed), or
	 * a forced fetch: https://mta-sts.<domain>/..., unless this process
	 * fetches it already (many deliveries to one domain at once). */
	if (!(l->flags & QUEUE_MTASTS_NO_STORE))
		for (struct queue_mtasts_lookup *f = fetching_list; f != NULL; f = f->next_fetching)
			if (strcmp(f->domain, l->domain) == 0 && strcmp(f->res.txt_id, id) == 0) {
				l->leader = f;
				l->next_waiter = f->waiters;
				f->waiters = l;
				return;
			}
	if (!(l->flags & QUEUE_MTASTS_NO_STORE)) {
		l->fetching = true;
		l->next_fetching = fetching_list;
		fetching_list = l;
	}
	l->host = gn_pool_printf(l->pool, "mta-sts.%s", l->domain);
	l->addrs = gn_pool_alloc(l->pool, GN_HTTPCLIENT_MAX_ADDRS * sizeof(*l->addrs));
	l->query = gn_dns_lookup(l->host, GN_DNS_A, addr_cb, l);
}

struct queue_mtasts_lookup *queue_mtasts_lookup(const char *domain, unsigned flags, queue_mtasts_fn *fn,
						void *data)
{
	const char *err;
	/* The configured CA file before the first TLS that needs it (the
	 * policy host's, then the MX hosts'). */
	queue_tls_trust_init();
	struct queue_mtasts_lookup *l = gn_calloc(1, sizeof(*l));
	l->pool = gn_pool_new();
	l->domain = gn_pool_strdup(l->pool, domain);
	for (char *c = (char *)l->domain; *c != '\0'; c++)
		*c = (char)tolower((unsigned char)*c);
	l->flags = flags;
	l->fn = fn;
	l->data = data;
	int r = cache_load(l->pool, l->domain, (flags & QUEUE_MTASTS_NO_STORE) != 0, &l->cached, &err);
	if (r < 0)
		gn_log(GN_LOG_WARN, "core", "event=mtasts_cache_failed domain=%s error=%s", gn_log_quote(0, domain),
		       gn_log_quote(1, err));
	else if (r > 0)
		l->res.cached = &l->cached;
	l->query = gn_dns_lookup(gn_pool_printf(l->pool, "_mta-sts.%s", l->domain), GN_DNS_TXT, txt_cb, l);
	return l;
}

void queue_mtasts_cancel(struct queue_mtasts_lookup **lp)
{
	struct queue_mtasts_lookup *l = *lp;
	if (l == NULL)
		return;
	*lp = NULL;
	if (l->leader != NULL) {
		for (struct queue_mtasts_lookup **pp = &l->leader->waiters; *pp != NULL; pp = &(*pp)->next_waiter)
			if (*pp == l) {
				*pp = l->next_waiter;
				break;
			}
		l->leader = NULL;
	}
	if (l->fetching) {
		fetching_remove(l);
		waiters_release(l, true);
	}
	gn_dns_cancel(&l->query);
	gn_httpclient_cancel(&l->http);
	gn_timer_free(&l->done);
	gn_pool_free(&l->pool);
	gn_free(l);
}

/* ---- refresh (the runner) ---- */

static unsigned refreshing;

static void refresh_cb(const struct queue_mtasts_result *res, void *data)
{
	(void)res;
	(void)data;
	refreshing--;
}

int queue_mtasts_refresh(unsigned max, const char **error_r)
{
	struct gn_pool *pool = gn_pool_new();
	/* Policies that expire within a day, or within a quarter of their
	 * max_age when that is shorter, not tried in the last hour (or
	 * eighth of max_age): a host that fails is not asked every time. */
	const char *params[2] = { queue_now_param(pool), gn_pool_printf(pool, "%u", max) };
	struct gn_db_result *res = gn_db_query(
		"SELECT domain FROM gn_mtasts_policies WHERE expires_at > to_timestamp($1::float8) AND "
		"expires_at <= to_timestamp($1::float8) + least(interval '1 day', make_interval(secs => max_age / 4)) "
		"AND checked_at <= to_timestamp($1::float8) - make_interval(secs => least(3600, max_age / 8)) "
		"ORDER BY expires_at LIMIT $2::integer", 2, params, error_r);
	if (res == NULL) {
		gn_pool_free(&pool);
		return -1;
	}
	int n = 0;
	for (size_t i = 0; i < gn_db_result_rows(res); i++) {
		if (refreshing >= max)
			break;
		refreshing++;
		n++;
		const char *up[2] = { gn_db_result_value(res, i, 0), params[0] }, *e;
		if (gn_db_exec("UPDATE gn_mtasts_policies SET checked_at = to_timestamp($2::float8) WHERE domain = $1",
			       2, up, &e) < 0)
			gn_log(GN_LOG_WARN, "core", "event=mtasts_cache_failed domain=%s error=%s",
			       gn_log_quote(0, up[0]), gn_log_quote(1, e));
		gn_log(GN_LOG_INFO, "core", "event=mtasts_refresh domain=%s",
		       gn_log_quote(0, gn_db_result_value(res, i, 0)));
		(void)queue_mtasts_lookup(gn_db_result_value(res, i, 0), QUEUE_MTASTS_FETCH, refresh_cb, NULL);
	}
	gn_db_result_free(&res);
	gn_pool_free(&pool);
	return n;
}

unsigned queue_mtasts_refreshing(void)
{
	return refreshing;
}

/* The policies that apply in transport-smtp.c: log lines. */
void queue_mtasts_log_applied(const char *domain, const struct queue_mtasts_result *res)
{
	const struct queue_mtasts_policy *p = res->policy;
	/* No policy, the common case, at debug level: a line a delivery
	 * that says nothing. */
	gn_log(p != NULL || res->fetch_error != NULL ? GN_LOG_INFO : GN_LOG_DEBUG, "core",
	       "event=mtasts_policy domain=%s mode=%s id=%s source=%s%s%s",
	       gn_log_quote(0, domain), p != NULL ? queue_mtasts_mode_name(p->mode) : "none",
	       p != NULL && p->id != NULL ? p->id : "-", p == NULL ? "none" : res->fetched ? "fetched" : "cache",
	       res->fetch_error != NULL ? " fetch_error=" : "",
	       res->fetch_error != NULL ? gn_log_quote(1, res->fetch_error) : "");
}
