/*
 * core/dns/dkim.c: the DKIM verifier's key lookups on the loop
 * (gn_dkim_verify_start(), gannet/dkim.h).
 *
 * The verifier (core/mail/dkim-verify.c) is pure: it names the key each
 * signature needs and takes the answers.  Here every such name is looked
 * up at once, in parallel, with gn_dns_lookup(), each answer goes to the
 * verifier as it comes, and the caller's callback runs after the last.
 * An answer is mapped as RFC 6376 6.1.2 says: TXT records are the key;
 * NXDOMAIN, no TXT records or a name the DNS cannot carry is "no key"
 * (permerror); every failure to get an answer (SERVFAIL, a DNSSEC-bogus
 * answer, timeout, the resolver's cap) is temperror.
 */
#include "dns/internal.h"

struct lookup {
	struct gn_dkim_verify *op;
	size_t sig;
	struct gn_dns_query *query;
};

struct gn_dkim_verify {
	struct gn_dkim_verifier *v;
	gn_dkim_verify_fn *fn;
	void *data;
	struct lookup *lookups;
	size_t n_lookups, pending;
	struct gn_timer *defer;
};

static void op_free(struct gn_dkim_verify *op)
{
	gn_timer_free(&op->defer);
	gn_free(op->lookups);
	gn_free(op);
}

/* The last answer is in: the callback, after the handle is gone. */
static void complete(struct gn_dkim_verify *op)
{
	struct gn_dkim_verifier *v = op->v;
	gn_dkim_verify_fn *fn = op->fn;
	void *data = op->data;
	op_free(op);
	fn(v, data);
}

static void deferred(void *data)
{
	complete(data);
}

static void answered(const struct gn_dns_result *r, void *data)
{
	struct lookup *lk = data;
	struct gn_dkim_verify *op = lk->op;
	lk->query = NULL;
	if (r->status == GN_DNS_OK) {
		const char **texts = gn_calloc(r->n + 1, sizeof(*texts));
		size_t *lens = gn_calloc(r->n + 1, sizeof(*lens));
		for (size_t i = 0; i < r->n; i++) {
			texts[i] = r->txt[i].text;
			lens[i] = r->txt[i].len;
		}
		gn_dkim_verifier_key(op->v, lk->sig, GN_DKIM_KEY_RECORDS, texts, lens, r->n, NULL);
		gn_free(texts);
		gn_free(lens);
	} else if (r->status == GN_DNS_NXDOMAIN || r->status == GN_DNS_NODATA ||
		   r->status == GN_DNS_BADNAME) {
		gn_dkim_verifier_key(op->v, lk->sig, GN_DKIM_KEY_NONE, NULL, NULL, 0,
				     gn_dns_status_name(r->status));
	} else {
		struct gn_pool *pool = gn_pool_new();
		const char *why = r->error != NULL
			? gn_pool_printf(pool, "%s (%s)", gn_dns_status_name(r->status), r->error)
			: gn_dns_status_name(r->status);
		gn_dkim_verifier_key(op->v, lk->sig, GN_DKIM_KEY_TEMPFAIL, NULL, NULL, 0, why);
		gn_pool_free(&pool);
	}
	if (--op->pending == 0)
		complete(op);
}

struct gn_dkim_verify *gn_dkim_verify_start(struct gn_dkim_verifier *v, gn_dkim_verify_fn *fn,
					    void *data)
{
	struct gn_dkim_verify *op = gn_calloc(1, sizeof(*op));
	op->v = v;
	op->fn = fn;
	op->data = data;
	size_t n = gn_dkim_verifier_count(v);
	op->lookups = gn_calloc(n + 1, sizeof(*op->lookups));
	for (size_t i = 0; i < n; i++) {
		if (gn_dkim_verifier_key_name(v, i) == NULL)
			continue;
		struct lookup *lk = &op->lookups[op->n_lookups++];
		lk->op = op;
		lk->sig = i;
	}
	op->pending = op->n_lookups;
	/* RFC 6376 6.1.2: each signature's key, all asked at once. */
	for (size_t k = 0; k < op->n_lookups; k++) {
		struct lookup *lk = &op->lookups[k];
		lk->query = gn_dns_lookup(gn_dkim_verifier_key_name(v, lk->sig), GN_DNS_TXT,
					  answered, lk);
	}
	if (op->n_lookups == 0)
		op->defer = gn_timer_new(0, false, deferred, op);
	return op;
}

void gn_dkim_verify_cancel(struct gn_dkim_verify **op)
{
	if (op == NULL || *op == NULL)
		return;
	for (size_t k = 0; k < (*op)->n_lookups; k++)
		gn_dns_cancel(&(*op)->lookups[k].query);
	op_free(*op);
	*op = NULL;
}

unsigned gn_dkim_max_signatures(void)
{
	return core_conf != NULL && core_conf->dkim_max_signatures > 0 ?
		core_conf->dkim_max_signatures : GN_DKIM_MAX_SIGNATURES_DEFAULT;
}
