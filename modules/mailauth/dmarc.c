/*
 * modules/mailauth/dmarc.c: DMARC (RFC 7489): organisational domains from
 * the public suffix list, the policy lookup on the loop and the
 * evaluation (the record parser is dmarc-record.c).  dmarc.h says how the
 * parts fit.
 *
 * Decisions where the RFC leaves room, each beside its code:
 *   - a record that is not a tag-list, or with p (or sp) invalid and no
 *     valid rua: permerror (RFC 8601's "syntactically incorrect DMARC
 *     record"; RFC 7489 6.6.3 applies no policy either way);
 *   - several records at the name asked: none, no fallback (6.6.3);
 *   - no aligned pass but an aligned temperror of SPF or DKIM: temperror
 *     (the check might have passed), disposition none.
 */
#include "dmarc.h"
#include "spf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gannet/addr.h>
#include <gannet/dkim.h>
#include <gannet/dns.h>
#include <gannet/loop.h>

struct dmarc_psl *mailauth_psl;

/* ---- the public suffix list ---- */

#define RULE_NORMAL 0x1u	/* "example.com" */
#define RULE_WILDCARD 0x2u	/* "*.example.com", kept under "example.com" */
#define RULE_EXCEPTION 0x4u	/* "!www.example.com" */

struct psl_rule {
	const char *name;	/* lower case A-labels */
	unsigned kinds;
};

struct dmarc_psl {
	struct gn_pool *pool;
	struct psl_rule *rules;	/* sorted by name, one entry a name */
	size_t n;
};

static int rule_cmp(const void *a, const void *b)
{
	return strcmp(((const struct psl_rule *)a)->name, ((const struct psl_rule *)b)->name);
}

/* A rule's name to lower-case A-labels; NULL when it is not a name. */
static const char *rule_name(struct gn_pool *pool, const char *s, size_t len)
{
	bool ascii = true;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			ascii = false;
	char *name = gn_pool_strndup(pool, s, len);
	if (ascii) {
		for (char *p = name; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	const char *out, *err;
	if (gn_dns_name_check(pool, name, &out, &err) < 0)
		return NULL;
	return out;
}

int dmarc_psl_parse(const char *text, size_t len, struct dmarc_psl **psl_r, const char **error_r)
{
	struct dmarc_psl *psl = gn_calloc(1, sizeof(*psl));
	psl->pool = gn_pool_new();
	size_t cap = 0;
	const char *end = text + len;
	for (const char *line = text; line < end;) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *le = nl != NULL ? nl : end;
		/* The PSL format: the rule is the line up to the first white
		 * space; "//" starts a comment line. */
		const char *p = line;
		while (p < le && (*p == ' ' || *p == '\t'))
			p++;
		const char *q = p;
		while (q < le && *q != ' ' && *q != '\t' && *q != '\r')
			q++;
		line = nl != NULL ? nl + 1 : end;
		if (q == p || (q - p >= 2 && p[0] == '/' && p[1] == '/'))
			continue;
		unsigned kind = RULE_NORMAL;
		if (*p == '!') {
			kind = RULE_EXCEPTION;
			p++;
		} else if (q - p >= 2 && p[0] == '*' && p[1] == '.') {
			kind = RULE_WILDCARD;
			p += 2;
		}
		const char *name = p < q ? rule_name(psl->pool, p, (size_t)(q - p)) : NULL;
		if (name == NULL)
			continue;
		if (psl->n == cap) {
			cap = cap == 0 ? 1024 : cap * 2;
			psl->rules = gn_realloc(psl->rules, cap * sizeof(*psl->rules));
		}
		psl->rules[psl->n].name = name;
		psl->rules[psl->n].kinds = kind;
		psl->n++;
	}
	if (psl->n == 0) {
		dmarc_psl_free(&psl);
		*error_r = "no public suffix rule in it";
		return -1;
	}
	qsort(psl->rules, psl->n, sizeof(*psl->rules), rule_cmp);
	size_t k = 0;
	for (size_t i = 0; i < psl->n; i++) {
		if (k > 0 && strcmp(psl->rules[k - 1].name, psl->rules[i].name) == 0)
			psl->rules[k - 1].kinds |= psl->rules[i].kinds;
		else
			psl->rules[k++] = psl->rules[i];
	}
	psl->n = k;
	*psl_r = psl;
	return 0;
}

int dmarc_psl_load(const char *path, struct dmarc_psl **psl_r, const char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > DMARC_PSL_MAX_SIZE) {
		close(fd);
		*error_r = "not a regular file of at most 16 MiB";
		return -1;
	}
	size_t size = (size_t)st.st_size, got = 0;
	char *buf = gn_malloc(size + 1);
	while (got < size) {
		ssize_t r = read(fd, buf + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	int rc = dmarc_psl_parse(buf, got, psl_r, error_r);
	gn_free(buf);
	return rc;
}

void dmarc_psl_free(struct dmarc_psl **psl)
{
	if (psl == NULL || *psl == NULL)
		return;
	gn_pool_free(&(*psl)->pool);
	gn_free((*psl)->rules);
	gn_free(*psl);
	*psl = NULL;
}

size_t dmarc_psl_count(const struct dmarc_psl *psl)
{
	return psl != NULL ? psl->n : 0;
}

static unsigned rule_kinds(const struct dmarc_psl *psl, const char *name)
{
	struct psl_rule key = { .name = name };
	const struct psl_rule *r = bsearch(&key, psl->rules, psl->n, sizeof(*psl->rules), rule_cmp);
	return r != NULL ? r->kinds : 0;
}

#define PSL_MAX_LABELS 127	/* a 253-octet name has at most 127 */

const char *dmarc_org_domain(const struct dmarc_psl *psl, struct gn_pool *pool,
			     const char *domain)
{
	size_t len = domain != NULL ? strlen(domain) : 0;
	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return NULL;
	char *d = gn_pool_strndup(pool, domain, len);
	for (char *p = d; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	/* starts[i]: where the suffix of the labels i.. begins. */
	size_t starts[PSL_MAX_LABELS + 1], n = 0;
	starts[n++] = 0;
	for (size_t i = 0; i < len; i++) {
		if (d[i] != '.')
			continue;
		if (i + 1 == len || d[i + 1] == '.' || i == 0 || n > PSL_MAX_LABELS)
			return NULL;	/* an empty label */
		starts[n++] = i + 1;
	}
	if (psl == NULL)
		return NULL;
	/* The PSL algorithm (publicsuffix.org/list/, "Algorithm"): an
	 * exception rule wins and its public suffix is the rule without its
	 * leftmost label; else the rule with the most labels, a wildcard
	 * matching one label more than its own; else "*": the last label. */
	size_t ps = n - 1;	/* index of the label where the suffix begins */
	bool found = false;
	for (size_t i = 0; i < n && !found; i++) {
		if (rule_kinds(psl, d + starts[i]) & RULE_EXCEPTION) {
			ps = i + 1 < n ? i + 1 : i;
			found = true;
		}
	}
	for (size_t i = 0; i < n && !found; i++) {
		if ((rule_kinds(psl, d + starts[i]) & RULE_NORMAL) ||
		    (i + 1 < n && (rule_kinds(psl, d + starts[i + 1]) & RULE_WILDCARD))) {
			ps = i;
			found = true;
		}
	}
	/* RFC 7489 3.2: the public suffix plus one label.  A public suffix
	 * itself has none; it stands for itself. */
	return ps == 0 ? d : d + starts[ps - 1];
}

/* ---- the policy lookup ---- */

struct dmarc_lookup {
	struct gn_pool *pool;
	struct dmarc_lookup_result res;
	dmarc_lookup_fn *done;
	dmarc_trace_fn *trace;
	void *data;
	struct gn_dns_query *q;
	struct gn_timer *timer;
	bool at_org;		/* the query in flight is the fallback */
};

static void lookup_trace(struct dmarc_lookup *l, const char *what, const char *fmt, ...)
	GN_PRINTF(3, 4);
static void lookup_trace(struct dmarc_lookup *l, const char *what, const char *fmt, ...)
{
	if (l->trace == NULL)
		return;
	struct gn_buf *b = gn_buf_new(0);
	va_list ap;
	va_start(ap, fmt);
	gn_buf_vprintf(b, fmt, ap);
	va_end(ap);
	l->trace(what, gn_buf_data(b), l->data);
	gn_buf_free(&b);
}

static void lookup_complete(struct dmarc_lookup *l, int status, const char *problem)
{
	l->res.status = status;
	if (problem != NULL)
		l->res.problem = problem;
	gn_timer_free(&l->timer);
	l->done(&l->res, l->data);
}

static void lookup_ask(struct dmarc_lookup *l, const char *domain);

static void on_policy(const struct gn_dns_result *r, void *data)
{
	struct dmarc_lookup *l = data;
	l->q = NULL;
	const char *asked = l->at_org ? l->res.org_domain : l->res.domain;
	lookup_trace(l, "query", "TXT %s: %s, %zu record%s", r->name, gn_dns_status_name(r->status),
		     r->n, r->n == 1 ? "" : "s");
	if (r->status != GN_DNS_OK && r->status != GN_DNS_NODATA &&
	    r->status != GN_DNS_NXDOMAIN) {
		/* RFC 7489 6.6.3 (and 11.2's temperror): a DNS error. */
		lookup_complete(l, DMARC_TEMPERROR,
				gn_pool_printf(l->pool, "DNS %s for TXT %s%s%s",
					       gn_dns_status_name(r->status), r->name,
					       r->error != NULL ? ": " : "",
					       r->error != NULL ? r->error : ""));
		return;
	}
	const struct gn_dns_txt *found = NULL;
	size_t n = 0;
	for (size_t i = 0; r->status == GN_DNS_OK && i < r->n; i++) {
		/* RFC 7489 6.6.3 step 3: records that do not start with a
		 * "v=" tag of DMARC1 are discarded. */
		if (dmarc_record_is_dmarc(r->txt[i].text, r->txt[i].len)) {
			lookup_trace(l, "record", "%s", asked);
			found = &r->txt[i];
			n++;
		}
	}
	if (n > 1) {
		/* RFC 7489 6.6.3 step 4: several records: discovery ends and
		 * no policy applies. */
		l->res.record_domain = asked;
		lookup_complete(l, DMARC_NONE,
				gn_pool_printf(l->pool, "_dmarc.%s has %zu DMARC records (RFC 7489 6.6.3)",
					       asked, n));
		return;
	}
	if (n == 0) {
		/* RFC 7489 6.6.3 step 5: the organisational domain's record. */
		if (!l->at_org && strcmp(l->res.org_domain, l->res.domain) != 0) {
			l->at_org = true;
			lookup_ask(l, l->res.org_domain);
			return;
		}
		lookup_complete(l, DMARC_NONE, l->at_org ?
				gn_pool_printf(l->pool, "no DMARC record at _dmarc.%s nor _dmarc.%s",
					       l->res.domain, l->res.org_domain) :
				gn_pool_printf(l->pool, "no DMARC record at _dmarc.%s", l->res.domain));
		return;
	}
	l->res.record_domain = asked;
	l->res.text = gn_pool_strndup(l->pool, found->text, found->len);
	const char *err;
	if (dmarc_record_parse(l->pool, found->text, found->len, &l->res.rec, &err) < 0) {
		lookup_complete(l, DMARC_PERMERROR, gn_pool_printf(l->pool, "_dmarc.%s: %s", asked, err));
		return;
	}
	lookup_complete(l, DMARC_PASS, NULL);
}

static void lookup_ask(struct dmarc_lookup *l, const char *domain)
{
	l->q = gn_dns_lookup(gn_pool_printf(l->pool, "_dmarc.%s", domain), GN_DNS_TXT, on_policy, l);
}

/* A From domain that is none, from the loop. */
static void lookup_none(void *data)
{
	struct dmarc_lookup *l = data;
	gn_timer_free(&l->timer);
	lookup_complete(l, DMARC_NONE, gn_pool_printf(l->pool, "\"%s\" is not a domain",
						     l->res.domain));
}

struct dmarc_lookup *dmarc_lookup(struct gn_pool *pool, const struct dmarc_psl *psl,
				  const char *from_domain, dmarc_lookup_fn *done,
				  dmarc_trace_fn *trace, void *data)
{
	struct dmarc_lookup *l = gn_pool_alloc(pool, sizeof(*l));
	l->pool = pool;
	l->done = done;
	l->trace = trace;
	l->data = data;
	const char *ascii, *err;
	/* The name as the resolver will see it (A-labels, lower case). */
	if (from_domain != NULL && gn_dns_name_check(pool, from_domain, &ascii, &err) == 0) {
		l->res.domain = ascii;
		l->res.org_domain = dmarc_org_domain(psl, pool, ascii);
	} else {
		l->res.domain = gn_pool_strdup(pool, from_domain != NULL ? from_domain : "");
	}
	/* done never runs from in here: a DNS answer comes from the loop,
	 * and so does the answer for a domain that is none. */
	if (l->res.org_domain != NULL)
		lookup_ask(l, l->res.domain);
	else
		l->timer = gn_timer_new(0, false, lookup_none, l);
	return l;
}

void dmarc_lookup_cancel(struct dmarc_lookup **op)
{
	if (op == NULL || *op == NULL)
		return;
	gn_dns_cancel(&(*op)->q);
	gn_timer_free(&(*op)->timer);
	*op = NULL;
}

/* ---- the evaluation ---- */

bool dmarc_aligned(const struct dmarc_psl *psl, struct gn_pool *pool, const char *a,
		   const char *b, char mode)
{
	if (a == NULL || b == NULL)
		return false;
	size_t la = strlen(a), lb = strlen(b);
	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	if (la == 0 || lb == 0)
		return false;
	/* RFC 7489 3.1.1, 3.1.2: strict, the same name. */
	if (la == lb && strncasecmp(a, b, la) == 0)
		return true;
	if (mode == 's')
		return false;
	/* Relaxed: the same organisational domain. */
	const char *oa = dmarc_org_domain(psl, pool, gn_pool_strndup(pool, a, la));
	const char *ob = dmarc_org_domain(psl, pool, gn_pool_strndup(pool, b, lb));
	return oa != NULL && ob != NULL && strcmp(oa, ob) == 0;
}

static unsigned random_sample(void)
{
	return arc4random_uniform(100);
}

void dmarc_evaluate(struct gn_pool *pool, const struct dmarc_psl *psl,
		    const struct dmarc_input *in, const struct dmarc_lookup_result *lk,
		    struct dmarc_result *out)
{
	memset(out, 0, sizeof(*out));
	out->header_from = in->from_domain;
	out->disposition = DMARC_POLICY_NONE;
	if (lk != NULL) {
		out->org_domain = lk->org_domain;
		out->record_domain = lk->record_domain;
		if (lk->domain != NULL && *lk->domain != '\0')
			out->header_from = lk->domain;
	}
	if (lk == NULL || lk->status != DMARC_PASS) {
		out->result = lk != NULL ? lk->status : DMARC_NONE;
		out->reason = lk != NULL && lk->problem != NULL ? lk->problem : "no DMARC policy";
		return;
	}
	const struct dmarc_record *rec = lk->rec;
	/* RFC 7489 6.6.3: a record found at the organisational domain for
	 * another From domain: sp, or p for want of it. */
	out->subdomain = strcmp(lk->record_domain, lk->domain) != 0;
	out->policy = out->subdomain && rec->sp != DMARC_POLICY_UNSET ? rec->sp : rec->p;
	const char *from = out->header_from;
	/* RFC 7489 4.2: a pass when either SPF or DKIM passes with an
	 * aligned identifier. */
	bool temp = false;
	bool spf_al = dmarc_aligned(psl, pool, in->spf_domain, from, rec->aspf);
	if (spf_al && in->spf_result == SPF_PASS)
		out->spf_aligned = true;
	else if (spf_al && in->spf_result == SPF_TEMPERROR)
		temp = true;
	for (size_t i = 0; i < in->n_dkim; i++) {
		if (!dmarc_aligned(psl, pool, in->dkim[i].domain, from, rec->adkim))
			continue;
		if (in->dkim[i].status == GN_DKIM_PASS && !out->dkim_aligned) {
			out->dkim_aligned = true;
			out->dkim_domain = in->dkim[i].domain;
		} else if (in->dkim[i].status == GN_DKIM_TEMPERROR) {
			temp = true;
		}
	}
	if (out->spf_aligned || out->dkim_aligned) {
		out->result = DMARC_PASS;
		out->reason = out->dkim_aligned ?
			gn_pool_printf(pool, "aligned DKIM pass (d=%s)", out->dkim_domain) :
			gn_pool_printf(pool, "aligned SPF pass (%s)", in->spf_domain);
		return;
	}
	if (temp) {
		/* Our choice: an aligned check that could not run might have
		 * passed; the caller may try later. */
		out->result = DMARC_TEMPERROR;
		out->reason = "no aligned pass, an aligned check had a temporary error";
		return;
	}
	out->result = DMARC_FAIL;
	/* RFC 7489 6.6.4: pct: a message outside the sample gets the next
	 * milder policy (reject -> quarantine, quarantine -> none). */
	unsigned roll = in->sample >= 0 && in->sample < 100 ? (unsigned)in->sample : random_sample();
	out->disposition = out->policy;
	if (roll >= rec->pct && out->policy != DMARC_POLICY_NONE) {
		out->sampled_out = true;
		out->disposition = out->policy == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE :
			DMARC_POLICY_NONE;
	}
	out->reason = gn_pool_printf(pool, "no aligned pass (SPF %s%s%s, %zu DKIM signature%s)",
				     spf_result_name(in->spf_result),
				     in->spf_domain != NULL ? " for " : "",
				     in->spf_domain != NULL ? in->spf_domain : "",
				     in->n_dkim, in->n_dkim == 1 ? "" : "s");
}

/* RFC 7489 6.6.1: the RFC5322.From domain.  A message without a From,
 * with several From fields or several addresses in one has none we can
 * use (the RFC lets a receiver reject such mail; here it is "none" with
 * the reason).  NULL with *why_r. */
const char *dmarc_from_domain(struct gn_pool *pool, const char *msg, size_t len,
			       const char **why_r)
{
	const char *value = NULL;
	size_t vlen = 0, count = 0;
	size_t i = 0;
	while (i < len) {
		size_t start = i;
		/* A field runs to a line end not followed by white space. */
		for (;;) {
			const char *nl = memchr(msg + i, '\n', len - i);
			i = nl != NULL ? (size_t)(nl - msg) + 1 : len;
			if (i >= len || (msg[i] != ' ' && msg[i] != '\t'))
				break;
		}
		size_t e = i;
		while (e > start && (msg[e - 1] == '\n' || msg[e - 1] == '\r'))
			e--;
		if (e == start)
			break;	/* the empty line: the end of the header */
		if (e - start >= 5 && strncasecmp(msg + start, "from", 4) == 0) {
			size_t k = start + 4;
			while (k < e && (msg[k] == ' ' || msg[k] == '\t'))
				k++;
			if (k < e && msg[k] == ':') {
				count++;
				value = msg + k + 1;
				vlen = e - k - 1;
			}
		}
	}
	if (count == 0) {
		*why_r = "the message has no From field";
		return NULL;
	}
	if (count > 1) {
		*why_r = "the message has several From fields (RFC 7489 6.6.1)";
		return NULL;
	}
	struct gn_addr_list list;
	const char *err;
	if (gn_addr_parse_header(pool, value, vlen, &list, &err) < 0) {
		*why_r = gn_pool_printf(pool, "the From field does not parse: %s", err);
		return NULL;
	}
	const struct gn_addr *addr = NULL;
	size_t mailboxes = 0;
	for (size_t k = 0; k < list.count; k++) {
		if (list.items[k]->kind == GN_ADDR_MAILBOX) {
			mailboxes++;
			addr = list.items[k]->addr;
		}
	}
	if (mailboxes != 1 || addr == NULL || addr->domain[0] == '\0' || addr->domain[0] == '[') {
		*why_r = mailboxes > 1 ? "the From field has several addresses (RFC 7489 6.6.1)" :
			"the From field has no address with a domain";
		return NULL;
	}
	return addr->domain;
}
