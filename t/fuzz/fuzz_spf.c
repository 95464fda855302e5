/*
 * t/fuzz/fuzz_spf.c: libFuzzer target for the mailauth module's SPF record
 * parser and macro expander (modules/mailauth/spf-record.c).
 *
 * The input is a TXT record's text.  Besides not crashing (under
 * AddressSanitizer and UBSan):
 *   - a record that parses parses again, to the same terms, from its
 *     terms' texts joined by single spaces (the parser keeps each term as
 *     written, and nothing between terms matters but the spaces);
 *   - every domain-spec of a parsed record expands (with IPv4 and IPv6
 *     clients) to at most 253 octets (or a single label) without a
 *     trailing dot, and an
 *     unknown modifier's value expands too: what the parser accepted, the
 *     evaluator can use;
 *   - the input as an explanation (exp= text): when spf_macro_check()
 *     accepts it, spf_macro_expand() fails only on the size limit.
 * Build and run: t/fuzz/build.sh, t/fuzz/README.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_term(const struct spf_term *a, const struct spf_term *b)
{
	return a->kind == b->kind && a->mechanism == b->mechanism &&
	       a->qualifier == b->qualifier && a->cidr4 == b->cidr4 && a->cidr6 == b->cidr6 &&
	       memcmp(a->ip, b->ip, sizeof(a->ip)) == 0 && strcmp(a->text, b->text) == 0 &&
	       ((a->spec == NULL && b->spec == NULL) ||
		(a->spec != NULL && b->spec != NULL && strcmp(a->spec, b->spec) == 0));
}

static void expand_all(struct gn_pool *pool, const struct spf_record *rec,
		       const struct spf_macro_env *env)
{
	for (size_t i = 0; i < rec->n; i++) {
		const struct spf_term *t = &rec->terms[i];
		if (t->spec == NULL)
			continue;
		unsigned flags = t->kind == SPF_TERM_UNKNOWN ? 0 : SPF_MACRO_DOMAIN;
		const char *err;
		const char *d = spf_macro_expand(pool, t->spec, strlen(t->spec), flags, env, &err);
		if (d == NULL) {
			if (strstr(err, "size limit") == NULL)
				abort();	/* the parser let an invalid spec through */
			continue;
		}
		size_t len = strlen(d);
		/* Cut at the left while a label can go (RFC 7208 7.3). */
		if (flags == SPF_MACRO_DOMAIN && ((len > 253 && strchr(d, '.') != NULL) ||
						  (len > 0 && d[len - 1] == '.')))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gn_pool *pool = gn_pool_new();
	const char *text = (const char *)data;
	struct spf_macro_env env = {
		.sender = "strong-bad+x@email.example.com", .local = "strong-bad+x",
		.sender_domain = "email.example.com", .domain = "email.example.com",
		.family = 4, .helo = "mx.example.org", .receiver = "mx.example.net",
		.validated = "mail.example.com", .now = 1234567890,
	};
	inet_pton(AF_INET, "192.0.2.3", env.ip);

	struct spf_record *rec;
	const char *err;
	if (spf_record_parse(pool, text, size, &rec, &err) == 0) {
		struct gn_buf *b = gn_buf_new(0);
		gn_buf_append(b, text, 6);	/* "v=spf1" in its case */
		for (size_t i = 0; i < rec->n; i++)
			gn_buf_printf(b, " %s", rec->terms[i].text);
		struct spf_record *again;
		if (spf_record_parse(pool, gn_buf_data(b), gn_buf_len(b), &again, &err) != 0 ||
		    again->n != rec->n || again->has_all != rec->has_all ||
		    (again->redirect == NULL) != (rec->redirect == NULL) ||
		    (again->exp == NULL) != (rec->exp == NULL))
			abort();
		for (size_t i = 0; i < rec->n; i++)
			if (!same_term(&rec->terms[i], &again->terms[i]))
				abort();
		gn_buf_free(&b);
		expand_all(pool, rec, &env);
		env.family = 6;
		inet_pton(AF_INET6, "2001:db8::cb01", env.ip);
		expand_all(pool, rec, &env);
	}

	if (spf_macro_check(text, size, SPF_MACRO_EXP, NULL, &err) == 0 &&
	    spf_macro_expand(pool, text, size, SPF_MACRO_EXP, &env, &err) == NULL &&
	    strstr(err, "size limit") == NULL)
		abort();
	gn_pool_free(&pool);
	return 0;
}
