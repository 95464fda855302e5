/*
 * t/unit/test_authres.c: the Authentication-Results (RFC 8601) and
 * Received-SPF (RFC 7208 9.1) writers of the mailauth module
 * (modules/mailauth/authres.c): the field's shape, one result per method
 * run, "none" without any, values as tokens or quoted strings, what a
 * peer controls never breaking the field (quotes, CR, LF), and the
 * authserv-id reader that tells a forged field.
 */
#include "tap.h"

#include <string.h>

#include "authres.h"

static void test_format(void)
{
	struct gn_pool *pool = gn_pool_new();
	struct authres ar;

	authres_init(&ar, pool, "mx.example");
	is_str(authres_format(&ar), "Authentication-Results: mx.example; none\r\n",
	       "no method run: \"none\" (RFC 8601 2.2)");

	struct authres_result *r = authres_add(&ar, "spf", "pass", NULL);
	authres_prop(r, "smtp.mailfrom", "alice@example.org");
	r = authres_add(&ar, "dkim", "pass", NULL);
	authres_prop(r, "header.d", "example.org");
	authres_prop(r, "header.s", "sel");
	authres_prop(r, "header.b", "ab/+cd==");
	authres_prop(r, "header.i", NULL);	/* absent: not written */
	r = authres_add(&ar, "dkim", "temperror", "key not looked up");
	authres_prop(r, "header.d", "example.net");
	is_str(authres_format(&ar),
	       "Authentication-Results: mx.example;\r\n"
	       "\tspf=pass smtp.mailfrom=alice@example.org;\r\n"
	       "\tdkim=pass header.d=example.org header.s=sel header.b=\"ab/+cd==\";\r\n"
	       "\tdkim=temperror reason=\"key not looked up\" header.d=example.net\r\n",
	       "one result a line, folded; header.b quoted (\"/\" and \"=\" are tspecials)");

	/* DMARC (RFC 7489 11.2): a comment after the result. */
	authres_init(&ar, pool, "mx.example");
	r = authres_add(&ar, "dmarc", "fail", NULL);
	r->comment = "p=reject dis=quarantine";
	authres_prop(r, "header.from", "example.org");
	is_str(authres_format(&ar),
	       "Authentication-Results: mx.example;\r\n"
	       "\tdmarc=fail (p=reject dis=quarantine) header.from=example.org\r\n",
	       "dmarc=fail (p=... dis=...) header.from=...");
	r->comment = "a (b) \\ c\r\n";
	is_str(authres_format(&ar),
	       "Authentication-Results: mx.example;\r\n"
	       "\tdmarc=fail (a \\(b\\) \\\\ c?\?) header.from=example.org\r\n",
	       "a comment's parentheses and backslash escaped, CR LF never written");

	/* iprev (RFC 8601 2.7.3): the name in a comment after policy.iprev. */
	authres_init(&ar, pool, "mx.example");
	r = authres_add(&ar, "iprev", "pass", NULL);
	authres_prop_comment(r, "ignored: no property yet");
	authres_prop(r, "policy.iprev", "192.0.2.1");
	authres_prop_comment(r, "mail.example.org");
	r = authres_add(&ar, "iprev", "fail", "no PTR");
	authres_prop(r, "policy.iprev", "2001:db8::1");
	authres_prop_comment(r, "x) y\r\n");
	is_str(authres_format(&ar),
	       "Authentication-Results: mx.example;\r\n"
	       "\tiprev=pass policy.iprev=192.0.2.1 (mail.example.org);\r\n"
	       "\tiprev=fail reason=\"no PTR\" policy.iprev=\"2001:db8::1\" (x\\) y?\?)\r\n",
	       "iprev=pass policy.iprev=IP (NAME); an IPv6 address quoted; the comment escaped");
	gn_pool_free(&pool);
}

/* Every CR is one of a CRLF, every LF one of a CRLF, and every CRLF but
 * the last is followed by a tab (a continuation line of ours). */
static bool well_folded(const char *f)
{
	size_t n = strlen(f);
	for (size_t i = 0; i < n; i++) {
		if (f[i] == '\n' && (i == 0 || f[i - 1] != '\r'))
			return false;
		if (f[i] == '\r' && (i + 1 >= n || f[i + 1] != '\n'))
			return false;
		if (f[i] == '\n' && i + 1 < n && f[i + 1] != '\t')
			return false;
	}
	return n >= 2 && f[n - 2] == '\r' && f[n - 1] == '\n';
}

static void test_hostile_values(void)
{
	struct gn_pool *pool = gn_pool_new();
	struct authres ar;

	authres_init(&ar, pool, "mx.example");
	struct authres_result *r = authres_add(&ar, "spf", "fail",
					       "bad\r\nX-Injected: yes \"quoted\" \\");
	authres_prop(r, "smtp.mailfrom", "\"odd local\"@example.org");
	r = authres_add(&ar, "dkim", "permerror", NULL);
	authres_prop(r, "header.d", "evil.example\r\nX-Injected: yes");
	char *f = authres_format(&ar);
	ok(well_folded(f), "CR and LF from a peer never start a line");
	like(f, "reason=\"bad??X-Injected: yes \\\"quoted\\\" \\\\\"", "quotes and backslashes escaped");
	like(f, "smtp.mailfrom=\"\\\"odd local\\\"@example.org\"", "a quoted local part is quoted again");
	like(f, "header.d=\"evil.example??X-Injected: yes\"", "a domain with controls is quoted");

	/* A long reason is cut. */
	char longr[1000];
	memset(longr, 'x', sizeof(longr) - 1);
	longr[sizeof(longr) - 1] = '\0';
	authres_init(&ar, pool, "mx.example");
	(void)authres_add(&ar, "spf", "temperror", longr);
	ok(strlen(authres_format(&ar)) < 300, "a reason past AUTHRES_MAX_REASON is cut");

	/* Past AUTHRES_MAX_RESULTS: ignored, not overflowed. */
	authres_init(&ar, pool, "mx.example");
	for (int i = 0; i < AUTHRES_MAX_RESULTS; i++)
		ok(authres_add(&ar, "dkim", "neutral", NULL) != NULL, "result %d", i);
	ok(authres_add(&ar, "dkim", "neutral", NULL) == NULL, "one past the limit is refused");
	gn_pool_free(&pool);
}

static void test_received_spf(void)
{
	struct gn_pool *pool = gn_pool_new();
	struct spf_result r = {
		.result = SPF_PASS, .identity = "mailfrom", .domain = "example.org",
		.sender = "alice@example.org", .mechanism = "ip4:192.0.2.0/24",
	};
	is_str(authres_received_spf(pool, &r, "mx.example", "192.0.2.1", "client.example.net"),
	       "Received-SPF: pass (mx.example: domain of alice@example.org designates "
	       "192.0.2.1 as permitted sender) receiver=mx.example;\r\n\tclient-ip=192.0.2.1;\r\n"
	       "\tenvelope-from=\"alice@example.org\";\r\n\thelo=client.example.net;\r\n"
	       "\tidentity=mailfrom;\r\n"
	       "\tmechanism=\"ip4:192.0.2.0/24\"\r\n",
	       "pass: RFC 7208 9.1's keys, an address as a quoted-string");
	struct spf_result e = {
		.result = SPF_TEMPERROR, .identity = "helo", .domain = "helo.example",
		.sender = "postmaster@helo.example", .problem = "TIMEOUT (x) \\",
	};
	char *f = authres_received_spf(pool, &e, "mx.example", "2001:db8::1", "helo\r\n.example");
	like(f, "Received-SPF: temperror (mx.example: error in processing: TIMEOUT \\(x\\) \\\\)",
	     "temperror: the problem in the comment, parentheses escaped");
	like(f, "identity=helo;", "identity=helo");
	ok(strstr(f, "envelope-from") == NULL, "no envelope-from for the HELO identity");
	like(f, "problem=\"TIMEOUT (x) \\\\\"", "problem=");
	like(f, "helo=\"helo??.example\"", "a HELO with CR LF is quoted, controls replaced");
	ok(well_folded(f), "and the field stays well folded");
	f = authres_received_spf(pool, &r, "mx.example", "", "client.example.net");
	ok(strstr(f, "client-ip") == NULL, "no address (a local socket): no client-ip");
	like(f, ") receiver=mx.example;", "receiver still");
	gn_pool_free(&pool);
}

static void test_names(void)
{
	static const struct {
		const char *value;
		bool ours;
	} cases[] = {
		{ " mx.example; spf=pass", true },
		{ " MX.Example; spf=pass", true },
		{ "mx.example;", true },
		{ " (comment (nested)) mx.example 1; none", true },
		{ "\r\n\tmx.example;\r\n\tdkim=pass", true },
		{ " \"mx.example\"; none", true },
		{ " mx.example.evil; none", false },
		{ " evil.mx.example; none", false },
		{ " other.example; spf=pass smtp.mailfrom=mx.example", false },
		{ " (mx.example) other.example; none", false },
		{ "", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		is_int(authres_names(cases[i].value, strlen(cases[i].value), "mx.example"),
		       cases[i].ours, "authserv-id, case %zu", i);
}

int main(void)
{
	test_format();
	test_hostile_values();
	test_received_spf();
	test_names();
	return done_testing();
}
