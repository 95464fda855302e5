/*
 * t/fuzz/fuzz_addr.c: libFuzzer target for core/mail/addr.c: the RFC 5321
 * address and path parsers, the RFC 5322 address header parser and PRECIS
 * OpaqueString.  Besides "never crash", it checks that parsing is a fixed
 * point: the canonical and the display form of every parsed address parse
 * back to an equal address, the canonical form is recognised as canonical,
 * and a prepared password prepares to itself.
 *
 * Build with t/fuzz/build.sh, replay its corpus (t/fuzz/corpus/addr/) with
 * t/fuzz/replay.sh, run it as t/fuzz/README says:
 *
 *   t/fuzz/build.sh $OUT
 *   $OUT/fuzz_addr -max_total_time=600 -max_len=1024 $OUT/corpus-addr t/fuzz/corpus/addr
 *
 * The first input byte chooses the path flags and the catchall separators;
 * the rest is the text.
 */
#include "mail/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_roundtrip(struct gn_pool *pool, const struct gn_addr *a)
{
	struct gn_addr *b;
	const char *error, *canonical;
	if (*a->domain == '\0')
		return;	/* the bare postmaster */
	char *s = gn_addr_to_string(pool, a);
	if (gn_addr_parse(pool, s, strlen(s), &b, &error) < 0 || !gn_addr_equal(a, b) ||
	    strcmp(gn_addr_to_string(pool, b), s) != 0)
		abort();
	if (gn_addr_is_canonical(pool, s, &canonical, &error) != 1)
		abort();
	char *d = gn_addr_to_display(pool, a);
	if (gn_addr_parse(pool, d, strlen(d), &b, &error) < 0 || !gn_addr_equal(a, b))
		abort();
	char *p = gn_pool_printf(pool, "<%s>", s);
	if (gn_addr_parse_path(pool, p, strlen(p), 0, &b, NULL, &error) != 1 || !gn_addr_equal(a, b))
		abort();
	if (gn_addr_from_parts(pool, a->localpart, a->domain, &b, &error) < 0 || !gn_addr_equal(a, b))
		abort();
	static const char *seps[] = { "+", "+-", "-.", "\xc2\xa7" };
	for (size_t i = 0; i < sizeof(seps) / sizeof(seps[0]); i++) {
		b = gn_addr_strip_catchall(pool, a, seps[i]);
		s = gn_addr_to_string(pool, b);
		struct gn_addr *c;
		if (gn_addr_parse(pool, s, strlen(s), &c, &error) < 0 || !gn_addr_equal(b, c))
			abort();
	}
	b = gn_addr_fold(pool, a);
	(void)gn_addr_to_string(pool, b);
	(void)gn_addr_needs_smtputf8(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned flags = data[0] & 0x0f;
	const char *s = (const char *)data + 1;
	size_t len = size - 1;
	struct gn_pool *pool = gn_pool_new();
	struct gn_addr *a;
	const char *error, *ascii, *utf8;
	size_t used;

	if (gn_addr_parse(pool, s, len, &a, &error) == 0)
		check_roundtrip(pool, a);
	int r = gn_addr_parse_path(pool, s, len, flags, &a, (data[0] & 0x10) ? &used : NULL, &error);
	if (r > 0)
		check_roundtrip(pool, a);
	if (r >= 0 && (data[0] & 0x10) && used > len)
		abort();
	if (gn_addr_parse_domain(pool, s, len, &ascii, &utf8, &error) == 0) {
		const char *ascii2;
		if (gn_addr_parse_domain(pool, utf8, strlen(utf8), &ascii2, NULL, &error) < 0 ||
		    strcmp(ascii, ascii2) != 0)
			abort();
	}

	struct gn_addr_list list;
	gn_addr_parse_header(pool, s, len, &list, &error);
	for (size_t i = 0; i < list.count; i++)
		if (list.items[i]->addr != NULL)
			check_roundtrip(pool, list.items[i]->addr);

	char *pw, *pw2;
	if (gn_precis_opaque(s, len, &pw, &error) == 0) {
		if (gn_precis_opaque(pw, strlen(pw), &pw2, &error) < 0 || strcmp(pw, pw2) != 0)
			abort();
		gn_free(pw2);
		gn_free(pw);
	}
	gn_pool_free(&pool);
	return 0;
}
