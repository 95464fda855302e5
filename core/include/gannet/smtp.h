/*
 * gannet/smtp.h: the SMTP server engine, written once and shared by every
 * module that speaks SMTP to clients (the inbound MX "smtp", later
 * "submission"), as Dovecot's lib-smtp serves LMTP and submission.
 *
 * The engine owns the protocol: the command parser (resumable, byte-exact,
 * with limits), the state machine, replies with enhanced status codes
 * (RFC 2034, RFC 3463), EHLO and its extensions (PIPELINING, SIZE,
 * 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, STARTTLS, CHUNKING), DATA with
 * dot-stuffing and BDAT, STARTTLS, limits, timeouts and time limits, mail
 * loops (Received counting), the HTTP requests it refuses.  A module brings the
 * policy: a table of callbacks (struct gn_smtp_policy) that decide about the
 * client, the sender, each recipient and the message, and that receive the
 * message as it arrives, in chunks.
 *
 * Every policy callback that decides something is asynchronous: it answers
 * with gn_smtp_answer() or gn_smtp_answer_hook(), either before it returns
 * or later from the event loop (after a DNS lookup or a pending hook chain).
 * Until the answer comes, the engine reads no further input from the client
 * (pipelined commands wait in the input buffer, answered in order later).
 *
 * Nothing fails open.  The two callbacks that grant something, rcpt() (a
 * recipient) and data_end() (a 250 for a message), must be set:
 * gn_smtp_server_register() refuses a policy without them.  The others may
 * be NULL, and then accept, since accepting grants nothing by itself: a
 * NULL connect() greets, helo() takes any well-formed name (RFC 5321 4.1.4
 * forbids refusing a name that does not verify anyway), mail() takes any
 * well-formed sender, data_begin() starts the message, data_chunk() drops
 * the chunks (data_end() still decides), reset() and disconnect() answer
 * nothing.
 *
 * Extensions: the users of the engine add what the engine does not know
 * itself, in the register phase, after gn_smtp_server_register(): EHLO
 * keywords (gn_smtp_server_add_keyword(), shown only when a condition
 * holds, e.g. over TLS), MAIL and RCPT parameters (gn_smtp_server_add_param():
 * the engine parses them by RFC 5321's rules, the policy reads them in its
 * mail() and rcpt() with gn_smtp_tx_param() and gn_smtp_rcpt_param();
 * parameters nobody registered are still refused with 555 5.5.4), and
 * commands (gn_smtp_server_add_command(): AUTH for submission, later
 * XCLIENT), which may read continuation lines from the client before they
 * answer (AUTH's SASL exchange: RFC 4954 4).  DSN (RFC 3461) is a keyword
 * and four parameters.
 *
 * Lifetime: a session lives from the connection's open to its close.  The
 * policy's disconnect() is the last call for a session; after it, the
 * session is freed and the policy must not answer any more (it cancels its
 * pending work: gn_hook_cancel()).  A transaction (struct gn_smtp_tx) lives
 * from MAIL to the end of the message, RSET, a new EHLO, STARTTLS or the end
 * of the session; the policy's reset() is called whenever one ends without
 * data_end() having been answered (abort: a client that disconnects in the
 * middle of DATA, a message too big, bare line endings, RSET ...).  An
 * added command's cancel() is called when the engine ends the command
 * without its answer (the connection closed, a limit); after it, the
 * command must not answer.
 *
 * All functions run in the worker (or single) process, from the loop; a
 * server is created in the register phase.
 */
#ifndef GANNET_SMTP_H
#define GANNET_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <gannet/module.h>
#include <gannet/config.h>
#include <gannet/conn.h>
#include <gannet/hook.h>
#include <gannet/addr.h>
#include <gannet/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gn_smtp_server;		/* one policy on the engine; opaque */
struct gn_smtp_session;		/* one client connection; opaque */
struct gn_smtp_tx;		/* one mail transaction; opaque */
struct gn_smtp_rcpt;		/* one recipient of a transaction; opaque */

/* Limits and timeouts of a server.  Fill with gn_smtp_settings_init() (the
 * defaults) and gn_smtp_settings_read() (a config section), then change what
 * the module wants.  Grows only at the end. */
struct gn_smtp_settings {
	size_t size;			/* sizeof(struct gn_smtp_settings) */
	/* The name in the greeting, EHLO reply and Received headers; NULL:
	 * gn_config_hostname(). */
	const char *hostname;
	/* Largest message (octets, as received after dot-unstuffing):
	 * advertised with SIZE (RFC 1870); beyond it 552 5.3.4. */
	unsigned long long max_message_size;
	/* Recipients per transaction; beyond it 452 4.5.3 (RFC 5321
	 * 4.5.3.1.8 and 4.5.3.1.10). */
	unsigned max_recipients;
	/* Longest command line including CRLF (RFC 5321 4.5.3.1.4: 512);
	 * beyond it 500 5.5.2. */
	unsigned max_line_length;
	/* Commands since the last accepted message; beyond it 421 4.7.0 and
	 * the connection closes (a client looping on junk commands). */
	unsigned max_commands;
	/* Error replies (4xx/5xx, except 452 4.5.3 and 421) since the last
	 * accepted message: from error_delay_after on, each further error
	 * reply is delayed by error_delay_ms; at max_errors the session gets
	 * 421 4.7.0 and is closed (Postfix's smtpd_soft_error_limit,
	 * smtpd_error_sleep_time and smtpd_hard_error_limit). */
	unsigned error_delay_after;
	unsigned long error_delay_ms;
	unsigned max_errors;
	/* Server-side timeouts after RFC 5321 4.5.3.2 (milliseconds): the
	 * time the client may take, in each state, to send its next command
	 * or data, and the time the policy may take to answer data_end.
	 * When one passes, the client gets 421 4.4.2 and is disconnected. */
	unsigned long timeout_initial_ms;	/* before MAIL (4.5.3.2.1/.7): 5 min */
	unsigned long timeout_mail_ms;		/* after MAIL (4.5.3.2.2): 5 min */
	unsigned long timeout_rcpt_ms;		/* after RCPT (4.5.3.2.3): 5 min */
	unsigned long timeout_data_init_ms;	/* after 354, first data (4.5.3.2.4): 2 min */
	unsigned long timeout_data_block_ms;	/* between data blocks (4.5.3.2.5): 3 min */
	unsigned long timeout_data_term_ms;	/* end of data to reply (4.5.3.2.6): 10 min */
	/* Offer CHUNKING/BDAT (RFC 3030); default true. */
	bool chunking;
	/* Offer SMTPUTF8 (RFC 6531); default true. */
	bool smtputf8;
	/* Total time limits (milliseconds), so that a slow client cannot hold
	 * a connection slot for ever by sending a byte now and then: the
	 * whole transfer of one message (from the 354 of DATA, or the first
	 * BDAT, to its end; default 20 min) and the whole session (default
	 * 1 h).  Past either, 421 4.4.2 and the connection closes (logged:
	 * event=smtp_time_limit).  A message whose end of data the policy is
	 * deciding gets its answer first. */
	unsigned long timeout_data_total_ms;
	unsigned long timeout_session_ms;
	/* Received header fields a message may carry (RFC 5321 6.3: a
	 * threshold of at least 100); past it 554 5.4.6, a mail loop. */
	unsigned max_received_headers;
	/* Ask TLS clients for a certificate (GN_PROTO_CLIENT_CERT, never
	 * required, never verified against a CA: gannet/tlspubkey.h): for
	 * submission, never for port 25 (mox.md 4.2).  Default false.  ABI
	 * 1.1. */
	bool client_cert;
};

/* Stages a policy answer belongs to; given to gn_smtp_answer_hook() users
 * through gn_smtp_session_stage() for logs. */
enum gn_smtp_stage {
	GN_SMTP_STAGE_NONE = 0,
	GN_SMTP_STAGE_CONNECT,
	GN_SMTP_STAGE_HELO,
	GN_SMTP_STAGE_MAIL,
	GN_SMTP_STAGE_RCPT,
	GN_SMTP_STAGE_DATA_BEGIN,
	GN_SMTP_STAGE_DATA_END,
	GN_SMTP_STAGE_COMMAND,		/* an added command (gn_smtp_server_add_command()) */
};

/* Body types of MAIL BODY= (RFC 6152). */
enum gn_smtp_body {
	GN_SMTP_BODY_7BIT = 0,
	GN_SMTP_BODY_8BITMIME = 1,
};

/* The policy.  rcpt and data_end are required, the others may be NULL
 * (see the top of this file); grows only at the end. */
struct gn_smtp_policy {
	size_t size;			/* sizeof(struct gn_smtp_policy) */
	/* A client connected: answer (2xx sends the greeting; 4xx/5xx are
	 * sent as 421/554 and the connection closes). */
	void (*connect)(struct gn_smtp_session *s, void *data);
	/* HELO or EHLO with the client's name (syntax checked: a domain or
	 * an address literal).  Answer 2xx to accept. */
	void (*helo)(struct gn_smtp_session *s, const char *name, bool ehlo,
		     void *data);
	/* MAIL: the transaction exists (gn_smtp_session_tx()); from is NULL
	 * for the null reverse path "<>".  Answer. */
	void (*mail)(struct gn_smtp_session *s, const struct gn_addr *from,
		     void *data);
	/* RCPT: rcpt is added to the transaction when the answer is 2xx and
	 * dropped otherwise: a refused recipient is no part of the
	 * transaction (it neither counts against max_recipients nor appears
	 * in gn_smtp_tx_rcpt()).  Required. */
	void (*rcpt)(struct gn_smtp_session *s, struct gn_smtp_rcpt *rcpt,
		     void *data);
	/* DATA or the first BDAT, with at least one recipient accepted.
	 * Answer 2xx to receive the message. */
	void (*data_begin)(struct gn_smtp_session *s, void *data);
	/* The message as it arrives, dot-unstuffed, in chunks of any size
	 * (the pointer is valid during the call).  Synchronous: returns 0, or
	 * -1 to get no more chunks of this message (data_end() still comes,
	 * and its answer tells the client). */
	int (*data_chunk)(struct gn_smtp_session *s, const char *buf,
			  size_t len, void *data);
	/* The whole message arrived, well-formed and within the limits.
	 * Answer: 2xx only once the message is safely stored.  Required. */
	void (*data_end)(struct gn_smtp_session *s, void *data);
	/* The transaction ends without a data_end() (see above); the policy
	 * drops what it prepared.  No answer. */
	void (*reset)(struct gn_smtp_session *s, void *data);
	/* The session ends; the last call.  No answer. */
	void (*disconnect)(struct gn_smtp_session *s, void *data);
};

/* ---- servers (register phase) ---- */

/* Fills *settings with the defaults (above; max_message_size 50 MiB,
 * max_recipients 100, max_line_length 512, max_commands 1000,
 * error_delay_after 10, error_delay_ms 1000, max_errors 20,
 * timeout_data_total 20 min, timeout_session 1 h, max_received_headers
 * 100). */
void gn_smtp_settings_init(struct gn_smtp_settings *settings);
/* Reads the settings from a config section, keeping *settings where a
 * setting is absent: max_message_size, max_recipients, max_line_length,
 * max_commands, max_errors, error_delay_after, error_delay,
 * timeout_initial, timeout_mail, timeout_rcpt, timeout_data_init,
 * timeout_data_block, timeout_data_term, timeout_data_total,
 * timeout_session, max_received_headers, chunking, smtputf8.  Bad values
 * are recorded as config errors (gannet/config.h).  Returns 0, or -1 when
 * some setting was invalid. */
int gn_smtp_settings_read(struct gn_config *sect,
			  struct gn_smtp_settings *settings);

/* Creates a server and registers it as the protocol handler proto_name
 * (gn_protocol_register()).  settings and policy are copied (settings'
 * hostname must stay valid); data is given to every policy call.  Returns
 * the server (it lives as long as the process), or NULL with *error_r,
 * also for a policy without rcpt or data_end (nothing fails open). */
struct gn_smtp_server *gn_smtp_server_register(struct gn_module_ctx *ctx,
					       const char *proto_name,
					       const struct gn_smtp_settings *settings,
					       const struct gn_smtp_policy *policy,
					       void *data, const char **error_r);
const struct gn_smtp_settings *gn_smtp_server_settings(const struct gn_smtp_server *srv);

/* ---- extensions (register phase, after gn_smtp_server_register()) ----
 *
 * Each takes a versioned description (copied with its strings; it grows
 * only at the end) and returns 0, or -1 with *error_r (static) when the
 * description is invalid, a name is taken (by the engine or an earlier
 * registration; names are case-insensitive) or a limit is reached (64
 * keywords, 64 parameters, 64 commands a server).  A module that extends
 * another module's server gets its struct gn_smtp_server through a service
 * that module provides (gannet/service.h). */

/* Flags of an EHLO keyword. */
#define GN_SMTP_KEYWORD_TLS	0x1u	/* offered only over TLS (implicit or after STARTTLS) */

/* An EHLO keyword (RFC 5321 4.1.1.1 ehlo-line): shown in the EHLO reply
 * after the engine's own, in the order added. */
struct gn_smtp_keyword {
	size_t size;			/* sizeof(struct gn_smtp_keyword) */
	/* ehlo-keyword: a letter or digit, then letters, digits and "-", at
	 * most 64 octets ("AUTH", "DSN", "X-FOO"); not one of the engine's
	 * (PIPELINING, SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES,
	 * STARTTLS, CHUNKING, HELP). */
	const char *keyword;
	/* ehlo-params as offered ("PLAIN LOGIN"), or NULL: printable ASCII
	 * (RFC 5321 4.1.1.1: %d33-126) words separated by single spaces, at
	 * most 400 octets. */
	const char *params;
	unsigned flags;			/* GN_SMTP_KEYWORD_* */
	/* Called at each EHLO reply when not NULL (after the flags said yes):
	 * returns false to leave the keyword out of this reply, true to offer
	 * it; to offer other parameters than params in this session (a SASL
	 * mechanism only over TLS), it appends them to *params (empty, limited
	 * to 400 octets; what is not well-formed leaves the keyword out, logged).
	 * Synchronous. */
	bool (*offer)(struct gn_smtp_session *s, struct gn_buf *params, void *data);
	void *data;
};

int gn_smtp_server_add_keyword(struct gn_smtp_server *srv,
			       const struct gn_smtp_keyword *keyword,
			       const char **error_r);

/* Which command a parameter belongs to. */
enum gn_smtp_param_cmd {
	GN_SMTP_PARAM_MAIL = 1,
	GN_SMTP_PARAM_RCPT = 2,
};

/* Flags of a parameter. */
#define GN_SMTP_PARAM_VALUE	0x1u	/* needs a value ("ENVID=x"); without one: 501 5.5.4 */
#define GN_SMTP_PARAM_NO_VALUE	0x2u	/* takes none ("SMTPUTF8"); with one: 501 5.5.4 */
#define GN_SMTP_PARAM_XTEXT	0x4u	/* the value is xtext (RFC 3461 4): decoded by the
					   engine; bad xtext, or a control character in the
					   decoded value, 501 5.5.4 (DSN's ENVID, ORCPT;
					   AUTH=, RFC 4954 5) */

/* A MAIL or RCPT parameter (RFC 5321 4.1.2 esmtp-param: keyword["=" value]).
 * The engine splits the parameters, checks their syntax (esmtp-value:
 * %d33-60 / %d62-126, and UTF-8 after MAIL's SMTPUTF8, RFC 6531 3.3;
 * 501 5.5.4 otherwise), refuses a repeated one (501 5.5.4) and one that
 * nobody registered or whose extension this session was not offered (555
 * 5.5.4, RFC 5321 4.1.1.11), keeps the value in the transaction (MAIL) or
 * the recipient (RCPT), and then calls the policy's mail() or rcpt(), which
 * reads it with gn_smtp_tx_param() or gn_smtp_rcpt_param(). */
struct gn_smtp_param {
	size_t size;			/* sizeof(struct gn_smtp_param) */
	enum gn_smtp_param_cmd cmd;
	/* esmtp-keyword, as for EHLO keywords; for MAIL not SIZE, BODY or
	 * SMTPUTF8 (the engine's). */
	const char *keyword;
	/* The EHLO keyword (gn_smtp_server_add_keyword()) this parameter
	 * comes with: the parameter exists in a session only when that
	 * keyword was offered in its EHLO reply.  NULL: in every EHLO
	 * session. */
	const char *extension;
	unsigned flags;			/* GN_SMTP_PARAM_* */
	/* The longest value as sent, in octets (past it 501 5.5.4); 0: 500.
	 * The command line's length bounds it too. */
	size_t max_length;
	/* When not NULL, checks the value (decoded; NULL when given without
	 * one) while the command is parsed, before the policy's mail() or
	 * rcpt(): returns 0 to take it, or -1 to refuse the command with
	 * *reply (code 4xx or 5xx, else 501; enhanced code and text may be
	 * NULL; strings static or living until the session's next command).
	 * Synchronous. */
	int (*check)(struct gn_smtp_session *s, const char *value,
		     struct gn_hook_reply *reply, void *data);
	void *data;
};

int gn_smtp_server_add_param(struct gn_smtp_server *srv,
			     const struct gn_smtp_param *param,
			     const char **error_r);

/* States an added command is valid in; in others the engine answers 503
 * 5.5.1.  Never during DATA, a BDAT transfer or a TLS handshake. */
#define GN_SMTP_STATE_INIT	0x1u	/* greeted, before HELO/EHLO */
#define GN_SMTP_STATE_HELO	0x2u	/* after HELO/EHLO, outside a transaction */
#define GN_SMTP_STATE_MAIL	0x4u	/* in a transaction, before its data (after
					   MAIL and RCPT) */

/* Flags of an added command. */
#define GN_SMTP_CMD_NOARGS	0x1u	/* takes no arguments: else 501 5.5.4 */
#define GN_SMTP_CMD_ARGS	0x2u	/* needs arguments: else 501 5.5.4 */
/* A 2xx answer starts the session over, as STARTTLS does (RFC 3207 4.2):
 * the transaction ends, HELO/EHLO and authentication are forgotten
 * (XCLIENT). */
#define GN_SMTP_CMD_RESTART	0x4u

/* A command the engine does not know itself (AUTH, XCLIENT ...).
 *
 * The engine reads the command line (up to max_line_length), checks the
 * state, the flags and that the extension was offered (502 5.5.1
 * otherwise: not implemented here), then calls start() with the arguments.
 * The command is then pending, like a policy call: it ends with
 * gn_smtp_answer() or gn_smtp_answer_hook() (a 2xx answer keeps its code:
 * "235 2.7.0" for AUTH), or asks for one more line from the client with
 * gn_smtp_answer_more() (a 3xx reply, "334 <base64>" for AUTH): the next
 * line the client sends, whatever it says, goes to line() (without its
 * CRLF), and the command is pending again.  So a SASL exchange is:
 *
 *   start("PLAIN")        -> gn_smtp_answer_more(s, 334, "")
 *   line("AGEAcA==")      -> gn_smtp_answer(s, 235, "2.7.0", "OK")
 *   line("*")             -> gn_smtp_answer(s, 501, "5.0.0", "Cancelled")
 *                            (RFC 4954 4: the client's cancel)
 *
 * On the core's SASL server (gannet/sasl.h) that is: the AUTH keyword's
 * offer() gives gn_sasl_mechanisms(); start() gn_sasl_start64() with the
 * initial response, line() gn_sasl_step64() (which takes "*" too); while
 * they return GN_SASL_CONTINUE, gn_smtp_answer_more(s, 334, "%s",
 * gn_sasl_challenge64()); GN_SASL_OK is 235 2.7.0 and
 * gn_smtp_session_set_authenticated(); GN_SASL_FAIL the code of
 * gn_sasl_failure_smtp(); cancel() gn_sasl_cancel().  max_line_length
 * 12288 holds the 8192 octets sasl_max_response allows, in base64.
 *
 * Limits, the engine's: each line (the command's and every continuation
 * line) at most max_line_length octets with CRLF (past it 500 5.5.2), at
 * most max_lines continuation lines (asking for more answers the client 501
 * 5.5.4 and ends the command), the idle timeout of the state the command
 * was given in while the engine waits for a line, and the session's time
 * limit.  A line with NUL or a bare CR: 500 5.5.2.  When the engine ends the
 * command itself (these limits, the connection closing, the server
 * stopping), it calls cancel(), and the command must not answer after it.
 */
struct gn_smtp_command {
	size_t size;			/* sizeof(struct gn_smtp_command) */
	/* The verb: letters, digits and "-", at most 32 octets, not one of
	 * the engine's (HELO, EHLO, MAIL, RCPT, DATA, BDAT, RSET, NOOP,
	 * QUIT, HELP, VRFY, EXPN, STARTTLS) nor an HTTP method. */
	const char *verb;
	/* The EHLO keyword the command comes with (as for parameters), or
	 * NULL: always there. */
	const char *extension;
	unsigned states;		/* GN_SMTP_STATE_* bits; 0: none, invalid */
	unsigned flags;			/* GN_SMTP_CMD_* */
	/* The longest line with CRLF: 0 is the server's max_line_length;
	 * at most 32768.  RFC 4954 4: AUTH takes 12288. */
	size_t max_line_length;
	/* Continuation lines a command may read; 0: 16. */
	unsigned max_lines;
	/* The command line's arguments (after the verb and its spaces; ""
	 * when none; valid during the call).  Answer. */
	void (*start)(struct gn_smtp_session *s, const char *args, void *data);
	/* A continuation line, NUL-terminated, without its line ending
	 * (valid during the call).  Answer.  Required when the command uses
	 * gn_smtp_answer_more(). */
	void (*line)(struct gn_smtp_session *s, const char *line, void *data);
	/* The engine ended the command without its answer.  No answer.  May
	 * be NULL. */
	void (*cancel)(struct gn_smtp_session *s, void *data);
	void *data;
};

int gn_smtp_server_add_command(struct gn_smtp_server *srv,
			       const struct gn_smtp_command *command,
			       const char **error_r);

/* ---- answers ---- */

/* Answers the pending policy call.  code: 2xx accepts (the engine's
 * default text is used when fmt is NULL), 4xx/5xx refuse; 421 also closes
 * the connection.  enhanced ("5.1.1") may be NULL: the engine picks one
 * that fits the stage.  Text may hold several lines separated by "\n"
 * (a multi-line reply).  Calling it with no call pending is a bug that is
 * logged and ignored.  For the policy's calls every 2xx is sent as 250
 * (221 and 220 have their own meanings); an added command's 2xx keeps its
 * code. */
void gn_smtp_answer(struct gn_smtp_session *s, int code, const char *enhanced,
		    const char *fmt, ...) GN_PRINTF(4, 5);
/* For an added command only (GN_SMTP_STAGE_COMMAND): sends a 3xx reply
 * (code 300-399; one line, no enhanced code, the text as given, "" too:
 * "334 " is AUTH's empty challenge; at most 12288 octets) and passes the
 * client's next line to the command's line().  Anything else is a bug,
 * logged, and the command ends with 451 4.3.0. */
void gn_smtp_answer_more(struct gn_smtp_session *s, int code, const char *fmt, ...)
	GN_PRINTF(3, 4);
/* The same from a hook chain's result (gannet/hook.h): CONTINUE and
 * ACCEPT accept; REJECT refuses permanently (the reply's code when it is a
 * 5xx, else 550 or 554), TEMPFAIL temporarily (its 4xx, else 451 4.3.0),
 * DISCONNECT sends 421 (or the reply's code and text) and closes.  reply
 * may be NULL. */
void gn_smtp_answer_hook(struct gn_smtp_session *s, enum gn_hook_result result,
			 const struct gn_hook_reply *reply);

/* ---- sessions ---- */

struct gn_conn *gn_smtp_session_conn(struct gn_smtp_session *s);
/* For the policy's own per-session state (owned by the policy). */
void gn_smtp_session_set_data(struct gn_smtp_session *s, void *data);
void *gn_smtp_session_data(const struct gn_smtp_session *s);
/* The HELO/EHLO name as the client sent it, or NULL before HELO. */
const char *gn_smtp_session_helo(const struct gn_smtp_session *s);
bool gn_smtp_session_is_ehlo(const struct gn_smtp_session *s);
/* The "with" keyword for a Received header (RFC 3848, RFC 6531 3.7.3):
 * "SMTP", "ESMTP", "ESMTPS", "UTF8SMTP", "UTF8SMTPS", and "ESMTPA",
 * "ESMTPSA", "UTF8SMTPA", "UTF8SMTPSA" once the session is authenticated
 * (gn_smtp_session_set_authenticated()). */
const char *gn_smtp_session_protocol(const struct gn_smtp_session *s);
/* Marks the session authenticated (an added AUTH command that succeeded)
 * or not.  STARTTLS and a GN_SMTP_CMD_RESTART command clear it. */
void gn_smtp_session_set_authenticated(struct gn_smtp_session *s, bool authenticated);
bool gn_smtp_session_is_authenticated(const struct gn_smtp_session *s);
/* A Received header field for the current transaction (RFC 5321 4.4),
 * from pool, CRLF-terminated and folded:
 *
 *   Received: from HELO ([IP]) by HOSTNAME (Gannet)
 *           with PROTOCOL (using TLS1.3 with cipher ...) id TXID
 *           for <RCPT>; DATE
 *
 * The "using" comment only over TLS (RFC 8314 4.3); "for" only when rcpt
 * is not NULL; DATE is now (RFC 5322 3.3, UTC).  The HELO name is the
 * client's, made safe for a header: a name in Unicode that is a valid
 * domain is written in A-labels, and any other octet outside printable
 * ASCII, and "(", ")", ";", "\", is written "\xHH".  NULL outside a
 * transaction. */
char *gn_smtp_session_received(struct gn_smtp_session *s, struct gn_pool *pool,
			       const struct gn_addr *rcpt);
/* The server's host name (settings or gn_config_hostname()). */
const char *gn_smtp_session_hostname(const struct gn_smtp_session *s);
enum gn_smtp_stage gn_smtp_session_stage(const struct gn_smtp_session *s);
/* The current transaction, or NULL between transactions. */
struct gn_smtp_tx *gn_smtp_session_tx(struct gn_smtp_session *s);

/* ---- transactions ---- */

/* Memory that lives as long as the transaction. */
struct gn_pool *gn_smtp_tx_pool(struct gn_smtp_tx *tx);
/* A short id unique in the process's life, for logs and Received headers. */
const char *gn_smtp_tx_id(const struct gn_smtp_tx *tx);
/* MAIL FROM's address, NULL for "<>". */
const struct gn_addr *gn_smtp_tx_from(const struct gn_smtp_tx *tx);
/* MAIL parameters. */
bool gn_smtp_tx_smtputf8(const struct gn_smtp_tx *tx);
enum gn_smtp_body gn_smtp_tx_body(const struct gn_smtp_tx *tx);
/* SIZE= as declared, or 0. */
unsigned long long gn_smtp_tx_declared_size(const struct gn_smtp_tx *tx);
/* Octets of message received so far (after dot-unstuffing). */
unsigned long long gn_smtp_tx_size(const struct gn_smtp_tx *tx);
/* Accepted recipients, in order. */
size_t gn_smtp_tx_rcpt_count(const struct gn_smtp_tx *tx);
struct gn_smtp_rcpt *gn_smtp_tx_rcpt(struct gn_smtp_tx *tx, size_t i);
/* A MAIL parameter added with gn_smtp_server_add_param() (keyword in any
 * case): 1 when the client gave it, with *value_r (may be NULL) its value
 * (xtext decoded) or NULL when it had none; 0 when it did not.  The value
 * lives as long as the transaction. */
int gn_smtp_tx_param(const struct gn_smtp_tx *tx, const char *keyword,
		     const char **value_r);

/* ---- the end of data (ABI 1.1) ----
 *
 * For modules other than the server's policy that check a received
 * message (mailauth: SPF, DKIM) and record what they found in header
 * lines of the stored copies (Authentication-Results, RFC 8601):
 *
 *   - a tap (register phase) sees every chunk of every message a server
 *     receives, as the policy's data_chunk() does (dot-unstuffed, CRLF
 *     lines; none once the engine refuses the message: too big, bare
 *     line ends, a mail loop), and hears when the transaction ends, however
 *     it ends (after the policy's reset() or answered data_end()), to free
 *     what it keeps for it;
 *   - a module keeps per-transaction state in the transaction's slot
 *     gn_module_slot() (gn_smtp_tx_slot_set());
 *   - the receiving policy runs the chain GN_SMTP_DATA_END with the
 *     session as the context (gn_hook_call_context()) once the whole
 *     message is in, before it stores it.  Timeout 60 s, default CONTINUE:
 *     a hook that hangs does not keep a message out.  REJECT, TEMPFAIL and
 *     DISCONNECT answer the client (gn_smtp_answer_hook()) and nothing is
 *     stored; CONTINUE and ACCEPT store the message.  Hooks add header
 *     lines with gn_smtp_tx_add_header(); the policy puts them into each
 *     copy's prefix (gannet/deliver.h gn_delivery_set_prefix()).
 *
 * The smtp module runs the chain; submission does not (what its users
 * send is signed, not checked). */
#define GN_SMTP_DATA_END "smtp.data_end"

struct gn_smtp_tap {
	size_t size;			/* sizeof(struct gn_smtp_tap) */
	/* The server it taps (the protocol name given to
	 * gn_smtp_server_register(): "smtp"); NULL: every server.  Copied. */
	const char *server;
	/* A chunk of the current transaction's message (valid during the
	 * call).  Required. */
	void (*chunk)(struct gn_smtp_session *s, const char *buf, size_t len,
		      void *data);
	/* A transaction of the server ends (every one, with or without
	 * chunks); its slots and pool are still there during the call.  May
	 * be NULL. */
	void (*tx_end)(struct gn_smtp_session *s, void *data);
	void *data;
};

/* Register phase.  0, or -1 with *error_r (static): invalid, or more than
 * 16 taps. */
int gn_smtp_tap_register(struct gn_module_ctx *ctx, const struct gn_smtp_tap *tap,
			 const char **error_r);

/* A module's pointer in a transaction, by its slot (gn_module_slot());
 * NULL until set.  Owned by the module (freed in its tap's tx_end(), or
 * from gn_smtp_tx_pool()). */
void gn_smtp_tx_slot_set(struct gn_smtp_tx *tx, unsigned slot, void *value);
void *gn_smtp_tx_slot_get(const struct gn_smtp_tx *tx, unsigned slot);

/* The most octets of header lines a transaction's hooks may add. */
#define GN_SMTP_MAX_ADDED_HEADER (64 * 1024)

/* Adds header lines (copied) for the message's stored prefix: one or more
 * whole fields, each line ending in CRLF, continuation lines starting
 * with a space or tab (RFC 5322 2.2).  0, or -1 with *error_r (static)
 * when they are not that or pass GN_SMTP_MAX_ADDED_HEADER.  From the
 * GN_SMTP_DATA_END chain. */
int gn_smtp_tx_add_header(struct gn_smtp_tx *tx, const char *lines, size_t len,
			  const char **error_r);
/* The lines added so far, in order ("" and 0 when none); for the policy
 * that writes the prefix.  Valid until the next add or the transaction's
 * end. */
const char *gn_smtp_tx_added_header(const struct gn_smtp_tx *tx, size_t *len_r);

/* Since ABI 1.1, from the GN_SMTP_DATA_END chain: the mailbox the
 * message starts in for every recipient instead of "Inbox" (a DMARC
 * quarantine: "Junk"); copied.  The policy passes it to the delivery
 * (gn_delivery_set_mailbox_default()), so "deliver.mailbox" hooks
 * (rulesets) still see and may change it, and a mailbox the account does
 * not have means Inbox, as there.  The last call wins.  0, or -1 with
 * *error_r (static) for an empty name, one past GN_SMTP_MAX_MAILBOX_NAME
 * or with control characters. */
#define GN_SMTP_MAX_MAILBOX_NAME 1024
int gn_smtp_tx_set_mailbox(struct gn_smtp_tx *tx, const char *mailbox, const char **error_r);
/* The mailbox set so far; NULL when none (Inbox). */
const char *gn_smtp_tx_mailbox(const struct gn_smtp_tx *tx);

/* Since ABI 1.1, from the GN_SMTP_DATA_END chain: the results of the
 * checks of the message (gannet/store.h struct gn_store_message_auth:
 * SPF, DMARC, the DKIM domains that passed), for the policy to keep with
 * each stored copy (gn_delivery_set_auth()); copied into the
 * transaction's pool; the last call wins.  0, or -1 with *error_r
 * (static) when auth is NULL or its size is below the first version's. */
struct gn_store_message_auth;
int gn_smtp_tx_set_auth(struct gn_smtp_tx *tx, const struct gn_store_message_auth *auth,
			const char **error_r);
/* The results set so far; NULL when none. */
const struct gn_store_message_auth *gn_smtp_tx_auth(const struct gn_smtp_tx *tx);

/* ---- recipients ---- */

const struct gn_addr *gn_smtp_rcpt_addr(const struct gn_smtp_rcpt *rcpt);
/* The policy's data for the recipient (from the tx pool, say). */
void gn_smtp_rcpt_set_data(struct gn_smtp_rcpt *rcpt, void *data);
void *gn_smtp_rcpt_data(const struct gn_smtp_rcpt *rcpt);
/* A RCPT parameter, as gn_smtp_tx_param(). */
int gn_smtp_rcpt_param(const struct gn_smtp_rcpt *rcpt, const char *keyword,
		       const char **value_r);

/* ---- the SMTP client (ABI 1.1) ----
 *
 * An asynchronous SMTP client on the loop, for the queue and anything
 * else that sends mail to another server.  The caller gives the addresses
 * (from its MX lookups, in order); the client connects to each in turn
 * until one greets with 220 and answers EHLO (or HELO) (RFC 5321 5.1:
 * the next address after a connection failure, a timeout, or a 4xx/5xx
 * greeting), does STARTTLS when offered (opportunistic, RFC 3207; a
 * handshake that fails is retried once on a new connection without TLS,
 * unless TLS is required) and calls ready().  Then gn_smtp_client_send()
 * sends a message: MAIL (SIZE, BODY=8BITMIME, SMTPUTF8 as the server
 * offers and the message needs), the RCPTs, DATA, pipelined when the
 * server offers PIPELINING (RFC 2920: MAIL, every RCPT and DATA in one
 * write), the message read from the caller in chunks, normalised to CRLF
 * and dot-stuffed.  Each recipient gets one rcpt() with its outcome, then
 * the transaction one sent(); the caller may send again on the same
 * connection (RSET first) or gn_smtp_client_quit().  closed() is the
 * last call.  Every wait is bounded (RFC 5321 4.5.3.2).
 *
 * All functions from the loop, in the process that created the client.
 * Callbacks are never called from inside the function that caused them.
 */
struct gn_smtp_client;		/* opaque */

enum gn_smtp_client_tls {
	GN_SMTP_TLS_OPPORTUNISTIC = 0,	/* STARTTLS when offered */
	GN_SMTP_TLS_REQUIRE,		/* no TLS, no delivery */
	GN_SMTP_TLS_NONE,		/* never STARTTLS */
};

/* Where a result comes from. */
enum gn_smtp_phase {
	GN_SMTP_PHASE_CONNECT = 0,
	GN_SMTP_PHASE_GREETING,
	GN_SMTP_PHASE_EHLO,
	GN_SMTP_PHASE_STARTTLS,
	GN_SMTP_PHASE_MAIL,
	GN_SMTP_PHASE_RCPT,
	GN_SMTP_PHASE_DATA,
	GN_SMTP_PHASE_QUIT,
	GN_SMTP_PHASE_AUTH,		/* AUTH (RFC 4954), after TLS */
};
/* "connect", "greeting", "ehlo", "starttls", "mail", "rcpt", "data", "quit",
 * "auth". */
const char *gn_smtp_phase_name(enum gn_smtp_phase phase);

/* An outcome, filled by the client; valid during the callback that gets
 * it.  Grows only at the end. */
struct gn_smtp_result {
	size_t size;			/* sizeof(struct gn_smtp_result) */
	enum gn_smtp_phase phase;
	/* The server's reply code; when local, the code the client chose
	 * for a refusal before sending (552, 554), or 0 when there was no
	 * reply (a connection failure, a timeout, a connection lost). */
	int code;
	const char *enhanced;		/* "5.1.1", or "" */
	/* The reply's text (lines joined by LF), or what happened. */
	const char *text;
	/* Not from the server: a connection failure, a timeout, a limit, or
	 * a refusal before sending (SMTPUTF8 or 8BITMIME not offered, too
	 * big for the server's SIZE). */
	bool local;
	/* Retrying cannot help (a 5xx, or a local refusal of that kind). */
	bool permanent;
};

struct gn_smtp_client_settings {
	size_t size;			/* sizeof(struct gn_smtp_client_settings) */
	const char *helo_name;		/* NULL: gn_config_hostname() */
	enum gn_smtp_client_tls tls;
	/* The name the server's certificate is verified for (the MX host
	 * name); NULL: not verified.  Verified is PKIX (RFC 6125): the chain
	 * up to a CA of the system's trust store, the name among the
	 * certificate's identities.  With tls_verify, a certificate that
	 * does not verify fails the address (GN_SMTP_PHASE_STARTTLS, no
	 * plain-text fallback); without it the result is only recorded
	 * (gn_smtp_client_tls_verified()).  DANE (RFC 7672) does not use
	 * it: there PKIX does not apply, and the queue's transport checks
	 * the chain against the TLSA records itself through the handler's
	 * tls_check with tls_verify false; MTA-STS (RFC 8461) is what
	 * needs it. */
	const char *tls_name;
	bool tls_verify;
	/* Timeouts in milliseconds (RFC 5321 4.5.3.2 for the defaults). */
	unsigned long connect_timeout_ms;	/* 30 s */
	unsigned long greeting_timeout_ms;	/* 4.5.3.2.1: 5 min */
	unsigned long command_timeout_ms;	/* EHLO, STARTTLS, RSET, QUIT: 5 min */
	unsigned long mail_timeout_ms;		/* 4.5.3.2.2: 5 min */
	unsigned long rcpt_timeout_ms;		/* 4.5.3.2.3: 5 min */
	unsigned long data_init_timeout_ms;	/* 4.5.3.2.4: 2 min */
	unsigned long data_block_timeout_ms;	/* 4.5.3.2.5: 3 min */
	unsigned long data_term_timeout_ms;	/* 4.5.3.2.6: 10 min */
	/* Longest reply line with CRLF (0: 2048; RFC 5321 4.5.3.1.5 says 512)
	 * and most lines a reply (0: 100); beyond either the connection is
	 * dropped, as for a reply that does not parse. */
	size_t max_reply_line;
	unsigned max_reply_lines;
	/* ABI 1.1, AUTH (RFC 4954) after EHLO (after STARTTLS when TLS is
	 * used), before ready().  With auth_password: the strongest
	 * mechanism the server offers of SCRAM-SHA-256-PLUS (when the TLS
	 * connection has a channel binding), SCRAM-SHA-256, SCRAM-SHA-1-PLUS,
	 * SCRAM-SHA-1, PLAIN; PLAIN only over TLS (the password never goes
	 * in the clear).  SCRAM's server signature is checked.  With
	 * tls_identity (and TLS): AUTH EXTERNAL (authorization identity
	 * auth_authzid, else empty) when offered, else the password's
	 * mechanism, else no AUTH (a server such as gannet's submission
	 * logs a registered certificate in at the handshake).
	 * auth_mechanism forces one ("EXTERNAL", "PLAIN", ...).  A refusal
	 * (535: wrong credentials) or no usable mechanism fails the address
	 * in GN_SMTP_PHASE_AUTH, permanently for 5xx and for no mechanism,
	 * and then no other address is tried (the same credentials would
	 * fail there too, one more failed login each).
	 * All strings are copied; tls_identity must outlive the client.
	 * The AUTH exchange's lines reach trace() with the secrets hidden. */
	const char *auth_user;		/* the authentication identity */
	const char *auth_password;	/* NULL: none */
	const char *auth_authzid;	/* NULL: none */
	const char *auth_mechanism;	/* NULL: chosen as above */
	const struct gn_tls_identity *tls_identity;	/* a client certificate */
};

void gn_smtp_client_settings_init(struct gn_smtp_client_settings *settings);

/* What the client tells its caller.  Starts with its own size, grows only
 * at the end; the client copies it. */
struct gn_smtp_client_handler {
	size_t size;			/* sizeof(struct gn_smtp_client_handler) */
	/* Connected, greeted, EHLO (and STARTTLS) done: failure NULL.  Or
	 * no address worked: failure is the last address's outcome, and
	 * closed() follows.  Required. */
	void (*ready)(struct gn_smtp_client *client, const struct gn_smtp_result *failure,
		      void *data);
	/* One recipient's outcome: index into the send's list.  Required. */
	void (*rcpt)(struct gn_smtp_client *client, unsigned index,
		     const struct gn_smtp_result *result, void *data);
	/* The transaction ended (after every rcpt()): result is the end of
	 * DATA's reply, or what ended it earlier.  Then
	 * gn_smtp_client_usable() says whether another may be sent.
	 * Required. */
	void (*sent)(struct gn_smtp_client *client, const struct gn_smtp_result *result,
		     void *data);
	/* The connection is gone; the last call.  gn_smtp_client_free() may
	 * be called from it.  May be NULL. */
	void (*closed)(struct gn_smtp_client *client, void *data);
	/* Each command line sent and reply line received (without CRLF;
	 * not the message), for transcripts.  May be NULL. */
	void (*trace)(struct gn_smtp_client *client, bool sent, const char *line,
		      size_t len, void *data);
	/* ABI 1.1: after each TLS handshake, before the EHLO over TLS: the
	 * certificates the server sent (DER, leaf first, at most 10 of them),
	 * for a check of the caller's own (DANE, RFC 7672).  Returns 0 to go
	 * on, or -1 with *error_r (copied): the address fails in
	 * GN_SMTP_PHASE_STARTTLS (temporary, no fallback to plain text) and
	 * the next address is tried.  May be NULL. */
	int (*tls_check)(struct gn_smtp_client *client, const unsigned char *const *certs,
			 const size_t *lens, size_t n, void *data, const char **error_r);
};

/* NULL with *error_r when the settings or handler are not valid. */
struct gn_smtp_client *gn_smtp_client_new(const struct gn_smtp_client_settings *settings,
					  const struct gn_smtp_client_handler *handler,
					  void *data, const char **error_r);
/* Adds an address to try (IPv4 or IPv6 text, port), before connect.
 * 0, or -1 with *error_r. */
int gn_smtp_client_add_address(struct gn_smtp_client *client, const char *ip,
			       unsigned port, const char **error_r);
/* Starts; ready() follows from the loop.  0, or -1 with *error_r (no
 * address, already started). */
int gn_smtp_client_connect(struct gn_smtp_client *client, const char **error_r);

/* The message's reader: sets *chunk_r and *len_r (the caller owns the
 * bytes until the next call) and returns 1, or returns 0 at the end, or
 * -1 with *error_r.  A failure aborts the connection: a truncated message
 * is never ended with the dot. */
typedef int gn_smtp_client_read_fn(void *data, const char **chunk_r, size_t *len_r,
				   const char **error_r);

#define GN_SMTP_SEND_8BITMIME 0x1u	/* the body has 8-bit octets (RFC 6152) */
#define GN_SMTP_SEND_SMTPUTF8 0x2u	/* UTF-8 addresses or headers (RFC 6531) */
/* MAIL FROM ... REQUIRETLS (RFC 8689; ABI 1.1): refused by the
 * client (554 5.7.30, local, permanent) unless the connection is TLS and
 * the server offers REQUIRETLS; whether the certificate verified is the
 * caller's to check (gn_smtp_client_tls_verified(), or DANE). */
#define GN_SMTP_SEND_REQUIRETLS 0x4u

/* Sends one message after ready() (or after sent(), while usable): from
 * ("" for the null sender) and the n_rcpts recipients are addresses
 * without angle brackets; size is the message's size (0: unknown) for
 * SIZE.  rcpts and the strings are copied.  Returns 0 (the outcome comes
 * through rcpt() and sent()), or -1 with *error_r: not ready, another
 * send under way, no recipient, too many (1000), or an address with
 * control characters, spaces or angle brackets. */
int gn_smtp_client_send(struct gn_smtp_client *client, const char *from,
			const char *const *rcpts, unsigned n_rcpts,
			unsigned long long size, unsigned flags,
			gn_smtp_client_read_fn *read, void *read_data,
			const char **error_r);
/* Whether the connection is up and idle (another send possible). */
bool gn_smtp_client_usable(const struct gn_smtp_client *client);
/* QUIT and close; closed() follows.  Without a session, closes at once
 * (from the loop). */
void gn_smtp_client_quit(struct gn_smtp_client *client);
/* Frees it; no callback is called after.  The connection is dropped if
 * it is up.  Accepts NULL. */
void gn_smtp_client_free(struct gn_smtp_client **client);

/* About the current (or last) connection. */
const char *gn_smtp_client_remote_ip(const struct gn_smtp_client *client);	/* or NULL */
unsigned gn_smtp_client_remote_port(const struct gn_smtp_client *client);
bool gn_smtp_client_is_tls(const struct gn_smtp_client *client);
const char *gn_smtp_client_tls_version(const struct gn_smtp_client *client);	/* or NULL */
/* ABI 1.1: the cipher ("AES-256-GCM"), or NULL without TLS. */
const char *gn_smtp_client_tls_cipher(const struct gn_smtp_client *client);
/* Whether the certificate verified for settings.tls_name; why not. */
bool gn_smtp_client_tls_verified(const struct gn_smtp_client *client);
const char *gn_smtp_client_tls_verify_error(const struct gn_smtp_client *client);
/* An EHLO keyword the server offered (case-insensitive); *params_r (may
 * be NULL) its parameters or NULL.  False after HELO. */
bool gn_smtp_client_has_extension(const struct gn_smtp_client *client, const char *keyword,
				  const char **params_r);

#ifdef __cplusplus
}
#endif
#endif
