/*
 * modules/mailauth/iprev.c: the "iprev" method (RFC 8601 3.2, RFC 5451
 * 3) on the loop, through the core's resolver.  iprev.h says how.
 */
#include "iprev.h"

#include <string.h>

#include <gannet/gannet.h>

struct iprev_eval;

struct iprev_forward {
	struct iprev_eval *e;
	struct gn_dns_query *q;
	const char *name;
};

struct iprev_eval {
	struct gn_pool *pool;
	int family;
	uint8_t ip[16];
	iprev_fn *fn;
	void *data;
	struct gn_dns_query *ptr;
	struct iprev_forward fwd[IPREV_MAX_NAMES];
	size_t n_fwd, pending;
	bool dns_error;			/* a forward query failed */
	const char *dns_error_text;
	struct iprev_result result;
};

const char *iprev_status_name(int status)
{
	switch (status) {
	case IPREV_PASS: return "pass";
	case IPREV_FAIL: return "fail";
	case IPREV_TEMPERROR: return "temperror";
	case IPREV_PERMERROR: return "permerror";
	default: return "?";
	}
}

/* The reverse name of the address (RFC 1035 3.5, RFC 3596 2.5). */
static const char *reverse_name(struct gn_pool *pool, int family, const uint8_t *ip)
{
	if (family == 4)
		return gn_pool_printf(pool, "%u.%u.%u.%u.in-addr.arpa", ip[3], ip[2], ip[1], ip[0]);
	struct gn_buf *b = gn_buf_new(0);
	static const char hex[] = "0123456789abcdef";
	for (int i = 15; i >= 0; i--)
		gn_buf_printf(b, "%c.%c.", hex[ip[i] & 15], hex[ip[i] >> 4]);
	gn_buf_append_str(b, "ip6.arpa");
	const char *s = gn_pool_strdup(pool, gn_buf_data(b));
	gn_buf_free(&b);
	return s;
}

static bool dns_failed(int status)
{
	return status == GN_DNS_SERVFAIL || status == GN_DNS_RCODE || status == GN_DNS_TIMEOUT ||
	       status == GN_DNS_LIMIT || status == GN_DNS_ERROR;
}

static void finish(struct iprev_eval *e, int status, const char *reason)
{
	for (size_t i = 0; i < e->n_fwd; i++)
		gn_dns_cancel(&e->fwd[i].q);
	e->pending = 0;
	e->result.status = status;
	e->result.reason = reason;
	e->result.names = (unsigned)e->n_fwd;
	/* The callback may free what holds e (never e itself: the pool). */
	e->fn(&e->result, e->data);
}

static bool matches(const struct iprev_eval *e, const struct gn_dns_result *r)
{
	for (size_t i = 0; i < r->n; i++) {
		if (e->family == 4 && r->a != NULL && memcmp(&r->a[i], e->ip, 4) == 0)
			return true;
		if (e->family == 6 && r->aaaa != NULL && memcmp(&r->aaaa[i], e->ip, 16) == 0)
			return true;
	}
	return false;
}

/* All the forward answers are in, none maps back. */
static void no_match(struct iprev_eval *e)
{
	if (e->dns_error)
		finish(e, IPREV_TEMPERROR, e->dns_error_text);
	else
		finish(e, IPREV_FAIL, gn_pool_printf(e->pool, "none of the %zu PTR names of %s "
						     "maps back to it", e->n_fwd, e->result.ip));
}

static void forward_done(const struct gn_dns_result *r, void *data)
{
	struct iprev_forward *f = data;
	struct iprev_eval *e = f->e;
	f->q = NULL;
	e->pending--;
	if (r->status == GN_DNS_OK && matches(e, r)) {
		e->result.name = f->name;
		finish(e, IPREV_PASS, NULL);
		return;
	}
	if (dns_failed(r->status) && !e->dns_error) {
		e->dns_error = true;
		e->dns_error_text = gn_pool_printf(e->pool, "%s %s: %s", f->name,
						   e->family == 4 ? "A" : "AAAA",
						   gn_dns_status_name(r->status));
	}
	if (e->pending == 0)
		no_match(e);
}

static void ptr_done(const struct gn_dns_result *r, void *data)
{
	struct iprev_eval *e = data;
	e->ptr = NULL;
	if (r->status == GN_DNS_NXDOMAIN || r->status == GN_DNS_NODATA) {
		finish(e, IPREV_FAIL, gn_pool_printf(e->pool, "no PTR for %s (%s)", e->result.ip,
						     gn_dns_status_name(r->status)));
		return;
	}
	if (r->status != GN_DNS_OK) {
		finish(e, dns_failed(r->status) ? IPREV_TEMPERROR : IPREV_PERMERROR,
		       gn_pool_printf(e->pool, "PTR %s: %s", r->name != NULL ? r->name : "?",
				      gn_dns_status_name(r->status)));
		return;
	}
	/* RFC 5451 3 (RFC 8601 3.2): each name's addresses; the first
	 * IPREV_MAX_NAMES only, in the order of the answer (the resolver
	 * may rotate it).  A name that
	 * is not a host name is passed over; an answer of only such names
	 * is malformed: permerror. */
	for (size_t i = 0; i < r->n && e->n_fwd < IPREV_MAX_NAMES; i++) {
		const char *ascii, *err;
		if (r->names == NULL || r->names[i] == NULL || r->names[i][0] == '\0' ||
		    gn_dns_name_check(e->pool, r->names[i], &ascii, &err) < 0)
			continue;
		struct iprev_forward *f = &e->fwd[e->n_fwd++];
		f->e = e;
		f->name = ascii;
	}
	if (e->n_fwd == 0) {
		finish(e, IPREV_PERMERROR, gn_pool_printf(e->pool, "no valid name in the PTR of %s",
							  e->result.ip));
		return;
	}
	/* Count first: no answer comes before every query is sent (the
	 * resolver never calls back from gn_dns_lookup()). */
	e->pending = e->n_fwd;
	for (size_t i = 0; i < e->n_fwd; i++) {
		struct iprev_forward *f = &e->fwd[i];
		f->q = gn_dns_lookup(f->name, e->family == 4 ? GN_DNS_A : GN_DNS_AAAA,
				     forward_done, f);
		if (f->q == NULL) {
			e->pending--;
			if (!e->dns_error) {
				e->dns_error = true;
				e->dns_error_text = gn_pool_printf(e->pool, "%s: lookup not started",
								   f->name);
			}
		}
	}
	if (e->pending == 0)
		no_match(e);
}

struct iprev_eval *iprev_check(struct gn_pool *pool, int family, const uint8_t *ip,
			       const char *ip_text, iprev_fn *fn, void *data)
{
	struct iprev_eval *e = gn_pool_alloc(pool, sizeof(*e));
	memset(e, 0, sizeof(*e));
	e->pool = pool;
	e->family = family;
	memcpy(e->ip, ip, family == 4 ? 4 : 16);
	e->fn = fn;
	e->data = data;
	e->result.ip = gn_pool_strdup(pool, ip_text);
	e->ptr = gn_dns_lookup(reverse_name(pool, family, ip), GN_DNS_PTR, ptr_done, e);
	if (e->ptr == NULL)
		return NULL;
	return e;
}

void iprev_cancel(struct iprev_eval **ep)
{
	struct iprev_eval *e;
	if (ep == NULL || (e = *ep) == NULL)
		return;
	gn_dns_cancel(&e->ptr);
	for (size_t i = 0; i < e->n_fwd; i++)
		gn_dns_cancel(&e->fwd[i].q);
	*ep = NULL;
}
