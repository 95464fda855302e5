/*
 * modules/imap/cmd-fetch.c: FETCH and STORE (RFC 9051 6.4.5, 6.4.6) and
 * the UID command that prefixes them (6.4.9).
 *
 * FETCH answers from the store's message list: UID, FLAGS, INTERNALDATE,
 * RFC822.SIZE and the FAST macro.  The items that read or parse the
 * message itself (BODY[...], BINARY, ENVELOPE, BODYSTRUCTURE, and the ALL
 * and FULL macros) are not served yet and answer BAD, rather than
 * anything a client could take for the message.
 */
#include "imap.h"

#include <string.h>
#include <strings.h>
#include <time.h>

enum {
	F_UID = 1 << 0,
	F_FLAGS = 1 << 1,
	F_INTERNALDATE = 1 << 2,
	F_SIZE = 1 << 3,
};

/* The items of a FETCH: a macro, one item, or a list of items.  Returns
 * the F_* bits, or -1 after answering BAD. */
static int fetch_items(struct imap_session *s, struct imap_command *cmd, const struct imap_arg *arg)
{
	const struct imap_arg *items = arg;
	unsigned n = 1;
	if (arg->type == IMAP_ARG_LIST) {
		items = arg->list;
		n = arg->count;
	}
	int bits = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct imap_arg *a = &items[i];
		if (imap_arg_atom_is(a, "UID"))
			bits |= F_UID;
		else if (imap_arg_atom_is(a, "FLAGS"))
			bits |= F_FLAGS;
		else if (imap_arg_atom_is(a, "INTERNALDATE"))
			bits |= F_INTERNALDATE;
		else if (imap_arg_atom_is(a, "RFC822.SIZE"))
			bits |= F_SIZE;
		else if (arg->type != IMAP_ARG_LIST && imap_arg_atom_is(a, "FAST"))
			bits |= F_FLAGS | F_INTERNALDATE | F_SIZE;
		else {
			imap_tagged(s, cmd->tag, "BAD", NULL, "FETCH item not supported (yet): %s",
				    a->type == IMAP_ARG_ATOM ? a->str : "?");
			return -1;
		}
	}
	if (n == 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "FETCH takes one or more items");
		return -1;
	}
	return bits;
}

/* The view's messages in set (message numbers, or UIDs with uid): their
 * message sequence numbers, ascending, from the pool.  NULL after
 * answering BAD. */
static size_t *select_msns(struct imap_session *s, struct imap_command *cmd, const struct imap_arg *arg,
			   bool uid, size_t *n_r)
{
	const struct imap_view *v = s->sel;
	struct imap_seqset set;
	uint32_t star = v->count == 0 ? 0 : uid ? v->uids[v->count - 1] : (uint32_t)v->count;
	if (arg->type != IMAP_ARG_ATOM || imap_seqset_parse(s->cmd_pool, arg->str, star, &set) < 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "Sequence set expected");
		return NULL;
	}
	/* RFC 9051 6.4.5 (and 9051's errata): message numbers past the end
	 * are an error, UIDs that do not exist are not. */
	if (!uid && (v->count == 0 || set.ranges[set.count - 1].hi > v->count)) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "Message number out of range");
		return NULL;
	}
	size_t *msns = gn_pool_alloc(s->cmd_pool, (v->count + 1) * sizeof(*msns));
	size_t n = 0;
	for (size_t i = 0; i < v->count; i++)
		if (imap_seqset_has(&set, uid ? v->uids[i] : (uint32_t)(i + 1)))
			msns[n++] = i + 1;
	*n_r = n;
	return msns;
}

/* The store's messages for msns (by UID), index-aligned with msns; NULL
 * entries for messages gone meanwhile.  -1 on a database failure. */
static int load_messages(struct imap_session *s, const size_t *msns, size_t n,
			 struct gn_store_message ***out_r)
{
	struct gn_store_message **out = gn_pool_alloc(s->cmd_pool, (n + 1) * sizeof(*out));
	*out_r = out;
	if (n == 0)
		return 0;
	struct gn_store_message **list;
	size_t count;
	const char *err;
	const struct imap_view *v = s->sel;
	if (gn_store_message_list(s->cmd_pool, s->account_id, v->id, v->uids[msns[0] - 1],
				  v->uids[msns[n - 1] - 1], &list, &count, &err) < 0) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=fetch_failed conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, err));
		return -1;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t uid = v->uids[msns[i] - 1];
		while (k < count && gn_store_message_uid(list[k]) < uid)
			k++;
		out[i] = k < count && gn_store_message_uid(list[k]) == uid ? list[k] : NULL;
	}
	return 0;
}

static void append_internaldate(struct gn_buf *b, time_t t)
{
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	gmtime_r(&t, &tm);
	(void)gn_buf_printf(b, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday, months[tm.tm_mon],
			    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void fetch_line(struct imap_session *s, size_t msn, const struct gn_store_message *m, int bits)
{
	struct gn_buf *b = gn_buf_new(0);
	const char *sep = "";
	(void)gn_buf_printf(b, "%zu FETCH (", msn);
	if (bits & F_UID) {
		(void)gn_buf_printf(b, "UID %u", (unsigned)gn_store_message_uid(m));
		sep = " ";
	}
	if (bits & F_FLAGS) {
		size_t nk;
		const char *const *kw = gn_store_message_keywords(m, &nk);
		(void)gn_buf_printf(b, "%sFLAGS ", sep);
		imap_append_flags(b, gn_store_message_flags(m), kw, nk);
		sep = " ";
	}
	if (bits & F_INTERNALDATE) {
		(void)gn_buf_printf(b, "%sINTERNALDATE ", sep);
		append_internaldate(b, gn_store_message_internal_date(m));
		sep = " ";
	}
	if (bits & F_SIZE)
		(void)gn_buf_printf(b, "%sRFC822.SIZE %llu", sep,
				    (unsigned long long)gn_store_message_size(m));
	(void)gn_buf_append(b, ")", 1);
	imap_untagged(s, "%s", gn_buf_data(b));
	gn_buf_free(&b);
}

static void fetch(struct imap_session *s, struct imap_command *cmd, const struct imap_arg *args,
		  unsigned count, bool uid)
{
	if (count != 2) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "FETCH takes a sequence set and items");
		return;
	}
	int bits = fetch_items(s, cmd, &args[1]);
	if (bits < 0)
		return;
	if (uid)
		bits |= F_UID;
	size_t n;
	size_t *msns = select_msns(s, cmd, &args[0], uid, &n);
	if (msns == NULL)
		return;
	struct gn_store_message **msgs;
	if (load_messages(s, msns, n, &msgs) < 0) {
		imap_tagged(s, cmd->tag, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (msgs[i] != NULL)
			fetch_line(s, msns[i], msgs[i], bits);
	imap_tagged(s, cmd->tag, "OK", NULL, "%sFETCH completed", uid ? "UID " : "");
}

void imap_cmd_fetch(struct imap_session *s, struct imap_command *cmd)
{
	fetch(s, cmd, cmd->args, cmd->count, false);
}

/* A flag list or a single flag: system flag bits and keywords.  -1 after
 * answering BAD. */
static int store_flags(struct imap_session *s, struct imap_command *cmd, const struct imap_arg *arg,
		       unsigned *flags_r, const char ***kw_r, size_t *nkw_r)
{
	static const struct {
		const char *name;
		unsigned bit;
	} sys[] = {
		{ "\\Seen", GN_STORE_SEEN }, { "\\Answered", GN_STORE_ANSWERED },
		{ "\\Flagged", GN_STORE_FLAGGED }, { "\\Deleted", GN_STORE_DELETED },
		{ "\\Draft", GN_STORE_DRAFT },
	};
	const struct imap_arg *items = arg;
	unsigned n = 1;
	if (arg->type == IMAP_ARG_LIST) {
		items = arg->list;
		n = arg->count;
	}
	const char **kw = gn_pool_alloc(s->cmd_pool, (n + 1) * sizeof(*kw));
	size_t nkw = 0;
	*flags_r = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct imap_arg *a = &items[i];
		if (a->type != IMAP_ARG_ATOM || strpbrk(a->str, "[%*") != NULL) {
			imap_tagged(s, cmd->tag, "BAD", NULL, "Flag expected");
			return -1;
		}
		bool found = false;
		for (size_t k = 0; k < sizeof(sys) / sizeof(sys[0]); k++) {
			if (strcasecmp(a->str, sys[k].name) == 0) {
				*flags_r |= sys[k].bit;
				found = true;
			}
		}
		if (found || strcasecmp(a->str, "\\Recent") == 0)
			continue;
		if (a->str[0] == '\\') {
			imap_tagged(s, cmd->tag, "BAD", NULL, "Unknown system flag %s", a->str);
			return -1;
		}
		kw[nkw++] = a->str;
	}
	*kw_r = kw;
	*nkw_r = nkw;
	return 0;
}

static void store(struct imap_session *s, struct imap_command *cmd, const struct imap_arg *args,
		  unsigned count, bool uid)
{
	if (count != 3 || args[1].type != IMAP_ARG_ATOM) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "STORE takes a sequence set, an item and flags");
		return;
	}
	const char *item = args[1].str;
	enum gn_store_flag_op op = GN_STORE_FLAGS_SET;
	if (*item == '+' || *item == '-') {
		op = *item == '+' ? GN_STORE_FLAGS_ADD : GN_STORE_FLAGS_REMOVE;
		item++;
	}
	bool silent = strcasecmp(item, "FLAGS.SILENT") == 0;
	if (!silent && strcasecmp(item, "FLAGS") != 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "STORE item must be FLAGS, +FLAGS or -FLAGS (.SILENT)");
		return;
	}
	unsigned flags;
	const char **kw;
	size_t nkw;
	if (store_flags(s, cmd, &args[2], &flags, &kw, &nkw) < 0)
		return;
	size_t n;
	size_t *msns = select_msns(s, cmd, &args[0], uid, &n);
	if (msns == NULL)
		return;
	if (s->sel->readonly) {
		imap_tagged(s, cmd->tag, "NO", "READ-ONLY", "The mailbox is read-only (EXAMINE)");
		return;
	}
	uint32_t *uids = gn_pool_alloc(s->cmd_pool, (n + 1) * sizeof(*uids));
	for (size_t i = 0; i < n; i++)
		uids[i] = s->sel->uids[msns[i] - 1];
	const char *err;
	if (n > 0 && gn_store_message_set_flags(s->cmd_pool, s->account_id, s->sel->id, uids, n, op, flags,
						kw, nkw, 0, NULL, NULL, NULL, &err) < 0) {
		if (gn_db_error_is_temporary()) {
			gn_log(GN_LOG_ERROR, IMAP_AREA, "event=store_failed conn=%s error=%s",
			       gn_conn_id(s->conn), gn_log_quote(0, err));
			imap_tagged(s, cmd->tag, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		} else {
			imap_tagged(s, cmd->tag, "NO", "CANNOT", "%s", err);
		}
		return;
	}
	/* The new flags of the messages stored to, unless .SILENT; changes
	 * made by others show at the next NOOP. */
	struct gn_store_message **msgs;
	if (load_messages(s, msns, n, &msgs) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (msgs[i] == NULL)
				continue;
			s->sel->modseqs[msns[i] - 1] = gn_store_message_modseq(msgs[i]);
			if (!silent)
				fetch_line(s, msns[i], msgs[i], F_FLAGS | (uid ? F_UID : 0));
		}
	}
	imap_tagged(s, cmd->tag, "OK", NULL, "%sSTORE completed", uid ? "UID " : "");
}

void imap_cmd_store(struct imap_session *s, struct imap_command *cmd)
{
	store(s, cmd, cmd->args, cmd->count, false);
}

void imap_cmd_uid(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count < 1 || cmd->args[0].type != IMAP_ARG_ATOM) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "UID takes a command");
		return;
	}
	if (imap_arg_atom_is(&cmd->args[0], "FETCH"))
		fetch(s, cmd, cmd->args + 1, cmd->count - 1, true);
	else if (imap_arg_atom_is(&cmd->args[0], "STORE"))
		store(s, cmd, cmd->args + 1, cmd->count - 1, true);
	else
		imap_tagged(s, cmd->tag, "BAD", NULL, "UID %s is not supported (yet)", cmd->args[0].str);
}
