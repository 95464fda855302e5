/*
 * t/unit/test_dkim_verify.c: the DKIM verifier (core/mail/dkim-verify.c)
 * and its key lookups on the loop (core/dns/dkim.c).
 *
 * The signed example of RFC 8463 appendix A (an Ed25519 and an RSA
 * signature over the same message, with their key records) passes fed
 * whole and one octet at a time, and fails changed; every check that
 * needs no key gives its result and reason without a lookup; the key
 * answers (none, a failure, revoked, another type, t=s, too long) give
 * theirs; signatures past max_signatures are neutral; header.b prefixes
 * tell signatures apart.  On the loop, with dns.local_data: the keys are
 * looked up in parallel, the callback runs from the loop only, also when
 * nothing is looked up, and never after cancel.  Keys given (or looked
 * up) once the header section is read, before the body has come, decide
 * the results at the end.
 */
#include "dns/internal.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>

#define ED_REC "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define RSA_REC "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB"

/* RFC 8463 appendix A.3 (the message of RFC 6376 appendix A, signed with
 * the keys of A.2). */
static const char rfc8463_signed[] =
	"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
	" d=football.example.com; i=@football.example.com;\r\n"
	" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
	" subject : date : message-id : from : subject : date;\r\n"
	" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
	" b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
	" Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
	"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
	" d=football.example.com; i=@football.example.com;\r\n"
	" q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
	" date : message-id : from : subject : date;\r\n"
	" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
	" b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
	" DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
	" dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
	"From: Joe SixPack <joe@football.example.com>\r\n"
	"To: Suzie Q <suzie@shopping.example.net>\r\n"
	"Subject: Is dinner ready?\r\n"
	"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
	"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
	"\r\n"
	"Hi.\r\n"
	"\r\n"
	"We lost the game.  Are you hungry yet?\r\n"
	"\r\n"
	"Joe.\r\n";

/* The time the examples are checked at: after their t=. */
#define NOW 1700000000

static struct gn_dkim_verifier *feed(const char *msg, size_t step, unsigned max)
{
	struct gn_dkim_verifier *v = gn_dkim_verifier_new(max, NOW);
	size_t len = strlen(msg);
	const char *err;
	for (size_t i = 0; i < len; i += step)
		if (gn_dkim_verifier_update(v, msg + i, len - i < step ? len - i : step, &err) < 0)
			diag("update: %s", err);
	if (gn_dkim_verifier_finish(v, &err) < 0)
		diag("finish: %s", err);
	return v;
}

static void give(struct gn_dkim_verifier *v, size_t i, const char *rec)
{
	const char *texts[1] = { rec };
	size_t lens[1] = { strlen(rec) };
	gn_dkim_verifier_key(v, i, GN_DKIM_KEY_RECORDS, texts, lens, 1, NULL);
}

static int status(const struct gn_dkim_verifier *v, size_t i)
{
	const struct gn_dkim_verify_result *r = gn_dkim_verifier_result(v, i);
	return r != NULL ? r->status : -1;
}

static const char *reason(const struct gn_dkim_verifier *v, size_t i)
{
	const struct gn_dkim_verify_result *r = gn_dkim_verifier_result(v, i);
	return r != NULL && r->reason != NULL ? r->reason : "";
}

static void test_rfc8463(void)
{
	for (size_t step = 1; step <= 4096; step += 4095) {
		struct gn_dkim_verifier *v = feed(rfc8463_signed, step, 0);
		is_int((int)gn_dkim_verifier_count(v), 2, "RFC 8463 A.3 (pieces of %zu): two signatures",
		       step);
		is_str(gn_dkim_verifier_key_name(v, 0), "brisbane._domainkey.football.example.com",
		       "the Ed25519 key's name");
		is_str(gn_dkim_verifier_key_name(v, 1), "test._domainkey.football.example.com",
		       "the RSA key's name");
		is_int(status(v, 0), GN_DKIM_TEMPERROR, "before its key, a signature is temperror");
		is_str(reason(v, 0), "key not looked up", "saying so");
		give(v, 0, ED_REC);
		give(v, 1, RSA_REC);
		const struct gn_dkim_verify_result *a = gn_dkim_verifier_result(v, 0),
						   *b = gn_dkim_verifier_result(v, 1);
		ok(a->status == GN_DKIM_PASS && a->reason == NULL, "RFC 8463: the Ed25519 signature passes");
		ok(b->status == GN_DKIM_PASS && b->reason == NULL, "RFC 8463: the RSA signature passes");
		ok(a->key_bits == 256 && b->key_bits == 1024, "key sizes 256 and 1024");
		is_str(a->domain, "football.example.com", "d=");
		is_str(a->identity, "@football.example.com", "i=");
		is_str(a->identity_domain, "football.example.com", "i='s domain");
		is_str(b->selector, "test", "s=");
		is_str(a->algorithm, "ed25519-sha256", "a=");
		ok(a->timestamp == 1528637909 && a->expires == -1 && a->body_length == -1 &&
		   !a->body_truncated && !a->key_testing, "t=, no x=, no l=, not testing");
		is_str(a->header_b, "/gCrinpc", "header.b: 8 characters (RFC 6008)");
		is_str(b->header_b, "F45dVWDf", "header.b of the other");
		ok(gn_dkim_verifier_result(v, 2) == NULL, "no third result");
		gn_dkim_verifier_free(&v);
		gn_dkim_verifier_free(&v);
	}

	/* Changed: the body, then a signed header. */
	char *changed = gn_strdup(rfc8463_signed);
	memcpy(strstr(changed, "hungry"), "Hungry", 6);
	struct gn_dkim_verifier *v = feed(changed, 64, 0);
	give(v, 0, ED_REC);
	give(v, 1, RSA_REC);
	ok(status(v, 0) == GN_DKIM_FAIL && status(v, 1) == GN_DKIM_FAIL, "a changed body fails both");
	is_str(reason(v, 0), "body hash did not verify", "the body hash says why");
	gn_dkim_verifier_free(&v);
	gn_free(changed);
	changed = gn_strdup(rfc8463_signed);
	memcpy(strstr(changed, "dinner"), "Dinner", 6);
	v = feed(changed, 64, 0);
	give(v, 0, ED_REC);
	give(v, 1, RSA_REC);
	ok(status(v, 0) == GN_DKIM_FAIL && status(v, 1) == GN_DKIM_FAIL, "a changed Subject fails both");
	is_str(reason(v, 1), "signature did not verify", "the signature says why");
	gn_dkim_verifier_free(&v);
	gn_free(changed);
	/* White space in a relaxed header and body passes. */
	changed = gn_strdup(rfc8463_signed);
	char *p = strstr(changed, "game.  Are");
	memcpy(p, "game. \tAre", 10);
	v = feed(changed, 64, 0);
	give(v, 0, ED_REC);
	give(v, 1, RSA_REC);
	ok(status(v, 0) == GN_DKIM_PASS && status(v, 1) == GN_DKIM_PASS,
	   "other white space passes relaxed/relaxed");
	gn_dkim_verifier_free(&v);
	gn_free(changed);
	/* A bare LF for every CRLF: the same message read from a Unix file. */
	struct gn_buf *lf = gn_buf_new(0);
	for (const char *c = rfc8463_signed; *c != '\0'; c++)
		if (*c != '\r')
			gn_buf_append(lf, c, 1);
	v = feed(gn_buf_data(lf), 7, 0);
	give(v, 0, ED_REC);
	give(v, 1, RSA_REC);
	ok(status(v, 0) == GN_DKIM_PASS && status(v, 1) == GN_DKIM_PASS,
	   "with LF line ends it passes (relaxed)");
	gn_dkim_verifier_free(&v);
	gn_buf_free(&lf);
}

static void test_keys(void)
{
	static const struct {
		const char *rec;
		int status;
		const char *reason;
	} cases[] = {
		{ "v=DKIM1; k=ed25519; p=", GN_DKIM_FAIL, "key revoked (empty p=)" },
		{ RSA_REC, GN_DKIM_PERMERROR, "key type k=rsa does not fit a=ed25519-sha256" },
		{ "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPc", GN_DKIM_PERMERROR,
		  "key record: p= is not base64" },
		{ "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMl", GN_DKIM_PERMERROR,
		  "key record: an Ed25519 key has 32 octets" },
		{ "v=DKIM2; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", GN_DKIM_PERMERROR,
		  "key record: v= must come first and be DKIM1" },
		{ "k=ed25519; s=other; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", GN_DKIM_PERMERROR,
		  "key record: s= does not allow email" },
		{ "k=ed25519; h=sha1; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", GN_DKIM_PERMERROR,
		  "key record: h= does not allow sha256" },
		{ ED_REC "; t=y", GN_DKIM_PASS, NULL },
		{ ED_REC "; t=s", GN_DKIM_PASS, NULL },
		{ "k=ed25519; s=*; h=sha1:sha256; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
		  GN_DKIM_PASS, NULL },
	};
	/* Twice: the second time every record that parses comes from the
	 * process's record cache, with the same outcome. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
			struct gn_dkim_verifier *v = feed(rfc8463_signed, 4096, 0);
			give(v, 0, cases[k].rec);
			is_int(status(v, 0), cases[k].status, "key \"%.50s...\": %s%s", cases[k].rec,
			       gn_dkim_status_name(cases[k].status), pass ? " (again)" : "");
			if (cases[k].reason != NULL)
				is_str(reason(v, 0), cases[k].reason, "saying why");
			gn_dkim_verifier_free(&v);
		}
	}
	/* More records than the cache holds (32): each still right, and the
	 * first again after it made room. */
	int right = 0;
	for (int k = 0; k < 40; k++) {
		char rec[160];
		snprintf(rec, sizeof(rec), "%s; n=record %d", k % 2 ? ED_REC : "v=DKIM1; k=ed25519; p=",
			 k);
		struct gn_dkim_verifier *v = feed(rfc8463_signed, 4096, 0);
		give(v, 0, rec);
		right += status(v, 0) == (k % 2 ? GN_DKIM_PASS : GN_DKIM_FAIL);
		gn_dkim_verifier_free(&v);
	}
	is_int(right, 40, "40 records in turn, passing and revoked, each read right");
	/* t=s (RFC 6376 3.6.1): i= may not be a subdomain of d=; from the
	 * cache the second time, the same record without t=s the third. */
	static const char *const strict_recs[] = { ED_REC "; t=s", ED_REC "; t=s", ED_REC };
	for (size_t k = 0; k < 3; k++) {
		char msg[512];
		snprintf(msg, sizeof(msg), "DKIM-Signature: v=1; a=ed25519-sha256; h=from; "
			 "d=example.org; i=@sub.example.org; s=sel; "
			 "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA\r\n"
			 "From: a@example.org\r\n\r\nbody\r\n");
		struct gn_dkim_verifier *v = feed(msg, 4096, 0);
		give(v, 0, strict_recs[k]);
		if (k < 2)
			is_str(reason(v, 0), "key has t=s and i= is a subdomain of d=",
			       "t=s with i= in a subdomain: permerror%s", k ? " (again, cached)" : "");
		else
			ok(strstr(reason(v, 0), "t=s") == NULL,
			   "without t=s the same signature gets past that check (%s)", reason(v, 0));
		gn_dkim_verifier_free(&v);
	}
	struct gn_dkim_verifier *v = feed(rfc8463_signed, 4096, 0);
	give(v, 0, ED_REC "; t=y");
	ok(gn_dkim_verifier_result(v, 0)->key_testing, "t=y is reported");
	/* Giving the key again changes nothing. */
	give(v, 0, "v=DKIM1; k=ed25519; p=");
	is_int(status(v, 0), GN_DKIM_PASS, "a second answer is ignored");
	gn_dkim_verifier_free(&v);

	v = feed(rfc8463_signed, 4096, 0);
	gn_dkim_verifier_key(v, 0, GN_DKIM_KEY_NONE, NULL, NULL, 0, "NXDOMAIN");
	gn_dkim_verifier_key(v, 1, GN_DKIM_KEY_TEMPFAIL, NULL, NULL, 0, "TIMEOUT");
	is_int(status(v, 0), GN_DKIM_PERMERROR, "no key: permerror");
	is_str(reason(v, 0), "no key for signature at brisbane._domainkey.football.example.com: NXDOMAIN",
	       "naming the name and the answer");
	is_int(status(v, 1), GN_DKIM_TEMPERROR, "a failed lookup: temperror");
	is_str(reason(v, 1), "key lookup failed: TIMEOUT", "saying so");
	gn_dkim_verifier_free(&v);

	/* Several records: the first that reads is used; none is no key. */
	v = feed(rfc8463_signed, 4096, 0);
	const char *texts[3] = { "not a key", "v=spf1 -all", ED_REC };
	size_t lens[3] = { 9, 11, strlen(ED_REC) };
	gn_dkim_verifier_key(v, 0, GN_DKIM_KEY_RECORDS, texts, lens, 3, NULL);
	is_int(status(v, 0), GN_DKIM_PASS, "of three TXT records the one that is a key is used");
	gn_dkim_verifier_key(v, 1, GN_DKIM_KEY_RECORDS, texts, lens, 0, NULL);
	is_int(status(v, 1), GN_DKIM_PERMERROR, "no records: permerror");
	gn_dkim_verifier_free(&v);

	/* A huge record, and one with a NUL. */
	v = feed(rfc8463_signed, 4096, 0);
	struct gn_buf *big = gn_buf_new(0);
	gn_buf_append_str(big, ED_REC "; n=");
	for (int i = 0; i < GN_DKIM_MAX_KEY_RECORD; i++)
		gn_buf_append(big, "x", 1);
	give(v, 0, gn_buf_data(big));
	is_str(reason(v, 0), "key record too long", "a key record past 8 KiB is refused");
	const char nul[] = "v=DKIM1; k=rsa\0; p=";
	const char *nt[1] = { nul };
	size_t nl[1] = { sizeof(nul) - 1 };
	gn_dkim_verifier_key(v, 1, GN_DKIM_KEY_RECORDS, nt, nl, 1, NULL);
	is_str(reason(v, 1), "key record has a NUL", "a key record with a NUL is refused");
	gn_buf_free(&big);
	gn_dkim_verifier_free(&v);

	/* An RSA key of 8200 bits (an RSAPublicKey: n of 1025 octets 0xff,
	 * e 65537): refused before any work is done with it. */
	struct gn_buf *der = gn_buf_new(0);
	gn_buf_append(der, "\x30\x82\x04\x0b\x02\x82\x04\x02\x00", 9);
	for (int i = 0; i < 1025; i++)
		gn_buf_append(der, "\xff", 1);
	gn_buf_append(der, "\x02\x03\x01\x00\x01", 5);
	char *p64 = mime_b64_encode((const unsigned char *)gn_buf_data(der), gn_buf_len(der));
	char rec[2048];
	snprintf(rec, sizeof(rec), "v=DKIM1; k=rsa; p=%s", p64);
	v = feed(rfc8463_signed, 4096, 0);
	give(v, 1, rec);
	is_int(status(v, 1), GN_DKIM_PERMERROR, "an RSA key over 8192 bits: permerror");
	is_str(reason(v, 1), "key record: RSA key over 8192 bits", "saying why");
	gn_dkim_verifier_free(&v);
	gn_free(p64);
	gn_buf_free(&der);
}

/* A message with one DKIM-Signature of the tags given (b= and bh= are
 * base64 but sign nothing). */
static struct gn_dkim_verifier *one_sig(const char *tags)
{
	char msg[2048];
	snprintf(msg, sizeof(msg),
		 "DKIM-Signature: %s\r\nFrom: a@example.org\r\nSubject: x\r\n\r\nbody\r\n", tags);
	return feed(msg, 4096, 0);
}

static void test_signature_checks(void)
{
#define BASE "d=example.org; s=sel; bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b=AAAA"
	static const struct {
		const char *tags;
		int status;
		const char *reason;
	} cases[] = {
		{ "v=1; a=rsa-sha256; h=from; " BASE, GN_DKIM_TEMPERROR, "key not looked up" },
		{ "v=1; a=rsa-sha256; h=From:Subject; c=relaxed; q=dns/txt; t=1; x=1700000001; l=3; " BASE,
		  GN_DKIM_TEMPERROR, "key not looked up" },
		{ "v=1; h=from; " BASE, GN_DKIM_PERMERROR, "signature has no a= tag" },
		{ "a=rsa-sha256; h=from; " BASE, GN_DKIM_PERMERROR, "signature has no v= tag" },
		{ "v=1; a=rsa-sha256; " BASE, GN_DKIM_PERMERROR, "signature has no h= tag" },
		{ "v=1; a=rsa-sha256; h=from; d=example.org; bh=AAAA; b=AAAA", GN_DKIM_PERMERROR,
		  "signature has no s= tag" },
		{ "v=2; a=rsa-sha256; h=from; " BASE, GN_DKIM_PERMERROR, "unknown signature version v=2" },
		{ "v=1; a=rsa-sha1; h=from; " BASE, GN_DKIM_POLICY, "rsa-sha1 is not accepted (RFC 8301)" },
		{ "v=1; a=dsa-sha256; h=from; " BASE, GN_DKIM_PERMERROR, "unknown algorithm a=dsa-sha256" },
		{ "v=1; a=rsa-sha256; h=from; c=fancy/simple; " BASE, GN_DKIM_PERMERROR,
		  "unknown canonicalization c=fancy/simple" },
		{ "v=1; a=rsa-sha256; h=from; c=simple/fancy; " BASE, GN_DKIM_PERMERROR,
		  "unknown canonicalization c=simple/fancy" },
		{ "v=1; a=rsa-sha256; h=from; q=http; " BASE, GN_DKIM_PERMERROR, "q= does not allow dns/txt" },
		{ "v=1; a=rsa-sha256; h=from; i=@example.com; " BASE, GN_DKIM_PERMERROR,
		  "i= is not within d=" },
		{ "v=1; a=rsa-sha256; h=from; i=@badexample.org; " BASE, GN_DKIM_PERMERROR,
		  "i= is not within d=" },
		{ "v=1; a=rsa-sha256; h=from; i=nobody; " BASE, GN_DKIM_PERMERROR, "i= is not within d=" },
		{ "v=1; a=rsa-sha256; h=from; i=u@Sub.Example.ORG; " BASE, GN_DKIM_TEMPERROR,
		  "key not looked up" },
		{ "v=1; a=rsa-sha256; h=to:subject; " BASE, GN_DKIM_PERMERROR,
		  "From is not signed (h= lacks it)" },
		{ "v=1; a=rsa-sha256; h=from::to; " BASE, GN_DKIM_PERMERROR, "h= has an empty field name" },
		{ "v=1; a=rsa-sha256; h=from; d=example.org; s=sel; bh=AAAA; b=AAA", GN_DKIM_PERMERROR,
		  "b= is not base64" },
		{ "v=1; a=rsa-sha256; h=from; d=example.org; s=sel; bh=AAAA; b=", GN_DKIM_PERMERROR,
		  "b= is not base64" },
		{ "v=1; a=rsa-sha256; h=from; d=example.org; s=sel; bh=A*AA; b=AAAA", GN_DKIM_PERMERROR,
		  "bh= is not base64" },
		{ "v=1; a=rsa-sha256; h=from; l=12a; " BASE, GN_DKIM_PERMERROR, "l= is not a number" },
		{ "v=1; a=rsa-sha256; h=from; l=4000; " BASE, GN_DKIM_PERMERROR, "l= is longer than the body" },
		{ "v=1; a=rsa-sha256; h=from; l=99999999999999999999999; " BASE, GN_DKIM_PERMERROR,
		  "l= is longer than the body" },
		{ "v=1; a=rsa-sha256; h=from; t=-5; " BASE, GN_DKIM_PERMERROR, "t= is not a time" },
		{ "v=1; a=rsa-sha256; h=from; x=1234567890123; " BASE, GN_DKIM_PERMERROR, "x= is not a time" },
		{ "v=1; a=rsa-sha256; h=from; t=1600000000; x=1599999999; " BASE, GN_DKIM_PERMERROR,
		  "x= is before t=" },
		{ "v=1; a=rsa-sha256; h=from; t=1600000000; x=1600000000; " BASE, GN_DKIM_POLICY,
		  "signature expired (x= is past)" },
		{ "v=1; a=rsa-sha256; h=from; x=1699999999; " BASE, GN_DKIM_POLICY,
		  "signature expired (x= is past)" },
		{ "v=1; a=rsa-sha256; h=from; x=1700000000; " BASE, GN_DKIM_TEMPERROR, "key not looked up" },
		{ "v=1; a=rsa-sha256; h=from; t=1700000301; " BASE, GN_DKIM_POLICY,
		  "signature time t= is in the future" },
		{ "v=1; a=rsa-sha256; h=from; t=1700000300; " BASE, GN_DKIM_TEMPERROR, "key not looked up" },
		{ "v=1; a=rsa-sha256; h=from; d=exa mple.org; s=sel; bh=AAAA; b=AAAA", GN_DKIM_PERMERROR,
		  "d= is not a domain name" },
		{ "v=1; a=rsa-sha256; h=from; d=example.org; s=a..b; bh=AAAA; b=AAAA", GN_DKIM_PERMERROR,
		  "s= is not a selector" },
		{ "v=1; a=rsa-sha256; h=from; v=1; " BASE, GN_DKIM_PERMERROR,
		  "malformed signature: duplicate tag \"v\"" },
		{ "v=1; a=rsa-sha256; h=from; novalue; " BASE, GN_DKIM_PERMERROR,
		  "malformed signature: tag without \"=\": \"novalue\"" },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct gn_dkim_verifier *v = one_sig(cases[k].tags);
		is_int((int)gn_dkim_verifier_count(v), 1, "\"%s\": one signature", cases[k].tags);
		is_int(status(v, 0), cases[k].status, "is %s", gn_dkim_status_name(cases[k].status));
		is_str(reason(v, 0), cases[k].reason, "saying \"%s\"", cases[k].reason);
		ok((gn_dkim_verifier_key_name(v, 0) != NULL) == (cases[k].status == GN_DKIM_TEMPERROR),
		   "a key is looked up only for a signature still open");
		gn_dkim_verifier_free(&v);
	}
	struct gn_buf *many = gn_buf_new(0);
	gn_buf_append_str(many, "v=1; a=rsa-sha256; " BASE "; h=from");
	for (int i = 0; i < 1000; i++)
		gn_buf_append_str(many, ":to");
	struct gn_dkim_verifier *v = gn_dkim_verifier_new(0, NOW);
	const char *err;
	gn_dkim_verifier_update(v, "DKIM-Signature: ", 16, &err);
	gn_dkim_verifier_update(v, gn_buf_data(many), gn_buf_len(many), &err);
	gn_dkim_verifier_update(v, "\r\nFrom: a@example.org\r\n\r\nbody\r\n", 31, &err);
	gn_dkim_verifier_finish(v, &err);
	is_str(reason(v, 0), "h= lists more than 1000 fields", "h= of 1001 names: permerror");
	gn_dkim_verifier_free(&v);
	gn_buf_truncate(many, gn_buf_len(many) - 3);
	v = gn_dkim_verifier_new(0, NOW);
	gn_dkim_verifier_update(v, "DKIM-Signature: ", 16, &err);
	gn_dkim_verifier_update(v, gn_buf_data(many), gn_buf_len(many), &err);
	gn_dkim_verifier_update(v, "\r\nFrom: a@example.org\r\n\r\nbody\r\n", 31, &err);
	gn_dkim_verifier_finish(v, &err);
	is_int(status(v, 0), GN_DKIM_TEMPERROR, "h= of 1000 names is read");
	gn_dkim_verifier_free(&v);
	gn_buf_free(&many);
	v = one_sig("v=1; a=rsa-sha256; h=from; l=3; " BASE);
	const struct gn_dkim_verify_result *r = gn_dkim_verifier_result(v, 0);
	ok(r->body_length == 3 && r->body_truncated, "l=3 of \"body\\r\\n\": the body is truncated");
	gn_dkim_verifier_free(&v);
	v = one_sig("v=1; a=rsa-sha256; h=from; l=6; " BASE);
	r = gn_dkim_verifier_result(v, 0);
	ok(r->body_length == 6 && !r->body_truncated, "l=6: the whole body");
	gn_dkim_verifier_free(&v);
	v = one_sig("v=1; a=rsa-sha256; h=from; d=Example.ORG; s=Sel; bh=AAAA; b=AAAA");
	is_str(gn_dkim_verifier_key_name(v, 0), "sel._domainkey.example.org", "the key's name in lower case");
	is_str(gn_dkim_verifier_result(v, 0)->identity, "@example.org", "i= defaults to @d=");
	gn_dkim_verifier_free(&v);
#undef BASE
}

static void test_limits(void)
{
	/* Seven signatures: five evaluated (the default), two neutral. */
	struct gn_buf *m = gn_buf_new(0);
	for (int i = 0; i < 7; i++)
		gn_buf_printf(m, "DKIM-Signature: v=1; a=rsa-sha256; h=from; d=example.org; s=s%d; "
			      "bh=AAAA; b=%dAAAAAAAAAAAAAAAAAAAAAA%d\r\n", i, i < 2 ? 1 : 2, i);
	gn_buf_append_str(m, "From: a@example.org\r\n\r\nbody\r\n");
	struct gn_dkim_verifier *v = feed(gn_buf_data(m), 4096, 0);
	is_int((int)gn_dkim_verifier_count(v), 7, "seven signatures counted");
	ok(gn_dkim_verifier_key_name(v, 4) != NULL && gn_dkim_verifier_key_name(v, 5) == NULL,
	   "the first five want keys, the sixth does not");
	is_int(status(v, 6), GN_DKIM_NEUTRAL, "the seventh is neutral");
	is_str(reason(v, 6), "not evaluated: more than 5 signatures", "saying why");
	is_str(gn_dkim_verifier_result(v, 6)->selector, "s6", "and still naming its selector");
	/* header.b: the prefixes that tell them apart (RFC 6008). */
	is_str(gn_dkim_verifier_result(v, 0)->header_b, "1AAAAAAAAAAAAAAAAAAAAAA0",
	       "header.b grows until it tells two close signatures apart");
	is_str(gn_dkim_verifier_result(v, 1)->header_b, "1AAAAAAAAAAAAAAAAAAAAAA1", "both of them");
	gn_dkim_verifier_free(&v);
	v = feed(gn_buf_data(m), 4096, 2);
	ok(gn_dkim_verifier_key_name(v, 1) != NULL && gn_dkim_verifier_key_name(v, 2) == NULL &&
	   status(v, 2) == GN_DKIM_NEUTRAL, "max_signatures 2: two evaluated");
	gn_dkim_verifier_free(&v);
	gn_buf_free(&m);

	/* A header that cannot be split, or is too large. */
	v = gn_dkim_verifier_new(0, NOW);
	const char *err = "";
	const char bad[] = "DKIM-Signature: v=1\r\nnot a field\r\n\r\nbody\r\n";
	ok(gn_dkim_verifier_update(v, bad, sizeof(bad) - 1, &err) == 0 &&
	   gn_dkim_verifier_finish(v, &err) < 0 && strstr(err, "no header field") != NULL,
	   "a broken header: finish fails, saying why (%s)", err);
	is_int((int)gn_dkim_verifier_count(v), 0, "and no signature is evaluated");
	gn_dkim_verifier_free(&v);
	v = gn_dkim_verifier_new(0, NOW);
	struct gn_buf *huge = gn_buf_new(0);
	for (int i = 0; i < 20000; i++)
		gn_buf_append_str(huge, "X-Filler: 0123456789012345678901234567890123456789012345678901234\r\n");
	int r1 = gn_dkim_verifier_update(v, gn_buf_data(huge), gn_buf_len(huge), &err);
	ok(r1 < 0 && strstr(err, "1 MiB") != NULL, "a header over 1 MiB is refused");
	ok(gn_dkim_verifier_finish(v, &err) < 0, "and finish fails");
	gn_buf_free(&huge);
	gn_dkim_verifier_free(&v);
	v = feed("Subject: no signature\r\n\r\nbody\r\n", 5, 0);
	is_int((int)gn_dkim_verifier_count(v), 0, "a message without signatures has none");
	ok(gn_dkim_verifier_result(v, 0) == NULL && gn_dkim_verifier_key_name(v, 0) == NULL,
	   "and no result");
	gn_dkim_verifier_free(&v);
	v = feed("DKIM-Signature: v=1; a=rsa-sha256; h=from; d=example.org; s=s; bh=AAAA; b=AAAA\r\n"
		 "From: a@example.org\r\n", 4096, 0);
	is_int(status(v, 0), GN_DKIM_TEMPERROR, "a message without a body: its signature waits for a key");
	gn_dkim_verifier_free(&v);
	is_str(gn_dkim_status_name(GN_DKIM_PERMERROR), "permerror", "status names");
	is_str(gn_dkim_status_name(99), "?", "an unknown status");
}

/* Feeds msg up to and with its header's empty line, in pieces of step. */
static struct gn_dkim_verifier *feed_header(const char *msg, size_t step, size_t *fed_r)
{
	struct gn_dkim_verifier *v = gn_dkim_verifier_new(0, NOW);
	size_t len = (size_t)(strstr(msg, "\r\n\r\n") + 4 - msg);
	const char *err;
	for (size_t i = 0; i < len; i += step)
		if (gn_dkim_verifier_update(v, msg + i, len - i < step ? len - i : step, &err) < 0)
			diag("update: %s", err);
	*fed_r = len;
	return v;
}

static void feed_rest(struct gn_dkim_verifier *v, const char *msg, size_t from)
{
	const char *err;
	if (gn_dkim_verifier_update(v, msg + from, strlen(msg) - from, &err) < 0 ||
	    gn_dkim_verifier_finish(v, &err) < 0)
		diag("rest: %s", err);
}

/* The keys given while the body arrives, as mailauth does. */
static void test_early_keys(void)
{
	const char *err;
	size_t fed;
	struct gn_dkim_verifier *v = gn_dkim_verifier_new(0, NOW);
	(void)gn_dkim_verifier_update(v, rfc8463_signed, 200, &err);
	ok(gn_dkim_verifier_count(v) == 0 && gn_dkim_verifier_key_name(v, 0) == NULL,
	   "within the header: no signature yet");
	gn_dkim_verifier_free(&v);

	for (size_t step = 1; step <= 4096; step += 4095) {
		v = feed_header(rfc8463_signed, step, &fed);
		is_int((int)gn_dkim_verifier_count(v), 2, "at the header's end (pieces of %zu): two "
		       "signatures", step);
		is_str(gn_dkim_verifier_key_name(v, 1), "test._domainkey.football.example.com",
		       "and their key names");
		ok(gn_dkim_verifier_result(v, 0) == NULL, "no result before the end");
		give(v, 0, ED_REC);
		give(v, 1, RSA_REC);
		give(v, 0, RSA_REC);	/* a second answer: ignored */
		ok(gn_dkim_verifier_result(v, 0) == NULL, "still none after the keys");
		feed_rest(v, rfc8463_signed, fed);
		ok(status(v, 0) == GN_DKIM_PASS && status(v, 1) == GN_DKIM_PASS,
		   "keys given before the body: both pass at the end");
		ok(gn_dkim_verifier_result(v, 1)->key_bits == 1024, "the key read at the end");
		gn_dkim_verifier_free(&v);
	}

	/* The body still decides: changed, it fails with the early key. */
	char *changed = gn_strdup(rfc8463_signed);
	memcpy(strstr(changed, "hungry"), "Hungry", 6);
	v = feed_header(changed, 64, &fed);
	give(v, 0, ED_REC);
	feed_rest(v, changed, fed);
	is_int(status(v, 0), GN_DKIM_FAIL, "an early key and a changed body: fail");
	is_str(reason(v, 0), "body hash did not verify", "the body hash says why");
	is_int(status(v, 1), GN_DKIM_TEMPERROR, "the other, without its key: temperror");
	give(v, 1, RSA_REC);
	is_int(status(v, 1), GN_DKIM_FAIL, "its key after the end decides it too");
	gn_dkim_verifier_free(&v);
	gn_free(changed);

	/* Early failures are kept with their reason (copied). */
	v = feed_header(rfc8463_signed, 4096, &fed);
	char why[] = "SERVFAIL";
	gn_dkim_verifier_key(v, 0, GN_DKIM_KEY_TEMPFAIL, NULL, NULL, 0, why);
	why[0] = 'X';
	gn_dkim_verifier_key(v, 1, GN_DKIM_KEY_NONE, NULL, NULL, 0, "NXDOMAIN");
	feed_rest(v, rfc8463_signed, fed);
	ok(status(v, 0) == GN_DKIM_TEMPERROR && strstr(reason(v, 0), "SERVFAIL") != NULL,
	   "an early lookup failure: temperror (%s)", reason(v, 0));
	ok(status(v, 1) == GN_DKIM_PERMERROR && strstr(reason(v, 1), "NXDOMAIN") != NULL,
	   "an early NXDOMAIN: permerror (%s)", reason(v, 1));
	gn_dkim_verifier_free(&v);

	/* An early key record that is not one: the verifier's own reading. */
	v = feed_header(rfc8463_signed, 4096, &fed);
	give(v, 0, "v=DKIM1; k=ed25519; p=");
	feed_rest(v, rfc8463_signed, fed);
	ok(status(v, 0) == GN_DKIM_FAIL && strstr(reason(v, 0), "revoked") != NULL,
	   "an early revoked key: fail (%s)", reason(v, 0));
	gn_dkim_verifier_free(&v);
}

/* ---- on the loop ---- */

static int done_calls;
static struct gn_dkim_verifier *done_v;

static void on_done(struct gn_dkim_verifier *v, void *data)
{
	(void)data;
	done_calls++;
	done_v = v;
	ev_break(core_loop, EVBREAK_ALL);
}

static void stop_cb(void *data)
{
	(void)data;
	ev_break(core_loop, EVBREAK_ALL);
}

static void run_for(unsigned long ms)
{
	struct gn_timer *t = gn_timer_new(ms, false, stop_cb, NULL);
	ev_run(core_loop, 0);
	gn_timer_free(&t);
}

static void test_async(void)
{
	ok(conf_load_string("test", "dns = { local_data = [ "
			    "\"brisbane._domainkey.football.example.com. 300 IN TXT \\\"" ED_REC "\\\"\", "
			    "\"test._domainkey.football.example.com. 300 IN TXT \\\"" RSA_REC "\\\"\" ]; "
			    "trust_anchor = \"\"; };") == 0 && conf_error_count() == 0,
	   "a config with the two keys as local data");
	struct gn_dkim_verifier *v = feed(rfc8463_signed, 4096, 0);
	done_calls = 0;
	struct gn_dkim_verify *op = gn_dkim_verify_start(v, on_done, NULL);
	ok(op != NULL && done_calls == 0, "the callback does not run inside gn_dkim_verify_start()");
	is_int((int)dns_outstanding(), 2, "both keys are asked for at once");
	run_for(30000);
	ok(done_calls == 1 && done_v == v, "the callback runs once, with the verifier");
	ok(status(v, 0) == GN_DKIM_PASS && status(v, 1) == GN_DKIM_PASS, "both signatures pass");
	gn_dkim_verifier_free(&v);

	/* Asked again, the keys come from the resolver's cache. */
	v = feed(rfc8463_signed, 4096, 0);
	done_calls = 0;
	op = gn_dkim_verify_start(v, on_done, NULL);
	is_int((int)dns_outstanding(), 0, "the same keys again: from the resolver's cache");
	run_for(30000);
	ok(done_calls == 1 && status(v, 0) == GN_DKIM_PASS && status(v, 1) == GN_DKIM_PASS,
	   "and both pass");
	gn_dkim_verifier_free(&v);

	/* Started at the header's end: the keys come while the body is still
	 * to come, and the results are there at the verifier's end.  A new
	 * resolver, so that they are asked for. */
	dns_shutdown();
	size_t fed;
	v = feed_header(rfc8463_signed, 16, &fed);
	done_calls = 0;
	op = gn_dkim_verify_start(v, on_done, NULL);
	is_int((int)dns_outstanding(), 2, "at the header's end both keys are asked for");
	run_for(30000);
	ok(done_calls == 1 && gn_dkim_verifier_result(v, 0) == NULL,
	   "the callback comes before the end, without results yet");
	feed_rest(v, rfc8463_signed, fed);
	ok(status(v, 0) == GN_DKIM_PASS && status(v, 1) == GN_DKIM_PASS,
	   "at the end both signatures pass with the keys that came");
	gn_dkim_verifier_free(&v);

	/* Cancelled: no callback, nothing left in flight. */
	v = feed(rfc8463_signed, 4096, 0);
	done_calls = 0;
	op = gn_dkim_verify_start(v, on_done, NULL);
	gn_dkim_verify_cancel(&op);
	ok(op == NULL, "cancel clears the handle");
	gn_dkim_verify_cancel(&op);
	gn_dkim_verify_cancel(NULL);
	run_for(300);
	ok(done_calls == 0, "no callback after cancel");
	is_int((int)dns_outstanding(), 0, "nothing in flight after cancel");
	gn_dkim_verifier_free(&v);

	/* Nothing to look up: the callback still comes from the loop. */
	v = one_sig("v=1; a=rsa-sha1; h=from; d=example.org; s=s; bh=AAAA; b=AAAA");
	done_calls = 0;
	op = gn_dkim_verify_start(v, on_done, NULL);
	ok(done_calls == 0 && dns_outstanding() == 0, "no lookup, no call yet");
	run_for(30000);
	ok(done_calls == 1 && status(v, 0) == GN_DKIM_POLICY, "then the callback, with the result");
	gn_dkim_verifier_free(&v);
	v = one_sig("v=1; a=rsa-sha1; h=from; d=example.org; s=s; bh=AAAA; b=AAAA");
	done_calls = 0;
	op = gn_dkim_verify_start(v, on_done, NULL);
	gn_dkim_verify_cancel(&op);
	run_for(100);
	ok(done_calls == 0, "and a cancel before it stops it");
	gn_dkim_verifier_free(&v);

	/* A key not in the data: NXDOMAIN (local data only) is permerror. */
	v = one_sig("v=1; a=rsa-sha256; h=from; d=example.org; s=nokey; bh=AAAA; b=AAAA");
	done_calls = 0;
	op = gn_dkim_verify_start(v, on_done, NULL);
	run_for(30000);
	ok(done_calls == 1 && status(v, 0) == GN_DKIM_PERMERROR &&
	   strstr(reason(v, 0), "NXDOMAIN") != NULL, "a missing key: permerror (%s)", reason(v, 0));
	gn_dkim_verifier_free(&v);
	dns_shutdown();
	conf_free();
}

int main(void)
{
	log_init("test_dkim_verify");
	log_set_ceiling(GN_LOG_ERROR);
	loop_init();
	test_rfc8463();
	test_keys();
	test_signature_checks();
	test_limits();
	test_early_keys();
	test_async();
	return done_testing();
}
