/*
 * modules/submission/message.c: the end of data of a submission.
 *
 * The header section is read field by field (RFC 5322 2.2: a field is a
 * line that does not begin with white space and the lines after it that
 * do).  Then:
 *
 *   From         exactly one From field with exactly one mailbox (RFC 5322
 *                3.6.2 allows a list only with Sender; submission keeps it
 *                simple, as mox does), else 550 5.6.0; its address must be
 *                one the account may send as, checked like MAIL FROM, else 550 5.7.1
 *                (mox.md 11: "must match authenticated user").
 *   extra data   X-Gannet-Extra-<Key>: value, and X-Mox-Extra-<Key> for
 *                mox's clients: the key in MIME-canonical form ("user-id"
 *                -> "User-Id"), the value unfolded and trimmed; a key twice
 *                (in either spelling) 554 5.6.0 as in mox (mox.md 2.6).
 *                Unlike mox, these fields are taken out of the message: they
 *                are data for the sender's application (webhooks), not for
 *                the recipients.
 *   TLS-Required "No" (RFC 8689): the queue relaxes DANE and MTA-STS
 *                for the message, unless MAIL FROM said REQUIRETLS.
 *   Date,        added when missing (RFC 6409 8.2, 8.3): Date now in UTC,
 *   Message-ID   Message-ID <32 hex random digits@host name>.
 *   Received     of the submission, first (RFC 5321 4.4; with "for" only
 *                for a single recipient, as mox).
 *
 * The final message is one buffer from the transaction's pool: the added
 * fields, the kept fields as they were, the blank line and the body.
 */
#include "submission.h"

#include <gannet/dkim.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define PREFIX_GANNET "X-Gannet-Extra-"
#define PREFIX_MOX "X-Mox-Extra-"

static int refuse(struct submission_refusal *refusal, int code, const char *enhanced,
		  const char *text)
{
	refusal->code = code;
	refusal->enhanced = enhanced;
	refusal->text = text;
	return 1;
}

/* RFC 5322 3.3 date-time in UTC, independent of the locale. */
static char *date_now(struct gn_pool *pool)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	return gn_pool_printf(pool, "%s, %02d %s %04d %02d:%02d:%02d +0000",
			      days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
			      tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static char *new_message_id(struct gn_pool *pool, const char *host, const char **error_r)
{
	unsigned char rnd[16];
	char hex[33];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		*error_r = "no random bytes for a Message-ID";
		return NULL;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	return gn_pool_printf(pool, "<%s@%s>", hex, host);
}

/* The value of a field without its line breaks (RFC 5322 2.2.3), white
 * space at both ends trimmed; NULL when it holds a control character
 * other than tab (no header injection through extra data). */
static char *unfold(struct gn_pool *pool, const char *v, size_t n)
{
	char *out = gn_pool_alloc(pool, n + 1), *o = out;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == '\r' && i + 1 < n && v[i + 1] == '\n') {
			i++;
			continue;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return NULL;
		*o++ = (char)c;
	}
	*o = '\0';
	char *start = out;
	while (*start == ' ' || *start == '\t')
		start++;
	while (o > start && (o[-1] == ' ' || o[-1] == '\t'))
		*--o = '\0';
	return start;
}

/* MIME-canonical: the first letter and each letter after "-" upper case,
 * the others lower case. */
static char *canonical_key(struct gn_pool *pool, const char *k, size_t n)
{
	char *out = gn_pool_strndup(pool, k, n);
	bool up = true;
	for (char *p = out; *p != '\0'; p++) {
		if (*p >= 'a' && *p <= 'z' && up)
			*p = (char)(*p - 'a' + 'A');
		else if (*p >= 'A' && *p <= 'Z' && !up)
			*p = (char)(*p - 'A' + 'a');
		up = *p == '-';
	}
	return out;
}

static bool name_is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

static bool name_has_prefix(const char *name, size_t n, const char *prefix, size_t *plen_r)
{
	size_t pl = strlen(prefix);
	*plen_r = pl;
	return n >= pl && strncasecmp(name, prefix, pl) == 0;
}

/* Checks the one From against the account: 0 ok (*domain_r: its domain,
 * for the DKIM signature), 1 refused, -1 error. */
static int check_from(struct gn_smtp_session *s, struct gn_pool *pool, const char *v, size_t n,
		      const char **domain_r, struct submission_refusal *refusal, const char **error_r)
{
	struct gn_addr_list list;
	const struct gn_addr *addr = NULL;
	const char *err = NULL;
	size_t mailboxes = 0;

	if (gn_addr_parse_header(pool, v, n, &list, &err) < 0)
		return refuse(refusal, 550, "5.6.0", "Cannot parse the From address");
	for (size_t i = 0; i < list.count; i++) {
		if (list.items[i]->kind != GN_ADDR_MAILBOX || list.items[i]->group != NULL)
			return refuse(refusal, 550, "5.6.0", "The From header must hold one address");
		mailboxes++;
		addr = list.items[i]->addr;
	}
	if (mailboxes != 1 || addr == NULL)
		return refuse(refusal, 550, "5.6.0", "The From header must hold one address");
	int r = submission_send_as(s, pool, addr, error_r);
	if (r < 0)
		return -1;
	if (r == 0)
		return refuse(refusal, 550, "5.7.1", "From address must match authenticated user");
	*domain_r = addr->domain;
	return 0;
}

/* A field of the header section. */
struct field {
	size_t start, end;	/* [start, end): the whole field with its CRLF */
	bool drop;
};

int submission_message_prepare(struct gn_smtp_session *s, struct gn_pool *pool,
			       const char *data, size_t len, int64_t account_id,
			       struct submission_message *msg,
			       struct submission_refusal *refusal, const char **error_r)
{
	struct field *fields = NULL;
	size_t n_fields = 0, cap = 0, pos = 0, body = len;
	struct submission_extra *extra = NULL;
	size_t n_extra = 0;
	const char *from_v = NULL, *msgid = NULL;
	size_t from_n = 0, from_count = 0;
	bool has_date = false;
	int ret = 0;

	/* The header section: fields until the empty line (or the end). */
	while (pos < len) {
		if (len - pos >= 2 && data[pos] == '\r' && data[pos + 1] == '\n') {
			body = pos;
			break;
		}
		if (data[pos] == ' ' || data[pos] == '\t') {
			ret = refuse(refusal, 554, "5.6.0", "Malformed message: header section "
				     "starts with a continuation line");
			goto out;
		}
		size_t start = pos, colon = 0;
		bool have_colon = false;
		for (;;) {
			const char *nl = memchr(data + pos, '\n', len - pos);
			pos = nl != NULL ? (size_t)(nl - data) + 1 : len;
			if (pos >= len || (data[pos] != ' ' && data[pos] != '\t'))
				break;
		}
		for (size_t i = start; i < pos; i++) {
			if (data[i] == ':') {
				colon = i;
				have_colon = true;
				break;
			}
			if ((unsigned char)data[i] <= 32 || (unsigned char)data[i] >= 127)
				break;
		}
		if (!have_colon || colon == start) {
			ret = refuse(refusal, 554, "5.6.0", "Malformed message: a header line "
				     "without a field name");
			goto out;
		}
		/* The signer's limits (gannet/dkim.h), so that what is accepted
		 * here can be signed; the count also bounds this array. */
		if (n_fields >= GN_DKIM_MAX_FIELDS || pos > GN_DKIM_MAX_HEADER) {
			ret = refuse(refusal, 554, "5.6.0", n_fields >= GN_DKIM_MAX_FIELDS ?
				     "Too many header fields" : "Header section too large");
			goto out;
		}
		if (n_fields == cap) {
			cap = cap == 0 ? 32 : cap * 2;
			fields = gn_realloc(fields, cap * sizeof(*fields));
		}
		struct field *f = &fields[n_fields++];
		f->start = start;
		f->end = pos;
		f->drop = false;

		const char *name = data + start, *v = data + colon + 1;
		size_t nlen = colon - start, vlen = pos - colon - 1, plen;
		/* The value without the field's final CRLF. */
		if (vlen >= 2 && v[vlen - 2] == '\r' && v[vlen - 1] == '\n')
			vlen -= 2;
		if (name_is(name, nlen, "From")) {
			from_count++;
			from_v = v;
			from_n = vlen;
		} else if (name_is(name, nlen, "TLS-Required")) {
			/* RFC 8689: "No" (case-insensitive) asks to relax
			 * DANE and MTA-STS; any other value means nothing.
			 * The field stays in the message (RFC 8689). */
			char *tv = unfold(pool, v, vlen);
			if (tv != NULL && strcasecmp(tv, "No") == 0)
				msg->tls_required_no = true;
		} else if (name_is(name, nlen, "Date")) {
			has_date = true;
		} else if (name_is(name, nlen, "Message-ID")) {
			msgid = unfold(pool, v, vlen);
			/* Empty or with a control character: replaced by ours
			 * below, not kept beside it. */
			if (msgid == NULL || *msgid == '\0')
				f->drop = true;
		} else if (name_has_prefix(name, nlen, PREFIX_GANNET, &plen) ||
			   name_has_prefix(name, nlen, PREFIX_MOX, &plen)) {
			f->drop = true;
			if (nlen == plen) {
				ret = refuse(refusal, 554, "5.6.0", "Extra data header without a key");
				goto out;
			}
			char *key = canonical_key(pool, name + plen, nlen - plen);
			char *value = unfold(pool, v, vlen);
			if (value == NULL) {
				ret = refuse(refusal, 554, "5.6.0", "Control character in an extra data value");
				goto out;
			}
			for (size_t i = 0; i < n_extra; i++) {
				if (strcmp(extra[i].key, key) == 0) {
					/* mox.md 2.6. */
					ret = refuse(refusal, 554, "5.6.0", "Duplicate extra data key");
					goto out;
				}
			}
			if ((long long)n_extra >= submission_settings.max_extra) {
				ret = refuse(refusal, 554, "5.6.0", "Too many extra data headers");
				goto out;
			}
			if (n_extra % 16 == 0)
				extra = gn_realloc(extra, (n_extra + 16) * sizeof(*extra));
			extra[n_extra].key = key;
			extra[n_extra].value = value;
			n_extra++;
		}
	}
	if (from_count != 1) {
		ret = refuse(refusal, 550, "5.6.0", from_count == 0 ? "Message has no From header" :
			     "Message has more than one From header");
		goto out;
	}
	ret = check_from(s, pool, from_v, from_n, &msg->from_domain, refusal, error_r);
	if (ret != 0)
		goto out;

	/* The final message. */
	const struct gn_addr *for_rcpt = msg->rcpt_count == 1 ? msg->rcpts[0] : NULL;
	const char *received = gn_smtp_session_received(s, pool, for_rcpt);
	const char *added_id = NULL;
	{
		const char *host = gn_smtp_session_hostname(s);
		struct gn_buf *b = gn_buf_new(0);

		if (received != NULL)
			gn_buf_append_str(b, received);
		if (!has_date)
			gn_buf_printf(b, "Date: %s\r\n", date_now(pool));
		if (msgid == NULL || *msgid == '\0') {
			added_id = new_message_id(pool, host, error_r);
			if (added_id == NULL) {
				gn_buf_free(&b);
				ret = -1;
				goto out;
			}
			gn_buf_printf(b, "Message-ID: %s\r\n", added_id);
			msgid = added_id;
		}
		for (size_t i = 0; i < n_fields; i++)
			if (!fields[i].drop)
				gn_buf_append(b, data + fields[i].start, fields[i].end - fields[i].start);
		gn_buf_append(b, data + body, len - body);
		msg->size = gn_buf_len(b);
		msg->data = gn_pool_alloc(pool, msg->size + 1);
		memcpy((char *)msg->data, gn_buf_data(b), msg->size);
		gn_buf_free(&b);
	}
	msg->message_id = msgid;
	if (n_extra > 0) {
		struct submission_extra *x = gn_pool_alloc(pool, n_extra * sizeof(*x));
		memcpy(x, extra, n_extra * sizeof(*x));
		msg->extra = x;
	}
	msg->extra_count = n_extra;
	{
		/* The shape of the result (field names, extra keys: no
		 * values), for the administrator and the tests. */
		struct gn_buf *names = gn_buf_new(4096), *keys = gn_buf_new(4096);
		if (received != NULL)
			gn_buf_append_str(names, "Received");
		if (!has_date)
			gn_buf_append_str(names, gn_buf_len(names) > 0 ? ",Date" : "Date");
		if (added_id != NULL)
			gn_buf_append_str(names, gn_buf_len(names) > 0 ? ",Message-ID" : "Message-ID");
		for (size_t i = 0; i < n_fields; i++) {
			if (fields[i].drop)
				continue;
			const char *c = memchr(data + fields[i].start, ':', fields[i].end - fields[i].start);
			if (gn_buf_len(names) > 0)
				gn_buf_append(names, ",", 1);
			gn_buf_append(names, data + fields[i].start, (size_t)(c - (data + fields[i].start)));
		}
		for (size_t i = 0; i < n_extra; i++)
			gn_buf_printf(keys, "%s%s", i > 0 ? "," : "", extra[i].key);
		gn_log(GN_LOG_DEBUG, SUBMISSION_AREA, "event=message_prepared id=%s tx=%s size=%zu "
		       "message_id=%s fields=%s extra_keys=%s", gn_conn_id(gn_smtp_session_conn(s)),
		       msg->tx_id, msg->size, gn_log_quote(0, msgid),
		       gn_log_quote(1, gn_buf_data(names)), gn_log_quote(2, gn_buf_data(keys)));
		gn_buf_free(&names);
		gn_buf_free(&keys);
	}
out:
	gn_free(fields);
	gn_free(extra);
	return ret;
}
