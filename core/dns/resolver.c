/*
 * core/dns/resolver.c: the process's resolver (gannet/dns.h).
 *
 * One libunbound context a process, made at the first lookup from the
 * dns settings.  libunbound resolves in its own thread (ub_ctx_async) and
 * hands answers back through a pipe: ub_fd() is watched on the loop, and
 * ub_process() runs the callbacks from there, so a caller's callback
 * always runs on the loop.  The watch is on only while queries are in
 * flight, so an idle resolver keeps no loop running.
 *
 * Answers are kept in a small cache of the process (DNS_CACHE_*) for
 * their TTL (at most DNS_CACHE_MAX_TTL): a name asked again is answered
 * from it, from the loop before it next waits (loop_soon(): no timer, no
 * turn of the loop of its own), without the round trip through libunbound's
 * thread and pipe, which costs more CPU than the answer (mailauth asks the
 * same SPF, DKIM and DMARC names for every message of a sender; the queue
 * asks a recipient domain's MX, its hosts' A and AAAA, the domain's
 * MTA-STS record and the hosts' TLSA records for every delivery).  What is
 * kept: records, and NXDOMAIN and NODATA (RFC 2308: for the TTL libunbound
 * gives them, the SOA's negative TTL; most of the queue's questions have
 * no records: an MX host without AAAA, a domain without MTA-STS or TLSA).
 * libunbound keeps its own cache for the same TTLs, so this changes what
 * is answered by nothing but the remaining TTL's rounding; failures
 * (SERVFAIL and other rcodes, timeouts) and bogus answers are not kept.
 * A new context (a new process, dns_shutdown()) starts empty.
 *
 * Each query has a timer: dns.timeout after it went out it is cancelled
 * in libunbound and fails with GN_DNS_TIMEOUT.  dns.max_queries caps the
 * queries in flight; one more fails with GN_DNS_LIMIT.  Failures known at
 * once (a bad name, the cap) are delivered the same way, so the caller
 * is never called back from inside gn_dns_lookup().
 *
 * libunbound's thread runs libevent.  Debian's libev exports libevent's
 * names too (its emulation layer), and whichever comes first in the
 * process's symbol lookup is the one libunbound's thread calls: libev's
 * emulation there corrupts memory.  The build links libevent before libev
 * (Makefile.am), and resolver_new() checks that it worked before it
 * makes a context (core/dns/README).
 */
#include "dns/internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <unbound.h>

#define DNS_DEFAULT_TRUST_ANCHOR "/usr/share/dns/root.key"

/* libevent's (event2/event.h), declared here rather than included beside
 * ev.h.  Called once (the start's log line), so that the library links
 * libevent by name, ahead of libev (Makefile.am's DEP_LIBS order). */
const char *event_get_version(void);

struct gn_dns_query {
	struct gn_dns_query *prev, *next;	/* in flight, or waiting to fail */
	char *name;		/* A-labels, no trailing dot */
	int type;
	gn_dns_fn *fn;
	void *data;
	int async_id;
	bool in_unbound;	/* submitted: counts against max_queries */
	bool in_callback;	/* finish() calls fn and frees the query after */
	struct gn_timer *timer;	/* the timeout of a query in libunbound */
	struct loop_soon soon;	/* a failure or a cached answer, from the loop */
	enum gn_dns_status fail_status;	/* for soon */
	const char *fail_error;		/* static or from fail_pool */
	bool cached;		/* answered from the cache: result, from soon */
	struct gn_dns_result result;
	struct gn_pool *pool;	/* the name check's and the result's memory */
};

/* The answer cache: entries, buckets, the longest time an answer is kept
 * (seconds). */
#define DNS_CACHE_MAX 1024
#define DNS_CACHE_BUCKETS 256
#define DNS_CACHE_MAX_TTL 300

struct cache_entry {
	struct cache_entry *next;
	int type;
	time_t expires;		/* CLOCK_MONOTONIC seconds */
	struct ub_result r;	/* a copy: qname, canonname, data, len */
};

static struct {
	struct ub_ctx *ctx;
	pid_t pid;		/* the process that made ctx */
	struct gn_io *io;
	unsigned outstanding;
	struct gn_dns_query *queries;
	const char *broken;	/* why no context can be made, once known */
	bool thread_started;	/* ctx's first query went out */
	struct cache_entry *cache[DNS_CACHE_BUCKETS];
	unsigned cache_count;
} res;

/* ---- the answer cache ---- */

static time_t mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* FNV-1a of the name (already A-labels, compared without case). */
static unsigned cache_bucket(const char *name, int type)
{
	uint32_t h = 2166136261u ^ (uint32_t)type;
	for (const char *p = name; *p != '\0'; p++) {
		char c = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
		h = (h ^ (unsigned char)c) * 16777619u;
	}
	return h % DNS_CACHE_BUCKETS;
}

static void cache_entry_free(struct cache_entry *e)
{
	if (e->r.data != NULL)
		for (size_t i = 0; e->r.data[i] != NULL; i++)
			gn_free(e->r.data[i]);
	gn_free(e->r.data);
	gn_free(e->r.len);
	gn_free(e->r.qname);
	gn_free(e->r.canonname);
	gn_free(e);
}

static void cache_clear(void)
{
	for (size_t b = 0; b < DNS_CACHE_BUCKETS; b++) {
		while (res.cache[b] != NULL) {
			struct cache_entry *e = res.cache[b];
			res.cache[b] = e->next;
			cache_entry_free(e);
		}
	}
	res.cache_count = 0;
}

/* The live entry for name and type, or NULL (an expired one is dropped). */
static struct cache_entry *cache_get(const char *name, int type, time_t now)
{
	struct cache_entry **pe = &res.cache[cache_bucket(name, type)];
	while (*pe != NULL) {
		struct cache_entry *e = *pe;
		if (e->expires <= now) {
			*pe = e->next;
			cache_entry_free(e);
			res.cache_count--;
			continue;
		}
		if (e->type == type && strcasecmp(e->r.qname, name) == 0)
			return e;
		pe = &e->next;
	}
	return NULL;
}

/* Keeps a validated-or-insecure answer for its TTL: records (NOERROR
 * with data), NODATA (NOERROR without) or NXDOMAIN. */
static void cache_put(const char *name, int type, const struct ub_result *r)
{
	if (r->bogus || (r->rcode != 0 && r->rcode != 3) || r->ttl <= 0 ||
	    (r->havedata && r->data == NULL))
		return;
	time_t now = mono_now();
	if (cache_get(name, type, now) != NULL)
		return;
	if (res.cache_count >= DNS_CACHE_MAX)
		cache_clear();	/* bounded; rare: the cache refills from the next answers */
	struct cache_entry *e = gn_calloc(1, sizeof(*e));
	e->type = type;
	e->expires = now + (r->ttl < DNS_CACHE_MAX_TTL ? r->ttl : DNS_CACHE_MAX_TTL);
	e->r = *r;
	e->r.qname = gn_strdup(name);
	e->r.canonname = r->canonname != NULL ? gn_strdup(r->canonname) : NULL;
	e->r.answer_packet = NULL;
	e->r.answer_len = 0;
	e->r.why_bogus = NULL;
	size_t n = 0;
	while (r->havedata && r->data[n] != NULL)
		n++;
	e->r.data = gn_calloc(n + 1, sizeof(*e->r.data));
	e->r.len = gn_calloc(n + 1, sizeof(*e->r.len));
	for (size_t i = 0; i < n; i++) {
		e->r.len[i] = r->len[i];
		e->r.data[i] = gn_malloc(r->len[i] > 0 ? (size_t)r->len[i] : 1);
		memcpy(e->r.data[i], r->data[i], r->len[i] > 0 ? (size_t)r->len[i] : 0);
	}
	unsigned b = cache_bucket(name, type);
	e->next = res.cache[b];
	res.cache[b] = e;
	res.cache_count++;
}

/* ---- settings ---- */

/* Whether libevent's event_base_new, not libev's emulation of it, is the
 * one libunbound's thread will call. */
static bool libevent_first(void)
{
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "event_base_new");
	if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL)
		return false;
	const char *base = strrchr(info.dli_fname, '/');
	base = base != NULL ? base + 1 : info.dli_fname;
	return strncmp(base, "libevent", 8) == 0;
}

/* A context with the settings of conf; NULL with *error_r.  threads:
 * resolve in a thread (the loop's case) rather than in ub_resolve(). */
static struct ub_ctx *context_new(const struct dns_conf *conf, bool threads,
				  bool log_choices, const char **error_r)
{
	struct ub_ctx *ctx = ub_ctx_create();
	int rc;
	if (ctx == NULL) {
		*error_r = "libunbound: cannot make a context";
		return NULL;
	}
	if (threads && (rc = ub_ctx_async(ctx, 1)) != 0)
		goto fail_ub;
	for (size_t i = 0; i < conf->n_resolvers; i++) {
		if ((rc = ub_ctx_set_fwd(ctx, conf->resolvers[i])) != 0)
			goto fail_ub;
	}
	if (conf->n_resolvers > 0) {
		/* The admin named them: loopback resolvers (a local
		 * unbound, a test server) are meant. */
		if ((rc = ub_ctx_set_option(ctx, "do-not-query-localhost:", "no")) != 0)
			goto fail_ub;
	} else if (conf->n_local_data > 0) {
		/* Local data only: every other name is NXDOMAIN, and nothing
		 * goes to the network (tests, localserve). */
		if ((rc = ub_ctx_set_option(ctx, "local-zone:", ". static")) != 0)
			goto fail_ub;
	} else if ((rc = ub_ctx_resolvconf(ctx, NULL)) != 0) {
		if (log_choices)
			gn_log(GN_LOG_WARN, "core", "event=dns_resolvconf error=%s "
			       "reason=\"resolving from the root servers\"",
			       gn_log_quote(0, rc == UB_READFILE ? strerror(errno)
					    : ub_strerror(rc)));
	}
	const char *ta = conf->trust_anchor;
	if (ta == NULL) {
		ta = DNS_DEFAULT_TRUST_ANCHOR;
		if (access(ta, R_OK) != 0) {
			if (log_choices)
				gn_log(GN_LOG_WARN, "core", "event=dns_validation_off "
				       "reason=\"no %s (Debian's dns-root-data); set dns.trust_anchor\"",
				       ta);
			ta = "";
		}
	}
	if (ta[0] != '\0' && (rc = ub_ctx_add_ta_file(ctx, ta)) != 0) {
		*error_r = gn_strdup_printf("dns.trust_anchor: %s: %s", ta,
					    rc == UB_READFILE ? strerror(errno) : ub_strerror(rc));
		ub_ctx_delete(ctx);
		return NULL;
	}
	/* Last: ub_ctx_data_add() finalises the settings. */
	for (size_t i = 0; i < conf->n_local_data; i++) {
		if ((rc = ub_ctx_data_add(ctx, conf->local_data[i])) != 0) {
			/* Every parse error is UB_NOMEM here: not said. */
			*error_r = gn_strdup_printf("%s: \"%s\" is not a resource record "
						    "in zone-file syntax (NAME [TTL] [CLASS] TYPE DATA)",
						    conf->local_data_at[i], conf->local_data[i]);
			ub_ctx_delete(ctx);
			return NULL;
		}
	}
	if (log_choices)
		gn_log(GN_LOG_DEBUG, "core", "event=dns_start resolvers=%zu local_data=%zu "
		       "validation=%s libunbound=%s libevent=%s", conf->n_resolvers,
		       conf->n_local_data, ta[0] != '\0' ? gn_log_quote(0, ta) : "off",
		       ub_version(), event_get_version());
	return ctx;

fail_ub:
	*error_r = gn_strdup_printf("libunbound: %s", ub_strerror(rc));
	ub_ctx_delete(ctx);
	return NULL;
}

int dns_conf_check(void)
{
	const struct dns_conf *conf = &core_conf->dns;
	if (conf->n_local_data == 0 && (conf->trust_anchor == NULL || conf->trust_anchor[0] == '\0'))
		return 0;
	/* What only libunbound can check, checked now: config check and
	 * serve's start say it, not the first lookup. */
	const char *error;
	struct ub_ctx *ctx = context_new(conf, false, false, &error);
	if (ctx == NULL) {
		conf_error("%s", error);
		gn_free((char *)error);
		return -1;
	}
	ub_ctx_delete(ctx);
	return 0;
}

int dns_register(void)
{
	int ret = dns_conf_check();
	static const struct gn_cli_command lookup = {
		sizeof(struct gn_cli_command), "dns lookup", "TYPE NAME",
		"Looks NAME up with the core's resolver (the config's dns settings)\n"
		"and prints the rcode, the status, the DNSSEC state (secure, insecure,\n"
		"bogus), the TTL and the records.  TYPE: A, AAAA, MX, TXT, PTR, CNAME,\n"
		"TLSA; for PTR, NAME may be an IP address.  Exits 0 when the DNS\n"
		"answered (also NXDOMAIN and NODATA), 1 when it did not.",
		2, 2, dns_cli_lookup, NULL,
	};
	static const struct gn_cli_command tlsa = {
		sizeof(struct gn_cli_command), "dns tlsa", "HOST [PORT]",
		"Looks up the TLSA records of _PORT._tcp.HOST (PORT 25 by default)\n"
		"as `dns lookup TLSA` does, then says of each record whether it is\n"
		"usable for SMTP (DANE-TA, DANE-EE; RFC 7672 3.1.3) and what the\n"
		"queue does with the MX host HOST when its MX and address answers\n"
		"are secure: \"dane yes\" (TLS, the certificate must match),\n"
		"\"dane tls-required\", \"dane no\" (opportunistic TLS) or\n"
		"\"dane host-skipped\" (bogus or failed: the host is not used).",
		1, 2, dns_cli_tlsa, NULL,
	};
	/* Registered here rather than beside `gannet dkim sign` (core/store/):
	 * verifying needs the config and the resolver, not the database. */
	static const struct gn_cli_command dkim_verify = {
		sizeof(struct gn_cli_command), "dkim verify", "[FILE]",
		"Verifies the DKIM signatures of the message in FILE (or stdin),\n"
		"looking the keys up with the core's resolver, and prints a line a\n"
		"signature: result (pass, fail, policy, neutral, temperror,\n"
		"permerror), d=, s=, algorithm, key bits and the reason.  At most\n"
		"dkim.max_signatures are evaluated.  Exits 0 when one passed, 1 when\n"
		"none did.",
		0, 1, dns_cli_dkim_verify, NULL,
	};
	static const struct gn_cli_command dkim_key = {
		sizeof(struct gn_cli_command), "dns dkim", "SELECTOR DOMAIN",
		"Looks up the DKIM key record SELECTOR._domainkey.DOMAIN (RFC 6376\n"
		"3.6.2.1) with the core's resolver and prints the records, their tags,\n"
		"and how the verifier takes them: the key's type and bits, its t=\n"
		"flags, and ok, revoked, policy (RSA under 1024 bits), permerror or\n"
		"temperror.  Exits 0 for a usable key, 1 otherwise.",
		2, 2, dns_cli_dkim_key, NULL,
	};
	const char *err;
	if (gn_cli_command_register(modules_core_ctx(), &lookup, &err) < 0 ||
	    gn_cli_command_register(modules_core_ctx(), &tlsa, &err) < 0 ||
	    gn_cli_command_register(modules_core_ctx(), &dkim_verify, &err) < 0 ||
	    gn_cli_command_register(modules_core_ctx(), &dkim_key, &err) < 0) {
		conf_error("dns: %s", err);
		return -1;
	}
	return ret;
}

/* This process's context, made when missing.  NULL with *error_r.
 * base_pid(), not getpid(): a system call at every lookup. */
static struct ub_ctx *context(const char **error_r)
{
	if (res.ctx != NULL && res.pid != base_pid()) {
		/* Made before a fork: its thread is the parent's.  Dropped,
		 * not deleted (that would wait for a thread that is not here). */
		res.ctx = NULL;
		gn_io_free(&res.io);
		res.outstanding = 0;
	}
	if (res.ctx != NULL)
		return res.ctx;
	if (res.broken != NULL) {
		*error_r = res.broken;
		return NULL;
	}
	if (!libevent_first()) {
		res.broken = "libunbound would run on libev's libevent emulation "
			"(libev is linked before libevent): the resolver is off";
		gn_log(GN_LOG_ERROR, "core", "event=dns_broken reason=\"%s\"", res.broken);
		*error_r = res.broken;
		return NULL;
	}
	const char *error;
	struct ub_ctx *ctx = context_new(&core_conf->dns, true, true, &error);
	if (ctx == NULL) {
		gn_log(GN_LOG_ERROR, "core", "event=dns_broken reason=%s", gn_log_quote(0, error));
		*error_r = "the resolver could not start (see the log)";
		gn_free((char *)error);
		return NULL;
	}
	res.ctx = ctx;
	res.pid = base_pid();
	res.thread_started = false;
	cache_clear();
	return ctx;
}

/* ---- queries ---- */

static void unlink_query(struct gn_dns_query *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		res.queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
	if (q->in_unbound) {
		q->in_unbound = false;
		res.outstanding--;
		if (res.outstanding == 0 && res.io != NULL)
			gn_io_set_events(res.io, 0);
	}
}

static void query_free(struct gn_dns_query *q)
{
	gn_timer_free(&q->timer);
	loop_soon_cancel(&q->soon);
	gn_pool_free(&q->pool);
	gn_free(q);
}

/* Takes q out, calls its callback with result, frees q. */
static void finish(struct gn_dns_query *q, const struct gn_dns_result *result)
{
	unlink_query(q);
	gn_timer_free(&q->timer);
	gn_log(GN_LOG_DEBUG, "core", "event=dns_answer name=%s type=%s status=%s "
	       "rcode=%d security=%s ttl=%u n=%zu", gn_log_quote(0, result->name),
	       gn_dns_type_name(result->type), gn_dns_status_name(result->status),
	       result->rcode, gn_dns_security_name(result->security), result->ttl,
	       result->n);
	q->in_callback = true;
	q->fn(result, q->data);
	query_free(q);
}

/* libunbound's callback, from ub_process() on the loop. */
static void on_answer(void *data, int err, struct ub_result *r)
{
	struct gn_dns_query *q = data;
	struct gn_dns_result result;
	dns_result_parse(q->pool, q->name, q->type, err, r, &result);
	if (err == 0 && r != NULL && (result.status == GN_DNS_OK || result.status == GN_DNS_NODATA ||
				      result.status == GN_DNS_NXDOMAIN))
		cache_put(q->name, q->type, r);
	finish(q, &result);
	if (r != NULL)
		ub_resolve_free(r);
}

static void on_readable(int fd, unsigned events, void *data)
{
	(void)fd;
	(void)events;
	(void)data;
	if (res.ctx != NULL) {
		int rc = ub_process(res.ctx);
		if (rc != 0)
			gn_log(GN_LOG_ERROR, "core", "event=dns_process error=%s",
			       gn_log_quote(0, ub_strerror(rc)));
	}
}

static void on_timeout(void *data)
{
	struct gn_dns_query *q = data;
	struct gn_dns_result result;
	/* After ub_cancel() libunbound never calls on_answer() for it. */
	(void)ub_cancel(res.ctx, q->async_id);
	dns_result_fail(&result, q->name, q->type, GN_DNS_TIMEOUT,
			gn_pool_printf(q->pool, "no answer within %lld ms",
				       core_conf->dns.timeout_ms));
	gn_log(GN_LOG_INFO, "core", "event=dns_timeout name=%s type=%s",
	       gn_log_quote(0, q->name), gn_dns_type_name(q->type));
	finish(q, &result);
}

/* A query that never went to libunbound: its cached answer or its
 * failure, from the loop (a callback never runs inside gn_dns_lookup()). */
static void on_soon(void *data)
{
	struct gn_dns_query *q = data;
	struct gn_dns_result result;
	if (q->cached) {
		finish(q, &q->result);
		return;
	}
	dns_result_fail(&result, q->name != NULL ? q->name : "", q->type,
			q->fail_status, q->fail_error);
	finish(q, &result);
}

/* q fails with status from the loop. */
static struct gn_dns_query *fail_later(struct gn_dns_query *q,
				       enum gn_dns_status status, const char *error)
{
	q->fail_status = status;
	q->fail_error = error;
	loop_soon(&q->soon, on_soon, q);
	return q;
}

struct gn_dns_query *gn_dns_lookup(const char *name, enum gn_dns_type type,
				   gn_dns_fn *fn, void *data)
{
	struct gn_dns_query *q = gn_calloc(1, sizeof(*q));
	q->pool = gn_pool_new();
	q->type = (int)type;
	q->fn = fn;
	q->data = data;
	q->next = res.queries;
	if (res.queries != NULL)
		res.queries->prev = q;
	res.queries = q;

	const char *ascii, *error;
	if (gn_dns_name_check(q->pool, name, &ascii, &error) < 0) {
		q->name = gn_pool_strdup(q->pool, name);
		gn_log(GN_LOG_INFO, "core", "event=dns_bad_name name=%s reason=%s",
		       gn_log_quote(0, name), gn_log_quote(1, error));
		return fail_later(q, GN_DNS_BADNAME, error);
	}
	q->name = (char *)ascii;
	if (strcmp(gn_dns_type_name(q->type), "?") == 0)
		return fail_later(q, GN_DNS_ERROR, "record type not supported");
	struct ub_ctx *ctx = context(&error);
	if (ctx == NULL)
		return fail_later(q, GN_DNS_ERROR, error);
	time_t now = mono_now();
	struct cache_entry *e = cache_get(q->name, q->type, now);
	if (e != NULL) {
		/* From the loop, as every answer: before it next waits. */
		dns_result_parse(q->pool, q->name, q->type, 0, &e->r, &q->result);
		q->result.ttl = (unsigned)(e->expires - now);
		q->cached = true;
		loop_soon(&q->soon, on_soon, q);
		return q;
	}
	if (res.outstanding >= core_conf->dns.max_queries) {
		gn_log(GN_LOG_WARN, "core", "event=dns_limit name=%s max_queries=%u",
		       gn_log_quote(0, q->name), core_conf->dns.max_queries);
		return fail_later(q, GN_DNS_LIMIT,
				  gn_pool_printf(q->pool, "%u DNS queries in flight (dns.max_queries)",
						 core_conf->dns.max_queries));
	}
	/* The first query starts libunbound's thread, which inherits this
	 * thread's signal mask: it gets none, so that the process's signals
	 * (SIGTERM, SIGCHLD: libev's watchers) reach the loop's thread. */
	sigset_t all, saved;
	if (!res.thread_started) {
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &saved);
	}
	int rc = ub_resolve_async(ctx, q->name, q->type, 1 /* IN */, q, on_answer,
				  &q->async_id);
	if (!res.thread_started) {
		pthread_sigmask(SIG_SETMASK, &saved, NULL);
		res.thread_started = rc == 0;
	}
	if (rc != 0)
		return fail_later(q, GN_DNS_ERROR,
				  gn_pool_printf(q->pool, "resolver: %s", ub_strerror(rc)));
	q->in_unbound = true;
	if (res.outstanding++ == 0) {
		if (res.io == NULL)
			res.io = gn_io_new(ub_fd(ctx), GN_IO_READ, on_readable, NULL);
		else
			gn_io_set_events(res.io, GN_IO_READ);
	}
	q->timer = gn_timer_new((unsigned long)core_conf->dns.timeout_ms, false,
				on_timeout, q);
	return q;
}

void gn_dns_cancel(struct gn_dns_query **query)
{
	struct gn_dns_query *q = query != NULL ? *query : NULL;
	if (q == NULL)
		return;
	*query = NULL;
	/* Cancelled from its own callback (which the header says not to do):
	 * finish() frees it; unlinking it again would lose the other queries. */
	if (q->in_callback)
		return;
	if (q->in_unbound && res.ctx != NULL)
		(void)ub_cancel(res.ctx, q->async_id);
	unlink_query(q);
	query_free(q);
}

unsigned dns_outstanding(void)
{
	return res.outstanding;
}

void dns_shutdown(void)
{
	while (res.queries != NULL) {
		struct gn_dns_query *q = res.queries;
		gn_dns_cancel(&q);
	}
	gn_io_free(&res.io);
	cache_clear();
	if (res.ctx != NULL && res.pid == base_pid())
		ub_ctx_delete(res.ctx);
	res.ctx = NULL;
	res.outstanding = 0;
	res.broken = NULL;
}
