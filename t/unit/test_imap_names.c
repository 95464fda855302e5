/*
 * t/unit/test_imap_names.c: mailbox names between the store and IMAP
 * (modules/imap/mailbox-name.c): modified UTF-7 (RFC 3501 5.1.3) both
 * ways, strict decoding, INBOX, and LIST patterns.
 */
#include "tap.h"

#include <string.h>

#include "../../modules/imap/imap.h"

static void test_mutf7(void)
{
	struct gn_pool *pool = gn_pool_new();
	/* RFC 3501 5.1.3's example, and more. */
	static const char *const pairs[][2] = {
		{ "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
		  "~peter/mail/&U,BTFw-/&ZeVnLIqe-" },
		{ "Entw\xc3\xbc" "rfe", "Entw&APw-rfe" },
		{ "a&b", "a&-b" },
		{ "&", "&-" },
		{ "\xf0\x9f\x98\x80", "&2D3eAA-" },
		{ "Gel\xc3\xb6schte Objekte", "Gel&APY-schte Objekte" },
		{ "", "" },
		{ "plain", "plain" },
	};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		is_str(imap_mutf7_encode(pool, pairs[i][0]), pairs[i][1], "encode %s", pairs[i][1]);
		is_str(imap_mutf7_decode(pool, pairs[i][1]), pairs[i][0], "decode %s", pairs[i][1]);
	}
	static const char *const bad[] = {
		"&AGE-",	/* "a" in a shift: printable ASCII must be itself */
		"&APw-&APw-",	/* two shifts in a row */
		"&APw",		/* no "-" */
		"&2D0-",	/* a lone high surrogate */
		"&3gA-",	/* a lone low surrogate */
		"&APx-",	/* leftover bits that are not zero */
		"&-&",		/* a shift that never starts */
		"&AP-",		/* too few bits for a character */
		"a\xc3\xbc",	/* 8-bit octets are no modified UTF-7 */
		"&A/w-",	/* "/" is not modified base64 */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(imap_mutf7_decode(pool, bad[i]) == NULL, "refused: %s", bad[i]);
	gn_pool_free(&pool);
}

static void test_wire(void)
{
	struct gn_pool *pool = gn_pool_new();
	struct imap_session s;
	memset(&s, 0, sizeof(s));
	is_str(imap_name_to_wire(&s, pool, "Inbox"), "INBOX", "Inbox is INBOX on the wire");
	is_str(imap_name_to_wire(&s, pool, "Inbox/Entw\xc3\xbcrfe"), "INBOX/Entw&APw-rfe", "and its children");
	is_str(imap_name_to_wire(&s, pool, "Inboxes"), "Inboxes", "a name that starts with Inbox is not it");
	is_str(imap_name_from_wire(&s, pool, "inbox"), "Inbox", "inbox in any case");
	is_str(imap_name_from_wire(&s, pool, "iNbOx/a"), "Inbox/a", "also as a parent");
	ok(imap_name_from_wire(&s, pool, "a&AGE-") == NULL, "a name that does not decode");
	s.enabled_utf8 = true;
	is_str(imap_name_to_wire(&s, pool, "Entw\xc3\xbcrfe"), "Entw\xc3\xbcrfe", "UTF8=ACCEPT: as it is");
	gn_pool_free(&pool);
}

static void test_patterns(void)
{
	static const struct {
		const char *pattern, *name;
		bool match;
	} cases[] = {
		{ "*", "a/b/c", true },
		{ "%", "a", true },
		{ "%", "a/b", false },
		{ "a/%", "a/b", true },
		{ "a/%", "a/b/c", false },
		{ "a/*", "a/b/c", true },
		{ "a/*", "a", false },
		{ "%/%", "a/b", true },
		{ "%b%/c", "xbyb/c", true },
		{ "%b%/c", "xb/yb/c", false },
		{ "*b%", "a/b/cb", true },
		{ "*b%", "a/b/c/d", false },
		{ "a%", "a", true },
		{ "", "", true },
		{ "a", "ab", false },
		{ "Inbox", "Inbox", true },
		{ "***%***%", "x/y", true },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ok(imap_pattern_match(cases[i].pattern, cases[i].name) == cases[i].match, "\"%s\" %s \"%s\"",
		   cases[i].pattern, cases[i].match ? "matches" : "does not match", cases[i].name);
}

int main(void)
{
	test_mutf7();
	test_wire();
	test_patterns();
	return done_testing();
}
