/*
 * t/unit/test_mtasts.c: MTA-STS's parsers and MX matching (core/queue/
 * mtasts.c): the _mta-sts TXT record (RFC 8461 3.1), the policy text
 * (3.2) with its limits, and mx patterns with wildcards (4.1).
 */
#include "queue/internal.h"
#include "tap.h"

#include <string.h>

static struct gn_pool *pool;

static const char *txt(const char *record, int want)
{
	const char *id = NULL, *err = NULL;
	int r = queue_mtasts_txt_parse(pool, record, strlen(record), &id, &err);
	is_int(r, want, "TXT \"%s\": %d%s%s", record, want, err != NULL ? " " : "", err != NULL ? err : "");
	return r > 0 ? id : err;
}

static int policy(const char *text, struct queue_mtasts_policy *p, const char **err)
{
	*err = NULL;
	return queue_mtasts_policy_parse(pool, text, strlen(text), p, err);
}

int main(void)
{
	pool = gn_pool_new();
	struct queue_mtasts_policy p;
	const char *err;

	/* ---- TXT ---- */
	is_str(txt("v=STSv1; id=20160831085700Z;", 1), "20160831085700Z", "the RFC's example: its id");
	is_str(txt("v=STSv1;id=abc", 1), "abc", "no spaces, no final ';'");
	is_str(txt("v=STSv1; id=abc; ext=1", 1), "abc", "an extension field is ignored");
	txt("v=spf1 -all", 0);
	txt("V=STSv1; id=a", 0);
	txt("v=STSv1", -1);
	txt("v=STSv1; id=", -1);
	txt("v=STSv1; id=abc-def", -1);
	txt("v=STSv1; id=123456789012345678901234567890123", -1);
	txt("v=STSv1; id=a; id=b", -1);
	txt("v=STSv1x; id=a", -1);
	txt("v=STSv1; nonsense", -1);

	/* ---- policies ---- */
	ok(policy("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"
		  "mx: backupmx.example.com\r\nmax_age: 604800\r\n", &p, &err) == 0, "the RFC's example parses");
	is_int(p.mode, QUEUE_MTASTS_ENFORCE, "mode enforce");
	is_int(p.max_age, 604800, "max_age");
	is_int((long long)p.n_mx, 3, "three mx patterns");
	ok(p.n_mx == 3 && strcmp(p.mx[1], "*.example.net") == 0, "in their order");
	ok(policy("version: STSv1\nmode: testing\nmx: MX.Example.COM\nmax_age: 0\nextension: x\n", &p, &err) == 0,
	   "LF line ends, max_age 0, an unknown key");
	ok(p.mode == QUEUE_MTASTS_TESTING && strcmp(p.mx[0], "mx.example.com") == 0, "testing; mx in lower case");
	ok(policy("version: STSv1\nmode: none\nmax_age: 86400", &p, &err) == 0 && p.n_mx == 0,
	   "mode none needs no mx, the last line without its end");
	ok(policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557600\n", &p, &err) == 0,
	   "max_age 31557600, the most");

	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "mode: enforce\nmx: a.example\nmax_age: 1\n", "no version" },
		{ "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n", "the version is not STSv1" },
		{ "version: STSv1\nmx: a.example\nmax_age: 1\n", "no mode" },
		{ "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n", "unknown mode" },
		{ "version: STSv1\nmode: enforce\nmx: a.example\n", "no max_age" },
		{ "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n", "max_age must be" },
		{ "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n", "max_age must be" },
		{ "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 12345678901\n", "max_age must be" },
		{ "version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx pattern" },
		{ "version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1\n", "not an mx pattern" },
		{ "version: STSv1\nmode: enforce\nmx: a.*.example\nmax_age: 1\n", "not an mx pattern" },
		{ "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\nmode: none\n", "mode given twice" },
		{ "version: STSv1\nmode enforce\nmx: a.example\nmax_age: 1\n", "is not \"key: value\"" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = policy(bad[i].text, &p, &err);
		ok(r < 0 && err != NULL && strstr(err, bad[i].why) != NULL, "refused: %s (%s)", bad[i].why,
		   err != NULL ? err : "accepted");
	}
	/* Limits: 101 mx lines, 1001 lines, over 64 KiB, a NUL. */
	struct gn_buf *b = gn_buf_new(200000);
	gn_buf_append_str(b, "version: STSv1\nmode: enforce\nmax_age: 1\n");
	for (int i = 0; i < 101; i++)
		gn_buf_printf(b, "mx: mx%d.example\n", i);
	ok(queue_mtasts_policy_parse(pool, gn_buf_data(b), gn_buf_len(b), &p, &err) < 0 &&
	   strstr(err, "more than 100") != NULL, "more than 100 mx patterns refused");
	gn_buf_clear(b);
	gn_buf_append_str(b, "version: STSv1\nmode: none\nmax_age: 1\n");
	for (int i = 0; i < 1000; i++)
		gn_buf_append_str(b, "\n");
	ok(queue_mtasts_policy_parse(pool, gn_buf_data(b), gn_buf_len(b), &p, &err) < 0 &&
	   strstr(err, "too many lines") != NULL, "more than 1000 lines refused");
	gn_buf_clear(b);
	gn_buf_append_str(b, "version: STSv1\nmode: none\nmax_age: 1\n");
	while (gn_buf_len(b) <= 64 * 1024)
		gn_buf_append_str(b, "x-padding: 0123456789012345678901234567890123456789\n");
	ok(queue_mtasts_policy_parse(pool, gn_buf_data(b), gn_buf_len(b), &p, &err) < 0 &&
	   strstr(err, "64 KiB") != NULL, "over 64 KiB refused");
	gn_buf_free(&b);
	ok(queue_mtasts_policy_parse(pool, "version: STSv1\nmode: none\0\nmax_age: 1\n", 38, &p, &err) < 0 &&
	   strstr(err, "NUL") != NULL, "a NUL byte refused");

	/* ---- mx matching (RFC 8461 4.1) ---- */
	ok(policy("version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 1\n", &p,
		  &err) == 0, "a policy to match against");
	ok(queue_mtasts_mx_match(&p, "mail.example.com"), "an exact name matches");
	ok(queue_mtasts_mx_match(&p, "MAIL.example.com."), "case and a final dot do not matter");
	ok(!queue_mtasts_mx_match(&p, "mail2.example.com"), "another name does not");
	ok(queue_mtasts_mx_match(&p, "mx1.example.net"), "the wildcard matches one label");
	ok(!queue_mtasts_mx_match(&p, "a.mx1.example.net"), "not two labels");
	ok(!queue_mtasts_mx_match(&p, "example.net"), "nor none");
	ok(!queue_mtasts_mx_match(&p, "mx1.badexample.net"), "nor another domain ending the same");

	gn_pool_free(&pool);
	return done_testing();
}
