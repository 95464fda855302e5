/*
 * t/unit/test_addr.c: addresses (core/mail/addr.c, gannet/addr.h): RFC 5321
 * addresses and paths, RFC 5322 address headers, normalisation (NFC
 * localparts, IDNA domains) so that one address compares equal however it
 * was written, catchall separators, canonical and display forms, lookup
 * folding, and PRECIS OpaqueString password preparation.
 */
#include "mail/internal.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static struct gn_pool *pool;

/* The canonical form of s, or "ERR: <error>". */
static const char *canon_n(const char *s, size_t len)
{
	struct gn_addr *a;
	const char *error = NULL;
	if (gn_addr_parse(pool, s, len, &a, &error) < 0)
		return gn_pool_printf(pool, "ERR: %s", error);
	return gn_addr_to_string(pool, a);
}

static const char *canon(const char *s)
{
	return canon_n(s, strlen(s));
}

static struct gn_addr *parse(const char *s)
{
	struct gn_addr *a = NULL;
	const char *error = NULL;
	if (gn_addr_parse(pool, s, strlen(s), &a, &error) < 0) {
		diag("parse '%s': %s", s, error);
		return NULL;
	}
	return a;
}

static bool same(const char *x, const char *y)
{
	struct gn_addr *a = parse(x), *b = parse(y);
	return a != NULL && b != NULL && gn_addr_equal(a, b);
}

/* "<ret> <canonical>" or "ERR: <error>"; *used gets used_r. */
static const char *path_u(const char *s, unsigned flags, size_t *used)
{
	struct gn_addr *a = NULL;
	const char *error = NULL;
	int r = gn_addr_parse_path(pool, s, strlen(s), flags, &a, used, &error);
	if (r < 0)
		return gn_pool_printf(pool, "ERR: %s", error);
	return gn_pool_printf(pool, "%d %s", r, a == NULL ? "(null)" : gn_addr_to_string(pool, a));
}

static const char *path(const char *s, unsigned flags)
{
	return path_u(s, flags, NULL);
}

/* The items of a header as one line: `name <addr>` per mailbox, `!error`
 * for a failed one, `group:` and `;` for groups, separated by " | ". */
static const char *header_n(const char *v, size_t len, int *ret)
{
	struct gn_addr_list list;
	const char *error = NULL;
	int r = gn_addr_parse_header(pool, v, len, &list, &error);
	if (ret != NULL)
		*ret = r;
	if (r < 0 && error == NULL)
		return "no error string";
	struct gn_buf *buf = gn_buf_new(0);
	for (size_t i = 0; i < list.count; i++) {
		const struct gn_addr_item *it = list.items[i];
		const char *x;
		switch (it->kind) {
		case GN_ADDR_GROUP_START:
			x = gn_pool_printf(pool, "%s:", it->name);
			break;
		case GN_ADDR_GROUP_END:
			x = ";";
			break;
		default:
			if (it->addr == NULL)
				x = gn_pool_printf(pool, "!%s", it->error);
			else if (*it->name != '\0')
				x = gn_pool_printf(pool, "%s <%s>", it->name, gn_addr_to_string(pool, it->addr));
			else
				x = gn_addr_to_string(pool, it->addr);
			break;
		}
		gn_buf_printf(buf, "%s%s", i ? " | " : "", x);
	}
	char *out = gn_pool_strdup(pool, gn_buf_data(buf));
	gn_buf_free(&buf);
	return out;
}

static const char *header(const char *v)
{
	return header_n(v, strlen(v), NULL);
}

static const char *precis_n(const char *s, size_t len)
{
	char *out = NULL;
	const char *error = NULL;
	if (gn_precis_opaque(s, len, &out, &error) < 0)
		return gn_pool_printf(pool, "ERR: %s", error);
	const char *r = gn_pool_strdup(pool, out);
	gn_free(out);
	return r;
}

static const char *precis(const char *s)
{
	return precis_n(s, strlen(s));
}

static char *repeat(const char *s, int n)
{
	size_t len = strlen(s);
	char *out = gn_pool_alloc(pool, len * (size_t)n + 1);
	for (int i = 0; i < n; i++)
		memcpy(out + len * (size_t)i, s, len);
	return out;
}

static void test_plain(void)
{
	is_str(canon("user@example.com"), "user@example.com", "a simple address is its own canonical form");
	is_str(canon("John.Doe@Example.COM"), "John.Doe@example.com",
	       "the domain is lower-cased, the localpart keeps its case (RFC 5321 2.4)");
	is_str(canon("a!#$%&'*+-/=?^_`{|}~z@x.example"), "a!#$%&'*+-/=?^_`{|}~z@x.example",
	       "every atext character is allowed unquoted");
	is_str(canon("user@localhost"), "user@localhost", "a single-label domain is accepted");
	is_str(canon(""), "ERR: empty address", "empty input is refused");
	is_str(canon("userexample.com"), "ERR: missing @ in address", "an address without @ is refused");
	is_str(canon("@example.com"), "ERR: empty localpart", "an empty localpart is refused");
	is_str(canon("user@"), "ERR: missing domain", "a missing domain is refused");
	is_str(canon("a@b@example.com"), "ERR: invalid character in domain", "two @ are refused");
	is_str(canon("user @example.com"), "ERR: invalid character in localpart", "a space in a dot-string is refused");
	is_str(canon("<user@example.com>"), "ERR: invalid character in localpart", "angle brackets are not part of an address");
}

static void test_quoted(void)
{
	is_str(canon("\"john doe\"@example.com"), "\"john doe\"@example.com",
	       "a quoted localpart with a space stays quoted");
	is_str(canon("\"john\"@example.com"), "john@example.com", "needless quotes are removed in canonical form");
	ok(same("\"john\"@example.com", "john@example.com"), "quoted and unquoted forms of one localpart are equal");
	struct gn_addr *a = parse("\"a\\\"b\"@example.com");
	is_str(a ? a->localpart : NULL, "a\"b", "an escaped quote is part of the localpart's value");
	is_str(canon("\"a\\\"b\"@example.com"), "\"a\\\"b\"@example.com", "a quote in the localpart is escaped in canonical form");
	is_str(canon("\"a\\\\b\"@example.com"), "\"a\\\\b\"@example.com", "a backslash is escaped in canonical form");
	is_str(canon("\"a\\b\"@example.com"), "ab@example.com", "a needless quoted-pair is resolved");
	is_str(canon("\"a@b\"@example.com"), "\"a@b\"@example.com", "an @ inside quotes belongs to the localpart");
	is_str(canon("\"\"@example.com"), "\"\"@example.com", "the empty quoted localpart is accepted");
	is_str(canon("\"abc@example.com"), "ERR: unterminated quoted string", "an unterminated quoted string is refused");
	is_str(canon("\"a\tb\"@example.com"), "ERR: invalid character in localpart", "a tab in a quoted localpart is refused");
	is_str(canon("\"a\\\nb\"@example.com"), "ERR: invalid character in localpart", "an escaped line feed is refused");
	is_str(canon("a..b@docomo.ne.jp"), "\"a..b\"@docomo.ne.jp", "doubled dots are accepted and quoted in canonical form");
	is_str(canon(".a.@docomo.ne.jp"), "\".a.\"@docomo.ne.jp", "leading and trailing dots are accepted and quoted");
	ok(same("\"a..b\"@docomo.ne.jp", "a..b@docomo.ne.jp"), "the lenient dot-string equals its quoted form");
}

static void test_controls(void)
{
	is_str(canon_n("a\0b@example.com", 15), "ERR: invalid character in localpart", "a NUL in the localpart is refused");
	is_str(canon_n("ab@exa\0mple.com", 15), "ERR: invalid character in domain", "a NUL in the domain is refused");
	is_str(canon_n("\"a\0b\"@example.com", 17), "ERR: invalid character in localpart", "a NUL in a quoted localpart is refused");
	is_str(canon("a\nb@example.com"), "ERR: invalid character in localpart", "a bare LF in the localpart is refused");
	is_str(canon("\"a\nb\"@example.com"), "ERR: invalid character in localpart", "a bare LF in a quoted localpart is refused");
	is_str(canon("ab@example.com\n"), "ERR: invalid character in domain", "a bare LF after the domain is refused");
	is_str(canon("a\rb@example.com"), "ERR: invalid character in localpart", "a CR is refused");
	is_str(canon("\"a\x7f\"@example.com"), "ERR: invalid character in localpart", "DEL is refused");
	is_str(canon("\"a\xc2\x85\"@example.com"), "ERR: invalid character in localpart", "a C1 control (NEL) is refused");
	is_str(canon("\xe9t\xe9@example.com"), "ERR: invalid UTF-8 in localpart", "a Latin-1 localpart is refused");
	is_str(canon("\xc3@example.com"), "ERR: invalid UTF-8 in localpart", "a truncated UTF-8 sequence is refused");
	is_str(canon("a@\xff.example"), "ERR: invalid UTF-8 in domain", "invalid UTF-8 in the domain is refused");
	is_str(canon("a@\xed\xa0\x80.example"), "ERR: invalid UTF-8 in domain", "a UTF-8 surrogate is refused");
}

static void test_nfc(void)
{
	const char *nfc = "\xc3\xa9lodie@example.com";	/* é precomposed */
	const char *nfd = "e\xcc\x81lodie@example.com";	/* e + U+0301 */
	struct gn_addr *a = parse(nfd);
	is_str(a ? a->localpart : NULL, "\xc3\xa9lodie", "a decomposed localpart is normalised to NFC");
	ok(same(nfc, nfd), "é precomposed and decomposed give equal addresses");
	is_str(canon(nfd), nfc, "the canonical form of an NFD localpart is NFC");
	ok(same("\"e\xcc\x81lodie\"@example.com", nfc), "a quoted NFD localpart equals the NFC one");
	ok(!same("Elodie@example.com", "elodie@example.com"), "localparts differing in case are different addresses");
	a = parse("\xe7\x94\xb0\xe4\xb8\xad@\xe4\xbe\x8b\xe3\x81\x88.\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88");
	ok(a != NULL && gn_addr_needs_smtputf8(a), "a Japanese address parses and needs SMTPUTF8");
	is_str(a ? a->domain : NULL, "xn--r8jz45g.xn--zckzah", "its domain is stored as A-labels");
	a = parse("user@b\xc3\xbc" "cher.example");
	ok(a != NULL && !gn_addr_needs_smtputf8(a), "an ASCII localpart at an IDN domain does not need SMTPUTF8");
}

static void test_idna(void)
{
	const char *forms[] = {
		"user@b\xc3\xbc" "cher.example",
		"user@xn--bcher-kva.example",
		"user@B\xc3\x9c" "CHER.EXAMPLE",
		"user@XN--BCHER-KVA.Example",
		"user@bu\xcc\x88" "cher.example",	/* NFD */
		"user@b\xc3\xbc" "cher\xe3\x80\x82" "example",	/* ideographic full stop */
	};
	struct gn_addr *first = parse(forms[0]);
	is_str(first ? first->domain : NULL, "xn--bcher-kva.example", "a Unicode domain is stored as A-labels");
	is_str(first ? first->domain_utf8 : NULL, "b\xc3\xbc" "cher.example", "the U-label form is kept for display");
	is_str(first ? gn_addr_to_display(pool, first) : NULL, "user@b\xc3\xbc" "cher.example", "the display form uses U-labels");
	is_str(first ? gn_addr_to_string(pool, first) : NULL, "user@xn--bcher-kva.example", "the canonical form uses A-labels");
	for (size_t i = 1; i < sizeof(forms) / sizeof(forms[0]); i++) {
		struct gn_addr *a = parse(forms[i]);
		ok(first != NULL && a != NULL && gn_addr_equal(first, a), "domain form %zu equals the Unicode form", i);
		is_str(a ? a->domain_utf8 : NULL, "b\xc3\xbc" "cher.example", "domain form %zu displays as bücher.example", i);
	}
	is_str(canon("a@fa\xc3\x9f.de"), "a@xn--fa-hia.de", "IDNA2008 non-transitional: ß stays ß (not fass.de)");
	like(canon("a@xn--zz-zzzz.example"), "ERR: invalid internationalised domain name", "invalid punycode is refused");
	is_str(canon("a@xn--.example"), "ERR: domain label starts or ends with a hyphen", "an empty punycode label is refused");
	like(canon("a@xn--abc.example"), "ERR: invalid internationalised domain name", "an A-label decoding to a disallowed character is refused");
	like(canon("a@xn--ls8h.la"), "ERR: invalid internationalised domain name", "an emoji domain (not IDNA2008) is refused");
	/* Found by fuzz_addr: valid punycode of characters IDNA2008
	 * disallows (U+323C, U+323C, U+3235), accepted as an A-label while
	 * the same domain typed in Unicode was refused. */
	like(canon("us@xn--unkna.dx"), "ERR: invalid internationalised domain name",
	     "an A-label of characters IDNA2008 disallows is refused, as its U-label is");
	like(canon("us@\xe3\x88\xbc\xe3\x88\xbc\xe3\x88\xb5.dx"), "ERR: invalid internationalised domain name",
	     "(and the U-label)");
	like(canon("a@\xe2\x80\x8d.example"), "ERR: invalid internationalised domain name", "a ZWJ label is refused");
	is_str(canon("a@exa_mple.com"), "ERR: invalid character in domain", "an underscore in the domain is refused");
	is_str(canon("a@-example.com"), "ERR: domain label starts or ends with a hyphen", "a leading hyphen is refused");
	is_str(canon("a@example-.com"), "ERR: domain label starts or ends with a hyphen", "a trailing hyphen is refused");
	is_str(canon("a@example..com"), "ERR: empty label in domain", "an empty label is refused");
	is_str(canon("a@example.com."), "ERR: empty label in domain", "a trailing dot is refused");
	is_str(canon("a@.example.com"), "ERR: empty label in domain", "a leading dot is refused");
	char *label63 = repeat("a", 63);
	is_str(canon(gn_pool_printf(pool, "a@%s.com", label63)), gn_pool_printf(pool, "a@%s.com", label63),
	       "a 63-octet label is accepted");
	is_str(canon(gn_pool_printf(pool, "a@%sa.com", label63)), "ERR: domain label too long", "a 64-octet label is refused");
	char *dom = gn_pool_printf(pool, "%s.%s.%s.%s", label63, label63, label63, repeat("b", 61));
	is_int((long long)strlen(dom), 253, "test domain has 253 octets");
	struct gn_addr *a = NULL;
	const char *error = NULL, *ascii = NULL, *utf8 = NULL;
	ok(gn_addr_parse_domain(pool, dom, strlen(dom), &ascii, NULL, &error) == 0, "a 253-octet domain is accepted");
	char *dom256 = gn_pool_printf(pool, "%s.%s.%s.%s", label63, label63, label63, repeat("b", 64));
	ok(gn_addr_parse_domain(pool, dom256, strlen(dom256), &ascii, NULL, &error) < 0, "a 256-octet domain is refused");
	like(error, "domain", "with an error about the domain (%s)", error);
	is_str(canon(gn_pool_printf(pool, "%s@%s", repeat("x", 64), dom)), "ERR: address too long",
	       "an address over 254 octets is refused");
	(void)a;

	ok(gn_addr_parse_domain(pool, "B\xc3\xbc" "cher.Example", 15, &ascii, &utf8, &error) == 0,
	   "gn_addr_parse_domain takes a Unicode domain");
	is_str(ascii, "xn--bcher-kva.example", "and gives its A-labels");
	is_str(utf8, "b\xc3\xbc" "cher.example", "and its U-labels");
	ok(gn_addr_parse_domain(pool, "[1.2.3.4]", 9, &ascii, &utf8, &error) < 0, "gn_addr_parse_domain refuses a literal");
	is_str(error, "address literal not allowed here", "with a clear error");
	ok(gn_addr_parse_domain(pool, "", 0, &ascii, &utf8, &error) < 0, "gn_addr_parse_domain refuses an empty domain");
}

static void test_literals(void)
{
	is_str(canon("a@[192.0.2.1]"), "a@[192.0.2.1]", "an IPv4 address literal is accepted");
	is_str(canon("a@[IPv6:2001:DB8:0:0:0::1]"), "a@[IPv6:2001:db8::1]", "an IPv6 literal is written in canonical form");
	is_str(canon("a@[ipv6:::1]"), "a@[IPv6:::1]", "the IPv6 tag is case-insensitive");
	ok(same("a@[IPv6:2001:db8::1]", "a@[IPv6:2001:0db8:0000::0001]"), "equal IPv6 literals compare equal");
	is_str(canon("a@[192.0.2]"), "ERR: invalid IPv4 address literal", "a short IPv4 literal is refused");
	is_str(canon("a@[300.0.2.1]"), "ERR: invalid IPv4 address literal", "an IPv4 octet over 255 is refused");
	is_str(canon("a@[IPv6:1::2::3]"), "ERR: invalid IPv6 address literal", "a bad IPv6 literal is refused");
	is_str(canon("a@[x-tag:foo]"), "ERR: unsupported address literal", "a general address literal is refused");
	is_str(canon("a@[192.0.2.1"), "ERR: unterminated address literal", "an unterminated literal is refused");
	is_str(canon("a@[192.0.2.1]x"), "ERR: unexpected text after address", "text after a literal is refused");
	is_str(canon("a@[192.0.2.1 ]"), "ERR: invalid character in address literal", "a space in a literal is refused");
}

static void test_localpart_limits(void)
{
	char *a64 = repeat("a", 64);
	is_str(canon(gn_pool_printf(pool, "%s@example.com", a64)), gn_pool_printf(pool, "%s@example.com", a64),
	       "a 64-octet localpart is accepted");
	is_str(canon(gn_pool_printf(pool, "%sa@example.com", a64)), "ERR: localpart too long",
	       "a 65-octet localpart is refused (RFC 5321 4.5.3.1.1)");
	is_str(canon(gn_pool_printf(pool, "\"%s b\"@example.com", repeat("a", 61))), "ERR: localpart too long",
	       "a localpart that needs quotes counts them (63 octets + 2 quotes)");
	is_str(canon(gn_pool_printf(pool, "%s@example.com", repeat("\xc3\xa9", 32))),
	       gn_pool_printf(pool, "%s@example.com", repeat("\xc3\xa9", 32)), "32 é (64 octets) are accepted");
	is_str(canon(gn_pool_printf(pool, "%s@example.com", repeat("\xc3\xa9", 33))), "ERR: localpart too long",
	       "33 é (66 octets) are refused");
	is_str(canon(gn_pool_printf(pool, "%s@example.com", repeat("e\xcc\x81", 30))),
	       gn_pool_printf(pool, "%s@example.com", repeat("\xc3\xa9", 30)),
	       "the limit applies after NFC: 30 decomposed é (90 octets) become 60");
	is_str(canon(gn_pool_printf(pool, "%s@example.com", repeat("a", 100000))), "ERR: localpart too long",
	       "a huge localpart is refused");
	is_str(canon(gn_pool_printf(pool, "a@%s", repeat("a.", 50000))), "ERR: domain too long", "a huge domain is refused");
}

static void test_paths(void)
{
	size_t used = 0;
	is_str(path("<user@example.com>", 0), "1 user@example.com", "a forward path");
	is_str(path("<>", GN_ADDR_PATH_NULL), "0 (null)", "the null reverse path gives 0");
	is_str(path("<>", 0), "ERR: null path not allowed", "the null path is refused where not allowed");
	is_str(path("<@a.example,@b.example:user@example.com>", 0), "1 user@example.com",
	       "a source route is accepted and ignored (RFC 5321 4.1.1.3)");
	is_str(path("<@[192.0.2.1]:user@example.com>", 0), "1 user@example.com", "a source route with a literal");
	is_str(path("<@a.example user@example.com>", 0), "ERR: invalid source route", "a broken source route is refused");
	is_str(path("<@a.example,user@example.com>", 0), "ERR: invalid source route", "a route element without @ is refused");
	is_str(path("<Postmaster>", GN_ADDR_PATH_POSTMASTER), "2 postmaster", "<Postmaster> without domain gives 2");
	is_str(path("<pOsTmAsTeR>", GN_ADDR_PATH_POSTMASTER), "2 postmaster", "postmaster is case-insensitive");
	is_str(path("<Postmaster>", 0), "ERR: missing @ in address", "a bare postmaster is refused where not allowed");
	is_str(path("<root>", GN_ADDR_PATH_POSTMASTER), "ERR: missing @ in address", "only postmaster may lack a domain");
	is_str(path("<Postmaster@Example.com>", GN_ADDR_PATH_POSTMASTER), "1 Postmaster@example.com",
	       "postmaster with a domain is an ordinary address");
	is_str(path("<user@example.com", 0), "ERR: missing > at the end of the path", "a missing > is refused");
	is_str(path("user@example.com", 0), "ERR: path must be enclosed in < >", "a path without brackets is refused");
	is_str(path("user@example.com", GN_ADDR_PATH_NO_BRACKETS), "1 user@example.com", "unless allowed");
	is_str(path_u("user@example.com SIZE=10", GN_ADDR_PATH_NO_BRACKETS, &used), "1 user@example.com",
	       "a path without brackets ends at a space");
	is_int((long long)used, 16, "and used_r counts the path only");
	is_str(path_u("<user@example.com> SIZE=100", 0, &used), "1 user@example.com", "parameters may follow the path");
	is_int((long long)used, 18, "used_r ends after the >");
	is_str(path_u("<\"a> b\"@example.com> BODY=8BITMIME", 0, &used), "1 \"a> b\"@example.com",
	       "a > inside a quoted localpart does not end the path");
	is_int((long long)used, 20, "used_r skips the quoted >");
	is_str(path_u("<> SIZE=1", GN_ADDR_PATH_NULL, &used), "0 (null)", "the null path with parameters");
	is_int((long long)used, 2, "used_r for the null path");
	is_str(path("<user@example.com> SIZE=100", 0), "ERR: unexpected text after path",
	       "without used_r the path must be all of the input");
	is_str(path("<user@example.com >", 0), "ERR: invalid character in domain", "a space before > is refused");
	is_str(path("< user@example.com>", 0), "ERR: invalid character in localpart", "a space after < is refused");
	is_str(path("<user@exa\nmple.com>", 0), "ERR: invalid character in domain", "a bare LF in a path is refused");
	is_str(path("<us\0er@example.com>", 0), "ERR: missing @ in address", "a NUL ends the input of a C string path");
	struct gn_addr *a;
	const char *error;
	ok(gn_addr_parse_path(pool, "<us\0er@example.com>", 19, 0, &a, NULL, &error) < 0, "a NUL inside a path is refused");
	is_str(path("<\xc3\xa9@example.com>", GN_ADDR_PATH_ASCII), "ERR: non-ASCII address without SMTPUTF8",
	       "a UTF-8 localpart needs SMTPUTF8");
	is_str(path("<a@b\xc3\xbc" "cher.example>", GN_ADDR_PATH_ASCII), "ERR: non-ASCII address without SMTPUTF8",
	       "a UTF-8 domain needs SMTPUTF8");
	is_str(path("<e\xcc\x81@b\xc3\xbc" "cher.example>", 0), "1 \xc3\xa9@xn--bcher-kva.example",
	       "with SMTPUTF8 the path is normalised");
	char *route = gn_pool_printf(pool, "<@%s.example:a@example.com>", repeat("r", 240));
	is_str(path(route, 0), "ERR: path too long", "a path over 256 octets is refused (RFC 5321 4.5.3.1.3)");
	char *label63 = repeat("d", 63);
	char *dom = gn_pool_printf(pool, "%s.%s.%s.%s", label63, label63, label63, repeat("e", 61));
	char *p254 = gn_pool_printf(pool, "<%s@%s>", "x", dom);
	is_int((long long)strlen(p254), 257, "test path has 257 octets");
	like(path(p254, 0), "ERR: ", "and is refused");
	is_str(path("", 0), "ERR: empty path", "an empty path is refused");
	is_str(path("<", 0), "ERR: empty address", "a lone < is refused");
	is_str(path("<@", 0), "ERR: missing domain", "a lone <@ is refused");
}

static void test_canonical(void)
{
	const char *c = NULL, *error = NULL;
	is_int(gn_addr_is_canonical(pool, "user@example.com", &c, &error), 1, "a canonical address is recognised");
	is_int(gn_addr_is_canonical(pool, "User@Example.com", &c, &error), 0, "an upper-case domain is not canonical");
	is_str(c, "User@example.com", "the canonical form is given");
	is_int(gn_addr_is_canonical(pool, "\"user\"@example.com", &c, &error), 0, "needless quotes are not canonical");
	is_str(c, "user@example.com", "the canonical form drops them");
	is_int(gn_addr_is_canonical(pool, "user@b\xc3\xbc" "cher.example", &c, &error), 0, "a U-label domain is not canonical");
	is_str(c, "user@xn--bcher-kva.example", "the canonical form has A-labels");
	is_int(gn_addr_is_canonical(pool, "e\xcc\x81@example.com", &c, &error), 0, "an NFD localpart is not canonical");
	is_int(gn_addr_is_canonical(pool, "\xc3\xa9@example.com", &c, &error), 1, "an NFC localpart is");
	is_int(gn_addr_is_canonical(pool, "not an address", &c, &error), -1, "a non-address gives -1");
	ok(error != NULL, "with an error");
}

static void test_fold(void)
{
	struct gn_addr *a = parse("John.Doe@example.com");
	struct gn_addr *f = a ? gn_addr_fold(pool, a) : NULL;
	is_str(f ? gn_addr_to_string(pool, f) : NULL, "john.doe@example.com", "folding lower-cases the localpart");
	is_str(a ? a->localpart : NULL, "John.Doe", "and leaves the original alone");
	a = parse("john@example.com");
	ok(a != NULL && gn_addr_fold(pool, a) == a, "an address already in lower case is returned as is");
	a = parse("\xc3\x89LODIE@example.com");
	f = a ? gn_addr_fold(pool, a) : NULL;
	is_str(f ? f->localpart : NULL, "\xc3\xa9lodie", "non-ASCII letters are lower-cased");
	a = parse("STRA\xc3\x9f" "E@example.com");
	f = a ? gn_addr_fold(pool, a) : NULL;
	is_str(f ? f->localpart : NULL, "stra\xc3\x9f" "e", "ß stays ß (lower-casing, not case folding)");
	a = parse("\"John Doe\"@example.com");
	f = a ? gn_addr_fold(pool, a) : NULL;
	is_str(f ? gn_addr_to_string(pool, f) : NULL, "\"john doe\"@example.com", "a quoted localpart folds too");
}

static const char *strip(const char *s, const char *seps)
{
	struct gn_addr *a = parse(s);
	if (a == NULL)
		return "parse error";
	return gn_addr_to_string(pool, gn_addr_strip_catchall(pool, a, seps));
}

static void test_catchall(void)
{
	is_str(strip("user+tag@example.com", "+"), "user@example.com", "user+tag delivers to user");
	is_str(strip("user+tag+more@example.com", "+"), "user@example.com", "cut at the first separator");
	is_str(strip("user-tag@example.com", "+"), "user-tag@example.com", "another separator is not one");
	is_str(strip("user-a+b@example.com", "+-"), "user@example.com", "with several separators, the first occurrence of any");
	is_str(strip("user+a-b@example.com", "+-"), "user@example.com", "in either order");
	is_str(strip("+tag@example.com", "+"), "+tag@example.com", "an empty base is not stripped");
	is_str(strip("user@example.com", "+"), "user@example.com", "no separator, no change");
	is_str(strip("user+tag@example.com", ""), "user+tag@example.com", "no separators configured, no change");
	is_str(strip("user+tag@example.com", NULL), "user+tag@example.com", "NULL separators, no change");
	is_str(strip("\"john doe+x\"@example.com", "+"), "\"john doe\"@example.com", "a quoted localpart is stripped by value");
	is_str(strip("user.+tag@example.com", "+"), "\"user.\"@example.com", "the base is quoted when it needs it");
	is_str(strip("j\xc3\xbcrgen\xc2\xa7tag@example.com", "\xc2\xa7"), "j\xc3\xbcrgen@example.com",
	       "a non-ASCII separator works by code point");
	is_str(strip("a\xc2\xa7" "b@example.com", "\xc2\xa9"), "a\xc2\xa7" "b@example.com",
	       "UTF-8 bytes shared by different code points do not match");
	struct gn_addr *a = parse("user@example.com");
	ok(a != NULL && gn_addr_strip_catchall(pool, a, "+") == a, "an unchanged address is returned as is");
}

static void test_from_parts(void)
{
	struct gn_addr *a = NULL;
	const char *error = NULL;
	ok(gn_addr_from_parts(pool, "e\xcc\x81", "B\xc3\x9c" "CHER.example", &a, &error) == 0, "from parts: NFD and Unicode");
	struct gn_addr *b = parse("\xc3\xa9@xn--bcher-kva.example");
	ok(a != NULL && b != NULL && gn_addr_equal(a, b), "equals the parsed canonical address");
	ok(gn_addr_from_parts(pool, "john doe", "example.com", &a, &error) == 0, "a localpart value with a space");
	is_str(a ? gn_addr_to_string(pool, a) : NULL, "\"john doe\"@example.com", "is quoted in canonical form");
	ok(gn_addr_from_parts(pool, "a\nb", "example.com", &a, &error) < 0, "a control character in the value is refused");
	is_str(error, "invalid character in localpart", "with a clear error");
	ok(gn_addr_from_parts(pool, "a", "exa mple.com", &a, &error) < 0, "a bad domain is refused");
	is_str(error, "invalid character in domain", "with a clear error");
}

static void test_header(void)
{
	int r;
	is_str(header("\"Doe, John\" <john@example.com>, jane@example.com (Jane Roe)"),
	       "Doe, John <john@example.com> | Jane Roe <jane@example.com>",
	       "a quoted display name with a comma and an old-style comment name");
	is_str(header("John Q. Public <jqp@example.com>"), "John Q. Public <jqp@example.com>",
	       "periods in a display name (obs-phrase)");
	is_str(header("John (the man) Doe <j@example.com> (trailing)"), "John Doe <j@example.com>",
	       "comments are dropped from display names");
	is_str(header("undisclosed-recipients:;"), "undisclosed-recipients: | ;", "an empty group");
	is_str(header("Team: a@example.com, \"B\" <b@example.com>; c@example.com"),
	       "Team: | a@example.com | B <b@example.com> | ; | c@example.com", "a group and a mailbox after it");
	is_str(header("G: a@example.com"), "G: | a@example.com | ;", "a group missing its ; is closed at the end");
	is_str(header("=?UTF-8?B?SsO8cmdlbg==?= <j@example.com>"), "J\xc3\xbcrgen <j@example.com>",
	       "an encoded-word display name is decoded");
	is_str(header("\"=?ISO-8859-1?Q?J=FCrgen_M?=\" <j@example.com>"), "J\xc3\xbcrgen M <j@example.com>",
	       "an encoded word inside quotes is decoded as mailers expect");
	is_str(header("=?UTF-8?Q?Team?= =?UTF-8?Q?_One?=: a@example.com;"), "Team One: | a@example.com | ;",
	       "a group name is decoded");
	is_str(header("J\xc3\xbcrgen <j\xc3\xbcrgen@b\xc3\xbc" "cher.example>"),
	       "J\xc3\xbcrgen <j\xc3\xbcrgen@xn--bcher-kva.example>", "UTF-8 in display name and address (RFC 6532)");
	is_str(header("J\xfcrgen <j@example.com>"), "J\xef\xbf\xbdrgen <j@example.com>",
	       "a Latin-1 display name becomes U+FFFD, the address still parses");
	is_str(header("<@relay.example,@other.example:u@example.com>"), "u@example.com", "obs-route in an angle address");
	is_str(header("john . doe @ example . com"), "john.doe@example.com", "white space around dots (obs-local-part, obs-domain)");
	is_str(header("\"john\".doe@example.com"), "john.doe@example.com", "a quoted word in a dotted localpart");
	is_str(header("\"a\\\"b c\"@example.com"), "\"a\\\"b c\"@example.com", "a quoted localpart with escapes");
	is_str(header("a@example.com,,b@example.com,"), "a@example.com | b@example.com", "empty list elements");
	is_str(header("a@b.example <a@b.example>"), "a@b.example <a@b.example>", "unquoted @ in a display name, leniently");
	is_str(header(gn_pool_printf(pool, "a@example.com (%s)", repeat("n", 2000))),
	       gn_pool_printf(pool, "%s <a@example.com>", repeat("n", 2000)), "a long old-style comment name");
	is_str(header("a@example.com (a (nested) comment)"), "a (nested) comment <a@example.com>", "nested comments");
	is_str(header("a@example.com,\r\n\tb@example.com"), "a@example.com | b@example.com", "a folded header");
	is_str(header("\"Long\r\n Name\" <a@example.com>"), "Long Name <a@example.com>", "a folded quoted string");
	is_str(header("a@example.com\r\n"), "a@example.com", "a trailing line break");
	is_str(header("e\xcc\x81@example.com"), "\xc3\xa9@example.com", "an NFD localpart in a header is NFC");
	is_str(header(""), "", "an empty header has no items");
	is_str(header("   "), "", "a blank header has no items");
	is_str(header("a@[192.0.2.1]"), "a@[192.0.2.1]", "a domain literal in a header");

	is_str(header_n("good@example.com, bad@, also@example.com", 40, &r),
	       "good@example.com | !missing domain | also@example.com", "one bad address does not hide the others");
	is_int(r, -1, "but the result says one failed");
	header_n("a@example.com, b@example.com", 28, &r);
	is_int(r, 0, "all good gives 0");
	is_str(header("a@example.com,\nb@example.com"), "a@example.com | !line break in address",
	       "a bare LF (not a fold) invalidates its mailbox");
	is_str(header_n("a\0b@example.com, c@example.com", 30, &r), "!invalid character in address | c@example.com",
	       "a NUL invalidates its mailbox");
	is_str(header("\"abc <a@example.com>"), "!unterminated quoted string", "an unterminated quoted string");
	is_str(header("(abc a@example.com"), "!unterminated comment", "an unterminated comment");
	is_str(header_n("\"a\\\0b\" <a@example.com>", 22, &r), "!invalid character in address", "an escaped NUL");
	is_str(header("a@example.com,\n\n\n\nb@example.com"), "a@example.com | !line break in address",
	       "a run of line breaks");
	char *lfs = gn_pool_printf(pool, "%sx", repeat("\n", 200000));
	is_str(header(lfs), "!line break in address", "200000 line feeds are one bad mailbox, quickly");
	is_str(header("Name <a@example.com"), "!missing > after address", "a missing >");
	is_str(header("Name <a@example.com> junk"), "!unexpected text after address", "text after the angle address");
	is_str(header("<>"), "!empty address", "an empty angle address");
	is_str(header("John"), "!missing @ in address", "a bare word");
	is_str(header("John Doe@example.com"), "!invalid localpart", "two words without a dot");
	is_str(header("a@exa mple.com"), "!invalid character in domain", "a space inside a domain");
	is_str(header("a@xn--zz-zzzz.example"), "!invalid internationalised domain name (string contains invalid punycode data)",
	       "invalid punycode in a header");
	is_str(header(gn_pool_printf(pool, "%s@example.com", repeat("a", 65))), "!localpart too long", "an overlong localpart");

	struct gn_addr_list list;
	const char *error;
	const char *v = " \"A \\\"B\\\"\" (c) <a@example.com> ";
	gn_addr_parse_header(pool, v, strlen(v), &list, &error);
	ok(list.count == 1, "one item");
	if (list.count == 1) {
		is_str(list.items[0]->name_raw, "A \"B\"", "name_raw is unquoted");
		is_str(list.items[0]->text, "\"A \\\"B\\\"\" (c) <a@example.com>", "text is the mailbox as written, trimmed");
		ok(list.items[0]->group == NULL, "outside a group");
	}
	v = "=?UTF-8?Q?Gr=C3=BCn?= <g@example.com>";
	gn_addr_parse_header(pool, v, strlen(v), &list, &error);
	if (list.count == 1)
		is_str(list.items[0]->name_raw, "=?UTF-8?Q?Gr=C3=BCn?=", "name_raw keeps encoded words");
	v = "Friends: a@example.com;";
	gn_addr_parse_header(pool, v, strlen(v), &list, &error);
	ok(list.count == 3 && list.items[1]->group != NULL && strcmp(list.items[1]->group, "Friends") == 0,
	   "a mailbox knows its group");

	/* Many addresses: linear, no crash. */
	char *many = repeat("\"x, y\" <a@example.com>, ", 5000);
	header_n(many, strlen(many), &r);
	is_int(r, 0, "5000 mailboxes parse");
	char *parens = repeat("(", 100000);
	is_str(header(parens), "!unterminated comment", "100000 open parens");
	char *deep = gn_pool_printf(pool, "%s%sa@example.com", repeat("(", 40), repeat(")", 40));
	is_str(header(deep), "!comments nested too deeply", "comments nested 40 deep");
}

static void test_precis(void)
{
	is_str(precis("correct horse battery staple"), "correct horse battery staple", "ASCII with spaces is kept");
	is_str(precis(" pw "), " pw ", "leading and trailing spaces are kept");
	is_str(precis("a\xc2\xa0" "b"), "a b", "NO-BREAK SPACE becomes a space");
	is_str(precis("a\xe3\x80\x80" "b"), "a b", "IDEOGRAPHIC SPACE becomes a space");
	is_str(precis("e\xcc\x81t\xc3\xa9"), "\xc3\xa9t\xc3\xa9", "NFC is applied");
	is_str(precis("\xef\xbc\xa1\xef\xbc\xa2"), "\xef\xbc\xa1\xef\xbc\xa2", "no width mapping: fullwidth letters are kept");
	is_str(precis("Passw\xc3\xb6rd"), "Passw\xc3\xb6rd", "no case mapping");
	is_str(precis("stra\xc3\x9f" "e"), "stra\xc3\x9f" "e", "ß is allowed (RFC 5892 exception)");
	is_str(precis("pass\xf0\x9f\x94\xa5word"), "pass\xf0\x9f\x94\xa5word", "an emoji (So) is allowed");
	is_str(precis("\xe1\x84\x80\xe1\x85\xa1"), "\xea\xb0\x80", "conjoining jamo are composed by NFC and then allowed");
	is_str(precis("l\xc2\xb7l"), "l\xc2\xb7l", "a middle dot between two l is allowed");
	is_str(precis("\xcd\xb5\xce\xb1"), "\xcd\xb5\xce\xb1", "the Greek numeral sign before Greek is allowed");
	is_str(precis("\xe0\xa4\x95\xe0\xa5\x8d\xe2\x80\x8d\xe0\xa4\xb7"), "\xe0\xa4\x95\xe0\xa5\x8d\xe2\x80\x8d\xe0\xa4\xb7",
	       "ZWJ after a virama is allowed");
	is_str(precis("\xd9\xa0\xd9\xa1"), "\xd9\xa0\xd9\xa1", "Arabic-Indic digits alone are allowed");
	is_str(precis("\xe3\x82\xa2\xe3\x83\xbb\xe3\x82\xa4"), "\xe3\x82\xa2\xe3\x83\xbb\xe3\x82\xa4",
	       "a katakana middle dot among katakana is allowed");

	is_str(precis(""), "ERR: password is empty", "an empty password is refused");
	is_str(precis("\x01" "abc"), "ERR: password contains a control character", "a control character is refused");
	is_str(precis_n("a\0b", 3), "ERR: password contains a control character", "a NUL is refused");
	is_str(precis("abc\x7f"), "ERR: password contains a control character", "DEL is refused");
	is_str(precis("a\tb"), "ERR: password contains a control character", "a tab is refused");
	is_str(precis("a\xc2\x85" "b"), "ERR: password contains a control character", "a C1 control is refused");
	is_str(precis("\xff" "abc"), "ERR: password is not valid UTF-8", "invalid UTF-8 is refused");
	is_str(precis("\xcd\xb8"), "ERR: password contains an unassigned code point", "an unassigned code point is refused");
	is_str(precis("a\xee\x80\x80"), "ERR: password contains a disallowed character", "private use is refused");
	is_str(precis("a\xc2\xad" "b"), "ERR: password contains a disallowed character", "SOFT HYPHEN (default ignorable) is refused");
	is_str(precis("a\xe2\x80\x8b" "b"), "ERR: password contains a disallowed character", "ZERO WIDTH SPACE is refused");
	is_str(precis("a\xe2\x80\x8d" "b"), "ERR: password contains a disallowed character", "ZWJ without a virama is refused");
	is_str(precis("a\xef\xbf\xbf"), "ERR: password contains a disallowed character", "a noncharacter is refused");
	is_str(precis("\xe1\x84\x80" "a"), "ERR: password contains a disallowed character", "an old Hangul jamo alone is refused");
	is_str(precis("a\xe2\x80\xa8" "b"), "ERR: password contains a disallowed character", "LINE SEPARATOR is refused");
	is_str(precis("a\xc2\xb7" "b"), "ERR: password contains a disallowed character", "a middle dot not between l is refused");
	is_str(precis("\xcd\xb5" "a"), "ERR: password contains a disallowed character", "the Greek numeral sign before Latin is refused");
	is_str(precis("\xd9\xa0\xdb\xb0"), "ERR: password contains a disallowed character", "mixed Arabic-Indic digit sets are refused");
	is_str(precis("a\xe3\x83\xbb" "b"), "ERR: password contains a disallowed character",
	       "a katakana middle dot without kana or Han is refused");
	is_str(precis("a\xd9\x80" "b"), "ERR: password contains a disallowed character", "ARABIC TATWEEL (exception) is refused");

	/* Same input, same output; output is a fixed point. */
	const char *once = precis("e\xcc\x81\xc2\xa0x");
	is_str(precis(once), once, "preparing a prepared password changes nothing");
}

int main(void)
{
	pool = gn_pool_new();
	test_plain();
	test_quoted();
	test_controls();
	test_nfc();
	test_idna();
	test_literals();
	test_localpart_limits();
	test_paths();
	test_canonical();
	test_fold();
	test_catchall();
	test_from_parts();
	test_header();
	test_precis();
	gn_pool_free(&pool);
	return done_testing();
}
