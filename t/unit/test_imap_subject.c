/*
 * t/unit/test_imap_subject.c: the base subject of RFC 5256 2.1
 * (modules/imap/base-subject.c), which SORT SUBJECT and THREAD use, with
 * whether the subject marks a reply or forward; and the i;ascii-casemap
 * comparator (RFC 4790 9.2).
 */
#include "tap.h"

#include <string.h>

#include "../../modules/imap/sort.h"

static void test_base_subject(void)
{
	struct gn_pool *pool = gn_pool_new();
	static const struct {
		const char *in, *base;
		bool refwd;
	} cases[] = {
		{ "Hello", "Hello", false },
		{ "", "", false },
		{ "   ", "", false },
		{ "Re:", "", true },
		{ "Re: Hello", "Hello", true },
		{ "RE: re: Re:Hello", "Hello", true },
		{ "Fw: x", "x", true },
		{ "FWD: x", "x", true },
		{ "Re[2]: x", "x", true },
		{ "Re [2] : x", "x", true },
		{ "re  \t:x", "x", true },
		/* Nested leaders with blobs before and inside them. */
		{ "Re: Fwd: [tag] Re: Hello (fwd)", "Hello", true },
		{ "[PATCH] Re: x", "x", true },
		{ "[a][b] fwd: x", "x", true },
		/* A blob alone before the rest goes, but is no reply. */
		{ "[list] topic", "topic", false },
		{ "[list]  topic", "topic", false },
		/* A blob that would leave nothing stays. */
		{ "[list]", "[list]", false },
		{ "Re: [PATCH]", "[PATCH]", true },
		{ "[a] [b]", "[b]", false },
		/* Trailers. */
		{ "x (fwd)", "x", true },
		{ "x (fwd) (FWD)  ", "x", true },
		{ "x(fwd)", "x", true },
		{ "x (fwd) y", "x (fwd) y", false },
		/* The [fwd: ...] wrapper, nested, with leaders inside. */
		{ "[fwd: Re: lunch]", "lunch", true },
		{ "[Fwd: [Fwd: x]]", "x", true },
		{ "Re: [fwd: hi] (fwd)", "hi", true },
		{ "[fwd: a", "[fwd: a", false },
		/* Not leaders. */
		{ "Reply: x", "Reply: x", false },
		{ "Ref: x", "Ref: x", false },
		{ "Fwx: y", "Fwx: y", false },
		{ "Re x", "Re x", false },
		/* White space: tabs, line breaks and runs become one space. */
		{ "hello\t\tworld  ", "hello world", false },
		{ "a\r\n b", "a b", false },
		/* UTF-8 passes untouched. */
		{ "Re: Gr\xc3\xbc\xc3\x9f" "e", "Gr\xc3\xbc\xc3\x9f" "e", true },
		{ "[\xc3\xa9t\xc3\xa9] caf\xc3\xa9", "caf\xc3\xa9", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool refwd = !cases[i].refwd;
		const char *got = imap_base_subject(pool, cases[i].in, &refwd);
		is_str(got, cases[i].base, "base subject of \"%s\"", cases[i].in);
		ok(refwd == cases[i].refwd, "\"%s\" is %sa reply or forward", cases[i].in, cases[i].refwd ? "" : "not ");
	}
	is_str(imap_base_subject(pool, NULL, NULL), "", "no subject: empty");
	gn_pool_free(&pool);
}

static void test_casemap(void)
{
	ok(imap_casemap_cmp("abc", "ABC") == 0, "ASCII letters compare without case");
	ok(imap_casemap_cmp("a", "B") < 0, "a before B");
	ok(imap_casemap_cmp("ab", "abc") < 0, "a prefix first");
	/* Upper case, then octets: "_" (0x5f) is after "A" (0x41). */
	ok(imap_casemap_cmp("_", "a") > 0, "_ after a (mapped to upper case)");
	ok(imap_casemap_cmp("\xc3\xa9", "\xc3\x89") != 0, "letters beyond ASCII keep their case");
	ok(imap_casemap_cmp("", "") == 0, "empty strings are equal");
}

int main(void)
{
	test_base_subject();
	test_casemap();
	return done_testing();
}
