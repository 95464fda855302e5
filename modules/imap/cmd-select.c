/*
 * modules/imap/cmd-select.c: the selected mailbox (RFC 9051 6.3.2, 6.3.3,
 * 6.4): SELECT, EXAMINE, CLOSE, UNSELECT (RFC 3691), EXPUNGE, CHECK, and
 * the view of the mailbox each session keeps.
 *
 * A session knows its mailbox as the list of UIDs it has told the client
 * about (message sequence numbers are their positions) with the modseq of
 * each as last reported.  imap_refresh() compares that with the store and
 * reports the difference, in the order RFC 9051 7.5 allows at the end of
 * a command: expunged messages from the highest number down (so that no
 * number the client holds shifts under a later response), then the new
 * count (EXISTS), then flags changed elsewhere.  With CONDSTORE (RFC
 * 7162) it also keeps the HIGHESTMODSEQ the client may rely on: the
 * mailbox's, as read before the last refresh that held nothing back.
 */
#include "imap.h"

#include <stdlib.h>
#include <string.h>

static void view_free(struct imap_view **vp)
{
	struct imap_view *v = *vp;
	if (v == NULL)
		return;
	gn_free(v->name);
	gn_free(v->uids);
	gn_free(v->modseqs);
	gn_free(v->saved);
	gn_free(v->gone);
	gn_free(v);
	*vp = NULL;
}

static void view_push(struct imap_view *v, uint32_t uid, uint64_t modseq)
{
	if (v->count == v->cap) {
		v->cap = v->cap == 0 ? 64 : v->cap * 2;
		v->uids = gn_realloc(v->uids, v->cap * sizeof(*v->uids));
		v->modseqs = gn_realloc(v->modseqs, v->cap * sizeof(*v->modseqs));
	}
	v->uids[v->count] = uid;
	v->modseqs[v->count] = modseq;
	v->count++;
}

size_t imap_view_msn(const struct imap_view *v, uint32_t uid)
{
	size_t lo = 0, hi = v->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->uids[mid] < uid)
			lo = mid + 1;
		else if (v->uids[mid] > uid)
			hi = mid;
		else
			return mid + 1;
	}
	return 0;
}

size_t *imap_select_msns(struct imap_session *s, struct gn_pool *pool, struct imap_command *cmd,
			 const struct imap_arg *arg, bool uid, size_t *n_r)
{
	const struct imap_view *v = s->sel;
	/* RFC 5182 2.1: "$" is the saved result, whether numbers or UIDs
	 * are asked for; messages expunged since are no longer in it. */
	if (arg->type == IMAP_ARG_ATOM && strcmp(arg->str, "$") == 0) {
		size_t *saved = gn_pool_alloc(pool, (v->n_saved + 1) * sizeof(*saved));
		size_t n = 0;
		for (size_t i = 0; i < v->n_saved; i++) {
			size_t msn = imap_view_msn(v, v->saved[i]);
			if (msn != 0)
				saved[n++] = msn;
		}
		*n_r = n;
		return saved;
	}
	struct imap_seqset set;
	uint32_t star = v->count == 0 ? 0 : uid ? v->uids[v->count - 1] : (uint32_t)v->count;
	if (arg->type != IMAP_ARG_ATOM || imap_seqset_parse(pool, arg->str, star, &set) < 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "Sequence set expected");
		return NULL;
	}
	/* RFC 9051 6.4.5: message numbers past the end are an error, UIDs
	 * that do not exist are not. */
	if (!uid && (v->count == 0 || set.ranges[set.count - 1].hi > v->count)) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "Message number out of range");
		return NULL;
	}
	size_t *msns = gn_pool_alloc(pool, (v->count + 1) * sizeof(*msns));
	size_t n = 0;
	for (size_t i = 0; i < v->count; i++)
		if (imap_seqset_has(&set, uid ? v->uids[i] : (uint32_t)(i + 1)))
			msns[n++] = i + 1;
	*n_r = n;
	return msns;
}

void imap_deselect(struct imap_session *s)
{
	view_free(&s->sel);
	if (s->state == IMAP_SELECTED)
		s->state = IMAP_AUTH;
}

void imap_append_flags(struct gn_buf *b, unsigned flags, const char *const *keywords, size_t n)
{
	static const struct {
		unsigned bit;
		const char *name;
	} sys[] = {
		{ GN_STORE_SEEN, "\\Seen" }, { GN_STORE_ANSWERED, "\\Answered" },
		{ GN_STORE_FLAGGED, "\\Flagged" }, { GN_STORE_DELETED, "\\Deleted" },
		{ GN_STORE_DRAFT, "\\Draft" },
	};
	bool first = true;
	(void)gn_buf_append(b, "(", 1);
	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
		if ((flags & sys[i].bit) == 0)
			continue;
		(void)gn_buf_printf(b, "%s%s", first ? "" : " ", sys[i].name);
		first = false;
	}
	for (size_t i = 0; i < n; i++) {
		(void)gn_buf_printf(b, "%s%s", first ? "" : " ", keywords[i]);
		first = false;
	}
	(void)gn_buf_append(b, ")", 1);
}

void imap_fetch_flags_line(struct imap_session *s, size_t msn, const struct gn_store_message *m)
{
	struct gn_buf *b = gn_buf_new(0);
	size_t nk;
	const char *const *kw = gn_store_message_keywords(m, &nk);
	(void)gn_buf_printf(b, "%zu FETCH (UID %u FLAGS ", msn, (unsigned)gn_store_message_uid(m));
	imap_append_flags(b, gn_store_message_flags(m), kw, nk);
	/* RFC 7162 3.2.4: UID and MODSEQ once CONDSTORE is on. */
	if (s->condstore) {
		(void)gn_buf_append(b, " ", 1);
		imap_append_modseq(s, b, gn_store_message_modseq(m));
	}
	(void)gn_buf_append(b, ")", 1);
	imap_untagged(s, "%s", gn_buf_data(b));
	gn_buf_free(&b);
}

/* RFC 7162 6: the client takes a HIGHESTMODSEQ response code as it is,
 * even below MODSEQs it saw; EXPUNGE, UID EXPUNGE and MOVE put it in
 * their tagged OK instead (hold_modseq). */
static void announce_highest(struct imap_session *s, uint64_t modseq)
{
	struct imap_view *v = s->sel;
	v->sent_modseq = 0;
	if (modseq == 0)
		return;
	if (v->hold_modseq)
		v->held_modseq = modseq;
	else
		imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest", (unsigned long long)modseq);
}

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static bool uid_in(const uint32_t *uids, size_t n, uint32_t uid)
{
	if (n == 0)
		return false; /* uids may be NULL then, which bsearch() may not be given */
	return bsearch(&uid, uids, n, sizeof(*uids), uid_cmp) != NULL;
}

/* The difference between the view and the store, reported; expunges only
 * when allowed (not during FETCH, STORE, SEARCH: RFC 9051 7.5.1).  The
 * store is asked only for what changed since the view's known_modseq
 * (messages with a greater modseq, UIDs expunged since, the new
 * HIGHESTMODSEQ, in one statement): modseqs commit in increasing order
 * per account (gannet/store.h), so nothing older can appear later. */
static int refresh(struct imap_session *s, bool expunge)
{
	struct imap_view *v = s->sel;
	if (v == NULL)
		return 0;
	struct gn_store_message **list;
	size_t n, n_exp;
	uint32_t *exp;
	uint64_t highest;
	const char *err;
	struct gn_pool *pool = gn_pool_new();
	int r = gn_store_mailbox_changes(pool, s->account_id, v->id, v->known_modseq, &list, &n, &exp, &n_exp,
					 &highest, &err);
	if (r < 0) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=refresh_failed conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, err));
		gn_pool_free(&pool);
		return -1;
	}
	if (r == 0) {
		/* The mailbox was deleted (or renamed away and its id
		 * gone): every message is expunged. */
		n = 0;
		n_exp = v->count;
		exp = gn_pool_alloc(pool, (n_exp + 1) * sizeof(*exp));
		memcpy(exp, v->uids, n_exp * sizeof(*exp));
		highest = v->known_modseq;
	}
	/* Expunged: those of the view not yet known gone. */
	size_t add = 0;
	for (size_t i = 0; i < n_exp; i++)
		if (imap_view_msn(v, exp[i]) != 0 && !uid_in(v->gone, v->n_gone, exp[i]))
			exp[add++] = exp[i];
	if (add > 0) {
		v->gone = gn_realloc(v->gone, (v->n_gone + add) * sizeof(*v->gone));
		memcpy(v->gone + v->n_gone, exp, add * sizeof(*exp));
		v->n_gone += add;
		qsort(v->gone, v->n_gone, sizeof(*v->gone), uid_cmp);
	}
	size_t held = 0;
	if (!expunge) {
		held = v->n_gone;
	} else if (v->n_gone > 0) {
		/* From the highest number down, so that no number the client
		 * holds shifts under a later response (RFC 9051 7.5.1).  With
		 * QRESYNC one VANISHED says them all (RFC 7162 3.2.10.2). */
		if (s->qresync) {
			struct gn_buf *b = gn_buf_new(0);
			(void)gn_buf_append_str(b, "VANISHED ");
			imap_append_uid_set(b, v->gone, v->n_gone);
			imap_untagged(s, "%s", gn_buf_data(b));
			gn_buf_free(&b);
		} else {
			for (size_t i = v->count; i-- > 0;)
				if (uid_in(v->gone, v->n_gone, v->uids[i]))
					imap_untagged(s, "%zu EXPUNGE", i + 1);
		}
		size_t k = 0;
		for (size_t i = 0; i < v->count; i++) {
			if (uid_in(v->gone, v->n_gone, v->uids[i]))
				continue;
			v->uids[k] = v->uids[i];
			v->modseqs[k] = v->modseqs[i];
			k++;
		}
		v->count = k;
		gn_free(v->gone);
		v->gone = NULL;
		v->n_gone = 0;
	}
	/* New: past the view's last UID. */
	uint32_t last = v->count > 0 ? v->uids[v->count - 1] : 0;
	size_t before = v->count;
	for (size_t i = 0; i < n; i++)
		if (gn_store_message_uid(list[i]) > last)
			view_push(v, gn_store_message_uid(list[i]), gn_store_message_modseq(list[i]));
	if (v->count != before)
		imap_untagged(s, "%zu EXISTS", v->count);
	/* Changed: a newer modseq than reported. */
	for (size_t i = 0; i < n; i++) {
		size_t msn = imap_view_msn(v, gn_store_message_uid(list[i]));
		if (msn == 0 || msn > before || gn_store_message_modseq(list[i]) <= v->modseqs[msn - 1])
			continue;
		v->modseqs[msn - 1] = gn_store_message_modseq(list[i]);
		imap_fetch_flags_line(s, msn, list[i]);
	}
	if (highest > v->known_modseq)
		v->known_modseq = highest;
	/* RFC 7162 3.2: while an expunge is held back, MODSEQs sent must not
	 * let the client think it saw everything up to them. */
	if (s->condstore && held > 0 && v->sent_modseq > v->highestmodseq)
		announce_highest(s, v->highestmodseq);
	else if (s->condstore && held == 0 && highest > v->highestmodseq) {
		v->highestmodseq = highest;
		/* Unless the MODSEQs sent reach it: the client takes their
		 * highest itself. */
		if (highest != v->sent_modseq || v->hold_modseq)
			announce_highest(s, highest);
	}
	gn_pool_free(&pool);
	return 0;
}

int imap_refresh(struct imap_session *s)
{
	return refresh(s, true);
}

int imap_refresh_no_expunge(struct imap_session *s)
{
	return refresh(s, false);
}

const char *imap_refresh_expunged(struct imap_session *s, struct gn_pool *pool)
{
	struct imap_view *v = s->sel;
	v->hold_modseq = true;
	v->held_modseq = 0;
	(void)imap_refresh(s);
	v->hold_modseq = false;
	/* RFC 7162 3.2.7, 3.2.9: with QRESYNC, in the tagged OK. */
	if (!s->qresync || v->held_modseq == 0)
		return NULL;
	return gn_pool_printf(pool, "HIGHESTMODSEQ %llu", (unsigned long long)v->held_modseq);
}

static void select_mailbox(struct imap_session *s, struct imap_command *cmd, bool readonly)
{
	const char *wire, *name, *err;
	size_t len;
	struct imap_select_params params = { 0 };
	if (cmd->count < 1 || cmd->count > 2 || !imap_arg_astring(&cmd->args[0], &wire, &len) ||
	    strlen(wire) != len) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "%s takes a mailbox name and parameters", cmd->name);
		return;
	}
	/* RFC 7162 3.2.5: the parameters are checked before anything is
	 * opened or closed. */
	const char *bad = cmd->count == 2 ? imap_select_params_parse(s, s->cmd_pool, &cmd->args[1], &params) : NULL;
	if (bad != NULL) {
		gn_log(GN_LOG_INFO, IMAP_AREA, "event=select_refused conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, bad));
		imap_tagged(s, cmd->tag, "BAD", NULL, "%s", bad);
		return;
	}
	/* RFC 9051 6.3.2: a SELECT while a mailbox is selected closes it
	 * first (without expunging), whether or not the new one opens. */
	if (s->sel != NULL) {
		imap_deselect(s);
		imap_untagged(s, "OK [CLOSED] Previous mailbox closed");
	}
	const char *store = imap_name_from_wire(s, s->cmd_pool, wire);
	struct gn_store_mailbox *mb = NULL;
	int r = store == NULL || gn_store_mailbox_name_check(s->cmd_pool, store, &name, &err) < 0 ? 0 :
		gn_store_mailbox_find(s->cmd_pool, s->account_id, name, &mb, &err);
	if (r < 0) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=select_failed conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, err));
		imap_tagged(s, cmd->tag, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		return;
	}
	if (r == 0) {
		imap_tagged(s, cmd->tag, "NO", "NONEXISTENT", "No such mailbox");
		return;
	}
	struct gn_store_message **list;
	size_t n;
	if (gn_store_message_list(s->cmd_pool, s->account_id, gn_store_mailbox_id(mb), 1, 0, &list, &n,
				  &err) < 0) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=select_failed conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, err));
		imap_tagged(s, cmd->tag, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		return;
	}
	struct imap_view *v = gn_calloc(1, sizeof(*v));
	v->id = gn_store_mailbox_id(mb);
	v->name = gn_strdup(gn_store_mailbox_name(mb));
	v->readonly = readonly;
	v->uidvalidity = gn_store_mailbox_uidvalidity(mb);
	/* Read before the list: every change up to it is in the list. */
	v->highestmodseq = gn_store_mailbox_highestmodseq(mb);
	v->known_modseq = v->highestmodseq;
	size_t first_unseen = 0;
	for (size_t i = 0; i < n; i++) {
		view_push(v, gn_store_message_uid(list[i]), gn_store_message_modseq(list[i]));
		if (first_unseen == 0 && (gn_store_message_flags(list[i]) & GN_STORE_SEEN) == 0)
			first_unseen = i + 1;
	}
	/* UIDNEXT: past the last message listed, whatever the status said
	 * before the list settled more. */
	uint32_t uidnext = gn_store_mailbox_uidnext(mb);
	if (n > 0 && gn_store_message_uid(list[n - 1]) >= uidnext)
		uidnext = gn_store_message_uid(list[n - 1]) + 1;
	s->sel = v;
	s->state = IMAP_SELECTED;

	imap_untagged(s, "%zu EXISTS", v->count);
	if (!s->enabled_rev2) {
		imap_untagged(s, "0 RECENT");
		if (first_unseen > 0)
			imap_untagged(s, "OK [UNSEEN %zu] First unseen", first_unseen);
	}
	imap_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", (unsigned)v->uidvalidity);
	imap_untagged(s, "OK [UIDNEXT %u] Predicted next UID", (unsigned)uidnext);
	/* RFC 7162 3.1.8: CONDSTORE (and QRESYNC) enable it; 3.1.2.1: then
	 * HIGHESTMODSEQ at every SELECT. */
	if (params.condstore || params.qresync)
		s->condstore = true;
	if (s->condstore && v->highestmodseq > 0)
		imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest", (unsigned long long)v->highestmodseq);
	imap_untagged(s, "FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
	imap_untagged(s, "OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Limited");
	if (s->enabled_rev2) {
		struct gn_buf *b = gn_buf_new(0);
		const char *w = imap_name_to_wire(s, s->cmd_pool, v->name);
		(void)gn_buf_append_str(b, "LIST () \"/\" ");
		imap_append_string(b, w, strlen(w));
		imap_untagged(s, "%s", gn_buf_data(b));
		gn_buf_free(&b);
	}
	if (params.qresync && imap_qresync_select(s, &params, list, n) < 0) {
		imap_deselect(s);
		imap_tagged(s, cmd->tag, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		return;
	}
	imap_tagged(s, cmd->tag, "OK", readonly ? "READ-ONLY" : "READ-WRITE", "%s completed", cmd->name);
}

void imap_cmd_select(struct imap_session *s, struct imap_command *cmd)
{
	select_mailbox(s, cmd, false);
}

void imap_cmd_examine(struct imap_session *s, struct imap_command *cmd)
{
	select_mailbox(s, cmd, true);
}

void imap_cmd_unselect(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count != 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "UNSELECT takes no arguments");
		return;
	}
	imap_deselect(s);
	imap_tagged(s, cmd->tag, "OK", NULL, "UNSELECT completed");
}

void imap_cmd_close(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count != 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "CLOSE takes no arguments");
		return;
	}
	/* RFC 9051 6.4.1: messages with \Deleted go, silently. */
	const char *err;
	if (!s->sel->readonly &&
	    gn_store_message_expunge(s->cmd_pool, s->account_id, s->sel->id, NULL, 0, NULL, NULL, &err) < 0) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=expunge_failed conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, err));
		imap_tagged(s, cmd->tag, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		return;
	}
	imap_deselect(s);
	imap_tagged(s, cmd->tag, "OK", NULL, "CLOSE completed");
}

void imap_cmd_expunge(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count != 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "EXPUNGE takes no arguments");
		return;
	}
	if (s->sel->readonly) {
		imap_tagged(s, cmd->tag, "NO", "READ-ONLY", "The mailbox is read-only (EXAMINE)");
		return;
	}
	const char *err;
	if (gn_store_message_expunge(s->cmd_pool, s->account_id, s->sel->id, NULL, 0, NULL, NULL, &err) < 0) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=expunge_failed conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, err));
		imap_tagged(s, cmd->tag, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		return;
	}
	/* The expunged messages are reported from the store's view, with
	 * anything else that changed. */
	imap_tagged(s, cmd->tag, "OK", imap_refresh_expunged(s, s->cmd_pool), "EXPUNGE completed");
}

void imap_cmd_check(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count != 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "CHECK takes no arguments");
		return;
	}
	(void)imap_refresh(s);
	imap_tagged(s, cmd->tag, "OK", NULL, "CHECK completed");
}
