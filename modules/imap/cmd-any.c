/*
 * modules/imap/cmd-any.c: CAPABILITY, NOOP, LOGOUT (RFC 9051 6.1), ID
 * (RFC 2971) and ENABLE (RFC 5161).
 */
#include "imap.h"

#include <string.h>

/* RFC 2971 3.3: at most 30 pairs, names of at most 30 octets, values of
 * at most 1024. */
#define ID_MAX_PAIRS 30
#define ID_MAX_NAME 30
#define ID_MAX_VALUE 1024

static bool no_args(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count == 0)
		return true;
	imap_tagged(s, cmd->tag, "BAD", NULL, "%s takes no arguments", cmd->name);
	return false;
}

void imap_cmd_capability(struct imap_session *s, struct imap_command *cmd)
{
	if (!no_args(s, cmd))
		return;
	imap_untagged(s, "CAPABILITY %s", imap_capabilities(s, s->cmd_pool));
	imap_tagged(s, cmd->tag, "OK", NULL, "CAPABILITY completed");
}

void imap_cmd_noop(struct imap_session *s, struct imap_command *cmd)
{
	if (!no_args(s, cmd))
		return;
	/* In a mailbox: what changed since the client last heard. */
	(void)imap_refresh(s);
	imap_tagged(s, cmd->tag, "OK", NULL, "NOOP completed");
}

void imap_cmd_logout(struct imap_session *s, struct imap_command *cmd)
{
	if (!no_args(s, cmd))
		return;
	imap_untagged(s, "BYE Logging out");
	imap_tagged(s, cmd->tag, "OK", NULL, "LOGOUT completed");
	s->state = IMAP_LOGOUT;
	gn_conn_close(s->conn, "logout");
}

void imap_cmd_id(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count != 1 || (cmd->args[0].type != IMAP_ARG_NIL && cmd->args[0].type != IMAP_ARG_LIST)) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "ID takes NIL or a list of names and values");
		return;
	}
	const struct imap_arg *l = &cmd->args[0];
	if (l->type == IMAP_ARG_LIST) {
		if (l->count % 2 != 0 || l->count / 2 > ID_MAX_PAIRS) {
			imap_tagged(s, cmd->tag, "BAD", NULL, "ID takes up to %d pairs of names and values",
				    ID_MAX_PAIRS);
			return;
		}
		struct gn_buf *b = gn_buf_new(0);
		for (unsigned i = 0; i < l->count; i += 2) {
			const char *name, *value = NULL;
			size_t nlen, vlen = 0;
			if (!imap_arg_string(&l->list[i], &name, &nlen) || nlen > ID_MAX_NAME ||
			    (l->list[i + 1].type != IMAP_ARG_NIL &&
			     (!imap_arg_string(&l->list[i + 1], &value, &vlen) || vlen > ID_MAX_VALUE))) {
				gn_buf_free(&b);
				imap_tagged(s, cmd->tag, "BAD", NULL, "ID: names are strings of up to %d octets, "
					    "values strings of up to %d or NIL", ID_MAX_NAME, ID_MAX_VALUE);
				return;
			}
			if (strcasecmp(name, "name") == 0 || strcasecmp(name, "version") == 0 ||
			    strcasecmp(name, "os") == 0 || strcasecmp(name, "vendor") == 0)
				(void)gn_buf_printf(b, " %s=%s", name, gn_log_quote(0, value != NULL ? value : ""));
		}
		gn_log(GN_LOG_INFO, IMAP_AREA, "event=client_id conn=%s%s", gn_conn_id(s->conn),
		       gn_buf_data(b));
		gn_buf_free(&b);
	}
	/* No version: what runs here is nobody's business but the admin's. */
	imap_untagged(s, "ID (\"name\" \"Gannet\")");
	imap_tagged(s, cmd->tag, "OK", NULL, "ID completed");
}

void imap_cmd_enable(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count == 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "ENABLE takes one or more capabilities");
		return;
	}
	struct gn_buf *b = gn_buf_new(0);
	for (unsigned i = 0; i < cmd->count; i++) {
		const struct imap_arg *a = &cmd->args[i];
		if (a->type != IMAP_ARG_ATOM) {
			gn_buf_free(&b);
			imap_tagged(s, cmd->tag, "BAD", NULL, "ENABLE takes capability names");
			return;
		}
		/* Only what the server implements is enabled; the rest is
		 * ignored (RFC 5161 3.1).  Each is reported once. */
		if (imap_arg_atom_is(a, "IMAP4rev2") && !s->enabled_rev2) {
			s->enabled_rev2 = true;
			(void)gn_buf_append_str(b, " IMAP4rev2");
		}
	}
	imap_untagged(s, "ENABLED%s", gn_buf_data(b));
	gn_buf_free(&b);
	imap_tagged(s, cmd->tag, "OK", NULL, "ENABLE completed");
}
