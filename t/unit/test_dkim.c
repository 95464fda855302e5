/*
 * t/unit/test_dkim.c: DKIM (core/mail/dkim.c, dkim-sign.c).
 *
 * The canonical forms of RFC 6376 3.4.5's example, bodies fed whole and
 * one octet at a time, tag lists and key records good and bad, the
 * Ed25519 example of RFC 8463 appendix A (its key, its message: the same
 * bh= and b=), signatures made by the signer for RSA and Ed25519 checked
 * against the record it prints, and the limits on the header.
 */
#include "mail/internal.h"
#include "tap.h"

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>

#include <gannet/dkim.h>

static char *b64(const unsigned char *h, size_t n)
{
	static char out[128];
	char *s = mime_b64_encode(h, n);
	snprintf(out, sizeof(out), "%s", s);
	gn_free(s);
	return out;
}

/* The canonical body of s, fed in pieces of step octets. */
static char *canon_body(enum gn_dkim_canon c, const char *s, size_t step)
{
	struct gn_buf *out = gn_buf_new(0);
	struct gn_dkim_body *b = dkim_body_new_buf(c, out);
	size_t len = strlen(s);
	for (size_t i = 0; i < len; i += step)
		gn_dkim_body_update(b, s + i, len - i < step ? len - i : step);
	gn_dkim_body_finish(b, NULL);
	gn_dkim_body_free(&b);
	return gn_buf_steal(&out);
}

static const char *body_hash(enum gn_dkim_canon c, const char *s)
{
	struct gn_dkim_body *b = gn_dkim_body_new(c);
	gn_dkim_body_update(b, s, strlen(s));
	unsigned char h[GN_DKIM_HASH_SIZE];
	gn_dkim_body_finish(b, h);
	gn_dkim_body_free(&b);
	return b64(h, sizeof(h));
}

static char *canon_fields(enum gn_dkim_canon c, const char *header)
{
	struct gn_pool *pool = gn_pool_new();
	struct gn_dkim_field *f;
	size_t n;
	const char *err;
	struct gn_buf *out = gn_buf_new(0);
	if (gn_dkim_header_split(pool, header, strlen(header), &f, &n, &err) < 0) {
		gn_buf_append_str(out, "ERROR");
	} else {
		for (size_t i = 0; i < n; i++) {
			gn_dkim_canon_header(out, c, f[i].data, f[i].len);
			gn_buf_append_str(out, "\r\n");
		}
	}
	gn_pool_free(&pool);
	return gn_buf_steal(&out);
}

static void test_canonical_forms(void)
{
	/* RFC 6376 3.4.5. */
	const char *hdr = "A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n";
	const char *body = " C \r\nD \t E\r\n\r\n\r\n";
	char *s = canon_fields(GN_DKIM_RELAXED, hdr);
	is_str(s, "a:X\r\nb:Y Z\r\n", "RFC 6376 3.4.5: relaxed header");
	gn_free(s);
	s = canon_fields(GN_DKIM_SIMPLE, hdr);
	is_str(s, "A: X\r\nB : Y\t\r\n\tZ  \r\n", "RFC 6376 3.4.5: simple header");
	gn_free(s);
	for (size_t step = 1; step <= 3; step++) {
		s = canon_body(GN_DKIM_RELAXED, body, step);
		is_str(s, " C\r\nD E\r\n", "RFC 6376 3.4.5: relaxed body, fed %zu at a time", step);
		gn_free(s);
		s = canon_body(GN_DKIM_SIMPLE, body, step);
		is_str(s, " C \r\nD \t E\r\n", "RFC 6376 3.4.5: simple body, fed %zu at a time", step);
		gn_free(s);
	}
	/* Empty bodies: RFC 6376 3.4.3 and 3.4.4. */
	is_str(body_hash(GN_DKIM_RELAXED, ""), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
	       "relaxed empty body hashes the empty string");
	is_str(body_hash(GN_DKIM_SIMPLE, ""), "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=",
	       "simple empty body hashes one CRLF");
	is_str(body_hash(GN_DKIM_RELAXED, "\r\n\r\n  \r\n"), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
	       "relaxed body of empty and blank lines is empty");
	s = canon_body(GN_DKIM_RELAXED, "no end of line  ", 1);
	is_str(s, "no end of line\r\n", "relaxed: a last line without CRLF gets one, its trailing WSP goes");
	gn_free(s);
	s = canon_body(GN_DKIM_SIMPLE, "a\nb\n\n", 1);
	is_str(s, "a\r\nb\r\n", "a bare LF ends a line");
	gn_free(s);
	s = canon_body(GN_DKIM_SIMPLE, "a\rb\r", 1);
	is_str(s, "a\rb\r\r\n", "a bare CR is text");
	gn_free(s);

	/* Header splitting refuses what is no header. */
	s = canon_fields(GN_DKIM_RELAXED, " starts folded\r\n");
	is_str(s, "ERROR", "a header that starts with a continuation is refused");
	gn_free(s);
	s = canon_fields(GN_DKIM_RELAXED, "From: a\r\nno colon here\r\n");
	is_str(s, "ERROR", "a line without a colon is refused");
	gn_free(s);
}

static void test_tags(void)
{
	struct gn_pool *pool = gn_pool_new();
	struct gn_dkim_tag *t;
	size_t n;
	const char *err = NULL;
	const char *sig = "v=1; a=rsa-sha256; d=example.net; s=brisbane;\r\n"
			  "  c=simple; q=dns/txt; i=@eng.example.net;\r\n"
			  "  h=from:to:subject:date;\r\n"
			  "  bh=MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=;\r\n"
			  "  b=dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZ\r\n"
			  "           VoG4ZHRNiYzR";
	ok(gn_dkim_tags_parse(pool, sig, strlen(sig), &t, &n, &err) == 0,
	   "the DKIM-Signature of RFC 6376 3.5's example parses");
	is_int((long long)n, 10, "with ten tags");
	is_str(gn_dkim_tags_get(t, n, "h"), "from:to:subject:date", "h= without white space around it");
	is_str(gn_dkim_tags_get(t, n, "b"),
	       "dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZ\r\n           VoG4ZHRNiYzR",
	       "b= keeps its inner folding");
	ok(gn_dkim_tags_parse(pool, "v=1;", 4, &t, &n, &err) == 0 && n == 1, "a trailing ; is allowed");
	ok(gn_dkim_tags_parse(pool, "", 0, &t, &n, &err) == 0 && n == 0, "an empty list is empty");
	static const struct {
		const char *in, *why;
	} bad[] = {
		{ "v=1; a", "tag without \"=\"" },
		{ "v=1;; a=b", "empty tag" },
		{ "v=1; v=2", "duplicate tag \"v\"" },
		{ "1a=b", "bad tag name \"1a\"" },
		{ "=b", "bad tag name \"\"" },
		{ "a-b=c", "bad tag name \"a-b\"" },
		{ "a=b\001", "control character 0x01" },
		{ "a=b;\x7f", "control character 0x7f" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		ok(gn_dkim_tags_parse(pool, bad[i].in, strlen(bad[i].in), &t, &n, &err) < 0 &&
		   err != NULL && strstr(err, bad[i].why) != NULL,
		   "tag list \"%s\" refused: %s (%s)", bad[i].in, bad[i].why, err ? err : "");
	}
	ok(gn_dkim_tags_parse(pool, "a=\0b", 4, &t, &n, &err) < 0, "a NUL in a tag list is refused");
	struct gn_buf *many = gn_buf_new(0);
	for (int i = 0; i < 65; i++)
		gn_buf_printf(many, "t%d=x;", i);
	ok(gn_dkim_tags_parse(pool, gn_buf_data(many), gn_buf_len(many), &t, &n, &err) < 0 &&
	   strstr(err, "64") != NULL, "65 tags are refused");
	gn_buf_free(&many);

	/* Key records. */
	enum gn_dkim_algorithm alg;
	const unsigned char *key;
	size_t klen;
	const char *rec = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
	ok(gn_dkim_key_record_parse(pool, rec, strlen(rec), &alg, &key, &klen, &err) == 1 &&
	   alg == GN_DKIM_ED25519_SHA256 && klen == 32, "an Ed25519 key record reads");
	rec = "v=DKIM1; p=";
	ok(gn_dkim_key_record_parse(pool, rec, strlen(rec), &alg, &key, &klen, &err) == 0,
	   "an empty p= is a revoked key");
	static const struct {
		const char *in, *why;
	} badrec[] = {
		{ "k=rsa; v=DKIM1; p=AAAA", "v= must come first" },
		{ "v=DKIM2; p=AAAA", "DKIM1" },
		{ "k=dsa; p=AAAA", "unknown key type" },
		{ "k=ed25519; p=AAAA", "32 octets" },
		{ "k=rsa; p=AA!A", "not base64" },
		{ "k=rsa; p=AAA", "not base64" },
		{ "k=rsa; h=sha1; p=AAAA", "sha256" },
		{ "k=rsa; s=tlsrpt; p=AAAA", "email" },
		{ "k=rsa", "no p=" },
		{ "k=rsa; k=rsa; p=", "duplicate" },
	};
	for (size_t i = 0; i < sizeof(badrec) / sizeof(badrec[0]); i++) {
		err = NULL;
		ok(gn_dkim_key_record_parse(pool, badrec[i].in, strlen(badrec[i].in), &alg, &key, &klen,
					    &err) < 0 && err != NULL && strstr(err, badrec[i].why) != NULL,
		   "key record \"%s\" refused: %s (%s)", badrec[i].in, badrec[i].why, err ? err : "");
	}
	rec = "v=DKIM1; k=rsa; h=sha1:sha256; s=*; p=AAAA";
	ok(gn_dkim_key_record_parse(pool, rec, strlen(rec), &alg, &key, &klen, &err) == 1 &&
	   alg == GN_DKIM_RSA_SHA256, "h= and s= lists that allow sha256 and email read");
	gn_pool_free(&pool);
}

/* RFC 8463 appendix A. */
static const char rfc8463_message[] =
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

static void test_rfc8463(void)
{
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	const unsigned char *seed;
	size_t seedlen;
	ok(dkim_b64_decode(pool, "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=", &seed, &seedlen) == 0 &&
	   seedlen == 32, "RFC 8463 A.1: the private key decodes");
	struct gn_dkim_key *key = NULL;
	ok(gn_dkim_key_from_ed25519_seed(seed, &key, &err) == 0, "RFC 8463 A.1: the key loads");
	is_str(gn_dkim_key_record(pool, key),
	       "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
	       "RFC 8463 A.2: the key record");

	const char *body = strstr(rfc8463_message, "\r\n\r\n") + 4;
	is_str(body_hash(GN_DKIM_RELAXED, body), "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=",
	       "RFC 8463 A.3: bh=");

	const char *sig =
		"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
		" d=football.example.com; i=@football.example.com;\r\n"
		" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
		" subject : date : message-id : from : subject : date;\r\n"
		" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
		" b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
		" Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==";
	const char *want_b = "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==";
	struct gn_dkim_field *f;
	size_t n;
	size_t hlen = (size_t)(body - rfc8463_message);
	ok(gn_dkim_header_split(pool, rfc8463_message, hlen, &f, &n, &err) == 0 && n == 5,
	   "its header has five fields");
	static const char *const names[] = { "from", "to", "subject", "date", "message-id",
					     "from", "subject", "date" };
	unsigned char hash[GN_DKIM_HASH_SIZE];
	ok(gn_dkim_header_hash(GN_DKIM_RELAXED, f, n, names, 8, sig, strlen(sig), hash, &err) == 0,
	   "the data hash is computed");
	const char *b = NULL;
	ok(gn_dkim_key_sign(pool, key, hash, &b, &err) == 0, "the hash is signed");
	is_str(b, want_b, "RFC 8463 A.3: b= is the RFC's");

	enum gn_dkim_algorithm alg;
	const unsigned char *pub, *rawsig;
	size_t publen, siglen;
	const char *rec = gn_dkim_key_record(pool, key);
	gn_dkim_key_record_parse(pool, rec, strlen(rec), &alg, &pub, &publen, &err);
	dkim_b64_decode(pool, want_b, &rawsig, &siglen);
	is_int(gn_dkim_verify_hash(alg, pub, publen, hash, rawsig, siglen, &err), 1,
	       "the RFC's signature verifies");
	hash[0] ^= 1;
	is_int(gn_dkim_verify_hash(alg, pub, publen, hash, rawsig, siglen, &err), 0,
	       "and does not for another hash");

	/* The verifier keeps the keys it read (dkim-sign.c, KEY_CACHE_SIZE
	 * 32): a kept key gives the same answers, the octets of an Ed25519
	 * key are no RSA key, and a key pushed out is read again. */
	hash[0] ^= 1;
	is_int(gn_dkim_verify_hash(alg, pub, publen, hash, rawsig, siglen, &err), 1,
	       "the kept key verifies the signature again");
	is_int(gn_dkim_verify_hash(GN_DKIM_RSA_SHA256, pub, publen, hash, rawsig, siglen, &err), -1,
	       "its octets are not an RSA key");
	int other = 0;
	for (unsigned i = 0; i < 40; i++) {
		unsigned char k[32];
		memset(k, (int)i + 1, sizeof(k));
		other += gn_dkim_verify_hash(GN_DKIM_ED25519_SHA256, k, sizeof(k), hash, rawsig, siglen,
					     &err) == 1;
	}
	is_int(other, 0, "40 other keys, none verifies the signature");
	is_int(gn_dkim_verify_hash(alg, pub, publen, hash, rawsig, siglen, &err), 1,
	       "the key, pushed out by them, verifies again");
	hash[5] ^= 1;
	is_int(gn_dkim_verify_hash(alg, pub, publen, hash, rawsig, siglen, &err), 0,
	       "and not another hash");
	gn_dkim_key_free(&key);
	gn_pool_free(&pool);
}

/* Signs msg with key; checks the signature as a verifier would, from the
 * record the key prints: 1 verified, 0 not. */
static int sign_and_verify(struct gn_dkim_key *key, const char *msg, const char *tamper_from,
			   const char *tamper_to, size_t step, char **sig_r)
{
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	struct gn_dkim_signer *s = gn_dkim_signer_new();
	size_t len = strlen(msg);
	for (size_t i = 0; i < len; i += step)
		if (gn_dkim_signer_update(s, msg + i, len - i < step ? len - i : step, &err) < 0)
			return -1;
	if (gn_dkim_signer_finish(s, &err) < 0)
		return -1;
	struct gn_buf *out = gn_buf_new(0);
	if (gn_dkim_signer_sign(s, "example.org", "sel1", key, 1700000000, 1700086400, out, &err) < 0)
		return -1;
	gn_dkim_signer_free(&s);
	/* The signed message, maybe changed on the way. */
	gn_buf_append_str(out, msg);
	char *signed_msg = gn_buf_steal(&out);
	if (tamper_from != NULL) {
		char *p = strstr(signed_msg, tamper_from);
		memcpy(p, tamper_to, strlen(tamper_to));
	}
	*sig_r = gn_strndup(signed_msg, (size_t)(strstr(signed_msg, "\r\nFrom") + 2 - signed_msg));

	/* Verify. */
	int result = 0;
	const char *end = strstr(signed_msg, "\r\n\r\n") + 4;
	struct gn_dkim_field *f;
	size_t n;
	struct gn_dkim_tag *t;
	size_t nt;
	gn_dkim_header_split(pool, signed_msg, (size_t)(end - signed_msg), &f, &n, &err);
	const char *colon = memchr(f[0].data, ':', f[0].len);
	gn_dkim_tags_parse(pool, colon + 1, f[0].len - (size_t)(colon + 1 - f[0].data), &t, &nt, &err);
	struct gn_dkim_body *body = gn_dkim_body_new(GN_DKIM_RELAXED);
	gn_dkim_body_update(body, end, strlen(end));
	unsigned char bh[GN_DKIM_HASH_SIZE];
	gn_dkim_body_finish(body, bh);
	gn_dkim_body_free(&body);
	const unsigned char *want_bh;
	size_t bhlen;
	dkim_b64_decode(pool, gn_dkim_tags_get(t, nt, "bh"), &want_bh, &bhlen);
	if (bhlen == sizeof(bh) && memcmp(bh, want_bh, bhlen) == 0) {
		/* h=, split at ":". */
		const char *h = gn_dkim_tags_get(t, nt, "h");
		const char *names[64];
		size_t nn = 0;
		char *hc = gn_pool_strdup(pool, h);
		for (char *tok = strtok(hc, ": \t\r\n"); tok != NULL && nn < 64; tok = strtok(NULL, ": \t\r\n"))
			names[nn++] = tok;
		unsigned char hash[GN_DKIM_HASH_SIZE];
		gn_dkim_header_hash(GN_DKIM_RELAXED, f + 1, n - 1, names, nn, f[0].data, f[0].len, hash,
				    &err);
		const char *rec = gn_dkim_key_record(pool, key);
		enum gn_dkim_algorithm alg;
		const unsigned char *pub, *sig;
		size_t publen, siglen;
		gn_dkim_key_record_parse(pool, rec, strlen(rec), &alg, &pub, &publen, &err);
		dkim_b64_decode(pool, gn_dkim_tags_get(t, nt, "b"), &sig, &siglen);
		result = gn_dkim_verify_hash(alg, pub, publen, hash, sig, siglen, &err);
	}
	gn_free(signed_msg);
	gn_pool_free(&pool);
	return result;
}

/* RFC 6376 3.6.1 names RSAPublicKey for p=, most records hold the
 * SubjectPublicKeyInfo around it: both verify. */
static void test_rsa_key_forms(struct gn_dkim_key *key)
{
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL, *b = NULL;
	unsigned char hash[GN_DKIM_HASH_SIZE] = { 1, 2, 3 };
	gn_dkim_key_sign(pool, key, hash, &b, &err);
	const unsigned char *sig, *pub;
	size_t siglen, publen;
	dkim_b64_decode(pool, b, &sig, &siglen);
	is_int((long long)siglen, 256, "rsa-sha256: a 2048-bit signature");
	enum gn_dkim_algorithm alg;
	const char *rec = gn_dkim_key_record(pool, key);
	gn_dkim_key_record_parse(pool, rec, strlen(rec), &alg, &pub, &publen, &err);
	is_int(gn_dkim_verify_hash(alg, pub, publen, hash, sig, siglen, &err), 1,
	       "rsa-sha256: verifies with the SubjectPublicKeyInfo of the record");
	/* 30 82 01 22, the algorithm (15 octets), 03 82 01 0f 00. */
	ok(publen == 294 && pub[0] == 0x30 && pub[19] == 0x03, "which is 294 octets of DER");
	is_int(gn_dkim_verify_hash(alg, pub + 24, publen - 24, hash, sig, siglen, &err), 1,
	       "rsa-sha256: and with the RSAPublicKey inside it");
	hash[0] = 9;
	is_int(gn_dkim_verify_hash(alg, pub + 24, publen - 24, hash, sig, siglen, &err), 0,
	       "rsa-sha256: not for another hash");
	is_int(gn_dkim_verify_hash(alg, (const unsigned char *)"0123456789abcdef0123456789abcdef", 32,
				   hash, sig, siglen, &err), -1, "rsa-sha256: junk is no key");
	like(err, "cannot be read", "saying so");
	gn_pool_free(&pool);
}

static const char test_message[] =
	"From: Alice <alice@example.org>\r\n"
	"To: bob@example.net\r\n"
	"Subject: a test of signing, with a subject long enough to be folded\r\n"
	" onto a second line\r\n"
	"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
	"Message-ID: <1@example.org>\r\n"
	"X-Other: not signed\r\n"
	"\r\n"
	"Hello Bob,  \r\n"
	"\r\n"
	"this body is signed.\r\n"
	"\r\n\r\n";

static void test_signer(void)
{
	const char *err = NULL;
	for (int a = 0; a < 2; a++) {
		enum gn_dkim_algorithm alg = a == 0 ? GN_DKIM_RSA_SHA256 : GN_DKIM_ED25519_SHA256;
		const char *an = gn_dkim_algorithm_name(alg);
		char *pem = NULL;
		ok(gn_dkim_key_generate(alg, 0, &pem, &err) == 0 && strstr(pem, "BEGIN PRIVATE KEY"),
		   "%s: a key is generated as PKCS#8 PEM", an);
		struct gn_dkim_key *key = NULL;
		ok(gn_dkim_key_load(pem, strlen(pem), &key, &err) == 0 && gn_dkim_key_algorithm(key) == alg,
		   "%s: and loads", an);
		gn_free(pem);
		char *sig = NULL;
		is_int(sign_and_verify(key, test_message, NULL, NULL, 7, &sig), 1,
		       "%s: a signed message verifies", an);
		like(sig, "c=relaxed/relaxed;", "%s: relaxed/relaxed", an);
		like(sig, "t=1700000000;", "%s: t= is set", an);
		like(sig, "x=1700086400;", "%s: x= as asked", an);
		ok(strstr(sig, " l=") == NULL && strstr(sig, ";l=") == NULL, "%s: no l=", an);
		char *unfolded = gn_strdup(sig);
		for (char *q; (q = strstr(unfolded, "\r\n\t")) != NULL;)
			memmove(q, q + 3, strlen(q + 3) + 1);
		like(unfolded, "h=From:From:Reply-To:Subject:Subject:Date:Date:To:To:Cc:Message-ID:Message-ID:",
		     "%s: the fields present and absent ones oversigned", an);
		gn_free(unfolded);
		ok(strstr(sig, "X-Other") == NULL, "%s: other fields are not signed", an);
		bool short_lines = true;
		for (const char *p = sig; *p != '\0';) {
			const char *e = strstr(p, "\r\n");
			if (e == NULL || e - p > 78)
				short_lines = false;
			p = e ? e + 2 : p + strlen(p);
		}
		ok(short_lines, "%s: the field is folded into lines of at most 78 octets", an);
		gn_free(sig);
		is_int(sign_and_verify(key, test_message, NULL, NULL, 1, &sig), 1,
		       "%s: fed one octet at a time, it verifies", an);
		gn_free(sig);
		is_int(sign_and_verify(key, test_message, "this body", "This body", 4096, &sig), 0,
		       "%s: a changed body does not verify", an);
		gn_free(sig);
		is_int(sign_and_verify(key, test_message, "Subject: a", "Subject: A", 4096, &sig), 0,
		       "%s: a changed subject does not verify", an);
		gn_free(sig);
		is_int(sign_and_verify(key, test_message, "Hello Bob,  ", "Hello  Bob, ", 4096, &sig), 1,
		       "%s: changed white space in the body still verifies (relaxed)", an);
		gn_free(sig);
		if (alg == GN_DKIM_RSA_SHA256)
			test_rsa_key_forms(key);
		gn_dkim_key_free(&key);
	}
	/* An RSA key under 2048 bits is refused. */
	gnutls_x509_privkey_t x;
	gnutls_x509_privkey_init(&x);
	gnutls_x509_privkey_generate(x, GNUTLS_PK_RSA, 1024, 0);
	gnutls_datum_t pem;
	gnutls_x509_privkey_export2_pkcs8(x, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &pem);
	gnutls_x509_privkey_deinit(x);
	struct gn_dkim_key *key = NULL;
	ok(gn_dkim_key_load((const char *)pem.data, pem.size, &key, &err) < 0 &&
	   strstr(err, "2048") != NULL, "a 1024-bit RSA key is refused (%s)", err);
	gnutls_free(pem.data);
	char *p = NULL;
	ok(gn_dkim_key_generate(GN_DKIM_RSA_SHA256, 1024, &p, &err) < 0, "no 1024-bit key is generated");
	/* A verifier takes no RSA key under 1024 bits (RFC 8301 3.2). */
	gnutls_x509_privkey_init(&x);
	gnutls_x509_privkey_generate(x, GNUTLS_PK_RSA, 512, 0);
	gnutls_pubkey_t pk;
	gnutls_pubkey_init(&pk);
	gnutls_privkey_t priv;
	gnutls_privkey_init(&priv);
	gnutls_privkey_import_x509(priv, x, 0);
	gnutls_pubkey_import_privkey(pk, priv, 0, 0);
	gnutls_datum_t der;
	gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &der);
	unsigned char h[GN_DKIM_HASH_SIZE] = { 0 };
	is_int(gn_dkim_verify_hash(GN_DKIM_RSA_SHA256, der.data, der.size, h, h, sizeof(h), &err), -1,
	       "a 512-bit RSA key does not verify");
	like(err, "under 1024 bits", "saying so");
	gnutls_free(der.data);
	gnutls_pubkey_deinit(pk);
	gnutls_privkey_deinit(priv);
	gnutls_x509_privkey_deinit(x);
	ok(gn_dkim_key_load("junk", 4, &key, &err) < 0, "junk is no key (%s)", err);
}

static int finish_error(const char *msg, const char **err)
{
	struct gn_dkim_signer *s = gn_dkim_signer_new();
	int r = gn_dkim_signer_update(s, msg, strlen(msg), err);
	if (r == 0)
		r = gn_dkim_signer_finish(s, err);
	gn_dkim_signer_free(&s);
	return r;
}

static void test_limits(void)
{
	const char *err = "";
	ok(finish_error("To: a@b\r\n\r\nbody\r\n", &err) < 0 && strstr(err, "no From"),
	   "a message without From is not signed (%s)", err);
	ok(finish_error("From: a@b\r\nFrom: c@d\r\n\r\nbody\r\n", &err) < 0 &&
	   strstr(err, "more than one From"), "nor one with two (%s)", err);
	ok(finish_error("From: a@b\r\nbroken line\r\n\r\nbody\r\n", &err) < 0 &&
	   strstr(err, "no header field"), "nor one with a broken header (%s)", err);
	struct gn_buf *b = gn_buf_new(0);
	gn_buf_append_str(b, "From: a@b\r\n");
	for (int i = 0; i < 1000; i++)
		gn_buf_append_str(b, "X: y\r\n");
	gn_buf_append_str(b, "\r\nbody\r\n");
	ok(finish_error(gn_buf_data(b), &err) < 0 && strstr(err, "too many fields"),
	   "nor one with 1001 header fields (%s)", err);
	gn_buf_clear(b);
	for (int i = 0; i < 1000; i++)
		gn_buf_append_str(b, i == 0 ? "From: a@b\r\n" : "X: y\r\n");
	gn_buf_append_str(b, "\r\n");
	for (int i = 0; i < 3000; i++)
		gn_buf_append_str(b, "X: a body line that looks like a field\r\n");
	ok(finish_error(gn_buf_data(b), &err) == 0, "1000 fields are signed, whatever the body holds");
	struct gn_pool *pool = gn_pool_new();
	struct gn_dkim_field *f;
	size_t nf;
	ok(gn_dkim_header_split(pool, gn_buf_data(b), gn_buf_len(b), &f, &nf, &err) == 0 && nf == 1000,
	   "and split with the body after them: 1000 fields");
	gn_pool_free(&pool);
	gn_buf_clear(b);
	gn_buf_append_str(b, "From: a@b\r\nX: ");
	for (int i = 0; i < 1100; i++)
		for (int j = 0; j < 1000; j++)
			gn_buf_append(b, "x", 1);
	gn_buf_append_str(b, "\r\n\r\nbody\r\n");
	ok(finish_error(gn_buf_data(b), &err) < 0 && strstr(err, "too large"),
	   "nor one with a header over 1 MiB (%s)", err);
	gn_buf_free(&b);
	ok(finish_error("From: a@b\r\n", &err) == 0, "a message without a body is signed");
	struct gn_dkim_signer *s = gn_dkim_signer_new();
	gn_dkim_signer_update(s, "From: a@b\r\n\r\n", 13, &err);
	gn_dkim_signer_finish(s, &err);
	struct gn_buf *out = gn_buf_new(0);
	char *pem;
	struct gn_dkim_key *key;
	gn_dkim_key_generate(GN_DKIM_ED25519_SHA256, 0, &pem, &err);
	gn_dkim_key_load(pem, strlen(pem), &key, &err);
	gn_free(pem);
	ok(gn_dkim_signer_sign(s, "exa;mple.org", "s", key, 1, 0, out, &err) < 0, "a bad domain is refused");
	ok(gn_dkim_signer_sign(s, "example.org", "s=1", key, 1, 0, out, &err) < 0, "a bad selector is refused");
	ok(gn_dkim_signer_sign(s, "example.org", "s", key, 10, 5, out, &err) < 0, "an expiry before t= is refused");
	ok(gn_dkim_signer_sign(s, "example.org", "s", key, 10, 0, out, &err) == 0 &&
	   strstr(gn_buf_data(out), "x=") == NULL, "without expiry there is no x=");
	gn_dkim_key_free(&key);
	gn_buf_free(&out);
	gn_dkim_signer_free(&s);
}

/* ---- bodies against a plain reading of RFC 6376 3.4.3 and 3.4.4 ---- */

/* The canonical body of s[0..len) made line by line, the way the RFC
 * words it: lines end at CRLF or at a bare LF (a bare CR is text, as the
 * canonicaliser treats them); relaxed reduces each run of SP and HTAB to
 * one SP and drops it at the line's end; empty lines at the end go; text
 * without a line end gets one; an empty body is "" relaxed, CRLF simple. */
static struct gn_buf *reference_body(enum gn_dkim_canon c, const char *s, size_t len)
{
	struct gn_buf *out = gn_buf_new(0);
	size_t keep = 0;	/* out's length up to the last line with text */
	size_t i = 0;
	while (i < len) {
		size_t end = i, next;
		while (end < len && s[end] != '\n' && !(s[end] == '\r' && end + 1 < len && s[end + 1] == '\n'))
			end++;
		next = end == len ? len : s[end] == '\n' ? end + 1 : end + 2;
		size_t start = gn_buf_len(out);
		if (c == GN_DKIM_RELAXED) {
			bool wsp = false;
			for (size_t k = i; k < end; k++) {
				if (s[k] == ' ' || s[k] == '\t') {
					wsp = true;
					continue;
				}
				if (wsp)
					gn_buf_append(out, " ", 1);
				wsp = false;
				gn_buf_append(out, s + k, 1);
			}
		} else {
			gn_buf_append(out, s + i, end - i);
		}
		bool text = gn_buf_len(out) > start;
		gn_buf_append(out, "\r\n", 2);
		if (text)
			keep = gn_buf_len(out);
		i = next;
	}
	gn_buf_truncate(out, keep);
	if (keep == 0 && c == GN_DKIM_SIMPLE)
		gn_buf_append(out, "\r\n", 2);
	return out;
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* Random bodies (long runs of text, white space, CR, LF, CRLF, empty
 * lines at the end) fed in random pieces: the canonical form equals the
 * reference's, and l= hashes exactly its first l octets. */
static void test_body_random(void)
{
	static const char *const pieces[] = { "a", "text", " ", "\t", "  \t ", "\r\n", "\n", "\r",
					      "\r\n\r\n", "x\r", "\r\r\n",
					      /* octets over 0x7f and controls, which the
					       * canonicaliser reads eight at a time */
					      "caf\xc3\xa9 na\xc3\xafve words", "\x01\x1f\x7f", "\xff\xfe\x80\xa0 ",
					      "a long line of text with single spaces" };
	const size_t npieces = sizeof(pieces) / sizeof(pieces[0]);
	unsigned bad_form = 0, bad_limit = 0, rounds = 400;
	char *body = gn_malloc(20000);
	for (unsigned r = 0; r < rounds; r++) {
		size_t len = 0, want = (size_t)(rnd() % 19000);
		while (len < want) {
			if (rnd() % 8 == 0) {
				/* a run of text longer than the output batch */
				size_t n = (size_t)(rnd() % 6000);
				if (len + n > want)
					n = want - len;
				for (size_t k = 0; k < n; k++)
					body[len + k] = (char)('a' + k % 26);
				len += n;
				continue;
			}
			const char *p = pieces[rnd() % npieces];
			size_t n = strlen(p);
			if (len + n > want)
				break;
			memcpy(body + len, p, n);
			len += n;
		}
		enum gn_dkim_canon c = r % 2 ? GN_DKIM_RELAXED : GN_DKIM_SIMPLE;
		struct gn_buf *ref = reference_body(c, body, len);

		struct gn_buf *out = gn_buf_new(0);
		struct gn_dkim_body *b = dkim_body_new_buf(c, out);
		for (size_t i = 0; i < len;) {
			size_t n = r % 3 == 0 ? 1 + (size_t)(rnd() % 7) : (size_t)(rnd() % 9000);
			if (n > len - i)
				n = len - i;
			gn_dkim_body_update(b, body + i, n);
			i += n;
		}
		gn_dkim_body_finish(b, NULL);
		gn_dkim_body_free(&b);
		if (gn_buf_len(out) != gn_buf_len(ref) ||
		    memcmp(gn_buf_data(out), gn_buf_data(ref), gn_buf_len(ref)) != 0) {
			if (bad_form++ == 0)
				diag("round %u (%s, %zu octets): %zu octets of canonical form, the reference %zu",
				     r, c == GN_DKIM_RELAXED ? "relaxed" : "simple", len, gn_buf_len(out),
				     gn_buf_len(ref));
		}

		uint64_t limit = gn_buf_len(ref) > 0 ? rnd() % (gn_buf_len(ref) + 1) : 0;
		b = dkim_body_new_limit(c, limit);
		gn_dkim_body_update(b, body, len);
		unsigned char got[GN_DKIM_HASH_SIZE], exp[GN_DKIM_HASH_SIZE];
		gn_dkim_body_finish(b, got);
		gn_dkim_body_free(&b);
		gnutls_hash_fast(GNUTLS_DIG_SHA256, gn_buf_data(ref), (size_t)limit, exp);
		if (memcmp(got, exp, sizeof(got)) != 0 && bad_limit++ == 0)
			diag("round %u: l=%llu hashes other octets", r, (unsigned long long)limit);
		gn_buf_free(&out);
		gn_buf_free(&ref);
	}
	gn_free(body);
	is_int(bad_form, 0, "%u random bodies fed in random pieces: canonical form as the RFC's reading", rounds);
	is_int(bad_limit, 0, "... and l= hashes exactly the first l octets of it");
}

int main(void)
{
	test_canonical_forms();
	test_body_random();
	test_tags();
	test_rfc8463();
	test_signer();
	test_limits();
	return done_testing();
}
