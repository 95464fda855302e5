/*
 * modules/smtp/forged.c: an incoming Authentication-Results field that
 * carries our authserv-id (the SMTP host name) was not written by us:
 * RFC 8601 5 has a border MTA delete or obscure it, so that nothing
 * downstream (mail clients' filters, the HTTP API) takes it for ours.
 * Here it is renamed, X-Forged-Authentication-Results: kept for whoever
 * looks into the message, trusted by nobody.
 *
 * The store takes the message as it arrives (gn_delivery_write(), chunk
 * by chunk, into one blob for every copy), so the header section is held
 * here until its empty line, rewritten, then written; the body passes
 * through untouched.  Taps (mailauth's DKIM verifier) see the bytes as
 * they came, before this: signatures are verified over what was signed.
 * A signature that covered the forged field will not verify again from
 * the stored copy; RFC 6376 5.4 counsels against signing such trace
 * fields, and a field claiming to be our verdict is not worth keeping
 * verifiable.
 */
#include "forged.h"

#include <string.h>
#include <strings.h>

static const char field_name[] = "Authentication-Results";

/* Whether the value of an Authentication-Results field starts with
 * authserv_id (RFC 8601 2.2: [CFWS] authserv-id, a value: a token or a
 * quoted string), any case. */
static bool names_us(const char *v, size_t len, const char *authserv_id)
{
	size_t i = 0, idlen = strlen(authserv_id);
	for (;;) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n'))
			i++;
		if (i >= len || v[i] != '(')
			break;
		/* A comment, nested, with quoted pairs (RFC 5322 3.2.2). */
		int depth = 0;
		for (; i < len; i++) {
			if (v[i] == '\\' && i + 1 < len) {
				i++;
			} else if (v[i] == '(') {
				depth++;
			} else if (v[i] == ')' && --depth == 0) {
				i++;
				break;
			}
		}
	}
	size_t start = i;
	if (i < len && v[i] == '"') {
		start = ++i;
		while (i < len && v[i] != '"' && v[i] != '\\')
			i++;
		if (i >= len || v[i] != '"')
			return false;
	} else {
		while (i < len && v[i] != ';' && v[i] != ' ' && v[i] != '\t' && v[i] != '\r' &&
		       v[i] != '\n' && v[i] != '(')
			i++;
	}
	return i - start == idlen && strncasecmp(v + start, authserv_id, idlen) == 0;
}

/* Writes the held header section, renaming our fields. */
static int write_held(struct forged_filter *f, forged_write_fn *write, void *ctx,
		      const char *authserv_id)
{
	const char *h = gn_buf_data(f->held);
	size_t n = gn_buf_len(f->held), i = 0, from = 0;
	const size_t nl = sizeof(field_name) - 1;
	int ret = 0;
	f->done = true;
	while (i < n && !f->cut) {
		size_t start = i;
		/* A field: its first line and its continuation lines (RFC
		 * 5322 2.2.3); the empty line ends the loop. */
		do {
			while (i < n && h[i] != '\n')
				i++;
			if (i < n)
				i++;
		} while (i < n && (h[i] == ' ' || h[i] == '\t'));
		if (i - start <= 2)
			break;	/* the empty line */
		size_t k = start + nl;
		if (i - start <= nl || strncasecmp(h + start, field_name, nl) != 0)
			continue;
		/* RFC 5322 4.5: white space before the colon, obsolete. */
		while (k < i && (h[k] == ' ' || h[k] == '\t'))
			k++;
		if (k >= i || h[k] != ':' || !names_us(h + k + 1, i - k - 1, authserv_id))
			continue;
		if (start > from && write(ctx, h + from, start - from) < 0)
			ret = -1;
		if (write(ctx, FORGED_PREFIX, sizeof(FORGED_PREFIX) - 1) < 0)
			ret = -1;
		from = start;
		f->renamed++;
	}
	if (n > from && write(ctx, h + from, n - from) < 0)
		ret = -1;
	gn_buf_free(&f->held);
	return ret;
}

int smtp_forged_write(struct forged_filter *f, forged_write_fn *write, void *ctx,
		      const char *authserv_id, const char *buf, size_t len)
{
	if (f->done)
		return write(ctx, buf, len);
	if (f->held == NULL)
		f->held = gn_buf_new(FORGED_MAX_HEADER);
	size_t before = gn_buf_len(f->held);
	size_t room = FORGED_MAX_HEADER - before;
	size_t take = len < room ? len : room;
	(void)gn_buf_append(f->held, buf, take);
	const char *h = gn_buf_data(f->held);
	size_t n = gn_buf_len(f->held), end = 0;
	bool found = false;
	/* The header ends at the first empty line (RFC 5322 2.1); it may
	 * straddle chunks: look back three octets. */
	if (n >= 2 && h[0] == '\r' && h[1] == '\n') {
		found = true;
		end = 2;
	}
	for (size_t i = before >= 3 ? before - 3 : 0; !found && i + 3 < n; i++)
		if (memcmp(h + i, "\r\n\r\n", 4) == 0) {
			found = true;
			end = i + 4;
		}
	if (!found && take == len)
		return 0;	/* still in the header */
	if (!found) {
		/* Past FORGED_MAX_HEADER: written as it came. */
		f->cut = true;
		end = n;
	}
	/* What of this chunk lies past the header goes after it. */
	size_t rest_from = take - (n - end);
	gn_buf_truncate(f->held, end);
	int ret = write_held(f, write, ctx, authserv_id);
	if (len > rest_from && write(ctx, buf + rest_from, len - rest_from) < 0)
		ret = -1;
	return ret;
}

int smtp_forged_flush(struct forged_filter *f, forged_write_fn *write, void *ctx,
		      const char *authserv_id)
{
	if (f->done || f->held == NULL)
		return 0;
	return write_held(f, write, ctx, authserv_id);
}

void smtp_forged_reset(struct forged_filter *f)
{
	gn_buf_free(&f->held);
	memset(f, 0, sizeof(*f));
}
