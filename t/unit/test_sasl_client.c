/*
 * t/unit/test_sasl_client.c: the client side of SASL (core/auth/sasl-client.c)
 * against the published example exchanges: SCRAM-SHA-1 (RFC 5802 5) and
 * SCRAM-SHA-256 (RFC 7677 3), with their client nonces fixed, so every
 * message the client sends is compared byte for byte and the server's
 * final message is checked; then what must fail (a wrong server
 * signature, a nonce that does not extend ours, too many iterations), the
 * -PLUS header with channel binding data, PLAIN and EXTERNAL, and the
 * choice of a mechanism from an EHLO offer.
 */
#include "main.h"

#include <string.h>

#include "tap.h"

static char *str(const unsigned char *p, size_t n)
{
	static char buf[1024];
	snprintf(buf, sizeof(buf), "%.*s", (int)n, (const char *)p);
	return buf;
}

static void example(const char *mech, const char *cnonce, const char *first,
		    const char *server_first, const char *final, const char *server_final)
{
	const char *err = NULL;
	const unsigned char *out;
	size_t len;
	struct sasl_client *c = sasl_client_new(mech, "user", NULL, "pencil", NULL, NULL, 0, &err);

	ok(c != NULL, "%s: client made", mech);
	if (c == NULL)
		return;
	sasl_client_set_nonce(c, cnonce);
	is_int(sasl_client_start(c, &out, &len, &err), 0, "%s: start", mech);
	is_str(str(out, len), first, "%s: client-first-message", mech);
	ok(!sasl_client_done(c), "%s: not done after the first message", mech);
	is_int(sasl_client_step(c, (const unsigned char *)server_first, strlen(server_first),
				&out, &len, &err), 1, "%s: server-first answered", mech);
	is_str(str(out, len), final, "%s: client-final-message with the RFC's proof", mech);
	ok(!sasl_client_done(c), "%s: not done before the server's signature", mech);
	is_int(sasl_client_step(c, (const unsigned char *)server_final, strlen(server_final),
				&out, &len, &err), 1, "%s: server-final accepted", mech);
	is_int((long long)len, 0, "%s: answered with an empty response (RFC 4954 4)", mech);
	ok(sasl_client_done(c), "%s: done", mech);
	sasl_client_free(&c);
	ok(c == NULL, "%s: freed", mech);

	/* The same exchange with a server signature one character off. */
	c = sasl_client_new(mech, "user", NULL, "pencil", NULL, NULL, 0, &err);
	sasl_client_set_nonce(c, cnonce);
	(void)sasl_client_start(c, &out, &len, &err);
	(void)sasl_client_step(c, (const unsigned char *)server_first, strlen(server_first),
			       &out, &len, &err);
	char *bad = gn_strdup(server_final);
	bad[3] = bad[3] == 'A' ? 'B' : 'A';
	err = NULL;
	is_int(sasl_client_step(c, (const unsigned char *)bad, strlen(bad), &out, &len, &err), -1,
	       "%s: a wrong server signature fails", mech);
	like(err, "signature is wrong", "%s: and says so", mech);
	ok(!sasl_client_done(c), "%s: not done after a wrong signature", mech);
	gn_free(bad);
	sasl_client_free(&c);

	/* The wrong password: the proof differs from the RFC's. */
	c = sasl_client_new(mech, "user", NULL, "pencil2", NULL, NULL, 0, &err);
	sasl_client_set_nonce(c, cnonce);
	(void)sasl_client_start(c, &out, &len, &err);
	(void)sasl_client_step(c, (const unsigned char *)server_first, strlen(server_first),
			       &out, &len, &err);
	ok(strcmp(str(out, len), final) != 0, "%s: another password, another proof", mech);
	sasl_client_free(&c);
}

static void refusals(void)
{
	const char *err = NULL;
	const unsigned char *out;
	size_t len;
	struct sasl_client *c;
	static const char *const bad[] = {
		"r=somebodyelse123,s=QSXCR+Q6sek8bf92,i=4096",	/* not our nonce */
		"r=abc,s=QSXCR+Q6sek8bf92,i=4096",		/* not longer */
		"r=abcdef,s=QSXCR+Q6sek8bf92,i=0",
		"r=abcdef,s=QSXCR+Q6sek8bf92,i=1000001",	/* a spinning server */
		"r=abcdef,s=!!!,i=4096",
		"r=abcdef,i=4096",
		"m=ext,r=abcdef,s=QSXCR+Q6sek8bf92,i=4096",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = sasl_client_new("SCRAM-SHA-256", "user", NULL, "pencil", NULL, NULL, 0, &err);
		sasl_client_set_nonce(c, "abc");
		(void)sasl_client_start(c, &out, &len, &err);
		err = NULL;
		is_int(sasl_client_step(c, (const unsigned char *)bad[i], strlen(bad[i]), &out,
					&len, &err), -1, "server-first refused: %s", bad[i]);
		ok(err != NULL && strncmp(err, "SCRAM: ", 7) == 0, "with a reason: %s",
		   err ? err : "(none)");
		sasl_client_free(&c);
	}

	/* -PLUS: "p=tls-exporter" and the binding data inside c=. */
	static const unsigned char cb[4] = { 1, 2, 3, 4 };
	c = sasl_client_new("SCRAM-SHA-256-PLUS", "us,er", "who=me", "pencil", "tls-exporter", cb,
			    sizeof(cb), &err);
	sasl_client_set_nonce(c, "abc");
	(void)sasl_client_start(c, &out, &len, &err);
	is_str(str(out, len), "p=tls-exporter,a=who=3Dme,n=us=2Cer,r=abc",
	       "-PLUS: gs2 header with the binding type, names encoded (RFC 5802 5.1)");
	const char *sf = "r=abcdef,s=QSXCR+Q6sek8bf92,i=4096";
	is_int(sasl_client_step(c, (const unsigned char *)sf, strlen(sf), &out, &len, &err), 1,
	       "-PLUS: server-first answered");
	/* base64("p=tls-exporter,a=who=3Dme," 01 02 03 04) */
	like(str(out, len), "c=cD10bHMtZXhwb3J0ZXIsYT13aG89M0RtZSwBAgME,r=abcdef,p=",
	     "-PLUS: c= carries the gs2 header and the binding data");
	sasl_client_free(&c);
	ok(sasl_client_new("SCRAM-SHA-256-PLUS", "u", NULL, "p", NULL, NULL, 0, &err) == NULL,
	   "-PLUS without a binding is refused");

	/* Binding available, plain SCRAM chosen: "y" (RFC 5802 6). */
	c = sasl_client_new("SCRAM-SHA-1", "user", NULL, "pencil", "tls-unique", cb, sizeof(cb),
			    &err);
	sasl_client_set_nonce(c, "abc");
	(void)sasl_client_start(c, &out, &len, &err);
	is_str(str(out, len), "y,,n=user,r=abc", "the \"y\" flag when binding is possible");
	sasl_client_free(&c);

	c = sasl_client_new("PLAIN", "user", NULL, "pencil", NULL, NULL, 0, &err);
	is_int(sasl_client_start(c, &out, &len, &err), 0, "PLAIN: start");
	ok(len == 12 && memcmp(out, "\0user\0pencil", 12) == 0, "PLAIN: NUL user NUL password");
	ok(sasl_client_done(c), "PLAIN: done after the initial response");
	ok(sasl_client_step(c, (const unsigned char *)"x", 1, &out, &len, &err) < 0,
	   "PLAIN: a challenge is refused");
	sasl_client_free(&c);

	c = sasl_client_new("EXTERNAL", NULL, "me@example.org", NULL, NULL, NULL, 0, &err);
	is_int(sasl_client_start(c, &out, &len, &err), 0, "EXTERNAL: start");
	is_str(str(out, len), "me@example.org", "EXTERNAL: the authorization identity");
	sasl_client_free(&c);
	ok(sasl_client_new("PLAIN", "user", NULL, NULL, NULL, NULL, 0, &err) == NULL,
	   "PLAIN without a password is refused");
	ok(sasl_client_new("DIGEST-MD5", "user", NULL, "x", NULL, NULL, 0, &err) == NULL,
	   "an unknown mechanism is refused");
}

static void choose(void)
{
	const char *all = "PLAIN LOGIN SCRAM-SHA-1 SCRAM-SHA-1-PLUS SCRAM-SHA-256 "
			  "SCRAM-SHA-256-PLUS CRAM-MD5";
	is_str(sasl_client_choose(all, true, true, true), "SCRAM-SHA-256-PLUS",
	       "strongest: SCRAM-SHA-256-PLUS with a binding");
	is_str(sasl_client_choose(all, true, false, true), "SCRAM-SHA-256",
	       "without a binding: SCRAM-SHA-256");
	is_str(sasl_client_choose("plain scram-sha-1", true, false, true), "SCRAM-SHA-1",
	       "case-insensitive, SCRAM-SHA-1 before PLAIN");
	is_str(sasl_client_choose("PLAIN LOGIN", true, false, true), "PLAIN", "PLAIN over TLS");
	ok(sasl_client_choose("PLAIN LOGIN", false, false, true) == NULL,
	   "never PLAIN without TLS");
	ok(sasl_client_choose("SCRAM-SHA-2560 XPLAIN", true, false, true) == NULL,
	   "whole words only");
	ok(sasl_client_choose(all, true, true, false) == NULL, "nothing without a password");
}

int main(void)
{
	log_init("test_sasl_client");
	example("SCRAM-SHA-1", "fyko+d2lbbFgONRv9qkxdawL", "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
		"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
		"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
		"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
	example("SCRAM-SHA-256", "rOprNGfwEbeRWgbNEkqO", "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
		"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,"
		"i=4096",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
	refusals();
	choose();
	return done_testing();
}
