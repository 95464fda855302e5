/*
 * t/unit/test_store.c: the store (core/store/store.c, gannet/store.h) against a
 * real PostgreSQL: domains, accounts, addresses (NFC, Punycode, catchall),
 * mailboxes (hierarchy, rename, Inbox, subscriptions), blobs stored once and
 * read in chunks (a 50 MB body with bounded memory), messages with counters
 * checked against a recount by SQL after every kind of change, UIDNEXT and
 * modseq only growing, transactions of the caller, and NOTIFY seen by a
 * listener on another connection.
 */
#include "main.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <gnutls/crypto.h>

#include "pgtest.h"
#include "tap.h"

static PGconn *listener;	/* a second connection, LISTENing */

/* ---- helpers ---- */

/* The first value of a query through db.c ("" without rows), or NULL. */
static char *query1(const char *sql, int n, const char *const *params)
{
	const char *err;
	PGresult *r = db_query(sql, n, params, &err);
	if (r == NULL) {
		diag("%s: %s", sql, err);
		return NULL;
	}
	char *v = gn_strdup(PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	return v;
}

static long long query_int(const char *sql, int n, const char *const *params)
{
	char *v = query1(sql, n, params);
	long long r = v ? strtoll(v, NULL, 10) : -1;
	gn_free(v);
	return r;
}

/* Every counter equals a recount of the rows. */
static bool counters_exact(void)
{
	long long bad_mb = query_int(
		"SELECT count(*) FROM gn_mailboxes mb, LATERAL (SELECT count(*) AS n, "
		"count(*) FILTER (WHERE flags & 1 = 0) AS u, count(*) FILTER (WHERE flags & 8 <> 0) AS d, "
		"coalesce(sum(size), 0) AS s, coalesce(sum(size) FILTER (WHERE flags & 8 <> 0), 0) AS ds "
		"FROM gn_messages m WHERE m.account_id = mb.account_id AND m.mailbox_id = mb.id "
		"AND m.uid IS NOT NULL) r "
		"WHERE (mb.messages, mb.unseen, mb.deleted, mb.size, mb.deleted_size) IS DISTINCT FROM "
		"(r.n, r.u, r.d, r.s, r.ds)", 0, NULL);
	long long bad_acc = query_int(
		"SELECT count(*) FROM gn_accounts a WHERE a.total_size <> "
		"(SELECT coalesce(sum(size), 0) FROM gn_messages m WHERE m.account_id = a.id "
		"AND m.uid IS NOT NULL)", 0, NULL);
	long long bad_blob = query_int(
		"SELECT count(*) FROM gn_blobs b WHERE b.hash IS NOT NULL AND b.refcount <> "
		"(SELECT count(*) FROM gn_messages m WHERE m.blob_id = b.id)", 0, NULL);
	if (bad_mb != 0 || bad_acc != 0 || bad_blob != 0)
		diag("counters off: mailboxes %lld, accounts %lld, blobs %lld", bad_mb, bad_acc, bad_blob);
	return bad_mb == 0 && bad_acc == 0 && bad_blob == 0;
}

/* The notifications the listener got so far, "payload;payload;". */
static char *notes(void)
{
	struct gn_buf *b = gn_buf_new(0);
	PQconsumeInput(listener);
	PGnotify *n;
	while ((n = PQnotifies(listener)) != NULL) {
		gn_buf_printf(b, "%s;", n->extra);
		PQfreemem(n);
	}
	/* A round trip makes sure everything sent before is in. */
	PQclear(PQexec(listener, "SELECT 1"));
	while ((n = PQnotifies(listener)) != NULL) {
		gn_buf_printf(b, "%s;", n->extra);
		PQfreemem(n);
	}
	return gn_buf_steal(&b);
}

static void blob_of(const char *s, unsigned char hash[GN_STORE_HASH_SIZE])
{
	const char *err = NULL;
	struct gn_store_blob_writer *w = gn_store_blob_writer_new();
	if (gn_store_blob_write(w, s, strlen(s), &err) < 0 ||
	    gn_store_blob_finish(w, hash, NULL, &err) < 0)
		diag("blob: %s", err);
	gn_store_blob_writer_free(&w);
}

/* Reads a whole body in pieces of size piece. */
static char *body_read_all(struct gn_store_body *b, size_t piece)
{
	struct gn_buf *out = gn_buf_new(0);
	char *buf = gn_malloc(piece);
	uint64_t off = 0;
	const char *err;
	for (;;) {
		size_t got;
		if (gn_store_body_read(b, off, buf, piece, &got, &err) < 0) {
			diag("read: %s", err);
			break;
		}
		if (got == 0)
			break;
		gn_buf_append(out, buf, got);
		off += got;
	}
	gn_free(buf);
	return gn_buf_steal(&out);
}

static long max_rss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* ---- domains ---- */

static void test_domains(void)
{
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	struct gn_store_domain *d;

	ok(gn_store_domain_add(pool, "Example.COM", "+", &d, &err) == 0, "domain add");
	is_str(d->name, "example.com", "domain name stored lower case");
	is_str(d->catchall_separators, "+", "with its catchall separators");
	ok(gn_store_domain_add(pool, "b\xc3\xbc" "cher.example", NULL, &d, &err) == 0,
	   "a Unicode domain is added");
	is_str(d->name, "xn--bcher-kva.example", "stored as A-labels");
	is_str(d->name_utf8, "b\xc3\xbc" "cher.example", "with the U-labels for display");
	ok(gn_store_domain_add(pool, "xn--bcher-kva.example", NULL, NULL, &err) < 0,
	   "the same domain in Punycode is refused");
	like(err, "domain exists", "as existing");
	ok(gn_store_domain_add(pool, "bad..domain", NULL, NULL, &err) < 0, "an invalid domain is refused");
	like(err, "bad..domain", "the error names it");
	ok(gn_store_domain_add(pool, "other.example", "a", NULL, &err) < 0,
	   "a letter as catchall separator is refused");
	like(err, "separators", "saying which argument");
	ok(gn_store_domain_add(pool, "multi.example", "+-", NULL, &err) == 0, "two separators");

	struct gn_store_domain **list;
	size_t n;
	ok(gn_store_domain_list(pool, &list, &n, &err) == 0 && n == 3, "domain list has 3");
	is_str(n == 3 ? gn_store_domain_name(list[0]) : "", "example.com", "sorted by name");
	is_int(gn_store_domain_find(pool, "B\xc3\x9c" "CHER.example", &d, &err), 1,
	       "find by an upper-case Unicode spelling");
	is_int(gn_store_domain_find(pool, "nope.example", &d, &err), 0, "unknown domain not found");
	ok(gn_store_domain_set_catchall("multi.example", "-", &err) == 1, "set catchall separators");
	is_int(gn_store_domain_remove("multi.example", &err), 1, "domain remove");
	is_int(gn_store_domain_remove("multi.example", &err), 0, "removing it again: not found");
	gn_pool_free(&pool);
}

/* ---- accounts and addresses ---- */

static int64_t alice, bob;

static void test_accounts(void)
{
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	struct gn_store_account *a;

	ok(gn_store_account_add(pool, "alice", "alice@example.com", "Alice Liddell", &a, &err) == 0,
	   "account add");
	alice = a->id;
	is_str(a->full_name, "Alice Liddell", "full name kept");
	ok(a->login_disabled == NULL, "login enabled");

	struct gn_store_mailbox **mbs;
	size_t n;
	ok(gn_store_mailbox_list(pool, alice, &mbs, &n, &err) == 0 && n == 6,
	   "a new account has 6 mailboxes");
	static const char *const want[] = { "Archive", "Drafts", "Inbox", "Junk", "Sent", "Trash" };
	static const enum gn_store_special_use uses[] = {
		GN_STORE_SPECIAL_ARCHIVE, GN_STORE_SPECIAL_DRAFTS, GN_STORE_SPECIAL_NONE,
		GN_STORE_SPECIAL_JUNK, GN_STORE_SPECIAL_SENT, GN_STORE_SPECIAL_TRASH };
	bool names_ok = n == 6, uses_ok = n == 6, subs_ok = n == 6, uv_ok = n == 6;
	for (size_t i = 0; i < n && i < 6; i++) {
		names_ok &= strcmp(gn_store_mailbox_name(mbs[i]), want[i]) == 0;
		uses_ok &= gn_store_mailbox_special_use(mbs[i]) == uses[i];
		subs_ok &= gn_store_mailbox_subscribed(mbs[i]);
		uv_ok &= gn_store_mailbox_uidvalidity(mbs[i]) != 0 &&
			gn_store_mailbox_uidnext(mbs[i]) == 1;
		for (size_t j = 0; j < i; j++)
			uv_ok &= gn_store_mailbox_uidvalidity(mbs[i]) !=
				gn_store_mailbox_uidvalidity(mbs[j]);
	}
	ok(names_ok, "Inbox, Sent, Drafts, Trash, Junk, Archive");
	ok(uses_ok, "with their special-use attributes");
	ok(subs_ok, "all subscribed");
	ok(uv_ok, "each with its own UIDVALIDITY and UIDNEXT 1");
	struct gn_store_mailbox *mb;
	ok(gn_store_mailbox_find_special(pool, alice, GN_STORE_SPECIAL_JUNK, &mb, &err) == 1 &&
	   strcmp(mb->name, "Junk") == 0, "find the Junk mailbox by special use");
	is_str(gn_store_special_use_name(GN_STORE_SPECIAL_SENT), "\\Sent", "special-use name");

	ok(gn_store_account_add(pool, "alice", "alice2@example.com", NULL, NULL, &err) < 0 &&
	   strstr(err, "account exists") != NULL, "a second account alice is refused");
	ok(gn_store_account_add(pool, "carol", "carol@unknown.example", NULL, NULL, &err) < 0 &&
	   strstr(err, "unknown domain: unknown.example") != NULL, "an address in an unknown domain is refused");
	is_int(gn_store_account_find(pool, "carol", &a, &err), 0, "and no account is left behind");
	ok(gn_store_account_add(pool, "carol", "ALICE@example.com", NULL, NULL, &err) < 0 &&
	   strstr(err, "address exists") != NULL, "an address in use (any case) is refused");
	ok(gn_store_account_add(pool, "bad\x01name", "x@example.com", NULL, NULL, &err) < 0 &&
	   strstr(err, "account name") != NULL, "a control character in the name is refused");
	ok(gn_store_account_add(pool, "bob", "bob@example.com", NULL, &a, &err) == 0, "second account");
	bob = a->id;

	is_int(gn_store_account_disable("bob", "moved to another server", &err), 1, "disable");
	ok(gn_store_account_find(pool, "bob", &a, &err) == 1 && a->login_disabled != NULL &&
	   strcmp(a->login_disabled, "moved to another server") == 0, "disabled with the message");
	is_int(gn_store_account_enable("bob", &err), 1, "enable");
	ok(gn_store_account_get(pool, bob, &a, &err) == 1 && a->login_disabled == NULL, "enabled again");
	is_int(gn_store_account_disable("nobody", NULL, &err), 0, "disabling an unknown account: 0");
	is_int(gn_store_account_set_full_name(bob, "Bob", &err), 1, "set full name");

	struct gn_store_account **accs;
	ok(gn_store_account_list(pool, &accs, &n, &err) == 0 && n == 2 &&
	   strcmp(gn_store_account_name(accs[0]), "alice") == 0, "account list");

	/* addresses: NFD input, Unicode domain */
	ok(gn_store_address_add("E\xcc\x81lise@b\xc3\xbc" "cher.example", "alice", &err) == 0,
	   "address add with a decomposed accent");
	ok(gn_store_address_add("x@nowhere.example", "alice", &err) < 0 &&
	   strstr(err, "unknown domain: nowhere.example") != NULL, "address in unknown domain refused");
	ok(gn_store_address_add("x@example.com", "nobody", &err) < 0 &&
	   strstr(err, "unknown account: nobody") != NULL, "address for unknown account refused");
	ok(gn_store_address_add("not an address", "alice", &err) < 0 &&
	   strstr(err, "invalid address \"not an address\"") != NULL, "invalid address refused");
	ok(gn_store_address_add("\xc3\xa9lise@xn--bcher-kva.example", "bob", &err) < 0 &&
	   strstr(err, "address exists") != NULL, "the NFC/Punycode spelling is the same address");

	struct gn_store_address **addrs;
	ok(gn_store_address_list(pool, alice, &addrs, &n, &err) == 0 && n == 2, "alice has 2 addresses");
	is_str(n == 2 ? gn_store_address_display(addrs[1]) : "", "\xc3\x89lise@b\xc3\xbc" "cher.example",
	       "display form: NFC localpart, U-label domain");
	is_str(n == 2 ? gn_store_address_canonical(addrs[1]) : "", "\xc3\x89lise@xn--bcher-kva.example",
	       "canonical form: A-label domain");
	ok(n == 2 && gn_store_address_account_id(addrs[1]) == alice &&
	   strcmp(gn_store_address_account_name(addrs[1]), "alice") == 0,
	   "each address names its account");

	/* lookups */
	static const char *const spellings[] = {
		"\xc3\x89lise@b\xc3\xbc" "cher.example",	/* NFC */
		"E\xcc\x81lise@xn--bcher-kva.example",	/* NFD, Punycode */
		"\xc3\xa9LISE@B\xc3\x9c" "CHER.EXAMPLE",	/* other case */
	};
	for (size_t i = 0; i < 3; i++) {
		struct gn_addr *ad;
		int64_t id = 0;
		const char *canon = NULL;
		gn_addr_parse(pool, spellings[i], strlen(spellings[i]), &ad, &err);
		ok(gn_store_address_lookup(pool, ad, &id, &canon, &err) == 1 && id == alice,
		   "lookup %zu lands on alice", i);
		is_str(canon, "\xc3\x89lise@xn--bcher-kva.example", "on the configured address");
	}
	struct gn_addr *ad;
	int64_t id = 0;
	const char *canon = NULL;
	gn_addr_parse(pool, "Alice+news@example.com", 22, &ad, &err);
	ok(gn_store_address_lookup(pool, ad, &id, &canon, &err) == 1 && id == alice,
	   "catchall: alice+news@ reaches alice");
	is_str(canon, "alice@example.com", "as alice@example.com");
	gn_addr_parse(pool, "alice-news@example.com", 22, &ad, &err);
	is_int(gn_store_address_lookup(pool, ad, &id, &canon, &err), 0,
	       "\"-\" is no separator of example.com");
	gn_addr_parse(pool, "alice@other.example", 19, &ad, &err);
	is_int(gn_store_address_lookup(pool, ad, &id, &canon, &err), 0, "unknown domain: 0");
	gn_addr_parse(pool, "\xc3\xa9lise+x@b\xc3\xbc" "cher.example", 22, &ad, &err);
	is_int(gn_store_address_lookup(pool, ad, &id, &canon, &err), 0,
	       "no catchall on a domain without separators");

	ok(gn_store_address_remove("bob@example.com", &err) < 0 && strstr(err, "last") != NULL,
	   "removing an account's last address is refused");
	ok(gn_store_address_add("robert@example.com", "bob", &err) == 0, "address add");
	is_int(gn_store_address_remove("BOB@example.com", &err), 1, "address remove (any case)");
	is_int(gn_store_address_remove("bob@example.com", &err), 0, "gone");
	ok(gn_store_domain_remove("xn--bcher-kva.example", &err) < 0 && strstr(err, "used by 1") != NULL,
	   "a domain in use cannot be removed");
	gn_pool_free(&pool);
}

/* ---- mailboxes ---- */

static void test_mailboxes(void)
{
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	struct gn_store_mailbox *mb;

	is_int(gn_store_mailbox_create(pool, alice, "Lists/gannet/dev", GN_STORE_SPECIAL_NONE, &mb, &err), 1,
	       "create a mailbox three levels deep");
	is_int(gn_store_mailbox_find(pool, alice, "Lists", NULL, &err), 1, "its parent exists");
	is_int(gn_store_mailbox_find(pool, alice, "Lists/gannet", NULL, &err), 1, "and the next one");
	is_int(gn_store_mailbox_create(pool, alice, "Lists/gannet", GN_STORE_SPECIAL_NONE, &mb, &err), 0,
	       "creating an existing one: 0");
	is_int(gn_store_mailbox_create(pool, alice, "INBOX", GN_STORE_SPECIAL_NONE, NULL, &err), 0,
	       "INBOX is Inbox");
	ok(gn_store_mailbox_find(pool, alice, "inBox", &mb, &err) == 1 && strcmp(mb->name, "Inbox") == 0,
	   "found by any case");
	is_int(gn_store_mailbox_create(pool, alice, "inbox/sub", GN_STORE_SPECIAL_NONE, &mb, &err), 1,
	       "a child of inbox");
	is_str(mb->name, "Inbox/sub", "is named under Inbox");
	ok(gn_store_mailbox_create(pool, alice, "Cafe\xcc\x81", GN_STORE_SPECIAL_NONE, NULL, &err) < 0 &&
	   strstr(err, "NFC") != NULL, "a name not in NFC is refused");
	ok(gn_store_mailbox_create(pool, alice, "a//b", GN_STORE_SPECIAL_NONE, NULL, &err) < 0,
	   "an empty level is refused");
	ok(gn_store_mailbox_create(pool, alice, "bad\xff", GN_STORE_SPECIAL_NONE, NULL, &err) < 0 &&
	   strstr(err, "UTF-8") != NULL, "invalid UTF-8 is refused");
	ok(gn_store_mailbox_create(pool, alice, "a*", GN_STORE_SPECIAL_NONE, NULL, &err) < 0,
	   "a wildcard is refused");
	is_int(gn_store_mailbox_create(pool, alice, "Caf\xc3\xa9", GN_STORE_SPECIAL_NONE, NULL, &err), 1,
	       "an NFC name is fine");

	/* rename with children, subscriptions follow */
	ok(gn_store_subscribe(alice, "Lists/gannet/dev", &err) == 1, "subscribe");
	is_int(gn_store_subscribe(alice, "Lists/gannet/dev", &err), 0, "subscribe again: 0");
	ok(gn_store_subscribe(alice, "Does/not/exist", &err) == 1, "subscribe to a name that does not exist");
	struct gn_store_mailbox *before;
	gn_store_mailbox_find(pool, alice, "Lists/gannet/dev", &before, &err);
	is_int(gn_store_mailbox_rename(alice, "Lists", "Archive/2024/Lists", &err), 1, "rename with children");
	ok(gn_store_mailbox_find(pool, alice, "Archive/2024/Lists/gannet/dev", &mb, &err) == 1 &&
	   mb->id == before->id && mb->uidvalidity == before->uidvalidity,
	   "the grandchild moved, same mailbox and UIDVALIDITY");
	ok(mb->subscribed, "its subscription moved with it");
	is_int(gn_store_mailbox_find(pool, alice, "Lists/gannet", NULL, &err), 0, "old names are gone");
	is_int(gn_store_mailbox_find(pool, alice, "Archive/2024", NULL, &err), 1, "the new parent was created");
	ok(gn_store_mailbox_rename(alice, "Archive", "Archive/x", &err) < 0, "renaming inside itself is refused");
	ok(gn_store_mailbox_rename(alice, "Sent", "Drafts", &err) < 0 && strstr(err, "exists") != NULL,
	   "renaming onto an existing mailbox is refused");
	is_int(gn_store_mailbox_rename(alice, "Nope", "Nope2", &err), 0, "renaming a missing one: 0");

	const char **subs;
	size_t n;
	ok(gn_store_subscription_list(pool, alice, &subs, &n, &err) == 0, "subscription list");
	bool has_missing = false, has_moved = false;
	for (size_t i = 0; i < n; i++) {
		has_missing |= strcmp(subs[i], "Does/not/exist") == 0;
		has_moved |= strcmp(subs[i], "Archive/2024/Lists/gannet/dev") == 0;
	}
	ok(has_missing && has_moved, "lists the missing name and the moved one");
	is_int(gn_store_unsubscribe(alice, "Does/not/exist", &err), 1, "unsubscribe");
	is_int(gn_store_unsubscribe(alice, "Does/not/exist", &err), 0, "unsubscribe again: 0");

	ok(gn_store_mailbox_delete(alice, "Inbox", &err) < 0, "Inbox cannot be deleted");
	is_int(gn_store_mailbox_delete(alice, "Archive/2024/Lists", &err), 1, "delete a mailbox with children");
	is_int(gn_store_mailbox_find(pool, alice, "Archive/2024/Lists/gannet", NULL, &err), 1,
	       "its children stay");
	is_int(gn_store_mailbox_delete(alice, "Archive/2024/Lists", &err), 0, "deleting again: 0");
	gn_store_mailbox_create(pool, alice, "Gone", GN_STORE_SPECIAL_NONE, &before, &err);
	gn_store_mailbox_delete(alice, "Gone", &err);
	gn_store_mailbox_create(pool, alice, "Gone", GN_STORE_SPECIAL_NONE, &mb, &err);
	ok(mb->uidvalidity != before->uidvalidity, "a name used again gets a new UIDVALIDITY");
	gn_pool_free(&pool);
}

/* ---- blobs ---- */

/* Deterministic bytes: byte i of the big body. */
static unsigned char big_byte(uint64_t i)
{
	uint64_t x = i * 0x9E3779B97F4A7C15ULL;
	return (unsigned char)((x >> 56) ^ (i & 0xff));
}

static void test_blobs(void)
{
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	unsigned char h1[GN_STORE_HASH_SIZE], h2[GN_STORE_HASH_SIZE];

	blob_of("Subject: x\r\n\r\nhello\r\n", h1);
	blob_of("Subject: x\r\n\r\nhello\r\n", h2);
	ok(memcmp(h1, h2, sizeof(h1)) == 0, "the same body gives the same hash");
	const char *p[1] = { gn_pool_printf(pool, "\\x%s", gn_store_hash_hex(pool, h1)) };
	is_int(query_int("SELECT count(*) FROM gn_blobs WHERE hash = $1", 1, p), 1, "and is stored once");
	unsigned char want[GN_STORE_HASH_SIZE];
	const char *hello = "Subject: x\r\n\r\nhello\r\n";
	gnutls_hash_fast(GNUTLS_DIG_SHA256, hello, strlen(hello), want);
	ok(memcmp(h1, want, sizeof(want)) == 0, "the hash is SHA-256");

	/* 50 MB, written in 64 KiB pieces and read back in 100 000 byte
	 * pieces: the process never grows by anything near 50 MB. */
	const uint64_t total = 50ULL * 1024 * 1024 + 12345;
	long rss0 = max_rss_kb();
	gnutls_hash_hd_t hh;
	gnutls_hash_init(&hh, GNUTLS_DIG_SHA256);
	struct gn_store_blob_writer *w = gn_store_blob_writer_new();
	unsigned char *piece = gn_malloc(65536);
	bool wrote = true;
	for (uint64_t off = 0; off < total && wrote;) {
		size_t n = total - off < 65536 ? (size_t)(total - off) : 65536;
		for (size_t i = 0; i < n; i++)
			piece[i] = big_byte(off + i);
		gnutls_hash(hh, piece, n);
		wrote = gn_store_blob_write(w, piece, n, &err) == 0;
		off += n;
	}
	unsigned char hb[GN_STORE_HASH_SIZE], hw[GN_STORE_HASH_SIZE];
	uint64_t size = 0;
	gnutls_hash_deinit(hh, hw);
	ok(wrote && gn_store_blob_finish(w, hb, &size, &err) == 0, "a 50 MB blob is written");
	gn_store_blob_writer_free(&w);
	ok(memcmp(hb, hw, sizeof(hb)) == 0 && size == total, "with the right hash and size");
	const char *pb[1] = { gn_pool_printf(pool, "\\x%s", gn_store_hash_hex(pool, hb)) };
	is_int(query_int("SELECT count(*) FROM gn_blob_chunks c JOIN gn_blobs b ON b.id = c.blob_id "
			 "WHERE b.hash = $1", 1, pb), (long long)((total + GN_STORE_CHUNK_SIZE - 1) / GN_STORE_CHUNK_SIZE),
	       "in chunks of 256 KiB");
	is_int(query_int("SELECT count(*) FROM gn_blobs WHERE hash IS NULL", 0, NULL), 0,
	       "no half-written blob is left");

	struct gn_store_body *b = NULL;
	ok(gn_store_blob_open(hb, &b, &err) == 1 && gn_store_body_size(b) == total, "open it");
	gnutls_hash_init(&hh, GNUTLS_DIG_SHA256);
	uint64_t off = 0;
	bool same = true;
	for (;;) {
		size_t got = 0;
		if (gn_store_body_read(b, off, piece, 60000, &got, &err) < 0) {
			diag("read: %s", err);
			same = false;
			break;
		}
		if (got == 0)
			break;
		for (size_t i = 0; i < got && same; i++)
			same = piece[i] == big_byte(off + i);
		gnutls_hash(hh, piece, got);
		off += got;
	}
	gnutls_hash_deinit(hh, hw);
	ok(same && off == total && memcmp(hw, hb, sizeof(hw)) == 0, "read back in pieces, every byte right");
	size_t got = 0;
	ok(gn_store_body_read(b, total - 10, piece, 100, &got, &err) == 0 && got == 10,
	   "a read at the end returns what is left");
	ok(gn_store_body_read(b, (uint64_t)GN_STORE_CHUNK_SIZE - 3, piece, 6, &got, &err) == 0 && got == 6 &&
	   piece[0] == big_byte(GN_STORE_CHUNK_SIZE - 3) && piece[5] == big_byte(GN_STORE_CHUNK_SIZE + 2),
	   "a read across a chunk boundary");
	gn_store_body_free(&b);
	long grown = max_rss_kb() - rss0;
#if defined(__SANITIZE_ADDRESS__)
	/* AddressSanitizer keeps freed memory in quarantine (256 MB): the
	 * peak says nothing about what the store holds. */
	ok(true, "# SKIP memory growth not measured under AddressSanitizer (%ld KiB)", grown);
#else
	ok(grown < 32 * 1024, "memory grew by %ld KiB, far less than 50 MB", grown);
#endif
	gn_free(piece);

	/* the same large body again: nothing new is kept */
	long long blobs = query_int("SELECT count(*) FROM gn_blobs", 0, NULL);
	long long chunks = query_int("SELECT count(*) FROM gn_blob_chunks", 0, NULL);
	w = gn_store_blob_writer_new();
	unsigned char *buf = gn_malloc(3 * GN_STORE_CHUNK_SIZE);
	for (size_t i = 0; i < 3 * GN_STORE_CHUNK_SIZE; i++)
		buf[i] = big_byte(i);
	unsigned char hx[GN_STORE_HASH_SIZE], hy[GN_STORE_HASH_SIZE];
	gn_store_blob_write(w, buf, 3 * GN_STORE_CHUNK_SIZE, &err);
	gn_store_blob_finish(w, hx, NULL, &err);
	gn_store_blob_writer_free(&w);
	w = gn_store_blob_writer_new();
	gn_store_blob_write(w, buf, 3 * GN_STORE_CHUNK_SIZE, &err);
	ok(gn_store_blob_finish(w, hy, NULL, &err) == 0 && memcmp(hx, hy, sizeof(hx)) == 0,
	   "a large body written twice");
	gn_store_blob_writer_free(&w);
	gn_free(buf);
	is_int(query_int("SELECT count(*) FROM gn_blobs", 0, NULL), blobs + 1, "is one blob");
	is_int(query_int("SELECT count(*) FROM gn_blob_chunks", 0, NULL), chunks + 3, "of 3 chunks");

	/* an abandoned writer leaves nothing */
	w = gn_store_blob_writer_new();
	buf = gn_calloc(1, GN_STORE_CHUNK_SIZE + 1);
	gn_store_blob_write(w, buf, GN_STORE_CHUNK_SIZE + 1, &err);
	gn_store_blob_writer_free(&w);
	gn_free(buf);
	is_int(query_int("SELECT count(*) FROM gn_blobs WHERE hash IS NULL", 0, NULL), 0,
	       "an abandoned writer leaves no blob");
	/* unreferenced blobs are cleaned up */
	ok(gn_store_blob_cleanup(0, &err) >= 3, "cleanup removes blobs no message uses");
	ok(gn_store_blob_open(hb, &b, &err) == 0, "the 50 MB blob is gone");
	is_int(query_int("SELECT count(*) FROM gn_blob_chunks", 0, NULL), 0, "with its chunks");
	gn_pool_free(&pool);
}


/* ---- blobs being written: the lease, the checks ---- */

/* Writes n bytes of big_byte(off ...) to w; true when every write
 * succeeded. */
static bool write_bytes(struct gn_store_blob_writer *w, uint64_t off, size_t n, const char **err)
{
	unsigned char *buf = gn_malloc(n);
	for (size_t i = 0; i < n; i++)
		buf[i] = big_byte(off + i);
	bool r = gn_store_blob_write(w, buf, n, err) == 0;
	gn_free(buf);
	return r;
}

/* Whether the blob with hash h holds exactly big_byte(0 .. size - 1). */
static bool blob_holds(const unsigned char h[GN_STORE_HASH_SIZE], uint64_t size)
{
	const char *err;
	struct gn_store_body *b = NULL;
	if (gn_store_blob_open(h, &b, &err) != 1)
		return false;
	unsigned char *buf = gn_malloc(size + 1);
	size_t got = 0;
	bool r = gn_store_body_read(b, 0, buf, size + 1, &got, &err) == 0 && got == size;
	for (size_t i = 0; r && i < size; i++)
		r = buf[i] == big_byte(i);
	gn_free(buf);
	gn_store_body_free(&b);
	return r;
}

static void test_blob_lease(void)
{
	const char *err = NULL;
	const size_t part = GN_STORE_CHUNK_SIZE * 2 + 1000;
	const size_t rest = 5000;
	unsigned char h[GN_STORE_HASH_SIZE];
	uint64_t size = 0;

	/* A sender that trickles: the clean-up runs while the body is half
	 * written.  (Age 0: everything unused that it may take, it takes.) */
	struct gn_store_blob_writer *w = gn_store_blob_writer_new();
	ok(write_bytes(w, 0, part, &err), "two chunks and a bit written");
	is_int(query_int("SELECT count(*) FROM gn_blobs WHERE hash IS NULL AND writing_until > now()",
			 0, NULL), 1, "the blob being written is visibly pending, with a lease");
	ok(gn_store_blob_cleanup(0, &err) >= 0, "the clean-up runs meanwhile");
	is_int(query_int("SELECT count(*) FROM gn_blobs WHERE hash IS NULL", 0, NULL), 1,
	       "and leaves the blob its writer holds");
	unsigned char *buf = gn_malloc(rest);
	for (size_t i = 0; i < rest; i++)
		buf[i] = big_byte(part + i);
	ok(gn_store_blob_write(w, buf, rest, &err) == 0, "the rest arrives");
	gn_free(buf);
	ok(gn_store_blob_finish(w, h, &size, &err) == 0 && size == part + rest, "the blob is finished");
	gn_store_blob_writer_free(&w);
	ok(blob_holds(h, part + rest), "and holds every byte written, none lost to the clean-up");

	/* A writer silent past its lease (crashed, as far as anyone can
	 * tell): the clean-up takes its blob, and the writer then fails
	 * rather than store what is left. */
	w = gn_store_blob_writer_new();
	ok(write_bytes(w, 0, part + 7, &err), "another body, half written");
	gn_free(query1("UPDATE gn_blobs SET writing_until = now() - interval '1 second' "
		       "WHERE hash IS NULL", 0, NULL));
	ok(gn_store_blob_cleanup(0, &err) >= 1, "its lease runs out: the clean-up takes it");
	ok(write_bytes(w, part + 7, rest, &err), "more arrives (kept in memory)");
	ok(gn_store_blob_finish(w, h, &size, &err) < 0, "finishing it fails");
	like(err, "lease ran out", "saying the blob is gone");
	gn_store_blob_writer_free(&w);
	char *sz = gn_strdup_printf("%zu", part + 7 + rest);
	const char *psz[1] = { sz };
	ok(!blob_holds(h, part + 7 + rest) &&
	   query_int("SELECT count(*) FROM gn_blobs WHERE size = $1", 1, psz) == 0,
	   "no truncated blob is stored under the full body's hash");
	gn_free(sz);

	/* What the database holds is checked before the caller commits. */
	w = gn_store_blob_writer_new();
	ok(write_bytes(w, 0, part + 11, &err), "a third body, half written");
	gn_free(query1("DELETE FROM gn_blob_chunks WHERE seq = 1 AND blob_id = "
		       "(SELECT id FROM gn_blobs WHERE hash IS NULL)", 0, NULL));
	ok(write_bytes(w, part + 11, rest, &err), "the rest arrives after a chunk went missing");
	ok(gn_store_blob_finish(w, h, &size, &err) < 0, "finishing fails");
	like(err, "not the", "saying the stored size is not the size written");
	gn_store_blob_writer_free(&w);

	/* A chunk whose bytes changed, its length kept: only the hash of
	 * each chunk can tell. */
	w = gn_store_blob_writer_new();
	ok(write_bytes(w, 0, part + 13, &err), "a fourth body, half written");
	gn_free(query1("UPDATE gn_blob_chunks SET data = overlay(data PLACING '\\xff00ff'::bytea FROM 1000) "
		       "WHERE seq = 1 AND blob_id = (SELECT id FROM gn_blobs WHERE hash IS NULL)", 0, NULL));
	ok(write_bytes(w, part + 13, rest, &err), "the rest arrives after a chunk was overwritten");
	ok(gn_store_blob_finish(w, h, &size, &err) < 0, "finishing fails");
	like(err, "chunk 1 differs", "saying which chunk does not hold the bytes written");
	gn_store_blob_writer_free(&w);

	/* A body stored damaged (as the clean-up could leave one before
	 * these checks) is repaired by the next copy of it. */
	const size_t full = GN_STORE_CHUNK_SIZE * 3 + 17;
	w = gn_store_blob_writer_new();
	ok(write_bytes(w, 0, full, &err) && gn_store_blob_finish(w, h, &size, &err) == 0,
	   "a body of four chunks");
	gn_store_blob_writer_free(&w);
	gn_free(query1("DELETE FROM gn_blob_chunks WHERE seq < 3 AND blob_id = "
		       "(SELECT id FROM gn_blobs WHERE size = 786449)", 0, NULL));
	ok(!blob_holds(h, full), "damaged: its first three chunks are gone");
	w = gn_store_blob_writer_new();
	unsigned char h2[GN_STORE_HASH_SIZE];
	ok(write_bytes(w, 0, full, &err) && gn_store_blob_finish(w, h2, &size, &err) == 0 &&
	   memcmp(h, h2, sizeof(h)) == 0, "the same body again");
	gn_store_blob_writer_free(&w);
	ok(blob_holds(h, full), "repairs it");
	is_int(query_int("SELECT count(*) FROM gn_blobs WHERE hash IS NULL", 0, NULL), 0,
	       "no pending blob is left");
	ok(gn_store_blob_cleanup(0, &err) >= 0, "clean-up");
}

/* ---- messages ---- */

static const char msg1[] =
	"From: Alice <alice@example.com>\r\n"
	"To: bob@example.com\r\n"
	"Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n"
	"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
	"Message-ID: <m1@example.com>\r\n"
	"\r\n"
	"Hello Bob\r\n";

static void test_messages(void)
{
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	struct gn_store_mailbox *inbox, *arch, *trash, *mb;
	gn_store_mailbox_find(pool, alice, "Inbox", &inbox, &err);
	gn_store_mailbox_find(pool, alice, "Archive", &arch, &err);
	gn_store_mailbox_find(pool, alice, "Trash", &trash, &err);
	gn_free(notes());

	unsigned char h[GN_STORE_HASH_SIZE];
	blob_of(msg1, h);
	struct gn_mime_message *mime = gn_mime_parse(msg1, strlen(msg1), NULL);
	const char *prefix = "Received: from x by y; Mon, 1 Jan 2024 10:00:01 +0000\r\n";
	struct gn_store_message_new nm = {
		.size = sizeof(struct gn_store_message_new),
		.account_id = alice, .mailbox_id = inbox->id, .prefix = prefix,
		.prefix_len = strlen(prefix), .mime = mime,
	};
	memcpy(nm.blob_hash, h, sizeof(h));
	static const char *const kw[] = { "$Forwarded", "$forwarded", "Work" };
	struct gn_store_message *m1, *m;
	uint64_t modseq_before = inbox->highestmodseq;
	ok(gn_store_message_add(pool, &nm, &m1, &err) == 0, "message add");
	is_int(m1->uid, 1, "gets UID 1");
	ok(m1->modseq > modseq_before, "and a new modseq");
	is_int((long long)m1->size, (long long)(strlen(prefix) + strlen(msg1)), "size is prefix + body");
	char *n = notes();
	char *want = gn_strdup_printf("%" PRId64 " %" PRId64 " %" PRIu64 ";", alice, inbox->id, m1->modseq);
	is_str(n, want, "the listener got the NOTIFY (account mailbox modseq)");
	gn_free(n);
	gn_free(want);

	nm.flags = GN_STORE_SEEN | GN_STORE_FLAGGED;
	nm.keywords = kw;
	nm.n_keywords = 3;
	nm.internal_date = 1700000000;
	nm.prefix = NULL;
	nm.prefix_len = 0;
	struct gn_store_message *m2;
	ok(gn_store_message_add(pool, &nm, &m2, &err) == 0, "a second message with the same body");
	ok(m2->uid == 2 && m2->modseq > m1->modseq, "UID 2, a greater modseq");
	is_int((long long)m2->n_keywords, 2, "keywords deduplicated case-insensitively");
	const char *pb[1] = { gn_pool_printf(pool, "\\x%s", gn_store_hash_hex(pool, h)) };
	is_int(query_int("SELECT refcount FROM gn_blobs WHERE hash = $1", 1, pb), 2,
	       "one blob with two references");
	ok(counters_exact(), "counters exact after add");

	/* Read the way a module reads it: through the accessors. */
	ok(gn_store_message_get(pool, alice, inbox->id, 2, &m, &err) == 1, "message get");
	is_int(gn_store_message_flags(m), GN_STORE_SEEN | GN_STORE_FLAGGED, "flags kept");
	size_t nkw;
	const char *const *kws = gn_store_message_keywords(m, &nkw);
	is_str(nkw == 2 ? kws[0] : "", "$Forwarded", "first spelling of a keyword kept");
	is_int((long long)gn_store_message_internal_date(m), 1700000000, "internal date kept");
	is_str(gn_store_message_subject(m), "gr\xc3\xbc\xc3\x9f" "e", "subject decoded");
	is_str(gn_store_message_message_id(m), "<m1@example.com>", "message-id");
	is_int((long long)gn_store_message_date(m), 1704103200, "date");
	const char *mj = gn_store_message_mime_json(m);
	ok(mj != NULL && strstr(mj, "\"parts\"") != NULL, "MIME structure stored");
	struct gn_mime_message *back = NULL;
	ok(mj != NULL && gn_mime_from_json_string(mj, strlen(mj), &back, &err) == 0,
	   "and it reads back with gn_mime_from_json_string");
	gn_mime_message_free(&back);
	ok(gn_store_message_account_id(m) == alice && gn_store_message_mailbox_id(m) == inbox->id &&
	   gn_store_message_id(m) == m->id && gn_store_message_uid(m) == 2 &&
	   gn_store_message_modseq(m) == m2->modseq && gn_store_message_size(m) == strlen(msg1) &&
	   gn_store_message_prefix_len(m) == 0 &&
	   memcmp(gn_store_message_blob_hash(m), h, GN_STORE_HASH_SIZE) == 0 &&
	   gn_store_message_from(m) != NULL && gn_store_message_from(m) == m->from,
	   "every message accessor reads its own member");

	struct gn_store_body *b;
	ok(gn_store_message_open(alice, inbox->id, 1, &b, &err) == 1, "open message 1");
	char *all = body_read_all(b, 7);
	char *expect = gn_strdup_printf("%s%s", prefix, msg1);
	is_str(all, expect, "its body is the prefix followed by the blob, read in small pieces");
	gn_free(all);
	gn_store_body_free(&b);
	/* Opened with its start: reads within it ask the database nothing,
	 * whatever the window's size against the prefix's. */
	size_t plen = strlen(prefix);
	const size_t windows[] = { 65536, 3, plen, plen + 5, strlen(expect) - 1 };
	for (size_t i = 0; i < sizeof(windows) / sizeof(windows[0]); i++) {
		unsigned long long q0, q1, x;
		ok(gn_store_message_open_prefetch(alice, inbox->id, 1, windows[i], &b, &err) == 1,
		   "open message 1 with its first %zu bytes", windows[i]);
		db_stmt_counts(&x, &x, &q0);
		all = body_read_all(b, 7);
		db_stmt_counts(&x, &x, &q1);
		is_str(all, expect, "read in small pieces, it is the same");
		if (windows[i] >= strlen(expect))
			is_int((long long)(q1 - q0), 0, "without a query");
		else
			ok(q1 - q0 >= 1, "what is past the window is read from the database");
		gn_free(all);
		gn_store_body_free(&b);
	}
	ok(gn_store_message_open_prefetch(alice, inbox->id, 99, 65536, &b, &err) == 0,
	   "a message that does not exist: 0");
	{
		/* Several in one query, in the order asked, a missing one NULL. */
		uint32_t asked[3] = { 2, 99, 1 };
		struct gn_store_body *bs[3];
		unsigned long long q0, q1, x;
		db_stmt_counts(&x, &x, &q0);
		is_int(gn_store_message_open_batch(alice, inbox->id, asked, 3, 65536, bs, &err), 2,
		       "open_batch: two of three messages");
		db_stmt_counts(&x, &x, &q1);
		is_int((long long)(q1 - q0), 1, "in one query");
		ok(bs[0] != NULL && bs[1] == NULL && bs[2] != NULL, "each body in its place, NULL for none");
		if (bs[2] != NULL) {
			db_stmt_counts(&x, &x, &q0);
			all = body_read_all(bs[2], 7);
			db_stmt_counts(&x, &x, &q1);
			is_str(all, expect, "message 1 reads the same");
			is_int((long long)(q1 - q0), 0, "from its window, without a query");
			gn_free(all);
		}
		if (bs[0] != NULL)
			is_int((long long)gn_store_body_size(bs[0]), (long long)strlen(msg1), "message 2's size");
		for (size_t i = 0; i < 3; i++)
			gn_store_body_free(&bs[i]);
	}
	gn_free(expect);

	/* flags */
	uint32_t uids[2] = { 1, 2 };
	uint64_t ms = 0;
	static const char *const junk[] = { "$Junk" };
	is_int(gn_store_message_set_flags(pool, alice, inbox->id, uids, 2, GN_STORE_FLAGS_ADD,
					  GN_STORE_SEEN | GN_STORE_DELETED, junk, 1, 0, &ms, NULL, NULL, &err),
	       2, "+FLAGS (\\Seen \\Deleted $Junk) changes both");
	gn_store_mailbox_get(pool, alice, inbox->id, &mb, &err);
	ok(mb->highestmodseq == ms && mb->unseen == 0 && mb->deleted == 2, "mailbox status follows");
	ok(counters_exact(), "counters exact after +FLAGS");
	{
		/* One NOTIFY for the change, none when nothing changes. */
		gn_free(notes());
		uint64_t ms2 = 0;
		is_int(gn_store_message_set_flags(pool, alice, inbox->id, uids, 1, GN_STORE_FLAGS_ADD,
						  GN_STORE_ANSWERED, NULL, 0, 0, &ms2, NULL, NULL, &err),
		       1, "+FLAGS \\Answered on message 1");
		char *got = notes();
		char *expect_note = gn_strdup_printf("%" PRId64 " %" PRId64 " %" PRIu64 ";", alice, inbox->id, ms2);
		ok(ms2 > ms, "with a newer modseq");
		is_str(got, expect_note, "notified once, with the modseq it took");
		gn_free(got);
		gn_free(expect_note);
		uint64_t ms3 = 0;
		is_int(gn_store_message_set_flags(pool, alice, inbox->id, uids, 1, GN_STORE_FLAGS_REMOVE,
						  GN_STORE_ANSWERED, NULL, 0, 0, &ms3, NULL, NULL, &err),
		       1, "-FLAGS \\Answered");
		gn_free(notes());
		ok(gn_store_message_set_flags(pool, alice, inbox->id, uids, 2, GN_STORE_FLAGS_ADD,
					      0, NULL, 0, 0, NULL, NULL, NULL, &err) == 0 &&
		   ms3 > ms2, "(its modseq is newer still)");
		got = notes();
		is_str(got, "", "a change that changes nothing notifies nothing");
		gn_free(got);
		ok(gn_store_message_set_flags(pool, 999999, inbox->id, uids, 2, GN_STORE_FLAGS_ADD,
					      GN_STORE_SEEN, NULL, 0, 0, NULL, NULL, NULL, &err) < 0 &&
		   strstr(err, "unknown account") != NULL, "an unknown account is an error");
	}
	is_int(gn_store_message_set_flags(pool, alice, inbox->id, uids, 2, GN_STORE_FLAGS_ADD,
					  GN_STORE_SEEN, NULL, 0, 0, NULL, NULL, NULL, &err),
	       0, "setting flags already set changes nothing");
	uint32_t *failed;
	size_t nfailed;
	uint32_t one[1] = { 2 };
	is_int(gn_store_message_set_flags(pool, alice, inbox->id, uids, 2, GN_STORE_FLAGS_REMOVE,
					  GN_STORE_DELETED, NULL, 0, ms - 1, NULL, &failed, &nfailed, &err),
	       0, "UNCHANGEDSINCE older than the messages: nothing changes");
	is_int((long long)nfailed, 2, "both fail (RFC 7162 MODIFIED)");
	is_int(gn_store_message_set_flags(pool, alice, inbox->id, one, 1, GN_STORE_FLAGS_REMOVE,
					  GN_STORE_DELETED | GN_STORE_SEEN, NULL, 0, ms, &ms, NULL, NULL, &err),
	       1, "-FLAGS on message 2");
	is_int(gn_store_message_set_flags(pool, alice, inbox->id, one, 1, GN_STORE_FLAGS_SET,
					  GN_STORE_DRAFT, kw + 2, 1, 0, &ms, NULL, NULL, &err),
	       1, "FLAGS replaces");
	gn_store_message_get(pool, alice, inbox->id, 2, &m, &err);
	ok(m->flags == GN_STORE_DRAFT && m->n_keywords == 1 && strcmp(m->keywords[0], "Work") == 0 &&
	   m->modseq == ms, "flags, keywords and modseq as set");
	ok(counters_exact(), "counters exact after -FLAGS and FLAGS");
	{
		/* The database is input too: a NULL element that some other
		 * writer left in keywords must not crash a reader. */
		const char *pk[2] = { gn_pool_printf(pool, "%lld", (long long)inbox->id), "2" };
		ok(gn_db_exec("UPDATE gn_messages SET keywords = ARRAY['Work', NULL] "
			      "WHERE mailbox_id = $1 AND uid = $2", 2, pk, &err) == 0,
		   "(a NULL keyword written behind the store's back)");
		m = NULL;
		ok(gn_store_message_get(pool, alice, inbox->id, 2, &m, &err) == 1 && m != NULL &&
		   m->n_keywords == 1 && strcmp(m->keywords[0], "Work") == 0,
		   "a NULL keyword in the database is skipped when reading");
		gn_db_exec("UPDATE gn_messages SET keywords = ARRAY['Work'] "
			   "WHERE mailbox_id = $1 AND uid = $2", 2, pk, &err);
	}
	static const char *const badkw[] = { "bad keyword" };
	ok(gn_store_message_set_flags(pool, alice, inbox->id, one, 1, GN_STORE_FLAGS_ADD, 0, badkw, 1,
				      0, NULL, NULL, NULL, &err) < 0 && strstr(err, "keyword") != NULL,
	   "an invalid keyword is refused");

	/* copy and move */
	uint32_t *src, *dst;
	uint64_t cms;
	is_int(gn_store_message_copy(pool, alice, inbox->id, uids, 2, arch->id, false, &src, &dst, &cms, &err),
	       2, "copy 2 messages");
	ok(src[0] == 1 && src[1] == 2 && dst[0] == 1 && dst[1] == 2, "COPYUID pairs");
	is_int(query_int("SELECT refcount FROM gn_blobs WHERE hash = $1", 1, pb), 4,
	       "the copies share the blob");
	ok(counters_exact(), "counters exact after copy");
	gn_store_mailbox_get(pool, alice, arch->id, &mb, &err);
	ok(mb->uidnext == 3 && mb->highestmodseq == cms && mb->messages == 2, "destination status");
	struct gn_store_account *acc;
	gn_store_account_get(pool, alice, &acc, &err);
	is_int((long long)acc->total_size, (long long)(2 * (m1->size + strlen(msg1))),
	       "account size counts the copies");
	uint64_t count = 0;
	ok(gn_store_account_message_count(alice, &count, &err) == 0, "the account's message count");
	is_int((long long)count, 4, "the account's message count counts the copies");
	n = notes();
	ok(strstr(n, gn_pool_printf(pool, "%" PRId64 " %" PRId64 " %" PRIu64 ";", alice, arch->id, cms)) != NULL,
	   "copy notified");
	gn_free(n);

	uint64_t mms;
	is_int(gn_store_message_copy(pool, alice, arch->id, uids, 2, trash->id, true, &src, &dst, &mms, &err),
	       2, "move 2 messages");
	ok(mms > cms, "with a newer modseq");
	is_int(query_int("SELECT refcount FROM gn_blobs WHERE hash = $1", 1, pb), 4, "a move keeps the references");
	gn_store_mailbox_get(pool, alice, arch->id, &mb, &err);
	ok(mb->messages == 0 && mb->uidnext == 3 && mb->highestmodseq == mms, "the source is empty, UIDNEXT kept");
	uint32_t *vanished;
	is_int(gn_store_expunged_since(pool, alice, arch->id, cms, &vanished, &err), 2,
	       "the moved UIDs are expunged for QRESYNC");
	is_int(gn_store_expunged_since(pool, alice, arch->id, mms, &vanished, &err), 0,
	       "not after the move's modseq");
	ok(counters_exact(), "counters exact after move");
	ok(gn_store_account_message_count(alice, &count, &err) == 0, "the account's message count");
	is_int((long long)count, 4, "a move leaves the message count");
	gn_store_account_get(pool, alice, &acc, &err);
	uint64_t size_before = acc->total_size;

	/* expunge */
	uint32_t *gone;
	uint64_t ems;
	uint32_t first[1] = { 1 };
	gn_store_message_set_flags(pool, alice, trash->id, first, 1, GN_STORE_FLAGS_REMOVE, GN_STORE_DELETED,
				   NULL, 0, 0, NULL, NULL, NULL, &err);
	gn_store_message_set_flags(pool, alice, trash->id, one, 1, GN_STORE_FLAGS_ADD, GN_STORE_DELETED,
				   NULL, 0, 0, NULL, NULL, NULL, &err);
	gn_free(notes());
	is_int(gn_store_message_expunge(pool, alice, trash->id, NULL, 0, &gone, &ems, &err), 1,
	       "EXPUNGE removes the one \\Deleted message");
	is_int(gone[0], 2, "UID 2");
	{
		char *got = notes();
		char *expect_note = gn_strdup_printf("%" PRId64 " %" PRId64 " %" PRIu64 ";", alice, trash->id, ems);
		is_str(got, expect_note, "the expunge notified once, with its modseq");
		gn_free(got);
		gn_free(expect_note);
	}
	ok(counters_exact(), "counters exact after expunge");
	gn_store_account_get(pool, alice, &acc, &err);
	ok(acc->total_size < size_before, "account size went down");
	ok(gn_store_account_message_count(alice, &count, &err) == 0, "the account's message count");
	is_int((long long)count, 3, "the expunged message is not counted, though its UID is kept");
	is_int(gn_store_message_get(pool, alice, trash->id, 2, &m, &err), 0, "the message is gone");
	is_int(gn_store_expunged_since(pool, alice, trash->id, ems - 1, &vanished, &err), 1, "kept as expunged");
	{
		/* What changed since a modseq: the expunge, nothing else. */
		struct gn_store_message **ch;
		size_t nch, nex;
		uint32_t *ex;
		uint64_t hms;
		is_int(gn_store_mailbox_changes(pool, alice, trash->id, ems - 1, &ch, &nch, &ex, &nex, &hms, &err), 1,
		       "mailbox_changes since just before the expunge");
		ok(nch == 0 && nex == 1 && ex[0] == 2 && hms == ems,
		   "no message changed, UID 2 expunged, HIGHESTMODSEQ the expunge's");
		is_int(gn_store_mailbox_changes(pool, alice, trash->id, 0, &ch, &nch, &ex, &nex, &hms, &err), 1,
		       "mailbox_changes since 0");
		ok(nch == 1 && gn_store_message_uid(ch[0]) == 1 && nex == 1 && ex[0] == 2,
		   "the message left and the UID expunged");
		is_int(gn_store_mailbox_changes(pool, alice, trash->id, ems, &ch, &nch, &ex, &nex, &hms, &err), 1,
		       "mailbox_changes since the expunge");
		ok(nch == 0 && nex == 0 && hms == ems, "nothing");
		is_int(gn_store_mailbox_changes(pool, alice, 999999, 0, &ch, &nch, &ex, &nex, &hms, &err), 0,
		       "a mailbox that does not exist: 0");
	}

	/* UIDs never come back */
	nm.mailbox_id = trash->id;
	ok(gn_store_message_add(pool, &nm, &m, &err) == 0 && m->uid == 3, "next UID after an expunge is 3");
	ok(m->modseq > ems, "modseq only grows");

	/* the blob goes with its last message, once its hold is over (a body
	 * finished within the last hour stays for the clean-up:
	 * t/unit/test_blob_race.c) */
	gn_free(query1("UPDATE gn_blobs SET finished_at = now() - interval '2 hours' WHERE hash = $1",
		       1, pb));
	is_int(gn_store_mailbox_delete(alice, "Trash", &err), 1, "delete a mailbox with messages");
	uint32_t all12[2] = { 1, 2 };
	is_int(gn_store_message_expunge(pool, alice, inbox->id, all12, 2, NULL, NULL, &err), 2,
	       "UID EXPUNGE the Inbox messages");
	is_int(query_int("SELECT count(*) FROM gn_blobs WHERE hash = $1", 1, pb), 0,
	       "the last reference gone, the blob is gone");
	ok(counters_exact(), "counters exact after deleting a mailbox");
	gn_store_account_get(pool, alice, &acc, &err);
	is_int((long long)acc->total_size, 0, "the account is empty");
	ok(gn_store_account_message_count(alice, &count, &err) == 0, "the account's message count");
	is_int((long long)count, 0, "no message counted");

	/* Renaming Inbox moves its messages (RFC 9051 6.3.6) */
	blob_of(msg1, h);
	nm.mailbox_id = inbox->id;
	ok(gn_store_message_add(pool, &nm, NULL, &err) == 0 && gn_store_message_add(pool, &nm, NULL, &err) == 0,
	   "two messages in Inbox");
	is_int(gn_store_mailbox_rename(alice, "INBOX", "Old mail", &err), 1, "rename Inbox");
	gn_store_mailbox_get(pool, alice, inbox->id, &mb, &err);
	ok(mb->messages == 0 && strcmp(mb->name, "Inbox") == 0, "Inbox stays, empty");
	gn_store_mailbox_find(pool, alice, "Old mail", &mb, &err);
	ok(mb->messages == 2 && mb->uidnext == 3, "the new mailbox has its messages");
	ok(gn_store_mailbox_find(pool, alice, "Inbox/sub", NULL, &err) == 1, "Inbox's child stayed");
	ok(counters_exact(), "counters exact after renaming Inbox");

	/* errors */
	struct gn_store_message_new bad = nm;
	memset(bad.blob_hash, 0, sizeof(bad.blob_hash));
	ok(gn_store_message_add(pool, &bad, NULL, &err) < 0 && strstr(err, "no such blob") != NULL,
	   "a message needs its blob");
	bad = nm;
	bad.mailbox_id = 999999;
	ok(gn_store_message_add(pool, &bad, NULL, &err) < 0 && strstr(err, "no such mailbox") != NULL,
	   "and its mailbox");
	bad = nm;
	bad.size = 0;
	ok(gn_store_message_add(pool, &bad, NULL, &err) < 0 &&
	   strstr(err, "struct gn_store_message_new: size 0") != NULL,
	   "a struct gn_store_message_new without its size is refused");
	bad.size = offsetof(struct gn_store_message_new, mime);
	ok(gn_store_message_add_pending(&bad, NULL, &err) < 0 && strstr(err, "size") != NULL &&
	   gn_store_message_deliver(&bad, NULL, NULL, &err) < 0 && strstr(err, "size") != NULL,
	   "and one smaller than the first version's, by every add function");
	ok(counters_exact(), "a failed add changes nothing");

	gn_mime_message_free(&mime);
	gn_pool_free(&pool);
}

/* ---- the caller's transaction ---- */

/* What modules see of domains, accounts and mailboxes: each accessor
 * returns its own member (a swapped pair would pass the tests above that
 * look at one of them). */
static void test_handles(void)
{
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	struct gn_store_domain *d;
	ok(gn_store_domain_find(pool, "b\xc3\xbc" "cher.example", &d, &err) == 1 &&
	   gn_store_domain_id(d) == d->id && d->id > 0 &&
	   strcmp(gn_store_domain_name(d), "xn--bcher-kva.example") == 0 &&
	   strcmp(gn_store_domain_name_utf8(d), "b\xc3\xbc" "cher.example") == 0 &&
	   gn_store_domain_catchall_separators(d) == d->catchall_separators,
	   "domain accessors");
	struct gn_store_account *a;
	ok(gn_store_account_get(pool, alice, &a, &err) == 1 && gn_store_account_id(a) == alice &&
	   strcmp(gn_store_account_name(a), "alice") == 0 &&
	   strcmp(gn_store_account_full_name(a), "Alice Liddell") == 0 &&
	   gn_store_account_login_disabled(a) == NULL &&
	   gn_store_account_modseq(a) == a->modseq && a->modseq > 0 &&
	   gn_store_account_total_size(a) == a->total_size && a->total_size > 0,
	   "account accessors");
	gn_store_account_disable("alice", "on holiday", &err);
	ok(gn_store_account_get(pool, alice, &a, &err) == 1 &&
	   gn_store_account_login_disabled(a) != NULL &&
	   strcmp(gn_store_account_login_disabled(a), "on holiday") == 0, "login_disabled too");
	gn_store_account_enable("alice", &err);
	/* A mailbox whose counters all differ: 2 messages, 1 unseen, 1
	 * deleted, the deleted one's bytes a part of the total. */
	struct gn_store_mailbox *mb;
	ok(gn_store_mailbox_create(pool, alice, "Handles", GN_STORE_SPECIAL_NONE, &mb, &err) == 1,
	   "a mailbox for the accessors");
	static const char body_a[] = "Subject: a\r\n\r\nseen and deleted\r\n";
	static const char body_b[] = "Subject: b\r\n\r\nnew\r\n";
	struct gn_store_message_new nm = { .size = sizeof(nm), .account_id = alice,
					   .mailbox_id = mb->id,
					   .flags = GN_STORE_SEEN | GN_STORE_DELETED };
	blob_of(body_a, nm.blob_hash);
	gn_store_message_add(pool, &nm, NULL, &err);
	nm.flags = 0;
	blob_of(body_b, nm.blob_hash);
	struct gn_store_message *last = NULL;
	gn_store_message_add(pool, &nm, &last, &err);
	gn_store_subscribe(alice, "Handles", &err);
	struct gn_store_mailbox **mbs;
	size_t n;
	const struct gn_store_mailbox *h = NULL;
	if (gn_store_mailbox_list(pool, alice, &mbs, &n, &err) == 0)
		for (size_t i = 0; i < n; i++)
			if (strcmp(gn_store_mailbox_name(mbs[i]), "Handles") == 0)
				h = mbs[i];
	ok(h != NULL && last != NULL && gn_store_mailbox_account_id(h) == alice &&
	   gn_store_mailbox_id(h) == mb->id &&
	   gn_store_mailbox_special_use(h) == GN_STORE_SPECIAL_NONE && gn_store_mailbox_subscribed(h) &&
	   gn_store_mailbox_uidvalidity(h) == mb->uidvalidity &&
	   gn_store_mailbox_uidnext(h) == 3 &&
	   gn_store_mailbox_highestmodseq(h) == gn_store_message_modseq(last) &&
	   gn_store_mailbox_messages(h) == 2 && gn_store_mailbox_unseen(h) == 1 &&
	   gn_store_mailbox_deleted(h) == 1 &&
	   gn_store_mailbox_size(h) == strlen(body_a) + strlen(body_b) &&
	   gn_store_mailbox_deleted_size(h) == strlen(body_a),
	   "mailbox accessors, read from the list");
	gn_store_mailbox_set_special_use(alice, "Handles", GN_STORE_SPECIAL_JUNK, &err);
	gn_store_unsubscribe(alice, "Handles", &err);
	ok(gn_store_mailbox_get(pool, alice, mb->id, &mb, &err) == 1 &&
	   gn_store_mailbox_special_use(mb) == GN_STORE_SPECIAL_JUNK &&
	   !gn_store_mailbox_subscribed(mb), "special use and subscription too");
	gn_store_mailbox_delete(alice, "Handles", &err);
	gn_pool_free(&pool);
}

static void test_transactions(void)
{
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	struct gn_store_mailbox *inbox;
	gn_store_mailbox_find(pool, alice, "Inbox", &inbox, &err);
	gn_free(notes());

	ok(gn_db_begin(&err) == 0, "begin");
	ok(gn_store_account_add(pool, "dave", "dave@example.com", NULL, NULL, &err) == 0, "account add inside");
	gn_db_rollback();
	is_int(gn_store_account_find(pool, "dave", NULL, &err), 0, "rolled back with the caller's transaction");

	is_int(gn_store_account_lock(alice, &err), -1, "account_lock outside a transaction: -1");
	ok(gn_db_begin(&err) == 0, "begin");
	is_int(gn_store_account_lock(alice, &err), 1, "account_lock inside: 1");
	is_int(gn_store_account_lock(999999, &err), 0, "an unknown account: 0");
	gn_db_rollback();

	/* a delivery: blob and message in one transaction, NOTIFY at commit */
	ok(gn_db_begin(&err) == 0, "begin a delivery");
	unsigned char h[GN_STORE_HASH_SIZE];
	blob_of("Subject: tx\r\n\r\nbody\r\n", h);
	struct gn_store_message_new nm = { .size = sizeof(nm), .account_id = alice,
					   .mailbox_id = inbox->id };
	memcpy(nm.blob_hash, h, sizeof(h));
	struct gn_store_message *m;
	ok(gn_store_message_add(pool, &nm, &m, &err) == 0, "message add inside");
	char *n = notes();
	is_str(n, "", "no notification before COMMIT");
	gn_free(n);
	ok(gn_db_commit(&err) == 0, "commit");
	n = notes();
	like(n, gn_pool_printf(pool, "%" PRId64 " %" PRId64 " %" PRIu64, alice, inbox->id, m->modseq),
	     "the notification arrives with the commit");
	gn_free(n);

	ok(gn_db_begin(&err) == 0, "begin another");
	gn_store_message_add(pool, &nm, NULL, &err);
	gn_db_rollback();
	n = notes();
	is_str(n, "", "a rolled-back change notifies nothing");
	gn_free(n);
	ok(counters_exact(), "counters exact after the rollback");
	gn_pool_free(&pool);
}

static void test_account_remove(void)
{
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	struct gn_store_mailbox *inbox;
	gn_store_mailbox_find(pool, bob, "Inbox", &inbox, &err);
	unsigned char h[GN_STORE_HASH_SIZE];
	blob_of("Subject: shared\r\n\r\nfor alice and bob\r\n", h);
	struct gn_store_message_new nm = { .size = sizeof(nm), .account_id = bob,
					   .mailbox_id = inbox->id };
	memcpy(nm.blob_hash, h, sizeof(h));
	gn_store_message_add(pool, &nm, NULL, &err);
	gn_store_mailbox_find(pool, alice, "Inbox", &inbox, &err);
	nm.account_id = alice;
	nm.mailbox_id = inbox->id;
	gn_store_message_add(pool, &nm, NULL, &err);
	unsigned char h2[GN_STORE_HASH_SIZE];
	blob_of("Subject: bob only\r\n\r\n", h2);
	gn_store_mailbox_find(pool, bob, "Inbox", &inbox, &err);
	nm.account_id = bob;
	nm.mailbox_id = inbox->id;
	memcpy(nm.blob_hash, h2, sizeof(h2));
	gn_store_message_add(pool, &nm, NULL, &err);

	const char *p1[1] = { gn_pool_printf(pool, "\\x%s", gn_store_hash_hex(pool, h)) };
	const char *p2[1] = { gn_pool_printf(pool, "\\x%s", gn_store_hash_hex(pool, h2)) };
	/* finished over an hour ago: not held (test_blob_race.c) */
	gn_free(query1("UPDATE gn_blobs SET finished_at = now() - interval '2 hours' WHERE hash = $1",
		       1, p2));
	is_int(gn_store_account_remove("bob", &err), 1, "account remove");
	is_int(gn_store_account_remove("bob", &err), 0, "again: unknown");
	is_int(query_int("SELECT refcount FROM gn_blobs WHERE hash = $1", 1, p1), 1,
	       "a blob alice still uses stays with one reference");
	is_int(query_int("SELECT count(*) FROM gn_blobs WHERE hash = $1", 1, p2), 0,
	       "bob's own blob is gone");
	const char *pid[1] = { gn_pool_printf(pool, "%" PRId64, bob) };
	is_int(query_int("SELECT (SELECT count(*) FROM gn_mailboxes WHERE account_id = $1) + "
			 "(SELECT count(*) FROM gn_messages WHERE account_id = $1) + "
			 "(SELECT count(*) FROM gn_addresses WHERE account_id = $1) + "
			 "(SELECT count(*) FROM gn_subscriptions WHERE account_id = $1)", 1, pid), 0,
	       "nothing of the account is left");
	ok(counters_exact(), "counters exact after removing an account");
	gn_pool_free(&pool);
}

/* ABI 1.1: the checks' results kept with a message (014_message_auth). */
static void test_message_auth(void)
{
	struct gn_pool *pool = gn_pool_new();
	const char *err = NULL;
	struct gn_store_mailbox *inbox;
	gn_store_mailbox_find(pool, alice, "Inbox", &inbox, &err);
	gn_free(notes());
	unsigned char h[GN_STORE_HASH_SIZE];
	blob_of(msg1, h);
	static const char *const dk[] = { "example.org", "mail.example.org" };
	struct gn_store_message_auth a = {
		.size = sizeof(a), .mail_from_validated = true, .mail_from_validation = "pass",
		.msg_from_domain = "example.org", .msg_from_validated = true,
		.msg_from_validation = "strict", .dkim_domains = dk, .n_dkim_domains = 2,
		.remote_ip = "2001:db8::1",
	};
	struct gn_store_message_new nm = {
		.size = sizeof(nm), .account_id = alice, .mailbox_id = inbox->id, .auth = &a,
	};
	memcpy(nm.blob_hash, h, sizeof(h));
	struct gn_store_message *m;
	ok(gn_store_message_add(pool, &nm, &m, &err) == 0, "a message with check results");
	struct gn_store_message_auth r = { .size = sizeof(r) };
	is_int(gn_store_message_auth_get(pool, alice, gn_store_message_id(m), &r, &err), 1,
	       "read back by its id");
	ok(r.checked && r.mail_from_validated && r.msg_from_validated &&
	   strcmp(r.mail_from_validation, "pass") == 0 &&
	   strcmp(r.msg_from_domain, "example.org") == 0 &&
	   strcmp(r.msg_from_validation, "strict") == 0 && r.n_dkim_domains == 2 &&
	   strcmp(r.dkim_domains[1], "mail.example.org") == 0 &&
	   strcmp(r.remote_ip, "2001:db8::1") == 0, "every value as given");
	is_int(gn_store_message_auth_get(pool, bob, gn_store_message_id(m), &r, &err), 0,
	       "another account's id: no such message");

	nm.auth = NULL;
	ok(gn_store_message_add(pool, &nm, &m, &err) == 0, "a message without results");
	memset(&r, 0xff, sizeof(r));
	r.size = sizeof(r);
	ok(gn_store_message_auth_get(pool, alice, gn_store_message_id(m), &r, &err) == 1 &&
	   !r.checked && r.msg_from_domain == NULL && r.n_dkim_domains == 0, "checked false, nothing else");

	const char *many[20];
	for (size_t i = 0; i < 20; i++)
		many[i] = gn_pool_printf(pool, "d%zu.example", i);
	a.dkim_domains = many;
	a.n_dkim_domains = 20;
	a.mail_from_validated = false;
	nm.auth = &a;
	ok(gn_store_message_add(pool, &nm, &m, &err) == 0, "twenty DKIM domains");
	ok(gn_store_message_auth_get(pool, alice, gn_store_message_id(m), &r, &err) == 1 &&
	   r.n_dkim_domains == GN_STORE_MAX_AUTH_DKIM_DOMAINS && !r.mail_from_validated,
	   "kept: the first %d", GN_STORE_MAX_AUTH_DKIM_DOMAINS);

	a.msg_from_domain = "exa mple.org";
	ok(gn_store_message_add(pool, &nm, &m, &err) < 0 && strstr(err, "printable") != NULL,
	   "a value with a space is refused: %s", err);
	a.msg_from_domain = "example.org";
	a.size = 8;
	ok(gn_store_message_add(pool, &nm, &m, &err) < 0 && strstr(err, "size") != NULL,
	   "a struct smaller than the first version is refused");
	r.size = 8;
	is_int(gn_store_message_auth_get(pool, alice, 1, &r, &err), -1, "also when reading");
	a.size = sizeof(a);
	struct gn_store_message_auth *c = gn_store_message_auth_copy(pool, &a);
	ok(c != NULL && c->msg_from_domain != a.msg_from_domain &&
	   strcmp(c->msg_from_domain, "example.org") == 0 &&
	   c->n_dkim_domains == GN_STORE_MAX_AUTH_DKIM_DOMAINS && c->dkim_domains != a.dkim_domains,
	   "gn_store_message_auth_copy(): strings and array copied, cut at the maximum");
	ok(gn_store_message_auth_copy(pool, NULL) == NULL, "a copy of NULL is NULL");
	ok(counters_exact(), "counters exact");
	gn_free(notes());
	gn_pool_free(&pool);
}

int main(void)
{
	const char *err = NULL;

	log_init("test_store");
	if (!pgtest_setup("store")) {
		ok(false, "a PostgreSQL cluster for the test");
		return done_testing();
	}
	if (db_init(pgtest_conninfo(), &err) < 0 || db_migrate(NULL, &err) < 0) {
		ok(false, "database ready: %s", err);
		return done_testing();
	}
	listener = PQconnectdb(pgtest_conninfo());
	ok(PQstatus(listener) == CONNECTION_OK, "a second connection to listen on");
	PQclear(PQexec(listener, "LISTEN " GN_STORE_NOTIFY_CHANNEL));

	test_domains();
	test_accounts();
	test_mailboxes();
	test_blobs();
	test_blob_lease();
	test_messages();
	test_message_auth();
	test_handles();
	test_transactions();
	test_account_remove();

	PQfinish(listener);
	db_close();
	return done_testing();
}
