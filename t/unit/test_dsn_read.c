/*
 * t/unit/test_dsn_read.c: queue_dsn_status_read() (core/queue/dsn-read.c),
 * the delivery-status part of a DSN that came back: recipient blocks,
 * the first one's Action, the code from Diagnostic-Code or Status (mox's
 * rules), folding, CRLF and LF, and what is not a code.
 */
#include "queue/internal.h"
#include "tap.h"

#include <string.h>

static struct queue_dsn_status rd(struct gn_pool *pool, const char *s)
{
	struct queue_dsn_status st;
	queue_dsn_status_read(pool, s, strlen(s), &st);
	return st;
}

int main(void)
{
	struct gn_pool *pool = gn_pool_new();
	struct queue_dsn_status st;

	st = rd(pool, "Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\n"
		      "Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n");
	is_int(st.recipients, 1, "one recipient block");
	is_str(st.action, "failed", "Action failed");
	is_int(st.code, 550, "the code from Diagnostic-Code");
	is_str(st.enhanced, "5.1.1", "and its enhanced code");

	st = rd(pool, "Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@b\nACTION : Failed (permanent)\n"
		      "Status: 5.7.1 (blocked)\n");
	is_str(st.action, "failed", "LF line ends, a name in capitals, a comment after the word");
	is_int(st.code, 500, "no Diagnostic-Code: 500 from Status 5.x.x");
	is_str(st.enhanced, "5.7.1", "with the status as enhanced code");

	st = rd(pool, "R: x\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: delayed\r\nStatus: 4.4.1\r\n");
	is_str(st.action, "delayed", "Action delayed");
	is_int(st.code, 400, "Status 4.x.x: 400");

	st = rd(pool, "R: x\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\n"
		      "Diagnostic-Code: smtp;\r\n 554 5.0.0 refused\r\n\tfolded twice\r\nStatus: 5.0.0\r\n");
	is_int(st.code, 554, "a folded Diagnostic-Code");
	is_str(st.enhanced, "5.0.0", "its enhanced code");

	st = rd(pool, "R: x\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 5.1.1\r\n"
		      "\r\n\r\nFinal-Recipient: rfc822; c@d\r\nAction: delivered\r\nStatus: 2.0.0\r\n");
	is_int(st.recipients, 2, "two recipient blocks (empty lines between count once)");
	is_str(st.action, "failed", "the first one's Action");

	st = rd(pool, "R: x\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\n"
		      "Diagnostic-Code: X-Postfix; host said 550\r\nStatus: 5.2.2\r\n");
	is_int(st.code, 500, "a Diagnostic-Code not of type smtp: the Status counts");
	is_str(st.enhanced, "5.2.2", "5.2.2");

	st = rd(pool, "R: x\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\n"
		      "Diagnostic-Code: smtp; 550 mailbox gone\r\n");
	is_int(st.code, 550, "a code without enhanced code");
	ok(st.enhanced == NULL, "no enhanced code");

	st = rd(pool, "R: x\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\n"
		      "Diagnostic-Code: smtp; 999 5.1.1 x\r\nStatus: 5.x.1\r\n");
	is_int(st.code, 0, "code 999 and Status 5.x.1: no code");

	st = rd(pool, "Reporting-MTA: dns; x\r\nAction: failed\r\nStatus: 5.1.1\r\n");
	is_int(st.recipients, 0, "per-message fields only: no recipient");
	ok(st.action == NULL && st.code == 0, "and nothing read from them");

	st = rd(pool, "");
	ok(st.recipients == 0 && st.action == NULL && st.code == 0, "empty: nothing");

	static const char nul[] = "R: x\n\nFinal-Recipient: rfc822; a@b\nAction: fail\0ed\nStatus: 5.1.1\n";
	queue_dsn_status_read(pool, nul, sizeof(nul) - 1, &st);
	is_str(st.action, "fail", "a NUL byte ends a word, not the input");
	is_int(st.code, 500, "the fields after it are read");

	gn_pool_free(&pool);
	return done_testing();
}
