/*
 * modules/imap/cmd-mailbox.c: managing mailboxes in the authenticated
 * state (RFC 9051 6.3): NAMESPACE (RFC 2342), CREATE, DELETE, RENAME,
 * SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB (IMAP4rev1) and STATUS, on the
 * store's mailboxes (gannet/store.h).
 *
 * Names travel in modified UTF-7 (mailbox-name.c); the separator is "/".
 * Failures carry RFC 5530's response codes: NONEXISTENT, ALREADYEXISTS,
 * CANNOT, and UNAVAILABLE for a database failure.
 */
#include "imap.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* LIST patterns longer than this are refused (the matcher's work is their
 * length times the name's). */
#define IMAP_PATTERN_MAX 512

/* The mailbox argument in the store's form, or NULL after answering BAD
 * or NO. */
static const char *mailbox_arg(struct imap_session *s, struct imap_command *cmd,
			       const struct imap_arg *arg)
{
	const char *wire, *name, *err;
	size_t len;
	if (!imap_arg_astring(arg, &wire, &len) || strlen(wire) != len) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "%s: mailbox name expected", cmd->name);
		return NULL;
	}
	const char *store = imap_name_from_wire(s, s->cmd_pool, wire);
	if (store == NULL) {
		imap_tagged(s, cmd->tag, "NO", "CANNOT", "Mailbox name is not valid modified UTF-7");
		return NULL;
	}
	if (gn_store_mailbox_name_check(s->cmd_pool, store, &name, &err) < 0) {
		imap_tagged(s, cmd->tag, "NO", "CANNOT", "Bad mailbox name: %s", err);
		return NULL;
	}
	return name;
}

/* A store error as the tagged NO: a database failure is UNAVAILABLE
 * (logged), the rest CANNOT with the store's words. */
static void store_failed(struct imap_session *s, struct imap_command *cmd, const char *err)
{
	if (gn_db_error_is_temporary()) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=store_error conn=%s command=%s error=%s",
		       gn_conn_id(s->conn), cmd->name, gn_log_quote(0, err));
		imap_tagged(s, cmd->tag, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		return;
	}
	imap_tagged(s, cmd->tag, "NO", "CANNOT", "%s", err);
}

void imap_cmd_namespace(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count != 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "NAMESPACE takes no arguments");
		return;
	}
	imap_untagged(s, "NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_tagged(s, cmd->tag, "OK", NULL, "NAMESPACE completed");
}

/* "\\Sent" ... (any case) to the store's value; NONE when unknown. */
static enum gn_store_special_use special_use_from_name(const char *name)
{
	for (int u = GN_STORE_SPECIAL_SENT; u <= GN_STORE_SPECIAL_ARCHIVE; u++) {
		const char *n = gn_store_special_use_name((enum gn_store_special_use)u);
		if (n != NULL && strcasecmp(n, name) == 0)
			return (enum gn_store_special_use)u;
	}
	return GN_STORE_SPECIAL_NONE;
}

void imap_cmd_create(struct imap_session *s, struct imap_command *cmd)
{
	/* RFC 6154 3: CREATE name (USE (\\Attr)), one attribute here. */
	enum gn_store_special_use use = GN_STORE_SPECIAL_NONE;
	if (cmd->count == 2) {
		const struct imap_arg *p = &cmd->args[1];
		if (p->type != IMAP_ARG_LIST || p->count != 2 || !imap_arg_atom_is(&p->list[0], "USE") ||
		    p->list[1].type != IMAP_ARG_LIST) {
			imap_tagged(s, cmd->tag, "BAD", NULL, "CREATE parameters: (USE (attributes))");
			return;
		}
		const struct imap_arg *attrs = &p->list[1];
		if (attrs->count > 1) {
			imap_tagged(s, cmd->tag, "NO", "USEATTR", "One special-use attribute per mailbox");
			return;
		}
		for (unsigned k = 0; k < attrs->count; k++) {
			use = special_use_from_name(attrs->list[k].type == IMAP_ARG_ATOM ? attrs->list[k].str : "");
			if (use == GN_STORE_SPECIAL_NONE) {
				imap_tagged(s, cmd->tag, "NO", "USEATTR", "Unknown special-use attribute");
				return;
			}
		}
	} else if (cmd->count != 1) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "CREATE takes a mailbox name");
		return;
	}
	/* A trailing separator only says the name will have children
	 * (RFC 9051 6.3.4). */
	struct imap_arg arg = cmd->args[0];
	if (arg.len > 1 && arg.str[arg.len - 1] == GN_STORE_MAILBOX_SEP) {
		arg.str = gn_pool_strndup(s->cmd_pool, arg.str, arg.len - 1);
		arg.len--;
	}
	const char *name = mailbox_arg(s, cmd, &arg), *err;
	if (name == NULL)
		return;
	struct gn_store_mailbox *mb;
	int r = gn_store_mailbox_create(s->cmd_pool, s->account_id, name, use, &mb, &err);
	if (r < 0)
		store_failed(s, cmd, err);
	else if (r == 0)
		imap_tagged(s, cmd->tag, "NO", "ALREADYEXISTS", "Mailbox exists");
	else
		imap_tagged(s, cmd->tag, "OK", NULL, "CREATE completed");
}

static bool has_children(struct gn_store_mailbox **list, size_t count, const char *name);

void imap_cmd_delete(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count != 1) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "DELETE takes a mailbox name");
		return;
	}
	const char *name = mailbox_arg(s, cmd, &cmd->args[0]), *err;
	if (name == NULL)
		return;
	if (strcmp(name, "Inbox") == 0) {
		imap_tagged(s, cmd->tag, "NO", "CANNOT", "INBOX cannot be deleted");
		return;
	}
	/* RFC 9051 6.3.4: a server that does not keep a deleted name with
	 * children as \Noselect refuses, with [HASCHILDREN].  The store
	 * keeps no such names, and a child without its parent would be
	 * missing from LIST "" "%". */
	struct gn_store_mailbox **list;
	size_t count;
	if (gn_store_mailbox_list(s->cmd_pool, s->account_id, &list, &count, &err) < 0) {
		store_failed(s, cmd, err);
		return;
	}
	if (has_children(list, count, name)) {
		imap_tagged(s, cmd->tag, "NO", "HASCHILDREN", "Delete the mailboxes below it first");
		return;
	}
	int r = gn_store_mailbox_delete(s->account_id, name, &err);
	if (r < 0)
		store_failed(s, cmd, err);
	else if (r == 0)
		imap_tagged(s, cmd->tag, "NO", "NONEXISTENT", "No such mailbox");
	else
		imap_tagged(s, cmd->tag, "OK", NULL, "DELETE completed");
}

void imap_cmd_rename(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count != 2) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "RENAME takes two mailbox names");
		return;
	}
	const char *from = mailbox_arg(s, cmd, &cmd->args[0]), *to = NULL, *err;
	if (from == NULL || (to = mailbox_arg(s, cmd, &cmd->args[1])) == NULL)
		return;
	struct gn_store_mailbox *mb;
	int r = gn_store_mailbox_find(s->cmd_pool, s->account_id, to, &mb, &err);
	if (r > 0) {
		imap_tagged(s, cmd->tag, "NO", "ALREADYEXISTS", "Mailbox exists");
		return;
	}
	r = r < 0 ? r : gn_store_mailbox_rename(s->account_id, from, to, &err);
	if (r < 0)
		store_failed(s, cmd, err);
	else if (r == 0)
		imap_tagged(s, cmd->tag, "NO", "NONEXISTENT", "No such mailbox");
	else
		imap_tagged(s, cmd->tag, "OK", NULL, "RENAME completed");
}

static void subscription(struct imap_session *s, struct imap_command *cmd, bool on)
{
	if (cmd->count != 1) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "%s takes a mailbox name", cmd->name);
		return;
	}
	const char *name = mailbox_arg(s, cmd, &cmd->args[0]), *err;
	if (name == NULL)
		return;
	int r = on ? gn_store_subscribe(s->account_id, name, &err) :
		     gn_store_unsubscribe(s->account_id, name, &err);
	if (r < 0)
		store_failed(s, cmd, err);
	else
		imap_tagged(s, cmd->tag, "OK", NULL, "%s completed", cmd->name);
}

void imap_cmd_subscribe(struct imap_session *s, struct imap_command *cmd)
{
	subscription(s, cmd, true);
}

void imap_cmd_unsubscribe(struct imap_session *s, struct imap_command *cmd)
{
	subscription(s, cmd, false);
}

/* The STATUS items the server answers itself (RFC 9051 6.3.11, RFC 8438
 * SIZE; RECENT for IMAP4rev1 clients, always 0: no \\Recent is kept; RFC
 * 7162 3.1.7 HIGHESTMODSEQ). */
static const char *const status_builtin[] = {
	"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "RECENT", "APPENDLIMIT",
	"HIGHESTMODSEQ",
};

bool imap_status_item_builtin(const char *name)
{
	for (size_t i = 0; i < sizeof(status_builtin) / sizeof(status_builtin[0]); i++)
		if (strcasecmp(status_builtin[i], name) == 0)
			return true;
	return false;
}

/* Checks a STATUS item list; BAD and false when an item is unknown. */
static bool status_items_check(struct imap_session *s, struct imap_command *cmd, const struct imap_arg *items)
{
	if (items->type != IMAP_ARG_LIST || items->count == 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "STATUS items are a parenthesised list");
		return false;
	}
	for (unsigned i = 0; i < items->count; i++) {
		const struct imap_arg *a = &items->list[i];
		if (a->type != IMAP_ARG_ATOM ||
		    (!imap_status_item_builtin(a->str) && imap_service_status_item(imap_upper(s->cmd_pool, a->str)) == NULL)) {
			imap_tagged(s, cmd->tag, "BAD", NULL, "Unknown STATUS item");
			return false;
		}
	}
	/* RFC 7162 3.1: STATUS (HIGHESTMODSEQ) enables CONDSTORE. */
	for (unsigned i = 0; i < items->count; i++)
		if (imap_arg_atom_is(&items->list[i], "HIGHESTMODSEQ"))
			imap_condstore_enable(s);
	return true;
}

/* "* STATUS name (ITEM n ...)" for a mailbox.  0, or -1 when an
 * extension's item failed (it logged why). */
static int status_line(struct imap_session *s, const struct gn_store_mailbox *mb, const struct imap_arg *items)
{
	struct gn_buf *b = gn_buf_new(0);
	(void)gn_buf_append_str(b, "STATUS ");
	const char *wire = imap_name_to_wire(s, s->cmd_pool, gn_store_mailbox_name(mb));
	imap_append_session_string(s, b, wire, strlen(wire));
	(void)gn_buf_append_str(b, " (");
	for (unsigned i = 0; i < items->count; i++) {
		const char *item = imap_upper(s->cmd_pool, items->list[i].str);
		uint64_t v = 0;
		if (strcmp(item, "MESSAGES") == 0)
			v = gn_store_mailbox_messages(mb);
		else if (strcmp(item, "UIDNEXT") == 0)
			v = gn_store_mailbox_uidnext(mb);
		else if (strcmp(item, "UIDVALIDITY") == 0)
			v = gn_store_mailbox_uidvalidity(mb);
		else if (strcmp(item, "UNSEEN") == 0)
			v = gn_store_mailbox_unseen(mb);
		else if (strcmp(item, "DELETED") == 0)
			v = gn_store_mailbox_deleted(mb);
		else if (strcmp(item, "SIZE") == 0)
			v = gn_store_mailbox_size(mb);
		else if (strcmp(item, "RECENT") == 0)
			v = 0;
		else if (strcmp(item, "APPENDLIMIT") == 0)
			v = imap_settings.max_message;	/* RFC 7889 4: the same for every mailbox */
		else if (strcmp(item, "HIGHESTMODSEQ") == 0)
			v = gn_store_mailbox_highestmodseq(mb);
		else if (imap_service_status_value(s, imap_service_status_item(item), gn_store_mailbox_id(mb),
						   &v) < 0) {
			gn_buf_free(&b);
			return -1;
		}
		(void)gn_buf_printf(b, "%s%s %llu", i > 0 ? " " : "", item, (unsigned long long)v);
	}
	(void)gn_buf_append_str(b, ")");
	imap_untagged(s, "%s", gn_buf_data(b));
	gn_buf_free(&b);
	return 0;
}

/* A reference joined with a pattern, in the store's form; NULL after
 * answering.  A pattern of "" is the separator query (*empty_r). */
static const char *join_pattern(struct imap_session *s, struct imap_command *cmd, const char *ref,
				size_t rlen, const struct imap_arg *pa, bool *empty_r)
{
	const char *pat;
	size_t plen;
	if (pa->type != IMAP_ARG_ATOM && !imap_arg_string(pa, &pat, &plen)) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "%s: a pattern is an atom or a string", cmd->name);
		return NULL;
	}
	pat = pa->str;
	plen = pa->len;
	*empty_r = plen == 0;
	if (rlen + plen > IMAP_PATTERN_MAX || strlen(ref) != rlen || strlen(pat) != plen) {
		imap_tagged(s, cmd->tag, "BAD", "LIMIT", "Pattern too long");
		return NULL;
	}
	const char *joined = gn_pool_printf(s->cmd_pool, "%s%s", ref, pat);
	const char *store = imap_name_from_wire(s, s->cmd_pool, joined);
	if (store == NULL)
		imap_tagged(s, cmd->tag, "NO", "CANNOT", "Pattern is not valid modified UTF-7");
	return store;
}

/* LSUB's reference and pattern as one pattern in the store's form, or
 * NULL after answering. */
static const char *list_pattern(struct imap_session *s, struct imap_command *cmd, bool *empty_r)
{
	const char *ref;
	size_t rlen;
	if (cmd->count != 2 || !imap_arg_astring(&cmd->args[0], &ref, &rlen)) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "%s takes a reference and a pattern", cmd->name);
		return NULL;
	}
	return join_pattern(s, cmd, ref, rlen, &cmd->args[1], empty_r);
}

/* Whether name has children among the sorted names. */
static bool has_children(struct gn_store_mailbox **list, size_t count, const char *name)
{
	size_t n = strlen(name);
	for (size_t k = 0; k < count; k++) {
		const char *other = gn_store_mailbox_name(list[k]);
		if (strncmp(other, name, n) == 0 && other[n] == GN_STORE_MAILBOX_SEP)
			return true;
	}
	return false;
}

static void list_line(struct imap_session *s, const char *kind, const char *attrs, const char *store_name)
{
	struct gn_buf *b = gn_buf_new(0);
	(void)gn_buf_printf(b, "%s (%s) \"/\" ", kind, attrs);
	const char *wire = imap_name_to_wire(s, s->cmd_pool, store_name);
	imap_append_session_string(s, b, wire, strlen(wire));
	imap_untagged(s, "%s", gn_buf_data(b));
	gn_buf_free(&b);
}

/* LIST (RFC 9051 6.3.9, which takes in LIST-EXTENDED RFC 5258), with
 * LIST-STATUS (RFC 5819) and SPECIAL-USE (RFC 6154). */
struct list_opts {
	bool sel_subscribed, sel_special, recursive;
	bool ret_subscribed, ret_children, ret_special;
	const struct imap_arg *ret_status;	/* STATUS items, or NULL */
	const char **patterns;
	size_t n_patterns;
	bool separator_query;
};

static bool parse_list_opts(struct imap_session *s, struct imap_command *cmd, struct list_opts *o)
{
	unsigned i = 0;
	memset(o, 0, sizeof(*o));
	if (cmd->count > 0 && cmd->args[0].type == IMAP_ARG_LIST) {
		const struct imap_arg *sel = &cmd->args[i++];
		for (unsigned k = 0; k < sel->count; k++) {
			const struct imap_arg *a = &sel->list[k];
			if (imap_arg_atom_is(a, "SUBSCRIBED"))
				o->sel_subscribed = true;
			else if (imap_arg_atom_is(a, "SPECIAL-USE"))
				o->sel_special = true;
			else if (imap_arg_atom_is(a, "RECURSIVEMATCH"))
				o->recursive = true;
			else if (!imap_arg_atom_is(a, "REMOTE")) {
				/* RFC 5258 3: an unknown selection option is BAD. */
				imap_tagged(s, cmd->tag, "BAD", NULL, "Unknown LIST selection option");
				return false;
			}
		}
		/* RFC 5258 3: RECURSIVEMATCH alone is BAD. */
		if (o->recursive && !o->sel_subscribed && !o->sel_special) {
			imap_tagged(s, cmd->tag, "BAD", NULL, "RECURSIVEMATCH needs another selection option");
			return false;
		}
	}
	const char *ref;
	size_t rlen;
	if (cmd->count < i + 2 || !imap_arg_astring(&cmd->args[i], &ref, &rlen)) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "LIST takes a reference and a pattern");
		return false;
	}
	const struct imap_arg *pa = &cmd->args[i + 1];
	const struct imap_arg *pats = pa->type == IMAP_ARG_LIST ? pa->list : pa;
	size_t npats = pa->type == IMAP_ARG_LIST ? pa->count : 1;
	if (npats == 0 || npats > 64) {
		imap_tagged(s, cmd->tag, "BAD", npats > 64 ? "LIMIT" : NULL, "LIST takes 1 to 64 patterns");
		return false;
	}
	o->patterns = gn_pool_alloc(s->cmd_pool, npats * sizeof(*o->patterns));
	for (size_t k = 0; k < npats; k++) {
		bool empty;
		o->patterns[k] = join_pattern(s, cmd, ref, rlen, &pats[k], &empty);
		if (o->patterns[k] == NULL)
			return false;
		if (empty && npats == 1 && !o->sel_subscribed && !o->sel_special)
			o->separator_query = true;
	}
	o->n_patterns = npats;
	i += 2;
	if (i < cmd->count) {
		if (i + 2 != cmd->count || !imap_arg_atom_is(&cmd->args[i], "RETURN") ||
		    cmd->args[i + 1].type != IMAP_ARG_LIST) {
			imap_tagged(s, cmd->tag, "BAD", NULL, "LIST: RETURN (options) expected after the patterns");
			return false;
		}
		const struct imap_arg *ret = &cmd->args[i + 1];
		for (unsigned k = 0; k < ret->count; k++) {
			const struct imap_arg *a = &ret->list[k];
			if (imap_arg_atom_is(a, "SUBSCRIBED"))
				o->ret_subscribed = true;
			else if (imap_arg_atom_is(a, "CHILDREN"))
				o->ret_children = true;
			else if (imap_arg_atom_is(a, "SPECIAL-USE"))
				o->ret_special = true;
			else if (imap_arg_atom_is(a, "STATUS") && k + 1 < ret->count) {
				o->ret_status = &ret->list[++k];
				if (!status_items_check(s, cmd, o->ret_status))
					return false;
			} else {
				imap_tagged(s, cmd->tag, "BAD", NULL, "Unknown LIST return option");
				return false;
			}
		}
	}
	/* RFC 5258 3: SUBSCRIBED selection implies SUBSCRIBED return. */
	if (o->sel_subscribed)
		o->ret_subscribed = true;
	return true;
}

static bool match_any(const struct list_opts *o, const char *name)
{
	for (size_t k = 0; k < o->n_patterns; k++)
		if (imap_pattern_match(o->patterns[k], name))
			return true;
	return false;
}

static bool name_in(const char *const *names, size_t n, const char *name)
{
	for (size_t k = 0; k < n; k++)
		if (strcmp(names[k], name) == 0)
			return true;
	return false;
}

/* Whether a name below name (a descendant) is in names. */
static bool child_in(const char *const *names, size_t n, const char *name)
{
	size_t len = strlen(name);
	for (size_t k = 0; k < n; k++)
		if (strncmp(names[k], name, len) == 0 && names[k][len] == GN_STORE_MAILBOX_SEP)
			return true;
	return false;
}

static struct gn_store_mailbox *find_in(struct gn_store_mailbox **list, size_t count, const char *name)
{
	for (size_t k = 0; k < count; k++)
		if (strcmp(gn_store_mailbox_name(list[k]), name) == 0)
			return list[k];
	return NULL;
}

/* One LIST answer for name (mb NULL: it does not exist), and its STATUS
 * when asked.  childinfo: RFC 5258 CHILDINFO ("SUBSCRIBED"). */
static int list_answer(struct imap_session *s, const struct list_opts *o, struct gn_store_mailbox **list,
		       size_t count, const char *const *subs, size_t n_subs, const char *name,
		       struct gn_store_mailbox *mb, bool childinfo)
{
	struct gn_buf *attrs = gn_buf_new(0);
	if (mb == NULL)
		(void)gn_buf_append_str(attrs, " \\NonExistent");
	(void)gn_buf_append_str(attrs, has_children(list, count, name) ? " \\HasChildren" : " \\HasNoChildren");
	if (o->ret_subscribed && name_in(subs, n_subs, name))
		(void)gn_buf_append_str(attrs, " \\Subscribed");
	const char *use = mb != NULL ? gn_store_special_use_name(gn_store_mailbox_special_use(mb)) : NULL;
	if (use != NULL)
		(void)gn_buf_printf(attrs, " %s", use);
	struct gn_buf *b = gn_buf_new(0);
	(void)gn_buf_printf(b, "LIST (%s) \"/\" ", gn_buf_data(attrs) + 1);
	const char *wire = imap_name_to_wire(s, s->cmd_pool, name);
	imap_append_session_string(s, b, wire, strlen(wire));
	if (childinfo)
		(void)gn_buf_append_str(b, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	imap_untagged(s, "%s", gn_buf_data(b));
	gn_buf_free(&b);
	gn_buf_free(&attrs);
	/* RFC 5819: STATUS follows the LIST of each selectable mailbox. */
	if (o->ret_status != NULL && mb != NULL)
		return status_line(s, mb, o->ret_status);
	return 0;
}

static int strptr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* RFC 9051 6.3.9: with "%" last in a pattern, the levels of hierarchy it
 * matches are returned even where no mailbox has that name (a parent
 * deleted, or made by another path than CREATE, which makes parents):
 * \NonExistent (which implies \Noselect, 7.3.1) for IMAP4rev2 and for
 * LIST-EXTENDED's return options, \Noselect for the rest of IMAP4rev1.
 * Always \HasChildren. */
static void list_missing_parents(struct imap_session *s, const struct list_opts *o,
				 struct gn_store_mailbox **list, size_t count)
{
	bool percent = false;
	for (size_t k = 0; k < o->n_patterns; k++) {
		size_t len = strlen(o->patterns[k]);
		if (len > 0 && o->patterns[k][len - 1] == '%')
			percent = true;
	}
	if (!percent || count == 0)
		return;
	const char **names = gn_pool_alloc(s->cmd_pool, count * sizeof(*names));
	for (size_t i = 0; i < count; i++)
		names[i] = gn_store_mailbox_name(list[i]);
	qsort(names, count, sizeof(*names), strptr_cmp);
	/* Every proper ancestor of every name, the ones that exist left out. */
	size_t cap = 16, n = 0;
	const char **parents = gn_pool_alloc(s->cmd_pool, cap * sizeof(*parents));
	for (size_t i = 0; i < count; i++) {
		for (const char *sep = strchr(names[i], GN_STORE_MAILBOX_SEP); sep != NULL;
		     sep = strchr(sep + 1, GN_STORE_MAILBOX_SEP)) {
			const char *parent = gn_pool_strndup(s->cmd_pool, names[i], (size_t)(sep - names[i]));
			if (bsearch(&parent, names, count, sizeof(*names), strptr_cmp) != NULL)
				continue;
			if (n == cap) {
				const char **more = gn_pool_alloc(s->cmd_pool, 2 * cap * sizeof(*more));
				memcpy(more, parents, n * sizeof(*more));
				parents = more;
				cap *= 2;
			}
			parents[n++] = parent;
		}
	}
	if (n == 0)
		return;
	qsort(parents, n, sizeof(*parents), strptr_cmp);
	bool extended = s->enabled_rev2 || o->ret_subscribed || o->ret_children || o->ret_status != NULL;
	for (size_t k = 0; k < n; k++) {
		if (k > 0 && strcmp(parents[k], parents[k - 1]) == 0)
			continue;
		bool match = false;
		for (size_t j = 0; j < o->n_patterns && !match; j++) {
			size_t len = strlen(o->patterns[j]);
			match = len > 0 && o->patterns[j][len - 1] == '%' && imap_pattern_match(o->patterns[j], parents[k]);
		}
		if (!match)
			continue;
		struct gn_buf *b = gn_buf_new(0);
		(void)gn_buf_printf(b, "LIST (%s \\HasChildren) \"/\" ",
				    extended ? "\\NonExistent" : "\\Noselect");
		const char *wire = imap_name_to_wire(s, s->cmd_pool, parents[k]);
		imap_append_session_string(s, b, wire, strlen(wire));
		imap_untagged(s, "%s", gn_buf_data(b));
		gn_buf_free(&b);
	}
}

void imap_cmd_list(struct imap_session *s, struct imap_command *cmd)
{
	struct list_opts o;
	if (!parse_list_opts(s, cmd, &o))
		return;
	if (o.separator_query) {
		imap_untagged(s, "LIST (\\Noselect) \"/\" \"\"");
		imap_tagged(s, cmd->tag, "OK", NULL, "LIST completed");
		return;
	}
	struct gn_store_mailbox **list;
	size_t count, n_subs = 0;
	const char **subs = NULL;
	const char *err;
	if (gn_store_mailbox_list(s->cmd_pool, s->account_id, &list, &count, &err) < 0 ||
	    ((o.ret_subscribed || o.sel_subscribed) &&
	     gn_store_subscription_list(s->cmd_pool, s->account_id, &subs, &n_subs, &err) < 0)) {
		store_failed(s, cmd, err);
		return;
	}
	int failed = 0;
	if (o.sel_subscribed) {
		/* Subscribed names (existing or not) that match, and with
		 * RECURSIVEMATCH the matching mailboxes that are not
		 * subscribed but have a subscribed descendant. */
		for (size_t i = 0; i < count; i++) {
			const char *name = gn_store_mailbox_name(list[i]);
			if (!match_any(&o, name) || (o.sel_special && gn_store_mailbox_special_use(list[i]) ==
								      GN_STORE_SPECIAL_NONE))
				continue;
			bool sub = name_in(subs, n_subs, name);
			bool child = o.recursive && child_in(subs, n_subs, name);
			if (sub || child)
				failed |= list_answer(s, &o, list, count, subs, n_subs, name, list[i], child);
		}
		for (size_t k = 0; k < n_subs && !o.sel_special; k++)
			if (find_in(list, count, subs[k]) == NULL && match_any(&o, subs[k]))
				failed |= list_answer(s, &o, list, count, subs, n_subs, subs[k], NULL,
						      o.recursive && child_in(subs, n_subs, subs[k]));
	} else {
		for (size_t i = 0; i < count; i++) {
			const char *name = gn_store_mailbox_name(list[i]);
			if (!match_any(&o, name))
				continue;
			if (o.sel_special && gn_store_mailbox_special_use(list[i]) == GN_STORE_SPECIAL_NONE)
				continue;
			failed |= list_answer(s, &o, list, count, subs, n_subs, name, list[i], false);
		}
		if (!o.sel_special)
			list_missing_parents(s, &o, list, count);
	}
	if (failed)
		imap_tagged(s, cmd->tag, "NO", "SERVERBUG", "LIST completed without some STATUS items");
	else
		imap_tagged(s, cmd->tag, "OK", NULL, "LIST completed");
}

void imap_cmd_lsub(struct imap_session *s, struct imap_command *cmd)
{
	bool empty;
	const char *pattern = cmd->count == 2 ? list_pattern(s, cmd, &empty) : NULL;
	if (cmd->count != 2) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "LSUB takes a reference and a pattern");
		return;
	}
	if (pattern == NULL)
		return;
	const char **names;
	size_t count;
	const char *err;
	if (!empty && gn_store_subscription_list(s->cmd_pool, s->account_id, &names, &count, &err) < 0) {
		store_failed(s, cmd, err);
		return;
	}
	for (size_t i = 0; !empty && i < count; i++)
		if (imap_pattern_match(pattern, names[i]))
			list_line(s, "LSUB", "", names[i]);
	imap_tagged(s, cmd->tag, "OK", NULL, "LSUB completed");
}

void imap_cmd_status(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count != 2) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "STATUS takes a mailbox name and a list of items");
		return;
	}
	if (!status_items_check(s, cmd, &cmd->args[1]))
		return;
	const char *name = mailbox_arg(s, cmd, &cmd->args[0]), *err;
	if (name == NULL)
		return;
	struct gn_store_mailbox *mb;
	int r = gn_store_mailbox_find(s->cmd_pool, s->account_id, name, &mb, &err);
	if (r < 0) {
		store_failed(s, cmd, err);
		return;
	}
	if (r == 0) {
		imap_tagged(s, cmd->tag, "NO", "NONEXISTENT", "No such mailbox");
		return;
	}
	if (status_line(s, mb, &cmd->args[1]) < 0) {
		imap_tagged(s, cmd->tag, "NO", "SERVERBUG", "STATUS failed");
		return;
	}
	imap_tagged(s, cmd->tag, "OK", NULL, "STATUS completed");
}
