/*
 * gannet/smtp.h: the SMTP server engine, written once and shared by every
 * module that speaks SMTP to clients (the inbound MX "smtp", later
 * "submission"), as Dovecot's lib-smtp serves LMTP and submission.
 *
 * The engine owns the protocol: the command parser (resumable, byte-exact,
 * with limits), the state machine, replies with enhanced status codes
 * (RFC 2034, RFC 3463), EHLO and its extensions (PIPELINING, SIZE,
 * 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, STARTTLS, CHUNKING), DATA with
 * dot-stuffing and BDAT, STARTTLS, limits and timeouts.  A module brings the
 * policy: a table of callbacks (struct gn_smtp_policy) that decide about the
 * client, the sender, each recipient and the message, and that receive the
 * message as it arrives, in chunks.
 *
 * Every policy callback that decides something is asynchronous: it answers
 * with gn_smtp_answer() or gn_smtp_answer_hook(), either before it returns
 * or later from the event loop (after a DNS lookup or a pending hook chain).
 * Until the answer comes, the engine reads no further input from the client
 * (pipelined commands wait in the input buffer, answered in order later).
 * A callback that is NULL accepts.
 *
 * Lifetime: a session lives from the connection's open to its close.  The
 * policy's disconnect() is the last call for a session; after it, the
 * session is freed and the policy must not answer any more (it cancels its
 * pending work: gn_hook_cancel()).  A transaction (struct gn_smtp_tx) lives
 * from MAIL to the end of the message, RSET, a new EHLO, STARTTLS or the end
 * of the session; the policy's reset() is called whenever one ends without
 * data_end() having been answered (abort: a client that disconnects in the
 * middle of DATA, a message too big, bare line endings, RSET ...).
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
};

/* Body types of MAIL BODY= (RFC 6152). */
enum gn_smtp_body {
	GN_SMTP_BODY_7BIT = 0,
	GN_SMTP_BODY_8BITMIME = 1,
};

/* The policy.  Every member may be NULL; grows only at the end. */
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
	 * dropped otherwise. */
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
	 * Answer: 2xx only once the message is safely stored. */
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
 * error_delay_after 10, error_delay_ms 1000, max_errors 20). */
void gn_smtp_settings_init(struct gn_smtp_settings *settings);
/* Reads the settings from a config section, keeping *settings where a
 * setting is absent: max_message_size, max_recipients, max_line_length,
 * max_commands, max_errors, error_delay_after, error_delay,
 * timeout_initial, timeout_mail, timeout_rcpt, timeout_data_init,
 * timeout_data_block, timeout_data_term, chunking, smtputf8.  Bad values
 * are recorded as config errors (gannet/config.h).  Returns 0, or -1 when
 * some setting was invalid. */
int gn_smtp_settings_read(struct gn_config *sect,
			  struct gn_smtp_settings *settings);

/* Creates a server and registers it as the protocol handler proto_name
 * (gn_protocol_register()).  settings and policy are copied (settings'
 * hostname must stay valid); data is given to every policy call.  Returns
 * the server (it lives as long as the process), or NULL with *error_r. */
struct gn_smtp_server *gn_smtp_server_register(struct gn_module_ctx *ctx,
					       const char *proto_name,
					       const struct gn_smtp_settings *settings,
					       const struct gn_smtp_policy *policy,
					       void *data, const char **error_r);
const struct gn_smtp_settings *gn_smtp_server_settings(const struct gn_smtp_server *srv);

/* ---- answers ---- */

/* Answers the pending policy call.  code: 2xx accepts (the engine's
 * default text is used when fmt is NULL), 4xx/5xx refuse; 421 also closes
 * the connection.  enhanced ("5.1.1") may be NULL: the engine picks one
 * that fits the stage.  Text may hold several lines separated by "\n"
 * (a multi-line reply).  Calling it with no call pending is a bug that is
 * logged and ignored. */
void gn_smtp_answer(struct gn_smtp_session *s, int code, const char *enhanced,
		    const char *fmt, ...) GN_PRINTF(4, 5);
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
 * "SMTP", "ESMTP", "ESMTPS", "UTF8SMTP", "UTF8SMTPS" (plus "A" variants
 * are for submission, later). */
const char *gn_smtp_session_protocol(const struct gn_smtp_session *s);
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

/* ---- recipients ---- */

const struct gn_addr *gn_smtp_rcpt_addr(const struct gn_smtp_rcpt *rcpt);
/* The policy's data for the recipient (from the tx pool, say). */
void gn_smtp_rcpt_set_data(struct gn_smtp_rcpt *rcpt, void *data);
void *gn_smtp_rcpt_data(const struct gn_smtp_rcpt *rcpt);

#ifdef __cplusplus
}
#endif
#endif
