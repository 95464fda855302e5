/*
 * t/unit/test_spf.c: SPF records and macros (modules/mailauth/spf-record.c):
 * the macro examples of RFC 7208 7.4 (IPv4 and IPv6), transformers,
 * delimiters, URL escaping, the explanation-only letters, the 253-octet
 * cut, and the parser: every mechanism and modifier, qualifiers, CIDR
 * lengths, record selection and the syntax errors that make a permerror.
 */
#include "tap.h"

#include <arpa/inet.h>
#include <string.h>

#include "spf.h"

static struct spf_macro_env env4(void)
{
	/* RFC 7208 7.4: strong-bad@email.example.com from 192.0.2.3. */
	struct spf_macro_env e = {
		.sender = "strong-bad@email.example.com", .local = "strong-bad",
		.sender_domain = "email.example.com", .domain = "email.example.com",
		.family = 4, .helo = "mx.example.org", .receiver = "mx.example.net",
		.now = 1234567890,
	};
	inet_pton(AF_INET, "192.0.2.3", e.ip);
	return e;
}

static const char *expand(struct gn_pool *pool, const char *s, unsigned flags,
			  const struct spf_macro_env *e)
{
	const char *err = NULL;
	const char *r = spf_macro_expand(pool, s, strlen(s), flags, e, &err);
	return r != NULL ? r : err;
}

static void test_rfc_examples(void)
{
	struct gn_pool *pool = gn_pool_new();
	struct spf_macro_env e = env4();
	static const char *const ex[][2] = {
		{ "%{s}", "strong-bad@email.example.com" },
		{ "%{o}", "email.example.com" },
		{ "%{d}", "email.example.com" },
		{ "%{d4}", "email.example.com" },
		{ "%{d3}", "email.example.com" },
		{ "%{d2}", "example.com" },
		{ "%{d1}", "com" },
		{ "%{dr}", "com.example.email" },
		{ "%{d2r}", "example.email" },
		{ "%{l}", "strong-bad" },
		{ "%{l-}", "strong.bad" },
		{ "%{lr}", "strong-bad" },
		{ "%{lr-}", "bad.strong" },
		{ "%{l1r-}", "strong" },
		{ "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com" },
		{ "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com" },
		{ "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
		{ "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com" },
		{ "%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net" },
	};
	for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++)
		is_str(expand(pool, ex[i][0], 0, &e), ex[i][1], "RFC 7208 7.4: %s", ex[i][0]);

	/* The IPv6 example: 2001:db8::cb01. */
	inet_pton(AF_INET6, "2001:db8::cb01", e.ip);
	e.family = 6;
	is_str(expand(pool, "%{ir}.%{v}._spf.%{d2}", 0, &e),
	       "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com",
	       "RFC 7208 7.4: IPv6 %%{ir}.%%{v}._spf.%%{d2}");
	is_str(expand(pool, "%{c}", SPF_MACRO_EXP, &e), "2001:db8::cb01", "%%{c} of IPv6: the usual form");
	gn_pool_free(&pool);
}

static void test_macros(void)
{
	struct gn_pool *pool = gn_pool_new();
	struct spf_macro_env e = env4();
	const char *err;
	is_str(expand(pool, "%%%_%-", 0, &e), "% %20", "%%%%, %%_ and %%-");
	is_str(expand(pool, "%{h}", 0, &e), "mx.example.org", "%%{h} is HELO");
	is_str(expand(pool, "%{p}", 0, &e), "unknown", "%%{p} without a validated name is unknown");
	e.validated = "mx.example.org";
	is_str(expand(pool, "%{p2}", 0, &e), "example.org", "%%{p2}");
	is_str(expand(pool, "%{i}", 0, &e), "192.0.2.3", "%%{i} of IPv4");
	is_str(expand(pool, "%{c} %{r} %{t}", SPF_MACRO_EXP, &e), "192.0.2.3 mx.example.net 1234567890",
	       "%%{c}, %%{r}, %%{t} in an explanation");
	e.receiver = NULL;
	is_str(expand(pool, "%{r}", SPF_MACRO_EXP, &e), "unknown", "%%{r} unknown");
	is_str(expand(pool, "%{d9}", 0, &e), "email.example.com", "more parts asked than there are: all");
	is_str(expand(pool, "%{d100}", 0, &e), "email.example.com", "a count of 100");
	is_str(expand(pool, "%{l+-}", 0, &e), "strong.bad", "several delimiters");
	is_str(expand(pool, "%{S}", 0, &e), "strong-bad%40email.example.com", "upper case: URL-escaped");
	e.local = "a b+c~d";
	is_str(expand(pool, "%{L}", 0, &e), "a%20b%2Bc~d", "escape of space and '+', '~' kept");
	is_str(expand(pool, "%{l}", 0, &e), "a b+c~d", "lower case: as is");
	e.local = NULL;
	is_str(expand(pool, "%{l}", 0, &e), "postmaster", "no local-part: postmaster");
	is_str(expand(pool, "%{d}.example.", SPF_MACRO_DOMAIN, &e), "email.example.com.example",
	       "a domain's trailing dot is dropped");
	ok(spf_macro_check("%{d}.", 5, SPF_MACRO_DOMAIN, NULL, &err) < 0,
	   "a dot after a final macro is not a domain-end (RFC 7208 7.1)");

	/* RFC 7208 7.3: longer than 253: labels cut at the left. */
	char longd[300];
	memset(longd, 'a', sizeof(longd));
	for (int i = 63; i < 290; i += 64)
		longd[i] = '.';
	memcpy(longd + 290, ".example", 9);
	e.domain = longd;
	const char *cut = expand(pool, "%{d}", SPF_MACRO_DOMAIN, &e);
	ok(strlen(cut) <= 253 && strlen(cut) > 190 && strncmp(cut, "aaa", 3) == 0,
	   "a domain past 253 octets loses its left labels (%zu left)", strlen(cut));
	is_str(cut + strlen(cut) - 8, ".example", "and keeps its right end");

	/* Syntax errors. */
	static const char *const bad[][2] = {
		{ "%", "a '%' at the end" },
		{ "%x", "a '%' not followed" },
		{ "%{", "cut short" },
		{ "%{d", "not closed" },
		{ "%{q}", "unknown macro letter" },
		{ "%{d0}", "zero labels" },
		{ "%{d2x}", "not closed" },
		{ "%{c}", "only for explanations" },
		{ "%{r}", "only for explanations" },
		{ "%{t}", "only for explanations" },
		{ "a b", "outside visible ASCII" },
		{ "%{d1234}", "too long" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = "";
		ok(spf_macro_check(bad[i][0], strlen(bad[i][0]), 0, NULL, &err) < 0,
		   "macro-string \"%s\" is refused", bad[i][0]);
		like(err, bad[i][1], "  because: %s", err);
	}
	ok(spf_macro_check("a b %{c}", 8, SPF_MACRO_EXP, NULL, &err) == 0,
	   "spaces and %%{c} in an explanation");
	static const char *const domains[][2] = {
		{ "example.com", "1" }, { "example.com.", "1" }, { "%{d}", "1" },
		{ "foo.%{d}", "1" }, { "%{d}.example", "1" }, { "x.123-a", "1" },
		{ "example", "0" }, { "example.123", "0" }, { "example.com-", "0" },
		{ "example.-com", "0" }, { "", "0" }, { "example..", "0" },
		{ "%%", "1" },
	};
	for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++) {
		bool want = domains[i][1][0] == '1';
		int r = spf_macro_check(domains[i][0], strlen(domains[i][0]), SPF_MACRO_DOMAIN, NULL, &err);
		ok((r == 0) == want, "domain-spec \"%s\" %s", domains[i][0], want ? "ends well" : "is refused");
	}
	bool uses_p = false;
	ok(spf_macro_check("%{p}.x.com", 10, SPF_MACRO_DOMAIN, &uses_p, &err) == 0 && uses_p,
	   "%%{p} is noticed");
	gn_pool_free(&pool);
}

static struct spf_record *parse(struct gn_pool *pool, const char *s, const char **err)
{
	struct spf_record *rec = NULL;
	*err = NULL;
	if (spf_record_parse(pool, s, strlen(s), &rec, err) < 0)
		return NULL;
	return rec;
}

static void test_parse(void)
{
	struct gn_pool *pool = gn_pool_new();
	const char *err;
	ok(spf_record_is_spf("v=spf1", 6), "\"v=spf1\" alone is a record");
	ok(spf_record_is_spf("V=SPF1 -all", 11), "any case");
	ok(!spf_record_is_spf("v=spf10 -all", 12), "\"v=spf10\" is not");
	ok(!spf_record_is_spf("v=spf", 5), "\"v=spf\" is not");
	ok(!spf_record_is_spf(" v=spf1", 7), "a leading space is not");

	struct spf_record *r = parse(pool,
		"v=spf1 +all -include:_spf.example.com ~a ?a:%{d}/24//64 mx/30 mx:m.example.org//48 "
		"ptr ptr:example.net ip4:192.0.2.0/24 ip6:2001:db8::/32 exists:%{i}.x.example "
		"redirect=r.example exp=e.%{d} foo.bar-1_x=%{l}  ", &err);
	ok(r != NULL, "a record with every term parses (%s)", err != NULL ? err : "");
	if (r == NULL)
		return;
	is_int((long long)r->n, 14, "14 terms (spaces between and after ignored)");
	is_int(r->terms[0].mechanism, SPF_MECH_ALL, "all");
	is_int(r->terms[0].qualifier, SPF_PASS, "+ is pass");
	is_int(r->terms[1].mechanism, SPF_MECH_INCLUDE, "include");
	is_int(r->terms[1].qualifier, SPF_FAIL, "- is fail");
	is_str(r->terms[1].spec, "_spf.example.com", "include's domain");
	is_int(r->terms[2].qualifier, SPF_SOFTFAIL, "~ is softfail");
	ok(r->terms[2].spec == NULL && r->terms[2].cidr4 == 32 && r->terms[2].cidr6 == 128,
	   "a: no domain, default lengths");
	is_int(r->terms[3].qualifier, SPF_NEUTRAL, "? is neutral");
	ok(strcmp(r->terms[3].spec, "%{d}") == 0 && r->terms[3].cidr4 == 24 && r->terms[3].cidr6 == 64,
	   "a:%%{d}/24//64: a macro domain and both lengths");
	ok(r->terms[4].mechanism == SPF_MECH_MX && r->terms[4].spec == NULL && r->terms[4].cidr4 == 30,
	   "mx/30");
	ok(strcmp(r->terms[5].spec, "m.example.org") == 0 && r->terms[5].cidr4 == 32 &&
	   r->terms[5].cidr6 == 48, "mx:m.example.org//48");
	ok(r->terms[6].mechanism == SPF_MECH_PTR && r->terms[6].spec == NULL, "ptr");
	is_str(r->terms[7].spec, "example.net", "ptr:example.net");
	ok(r->terms[8].mechanism == SPF_MECH_IP4 && r->terms[8].cidr4 == 24 &&
	   r->terms[8].ip[0] == 192 && r->terms[8].ip[3] == 0, "ip4:192.0.2.0/24");
	ok(r->terms[9].mechanism == SPF_MECH_IP6 && r->terms[9].cidr6 == 32 &&
	   r->terms[9].ip[0] == 0x20 && r->terms[9].ip[1] == 0x01, "ip6:2001:db8::/32");
	is_str(r->terms[10].spec, "%{i}.x.example", "exists with a macro");
	ok(r->redirect == &r->terms[11] && strcmp(r->redirect->spec, "r.example") == 0, "redirect=");
	ok(r->exp == &r->terms[12] && strcmp(r->exp->spec, "e.%{d}") == 0, "exp=");
	ok(r->terms[13].kind == SPF_TERM_UNKNOWN && strcmp(r->terms[13].name, "foo.bar-1_x") == 0,
	   "an unknown modifier is kept and ignored");
	ok(r->has_all, "the record has all");
	is_str(r->terms[3].text, "?a:%{d}/24//64", "terms keep their text");

	r = parse(pool, "V=SPF1 IP4:192.0.2.1 MX:Example.COM -ALL Redirect=x.example", &err);
	ok(r != NULL && r->n == 4 && r->terms[0].mechanism == SPF_MECH_IP4 && r->redirect != NULL,
	   "names in any case");
	r = parse(pool, "v=spf1", &err);
	ok(r != NULL && r->n == 0, "no terms");
	r = parse(pool, "v=spf1 a:%%%_/.Clara.de/27", &err);
	ok(r != NULL && r->terms[0].cidr4 == 27 && strcmp(r->terms[0].spec, "%%%_/.Clara.de") == 0,
	   "CIDR lengths come from the end: a '/' may be in the domain");
	r = parse(pool, "v=spf1 ip4:0.0.0.0/0 ip6:::/0", &err);
	ok(r != NULL && r->terms[0].cidr4 == 0 && r->terms[1].cidr6 == 0, "lengths of 0");

	static const char *const bad[][2] = {
		{ "v=spf1 moo", "unknown mechanism" },
		{ "v=spf1 =a", "unknown mechanism" },
		{ "v=spf1 all:x.example", "takes no argument" },
		{ "v=spf1 -all/24", "takes no argument" },
		{ "v=spf1 ip4:192.0.2.300", "bad IPv4" },
		{ "v=spf1 ip4:192.0.02.1", "bad IPv4" },
		{ "v=spf1 ip4:192.0.2", "bad IPv4" },
		{ "v=spf1 ip4:192.0.2.1/33", "bad CIDR" },
		{ "v=spf1 ip4:192.0.2.1/024", "bad CIDR" },
		{ "v=spf1 ip4:192.0.2.1//64", "bad CIDR" },
		{ "v=spf1 ip4", "needs an address" },
		{ "v=spf1 ip6:2001:db8::/129", "bad CIDR" },
		{ "v=spf1 ip6:2001:db8::zz", "bad IPv6" },
		{ "v=spf1 ip6:192.0.2.1x", "bad IPv6" },
		{ "v=spf1 a/33", "bad CIDR" },
		{ "v=spf1 a//129", "bad CIDR" },
		{ "v=spf1 a:", "an empty domain" },
		{ "v=spf1 a:example", "top-level label" },
		{ "v=spf1 a:example.com:8080", "top-level label" },
		{ "v=spf1 include", "a domain is required" },
		{ "v=spf1 include:example.com/24", "top-level label" },
		{ "v=spf1 exists", "a domain is required" },
		{ "v=spf1 exists:%{c}.example.com", "only for explanations" },
		{ "v=spf1 a:%{d0}.example.com", "zero labels" },
		{ "v=spf1 a:%x.example.com", "not followed" },
		{ "v=spf1 redirect=a.example redirect=b.example", "a second redirect=" },
		{ "v=spf1 exp=a.example exp=b.example", "a second exp=" },
		{ "v=spf1 redirect=", "an empty domain" },
		{ "v=spf1 foo=%{x}", "unknown macro letter" },
		{ "v=spf1 -all\tmx", "outside visible ASCII" },
		{ "v=spf1 ip4:192.0.2.1,", "bad IPv4" },
		{ "v=spf1 a:\xc3\xa9.example", "outside visible ASCII" },
		{ "v=spf", "not an SPF record" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = parse(pool, bad[i][0], &err);
		ok(r == NULL, "refused: %s", bad[i][0]);
		like(err != NULL ? err : "", bad[i][1], "  because: %s", err != NULL ? err : "(none)");
	}

	/* Limits. */
	struct gn_buf *b = gn_buf_new(0);
	gn_buf_append_str(b, "v=spf1");
	for (int i = 0; i < SPF_MAX_TERMS; i++)
		gn_buf_append_str(b, " -all");
	ok(spf_record_parse(pool, gn_buf_data(b), gn_buf_len(b), &r, &err) == 0,
	   "%d terms are fine", SPF_MAX_TERMS);
	gn_buf_append_str(b, " -all");
	ok(spf_record_parse(pool, gn_buf_data(b), gn_buf_len(b), &r, &err) < 0,
	   "one more is refused");
	like(err, "more than", "  because: %s", err);
	gn_buf_clear(b);
	gn_buf_append_str(b, "v=spf1 ");
	while (gn_buf_len(b) <= SPF_MAX_RECORD)
		gn_buf_append_str(b, "a");
	ok(spf_record_parse(pool, gn_buf_data(b), gn_buf_len(b), &r, &err) < 0 &&
	   strstr(err, "longer than") != NULL, "a record past %d bytes is refused", SPF_MAX_RECORD);
	gn_buf_free(&b);
	gn_pool_free(&pool);
}

int main(void)
{
	test_rfc_examples();
	test_macros();
	test_parse();
	return done_testing();
}
