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

#include <string.h>

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

void imap_cmd_create(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count != 1) {
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
	int r = gn_store_mailbox_create(s->cmd_pool, s->account_id, name, GN_STORE_SPECIAL_NONE, &mb, &err);
	if (r < 0)
		store_failed(s, cmd, err);
	else if (r == 0)
		imap_tagged(s, cmd->tag, "NO", "ALREADYEXISTS", "Mailbox exists");
	else
		imap_tagged(s, cmd->tag, "OK", NULL, "CREATE completed");
}

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

/* LIST's reference and pattern as one pattern in the store's form, or
 * NULL after answering.  *empty_r: the pattern was "" (the separator
 * query). */
static const char *list_pattern(struct imap_session *s, struct imap_command *cmd, bool *empty_r)
{
	const char *ref, *pat;
	size_t rlen, plen;
	const struct imap_arg *pa = &cmd->args[1];
	bool pat_ok = pa->type == IMAP_ARG_ATOM || pa->type == IMAP_ARG_NIL ||
		      imap_arg_string(pa, &pat, &plen);
	if (cmd->count != 2 || !imap_arg_astring(&cmd->args[0], &ref, &rlen) || !pat_ok) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "%s takes a reference and a pattern", cmd->name);
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

/* Whether names[i] has children among the sorted names. */
static bool has_children(struct gn_store_mailbox **list, size_t count, size_t i)
{
	const char *name = gn_store_mailbox_name(list[i]);
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
	imap_append_string(b, wire, strlen(wire));
	imap_untagged(s, "%s", gn_buf_data(b));
	gn_buf_free(&b);
}

void imap_cmd_list(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count > 0 && cmd->args[0].type == IMAP_ARG_LIST) {
		/* LIST-EXTENDED is not offered. */
		imap_tagged(s, cmd->tag, "BAD", NULL, "LIST selection options are not supported");
		return;
	}
	bool empty;
	const char *pattern = cmd->count == 2 ? list_pattern(s, cmd, &empty) : NULL;
	if (cmd->count != 2) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "LIST takes a reference and a pattern");
		return;
	}
	if (pattern == NULL)
		return;
	if (empty) {
		imap_untagged(s, "LIST (\\Noselect) \"/\" \"\"");
		imap_tagged(s, cmd->tag, "OK", NULL, "LIST completed");
		return;
	}
	struct gn_store_mailbox **list;
	size_t count;
	const char *err;
	if (gn_store_mailbox_list(s->cmd_pool, s->account_id, &list, &count, &err) < 0) {
		store_failed(s, cmd, err);
		return;
	}
	for (size_t i = 0; i < count; i++) {
		const char *name = gn_store_mailbox_name(list[i]);
		if (!imap_pattern_match(pattern, name))
			continue;
		const char *use = gn_store_special_use_name(gn_store_mailbox_special_use(list[i]));
		const char *attrs = gn_pool_printf(s->cmd_pool, "%s%s%s",
						   has_children(list, count, i) ? "\\HasChildren" : "\\HasNoChildren",
						   use != NULL ? " " : "", use != NULL ? use : "");
		list_line(s, "LIST", attrs, name);
	}
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
	if (cmd->count != 2 || cmd->args[1].type != IMAP_ARG_LIST || cmd->args[1].count == 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "STATUS takes a mailbox name and a list of items");
		return;
	}
	const char *name = mailbox_arg(s, cmd, &cmd->args[0]), *err;
	if (name == NULL)
		return;
	const struct imap_arg *items = &cmd->args[1];
	for (unsigned i = 0; i < items->count; i++) {
		const struct imap_arg *a = &items->list[i];
		if (!imap_arg_atom_is(a, "MESSAGES") && !imap_arg_atom_is(a, "UIDNEXT") &&
		    !imap_arg_atom_is(a, "UIDVALIDITY") && !imap_arg_atom_is(a, "UNSEEN") &&
		    !imap_arg_atom_is(a, "DELETED") && !imap_arg_atom_is(a, "SIZE") &&
		    !imap_arg_atom_is(a, "RECENT") && !imap_arg_atom_is(a, "APPENDLIMIT")) {
			imap_tagged(s, cmd->tag, "BAD", NULL, "Unknown STATUS item");
			return;
		}
	}
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
	struct gn_buf *b = gn_buf_new(0);
	(void)gn_buf_append_str(b, "STATUS ");
	const char *wire = imap_name_to_wire(s, s->cmd_pool, gn_store_mailbox_name(mb));
	imap_append_string(b, wire, strlen(wire));
	(void)gn_buf_append_str(b, " (");
	for (unsigned i = 0; i < items->count; i++) {
		const struct imap_arg *a = &items->list[i];
		unsigned long long v = 0;
		if (imap_arg_atom_is(a, "MESSAGES"))
			v = gn_store_mailbox_messages(mb);
		else if (imap_arg_atom_is(a, "UIDNEXT"))
			v = gn_store_mailbox_uidnext(mb);
		else if (imap_arg_atom_is(a, "UIDVALIDITY"))
			v = gn_store_mailbox_uidvalidity(mb);
		else if (imap_arg_atom_is(a, "UNSEEN"))
			v = gn_store_mailbox_unseen(mb);
		else if (imap_arg_atom_is(a, "DELETED"))
			v = gn_store_mailbox_deleted(mb);
		else if (imap_arg_atom_is(a, "SIZE"))
			v = gn_store_mailbox_size(mb);
		/* RECENT: IMAP4rev2 has no \Recent; always 0. */
		/* RFC 7889 4: the same limit for every mailbox. */
		else if (imap_arg_atom_is(a, "APPENDLIMIT"))
			v = imap_settings.max_message;
		char *item = gn_pool_strdup(s->cmd_pool, a->str);
		for (char *p = item; *p != '\0'; p++)
			*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		(void)gn_buf_printf(b, "%s%s %llu", i > 0 ? " " : "", item, v);
	}
	(void)gn_buf_append_str(b, ")");
	imap_untagged(s, "%s", gn_buf_data(b));
	gn_buf_free(&b);
	imap_tagged(s, cmd->tag, "OK", NULL, "STATUS completed");
}
