/*
 * modules/imap/cmd-compress.c: COMPRESS DEFLATE (RFC 4978).
 *
 * The compression itself is the core's (gn_conn_compress_start(), between
 * the connection's buffers and TLS): the session goes on reading and
 * writing plain IMAP.  Valid once authenticated (RFC 4978 5: command-auth),
 * so that a login never needs it.
 */
#include "imap.h"

static void refused(struct imap_session *s, struct imap_command *cmd, const char *status, const char *code,
		    const char *text)
{
	gn_log(GN_LOG_INFO, IMAP_AREA, "event=compress_refused conn=%s status=%s error=%s", gn_conn_id(s->conn),
	       status, gn_log_quote(0, text));
	imap_tagged(s, cmd->tag, status, code, "%s", text);
}

void imap_cmd_compress(struct imap_session *s, struct imap_command *cmd)
{
	const char *error;

	if (cmd->count != 1 || cmd->args[0].type != IMAP_ARG_ATOM) {
		refused(s, cmd, "BAD", NULL, "COMPRESS takes one algorithm name");
		return;
	}
	/* RFC 4978 3: BAD for an unknown mechanism. */
	if (!imap_arg_atom_is(&cmd->args[0], "DEFLATE")) {
		refused(s, cmd, "BAD", NULL, "Unknown compression algorithm");
		return;
	}
	/* RFC 4978 3: NO [COMPRESSIONACTIVE] when the mechanism is on. */
	if (gn_conn_is_compressed(s->conn)) {
		refused(s, cmd, "NO", "COMPRESSIONACTIVE", "DEFLATE is active already");
		return;
	}
	/* RFC 4978 3: compression starts right after this response's CRLF,
	 * and with the client's next command. */
	imap_tagged(s, cmd->tag, "OK", NULL, "DEFLATE active");
	if (gn_conn_compress_start(s->conn, &error) < 0) {
		/* The OK went out: the client compresses now, so the session
		 * cannot go on without it. */
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=compress_failed conn=%s error=%s",
		       gn_conn_id(s->conn), gn_log_quote(0, error));
		s->state = IMAP_LOGOUT;
		gn_conn_close(s->conn, "compress_failed");
		return;
	}
	gn_log(GN_LOG_INFO, IMAP_AREA, "event=compress conn=%s algorithm=deflate", gn_conn_id(s->conn));
}
