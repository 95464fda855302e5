/*
 * core/mail/dkim-verify.c: the DKIM verifier (RFC 6376 6, gannet/dkim.h),
 * pure: it takes a message and, for each signature, the answer to its key
 * lookup, and computes the results.  The lookups themselves are the dns
 * layer's (core/dns/dkim.c); a fuzz target and the unit tests feed the
 * answers directly.
 *
 * The message comes in pieces.  The header is kept (at most
 * GN_DKIM_MAX_HEADER); when it ends, the DKIM-Signature fields are read
 * (the first max_signatures of them; the others are reported neutral) and
 * each readable one gets a body canonicaliser of its own, limited to its
 * l=, fed as the body comes, so the body is never kept.  At the end the
 * body hashes and data hashes are computed; a signature then waits for its
 * key (RFC 6376 6.1.2) and gn_dkim_verifier_key() decides it: key record,
 * then body hash (6.1.3), then the signature.
 *
 * Results follow RFC 8601 2.7.1; gannet/dkim.h lists which check gives
 * which.  Deliberate choices: rsa-sha1 and RSA keys under 1024 bits are
 * "policy" (RFC 8301 3.1, 3.2: never valid), as are an expired x= and a t=
 * ahead of the clock by more than 5 minutes; x= equal to t= is allowed.
 */
#include "mail/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 6376 3.5 t=: a signature from the future is not trusted; this much
 * clock skew is forgiven. */
#define T_SKEW 300

struct sig {
	struct gn_dkim_verify_result r;
	const struct gn_dkim_field *field;
	bool need_key;		/* waiting for gn_dkim_verifier_key() */
	const char *key_name;
	/* The key's answer when it came before gn_dkim_verifier_finish(),
	 * kept (in the pool) until the hashes are known. */
	bool early;
	enum gn_dkim_key_answer answer;
	const char **texts;
	size_t *lens, n_texts;
	const char *why;
	enum gn_dkim_algorithm alg;
	enum gn_dkim_canon hc, bc;
	const char **names;	/* h= */
	size_t n_names;
	const unsigned char *b, *bh;
	size_t b_len, bh_len;
	bool has_l;
	uint64_t l;
	struct gn_dkim_body *body;
	bool bh_ok;
	unsigned char data_hash[GN_DKIM_HASH_SIZE];
};

struct gn_dkim_verifier {
	struct gn_pool *pool;
	unsigned max;
	time_t now;
	struct gn_buf *header;
	size_t line_len;	/* octets other than CR in the header's line */
	bool in_body, header_read, finished;
	const char *header_error;
	struct gn_dkim_field *fields;
	size_t n_fields;
	struct sig *sigs;
	size_t n_sigs;
};

const char *gn_dkim_status_name(int status)
{
	static const char *const names[] = {
		"none", "pass", "fail", "policy", "neutral", "temperror", "permerror",
	};
	if (status < 0 || (size_t)status >= sizeof(names) / sizeof(names[0]))
		return "?";
	return names[status];
}

static bool is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static char *lower_dup(struct gn_pool *pool, const char *s)
{
	char *d = gn_pool_strdup(pool, s);
	for (char *p = d; *p != '\0'; p++)
		*p = lower(*p);
	return d;
}

static void decide(struct sig *s, enum gn_dkim_status status, const char *reason)
{
	s->r.status = status;
	s->r.reason = status == GN_DKIM_PASS ? NULL : reason;
	s->need_key = false;
}

/* A run of 1 to max decimal digits: 0 with *v_r, or -1. */
static int digits(const char *s, size_t max, uint64_t *v_r)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*v_r = v;
	return 0;
}

/* Whether the colon-separated list (white space allowed around items)
 * has item, ASCII case-insensitive. */
static bool list_has(const char *list, const char *item)
{
	size_t want = strlen(item);
	const char *p = list;
	while (*p != '\0') {
		while (is_fws(*p) || *p == ':')
			p++;
		const char *e = p;
		while (*e != '\0' && *e != ':')
			e++;
		const char *z = e;
		while (z > p && is_fws(z[-1]))
			z--;
		if ((size_t)(z - p) == want && strncasecmp(p, item, want) == 0)
			return true;
		p = e;
	}
	return false;
}

/* Whether dom is d or a subdomain of it (both lower case). */
static bool within(const char *dom, const char *d)
{
	size_t a = strlen(dom), b = strlen(d);
	if (a == b)
		return strcmp(dom, d) == 0;
	return a > b && dom[a - b - 1] == '.' && strcmp(dom + a - b, d) == 0;
}

/* Reads h=: 0 with s->names, or -1 with a reason. */
static int read_h(struct gn_pool *pool, struct sig *s, const char *h, const char **why)
{
	size_t n = 1;
	for (const char *p = h; *p != '\0'; p++)
		n += *p == ':';
	if (n > GN_DKIM_MAX_FIELDS) {
		/* Each name is looked for in every field: bounded work. */
		*why = "h= lists more than 1000 fields";
		return -1;
	}
	s->names = gn_pool_alloc(pool, n * sizeof(*s->names));
	bool from = false;
	const char *p = h;
	for (;;) {
		const char *e = strchr(p, ':');
		if (e == NULL)
			e = p + strlen(p);
		const char *a = p, *z = e;
		while (a < z && is_fws(*a))
			a++;
		while (z > a && is_fws(z[-1]))
			z--;
		if (a == z) {
			*why = "h= has an empty field name";
			return -1;
		}
		for (const char *c = a; c < z; c++)
			if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
				*why = "h= has a bad field name";
				return -1;
			}
		const char *name = gn_pool_strndup(pool, a, (size_t)(z - a));
		from = from || strcasecmp(name, "from") == 0;
		s->names[s->n_names++] = name;
		if (*e == '\0')
			break;
		p = e + 1;
	}
	if (!from) {
		/* RFC 6376 5.4, 6.1.1: From must be signed. */
		*why = "From is not signed (h= lacks it)";
		return -1;
	}
	return 0;
}

/* The b= value without white space, for header.b; NULL without b=. */
static const char *b_text(struct gn_pool *pool, const char *b)
{
	if (b == NULL)
		return NULL;
	char *r = gn_pool_alloc(pool, strlen(b) + 1), *o = r;
	for (const char *p = b; *p != '\0'; p++)
		if (!is_fws(*p))
			*o++ = *p;
	*o = '\0';
	return r;
}

/* Reads the signature of field i and checks what needs no key (RFC 6376
 * 6.1.1); an evaluated signature that passes gets its body canonicaliser
 * and waits for its key. */
static void read_sig(struct gn_dkim_verifier *v, struct sig *s, bool evaluate, const char **btext_r)
{
	struct gn_pool *pool = v->pool;
	const char *colon = memchr(s->field->data, ':', s->field->len);
	size_t off = (size_t)(colon - s->field->data) + 1;
	struct gn_dkim_tag *tags;
	size_t n;
	const char *err, *why;
	s->r.body_length = -1;
	s->r.timestamp = -1;
	s->r.expires = -1;
	*btext_r = NULL;
	if (gn_dkim_tags_parse(pool, s->field->data + off, s->field->len - off, &tags, &n, &err) < 0) {
		decide(s, evaluate ? GN_DKIM_PERMERROR : GN_DKIM_NEUTRAL,
		       gn_pool_printf(pool, "malformed signature: %s", err));
		if (!evaluate)
			goto skipped;
		return;
	}
	const char *tv = gn_dkim_tags_get(tags, n, "v"), *a = gn_dkim_tags_get(tags, n, "a"),
		   *b = gn_dkim_tags_get(tags, n, "b"), *bh = gn_dkim_tags_get(tags, n, "bh"),
		   *c = gn_dkim_tags_get(tags, n, "c"), *d = gn_dkim_tags_get(tags, n, "d"),
		   *h = gn_dkim_tags_get(tags, n, "h"), *i = gn_dkim_tags_get(tags, n, "i"),
		   *l = gn_dkim_tags_get(tags, n, "l"), *q = gn_dkim_tags_get(tags, n, "q"),
		   *sel = gn_dkim_tags_get(tags, n, "s"), *t = gn_dkim_tags_get(tags, n, "t"),
		   *x = gn_dkim_tags_get(tags, n, "x");
	/* What is reported, as far as it reads. */
	if (d != NULL && dkim_name_ok(d))
		s->r.domain = lower_dup(pool, d);
	if (sel != NULL && dkim_name_ok(sel))
		s->r.selector = lower_dup(pool, sel);
	s->r.algorithm = a;
	*btext_r = b_text(pool, b);
	if (s->r.domain != NULL) {
		s->r.identity = i != NULL ? i : gn_pool_printf(pool, "@%s", s->r.domain);
		const char *at = strrchr(s->r.identity, '@');
		if (at != NULL)
			s->r.identity_domain = lower_dup(pool, at + 1);
	}
	if (!evaluate)
		goto skipped;

	/* RFC 6376 6.1.1: the required tags, then each tag's syntax. */
	static const char *const required[] = { "v", "a", "b", "bh", "d", "h", "s" };
	for (size_t k = 0; k < sizeof(required) / sizeof(required[0]); k++)
		if (gn_dkim_tags_get(tags, n, required[k]) == NULL) {
			decide(s, GN_DKIM_PERMERROR,
			       gn_pool_printf(pool, "signature has no %s= tag", required[k]));
			return;
		}
	if (strcmp(tv, "1") != 0) {
		decide(s, GN_DKIM_PERMERROR, gn_pool_printf(pool, "unknown signature version v=%.20s", tv));
		return;
	}
	if (strcmp(a, "rsa-sha256") == 0) {
		s->alg = GN_DKIM_RSA_SHA256;
	} else if (strcmp(a, "ed25519-sha256") == 0) {
		s->alg = GN_DKIM_ED25519_SHA256;
	} else if (strcmp(a, "rsa-sha1") == 0) {
		/* RFC 8301 3.1: verifiers MUST NOT consider rsa-sha1
		 * signatures valid. */
		decide(s, GN_DKIM_POLICY, "rsa-sha1 is not accepted (RFC 8301)");
		return;
	} else {
		decide(s, GN_DKIM_PERMERROR, gn_pool_printf(pool, "unknown algorithm a=%.40s", a));
		return;
	}
	s->hc = s->bc = GN_DKIM_SIMPLE;
	if (c != NULL) {
		/* RFC 6376 3.5 c=: header/body, body simple when absent. */
		const char *slash = strchr(c, '/');
		size_t hl = slash != NULL ? (size_t)(slash - c) : strlen(c);
		const char *body = slash != NULL ? slash + 1 : "simple";
		bool ok = true;
		if (hl == 7 && strncmp(c, "relaxed", 7) == 0)
			s->hc = GN_DKIM_RELAXED;
		else if (!(hl == 6 && strncmp(c, "simple", 6) == 0))
			ok = false;
		if (strcmp(body, "relaxed") == 0)
			s->bc = GN_DKIM_RELAXED;
		else if (strcmp(body, "simple") != 0)
			ok = false;
		if (!ok) {
			decide(s, GN_DKIM_PERMERROR,
			       gn_pool_printf(pool, "unknown canonicalization c=%.40s", c));
			return;
		}
	}
	if (q != NULL && !list_has(q, "dns/txt")) {
		decide(s, GN_DKIM_PERMERROR, "q= does not allow dns/txt");
		return;
	}
	if (s->r.domain == NULL) {
		decide(s, GN_DKIM_PERMERROR, "d= is not a domain name");
		return;
	}
	if (s->r.selector == NULL) {
		decide(s, GN_DKIM_PERMERROR, "s= is not a selector");
		return;
	}
	if (i != NULL) {
		/* RFC 6376 3.5 i=: its domain is d= or a subdomain. */
		if (s->r.identity_domain == NULL || !within(s->r.identity_domain, s->r.domain)) {
			decide(s, GN_DKIM_PERMERROR, "i= is not within d=");
			return;
		}
	}
	if (read_h(pool, s, h, &why) < 0) {
		decide(s, GN_DKIM_PERMERROR, why);
		return;
	}
	if (dkim_b64_decode(pool, b, &s->b, &s->b_len) < 0 || s->b_len == 0) {
		decide(s, GN_DKIM_PERMERROR, "b= is not base64");
		return;
	}
	if (dkim_b64_decode(pool, bh, &s->bh, &s->bh_len) < 0) {
		decide(s, GN_DKIM_PERMERROR, "bh= is not base64");
		return;
	}
	uint64_t val;
	if (l != NULL) {
		/* RFC 6376 3.5 l=: up to 76 digits; more than 18 is more than
		 * any body we take, so it is also longer than this one. */
		if (digits(l, 76, &val) < 0) {
			decide(s, GN_DKIM_PERMERROR, "l= is not a number");
			return;
		}
		s->has_l = true;
		s->l = strlen(l) > 18 ? UINT64_MAX : val;
		s->r.body_length = strlen(l) > 18 ? -1 : (long long)val;
	}
	if (t != NULL) {
		if (digits(t, 12, &val) < 0) {
			decide(s, GN_DKIM_PERMERROR, "t= is not a time");
			return;
		}
		s->r.timestamp = (long long)val;
	}
	if (x != NULL) {
		if (digits(x, 12, &val) < 0) {
			decide(s, GN_DKIM_PERMERROR, "x= is not a time");
			return;
		}
		s->r.expires = (long long)val;
		if (s->r.timestamp >= 0 && s->r.expires < s->r.timestamp) {
			decide(s, GN_DKIM_PERMERROR, "x= is before t=");
			return;
		}
		if (s->r.expires < (long long)v->now) {
			decide(s, GN_DKIM_POLICY, "signature expired (x= is past)");
			return;
		}
	}
	if (s->r.timestamp > (long long)v->now + T_SKEW) {
		decide(s, GN_DKIM_POLICY, "signature time t= is in the future");
		return;
	}
	s->key_name = gn_pool_printf(pool, "%s._domainkey.%s", s->r.selector, s->r.domain);
	if (strlen(s->key_name) > 253) {
		decide(s, GN_DKIM_PERMERROR, "s= and d= make a name too long for the DNS");
		return;
	}
	s->body = s->has_l ? dkim_body_new_limit(s->bc, s->l) : gn_dkim_body_new(s->bc);
	decide(s, GN_DKIM_TEMPERROR, "key not looked up");
	s->need_key = true;
	return;
skipped:
	s->r.status = GN_DKIM_NEUTRAL;
	s->r.reason = gn_pool_printf(pool, "not evaluated: more than %u signatures", v->max);
}

/* The header has ended (or the message, without a body). */
static void header_end(struct gn_dkim_verifier *v)
{
	v->header_read = true;
	const char *err;
	if (gn_dkim_header_split(v->pool, gn_buf_data(v->header), gn_buf_len(v->header),
				 &v->fields, &v->n_fields, &err) < 0) {
		v->header_error = err;
		return;
	}
	size_t n = 0;
	for (size_t i = 0; i < v->n_fields; i++)
		n += gn_dkim_field_is(&v->fields[i], "DKIM-Signature") != 0;
	v->sigs = gn_pool_alloc(v->pool, (n + 1) * sizeof(*v->sigs));
	memset(v->sigs, 0, (n + 1) * sizeof(*v->sigs));
	const char **btext = gn_pool_alloc(v->pool, (n + 1) * sizeof(*btext));
	for (size_t i = 0; i < v->n_fields; i++) {
		if (!gn_dkim_field_is(&v->fields[i], "DKIM-Signature"))
			continue;
		struct sig *s = &v->sigs[v->n_sigs];
		s->field = &v->fields[i];
		read_sig(v, s, v->n_sigs < v->max, &btext[v->n_sigs]);
		v->n_sigs++;
	}
	/* RFC 6008 2: header.b, the shortest prefix of at least 8 characters
	 * that no other signature's b= starts with. */
	for (size_t i = 0; i < v->n_sigs; i++) {
		const char *b = btext[i];
		if (b == NULL)
			continue;
		size_t len = strlen(b), want = len < 8 ? len : 8;
		for (size_t j = 0; j < v->n_sigs; j++) {
			const char *o = btext[j];
			if (j == i || o == NULL || strcmp(o, b) == 0)
				continue;
			size_t k = 0;
			while (b[k] != '\0' && b[k] == o[k])
				k++;
			if (k + 1 > want)
				want = k + 1 <= len ? k + 1 : len;
		}
		v->sigs[i].r.header_b = gn_pool_strndup(v->pool, b, want);
	}
}

struct gn_dkim_verifier *gn_dkim_verifier_new(unsigned max_signatures, time_t now)
{
	struct gn_dkim_verifier *v = gn_calloc(1, sizeof(*v));
	v->pool = gn_pool_new();
	if (max_signatures == 0)
		max_signatures = GN_DKIM_MAX_SIGNATURES_DEFAULT;
	v->max = max_signatures > GN_DKIM_MAX_SIGNATURES ? GN_DKIM_MAX_SIGNATURES : max_signatures;
	v->now = now;
	/* The header and its empty line. */
	v->header = gn_buf_new(GN_DKIM_MAX_HEADER + 2);
	return v;
}

void gn_dkim_verifier_free(struct gn_dkim_verifier **v)
{
	if (v == NULL || *v == NULL)
		return;
	for (size_t i = 0; i < (*v)->n_sigs; i++)
		gn_dkim_body_free(&(*v)->sigs[i].body);
	gn_buf_free(&(*v)->header);
	gn_pool_free(&(*v)->pool);
	gn_free(*v);
	*v = NULL;
}

static void body_feed(struct gn_dkim_verifier *v, const char *p, size_t len)
{
	for (size_t i = 0; i < v->n_sigs; i++)
		if (v->sigs[i].body != NULL)
			gn_dkim_body_update(v->sigs[i].body, p, len);
}

int gn_dkim_verifier_update(struct gn_dkim_verifier *v, const void *data, size_t len,
			    const char **error_r)
{
	const char *p = data;
	if (v->finished) {
		*error_r = "message already ended";
		return -1;
	}
	size_t i = 0;
	if (!v->in_body) {
		for (; i < len && !v->in_body; i++) {
			if (p[i] == '\n') {
				if (v->line_len == 0)
					v->in_body = true;
				v->line_len = 0;
			} else if (p[i] != '\r') {
				v->line_len++;
			}
		}
		if (gn_buf_append(v->header, p, i) < 0) {
			*error_r = "message header too large for DKIM (over 1 MiB)";
			v->header_error = *error_r;
			return -1;
		}
		if (v->in_body)
			header_end(v);
	}
	if (i < len)
		body_feed(v, p + i, len - i);
	return 0;
}

int gn_dkim_verifier_finish(struct gn_dkim_verifier *v, const char **error_r)
{
	if (v->finished) {
		*error_r = "message already ended";
		return -1;
	}
	v->finished = true;
	if (!v->header_read && v->header_error == NULL)
		header_end(v);
	if (v->header_error != NULL) {
		*error_r = v->header_error;
		for (size_t i = 0; i < v->n_sigs; i++)
			gn_dkim_body_free(&v->sigs[i].body);
		v->n_sigs = 0;
		return -1;
	}
	for (size_t i = 0; i < v->n_sigs; i++) {
		struct sig *s = &v->sigs[i];
		if (s->body == NULL)
			continue;
		unsigned char bh[GN_DKIM_HASH_SIZE];
		gn_dkim_body_finish(s->body, bh);
		uint64_t total = dkim_body_length(s->body);
		gn_dkim_body_free(&s->body);
		if (s->has_l && s->l > total) {
			/* RFC 6376 6.1.3: a body shorter than l= says the
			 * signature is not of this message. */
			decide(s, GN_DKIM_PERMERROR, "l= is longer than the body");
			continue;
		}
		s->r.body_truncated = s->has_l && s->l < total;
		s->bh_ok = s->bh_len == GN_DKIM_HASH_SIZE && memcmp(bh, s->bh, GN_DKIM_HASH_SIZE) == 0;
		const char *err;
		if (gn_dkim_header_hash(s->hc, v->fields, v->n_fields, s->names, s->n_names,
					s->field->data, s->field->len, s->data_hash, &err) < 0) {
			decide(s, GN_DKIM_PERMERROR, err);
			continue;
		}
	}
	/* The keys that came while the body arrived. */
	for (size_t i = 0; i < v->n_sigs; i++) {
		struct sig *s = &v->sigs[i];
		if (s->early)
			gn_dkim_verifier_key(v, i, s->answer, s->texts, s->lens, s->n_texts, s->why);
	}
	return 0;
}

/* The signatures are read at the end of the header section (header_end());
 * until then, and after a header that cannot be read, there are none. */
size_t gn_dkim_verifier_count(const struct gn_dkim_verifier *v)
{
	return v->n_sigs;
}

const char *gn_dkim_verifier_key_name(const struct gn_dkim_verifier *v, size_t i)
{
	if (i >= v->n_sigs || !v->sigs[i].need_key)
		return NULL;
	return v->sigs[i].key_name;
}

/* Before the end: keeps the first answer for signature i, to be given at
 * gn_dkim_verifier_finish(). */
static void key_early(struct gn_dkim_verifier *v, size_t i, enum gn_dkim_key_answer answer,
		      const char *const *texts, const size_t *lens, size_t n, const char *why)
{
	struct sig *s = &v->sigs[i];
	if (s->early)
		return;
	s->early = true;
	s->answer = answer;
	s->why = why != NULL ? gn_pool_strdup(v->pool, why) : NULL;
	if (answer != GN_DKIM_KEY_RECORDS)
		n = 0;
	s->n_texts = n;
	s->texts = gn_pool_alloc(v->pool, (n + 1) * sizeof(*s->texts));
	s->lens = gn_pool_alloc(v->pool, (n + 1) * sizeof(*s->lens));
	for (size_t k = 0; k < n; k++) {
		char *t = gn_pool_alloc(v->pool, lens[k] + 1);
		memcpy(t, texts[k], lens[k]);
		t[lens[k]] = '\0';
		s->texts[k] = t;
		s->lens[k] = lens[k];
	}
}

/* The flags of the key record's t= (RFC 6376 3.6.1): y and s. */
static void key_flags(struct gn_pool *pool, const char *rec, size_t len, bool *y_r, bool *s_r)
{
	struct gn_dkim_tag *tags;
	size_t n;
	const char *err;
	*y_r = *s_r = false;
	if (gn_dkim_tags_parse(pool, rec, len, &tags, &n, &err) < 0)
		return;
	const char *t = gn_dkim_tags_get(tags, n, "t");
	if (t != NULL) {
		*y_r = list_has(t, "y");
		*s_r = list_has(t, "s");
	}
}

/* Key records read lately, by their text: a sender domain's mail comes
 * with the same record (the resolver keeps it for its TTL), and reading
 * it again (its tags, p='s base64) costs as much as the rest of a
 * signature's checks but RSA.  Only what the text alone decides is kept,
 * so an entry is never stale; the least recently used makes room.  The
 * process's, as the key cache beside dkim_verify_hash_bits(). */
#define RECORD_CACHE_SIZE 32

struct record_cache {
	char *text;		/* NULL: unused */
	size_t len;
	int r;			/* gn_dkim_key_record_parse(): 1, or 0 (revoked) */
	enum gn_dkim_algorithm alg;
	unsigned char *key;
	size_t key_len;
	bool testing, strict;	/* t=y, t=s */
	uint64_t used;
};

static struct record_cache record_cache[RECORD_CACHE_SIZE];
static uint64_t record_cache_clock;

/* A record read: from the cache, or parsed (and then kept when it
 * parses).  Returns what gn_dkim_key_record_parse() returns. */
static int record_read(struct gn_pool *pool, const char *text, size_t len,
		       enum gn_dkim_algorithm *alg_r, const unsigned char **key_r,
		       size_t *key_len_r, bool *testing_r, bool *strict_r, const char **error_r)
{
	struct record_cache *victim = NULL;	/* an unused entry, else the oldest */
	for (size_t i = 0; i < RECORD_CACHE_SIZE; i++) {
		struct record_cache *e = &record_cache[i];
		if (e->text != NULL && e->len == len && memcmp(e->text, text, len) == 0) {
			e->used = ++record_cache_clock;
			*alg_r = e->alg;
			*key_r = e->key;
			*key_len_r = e->key_len;
			*testing_r = e->testing;
			*strict_r = e->strict;
			return e->r;
		}
		if (victim == NULL || (victim->text != NULL &&
				       (e->text == NULL || e->used < victim->used)))
			victim = e;
	}
	int r = gn_dkim_key_record_parse(pool, text, len, alg_r, key_r, key_len_r, error_r);
	if (r < 0)
		return r;
	key_flags(pool, text, len, testing_r, strict_r);
	gn_free(victim->text);
	gn_free(victim->key);
	victim->text = gn_malloc(len + 1);
	memcpy(victim->text, text, len);
	victim->len = len;
	victim->r = r;
	victim->alg = *alg_r;
	victim->key = gn_malloc(*key_len_r + 1);
	if (*key_len_r > 0)
		memcpy(victim->key, *key_r, *key_len_r);
	victim->key_len = *key_len_r;
	victim->testing = *testing_r;
	victim->strict = *strict_r;
	victim->used = ++record_cache_clock;
	return r;
}

void gn_dkim_verifier_key(struct gn_dkim_verifier *v, size_t i, enum gn_dkim_key_answer answer,
			  const char *const *texts, const size_t *lens, size_t n, const char *why)
{
	if (i >= v->n_sigs || !v->sigs[i].need_key)
		return;
	if (!v->finished) {
		key_early(v, i, answer, texts, lens, n, why);
		return;
	}
	struct sig *s = &v->sigs[i];
	struct gn_pool *pool = v->pool;
	if (answer == GN_DKIM_KEY_TEMPFAIL) {
		decide(s, GN_DKIM_TEMPERROR, gn_pool_printf(pool, "key lookup failed: %s",
							   why != NULL ? why : "no answer"));
		return;
	}
	if (answer != GN_DKIM_KEY_RECORDS || n == 0) {
		/* RFC 6376 6.1.2: PERMFAIL (no key for signature). */
		decide(s, GN_DKIM_PERMERROR, gn_pool_printf(pool, "no key for signature at %s%s%s",
							   s->key_name, why != NULL ? ": " : "",
							   why != NULL ? why : ""));
		return;
	}
	enum gn_dkim_algorithm kalg = GN_DKIM_RSA_SHA256;
	const unsigned char *key = NULL;
	size_t klen = 0;
	const char *first_err = NULL;
	bool testing = false, strict = false;
	int r = -1;
	for (size_t k = 0; k < n && r < 0; k++) {
		const char *err;
		if (lens[k] > GN_DKIM_MAX_KEY_RECORD) {
			err = "key record too long";
		} else if (memchr(texts[k], '\0', lens[k]) != NULL) {
			err = "key record has a NUL";
		} else {
			r = record_read(pool, texts[k], lens[k], &kalg, &key, &klen, &testing,
					&strict, &err);
		}
		if (r < 0 && first_err == NULL)
			first_err = err;
	}
	if (r < 0) {
		decide(s, GN_DKIM_PERMERROR, gn_pool_printf(pool, "%s", first_err));
		return;
	}
	if (r == 0) {
		/* RFC 6376 3.6.1 p=: an empty value means the key was
		 * revoked. */
		decide(s, GN_DKIM_FAIL, "key revoked (empty p=)");
		return;
	}
	if (kalg != s->alg) {
		decide(s, GN_DKIM_PERMERROR, gn_pool_printf(pool, "key type k=%s does not fit a=%s",
							   gn_dkim_algorithm_key_type(kalg),
							   gn_dkim_algorithm_name(s->alg)));
		return;
	}
	s->r.key_testing = testing;
	if (strict && strcmp(s->r.identity_domain, s->r.domain) != 0) {
		/* RFC 6376 3.6.1 t=s: i= may not be a subdomain of d=. */
		decide(s, GN_DKIM_PERMERROR, "key has t=s and i= is a subdomain of d=");
		return;
	}
	/* The key reads before the body hash is checked (RFC 6376 6.1.2,
	 * 6.1.3), so that its size is reported in either case. */
	const char *err;
	int ok = dkim_verify_hash_bits(s->alg, key, klen, s->data_hash, s->b, s->b_len,
				       &s->r.key_bits, &err);
	if (ok == -2) {
		decide(s, GN_DKIM_POLICY, gn_pool_printf(pool, "RSA key of %u bits, under 1024 (RFC 8301)",
							s->r.key_bits));
		return;
	}
	if (ok < 0) {
		decide(s, GN_DKIM_PERMERROR, gn_pool_printf(pool, "key record: %s", err));
		return;
	}
	if (!s->bh_ok) {
		decide(s, GN_DKIM_FAIL, "body hash did not verify");
		return;
	}
	if (ok == 0) {
		decide(s, GN_DKIM_FAIL, "signature did not verify");
		return;
	}
	decide(s, GN_DKIM_PASS, NULL);
}

const struct gn_dkim_verify_result *gn_dkim_verifier_result(const struct gn_dkim_verifier *v,
							     size_t i)
{
	if (!v->finished || i >= v->n_sigs)
		return NULL;
	return &v->sigs[i].r;
}
