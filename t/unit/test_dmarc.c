/*
 * t/unit/test_dmarc.c: the mailauth module's DMARC parts that need no DNS
 * (modules/mailauth/dmarc.c, dmarc-record.c): the public suffix list
 * algorithm (normal, wildcard and exception rules, the default "*" rule,
 * the private section, IDN rules, the examples of the PSL's own test
 * list), the record parser (selection, tags, defaults, the p=none-from-rua
 * rule of RFC 7489 6.6.3, the syntax errors and limits), alignment and the
 * evaluation (results, sp, pct with the sampling hook).
 */
#include "tap.h"

#include <string.h>

#include <gannet/dkim.h>

#include "dmarc.h"
#include "spf.h"

static const char PSL[] =
	"// a comment\n"
	"// ===BEGIN ICANN DOMAINS===\n"
	"com\n"
	"uk\n"
	"co.uk\n"
	"\n"
	"*.ck\n"
	"!www.ck\n"
	"jp\n"
	"*.kawasaki.jp\n"
	"!city.kawasaki.jp\n"
	"BIZ   trailing words are ignored\n"
	"\xe5\x85\xac\xe5\x8f\xb8.cn\n"	/* 公司.cn, an IDN rule */
	"cn\r\n"
	"// ===END ICANN DOMAINS===\n"
	"// ===BEGIN PRIVATE DOMAINS===\n"
	"blogspot.com\n"
	"bad..rule\n"
	"// ===END PRIVATE DOMAINS===\n";

static void test_psl(void)
{
	struct dmarc_psl *psl = NULL;
	const char *err = NULL;
	if (!ok(dmarc_psl_parse(PSL, sizeof(PSL) - 1, &psl, &err) == 0, "a list parses")) {
		diag("%s", err);
		return;
	}
	is_int((long long)dmarc_psl_count(psl), 12, "12 names with rules (a bad rule skipped)");
	struct gn_pool *pool = gn_pool_new();
	/* Most from the PSL's tests (publicsuffix.org test_psl.txt), as
	 * organisational domains: a public suffix stands for itself. */
	static const char *const cases[][2] = {
		{ "com", "com" },
		{ "example.com", "example.com" },
		{ "www.example.com", "example.com" },
		{ "a.b.c.example.com", "example.com" },
		{ "WWW.Example.COM.", "example.com" },
		{ "example.uk", "example.uk" },
		{ "www.example.co.uk", "example.co.uk" },
		{ "co.uk", "co.uk" },
		/* Wildcards and exceptions. */
		{ "ck", "ck" },
		{ "test.ck", "test.ck" },
		{ "b.test.ck", "b.test.ck" },
		{ "a.b.test.ck", "b.test.ck" },
		{ "www.ck", "www.ck" },
		{ "www.www.ck", "www.ck" },
		{ "test.kawasaki.jp", "test.kawasaki.jp" },
		{ "b.test.kawasaki.jp", "b.test.kawasaki.jp" },
		{ "a.b.test.kawasaki.jp", "b.test.kawasaki.jp" },
		{ "city.kawasaki.jp", "city.kawasaki.jp" },
		{ "www.city.kawasaki.jp", "city.kawasaki.jp" },
		{ "kawasaki.jp", "kawasaki.jp" },
		{ "x.kawasaki.jp", "x.kawasaki.jp" },
		/* No rule: "*", the last label is the suffix. */
		{ "example", "example" },
		{ "example.example", "example.example" },
		{ "b.example.example", "example.example" },
		{ "a.b.example.example", "example.example" },
		/* The private section counts. */
		{ "blogspot.com", "blogspot.com" },
		{ "x.y.blogspot.com", "y.blogspot.com" },
		/* Case of a rule, IDN rules in A-labels. */
		{ "a.b.biz", "b.biz" },
		{ "shop.xn--55qx5d.cn", "shop.xn--55qx5d.cn" },
		{ "a.shop.xn--55qx5d.cn", "shop.xn--55qx5d.cn" },
		{ "a.b.cn", "b.cn" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		is_str(dmarc_org_domain(psl, pool, cases[i][0]), cases[i][1],
		       "organisational domain of %s", cases[i][0]);
	ok(dmarc_org_domain(psl, pool, "") == NULL, "no organisational domain for \"\"");
	ok(dmarc_org_domain(psl, pool, "a..example.com") == NULL, "nor for an empty label");
	ok(dmarc_org_domain(psl, pool, ".example.com") == NULL, "nor for a leading dot");
	ok(dmarc_org_domain(psl, pool, NULL) == NULL, "nor for NULL");
	dmarc_psl_free(&psl);
	ok(psl == NULL, "dmarc_psl_free() clears the pointer");
	dmarc_psl_free(&psl);

	ok(dmarc_psl_parse("// only\n\n// comments\n", 22, &psl, &err) < 0, "a list without rules: an error");
	like(err, "no public suffix rule", "that says so");
	ok(dmarc_psl_load("/nonexistent/psl.dat", &psl, &err) < 0, "a missing file: an error");
	like(err, "No such file", "with the system's reason");
	gn_pool_free(&pool);
}

static struct dmarc_record *parse(struct gn_pool *pool, const char *s, const char **err)
{
	struct dmarc_record *rec = NULL;
	*err = NULL;
	if (dmarc_record_parse(pool, s, strlen(s), &rec, err) < 0)
		return NULL;
	return rec;
}

static void test_selection(void)
{
	static const struct { const char *s; bool is; } sel[] = {
		{ "v=DMARC1", true },
		{ "v=DMARC1;", true },
		{ "v=DMARC1; p=none", true },
		{ "v = DMARC1 ; p=none", true },
		{ "V=DMARC1; p=none", true },
		{ "v=DMARC1 p=none", false },
		{ "v=dmarc1; p=none", false },
		{ "v=DMARC10; p=none", false },
		{ "v=DMARC", false },
		{ "p=none; v=DMARC1", false },
		{ " v=DMARC1", false },
		{ "", false },
		{ "v=spf1 -all", false },
	};
	for (size_t i = 0; i < sizeof(sel) / sizeof(sel[0]); i++)
		ok(dmarc_record_is_dmarc(sel[i].s, strlen(sel[i].s)) == sel[i].is,
		   "\"%s\" %s a DMARC record", sel[i].s, sel[i].is ? "is" : "is not");
}

static void test_parse(void)
{
	struct gn_pool *pool = gn_pool_new();
	const char *err;
	struct dmarc_record *r = parse(pool, "v=DMARC1; p=reject", &err);
	if (ok(r != NULL, "the smallest record parses")) {
		is_int(r->p, DMARC_POLICY_REJECT, "p=reject");
		is_int(r->sp, DMARC_POLICY_UNSET, "sp unset");
		is_int(r->pct, 100, "pct 100 by default");
		ok(r->adkim == 'r' && r->aspf == 'r', "relaxed alignment by default");
		is_int((long long)r->n_tags, 2, "two tags");
	}
	r = parse(pool, "v=DMARC1;p=Quarantine;sp=none;pct=25;adkim=s;aspf=s;"
		  "rua=mailto:a@example.com,mailto:b@example.net!10m;ruf=mailto:f@example.com;"
		  "fo=1:d;rf=afrf;ri=3600;x_new=1;", &err);
	if (ok(r != NULL, "every tag parses")) {
		is_int(r->p, DMARC_POLICY_QUARANTINE, "policy values are case-insensitive");
		is_int(r->sp, DMARC_POLICY_NONE, "sp=none");
		is_int(r->pct, 25, "pct=25");
		ok(r->adkim == 's' && r->aspf == 's', "strict alignment");
		is_str(r->rua, "mailto:a@example.com,mailto:b@example.net!10m", "rua kept");
		is_str(r->ruf, "mailto:f@example.com", "ruf kept");
		ok(r->n_tags == 12 && !r->tags[11].known && r->tags[10].known,
		   "an unknown tag is kept, marked, and ignored");
		ok(r->ignored == NULL, "nothing replaced by a default");
	}
	r = parse(pool, "v = DMARC1 ;\t p = none ; pct=0 ", &err);
	ok(r != NULL && r->p == DMARC_POLICY_NONE && r->pct == 0, "white space around tags and values; pct=0");
	/* RFC 7489 6.3: invalid values take their defaults. */
	static const char *const defaults[][2] = {
		{ "v=DMARC1; p=reject; pct=101", "pct=101" },
		{ "v=DMARC1; p=reject; pct=-1", "pct=-1" },
		{ "v=DMARC1; p=reject; pct=5x", "pct=5x" },
		{ "v=DMARC1; p=reject; pct=", "pct=" },
		{ "v=DMARC1; p=reject; pct=0100", "pct=0100" },
		{ "v=DMARC1; p=reject; adkim=strict", "adkim=strict" },
		{ "v=DMARC1; p=reject; aspf=R", "aspf=R" },
	};
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		r = parse(pool, defaults[i][0], &err);
		ok(r != NULL && r->pct == 100 && r->adkim == 'r' && r->aspf == 'r',
		   "\"%s\": the default instead", defaults[i][0]);
		is_str(r != NULL ? r->ignored : err, defaults[i][1], "and it is named");
	}
	/* RFC 7489 6.6.3: no valid p (or an invalid sp) but a valid rua:
	 * as p=none, with every other tag at its default. */
	static const char *const rua[] = {
		"v=DMARC1; rua=mailto:agg@example.com",
		"v=DMARC1; p=bogus; pct=10; adkim=s; rua=mailto:agg@example.com",
		"v=DMARC1; p=reject; sp=bogus; rua=x, mailto:agg@example.com",
	};
	for (size_t i = 0; i < sizeof(rua) / sizeof(rua[0]); i++) {
		r = parse(pool, rua[i], &err);
		ok(r != NULL && r->p == DMARC_POLICY_NONE && r->sp == DMARC_POLICY_UNSET &&
		   r->p_from_rua && r->pct == 100 && r->adkim == 'r',
		   "\"%s\": as p=none (RFC 7489 6.6.3)", rua[i]);
	}
	static const char *const bad[][2] = {
		{ "v=DMARC1", "no p= tag" },
		{ "v=DMARC1; pct=50", "no p= tag" },
		{ "v=DMARC1; p=bogus", "p=bogus is not" },
		{ "v=DMARC1; p=", "p= is not" },
		{ "v=DMARC1; p=reject; sp=bogus", "sp=bogus" },
		{ "v=DMARC1; p=bogus; rua=agg@example.com", "p=bogus" },
		{ "v=DMARC1; p=bogus; rua=", "p=bogus" },
		{ "v=DMARC1; p=reject; moo", "\"moo\" is not tag=value" },
		{ "v=DMARC1; p=reject; =x", "a bad tag name" },
		{ "v=DMARC1; p=reject; 1x=y", "a bad tag name" },
		{ "v=DMARC1; p=reject; p=none", "the tag p is there twice" },
		{ "v=DMARC1; v=DMARC1; p=none", "the tag v is there twice" },
		{ "v=DMARC1; p=none; x-y=1", "a bad tag name" },
		{ "p=none; v=DMARC1", "v=DMARC1 is not the first tag" },
		{ "v=DMARC2; p=none", "v=DMARC1 is not the first tag" },
		{ "", "v=DMARC1 is not the first tag" },
		{ "P=reject; v=DMARC1", "v=DMARC1 is not the first tag" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = parse(pool, bad[i][0], &err);
		ok(r == NULL, "\"%s\" is refused", bad[i][0]);
		like(err != NULL ? err : "", bad[i][1], "because: %s", bad[i][1]);
	}
	/* Tag names are case-sensitive (RFC 7489 6.3): "P" is unknown. */
	r = parse(pool, "v=DMARC1; P=reject; rua=mailto:a@example.com", &err);
	ok(r != NULL && r->p_from_rua, "\"P=\" is not p=: ignored");
	/* Limits. */
	struct gn_buf *b = gn_buf_new(0);
	gn_buf_append_str(b, "v=DMARC1; p=none");
	for (int i = 0; i < 62; i++)
		gn_buf_printf(b, "; x%d=1", i);
	r = parse(pool, gn_buf_data(b), &err);
	ok(r != NULL, "64 tags are fine");
	gn_buf_append_str(b, "; y=2");
	r = parse(pool, gn_buf_data(b), &err);
	ok(r == NULL, "65 tags are too many");
	like(err != NULL ? err : "", "more than 64 tags", "and says so");
	gn_buf_clear(b);
	gn_buf_append_str(b, "v=DMARC1; p=none; x=");
	while (gn_buf_len(b) < DMARC_MAX_RECORD + 1)
		gn_buf_append_str(b, "a");
	r = parse(pool, gn_buf_data(b), &err);
	ok(r == NULL, "a record past 4096 bytes is refused");
	like(err != NULL ? err : "", "longer than 4096", "and says so");
	gn_buf_free(&b);
	static const char nul[] = "v=DMARC1; p=none\0; p=reject";
	ok(dmarc_record_parse(pool, nul, sizeof(nul) - 1, &r, &err) < 0, "a NUL byte is refused");
	gn_pool_free(&pool);
}

static struct dmarc_lookup_result found(struct gn_pool *pool, const char *from, const char *org,
					const char *at, const char *text)
{
	struct dmarc_lookup_result lk = { .status = DMARC_PASS, .domain = from, .org_domain = org,
					  .record_domain = at, .text = text };
	const char *err;
	if (dmarc_record_parse(pool, text, strlen(text), &lk.rec, &err) < 0)
		diag("%s: %s", text, err);
	return lk;
}

static void test_evaluate(void)
{
	struct dmarc_psl *psl;
	const char *err;
	if (dmarc_psl_parse(PSL, sizeof(PSL) - 1, &psl, &err) < 0)
		return;
	struct gn_pool *pool = gn_pool_new();
	/* Alignment (RFC 7489 3.1). */
	ok(dmarc_aligned(psl, pool, "example.com", "EXAMPLE.com.", 's'), "strict: equal names, any case");
	ok(!dmarc_aligned(psl, pool, "mail.example.com", "example.com", 's'), "strict: a subdomain is not");
	ok(dmarc_aligned(psl, pool, "mail.example.com", "news.example.com", 'r'),
	   "relaxed: two subdomains of one organisational domain");
	ok(!dmarc_aligned(psl, pool, "a.co.uk", "b.co.uk", 'r'), "relaxed: not across a public suffix");
	ok(!dmarc_aligned(psl, pool, "a.blogspot.com", "b.blogspot.com", 'r'),
	   "relaxed: not across a private-section suffix");
	ok(!dmarc_aligned(psl, pool, "example.com", "example.net", 'r'), "relaxed: other domains");
	ok(!dmarc_aligned(psl, pool, NULL, "example.com", 'r'), "no domain: not aligned");

	struct dmarc_lookup_result lk = found(pool, "news.example.com", "example.com", "example.com",
					      "v=DMARC1; p=reject; sp=quarantine; pct=50");
	struct dmarc_dkim dk[2] = { { "other.example", GN_DKIM_PASS },
				    { "example.com", GN_DKIM_FAIL } };
	struct dmarc_input in = { .from_domain = "news.example.com", .spf_result = SPF_PASS,
				  .spf_domain = "other.example", .dkim = dk, .n_dkim = 2, .sample = 0 };
	struct dmarc_result res;
	dmarc_evaluate(pool, psl, &in, &lk, &res);
	is_int(res.result, DMARC_FAIL, "unaligned passes, an aligned DKIM fail: fail");
	ok(res.subdomain && res.policy == DMARC_POLICY_QUARANTINE, "the organisational record's sp");
	is_int(res.disposition, DMARC_POLICY_QUARANTINE, "sampled in (0 < 50): quarantine");
	is_str(res.header_from, "news.example.com", "header.from");
	in.sample = 50;
	dmarc_evaluate(pool, psl, &in, &lk, &res);
	ok(res.disposition == DMARC_POLICY_NONE && res.sampled_out, "sampled out (50 >= 50): none");
	in.sample = 49;
	dmarc_evaluate(pool, psl, &in, &lk, &res);
	ok(res.disposition == DMARC_POLICY_QUARANTINE && !res.sampled_out, "49 < 50: sampled in");
	dk[1].status = GN_DKIM_PASS;
	dmarc_evaluate(pool, psl, &in, &lk, &res);
	ok(res.result == DMARC_PASS && res.dkim_aligned && !res.spf_aligned, "an aligned DKIM pass: pass");
	is_str(res.dkim_domain, "example.com", "the aligned d=");
	is_int(res.disposition, DMARC_POLICY_NONE, "a pass: disposition none");
	dk[1].status = GN_DKIM_TEMPERROR;
	dmarc_evaluate(pool, psl, &in, &lk, &res);
	ok(res.result == DMARC_TEMPERROR && res.disposition == DMARC_POLICY_NONE,
	   "no aligned pass, an aligned temperror: temperror, nothing applied");
	dk[1].status = GN_DKIM_FAIL;
	in.spf_domain = "bounce.example.com";
	dmarc_evaluate(pool, psl, &in, &lk, &res);
	ok(res.result == DMARC_PASS && res.spf_aligned, "an aligned SPF pass (relaxed): pass");
	in.spf_result = SPF_SOFTFAIL;
	dmarc_evaluate(pool, psl, &in, &lk, &res);
	is_int(res.result, DMARC_FAIL, "an aligned SPF softfail does not pass");
	in.spf_result = SPF_TEMPERROR;
	dmarc_evaluate(pool, psl, &in, &lk, &res);
	is_int(res.result, DMARC_TEMPERROR, "an aligned SPF temperror: temperror");

	/* The From domain's own record: p, not sp. */
	lk = found(pool, "example.com", "example.com", "example.com",
		   "v=DMARC1; p=reject; sp=none; aspf=s");
	struct dmarc_input in2 = { .from_domain = "example.com", .spf_result = SPF_PASS,
				   .spf_domain = "bounce.example.com", .sample = 99 };
	dmarc_evaluate(pool, psl, &in2, &lk, &res);
	ok(res.result == DMARC_FAIL && !res.subdomain && res.policy == DMARC_POLICY_REJECT,
	   "strict SPF: a subdomain does not align; p applies");
	ok(res.disposition == DMARC_POLICY_REJECT && !res.sampled_out, "pct=100: always sampled in");
	/* No record, errors. */
	dmarc_evaluate(pool, psl, &in2, NULL, &res);
	ok(res.result == DMARC_NONE && res.policy == DMARC_POLICY_UNSET &&
	   res.disposition == DMARC_POLICY_NONE, "no lookup: none");
	struct dmarc_lookup_result perm = { .status = DMARC_PERMERROR, .domain = "example.com",
					    .problem = "p=bogus" };
	dmarc_evaluate(pool, psl, &in2, &perm, &res);
	ok(res.result == DMARC_PERMERROR && res.disposition == DMARC_POLICY_NONE,
	   "a permerror lookup: permerror, nothing applied");
	is_str(res.reason, "p=bogus", "with the lookup's reason");
	/* Sampling without the hook: random, but within the rule. */
	lk = found(pool, "example.com", "example.com", "example.com", "v=DMARC1; p=reject; pct=50");
	in2.spf_result = SPF_FAIL;
	in2.sample = -1;
	int in_n = 0, out_n = 0;
	for (int i = 0; i < 400; i++) {
		dmarc_evaluate(pool, psl, &in2, &lk, &res);
		if (res.disposition == DMARC_POLICY_REJECT)
			in_n++;
		else if (res.disposition == DMARC_POLICY_QUARANTINE && res.sampled_out)
			out_n++;
	}
	ok(in_n + out_n == 400 && in_n > 100 && out_n > 100,
	   "pct=50 with random samples: both outcomes, nothing else (%d in, %d out)", in_n, out_n);
	is_str(dmarc_result_name(DMARC_PERMERROR), "permerror", "result names");
	is_str(dmarc_policy_name(DMARC_POLICY_QUARANTINE), "quarantine", "policy names");
	gn_pool_free(&pool);
	dmarc_psl_free(&psl);
}

int main(void)
{
	test_psl();
	test_selection();
	test_parse();
	test_evaluate();
	return done_testing();
}
