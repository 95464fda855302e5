/*
 * modules/webhooks/incoming.c: the incoming webhook (mox.md 1.7): a
 * "deliver.after" hook that queues mox's Incoming payload for each
 * message an SMTP delivery stored in an account with an incoming
 * webhook (once per stored message: each alias member's account gets
 * its own).  Text, HTML and Structure come from the core's mail layer
 * (gn_mime_text(), gn_mime_structure_json()), as webapi's MessageGet.
 */
#include "webhooks.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <json-c/json.h>

/* Bytes of a stored message read for the payload: a text part past them
 * is cut (Text and HTML are at most 1 MiB each anyway). */
#define INCOMING_READ_MAX (16 * 1024 * 1024)

static struct json_object *addresses(struct gn_pool *pool, const struct gn_mime_part *root, enum gn_mime_field f)
{
	struct json_object *a = json_object_new_array();
	const char *raw = gn_mime_part_field_raw(root, f);
	if (raw == NULL)
		return a;
	struct gn_addr_list list = { NULL, 0 };
	const char *error;
	if (gn_addr_parse_header(pool, raw, strlen(raw), &list, &error) < 0 && list.count == 0)
		return a;
	for (size_t i = 0; i < list.count; i++) {
		const struct gn_addr_item *it = list.items[i];
		if (it->kind != GN_ADDR_MAILBOX || it->addr == NULL)
			continue;
		struct json_object *na = json_object_new_object();
		json_object_object_add(na, "Name", json_object_new_string(it->name != NULL ? it->name : ""));
		json_object_object_add(na, "Address", json_object_new_string(gn_addr_to_display(pool, it->addr)));
		json_object_array_add(a, na);
	}
	return a;
}

/* The message-ids of a field, each with its <>. */
static struct json_object *msgids(struct gn_pool *pool, const char *v)
{
	struct json_object *a = json_object_new_array();
	for (const char *s = v; s != NULL && (s = strchr(s, '<')) != NULL;) {
		const char *e = strchr(s, '>');
		if (e == NULL)
			break;
		json_object_array_add(a, json_object_new_string(gn_pool_strndup(pool, s, (size_t)(e - s + 1))));
		s = e + 1;
	}
	return a;
}

/* Whether the header block hdr has a field called name (at a line
 * start), and its value's first bytes in *value_r (from pool). */
static bool has_field(struct gn_pool *pool, const char *hdr, size_t len, const char *name, const char **value_r)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < len;) {
		if (len - i > nl && strncasecmp(hdr + i, name, nl) == 0 && hdr[i + nl] == ':') {
			size_t s = i + nl + 1, e = s;
			while (e < len && hdr[e] != '\r' && hdr[e] != '\n')
				e++;
			while (s < e && (hdr[s] == ' ' || hdr[s] == '\t'))
				s++;
			if (value_r != NULL)
				*value_r = gn_pool_strndup(pool, hdr + s, e - s);
			return true;
		}
		const char *nlp = memchr(hdr + i, '\n', len - i);
		if (nlp == NULL)
			break;
		i = (size_t)(nlp - hdr) + 1;
	}
	return false;
}

/* mox.md 1.7: Automated. */
static bool automated(struct gn_pool *pool, const struct gn_delivery *d, const struct gn_mime_part *root,
		      const char *raw, size_t len)
{
	if (gn_delivery_sender(d) == NULL)
		return true;
	size_t off = gn_mime_part_header_offset(root), size = gn_mime_part_header_size(root);
	if (off > len)
		off = len;
	if (size > len - off)
		size = len - off;
	const char *h = raw + off;
	static const char *const lists[] = { "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "Precedence" };
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		if (has_field(pool, h, size, lists[i], NULL))
			return true;
	const char *as = NULL;
	if (has_field(pool, h, size, "Auto-Submitted", &as) && strcasecmp(as, "no") != 0)
		return true;
	const char *t = gn_mime_part_type(root), *s = gn_mime_part_subtype(root);
	return t != NULL && s != NULL && strcasecmp(t, "multipart") == 0 && strcasecmp(s, "report") == 0;
}

static const char *payload(struct gn_pool *pool, struct gn_delivery *d, const struct gn_mime_message *mm,
			   int64_t msg_id, time_t received, const char *raw, size_t len,
			   const struct gn_store_message_auth *auth)
{
	const struct gn_mime_part *root = gn_mime_message_root(mm);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "Version", json_object_new_int(0));
	json_object_object_add(o, "From", addresses(pool, root, GN_MIME_FROM));
	json_object_object_add(o, "To", addresses(pool, root, GN_MIME_TO));
	json_object_object_add(o, "CC", addresses(pool, root, GN_MIME_CC));
	json_object_object_add(o, "BCC", addresses(pool, root, GN_MIME_BCC));
	json_object_object_add(o, "ReplyTo", addresses(pool, root, GN_MIME_REPLY_TO));
	const char *subject = gn_mime_part_field(root, GN_MIME_SUBJECT);
	json_object_object_add(o, "Subject", json_object_new_string(subject != NULL ? subject : ""));
	struct json_object *mid = msgids(pool, gn_mime_part_field_raw(root, GN_MIME_MESSAGE_ID));
	struct json_object *irt = msgids(pool, gn_mime_part_field_raw(root, GN_MIME_IN_REPLY_TO));
	json_object_object_add(o, "MessageID", json_object_new_string(json_object_array_length(mid) > 0 ?
		json_object_get_string(json_object_array_get_idx(mid, 0)) : ""));
	json_object_object_add(o, "InReplyTo", json_object_new_string(json_object_array_length(irt) > 0 ?
		json_object_get_string(json_object_array_get_idx(irt, 0)) : ""));
	json_object_put(mid);
	json_object_put(irt);
	json_object_object_add(o, "References", msgids(pool, gn_mime_part_field_raw(root, GN_MIME_REFERENCES)));
	time_t date;
	json_object_object_add(o, "Date", gn_mime_part_date(root, &date) == 1 ?
			       json_object_new_string(webhooks_time(pool, (double)date)) : NULL);
	size_t n;
	const char *text = gn_mime_text(pool, root, raw, len, "plain", WEBHOOKS_TEXT_MAX, &n);
	json_object_object_add(o, "Text", json_object_new_string_len(text, (int)n));
	text = gn_mime_text(pool, root, raw, len, "html", WEBHOOKS_TEXT_MAX, &n);
	json_object_object_add(o, "HTML", json_object_new_string_len(text, (int)n));
	char *st = gn_mime_structure_json(root);
	struct json_object *sto = json_tokener_parse(st);
	gn_free(st);
	json_object_object_add(o, "Structure", sto != NULL ? sto : json_object_new_object());

	struct json_object *meta = json_object_new_object();
	json_object_object_add(meta, "MsgID", json_object_new_int64(msg_id));
	const struct gn_addr *from = gn_delivery_sender(d);
	json_object_object_add(meta, "MailFrom", json_object_new_string(from != NULL ? gn_addr_to_string(pool, from)
									 : ""));
	json_object_object_add(meta, "MailFromValidated", json_object_new_boolean(auth->checked &&
										  auth->mail_from_validated));
	json_object_object_add(meta, "MsgFromValidated", json_object_new_boolean(auth->checked &&
										 auth->msg_from_validated));
	const struct gn_addr *rcpt = gn_delivery_current(d);
	json_object_object_add(meta, "RcptTo", json_object_new_string(rcpt != NULL ? gn_addr_to_string(pool, rcpt)
								       : ""));
	struct json_object *dk = json_object_new_array();
	for (size_t i = 0; auth->checked && i < auth->n_dkim_domains; i++)
		json_object_array_add(dk, json_object_new_string(auth->dkim_domains[i]));
	json_object_object_add(meta, "DKIMVerifiedDomains", dk);
	/* The SMTP client's address; "" when not known (mox: empty for
	 * messages not received over SMTP). */
	const char *ip = gn_delivery_remote_ip(d);
	json_object_object_add(meta, "RemoteIP", json_object_new_string(ip != NULL ? ip : ""));
	json_object_object_add(meta, "Received", json_object_new_string(webhooks_time(pool, (double)received)));
	json_object_object_add(meta, "MailboxName", json_object_new_string(gn_delivery_current_mailbox(d)));
	json_object_object_add(meta, "Automated", json_object_new_boolean(automated(pool, d, root, raw, len)));
	json_object_object_add(o, "Meta", meta);
	const char *s = gn_pool_strdup(pool, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
									    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

/* mox.md 1.7, 1.8: a message to a FromID address of a retired
 * recipient of the account (a DSN or a reply to it) goes to the outgoing
 * webhook (core/queue/fromid.c), not the incoming one.  1 such, 0 not,
 * -1 error. */
static int to_fromid(struct gn_pool *pool, const struct gn_delivery *d, int64_t account, const char **error_r)
{
	const struct gn_addr *to = gn_delivery_current(d);
	struct gn_store_domain *dom;
	if (to == NULL)
		return 0;
	int r = gn_store_domain_find(pool, to->domain, &dom, error_r);
	if (r <= 0)
		return r;
	const char *seps = gn_store_domain_catchall_separators(dom);
	const struct gn_addr *base = seps != NULL && seps[0] != '\0' ? gn_addr_strip_catchall(pool, to, seps) : to;
	if (base == to || base == NULL)
		return 0;
	const char *tag = to->localpart + strlen(base->localpart);
	size_t sl = 1;	/* the separator: one code point */
	while (((unsigned char)tag[sl] & 0xc0) == 0x80)
		sl++;
	const char *p[2] = { gn_pool_printf(pool, "%" PRId64, account), tag + sl };
	struct gn_db_result *res = gn_db_query("SELECT 1 FROM gn_queue_retired WHERE account_id = $1 AND "
					       "from_id = $2", 2, p, error_r);
	if (res == NULL)
		return -1;
	r = gn_db_result_rows(res) > 0 ? 1 : 0;
	gn_db_result_free(&res);
	return r;
}

static enum gn_hook_result on_after(struct gn_hook_call *call, void *data)
{
	(void)data;
	struct gn_delivery *d = gn_hook_call_context(call);
	int64_t account = gn_delivery_current_account(d);
	/* mox.md 1.7: SMTP deliveries only (not submission copies, the HTTP
	 * API, imports). */
	if (account <= 0 || strcmp(gn_delivery_source(d), "smtp") != 0 || gn_delivery_message(d) == NULL)
		return GN_HOOK_CONTINUE;
	struct gn_pool *pool = gn_pool_new();
	struct webhooks_account a;
	const char *err = NULL;
	struct gn_store_body *body = NULL;
	int r = webhooks_account_get(pool, account, &a, &err);
	if (r <= 0 || a.incoming_url[0] == '\0')
		goto out;
	if ((r = to_fromid(pool, d, account, &err)) != 0)
		goto out;
	int64_t mailbox = gn_delivery_current_mailbox_id(d);
	uint32_t uid = gn_delivery_current_uid(d);
	struct gn_store_message *m = NULL;
	r = gn_store_message_get(pool, account, mailbox, uid, &m, &err);
	if (r <= 0) {
		err = r < 0 ? err : "the stored message is gone";
		r = -1;
		goto out;
	}
	r = gn_store_message_open(account, mailbox, uid, &body, &err);
	if (r <= 0) {
		err = r < 0 ? err : "the stored message is gone";
		r = -1;
		goto out;
	}
	/* The parsed message starts after the stored prefix. */
	uint64_t total = gn_store_body_size(body), prefix = gn_store_message_prefix_len(m);
	if (prefix > total)
		prefix = total;
	uint64_t want = total - prefix;
	if (want > INCOMING_READ_MAX)
		want = INCOMING_READ_MAX;
	char *raw = gn_pool_alloc(pool, (size_t)want + 1);
	size_t got = 0;
	if (gn_store_body_read(body, prefix, raw, (size_t)want, &got, &err) < 0) {
		r = -1;
		goto out;
	}
	struct gn_store_message_auth auth = { .size = sizeof(auth) };
	if (gn_store_message_auth_get(pool, account, gn_store_message_id(m), &auth, &err) < 0) {
		r = -1;
		goto out;
	}
	const char *p = payload(pool, d, gn_delivery_message(d), gn_store_message_id(m),
				gn_store_message_internal_date(m), raw, got, &auth);
	int64_t id = 0;
	r = webhooks_queue(pool, &a, 0, NULL, NULL, NULL, true, NULL, p, &id, &err);
	if (r == 0)
		gn_log(GN_LOG_INFO, WEBHOOKS_AREA, "event=webhook_queued id=%" PRId64 " account=%" PRId64
		       " incoming message=%" PRId64, id, account, gn_store_message_id(m));
out:
	if (r < 0)
		gn_log(GN_LOG_WARN, WEBHOOKS_AREA, "event=webhook_incoming_failed account=%" PRId64 " error=%s", account,
		       gn_log_quote(0, err != NULL ? err : "?"));
	gn_store_body_free(&body);
	gn_pool_free(&pool);
	return GN_HOOK_CONTINUE;
}

int webhooks_incoming_register(struct gn_module_ctx *ctx, const char **error_r)
{
	return gn_hook_register(ctx, GN_DELIVER_AFTER, 200, 0, on_after, NULL, error_r);
}
