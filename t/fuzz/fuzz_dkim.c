/*
 * t/fuzz/fuzz_dkim.c: libFuzzer target for DKIM's text handling
 * (core/mail/dkim.c, dkim-sign.c, dkim-verify.c): tag lists, key records,
 * header splitting and canonical forms, the body canonicaliser, the data
 * hash's search for b=, the signer on a whole message, and the verifier:
 * DKIM-Signature fields and key records read and checked.
 *
 * The first input byte picks a chunk size; the rest is the text.  Besides
 * not crashing (under AddressSanitizer and UBSan) it checks:
 *   - every parsed tag has a valid name and a value without white space
 *     at either end;
 *   - the relaxed form of every header field has a lower-case name, no
 *     CR, LF or tab, no double space and no space at its end;
 *   - the body's canonical forms are the same fed whole and in chunks,
 *     end in CRLF unless empty (relaxed) and are "\r\n" at least (simple),
 *     and the relaxed one has no space before a CRLF nor two in a row;
 *   - a message the signer takes gets a signature (Ed25519, fixed key)
 *     that the data hash of what it wrote verifies, and that the verifier
 *     passes on the message with the signature on top;
 *   - the verifier, on the input as a message whose keys are the input
 *     itself as a key record, a fixed key, no key or a failed lookup,
 *     gives every signature one of the RFC 8601 results, a reason unless
 *     it passed (neutral past its limit of 3), a header.b without white
 *     space or ';', and wants no key once it has its answer.
 * Build and run: t/fuzz/build.sh, t/fuzz/README.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gn_dkim_key *key;

static void check_tags(struct gn_pool *pool, const char *s, size_t len)
{
	struct gn_dkim_tag *tags;
	size_t n;
	const char *err;
	if (gn_dkim_tags_parse(pool, s, len, &tags, &n, &err) < 0) {
		if (err == NULL || err[0] == '\0')
			abort();
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = tags[i].name, *v = tags[i].value;
		size_t vl = strlen(v);
		if (name[0] == '\0' || strchr(name, '=') || strchr(name, ';') || strchr(name, ' '))
			abort();
		if (vl > 0 && (strchr(" \t\r\n", v[0]) || strchr(" \t\r\n", v[vl - 1])))
			abort();
		if (strchr(v, ';') != NULL)
			abort();
	}
	enum gn_dkim_algorithm alg;
	const unsigned char *k;
	size_t kl;
	int r = gn_dkim_key_record_parse(pool, s, len, &alg, &k, &kl, &err);
	if (r == 1 && alg == GN_DKIM_ED25519_SHA256 && kl != 32)
		abort();
}

static void check_header(struct gn_pool *pool, const char *s, size_t len)
{
	struct gn_dkim_field *f;
	size_t n;
	const char *err;
	if (gn_dkim_header_split(pool, s, len, &f, &n, &err) < 0)
		return;
	struct gn_buf *b = gn_buf_new(0);
	for (size_t i = 0; i < n; i++) {
		gn_buf_clear(b);
		gn_dkim_canon_header(b, GN_DKIM_RELAXED, f[i].data, f[i].len);
		const char *c = gn_buf_data(b);
		size_t cl = gn_buf_len(b);
		const char *colon = memchr(c, ':', cl);
		if (colon == NULL)
			abort();
		for (const char *p = c; p < colon; p++)
			if (*p >= 'A' && *p <= 'Z')
				abort();
		if (memchr(c, '\r', cl) || memchr(c, '\n', cl) || memchr(c, '\t', cl) ||
		    (cl > 0 && c[cl - 1] == ' ') || memmem(c, cl, "  ", 2) || memmem(c, cl, ": ", 2) == colon)
			abort();
	}
	/* The data hash with the input as the signature field: it finds b=
	 * or says there is none. */
	static const char *const names[] = { "from", "to", "subject", "from" };
	unsigned char h[GN_DKIM_HASH_SIZE];
	gn_dkim_header_hash(GN_DKIM_RELAXED, f, n, names, 4, s, len, h, &err);
	gn_buf_free(&b);
}

static struct gn_buf *body(enum gn_dkim_canon c, const char *s, size_t len, size_t step)
{
	struct gn_buf *out = gn_buf_new(0);
	struct gn_dkim_body *b = dkim_body_new_buf(c, out);
	for (size_t i = 0; i < len; i += step)
		gn_dkim_body_update(b, s + i, len - i < step ? len - i : step);
	gn_dkim_body_finish(b, NULL);
	gn_dkim_body_free(&b);
	return out;
}

static void check_body(const char *s, size_t len, size_t step)
{
	for (int c = 0; c < 2; c++) {
		struct gn_buf *whole = body((enum gn_dkim_canon)c, s, len, len > 0 ? len : 1);
		struct gn_buf *chunked = body((enum gn_dkim_canon)c, s, len, step);
		const char *w = gn_buf_data(whole);
		size_t wl = gn_buf_len(whole);
		if (wl != gn_buf_len(chunked) || memcmp(w, gn_buf_data(chunked), wl) != 0)
			abort();
		if (c == GN_DKIM_SIMPLE && wl < 2)
			abort();
		if (wl > 0 && (wl < 2 || w[wl - 2] != '\r' || w[wl - 1] != '\n'))
			abort();
		/* Empty lines at the end are gone. */
		if (wl >= 4 && memcmp(w + wl - 4, "\r\n\r\n", 4) == 0)
			abort();
		if (c == GN_DKIM_RELAXED && (memmem(w, wl, " \r\n", 3) || memmem(w, wl, "  ", 2) ||
					     memchr(w, '\t', wl)))
			abort();
		gn_buf_free(&whole);
		gn_buf_free(&chunked);
	}
}

static void check_signer(struct gn_pool *pool, const char *s, size_t len, size_t step)
{
	if (key == NULL) {
		static const unsigned char seed[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };
		const char *err;
		if (gn_dkim_key_from_ed25519_seed(seed, &key, &err) < 0)
			abort();
	}
	struct gn_dkim_signer *sg = gn_dkim_signer_new();
	const char *err;
	for (size_t i = 0; i < len; i += step)
		if (gn_dkim_signer_update(sg, s + i, len - i < step ? len - i : step, &err) < 0)
			goto out;
	if (gn_dkim_signer_finish(sg, &err) < 0)
		goto out;
	struct gn_buf *out = gn_buf_new(0);
	if (gn_dkim_signer_sign(sg, "example.org", "fuzz", key, 1700000000, 0, out, &err) < 0)
		abort();
	/* The field written is one field, and its tags parse. */
	const char *f = gn_buf_data(out);
	size_t fl = gn_buf_len(out) - 2;
	const char *colon = memchr(f, ':', fl);
	if (colon == NULL || f[fl] != '\r')
		abort();
	struct gn_dkim_tag *tags;
	size_t n;
	if (gn_dkim_tags_parse(pool, colon + 1, fl - (size_t)(colon + 1 - f), &tags, &n, &err) < 0 ||
	    gn_dkim_tags_get(tags, n, "b") == NULL || gn_dkim_tags_get(tags, n, "bh") == NULL)
		abort();
	/* The verifier passes what the signer signed. */
	struct gn_dkim_verifier *v = gn_dkim_verifier_new(1, 1700000000);
	const char *rec = gn_dkim_key_record(pool, key);
	if (gn_dkim_verifier_update(v, gn_buf_data(out), gn_buf_len(out), &err) == 0) {
		int fed = 0;
		for (size_t i = 0; i < len && fed == 0; i += step)
			fed = gn_dkim_verifier_update(v, s + i, len - i < step ? len - i : step, &err);
		if (fed == 0 && gn_dkim_verifier_finish(v, &err) == 0) {
			size_t rl = strlen(rec);
			gn_dkim_verifier_key(v, 0, GN_DKIM_KEY_RECORDS, &rec, &rl, 1, NULL);
			const struct gn_dkim_verify_result *r = gn_dkim_verifier_result(v, 0);
			if (r == NULL || r->status != GN_DKIM_PASS)
				abort();
		}
	}
	gn_dkim_verifier_free(&v);
	gn_buf_free(&out);
out:
	gn_dkim_signer_free(&sg);
}

static void check_verifier(const char *s, size_t len, size_t step)
{
	static const char ed_rec[] = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
	struct gn_dkim_verifier *v = gn_dkim_verifier_new(3, 1700000000);
	const char *err;
	for (size_t i = 0; i < len; i += step)
		if (gn_dkim_verifier_update(v, s + i, len - i < step ? len - i : step, &err) < 0)
			break;
	if (gn_dkim_verifier_finish(v, &err) < 0) {
		if (gn_dkim_verifier_count(v) != 0 || err == NULL)
			abort();
		gn_dkim_verifier_free(&v);
		return;
	}
	size_t n = gn_dkim_verifier_count(v);
	for (size_t i = 0; i < n; i++) {
		if (gn_dkim_verifier_key_name(v, i) == NULL)
			continue;
		const char *texts[2] = { s, ed_rec };
		size_t lens[2] = { len, sizeof(ed_rec) - 1 };
		switch (i % 4) {
		case 0:
			gn_dkim_verifier_key(v, i, GN_DKIM_KEY_RECORDS, texts, lens, 1, NULL);
			break;
		case 1:
			gn_dkim_verifier_key(v, i, GN_DKIM_KEY_RECORDS, texts + 1, lens + 1, 1, NULL);
			break;
		case 2:
			gn_dkim_verifier_key(v, i, GN_DKIM_KEY_NONE, NULL, NULL, 0, "NXDOMAIN");
			break;
		default:
			gn_dkim_verifier_key(v, i, GN_DKIM_KEY_TEMPFAIL, NULL, NULL, 0, NULL);
			break;
		}
		if (gn_dkim_verifier_key_name(v, i) != NULL)
			abort();
	}
	for (size_t i = 0; i < n; i++) {
		const struct gn_dkim_verify_result *r = gn_dkim_verifier_result(v, i);
		if (r == NULL || r->status <= GN_DKIM_NONE || r->status > GN_DKIM_PERMERROR)
			abort();
		if ((r->status == GN_DKIM_PASS) != (r->reason == NULL))
			abort();
		if (i >= 3 && r->status != GN_DKIM_NEUTRAL)
			abort();
		if (r->header_b != NULL && strpbrk(r->header_b, " \t\r\n;") != NULL)
			abort();
		if (r->body_truncated && r->body_length < 0)
			abort();
	}
	if (gn_dkim_verifier_result(v, n) != NULL)
		abort();
	gn_dkim_verifier_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = 1 + data[0] % 61;
	const char *s = (const char *)data + 1;
	size_t len = size - 1;
	struct gn_pool *pool = gn_pool_new();
	check_tags(pool, s, len);
	check_header(pool, s, len);
	check_body(s, len, step);
	check_signer(pool, s, len, step);
	check_verifier(s, len, step);
	gn_pool_free(&pool);
	return 0;
}
