/*
 * core/mail/mime-rfc2047.c: RFC 2047 encoded words ("=?charset?B?...?=")
 * in header values, decoded to UTF-8: gn_mime_decode_header for anyone,
 * mime_decode_words for the parser's fields and parameters.
 */
#include "mail/internal.h"

#include <string.h>
#include <strings.h>

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
		mime_utf8_append(out, s + k, e - k);
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
void mime_decode_words(struct gn_buf *out, const char *s, size_t len, struct gn_mime_message *msg)
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
				mime_charset_convert(out, pend_cs, gn_buf_data(pend), gn_buf_len(pend), msg);
			gn_buf_clear(pend);
			if (!only_ws)
				append_unfolded(out, s + lit, i - lit);
			memcpy(pend_cs, csname, cl + 1);
		}
		if (enc == 'B')
			mime_b64_decode(pend, text, text_len);
		else
			q_decode(pend, text, text_len);
		i += n;
		lit = i;
		after_word = true;
	}
	if (gn_buf_len(pend) > 0)
		mime_charset_convert(out, pend_cs, gn_buf_data(pend), gn_buf_len(pend), msg);
	gn_buf_free(&pend);
	append_unfolded(out, s + lit, len - lit);
}

char *mime_decode_header(struct gn_pool *pool, const char *value, size_t len,
			       struct gn_mime_message *msg)
{
	struct gn_buf *b = gn_buf_new(0);
	mime_decode_words(b, value, len, msg);
	char *r = gn_pool_strndup(pool, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	return r;
}

char *gn_mime_decode_header(struct gn_pool *pool, const char *value, size_t len)
{
	return mime_decode_header(pool, value, len, NULL);
}
