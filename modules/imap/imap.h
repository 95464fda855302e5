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
 *   cmd-any.c    commands of every state: CAPABILITY, NOOP, LOGOUT, ENABLE.
 *   ext-id.c     ID, written against imap.v1 only, as other modules would.
 *   cmd-auth.c   the not-authenticated state: STARTTLS, LOGIN,
 *                AUTHENTICATE (the core's SASL server, gannet/sasl.h).
 *   cmd-mailbox.c  mailboxes: NAMESPACE, CREATE, DELETE, RENAME,
 *                SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, STATUS.
 *   mailbox-name.c  names between the store's UTF-8 and the wire's
 *                modified UTF-7; LIST patterns.
 *   cmd-select.c the selected mailbox: SELECT, EXAMINE, CLOSE, UNSELECT,
 *                EXPUNGE, and telling the client of changes (imap_refresh()).
 *   cmd-fetch.c  FETCH, STORE and their UID forms.
 *   fetch-section.c  FETCH of a message's parts: the part a section
 *                names, BINARY's sizes.
 *   decode.c     undoing base64 and quoted-printable in chunks (BINARY).
 *   bodystructure.c  ENVELOPE, BODYSTRUCTURE and BODY from the part tree.
 *   cmd-copy.c   COPY, MOVE, their UID forms, UID EXPUNGE.
 *   cmd-append.c APPEND and MULTIAPPEND, the message streamed to the store.
 *   cmd-search.c SEARCH, UID SEARCH (ESEARCH, SEARCHRES, WITHIN, the
 *                SAVEDATE and MODSEQ keys), answered by the store's SQL;
 *   search-parse.c  the search keys into a tree;
 *   search-scan.c  the keys that read messages (BODY, TEXT, HEADER);
 *                search.h between the three.
 *   cmd-sort.c   SORT, THREAD and their UID forms (RFC 5256), searching
 *                as SEARCH does; base-subject.c the base subject and
 *                the comparator; thread.c the threading; sort.h between.
 *   cmd-idle.c   IDLE, woken by the store's NOTIFY.
 *   cmd-compress.c  COMPRESS DEFLATE (the core's gn_conn_compress_start()).
 *   seqset.c     sequence sets.
 *   condstore.c  CONDSTORE and QRESYNC (RFC 7162): enabling them,
 *                HIGHESTMODSEQ, SELECT's QRESYNC resync, VANISHED.
 *   service.c    the imap.v1 service (include/gannet/imap.h): commands,
 *                capabilities and STATUS items of other modules.
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
	/* APPEND: one message (APPENDLIMIT, RFC 7889), the messages of one
	 * MULTIAPPEND and their total size. */
	uint64_t max_message;
	unsigned max_append_messages;
	uint64_t max_append_total;
	/* LITERAL+ (true) or LITERAL- (RFC 7888). */
	bool literal_plus;
	/* Bytes of messages one SEARCH may read for BODY, TEXT, HEADER. */
	size_t search_scan_limit;
	/* Messages one SORT or THREAD may process (RFC 5256). */
	unsigned sort_limit;
};

extern struct imap_settings imap_settings;

/* The selected mailbox as this session knows it: message sequence
 * number n is uids[n - 1].  Changes made elsewhere reach the session at
 * NOOP (imap_refresh()), as EXPUNGE, EXISTS and FETCH FLAGS. */
struct imap_view {
	int64_t id;
	char *name;		/* the store's form */
	bool readonly;		/* EXAMINE */
	uint32_t uidvalidity;
	uint32_t *uids;
	uint64_t *modseqs;
	size_t count, cap;
	/* RFC 7162 6: every change up to this modseq has been reported (the
	 * mailbox's HIGHESTMODSEQ as read before the last full refresh), and
	 * the highest MODSEQ sent in a FETCH response since. */
	uint64_t highestmodseq;
	uint64_t sent_modseq;
	/* What the view was last compared with: every change up to this
	 * modseq is in it, or in gone (imap_refresh() asks the store only
	 * for what came after). */
	uint64_t known_modseq;
	/* Expunged in the store, still in the view: held back while
	 * expunges may not be told (FETCH, STORE, SEARCH); sorted. */
	uint32_t *gone;
	size_t n_gone;
	/* EXPUNGE, UID EXPUNGE, MOVE: imap_refresh() leaves the
	 * HIGHESTMODSEQ it would announce here, for the tagged OK (RFC 7162
	 * 3.2.7, RFC 6851 4.4). */
	bool hold_modseq;
	uint64_t held_modseq;
	/* RFC 5182: the UIDs a SEARCH RETURN (SAVE) kept, sorted ("$"). */
	uint32_t *saved;
	size_t n_saved;
};

struct imap_fetch_job;
struct imap_append;

struct imap_session {
	struct gn_conn *conn;
	struct imap_view *sel;		/* IMAP_SELECTED: the mailbox */
	/* A FETCH streaming message contents (cmd-fetch.c): input is paused
	 * until it is done. */
	struct imap_fetch_job *fetch;
	/* An APPEND whose messages are being read (cmd-append.c). */
	struct imap_append *append;
	/* IDLE (cmd-idle.c): the command's tag while idling, and the next
	 * idling session of this process. */
	char *idle_tag;
	struct imap_session *idle_next;
	struct imap_reader *reader;
	struct gn_pool *cmd_pool;	/* cleared after each command */
	enum imap_state state;
	/* AUTHENTICATE in progress: the tag, and the SASL exchange; the
	 * mechanism as the client named it, for the log (the SASL server
	 * names it only after a success). */
	struct gn_sasl *sasl;
	char *sasl_tag;
	char *sasl_mech;
	bool in_sasl;
	bool enabled_rev2;		/* ENABLE IMAP4rev2 */
	bool enabled_utf8;		/* ENABLE UTF8=ACCEPT */
	/* RFC 7162: a CONDSTORE enabling command was seen (3.1); ENABLE
	 * QRESYNC was answered (3.2.3). */
	bool condstore;
	bool qresync;
	unsigned bad_count;
	int64_t account_id;
	char *account_name;
	char *login;
	/* The registered key of the client's TLS certificate (cmd-auth.c):
	 * its account (0: none), its login address, whether it may
	 * preauthenticate. */
	int64_t cert_account_id;
	char *cert_login;
	bool cert_preauth;
	/* The tag of a command an imap.v1 handler runs, until it answers. */
	const char *cur_tag;
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
 * it holds what a quoted string cannot: CR, LF, NUL, and 8-bit octets
 * (IMAP4rev1).  imap_append_session_string() also quotes UTF-8 for a
 * session that enabled UTF8=ACCEPT or IMAP4rev2; the first is right for
 * any session (where no session is at hand: imap.v1, ENVELOPE). */
void imap_append_string(struct gn_buf *b, const char *s, size_t len);
void imap_append_session_string(struct imap_session *s, struct gn_buf *b, const char *str, size_t len);

/* The capability list for the session's state, without "CAPABILITY". */
const char *imap_capabilities(struct imap_session *s, struct gn_pool *pool);

/* The session has logged in as account (from gannet/sasl.h or
 * gannet/auth.h): the authenticated state. */
void imap_logged_in(struct imap_session *s, int64_t account_id, const char *account_name,
		    const char *login);

/* An ASCII upper-case copy, from pool. */
char *imap_upper(struct gn_pool *pool, const char *s);

/* Closes after a BYE. */
void imap_bye(struct imap_session *s, const char *reason, const char *text);

/* Whether the server itself has a command, a STATUS item of that name
 * (session.c, cmd-mailbox.c). */
bool imap_command_builtin(const char *name);
bool imap_status_item_builtin(const char *name);

/* ---- service.c: imap.v1 (gannet/imap.h) ---- */

struct gn_imap_v1;
struct ext_command;
struct ext_status;
/* Register phase: provide the service; start phase: fix its tables. */
int imap_service_provide(struct gn_module_ctx *ctx, const char **error_r);
const struct gn_imap_v1 *imap_service_ops(void);
void imap_service_fix(void);
/* A registered command (with its states as IMAP_S bits), NULL if none;
 * running it answers it (NO [SERVERBUG] when its handler did not). */
const struct ext_command *imap_service_command(const char *name, unsigned *states_r);
void imap_service_run(struct imap_session *s, const struct ext_command *c, struct imap_command *cmd);
/* " CAP1 CAP2" for the session's state, appended to b. */
void imap_service_capabilities(struct imap_session *s, struct gn_buf *b);
/* A registered STATUS item, NULL if none; its value for a mailbox. */
const struct ext_status *imap_service_status_item(const char *name);
int imap_service_status_value(struct imap_session *s, const struct ext_status *item, int64_t mailbox_id,
			      uint64_t *value_r);
const char *imap_service_status_name(const struct ext_status *item);
/* Whether any module checks what APPEND and COPY store; the checks
 * (gn_imap_store_check_fn): 0 go on, 1 refused (*code_r, *text_r), -1
 * failed.  Inside the transaction, the account locked. */
bool imap_service_store_checked(void);
/* messages: how many the command adds (imap.v1 store_check_messages()). */
int imap_service_store_check(struct imap_session *s, const char *command, uint64_t bytes,
			     uint64_t messages, const char **code_r, const char **text_r);

/* ---- seqset.c ---- */

struct imap_range {
	uint32_t lo, hi;
};
/* Sorted, merged ranges. */
struct imap_seqset {
	struct imap_range *ranges;
	size_t count;
};

/* Parses a sequence set, "*" being star.  0, or -1 when malformed. */
int imap_seqset_parse(struct gn_pool *pool, const char *s, uint32_t star, struct imap_seqset *set);
bool imap_seqset_has(const struct imap_seqset *set, uint32_t n);

/* ---- cmd-select.c ---- */

/* Leaves the selected mailbox (without expunging). */
void imap_deselect(struct imap_session *s);
/* Tells the client what changed in the selected mailbox since it last
 * heard: EXPUNGE (VANISHED with QRESYNC), EXISTS, FETCH FLAGS (with UID
 * and MODSEQ with CONDSTORE).  0, or -1 (a database failure, logged; the
 * client hears nothing and is told again later). */
int imap_refresh(struct imap_session *s);
/* The same without expunges, for FETCH and STORE (RFC 9051 7.5.1): an
 * expunge held back keeps HIGHESTMODSEQ from advancing (RFC 7162 3.2). */
int imap_refresh_no_expunge(struct imap_session *s);
/* imap_refresh() after EXPUNGE, UID EXPUNGE or MOVE: the response code
 * for the tagged OK ("HIGHESTMODSEQ n" with QRESYNC, RFC 7162 3.2.7, RFC
 * 6851 4.4), or NULL. */
const char *imap_refresh_expunged(struct imap_session *s, struct gn_pool *pool);
/* "* msn FETCH (UID u FLAGS (...) [MODSEQ (m)])" for a change. */
void imap_fetch_flags_line(struct imap_session *s, size_t msn, const struct gn_store_message *m);
/* "(\Seen \Flagged kw)" for flags and keywords, into b. */
void imap_append_flags(struct gn_buf *b, unsigned flags, const char *const *keywords, size_t n);
/* The message sequence number of uid in the view, 0 when it has none. */
size_t imap_view_msn(const struct imap_view *v, uint32_t uid);
/* The selected view's messages in the set arg (message numbers, or UIDs
 * with uid; "$": the saved search result, RFC 5182): their message
 * sequence numbers, ascending, *n_r of them, from pool.  NULL after
 * answering BAD (malformed, a number past the end). */
size_t *imap_select_msns(struct imap_session *s, struct gn_pool *pool, struct imap_command *cmd,
			 const struct imap_arg *arg, bool uid, size_t *n_r);

/* ---- condstore.c ---- */

/* RFC 7162 3.1: a CONDSTORE enabling command; with a mailbox selected,
 * the first one announces its HIGHESTMODSEQ. */
void imap_condstore_enable(struct imap_session *s);
/* A mod-sequence-value (1 to 2^63 - 1; valzer: 0 too).  false when
 * malformed. */
bool imap_modseq_parse(const struct imap_arg *arg, bool zero_ok, uint64_t *modseq_r);
/* "MODSEQ (n)" into b, remembered as sent (RFC 7162 6). */
void imap_append_modseq(struct imap_session *s, struct gn_buf *b, uint64_t modseq);
/* After a command that sent MODSEQs without a full refresh: reports the
 * flag changes of others and, while an expunge is held back, the
 * HIGHESTMODSEQ the client may keep (RFC 7162 3.2). */
void imap_condstore_after(struct imap_session *s);

/* SELECT and EXAMINE's parameters (RFC 4466 select-params). */
struct imap_select_params {
	bool condstore;
	bool qresync;
	uint32_t uidvalidity;
	uint64_t modseq;
	struct imap_seqset known_uids;	/* count 0: all */
};
/* Parses the list after the mailbox name.  NULL, or the BAD text. */
const char *imap_select_params_parse(struct imap_session *s, struct gn_pool *pool, const struct imap_arg *list,
				     struct imap_select_params *p);
/* RFC 7162 3.2.5: after the SELECT responses, VANISHED (EARLIER) and the
 * FETCH of what changed since the client's modseq, from the list the
 * view was made of.  0 or -1. */
int imap_qresync_select(struct imap_session *s, const struct imap_select_params *p,
			struct gn_store_message *const *list, size_t n);
/* UID FETCH (VANISHED): VANISHED (EARLIER) for the UIDs of set expunged
 * since modseq ("$": the saved ones).  0 or -1. */
int imap_vanished_earlier(struct imap_session *s, const struct imap_arg *set, uint64_t modseq);

/* ---- the commands (cmd-*.c) ---- */

typedef void imap_cmd_fn(struct imap_session *s, struct imap_command *cmd);

imap_cmd_fn imap_cmd_capability, imap_cmd_noop, imap_cmd_logout, imap_cmd_enable;
/* ext-id.c: ID, registered through imap.v1 (register phase). */
int imap_id_register(struct gn_module_ctx *ctx, const char **error_r);
imap_cmd_fn imap_cmd_starttls, imap_cmd_login, imap_cmd_authenticate;
/* cmd-auth.c: looks the client certificate's key up (after a handshake);
 * logs the session in by it when it may (the greeting is then PREAUTH). */
void imap_cert_identify(struct imap_session *s);
bool imap_cert_preauth(struct imap_session *s);
imap_cmd_fn imap_cmd_namespace, imap_cmd_create, imap_cmd_delete, imap_cmd_rename,
	imap_cmd_subscribe, imap_cmd_unsubscribe, imap_cmd_list, imap_cmd_lsub, imap_cmd_status;
imap_cmd_fn imap_cmd_select, imap_cmd_examine, imap_cmd_close, imap_cmd_unselect, imap_cmd_expunge,
	imap_cmd_check;
imap_cmd_fn imap_cmd_fetch, imap_cmd_store, imap_cmd_uid, imap_cmd_copy, imap_cmd_move;
/* cmd-fetch.c: a flag list or a single flag, as system flag bits and
 * keywords (from pool).  0, or -1 with *error_r. */
int imap_flags_parse(struct gn_pool *pool, const struct imap_arg *arg, unsigned *flags_r,
		     const char ***kw_r, size_t *nkw_r, const char **error_r);
/* cmd-copy.c: "1:3,7" for UIDs in the order given (RFC 4315 uid-set). */
void imap_append_uid_set(struct gn_buf *b, const uint32_t *uids, size_t n);
/* cmd-append.c: the reader announced an APPEND message
 * (IMAP_READ_MESSAGE), handed out a chunk of it (IMAP_READ_DATA: before
 * the input is consumed), ended the command after the last message
 * (IMAP_READ_COMMAND while s->append is set); the command or the
 * connection ended otherwise.  imap_cmd_append: an APPEND without a
 * message. */
imap_cmd_fn imap_cmd_append;
void imap_append_message(struct imap_session *s);
void imap_append_data(struct imap_session *s);
void imap_append_end(struct imap_session *s);
void imap_append_cancel(struct imap_session *s);
void imap_cmd_replace(struct imap_session *s, struct imap_command *cmd);
/* cmd-search.c: SEARCH; UID SEARCH (cmd->args[0] is SEARCH). */
imap_cmd_fn imap_cmd_search;
void imap_uid_search(struct imap_session *s, struct imap_command *cmd);
/* cmd-sort.c: SORT, THREAD (RFC 5256); UID SORT and UID THREAD
 * (cmd->args[0] is SORT or THREAD). */
imap_cmd_fn imap_cmd_sort, imap_cmd_thread;
void imap_uid_sort(struct imap_session *s, struct imap_command *cmd);
/* cmd-copy.c: UID COPY and UID MOVE (cmd->args[0] is the word after UID),
 * UID EXPUNGE. */
void imap_uid_copy(struct imap_session *s, struct imap_command *cmd, bool move);
void imap_uid_expunge(struct imap_session *s, struct imap_command *cmd);
/* cmd-idle.c: LISTEN for the store's changes (start phase); a line while
 * idling (DONE); the end of an idling session. */
imap_cmd_fn imap_cmd_idle;
int imap_idle_start(const char **error_r);
void imap_idle_line(struct imap_session *s, const char *line, size_t len);
void imap_idle_cancel(struct imap_session *s);
/* cmd-compress.c: COMPRESS. */
imap_cmd_fn imap_cmd_compress;
/* cmd-fetch.c: the output drained, a FETCH goes on; the connection ends. */
void imap_fetch_writable(struct imap_session *s);
void imap_fetch_cancel(struct imap_session *s);

/* ---- bodystructure.c ---- */

struct gn_mime_part;
/* ENVELOPE of a part that starts a message (gn_mime_part_is_message()),
 * into b; pool for what it needs meanwhile. */
void imap_append_envelope(struct gn_buf *b, struct gn_pool *pool, const struct gn_mime_part *msg);
/* BODYSTRUCTURE (extended) or BODY of part, into b. */
void imap_append_body(struct gn_buf *b, struct gn_pool *pool, const struct gn_mime_part *part, bool extended);
/* ENVELOPE's addr-host of a mailbox that parsed (item->addr). */
struct gn_addr_item;
const char *imap_addr_host(struct gn_pool *pool, const struct gn_addr_item *item);

/* ---- fetch-section.c ---- */

/* Part numbers in a section (BODY[1.2.3]) at most. */
#define IMAP_SECTION_MAX_DEPTH 100

/* The part tree of a stored message: from its stored structure (json,
 * may be NULL), else parsed from the body after the prefix.  Offsets are
 * relative to the body (without prefix).  0 with *mime_r (the caller
 * frees it), -1 on a read error. */
int imap_fetch_mime(struct gn_store_body *body, uint64_t prefix_len, const char *json,
		    struct gn_mime_message **mime_r, const char **err_r);
/* The part numbers at the start of a section ("1.2" of "1.2.MIME"),
 * *depth_r of them (0 for none), and the rest after the dot that follows
 * them.  -1 for a 0, a number past 32 bits, or too many. */
int imap_section_parse_path(struct gn_pool *pool, const char *section, uint32_t **nums_r, size_t *depth_r,
			    const char **rest_r);
/* The part the numbers name (RFC 9051 6.4.5), the root for none; NULL when
 * the message has no such part. */
const struct gn_mime_part *imap_section_part(const struct gn_mime_message *mime, const uint32_t *nums,
					     size_t depth);
/* The message a MESSAGE/RFC822 (or GLOBAL) part holds; NULL for others. */
const struct gn_mime_part *imap_section_rfc822_message(const struct gn_mime_part *part);

/* Content-Transfer-Encodings that BINARY undoes (RFC 2045 6). */
enum imap_cte {
	IMAP_CTE_IDENTITY = 0,	/* none, 7bit, 8bit, binary */
	IMAP_CTE_BASE64,
	IMAP_CTE_QP,
	IMAP_CTE_UNKNOWN,
};
enum imap_cte imap_cte_of(const struct gn_mime_part *part);

/* decode.c: a decoder's state between chunks. */
struct imap_decoder {
	enum imap_cte cte;
	unsigned bits;		/* base64: bits not yet a byte */
	int nbits;
	int state;		/* quoted-printable */
	unsigned char hex;
	bool cr;
	char ws[256];		/* white space that may end a line */
	size_t n_ws;
};
void imap_decoder_init(struct imap_decoder *d, enum imap_cte cte);
/* Decodes len bytes, appending to out. */
void imap_decode(struct imap_decoder *d, const void *data, size_t len, struct gn_buf *out);
/* The end of the data: what was held back. */
void imap_decode_finish(struct imap_decoder *d, struct gn_buf *out);
/* Whether the stored bytes [from, to) hold a NUL.  0 or -1. */
int imap_raw_has_nul(struct gn_store_body *body, uint64_t from, uint64_t to, bool *nul_r, const char **err_r);
/* Decodes the stored bytes [from, from + len) in chunks without keeping
 * them: *size_r, their decoded size, and *nul_r, whether the decoded bytes
 * at [wfrom, wto) hold a NUL.  0 or -1 (a read error). */
int imap_decoded_scan(struct gn_store_body *body, uint64_t from, uint64_t len, enum imap_cte cte,
		      uint64_t wfrom, uint64_t wto, uint64_t *size_r, bool *nul_r, const char **err_r);

/* ---- mailbox-name.c ---- */

/* UTF-8 to modified UTF-7 and back (NULL: not valid modified UTF-7). */
char *imap_mutf7_encode(struct gn_pool *pool, const char *utf8);
char *imap_mutf7_decode(struct gn_pool *pool, const char *mutf7);
/* A store name as the session shows it, and a name from the client as the
 * store keeps it (NULL when it does not decode). */
const char *imap_name_to_wire(struct imap_session *s, struct gn_pool *pool, const char *store_name);
const char *imap_name_from_wire(struct imap_session *s, struct gn_pool *pool, const char *wire);
/* Whether a name matches a LIST pattern ("*" anything, "%" anything but
 * the separator). */
bool imap_pattern_match(const char *pattern, const char *name);

/* cmd-auth.c: a line the client sent during AUTHENTICATE. */
void imap_sasl_response(struct imap_session *s, const char *line, size_t len);

#endif
