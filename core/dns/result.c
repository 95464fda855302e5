/*
 * core/dns/result.c: names and results of the resolver.
 *
 * A name is checked before it goes out (gn_dns_name_check()); a
 * libunbound result becomes a struct gn_dns_result of plain C values:
 * addresses as in_addr/in6_addr, MX sorted by preference, TXT strings
 * joined per record, names in lower case without the trailing dot.  The
 * records' data come from the network: every length is checked, and an
 * answer with a malformed record is a failure as a whole (fail closed;
 * libunbound has checked the rdata's form already, so this is the second
 * line).
 */
#include "dns/internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unbound.h>

#define DNS_MAX_NAME 253	/* RFC 1035 2.3.4: 255 octets on the wire */
#define DNS_MAX_LABEL 63

static const struct {
	int type;
	const char *name;
} types[] = {
	{ GN_DNS_A, "A" }, { GN_DNS_CNAME, "CNAME" }, { GN_DNS_PTR, "PTR" },
	{ GN_DNS_MX, "MX" }, { GN_DNS_TXT, "TXT" }, { GN_DNS_AAAA, "AAAA" },
	{ GN_DNS_TLSA, "TLSA" },
};

const char *gn_dns_type_name(int type)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].type == type)
			return types[i].name;
	return "?";
}

int dns_type_parse(const char *s)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(types[i].name, s) == 0)
			return types[i].type;
	return -1;
}

const char *gn_dns_status_name(int status)
{
	static const char *const names[] = {
		[GN_DNS_OK] = "OK", [GN_DNS_NODATA] = "NODATA",
		[GN_DNS_NXDOMAIN] = "NXDOMAIN", [GN_DNS_SERVFAIL] = "SERVFAIL",
		[GN_DNS_RCODE] = "RCODE", [GN_DNS_TIMEOUT] = "TIMEOUT",
		[GN_DNS_LIMIT] = "LIMIT", [GN_DNS_BADNAME] = "BADNAME",
		[GN_DNS_ERROR] = "ERROR",
	};
	if (status < 0 || (size_t)status >= sizeof(names) / sizeof(names[0]))
		return "?";
	return names[status];
}

const char *gn_dns_security_name(int security)
{
	switch (security) {
	case GN_DNS_INSECURE: return "insecure";
	case GN_DNS_SECURE: return "secure";
	case GN_DNS_BOGUS: return "bogus";
	default: return "?";
	}
}

/* ---- names ---- */

static bool is_label_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		c == '_';
}

int gn_dns_name_check(struct gn_pool *pool, const char *name,
		      const char **ascii_r, const char **error_r)
{
	size_t len = strlen(name);
	bool ascii = true;
	*ascii_r = NULL;
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0) {
		*error_r = "empty name";
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] >= 0x80)
			ascii = false;
	char *s;
	if (!ascii) {
		/* RFC 5891 4: U-labels go out as A-labels. */
		const char *a, *err;
		if (gn_addr_parse_domain(pool, name, len, &a, NULL, &err) < 0) {
			*error_r = gn_pool_printf(pool, "not a valid internationalised name: %s", err);
			return -1;
		}
		s = gn_pool_strdup(pool, a);
		len = strlen(s);
	} else {
		s = gn_pool_strndup(pool, name, len);
		for (size_t i = 0; i < len; i++)
			if (s[i] >= 'A' && s[i] <= 'Z')
				s[i] = (char)(s[i] - 'A' + 'a');
	}
	if (len > DNS_MAX_NAME) {
		*error_r = gn_pool_printf(pool, "name longer than %d characters", DNS_MAX_NAME);
		return -1;
	}
	size_t label = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (label == 0) {
				*error_r = "empty label";
				return -1;
			}
			label = 0;
			continue;
		}
		if (!is_label_char((unsigned char)s[i])) {
			*error_r = gn_pool_printf(pool, "character 0x%02x not allowed in a name",
						  (unsigned char)s[i]);
			return -1;
		}
		if (++label > DNS_MAX_LABEL) {
			*error_r = gn_pool_printf(pool, "label longer than %d characters",
						  DNS_MAX_LABEL);
			return -1;
		}
	}
	*ascii_r = s;
	return 0;
}

const char *dns_reverse_name(struct gn_pool *pool, const char *ip)
{
	unsigned char a[16];
	static const char hex[] = "0123456789abcdef";
	if (inet_pton(AF_INET, ip, a) == 1)
		/* RFC 1035 3.5 */
		return gn_pool_printf(pool, "%u.%u.%u.%u.in-addr.arpa",
				      a[3], a[2], a[1], a[0]);
	if (inet_pton(AF_INET6, ip, a) != 1)
		return NULL;
	/* RFC 3596 2.5: nibbles, lowest first. */
	struct gn_buf *b = gn_buf_new(0);
	for (int i = 15; i >= 0; i--)
		gn_buf_printf(b, "%c.%c.", hex[a[i] & 0xf], hex[a[i] >> 4]);
	gn_buf_append_str(b, "ip6.arpa");
	const char *s = gn_pool_strdup(pool, gn_buf_data(b));
	gn_buf_free(&b);
	return s;
}

/* ---- records ---- */

/* A domain name in wire form (RFC 1035 3.1) that fills data[0..len)
 * exactly (what follows it is the caller's: end_r), as lower-case text
 * without the trailing dot; the root is "".  Names in libunbound's
 * results are uncompressed; a pointer or a label with a dot, a space or a
 * control character is malformed here.  Returns NULL when malformed. */
static const char *wire_name(struct gn_pool *pool, const unsigned char *data,
			     size_t len, size_t *end_r)
{
	struct gn_buf *b = gn_buf_new(DNS_MAX_NAME + 2);
	size_t p = 0;
	const char *out = NULL;
	while (p < len) {
		size_t l = data[p++];
		if (l == 0) {
			out = gn_pool_strdup(pool, gn_buf_data(b));
			break;
		}
		if (l > DNS_MAX_LABEL || p + l > len)
			break;
		if (gn_buf_len(b) > 0 && gn_buf_append(b, ".", 1) < 0)
			break;
		bool bad = false;
		for (size_t i = 0; i < l && !bad; i++) {
			char c = (char)data[p + i];
			if ((unsigned char)c <= 0x20 || (unsigned char)c >= 0x7f || c == '.')
				bad = true;
			else if (c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			if (!bad && gn_buf_append(b, &c, 1) < 0)
				bad = true;
		}
		if (bad)
			break;
		p += l;
	}
	gn_buf_free(&b);
	if (out != NULL)
		*end_r = p;
	return out;
}

static int mx_cmp(const void *a, const void *b)
{
	const struct gn_dns_mx *x = a, *y = b;
	if (x->preference != y->preference)
		return x->preference < y->preference ? -1 : 1;
	return strcmp(x->host, y->host);
}

/* The records of r into res; -1 when one is malformed. */
static int parse_records(struct gn_pool *pool, int type, struct ub_result *r,
			 struct gn_dns_result *res)
{
	size_t n = 0;
	while (r->data != NULL && r->data[n] != NULL)
		n++;
	struct in_addr *a = NULL;
	struct in6_addr *aaaa = NULL;
	struct gn_dns_mx *mx = NULL;
	struct gn_dns_txt *txt = NULL;
	const char **names = NULL;
	struct gn_dns_tlsa *tlsa = NULL;
	size_t one = n > 0 ? n : 1;

	switch (type) {
	case GN_DNS_A: a = gn_pool_alloc(pool, one * sizeof(*a)); break;
	case GN_DNS_AAAA: aaaa = gn_pool_alloc(pool, one * sizeof(*aaaa)); break;
	case GN_DNS_MX: mx = gn_pool_alloc(pool, one * sizeof(*mx)); break;
	case GN_DNS_TXT: txt = gn_pool_alloc(pool, one * sizeof(*txt)); break;
	case GN_DNS_PTR: case GN_DNS_CNAME:
		names = gn_pool_alloc(pool, (n + 1) * sizeof(*names)); break;
	case GN_DNS_TLSA: tlsa = gn_pool_alloc(pool, one * sizeof(*tlsa)); break;
	default: return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const unsigned char *d = (const unsigned char *)r->data[i];
		size_t len = r->len[i] < 0 ? 0 : (size_t)r->len[i], end;
		switch (type) {
		case GN_DNS_A:	/* RFC 1035 3.4.1 */
			if (len != 4)
				return -1;
			memcpy(&a[i], d, 4);
			break;
		case GN_DNS_AAAA:	/* RFC 3596 2.2 */
			if (len != 16)
				return -1;
			memcpy(&aaaa[i], d, 16);
			break;
		case GN_DNS_MX:	/* RFC 1035 3.3.9 */
			if (len < 3)
				return -1;
			mx[i].preference = (unsigned)d[0] << 8 | d[1];
			mx[i].host = wire_name(pool, d + 2, len - 2, &end);
			if (mx[i].host == NULL || end != len - 2)
				return -1;
			break;
		case GN_DNS_PTR: case GN_DNS_CNAME:	/* RFC 1035 3.3.12, 3.3.1 */
			names[i] = wire_name(pool, d, len, &end);
			if (names[i] == NULL || end != len)
				return -1;
			break;
		case GN_DNS_TXT: {	/* RFC 1035 3.3.14: <character-string>+ */
			char *t = gn_pool_alloc(pool, len + 1);
			size_t p = 0, tl = 0;
			if (len == 0)
				return -1;
			while (p < len) {
				size_t l = d[p++];
				if (p + l > len)
					return -1;
				memcpy(t + tl, d + p, l);
				tl += l;
				p += l;
			}
			txt[i].text = t;
			txt[i].len = tl;
			break;
		}
		case GN_DNS_TLSA: {	/* RFC 6698 2.1 */
			if (len < 3)
				return -1;
			uint8_t *copy = gn_pool_alloc(pool, len - 3 + 1);
			memcpy(copy, d + 3, len - 3);
			tlsa[i].usage = d[0];
			tlsa[i].selector = d[1];
			tlsa[i].matching_type = d[2];
			tlsa[i].data = copy;
			tlsa[i].len = len - 3;
			break;
		}
		}
	}
	if (mx != NULL && n > 1)
		qsort(mx, n, sizeof(*mx), mx_cmp);
	res->n = n;
	res->a = a;
	res->aaaa = aaaa;
	res->mx = mx;
	res->txt = txt;
	res->names = names;
	res->tlsa = tlsa;
	return 0;
}

void dns_result_fail(struct gn_dns_result *res, const char *name, int type,
		     enum gn_dns_status status, const char *error)
{
	memset(res, 0, sizeof(*res));
	res->name = name;
	res->type = type;
	res->status = status;
	res->rcode = -1;
	res->security = GN_DNS_INSECURE;
	res->error = error;
}

/* Whether a and b name the same (case-insensitive, either may end in a dot). */
static bool same_name(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

void dns_result_parse(struct gn_pool *pool, const char *name, int type, int err,
		      struct ub_result *r, struct gn_dns_result *res)
{
	if (err != 0 || r == NULL) {
		dns_result_fail(res, name, type, GN_DNS_ERROR,
				gn_pool_printf(pool, "resolver: %s",
					       err != 0 ? ub_strerror(err) : "no result"));
		return;
	}
	dns_result_fail(res, name, type, GN_DNS_OK, NULL);
	res->rcode = r->rcode;
	res->ttl = r->ttl > 0 ? (unsigned)r->ttl : 0;
	res->security = r->bogus ? GN_DNS_BOGUS : r->secure ? GN_DNS_SECURE
		: GN_DNS_INSECURE;
	if (r->canonname != NULL && r->qname != NULL && !same_name(r->canonname, r->qname)) {
		char *c = gn_pool_strdup(pool, r->canonname);
		size_t l = strlen(c);
		if (l > 0 && c[l - 1] == '.')
			c[l - 1] = '\0';
		for (char *p = c; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		res->canonical = c;
	}
	if (r->bogus) {
		/* RFC 4035 5.5: a bogus answer is not given out. */
		res->status = GN_DNS_SERVFAIL;
		res->ttl = 0;
		res->error = gn_pool_strdup(pool, r->why_bogus != NULL ? r->why_bogus
					    : "DNSSEC validation failed");
		return;
	}
	switch (r->rcode) {
	case 0:
		res->status = r->havedata ? GN_DNS_OK : GN_DNS_NODATA;
		break;
	case 2:
		res->status = GN_DNS_SERVFAIL;
		res->error = "the server failed (SERVFAIL)";
		return;
	case 3:
		res->status = GN_DNS_NXDOMAIN;
		return;
	default:
		res->status = GN_DNS_RCODE;
		res->error = gn_pool_printf(pool, "the server answered rcode %d", r->rcode);
		return;
	}
	if (res->status == GN_DNS_OK && parse_records(pool, type, r, res) < 0) {
		dns_result_fail(res, name, type, GN_DNS_ERROR,
				gn_pool_printf(pool, "malformed %s record in the answer",
					       gn_dns_type_name(type)));
		res->rcode = r->rcode;
		return;
	}
	if (res->status == GN_DNS_OK && res->n == 0)
		res->status = GN_DNS_NODATA;
}
