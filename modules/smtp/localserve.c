/*
 * modules/smtp/localserve.c: the failures the smtp module simulates when
 * the setting smtp.localserve is on (`gannet localserve` writes it), so
 * that an application can test how it handles a failed delivery without a
 * real remote server: the queue delivers every message to localserve's
 * own SMTP listener (queue.relay), and that listener answers as the
 * addresses ask.  As mox's localserve (mox.md 3):
 *
 *   a localpart that ends in    gets
 *     temperror                 451 4.0.0
 *     permerror                 550 5.0.0
 *     timeout                   451 4.3.0, after smtp.localserve_timeout
 *                               (default 1 hour, as mox)
 *     a code from 400 to 599    that code, enhanced X.0.0 (mox also takes
 *                               600, a quirk not copied)
 *
 *   where: at MAIL FROM when the sender's localpart starts with
 *   "mailfrom" (and asks for a failure); at RCPT TO when the recipient's
 *   starts with "rcptto"; else, for a recipient that asks for one, at the
 *   end of DATA, for the whole message (SMTP has one reply for it: the
 *   first such recipient's failure, and nothing is stored).
 *
 * Why here and not in a transport of localserve's own: the failures then
 * come from a real SMTP exchange, so the queue's client, its phases,
 * retries, DSNs and attempt history are what is tested, and any SMTP
 * client (not only the queue) sees them on localserve's port.
 */
#include "localserve.h"

#include <string.h>
#include <strings.h>

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

bool smtp_localserve_prefix(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

bool smtp_localserve_error(const char *lp, struct ls_error *e)
{
	static const char *const enh4 = "4.0.0", *const enh5 = "5.0.0";
	size_t n = strlen(lp);
	memset(e, 0, sizeof(*e));
	if (ends_with(lp, "temperror")) {
		e->code = 451;
		e->enhanced = enh4;
		e->text = "localserve: temporary error requested by the address";
	} else if (ends_with(lp, "permerror")) {
		e->code = 550;
		e->enhanced = enh5;
		e->text = "localserve: permanent error requested by the address";
	} else if (ends_with(lp, "timeout")) {
		e->code = 451;
		e->enhanced = "4.3.0";
		e->text = "localserve: timeout requested by the address";
		e->timeout = true;
	} else if (n >= 3 && lp[n - 3] >= '4' && lp[n - 3] <= '5' && lp[n - 2] >= '0' &&
		   lp[n - 2] <= '9' && lp[n - 1] >= '0' && lp[n - 1] <= '9') {
		e->code = (lp[n - 3] - '0') * 100 + (lp[n - 2] - '0') * 10 + (lp[n - 1] - '0');
		e->enhanced = e->code < 500 ? enh4 : enh5;
		e->text = "localserve: error code requested by the address";
	}
	return e->code != 0;
}
