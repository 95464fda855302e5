/*
 * core/mail/mime-rfc2231.c: structured header fields (RFC 2045 5.1): the
 * lexer of tokens, comments and white space, and the parameters of
 * Content-Type and Content-Disposition, with RFC 2231 continuations,
 * charsets and percent-encoding, decoded to UTF-8 (mime_params_read).
 */
#include "mail/internal.h"

#include <stdlib.h>
#include <string.h>

/* Parameters read from one header field (joining them is quadratic). */
#define MAX_PARAMS 100

/* ---- structured fields: lexer (RFC 2045 5.1, RFC 822 3.3) ---- */

/* Skips white space and comments, which may nest (RFC 5322 3.2.2). */
void mime_lex_cfws(struct mime_lex *l)
{
	while (l->s < l->end) {
		char c = *l->s;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			l->s++;
		} else if (c == '(') {
			int depth = 0;
			while (l->s < l->end) {
				c = *l->s++;
				if (c == '\\' && l->s < l->end)
					l->s++;
				else if (c == '(')
					depth++;
				else if (c == ')' && --depth == 0)
					break;
			}
		} else {
			break;
		}
	}
}

/* RFC 2045 5.1: tspecials. */
static bool is_tspecial(unsigned char c)
{
	return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static bool is_token_char(unsigned char c)
{
	return c > 32 && c < 127 && !is_tspecial(c);
}

char *mime_lex_token_lower(struct gn_pool *pool, struct mime_lex *l)
{
	const char *start = l->s;
	while (l->s < l->end && is_token_char((unsigned char)*l->s))
		l->s++;
	size_t n = (size_t)(l->s - start);
	char *r = gn_pool_alloc(pool, n + 1);
	for (size_t i = 0; i < n; i++)
		r[i] = (char)((start[i] >= 'A' && start[i] <= 'Z') ? start[i] + 32 : start[i]);
	return r;
}

/* ---- parameters (RFC 2045 5.1, RFC 2231) ---- */

struct raw_param {
	char *name;		/* lower-cased, without the RFC 2231 suffix */
	int section;		/* RFC 2231 3: -1 when none */
	bool extended;		/* RFC 2231 4: "*" at the end of the name */
	struct gn_buf *value;	/* bytes as in the header (quotes removed) */
};

struct param_list {
	struct raw_param *v;
	size_t n;
};

static void raw_params_free(struct param_list *pl)
{
	for (size_t i = 0; i < pl->n; i++) {
		gn_free(pl->v[i].name);
		gn_buf_free(&pl->v[i].value);
	}
	gn_free(pl->v);
	pl->v = NULL;
	pl->n = 0;
}

/* Reads "; name=value" pairs until the end.  Lenient: an unquoted value
 * runs to the next ';' (comments dropped), since mailers put spaces and
 * encoded words there unquoted; a broken pair is skipped. */
static void params_lex(struct mime_lex *l, struct param_list *pl)
{
	for (;;) {
		mime_lex_cfws(l);
		if (l->s >= l->end)
			return;
		if (*l->s != ';') {
			while (l->s < l->end && *l->s != ';')
				l->s++;
			continue;
		}
		l->s++;
		mime_lex_cfws(l);
		const char *ns = l->s;
		while (l->s < l->end && is_token_char((unsigned char)*l->s))
			l->s++;
		size_t nlen = (size_t)(l->s - ns);
		mime_lex_cfws(l);
		if (nlen == 0 || l->s >= l->end || *l->s != '=')
			continue;
		l->s++;
		mime_lex_cfws(l);
		struct gn_buf *v = gn_buf_new(MIME_MAX_VALUE);
		if (l->s < l->end && *l->s == '"') {
			l->s++;
			while (l->s < l->end && *l->s != '"') {
				if (*l->s == '\\' && l->s + 1 < l->end)
					l->s++;
				if (*l->s != '\r' && *l->s != '\n')
					(void)gn_buf_append(v, l->s, 1);
				l->s++;
			}
			if (l->s < l->end)
				l->s++;
		} else {
			bool first = true;
			while (l->s < l->end && *l->s != ';') {
				const char *vs = l->s;
				while (l->s < l->end && *l->s != ';' && *l->s != ' ' && *l->s != '\t' &&
				       *l->s != '(' && *l->s != '\r' && *l->s != '\n')
					l->s++;
				if (l->s > vs) {
					if (!first)
						(void)gn_buf_append(v, " ", 1);
					(void)gn_buf_append(v, vs, (size_t)(l->s - vs));
					first = false;
				}
				mime_lex_cfws(l);
				if (l->s < l->end && *l->s == '"')
					l->s++;	/* a stray quote: skip it */
			}
		}
		/* RFC 2231 3 and 4: name*N, name*N*, name*. */
		int section = -1;
		bool extended = false;
		size_t base = nlen;
		if (nlen > 1 && ns[nlen - 1] == '*') {
			extended = true;
			base = nlen - 1;
		}
		const char *star = memchr(ns, '*', base);
		if (star != NULL) {
			const char *d = star + 1;
			long sec = 0;
			bool digits = d < ns + base;
			for (; d < ns + base; d++) {
				if (*d < '0' || *d > '9' || sec > 9999) {
					digits = false;
					break;
				}
				sec = sec * 10 + (*d - '0');
			}
			if (digits) {
				section = (int)sec;
				base = (size_t)(star - ns);
			} else if (extended) {
				base = nlen - 1;
			}
		}
		if (pl->n % 8 == 0)
			pl->v = gn_realloc(pl->v, (pl->n + 8) * sizeof(*pl->v));
		struct raw_param *rp = &pl->v[pl->n++];
		rp->name = gn_strndup(ns, base);
		for (char *c = rp->name; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c + 32);
		rp->section = section;
		rp->extended = extended;
		rp->value = v;
		if (pl->n >= MAX_PARAMS)
			return;	/* enough: the rest is ignored */
	}
}

/* RFC 2231 4: %XX in an extended value. */
static void pct_decode(struct gn_buf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%' && i + 2 < len && hex_digit((unsigned char)s[i + 1]) >= 0 &&
		    hex_digit((unsigned char)s[i + 2]) >= 0) {
			c = (unsigned char)(hex_digit((unsigned char)s[i + 1]) * 16 +
					    hex_digit((unsigned char)s[i + 2]));
			i += 2;
		}
		(void)gn_buf_append(out, &c, 1);
	}
}

static int section_cmp(const void *a, const void *b)
{
	const struct raw_param *x = *(const struct raw_param *const *)a;
	const struct raw_param *y = *(const struct raw_param *const *)b;
	return (x->section > y->section) - (x->section < y->section);
}

/* Joins RFC 2231 sections and decodes every value to UTF-8.  An RFC 2231
 * value wins over a plain one of the same name (RFC 2231 is what a sender
 * writes for readers that understand it); values in quotes or not may carry
 * RFC 2047 encoded words, which are decoded although RFC 2047 5 forbids
 * them there, because Outlook, Gmail and others write them. */
static void params_finish(struct gn_mime_message *msg, struct param_list *pl,
			  struct mime_param **out_r, size_t *n_r)
{
	struct gn_pool *pool = msg->pool;
	struct mime_param *out = NULL;
	size_t n = 0;
	if (pl->n > 0)
		out = gn_pool_alloc(pool, pl->n * sizeof(*out));
	const struct raw_param **secs = gn_malloc((pl->n + 1) * sizeof(*secs));
	for (size_t i = 0; i < pl->n; i++) {
		const char *name = pl->v[i].name;
		bool seen = false;
		for (size_t j = 0; j < n && !seen; j++)
			seen = strcmp(out[j].name, name) == 0;
		if (seen)
			continue;
		/* Every piece with this name. */
		const struct raw_param *plain = NULL, *ext = NULL;
		size_t ns = 0;
		for (size_t j = i; j < pl->n; j++) {
			const struct raw_param *rp = &pl->v[j];
			if (strcmp(rp->name, name) != 0)
				continue;
			if (rp->section >= 0)
				secs[ns++] = rp;
			else if (rp->extended && ext == NULL)
				ext = rp;
			else if (!rp->extended && plain == NULL)
				plain = rp;
		}
		struct gn_buf *bytes = gn_buf_new(0);
		char charset[64] = "";
		bool rfc2231 = false;
		if (ns > 0 || ext != NULL) {
			rfc2231 = true;
			if (ns > 0) {
				qsort(secs, ns, sizeof(*secs), section_cmp);
			} else {
				secs[0] = ext;
				ns = 1;
			}
			for (size_t k = 0; k < ns; k++) {
				const struct raw_param *rp = secs[k];
				/* RFC 2231 3: sections count from 0 without gaps. */
				if (secs[0]->section <= 0 && rp->section >= 0 && (size_t)rp->section != k)
					break;
				const char *v = gn_buf_data(rp->value);
				size_t vl = gn_buf_len(rp->value);
				if (k == 0 && rp->extended) {
					/* RFC 2231 4: charset'language'value */
					const char *q1 = memchr(v, '\'', vl);
					const char *q2 = q1 != NULL ? memchr(q1 + 1, '\'', vl - (size_t)(q1 + 1 - v)) : NULL;
					if (q2 != NULL) {
						size_t cl = (size_t)(q1 - v);
						if (cl >= sizeof(charset))
							cl = sizeof(charset) - 1;
						memcpy(charset, v, cl);
						charset[cl] = '\0';
						vl -= (size_t)(q2 + 1 - v);
						v = q2 + 1;
					}
				}
				if (rp->extended)
					pct_decode(bytes, v, vl);
				else
					(void)gn_buf_append(bytes, v, vl);
			}
		} else if (plain != NULL) {
			(void)gn_buf_append(bytes, gn_buf_data(plain->value), gn_buf_len(plain->value));
		}
		struct gn_buf *text = gn_buf_new(0);
		if (rfc2231)
			mime_charset_convert(text, charset, gn_buf_data(bytes), gn_buf_len(bytes), msg);
		else if (strcmp(name, "boundary") == 0)
			mime_utf8_append(text, gn_buf_data(bytes), gn_buf_len(bytes));
		else
			mime_decode_words(text, gn_buf_data(bytes), gn_buf_len(bytes), msg);
		out[n].name = gn_pool_strdup(pool, name);
		out[n].value = gn_pool_strndup(pool, gn_buf_data(text), gn_buf_len(text));
		n++;
		gn_buf_free(&text);
		gn_buf_free(&bytes);
	}
	gn_free(secs);
	*out_r = out;
	*n_r = n;
}

void mime_params_read(struct gn_mime_message *msg, struct mime_lex *l,
		      struct mime_param **params_r, size_t *n_r)
{
	struct param_list pl = { NULL, 0 };
	params_lex(l, &pl);
	params_finish(msg, &pl, params_r, n_r);
	raw_params_free(&pl);
}

const char *mime_param_find(const struct mime_param *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return v[i].value;
	return NULL;
}
