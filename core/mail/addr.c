/*
 * core/mail/addr.c: email addresses (see gannet/addr.h) and PRECIS OpaqueString
 * password preparation.
 *
 * Three parsers share one normalisation:
 *   - gn_addr_parse() and gn_addr_parse_path() read RFC 5321 syntax byte by
 *     byte (no white space, no comments) with the RFC 6531 UTF-8 extension;
 *   - gn_addr_parse_header() first cuts an RFC 5322 header value into tokens
 *     (atoms, quoted strings, comments, domain literals, specials), then
 *     reads mailboxes and groups from the tokens, element by element, so that
 *     a bad mailbox becomes an error item and the next one is still read;
 *   - all of them hand the localpart's value to localpart_finish() (control
 *     characters, UTF-8, NFC, length) and the domain's text to
 *     domain_finish() (LDH rules, IDNA2008 through libidn2, address
 *     literals), then make_addr() checks the total length.
 *
 * Nothing recurses, every loop advances, every allocation is bounded by the
 * input's length, and the work per address is bounded by the RFC 5321 limits
 * (inputs far over them are refused before any Unicode processing).
 */
#include "mail/internal.h"

#include <arpa/inet.h>
#include <idn2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

/* RFC 5321 4.5.3.1.1-3. */
#define LOCALPART_MAX	64
#define DOMAIN_MAX	255
#define PATH_MAX_OCTETS	256
#define ADDRESS_MAX	(PATH_MAX_OCTETS - 2)
/* Raw input refused before Unicode work: NFC and IDNA mapping shrink text,
 * but never by this much. */
#define LOCALPART_RAW_MAX	(LOCALPART_MAX * 4)
#define DOMAIN_RAW_MAX	1024

#define IDN_FLAGS	(IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL)

static bool is_ascii_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5322 3.2.3 atext, extended by RFC 6531 3.3 / RFC 6532 3.2 with
 * UTF8-non-ascii (validated later as a whole). */
static bool is_atext(unsigned char c)
{
	if (c >= 0x80 || is_ascii_alnum(c))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static bool has_non_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

static char ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* RFC 5321 4.1.2 Dot-string (with RFC 6531 UTF-8): can the localpart be
 * written without quotes? */
static bool is_dot_string(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (!is_atext((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

/* Length of the localpart as written in canonical form. */
static size_t localpart_written_len(const char *s)
{
	size_t len = strlen(s);
	if (is_dot_string(s))
		return len;
	size_t n = len + 2;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '"' || s[i] == '\\')
			n++;
	return n;
}

/* Writes the localpart in canonical form to dst (room for
 * localpart_written_len() bytes); returns the bytes written. */
static size_t localpart_write(char *dst, const char *s)
{
	size_t len = strlen(s);
	if (is_dot_string(s)) {
		memcpy(dst, s, len);
		return len;
	}
	/* RFC 5321 4.1.2 Quoted-string: only '"' and '\' need quoted-pairs. */
	size_t n = 0;
	dst[n++] = '"';
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			dst[n++] = '\\';
		dst[n++] = s[i];
	}
	dst[n++] = '"';
	return n;
}

/* Checks and normalises a localpart's value (unquoted): no control
 * characters (RFC 5321 qtextSMTP and atext have none; C1 controls neither,
 * though RFC 6531's UTF8-non-ascii would let them in), valid UTF-8, NFC
 * (mox.md 8: localparts are NFC-normalised whenever parsed), and at most 64
 * octets as written (RFC 5321 4.5.3.1.1). */
static int localpart_finish_max(struct gn_pool *pool, const char *s, size_t len,
				size_t max, const char **out_r, const char **error_r)
{
	if (len > max * 4) {
		*error_r = "localpart too long";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (is_ctl((unsigned char)s[i])) {
			*error_r = "invalid character in localpart";
			return -1;
		}
	}
	char *out;
	if (!has_non_ascii(s, len)) {
		out = gn_pool_strndup(pool, s, len);
	} else {
		const uint8_t *u = (const uint8_t *)s;
		if (u8_check(u, len) != NULL) {
			*error_r = "invalid UTF-8 in localpart";
			return -1;
		}
		for (size_t i = 0; i < len;) {
			ucs4_t uc;
			int n = u8_mbtouc(&uc, u + i, len - i);
			if (uc >= 0x80 && uc <= 0x9f) {
				*error_r = "invalid character in localpart";
				return -1;
			}
			i += (size_t)n;
		}
		size_t nlen = 0;
		uint8_t *nfc = u8_normalize(UNINORM_NFC, u, len, NULL, &nlen);
		if (nfc == NULL) {
			*error_r = "cannot normalise localpart";
			return -1;
		}
		out = gn_pool_alloc(pool, nlen + 1);
		memcpy(out, nfc, nlen);
		out[nlen] = '\0';
		free(nfc);
		if (strlen(out) != nlen) {
			*error_r = "invalid character in localpart";
			return -1;
		}
	}
	if (localpart_written_len(out) > max) {
		*error_r = "localpart too long";
		return -1;
	}
	*out_r = out;
	return 0;
}

static int localpart_finish(struct gn_pool *pool, const char *s, size_t len,
			    const char **out_r, const char **error_r)
{
	return localpart_finish_max(pool, s, len, LOCALPART_MAX, out_r, error_r);
}

/* RFC 5321 4.1.2 Domain: sub-domain = Let-dig [Ldh-str], checked on the
 * lower-cased ASCII form (after IDNA for a Unicode domain). */
static int domain_check_ldh(const char *s, const char **error_r)
{
	size_t len = strlen(s);
	if (len > DOMAIN_MAX) {
		*error_r = "domain too long";
		return -1;
	}
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.') {
			unsigned char c = (unsigned char)s[i];
			if (!is_ascii_alnum(c) && c != '-') {
				*error_r = "invalid character in domain";
				return -1;
			}
			continue;
		}
		size_t llen = i - start;
		if (llen == 0) {
			*error_r = "empty label in domain";
			return -1;
		}
		if (llen > 63) {
			*error_r = "domain label too long";
			return -1;
		}
		if (s[start] == '-' || s[i - 1] == '-') {
			*error_r = "domain label starts or ends with a hyphen";
			return -1;
		}
		start = i + 1;
	}
	return 0;
}

static bool has_alabel(const char *s)
{
	for (const char *p = s; p != NULL; p = strchr(p, '.')) {
		if (*p == '.')
			p++;
		if (strncmp(p, "xn--", 4) == 0)
			return true;
	}
	return false;
}

/* U-labels for display from checked A-labels. */
static const char *domain_to_unicode(struct gn_pool *pool, const char *ascii)
{
	if (!has_alabel(ascii))
		return ascii;
	char *u = NULL;
	if (idn2_to_unicode_8z8z(ascii, &u, 0) != IDN2_OK || u == NULL) {
		/* Cannot happen after the round trip in domain_finish(). */
		idn2_free(u);
		return ascii;
	}
	char *r = gn_pool_strdup(pool, u);
	idn2_free(u);
	return r;
}

/* IDNA2008 with the UTS #46 non-transitional mapping (RFC 5891/5892, as
 * browsers do since 2017: "ß" stays "ß"); the A-label result, lower case. */
static int domain_idna(struct gn_pool *pool, const char *in, char **ascii_r,
		       const char **error_r)
{
	char *a = NULL;
	int rc = idn2_to_ascii_8z(in, &a, IDN_FLAGS);
	if (rc != IDN2_OK || a == NULL) {
		idn2_free(a);
		*error_r = gn_pool_printf(pool, "invalid internationalised domain name (%s)",
					  idn2_strerror(rc));
		return -1;
	}
	char *r = gn_pool_strdup(pool, a);
	idn2_free(a);
	for (char *p = r; *p != '\0'; p++)
		*p = ascii_lower(*p);
	*ascii_r = r;
	return 0;
}

/* RFC 5321 4.1.3 address literals: IPv4 and IPv6; the General-address-literal
 * has no registered tags a mail server could use, so it is refused. */
static int literal_finish(struct gn_pool *pool, const char *s, size_t len,
			  const char **out_r, const char **error_r)
{
	if (len < 2 || s[0] != '[' || s[len - 1] != ']') {
		*error_r = "invalid address literal";
		return -1;
	}
	const char *c = s + 1;
	size_t clen = len - 2;
	if (clen > 64) {
		*error_r = "invalid address literal";
		return -1;
	}
	bool v6 = clen >= 5 && strncasecmp(c, "IPv6:", 5) == 0;
	if (v6) {
		c += 5;
		clen -= 5;
	} else if (memchr(c, ':', clen) != NULL) {
		*error_r = "unsupported address literal";
		return -1;
	}
	char *z = gn_pool_strndup(pool, c, clen);
	if (strlen(z) != clen) {
		*error_r = "invalid character in address literal";
		return -1;
	}
	unsigned char bin[16];
	char text[INET6_ADDRSTRLEN];
	int af = v6 ? AF_INET6 : AF_INET;
	if (inet_pton(af, z, bin) != 1 || inet_ntop(af, bin, text, sizeof(text)) == NULL) {
		*error_r = v6 ? "invalid IPv6 address literal" : "invalid IPv4 address literal";
		return -1;
	}
	*out_r = gn_pool_printf(pool, "[%s%s]", v6 ? "IPv6:" : "", text);
	return 0;
}

/* Checks and normalises a domain (or, with allow_literal, an address
 * literal) to A-labels and U-labels. */
static int domain_finish(struct gn_pool *pool, const char *s, size_t len,
			 bool allow_literal, const char **ascii_r,
			 const char **utf8_r, const char **error_r)
{
	if (len == 0) {
		*error_r = "missing domain";
		return -1;
	}
	if (s[0] == '[') {
		if (!allow_literal) {
			*error_r = "address literal not allowed here";
			return -1;
		}
		if (literal_finish(pool, s, len, ascii_r, error_r) < 0)
			return -1;
		*utf8_r = *ascii_r;
		return 0;
	}
	if (len > DOMAIN_RAW_MAX) {
		*error_r = "domain too long";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (is_ctl((unsigned char)s[i])) {
			*error_r = "invalid character in domain";
			return -1;
		}
	}
	char *ascii;
	if (!has_non_ascii(s, len)) {
		ascii = gn_pool_strndup(pool, s, len);
		for (char *p = ascii; *p != '\0'; p++)
			*p = ascii_lower(*p);
		if (domain_check_ldh(ascii, error_r) < 0)
			return -1;
		if (has_alabel(ascii)) {
			/* An A-label must be what IDNA makes of its own
			 * U-label (RFC 5891 5.4).  libidn2 lets A-labels
			 * through its to-ASCII conversion without looking at
			 * what they decode to, so decode them and convert the
			 * U-labels as if they had been typed: that checks the
			 * characters (fuzz_addr found "xn--unkna", three
			 * parenthesised ideographs that IDNA2008 disallows,
			 * accepted here while its display form was refused),
			 * and the comparison catches labels that decode to
			 * something that maps to another A-label. */
			char *u = NULL;
			int rc = idn2_to_unicode_8z8z(ascii, &u, 0);
			if (rc != IDN2_OK || u == NULL) {
				idn2_free(u);
				*error_r = gn_pool_printf(pool, "invalid internationalised domain name (%s)",
							  idn2_strerror(rc));
				return -1;
			}
			char *ulabels = gn_pool_strdup(pool, u);
			idn2_free(u);
			char *again;
			if (domain_idna(pool, ulabels, &again, error_r) < 0)
				return -1;
			if (strcmp(again, ascii) != 0) {
				*error_r = "invalid A-label in domain";
				return -1;
			}
		}
	} else {
		if (u8_check((const uint8_t *)s, len) != NULL) {
			*error_r = "invalid UTF-8 in domain";
			return -1;
		}
		if (domain_idna(pool, gn_pool_strndup(pool, s, len), &ascii, error_r) < 0)
			return -1;
		if (domain_check_ldh(ascii, error_r) < 0)
			return -1;
	}
	*ascii_r = ascii;
	*utf8_r = domain_to_unicode(pool, ascii);
	return 0;
}

static int make_addr_max(struct gn_pool *pool, const char *local, const char *ascii,
			 const char *utf8, size_t max, struct gn_addr **addr_r,
			 const char **error_r)
{
	if (localpart_written_len(local) + 1 + strlen(ascii) > max) {
		*error_r = "address too long";
		return -1;
	}
	struct gn_addr *a = gn_pool_alloc(pool, sizeof(*a));
	a->localpart = local;
	a->domain = ascii;
	a->domain_utf8 = utf8;
	*addr_r = a;
	return 0;
}

static int make_addr(struct gn_pool *pool, const char *local, const char *ascii,
		     const char *utf8, struct gn_addr **addr_r, const char **error_r)
{
	return make_addr_max(pool, local, ascii, utf8, ADDRESS_MAX, addr_r, error_r);
}

/* ---- RFC 5321 syntax ---- */

/* Reads "localpart" at s[*pp..len): a quoted string or a (lenient)
 * dot-string, at most raw_max octets.  Sets *value_r, *quoted_r; leaves
 * *pp after it. */
static int smtp_localpart(struct gn_pool *pool, const char *s, size_t len,
			  size_t *pp, size_t raw_max, char **value_r, size_t *vlen_r,
			  bool *quoted_r, const char **error_r)
{
	size_t p = *pp;
	if (p < len && s[p] == '"') {
		/* RFC 5321 4.1.2 Quoted-string: qtextSMTP and quoted-pairSMTP
		 * (and UTF-8, RFC 6531 3.3). */
		p++;
		size_t room = len - p < raw_max ? len - p : raw_max;
		char *v = gn_pool_alloc(pool, room + 1);
		size_t n = 0;
		for (;;) {
			if (p >= len) {
				*error_r = "unterminated quoted string";
				return -1;
			}
			unsigned char c = (unsigned char)s[p];
			if (c == '"') {
				p++;
				break;
			}
			if (c == '\\') {
				if (p + 1 >= len) {
					*error_r = "unterminated quoted string";
					return -1;
				}
				c = (unsigned char)s[p + 1];
				p++;
			}
			if (is_ctl(c)) {
				*error_r = "invalid character in localpart";
				return -1;
			}
			if (n >= room) {
				*error_r = "localpart too long";
				return -1;
			}
			v[n++] = (char)c;
			p++;
		}
		*value_r = v;
		*vlen_r = n;
		*quoted_r = true;
	} else {
		/* Dot-string; leading, trailing and doubled dots accepted
		 * (see gn_addr_parse() in gannet/addr.h). */
		size_t start = p;
		while (p < len && (is_atext((unsigned char)s[p]) || s[p] == '.'))
			p++;
		if (p == start) {
			if (p < len && s[p] == '@')
				*error_r = "empty localpart";
			else if (p >= len || s[p] == '>')
				*error_r = "empty address";
			else
				*error_r = "invalid character in localpart";
			return -1;
		}
		if (p - start > raw_max) {
			*error_r = "localpart too long";
			return -1;
		}
		*value_r = gn_pool_strndup(pool, s + start, p - start);
		*vlen_r = p - start;
		*quoted_r = false;
	}
	*pp = p;
	return 0;
}

static bool is_domain_char(unsigned char c)
{
	return is_ascii_alnum(c) || c == '-' || c == '.' || c >= 0x80;
}

/* Reads a domain or an address literal at s[*pp..len) (its extent only). */
static int smtp_domain_extent(const char *s, size_t len, size_t *pp,
			      const char **error_r)
{
	size_t p = *pp;
	if (p < len && s[p] == '[') {
		p++;
		while (p < len && s[p] != ']') {
			unsigned char c = (unsigned char)s[p];
			/* RFC 5321 4.1.3 dcontent: %d33-90 / %d94-126 */
			if (c <= 32 || c >= 127 || c == '[' || c == '\\') {
				*error_r = "invalid character in address literal";
				return -1;
			}
			p++;
		}
		if (p >= len) {
			*error_r = "unterminated address literal";
			return -1;
		}
		p++;
	} else {
		while (p < len && is_domain_char((unsigned char)s[p]))
			p++;
	}
	if (p == *pp) {
		if (p < len && s[p] != '>' && s[p] != ' ')
			*error_r = "invalid character in domain";
		else
			*error_r = "missing domain";
		return -1;
	}
	*pp = p;
	return 0;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ).  Returns 1 with
 * *addr_r; 0 when the localpart is not followed by "@" (the caller decides:
 * bare postmaster, or an error), with the unquoted value in *bare_r.  long_lp:
 * GN_ADDR_PATH_LONG_LOCALPART's limits. */
static int smtp_mailbox(struct gn_pool *pool, const char *s, size_t len,
			size_t *pp, bool long_lp, struct gn_addr **addr_r,
			const char **bare_r, bool *bare_quoted_r, const char **error_r)
{
	size_t lp_max = long_lp ? GN_ADDR_LONG_LOCALPART_MAX : LOCALPART_MAX;
	size_t p = *pp;
	char *value;
	size_t vlen;
	bool quoted;
	if (smtp_localpart(pool, s, len, &p, lp_max * 4, &value, &vlen, &quoted, error_r) < 0)
		return -1;
	if (p >= len || s[p] != '@') {
		*pp = p;
		*bare_r = value;
		*bare_quoted_r = quoted;
		return 0;
	}
	p++;
	size_t dstart = p;
	if (smtp_domain_extent(s, len, &p, error_r) < 0)
		return -1;
	const char *local, *ascii, *utf8;
	if (localpart_finish_max(pool, value, vlen, lp_max, &local, error_r) < 0 ||
	    domain_finish(pool, s + dstart, p - dstart, true, &ascii, &utf8, error_r) < 0 ||
	    make_addr_max(pool, local, ascii, utf8, long_lp ? GN_ADDR_LONG_PATH_MAX - 2 :
			  ADDRESS_MAX, addr_r, error_r) < 0)
		return -1;
	*pp = p;
	return 1;
}

int gn_addr_parse(struct gn_pool *pool, const char *s, size_t len,
		  struct gn_addr **addr_r, const char **error_r)
{
	size_t p = 0;
	const char *bare;
	bool quoted;
	if (len == 0) {
		*error_r = "empty address";
		return -1;
	}
	int r = smtp_mailbox(pool, s, len, &p, false, addr_r, &bare, &quoted, error_r);
	if (r < 0)
		return -1;
	if (r == 0) {
		*error_r = p >= len ? "missing @ in address" : "invalid character in localpart";
		return -1;
	}
	if (p != len) {
		*error_r = s[p - 1] == ']' ? "unexpected text after address" : "invalid character in domain";
		return -1;
	}
	return 0;
}

/* RFC 5321 4.1.2 A-d-l = At-domain *( "," At-domain ) ":", accepted and
 * ignored (RFC 5321 4.1.1.3 and appendix C). */
static int smtp_source_route(const char *s, size_t len, size_t *pp,
			     const char **error_r)
{
	size_t p = *pp;
	for (;;) {
		if (p >= len || s[p] != '@') {
			*error_r = "invalid source route";
			return -1;
		}
		p++;
		if (smtp_domain_extent(s, len, &p, error_r) < 0)
			return -1;
		if (p > PATH_MAX_OCTETS) {
			*error_r = "path too long";
			return -1;
		}
		if (p < len && s[p] == ',') {
			p++;
			continue;
		}
		if (p < len && s[p] == ':') {
			p++;
			break;
		}
		*error_r = "invalid source route";
		return -1;
	}
	*pp = p;
	return 0;
}

int gn_addr_parse_path(struct gn_pool *pool, const char *s, size_t len,
		       unsigned flags, struct gn_addr **addr_r, size_t *used_r,
		       const char **error_r)
{
	size_t p = 0;
	bool brackets = len > 0 && s[0] == '<';
	int ret = 1;

	*addr_r = NULL;
	if (len == 0) {
		*error_r = "empty path";
		return -1;
	}
	if (!brackets && (flags & GN_ADDR_PATH_NO_BRACKETS) == 0) {
		*error_r = "path must be enclosed in < >";
		return -1;
	}
	if (brackets)
		p++;
	if (brackets && p < len && s[p] == '>') {
		/* RFC 5321 4.5.5: the null reverse-path. */
		if ((flags & GN_ADDR_PATH_NULL) == 0) {
			*error_r = "null path not allowed";
			return -1;
		}
		p++;
		ret = 0;
		goto end;
	}
	if (p < len && s[p] == '@' && smtp_source_route(s, len, &p, error_r) < 0)
		return -1;

	const char *bare;
	bool quoted;
	int r = smtp_mailbox(pool, s, len, &p, (flags & GN_ADDR_PATH_LONG_LOCALPART) != 0,
			     addr_r, &bare, &quoted, error_r);
	if (r < 0)
		return -1;
	if (r == 0) {
		/* RFC 5321 4.1.1.3: "RCPT TO:<Postmaster>" without domain,
		 * the localpart case-insensitive. */
		if ((flags & GN_ADDR_PATH_POSTMASTER) != 0 && !quoted &&
		    strcasecmp(bare, "postmaster") == 0 && brackets && p < len &&
		    s[p] == '>' && s[1] != '@') {
			struct gn_addr *a = gn_pool_alloc(pool, sizeof(*a));
			a->localpart = "postmaster";
			a->domain = "";
			a->domain_utf8 = "";
			*addr_r = a;
			ret = 2;
		} else {
			*error_r = p >= len || s[p] == '>' || (s[p] == ' ' && !brackets) ?
				"missing @ in address" : "invalid character in localpart";
			return -1;
		}
	}
	if (brackets) {
		if (p >= len || s[p] != '>') {
			*addr_r = NULL;
			if (p >= len)
				*error_r = "missing > at the end of the path";
			else if (s[p - 1] == ']')
				*error_r = "unexpected text after address";
			else
				*error_r = "invalid character in domain";
			return -1;
		}
		p++;
	} else if (p < len && s[p] != ' ') {
		*addr_r = NULL;
		*error_r = "invalid character in domain";
		return -1;
	}
end:
	if (p > ((flags & GN_ADDR_PATH_LONG_LOCALPART) != 0 ? GN_ADDR_LONG_PATH_MAX :
		 PATH_MAX_OCTETS)) {
		*addr_r = NULL;
		*error_r = "path too long";
		return -1;
	}
	if ((flags & GN_ADDR_PATH_ASCII) != 0 && has_non_ascii(s, p)) {
		/* RFC 6531 3.4: UTF-8 only after the SMTPUTF8 parameter. */
		*addr_r = NULL;
		*error_r = "non-ASCII address without SMTPUTF8";
		return -1;
	}
	if (used_r != NULL) {
		*used_r = p;
	} else if (p != len) {
		*addr_r = NULL;
		*error_r = "unexpected text after path";
		return -1;
	}
	return ret;
}

int gn_addr_from_parts(struct gn_pool *pool, const char *localpart,
		       const char *domain, struct gn_addr **addr_r,
		       const char **error_r)
{
	const char *local, *ascii, *utf8;
	if (localpart_finish(pool, localpart, strlen(localpart), &local, error_r) < 0 ||
	    domain_finish(pool, domain, strlen(domain), true, &ascii, &utf8, error_r) < 0)
		return -1;
	return make_addr(pool, local, ascii, utf8, addr_r, error_r);
}

int gn_addr_parse_domain(struct gn_pool *pool, const char *s, size_t len,
			 const char **ascii_r, const char **utf8_r,
			 const char **error_r)
{
	const char *ascii, *utf8;
	if (domain_finish(pool, s, len, false, &ascii, &utf8, error_r) < 0)
		return -1;
	if (ascii_r != NULL)
		*ascii_r = ascii;
	if (utf8_r != NULL)
		*utf8_r = utf8;
	return 0;
}

/* ---- comparing, folding, writing ---- */

bool gn_addr_equal(const struct gn_addr *a, const struct gn_addr *b)
{
	return strcmp(a->localpart, b->localpart) == 0 && strcmp(a->domain, b->domain) == 0;
}

struct gn_addr *gn_addr_fold(struct gn_pool *pool, const struct gn_addr *addr)
{
	const char *lp = addr->localpart;
	size_t len = strlen(lp);
	char *out;
	if (!has_non_ascii(lp, len)) {
		size_t i = 0;
		while (i < len && !(lp[i] >= 'A' && lp[i] <= 'Z'))
			i++;
		if (i == len)
			return (struct gn_addr *)addr;
		out = gn_pool_strndup(pool, lp, len);
		for (char *p = out; *p != '\0'; p++)
			*p = ascii_lower(*p);
	} else {
		size_t olen = 0;
		uint8_t *low = u8_tolower((const uint8_t *)lp, len, NULL, UNINORM_NFC, NULL, &olen);
		if (low == NULL)
			return (struct gn_addr *)addr;	/* only on ENOMEM */
		if (olen == len && memcmp(low, lp, len) == 0) {
			free(low);
			return (struct gn_addr *)addr;
		}
		out = gn_pool_alloc(pool, olen + 1);
		memcpy(out, low, olen);
		out[olen] = '\0';
		free(low);
	}
	struct gn_addr *a = gn_pool_alloc(pool, sizeof(*a));
	*a = *addr;
	a->localpart = out;
	return a;
}

struct gn_addr *gn_addr_strip_catchall(struct gn_pool *pool,
				       const struct gn_addr *addr,
				       const char *separators)
{
	if (separators == NULL || *separators == '\0')
		return (struct gn_addr *)addr;
	const uint8_t *lp = (const uint8_t *)addr->localpart;
	const uint8_t *sep = (const uint8_t *)separators;
	size_t len = strlen(addr->localpart), slen = strlen(separators);
	for (size_t i = 0; i < len;) {
		ucs4_t uc;
		int n = u8_mbtouc(&uc, lp + i, len - i);
		for (size_t j = 0; j < slen;) {
			ucs4_t sc;
			int m = u8_mbtouc(&sc, sep + j, slen - j);
			if (sc == uc) {
				/* The first separator decides; an empty base
				 * ("+tag@x") is no catchall form. */
				if (i == 0)
					return (struct gn_addr *)addr;
				struct gn_addr *a = gn_pool_alloc(pool, sizeof(*a));
				*a = *addr;
				a->localpart = gn_pool_strndup(pool, addr->localpart, i);
				return a;
			}
			j += (size_t)m;
		}
		i += (size_t)n;
	}
	return (struct gn_addr *)addr;
}

static char *addr_write(struct gn_pool *pool, const struct gn_addr *addr,
			const char *domain)
{
	size_t dlen = strlen(domain);
	char *out = gn_pool_alloc(pool, localpart_written_len(addr->localpart) + 1 + dlen + 1);
	size_t n = localpart_write(out, addr->localpart);
	if (dlen > 0) {
		out[n++] = '@';
		memcpy(out + n, domain, dlen);
		n += dlen;
	}
	out[n] = '\0';
	return out;
}

char *gn_addr_to_string(struct gn_pool *pool, const struct gn_addr *addr)
{
	return addr_write(pool, addr, addr->domain);
}

char *gn_addr_to_display(struct gn_pool *pool, const struct gn_addr *addr)
{
	return addr_write(pool, addr, addr->domain_utf8);
}

bool gn_addr_needs_smtputf8(const struct gn_addr *addr)
{
	return has_non_ascii(addr->localpart, strlen(addr->localpart));
}

int gn_addr_is_canonical(struct gn_pool *pool, const char *s,
			 const char **canonical_r, const char **error_r)
{
	struct gn_addr *a;
	if (gn_addr_parse(pool, s, strlen(s), &a, error_r) < 0)
		return -1;
	char *c = gn_addr_to_string(pool, a);
	if (canonical_r != NULL)
		*canonical_r = c;
	return strcmp(c, s) == 0 ? 1 : 0;
}

/* ---- RFC 5322 address headers ---- */

enum tok_type { TK_ATOM, TK_QUOTED, TK_COMMENT, TK_LITERAL, TK_SPECIAL, TK_BAD };

struct token {
	enum tok_type type;
	char special;		/* TK_SPECIAL */
	bool space_before;	/* white space or a comment before it */
	size_t start, end;	/* extent in the value, quotes and parens included */
	const char *bad;	/* TK_BAD: the error */
};

struct hdr {
	struct gn_pool *pool;
	const char *s;
	size_t len;
	struct token *toks;
	size_t ntoks, toks_alloc;
	struct gn_addr_item **items;	/* each from pool */
	size_t nitems, items_alloc;
	const char *first_error;
};

/* Comments nest (RFC 5322 3.2.2); deeper than this is garbage. */
#define COMMENT_DEPTH_MAX 32

static void tok_add(struct hdr *h, enum tok_type type, size_t start, size_t end,
		    bool space, const char *bad)
{
	if (h->ntoks == h->toks_alloc) {
		h->toks_alloc = h->toks_alloc ? h->toks_alloc * 2 : 32;
		h->toks = gn_realloc(h->toks, h->toks_alloc * sizeof(*h->toks));
	}
	struct token *t = &h->toks[h->ntoks++];
	t->type = type;
	t->special = type == TK_SPECIAL ? h->s[start] : '\0';
	t->space_before = space;
	t->start = start;
	t->end = end;
	t->bad = bad;
}

/* At a CR or LF at s[p]: sets *next_r after the run of CRs and LFs there;
 * returns true when the run is a fold (one CRLF or LF, then white space,
 * RFC 5322 2.2.3) or ends the value, false for a line break that does not
 * belong in a field.  Taking the whole run keeps "\n\n\n..." linear. */
static bool line_break(const char *s, size_t len, size_t p, size_t *next_r)
{
	size_t q = p;
	while (q < len && (s[q] == '\r' || s[q] == '\n'))
		q++;
	*next_r = q;
	if (q == len)
		return true;
	size_t n = q - p;
	bool one = (n == 1 && s[p] == '\n') || (n == 2 && s[p] == '\r' && s[p + 1] == '\n');
	return one && (s[q] == ' ' || s[q] == '\t');
}

/* Scans a quoted string, comment or domain literal from s[p] (the opening
 * character); returns the position after its end, or 0 with *bad_r. */
static size_t scan_delimited(const char *s, size_t len, size_t p, const char **bad_r)
{
	char open = s[p];
	char close = open == '"' ? '"' : open == '(' ? ')' : ']';
	int depth = 1;
	const char *bad = NULL;
	p++;
	while (p < len) {
		char c = s[p];
		if (c == '\r' || c == '\n') {
			size_t q;
			if ((!line_break(s, len, p, &q) || q == len) && bad == NULL)
				bad = "line break in address";
			p = q;
			continue;
		}
		if (c == '\0' && bad == NULL)
			bad = "invalid character in address";
		if (c == '\\' && open != '[') {
			if (p + 1 < len && (s[p + 1] == '\0' || s[p + 1] == '\r' || s[p + 1] == '\n') &&
			    bad == NULL)
				bad = "invalid character in address";
			p += p + 1 < len ? 2 : 1;
			continue;
		}
		if (open == '[' && (c == '[' || c == '\\') && bad == NULL)
			bad = "invalid character in address literal";
		if (open == '(' && c == '(') {
			if (++depth > COMMENT_DEPTH_MAX && bad == NULL)
				bad = "comments nested too deeply";
		} else if (c == close && --depth == 0) {
			*bad_r = bad;
			return p + 1;
		}
		p++;
	}
	*bad_r = open == '"' ? "unterminated quoted string" :
		open == '(' ? "unterminated comment" : "unterminated address literal";
	return 0;
}

static void tokenize(struct hdr *h)
{
	const char *s = h->s;
	size_t len = h->len, p = 0;
	bool space = false;
	while (p < len) {
		unsigned char c = (unsigned char)s[p];
		if (c == ' ' || c == '\t') {
			space = true;
			p++;
			continue;
		}
		if (c == '\r' || c == '\n') {
			size_t q;
			if (!line_break(s, len, p, &q)) {
				/* RFC 5322 2.2: a line break not followed by
				 * white space ends the field; here it is junk. */
				tok_add(h, TK_BAD, p, q, space, "line break in address");
			}
			space = true;
			p = q;
			continue;
		}
		if (c == '"' || c == '(' || c == '[') {
			const char *bad = NULL;
			size_t q = scan_delimited(s, len, p, &bad);
			enum tok_type type = c == '"' ? TK_QUOTED : c == '(' ? TK_COMMENT : TK_LITERAL;
			if (q == 0) {
				tok_add(h, TK_BAD, p, len, space, bad);
				break;
			}
			tok_add(h, bad != NULL ? TK_BAD : type, p, q, space, bad);
			/* A comment separates like white space. */
			space = type == TK_COMMENT;
			p = q;
			continue;
		}
		if (strchr("<>@,;:.)]\\", c) != NULL && c != '\0') {
			tok_add(h, TK_SPECIAL, p, p + 1, space, NULL);
			space = false;
			p++;
			continue;
		}
		if (is_atext(c)) {
			size_t q = p;
			while (q < len && is_atext((unsigned char)s[q]))
				q++;
			tok_add(h, TK_ATOM, p, q, space, NULL);
			space = false;
			p = q;
			continue;
		}
		tok_add(h, TK_BAD, p, p + 1, space, "invalid character in address");
		space = false;
		p++;
	}
}

static bool is_special(const struct token *t, char c)
{
	return t->type == TK_SPECIAL && t->special == c;
}

/* The content of a quoted string or comment: backslash escapes and line
 * breaks of folds removed; written to dst, returns the length. */
static size_t unquote(const char *s, size_t start, size_t end, char *dst)
{
	size_t n = 0;
	for (size_t i = start; i < end; i++) {
		if (s[i] == '\r' || s[i] == '\n')
			continue;
		if (s[i] == '\\' && i + 1 < end)
			i++;
		dst[n++] = s[i];
	}
	return n;
}

/* A display name or group name from tokens [a, b): words joined by one
 * space where the header had white space or comments; quotes removed;
 * specials (obs-phrase periods, and leniently others) kept as text. */
static char *phrase(struct hdr *h, size_t a, size_t b)
{
	if (a >= b)
		return gn_pool_strdup(h->pool, "");
	char *out = gn_pool_alloc(h->pool, h->toks[b - 1].end - h->toks[a].start + 1);
	size_t n = 0;
	for (size_t i = a; i < b; i++) {
		const struct token *t = &h->toks[i];
		if (t->type == TK_COMMENT)
			continue;
		if (n > 0 && t->space_before)
			out[n++] = ' ';
		if (t->type == TK_QUOTED) {
			n += unquote(h->s, t->start + 1, t->end - 1, out + n);
		} else {
			for (size_t j = t->start; j < t->end; j++)
				if (h->s[j] != '\r' && h->s[j] != '\n')
					out[n++] = h->s[j];
		}
	}
	out[n] = '\0';
	return out;
}

static char *decode_name(struct hdr *h, const char *raw)
{
	if (*raw == '\0')
		return (char *)raw;
	/* RFC 2047 5: encoded words in phrases; decoded inside quotes too,
	 * since mailers put them there and readers expect the text. */
	return gn_mime_decode_header(h->pool, raw, strlen(raw));
}

static struct gn_addr_item *item_add(struct hdr *h, enum gn_addr_item_kind kind)
{
	if (h->nitems == h->items_alloc) {
		h->items_alloc = h->items_alloc ? h->items_alloc * 2 : 8;
		h->items = gn_realloc(h->items, h->items_alloc * sizeof(*h->items));
	}
	struct gn_addr_item *it = gn_pool_alloc(h->pool, sizeof(*it));
	h->items[h->nitems++] = it;
	it->kind = kind;
	it->name = "";
	it->name_raw = "";
	return it;
}

/* The next non-comment token at or after i, before b (b when none). */
static size_t skip_comments(const struct hdr *h, size_t i, size_t b)
{
	while (i < b && h->toks[i].type == TK_COMMENT)
		i++;
	return i;
}

/* addr-spec from the tokens [a, b) (comments skipped): RFC 5322 3.4.1 with
 * obs-local-part and obs-domain (CFWS around the dots). */
static int addr_spec(struct hdr *h, size_t a, size_t b, struct gn_addr **addr_r,
		     const char **error_r)
{
	size_t at = b;
	for (size_t i = a; i < b; i++) {
		if (is_special(&h->toks[i], '@')) {
			at = i;
			break;
		}
	}
	if (at == b) {
		*error_r = "missing @ in address";
		return -1;
	}
	if (skip_comments(h, a, at) == at) {
		*error_r = "empty localpart";
		return -1;
	}

	/* Localpart: words and dots; two words need a dot between them. */
	size_t room = h->toks[at].start - h->toks[a].start;
	if (room > LOCALPART_RAW_MAX) {
		*error_r = "localpart too long";
		return -1;
	}
	char *lp = gn_pool_alloc(h->pool, room + 1);
	size_t n = 0;
	bool after_word = false;
	for (size_t i = a; i < at; i++) {
		const struct token *t = &h->toks[i];
		if (t->type == TK_COMMENT)
			continue;
		if (is_special(t, '.')) {
			lp[n++] = '.';
			after_word = false;
		} else if (t->type == TK_ATOM || t->type == TK_QUOTED) {
			if (after_word) {
				*error_r = "invalid localpart";
				return -1;
			}
			if (t->type == TK_ATOM) {
				memcpy(lp + n, h->s + t->start, t->end - t->start);
				n += t->end - t->start;
			} else {
				n += unquote(h->s, t->start + 1, t->end - 1, lp + n);
			}
			after_word = true;
		} else {
			*error_r = "invalid character in localpart";
			return -1;
		}
	}

	/* Domain: a literal, or atoms and dots. */
	size_t d = skip_comments(h, at + 1, b);
	if (d == b) {
		*error_r = "missing domain";
		return -1;
	}
	const char *dom;
	size_t dlen;
	if (h->toks[d].type == TK_LITERAL) {
		dom = h->s + h->toks[d].start;
		dlen = h->toks[d].end - h->toks[d].start;
		if (skip_comments(h, d + 1, b) != b) {
			*error_r = "unexpected text after address";
			return -1;
		}
	} else {
		/* Measured without trailing comments: "x@y (Long Name)". */
		size_t last = b - 1;
		while (last > d && h->toks[last].type == TK_COMMENT)
			last--;
		size_t droom = h->toks[last].end - h->toks[d].start;
		if (droom > DOMAIN_RAW_MAX) {
			*error_r = "domain too long";
			return -1;
		}
		char *db = gn_pool_alloc(h->pool, droom + 1);
		bool after_atom = false;
		dlen = 0;
		for (size_t i = d; i < b; i++) {
			const struct token *t = &h->toks[i];
			if (t->type == TK_COMMENT)
				continue;
			/* Two atoms need a dot between them: "exa mple.com"
			 * is no domain. */
			if ((t->type != TK_ATOM && !is_special(t, '.')) ||
			    (t->type == TK_ATOM && after_atom)) {
				*error_r = "invalid character in domain";
				return -1;
			}
			after_atom = t->type == TK_ATOM;
			memcpy(db + dlen, h->s + t->start, t->end - t->start);
			dlen += t->end - t->start;
		}
		db[dlen] = '\0';
		dom = db;
	}
	const char *local, *ascii, *utf8;
	if (localpart_finish(h->pool, lp, n, &local, error_r) < 0 ||
	    domain_finish(h->pool, dom, dlen, true, &ascii, &utf8, error_r) < 0 ||
	    make_addr(h->pool, local, ascii, utf8, addr_r, error_r) < 0)
		return -1;
	return 0;
}

/* One mailbox from the tokens [a, b): name-addr or addr-spec. */
static void mailbox(struct hdr *h, size_t a, size_t b, const char *group)
{
	struct gn_addr_item *it = item_add(h, GN_ADDR_MAILBOX);
	const char *error = NULL;
	it->group = group;

	/* The text as in the header, unfolded. */
	size_t ts = h->toks[a].start, te = h->toks[b - 1].end;
	char *text = gn_pool_alloc(h->pool, te - ts + 1);
	size_t n = 0;
	for (size_t i = ts; i < te; i++)
		if (h->s[i] != '\r' && h->s[i] != '\n')
			text[n++] = h->s[i];
	text[n] = '\0';
	it->text = text;

	size_t lt = b;
	for (size_t i = a; i < b; i++) {
		if (h->toks[i].type == TK_BAD && error == NULL)
			error = h->toks[i].bad;
		if (is_special(&h->toks[i], '<') && lt == b)
			lt = i;
	}
	if (error != NULL)
		goto fail;

	if (lt < b) {
		/* name-addr = [display-name] angle-addr */
		it->name_raw = phrase(h, a, lt);
		size_t gt = b;
		for (size_t i = lt + 1; i < b; i++) {
			if (is_special(&h->toks[i], '>')) {
				gt = i;
				break;
			}
		}
		if (gt == b) {
			error = "missing > after address";
			goto fail;
		}
		if (skip_comments(h, gt + 1, b) != b) {
			error = "unexpected text after address";
			goto fail;
		}
		size_t s = skip_comments(h, lt + 1, gt);
		if (s == gt) {
			error = "empty address";
			goto fail;
		}
		if (is_special(&h->toks[s], '@')) {
			/* RFC 5322 4.4 obs-route, ignored. */
			while (s < gt && !is_special(&h->toks[s], ':'))
				s++;
			if (s == gt) {
				error = "invalid route in address";
				goto fail;
			}
			s++;
		}
		if (addr_spec(h, s, gt, &it->addr, &error) < 0)
			goto fail;
	} else {
		/* addr-spec; an old-style "x@y (Name)" names it in the
		 * comment. */
		if (addr_spec(h, a, b, &it->addr, &error) < 0)
			goto fail;
		for (size_t i = a; i < b; i++) {
			const struct token *t = &h->toks[i];
			if (t->type != TK_COMMENT)
				continue;
			char *c = gn_pool_alloc(h->pool, t->end - t->start);
			size_t cl = unquote(h->s, t->start + 1, t->end - 1, c);
			while (cl > 0 && (c[cl - 1] == ' ' || c[cl - 1] == '\t'))
				cl--;
			c[cl] = '\0';
			size_t lead = strspn(c, " \t");
			it->name_raw = c + lead;
			break;
		}
	}
	it->name = decode_name(h, it->name_raw);
	return;
fail:
	it->addr = NULL;
	it->error = error;
	it->name = decode_name(h, it->name_raw);
	if (h->first_error == NULL)
		h->first_error = error;
}

/* Whether tokens from i are a group's "display-name :"; sets *colon_r. */
static bool group_start(const struct hdr *h, size_t i, size_t *colon_r)
{
	size_t words = 0;
	for (; i < h->ntoks; i++) {
		const struct token *t = &h->toks[i];
		if (t->type == TK_ATOM || t->type == TK_QUOTED) {
			words++;
		} else if (is_special(t, ':')) {
			*colon_r = i;
			return words > 0;
		} else if (t->type != TK_COMMENT && !is_special(t, '.')) {
			return false;
		}
	}
	return false;
}

int gn_addr_parse_header(struct gn_pool *pool, const char *value, size_t len,
			 struct gn_addr_list *list_r, const char **error_r)
{
	struct hdr h;
	memset(&h, 0, sizeof(h));
	h.pool = pool;
	h.s = value;
	h.len = len;
	tokenize(&h);

	const char *group = NULL;
	bool in_group = false;
	size_t i = 0;
	while (i < h.ntoks) {
		const struct token *t = &h.toks[i];
		if (is_special(t, ',') || t->type == TK_COMMENT) {
			/* RFC 5322 4.4 obs-addr-list: empty elements. */
			i++;
			continue;
		}
		if (is_special(t, ';')) {
			if (in_group) {
				item_add(&h, GN_ADDR_GROUP_END);
				in_group = false;
				group = NULL;
			}
			i++;
			continue;
		}
		size_t colon;
		if (!in_group && group_start(&h, i, &colon)) {
			struct gn_addr_item *it = item_add(&h, GN_ADDR_GROUP_START);
			it->name_raw = phrase(&h, i, colon);
			it->name = decode_name(&h, it->name_raw);
			group = it->name;
			in_group = true;
			i = colon + 1;
			continue;
		}
		/* The element ends at "," or ";" outside angle brackets. */
		size_t e = i;
		int depth = 0;
		for (; e < h.ntoks; e++) {
			const struct token *u = &h.toks[e];
			if (is_special(u, '<'))
				depth++;
			else if (is_special(u, '>') && depth > 0)
				depth--;
			else if (depth == 0 && (is_special(u, ',') || is_special(u, ';')))
				break;
		}
		mailbox(&h, i, e, group);
		i = e;
	}
	if (in_group)
		item_add(&h, GN_ADDR_GROUP_END);	/* the ";" is missing */

	list_r->count = h.nitems;
	list_r->items = gn_pool_alloc(pool, (h.nitems ? h.nitems : 1) * sizeof(*h.items));
	if (h.nitems > 0)
		memcpy(list_r->items, h.items, h.nitems * sizeof(*h.items));
	gn_free(h.items);
	gn_free(h.toks);
	if (h.first_error != NULL) {
		*error_r = h.first_error;
		return -1;
	}
	return 0;
}

/* ---- PRECIS OpaqueString (RFC 8265 4.2) ---- */

static bool script_is(ucs4_t uc, const char *name)
{
	const uc_script_t *sc = uc_script(uc);
	return sc != NULL && strcmp(sc->name, name) == 0;
}

/* RFC 5892 2.9 OldHangulJamo: Hangul_Syllable_Type L, V or T. */
static bool is_old_hangul_jamo(ucs4_t uc)
{
	return (uc >= 0x1100 && uc <= 0x11FF) || (uc >= 0xA960 && uc <= 0xA97C) ||
		(uc >= 0xD7B0 && uc <= 0xD7C6) || (uc >= 0xD7CB && uc <= 0xD7FB);
}

static bool has_compat(ucs4_t uc)
{
	uint32_t buf[32];
	size_t n = sizeof(buf) / sizeof(buf[0]);
	uint32_t *r = u32_normalize(UNINORM_NFKC, &uc, 1, buf, &n);
	if (r == NULL)
		return false;
	bool compat = n != 1 || r[0] != uc;
	if (r != buf)
		free(r);
	return compat;
}

/* RFC 8264 8 (derived property, in its order) for the FreeformClass (RFC
 * 8264 4.3): 0 when u[i] is allowed in its context, else -1. */
struct precis_ctx {
	bool kana_han;		/* some Hiragana, Katakana or Han */
	bool arabic_indic;	/* some of U+0660..U+0669 */
	bool ext_arabic_indic;	/* some of U+06F0..U+06F9 */
};

/* The whole-string facts the CONTEXTO rules ask for, gathered once so that
 * checking stays linear. */
static void precis_ctx_init(struct precis_ctx *ctx, const uint32_t *u, size_t n)
{
	memset(ctx, 0, sizeof(*ctx));
	for (size_t i = 0; i < n; i++) {
		if (u[i] >= 0x0660 && u[i] <= 0x0669)
			ctx->arabic_indic = true;
		else if (u[i] >= 0x06F0 && u[i] <= 0x06F9)
			ctx->ext_arabic_indic = true;
		else if (u[i] >= 0x2E80 && !ctx->kana_han &&
			 (script_is(u[i], "Hiragana") || script_is(u[i], "Katakana") ||
			  script_is(u[i], "Han")))
			ctx->kana_han = true;
	}
}

static int freeform_check(const struct precis_ctx *ctx, const uint32_t *u, size_t n,
			  size_t i, const char **error_r)
{
	ucs4_t uc = u[i];
	*error_r = "password contains a disallowed character";

	/* Exceptions, RFC 5892 2.6, with the CONTEXTO rules of its
	 * appendix A. */
	switch (uc) {
	case 0x00DF: case 0x03C2: case 0x06FD: case 0x06FE: case 0x0F0B: case 0x3007:
		return 0;
	case 0x00B7:	/* A.3 MIDDLE DOT: between two "l" */
		return i > 0 && i + 1 < n && u[i - 1] == 0x6C && u[i + 1] == 0x6C ? 0 : -1;
	case 0x0375:	/* A.4 GREEK LOWER NUMERAL SIGN: before Greek */
		return i + 1 < n && script_is(u[i + 1], "Greek") ? 0 : -1;
	case 0x05F3: case 0x05F4:	/* A.5, A.6: after Hebrew */
		return i > 0 && script_is(u[i - 1], "Hebrew") ? 0 : -1;
	case 0x30FB:	/* A.7 KATAKANA MIDDLE DOT */
		return ctx->kana_han ? 0 : -1;
	case 0x0640: case 0x07FA: case 0x302E: case 0x302F:
	case 0x3031: case 0x3032: case 0x3033: case 0x3034: case 0x3035: case 0x303B:
		return -1;
	default:
		break;
	}
	if (uc >= 0x0660 && uc <= 0x0669)	/* A.8 */
		return ctx->ext_arabic_indic ? -1 : 0;
	if (uc >= 0x06F0 && uc <= 0x06F9)	/* A.9 */
		return ctx->arabic_indic ? -1 : 0;

	if (uc_is_general_category(uc, UC_CATEGORY_Cn) && !uc_is_property_not_a_character(uc)) {
		*error_r = "password contains an unassigned code point";
		return -1;
	}
	if (uc >= 0x21 && uc <= 0x7E)	/* ASCII7 */
		return 0;
	if (uc == 0x200C || uc == 0x200D) {
		/* CONTEXTJ, RFC 5892 A.1/A.2: after a virama (the ZWNJ
		 * joining-type rule is not implemented: refused). */
		return i > 0 && uc_combining_class(u[i - 1]) == UC_CCC_VR ? 0 : -1;
	}
	if (is_old_hangul_jamo(uc))
		return -1;
	if (uc_is_property_default_ignorable_code_point(uc) || uc_is_property_not_a_character(uc))
		return -1;
	if (uc_is_general_category(uc, UC_CATEGORY_Cc)) {
		*error_r = "password contains a control character";
		return -1;
	}
	/* HasCompat, LetterDigits, OtherLetterDigits, Spaces, Symbols,
	 * Punctuation: all valid in the FreeformClass. */
	if (uc_is_general_category(uc, UC_CATEGORY_L) || uc_is_general_category(uc, UC_CATEGORY_M) ||
	    uc_is_general_category(uc, UC_CATEGORY_N) || uc_is_general_category(uc, UC_CATEGORY_Zs) ||
	    uc_is_general_category(uc, UC_CATEGORY_S) || uc_is_general_category(uc, UC_CATEGORY_P))
		return 0;
	if (has_compat(uc))
		return 0;
	return -1;
}

int gn_precis_opaque(const char *in, size_t len, char **out_r, const char **error_r)
{
	*out_r = NULL;
	/* RFC 8265 4.2.1: a password is never empty. */
	if (len == 0) {
		*error_r = "password is empty";
		return -1;
	}
	if (u8_check((const uint8_t *)in, len) != NULL) {
		*error_r = "password is not valid UTF-8";
		return -1;
	}
	size_t n = len;
	uint32_t *u = gn_malloc(len * sizeof(uint32_t));
	if (u8_to_u32((const uint8_t *)in, len, u, &n) != u) {
		/* Cannot happen: the buffer is large enough. */
		gn_free(u);
		*error_r = "password is not valid UTF-8";
		return -1;
	}
	/* RFC 8265 4.2.2 rule 2: non-ASCII spaces become U+0020. */
	for (size_t i = 0; i < n; i++)
		if (u[i] != 0x20 && uc_is_general_category(u[i], UC_CATEGORY_Zs))
			u[i] = 0x20;
	/* Rule 4: NFC.  It never grows a string by more than three times. */
	size_t nn = 3 * n + 4;
	uint32_t *nbuf = gn_malloc(nn * sizeof(uint32_t));
	uint32_t *nfc = u32_normalize(UNINORM_NFC, u, n, nbuf, &nn);
	explicit_bzero(u, n * sizeof(uint32_t));
	gn_free(u);
	int ret = -1;
	char *out = NULL;
	if (nfc == NULL) {
		*error_r = "cannot normalise password";
		goto done;
	}
	if (nn == 0) {
		*error_r = "password is empty";
		goto done;
	}
	struct precis_ctx ctx;
	precis_ctx_init(&ctx, nfc, nn);
	for (size_t i = 0; i < nn; i++)
		if (freeform_check(&ctx, nfc, nn, i, error_r) < 0)
			goto done;
	size_t olen = 4 * nn;
	out = gn_malloc(olen + 1);
	if (u32_to_u8(nfc, nn, (uint8_t *)out, &olen) != (uint8_t *)out) {
		*error_r = "cannot encode password";
		goto done;
	}
	out[olen] = '\0';
	*out_r = out;
	out = NULL;
	ret = 0;
done:
	if (nfc != NULL) {
		explicit_bzero(nfc, nn * sizeof(uint32_t));
		if (nfc != nbuf)
			free(nfc);
	}
	explicit_bzero(nbuf, (3 * n + 4) * sizeof(uint32_t));
	gn_free(nbuf);
	gn_free(out);
	return ret;
}
