/*
 * core/base/text.c: small text helpers the layers share: hex digits and
 * text from outside made safe to store and show (base/internal.h).
 */
#include "base/internal.h"

#include <stdint.h>
#include <string.h>
#include <unistr.h>

int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void hex_encode(char *out, const unsigned char *in, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

char *hex_encode_pool(struct gn_pool *pool, const unsigned char *in, size_t len)
{
	char *s = gn_pool_alloc(pool, len * 2 + 1);
	hex_encode(s, in, len);
	return s;
}

int hex_decode(unsigned char *out, const char *in, size_t len)
{
	if (len % 2 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 2) {
		int h = hex_digit((unsigned char)in[i]);
		int l = hex_digit((unsigned char)in[i + 1]);
		if (h < 0 || l < 0)
			return -1;
		out[i / 2] = (unsigned char)(h << 4 | l);
	}
	return 0;
}

char *text_clean(struct gn_pool *pool, const char *s, size_t len, size_t max)
{
	if (s == NULL)
		return gn_pool_strdup(pool, "");
	char *out = gn_pool_alloc(pool, (len < max ? len : max) + 1);
	size_t o = 0;
	const uint8_t *p = (const uint8_t *)s, *end = p + len;
	while (p < end) {
		ucs4_t uc;
		int n = u8_mbtoucr(&uc, p, (size_t)(end - p));
		size_t step = n > 0 ? (size_t)n : 1;
		bool bad = n <= 0 || uc < 0x20 || uc == 0x7f || (uc >= 0x80 && uc < 0xa0);
		size_t w = bad ? 1 : step;
		if (o + w > max)
			break;
		if (bad)
			out[o] = '?';
		else
			memcpy(out + o, p, w);
		o += w;
		p += step;
	}
	out[o] = '\0';
	return out;
}
