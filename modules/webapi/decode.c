/*
 * modules/webapi/decode.c: Content-Transfer-Encoding decoders for message
 * parts (RFC 2045 6.7, 6.8), lenient as readers of real mail must be.
 */
#include "webapi.h"

#include <string.h>

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
char *webapi_base64_decode(struct gn_pool *pool, const char *s, size_t len, size_t *len_r)
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
char *webapi_qp_decode(struct gn_pool *pool, const char *s, size_t len, size_t *len_r)
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

char *webapi_crlf(struct gn_pool *pool, const char *s, size_t len, size_t *len_r)
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
