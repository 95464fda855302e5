/*
 * core/mail/mime-encoding.c: the content transfer encodings (RFC 2045 6):
 * base64 decoding and encoding (RFC 2047 B words, raw header values in the
 * JSON), and the decoded size of a base64 or quoted-printable body,
 * counted as the body streams through the parser without keeping it.
 */
#include "mail/internal.h"

#include <string.h>

/* ---- base64 (RFC 2045 6.8) ---- */

/* One more than the value of each octet of the alphabet; 0 for the
 * others. */
static const unsigned char b64_values[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
	['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
	['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23,
	['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30,
	['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37,
	['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44,
	['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50, ['y'] = 51,
	['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58,
	['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};

size_t mime_b64_decode_to(unsigned char *out, const char *s, size_t len)
{
	unsigned acc = 0, n = 0;
	unsigned char *o = out;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '=')
			break;
		int v = b64_values[(unsigned char)s[i]] - 1;
		if (v < 0)
			continue;
		acc = (acc << 6) | (unsigned)v;
		if (++n == 4) {
			*o++ = (unsigned char)(acc >> 16);
			*o++ = (unsigned char)(acc >> 8);
			*o++ = (unsigned char)acc;
			acc = 0;
			n = 0;
		}
	}
	if (n == 2) {
		*o++ = (unsigned char)(acc >> 4);
	} else if (n == 3) {
		*o++ = (unsigned char)(acc >> 10);
		*o++ = (unsigned char)(acc >> 2);
	}
	return (size_t)(o - out);
}

/* Lenient base64 decoding (characters outside the alphabet are skipped,
 * padding may be missing); appends to out.  Decoded in pieces of whole
 * quanta through a buffer on the stack; a piece may end inside a quantum
 * of the alphabet's characters only where skipped characters follow, so
 * each piece is cut after its 1,024th character of the alphabet. */
void mime_b64_decode(struct gn_buf *out, const char *s, size_t len)
{
	unsigned char piece[768];
	size_t from = 0;
	while (from < len) {
		size_t i = from, n = 0;
		while (i < len && s[i] != '=' && n < 1024) {
			n += b64_values[(unsigned char)s[i]] != 0;
			i++;
		}
		(void)gn_buf_append(out, piece, mime_b64_decode_to(piece, s + from, i - from));
		if (i >= len || s[i] == '=')
			break;
		from = i;
	}
}

char *mime_b64_encode(const unsigned char *s, size_t len)
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

/* ---- decoded size of a body (RFC 2045 6.7, 6.8) ---- */

void mime_decoder_init(struct mime_decoder *d, const char *encoding)
{
	memset(d, 0, sizeof(*d));
	if (encoding != NULL && strcmp(encoding, "base64") == 0)
		d->kind = MIME_DEC_BASE64;
	else if (encoding != NULL && strcmp(encoding, "quoted-printable") == 0)
		d->kind = MIME_DEC_QP;
	else
		d->kind = MIME_DEC_IDENTITY;
}

static void dec_qp_byte(struct mime_decoder *d, unsigned char c)
{
	for (;;) {
		switch (d->qs) {
		case MIME_QP_TEXT:
			if (c == ' ' || c == '\t') {
				d->ws++;
			} else if (c == '=') {
				d->out += d->ws;
				d->ws = 0;
				d->qs = MIME_QP_EQ;
			} else if (c == '\r') {
				d->qs = MIME_QP_CR;
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
		case MIME_QP_CR:
			d->qs = MIME_QP_TEXT;
			if (c == '\n') {
				d->ws = 0;
				d->out += 2;
				return;
			}
			d->out += d->ws + 1;	/* a bare CR is text */
			d->ws = 0;
			continue;
		case MIME_QP_EQ:
			if (hex_digit(c) >= 0) {
				d->qs = MIME_QP_EQ1;
				return;
			}
			if (c == '\r') {
				d->qs = MIME_QP_EQCR;
				return;
			}
			if (c == '\n') {	/* soft line break */
				d->qs = MIME_QP_TEXT;
				return;
			}
			if (c == ' ' || c == '\t') {
				d->qs = MIME_QP_EQWS;
				d->ws = 1;
				return;
			}
			d->out++;	/* a lone '=' stays (RFC 2045 6.7 note 1) */
			d->qs = MIME_QP_TEXT;
			continue;
		case MIME_QP_EQ1:
			d->qs = MIME_QP_TEXT;
			if (hex_digit(c) >= 0) {
				d->out++;
				return;
			}
			d->out += 2;
			continue;
		case MIME_QP_EQCR:
			d->qs = MIME_QP_TEXT;
			if (c == '\n')
				return;
			d->out += 2;
			continue;
		case MIME_QP_EQWS:
			/* "=" and padding before the line break: still soft. */
			if (c == ' ' || c == '\t') {
				d->ws++;
				return;
			}
			if (c == '\r') {
				d->ws = 0;
				d->qs = MIME_QP_EQCR;
				return;
			}
			if (c == '\n') {
				d->ws = 0;
				d->qs = MIME_QP_TEXT;
				return;
			}
			d->out += 1 + d->ws;
			d->ws = 0;
			d->qs = MIME_QP_TEXT;
			continue;
		}
	}
}

/* 1 for each of base64's 64 characters, 0 for every other byte. */
static const unsigned char b64_is_char[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* 0x00 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* 0x10 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1,	/* 0x20 */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,	/* 0x30 */
	0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,	/* 0x40 */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,	/* 0x50 */
	0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,	/* 0x60 */
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,	/* 0x70 */
	/* 0x80 to 0xff: none */
};

/* The bytes that n characters of the alphabet add to a decoding that has
 * quad characters of its current group of four: each one adds a byte but
 * the first of a group. */
static size_t b64_bytes(unsigned quad, size_t n)
{
	size_t first = (4 - quad) & 3;	/* index of the next group's first */
	return n - (n > first ? (n - first + 3) / 4 : 0);
}

/* Counts what base64 text decodes to without decoding it.  This runs over
 * every attachment a message carries: the text up to the first "=" is
 * counted a table lookup a byte, the padding and what follows it a
 * character at a time. */
static void feed_base64(struct mime_decoder *d, const char *s, size_t len)
{
	const char *eq = memchr(s, '=', len);
	size_t plain = eq != NULL ? (size_t)(eq - s) : len, n = 0;
	for (size_t i = 0; i < plain; i++)
		n += b64_is_char[(unsigned char)s[i]];
	d->out += b64_bytes(d->quad, n);
	d->quad = (unsigned)((d->quad + n) & 3);
	if (n > 0)
		d->pads = 0;
	for (size_t i = plain; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (b64_is_char[c]) {
			d->out += d->quad != 0;
			d->quad = (d->quad + 1) & 3;
			d->pads = 0;
			continue;
		}
		/* Complete padding ends the data (as Python's binascii does);
		 * padding too early is skipped. */
		if (c == '=' && d->quad >= 2 && d->quad + ++d->pads >= 4) {
			d->b64_done = true;
			break;
		}
	}
}

void mime_decoder_feed(struct mime_decoder *d, const char *s, size_t len)
{
	switch (d->kind) {
	case MIME_DEC_IDENTITY:
		d->out += len;
		break;
	case MIME_DEC_BASE64:
		if (!d->b64_done)
			feed_base64(d, s, len);
		break;
	case MIME_DEC_QP:
		for (size_t i = 0; i < len; i++)
			dec_qp_byte(d, (unsigned char)s[i]);
		break;
	}
}

size_t mime_decoder_finish(struct mime_decoder *d)
{
	if (d->kind == MIME_DEC_QP) {
		switch (d->qs) {
		case MIME_QP_TEXT:
			break;	/* trailing white space dropped */
		case MIME_QP_CR:
			d->out += 1;
			break;
		case MIME_QP_EQ:
		case MIME_QP_EQWS:
			break;	/* a soft break at the very end */
		case MIME_QP_EQ1:
		case MIME_QP_EQCR:
			d->out += 2;
			break;
		}
		d->qs = MIME_QP_TEXT;
	}
	return d->out;
}
