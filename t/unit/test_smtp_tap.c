/*
 * t/unit/test_smtp_tap.c: what the end-of-data hooks of the SMTP engine
 * may do to a transaction (core/smtp/tap.c, ABI 1.1): header lines added
 * for the stored prefix (gn_smtp_tx_add_header(): whole fields with CRLF
 * only, nothing that could end the header early or smuggle a line, a
 * limit) and per-module slots.
 */
#include "smtp/internal.h"
#include "tap.h"

#include <string.h>

static int add(struct gn_smtp_tx *tx, const char *s, const char **err)
{
	*err = NULL;
	return gn_smtp_tx_add_header(tx, s, strlen(s), err);
}

int main(void)
{
	struct gn_smtp_tx *tx = gn_calloc(1, sizeof(*tx));
	const char *err;
	size_t len;

	is_str(gn_smtp_tx_added_header(tx, &len), "", "nothing added: empty");
	is_int((long long)len, 0, "and 0 octets");

	is_int(add(tx, "Authentication-Results: mx.test;\r\n\tspf=pass smtp.mailfrom=a@b.example\r\n",
		   &err), 0, "a folded field is taken");
	is_int(add(tx, "Received-SPF: pass (mx.test: ok) client-ip=192.0.2.1\r\n", &err), 0,
	       "a second one");
	is_str(gn_smtp_tx_added_header(tx, &len),
	       "Authentication-Results: mx.test;\r\n\tspf=pass smtp.mailfrom=a@b.example\r\n"
	       "Received-SPF: pass (mx.test: ok) client-ip=192.0.2.1\r\n", "both, in order");

	static const struct {
		const char *in, *why;
	} bad[] = {
		{ "", "empty" },
		{ "X-A: b", "a line does not end in CRLF" },
		{ "X-A: b\n", "a line does not end in CRLF" },
		{ "X-A: b\r\n\r\n", "an empty line" },
		{ "X-A: b\r\nbody text\r\n", "a line is not a header field" },
		{ "X-A: b\rX-B: c\r\n", "a line does not end in CRLF" },
		{ " folded: first\r\n", "starts with a continuation line" },
		{ ": no name\r\n", "a line is not a header field" },
		{ "Bad Name: x\r\n", "a line is not a header field" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		is_int(add(tx, bad[i].in, &err), -1, "refused: %s (case %zu)", bad[i].why, i);
		is_str(err, bad[i].why, "with why (case %zu)", i);
	}
	{
		/* A NUL inside: the length says where it ends, not the NUL. */
		static const char nul[] = "X-A: b\0c\r\n";
		is_int(gn_smtp_tx_add_header(tx, nul, sizeof(nul) - 1, &err), -1, "a NUL is refused");
	}
	(void)gn_smtp_tx_added_header(tx, &len);
	is_int((long long)len, (long long)strlen("Authentication-Results: mx.test;\r\n\tspf=pass "
						    "smtp.mailfrom=a@b.example\r\nReceived-SPF: pass (mx.test: ok) "
						    "client-ip=192.0.2.1\r\n"), "what was refused was not added");

	/* The limit: GN_SMTP_MAX_ADDED_HEADER in all. */
	{
		size_t n = GN_SMTP_MAX_ADDED_HEADER - len;
		char *big = gn_malloc(n + 1);
		memset(big, 'a', n);
		memcpy(big, "X-Big: ", 7);
		memcpy(big + n - 2, "\r\n", 2);
		big[n] = '\0';
		is_int(gn_smtp_tx_add_header(tx, big, n, &err), 0, "up to the limit exactly");
		is_int(add(tx, "X-One: more\r\n", &err), -1, "one field past it is refused");
		like(err, "GN_SMTP_MAX_ADDED_HEADER", "with why");
		gn_free(big);
	}

	/* Slots: any module's number, NULL until set. */
	ok(gn_smtp_tx_slot_get(tx, 0) == NULL && gn_smtp_tx_slot_get(tx, 40) == NULL,
	   "slots are NULL until set");
	gn_smtp_tx_slot_set(tx, 7, tx);
	ok(gn_smtp_tx_slot_get(tx, 7) == tx && gn_smtp_tx_slot_get(tx, 6) == NULL,
	   "slot 7 holds what was set, 6 does not");
	gn_smtp_tx_slot_set(tx, 40, &len);
	ok(gn_smtp_tx_slot_get(tx, 7) == tx && gn_smtp_tx_slot_get(tx, 40) == &len,
	   "a higher slot keeps the lower ones");

	/* The mailbox a hook picks (ABI 1.1): NULL until set, copied, the
	 * last call wins, bad names refused and the old one kept. */
	tx->pool = gn_pool_new();
	ok(gn_smtp_tx_mailbox(tx) == NULL, "no mailbox chosen: NULL (Inbox)");
	{
		char name[] = "Junk";
		is_int(gn_smtp_tx_set_mailbox(tx, name, &err), 0, "Junk is taken");
		name[0] = 'X';
		is_str(gn_smtp_tx_mailbox(tx), "Junk", "and copied");
	}
	is_int(gn_smtp_tx_set_mailbox(tx, "Archive/2026", &err), 0, "a second call is taken");
	is_str(gn_smtp_tx_mailbox(tx), "Archive/2026", "the last call wins");
	err = NULL;
	is_int(gn_smtp_tx_set_mailbox(tx, "", &err), -1, "an empty name is refused");
	ok(err != NULL, "with why");
	is_int(gn_smtp_tx_set_mailbox(tx, NULL, &err), -1, "NULL is refused");
	is_int(gn_smtp_tx_set_mailbox(tx, "Ju\r\nnk", &err), -1, "a CR LF is refused");
	like(err, "control character", "with why");
	{
		char *big = gn_malloc(GN_SMTP_MAX_MAILBOX_NAME + 2);
		memset(big, 'a', GN_SMTP_MAX_MAILBOX_NAME + 1);
		big[GN_SMTP_MAX_MAILBOX_NAME + 1] = '\0';
		is_int(gn_smtp_tx_set_mailbox(tx, big, &err), -1,
		       "a name past GN_SMTP_MAX_MAILBOX_NAME is refused");
		big[GN_SMTP_MAX_MAILBOX_NAME] = '\0';
		is_int(gn_smtp_tx_set_mailbox(tx, big, &err), 0, "up to it is taken");
		gn_free(big);
	}
	is_int(gn_smtp_tx_set_mailbox(tx, "Junk", &err), 0, "Junk again");
	is_int(gn_smtp_tx_set_mailbox(tx, "\x7f", &err), -1, "DEL is refused");
	is_str(gn_smtp_tx_mailbox(tx), "Junk", "a refused name keeps the last good one");

	smtp_tx_free(&tx);
	ok(tx == NULL, "smtp_tx_free() frees the added lines and slots (ASan sees leaks)");
	return done_testing();
}
