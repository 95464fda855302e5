/*
 * modules/imap/cmd-any.c: CAPABILITY, NOOP, LOGOUT (RFC 9051 6.1) and
 * ENABLE (RFC 5161: IMAP4rev2, CONDSTORE and QRESYNC of RFC 7162,
 * UTF8=ACCEPT of RFC 6855).  ID is in ext-id.c.
 */
#include "imap.h"

#include <string.h>

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

void imap_cmd_enable(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count == 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "ENABLE takes one or more capabilities");
		return;
	}
	struct gn_buf *b = gn_buf_new(0);
	/* Reported: what this command enabled, whatever the order of the
	 * names (RFC 7162 3.2.3: QRESYNC also enables CONDSTORE). */
	bool had_condstore = s->condstore, had_qresync = s->qresync;
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
		if (imap_arg_atom_is(a, "CONDSTORE") && !had_condstore && !strstr(gn_buf_data(b), " CONDSTORE")) {
			s->condstore = true;
			(void)gn_buf_append_str(b, " CONDSTORE");
		}
		if (imap_arg_atom_is(a, "QRESYNC") && !had_qresync && !s->qresync) {
			s->condstore = s->qresync = true;
			(void)gn_buf_append_str(b, " QRESYNC");
		}
		/* RFC 6855 3: mailbox names in UTF-8 from now on, UTF-8 in
		 * quoted strings, APPEND's UTF8 form. */
		if (imap_arg_atom_is(a, "UTF8=ACCEPT") && !s->enabled_utf8) {
			s->enabled_utf8 = true;
			(void)gn_buf_append_str(b, " UTF8=ACCEPT");
		}
	}
	imap_untagged(s, "ENABLED%s", gn_buf_data(b));
	gn_buf_free(&b);
	imap_tagged(s, cmd->tag, "OK", NULL, "ENABLE completed");
}
