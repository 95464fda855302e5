/*
 * modules/mailauth/spf-record.c: SPF records and macros (RFC 7208 4.5,
 * 4.6, 5, 6, 7, 12), pure: text in, terms or expanded strings out.
 *
 * The parser takes the whole record before anything is evaluated, so a
 * syntax error anywhere is a permerror whatever would have matched
 * (RFC 7208 4.6).  Terms are split at spaces (only SP separates terms,
 * RFC 7208 12 "terms"); a term is a modifier when it starts with a name
 * followed by "=", else a directive.  CIDR lengths are taken from the end
 * of a term, since a domain-spec may itself hold "/" (a macro delimiter).
 *
 * Macro strings are checked at parse time and expanded at evaluation time
 * with the values of the moment (spf.c): expansion of a checked string
 * fails only on the size limit.
 */
#include "spf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

const char *spf_result_name(int result)
{
	switch (result) {
	case SPF_NONE: return "none";
	case SPF_NEUTRAL: return "neutral";
	case SPF_PASS: return "pass";
	case SPF_FAIL: return "fail";
	case SPF_SOFTFAIL: return "softfail";
	case SPF_TEMPERROR: return "temperror";
	case SPF_PERMERROR: return "permerror";
	default: return "?";
	}
}

bool spf_record_is_spf(const char *text, size_t len)
{
	/* RFC 7208 4.5: "v=spf1" exactly, ended by SP or the record's end. */
	return len >= 6 && strncasecmp(text, "v=spf1", 6) == 0 &&
	       (len == 6 || text[6] == ' ');
}

/* ---- macros (RFC 7208 7) ---- */

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_delimiter(char c)
{
	return c != '\0' && strchr(".-+,/_=", c) != NULL;
}

/* RFC 7208 7.1 toplabel: alphanumerics with a letter, or alphanumerics
 * with inner hyphens (ending in an alphanumeric). */
static bool is_toplabel(const char *s, size_t len)
{
	if (len == 0 || !is_alnum(s[0]) || !is_alnum(s[len - 1]))
		return false;
	bool alpha = false, hyphen = false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '-')
			hyphen = true;
		else if (!is_alnum(s[i]))
			return false;
		else if (!isdigit((unsigned char)s[i]))
			alpha = true;
	}
	return alpha || hyphen;
}

/* Parses "%{" letter *DIGIT ["r"] *delimiter "}" at s (s[0] == '%',
 * s[1] == '{').  Returns its length, or 0 when malformed. */
static size_t macro_expand_len(const char *s, size_t len, unsigned flags,
			       const char **error_r)
{
	size_t i = 2;
	if (i >= len) {
		*error_r = "a macro is cut short";
		return 0;
	}
	char l = (char)tolower((unsigned char)s[i]);
	if (strchr("slodiphv", l) == NULL && !(strchr("crt", l) != NULL)) {
		*error_r = "an unknown macro letter";
		return 0;
	}
	if (strchr("crt", l) != NULL && !(flags & SPF_MACRO_EXP)) {
		/* RFC 7208 7.2: c, r and t only in exp= text. */
		*error_r = "the c, r and t macros are only for explanations";
		return 0;
	}
	i++;
	size_t digits = 0;
	bool zero = true;
	while (i < len && isdigit((unsigned char)s[i])) {
		if (s[i] != '0')
			zero = false;
		digits++;
		i++;
	}
	if (digits > 0 && zero) {
		/* RFC 7208 7.3: "If a DIGIT is specified, the value MUST be
		 * nonzero." */
		*error_r = "a macro keeps zero labels";
		return 0;
	}
	if (digits > 3) {
		*error_r = "a macro's label count is too long";
		return 0;
	}
	if (i < len && (s[i] == 'r' || s[i] == 'R'))
		i++;
	while (i < len && is_delimiter(s[i]))
		i++;
	if (i >= len || s[i] != '}') {
		*error_r = "a macro is not closed by '}'";
		return 0;
	}
	return i + 1;
}

int spf_macro_check(const char *s, size_t len, unsigned flags,
		    bool *uses_p_r, const char **error_r)
{
	bool uses_p = false;
	/* Whether the string ends in a macro-expand, and where the literal
	 * text after the last one starts (RFC 7208 7.1 domain-end). */
	bool ends_macro = false;
	size_t lit_start = 0;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 1 >= len) {
				*error_r = "a '%' at the end";
				return -1;
			}
			char n = s[i + 1];
			size_t m;
			if (n == '%' || n == '_' || n == '-') {
				m = 2;
			} else if (n == '{') {
				m = macro_expand_len(s + i, len - i, flags, error_r);
				if (m == 0)
					return -1;
				if (tolower((unsigned char)s[i + 2]) == 'p')
					uses_p = true;
			} else {
				/* RFC 7208 7.1: a '%' not followed by '{',
				 * '%', '_' or '-' is a syntax error. */
				*error_r = "a '%' not followed by '{', '%', '_' or '-'";
				return -1;
			}
			i += m;
			ends_macro = true;
			lit_start = i;
			continue;
		}
		/* macro-literal: %x21-24 / %x26-7E; SP only in explanations. */
		if (!((c >= 0x21 && c <= 0x7e) || (c == ' ' && (flags & SPF_MACRO_EXP)))) {
			*error_r = "a character outside visible ASCII";
			return -1;
		}
		ends_macro = false;
		i++;
	}
	if (flags & SPF_MACRO_DOMAIN) {
		if (len == 0) {
			*error_r = "an empty domain";
			return -1;
		}
		if (!ends_macro) {
			/* "." toplabel ["."] */
			size_t end = len;
			if (end > lit_start && s[end - 1] == '.')
				end--;
			size_t dot = end;
			while (dot > lit_start && s[dot - 1] != '.')
				dot--;
			if (dot == lit_start || !is_toplabel(s + dot, end - dot)) {
				*error_r = "a domain that does not end in a macro or a top-level label";
				return -1;
			}
		}
	}
	if (uses_p_r != NULL)
		*uses_p_r = uses_p;
	return 0;
}

/* The value of a macro letter (lower case), from pool. */
static const char *macro_value(struct gn_pool *pool, char l,
			       const struct spf_macro_env *env)
{
	char buf[INET6_ADDRSTRLEN];
	switch (l) {
	case 's': return env->sender != NULL ? env->sender : "";
	case 'l': return env->local != NULL ? env->local : "postmaster";
	case 'o': return env->sender_domain != NULL ? env->sender_domain : "";
	case 'd': return env->domain != NULL ? env->domain : "";
	case 'h': return env->helo != NULL ? env->helo : "";
	case 'p': return env->validated != NULL ? env->validated : "unknown";
	case 'r': return env->receiver != NULL ? env->receiver : "unknown";
	case 'v': return env->family == 6 ? "ip6" : "in-addr";
	case 't': return gn_pool_printf(pool, "%lld", (long long)env->now);
	case 'c':
		/* RFC 7208 7.2: the client's address in its usual form. */
		inet_ntop(env->family == 6 ? AF_INET6 : AF_INET, env->ip, buf, sizeof(buf));
		return gn_pool_strdup(pool, buf);
	case 'i':
		if (env->family != 6) {
			inet_ntop(AF_INET, env->ip, buf, sizeof(buf));
			return gn_pool_strdup(pool, buf);
		} else {
			/* RFC 7208 7.3: IPv6 as dot-separated nibbles. */
			char *out = gn_pool_alloc(pool, 64);
			static const char hex[] = "0123456789abcdef";
			for (int i = 0; i < 16; i++) {
				out[i * 4] = hex[env->ip[i] >> 4];
				out[i * 4 + 1] = '.';
				out[i * 4 + 2] = hex[env->ip[i] & 15];
				out[i * 4 + 3] = i < 15 ? '.' : '\0';
			}
			return out;
		}
	default: return "";
	}
}

/* RFC 7208 7.3: upper-case letters URL-escape their value (RFC 3986:
 * everything but the unreserved characters). */
static int append_escaped(struct gn_buf *b, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int r;
		if (is_alnum((char)c) || c == '-' || c == '.' || c == '_' || c == '~')
			r = gn_buf_append(b, &s[i], 1);
		else
			r = gn_buf_printf(b, "%%%02X", c);
		if (r < 0)
			return -1;
	}
	return 0;
}

/* One %{...}: split the value at the delimiters, reverse, keep the
 * rightmost n parts, join with '.' (RFC 7208 7.3). */
static int expand_one(struct gn_pool *pool, struct gn_buf *b, const char *m,
		      size_t mlen, const struct spf_macro_env *env)
{
	char letter = m[2];
	const char *value = macro_value(pool, (char)tolower((unsigned char)letter), env);
	size_t i = 3;
	unsigned keep = 0;
	while (i < mlen && isdigit((unsigned char)m[i]))
		keep = keep * 10 + (unsigned)(m[i++] - '0');
	bool reverse = false;
	if (i < mlen && (m[i] == 'r' || m[i] == 'R')) {
		reverse = true;
		i++;
	}
	/* The delimiters given, each once (at most the seven there are). */
	char delims[8] = { 0 };
	size_t nd = 0;
	for (; i < mlen && m[i] != '}'; i++)
		if (memchr(delims, m[i], nd) == NULL && nd < sizeof(delims) - 1)
			delims[nd++] = m[i];
	if (nd == 0)
		delims[0] = '.';

	/* The parts, as (start, length) pairs. */
	size_t vlen = strlen(value), nparts = 1;
	for (size_t j = 0; j < vlen; j++)
		if (strchr(delims, value[j]) != NULL)
			nparts++;
	const char **ps = gn_pool_alloc(pool, nparts * sizeof(*ps));
	size_t *pl = gn_pool_alloc(pool, nparts * sizeof(*pl));
	size_t k = 0, start = 0;
	for (size_t j = 0; j <= vlen; j++) {
		if (j == vlen || strchr(delims, value[j]) != NULL) {
			ps[k] = value + start;
			pl[k] = j - start;
			k++;
			start = j + 1;
		}
	}
	if (reverse) {
		for (size_t a = 0, z = nparts - 1; a < z; a++, z--) {
			const char *t = ps[a]; ps[a] = ps[z]; ps[z] = t;
			size_t u = pl[a]; pl[a] = pl[z]; pl[z] = u;
		}
	}
	size_t first = keep > 0 && keep < nparts ? nparts - keep : 0;
	bool upper = isupper((unsigned char)letter);
	for (size_t j = first; j < nparts; j++) {
		if (j > first && gn_buf_append(b, ".", 1) < 0)
			return -1;
		int r = upper ? append_escaped(b, ps[j], pl[j]) : gn_buf_append(b, ps[j], pl[j]);
		if (r < 0)
			return -1;
	}
	return 0;
}

char *spf_macro_expand(struct gn_pool *pool, const char *s, size_t len,
		       unsigned flags, const struct spf_macro_env *env,
		       const char **error_r)
{
	if (spf_macro_check(s, len, flags, NULL, error_r) < 0)
		return NULL;
	struct gn_buf *b = gn_buf_new(SPF_MAX_EXPANSION);
	int r = 0;
	for (size_t i = 0; i < len && r == 0;) {
		if (s[i] != '%') {
			size_t j = i;
			while (j < len && s[j] != '%')
				j++;
			r = gn_buf_append(b, s + i, j - i);
			i = j;
			continue;
		}
		char n = s[i + 1];
		if (n == '%') {
			r = gn_buf_append(b, "%", 1);
			i += 2;
		} else if (n == '_') {
			r = gn_buf_append(b, " ", 1);
			i += 2;
		} else if (n == '-') {
			r = gn_buf_append(b, "%20", 3);
			i += 2;
		} else {
			const char *err;
			size_t m = macro_expand_len(s + i, len - i, flags, &err);
			r = expand_one(pool, b, s + i, m, env);
			i += m;
		}
	}
	if (r < 0) {
		gn_buf_free(&b);
		*error_r = "a macro expands past the size limit";
		return NULL;
	}
	char *out = gn_pool_strndup(pool, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	if (flags & SPF_MACRO_DOMAIN) {
		size_t olen = strlen(out);
		if (olen > 0 && out[olen - 1] == '.')
			out[--olen] = '\0';
		/* RFC 7208 7.3: past 253, drop labels at the left. */
		while (olen > 253) {
			char *dot = strchr(out, '.');
			if (dot == NULL)
				break;
			olen -= (size_t)(dot + 1 - out);
			out = dot + 1;
		}
	}
	return out;
}

/* ---- terms ---- */

static int fail(struct gn_pool *pool, const char **error_r, const char *term,
		size_t tlen, const char *why)
{
	*error_r = gn_pool_printf(pool, "%s: %.*s", why, (int)(tlen > 200 ? 200 : tlen), term);
	return -1;
}

/* A CIDR length: "0" or a number without a leading zero, at most max. */
static int parse_cidr(const char *s, size_t len, int max)
{
	if (len == 0 || len > 3 || (len > 1 && s[0] == '0'))
		return -1;
	int v = 0;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= max ? v : -1;
}

/* RFC 7208 12 ip4-network: four qnums without leading zeros. */
static bool parse_ip4(const char *s, size_t len, uint8_t *out)
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
		size_t st = i;
		unsigned v = 0;
		while (i < len && isdigit((unsigned char)s[i]) && i - st < 4)
			v = v * 10 + (unsigned)(s[i++] - '0');
		size_t n = i - st;
		if (n == 0 || n > 3 || (n > 1 && s[st] == '0') || v > 255)
			return false;
		out[part] = (uint8_t)v;
	}
	return i == len;
}

/* Splits a trailing dual-cidr-length off [s, s+*len): "/N", "//M" or
 * "/N//M".  Sets the lengths found; returns -1 when a length is bad. */
static int split_cidr(const char *s, size_t *len, bool allow4, bool allow6,
		      int *c4, int *c6)
{
	size_t e = *len;
	size_t d = e;
	while (d > 0 && isdigit((unsigned char)s[d - 1]))
		d--;
	if (d == e || d == 0 || s[d - 1] != '/')
		return 0;	/* no cidr at the end */
	if (d >= 2 && s[d - 2] == '/') {
		if (!allow6 || (*c6 = parse_cidr(s + d, e - d, 128)) < 0)
			return -1;
		e = d - 2;
		size_t d4 = e;
		while (d4 > 0 && isdigit((unsigned char)s[d4 - 1]))
			d4--;
		if (d4 < e && d4 > 0 && s[d4 - 1] == '/' && !(d4 >= 2 && s[d4 - 2] == '/')) {
			if (!allow4 || (*c4 = parse_cidr(s + d4, e - d4, 32)) < 0)
				return -1;
			e = d4 - 1;
		}
	} else {
		if (!allow4 || (*c4 = parse_cidr(s + d, e - d, 32)) < 0)
			return -1;
		e = d - 1;
	}
	*len = e;
	return 0;
}

static const struct {
	const char *name;
	int mech;
} mechanisms[] = {
	{ "all", SPF_MECH_ALL }, { "include", SPF_MECH_INCLUDE },
	{ "a", SPF_MECH_A }, { "mx", SPF_MECH_MX }, { "ptr", SPF_MECH_PTR },
	{ "ip4", SPF_MECH_IP4 }, { "ip6", SPF_MECH_IP6 },
	{ "exists", SPF_MECH_EXISTS },
};

static int parse_directive(struct gn_pool *pool, struct spf_term *t,
			   const char *s, size_t len, const char **error_r)
{
	const char *term = s;
	size_t tlen = len;
	t->kind = SPF_TERM_MECHANISM;
	t->qualifier = SPF_PASS;
	switch (s[0]) {
	case '+': t->qualifier = SPF_PASS; s++; len--; break;
	case '-': t->qualifier = SPF_FAIL; s++; len--; break;
	case '~': t->qualifier = SPF_SOFTFAIL; s++; len--; break;
	case '?': t->qualifier = SPF_NEUTRAL; s++; len--; break;
	}
	size_t n = 0;
	while (n < len && s[n] != ':' && s[n] != '/')
		n++;
	for (size_t i = 0; i < sizeof(mechanisms) / sizeof(mechanisms[0]); i++)
		if (strlen(mechanisms[i].name) == n && strncasecmp(s, mechanisms[i].name, n) == 0)
			t->mechanism = mechanisms[i].mech;
	if (t->mechanism == 0)
		return fail(pool, error_r, term, tlen, "unknown mechanism");
	const char *arg = s + n;
	size_t alen = len - n;
	t->cidr4 = 32;
	t->cidr6 = 128;
	switch (t->mechanism) {
	case SPF_MECH_ALL:
		if (alen != 0)
			return fail(pool, error_r, term, tlen, "\"all\" takes no argument");
		return 0;
	case SPF_MECH_IP4: case SPF_MECH_IP6: {
		bool six = t->mechanism == SPF_MECH_IP6;
		if (alen < 2 || arg[0] != ':')
			return fail(pool, error_r, term, tlen, six ? "ip6 needs an address" : "ip4 needs an address");
		arg++;
		alen--;
		size_t slash = 0;
		while (slash < alen && arg[slash] != '/')
			slash++;
		if (slash < alen) {
			int c = parse_cidr(arg + slash + 1, alen - slash - 1, six ? 128 : 32);
			if (c < 0)
				return fail(pool, error_r, term, tlen, "bad CIDR length");
			if (six)
				t->cidr6 = c;
			else
				t->cidr4 = c;
		}
		if (six) {
			char *a = gn_pool_strndup(pool, arg, slash);
			if (slash == 0 || inet_pton(AF_INET6, a, t->ip) != 1)
				return fail(pool, error_r, term, tlen, "bad IPv6 address");
		} else if (!parse_ip4(arg, slash, t->ip)) {
			return fail(pool, error_r, term, tlen, "bad IPv4 address");
		}
		return 0;
	}
	default:
		break;
	}
	/* include, a, mx, ptr, exists: [":" domain-spec] and for a and mx a
	 * dual-cidr-length. */
	bool cidr = t->mechanism == SPF_MECH_A || t->mechanism == SPF_MECH_MX;
	size_t rest = alen;
	if (cidr && split_cidr(arg, &rest, true, true, &t->cidr4, &t->cidr6) < 0)
		return fail(pool, error_r, term, tlen, "bad CIDR length");
	if (rest > 0) {
		if (arg[0] != ':' || rest == 1)
			return fail(pool, error_r, term, tlen, arg[0] == ':' ? "an empty domain" :
				    "unknown mechanism");
		const char *err;
		if (spf_macro_check(arg + 1, rest - 1, SPF_MACRO_DOMAIN, NULL, &err) < 0)
			return fail(pool, error_r, term, tlen, err);
		t->spec = gn_pool_strndup(pool, arg + 1, rest - 1);
	} else if (t->mechanism == SPF_MECH_INCLUDE || t->mechanism == SPF_MECH_EXISTS) {
		return fail(pool, error_r, term, tlen, "a domain is required");
	}
	return 0;
}

int spf_record_parse(struct gn_pool *pool, const char *text, size_t len,
		     struct spf_record **rec_r, const char **error_r)
{
	if (!spf_record_is_spf(text, len)) {
		*error_r = "not an SPF record (no \"v=spf1\")";
		return -1;
	}
	if (len > SPF_MAX_RECORD) {
		*error_r = gn_pool_printf(pool, "the record is longer than %d bytes", SPF_MAX_RECORD);
		return -1;
	}
	struct spf_record *rec = gn_pool_alloc(pool, sizeof(*rec));
	size_t cap = 0;
	for (size_t i = 6; i < len; i++)
		if (text[i] == ' ' && i + 1 < len && text[i + 1] != ' ')
			cap++;
	if (cap > SPF_MAX_TERMS) {
		*error_r = gn_pool_printf(pool, "the record has more than %d terms", SPF_MAX_TERMS);
		return -1;
	}
	rec->terms = gn_pool_alloc(pool, (cap > 0 ? cap : 1) * sizeof(*rec->terms));
	size_t i = 6;
	while (i < len) {
		if (text[i] == ' ') {
			i++;
			continue;
		}
		size_t j = i;
		while (j < len && text[j] != ' ')
			j++;
		const char *s = text + i;
		size_t tl = j - i;
		i = j;
		for (size_t k = 0; k < tl; k++) {
			unsigned char c = (unsigned char)s[k];
			if (c < 0x21 || c > 0x7e)
				return fail(pool, error_r, s, tl, "a character outside visible ASCII");
		}
		struct spf_term *t = &rec->terms[rec->n++];
		t->text = gn_pool_strndup(pool, s, tl);
		/* RFC 7208 12: name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
		size_t n = 0;
		if (isalpha((unsigned char)s[0])) {
			n = 1;
			while (n < tl && (is_alnum(s[n]) || s[n] == '-' || s[n] == '_' || s[n] == '.'))
				n++;
		}
		if (n > 0 && n < tl && s[n] == '=') {
			const char *v = s + n + 1;
			size_t vl = tl - n - 1;
			t->name = gn_pool_strndup(pool, s, n);
			t->spec = gn_pool_strndup(pool, v, vl);
			const char *err;
			unsigned flags = 0;
			if (n == 8 && strncasecmp(s, "redirect", 8) == 0) {
				if (rec->redirect != NULL)
					return fail(pool, error_r, s, tl, "a second redirect=");
				t->kind = SPF_TERM_REDIRECT;
				rec->redirect = t;
				flags = SPF_MACRO_DOMAIN;
			} else if (n == 3 && strncasecmp(s, "exp", 3) == 0) {
				if (rec->exp != NULL)
					return fail(pool, error_r, s, tl, "a second exp=");
				t->kind = SPF_TERM_EXP;
				rec->exp = t;
				flags = SPF_MACRO_DOMAIN;
			} else {
				t->kind = SPF_TERM_UNKNOWN;
			}
			if (spf_macro_check(v, vl, flags, NULL, &err) < 0)
				return fail(pool, error_r, s, tl, err);
			continue;
		}
		if (parse_directive(pool, t, s, tl, error_r) < 0)
			return -1;
		if (t->mechanism == SPF_MECH_ALL)
			rec->has_all = true;
	}
	*rec_r = rec;
	return 0;
}
