/*
 * modules/webapi/webapi.c: mox's HTTP API v0 at /webapi/v0/ (mox.md 1.1
 * to 1.3): transport, Basic auth with the failed-auth limiter, the
 * dispatch table (from which the index page, the example pages and the
 * OpenAPI description are made) and the methods.  README beside.
 */
#include <gannet/gannet.h>
#include <gannet/http.h>
#include <gannet/auth.h>
#include <gannet/store.h>
#include <gannet/mime.h>
#include <gannet/addr.h>
#include <gannet/service.h>
#include <gannet/suppression.h>
#include <gannet/compose.h>
#include <gannet/submit.h>
#include <gannet/deliver.h>
#include <gannet/config.h>

#include <json-c/json.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/random.h>

#include "webapi.h"

#define TEXT_MAX (1024 * 1024)		/* Message.Text and .HTML, as mox */
#define FLAGS_MAX 1000			/* flags in one request */
#define PARTPATH_MAX 100		/* indexes in a PartPath */
#define MAILBOX_NAME_MAX 1000

/* ---- one call ---- */

struct call {
	struct gn_http_request *req;
	struct gn_pool *pool;
	int64_t account_id;
	const char *account;
	const char *login;
	struct json_object *args;
};

static void fail(struct call *c, const char *code, const char *fmt, ...) GN_PRINTF(3, 4);
static void fail(struct call *c, const char *code, const char *fmt, ...)
{
	struct gn_buf *msg = gn_buf_new(64 * 1024);
	va_list ap;
	va_start(ap, fmt);
	if (gn_buf_vprintf(msg, fmt, ap) < 0)
		gn_buf_append_str(msg, "(error message too long)");
	va_end(ap);
	gn_http_respond_error(c->req, 400, code, gn_buf_data(msg));
	gn_buf_free(&msg);
}

static void ok(struct call *c, struct json_object *o)
{
	gn_http_respond_json(c->req, 200, o);
	json_object_put(o);
}

static const char *arg_str(struct call *c, const char *name)
{
	struct json_object *v;
	if (!webapi_arg(c->args, name, &v) || json_object_is_type(v, json_type_null))
		return "";
	return json_object_get_string(v);
}

static int64_t arg_i64(struct call *c, const char *name)
{
	struct json_object *v;
	if (!webapi_arg(c->args, name, &v) || json_object_is_type(v, json_type_null))
		return 0;
	return json_object_get_int64(v);
}

static bool arg_bool(struct call *c, const char *name)
{
	struct json_object *v;
	return webapi_arg(c->args, name, &v) && json_object_get_boolean(v);
}

static struct json_object *arg_array(struct call *c, const char *name)
{
	struct json_object *v;
	if (!webapi_arg(c->args, name, &v) || !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

static char *rfc3339(struct gn_pool *pool, time_t t)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	char buf[64];
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return gn_pool_strdup(pool, buf);
}

/* ---- suppressions ---- */

static const struct gn_suppression_ops *suppression_ops(struct call *c)
{
	const struct gn_suppression_ops *ops = gn_service_lookup(GN_SUPPRESSION_SERVICE);
	if (ops == NULL)
		fail(c, "server", "suppression lists are not available: the module suppression is not loaded");
	return ops;
}

static const struct gn_addr *arg_address(struct call *c, const char *name)
{
	const char *s = arg_str(c, name);
	struct gn_addr *a;
	const char *error;
	if (gn_addr_parse(c->pool, s, strlen(s), &a, &error) < 0) {
		fail(c, "badAddress", "parsing address \"%s\": %s", s, error);
		return NULL;
	}
	return a;
}

static void m_suppression_list(struct call *c)
{
	const struct gn_suppression_ops *ops = suppression_ops(c);
	if (ops == NULL)
		return;
	struct gn_suppression *list;
	size_t n;
	const char *error;
	if (ops->list(c->pool, c->account_id, &list, &n, &error) < 0) {
		fail(c, "server", "listing suppressions: %s", error);
		return;
	}
	struct json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		struct json_object *s = json_object_new_object();
		json_object_object_add(s, "ID", json_object_new_int64(list[i].id));
		json_object_object_add(s, "Created",
				       json_object_new_string(rfc3339(c->pool, list[i].created)));
		json_object_object_add(s, "Account", json_object_new_string(list[i].account));
		json_object_object_add(s, "BaseAddress", json_object_new_string(list[i].base_address));
		json_object_object_add(s, "OriginalAddress",
				       json_object_new_string(list[i].original_address));
		json_object_object_add(s, "Manual", json_object_new_boolean(list[i].manual));
		json_object_object_add(s, "Reason", json_object_new_string(list[i].reason));
		json_object_array_add(a, s);
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "Suppressions", a);
	ok(c, o);
}

static void m_suppression_add(struct call *c)
{
	const struct gn_suppression_ops *ops = suppression_ops(c);
	if (ops == NULL)
		return;
	const struct gn_addr *a = arg_address(c, "EmailAddress");
	if (a == NULL)
		return;
	const char *error;
	int r = ops->add(c->account_id, a, arg_bool(c, "Manual"), arg_str(c, "Reason"), &error);
	if (r < 0)
		fail(c, "error", "adding suppression: %s", error);
	else if (r == 0)
		fail(c, "error", "adding suppression: unique constraint violated: base address already listed");
	else
		ok(c, json_object_new_object());
}

static void m_suppression_remove(struct call *c)
{
	const struct gn_suppression_ops *ops = suppression_ops(c);
	if (ops == NULL)
		return;
	const struct gn_addr *a = arg_address(c, "EmailAddress");
	if (a == NULL)
		return;
	const char *error;
	int r = ops->remove(c->account_id, a, &error);
	if (r < 0)
		fail(c, "error", "removing suppression: %s", error);
	else if (r == 0)
		fail(c, "error", "absent");
	else
		ok(c, json_object_new_object());
}

static void m_suppression_present(struct call *c)
{
	const struct gn_suppression_ops *ops = suppression_ops(c);
	if (ops == NULL)
		return;
	const struct gn_addr *a = arg_address(c, "EmailAddress");
	if (a == NULL)
		return;
	const char *error;
	int r = ops->lookup(c->pool, c->account_id, a, NULL, &error);
	if (r < 0) {
		fail(c, "server", "looking up suppression: %s", error);
		return;
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "Present", json_object_new_boolean(r == 1));
	ok(c, o);
}

/* ---- Send (mox.md 1.3; mox's webapisrv Send) ---- */

#define SEND_FIELD_MAX (64 * 1024)	/* octets of one header field or Extra value */
#define SEND_EXTRA_MAX 100		/* Extra keys */

/* A Send answered after its copy went to the Sent mailbox. */
struct send_wait {
	struct gn_http_request *req;
	struct json_object *answer;
};

static bool has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* "Name"/"Address" objects (keys case-insensitive, as Go's decoder). */
static bool name_addresses(struct call *c, const char *field, struct gn_compose_address **list_r,
			   size_t *n_r)
{
	struct json_object *a = arg_array(c, field);
	*list_r = NULL;
	*n_r = 0;
	if (a == NULL)
		return true;
	size_t n = json_object_array_length(a);
	if (n > GN_COMPOSE_MAX_ADDRESSES) {
		fail(c, "user", "too many addresses in %s (at most %d)", field, GN_COMPOSE_MAX_ADDRESSES);
		return false;
	}
	struct gn_compose_address *l = gn_pool_alloc(c->pool, (n + 1) * sizeof(*l));
	for (size_t i = 0; i < n; i++) {
		struct json_object *o = json_object_array_get_idx(a, i);
		l[i].name = "";
		l[i].address = "";
		if (!json_object_is_type(o, json_type_object)) {
			fail(c, "protocol", "parsing request: %s: an item is not an object", field);
			return false;
		}
		json_object_object_foreach(o, k, v) {
			const char **dst = strcasecmp(k, "Name") == 0 ? &l[i].name :
				strcasecmp(k, "Address") == 0 ? &l[i].address : NULL;
			if (dst == NULL) {
				fail(c, "protocol", "parsing request: unknown field \"%s\" in %s", k, field);
				return false;
			}
			if (json_object_is_type(v, json_type_null))
				continue;
			if (!json_object_is_type(v, json_type_string)) {
				fail(c, "protocol", "parsing request: %s.%s is not a string", field, k);
				return false;
			}
			*dst = gn_pool_strdup(c->pool, json_object_get_string(v));
		}
		struct gn_addr *addr;
		const char *error;
		if (gn_addr_parse(c->pool, l[i].address, strlen(l[i].address), &addr, &error) < 0) {
			fail(c, "badAddress", "parsing address \"%s\": %s", l[i].address, error);
			return false;
		}
	}
	*list_r = l;
	*n_r = n;
	return true;
}

/* Whether s is base64 as Go's base64.StdEncoding reads it (padded; CR
 * and LF ignored). */
static bool base64_strict(const char *s)
{
	size_t n = 0, pad = 0;
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '\r' || ch == '\n')
			continue;
		if (ch == '=') {
			pad++;
		} else if (pad > 0 || !((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
					(ch >= '0' && ch <= '9') || ch == '+' || ch == '/')) {
			return false;
		}
		n++;
	}
	return n % 4 == 0 && pad <= 2;
}

/* Data that base64_strict() accepted, decoded (from pool; NUL after it).
 * The core's base64 decoders are internal (core/mail/mime-decode.c decodes
 * a part's body); a public one would let this go. */
static char *base64_decode(struct gn_pool *pool, const char *s, size_t len, size_t *len_r)
{
	char *out = gn_pool_alloc(pool, len / 4 * 3 + 4);
	size_t n = 0;
	unsigned acc = 0, bits = 0;
	for (size_t i = 0; i < len && s[i] != '='; i++) {
		unsigned char ch = (unsigned char)s[i];
		int v = ch >= 'A' && ch <= 'Z' ? ch - 'A' : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26 :
			ch >= '0' && ch <= '9' ? ch - '0' + 52 : ch == '+' ? 62 : ch == '/' ? 63 : -1;
		if (v < 0)
			continue;	/* CR, LF */
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[n] = '\0';
	*len_r = n;
	return out;
}

/* File objects of JSON: Name, ContentType, ContentID, Data (base64). */
static bool json_files(struct call *c, const char *field, struct gn_compose_file **list_r,
		       size_t *n_r, size_t *total)
{
	struct json_object *a = arg_array(c, field);
	*list_r = NULL;
	*n_r = 0;
	if (a == NULL)
		return true;
	size_t n = json_object_array_length(a);
	if (*total + n > GN_COMPOSE_MAX_FILES) {
		fail(c, "user", "too many files (at most %d)", GN_COMPOSE_MAX_FILES);
		return false;
	}
	*total += n;
	struct gn_compose_file *l = gn_pool_alloc(c->pool, (n + 1) * sizeof(*l));
	memset(l, 0, (n + 1) * sizeof(*l));
	for (size_t i = 0; i < n; i++) {
		struct json_object *o = json_object_array_get_idx(a, i);
		if (!json_object_is_type(o, json_type_object)) {
			fail(c, "protocol", "parsing request: %s: an item is not an object", field);
			return false;
		}
		const char *data = "";
		json_object_object_foreach(o, k, v) {
			const char **dst = strcasecmp(k, "Name") == 0 ? &l[i].name :
				strcasecmp(k, "ContentType") == 0 ? &l[i].content_type :
				strcasecmp(k, "ContentID") == 0 ? &l[i].content_id :
				strcasecmp(k, "Data") == 0 ? &data : NULL;
			if (dst == NULL) {
				fail(c, "protocol", "parsing request: unknown field \"%s\" in %s", k, field);
				return false;
			}
			if (json_object_is_type(v, json_type_null))
				continue;
			if (!json_object_is_type(v, json_type_string)) {
				fail(c, "protocol", "parsing request: %s.%s is not a string", field, k);
				return false;
			}
			*dst = gn_pool_strdup(c->pool, json_object_get_string(v));
		}
		if (l[i].content_id != NULL && l[i].content_id[0] == '\0')
			l[i].content_id = NULL;
		size_t len;
		char *bin = base64_strict(data) ?
			base64_decode(c->pool, data, strlen(data), &len) : NULL;
		if (bin == NULL) {
			fail(c, "user", "parsing attachment as base64: %s: invalid base64 data", field);
			return false;
		}
		l[i].data = bin;
		l[i].len = len;
	}
	*list_r = l;
	*n_r = n;
	return true;
}

/* Uploaded files of a multipart/form-data request, form field kind
 * ("alternativefile" ...), after the JSON ones. */
static bool form_files(struct call *c, const char *kind, struct gn_compose_file **list,
		       size_t *n, size_t *total)
{
	size_t count = gn_http_request_field_count(c->req), more = 0;
	for (size_t i = 0; i < count; i++) {
		const char *name, *value, *filename, *ctype;
		size_t len;
		gn_http_request_field(c->req, i, &name, &value, &len, &filename, &ctype);
		if (strcmp(name, kind) == 0)
			more++;
	}
	if (more == 0)
		return true;
	if (*total + more > GN_COMPOSE_MAX_FILES) {
		fail(c, "user", "too many files (at most %d)", GN_COMPOSE_MAX_FILES);
		return false;
	}
	*total += more;
	struct gn_compose_file *l = gn_pool_alloc(c->pool, (*n + more + 1) * sizeof(*l));
	memset(l, 0, (*n + more + 1) * sizeof(*l));
	if (*n > 0)
		memcpy(l, *list, *n * sizeof(*l));
	for (size_t i = 0; i < count; i++) {
		const char *name, *value, *filename, *ctype;
		size_t len;
		gn_http_request_field(c->req, i, &name, &value, &len, &filename, &ctype);
		if (strcmp(name, kind) != 0)
			continue;
		struct gn_compose_file *f = &l[(*n)++];
		f->name = filename;
		f->content_type = ctype;
		f->data = value;
		f->len = len;
	}
	*list = l;
	return true;
}

/* RFC 3339 as Go's time.Time reads it: 0 with *t_r, -1 not one. */
static int parse_time(const char *s, time_t *t_r)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	int n = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n != 19)
		return -1;
	const char *p = s + n;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	long off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int hh, mm, m = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &m) != 2 || m != 5 || hh > 23 || mm > 59)
			return -1;
		off = (hh * 60L + mm) * 60L * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -1;
	}
	if (*p != '\0' || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*t_r = timegm(&tm) - off;
	return 0;
}

static bool arg_time(struct call *c, const char *name, time_t *t_r)
{
	*t_r = 0;
	const char *s = arg_str(c, name);
	if (s[0] == '\0')
		return true;
	if (parse_time(s, t_r) < 0) {
		fail(c, "protocol", "parsing request: %s: not an RFC 3339 time: \"%s\"", name, s);
		return false;
	}
	return true;
}

static const char *submit_code(enum gn_submit_status s)
{
	switch (s) {
	case GN_SUBMIT_OK: return "server";
	case GN_SUBMIT_USER: return "user";
	case GN_SUBMIT_BAD_FROM: return "badFrom";
	case GN_SUBMIT_NO_RECIPIENTS: return "noRecipients";
	case GN_SUBMIT_MESSAGE_LIMIT: return "messageLimitReached";
	case GN_SUBMIT_RECIPIENT_LIMIT: return "recipientLimitReached";
	case GN_SUBMIT_TOO_LARGE: return "messageTooLarge";
	case GN_SUBMIT_SERVER: return "server";
	}
	return "server";
}

static const char *compose_code(enum gn_compose_error e)
{
	switch (e) {
	case GN_COMPOSE_OK:
	case GN_COMPOSE_USER: return "user";
	case GN_COMPOSE_BAD_ADDRESS: return "badAddress";
	case GN_COMPOSE_MISSING_BODY: return "missingBody";
	case GN_COMPOSE_MULTIPLE_FROM: return "multipleFrom";
	case GN_COMPOSE_TOO_LARGE: return "messageTooLarge";
	case GN_COMPOSE_MALFORMED_MESSAGE_ID: return "malformedMessageID";
	case GN_COMPOSE_SERVER: return "server";
	}
	return "server";
}

/* The Received field of an authenticated HTTP submission, as mox writes
 * it for its webapi: no "with" (no registered method for HTTP), no
 * client IP; "for" only for a single recipient. */
static char *received_field(struct call *c, const char *for_rcpt)
{
	unsigned char rnd[8];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return NULL;
	char id[17];
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(id + 2 * i, 3, "%02x", rnd[i]);
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	const char *host = gn_config_hostname();
	if (for_rcpt != NULL)
		return gn_pool_printf(c->pool, "Received: from %s by %s id %s\r\n\tfor <%s>; %s\r\n",
				      host, host, id, for_rcpt, date);
	return gn_pool_printf(c->pool, "Received: from %s by %s id %s;\r\n\t%s\r\n", host, host, id, date);
}

static void send_saved(struct gn_delivery *d, void *data)
{
	struct send_wait *w = data;
	const struct gn_delivery_result *r = gn_delivery_result(d, 0);
	if (r != NULL && r->status == GN_DELIVERY_ACCEPTED) {
		gn_http_respond_json(w->req, 200, w->answer);
	} else {
		/* mox: queued, but the copy refused; the quota module answers
		 * 452 4.2.2 for a full account. */
		bool quota = r != NULL && r->enhanced != NULL && strcmp(r->enhanced, "4.2.2") == 0;
		char *msg = gn_strdup_printf("message was sent, but not stored in sent mailbox: %s",
					     r != NULL && r->text != NULL ? r->text : "store failed");
		gn_log(GN_LOG_WARN, "webapi", "event=sent_not_saved error=%s", gn_log_quote(0, msg));
		gn_http_respond_error(w->req, 400, quota ? "sentOverQuota" : "server", msg);
		gn_free(msg);
	}
	json_object_put(w->answer);
	gn_free(w);
	gn_delivery_free(&d);
}

static void m_send(struct call *c)
{
	struct gn_compose comp;
	memset(&comp, 0, sizeof(comp));
	comp.size = sizeof(comp);

	const char *text = arg_str(c, "Text"), *html = arg_str(c, "HTML");
	if (text[0] == '\0' && html[0] == '\0') {
		fail(c, "missingBody", "at least text or html body required");
		return;
	}
	if (strlen(text) > TEXT_MAX || strlen(html) > TEXT_MAX) {
		fail(c, "messageTooLarge", "text or html body over %d bytes", TEXT_MAX);
		return;
	}
	struct gn_compose_address *from, *to, *cc, *bcc, *reply_to;
	size_t n_from, n_to, n_cc, n_bcc, n_reply_to;
	if (!name_addresses(c, "From", &from, &n_from))
		return;
	if (n_from > 1) {
		fail(c, "multipleFrom", "multiple from-addresses not allowed");
		return;
	}
	if (n_from == 0) {
		/* mox: the account's full name and the login address. */
		struct gn_store_account *acc = NULL;
		const char *err = NULL;
		from = gn_pool_alloc(c->pool, sizeof(*from));
		from->name = "";
		from->address = c->login;
		if (gn_store_account_get(c->pool, c->account_id, &acc, &err) > 0)
			from->name = gn_store_account_full_name(acc);
		n_from = 1;
	}
	if (!name_addresses(c, "To", &to, &n_to) || !name_addresses(c, "CC", &cc, &n_cc) ||
	    !name_addresses(c, "BCC", &bcc, &n_bcc) ||
	    !name_addresses(c, "ReplyTo", &reply_to, &n_reply_to))
		return;
	struct gn_addr *from_addr;
	const char *error = NULL;
	if (gn_addr_parse(c->pool, from->address, strlen(from->address), &from_addr, &error) < 0) {
		fail(c, "badAddress", "parsing address \"%s\": %s", from->address, error);
		return;
	}
	int r = gn_store_send_as_check(c->pool, c->account_id, from_addr, &error);
	if (r < 0) {
		gn_log(GN_LOG_ERROR, "webapi", "event=send_as_error error=%s", gn_log_quote(0, error));
		fail(c, "server", "checking from address");
		return;
	}
	if (r == 0) {
		fail(c, "badFrom", "from-address not configured for account");
		return;
	}
	size_t n_rcpt = n_to + n_cc + n_bcc;
	if (n_rcpt == 0) {
		fail(c, "noRecipients", "no recipients");
		return;
	}
	if (n_rcpt > GN_COMPOSE_MAX_ADDRESSES) {
		fail(c, "user", "too many recipients (at most %d)", GN_COMPOSE_MAX_ADDRESSES);
		return;
	}
	const struct gn_addr **rcpts = gn_pool_alloc(c->pool, n_rcpt * sizeof(*rcpts));
	const char **rcpt_given = gn_pool_alloc(c->pool, n_rcpt * sizeof(*rcpt_given));
	bool smtputf8 = gn_addr_needs_smtputf8(from_addr);
	size_t k = 0;
	const struct gn_compose_address *lists[3] = { to, cc, bcc };
	size_t counts[3] = { n_to, n_cc, n_bcc };
	for (int li = 0; li < 3; li++)
		for (size_t i = 0; i < counts[li]; i++) {
			struct gn_addr *a;
			const char *addr = lists[li][i].address;
			if (gn_addr_parse(c->pool, addr, strlen(addr), &a, &error) < 0) {
				fail(c, "badAddress", "parsing address \"%s\": %s", addr, error);
				return;
			}
			smtputf8 = smtputf8 || gn_addr_needs_smtputf8(a);
			rcpt_given[k] = addr;
			rcpts[k++] = a;
		}

	const char *message_id = arg_str(c, "MessageID");
	const char *subject = arg_str(c, "Subject");
	if (has_control(subject) || has_control(message_id)) {
		fail(c, "user", "control characters in subject or message-id");
		return;
	}
	time_t date, release;
	if (!arg_time(c, "Date", &date) || !arg_time(c, "FutureRelease", &release))
		return;

	/* References: strings. */
	struct json_object *refs = arg_array(c, "References");
	size_t n_refs = refs != NULL ? json_object_array_length(refs) : 0;
	if (n_refs > GN_COMPOSE_MAX_REFERENCES) {
		fail(c, "user", "too many references (at most %d)", GN_COMPOSE_MAX_REFERENCES);
		return;
	}
	const char **ref = gn_pool_alloc(c->pool, (n_refs + 1) * sizeof(*ref));
	for (size_t i = 0; i < n_refs; i++) {
		ref[i] = json_object_get_string(json_object_array_get_idx(refs, i));
		if (has_control(ref[i])) {
			fail(c, "user", "control characters in references");
			return;
		}
	}

	/* Headers: [name, value] pairs. */
	struct json_object *hs = arg_array(c, "Headers");
	size_t n_hs = hs != NULL ? json_object_array_length(hs) : 0;
	if (n_hs > GN_COMPOSE_MAX_HEADERS) {
		fail(c, "user", "too many headers (at most %d)", GN_COMPOSE_MAX_HEADERS);
		return;
	}
	struct gn_compose_header *h = gn_pool_alloc(c->pool, (n_hs + 1) * sizeof(*h));
	for (size_t i = 0; i < n_hs; i++) {
		struct json_object *kv = json_object_array_get_idx(hs, i);
		if (!json_object_is_type(kv, json_type_array) || json_object_array_length(kv) != 2 ||
		    !json_object_is_type(json_object_array_get_idx(kv, 0), json_type_string) ||
		    !json_object_is_type(json_object_array_get_idx(kv, 1), json_type_string)) {
			fail(c, "protocol", "parsing request: Headers: each item is [name, value]");
			return;
		}
		h[i].name = json_object_get_string(json_object_array_get_idx(kv, 0));
		h[i].value = json_object_get_string(json_object_array_get_idx(kv, 1));
		if (has_control(h[i].name) || strlen(h[i].value) > SEND_FIELD_MAX) {
			fail(c, "user", "bad header field \"%s\"", h[i].name);
			return;
		}
	}

	/* Extra: an object of strings. */
	struct json_object *ex = NULL;
	struct gn_submit_extra *extra = NULL;
	size_t n_extra = 0;
	if (webapi_arg(c->args, "Extra", &ex) && json_object_is_type(ex, json_type_object)) {
		size_t n = (size_t)json_object_object_length(ex);
		if (n > SEND_EXTRA_MAX) {
			fail(c, "user", "too many extra keys (at most %d)", SEND_EXTRA_MAX);
			return;
		}
		extra = gn_pool_alloc(c->pool, (n + 1) * sizeof(*extra));
		json_object_object_foreach(ex, ek, ev) {
			if (!json_object_is_type(ev, json_type_string)) {
				fail(c, "protocol", "parsing request: Extra.%s is not a string", ek);
				return;
			}
			extra[n_extra].key = ek;
			extra[n_extra++].value = json_object_get_string(ev);
		}
	}

	/* Files: JSON ones first, then uploads (mox's order). */
	size_t total = 0;
	struct gn_compose_file *alt, *inl, *att;
	size_t n_alt, n_inl, n_att;
	if (!json_files(c, "AlternativeFiles", &alt, &n_alt, &total) ||
	    !json_files(c, "InlineFiles", &inl, &n_inl, &total) ||
	    !json_files(c, "AttachedFiles", &att, &n_att, &total) ||
	    !form_files(c, "alternativefile", &alt, &n_alt, &total) ||
	    !form_files(c, "inlinefile", &inl, &n_inl, &total) ||
	    !form_files(c, "attachedfile", &att, &n_att, &total))
		return;

	comp.from = from;
	comp.to = to;
	comp.n_to = n_to;
	comp.cc = cc;
	comp.n_cc = n_cc;
	comp.reply_to = reply_to;
	comp.n_reply_to = n_reply_to;
	comp.subject = subject;
	comp.text = text[0] != '\0' ? text : NULL;
	comp.html = html[0] != '\0' ? html : NULL;
	comp.alternative_files = alt;
	comp.n_alternative_files = n_alt;
	comp.inline_files = inl;
	comp.n_inline_files = n_inl;
	comp.attached_files = att;
	comp.n_attached_files = n_att;
	comp.headers = h;
	comp.n_headers = n_hs;
	comp.references = ref;
	comp.n_references = n_refs;
	comp.message_id = message_id[0] != '\0' ? message_id : NULL;
	comp.host = gn_config_hostname();
	comp.date = date;
	comp.user_agent = "gannet";
	struct gn_compose_result cr;
	memset(&cr, 0, sizeof(cr));
	cr.size = sizeof(cr);
	if (gn_compose(c->pool, &comp, &cr) < 0) {
		fail(c, compose_code(cr.error), "%s", cr.error_text != NULL ? cr.error_text : "composing");
		return;
	}

	/* The Received field first (mox: "for" with a single recipient). */
	char *recv = received_field(c, n_rcpt == 1 ? rcpt_given[0] : NULL);
	if (recv == NULL) {
		gn_free(cr.data);
		fail(c, "server", "no random bytes");
		return;
	}
	size_t rlen = strlen(recv), len = rlen + cr.len;
	char *msg = gn_malloc(len + 1);
	memcpy(msg, recv, rlen);
	memcpy(msg + rlen, cr.data, cr.len);
	msg[len] = '\0';
	gn_free(cr.data);

	const struct gn_submit_ops *ops = gn_service_lookup(GN_SUBMIT_SERVICE);
	if (ops == NULL) {
		gn_free(msg);
		fail(c, "server", "sending is not available: the module submission is not loaded");
		return;
	}
	struct json_object *rt = NULL;
	int require_tls = GN_QUEUE_TLS_DEFAULT;
	if (webapi_arg(c->args, "RequireTLS", &rt) && json_object_is_type(rt, json_type_boolean))
		require_tls = json_object_get_boolean(rt) ? GN_QUEUE_TLS_REQUIRED : GN_QUEUE_TLS_RELAXED;
	struct gn_submit_request sreq;
	memset(&sreq, 0, sizeof(sreq));
	sreq.size = sizeof(sreq);
	sreq.account_id = c->account_id;
	sreq.login = c->login;
	sreq.from = from_addr;
	sreq.recipients = rcpts;
	sreq.n_recipients = n_rcpt;
	sreq.data = msg;
	sreq.len = len;
	sreq.message_id = cr.message_id;
	sreq.smtputf8 = smtputf8 || cr.smtputf8;
	sreq.hold_until = release;
	sreq.extra = extra;
	sreq.n_extra = n_extra;
	sreq.require_tls = require_tls;
	struct gn_submit_result sres;
	memset(&sres, 0, sizeof(sres));
	sres.size = sizeof(sres);
	if (release != 0 && release <= time(NULL))
		sreq.hold_until = 0;
	if (ops->submit(c->pool, &sreq, &sres) < 0 || sres.n_rcpts != n_rcpt) {
		gn_free(msg);
		fail(c, submit_code(sres.status), "%s",
		     sres.error_text != NULL ? sres.error_text : "submission failed");
		return;
	}

	struct json_object *answer = json_object_new_object();
	json_object_object_add(answer, "MessageID", json_object_new_string(cr.message_id));
	struct json_object *subs = json_object_new_array();
	for (size_t i = 0; i < n_rcpt; i++) {
		struct json_object *s = json_object_new_object();
		json_object_object_add(s, "Address", json_object_new_string(rcpt_given[i]));
		int64_t qid = sres.rcpts[i].queue_id;
		if (sres.size >= offsetof(struct gn_submit_result, recipient_ids) +
		    sizeof(sres.recipient_ids) && sres.recipient_ids != NULL)
			qid = sres.recipient_ids[i];
		json_object_object_add(s, "QueueMsgID", json_object_new_int64(qid));
		json_object_object_add(s, "FromID", json_object_new_string(
			sres.rcpts[i].from_id != NULL ? sres.rcpts[i].from_id : ""));
		json_object_array_add(subs, s);
	}
	json_object_object_add(answer, "Submissions", subs);
	gn_log(GN_LOG_INFO, "webapi", "event=sent account=%s message_id=%s recipients=%zu",
	       gn_log_quote(0, c->account), gn_log_quote(1, cr.message_id), n_rcpt);

	if (!arg_bool(c, "SaveSent")) {
		gn_free(msg);
		ok(c, answer);
		return;
	}
	/* A copy in the Sent mailbox (none: nothing to do, as mox), through
	 * the delivery pipeline so that the quota module's checks apply; the
	 * Bcc addresses are prepended to this copy only (mox). */
	struct gn_store_mailbox *sent = NULL;
	r = gn_store_mailbox_find_special(c->pool, c->account_id, GN_STORE_SPECIAL_SENT, &sent, &error);
	if (r <= 0) {
		gn_free(msg);
		if (r < 0) {
			json_object_put(answer);
			fail(c, "server", "message was sent, but not stored in sent mailbox: %s", error);
			return;
		}
		ok(c, answer);
		return;
	}
	struct gn_buf *prefix = gn_buf_new(1024 * 1024);
	if (n_bcc > 0) {
		gn_buf_append_str(prefix, "Bcc: ");
		for (size_t i = 0; i < n_bcc; i++)
			gn_buf_printf(prefix, "%s<%s>", i > 0 ? ",\r\n\t" : "", bcc[i].address);
		gn_buf_append_str(prefix, "\r\n");
	}
	struct gn_delivery *d = gn_delivery_new("webapi", NULL);
	gn_delivery_set_sender(d, from_addr);
	gn_delivery_add_account(d, c->account_id, gn_buf_data(prefix), gn_buf_len(prefix));
	gn_buf_free(&prefix);
	gn_delivery_set_mailbox_default(d, gn_store_mailbox_name(sent), GN_DELIVERY_FIXED_MAILBOX);
	gn_delivery_set_flags(d, GN_STORE_SEEN, NULL, 0);
	gn_delivery_write(d, msg, len);
	gn_free(msg);
	struct send_wait *w = gn_malloc(sizeof(*w));
	w->req = c->req;
	w->answer = answer;
	if (gn_delivery_run(d, send_saved, w) < 0) {
		json_object_put(answer);
		gn_free(w);
		gn_delivery_free(&d);
		fail(c, "server", "message was sent, but not stored in sent mailbox");
	}
}

/* ---- messages ---- */

struct located {
	int64_t mailbox_id;
	uint32_t uid;
	struct gn_store_message *msg;
};

/* The message of the request's MsgID, with its structure: true, or false
 * answered. */
static bool locate(struct call *c, struct located *l)
{
	int64_t id = arg_i64(c, "MsgID");
	const char *error;
	int r = id > 0 ? gn_store_message_locate(c->account_id, id, &l->mailbox_id, &l->uid, &error) : 0;
	if (r > 0)
		r = gn_store_message_get(c->pool, c->account_id, l->mailbox_id, l->uid, &l->msg, &error);
	if (r < 0) {
		fail(c, "server", "looking up message: %s", error);
		return false;
	}
	if (r == 0) {
		fail(c, "messageNotFound", "message not found");
		return false;
	}
	return true;
}

/* The whole stored message (prefix and body); NULL answered. */
static char *read_message(struct call *c, const struct located *l, size_t *len_r)
{
	struct gn_store_body *body;
	const char *error;
	int r = gn_store_message_open(c->account_id, l->mailbox_id, l->uid, &body, &error);
	if (r <= 0) {
		if (r == 0)
			fail(c, "messageNotFound", "message not found");
		else
			fail(c, "server", "opening message: %s", error);
		return NULL;
	}
	size_t size = (size_t)gn_store_body_size(body);
	char *buf = gn_pool_alloc(c->pool, size + 1);
	size_t got = 0;
	while (got < size) {
		size_t n;
		if (gn_store_body_read(body, got, buf + got, size - got, &n, &error) < 0) {
			gn_store_body_free(&body);
			fail(c, "server", "reading message: %s", error);
			return NULL;
		}
		if (n == 0)
			break;
		got += n;
	}
	gn_store_body_free(&body);
	*len_r = got;
	return buf;
}

static struct gn_mime_message *structure(struct call *c, const struct located *l)
{
	const char *json = gn_store_message_mime_json(l->msg);
	struct gn_mime_message *m = NULL;
	const char *error;
	if (json != NULL && gn_mime_from_json_string(json, strlen(json), &m, &error) == 0)
		return m;
	/* No stored structure: parse the body. */
	size_t len;
	char *raw = read_message(c, l, &len);
	if (raw == NULL)
		return NULL;
	size_t prefix = (size_t)gn_store_message_prefix_len(l->msg);
	if (prefix > len)
		prefix = len;
	return gn_mime_parse(raw + prefix, len - prefix, NULL);
}

static bool is_multipart(const struct gn_mime_part *p)
{
	const char *t = gn_mime_part_type(p);
	return t != NULL && strcasecmp(t, "multipart") == 0;
}

static char *lower(struct gn_pool *pool, const char *s)
{
	char *r = gn_pool_strdup(pool, s != NULL ? s : "");
	for (char *p = r; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return r;
}

static char *content_type(struct gn_pool *pool, const struct gn_mime_part *p)
{
	const char *t = gn_mime_part_type(p), *s = gn_mime_part_subtype(p);
	if (t == NULL || s == NULL)
		return gn_pool_strdup(pool, "text/plain");
	return lower(pool, gn_pool_printf(pool, "%s/%s", t, s));
}

/* mox's webhook.Structure (the core's gn_mime_structure_json()). */
static struct json_object *structure_json(const struct gn_mime_part *p)
{
	char *text = gn_mime_structure_json(p);
	struct json_object *o = json_tokener_parse(text);
	gn_free(text);
	return o != NULL ? o : json_object_new_object();
}

static struct json_object *text_of(struct gn_pool *pool, const char *body, size_t len,
				   const struct gn_mime_part *root, const char *subtype)
{
	size_t n;
	char *s = gn_mime_text(pool, root, body, len, subtype, TEXT_MAX, &n);
	return json_object_new_string_len(s, (int)n);
}

static struct json_object *addresses(struct gn_pool *pool, const struct gn_mime_part *root,
				     enum gn_mime_field f)
{
	struct json_object *a = json_object_new_array();
	const char *raw = gn_mime_part_field_raw(root, f);
	if (raw == NULL)
		return a;
	struct gn_addr_list list;
	const char *error;
	gn_addr_parse_header(pool, raw, strlen(raw), &list, &error);
	for (size_t i = 0; i < list.count; i++) {
		const struct gn_addr_item *it = list.items[i];
		if (it->kind != GN_ADDR_MAILBOX || it->addr == NULL)
			continue;
		struct json_object *na = json_object_new_object();
		json_object_object_add(na, "Name", json_object_new_string(it->name));
		json_object_object_add(na, "Address", json_object_new_string(
			gn_pool_printf(pool, "%s@%s", it->addr->localpart, it->addr->domain_utf8)));
		json_object_array_add(a, na);
	}
	return a;
}

static struct json_object *references(struct gn_pool *pool, const struct gn_mime_part *root)
{
	struct json_object *a = json_object_new_array();
	const char *irt = gn_mime_part_field_raw(root, GN_MIME_IN_REPLY_TO);
	const char *refs = gn_mime_part_field_raw(root, GN_MIME_REFERENCES);
	char *first = NULL;
	if (irt != NULL) {
		const char *s = strchr(irt, '<'), *e = s != NULL ? strchr(s, '>') : NULL;
		if (e != NULL)
			first = gn_pool_strndup(pool, s, (size_t)(e - s + 1));
	}
	bool seen = false;
	for (const char *s = refs; s != NULL && (s = strchr(s, '<')) != NULL;) {
		const char *e = strchr(s, '>');
		if (e == NULL)
			break;
		char *id = gn_pool_strndup(pool, s, (size_t)(e - s + 1));
		if (first != NULL && strcmp(id, first) == 0)
			seen = true;
		json_object_array_add(a, json_object_new_string(id));
		s = e + 1;
	}
	if (first != NULL && !seen) {
		struct json_object *b = json_object_new_array();
		json_object_array_add(b, json_object_new_string(first));
		for (size_t i = 0; i < json_object_array_length(a); i++)
			json_object_array_add(b, json_object_get(json_object_array_get_idx(a, i)));
		json_object_put(a);
		a = b;
	}
	return a;
}

static struct json_object *flags_json(struct gn_pool *pool, const struct gn_store_message *m)
{
	static const struct { unsigned bit; const char *name; } sys[] = {
		{ GN_STORE_SEEN, "\\seen" }, { GN_STORE_ANSWERED, "\\answered" },
		{ GN_STORE_FLAGGED, "\\flagged" }, { GN_STORE_DELETED, "\\deleted" },
		{ GN_STORE_DRAFT, "\\draft" },
	};
	struct json_object *a = json_object_new_array();
	unsigned f = gn_store_message_flags(m);
	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
		if (f & sys[i].bit)
			json_object_array_add(a, json_object_new_string(sys[i].name));
	size_t n;
	const char *const *kw = gn_store_message_keywords(m, &n);
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(lower(pool, kw[i])));
	return a;
}

static const char *mailbox_name(struct call *c, int64_t mailbox_id)
{
	struct gn_store_mailbox *mb;
	const char *error;
	if (gn_store_mailbox_get(c->pool, c->account_id, mailbox_id, &mb, &error) <= 0)
		return "";
	return gn_store_mailbox_name(mb);
}

static void m_message_get(struct call *c)
{
	struct located l;
	if (!locate(c, &l))
		return;
	size_t len;
	char *raw = read_message(c, &l, &len);
	if (raw == NULL)
		return;
	struct gn_mime_message *mm = structure(c, &l);
	if (mm == NULL)
		return;
	size_t prefix = (size_t)gn_store_message_prefix_len(l.msg);
	if (prefix > len)
		prefix = len;
	const char *body = raw + prefix;
	size_t blen = len - prefix;
	const struct gn_mime_part *root = gn_mime_message_root(mm);

	struct json_object *msg = json_object_new_object();
	json_object_object_add(msg, "From", addresses(c->pool, root, GN_MIME_FROM));
	json_object_object_add(msg, "To", addresses(c->pool, root, GN_MIME_TO));
	json_object_object_add(msg, "CC", addresses(c->pool, root, GN_MIME_CC));
	json_object_object_add(msg, "BCC", addresses(c->pool, root, GN_MIME_BCC));
	json_object_object_add(msg, "ReplyTo", addresses(c->pool, root, GN_MIME_REPLY_TO));
	const char *mid = gn_mime_part_field_raw(root, GN_MIME_MESSAGE_ID);
	json_object_object_add(msg, "MessageID", json_object_new_string(mid != NULL ? mid : ""));
	json_object_object_add(msg, "References", references(c->pool, root));
	time_t date;
	json_object_object_add(msg, "Date", gn_mime_part_date(root, &date) == 1 ?
			       json_object_new_string(rfc3339(c->pool, date)) : NULL);
	const char *subject = gn_mime_part_field(root, GN_MIME_SUBJECT);
	json_object_object_add(msg, "Subject", json_object_new_string(subject != NULL ? subject : ""));
	json_object_object_add(msg, "Text", text_of(c->pool, body, blen, root, "plain"));
	json_object_object_add(msg, "HTML", text_of(c->pool, body, blen, root, "html"));

	struct gn_store_message_auth auth = { .size = sizeof(auth) };
	const char *error;
	if (gn_store_message_auth_get(c->pool, c->account_id, gn_store_message_id(l.msg), &auth,
				      &error) < 0) {
		gn_mime_message_free(&mm);
		json_object_put(msg);
		fail(c, "server", "reading check results: %s", error);
		return;
	}
	struct json_object *meta = json_object_new_object();
	json_object_object_add(meta, "Size", json_object_new_int64((int64_t)gn_store_message_size(l.msg)));
	const char *rt = gn_mime_part_param(root, "report-type");
	bool dsn = strcmp(content_type(c->pool, root), "multipart/report") == 0 && rt != NULL &&
		   strcasecmp(rt, "delivery-status") == 0;
	json_object_object_add(meta, "DSN", json_object_new_boolean(dsn));
	json_object_object_add(meta, "Flags", flags_json(c->pool, l.msg));
	/* The SMTP envelope is not kept with stored messages. */
	json_object_object_add(meta, "MailFrom", json_object_new_string(""));
	json_object_object_add(meta, "MailFromValidated",
			       json_object_new_boolean(auth.checked && auth.mail_from_validated));
	json_object_object_add(meta, "RcptTo", json_object_new_string(""));
	struct json_object *from = addresses(c->pool, root, GN_MIME_FROM);
	struct json_object *f0 = json_object_array_length(from) > 0 ?
		json_object_object_get(json_object_array_get_idx(from, 0), "Address") : NULL;
	json_object_object_add(meta, "MsgFrom", json_object_new_string(f0 != NULL ? json_object_get_string(f0) : ""));
	json_object_put(from);
	json_object_object_add(meta, "MsgFromValidated",
			       json_object_new_boolean(auth.checked && auth.msg_from_validated));
	struct json_object *dk = json_object_new_array();
	for (size_t i = 0; auth.checked && i < auth.n_dkim_domains; i++)
		json_object_array_add(dk, json_object_new_string(auth.dkim_domains[i]));
	json_object_object_add(meta, "DKIMVerifiedDomains", dk);
	json_object_object_add(meta, "RemoteIP", json_object_new_string(
		auth.checked && auth.remote_ip != NULL ? auth.remote_ip : ""));
	json_object_object_add(meta, "MailboxName", json_object_new_string(mailbox_name(c, l.mailbox_id)));

	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "Message", msg);
	json_object_object_add(o, "Structure", structure_json(root));
	json_object_object_add(o, "Meta", meta);
	gn_mime_message_free(&mm);
	ok(c, o);
}

static void m_message_raw_get(struct call *c)
{
	struct located l;
	if (!locate(c, &l))
		return;
	size_t len;
	char *raw = read_message(c, &l, &len);
	if (raw != NULL)
		gn_http_respond(c->req, 200, "text/plain", raw, len);
}

static void m_message_part_get(struct call *c)
{
	struct located l;
	if (!locate(c, &l))
		return;
	struct json_object *path = arg_array(c, "PartPath");
	size_t n = path != NULL ? json_object_array_length(path) : 0;
	if (n > PARTPATH_MAX) {
		fail(c, "partNotFound", "part path too long");
		return;
	}
	size_t len;
	char *raw = read_message(c, &l, &len);
	if (raw == NULL)
		return;
	struct gn_mime_message *mm = structure(c, &l);
	if (mm == NULL)
		return;
	const struct gn_mime_part *p = gn_mime_message_root(mm);
	for (size_t i = 0; i < n; i++) {
		int64_t idx = json_object_get_int64(json_object_array_get_idx(path, i));
		if (!is_multipart(p) || idx < 0 || (uint64_t)idx >= gn_mime_part_child_count(p)) {
			gn_mime_message_free(&mm);
			fail(c, "partNotFound", "part %" PRId64 " at index %zu not found", idx, i);
			return;
		}
		p = gn_mime_part_child(p, (size_t)idx);
	}
	size_t prefix = (size_t)gn_store_message_prefix_len(l.msg);
	if (prefix > len)
		prefix = len;
	size_t dn;
	char *d = gn_mime_part_body_decoded(c->pool, p, raw + prefix, len - prefix, &dn);
	gn_mime_message_free(&mm);
	gn_http_respond(c->req, 200, NULL, d, dn);
}

static void m_message_delete(struct call *c)
{
	struct located l;
	if (!locate(c, &l))
		return;
	const char *error;
	if (gn_store_message_expunge(c->pool, c->account_id, l.mailbox_id, &l.uid, 1, NULL, NULL,
				     &error) < 0) {
		fail(c, "server", "removing message: %s", error);
		return;
	}
	ok(c, json_object_new_object());
}

static void flags_change(struct call *c, enum gn_store_flag_op op)
{
	struct located l;
	if (!locate(c, &l))
		return;
	struct json_object *a = arg_array(c, "Flags");
	size_t n = a != NULL ? json_object_array_length(a) : 0;
	if (n > FLAGS_MAX) {
		fail(c, "user", "too many flags (at most %d)", FLAGS_MAX);
		return;
	}
	static const struct { unsigned bit; const char *name; } sys[] = {
		{ GN_STORE_SEEN, "\\seen" }, { GN_STORE_ANSWERED, "\\answered" },
		{ GN_STORE_FLAGGED, "\\flagged" }, { GN_STORE_DELETED, "\\deleted" },
		{ GN_STORE_DRAFT, "\\draft" },
	};
	unsigned flags = 0;
	const char **kw = gn_pool_alloc(c->pool, (n + 1) * sizeof(*kw));
	size_t nk = 0;
	for (size_t i = 0; i < n; i++) {
		const char *f = json_object_get_string(json_object_array_get_idx(a, i));
		if (f[0] == '\\') {
			size_t j;
			for (j = 0; j < sizeof(sys) / sizeof(sys[0]); j++)
				if (strcasecmp(f, sys[j].name) == 0)
					break;
			if (j == sizeof(sys) / sizeof(sys[0])) {
				fail(c, "user", "parsing flags: unknown system flag %s", f);
				return;
			}
			flags |= sys[j].bit;
		} else {
			kw[nk++] = lower(c->pool, f);
		}
	}
	const char *error;
	if (gn_store_message_set_flags(c->pool, c->account_id, l.mailbox_id, &l.uid, 1, op, flags,
				       kw, nk, 0, NULL, NULL, NULL, &error) < 0) {
		fail(c, "user", "changing flags: %s", error);
		return;
	}
	ok(c, json_object_new_object());
}

static void m_flags_add(struct call *c)
{
	flags_change(c, GN_STORE_FLAGS_ADD);
}

static void m_flags_remove(struct call *c)
{
	flags_change(c, GN_STORE_FLAGS_REMOVE);
}

static void m_message_move(struct call *c)
{
	struct located l;
	if (!locate(c, &l))
		return;
	const char *name = arg_str(c, "DestMailboxName");
	if (strlen(name) > MAILBOX_NAME_MAX) {
		fail(c, "user", "mailbox name too long");
		return;
	}
	struct gn_store_mailbox *mb;
	const char *error;
	int r = gn_store_mailbox_find(c->pool, c->account_id, name, &mb, &error);
	if (r < 0) {
		fail(c, "server", "looking up mailbox: %s", error);
		return;
	}
	if (r == 0) {
		fail(c, "user", "looking up mailbox name: not found");
		return;
	}
	if (gn_store_mailbox_id(mb) == l.mailbox_id) {
		fail(c, "user", "message already in destination mailbox");
		return;
	}
	if (gn_store_message_copy(c->pool, c->account_id, l.mailbox_id, &l.uid, 1,
				  gn_store_mailbox_id(mb), true, NULL, NULL, NULL, &error) < 0) {
		fail(c, "server", "moving message: %s", error);
		return;
	}
	ok(c, json_object_new_object());
}

/* ---- the dispatch table ---- */

#define NA "{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/NameAddress\"}}"
#define FILES "{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/File\"}}"
#define STRS "{\"type\":\"array\",\"items\":{\"type\":\"string\"}}"
#define EMPTY "{\"type\":\"object\",\"properties\":{}}"

static const struct webapi_field f_send[] = {
	{ "From", WF_ARRAY, NA }, { "To", WF_ARRAY, NA }, { "CC", WF_ARRAY, NA },
	{ "BCC", WF_ARRAY, NA }, { "ReplyTo", WF_ARRAY, NA },
	{ "MessageID", WF_STRING, NULL }, { "References", WF_STRINGS, NULL },
	{ "Date", WF_TIME, NULL }, { "Subject", WF_STRING, NULL }, { "Text", WF_STRING, NULL },
	{ "HTML", WF_STRING, NULL },
	{ "Extra", WF_OBJECT, "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}" },
	{ "Headers", WF_ARRAY, "{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"minItems\":2,\"maxItems\":2}}" },
	{ "AlternativeFiles", WF_ARRAY, FILES }, { "InlineFiles", WF_ARRAY, FILES },
	{ "AttachedFiles", WF_ARRAY, FILES }, { "RequireTLS", WF_BOOL, NULL },
	{ "FutureRelease", WF_TIME, NULL }, { "SaveSent", WF_BOOL, NULL }, { NULL, 0, NULL },
};
static const struct webapi_field f_none[] = { { NULL, 0, NULL } };
static const struct webapi_field f_supp_add[] = {
	{ "EmailAddress", WF_STRING, NULL }, { "Manual", WF_BOOL, NULL },
	{ "Reason", WF_STRING, NULL }, { NULL, 0, NULL },
};
static const struct webapi_field f_email[] = { { "EmailAddress", WF_STRING, NULL }, { NULL, 0, NULL } };
static const struct webapi_field f_msgid[] = { { "MsgID", WF_INT, NULL }, { NULL, 0, NULL } };
static const struct webapi_field f_part[] = {
	{ "MsgID", WF_INT, NULL }, { "PartPath", WF_INTS, NULL }, { NULL, 0, NULL },
};
static const struct webapi_field f_flags[] = {
	{ "MsgID", WF_INT, NULL }, { "Flags", WF_STRINGS, NULL }, { NULL, 0, NULL },
};
static const struct webapi_field f_move[] = {
	{ "MsgID", WF_INT, NULL }, { "DestMailboxName", WF_STRING, NULL }, { NULL, 0, NULL },
};

const struct webapi_method webapi_methods[] = {
	{ "Send", f_send,
	  "{\"type\":\"object\",\"properties\":{\"MessageID\":{\"type\":\"string\"},\"Submissions\":"
	  "{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Submission\"}}}}",
	  "{\"To\":[{\"Name\":\"\",\"Address\":\"john@example.com\"}],\"Subject\":\"hi\",\"Text\":\"hello\\n\"}",
	  "Compose and queue a message.", m_send },
	{ "SuppressionList", f_none,
	  "{\"type\":\"object\",\"properties\":{\"Suppressions\":{\"type\":\"array\",\"items\":"
	  "{\"$ref\":\"#/components/schemas/Suppression\"}}}}",
	  "{}", "The account's suppression list.", m_suppression_list },
	{ "SuppressionAdd", f_supp_add, EMPTY,
	  "{\"EmailAddress\":\"john@example.com\",\"Manual\":true,\"Reason\":\"asked\"}",
	  "Add an address (its base address) to the suppression list.", m_suppression_add },
	{ "SuppressionRemove", f_email, EMPTY, "{\"EmailAddress\":\"john@example.com\"}",
	  "Remove an address (by its base address) from the suppression list.", m_suppression_remove },
	{ "SuppressionPresent", f_email,
	  "{\"type\":\"object\",\"properties\":{\"Present\":{\"type\":\"boolean\"}}}",
	  "{\"EmailAddress\":\"john@example.com\"}",
	  "Whether an address (its base address) is on the suppression list.", m_suppression_present },
	{ "MessageGet", f_msgid,
	  "{\"type\":\"object\",\"properties\":{\"Message\":{\"$ref\":\"#/components/schemas/Message\"},"
	  "\"Structure\":{\"$ref\":\"#/components/schemas/Structure\"},"
	  "\"Meta\":{\"$ref\":\"#/components/schemas/MessageMeta\"}}}",
	  "{\"MsgID\":1}", "A stored message: parsed header, text, structure, metadata.", m_message_get },
	{ "MessageRawGet", f_msgid, NULL, "{\"MsgID\":1}",
	  "The stored message as bytes (text/plain).", m_message_raw_get },
	{ "MessagePartGet", f_part, NULL, "{\"MsgID\":1,\"PartPath\":[0]}",
	  "One part's body, transfer encoding decoded.", m_message_part_get },
	{ "MessageDelete", f_msgid, EMPTY, "{\"MsgID\":1}",
	  "Remove a message for good (not to Trash).", m_message_delete },
	{ "MessageFlagsAdd", f_flags, EMPTY, "{\"MsgID\":1,\"Flags\":[\"\\\\seen\",\"custom\"]}",
	  "Add flags and keywords.", m_flags_add },
	{ "MessageFlagsRemove", f_flags, EMPTY, "{\"MsgID\":1,\"Flags\":[\"\\\\seen\",\"custom\"]}",
	  "Remove flags and keywords.", m_flags_remove },
	{ "MessageMove", f_move, EMPTY, "{\"MsgID\":1,\"DestMailboxName\":\"Archive\"}",
	  "Move a message to another mailbox of the account.", m_message_move },
	{ NULL, NULL, NULL, NULL, NULL, NULL },
};

/* ---- the transport ---- */

static const char *PREFIX = "/webapi/v0/";
#define UNAUTHORIZED "401 - unauthorized - use http basic auth with email address as username\n"

static bool form_content_type(const char *ct)
{
	if (ct == NULL)
		return false;
	size_t n = strcspn(ct, ";");
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	return (n == 33 && strncasecmp(ct, "application/x-www-form-urlencoded", n) == 0) ||
	       (n == 19 && strncasecmp(ct, "multipart/form-data", n) == 0);
}

static void call_method(struct gn_http_request *req, const struct webapi_method *m)
{
	struct call c = { .req = req };
	/* Authentication first (mox: every call is a login attempt). */
	const char *user = NULL, *password = NULL;
	int a = gn_http_request_basic_auth(req, &user, &password);
	if (a != 1) {
		gn_http_response_header(req, "WWW-Authenticate", "Basic realm=webapi");
		gn_http_respond(req, 401, "text/plain; charset=utf-8", UNAUTHORIZED,
				strlen(UNAUTHORIZED));
		return;
	}
	c.pool = gn_pool_new();
	struct gn_auth_client client = {
		.size = sizeof(client),
		.remote_ip = gn_http_request_remote_ip(req),
		.protocol = "webapi",
		.mechanism = "httpbasic",
	};
	struct gn_auth_account *acc = NULL;
	const char *error = NULL;
	enum gn_auth_result r = gn_auth_login(c.pool, &client, user, password, strlen(password),
					      &acc, &error);
	if (r == GN_AUTH_RATELIMITED) {
		static const char msg[] = "429 - too many auth attempts\n";
		gn_http_respond(req, 429, "text/plain; charset=utf-8", msg, sizeof(msg) - 1);
		goto out;
	}
	if (r == GN_AUTH_ERROR) {
		gn_log(GN_LOG_ERROR, "webapi", "event=auth_error error=%s", gn_log_quote(0, error));
		gn_http_respond_error(req, 400, "server", "error verifying credentials");
		goto out;
	}
	if (r != GN_AUTH_OK) {
		const char *msg = r == GN_AUTH_LOGINDISABLED ?
			"401 - unauthorized - login is disabled for this account\n" : UNAUTHORIZED;
		gn_http_response_header(req, "WWW-Authenticate", "Basic realm=webapi");
		gn_http_respond(req, 401, "text/plain; charset=utf-8", msg, strlen(msg));
		goto out;
	}
	c.account_id = gn_auth_account_id(acc);
	c.account = gn_auth_account_name(acc);
	c.login = user;

	/* As mox: a content type that does not parse is refused; another
	 * than a form's has no fields, so no request. */
	const char *ct = gn_http_request_header(req, "content-type");
	if (ct == NULL || ct[strspn(ct, " \t")] == '\0' || ct[strspn(ct, " \t")] == ';') {
		char *msg = gn_strdup_printf("unknown content-type %s", ct != NULL ? ct : "");
		gn_http_respond_error(req, 400, "protocol", msg);
		gn_free(msg);
		goto out;
	}
	size_t len = 0;
	const char *text = form_content_type(ct) ? gn_http_request_form(req, "request", &len) : NULL;
	if (text == NULL || len == 0) {
		gn_http_respond_error(req, 400, "protocol", "missing/empty request");
		goto out;
	}
	char *perr = NULL;
	c.args = webapi_parse_request(m, text, len, &perr);
	if (c.args == NULL) {
		char *msg = gn_strdup_printf("parsing request: %s", perr);
		gn_http_respond_error(req, 400, "protocol", msg);
		gn_free(msg);
		gn_free(perr);
		goto out;
	}
	m->fn(&c);
	gn_log(GN_LOG_DEBUG, "webapi", "event=call method=%s account=%s", m->name,
	       gn_log_quote(0, c.account));
	json_object_put(c.args);
out:
	gn_pool_free(&c.pool);
}

static void handle(struct gn_http_request *req, void *data)
{
	const char *path = gn_http_request_path(req);
	const char *method = gn_http_request_method(req);
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	if (strcmp(path, "/webapi/") == 0 || strcmp(path, "/webapi/v0") == 0) {
		if (!get) {
			gn_http_response_header(req, "Allow", "GET");
			gn_http_respond_error(req, 405, "protocol", "method not allowed");
			return;
		}
		gn_http_response_header(req, "Location", PREFIX);
		gn_http_respond(req, 303, NULL, "", 0);
		return;
	}
	if (strncmp(path, PREFIX, strlen(PREFIX)) != 0) {
		static const char nf[] = "404 page not found\n";
		gn_http_respond(req, 404, "text/plain; charset=utf-8", nf, sizeof(nf) - 1);
		return;
	}
	const char *name = path + strlen(PREFIX);
	if (name[0] == '\0') {	/* the index, whatever the method (mox) */
		webapi_page_index(req);
		return;
	}
	if (get && strcmp(name, "openapi.json") == 0) {
		webapi_openapi(req);
		return;
	}
	const struct webapi_method *m = NULL;
	for (const struct webapi_method *x = webapi_methods; x->name != NULL; x++)
		if (strcmp(x->name, name) == 0)
			m = x;
	if (m == NULL) {
		/* Go's http.NotFound, as mox answers. */
		static const char nf[] = "404 page not found\n";
		gn_http_respond(req, 404, "text/plain; charset=utf-8", nf, sizeof(nf) - 1);
		return;
	}
	if (get)
		webapi_page_method(req, m);
	else
		call_method(req, m);
}

static int webapi_register(struct gn_module_ctx *ctx, const char **error_r)
{
	if (gn_http_mount(ctx, "/webapi/", "GET POST", handle, NULL, error_r) < 0)
		return -1;
	return webapi_cli_register(ctx, error_r);
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "webapi",
	.version = "1.0",
	.register_fn = webapi_register,
};
