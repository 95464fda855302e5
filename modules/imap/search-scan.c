/*
 * modules/imap/search-scan.c: the SEARCH keys that need the message itself
 * (search.h): HEADER of fields the store keeps no column for (TO, CC, BCC
 * among them), BODY and TEXT (RFC 9051 6.4.4).
 *
 * cmd-search.c narrows the candidates with SQL first and checks their
 * total size against imap.search_scan_limit; each candidate is then read
 * whole (it is within that limit) and parsed (gannet/mime.h) for its
 * parts.  Header field values are unfolded and RFC 2047-decoded
 * (gn_mime_decode_header()); bodies are searched in their text parts
 * (text/...), base64 or quoted-printable undone and the charset converted
 * to UTF-8 with iconv where it is known (else the bytes as they are).
 * Parts that are not text (images, archives) are not searched: their
 * encoded bytes would only match by accident.  TEXT is the header fields
 * of every part and the body text.
 */
#include "search.h"

#include <errno.h>
#include <iconv.h>
#include <string.h>
#include <strings.h>

/* Bytes read from the store at a time. */
#define SCAN_READ (64u * 1024u)

static unsigned char fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

bool search_contains(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	if (n == 0)
		return true;
	if (n > len)
		return false;
	unsigned char first = fold((unsigned char)needle[0]);
	for (size_t i = 0; i + n <= len; i++) {
		if (fold((unsigned char)hay[i]) != first)
			continue;
		size_t k = 1;
		while (k < n && fold((unsigned char)hay[i + k]) == fold((unsigned char)needle[k]))
			k++;
		if (k == n)
			return true;
	}
	return false;
}

/* ---- header fields ---- */

/* Calls fn for each field of the header block h[0..len): its name (not
 * NUL-terminated) and its value decoded.  Stops when fn returns true and
 * returns true then. */
typedef bool field_fn(const char *name, size_t name_len, const char *value, void *arg);

static bool each_field(struct gn_pool *pool, const char *h, size_t len, field_fn *fn, void *arg)
{
	size_t i = 0;
	while (i < len) {
		size_t start = i;
		/* The field's line and its continuation lines. */
		do {
			const char *nl = memchr(h + i, '\n', len - i);
			i = nl != NULL ? (size_t)(nl - h) + 1 : len;
		} while (i < len && (h[i] == ' ' || h[i] == '\t'));
		const char *colon = memchr(h + start, ':', i - start);
		if (colon == NULL)
			continue;	/* the blank line that ends the block, or junk */
		size_t name_len = (size_t)(colon - (h + start));
		const char *v = colon + 1;
		size_t vlen = (size_t)(h + i - v);
		const char *value = gn_mime_decode_header(pool, v, vlen);
		if (fn(h + start, name_len, value, arg))
			return true;
	}
	return false;
}

struct field_match {
	const char *field;	/* NULL: any field (TEXT), name and value */
	const char *text;
};

static bool field_matches(const char *name, size_t name_len, const char *value, void *arg)
{
	const struct field_match *fm = arg;
	if (fm->field == NULL)
		return search_contains(name, name_len, fm->text) ||
		       search_contains(value, strlen(value), fm->text);
	return strlen(fm->field) == name_len && strncasecmp(name, fm->field, name_len) == 0 &&
	       search_contains(value, strlen(value), fm->text);
}

/* ---- body text ---- */

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

/* Base64 (RFC 2045 6.8): characters outside the alphabet are skipped,
 * as the RFC says a decoder must. */
static size_t decode_base64(const char *in, size_t len, char *out)
{
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '=')
			break;
		int v = b64_value((unsigned char)in[i]);
		if (v < 0)
			continue;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	return o;
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = fold(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Quoted-printable (RFC 2045 6.7): =XX, and soft line breaks. */
static size_t decode_qp(const char *in, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (in[i] != '=') {
			out[o++] = in[i];
			continue;
		}
		if (i + 2 < len && hex_value((unsigned char)in[i + 1]) >= 0 &&
		    hex_value((unsigned char)in[i + 2]) >= 0) {
			out[o++] = (char)(hex_value((unsigned char)in[i + 1]) * 16 +
					  hex_value((unsigned char)in[i + 2]));
			i += 2;
			continue;
		}
		/* "=" then white space to the line end: a soft break. */
		size_t k = i + 1;
		while (k < len && (in[k] == ' ' || in[k] == '\t'))
			k++;
		if (k < len && in[k] == '\r')
			k++;
		if (k < len && in[k] == '\n') {
			i = k;
			continue;
		}
		out[o++] = '=';	/* a stray "=" stays (RFC 2045 6.7, note 1) */
	}
	return o;
}

/* The text in charset converted to UTF-8 into out; false when iconv does
 * not know the charset (the caller searches the bytes as they are).
 * Bytes that do not convert are skipped.  out grows with what comes out,
 * a piece at a time, never by a guess of the worst case. */
static bool to_utf8(const char *charset, const char *in, size_t len, struct gn_buf *out)
{
	iconv_t cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1)
		return false;
	char piece[16 * 1024];
	char *ip = (char *)in;
	size_t il = len;
	while (il > 0) {
		char *op = piece;
		size_t ol = sizeof(piece);
		size_t r = iconv(cd, &ip, &il, &op, &ol);
		(void)gn_buf_append(out, piece, sizeof(piece) - ol);
		if (r != (size_t)-1 || errno == E2BIG)
			continue;
		/* EILSEQ, EINVAL (a sequence cut short): skip a byte. */
		ip++;
		il--;
	}
	iconv_close(cd);
	return true;
}

/* Whether text occurs in the decoded body of part. */
static bool body_contains(struct gn_pool *pool, const char *msg, const struct gn_mime_part *part,
			  const char *text)
{
	const char *raw = msg + gn_mime_part_body_offset(part);
	size_t len = gn_mime_part_body_size(part);
	const char *enc = gn_mime_part_encoding(part);
	const char *data = raw;
	if (enc != NULL && (strcmp(enc, "base64") == 0 || strcmp(enc, "quoted-printable") == 0)) {
		char *d = gn_pool_alloc(pool, len + 1);
		len = enc[0] == 'b' ? decode_base64(raw, len, d) : decode_qp(raw, len, d);
		data = d;
	}
	const char *charset = gn_mime_part_param(part, "charset");
	if (charset != NULL && strcasecmp(charset, "utf-8") != 0 && strcasecmp(charset, "us-ascii") != 0) {
		struct gn_buf *u = gn_buf_new(0);
		bool found = to_utf8(charset, data, len, u) ? search_contains(gn_buf_data(u), gn_buf_len(u), text) :
			     search_contains(data, len, text);
		gn_buf_free(&u);
		return found;
	}
	return search_contains(data, len, text);
}

/* Walks the parts: body text (BODY, TEXT) and every part's header (TEXT). */
static bool parts_contain(struct gn_pool *pool, const char *msg, const struct gn_mime_part *part,
			  const char *text, bool headers, unsigned depth)
{
	if (headers) {
		struct field_match fm = { NULL, text };
		if (each_field(pool, msg + gn_mime_part_header_offset(part), gn_mime_part_header_size(part),
			       field_matches, &fm))
			return true;
	}
	size_t n = gn_mime_part_child_count(part);
	if (n == 0)
		return strcmp(gn_mime_part_type(part), "text") == 0 && body_contains(pool, msg, part, text);
	/* The parser bounds the depth (gn_mime_limits); this only guards the
	 * stack against a structure that claims more. */
	if (depth > 100)
		return false;
	for (size_t i = 0; i < n; i++) {
		const struct gn_mime_part *c = gn_mime_part_child(part, i);
		/* The header of a message/rfc822 part's message is body text
		 * of the enclosing message. */
		if (parts_contain(pool, msg, c, text, headers || gn_mime_part_is_message(c), depth + 1))
			return true;
	}
	return false;
}

static int read_whole(struct imap_session *s, uint32_t uid, uint64_t size, struct gn_buf *out,
		      const char **error_r)
{
	struct gn_store_body *body;
	int r = gn_store_message_open(s->account_id, s->sel->id, uid, &body, error_r);
	if (r <= 0)
		return r < 0 ? -1 : 1;
	char *buf = gn_malloc(SCAN_READ);
	uint64_t off = 0;
	int ret = 0;
	while (off < size) {
		size_t got;
		if (gn_store_body_read(body, off, buf, SCAN_READ, &got, error_r) < 0) {
			ret = -1;
			break;
		}
		if (got == 0)
			break;
		(void)gn_buf_append(out, buf, got);
		off += got;
	}
	gn_free(buf);
	gn_store_body_free(&body);
	return ret;
}

int search_scan_message(struct imap_session *s, uint32_t uid, uint64_t size,
			const struct search_scan_key *keys, size_t n, bool *matched_r,
			const char **error_r)
{
	for (size_t i = 0; i < n; i++)
		matched_r[i] = false;
	struct gn_buf *b = gn_buf_new(0);
	int r = read_whole(s, uid, size, b, error_r);
	if (r != 0) {
		gn_buf_free(&b);
		return r;
	}
	const char *msg = gn_buf_data(b);
	size_t len = gn_buf_len(b);
	struct gn_mime_message *mime = gn_mime_parse(msg, len, NULL);
	const struct gn_mime_part *root = gn_mime_message_root(mime);
	struct gn_pool *pool = gn_pool_new();
	for (size_t i = 0; i < n; i++) {
		const struct search_scan_key *k = &keys[i];
		switch (k->kind) {
		case SCAN_HEADER: {
			struct field_match fm = { k->field, k->text };
			matched_r[i] = each_field(pool, msg + gn_mime_part_header_offset(root),
						  gn_mime_part_header_size(root), field_matches, &fm);
			break;
		}
		case SCAN_BODY:
		case SCAN_TEXT:
			matched_r[i] = parts_contain(pool, msg, root, k->text, k->kind == SCAN_TEXT, 0);
			break;
		}
		gn_pool_clear(pool);
	}
	gn_pool_free(&pool);
	gn_mime_message_free(&mime);
	gn_buf_free(&b);
	return 0;
}
