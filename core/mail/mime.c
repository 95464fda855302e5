/*
 * core/mail/mime.c: the streaming MIME parser (gannet/mime.h).
 *
 * How it fits together:
 *
 * - Text: UTF-8 checking and charset conversion with iconv (utf8_*,
 *   charset_convert), RFC 2047 encoded words (decode_words, behind
 *   gn_mime_decode_header), the structured-field lexer, Content-Type and
 *   Content-Disposition parameters with RFC 2231 (params_*), and dates
 *   (gn_mime_parse_date).
 * - The parser: a byte-at-a-time-safe state machine over lines.  A stack of
 *   open parts runs from the root to the innermost part; each is in its
 *   header, a leaf body, a multipart's preamble / child / epilogue, or the
 *   body of a message/rfc822 (whose one child is open above it).  The
 *   boundaries of the open multiparts are checked against every line that
 *   starts with "--" and is short enough to be one, whatever part the line
 *   is in (RFC 2046 5.1.1: a boundary of an enclosing multipart ends the
 *   inner parts too).  Only the current header block and the first bytes
 *   of the current line are kept; body bytes stream through a counter of
 *   their decoded size (base64, quoted-printable) and are then forgotten.
 *   The line break before a boundary belongs to the boundary (RFC 2046
 *   5.1.1), so a body line's line break is held back until the next line
 *   is known not to be a boundary.
 * - The result: parts and strings live in one pool owned by the message;
 *   accessors; JSON in and out for storage.
 */
#include "mail/internal.h"

#include <errno.h>
#include <iconv.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include <gannet/mime.h>

/* A longest boundary we accept: RFC 2046 5.1.1 allows 70 characters; real
 * mail sometimes has a little more. */
#define MAX_BOUNDARY 200
/* Bytes of a line kept while it may still be a boundary delimiter: "--",
 * the boundary, "--", and some transport padding (RFC 2046 5.1.1). */
#define LINE_PREFIX (2 + MAX_BOUNDARY + 2 + 98)
/* A header value longer than this is cut (memory stays bounded per part). */
#define MAX_VALUE (64 * 1024)
#define MAX_PROBLEMS 100
/* Parameters read from one header field (joining them is quadratic). */
#define MAX_PARAMS 100

#define N_FIELDS 12

static const char *const field_names[N_FIELDS] = {
	"from", "sender", "reply-to", "to", "cc", "bcc", "subject", "date",
	"message-id", "in-reply-to", "references", "list-id",
};

struct mime_param {
	char *name;
	char *value;
};

struct mime_envelope {
	char *raw[N_FIELDS];
	char *decoded[N_FIELDS];
	bool has_date;
	time_t date;
};

struct gn_mime_part {
	struct gn_mime_part *parent;
	struct gn_mime_part **children;
	size_t n_children;
	/* While parsing: the children as a list. */
	struct gn_mime_part *first_child, *last_child, *next;
	size_t index;		/* pre-order number, for problems */

	size_t header_offset, header_size, body_offset, body_size;
	size_t body_lines, decoded_size;
	char *type, *subtype;
	struct mime_param *params;
	size_t n_params;
	char *disposition;
	struct mime_param *disp_params;
	size_t n_disp_params;
	char *filename, *content_id, *description, *encoding;
	char *language, *location, *md5;
	struct mime_envelope *envelope;	/* messages only */
};

struct gn_mime_message {
	struct gn_pool *pool;
	struct gn_mime_part *root;
	size_t size;
	char **problems;
	size_t n_problems;
};

/* ---- problems ---- */

static void problem(struct gn_mime_message *msg, const char *fmt, ...) GN_PRINTF(2, 3);

static void problem(struct gn_mime_message *msg, const char *fmt, ...)
{
	if (msg == NULL || msg->n_problems > MAX_PROBLEMS)
		return;
	if (msg->n_problems % 16 == 0)
		msg->problems = gn_realloc(msg->problems,
					   (msg->n_problems + 16) * sizeof(*msg->problems));
	if (msg->n_problems == MAX_PROBLEMS) {
		msg->problems[msg->n_problems++] =
			gn_pool_strdup(msg->pool, "more problems were not recorded");
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	msg->problems[msg->n_problems++] = gn_pool_strdup(msg->pool, s != NULL ? s : "?");
	free(s);
}

/* ---- UTF-8 and charsets ---- */

static const char replacement[] = "\xef\xbf\xbd";	/* U+FFFD */

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

static bool utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq(u + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/* Appends s, keeping valid UTF-8 and replacing every other byte (and NUL)
 * by U+FFFD; returns whether something was replaced. */
static bool utf8_append(struct gn_buf *out, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	bool replaced = false;
	size_t start = 0, i = 0;
	while (i < len) {
		size_t n = u[i] == 0 ? 0 : utf8_seq(u + i, len - i);
		if (n > 0) {
			i += n;
			continue;
		}
		(void)gn_buf_append(out, s + start, i - start);
		(void)gn_buf_append(out, replacement, 3);
		replaced = true;
		start = ++i;
	}
	(void)gn_buf_append(out, s + start, len - start);
	return replaced;
}

static char *utf8_pool(struct gn_pool *pool, const char *s, size_t len)
{
	struct gn_buf *b = gn_buf_new(0);
	utf8_append(b, s, len);
	char *r = gn_pool_strndup(pool, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	return r;
}

/* Names that mail uses and iconv does not know by that name. */
static const char *charset_alias(const char *cs)
{
	static const struct {
		const char *name, *iconv;
	} aliases[] = {
		{ "ks_c_5601-1987", "CP949" },
		{ "ks_c_5601", "CP949" },
		{ "x-sjis", "SHIFT_JIS" },
		{ "shift-jis", "SHIFT_JIS" },
		{ "x-euc-jp", "EUC-JP" },
		{ "gb2312", "GB18030" },
		{ "gbk", "GB18030" },
		{ "x-gbk", "GB18030" },
		{ "iso-8859-8-i", "ISO-8859-8" },
		{ "x-mac-roman", "MACINTOSH" },
		{ "windows-874", "CP874" },
		{ "utf7", "UTF-7" },
	};
	for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
		if (strcasecmp(cs, aliases[i].name) == 0)
			return aliases[i].iconv;
	return cs;
}

static bool charset_is_utf8(const char *cs)
{
	return cs[0] == '\0' || strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "utf8") == 0 ||
	       strcasecmp(cs, "us-ascii") == 0 || strcasecmp(cs, "ascii") == 0 ||
	       strcasecmp(cs, "unknown-8bit") == 0 || strcasecmp(cs, "x-unknown") == 0;
}

/* Appends s converted from charset to UTF-8.  US-ASCII and UTF-8 are
 * checked, not converted (8-bit bytes in "us-ascii" text are common and
 * usually UTF-8).  An unknown charset keeps what is valid UTF-8 (RFC 2047
 * 6.2 leaves the choice to the reader) and is recorded as a problem;
 * sequences not valid in a known charset become U+FFFD. */
static void charset_convert(struct gn_buf *out, const char *charset, const char *s, size_t len,
			    struct gn_mime_message *msg)
{
	char cs[64];
	size_t cl = strlen(charset);
	if (cl >= sizeof(cs))
		cl = sizeof(cs) - 1;
	memcpy(cs, charset, cl);
	cs[cl] = '\0';
	/* RFC 2231 5: a language may follow the charset ("utf-8*en"). */
	char *star = strchr(cs, '*');
	if (star != NULL)
		*star = '\0';
	if (charset_is_utf8(cs)) {
		utf8_append(out, s, len);
		return;
	}
	iconv_t cd = iconv_open("UTF-8", charset_alias(cs));
	if (cd == (iconv_t)-1) {
		problem(msg, "unknown charset \"%s\"", cs);
		utf8_append(out, s, len);
		return;
	}
	char tmp[1024];
	char *in = (char *)s;
	size_t inleft = len;
	while (inleft > 0) {
		char *o = tmp;
		size_t oleft = sizeof(tmp);
		size_t r = iconv(cd, &in, &inleft, &o, &oleft);
		int err = errno;
		(void)gn_buf_append(out, tmp, (size_t)(o - tmp));
		if (r != (size_t)-1)
			break;
		if (err == E2BIG)
			continue;
		/* EILSEQ, EINVAL: one byte is lost to U+FFFD, go on. */
		(void)gn_buf_append(out, replacement, 3);
		in++;
		inleft--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	{
		char *o = tmp;
		size_t oleft = sizeof(tmp);
		iconv(cd, NULL, NULL, &o, &oleft);
		(void)gn_buf_append(out, tmp, (size_t)(o - tmp));
	}
	iconv_close(cd);
}

/* ---- base64, hex ---- */

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Lenient base64 decoding (characters outside the alphabet are skipped,
 * padding may be missing); appends to out. */
static void b64_decode(struct gn_buf *out, const char *s, size_t len)
{
	unsigned acc = 0, n = 0;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value((unsigned char)s[i]);
		if (s[i] == '=')
			break;
		if (v < 0)
			continue;
		acc = (acc << 6) | (unsigned)v;
		if (++n == 4) {
			unsigned char b[3] = { (unsigned char)(acc >> 16), (unsigned char)(acc >> 8),
					       (unsigned char)acc };
			(void)gn_buf_append(out, b, 3);
			acc = 0;
			n = 0;
		}
	}
	if (n == 2) {
		unsigned char b = (unsigned char)(acc >> 4);
		(void)gn_buf_append(out, &b, 1);
	} else if (n == 3) {
		unsigned char b[2] = { (unsigned char)(acc >> 10), (unsigned char)(acc >> 2) };
		(void)gn_buf_append(out, b, 2);
	}
}

static char *b64_encode(const unsigned char *s, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = gn_malloc((len + 2) / 3 * 4 + 1), *o = out;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)s[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)s[i + 1] << 8;
		if (i + 2 < len)
			v |= s[i + 2];
		*o++ = alphabet[(v >> 18) & 63];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
		*o++ = i + 2 < len ? alphabet[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* ---- RFC 2047 encoded words ---- */

/* Parses an encoded word at s ("=?charset?X?text?="): returns its length,
 * 0 when s does not start one.  RFC 2047 2: no white space inside. */
static size_t encoded_word(const char *s, size_t len, const char **cs, size_t *cs_len,
			   char *enc, const char **text, size_t *text_len)
{
	if (len < 8 || s[0] != '=' || s[1] != '?')
		return 0;
	size_t i = 2;
	while (i < len && s[i] != '?' && s[i] != ' ' && s[i] != '\t' && i < 2 + 63)
		i++;
	if (i >= len || s[i] != '?' || i == 2)
		return 0;
	*cs = s + 2;
	*cs_len = i - 2;
	if (i + 2 >= len || s[i + 2] != '?')
		return 0;
	char e = s[i + 1];
	if (e != 'B' && e != 'b' && e != 'Q' && e != 'q')
		return 0;
	*enc = (char)(e & ~0x20);
	size_t t = i + 3;
	size_t j = t;
	while (j + 1 < len && !(s[j] == '?' && s[j + 1] == '=')) {
		if (s[j] == ' ' || s[j] == '\t' || s[j] == '?')
			return 0;
		j++;
	}
	if (j + 1 >= len)
		return 0;
	*text = s + t;
	*text_len = j - t;
	return j + 2;
}

/* Appends s without its CR and LF (unfolding, RFC 5322 2.2.3), as UTF-8. */
static void append_unfolded(struct gn_buf *out, const char *s, size_t len)
{
	size_t k = 0;
	while (k < len) {
		size_t e = k;
		while (e < len && s[e] != '\r' && s[e] != '\n')
			e++;
		utf8_append(out, s + k, e - k);
		k = e + 1;
	}
}

static void q_decode(struct gn_buf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '_')
			c = ' ';	/* RFC 2047 4.2 (2) */
		else if (c == '=' && i + 2 < len && hex_digit((unsigned char)s[i + 1]) >= 0 &&
			 hex_digit((unsigned char)s[i + 2]) >= 0) {
			c = (unsigned char)(hex_digit((unsigned char)s[i + 1]) * 16 +
					    hex_digit((unsigned char)s[i + 2]));
			i += 2;
		}
		(void)gn_buf_append(out, &c, 1);
	}
}

/* Decodes the encoded words anywhere in s (lenient: also inside quoted
 * strings and words, as Outlook and Gmail write them in filenames) and
 * checks the rest as UTF-8.  White space between two encoded words is
 * dropped (RFC 2047 6.2); adjacent words in the same charset are joined
 * before conversion, so a character split over two words survives.  CR and
 * LF are removed (unfolding, RFC 5322 2.2.3). */
static void decode_words(struct gn_buf *out, const char *s, size_t len, struct gn_mime_message *msg)
{
	struct gn_buf *pend = gn_buf_new(0);	/* decoded bytes not yet converted */
	char pend_cs[64] = "";
	size_t lit = 0;		/* start of literal text not yet written */
	bool after_word = false;
	size_t i = 0;
	while (i < len) {
		const char *cs, *text;
		size_t cs_len, text_len;
		char enc;
		size_t n = s[i] == '=' ? encoded_word(s + i, len - i, &cs, &cs_len, &enc, &text,
						       &text_len) : 0;
		if (n == 0) {
			i++;
			continue;
		}
		/* The literal text between the last word and this one. */
		bool only_ws = after_word;
		for (size_t k = lit; k < i && only_ws; k++)
			if (s[k] != ' ' && s[k] != '\t' && s[k] != '\r' && s[k] != '\n')
				only_ws = false;
		char csname[64];
		size_t cl = cs_len < sizeof(csname) ? cs_len : sizeof(csname) - 1;
		memcpy(csname, cs, cl);
		csname[cl] = '\0';
		if (!only_ws || strcasecmp(csname, pend_cs) != 0) {
			if (gn_buf_len(pend) > 0)
				charset_convert(out, pend_cs, gn_buf_data(pend), gn_buf_len(pend), msg);
			gn_buf_clear(pend);
			if (!only_ws)
				append_unfolded(out, s + lit, i - lit);
			memcpy(pend_cs, csname, cl + 1);
		}
		if (enc == 'B')
			b64_decode(pend, text, text_len);
		else
			q_decode(pend, text, text_len);
		i += n;
		lit = i;
		after_word = true;
	}
	if (gn_buf_len(pend) > 0)
		charset_convert(out, pend_cs, gn_buf_data(pend), gn_buf_len(pend), msg);
	gn_buf_free(&pend);
	append_unfolded(out, s + lit, len - lit);
}

static char *decode_header_msg(struct gn_pool *pool, const char *value, size_t len,
			       struct gn_mime_message *msg)
{
	struct gn_buf *b = gn_buf_new(0);
	decode_words(b, value, len, msg);
	char *r = gn_pool_strndup(pool, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	return r;
}

char *gn_mime_decode_header(struct gn_pool *pool, const char *value, size_t len)
{
	return decode_header_msg(pool, value, len, NULL);
}

/* ---- structured fields: lexer (RFC 2045 5.1, RFC 822 3.3) ---- */

struct lex {
	const char *s, *end;
};

/* Skips white space and comments, which may nest (RFC 5322 3.2.2). */
static void lex_cfws(struct lex *l)
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

static char *lex_token_lower(struct gn_pool *pool, struct lex *l)
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
		free(pl->v[i].name);
		gn_buf_free(&pl->v[i].value);
	}
	free(pl->v);
	pl->v = NULL;
	pl->n = 0;
}

/* Reads "; name=value" pairs until the end.  Lenient: an unquoted value
 * runs to the next ';' (comments dropped), since mailers put spaces and
 * encoded words there unquoted; a broken pair is skipped. */
static void params_lex(struct lex *l, struct param_list *pl)
{
	for (;;) {
		lex_cfws(l);
		if (l->s >= l->end)
			return;
		if (*l->s != ';') {
			while (l->s < l->end && *l->s != ';')
				l->s++;
			continue;
		}
		l->s++;
		lex_cfws(l);
		const char *ns = l->s;
		while (l->s < l->end && is_token_char((unsigned char)*l->s))
			l->s++;
		size_t nlen = (size_t)(l->s - ns);
		lex_cfws(l);
		if (nlen == 0 || l->s >= l->end || *l->s != '=')
			continue;
		l->s++;
		lex_cfws(l);
		struct gn_buf *v = gn_buf_new(MAX_VALUE);
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
				lex_cfws(l);
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
			charset_convert(text, charset, gn_buf_data(bytes), gn_buf_len(bytes), msg);
		else if (strcmp(name, "boundary") == 0)
			utf8_append(text, gn_buf_data(bytes), gn_buf_len(bytes));
		else
			decode_words(text, gn_buf_data(bytes), gn_buf_len(bytes), msg);
		out[n].name = gn_pool_strdup(pool, name);
		out[n].value = gn_pool_strndup(pool, gn_buf_data(text), gn_buf_len(text));
		n++;
		gn_buf_free(&text);
		gn_buf_free(&bytes);
	}
	free(secs);
	*out_r = out;
	*n_r = n;
}

static const char *param_find(const struct mime_param *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return v[i].value;
	return NULL;
}

/* ---- dates (RFC 5322 3.3 and 4.3) ---- */

static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	/* Howard Hinnant's algorithm: days since 1970-01-01. */
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

struct date_lex {
	const char *s, *end;
};

static void date_skip(struct date_lex *l)
{
	struct lex x = { l->s, l->end };
	lex_cfws(&x);
	l->s = x.s;
}

static int date_number(struct date_lex *l, int max_digits, int *digits_r)
{
	int v = 0, n = 0;
	while (l->s < l->end && *l->s >= '0' && *l->s <= '9' && n < max_digits) {
		v = v * 10 + (*l->s - '0');
		l->s++;
		n++;
	}
	*digits_r = n;
	return v;
}

static size_t date_word(struct date_lex *l, char *w, size_t wsize)
{
	size_t n = 0;
	while (l->s < l->end && ((*l->s >= 'a' && *l->s <= 'z') || (*l->s >= 'A' && *l->s <= 'Z'))) {
		if (n + 1 < wsize)
			w[n++] = (char)(*l->s | 0x20);
		l->s++;
	}
	w[n] = '\0';
	return n;
}

int gn_mime_parse_date(const char *value, size_t len, time_t *date_r)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	struct date_lex l = { value, value + len };
	char w[16];
	int nd;
	date_skip(&l);
	/* [day-of-week ","]: RFC 5322 4.3 allows CFWS around the comma. */
	if (l.s < l.end && !(*l.s >= '0' && *l.s <= '9')) {
		if (date_word(&l, w, sizeof(w)) < 3)
			return 0;
		date_skip(&l);
		if (l.s < l.end && *l.s == ',')
			l.s++;
		date_skip(&l);
	}
	int day = date_number(&l, 2, &nd);
	if (nd == 0 || day < 1 || day > 31)
		return 0;
	date_skip(&l);
	if (l.s < l.end && *l.s == '-')	/* "1-Jan-2024" as some write it */
		l.s++;
	if (date_word(&l, w, sizeof(w)) < 3)
		return 0;
	const char *mp = NULL;
	for (int i = 0; i < 12 && mp == NULL; i++)
		if (memcmp(months + 3 * i, w, 3) == 0)
			mp = months + 3 * i;
	if (mp == NULL)
		return 0;
	unsigned month = (unsigned)((mp - months) / 3 + 1);
	date_skip(&l);
	if (l.s < l.end && *l.s == '-')
		l.s++;
	int year = date_number(&l, 4, &nd);
	if (nd < 2)
		return 0;
	/* RFC 5322 4.3: two digits: 00-49 are 20xx, 50-99 19xx; three: +1900. */
	if (nd == 2)
		year += year < 50 ? 2000 : 1900;
	else if (nd == 3)
		year += 1900;
	date_skip(&l);
	int hour = date_number(&l, 2, &nd);
	if (nd == 0 || hour > 23)
		return 0;
	date_skip(&l);
	if (l.s >= l.end || *l.s != ':')
		return 0;
	l.s++;
	date_skip(&l);
	int minute = date_number(&l, 2, &nd);
	if (nd == 0 || minute > 59)
		return 0;
	int second = 0;
	date_skip(&l);
	if (l.s < l.end && *l.s == ':') {
		l.s++;
		date_skip(&l);
		second = date_number(&l, 2, &nd);
		if (nd == 0 || second > 60)
			return 0;
		date_skip(&l);
	}
	long offset = 0;	/* seconds east of UTC */
	if (l.s < l.end && (*l.s == '+' || *l.s == '-')) {
		int sign = *l.s == '-' ? -1 : 1;
		l.s++;
		int z = date_number(&l, 4, &nd);
		if (nd != 4 || z % 100 > 59)
			return 0;
		offset = sign * ((z / 100) * 3600L + (z % 100) * 60L);
	} else if (l.s < l.end) {
		(void)date_word(&l, w, sizeof(w));
		/* RFC 5322 4.3: obs-zone. */
		static const struct {
			const char *name;
			int hours;
		} zones[] = {
			{ "ut", 0 }, { "gmt", 0 }, { "utc", 0 }, { "z", 0 },
			{ "est", -5 }, { "edt", -4 }, { "cst", -6 }, { "cdt", -5 },
			{ "mst", -7 }, { "mdt", -6 }, { "pst", -8 }, { "pdt", -7 },
		};
		/* Military zones: RFC 5322 4.3 says to read them as -0000
		 * (their sign was defined backwards), and so is any other
		 * name not in the table. */
		for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
			if (strcmp(w, zones[i].name) == 0)
				offset = zones[i].hours * 3600L;
	}
	/* Anything after the zone (a comment, "(CET)") is ignored. */
	if (second == 60)
		second = 59;
	if (day > 28) {
		static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
		bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
		if (day > mdays[month - 1] || (month == 2 && day == 29 && !leap))
			return 0;
	}
	long long t = days_from_civil(year, month, (unsigned)day) * 86400LL + hour * 3600LL +
		      minute * 60LL + second - offset;
	if ((long long)(time_t)t != t)
		return 0;
	*date_r = (time_t)t;
	return 1;
}

/* ---- decoded size of a body (RFC 2045 6.7, 6.8) ---- */

enum dec_kind { DEC_IDENTITY, DEC_BASE64, DEC_QP };

enum qp_state { QP_TEXT, QP_CR, QP_EQ, QP_EQ1, QP_EQCR, QP_EQWS };

struct decoder {
	enum dec_kind kind;
	size_t out;
	/* base64 */
	unsigned quad, pads;
	bool b64_done;
	/* quoted-printable */
	enum qp_state qs;
	size_t ws;		/* white space seen, not yet known to be kept */
};

static void dec_init(struct decoder *d, const char *encoding)
{
	memset(d, 0, sizeof(*d));
	if (encoding != NULL && strcmp(encoding, "base64") == 0)
		d->kind = DEC_BASE64;
	else if (encoding != NULL && strcmp(encoding, "quoted-printable") == 0)
		d->kind = DEC_QP;
	else
		d->kind = DEC_IDENTITY;
}

static void dec_qp_byte(struct decoder *d, unsigned char c)
{
	for (;;) {
		switch (d->qs) {
		case QP_TEXT:
			if (c == ' ' || c == '\t') {
				d->ws++;
			} else if (c == '=') {
				d->out += d->ws;
				d->ws = 0;
				d->qs = QP_EQ;
			} else if (c == '\r') {
				d->qs = QP_CR;
			} else if (c == '\n') {
				/* RFC 2045 6.7 (3): trailing white space is
				 * deleted. */
				d->ws = 0;
				d->out++;
			} else {
				d->out += d->ws + 1;
				d->ws = 0;
			}
			return;
		case QP_CR:
			d->qs = QP_TEXT;
			if (c == '\n') {
				d->ws = 0;
				d->out += 2;
				return;
			}
			d->out += d->ws + 1;	/* a bare CR is text */
			d->ws = 0;
			continue;
		case QP_EQ:
			if (hex_digit(c) >= 0) {
				d->qs = QP_EQ1;
				return;
			}
			if (c == '\r') {
				d->qs = QP_EQCR;
				return;
			}
			if (c == '\n') {	/* soft line break */
				d->qs = QP_TEXT;
				return;
			}
			if (c == ' ' || c == '\t') {
				d->qs = QP_EQWS;
				d->ws = 1;
				return;
			}
			d->out++;	/* a lone '=' stays (RFC 2045 6.7 note 1) */
			d->qs = QP_TEXT;
			continue;
		case QP_EQ1:
			d->qs = QP_TEXT;
			if (hex_digit(c) >= 0) {
				d->out++;
				return;
			}
			d->out += 2;
			continue;
		case QP_EQCR:
			d->qs = QP_TEXT;
			if (c == '\n')
				return;
			d->out += 2;
			continue;
		case QP_EQWS:
			/* "=" and padding before the line break: still soft. */
			if (c == ' ' || c == '\t') {
				d->ws++;
				return;
			}
			if (c == '\r') {
				d->ws = 0;
				d->qs = QP_EQCR;
				return;
			}
			if (c == '\n') {
				d->ws = 0;
				d->qs = QP_TEXT;
				return;
			}
			d->out += 1 + d->ws;
			d->ws = 0;
			d->qs = QP_TEXT;
			continue;
		}
	}
}

static void dec_feed(struct decoder *d, const char *s, size_t len)
{
	switch (d->kind) {
	case DEC_IDENTITY:
		d->out += len;
		break;
	case DEC_BASE64:
		for (size_t i = 0; i < len && !d->b64_done; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '=') {
				/* Complete padding ends the data (as Python's
				 * binascii does); padding too early is skipped. */
				if (d->quad >= 2 && d->quad + ++d->pads >= 4)
					d->b64_done = true;
				continue;
			}
			if (b64_value(c) < 0)
				continue;
			if (d->quad != 0)
				d->out++;
			d->quad = (d->quad + 1) % 4;
			d->pads = 0;
		}
		break;
	case DEC_QP:
		for (size_t i = 0; i < len; i++)
			dec_qp_byte(d, (unsigned char)s[i]);
		break;
	}
}

static size_t dec_finish(struct decoder *d)
{
	if (d->kind == DEC_QP) {
		switch (d->qs) {
		case QP_TEXT:
			break;	/* trailing white space dropped */
		case QP_CR:
			d->out += 1;
			break;
		case QP_EQ:
		case QP_EQWS:
			break;	/* a soft break at the very end */
		case QP_EQ1:
		case QP_EQCR:
			d->out += 2;
			break;
		}
		d->qs = QP_TEXT;
	}
	return d->out;
}

/* ---- the parser ---- */

enum op_state {
	OP_HEADER,		/* in the header block */
	OP_LEAF,		/* in a body without parts */
	OP_PREAMBLE,		/* multipart, before the first boundary */
	OP_CHILD,		/* multipart, a child is open above */
	OP_SKIP,		/* multipart past the part limit: no more children */
	OP_EPILOGUE,		/* multipart after its close delimiter */
	OP_MESSAGE,		/* message/rfc822: its child is open above */
};

struct open_part {
	struct gn_mime_part *part;
	enum op_state state;
	char *boundary;		/* multipart */
	size_t boundary_len;
	size_t lf_at_body;	/* line feeds before the body */
	struct decoder dec;	/* OP_LEAF */
};

struct gn_mime_parser {
	struct gn_mime_limits lim;
	struct gn_mime_message *msg;
	struct open_part *stack;
	size_t depth, stack_cap;
	size_t n_parts;
	bool parts_reported, finished;

	size_t pos;		/* bytes consumed */
	size_t lf_count;	/* line feeds in [0, pos) */
	size_t line_start, lf_at_line, prev_line_start;
	bool at_line_start;
	bool any_boundary;	/* some multipart on the stack has one open */

	/* Header mode: the block so far; hdr_line is where the current line
	 * starts in it; hdr_eol the line break length of the last line. */
	struct gn_buf *hdr;
	size_t hdr_line, hdr_eol;
	unsigned n_fields;
	struct gn_buf *refeed;	/* bytes to parse again in a new state */

	/* Body mode: the held line break of the previous line, a held CR,
	 * and the start of the current line while it may be a boundary. */
	size_t pending_eol;
	bool pending_cr;
	bool prefix_active;
	size_t prefix_len;
	char prefix[LINE_PREFIX];
};

static struct open_part *top(struct gn_mime_parser *p)
{
	return &p->stack[p->depth - 1];
}

static void update_boundaries(struct gn_mime_parser *p)
{
	p->any_boundary = false;
	for (size_t i = 0; i < p->depth; i++) {
		enum op_state s = p->stack[i].state;
		if (s == OP_PREAMBLE || s == OP_CHILD || s == OP_SKIP)
			p->any_boundary = true;
	}
}

static void set_text_plain(struct gn_mime_message *msg, struct gn_mime_part *part)
{
	part->type = gn_pool_strdup(msg->pool, "text");
	part->subtype = gn_pool_strdup(msg->pool, "plain");
	part->params = NULL;
	part->n_params = 0;
}

/* Opens a part whose header starts at offset. */
static void start_part(struct gn_mime_parser *p, struct gn_mime_part *parent, size_t offset,
		       bool is_message)
{
	struct gn_mime_message *msg = p->msg;
	struct gn_mime_part *part = gn_pool_alloc(msg->pool, sizeof(*part));
	part->index = p->n_parts++;
	part->parent = parent;
	part->header_offset = offset;
	part->body_offset = offset;
	if (is_message)
		part->envelope = gn_pool_alloc(msg->pool, sizeof(*part->envelope));
	if (parent == NULL) {
		msg->root = part;
	} else {
		if (parent->last_child != NULL)
			parent->last_child->next = part;
		else
			parent->first_child = part;
		parent->last_child = part;
		parent->n_children++;
	}
	if (p->depth == p->stack_cap) {
		p->stack_cap = p->stack_cap ? p->stack_cap * 2 : 8;
		p->stack = gn_realloc(p->stack, p->stack_cap * sizeof(*p->stack));
	}
	struct open_part *e = &p->stack[p->depth++];
	memset(e, 0, sizeof(*e));
	e->part = part;
	e->state = OP_HEADER;
	gn_buf_clear(p->hdr);
	p->hdr_line = 0;
	p->hdr_eol = 0;
	p->n_fields = 0;
}

/* Copies a header value: unfolded (CR and LF removed), NUL made a space,
 * trimmed, cut at MAX_VALUE. */
static char *field_value(struct gn_pool *pool, const char *s, size_t len, size_t *len_r)
{
	while (len > 0 && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
		s++;
		len--;
	}
	char *v = gn_pool_alloc(pool, (len < MAX_VALUE ? len : MAX_VALUE) + 1);
	size_t n = 0;
	for (size_t i = 0; i < len && n < MAX_VALUE; i++) {
		if (s[i] == '\r' || s[i] == '\n')
			continue;
		v[n++] = s[i] == '\0' ? ' ' : s[i];
	}
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	v[n] = '\0';
	*len_r = n;
	return v;
}

struct header_raw {
	const char *ct, *cte, *cd, *id, *desc, *lang, *loc, *md5;
	size_t ct_len, cte_len, cd_len, id_len, desc_len, lang_len, loc_len, md5_len;
};

/* One field of a header block (name: value, folded lines included). */
static void header_field(struct gn_mime_parser *p, struct gn_mime_part *part,
			 struct header_raw *h, const char *f, size_t len)
{
	struct gn_pool *pool = p->msg->pool;
	const char *colon = memchr(f, ':', len);
	if (colon == NULL)
		return;
	size_t nl = (size_t)(colon - f);
	while (nl > 0 && (f[nl - 1] == ' ' || f[nl - 1] == '\t'))
		nl--;	/* RFC 5322 4.5: obs-optional white space */
	const char *v = colon + 1;
	size_t vlen = len - (size_t)(v - f);
	char name[32];
	if (nl == 0 || nl >= sizeof(name))
		return;
	for (size_t i = 0; i < nl; i++)
		name[i] = (char)((f[i] >= 'A' && f[i] <= 'Z') ? f[i] + 32 : f[i]);
	name[nl] = '\0';

#define TAKE(member, lenmember)                                                  \
	do {                                                                     \
		if (h->member == NULL)                                           \
			h->member = field_value(pool, v, vlen, &h->lenmember);   \
	} while (0)
	if (strncmp(name, "content-", 8) == 0) {
		const char *n8 = name + 8;
		if (strcmp(n8, "type") == 0)
			TAKE(ct, ct_len);
		else if (strcmp(n8, "transfer-encoding") == 0)
			TAKE(cte, cte_len);
		else if (strcmp(n8, "disposition") == 0)
			TAKE(cd, cd_len);
		else if (strcmp(n8, "id") == 0)
			TAKE(id, id_len);
		else if (strcmp(n8, "description") == 0)
			TAKE(desc, desc_len);
		else if (strcmp(n8, "language") == 0)
			TAKE(lang, lang_len);
		else if (strcmp(n8, "location") == 0)
			TAKE(loc, loc_len);
		else if (strcmp(n8, "md5") == 0)
			TAKE(md5, md5_len);
		return;
	}
#undef TAKE
	if (part->envelope == NULL)
		return;
	for (int i = 0; i < N_FIELDS; i++) {
		if (strcmp(name, field_names[i]) != 0)
			continue;
		if (part->envelope->raw[i] != NULL)
			return;	/* the first one counts */
		size_t rl;
		char *raw = field_value(pool, v, vlen, &rl);
		part->envelope->raw[i] = raw;
		part->envelope->decoded[i] = decode_header_msg(pool, raw, rl, p->msg);
		if (i == GN_MIME_DATE) {
			time_t t;
			if (gn_mime_parse_date(raw, rl, &t) > 0) {
				part->envelope->has_date = true;
				part->envelope->date = t;
			} else {
				problem(p->msg, "part %zu: Date not understood", part->index);
			}
		}
		return;
	}
}

static void parse_content_type(struct gn_mime_parser *p, struct gn_mime_part *part,
			       const struct header_raw *h)
{
	struct gn_mime_message *msg = p->msg;
	bool digest = part->parent != NULL && strcmp(part->parent->type, "multipart") == 0 &&
		      strcmp(part->parent->subtype, "digest") == 0;
	if (h->ct != NULL) {
		struct lex l = { h->ct, h->ct + h->ct_len };
		lex_cfws(&l);
		char *type = lex_token_lower(msg->pool, &l);
		lex_cfws(&l);
		char *subtype = NULL;
		if (l.s < l.end && *l.s == '/') {
			l.s++;
			lex_cfws(&l);
			subtype = lex_token_lower(msg->pool, &l);
		}
		if (type[0] != '\0' && subtype != NULL && subtype[0] != '\0') {
			part->type = type;
			part->subtype = subtype;
			struct param_list pl = { NULL, 0 };
			params_lex(&l, &pl);
			params_finish(msg, &pl, &part->params, &part->n_params);
			raw_params_free(&pl);
			return;
		}
		/* RFC 2045 5.2: a broken Content-Type means text/plain. */
		problem(msg, "part %zu: Content-Type not understood, taken as text/plain",
			part->index);
	}
	/* RFC 2046 5.1.5: in a digest, the default is message/rfc822. */
	part->type = gn_pool_strdup(msg->pool, digest && h->ct == NULL ? "message" : "text");
	part->subtype = gn_pool_strdup(msg->pool, digest && h->ct == NULL ? "rfc822" : "plain");
}

/* The header block is complete (block: its fields, without the blank
 * line): fill in the part.  closing: the part ends here (no body). */
static void parse_header_block(struct gn_mime_parser *p, struct gn_mime_part *part,
			       const char *block, size_t len)
{
	struct gn_mime_message *msg = p->msg;
	struct header_raw h;
	memset(&h, 0, sizeof(h));
	size_t i = 0;
	/* An mbox "From " line before the first field is not a field. */
	if (part->parent == NULL && len >= 5 && memcmp(block, "From ", 5) == 0) {
		const char *nl = memchr(block, '\n', len);
		i = nl != NULL ? (size_t)(nl - block) + 1 : len;
	}
	while (i < len) {
		size_t start = i;
		/* A field runs until a line that does not start with white
		 * space (RFC 5322 2.2.3). */
		for (;;) {
			const char *nl = memchr(block + i, '\n', len - i);
			i = nl != NULL ? (size_t)(nl - block) + 1 : len;
			if (i >= len || (block[i] != ' ' && block[i] != '\t'))
				break;
		}
		header_field(p, part, &h, block + start, i - start);
	}
	parse_content_type(p, part, &h);
	if (h.cte != NULL) {
		struct lex l = { h.cte, h.cte + h.cte_len };
		lex_cfws(&l);
		part->encoding = lex_token_lower(msg->pool, &l);
	}
	if (h.cd != NULL) {
		struct lex l = { h.cd, h.cd + h.cd_len };
		lex_cfws(&l);
		part->disposition = lex_token_lower(msg->pool, &l);
		struct param_list pl = { NULL, 0 };
		params_lex(&l, &pl);
		params_finish(msg, &pl, &part->disp_params, &part->n_disp_params);
		raw_params_free(&pl);
	}
	if (h.id != NULL)
		part->content_id = utf8_pool(msg->pool, h.id, h.id_len);
	if (h.desc != NULL)
		part->description = decode_header_msg(msg->pool, h.desc, h.desc_len, msg);
	if (h.lang != NULL)
		part->language = utf8_pool(msg->pool, h.lang, h.lang_len);
	if (h.loc != NULL)
		part->location = utf8_pool(msg->pool, h.loc, h.loc_len);
	if (h.md5 != NULL)
		part->md5 = utf8_pool(msg->pool, h.md5, h.md5_len);
	const char *fn = param_find(part->disp_params, part->n_disp_params, "filename");
	if (fn == NULL)
		fn = param_find(part->params, part->n_params, "name");
	if (fn != NULL)
		part->filename = gn_pool_strdup(msg->pool, fn);
}

static bool encoding_is_identity(const char *enc)
{
	/* RFC 2045 6.4: composite types allow only these. */
	return enc == NULL || strcmp(enc, "7bit") == 0 || strcmp(enc, "8bit") == 0 ||
	       strcmp(enc, "binary") == 0 || enc[0] == '\0';
}

/* The header of the top part ended: header up to header_end, body from
 * body_offset (lf: line feeds before it).  Decides what the body is and
 * opens a child for message/rfc822.  no_descend: why the part may not
 * have children (NULL: it may). */
static void end_header(struct gn_mime_parser *p, size_t header_end, size_t body_offset, size_t lf,
		       const char *block, size_t len, const char *no_descend)
{
	struct gn_mime_message *msg = p->msg;
	struct open_part *e = top(p);
	struct gn_mime_part *part = e->part;
	part->header_size = header_end - part->header_offset;
	part->body_offset = body_offset;
	e->lf_at_body = lf;
	parse_header_block(p, part, block, len);
	gn_buf_clear(p->hdr);
	p->hdr_line = 0;
	p->n_fields = 0;
	p->pending_eol = 0;
	p->pending_cr = false;
	p->prefix_active = false;
	p->at_line_start = true;

	bool multipart = strcmp(part->type, "multipart") == 0;
	bool message = strcmp(part->type, "message") == 0 &&
		       (strcmp(part->subtype, "rfc822") == 0 || strcmp(part->subtype, "global") == 0);
	if (message && !encoding_is_identity(part->encoding)) {
		/* RFC 2046 5.2.1: no encoding but 7bit, 8bit or binary; an
		 * encoded message is read as an opaque body. */
		problem(msg, "part %zu: message/%s with Content-Transfer-Encoding %s is not parsed",
			part->index, part->subtype, part->encoding);
		message = false;
	}
	if (multipart || message) {
		const char *why = NULL;
		const char *boundary = multipart ? param_find(part->params, part->n_params, "boundary") : NULL;
		if (no_descend != NULL)
			why = no_descend;
		else if (p->depth >= p->lim.max_depth)
			why = "it is nested too deep";
		else if (p->n_parts >= p->lim.max_parts)
			why = "the message has too many parts";
		else if (multipart && (boundary == NULL || boundary[0] == '\0'))
			why = "it has no boundary";
		else if (multipart && strlen(boundary) > MAX_BOUNDARY)
			why = "its boundary is too long";
		if (why != NULL) {
			problem(msg, "part %zu: %s/%s not parsed because %s; taken as text/plain",
				part->index, part->type, part->subtype, why);
			set_text_plain(msg, part);
			multipart = message = false;
		} else if (multipart) {
			e->state = OP_PREAMBLE;
			e->boundary = gn_pool_strdup(msg->pool, boundary);
			e->boundary_len = strlen(boundary);
			p->any_boundary = true;
			return;
		} else {
			e->state = OP_MESSAGE;
			start_part(p, part, body_offset, true);
			return;
		}
	}
	e->state = OP_LEAF;
	dec_init(&e->dec, part->encoding);
}

/* Closes the open part e: its body ends at cut; lf: line feeds before cut;
 * after_lf: the byte before cut is a line feed. */
static void close_part(struct gn_mime_parser *p, struct open_part *e, size_t cut, size_t lf,
		       bool after_lf)
{
	struct gn_mime_message *msg = p->msg;
	struct gn_mime_part *part = e->part;
	if (e->state == OP_HEADER) {
		/* Ended inside its header: what is there is the header. */
		size_t blen = gn_buf_len(p->hdr);
		if (cut < part->header_offset)
			cut = part->header_offset;
		end_header(p, cut, cut, lf, gn_buf_data(p->hdr), blen, "it ends inside its header");
	}
	size_t size = cut > part->body_offset ? cut - part->body_offset : 0;
	part->body_size = size;
	part->body_lines = size == 0 ? 0 : lf - e->lf_at_body + (after_lf ? 0 : 1);
	switch (e->state) {
	case OP_LEAF:
		part->decoded_size = dec_finish(&e->dec);
		break;
	case OP_PREAMBLE:
		problem(msg, "part %zu: multipart/%s boundary never found; taken as text/plain",
			part->index, part->subtype);
		set_text_plain(msg, part);
		part->decoded_size = size;
		break;
	case OP_CHILD:
	case OP_SKIP:
		problem(msg, "part %zu: multipart/%s has no close delimiter", part->index,
			part->subtype);
		part->decoded_size = size;
		break;
	default:
		part->decoded_size = size;
		break;
	}
	if (strcmp(part->type, "multipart") == 0 && part->n_children == 0) {
		problem(msg, "part %zu: multipart/%s has no parts; taken as text/plain", part->index,
			part->subtype);
		set_text_plain(msg, part);
	}
}

/* A boundary of the multipart at stack index k: everything above it ends
 * at the line break before the line; then a new child opens, or the
 * multipart's epilogue starts. */
static void boundary_event(struct gn_mime_parser *p, size_t k, bool close, size_t eol_before)
{
	size_t cut = p->line_start - eol_before;
	size_t lf = p->lf_at_line - (eol_before > 0 ? 1 : 0);
	bool after_lf = eol_before > 0 ? p->prev_line_start == cut : p->line_start > 0;
	while (p->depth > k + 1) {
		close_part(p, top(p), cut, lf, after_lf);
		p->depth--;
	}
	struct open_part *owner = top(p);
	p->pending_eol = 0;
	p->pending_cr = false;
	p->prefix_active = false;
	p->at_line_start = true;
	if (close) {
		owner->state = OP_EPILOGUE;
	} else if (owner->state != OP_SKIP) {
		if (p->n_parts >= p->lim.max_parts) {
			problem(p->msg, "message has more than %u parts; the rest is not parsed",
				p->lim.max_parts);
			owner->state = OP_SKIP;
		} else {
			owner->state = OP_CHILD;
			start_part(p, owner->part, p->pos, false);
		}
	}
	update_boundaries(p);
}

/* Whether line (without its line break) is a boundary delimiter of an open
 * multipart (RFC 2046 5.1.1: "--" boundary ["--"] transport-padding); the
 * innermost wins. */
static bool match_boundary(struct gn_mime_parser *p, const char *line, size_t len, size_t *k_r,
			   bool *close_r)
{
	if (len < 3 || line[0] != '-' || line[1] != '-')
		return false;
	for (size_t i = p->depth; i-- > 0;) {
		const struct open_part *e = &p->stack[i];
		if (e->state != OP_PREAMBLE && e->state != OP_CHILD && e->state != OP_SKIP)
			continue;
		size_t bl = e->boundary_len;
		if (len < 2 + bl || memcmp(line + 2, e->boundary, bl) != 0)
			continue;
		size_t j = 2 + bl;
		bool close = false;
		if (j + 2 <= len && line[j] == '-' && line[j + 1] == '-') {
			close = true;
			j += 2;
		}
		while (j < len && (line[j] == ' ' || line[j] == '\t'))
			j++;
		if (j != len)
			continue;
		*k_r = i;
		*close_r = close;
		return true;
	}
	return false;
}

/* Body bytes of the innermost part. */
static void body_bytes(struct gn_mime_parser *p, const char *s, size_t len)
{
	struct open_part *e = top(p);
	if (e->state == OP_LEAF && len > 0)
		dec_feed(&e->dec, s, len);
}

static void flush_eol(struct gn_mime_parser *p)
{
	if (p->pending_eol > 0)
		body_bytes(p, p->pending_eol == 2 ? "\r\n" : "\n", p->pending_eol);
	p->pending_eol = 0;
}

static void new_line(struct gn_mime_parser *p)
{
	p->prev_line_start = p->line_start;
	p->line_start = p->pos;
	p->lf_at_line = p->lf_count;
	p->at_line_start = true;
}

static void feed_bytes(struct gn_mime_parser *p, const char *d, size_t len);

/* Parses again, in the state the parser is now in, the current line that
 * was consumed in header mode (which ended the header). */
static void refeed_line(struct gn_mime_parser *p, const char *line, size_t len, bool had_lf)
{
	p->pos -= len;
	if (had_lf)
		p->lf_count--;
	struct gn_buf *b = gn_buf_new(0);
	(void)gn_buf_append(b, line, len);
	p->refeed = b;
}

/* Header mode: consumes up to one line. */
static size_t feed_header(struct gn_mime_parser *p, const char *d, size_t len)
{
	const char *nl = memchr(d, '\n', len);
	size_t n = nl != NULL ? (size_t)(nl - d) + 1 : len;
	struct open_part *e = top(p);
	if (gn_buf_len(p->hdr) + n > p->lim.max_header_size) {
		/* The header ends before this line; the line and the rest are
		 * body. */
		problem(p->msg, "part %zu: header larger than %zu bytes; the rest is taken as body",
			e->part->index, p->lim.max_header_size);
		size_t partial = gn_buf_len(p->hdr) - p->hdr_line;
		char *copy = gn_malloc(partial + 1);
		memcpy(copy, gn_buf_data(p->hdr) + p->hdr_line, partial);
		size_t lf = p->lf_at_line;
		end_header(p, p->line_start, p->line_start, lf, gn_buf_data(p->hdr), p->hdr_line,
			   "its header is too large");
		p->pos -= partial;
		struct gn_buf *b = gn_buf_new(0);
		(void)gn_buf_append(b, copy, partial);
		free(copy);
		p->refeed = b;
		return 0;
	}
	(void)gn_buf_append(p->hdr, d, n);
	p->pos += n;
	if (nl == NULL)
		return n;
	p->lf_count++;
	const char *line = gn_buf_data(p->hdr) + p->hdr_line;
	size_t llen = gn_buf_len(p->hdr) - p->hdr_line;
	size_t eol = llen >= 2 && line[llen - 2] == '\r' ? 2 : 1;
	size_t clen = llen - eol;
	size_t k;
	bool close;
	if (p->any_boundary && match_boundary(p, line, clen, &k, &close)) {
		gn_buf_truncate(p->hdr, p->hdr_line);
		boundary_event(p, k, close, p->hdr_eol);
		new_line(p);
		return n;
	}
	if (clen == 0) {
		/* The blank line: the header ends (RFC 5322 2.1). */
		end_header(p, p->pos, p->pos, p->lf_count, gn_buf_data(p->hdr), p->hdr_line, NULL);
		new_line(p);
		return n;
	}
	bool field;
	if (line[0] == ' ' || line[0] == '\t') {
		field = true;	/* a folded line */
	} else if (e->part->parent == NULL && p->hdr_line == 0 && clen >= 5 &&
		   memcmp(line, "From ", 5) == 0) {
		field = true;	/* mbox separator */
	} else {
		size_t i = 0;
		while (i < clen && line[i] > 32 && line[i] < 127 && line[i] != ':')
			i++;
		size_t name_end = i;
		while (i < clen && (line[i] == ' ' || line[i] == '\t'))
			i++;
		field = name_end > 0 && i < clen && line[i] == ':';
		if (field && ++p->n_fields > p->lim.max_headers) {
			problem(p->msg, "part %zu: more than %u header fields; the rest is taken as body",
				e->part->index, p->lim.max_headers);
			char *copy = gn_malloc(llen);
			memcpy(copy, line, llen);
			end_header(p, p->line_start, p->line_start, p->lf_at_line,
				   gn_buf_data(p->hdr), p->hdr_line, "its header has too many fields");
			refeed_line(p, copy, llen, true);
			free(copy);
			return n;
		}
	}
	if (!field) {
		/* Not a field: the header ends without a blank line and this
		 * line is the first of the body. */
		problem(p->msg, "part %zu: header not ended by a blank line", e->part->index);
		char *copy = gn_malloc(llen);
		memcpy(copy, line, llen);
		end_header(p, p->line_start, p->line_start, p->lf_at_line, gn_buf_data(p->hdr),
			   p->hdr_line, NULL);
		refeed_line(p, copy, llen, true);
		free(copy);
		return n;
	}
	p->hdr_line = gn_buf_len(p->hdr);
	p->hdr_eol = eol;
	new_line(p);
	return n;
}

/* The current body line is not a boundary: what was held back is body.
 * complete: the whole line (without its line break) is in the prefix; else
 * a CR at its end may still start the line break and is held. */
static void prefix_is_body(struct gn_mime_parser *p, bool complete)
{
	flush_eol(p);
	size_t n = p->prefix_len;
	if (!complete && n > 0 && p->prefix[n - 1] == '\r') {
		n--;
		p->pending_cr = true;
	}
	body_bytes(p, p->prefix, n);
	p->prefix_active = false;
	p->prefix_len = 0;
}

/* Body mode: consumes up to one line. */
static size_t feed_body(struct gn_mime_parser *p, const char *d, size_t len)
{
	if (p->at_line_start) {
		p->at_line_start = false;
		p->prefix_active = p->any_boundary;
		p->prefix_len = 0;
		if (!p->prefix_active)
			flush_eol(p);
	}
	const char *nl = memchr(d, '\n', len);
	size_t n = nl != NULL ? (size_t)(nl - d) + 1 : len;
	size_t content = nl != NULL ? n - 1 : n;	/* bytes before the LF */
	size_t i = 0;
	if (p->prefix_active) {
		size_t take = content < LINE_PREFIX - p->prefix_len ? content : LINE_PREFIX - p->prefix_len;
		memcpy(p->prefix + p->prefix_len, d, take);
		p->prefix_len += take;
		i = take;
		if (p->prefix_len > 0 &&
		    (p->prefix[0] != '-' || (p->prefix_len >= 2 && p->prefix[1] != '-') ||
		     i < content || (p->prefix_len == LINE_PREFIX && nl == NULL)))
			prefix_is_body(p, false);
	}
	if (!p->prefix_active && i < content) {
		if (p->pending_cr) {
			p->pending_cr = false;
			body_bytes(p, "\r", 1);
		}
		size_t m = content - i;
		if (d[i + m - 1] == '\r') {
			m--;
			p->pending_cr = true;
		}
		body_bytes(p, d + i, m);
	}
	p->pos += n;
	if (nl == NULL)
		return n;
	p->lf_count++;
	size_t eol = 1;
	if (p->prefix_active) {
		size_t clen = p->prefix_len;
		if (clen > 0 && p->prefix[clen - 1] == '\r') {
			clen--;
			eol = 2;
		}
		size_t k;
		bool close;
		if (match_boundary(p, p->prefix, clen, &k, &close)) {
			boundary_event(p, k, close, p->pending_eol);
			new_line(p);
			return n;
		}
		p->prefix_len = clen;
		prefix_is_body(p, true);
	} else if (p->pending_cr) {
		p->pending_cr = false;
		eol = 2;
	}
	p->pending_eol = eol;
	new_line(p);
	return n;
}

static void feed_bytes(struct gn_mime_parser *p, const char *d, size_t len)
{
	while (len > 0) {
		size_t n = top(p)->state == OP_HEADER ? feed_header(p, d, len) : feed_body(p, d, len);
		d += n;
		len -= n;
		while (p->refeed != NULL) {
			struct gn_buf *b = p->refeed;
			p->refeed = NULL;
			feed_bytes(p, gn_buf_data(b), gn_buf_len(b));
			gn_buf_free(&b);
		}
	}
}

void gn_mime_limits_init(struct gn_mime_limits *limits)
{
	memset(limits, 0, sizeof(*limits));
	limits->size = sizeof(*limits);
	limits->max_depth = 50;
	limits->max_header_size = 1024 * 1024;
	limits->max_parts = 10000;
	limits->max_headers = 10000;
}

struct gn_mime_parser *gn_mime_parser_new(const struct gn_mime_limits *limits)
{
	struct gn_mime_parser *p = gn_calloc(1, sizeof(*p));
	gn_mime_limits_init(&p->lim);
	if (limits != NULL) {
		size_t n = limits->size < sizeof(p->lim) ? limits->size : sizeof(p->lim);
		if (n >= offsetof(struct gn_mime_limits, max_depth) + sizeof(unsigned))
			memcpy(&p->lim, limits, n);
		p->lim.size = sizeof(p->lim);
	}
	if (p->lim.max_depth < 1)
		p->lim.max_depth = 1;
	if (p->lim.max_parts < 1)
		p->lim.max_parts = 1;
	if (p->lim.max_header_size < 2)
		p->lim.max_header_size = 2;
	p->msg = gn_calloc(1, sizeof(*p->msg));
	p->msg->pool = gn_pool_new();
	p->hdr = gn_buf_new(0);
	start_part(p, NULL, 0, true);
	p->at_line_start = true;
	return p;
}

void gn_mime_parser_feed(struct gn_mime_parser *p, const void *data, size_t len)
{
	if (p->finished || len == 0)
		return;
	feed_bytes(p, data, len);
}

/* Turns the children lists into arrays. */
static void tree_finish(struct gn_pool *pool, struct gn_mime_part *part)
{
	/* Iterative pre-order walk: the tree may be deep. */
	struct gn_mime_part *cur = part;
	while (cur != NULL) {
		if (cur->n_children > 0 && cur->children == NULL) {
			cur->children = gn_pool_alloc(pool, cur->n_children * sizeof(*cur->children));
			size_t i = 0;
			for (struct gn_mime_part *c = cur->first_child; c != NULL; c = c->next)
				cur->children[i++] = c;
		}
		if (cur->first_child != NULL) {
			cur = cur->first_child;
			continue;
		}
		while (cur != NULL && cur != part && cur->next == NULL)
			cur = cur->parent;
		if (cur == NULL || cur == part)
			break;
		cur = cur->next;
	}
}

void gn_mime_parser_finish(struct gn_mime_parser *p, struct gn_mime_message **msg_r)
{
	*msg_r = NULL;
	if (p->finished || p->msg == NULL)
		return;
	/* The last line, if it has no line break. */
	if (top(p)->state == OP_HEADER) {
		const char *line = gn_buf_data(p->hdr) + p->hdr_line;
		size_t clen = gn_buf_len(p->hdr) - p->hdr_line;
		if (clen > 0 && line[clen - 1] == '\r')
			clen--;
		size_t k;
		bool close;
		if (clen > 0 && p->any_boundary && match_boundary(p, line, clen, &k, &close)) {
			gn_buf_truncate(p->hdr, p->hdr_line);
			boundary_event(p, k, close, p->hdr_eol);
		}
	} else if (p->prefix_active) {
		size_t clen = p->prefix_len;
		if (clen > 0 && p->prefix[clen - 1] == '\r')
			clen--;
		size_t k;
		bool close;
		if (match_boundary(p, p->prefix, clen, &k, &close))
			boundary_event(p, k, close, p->pending_eol);
		else
			prefix_is_body(p, true);
	}
	if (p->pending_cr) {
		flush_eol(p);
		body_bytes(p, "\r", 1);
		p->pending_cr = false;
	}
	/* At the end of the message the last line break is body. */
	if (top(p)->state != OP_HEADER)
		flush_eol(p);
	bool after_lf = p->pos > 0 && p->line_start == p->pos;
	while (p->depth > 0) {
		close_part(p, top(p), p->pos, p->lf_count, after_lf);
		p->depth--;
	}
	struct gn_mime_message *msg = p->msg;
	msg->size = p->pos;
	tree_finish(msg->pool, msg->root);
	p->msg = NULL;
	p->finished = true;
	*msg_r = msg;
}

void gn_mime_parser_free(struct gn_mime_parser **parser)
{
	if (parser == NULL || *parser == NULL)
		return;
	struct gn_mime_parser *p = *parser;
	gn_mime_message_free(&p->msg);
	gn_buf_free(&p->hdr);
	gn_buf_free(&p->refeed);
	free(p->stack);
	free(p);
	*parser = NULL;
}

struct gn_mime_message *gn_mime_parse(const void *data, size_t len,
				      const struct gn_mime_limits *limits)
{
	struct gn_mime_parser *p = gn_mime_parser_new(limits);
	struct gn_mime_message *msg;
	gn_mime_parser_feed(p, data, len);
	gn_mime_parser_finish(p, &msg);
	gn_mime_parser_free(&p);
	return msg;
}

void gn_mime_message_free(struct gn_mime_message **msg)
{
	if (msg == NULL || *msg == NULL)
		return;
	gn_pool_free(&(*msg)->pool);
	free((*msg)->problems);
	free(*msg);
	*msg = NULL;
}

/* ---- accessors ---- */

const struct gn_mime_part *gn_mime_message_root(const struct gn_mime_message *msg)
{
	return msg->root;
}

size_t gn_mime_message_size(const struct gn_mime_message *msg)
{
	return msg->size;
}

size_t gn_mime_message_problem_count(const struct gn_mime_message *msg)
{
	return msg->n_problems;
}

const char *gn_mime_message_problem(const struct gn_mime_message *msg, size_t i)
{
	return i < msg->n_problems ? msg->problems[i] : NULL;
}

const char *gn_mime_message_field(const struct gn_mime_message *msg, enum gn_mime_field field)
{
	return gn_mime_part_field(msg->root, field);
}

const char *gn_mime_message_field_raw(const struct gn_mime_message *msg, enum gn_mime_field field)
{
	return gn_mime_part_field_raw(msg->root, field);
}

int gn_mime_message_date(const struct gn_mime_message *msg, time_t *date_r)
{
	return gn_mime_part_date(msg->root, date_r);
}

size_t gn_mime_part_header_offset(const struct gn_mime_part *part) { return part->header_offset; }
size_t gn_mime_part_header_size(const struct gn_mime_part *part) { return part->header_size; }
size_t gn_mime_part_body_offset(const struct gn_mime_part *part) { return part->body_offset; }
size_t gn_mime_part_body_size(const struct gn_mime_part *part) { return part->body_size; }
size_t gn_mime_part_body_lines(const struct gn_mime_part *part) { return part->body_lines; }
size_t gn_mime_part_decoded_size(const struct gn_mime_part *part) { return part->decoded_size; }
const char *gn_mime_part_type(const struct gn_mime_part *part) { return part->type; }
const char *gn_mime_part_subtype(const struct gn_mime_part *part) { return part->subtype; }
size_t gn_mime_part_param_count(const struct gn_mime_part *part) { return part->n_params; }
const char *gn_mime_part_content_id(const struct gn_mime_part *part) { return part->content_id; }
const char *gn_mime_part_description(const struct gn_mime_part *part) { return part->description; }
const char *gn_mime_part_encoding(const struct gn_mime_part *part) { return part->encoding; }
const char *gn_mime_part_language(const struct gn_mime_part *part) { return part->language; }
const char *gn_mime_part_location(const struct gn_mime_part *part) { return part->location; }
const char *gn_mime_part_md5(const struct gn_mime_part *part) { return part->md5; }
const char *gn_mime_part_disposition(const struct gn_mime_part *part) { return part->disposition; }
const char *gn_mime_part_filename(const struct gn_mime_part *part) { return part->filename; }
size_t gn_mime_part_child_count(const struct gn_mime_part *part) { return part->n_children; }
const struct gn_mime_part *gn_mime_part_parent(const struct gn_mime_part *part) { return part->parent; }
bool gn_mime_part_is_message(const struct gn_mime_part *part) { return part->envelope != NULL; }

const char *gn_mime_part_param_name(const struct gn_mime_part *part, size_t i)
{
	return i < part->n_params ? part->params[i].name : NULL;
}

const char *gn_mime_part_param_value(const struct gn_mime_part *part, size_t i)
{
	return i < part->n_params ? part->params[i].value : NULL;
}

const char *gn_mime_part_param(const struct gn_mime_part *part, const char *name)
{
	return param_find(part->params, part->n_params, name);
}

size_t gn_mime_part_disposition_param_count(const struct gn_mime_part *part)
{
	return part->n_disp_params;
}

const char *gn_mime_part_disposition_param_name(const struct gn_mime_part *part, size_t i)
{
	return i < part->n_disp_params ? part->disp_params[i].name : NULL;
}

const char *gn_mime_part_disposition_param_value(const struct gn_mime_part *part, size_t i)
{
	return i < part->n_disp_params ? part->disp_params[i].value : NULL;
}

const struct gn_mime_part *gn_mime_part_child(const struct gn_mime_part *part, size_t i)
{
	return i < part->n_children ? part->children[i] : NULL;
}

const char *gn_mime_part_field(const struct gn_mime_part *part, enum gn_mime_field field)
{
	if (part->envelope == NULL || (unsigned)field >= N_FIELDS)
		return NULL;
	return part->envelope->decoded[field];
}

const char *gn_mime_part_field_raw(const struct gn_mime_part *part, enum gn_mime_field field)
{
	if (part->envelope == NULL || (unsigned)field >= N_FIELDS)
		return NULL;
	return part->envelope->raw[field];
}

int gn_mime_part_date(const struct gn_mime_part *part, time_t *date_r)
{
	if (part->envelope == NULL || !part->envelope->has_date)
		return 0;
	*date_r = part->envelope->date;
	return 1;
}

/* ---- JSON (stored with the message) ----
 *
 * {"v": 1, "size": N, "problems": [...], "parts": [ {...}, ... ]}: the parts
 * in pre-order, each with "parent" (its index, -1 for the root), so the
 * JSON stays flat however deep the message is.  Absent values are left
 * out.  A raw envelope value that is not UTF-8 (8-bit headers) is kept as
 * "raw_b64". */

#define JSON_VERSION 1

static void json_add_str(struct json_object *o, const char *key, const char *v)
{
	if (v != NULL)
		json_object_object_add(o, key, json_object_new_string(v));
}

static void json_add_size(struct json_object *o, const char *key, size_t v)
{
	json_object_object_add(o, key, json_object_new_int64((int64_t)v));
}

static struct json_object *json_params(const struct mime_param *v, size_t n)
{
	struct json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		struct json_object *pair = json_object_new_array();
		json_object_array_add(pair, json_object_new_string(v[i].name));
		json_object_array_add(pair, json_object_new_string(v[i].value));
		json_object_array_add(a, pair);
	}
	return a;
}

static struct json_object *json_part(const struct gn_mime_part *part, long parent)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "parent", json_object_new_int64(parent));
	json_add_size(o, "header_offset", part->header_offset);
	json_add_size(o, "header_size", part->header_size);
	json_add_size(o, "body_offset", part->body_offset);
	json_add_size(o, "body_size", part->body_size);
	json_add_size(o, "body_lines", part->body_lines);
	json_add_size(o, "decoded_size", part->decoded_size);
	json_add_str(o, "type", part->type);
	json_add_str(o, "subtype", part->subtype);
	if (part->n_params > 0)
		json_object_object_add(o, "params", json_params(part->params, part->n_params));
	json_add_str(o, "disposition", part->disposition);
	if (part->n_disp_params > 0)
		json_object_object_add(o, "disposition_params",
				       json_params(part->disp_params, part->n_disp_params));
	json_add_str(o, "filename", part->filename);
	json_add_str(o, "id", part->content_id);
	json_add_str(o, "description", part->description);
	json_add_str(o, "encoding", part->encoding);
	json_add_str(o, "language", part->language);
	json_add_str(o, "location", part->location);
	json_add_str(o, "md5", part->md5);
	if (part->envelope != NULL) {
		const struct mime_envelope *env = part->envelope;
		struct json_object *eo = json_object_new_object();
		for (int i = 0; i < N_FIELDS; i++) {
			if (env->raw[i] == NULL)
				continue;
			struct json_object *f = json_object_new_object();
			const char *raw = env->raw[i];
			if (utf8_valid(raw, strlen(raw))) {
				json_add_str(f, "raw", raw);
			} else {
				char *b = b64_encode((const unsigned char *)raw, strlen(raw));
				json_add_str(f, "raw_b64", b);
				free(b);
			}
			json_add_str(f, "decoded", env->decoded[i]);
			json_object_object_add(eo, field_names[i], f);
		}
		if (env->has_date)
			json_object_object_add(eo, "date_time", json_object_new_int64((int64_t)env->date));
		json_object_object_add(o, "envelope", eo);
	}
	return o;
}

struct json_object *mime_to_json(const struct gn_mime_message *msg)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "v", json_object_new_int(JSON_VERSION));
	json_add_size(o, "size", msg->size);
	struct json_object *pr = json_object_new_array();
	for (size_t i = 0; i < msg->n_problems; i++)
		json_object_array_add(pr, json_object_new_string(msg->problems[i]));
	json_object_object_add(o, "problems", pr);
	struct json_object *parts = json_object_new_array();
	/* Pre-order without recursion (the tree may be deep); a part's index
	 * is its position in the array. */
	struct walk {
		const struct gn_mime_part *part;
		long index;
		size_t next;	/* the next child to visit */
	} *stack = NULL;
	size_t depth = 0, cap = 0;
	long next_index = 0;
	const struct gn_mime_part *cur = msg->root;
	long parent = -1;
	for (;;) {
		if (cur != NULL) {
			json_object_array_add(parts, json_part(cur, parent));
			if (depth == cap) {
				cap = cap ? cap * 2 : 16;
				stack = gn_realloc(stack, cap * sizeof(*stack));
			}
			stack[depth].part = cur;
			stack[depth].index = next_index++;
			stack[depth].next = 0;
			depth++;
		}
		if (depth == 0)
			break;
		struct walk *w = &stack[depth - 1];
		if (w->next < w->part->n_children) {
			parent = w->index;
			cur = w->part->children[w->next++];
		} else {
			depth--;
			cur = NULL;
		}
	}
	free(stack);
	json_object_object_add(o, "parts", parts);
	return o;
}

char *gn_mime_to_json_string(const struct gn_mime_message *msg)
{
	struct json_object *o = mime_to_json(msg);
	char *s = gn_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

static bool json_get_size(struct json_object *o, const char *key, size_t *v_r)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	int64_t n = json_object_get_int64(v);
	if (n < 0)
		return false;
	*v_r = (size_t)n;
	return true;
}

/* An optional string: true when absent or a string. */
static bool json_get_str(struct gn_pool *pool, struct json_object *o, const char *key, char **v_r)
{
	struct json_object *v;
	*v_r = NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return true;
	if (!json_object_is_type(v, json_type_string))
		return false;
	*v_r = gn_pool_strndup(pool, json_object_get_string(v), (size_t)json_object_get_string_len(v));
	return true;
}

static bool json_get_params(struct gn_pool *pool, struct json_object *o, const char *key,
			    struct mime_param **v_r, size_t *n_r)
{
	struct json_object *a;
	*v_r = NULL;
	*n_r = 0;
	if (!json_object_object_get_ex(o, key, &a))
		return true;
	if (!json_object_is_type(a, json_type_array))
		return false;
	size_t n = json_object_array_length(a);
	struct mime_param *v = gn_pool_alloc(pool, (n ? n : 1) * sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		struct json_object *pair = json_object_array_get_idx(a, i);
		if (!json_object_is_type(pair, json_type_array) || json_object_array_length(pair) != 2)
			return false;
		struct json_object *k = json_object_array_get_idx(pair, 0);
		struct json_object *val = json_object_array_get_idx(pair, 1);
		if (!json_object_is_type(k, json_type_string) || !json_object_is_type(val, json_type_string))
			return false;
		v[i].name = gn_pool_strdup(pool, json_object_get_string(k));
		v[i].value = gn_pool_strdup(pool, json_object_get_string(val));
	}
	*v_r = v;
	*n_r = n;
	return true;
}

static bool json_envelope(struct gn_pool *pool, struct json_object *eo, struct mime_envelope *env)
{
	if (!json_object_is_type(eo, json_type_object))
		return false;
	for (int i = 0; i < N_FIELDS; i++) {
		struct json_object *f;
		if (!json_object_object_get_ex(eo, field_names[i], &f))
			continue;
		if (!json_object_is_type(f, json_type_object))
			return false;
		char *raw, *raw_b64;
		if (!json_get_str(pool, f, "raw", &raw) || !json_get_str(pool, f, "raw_b64", &raw_b64) ||
		    !json_get_str(pool, f, "decoded", &env->decoded[i]))
			return false;
		if (raw == NULL && raw_b64 != NULL) {
			struct gn_buf *b = gn_buf_new(0);
			b64_decode(b, raw_b64, strlen(raw_b64));
			raw = gn_pool_strndup(pool, gn_buf_data(b), gn_buf_len(b));
			gn_buf_free(&b);
		}
		if (raw == NULL || env->decoded[i] == NULL)
			return false;
		env->raw[i] = raw;
	}
	struct json_object *d;
	if (json_object_object_get_ex(eo, "date_time", &d)) {
		if (!json_object_is_type(d, json_type_int))
			return false;
		env->has_date = true;
		env->date = (time_t)json_object_get_int64(d);
	}
	return true;
}

int mime_from_json(const struct json_object *cobj, struct gn_mime_message **msg_r,
		   const char **error_r)
{
	struct json_object *obj = (struct json_object *)cobj, *v, *parts, *problems;
	*msg_r = NULL;
	if (!json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, "v", &v) || !json_object_is_type(v, json_type_int)) {
		*error_r = "not a stored MIME structure";
		return -1;
	}
	if (json_object_get_int(v) != JSON_VERSION) {
		*error_r = "unknown MIME structure version";
		return -1;
	}
	if (!json_object_object_get_ex(obj, "parts", &parts) ||
	    !json_object_is_type(parts, json_type_array) || json_object_array_length(parts) == 0 ||
	    !json_object_object_get_ex(obj, "problems", &problems) ||
	    !json_object_is_type(problems, json_type_array)) {
		*error_r = "MIME structure without parts or problems";
		return -1;
	}
	struct gn_mime_message *msg = gn_calloc(1, sizeof(*msg));
	msg->pool = gn_pool_new();
	struct gn_pool *pool = msg->pool;
	const char *err = NULL;
	if (!json_get_size(obj, "size", &msg->size))
		err = "MIME structure without size";
	size_t np = json_object_array_length(problems);
	if (err == NULL && np > 0) {
		msg->problems = gn_calloc(np, sizeof(*msg->problems));
		for (size_t i = 0; i < np && err == NULL; i++) {
			struct json_object *s = json_object_array_get_idx(problems, i);
			if (!json_object_is_type(s, json_type_string))
				err = "MIME problem is not a string";
			else
				msg->problems[msg->n_problems++] = gn_pool_strdup(pool, json_object_get_string(s));
		}
	}
	size_t n = json_object_array_length(parts);
	struct gn_mime_part **all = gn_calloc(n, sizeof(*all));
	for (size_t i = 0; i < n && err == NULL; i++) {
		struct json_object *po = json_object_array_get_idx(parts, i), *pv, *eo;
		struct gn_mime_part *part = gn_pool_alloc(pool, sizeof(*part));
		all[i] = part;
		part->index = i;
		if (!json_object_is_type(po, json_type_object) ||
		    !json_object_object_get_ex(po, "parent", &pv) || !json_object_is_type(pv, json_type_int)) {
			err = "MIME part without parent";
			break;
		}
		int64_t parent = json_object_get_int64(pv);
		if ((i == 0 && parent != -1) || (i > 0 && (parent < 0 || (uint64_t)parent >= i))) {
			err = "MIME part with a bad parent";
			break;
		}
		if (!json_get_size(po, "header_offset", &part->header_offset) ||
		    !json_get_size(po, "header_size", &part->header_size) ||
		    !json_get_size(po, "body_offset", &part->body_offset) ||
		    !json_get_size(po, "body_size", &part->body_size) ||
		    !json_get_size(po, "body_lines", &part->body_lines) ||
		    !json_get_size(po, "decoded_size", &part->decoded_size)) {
			err = "MIME part without offsets and sizes";
			break;
		}
		if (!json_get_str(pool, po, "type", &part->type) ||
		    !json_get_str(pool, po, "subtype", &part->subtype) || part->type == NULL ||
		    part->subtype == NULL || !json_get_str(pool, po, "disposition", &part->disposition) ||
		    !json_get_str(pool, po, "filename", &part->filename) ||
		    !json_get_str(pool, po, "id", &part->content_id) ||
		    !json_get_str(pool, po, "description", &part->description) ||
		    !json_get_str(pool, po, "encoding", &part->encoding) ||
		    !json_get_str(pool, po, "language", &part->language) ||
		    !json_get_str(pool, po, "location", &part->location) ||
		    !json_get_str(pool, po, "md5", &part->md5) ||
		    !json_get_params(pool, po, "params", &part->params, &part->n_params) ||
		    !json_get_params(pool, po, "disposition_params", &part->disp_params,
				     &part->n_disp_params)) {
			err = "MIME part with a bad value";
			break;
		}
		if (json_object_object_get_ex(po, "envelope", &eo)) {
			part->envelope = gn_pool_alloc(pool, sizeof(*part->envelope));
			if (!json_envelope(pool, eo, part->envelope)) {
				err = "MIME part with a bad envelope";
				break;
			}
		}
		if (i > 0) {
			struct gn_mime_part *par = all[parent];
			part->parent = par;
			if (par->last_child != NULL)
				par->last_child->next = part;
			else
				par->first_child = part;
			par->last_child = part;
			par->n_children++;
		}
	}
	if (err == NULL) {
		msg->root = all[0];
		tree_finish(pool, msg->root);
	}
	free(all);
	if (err != NULL) {
		gn_mime_message_free(&msg);
		*error_r = err;
		return -1;
	}
	*msg_r = msg;
	return 0;
}

int gn_mime_from_json_string(const char *json, size_t len, struct gn_mime_message **msg_r,
			     const char **error_r)
{
	*msg_r = NULL;
	if (len > INT_MAX) {
		*error_r = "MIME structure too large";
		return -1;
	}
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = json_tokener_parse_ex(tok, json, (int)len);
	bool complete = json_tokener_get_error(tok) == json_tokener_success;
	json_tokener_free(tok);
	if (o == NULL || !complete) {
		json_object_put(o);
		*error_r = "MIME structure is not JSON";
		return -1;
	}
	int r = mime_from_json(o, msg_r, error_r);
	json_object_put(o);
	return r;
}
