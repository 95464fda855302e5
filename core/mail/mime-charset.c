/*
 * core/mail/mime-charset.c: text as the MIME parser hands it out, valid
 * UTF-8 always: checks of UTF-8 (RFC 3629), and conversion from the
 * charsets mail is written in with iconv, bytes that do not convert
 * becoming U+FFFD.  Used by the RFC 2047 and RFC 2231 decoders, the parser
 * and the JSON (core/mail/internal.h).
 */
#include "mail/internal.h"

#include <errno.h>
#include <iconv.h>
#include <string.h>
#include <strings.h>

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

bool mime_utf8_valid(const char *s, size_t len)
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
bool mime_utf8_append(struct gn_buf *out, const char *s, size_t len)
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

char *mime_utf8_pool(struct gn_pool *pool, const char *s, size_t len)
{
	struct gn_buf *b = gn_buf_new(0);
	mime_utf8_append(b, s, len);
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
void mime_charset_convert(struct gn_buf *out, const char *charset, const char *s, size_t len,
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
		mime_utf8_append(out, s, len);
		return;
	}
	iconv_t cd = iconv_open("UTF-8", charset_alias(cs));
	if (cd == (iconv_t)-1) {
		mime_problem(msg, "unknown charset \"%s\"", cs);
		mime_utf8_append(out, s, len);
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
