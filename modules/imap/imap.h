/*
 * modules/imap/imap.h: the imap module's internals.
 *
 * The IMAP server (RFC 9051 IMAP4rev2 and RFC 3501 IMAP4rev1), in files by
 * subject:
 *
 *   imap.c       the module: settings, the protocol handler's registration.
 *   parser.c     reading and parsing commands, with their limits (parser.h).
 *   session.c    a connection: greeting, the input loop, the command table
 *                and dispatch, responses, states, the end of a session.
 *   cmd-any.c    commands of every state: CAPABILITY, NOOP, LOGOUT, ID,
 *                ENABLE.
 *   cmd-auth.c   the not-authenticated state: STARTTLS, LOGIN,
 *                AUTHENTICATE (the core's SASL server, gannet/sasl.h).
 *
 * It reaches the core only through the installed headers (gannet/...).
 */
#ifndef GANNET_IMAP_H
#define GANNET_IMAP_H

#include <gannet/gannet.h>

#include <stdbool.h>
#include <stdint.h>

#include "parser.h"

#define IMAP_AREA "imap"

/* Session states (RFC 9051 3), as bits for the command table. */
enum imap_state {
	IMAP_NOTAUTH = 0,
	IMAP_AUTH,
	IMAP_SELECTED,
	IMAP_LOGOUT,
};
#define IMAP_S(st) (1u << (st))
#define IMAP_S_ANY (IMAP_S(IMAP_NOTAUTH) | IMAP_S(IMAP_AUTH) | IMAP_S(IMAP_SELECTED))

struct imap_settings {
	struct imap_limits limits;
	/* Plain-text logins (LOGIN, PLAIN) without TLS: only for tests and
	 * trusted networks. */
	bool cleartext_ok;
	/* Commands a session may send that end in BAD before it is closed
	 * (a client that speaks something else). */
	unsigned max_bad;
	unsigned long timeout_notauth_ms;	/* before login: 60 s */
	unsigned long timeout_auth_ms;		/* after: 30 min (RFC 9051 5.4) */
};

extern struct imap_settings imap_settings;

struct imap_session {
	struct gn_conn *conn;
	struct imap_reader *reader;
	struct gn_pool *cmd_pool;	/* cleared after each command */
	enum imap_state state;
	/* AUTHENTICATE in progress: the tag, and the SASL exchange. */
	struct gn_sasl *sasl;
	char *sasl_tag;
	bool in_sasl;
	bool enabled_rev2;		/* ENABLE IMAP4rev2 */
	bool enabled_utf8;		/* ENABLE UTF8=ACCEPT */
	unsigned bad_count;
	int64_t account_id;
	char *account_name;
	char *login;
};

/* ---- session.c ---- */

int imap_protocol_register(struct gn_module_ctx *ctx, const char **error_r);

/* Responses.  Each writes one line; text is the human-readable rest. */
void imap_untagged(struct imap_session *s, const char *fmt, ...) GN_PRINTF(2, 3);
/* status: "OK", "NO" or "BAD"; code: a response code without brackets
 * ("TOOBIG", "CAPABILITY IMAP4rev2 ...") or NULL. */
void imap_tagged(struct imap_session *s, const char *tag, const char *status,
		 const char *code, const char *fmt, ...) GN_PRINTF(5, 6);
void imap_continue(struct imap_session *s, const char *text);
/* A string as IMAP sends it: an atom-safe quoted string, or a literal when
 * it holds what a quoted string cannot. */
void imap_append_string(struct gn_buf *b, const char *s, size_t len);

/* The capability list for the session's state, without "CAPABILITY". */
const char *imap_capabilities(struct imap_session *s, struct gn_pool *pool);

/* The session has logged in as account (from gannet/sasl.h or
 * gannet/auth.h): the authenticated state. */
void imap_logged_in(struct imap_session *s, int64_t account_id, const char *account_name,
		    const char *login);

/* Closes after a BYE. */
void imap_bye(struct imap_session *s, const char *reason, const char *text);

/* ---- the commands (cmd-*.c) ---- */

typedef void imap_cmd_fn(struct imap_session *s, struct imap_command *cmd);

imap_cmd_fn imap_cmd_capability, imap_cmd_noop, imap_cmd_logout, imap_cmd_id,
	imap_cmd_enable;
imap_cmd_fn imap_cmd_starttls, imap_cmd_login, imap_cmd_authenticate;

/* cmd-auth.c: a line the client sent during AUTHENTICATE. */
void imap_sasl_response(struct imap_session *s, const char *line, size_t len);

#endif
