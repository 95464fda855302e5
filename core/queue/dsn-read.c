/*
 * core/queue/dsn-read.c: reading the delivery-status part of a DSN that
 * came back (RFC 3464 2.1-2.3; mox.md 1.8 steps 4 and 5), for the
 * suppression list (suppress.c).
 *
 * The part is fields in blocks separated by empty lines: the
 * per-message fields first, then one block a recipient.  Lines end in
 * CRLF or LF; a line that starts with a space or tab continues the field
 * before it (RFC 5322 folding).  Of the first recipient block it keeps
 * Action, Status and Diagnostic-Code, and counts the recipient blocks;
 * the code comes as mox takes it: Diagnostic-Code "smtp; NNN X.Y.Z ..."
 * gives NNN and X.Y.Z, else Status 4.x.x gives 400 and 5.x.x 500, with
 * the status as enhanced code.  Needs nothing but the pool (the fuzz
 * target t/fuzz/fuzz_dsn.c builds it alone); the caller bounds the input
 * (QUEUE_DSN_STATUS_MAX).
 */
#include "queue/internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* The value of field name (case-insensitive) in an unfolded line, or
 * NULL. */
static const char *field_value(const char *line, const char *name)
{
	size_t n = strlen(name);
	if (strncasecmp(line, name, n) != 0)
		return NULL;
	const char *v = line + n;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v != ':')
		return NULL;
	v++;
	while (*v == ' ' || *v == '\t')
		v++;
	return v;
}

/* An enhanced status code's class and dots ("5.1.1": RFC 3463 2). */
static size_t enhanced_len(const char *s)
{
	if ((s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	size_t i = 2, dots = 0, digits = 0;
	for (; s[i] != '\0' && i < 16; i++) {
		if (s[i] == '.' && digits > 0 && dots == 0) {
			dots++;
			digits = 0;
		} else if (isdigit((unsigned char)s[i])) {
			digits++;
		} else {
			break;
		}
	}
	return dots == 1 && digits > 0 ? i : 0;
}

/* mox's parseSMTPCodes(): "550 5.1.1 text" gives 550 and "5.1.1". */
static int smtp_codes(struct gn_pool *pool, const char *s, const char **enhanced_r)
{
	*enhanced_r = NULL;
	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
	    !isdigit((unsigned char)s[2]) || (s[3] != ' ' && s[3] != '\0'))
		return 0;
	int code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (code < 200 || code >= 600)
		return 0;
	if (s[3] == ' ') {
		size_t n = enhanced_len(s + 4);
		if (n > 0 && (s[4] == '4' || s[4] == '5') && (s[n + 4] == '\0' || s[n + 4] == ' '))
			*enhanced_r = gn_pool_strndup(pool, s + 4, n);
	}
	return code;
}

void queue_dsn_status_read(struct gn_pool *pool, const char *buf, size_t len,
			   struct queue_dsn_status *st)
{
	memset(st, 0, sizeof(*st));
	if (len > QUEUE_DSN_STATUS_MAX)
		len = QUEUE_DSN_STATUS_MAX;
	/* Unfolded, without CR; a NUL byte becomes a space (the lines are
	 * C strings from here on). */
	char *text = gn_pool_alloc(pool, len + 1);
	size_t k = 0;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\r')
			continue;
		if (buf[i] == '\n' && i + 1 < len && (buf[i + 1] == ' ' || buf[i + 1] == '\t'))
			continue;
		text[k++] = buf[i] == '\0' ? ' ' : buf[i];
	}
	text[k] = '\0';
	unsigned block = 0;
	bool in_block = false;
	const char *action = NULL, *status = NULL, *diag = NULL;
	for (char *line = text; line != NULL;) {
		char *nl = strchr(line, '\n');
		if (nl != NULL)
			*nl = '\0';
		if (line[0] == '\0') {
			if (in_block)
				block++;
			in_block = false;
		} else {
			if (!in_block && block > 0)
				st->recipients++;
			in_block = true;
			const char *v;
			if (block > 0 && st->recipients == 1) {
				if ((v = field_value(line, "Action")) != NULL)
					action = v;
				else if ((v = field_value(line, "Status")) != NULL)
					status = v;
				else if ((v = field_value(line, "Diagnostic-Code")) != NULL)
					diag = v;
			}
		}
		line = nl != NULL ? nl + 1 : NULL;
	}
	if (action != NULL) {
		/* RFC 3464 2.3.3: one word ("failed"), perhaps a comment after;
		 * it ends at a space, a control character or "(". */
		size_t n = 0;
		while ((unsigned char)action[n] > ' ' && action[n] != '(' && action[n] != 0x7f)
			n++;
		char *a = gn_pool_strndup(pool, action, n);
		for (char *p = a; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		st->action = a;
	}
	const char *semi = diag != NULL ? strchr(diag, ';') : NULL;
	if (semi != NULL && (size_t)(semi - diag) >= 4 && strncasecmp(diag, "smtp", 4) == 0) {
		const char *v = semi + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		st->code = smtp_codes(pool, v, &st->enhanced);
	}
	if (st->code == 0 && status != NULL && (status[0] == '4' || status[0] == '5')) {
		size_t n = enhanced_len(status);
		if (n > 0) {
			st->code = status[0] == '4' ? 400 : 500;
			st->enhanced = gn_pool_strndup(pool, status, n);
		}
	}
}
