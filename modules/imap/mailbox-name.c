/*
 * modules/imap/mailbox-name.c: mailbox names between the store and IMAP.
 *
 * The store keeps names in UTF-8 (NFC), "/"-separated, the inbox spelled
 * "Inbox" (gannet/store.h).  IMAP4rev1 clients, and IMAP4rev2 clients
 * that did not ENABLE UTF8=ACCEPT, see and send names in modified UTF-7
 * (RFC 3501 5.1.3): printable ASCII as itself but "&" as "&-", everything
 * else as UTF-16 in modified base64 ("," for "/", no padding) between "&"
 * and "-".  The inbox is "INBOX" on the wire, in any case from the client.
 *
 * Decoding is strict, as RFC 3501 asks of a server: a shift that encodes
 * printable ASCII, two shifts in a row, a broken surrogate pair, leftover
 * bits or a missing "-" make the name invalid, so that one mailbox has
 * exactly one spelling on the wire.  LIST patterns (with "%" and "*") are
 * matched here too, against the store's form of the name.
 */
#include "imap.h"

#include <string.h>
#include <strings.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_val(unsigned char c)
{
	const char *p = c != '\0' ? strchr(b64, c) : NULL;
	return p != NULL ? (int)(p - b64) : -1;
}

/* The UTF-8 sequence at s (valid: the store's names are): its code point
 * and length. */
static uint32_t utf8_next(const unsigned char *s, size_t *n_r)
{
	if (s[0] < 0x80) {
		*n_r = 1;
		return s[0];
	}
	if (s[0] < 0xe0) {
		*n_r = 2;
		return (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
	}
	if (s[0] < 0xf0) {
		*n_r = 3;
		return (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
	}
	*n_r = 4;
	return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
	       (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
}

static void put_utf8(struct gn_buf *b, uint32_t cp)
{
	unsigned char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | cp >> 6);
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | cp >> 12);
		u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | cp >> 18);
		u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	(void)gn_buf_append(b, u, n);
}

char *imap_mutf7_encode(struct gn_pool *pool, const char *utf8)
{
	struct gn_buf *b = gn_buf_new(0);
	const unsigned char *s = (const unsigned char *)utf8;
	while (*s != '\0') {
		if (*s >= 0x20 && *s < 0x7f) {
			(void)gn_buf_append(b, *s == '&' ? "&-" : (const char *)s, *s == '&' ? 2 : 1);
			s++;
			continue;
		}
		/* A run of other characters, as UTF-16 in modified base64. */
		(void)gn_buf_append(b, "&", 1);
		uint32_t bits = 0;
		int nbits = 0;
		while (*s != '\0' && (*s < 0x20 || *s >= 0x7f)) {
			size_t n;
			uint32_t cp = utf8_next(s, &n);
			s += n;
			uint16_t units[2];
			int nu = 1;
			if (cp >= 0x10000) {
				cp -= 0x10000;
				units[0] = (uint16_t)(0xd800 | cp >> 10);
				units[1] = (uint16_t)(0xdc00 | (cp & 0x3ff));
				nu = 2;
			} else {
				units[0] = (uint16_t)cp;
			}
			for (int k = 0; k < nu; k++) {
				bits = bits << 16 | units[k];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					(void)gn_buf_append(b, &b64[bits >> nbits & 0x3f], 1);
				}
			}
		}
		if (nbits > 0)
			(void)gn_buf_append(b, &b64[bits << (6 - nbits) & 0x3f], 1);
		(void)gn_buf_append(b, "-", 1);
	}
	char *r = gn_pool_strdup(pool, gn_buf_data(b));
	gn_buf_free(&b);
	return r;
}

char *imap_mutf7_decode(struct gn_pool *pool, const char *mutf7)
{
	struct gn_buf *b = gn_buf_new(0);
	const unsigned char *s = (const unsigned char *)mutf7;
	bool after_shift = false;	/* "&...-" just ended */
	while (*s != '\0') {
		if (*s < 0x20 || *s >= 0x7f)
			goto bad;
		if (*s != '&') {
			(void)gn_buf_append(b, s, 1);
			s++;
			after_shift = false;
			continue;
		}
		s++;
		if (*s == '-') {
			(void)gn_buf_append(b, "&", 1);
			s++;
			after_shift = false;
			continue;
		}
		if (after_shift)
			goto bad;	/* two shifts in a row: one would do */
		uint32_t bits = 0, high = 0;
		int nbits = 0;
		bool any = false;
		while (*s != '-') {
			int v = b64_val(*s);
			if (v < 0)
				goto bad;
			s++;
			bits = (bits << 6 | (uint32_t)v) & 0xffffff;
			nbits += 6;
			if (nbits < 16)
				continue;
			nbits -= 16;
			uint32_t u = bits >> nbits & 0xffff;
			if (high != 0) {
				if (u < 0xdc00 || u > 0xdfff)
					goto bad;
				put_utf8(b, 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00));
				high = 0;
			} else if (u >= 0xd800 && u <= 0xdbff) {
				high = u;
			} else if (u >= 0xdc00 && u <= 0xdfff) {
				goto bad;
			} else if (u >= 0x20 && u < 0x7f) {
				goto bad;	/* printable ASCII must be itself */
			} else {
				put_utf8(b, u);
			}
			any = true;
		}
		s++;	/* "-" */
		if (!any || high != 0 || nbits >= 6 || (bits & ((1u << nbits) - 1)) != 0)
			goto bad;
		after_shift = true;
	}
	char *r = gn_pool_strdup(pool, gn_buf_data(b));
	gn_buf_free(&b);
	return r;
bad:
	gn_buf_free(&b);
	return NULL;
}

/* "Inbox" and its children are "INBOX" on the wire. */
static bool is_inbox_level(const char *name, size_t *len_r)
{
	if (strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == GN_STORE_MAILBOX_SEP)) {
		*len_r = 5;
		return true;
	}
	return false;
}

const char *imap_name_to_wire(struct imap_session *s, struct gn_pool *pool, const char *store_name)
{
	size_t n;
	const char *rest = store_name;
	const char *head = "";
	if (is_inbox_level(store_name, &n)) {
		head = "INBOX";
		rest = store_name + n;
	}
	const char *enc = s->enabled_utf8 ? rest : imap_mutf7_encode(pool, rest);
	return gn_pool_printf(pool, "%s%s", head, enc);
}

const char *imap_name_from_wire(struct imap_session *s, struct gn_pool *pool, const char *wire)
{
	size_t n;
	const char *rest = wire;
	const char *head = "";
	if (is_inbox_level(wire, &n)) {
		head = "Inbox";
		rest = wire + n;
	}
	const char *dec = s->enabled_utf8 ? rest : imap_mutf7_decode(pool, rest);
	if (dec == NULL)
		return NULL;
	return gn_pool_printf(pool, "%s%s", head, dec);
}

/* ---- LIST patterns ---- */

bool imap_pattern_match(const char *pattern, const char *name)
{
	/* row[j]: the pattern so far matches the first j octets of name.
	 * "*" takes any run, "%" any run without the separator.  Patterns
	 * are at most IMAP_PATTERN_MAX octets (the LIST command checks), so
	 * this is bounded by that times the name's length. */
	size_t nl = strlen(name);
	bool *row = gn_calloc(nl + 1, sizeof(bool));
	row[0] = true;
	for (const char *p = pattern; *p != '\0'; p++) {
		if (*p == '*') {
			for (size_t j = 1; j <= nl; j++)
				row[j] = row[j] || row[j - 1];
		} else if (*p == '%') {
			for (size_t j = 1; j <= nl; j++)
				row[j] = row[j] || (row[j - 1] && name[j - 1] != GN_STORE_MAILBOX_SEP);
		} else {
			for (size_t j = nl; j > 0; j--)
				row[j] = row[j - 1] && name[j - 1] == *p;
			row[0] = false;
		}
	}
	bool r = row[nl];
	gn_free(row);
	return r;
}
