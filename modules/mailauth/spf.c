/*
 * modules/mailauth/spf.c: check_host() (RFC 7208 4-6) on the loop.
 *
 * An evaluation is a stack of frames, one a record being evaluated: the
 * first for the checked domain, one more for each include: in progress.
 * redirect= replaces the record of its frame (the redirect's result is the
 * frame's result).  One DNS query is in flight, its callback (on_answer)
 * continues whatever step waited for it and then runs the record's terms
 * on (run_terms) until the next query or the end; only the address
 * lookups of an mx's or a ptr's names go out together (names_start()).  The
 * lookup limits (RFC 7208 4.6.4) bound everything: at most 10 terms that
 * query, so at most 11 frames and a few dozen queries an evaluation.
 *
 * Results of a frame:
 *   pass/fail/softfail/neutral  the qualifier of the matching term, or
 *                 neutral when none matched and there is no redirect
 *                 (RFC 7208 4.7);
 *   include       pass matches; fail, softfail, neutral do not; none
 *                 is a permerror; errors end the whole evaluation
 *                 (RFC 7208 5.2);
 *   errors        a temperror or permerror anywhere ends the evaluation.
 * A fail of the first frame fetches exp= (RFC 7208 6.2) before done runs.
 *
 * done never runs from inside spf_check(): its first question goes out at
 * once (a DNS answer always comes from the loop), and an identity without
 * a domain to ask completes from a zero timer.  Nothing touches the
 * evaluation after done returns (done may free the pool that holds it).
 */
#include "spf.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <gannet/dns.h>
#include <gannet/loop.h>

struct frame {
	struct frame *parent;	/* the record whose include: this is */
	const char *domain;
	struct spf_record *rec;
	size_t next;		/* the term to evaluate next */
	bool redirected;	/* the record came from redirect= */
	/* mx and ptr: the names whose addresses are asked. */
	const char **names;
	size_t n_names;
};

enum step {
	STEP_RECORD = 1,	/* TXT of frame->domain */
	STEP_A,			/* a: addresses of the target */
	STEP_MX,		/* mx: the MX names */
	STEP_PTR,		/* ptr: names of the client's address */
	STEP_EXISTS,		/* exists: A of the target */
	STEP_P_PTR,		/* %{p}: names of the client's address */
	STEP_P_ADDR,		/* %{p}: addresses of p_names[p_i] */
	STEP_EXP,		/* exp=: the explanation's TXT */
};

struct spf_eval {
	struct gn_pool *pool;
	struct spf_request req;
	struct spf_macro_env env;
	struct spf_result res;
	spf_done_fn *done;
	void *data;
	spf_trace_fn *trace;
	void *trace_data;
	struct gn_dns_query *q;
	struct gn_timer *timer;	/* an identity without a domain: none, from the loop */
	struct gn_timer *deadline;	/* the whole evaluation's */
	struct frame *top;
	int step;
	const char *target;	/* the domain of the term in progress */
	/* %{p}: computed once, when a macro first needs it. */
	bool p_done;
	const char **p_names;
	size_t p_n, p_i;
	const char *p_best;
	void (*after_p)(struct spf_eval *e);
	const struct spf_record *exp_rec;	/* the record whose exp= applies */
	unsigned cname_hops;	/* CNAMEs followed for the query in flight */
	/* mx and ptr: one address lookup a name, in flight together. */
	struct name_slot *slots;
	size_t n_slots, slots_waiting;
};

/* CNAMEs followed for one query, by the resolver or here.  The RFC sets no
 * bound; pyspf's (10) is as good as any. */
#define SPF_MAX_CNAMES 10

static void run_terms(struct spf_eval *e);
static void on_answer(const struct gn_dns_result *r, void *data);

static void trace(struct spf_eval *e, const char *what, const char *fmt, ...) GN_PRINTF(3, 4);
static void trace(struct spf_eval *e, const char *what, const char *fmt, ...)
{
	if (e->trace == NULL)
		return;
	struct gn_buf *b = gn_buf_new(0);
	va_list ap;
	va_start(ap, fmt);
	gn_buf_vprintf(b, fmt, ap);
	va_end(ap);
	e->trace(what, gn_buf_data(b), e->trace_data);
	gn_buf_free(&b);
}

/* The end: the callback runs last; e is not touched after it. */
static void complete(struct spf_eval *e, int result, const struct spf_term *term,
		     const char *domain, const char *problem)
{
	e->res.result = result;
	if (term != NULL) {
		e->res.mechanism = term->text;
		e->res.matched_domain = domain;
	}
	if (problem != NULL)
		e->res.problem = problem;
	gn_timer_free(&e->timer);
	gn_timer_free(&e->deadline);
	e->done(&e->res, e->data);
}

static void permerror(struct spf_eval *e, const char *fmt, ...) GN_PRINTF(2, 3);
static void permerror(struct spf_eval *e, const char *fmt, ...)
{
	struct gn_buf *b = gn_buf_new(0);
	va_list ap;
	va_start(ap, fmt);
	gn_buf_vprintf(b, fmt, ap);
	va_end(ap);
	const char *p = gn_pool_strdup(e->pool, gn_buf_data(b));
	gn_buf_free(&b);
	complete(e, SPF_PERMERROR, NULL, NULL, p);
}

static void temperror(struct spf_eval *e, const struct gn_dns_result *r)
{
	complete(e, SPF_TEMPERROR, NULL, NULL,
		 gn_pool_printf(e->pool, "DNS %s for %s %s%s%s", gn_dns_status_name(r->status),
				gn_dns_type_name(r->type), r->name,
				r->error != NULL ? ": " : "", r->error != NULL ? r->error : ""));
}

static void query(struct spf_eval *e, int step, const char *name, enum gn_dns_type type)
{
	e->cname_hops = 0;
	e->step = step;
	e->res.queries++;
	e->q = gn_dns_lookup(name, type, on_answer, e);
}

/* ---- answers ---- */

enum answer { ANS_RECORDS, ANS_VOID, ANS_ERROR };

/* RFC 7208 4.6.4: a void lookup is NOERROR without answers or NXDOMAIN;
 * a name that cannot be asked counts as one too (it has no records). */
static enum answer classify(const struct gn_dns_result *r)
{
	if (r->status == GN_DNS_OK && r->n > 0)
		return ANS_RECORDS;
	if (r->status == GN_DNS_OK || r->status == GN_DNS_NODATA ||
	    r->status == GN_DNS_NXDOMAIN || r->status == GN_DNS_BADNAME)
		return ANS_VOID;
	return ANS_ERROR;
}

/* Counts a void lookup; returns -1 after completing with permerror when
 * it is one too many. */
static int count_void_of(struct spf_eval *e, int type, const char *name)
{
	if (++e->res.void_lookups > SPF_MAX_VOID) {
		permerror(e, "more than %d void lookups (RFC 7208 4.6.4), the last for %s %s",
			  SPF_MAX_VOID, gn_dns_type_name(type), name);
		return -1;
	}
	return 0;
}

static int count_void(struct spf_eval *e, const struct gn_dns_result *r)
{
	return count_void_of(e, r->type, r->name);
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, int bits)
{
	int bytes = bits / 8, rest = bits % 8;
	if (memcmp(a, b, (size_t)bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

/* Whether an answer of addresses holds the client's within the prefix. */
static bool addresses_match(const struct spf_eval *e, const struct gn_dns_result *r,
			    int cidr4, int cidr6)
{
	for (size_t i = 0; i < r->n; i++) {
		if (r->type == GN_DNS_A && e->req.family == 4 &&
		    prefix_match(e->req.ip, (const uint8_t *)&r->a[i], cidr4))
			return true;
		if (r->type == GN_DNS_AAAA && e->req.family == 6 &&
		    prefix_match(e->req.ip, (const uint8_t *)&r->aaaa[i], cidr6))
			return true;
	}
	return false;
}

static enum gn_dns_type address_type(const struct spf_eval *e)
{
	/* RFC 7208 5.3, 5.4: A for an IPv4 client, AAAA for IPv6. */
	return e->req.family == 6 ? GN_DNS_AAAA : GN_DNS_A;
}

/* The reverse name of the client's address (RFC 1035 3.5, RFC 3596 2.5). */
static const char *reverse_name(struct spf_eval *e)
{
	const uint8_t *ip = e->req.ip;
	if (e->req.family == 4)
		return gn_pool_printf(e->pool, "%u.%u.%u.%u.in-addr.arpa", ip[3], ip[2], ip[1], ip[0]);
	struct gn_buf *b = gn_buf_new(0);
	static const char hex[] = "0123456789abcdef";
	for (int i = 15; i >= 0; i--)
		gn_buf_printf(b, "%c.%c.", hex[ip[i] & 15], hex[ip[i] >> 4]);
	gn_buf_append_str(b, "ip6.arpa");
	const char *s = gn_pool_strdup(e->pool, gn_buf_data(b));
	gn_buf_free(&b);
	return s;
}

/* name is domain or a subdomain of it (RFC 7208 5.5). */
static bool in_domain(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);
	if (n == d)
		return strcasecmp(name, domain) == 0;
	return n > d && name[n - d - 1] == '.' && strcasecmp(name + n - d, domain) == 0;
}

/* Copies the first max names of a PTR or MX answer. */
static void take_names(struct spf_eval *e, const struct gn_dns_result *r, size_t max,
		       const char ***names_r, size_t *n_r)
{
	size_t n = r->n < max ? r->n : max, k = 0;
	const char **names = gn_pool_alloc(e->pool, (n > 0 ? n : 1) * sizeof(*names));
	for (size_t i = 0; i < n; i++) {
		const char *s = r->type == GN_DNS_MX ? r->mx[i].host : r->names[i];
		if (*s != '\0')	/* a null MX (RFC 7505) names no host */
			names[k++] = gn_pool_strdup(e->pool, s);
	}
	*names_r = names;
	*n_r = k;
}

/* ---- frames ---- */

static void fetch_record(struct spf_eval *e)
{
	query(e, STEP_RECORD, e->top->domain, GN_DNS_TXT);
}

/* The current record matched with term (or ended with the default when
 * term is NULL): result is the frame's result. */
static void frame_done(struct spf_eval *e, int result, const struct spf_term *term);

static void explanation_start(struct spf_eval *e);

static void push_include(struct spf_eval *e, const char *domain)
{
	struct frame *f = gn_pool_alloc(e->pool, sizeof(*f));
	f->parent = e->top;
	f->domain = domain;
	e->top = f;
	e->env.domain = domain;
	fetch_record(e);
}

static void frame_done(struct spf_eval *e, int result, const struct spf_term *term)
{
	struct frame *f = e->top;
	if (f->parent == NULL) {
		if (term != NULL) {
			e->res.mechanism = term->text;
			e->res.matched_domain = f->domain;
		}
		e->res.result = result;
		if (result == SPF_FAIL && f->rec != NULL && f->rec->exp != NULL) {
			/* RFC 7208 6.2: the exp= of the record that gave the
			 * fail (after redirects; never an included one's). */
			e->exp_rec = f->rec;
			explanation_start(e);
			return;
		}
		complete(e, result, term, f->domain, NULL);
		return;
	}
	/* An include: (RFC 7208 5.2). */
	struct frame *parent = f->parent;
	e->top = parent;
	e->env.domain = parent->domain;
	const struct spf_term *inc = &parent->rec->terms[parent->next];
	switch (result) {
	case SPF_PASS:
		frame_done(e, inc->qualifier, inc);
		return;
	case SPF_NONE:
		permerror(e, "%s: %s has no SPF record (RFC 7208 5.2)", inc->text, f->domain);
		return;
	default:		/* fail, softfail, neutral: no match */
		parent->next++;
		run_terms(e);
		return;
	}
}

/* The record of the top frame arrived. */
static void record_answer(struct spf_eval *e, const struct gn_dns_result *r)
{
	struct frame *f = e->top;
	enum answer a = classify(r);
	if (a == ANS_ERROR) {
		/* RFC 7208 4.4: a DNS error is a temperror. */
		temperror(e, r);
		return;
	}
	const struct gn_dns_txt *found = NULL;
	size_t n = 0;
	for (size_t i = 0; a == ANS_RECORDS && i < r->n; i++) {
		if (spf_record_is_spf(r->txt[i].text, r->txt[i].len)) {
			found = &r->txt[i];
			n++;
		}
	}
	if (n > 1) {
		/* RFC 7208 4.5: more than one record is a permerror. */
		permerror(e, "%s has %zu SPF records (RFC 7208 4.5)", f->domain, n);
		return;
	}
	if (n == 0) {
		if (f->redirected) {
			/* RFC 7208 6.1: a redirect to no record: permerror. */
			permerror(e, "redirect=%s: no SPF record there (RFC 7208 6.1)", f->domain);
			return;
		}
		frame_done(e, SPF_NONE, NULL);
		return;
	}
	if (memchr(found->text, '\0', found->len) != NULL) {
		permerror(e, "the SPF record of %s holds a NUL byte", f->domain);
		return;
	}
	trace(e, "record", "%s \"%.*s\"", f->domain, (int)found->len, found->text);
	const char *err;
	if (spf_record_parse(e->pool, found->text, found->len, &f->rec, &err) < 0) {
		permerror(e, "%s: %s", f->domain, err);
		return;
	}
	f->next = 0;
	run_terms(e);
}

/* ---- %{p} (RFC 7208 7.3: the validated name of the client) ---- */

static void p_next(struct spf_eval *e)
{
	if (e->p_i < e->p_n) {
		query(e, STEP_P_ADDR, e->p_names[e->p_i], address_type(e));
		return;
	}
	e->p_done = true;
	e->env.validated = e->p_best;
	e->after_p(e);
}

static void p_answer(struct spf_eval *e, const struct gn_dns_result *r)
{
	if (e->step == STEP_P_PTR) {
		/* Errors and empty answers leave p "unknown". */
		if (classify(r) == ANS_RECORDS)
			take_names(e, r, SPF_MAX_PTR_NAMES, &e->p_names, &e->p_n);
		e->p_i = 0;
		p_next(e);
		return;
	}
	const char *name = e->p_names[e->p_i++];
	if (classify(r) == ANS_RECORDS && addresses_match(e, r, 32, 128)) {
		/* The domain itself first, then a subdomain, then any. */
		const char *d = e->env.domain;
		if (e->p_best == NULL ||
		    (strcasecmp(name, d) == 0) ||
		    (in_domain(name, d) && !in_domain(e->p_best, d)))
			e->p_best = name;
	}
	p_next(e);
}

/* Runs fn once %{p} is known, when s needs it; else at once.  Returns
 * true when fn was deferred. */
static bool need_p(struct spf_eval *e, const char *s, unsigned flags,
		   void (*fn)(struct spf_eval *))
{
	bool uses_p = false;
	const char *err;
	if (e->p_done || s == NULL ||
	    spf_macro_check(s, strlen(s), flags, &uses_p, &err) < 0 || !uses_p)
		return false;
	e->after_p = fn;
	query(e, STEP_P_PTR, reverse_name(e), GN_DNS_PTR);
	return true;
}

/* ---- terms ---- */

/* ---- the names of mx and ptr: their addresses, asked all at once ---- */

/* One name's address lookup.  The answers are taken in the names' order
 * once all are in (names_done()), so the result, the void count and the
 * matching name are those of asking one after the other (RFC 7208 4.6.4
 * counts the same lookups either way); only the waiting is shorter. */
struct name_slot {
	struct spf_eval *e;
	struct gn_dns_query *q;
	const char *name;
	unsigned hops;		/* CNAMEs followed */
	enum answer a;
	bool matched;		/* the client's address, within the term's prefix */
	const char *error;	/* a DNS failure, for a temperror */
};

static void names_done(struct spf_eval *e)
{
	struct frame *f = e->top;
	const struct spf_term *t = &f->rec->terms[f->next];
	bool mx = t->mechanism == SPF_MECH_MX;
	for (size_t i = 0; i < e->n_slots; i++) {
		struct name_slot *sl = &e->slots[i];
		if (sl->a == ANS_ERROR) {
			/* RFC 7208 5.5: in ptr, an error skips the name; in
			 * mx it is an error of the evaluation (4.4, 5). */
			if (mx) {
				complete(e, SPF_TEMPERROR, NULL, NULL, sl->error);
				return;
			}
			continue;
		}
		if (sl->a == ANS_VOID && count_void_of(e, address_type(e), sl->name) < 0)
			return;
		if (sl->matched) {
			frame_done(e, t->qualifier, t);
			return;
		}
	}
	f->next++;		/* no name matched */
	run_terms(e);
}

static void on_name_answer(const struct gn_dns_result *r, void *data)
{
	struct name_slot *sl = data;
	struct spf_eval *e = sl->e;
	sl->q = NULL;
	trace(e, "query", "%s %s: %s, %zu record%s%s%s", gn_dns_type_name(r->type), r->name,
	      gn_dns_status_name(r->status), r->n, r->n == 1 ? "" : "s",
	      r->canonical != NULL ? ", canonical " : "", r->canonical != NULL ? r->canonical : "");
	if ((r->status == GN_DNS_NODATA || (r->status == GN_DNS_OK && r->n == 0)) &&
	    r->canonical != NULL && strcmp(r->canonical, r->name) != 0 &&
	    ++sl->hops <= SPF_MAX_CNAMES) {
		/* As on_answer() does for the other queries. */
		e->res.queries++;
		sl->q = gn_dns_lookup(gn_pool_strdup(e->pool, r->canonical), (enum gn_dns_type)r->type,
				      on_name_answer, sl);
		return;
	}
	if (sl->hops > SPF_MAX_CNAMES) {
		sl->a = ANS_ERROR;
		sl->error = gn_pool_printf(e->pool, "%s %s: a CNAME chain longer than %d (or a loop)",
					   gn_dns_type_name(r->type), sl->name, SPF_MAX_CNAMES);
	} else {
		sl->a = classify(r);
		if (sl->a == ANS_ERROR)
			sl->error = gn_pool_printf(e->pool, "DNS %s for %s %s%s%s",
						   gn_dns_status_name(r->status),
						   gn_dns_type_name(r->type), r->name,
						   r->error != NULL ? ": " : "",
						   r->error != NULL ? r->error : "");
	}
	if (sl->a == ANS_RECORDS) {
		const struct spf_term *t = &e->top->rec->terms[e->top->next];
		if (t->mechanism == SPF_MECH_MX)
			sl->matched = addresses_match(e, r, t->cidr4, t->cidr6);
		else	/* RFC 7208 5.5: validated, and in the target domain */
			sl->matched = addresses_match(e, r, 32, 128) && in_domain(sl->name, e->target);
	}
	if (--e->slots_waiting == 0)
		names_done(e);
}

/* Asks for the addresses of the term's names (f->names), all at once. */
static void names_start(struct spf_eval *e)
{
	struct frame *f = e->top;
	e->n_slots = f->n_names;
	e->slots_waiting = f->n_names;
	if (f->n_names == 0) {
		names_done(e);
		return;
	}
	e->slots = gn_pool_alloc(e->pool, f->n_names * sizeof(*e->slots));
	for (size_t i = 0; i < f->n_names; i++) {
		struct name_slot *sl = &e->slots[i];
		sl->e = e;
		sl->name = f->names[i];
		e->res.queries++;
		sl->q = gn_dns_lookup(sl->name, address_type(e), on_name_answer, sl);
	}
}

static void names_cancel(struct spf_eval *e)
{
	for (size_t i = 0; i < e->n_slots; i++)
		gn_dns_cancel(&e->slots[i].q);
}

static void term_answer(struct spf_eval *e, const struct gn_dns_result *r)
{
	struct frame *f = e->top;
	const struct spf_term *t = &f->rec->terms[f->next];
	enum answer a = classify(r);
	switch (e->step) {
	case STEP_PTR:
		/* RFC 7208 5.5: a DNS error on the PTR lookup: no match. */
		if (a == ANS_ERROR) {
			f->next++;
			run_terms(e);
			return;
		}
		if (a == ANS_VOID && count_void(e, r) < 0)
			return;
		/* RFC 7208 4.6.4: names past the first 10 are ignored. */
		if (a == ANS_RECORDS)
			take_names(e, r, SPF_MAX_PTR_NAMES, &f->names, &f->n_names);
		names_start(e);
		return;
	default:
		break;
	}
	if (a == ANS_ERROR) {
		temperror(e, r);
		return;
	}
	if (a == ANS_VOID && count_void(e, r) < 0)
		return;
	switch (e->step) {
	case STEP_A:
		if (a == ANS_RECORDS && addresses_match(e, r, t->cidr4, t->cidr6)) {
			frame_done(e, t->qualifier, t);
			return;
		}
		break;
	case STEP_EXISTS:
		if (a == ANS_RECORDS) {
			frame_done(e, t->qualifier, t);
			return;
		}
		break;
	case STEP_MX:
		if (a == ANS_RECORDS && r->n > SPF_MAX_MX_NAMES) {
			/* RFC 7208 4.6.4: more than 10 MX names: permerror. */
			permerror(e, "%s: %s has %zu MX records, more than %d (RFC 7208 4.6.4)",
				  t->text, r->name, r->n, SPF_MAX_MX_NAMES);
			return;
		}
		f->n_names = 0;
		if (a == ANS_RECORDS)
			take_names(e, r, SPF_MAX_MX_NAMES, &f->names, &f->n_names);
		names_start(e);
		return;
	}
	f->next++;
	run_terms(e);
}

/* The target of a term: its domain-spec expanded, or the current domain.
 * NULL after completing with a permerror. */
static const char *term_target(struct spf_eval *e, const struct spf_term *t)
{
	if (t->spec == NULL)
		return e->top->domain;
	const char *err;
	const char *d = spf_macro_expand(e->pool, t->spec, strlen(t->spec), SPF_MACRO_DOMAIN,
					 &e->env, &err);
	if (d == NULL) {
		permerror(e, "%s: %s", t->text, err);
		return NULL;
	}
	return d;
}

/* Counts a term that queries the DNS; returns -1 after completing with
 * permerror when it is the 11th (RFC 7208 4.6.4). */
static int count_lookup(struct spf_eval *e, const struct spf_term *t)
{
	if (++e->res.lookups > SPF_MAX_LOOKUPS) {
		permerror(e, "%s: more than %d DNS-querying terms (RFC 7208 4.6.4)",
			  t->text, SPF_MAX_LOOKUPS);
		return -1;
	}
	return 0;
}

static void run_terms(struct spf_eval *e)
{
	struct frame *f = e->top;
	struct spf_record *rec = f->rec;
	e->env.domain = f->domain;
	for (; f->next < rec->n; f->next++) {
		const struct spf_term *t = &rec->terms[f->next];
		if (t->kind != SPF_TERM_MECHANISM)
			continue;
		switch (t->mechanism) {
		case SPF_MECH_ALL:
			frame_done(e, t->qualifier, t);
			return;
		case SPF_MECH_IP4:
			if (e->req.family == 4 && prefix_match(e->req.ip, t->ip, t->cidr4)) {
				frame_done(e, t->qualifier, t);
				return;
			}
			continue;
		case SPF_MECH_IP6:
			if (e->req.family == 6 && prefix_match(e->req.ip, t->ip, t->cidr6)) {
				frame_done(e, t->qualifier, t);
				return;
			}
			continue;
		default:
			break;
		}
		/* include, a, mx, ptr, exists: they query the DNS. */
		if (need_p(e, t->spec, SPF_MACRO_DOMAIN, run_terms))
			return;
		if (count_lookup(e, t) < 0)
			return;
		const char *target = term_target(e, t);
		if (target == NULL)
			return;
		e->target = target;
		trace(e, "term", "%s -> %s", t->text, target);
		switch (t->mechanism) {
		case SPF_MECH_INCLUDE:
			push_include(e, target);
			return;
		case SPF_MECH_A:
			query(e, STEP_A, target, address_type(e));
			return;
		case SPF_MECH_MX:
			query(e, STEP_MX, target, GN_DNS_MX);
			return;
		case SPF_MECH_EXISTS:
			/* RFC 7208 5.7: always an A query. */
			query(e, STEP_EXISTS, target, GN_DNS_A);
			return;
		case SPF_MECH_PTR:
			f->n_names = 0;
			query(e, STEP_PTR, reverse_name(e), GN_DNS_PTR);
			return;
		}
	}
	/* RFC 7208 6.1: redirect= applies when nothing matched and the
	 * record has no "all" (4.7: else the result is neutral). */
	const struct spf_term *rd = rec->redirect;
	if (rd == NULL || rec->has_all) {
		frame_done(e, SPF_NEUTRAL, NULL);
		return;
	}
	if (need_p(e, rd->spec, SPF_MACRO_DOMAIN, run_terms))
		return;
	if (count_lookup(e, rd) < 0)
		return;
	const char *target = term_target(e, rd);
	if (target == NULL)
		return;
	trace(e, "term", "%s -> %s", rd->text, target);
	f->domain = target;
	f->rec = NULL;
	f->redirected = true;
	e->env.domain = target;
	fetch_record(e);
}

/* ---- exp= ---- */

static void explanation_start(struct spf_eval *e)
{
	const struct spf_term *x = e->exp_rec->exp;
	if (need_p(e, x->spec, SPF_MACRO_DOMAIN, explanation_start))
		return;
	const char *err;
	const char *d = spf_macro_expand(e->pool, x->spec, strlen(x->spec), SPF_MACRO_DOMAIN,
					 &e->env, &err);
	if (d == NULL) {
		complete(e, e->res.result, NULL, NULL, NULL);
		return;
	}
	trace(e, "term", "%s -> %s", x->text, d);
	query(e, STEP_EXP, d, GN_DNS_TXT);
}

static void explanation_expand(struct spf_eval *e)
{
	const char *err;
	const char *s = spf_macro_expand(e->pool, e->target, strlen(e->target), SPF_MACRO_EXP,
					 &e->env, &err);
	if (s != NULL)
		e->res.explanation = s;
	complete(e, e->res.result, NULL, NULL, NULL);
}

static void explanation_answer(struct spf_eval *e, const struct gn_dns_result *r)
{
	/* RFC 7208 6.2: errors, no record, several records or a syntax
	 * error: as if there were no exp=. */
	const char *err;
	if (classify(r) != ANS_RECORDS || r->n != 1 ||
	    memchr(r->txt[0].text, '\0', r->txt[0].len) != NULL ||
	    spf_macro_check(r->txt[0].text, r->txt[0].len, SPF_MACRO_EXP, NULL, &err) < 0) {
		complete(e, e->res.result, NULL, NULL, NULL);
		return;
	}
	e->target = gn_pool_strndup(e->pool, r->txt[0].text, r->txt[0].len);
	if (need_p(e, e->target, SPF_MACRO_EXP, explanation_expand))
		return;
	explanation_expand(e);
}

/* ---- the loop's side ---- */

static void on_answer(const struct gn_dns_result *r, void *data)
{
	struct spf_eval *e = data;
	e->q = NULL;
	trace(e, "query", "%s %s: %s, %zu record%s%s%s", gn_dns_type_name(r->type), r->name,
	      gn_dns_status_name(r->status), r->n, r->n == 1 ? "" : "s",
	      r->canonical != NULL ? ", canonical " : "", r->canonical != NULL ? r->canonical : "");
	/* A CNAME whose target the resolver did not look up (local data
	 * answers the CNAME alone): ask for the target, as a resolver would
	 * have.  A resolver that followed it gave the target's answer, and
	 * asking again for a target without records costs one query. */
	if ((r->status == GN_DNS_NODATA || (r->status == GN_DNS_OK && r->n == 0)) &&
	    r->canonical != NULL && strcmp(r->canonical, r->name) != 0) {
		if (++e->cname_hops > SPF_MAX_CNAMES) {
			/* As a resolver that gives up on a chain: a DNS
			 * error, temperror (RFC 7208 4.4, 5). */
			complete(e, SPF_TEMPERROR, NULL, NULL,
				 gn_pool_printf(e->pool, "%s %s: a CNAME chain longer than %d (or a loop)",
						gn_dns_type_name(r->type), r->name, SPF_MAX_CNAMES));
			return;
		}
		e->res.queries++;
		e->q = gn_dns_lookup(gn_pool_strdup(e->pool, r->canonical), (enum gn_dns_type)r->type,
				     on_answer, e);
		return;
	}
	switch (e->step) {
	case STEP_RECORD:
		record_answer(e, r);
		return;
	case STEP_P_PTR: case STEP_P_ADDR:
		p_answer(e, r);
		return;
	case STEP_EXP:
		explanation_answer(e, r);
		return;
	default:
		term_answer(e, r);
		return;
	}
}

static bool valid_domain(const char *d)
{
	/* RFC 7208 4.3: a malformed domain or a single label: none. */
	size_t len = strlen(d);
	if (len == 0 || len > 253 || strchr(d, '.') == NULL)
		return false;
	size_t label = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || d[i] == '.') {
			if (label == 0 || label > 63)
				return false;
			label = 0;
		} else {
			label++;
		}
	}
	return true;
}

/* RFC 7208 4.6.4: an evaluation may be cut off after some time (at
 * least 20 seconds is the RFC's advice); it is a temperror then. */
static void on_deadline(void *data)
{
	struct spf_eval *e = data;
	gn_dns_cancel(&e->q);
	names_cancel(e);
	complete(e, SPF_TEMPERROR, NULL, NULL,
		 gn_pool_printf(e->pool, "no result within %u ms", e->req.timeout_ms));
}

/* An identity without a domain to ask, from the loop. */
static void start_none(void *data)
{
	struct spf_eval *e = data;
	gn_timer_free(&e->timer);
	complete(e, SPF_NONE, NULL, NULL,
		 gn_pool_printf(e->pool, "\"%s\" is not a domain with several labels (RFC 7208 4.3)",
				e->res.domain));
}

static void start(struct spf_eval *e)
{
	e->deadline = gn_timer_new(e->req.timeout_ms, false, on_deadline, e);
	struct frame *f = gn_pool_alloc(e->pool, sizeof(*f));
	f->domain = e->res.domain;
	e->top = f;
	e->env.domain = f->domain;
	fetch_record(e);
}

struct spf_eval *spf_check(struct gn_pool *pool, const struct spf_request *req,
			   spf_done_fn *done, void *data)
{
	struct spf_eval *e = gn_pool_alloc(pool, sizeof(*e));
	e->pool = pool;
	e->req = *req;
	e->done = done;
	e->data = data;
	if (e->req.timeout_ms == 0)
		e->req.timeout_ms = SPF_TIMEOUT_MS;
	/* An IPv4-mapped IPv6 address is the IPv4 client it maps. */
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (e->req.family == 6 && memcmp(e->req.ip, mapped, 12) == 0) {
		memmove(e->req.ip, e->req.ip + 12, 4);
		e->req.family = 4;
	}
	const char *helo = req->helo != NULL ? req->helo : "";
	size_t hl = strlen(helo);
	if (hl > 0 && helo[hl - 1] == '.')
		helo = gn_pool_strndup(pool, helo, hl - 1);
	const char *sender = req->sender;
	e->res.identity = req->check_helo ? "helo" : "mailfrom";
	/* RFC 7208 2.3, 2.4: HELO and "<>" check postmaster@HELO. */
	if (req->check_helo || sender == NULL || *sender == '\0')
		sender = gn_pool_printf(pool, "postmaster@%s", helo);
	const char *at = strrchr(sender, '@');
	const char *local, *domain;
	if (at == NULL) {
		local = "postmaster";
		domain = sender;
		sender = gn_pool_printf(pool, "postmaster@%s", sender);
	} else {
		/* RFC 7208 4.3: no local-part: "postmaster". */
		local = at == sender ? "postmaster" : gn_pool_strndup(pool, sender, (size_t)(at - sender));
		domain = at + 1;
		if (at == sender)
			sender = gn_pool_printf(pool, "postmaster%s", sender);
	}
	size_t dl = strlen(domain);
	if (dl > 0 && domain[dl - 1] == '.')
		domain = gn_pool_strndup(pool, domain, dl - 1);
	e->env.sender = sender;
	e->env.local = local;
	e->env.sender_domain = domain;
	/* check_host()'s <domain> (RFC 7208 4.1): the identity's domain
	 * unless the caller names another. */
	if (req->domain != NULL && *req->domain != '\0') {
		domain = req->domain;
		dl = strlen(domain);
		if (dl > 0 && domain[dl - 1] == '.')
			domain = gn_pool_strndup(pool, domain, dl - 1);
	}
	e->res.sender = sender;
	e->res.domain = domain;
	e->env.family = e->req.family;
	memcpy(e->env.ip, e->req.ip, sizeof(e->env.ip));
	e->env.helo = helo;
	e->env.receiver = req->receiver;
	e->env.now = (time_t)gn_now();
	if (valid_domain(e->res.domain))
		start(e);
	else
		e->timer = gn_timer_new(0, false, start_none, e);
	return e;
}

void spf_cancel(struct spf_eval **eval)
{
	if (eval == NULL || *eval == NULL)
		return;
	gn_dns_cancel(&(*eval)->q);
	names_cancel(*eval);
	gn_timer_free(&(*eval)->timer);
	gn_timer_free(&(*eval)->deadline);
	*eval = NULL;
}

void spf_set_trace(struct spf_eval *eval, spf_trace_fn *fn, void *data)
{
	eval->trace = fn;
	eval->trace_data = data;
}
