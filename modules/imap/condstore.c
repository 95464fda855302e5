/*
 * modules/imap/condstore.c: CONDSTORE and QRESYNC (RFC 7162) where they
 * are not one command's business: enabling CONDSTORE, mod-sequences on
 * the wire, SELECT's parameters and the resynchronisation QRESYNC asks
 * for, VANISHED (EARLIER).
 *
 * The store keeps a modseq per message, HIGHESTMODSEQ per mailbox and
 * the UIDs expunged with the modseq of their expunge (gannet/store.h), so
 * every mailbox has persistent mod-sequences: NOMODSEQ is never sent, and
 * VANISHED (EARLIER) is exact (the sequence match data of RFC 7162
 * 3.2.5.2 is checked and then not needed, 5.3).
 *
 * Which HIGHESTMODSEQ a client may keep is the view's business
 * (cmd-select.c): the mailbox's as read before the last refresh that held
 * no expunge back; commands that send MODSEQs without reporting expunges
 * (FETCH, STORE) end with imap_condstore_after().
 */
#include "imap.h"

#include <stdlib.h>
#include <string.h>

/* RFC 7162 7: mod-sequence-value is 1 to 2^63 - 1. */
#define MODSEQ_MAX ((uint64_t)INT64_MAX)

void imap_condstore_enable(struct imap_session *s)
{
	if (s->condstore)
		return;
	s->condstore = true;
	/* RFC 7162 3.1: the first enabling command with a mailbox selected
	 * announces its HIGHESTMODSEQ. */
	if (s->sel != NULL && s->sel->highestmodseq > 0)
		imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest", (unsigned long long)s->sel->highestmodseq);
}

bool imap_modseq_parse(const struct imap_arg *arg, bool zero_ok, uint64_t *modseq_r)
{
	if (arg->type != IMAP_ARG_ATOM || arg->str[0] == '\0')
		return false;
	uint64_t v = 0;
	for (const char *p = arg->str; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return false;
		if (v > (MODSEQ_MAX - (uint64_t)(*p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v == 0 && !zero_ok)
		return false;
	*modseq_r = v;
	return true;
}

void imap_append_modseq(struct imap_session *s, struct gn_buf *b, uint64_t modseq)
{
	(void)gn_buf_printf(b, "MODSEQ (%llu)", (unsigned long long)modseq);
	if (s->sel != NULL && modseq > s->sel->sent_modseq)
		s->sel->sent_modseq = modseq;
}

/* Whether the view knows every change since its HIGHESTMODSEQ and no
 * expunge waits, by the modseq index rather than the whole mailbox: then
 * *highest_r (read first, so every change up to it is among those looked
 * at) is safe to announce.  1, 0 (a full refresh is needed), -1. */
static int view_current(struct imap_session *s, struct gn_pool *pool, uint64_t *highest_r, const char **err_r)
{
	const struct imap_view *v = s->sel;
	struct gn_store_mailbox *mb;
	int r = gn_store_mailbox_get(pool, s->account_id, v->id, &mb, err_r);
	if (r <= 0)
		return r;
	*highest_r = gn_store_mailbox_highestmodseq(mb);
	struct gn_store_query *q = gn_store_query_new(pool);
	gn_store_query_modseq(q, v->highestmodseq + 1);
	uint32_t *uids, *gone;
	uint64_t *modseqs;
	int n = gn_store_query_run(pool, q, s->account_id, v->id, &uids, &modseqs, err_r);
	if (n < 0)
		return -1;
	for (size_t i = 0; i < (size_t)n; i++) {
		size_t msn = imap_view_msn(v, uids[i]);
		if (msn == 0 || v->modseqs[msn - 1] != modseqs[i])
			return 0;	/* new, or changed unreported */
	}
	n = gn_store_expunged_since(pool, s->account_id, v->id, v->highestmodseq, &gone, err_r);
	if (n < 0)
		return -1;
	for (size_t i = 0; i < (size_t)n; i++)
		if (imap_view_msn(v, gone[i]) != 0)
			return 0;	/* an expunge held back */
	return 1;
}

void imap_condstore_after(struct imap_session *s)
{
	struct imap_view *v = s->sel;
	if (!s->condstore || v == NULL || v->sent_modseq <= v->highestmodseq)
		return;
	/* MODSEQs above what was fully reported.  Usually the view knows
	 * everything since (its own STORE): HIGHESTMODSEQ moves on.  Else
	 * what others changed is told now, and a held-back expunge keeps
	 * HIGHESTMODSEQ below it (RFC 7162 3.2). */
	struct gn_pool *pool = gn_pool_new();
	uint64_t highest = 0;
	const char *err;
	int r = view_current(s, pool, &highest, &err);
	gn_pool_free(&pool);
	if (r < 0) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=refresh_failed conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, err));
		return;
	}
	if (r == 0) {
		(void)imap_refresh_no_expunge(s);
		return;
	}
	if (highest > v->highestmodseq) {
		v->highestmodseq = highest;
		/* The client took the highest MODSEQ sent itself. */
		if (highest != v->sent_modseq)
			imap_untagged(s, "OK [HIGHESTMODSEQ %llu] Highest", (unsigned long long)highest);
	}
	v->sent_modseq = 0;
}

/* ---- SELECT (CONDSTORE) and SELECT (QRESYNC (...)) ---- */

/* A sequence set without "*" (known-uids, known-sequence-set,
 * known-uid-set): false when malformed. */
static bool set_nostar(struct gn_pool *pool, const struct imap_arg *arg, struct imap_seqset *set)
{
	return arg->type == IMAP_ARG_ATOM && strchr(arg->str, '*') == NULL &&
	       imap_seqset_parse(pool, arg->str, 0, set) == 0;
}

static uint64_t set_size(const struct imap_seqset *set)
{
	uint64_t n = 0;
	for (size_t i = 0; i < set->count; i++)
		n += (uint64_t)set->ranges[i].hi - set->ranges[i].lo + 1;
	return n;
}

/* RFC 7162 7: "QRESYNC" SP "(" uidvalidity SP mod-sequence-value
 * [SP known-uids] [SP seq-match-data] ")". */
static const char *parse_qresync(struct gn_pool *pool, const struct imap_arg *l, struct imap_select_params *p)
{
	if (l->type != IMAP_ARG_LIST || l->count < 2 || l->count > 4)
		return "QRESYNC takes (uidvalidity modseq [known-uids] [(known-sequence-set known-uid-set)])";
	const struct imap_arg *a = l->list;
	char *end = NULL;
	unsigned long long uv = a[0].type == IMAP_ARG_ATOM && a[0].str[0] >= '1' && a[0].str[0] <= '9' ?
				strtoull(a[0].str, &end, 10) : 0;
	if (uv == 0 || *end != '\0' || uv > UINT32_MAX)
		return "QRESYNC: the UIDVALIDITY is a number from 1 to 4294967295";
	p->uidvalidity = (uint32_t)uv;
	if (!imap_modseq_parse(&a[1], false, &p->modseq))
		return "QRESYNC: the modseq is a number from 1 to 9223372036854775807";
	unsigned i = 2;
	if (i < l->count && a[i].type == IMAP_ARG_ATOM) {
		if (!set_nostar(pool, &a[i], &p->known_uids))
			return "QRESYNC: known UIDs are a sequence set without \"*\"";
		i++;
	}
	if (i < l->count) {
		/* The match data is checked, then not needed: the store knows
		 * every expunge (RFC 7162 5.3). */
		struct imap_seqset seqs, uids;
		const struct imap_arg *m = &a[i];
		if (m->type != IMAP_ARG_LIST || m->count != 2 || !set_nostar(pool, &m->list[0], &seqs) ||
		    !set_nostar(pool, &m->list[1], &uids))
			return "QRESYNC: the match data is (known-sequence-set known-uid-set), without \"*\"";
		if (set_size(&seqs) != set_size(&uids))
			return "QRESYNC: the match data's sets differ in size";
		i++;
	}
	if (i != l->count)
		return "QRESYNC: unexpected parameter";
	return NULL;
}

const char *imap_select_params_parse(struct imap_session *s, struct gn_pool *pool, const struct imap_arg *list,
				     struct imap_select_params *p)
{
	memset(p, 0, sizeof(*p));
	if (list->type != IMAP_ARG_LIST || list->count == 0)
		return "SELECT parameters are a parenthesised list";
	for (unsigned i = 0; i < list->count; i++) {
		const struct imap_arg *a = &list->list[i];
		if (imap_arg_atom_is(a, "CONDSTORE")) {
			p->condstore = true;
		} else if (imap_arg_atom_is(a, "QRESYNC")) {
			/* RFC 7162 3.2.5: BAD without ENABLE QRESYNC. */
			if (!s->qresync)
				return "QRESYNC is not enabled (ENABLE QRESYNC first)";
			if (p->qresync)
				return "QRESYNC given twice";
			if (++i == list->count)
				return "QRESYNC takes a parenthesised list";
			const char *bad = parse_qresync(pool, &list->list[i], p);
			if (bad != NULL)
				return bad;
			p->qresync = true;
		} else {
			return "Unknown SELECT parameter";
		}
	}
	return NULL;
}

/* "* VANISHED (EARLIER) set" for the sorted uids, if any. */
static void vanished_earlier(struct imap_session *s, const uint32_t *uids, size_t n)
{
	if (n == 0)
		return;
	struct gn_buf *b = gn_buf_new(0);
	(void)gn_buf_append_str(b, "VANISHED (EARLIER) ");
	imap_append_uid_set(b, uids, n);
	imap_untagged(s, "%s", gn_buf_data(b));
	gn_buf_free(&b);
}

/* The UIDs expunged since modseq that set_has accepts, without those the
 * view still holds: their expunge reaches the client as VANISHED (no
 * EARLIER) at the next refresh, and must not be told twice.  The count,
 * or -1. */
static int expunged_since(struct imap_session *s, struct gn_pool *pool, uint64_t modseq,
			  const struct imap_seqset *set, uint32_t **uids_r)
{
	const char *err;
	uint32_t *uids;
	int n = gn_store_expunged_since(pool, s->account_id, s->sel->id, modseq, &uids, &err);
	if (n < 0) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=vanished_failed conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, err));
		return -1;
	}
	size_t kept = 0;
	for (size_t i = 0; i < (size_t)n; i++)
		if ((set == NULL || imap_seqset_has(set, uids[i])) && imap_view_msn(s->sel, uids[i]) == 0)
			uids[kept++] = uids[i];
	*uids_r = uids;
	return (int)kept;
}

int imap_qresync_select(struct imap_session *s, const struct imap_select_params *p,
			struct gn_store_message *const *list, size_t n)
{
	/* RFC 7162 3.2.5: another UIDVALIDITY: as if nothing changed. */
	if (p->uidvalidity != s->sel->uidvalidity)
		return 0;
	const struct imap_seqset *known = p->known_uids.count > 0 ? &p->known_uids : NULL;
	uint32_t *uids;
	int gone = expunged_since(s, s->cmd_pool, p->modseq, known, &uids);
	if (gone < 0)
		return -1;
	/* 3.2.6: VANISHED (EARLIER) before any FETCH. */
	vanished_earlier(s, uids, (size_t)gone);
	for (size_t i = 0; i < n; i++) {
		uint32_t uid = gn_store_message_uid(list[i]);
		if (gn_store_message_modseq(list[i]) > p->modseq && (known == NULL || imap_seqset_has(known, uid)))
			imap_fetch_flags_line(s, i + 1, list[i]);
	}
	return 0;
}

int imap_vanished_earlier(struct imap_session *s, const struct imap_arg *set_arg, uint64_t modseq)
{
	const struct imap_view *v = s->sel;
	struct imap_seqset set;
	if (set_arg->type == IMAP_ARG_ATOM && strcmp(set_arg->str, "$") == 0) {
		/* RFC 5182: the saved UIDs, one range each. */
		set.count = v->n_saved;
		set.ranges = gn_pool_alloc(s->cmd_pool, (v->n_saved + 1) * sizeof(*set.ranges));
		for (size_t i = 0; i < v->n_saved; i++)
			set.ranges[i].lo = set.ranges[i].hi = v->saved[i];
	} else if (set_arg->type != IMAP_ARG_ATOM ||
		   imap_seqset_parse(s->cmd_pool, set_arg->str, v->count > 0 ? v->uids[v->count - 1] : 0, &set) < 0) {
		return 0;	/* answered BAD by the caller's set parse */
	}
	uint32_t *uids;
	int gone = expunged_since(s, s->cmd_pool, modseq, &set, &uids);
	if (gone < 0)
		return -1;
	vanished_earlier(s, uids, (size_t)gone);
	return 0;
}
