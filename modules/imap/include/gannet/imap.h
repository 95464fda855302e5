/*
 * gannet/imap.h: the imap module's service "imap.v1", for modules that
 * extend the IMAP server (quota adds GETQUOTA and GETQUOTAROOT with it).
 *
 *   const struct gn_imap_v1 *imap = gn_service_lookup(GN_IMAP_V1);
 *   if (imap == NULL)
 *           ... the imap module is not loaded: nothing to extend ...
 *   imap->command_register(ctx, "GETQUOTA", GN_IMAP_STATE_AUTH |
 *                          GN_IMAP_STATE_SELECTED, getquota, NULL, &error);
 *   imap->capability_add(ctx, "QUOTA", GN_IMAP_STATE_AUTH |
 *                        GN_IMAP_STATE_SELECTED, &error);
 *
 * Look the service up in the register phase (the imap module must be
 * loaded first: list it before yours in modules.load) and register there;
 * the table is fixed once the start phase begins.  Handlers run on a
 * worker's loop, one command of a session at a time; they answer with
 * tagged() exactly once (with untagged responses before it) and must not
 * block for long (a query is fine, a network wait is not).
 *
 * The table only grows at the end: check a member with GN_OPS_HAS()
 * (gannet/service.h) before calling one added after the first version.
 * Strings it returns stay valid until the handler returns.
 *
 * Versions of the table (its size tells them apart; GN_OPS_HAS()):
 *   1  commands, capabilities, STATUS items, sessions, arguments.
 *   2  store_check_register(): a check of the bytes APPEND, COPY and
 *      REPLACE add to an account, inside their transaction (quota's
 *      OVERQUOTA).
 *   3  store_check_messages(): during a store check, the number of
 *      messages the command adds (quota's message limit).
 */
#ifndef GANNET_IMAP_SERVICE_H
#define GANNET_IMAP_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <gannet/module.h>
#include <gannet/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GN_IMAP_V1 "imap.v1"

/* Session states (RFC 9051 3), as bits. */
#define GN_IMAP_STATE_NOTAUTH	0x1u
#define GN_IMAP_STATE_AUTH	0x2u
#define GN_IMAP_STATE_SELECTED	0x4u

/* A session, a command's arguments, one argument: opaque. */
struct gn_imap_session;
struct gn_imap_args;
struct gn_imap_arg;

enum gn_imap_arg_type {
	GN_IMAP_ARG_ATOM = 0,	/* also \Flag, sequence sets, BODY[...] */
	GN_IMAP_ARG_STRING,	/* a quoted string */
	GN_IMAP_ARG_LITERAL,
	GN_IMAP_ARG_NIL,
	GN_IMAP_ARG_LIST,
};

/* A command: name is upper case; args its arguments after the name. */
typedef void gn_imap_command_fn(struct gn_imap_session *s, const char *name,
				const struct gn_imap_args *args, void *data);

/* A STATUS item (RFC 9051 6.3.11): the value for a mailbox of the
 * session's account; 0 with *value_r, or -1 (the STATUS command then
 * answers NO, and the handler has logged why). */
typedef int gn_imap_status_fn(struct gn_imap_session *s, int64_t mailbox_id,
			      uint64_t *value_r, void *data);

/* A check of what a command is about to add to the session's account
 * (command: "APPEND" for all the messages of one APPEND or MULTIAPPEND
 * together, "COPY" for a COPY or UID COPY, "REPLACE" for a REPLACE or
 * UID REPLACE (RFC 8508) with the bytes it adds beyond the message it
 * replaces, which goes in the same transaction, 0 when it adds none; MOVE
 * adds nothing and is not checked).  It runs inside the transaction that stores them, after the
 * account's row is locked (gn_store_account_lock(), gannet/store.h) and
 * before anything is added, so what it reads of the account stays so
 * until the commit.  bytes: what they add (prefix + body of each).
 * Returns 0 to go on; 1 to refuse, with *code_r (a response code without
 * brackets, e.g. "OVERQUOTA", or NULL) and *text_r (static or from the
 * session's pool): the command answers NO and stores nothing; -1 when a
 * query failed: NO [UNAVAILABLE], nothing stored. */
typedef int gn_imap_store_check_fn(struct gn_imap_session *s, const char *command,
				   uint64_t bytes, const char **code_r, const char **text_r,
				   void *data);

struct gn_imap_v1 {
	size_t size;	/* sizeof(struct gn_imap_v1) of the provider */

	/* ---- the register phase ---- */

	/* A command valid in states (GN_IMAP_STATE_*).  name: an atom,
	 * upper case; one the server has, or another module registered, is
	 * refused.  0, or -1 with *error_r. */
	int (*command_register)(struct gn_module_ctx *ctx, const char *name,
				unsigned states, gn_imap_command_fn *fn, void *data,
				const char **error_r);
	/* A capability listed in states ("QUOTA", "QUOTA=RES-STORAGE"). */
	int (*capability_add)(struct gn_module_ctx *ctx, const char *capability,
			      unsigned states, const char **error_r);
	/* A STATUS item (an atom, upper case) answered by fn. */
	int (*status_item_register)(struct gn_module_ctx *ctx, const char *name,
				    gn_imap_status_fn *fn, void *data,
				    const char **error_r);

	/* ---- during a command ---- */

	/* The account logged in (0 before), its name, the login used. */
	int64_t (*session_account_id)(const struct gn_imap_session *s);
	const char *(*session_account_name)(const struct gn_imap_session *s);
	const char *(*session_login)(const struct gn_imap_session *s);
	/* The connection (gannet/conn.h). */
	struct gn_conn *(*session_conn)(struct gn_imap_session *s);
	/* A pool cleared when the command ends. */
	struct gn_pool *(*session_pool)(struct gn_imap_session *s);
	/* The selected mailbox's store id, 0 when none; whether it is
	 * read-only (EXAMINE). */
	int64_t (*session_selected)(const struct gn_imap_session *s, bool *readonly_r);

	/* "* " + the formatted text + CRLF. */
	void (*untagged)(struct gn_imap_session *s, const char *fmt, ...)
		GN_PRINTF(2, 3);
	/* The command's answer: status "OK", "NO" or "BAD"; code a response
	 * code without brackets ("OVERQUOTA") or NULL; text a human-readable
	 * line (control characters are replaced). */
	void (*tagged)(struct gn_imap_session *s, const char *status, const char *code,
		       const char *text);
	/* A string as IMAP sends it (quoted, or a literal when it must be)
	 * appended to b. */
	void (*append_string)(struct gn_buf *b, const char *str, size_t len);
	/* A mailbox name from the client as the store keeps it (modified
	 * UTF-7 decoded unless UTF8=ACCEPT, INBOX's spelling), NULL when it
	 * does not decode; and the reverse. */
	const char *(*mailbox_from_wire)(struct gn_imap_session *s, const char *wire);
	const char *(*mailbox_to_wire)(struct gn_imap_session *s, const char *name);

	/* ---- arguments ---- */

	unsigned (*args_count)(const struct gn_imap_args *args);
	const struct gn_imap_arg *(*args_get)(const struct gn_imap_args *args, unsigned i);
	enum gn_imap_arg_type (*arg_type)(const struct gn_imap_arg *arg);
	/* The value of an atom, string or literal (NUL-terminated; *len_r
	 * may be NULL); NULL for NIL and lists. */
	const char *(*arg_str)(const struct gn_imap_arg *arg, size_t *len_r);
	/* A list's elements, as arguments. */
	const struct gn_imap_args *(*arg_list)(const struct gn_imap_arg *arg);
	/* ---- version 2 (check with GN_OPS_HAS()) ---- */
	/* Register phase: fn checks every APPEND, COPY and REPLACE (above).  At
	 * most 8 checks, run in registration order until one refuses. */
	int (*store_check_register)(struct gn_module_ctx *ctx, gn_imap_store_check_fn *fn,
				    void *data, const char **error_r);
	/* ---- version 3 (check with GN_OPS_HAS()) ---- */
	/* Inside a store check (above), the number of messages the command
	 * adds to the account: an APPEND its messages (all of a
	 * MULTIAPPEND), a COPY the messages copied, a REPLACE 0 (the message
	 * it replaces goes in the same transaction); 0 outside a check. */
	uint64_t (*store_check_messages)(const struct gn_imap_session *s);
};

#ifdef __cplusplus
}
#endif
#endif
