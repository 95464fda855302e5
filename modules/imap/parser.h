/*
 * modules/imap/parser.h: reading IMAP commands (RFC 9051 2.2, 4 and 9).
 *
 * Two steps, both with limits on everything the client controls:
 *
 *   the reader   takes the client's bytes as they come and frames one
 *                command: its lines and the literals between them
 *                ({n} synchronising, {n+} non-synchronising, RFC 7888;
 *                ~{n} literal8, RFC 3516).  For a synchronising literal it
 *                stops and lets the session answer "+" (or refuse).  It
 *                never needs the whole command in the connection's input
 *                buffer: bytes are copied into the command as they arrive.
 *                The exception is APPEND's message (RFC 9051 6.3.12, RFC
 *                3502 MULTIAPPEND): a literal of an APPEND command that is
 *                not its first argument (the mailbox) is handed out in
 *                chunks as it arrives (so is REPLACE's and UID REPLACE's,
 *                RFC 8508, after their message number and mailbox), never copied into the command, so a
 *                message of any size streams through bounded memory.
 *   the parser   turns a framed command into its tag, its name and a tree
 *                of arguments (atoms, quoted strings, literals, NIL,
 *                parenthesised lists), NUL-terminated copies in a pool.
 *
 * Limits: a line of at most max_line octets, a whole command (lines and
 * literals) of at most max_command, a literal of at most max_literal, list
 * nesting of at most max_depth and at most max_args arguments in all.  A
 * command that breaks one is answered with BAD [TOOBIG] or BAD [LIMIT]
 * (RFC 5530, RFC 7889), the rest of it is skipped, and the session goes
 * on with the next command; only a non-synchronising literal too large to
 * skip ends the connection (RFC 7888 4: the client sends it anyway).
 */
#ifndef GANNET_IMAP_PARSER_H
#define GANNET_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <gannet/mem.h>

struct imap_limits {
	size_t max_line;
	size_t max_command;
	size_t max_literal;
	size_t max_skip;	/* a non-synchronising literal up to this is skipped */
	/* LITERAL- (RFC 7888 4): a non-synchronising literal larger than
	 * this is refused with BAD [TOOBIG], APPEND's message included;
	 * 0: no such limit (LITERAL+). */
	size_t max_nonsync;
	unsigned max_depth;
	unsigned max_args;
};

/* Defaults: 64 KiB lines and commands, 64 KiB literals (APPEND streams its
 * message past this limit), 16 levels, 4096 arguments. */
void imap_limits_init(struct imap_limits *lim);

/* ---- the reader ---- */

enum imap_read {
	IMAP_READ_MORE = 0,	/* all input taken, the command is not complete */
	IMAP_READ_COMMAND,	/* a whole command: imap_reader_command() */
	IMAP_READ_LITERAL,	/* a synchronising literal is announced: send
				 * "+ ..." and call imap_reader_literal_go(), or
				 * refuse it with imap_reader_reject() */
	IMAP_READ_ERROR,	/* the command broke a limit or the framing:
				 * answer imap_reader_error() (BAD with its tag
				 * when known); the rest is being skipped */
	IMAP_READ_FATAL,	/* the connection cannot go on: answer BYE and
				 * close */
	IMAP_READ_MESSAGE,	/* an APPEND message's literal is announced
				 * (imap_reader_message()): take it with
				 * imap_reader_message_go() (after "+" when it
				 * is synchronising), or refuse it with
				 * imap_reader_reject() (synchronising) or
				 * imap_reader_skip() (non-synchronising) */
	IMAP_READ_DATA,		/* a chunk of the message: imap_reader_data(),
				 * valid until the input it came from is
				 * consumed.  After the last chunk the reader
				 * reads what follows the message: another
				 * message (IMAP_READ_MESSAGE) or the line's
				 * end (IMAP_READ_COMMAND, the command being
				 * what followed the last message) */
};

struct imap_reader;

struct imap_reader *imap_reader_new(const struct imap_limits *lim);
void imap_reader_free(struct imap_reader **r);

/* Takes input from data[0..len) and returns what happened, with the
 * octets it used in *used_r (the caller consumes them).  IMAP_READ_MORE
 * means every octet was used; after any other result the reader takes
 * nothing more until the caller acts on it (answers the command, says "+"
 * or refuses the literal, reports the error), so input after a command
 * stays where it is while the command runs. */
enum imap_read imap_reader_feed(struct imap_reader *r, const char *data, size_t len,
				size_t *used_r);

/* The command framed (after IMAP_READ_COMMAND), with the positions of its
 * literals, until imap_reader_next(). */
const char *imap_reader_command(const struct imap_reader *r, size_t *len_r);
/* The announced literal's size (after IMAP_READ_LITERAL).  (Whether an
 * APPEND message is a literal8: imap_reader_message().) */
size_t imap_reader_literal_size(const struct imap_reader *r);
/* The session said "+": the reader takes the literal's octets. */
void imap_reader_literal_go(struct imap_reader *r);
/* The session refused the literal (it answered the command): the client
 * does not send it (RFC 9051 4.3); the command is dropped. */
void imap_reader_reject(struct imap_reader *r);

/* After IMAP_READ_MESSAGE: the command's text before the message's
 * marker ("a APPEND INBOX (\Seen) " for the first message, " (\Seen) "
 * or " " for a further one: what followed the previous message), the
 * announced size (SIZE_MAX when it does not fit), whether it is
 * synchronising and whether it is a literal8. */
void imap_reader_message(const struct imap_reader *r, const char **args_r, size_t *args_len_r,
			 size_t *size_r, bool *sync_r, bool *literal8_r);
/* The session takes the message: IMAP_READ_DATA follows. */
void imap_reader_message_go(struct imap_reader *r);
/* After IMAP_READ_DATA: the chunk, and whether it ends the message. */
bool imap_reader_data(const struct imap_reader *r, const char **data_r, size_t *len_r);
/* The session refuses an APPEND message that is non-synchronising (after
 * IMAP_READ_MESSAGE) or fails one being taken (after IMAP_READ_DATA): the
 * rest of the message and of the command (further messages included) is
 * read and dropped, then IMAP_READ_ERROR reports tag (copied), status
 * ("NO" or "BAD"), code and text (not copied: they must live until
 * then).  Returns false, taking nothing, when the
 * announced message is larger than max_skip: then the session ends
 * (IMAP_READ_FATAL's case).  A message being taken is always skipped to
 * its end: it was accepted, and its size checked then. */
bool imap_reader_skip(struct imap_reader *r, const char *tag, const char *status, const char *code,
		      const char *text);
/* After IMAP_READ_ERROR or IMAP_READ_FATAL: the tag when the command got
 * that far (else "*"), the response code ("TOOBIG", "LIMIT" or NULL for
 * plain syntax) and a text. */
const char *imap_reader_error_tag(const struct imap_reader *r);
/* "BAD", or what imap_reader_skip() said. */
const char *imap_reader_error_status(const struct imap_reader *r);
const char *imap_reader_error_code(const struct imap_reader *r);
const char *imap_reader_error(const struct imap_reader *r);
/* Starts the next command (after a command was answered, or an error). */
void imap_reader_next(struct imap_reader *r);

/* ---- the parser ---- */

enum imap_arg_type {
	IMAP_ARG_ATOM = 0,	/* an atom, also \Flag, sequence sets, BODY[...]<...> */
	IMAP_ARG_STRING,	/* a quoted string */
	IMAP_ARG_LITERAL,	/* a literal (literal8: the flag) */
	IMAP_ARG_NIL,
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	const char *str;	/* NUL-terminated (atoms, strings, literals) */
	size_t len;
	bool literal8;
	struct imap_arg *list;	/* a list's elements */
	unsigned count;
};

struct imap_command {
	const char *tag;
	const char *name;	/* upper case */
	struct imap_arg *args;
	unsigned count;
};

/* Parses a framed command (imap_reader_command()) into cmd, from pool.
 * Returns 0, or -1 with *code_r ("LIMIT" or NULL) and *error_r; cmd->tag
 * is set whenever the command got as far as its tag. */
int imap_parse(struct gn_pool *pool, const struct imap_limits *lim, const char *data, size_t len,
	       struct imap_command *cmd, const char **code_r, const char **error_r);

/* Parses arguments that follow a command's name or an earlier argument,
 * each preceded by one space, up to the end of data (no line end): what
 * comes between APPEND's messages.  Returns 0 with the arguments in
 * *args_r and *count_r, or -1 like imap_parse(). */
int imap_parse_args(struct gn_pool *pool, const struct imap_limits *lim, const char *data, size_t len,
		    struct imap_arg **args_r, unsigned *count_r, const char **code_r,
		    const char **error_r);

/* Argument helpers: whether arg is an astring (atom, string or literal)
 * and its value; the same for a string (string or literal). */
bool imap_arg_astring(const struct imap_arg *arg, const char **s_r, size_t *len_r);
bool imap_arg_string(const struct imap_arg *arg, const char **s_r, size_t *len_r);
bool imap_arg_atom_is(const struct imap_arg *arg, const char *word);
/* Whether data[0..len) is valid UTF-8 (no overlongs, surrogates or values
 * past U+10FFFF). */
bool imap_utf8_valid(const void *data, size_t len);

#endif
