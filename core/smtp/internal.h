/*
 * core/smtp/internal.h: the SMTP layer's internals.
 *
 * The SMTP server engine (gannet/smtp.h), shared by the smtp and
 * submission modules, in five files by subject:
 *
 *   server.c     the session: settings, gn_smtp_server_register(), the
 *                connection's callbacks and the input loop, the time
 *                limits, smtp_set_state() (every state change) and smtp_reply()
 *                (every reply), transactions, accessors, Received.
 *   answer.c     policy calls and their answers, one function a stage.
 *   command.c    command lines: the parser, the command table, the
 *                engine's own commands, MAIL and RCPT with their
 *                parameters.
 *   extension.c  what users add: EHLO keywords, parameters, commands
 *                with continuation lines.
 *   data.c       the message: DATA (dot-stuffing, the smuggling rule),
 *                BDAT chunks, Received counting, the end of a message.
 *
 * Uses the mail (paths), net (connections), runtime and base layers.
 */
#ifndef GANNET_SMTP_INTERNAL_H
#define GANNET_SMTP_INTERNAL_H

#include "net/internal.h"
#include "mail/internal.h"

#include <gannet/smtp.h>

#define SMTP_MAX_INPUT (64u * 1024u)
/* Text per reply line, and per 3xx continuation reply (RFC 4954 4 lets a
 * client send 12288 octets; a challenge gets as much). */
#define SMTP_REPLY_LINE_MAX 400u
#define SMTP_MORE_LINE_MAX 12288u
/* Added extensions per server, and parameters per command. */
#define SMTP_MAX_EXT 64u
#define SMTP_MAX_PARAMS 16u
#define SMTP_CMD_LINE_MAX 32768u

/* Session states.  The command states are bits for the command tables. */
enum sstate {
	ST_CONNECT = 0,	/* waiting for the policy's connect answer */
	ST_INIT,	/* greeted; no HELO yet */
	ST_HELO,	/* HELO/EHLO done, no transaction */
	ST_MAIL,	/* MAIL accepted, no recipient yet */
	ST_RCPT,	/* at least one recipient */
	ST_BDAT,	/* BDAT chunks received, LAST not yet */
	ST_DATA,	/* reading DATA text */
	ST_CHUNK,	/* reading a BDAT chunk's octets */
	ST_TLS,		/* STARTTLS handshake */
	ST_MORE,	/* an added command reads a continuation line */
	ST_QUIT,	/* closing */
};

#define SB(st) (1u << (st))
#define S_ANY (SB(ST_INIT) | SB(ST_HELO) | SB(ST_MAIL) | SB(ST_RCPT) | SB(ST_BDAT))

/* DATA parser states (RFC 5321 4.5.2 and 4.1.1.4). */
enum dstate {
	D_BOL = 0,	/* at the start of a line */
	D_DOT,		/* "." at the start of a line */
	D_DOTCR,	/* "." CR at the start of a line */
	D_TEXT,		/* inside a line */
	D_CR,		/* CR inside a line */
};

/* The header scanner that counts Received fields (data.c). */
enum hstate {
	H_BOL = 0,	/* at the start of a header line */
	H_NAME,		/* matching "Received:" */
	H_LINE,		/* in the rest of a line */
	H_BLANK,	/* CR at the start of a line: the header's end? */
	H_BODY,		/* past the header: nothing more to count */
};

/* A parameter's value kept for the policy. */
struct smtp_pval {
	const char *keyword;	/* the server's copy */
	const char *value;	/* decoded; NULL: given without a value */
};

struct smtp_keyword {
	char *keyword;
	char *params;		/* NULL: none */
	unsigned flags;
	bool (*offer)(struct gn_smtp_session *s, struct gn_buf *params, void *data);
	void *data;
};

struct smtp_param {
	enum gn_smtp_param_cmd cmd;
	char *keyword;
	int ext;		/* index of its keyword, -1: none */
	unsigned flags;
	size_t max_length;
	int (*check)(struct gn_smtp_session *s, const char *value,
		     struct gn_hook_reply *reply, void *data);
	void *data;
};

struct smtp_command {
	char *verb;
	int ext;		/* index of its keyword, -1: none */
	unsigned states;	/* SB(...) bits */
	unsigned flags;
	size_t max_line_length;
	unsigned max_lines;
	void (*start)(struct gn_smtp_session *s, const char *args, void *data);
	void (*line)(struct gn_smtp_session *s, const char *line, void *data);
	void (*cancel)(struct gn_smtp_session *s, void *data);
	void *data;
};

struct gn_smtp_rcpt {
	struct gn_addr *addr;
	void *data;
	struct smtp_pval *params;
	size_t n_params;
};

struct gn_smtp_tx {
	struct gn_pool *pool;
	char id[40];
	struct gn_addr *from;
	bool smtputf8;
	enum gn_smtp_body body;
	unsigned long long declared_size;
	unsigned long long size;
	struct smtp_pval *params;
	size_t n_params;
	struct gn_smtp_rcpt **rcpts;
	size_t n_rcpts, cap_rcpts;
	bool bdat;		/* the message comes in BDAT chunks */
	bool data_begun;	/* data_begin was accepted */
	bool too_big;
	bool bad_newline;
	bool loop;		/* too many Received fields */
	bool chunks_stopped;	/* data_chunk returned -1 */
	/* Received counting (RFC 5321 6.3) */
	enum hstate hstate;
	unsigned hmatch;	/* octets of "Received:" matched */
	unsigned received;
	/* tap.c (ABI 1.1) */
	void **slots;		/* gn_smtp_tx_slot_set() */
	unsigned n_slots;
	struct gn_buf *added;	/* gn_smtp_tx_add_header() */
	const char *mailbox;	/* gn_smtp_tx_set_mailbox(), from pool */
	/* gn_smtp_tx_set_auth(), from pool */
	const struct gn_store_message_auth *auth;
};

struct gn_smtp_server {
	struct gn_smtp_settings set;
	struct gn_smtp_policy policy;
	void *data;
	char *area;		/* log area: the module's name */
	char *proto_name;
	struct gn_protocol proto;
	/* Added extensions (extension.c) */
	struct smtp_keyword keywords[SMTP_MAX_EXT];
	size_t n_keywords;
	struct smtp_param params[SMTP_MAX_EXT];
	size_t n_params;
	struct smtp_command commands[SMTP_MAX_EXT];
	size_t n_commands;
	/* The longest command line any command takes, with CRLF. */
	size_t max_read_line;
};

/* Why the session is over its time (server.c). */
enum smtp_limit {
	LIMIT_NONE = 0,
	LIMIT_DATA,
	LIMIT_SESSION,
};

struct gn_smtp_session {
	struct gn_smtp_server *srv;
	struct gn_conn *conn;
	void *data;			/* the policy's */
	enum sstate state;
	enum gn_smtp_stage pending;	/* awaited answer */
	bool paused;			/* we paused the input */
	bool holding;			/* replies are held back (error delay) */
	bool shutdown;			/* the server is stopping */
	bool skipping;			/* reading the rest of a too long line */
	bool ehlo;
	bool authenticated;
	char *helo;			/* gn_malloc'd */
	char *helo_pending;		/* the name of a HELO being decided */
	bool helo_pending_ehlo;
	uint64_t offered;		/* added keywords in the last EHLO reply */
	struct gn_smtp_tx *tx;
	struct gn_smtp_rcpt *rcpt_pending;
	char *line;			/* the current line, NUL-terminated */
	unsigned commands, errors;
	unsigned long long tx_counter;
	struct gn_buf *held;
	struct gn_timer *delay_timer;
	/* Time limits */
	struct gn_timer *session_timer;
	struct gn_timer *data_timer;
	enum smtp_limit expired;	/* reached while data_end is decided */
	/* An added command in progress (extension.c) */
	const struct smtp_command *cmd;
	enum sstate cmd_return;		/* the state it was given in */
	unsigned cmd_lines;
	/* DATA */
	enum dstate dstate;
	bool data_started;
	/* BDAT */
	unsigned long long chunk_left;
	unsigned long long chunk_size;
	bool chunk_last;
	bool chunk_discard;		/* drop the octets, then send chunk_reply */
	bool chunk_ends_tx;		/* after the reply, the transaction ends */
	enum sstate chunk_return;	/* state after a discarded chunk */
	int chunk_code;
	char chunk_enh[16];
	char *chunk_text;		/* gn_malloc'd */
	bool last_cr;			/* the previous chunk octet was CR */
};

/* server.c */
extern const char *const smtp_state_names[];
const char *smtp_hostname(const struct gn_smtp_session *s);
const char *smtp_area(const struct gn_smtp_session *s);
void smtp_input_update(struct gn_smtp_session *s);
void smtp_set_state(struct gn_smtp_session *s, enum sstate st);
void smtp_reply(struct gn_smtp_session *s, int code, const char *enh, const char *fmt, ...)
	GN_PRINTF(4, 5);
void smtp_reply_text(struct gn_smtp_session *s, int code, const char *enh, const char *text);
void smtp_reply_close(struct gn_smtp_session *s, const char *enh, const char *text,
		      const char *reason);
void smtp_reply_bye(struct gn_smtp_session *s, int code, const char *enh,
		    const char *text, const char *reason);
struct gn_smtp_tx *smtp_tx_new(struct gn_smtp_session *s);
void smtp_tx_free(struct gn_smtp_tx **txp);
/* tap.c */
void smtp_taps_chunk(struct gn_smtp_session *s, const char *p, size_t n);
void smtp_taps_tx_end(struct gn_smtp_session *s);
int smtp_register(void);
void smtp_tx_end(struct gn_smtp_session *s, bool call_reset);
enum sstate smtp_idle_state(const struct gn_smtp_session *s);
void smtp_forget_client(struct gn_smtp_session *s);
void smtp_data_timer_start(struct gn_smtp_session *s);
void smtp_data_timer_stop(struct gn_smtp_session *s);
void smtp_time_limit(struct gn_smtp_session *s, enum smtp_limit which);

/* answer.c */
void smtp_policy_call(struct gn_smtp_session *s, enum gn_smtp_stage stage);
bool smtp_enh_valid(const char *e, int code);

/* command.c */
bool smtp_line_input(struct gn_smtp_session *s, const char *p, size_t n);
bool smtp_verb_reserved(const char *verb, size_t len);

/* extension.c */
const struct smtp_command *smtp_ext_command_find(const struct gn_smtp_server *srv,
						 const char *verb, size_t len);
void smtp_ext_command_start(struct gn_smtp_session *s, const struct smtp_command *cmd,
			    const char *args);
void smtp_ext_command_line(struct gn_smtp_session *s, const char *line);
void smtp_ext_command_end(struct gn_smtp_session *s, bool cancel);
void smtp_ext_command_answered(struct gn_smtp_session *s, bool ok);
const struct smtp_param *smtp_ext_param_find(const struct gn_smtp_server *srv,
					     enum gn_smtp_param_cmd cmd, const char *keyword);
bool smtp_ext_offered(const struct gn_smtp_session *s, int ext);
void smtp_ext_ehlo_keywords(struct gn_smtp_session *s, struct gn_buf *b);
bool smtp_esmtp_keyword_valid(const char *k, size_t max);
int smtp_pval_find(const struct smtp_pval *v, size_t n, const char *keyword,
		   const char **value_r);

/* data.c */
size_t smtp_data_feed(struct gn_smtp_session *s, const char *p, size_t n);
size_t smtp_chunk_feed(struct gn_smtp_session *s, const char *p, size_t n);
void smtp_chunk_start(struct gn_smtp_session *s);
void smtp_chunk_discard(struct gn_smtp_session *s, int code, const char *enh,
			const char *text, enum sstate ret, bool ends_tx);


/* ---- the SMTP client (client.c, client-reply.c) ---- */

/* Reply lines: RFC 5321 4.5.3.1.5 says 512 octets with CRLF; servers
 * send longer texts, so the default allows slack.  Lines a reply (EHLO
 * replies have one a keyword). */
#define SMTP_CLIENT_REPLY_LINE 2048u
#define SMTP_CLIENT_REPLY_LINES 100u

struct smtp_reply_parser {
	size_t max_line;
	unsigned max_lines;
	struct gn_buf *line;	/* the partial line */
	struct gn_buf *text;	/* the texts of the reply's lines, LF between */
	unsigned lines;
	int code;
	char enhanced[16];	/* "5.1.1" or "" */
	bool done;		/* a reply was returned: the next starts fresh */
};

void smtp_reply_parser_init(struct smtp_reply_parser *p, size_t max_line,
			    unsigned max_lines);
void smtp_reply_parser_deinit(struct smtp_reply_parser *p);
/* Feeds data.  Returns 1 when a whole reply is in p (code, enhanced,
 * text) after *used_r bytes (the rest is the next reply's), 0 when all
 * was taken and the reply is not whole yet, -1 with *error_r on a line
 * that is not a reply line, too long, too many lines or codes that
 * differ.  After -1 the parser is not to be used again. */
int smtp_reply_parse(struct smtp_reply_parser *p, const char *data, size_t len,
		     size_t *used_r, const char **error_r);

/* Whether the EHLO reply text (as the parser gives it; NULL after HELO:
 * none) has keyword (case-insensitive); *params_r: the rest of its line,
 * or NULL. */
bool smtp_ehlo_keyword(const char *text, const char *keyword, const char **params_r);
/* SIZE's parameter as a number; 0: none, or no limit. */
unsigned long long smtp_ehlo_size(const char *params);

enum smtp_dot_state { SMTP_DOT_BOL = 0, SMTP_DOT_TEXT, SMTP_DOT_CR };
struct smtp_dot {
	enum smtp_dot_state state;
	unsigned long long bytes_in;
};
/* Appends in, normalised to CRLF and dot-stuffed, to out, which must have
 * room for 2 * len + 2 more bytes. */
void smtp_dot_encode(struct smtp_dot *d, const char *in, size_t len, struct gn_buf *out);
/* The end: CRLF when the message did not end with one, then ".CRLF". */
void smtp_dot_finish(struct smtp_dot *d, struct gn_buf *out);

/* `gannet smtp send` (cli-send.c). */
int smtp_cli_send(int argc, char **argv, void *data);
/* `gannet sendmail` (cli-sendmail.c); also gannet run as "sendmail". */
int smtp_cli_sendmail(int argc, char **argv, void *data);

#endif
