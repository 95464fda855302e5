/*
 * modules/imap/cmd-copy.c: COPY (RFC 9051 6.4.7), MOVE (RFC 6851), their
 * UID forms, and UID EXPUNGE (RFC 4315 2.1).
 *
 * Copies share the body (gn_store_message_copy(): no bytes are copied)
 * and keep flags, keywords and internal date.  The answer carries
 * [COPYUID uidvalidity source-uids destination-uids] (RFC 4315 3); MOVE
 * sends it in an untagged OK before the EXPUNGE responses of the moved
 * messages (RFC 6851 4.3), VANISHED with QRESYNC (imap_refresh()).  A destination that does not exist is
 * NO [TRYCREATE].
 */
#include "imap.h"

#include <stdlib.h>
#include <string.h>

/* "1:3,7" for sorted or unsorted UIDs in the order given (RFC 4315's
 * uid-set keeps the pairing of source and destination). */
void imap_append_uid_set(struct gn_buf *b, const uint32_t *uids, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (j > i)
			(void)gn_buf_printf(b, "%s%u:%u", i > 0 ? "," : "", (unsigned)uids[i], (unsigned)uids[j]);
		else
			(void)gn_buf_printf(b, "%s%u", i > 0 ? "," : "", (unsigned)uids[i]);
		i = j + 1;
	}
}

/* The UIDs of the view's messages in a sequence set; NULL after BAD. */
static uint32_t *set_uids(struct imap_session *s, struct imap_command *cmd, const struct imap_arg *arg,
			  bool uid, size_t *n_r)
{
	size_t *msns = imap_select_msns(s, s->cmd_pool, cmd, arg, uid, n_r);
	if (msns == NULL)
		return NULL;
	uint32_t *uids = gn_pool_alloc(s->cmd_pool, (*n_r + 1) * sizeof(*uids));
	for (size_t i = 0; i < *n_r; i++)
		uids[i] = s->sel->uids[msns[i] - 1];
	return uids;
}

static void failed(struct imap_session *s, struct imap_command *cmd, const char *err)
{
	if (gn_db_error_is_temporary()) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=copy_failed conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, err));
		imap_tagged(s, cmd->tag, "NO", "UNAVAILABLE", "Temporary failure, try again later");
	} else {
		imap_tagged(s, cmd->tag, "NO", "CANNOT", "%s", err);
	}
}

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The bytes and the number of the messages with these UIDs (sorted or not) in the
 * selected mailbox: 0 with *bytes_r and *messages_r, or -1.  One read of the range they
 * span; a message expunged meanwhile only makes the sum larger than what
 * is copied (a check errs on the safe side). */
static int copy_bytes(struct imap_session *s, const uint32_t *uids, size_t n, uint64_t *bytes_r,
		      uint64_t *messages_r, const char **err_r)
{
	uint32_t lo = UINT32_MAX, hi = 0;
	for (size_t i = 0; i < n; i++) {
		lo = uids[i] < lo ? uids[i] : lo;
		hi = uids[i] > hi ? uids[i] : hi;
	}
	struct gn_store_message **list;
	size_t count;
	if (gn_store_message_list(s->cmd_pool, s->account_id, s->sel->id, lo, hi, &list, &count, err_r) < 0)
		return -1;
	uint32_t *sorted = gn_pool_alloc(s->cmd_pool, (n + 1) * sizeof(*sorted));
	memcpy(sorted, uids, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), uid_cmp);
	*bytes_r = 0;
	*messages_r = 0;
	size_t k = 0;
	for (size_t i = 0; i < count; i++) {
		uint32_t u = gn_store_message_uid(list[i]);
		while (k < n && sorted[k] < u)
			k++;
		if (k < n && sorted[k] == u) {
			*bytes_r += gn_store_message_size(list[i]);
			(*messages_r)++;
		}
	}
	return 0;
}

/* COPY with modules' store checks (imap.v1: quota): one transaction, the
 * account locked first, the check, the copy.  Returns as
 * gn_store_message_copy(), or -2 when a check refused (answered). */
static int copy_checked(struct imap_session *s, struct imap_command *cmd, const uint32_t *uids, size_t n,
			int64_t dst, uint32_t **src_uids_r, uint32_t **dst_uids_r, const char **err_r)
{
	uint64_t bytes, messages;
	if (copy_bytes(s, uids, n, &bytes, &messages, err_r) < 0 || gn_db_begin(err_r) < 0)
		return -1;
	int r = gn_store_account_lock(s->account_id, err_r);
	if (r <= 0) {
		if (r == 0)
			*err_r = "no such account";
		gn_db_rollback();
		return -1;
	}
	const char *code, *text;
	r = imap_service_store_check(s, "COPY", bytes, messages, &code, &text);
	if (r != 0) {
		gn_db_rollback();
		if (r < 0) {
			*err_r = "store check failed";
			return -1;
		}
		imap_tagged(s, cmd->tag, "NO", code, "%s", text);
		return -2;
	}
	int copied = gn_store_message_copy(s->cmd_pool, s->account_id, s->sel->id, uids, n, dst, false,
					   src_uids_r, dst_uids_r, NULL, err_r);
	if (copied < 0) {
		gn_db_rollback();
		return -1;
	}
	return gn_db_commit(err_r) < 0 ? -1 : copied;
}

static void copy(struct imap_session *s, struct imap_command *cmd, const struct imap_arg *args,
		 unsigned count, bool uid, bool move)
{
	const char *verb = move ? "MOVE" : "COPY";
	const char *wire, *name, *err;
	size_t len;
	if (count != 2 || !imap_arg_astring(&args[1], &wire, &len) || strlen(wire) != len) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "%s takes a sequence set and a mailbox name", verb);
		return;
	}
	size_t n;
	uint32_t *uids = set_uids(s, cmd, &args[0], uid, &n);
	if (uids == NULL)
		return;
	if (move && s->sel->readonly) {
		imap_tagged(s, cmd->tag, "NO", "READ-ONLY", "The mailbox is read-only (EXAMINE)");
		return;
	}
	const char *store = imap_name_from_wire(s, s->cmd_pool, wire);
	struct gn_store_mailbox *dst = NULL;
	int r = store == NULL || gn_store_mailbox_name_check(s->cmd_pool, store, &name, &err) < 0 ? 0 :
		gn_store_mailbox_find(s->cmd_pool, s->account_id, name, &dst, &err);
	if (r < 0) {
		failed(s, cmd, err);
		return;
	}
	if (r == 0) {
		imap_tagged(s, cmd->tag, "NO", "TRYCREATE", "No such mailbox");
		return;
	}
	if (n == 0) {
		/* RFC 9051 6.4.7 (and 6851): nothing to do is no error. */
		imap_tagged(s, cmd->tag, "OK", NULL, "%s%s completed, nothing to do", uid ? "UID " : "", verb);
		return;
	}
	uint32_t *src_uids, *dst_uids;
	/* RFC 9208 5.3: COPY over quota is NO [OVERQUOTA]; MOVE adds
	 * nothing to the account and is not checked. */
	int copied = !move && imap_service_store_checked()
		? copy_checked(s, cmd, uids, n, gn_store_mailbox_id(dst), &src_uids, &dst_uids, &err)
		: gn_store_message_copy(s->cmd_pool, s->account_id, s->sel->id, uids, n,
					gn_store_mailbox_id(dst), move, &src_uids, &dst_uids, NULL, &err);
	if (copied == -2)
		return;
	if (copied < 0) {
		failed(s, cmd, err);
		return;
	}
	struct gn_buf *code = gn_buf_new(0);
	(void)gn_buf_printf(code, "COPYUID %u ", (unsigned)gn_store_mailbox_uidvalidity(dst));
	imap_append_uid_set(code, src_uids, (size_t)copied);
	(void)gn_buf_append(code, " ", 1);
	imap_append_uid_set(code, dst_uids, (size_t)copied);
	if (copied == 0) {
		imap_tagged(s, cmd->tag, "OK", NULL, "%s%s completed, nothing to do", uid ? "UID " : "", verb);
	} else if (move) {
		imap_untagged(s, "OK [%s] Moved", gn_buf_data(code));
		/* The moved messages leave the view as EXPUNGE (VANISHED)
		 * responses; with QRESYNC the tagged OK has HIGHESTMODSEQ
		 * (RFC 6851 4.4). */
		imap_tagged(s, cmd->tag, "OK", imap_refresh_expunged(s, s->cmd_pool), "%sMOVE completed",
			    uid ? "UID " : "");
	} else {
		imap_tagged(s, cmd->tag, "OK", gn_buf_data(code), "%sCOPY completed", uid ? "UID " : "");
	}
	gn_buf_free(&code);
}

void imap_cmd_copy(struct imap_session *s, struct imap_command *cmd)
{
	copy(s, cmd, cmd->args, cmd->count, false, false);
}

void imap_cmd_move(struct imap_session *s, struct imap_command *cmd)
{
	copy(s, cmd, cmd->args, cmd->count, false, true);
}

void imap_uid_copy(struct imap_session *s, struct imap_command *cmd, bool move)
{
	copy(s, cmd, cmd->args + 1, cmd->count - 1, true, move);
}

void imap_uid_expunge(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count != 2) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "UID EXPUNGE takes a UID set");
		return;
	}
	size_t n;
	uint32_t *uids = set_uids(s, cmd, &cmd->args[1], true, &n);
	if (uids == NULL)
		return;
	if (s->sel->readonly) {
		imap_tagged(s, cmd->tag, "NO", "READ-ONLY", "The mailbox is read-only (EXAMINE)");
		return;
	}
	/* Only those with \Deleted go (RFC 4315 2.1). */
	struct gn_store_message **list;
	size_t count, k = 0;
	const char *err;
	if (n > 0 && gn_store_message_list(s->cmd_pool, s->account_id, s->sel->id, uids[0], uids[n - 1], &list,
					   &count, &err) < 0) {
		failed(s, cmd, err);
		return;
	}
	uint32_t *del = gn_pool_alloc(s->cmd_pool, (n + 1) * sizeof(*del));
	size_t nd = 0;
	for (size_t i = 0; i < n; i++) {
		while (k < count && gn_store_message_uid(list[k]) < uids[i])
			k++;
		if (k < count && gn_store_message_uid(list[k]) == uids[i] &&
		    (gn_store_message_flags(list[k]) & GN_STORE_DELETED) != 0)
			del[nd++] = uids[i];
	}
	if (nd > 0 && gn_store_message_expunge(s->cmd_pool, s->account_id, s->sel->id, del, nd, NULL, NULL,
					       &err) < 0) {
		failed(s, cmd, err);
		return;
	}
	imap_tagged(s, cmd->tag, "OK", imap_refresh_expunged(s, s->cmd_pool), "UID EXPUNGE completed");
}
