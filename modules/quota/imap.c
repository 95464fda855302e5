/*
 * modules/quota/imap.c: QUOTA in IMAP (RFC 9208) through the imap
 * module's service imap.v1 (gannet/imap.h); nothing here when the imap
 * module is not loaded.
 *
 *   capabilities   QUOTA, QUOTA=RES-STORAGE, QUOTA=RES-MESSAGE
 *   GETQUOTAROOT m "* QUOTAROOT m """ and, when the account has a limit,
 *                  "* QUOTA "" (STORAGE used limit MESSAGE used limit)"
 *                  with the resources that have one; one root, "", for
 *                  every mailbox (which need not exist, as in mox)
 *   GETQUOTA ""    the QUOTA line (when limited); another root: NO
 *   SETQUOTA       NO [NOPERM]: IMAP users are never administrators here;
 *                  limits are set with `gannet config account quota`
 *   STATUS (DELETED-STORAGE)  RFC 9208 4.2: what an EXPUNGE would free,
 *                  from the mailbox's exact counter of \Deleted bytes
 *   APPEND, COPY, REPLACE  over the limit: NO [OVERQUOTA] (RFC 9208
 *                  5.3), checked inside their transaction (imap.v1 store
 *                  checks); a MULTIAPPEND for all its messages together
 *                  (bytes and count), a REPLACE for the bytes it adds
 *                  beyond the replaced message (and no message);
 *                  MOVE adds nothing and is not checked.
 *
 * Sizes in QUOTA and DELETED-STORAGE are in units of 1024 octets (RFC 9208
 * 5.1.1), rounded up; MESSAGE counts messages (RFC 9208 5.2): the store's
 * exact count, a message expunged but with its UID kept for QRESYNC not
 * included.
 */
#include "quota.h"

#include <gannet/imap.h>

#include <inttypes.h>
#include <string.h>

static const struct gn_imap_v1 *imap;

static uint64_t kib(uint64_t bytes)
{
	return bytes / 1024 + (bytes % 1024 != 0);
}

/* "* QUOTA "" (STORAGE used limit MESSAGE used limit)" with the resources
 * that have a limit; none: no line.  0, or -1 (answered NO). */
static int quota_line(struct gn_imap_session *s)
{
	int64_t account = imap->session_account_id(s);
	struct quota_limits l;
	struct quota_usage u;
	const char *err = NULL;
	if (quota_limits(account, &l, &err) < 0 ||
	    quota_usage(account, l.bytes >= 0, l.messages >= 0, &u, &err) < 0) {
		gn_log(GN_LOG_ERROR, QUOTA_AREA, "event=imap_failed error=%s", gn_log_quote(0, err));
		imap->tagged(s, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		return -1;
	}
	if (l.bytes >= 0 && l.messages >= 0)
		imap->untagged(s, "QUOTA \"\" (STORAGE %" PRIu64 " %" PRIu64 " MESSAGE %" PRIu64 " %" PRId64 ")",
			       kib(u.bytes), kib((uint64_t)l.bytes), u.messages, l.messages);
	else if (l.bytes >= 0)
		imap->untagged(s, "QUOTA \"\" (STORAGE %" PRIu64 " %" PRIu64 ")", kib(u.bytes),
			       kib((uint64_t)l.bytes));
	else if (l.messages >= 0)
		imap->untagged(s, "QUOTA \"\" (MESSAGE %" PRIu64 " %" PRId64 ")", u.messages, l.messages);
	return 0;
}

static const char *string_arg(const struct gn_imap_args *args, unsigned i)
{
	const struct gn_imap_arg *a = imap->args_get(args, i);
	if (a == NULL)
		return NULL;
	enum gn_imap_arg_type t = imap->arg_type(a);
	if (t != GN_IMAP_ARG_ATOM && t != GN_IMAP_ARG_STRING && t != GN_IMAP_ARG_LITERAL)
		return NULL;
	return imap->arg_str(a, NULL);
}

static void getquotaroot(struct gn_imap_session *s, const char *name, const struct gn_imap_args *args,
			 void *data)
{
	(void)name;
	(void)data;
	const char *mailbox = imap->args_count(args) == 1 ? string_arg(args, 0) : NULL;
	if (mailbox == NULL) {
		imap->tagged(s, "BAD", NULL, "GETQUOTAROOT takes a mailbox name");
		return;
	}
	struct gn_buf *b = gn_buf_new(0);
	imap->append_string(b, mailbox, strlen(mailbox));
	imap->untagged(s, "QUOTAROOT %s \"\"", gn_buf_data(b));
	gn_buf_free(&b);
	if (quota_line(s) == 0)
		imap->tagged(s, "OK", NULL, "GETQUOTAROOT completed");
}

static void getquota(struct gn_imap_session *s, const char *name, const struct gn_imap_args *args,
		     void *data)
{
	(void)name;
	(void)data;
	const char *root = imap->args_count(args) == 1 ? string_arg(args, 0) : NULL;
	if (root == NULL) {
		imap->tagged(s, "BAD", NULL, "GETQUOTA takes a quota root");
		return;
	}
	if (*root != '\0') {
		imap->tagged(s, "NO", "NONEXISTENT", "Unknown quota root (the only one is \"\")");
		return;
	}
	if (quota_line(s) == 0)
		imap->tagged(s, "OK", NULL, "GETQUOTA completed");
}

static void setquota(struct gn_imap_session *s, const char *name, const struct gn_imap_args *args,
		     void *data)
{
	(void)name;
	(void)data;
	const struct gn_imap_arg *list = imap->args_get(args, 1);
	if (imap->args_count(args) != 2 || string_arg(args, 0) == NULL || list == NULL ||
	    imap->arg_type(list) != GN_IMAP_ARG_LIST) {
		imap->tagged(s, "BAD", NULL, "SETQUOTA takes a quota root and a list of limits");
		return;
	}
	/* RFC 9208 4.3: only an administrator may; no IMAP login is one. */
	imap->tagged(s, "NO", "NOPERM", "Only an administrator sets quotas (gannet config account quota)");
}

static int deleted_storage(struct gn_imap_session *s, int64_t mailbox_id, uint64_t *value_r, void *data)
{
	(void)data;
	struct gn_store_mailbox *mb;
	const char *err = NULL;
	int r = gn_store_mailbox_get(imap->session_pool(s), imap->session_account_id(s), mailbox_id, &mb, &err);
	if (r <= 0) {
		gn_log(GN_LOG_ERROR, QUOTA_AREA, "event=status_failed error=%s",
		       gn_log_quote(0, r == 0 ? "no such mailbox" : err));
		return -1;
	}
	*value_r = kib(gn_store_mailbox_deleted_size(mb));
	return 0;
}

/* imap.v1 store check: APPEND, COPY and REPLACE, the account locked; the
 * messages they add from store_check_messages() (a REPLACE: none). */
static int store_check(struct gn_imap_session *s, const char *command, uint64_t bytes, const char **code_r,
		       const char **text_r, void *data)
{
	(void)command;
	(void)data;
	struct quota_limits l;
	enum quota_resource what;
	const char *err = NULL;
	int r = quota_fits(imap->session_account_id(s), bytes, imap->store_check_messages(s), &l, &what, &err);
	if (r < 0) {
		gn_log(GN_LOG_ERROR, QUOTA_AREA, "event=imap_check_failed error=%s", gn_log_quote(0, err));
		return -1;
	}
	if (r > 0)
		return 0;
	*code_r = "OVERQUOTA";
	*text_r = what == QUOTA_MESSAGES
		? gn_pool_printf(imap->session_pool(s), "Account over its limit of %" PRId64 " messages",
				 l.messages)
		: gn_pool_printf(imap->session_pool(s), "Account over its storage limit of %" PRId64 " bytes",
				 l.bytes);
	return 1;
}

int quota_imap_register(struct gn_module_ctx *ctx, const char **error_r)
{
	imap = gn_service_lookup(GN_IMAP_V1);
	if (imap == NULL)
		return 0;	/* no IMAP here: nothing to extend */
	if (!GN_OPS_HAS(imap, store_check_register) || !GN_OPS_HAS(imap, store_check_messages)) {
		/* Fail closed: without the check, APPEND would pass the limits. */
		*error_r = "quota: the imap module is too old (imap.v1 without store checks and their "
			   "message counts)";
		return -1;
	}
	const unsigned st = GN_IMAP_STATE_AUTH | GN_IMAP_STATE_SELECTED;
	if (imap->capability_add(ctx, "QUOTA", st, error_r) < 0 ||
	    imap->capability_add(ctx, "QUOTA=RES-STORAGE", st, error_r) < 0 ||
	    imap->capability_add(ctx, "QUOTA=RES-MESSAGE", st, error_r) < 0 ||
	    imap->command_register(ctx, "GETQUOTAROOT", st, getquotaroot, NULL, error_r) < 0 ||
	    imap->command_register(ctx, "GETQUOTA", st, getquota, NULL, error_r) < 0 ||
	    imap->command_register(ctx, "SETQUOTA", st, setquota, NULL, error_r) < 0 ||
	    imap->status_item_register(ctx, "DELETED-STORAGE", deleted_storage, NULL, error_r) < 0 ||
	    imap->store_check_register(ctx, store_check, NULL, error_r) < 0)
		return -1;
	return 0;
}
