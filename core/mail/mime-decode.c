/*
 * core/mail/mime-decode.c: a part's body as its reader wants it
 * (gannet/mime.h, ABI 1.1): Content-Transfer-Encoding decoded (RFC 2045
 * 6.7, 6.8, lenient as readers of real mail must be), text made valid
 * UTF-8 from its charset, and the first readable text of a message.
 * Used by the webapi module (MessageGet, MessagePartGet) and the
 * webhooks module (incoming payloads); moved here from modules/webapi.
 */
#include "mail/internal.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

static int b64val(unsigned char c)
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

/* Characters outside the alphabet are skipped; decoding stops at "=". */
static char *base64_decode(struct gn_pool *pool, const char *s, size_t len, size_t *len_r)
{
	char *out = gn_pool_alloc(pool, len / 4 * 3 + 4);
	size_t n = 0;
	unsigned acc = 0, bits = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '=')
			break;
		int v = b64val((unsigned char)s[i]);
		if (v < 0)
			continue;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[n] = '\0';
	*len_r = n;
	return out;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* "=XX" decoded, "=" at a line end joins lines, trailing white space of a
 * line dropped (RFC 2045 6.7 rule 3); a "=" not followed by either is
 * kept as it is. */
static char *qp_decode(struct gn_pool *pool, const char *s, size_t len, size_t *len_r)
{
	char *out = gn_pool_alloc(pool, len + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '=') {
			size_t j = i + 1;
			while (j < len && (s[j] == ' ' || s[j] == '\t'))
				j++;
			if (j < len && (s[j] == '\r' || s[j] == '\n')) {
				if (s[j] == '\r' && j + 1 < len && s[j + 1] == '\n')
					j++;
				i = j;
				continue;
			}
			if (j >= len) {
				i = j;
				continue;
			}
			if (i + 2 < len && hexval((unsigned char)s[i + 1]) >= 0 &&
			    hexval((unsigned char)s[i + 2]) >= 0) {
				out[n++] = (char)(hexval((unsigned char)s[i + 1]) * 16 +
						  hexval((unsigned char)s[i + 2]));
				i += 2;
				continue;
			}
			out[n++] = c;
			continue;
		}
		if (c == ' ' || c == '\t') {
			size_t j = i;
			while (j < len && (s[j] == ' ' || s[j] == '\t'))
				j++;
			if (j >= len || s[j] == '\r' || s[j] == '\n') {
				i = j - 1;
				continue;
			}
		}
		out[n++] = c;
	}
	out[n] = '\0';
	*len_r = n;
	return out;
}

static char *crlf(struct gn_pool *pool, const char *s, size_t len, size_t *len_r)
{
	size_t extra = 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			extra++;
	char *out = gn_pool_alloc(pool, len + extra + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			out[n++] = '\r';
		out[n++] = s[i];
	}
	out[n] = '\0';
	*len_r = n;
	return out;
}

/* Valid UTF-8 from s: converted from charset with iconv when it names
 * another (unknown charsets are taken as UTF-8), and any byte that is
 * not part of valid UTF-8 replaced by U+FFFD. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t min;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		n = 2, min = 0x80;
	else if ((c & 0xf0) == 0xe0)
		n = 3, min = 0x800;
	else if ((c & 0xf8) == 0xf0)
		n = 4, min = 0x10000;
	else
		return 0;
	if (n > len)
		return 0;
	uint32_t cp = c & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static char *utf8_clean(struct gn_pool *pool, const char *s, size_t len, size_t *len_r)
{
	char *out = gn_pool_alloc(pool, len * 3 + 1);
	size_t n = 0;
	for (size_t i = 0; i < len;) {
		size_t k = utf8_seq((const unsigned char *)s + i, len - i);
		if (k == 0) {
			memcpy(out + n, "\xef\xbf\xbd", 3);
			n += 3;
			i++;
		} else {
			memcpy(out + n, s + i, k);
			n += k;
			i += k;
		}
	}
	out[n] = '\0';
	*len_r = n;
	return out;
}

char *gn_mime_to_utf8(struct gn_pool *pool, const char *charset, const char *s, size_t len,
		     size_t *len_r)
{
	if (charset != NULL && *charset != '\0' && strcasecmp(charset, "utf-8") != 0 &&
	    strcasecmp(charset, "us-ascii") != 0 && strcasecmp(charset, "utf8") != 0) {
		iconv_t cd = iconv_open("UTF-8", charset);
		if (cd != (iconv_t)-1) {
			size_t cap = len * 4 + 16;
			char *out = gn_pool_alloc(pool, cap);
			char *in = (char *)s, *o = out;
			size_t inleft = len, outleft = cap - 1;
			while (inleft > 0) {
				if (iconv(cd, &in, &inleft, &o, &outleft) != (size_t)-1)
					break;
				if (errno == E2BIG || outleft < 4)
					break;
				/* An invalid or incomplete sequence: U+FFFD, skip a byte. */
				memcpy(o, "\xef\xbf\xbd", 3);
				o += 3;
				outleft -= 3;
				in++;
				inleft--;
			}
			iconv_close(cd);
			return utf8_clean(pool, out, (size_t)(o - out), len_r);
		}
	}
	return utf8_clean(pool, s, len, len_r);
}

char *gn_mime_part_body_decoded(struct gn_pool *pool, const struct gn_mime_part *p, const char *raw,
				size_t rawlen, size_t *len_r)
{
	size_t off = gn_mime_part_body_offset(p), size = gn_mime_part_body_size(p);
	if (off > rawlen)
		off = rawlen;
	if (size > rawlen - off)
		size = rawlen - off;
	const char *enc = gn_mime_part_encoding(p);
	char *out;
	size_t n;
	if (enc != NULL && strcmp(enc, "base64") == 0)
		out = base64_decode(pool, raw + off, size, &n);
	else if (enc != NULL && strcmp(enc, "quoted-printable") == 0)
		out = qp_decode(pool, raw + off, size, &n);
	else {
		out = gn_pool_strndup(pool, raw + off, size);
		n = size;
	}
	/* Text with bare LF made CRLF, as mox's Part.Reader does. */
	const char *t = gn_mime_part_type(p);
	if (t == NULL || strcasecmp(t, "text") == 0)
		out = crlf(pool, out, n, &n);
	*len_r = n;
	return out;
}

static bool is_multipart(const struct gn_mime_part *p)
{
	const char *t = gn_mime_part_type(p);
	return t != NULL && strcasecmp(t, "multipart") == 0;
}

const struct gn_mime_part *gn_mime_first_text(const struct gn_mime_part *p, const char *subtype)
{
	if (is_multipart(p)) {
		for (size_t i = 0; i < gn_mime_part_child_count(p); i++) {
			const struct gn_mime_part *r = gn_mime_first_text(gn_mime_part_child(p, i), subtype);
			if (r != NULL)
				return r;
		}
		return NULL;
	}
	const char *t = gn_mime_part_type(p), *s = gn_mime_part_subtype(p);
	const char *d = gn_mime_part_disposition(p);
	if (d != NULL && strcasecmp(d, "attachment") == 0)
		return NULL;
	if (t == NULL && strcmp(subtype, "plain") == 0)
		return p;
	if (t != NULL && s != NULL && strcasecmp(t, "text") == 0 && strcasecmp(s, subtype) == 0)
		return p;
	return NULL;
}

char *gn_mime_text(struct gn_pool *pool, const struct gn_mime_part *root, const char *raw, size_t rawlen,
		   const char *subtype, size_t max, size_t *len_r)
{
	const struct gn_mime_part *p = gn_mime_first_text(root, subtype);
	if (p == NULL) {
		*len_r = 0;
		return gn_pool_strdup(pool, "");
	}
	size_t n;
	char *s = gn_mime_part_body_decoded(pool, p, raw, rawlen, &n);
	if (n > max)
		n = max;
	s = gn_mime_to_utf8(pool, gn_mime_part_param(p, "charset"), s, n, &n);
	/* CRLF to LF */
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n'))
			s[w++] = s[i];
	s[w] = '\0';
	*len_r = w;
	return s;
}
