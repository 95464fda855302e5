/*
 * modules/imap/parser.c: the command reader and parser (parser.h).
 *
 * The reader copies the client's bytes into the command as they come and
 * watches only what frames a command: line ends, and a literal's marker
 * ({n}, {n+}, ~{n}) right before a line end, outside a quoted string.  The
 * parser then walks the framed text once, left to right; a literal's
 * octets are skipped by their count, so nothing inside one is ever read
 * as syntax.
 *
 * APPEND's messages are the one thing the reader hands out instead of
 * keeping: it knows an APPEND by its name at the start of the command,
 * and every literal of it after the first argument is a message (the
 * grammar has no other literal there: flags are atoms, the date-time a
 * quoted string).  After a message it reads on from what follows it, with
 * the command text cleared, so a MULTIAPPEND of any number of messages
 * never grows the command.
 */
#include "parser.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void imap_limits_init(struct imap_limits *lim)
{
	lim->max_line = 64 * 1024;
	lim->max_command = 64 * 1024;
	lim->max_literal = 64 * 1024;
	lim->max_skip = 1024 * 1024;
	lim->max_nonsync = 0;
	lim->max_depth = 16;
	lim->max_args = 4096;
}

/* ---- the reader ---- */

enum rstate {
	R_LINE = 0,	/* reading a line of the command */
	R_WAIT,		/* a synchronising literal announced, no answer yet */
	R_LITERAL,	/* reading a literal's octets */
	R_DONE,		/* a whole command, not yet taken */
	R_SKIP_LINE,	/* skipping to the end of the line (after an error) */
	R_SKIP_LITERAL,	/* skipping a non-synchronising literal, then the line */
	R_ERROR,	/* an error reported, not yet taken */
	R_FATAL,
	R_MSG_WAIT,	/* an APPEND message announced, no answer yet */
	R_MSG_DATA,	/* handing out a message's octets */
};

struct imap_reader {
	struct imap_limits lim;
	enum rstate st;
	struct gn_buf *cmd;	/* the command so far */
	size_t line_start;	/* offset in cmd of the current line */
	size_t literal;		/* octets of the literal left to read or skip */
	size_t announced;	/* the announced literal's size */
	bool literal8;
	/* R_SKIP_LINE: the last octets of the line skipped so far, for a
	 * literal's marker at its end. */
	char tail[24];
	size_t tail_len;
	/* R_SKIP_LINE on the first line: its first octets, for the tag. */
	char head[64];
	size_t head_len;
	bool want_head;
	char tag[64];
	/* Inside an APPEND whose first message was announced: its tag, and
	 * where the current message's marker starts in cmd. */
	bool append;
	char append_tag[64];
	size_t msg_marker;
	bool msg_sync;
	/* R_MSG_DATA: the chunk handed out last. */
	const char *chunk;
	size_t chunk_len;
	const char *error_status;
	const char *error_code;
	const char *error;
};

struct imap_reader *imap_reader_new(const struct imap_limits *lim)
{
	struct imap_reader *r = gn_calloc(1, sizeof(*r));
	r->lim = *lim;
	r->cmd = gn_buf_new(lim->max_command + 2);
	return r;
}

void imap_reader_free(struct imap_reader **rp)
{
	struct imap_reader *r = *rp;
	if (r == NULL)
		return;
	gn_buf_free(&r->cmd);
	gn_free(r);
	*rp = NULL;
}

/* The tag of the command, for an error reply: the first word of the
 * command so far (or, when nothing was kept, of the input that broke the
 * limit), when it is a valid tag. */
static void remember_tag(struct imap_reader *r, const char *input, size_t input_len)
{
	const char *d = gn_buf_data(r->cmd);
	size_t len = gn_buf_len(r->cmd), n = 0;
	if (r->append) {
		/* The command's start is gone with its first message. */
		memcpy(r->tag, r->append_tag, sizeof(r->tag));
		return;
	}
	if (len == 0) {
		d = input;
		len = input_len;
	}
	while (n < len && n < sizeof(r->tag) - 1 && d[n] > ' ' && d[n] < 0x7f && d[n] != '+' &&
	       strchr("(){%*\"\\", d[n]) == NULL)
		n++;
	if (n == 0 || n >= len || n == sizeof(r->tag) - 1 || d[n] != ' ')
		n = 0;
	if (n == 0) {
		strcpy(r->tag, "*");
		return;
	}
	memcpy(r->tag, d, n);
	r->tag[n] = '\0';
}

static void fail(struct imap_reader *r, const char *code, const char *error, enum rstate next)
{
	remember_tag(r, NULL, 0);
	r->error_code = code;
	r->error = error;
	r->st = next;
}

/* Whether the command in cmd is an APPEND (or a REPLACE, RFC 8508, or
 * UID REPLACE: their one message) and the literal whose marker starts at
 * offset marker in cmd is one of its messages: anything but the mailbox
 * argument.  When it is, the tag is kept. */
static bool append_message(struct imap_reader *r, size_t marker)
{
	if (r->append)
		return true;
	const char *d = gn_buf_data(r->cmd);
	size_t len = gn_buf_len(r->cmd), i = 0;
	while (i < len && i < sizeof(r->append_tag) - 1 && d[i] > ' ' && d[i] < 0x7f)
		i++;
	if (i == 0 || i >= len || d[i] != ' ' || i >= sizeof(r->append_tag) - 1)
		return false;
	size_t tag_len = i, name = ++i;
	while (i < len && isalpha((unsigned char)d[i]))
		i++;
	bool replace = false;
	if (i - name == 3 && strncasecmp(d + name, "UID", 3) == 0 && i < len && d[i] == ' ') {
		name = ++i;
		while (i < len && isalpha((unsigned char)d[i]))
			i++;
		if (i - name != 7 || strncasecmp(d + name, "REPLACE", 7) != 0)
			return false;
		replace = true;
	} else if (i - name == 7 && strncasecmp(d + name, "REPLACE", 7) == 0) {
		replace = true;
	} else if (i - name != 6 || strncasecmp(d + name, "APPEND", 6) != 0) {
		return false;
	}
	if (replace) {
		/* The message number (an atom) before the mailbox. */
		if (i >= len || d[i] != ' ')
			return false;
		i++;
		while (i < len && d[i] > ' ' && d[i] < 0x7f && d[i] != '{' && d[i] != '"')
			i++;
	}
	if (i >= len || d[i] != ' ' || marker <= i + 1)
		return false;
	memcpy(r->append_tag, d, tag_len);
	r->append_tag[tag_len] = '\0';
	return true;
}

/* A line of the command is complete in cmd (from line_start, its CRLF or
 * LF included): a literal announced at its end, or the command's end. */
static enum imap_read line_done(struct imap_reader *r)
{
	const char *d = gn_buf_data(r->cmd) + r->line_start;
	size_t len = gn_buf_len(r->cmd) - r->line_start;
	size_t end = len - 1;
	if (end > 0 && d[end - 1] == '\r')
		end--;
	/* Where the line ends inside a quoted string, a "{5}" there is text,
	 * and the parser will refuse the string. */
	bool quoted = false, escaped = false;
	for (size_t k = 0; k < end; k++) {
		if (!quoted)
			quoted = d[k] == '"';
		else if (escaped)
			escaped = false;
		else if (d[k] == '\\')
			escaped = true;
		else if (d[k] == '"')
			quoted = false;
	}
	if (quoted || end < 3 || d[end - 1] != '}') {
		r->st = R_DONE;
		return IMAP_READ_COMMAND;
	}
	/* ... {digits} or {digits+} or ~{digits} at the line's end. */
	size_t i = end - 1;
	bool sync = true;
	if (d[i - 1] == '+') {
		sync = false;
		i--;
	}
	size_t digits_end = i;
	while (i > 0 && isdigit((unsigned char)d[i - 1]))
		i--;
	if (i == 0 || d[i - 1] != '{' || i == digits_end) {
		r->st = R_DONE;
		return IMAP_READ_COMMAND;
	}
	r->literal8 = i >= 2 && d[i - 2] == '~';
	size_t ndig = digits_end - i;
	uint64_t n = 0;
	bool huge = ndig > 19;
	for (size_t k = i; !huge && k < digits_end; k++)
		n = n * 10 + (uint64_t)(d[k] - '0');
	if (!huge && n > SIZE_MAX)
		huge = true;
	/* RFC 7888 4: with LITERAL-, a non-synchronising literal over 4096
	 * octets is refused with BAD [TOOBIG], and read (skipped) all the
	 * same, since the client sends it. */
	if (!sync && r->lim.max_nonsync > 0 && (huge || n > r->lim.max_nonsync)) {
		if (huge || n > r->lim.max_skip) {
			fail(r, "TOOBIG", "non-synchronising literal too large", R_FATAL);
			return IMAP_READ_FATAL;
		}
		r->literal = (size_t)n;
		fail(r, "TOOBIG", "non-synchronising literal over the LITERAL- limit", R_SKIP_LITERAL);
		return IMAP_READ_MORE;
	}
	size_t marker = r->line_start + i - 1 - (r->literal8 ? 1 : 0);
	if (append_message(r, marker)) {
		/* Its size is the session's to judge (imap.max_message). */
		r->append = true;
		r->msg_marker = marker;
		r->msg_sync = sync;
		r->announced = r->literal = huge ? SIZE_MAX : (size_t)n;
		r->st = R_MSG_WAIT;
		return IMAP_READ_MESSAGE;
	}
	if (huge || n > r->lim.max_literal ||
	    gn_buf_len(r->cmd) + n > r->lim.max_command) {
		if (sync) {
			fail(r, "TOOBIG", "literal too large", R_ERROR);
			return IMAP_READ_ERROR;
		}
		if (huge || n > r->lim.max_skip) {
			fail(r, "TOOBIG", "non-synchronising literal too large", R_FATAL);
			return IMAP_READ_FATAL;
		}
		r->literal = (size_t)n;
		fail(r, "TOOBIG", "literal too large", R_SKIP_LITERAL);
		return IMAP_READ_MORE;
	}
	r->announced = r->literal = (size_t)n;
	if (sync) {
		r->st = R_WAIT;
		return IMAP_READ_LITERAL;
	}
	r->st = R_LITERAL;
	return IMAP_READ_MORE;
}

/* Keeps the first octets of a first line being skipped. */
static void keep_head(struct imap_reader *r, const char *p, size_t n)
{
	size_t room = sizeof(r->head) - r->head_len;
	if (n > room)
		n = room;
	memcpy(r->head + r->head_len, p, n);
	r->head_len += n;
}

/* Keeps the last octets of a line being skipped. */
static void keep_tail(struct imap_reader *r, const char *p, size_t n)
{
	if (n >= sizeof(r->tail)) {
		memcpy(r->tail, p + n - sizeof(r->tail), sizeof(r->tail));
		r->tail_len = sizeof(r->tail);
		return;
	}
	size_t keep = r->tail_len + n > sizeof(r->tail) ? sizeof(r->tail) - n : r->tail_len;
	memmove(r->tail, r->tail + r->tail_len - keep, keep);
	memcpy(r->tail + keep, p, n);
	r->tail_len = keep + n;
}

/* The end of a line being skipped: one that ends with a non-synchronising
 * literal's marker goes on after the literal (skipped too); otherwise the
 * error is reported now.  (A synchronising one gets no "+": the client
 * sends nothing more of the command.) */
static enum imap_read skipped_line(struct imap_reader *r)
{
	const char *p = r->tail;
	size_t i = r->tail_len;
	r->tail_len = 0;
	if (i > 0 && p[i - 1] == '\r')
		i--;
	if (i >= 4 && p[i - 1] == '}' && p[i - 2] == '+') {
		i -= 2;
		size_t e = i;
		while (i > 0 && isdigit((unsigned char)p[i - 1]))
			i--;
		if (i > 0 && p[i - 1] == '{' && e > i && e - i <= 19) {
			char digits[20];
			memcpy(digits, p + i, e - i);
			digits[e - i] = '\0';
			uint64_t n = strtoull(digits, NULL, 10);
			if (n > r->lim.max_skip) {
				r->st = R_FATAL;
				r->error = "non-synchronising literal too large";
				return IMAP_READ_FATAL;
			}
			r->literal = (size_t)n;
			r->st = n > 0 ? R_SKIP_LITERAL : R_SKIP_LINE;
			return IMAP_READ_MORE;
		}
		if (i > 0 && p[i - 1] == '{') {
			r->st = R_FATAL;
			r->error = "non-synchronising literal too large";
			return IMAP_READ_FATAL;
		}
	}
	if (r->want_head) {
		gn_buf_clear(r->cmd);
		remember_tag(r, r->head, r->head_len);
		r->want_head = false;
	}
	r->st = R_ERROR;
	return IMAP_READ_ERROR;
}

enum imap_read imap_reader_feed(struct imap_reader *r, const char *data, size_t len,
				size_t *used_r)
{
	size_t used = 0;
	enum imap_read res = IMAP_READ_MORE;
	while (used < len && res == IMAP_READ_MORE) {
		switch (r->st) {
		case R_LINE: {
			const char *p = data + used;
			size_t avail = len - used;
			const char *nl = memchr(p, '\n', avail);
			size_t take = nl != NULL ? (size_t)(nl - p) + 1 : avail;
			size_t line_len = gn_buf_len(r->cmd) - r->line_start + take;
			if (line_len > r->lim.max_line + 2 || gn_buf_append(r->cmd, p, take) < 0) {
				/* Not taken: R_SKIP_LINE skips it.  What of the line
				 * was kept counts for its end (a literal's marker). */
				keep_tail(r, gn_buf_data(r->cmd) + r->line_start,
					  gn_buf_len(r->cmd) - r->line_start);
				fail(r, "TOOBIG", line_len > r->lim.max_line + 2 ? "line too long" :
				     "command too long", R_SKIP_LINE);
				if (r->line_start == 0 && !r->append) {
					/* On the first line the tag is known once
					 * enough of the line went by, however it came
					 * in (skipped_line()). */
					r->want_head = true;
					r->head_len = 0;
					keep_head(r, gn_buf_data(r->cmd), gn_buf_len(r->cmd));
				}
				break;
			}
			used += take;
			if (nl != NULL)
				res = line_done(r);
			break;
		}
		case R_LITERAL: {
			size_t take = len - used < r->literal ? len - used : r->literal;
			if (gn_buf_append(r->cmd, data + used, take) < 0) {
				/* Cannot happen: the size was checked. */
				fail(r, "TOOBIG", "command too long", R_FATAL);
				res = IMAP_READ_FATAL;
				break;
			}
			used += take;
			r->literal -= take;
			if (r->literal == 0) {
				r->st = R_LINE;
				r->line_start = gn_buf_len(r->cmd);
			}
			break;
		}
		case R_MSG_DATA: {
			size_t take = len - used < r->literal ? len - used : r->literal;
			r->chunk = data + used;
			r->chunk_len = take;
			used += take;
			r->literal -= take;
			if (r->literal == 0) {
				/* What follows the message starts afresh. */
				gn_buf_clear(r->cmd);
				r->line_start = 0;
				r->st = R_LINE;
			}
			res = IMAP_READ_DATA;
			break;
		}
		case R_SKIP_LITERAL: {
			size_t take = len - used < r->literal ? len - used : r->literal;
			used += take;
			r->literal -= take;
			if (r->literal == 0)
				r->st = R_SKIP_LINE;
			break;
		}
		case R_SKIP_LINE: {
			const char *p = data + used;
			const char *nl = memchr(p, '\n', len - used);
			size_t n = nl != NULL ? (size_t)(nl - p) : len - used;
			keep_tail(r, p, n);
			if (r->want_head)
				keep_head(r, p, n + (nl != NULL));
			used += n + (nl != NULL);
			if (nl == NULL)
				break;
			res = skipped_line(r);
			break;
		}
		case R_WAIT:
		case R_DONE:
		case R_ERROR:
		case R_FATAL:
		case R_MSG_WAIT:
			/* Waiting for the session: take nothing. */
			*used_r = used;
			return r->st == R_WAIT ? IMAP_READ_LITERAL : r->st == R_DONE ? IMAP_READ_COMMAND :
			       r->st == R_ERROR ? IMAP_READ_ERROR : r->st == R_MSG_WAIT ? IMAP_READ_MESSAGE :
			       IMAP_READ_FATAL;
		}
	}
	/* A literal that ends exactly at the end of the input is a command
	 * still open; a finished one leaves R_LINE for the rest. */
	*used_r = used;
	return res;
}

const char *imap_reader_command(const struct imap_reader *r, size_t *len_r)
{
	*len_r = gn_buf_len(r->cmd);
	return gn_buf_data(r->cmd);
}

size_t imap_reader_literal_size(const struct imap_reader *r)
{
	return r->announced;
}

void imap_reader_literal_go(struct imap_reader *r)
{
	if (r->st == R_WAIT)
		r->st = r->literal > 0 ? R_LITERAL : R_LINE;
	if (r->st == R_LINE)
		r->line_start = gn_buf_len(r->cmd);
}

void imap_reader_reject(struct imap_reader *r)
{
	imap_reader_next(r);
}

void imap_reader_message(const struct imap_reader *r, const char **args_r, size_t *args_len_r,
			 size_t *size_r, bool *sync_r, bool *literal8_r)
{
	*args_r = gn_buf_data(r->cmd);
	*args_len_r = r->msg_marker;
	*size_r = r->announced;
	*sync_r = r->msg_sync;
	*literal8_r = r->literal8;
}

void imap_reader_message_go(struct imap_reader *r)
{
	if (r->st != R_MSG_WAIT)
		return;
	r->st = R_MSG_DATA;
	if (r->literal == 0) {
		gn_buf_clear(r->cmd);
		r->line_start = 0;
		r->st = R_LINE;
	}
}

bool imap_reader_data(const struct imap_reader *r, const char **data_r, size_t *len_r)
{
	*data_r = r->chunk;
	*len_r = r->chunk_len;
	return r->literal == 0;
}

bool imap_reader_skip(struct imap_reader *r, const char *tag, const char *status, const char *code,
		      const char *text)
{
	if (r->st == R_MSG_WAIT) {
		if (r->announced > r->lim.max_skip)
			return false;
	} else if (r->st != R_MSG_DATA && !(r->st == R_LINE && r->append)) {
		return false;
	}
	size_t n = strlen(tag);
	if (n >= sizeof(r->tag))
		n = 0;
	memcpy(r->tag, n > 0 ? tag : "*", n > 0 ? n : 1);
	r->tag[n > 0 ? n : 1] = '\0';
	r->error_status = status;
	r->error_code = code;
	r->error = text;
	r->want_head = false;
	r->tail_len = 0;
	if (r->st == R_LINE) {
		/* The message ended with its last chunk: skip only the rest
		 * of the line (and what it announces). */
		r->st = R_SKIP_LINE;
		return true;
	}
	r->st = r->literal > 0 ? R_SKIP_LITERAL : R_SKIP_LINE;
	return true;
}

const char *imap_reader_error_tag(const struct imap_reader *r)
{
	return r->tag[0] != '\0' ? r->tag : "*";
}

const char *imap_reader_error_status(const struct imap_reader *r)
{
	return r->error_status != NULL ? r->error_status : "BAD";
}

const char *imap_reader_error_code(const struct imap_reader *r)
{
	return r->error_code;
}

const char *imap_reader_error(const struct imap_reader *r)
{
	return r->error != NULL ? r->error : "syntax error";
}

void imap_reader_next(struct imap_reader *r)
{
	gn_buf_clear(r->cmd);
	r->line_start = 0;
	r->literal = r->announced = 0;
	r->literal8 = false;
	r->tail_len = r->head_len = 0;
	r->want_head = false;
	r->tag[0] = '\0';
	r->append = false;
	r->chunk = NULL;
	r->chunk_len = 0;
	r->error_status = r->error_code = r->error = NULL;
	r->st = R_LINE;
}

/* ---- the parser ---- */

struct pstate {
	struct gn_pool *pool;
	const struct imap_limits *lim;
	const char *d;
	size_t len, pos;
	unsigned args;
	const char *code;
	const char *error;
};

static int perr(struct pstate *ps, const char *code, const char *error)
{
	ps->code = code;
	ps->error = error;
	return -1;
}

static bool at_eol(const struct pstate *ps)
{
	return ps->pos >= ps->len || ps->d[ps->pos] == '\r' || ps->d[ps->pos] == '\n';
}

/* RFC 9051 9: atom-specials are ( ) { SP CTL % * " \ ] and list-wildcards
 * and resp-specials; the parser takes % and * (LIST patterns, sequence
 * sets) and a leading \ (flags) into atoms, and a [ section ] with what it
 * holds (BODY[HEADER.FIELDS (A B)]<0.10>). */
static bool atom_char(unsigned char c)
{
	return c > ' ' && c < 0x7f && c != '(' && c != ')' && c != '{' && c != '"' && c != ']';
}

static int parse_literal(struct pstate *ps, struct imap_arg *arg);

/* A literal inside a section: RFC 9051 9 has header-fld-name = astring,
 * so BODY[HEADER.FIELDS ({7}CRLF Subject)] is valid.  The section stays
 * one atom, with the literal written into it as a quoted string (what
 * FETCH reads field names from); a name a quoted string would not carry
 * plainly (a space, a quote, a parenthesis ...) is no header field name
 * (RFC 5322 2.2: printable ASCII but ':'), and BAD. */
static int section_literal(struct pstate *ps, struct gn_buf *b)
{
	if (ps->d[ps->pos] == '~')
		return perr(ps, NULL, "literal8 in a section");
	struct imap_arg lit;
	if (parse_literal(ps, &lit) < 0)
		return -1;
	if (lit.len == 0)
		return perr(ps, NULL, "empty header field name");
	for (size_t k = 0; k < lit.len; k++) {
		unsigned char c = (unsigned char)lit.str[k];
		if (c <= ' ' || c >= 0x7f || strchr("\"\\()[]{}:", c) != NULL)
			return perr(ps, NULL, "bad character in a header field name");
	}
	(void)gn_buf_append(b, "\"", 1);
	(void)gn_buf_append(b, lit.str, lit.len);
	(void)gn_buf_append(b, "\"", 1);
	return 0;
}

static int parse_atom(struct pstate *ps, struct imap_arg *arg)
{
	size_t start = ps->pos;
	/* The atom rewritten, once a section held a literal. */
	struct gn_buf *b = NULL;
	size_t copied = start;
	int r = 0;
	while (ps->pos < ps->len) {
		unsigned char c = (unsigned char)ps->d[ps->pos];
		if (c == '[') {
			/* A section: up to the matching ']', spaces and
			 * parentheses included, no line ends but those of a
			 * literal's marker. */
			unsigned depth = 0;
			while (ps->pos < ps->len) {
				unsigned char k = (unsigned char)ps->d[ps->pos];
				if (k == '{' || (k == '~' && ps->pos + 1 < ps->len && ps->d[ps->pos + 1] == '{')) {
					if (b == NULL)
						b = gn_buf_new(0);
					(void)gn_buf_append(b, ps->d + copied, ps->pos - copied);
					if ((r = section_literal(ps, b)) < 0)
						goto out;
					copied = ps->pos;
					continue;
				}
				if (k == '\r' || k == '\n' || k < ' ' || k >= 0x7f) {
					r = perr(ps, NULL, "bad character in a section");
					goto out;
				}
				if (k == '[')
					depth++;
				else if (k == ']' && --depth == 0)
					break;
				ps->pos++;
			}
			if (ps->pos >= ps->len) {
				r = perr(ps, NULL, "section without ']'");
				goto out;
			}
			ps->pos++;
			continue;
		}
		if (!atom_char(c))
			break;
		ps->pos++;
	}
	if (ps->pos == start) {
		r = perr(ps, NULL, "atom expected");
		goto out;
	}
	arg->type = IMAP_ARG_ATOM;
	if (b != NULL) {
		(void)gn_buf_append(b, ps->d + copied, ps->pos - copied);
		arg->len = gn_buf_len(b);
		arg->str = gn_pool_strndup(ps->pool, gn_buf_data(b), arg->len);
	} else {
		arg->len = ps->pos - start;
		arg->str = gn_pool_strndup(ps->pool, ps->d + start, arg->len);
	}
	if (arg->len == 3 && strncasecmp(arg->str, "NIL", 3) == 0)
		arg->type = IMAP_ARG_NIL;
out:
	gn_buf_free(&b);
	return r;
}

bool imap_utf8_valid(const void *data, size_t len)
{
	const unsigned char *s = data;
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t n;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += n + 1;
	}
	return true;
}

static int parse_quoted(struct pstate *ps, struct imap_arg *arg)
{
	ps->pos++;	/* the opening quote */
	struct gn_buf *b = gn_buf_new(0);
	for (;;) {
		if (ps->pos >= ps->len || ps->d[ps->pos] == '\r' || ps->d[ps->pos] == '\n') {
			gn_buf_free(&b);
			return perr(ps, NULL, "unterminated quoted string");
		}
		char c = ps->d[ps->pos++];
		if (c == '"')
			break;
		if (c == '\\') {
			if (ps->pos >= ps->len || (ps->d[ps->pos] != '\\' && ps->d[ps->pos] != '"')) {
				gn_buf_free(&b);
				return perr(ps, NULL, "bad escape in a quoted string");
			}
			c = ps->d[ps->pos++];
		} else if (c == '\0') {
			gn_buf_free(&b);
			return perr(ps, NULL, "NUL in a quoted string");
		}
		(void)gn_buf_append(b, &c, 1);
	}
	if (!imap_utf8_valid(gn_buf_data(b), gn_buf_len(b))) {
		gn_buf_free(&b);
		return perr(ps, NULL, "quoted string is not UTF-8");
	}
	arg->type = IMAP_ARG_STRING;
	arg->len = gn_buf_len(b);
	arg->str = gn_pool_strndup(ps->pool, gn_buf_data(b), arg->len);
	gn_buf_free(&b);
	return 0;
}

static int parse_literal(struct pstate *ps, struct imap_arg *arg)
{
	bool l8 = false;
	if (ps->d[ps->pos] == '~') {
		l8 = true;
		ps->pos++;
		if (ps->pos >= ps->len || ps->d[ps->pos] != '{')
			return perr(ps, NULL, "'{' expected after '~'");
	}
	ps->pos++;	/* '{' */
	size_t start = ps->pos;
	uint64_t n = 0;
	while (ps->pos < ps->len && isdigit((unsigned char)ps->d[ps->pos]) && ps->pos - start < 20)
		n = n * 10 + (uint64_t)(ps->d[ps->pos++] - '0');
	if (ps->pos == start)
		return perr(ps, NULL, "literal size expected");
	if (ps->pos < ps->len && ps->d[ps->pos] == '+')
		ps->pos++;
	if (ps->pos >= ps->len || ps->d[ps->pos] != '}')
		return perr(ps, NULL, "'}' expected");
	ps->pos++;
	if (ps->pos < ps->len && ps->d[ps->pos] == '\r')
		ps->pos++;
	if (ps->pos >= ps->len || ps->d[ps->pos] != '\n')
		return perr(ps, NULL, "a literal's size must end the line");
	ps->pos++;
	if (n > ps->len - ps->pos)
		return perr(ps, NULL, "literal shorter than announced");
	const char *s = ps->d + ps->pos;
	if (!l8 && memchr(s, '\0', (size_t)n) != NULL)
		return perr(ps, NULL, "NUL in a literal (use literal8)");
	arg->type = IMAP_ARG_LITERAL;
	arg->literal8 = l8;
	arg->len = (size_t)n;
	char *copy = gn_pool_alloc(ps->pool, (size_t)n + 1);
	memcpy(copy, s, (size_t)n);
	arg->str = copy;
	ps->pos += (size_t)n;
	return 0;
}

static int parse_list(struct pstate *ps, struct imap_arg **args_r, unsigned *count_r,
		      unsigned depth, char close);

static int parse_arg(struct pstate *ps, struct imap_arg *arg, unsigned depth)
{
	if (++ps->args > ps->lim->max_args)
		return perr(ps, "LIMIT", "too many arguments");
	char c = ps->d[ps->pos];
	if (c == '"')
		return parse_quoted(ps, arg);
	if (c == '{' || c == '~')
		return parse_literal(ps, arg);
	if (c == '(') {
		if (depth >= ps->lim->max_depth)
			return perr(ps, "LIMIT", "lists nested too deep");
		ps->pos++;
		arg->type = IMAP_ARG_LIST;
		return parse_list(ps, &arg->list, &arg->count, depth + 1, ')');
	}
	return parse_atom(ps, arg);
}

/* Arguments separated by single spaces up to close (')' for a list, '\0'
 * for the line's end). */
static int parse_list(struct pstate *ps, struct imap_arg **args_r, unsigned *count_r,
		      unsigned depth, char close)
{
	unsigned count = 0, cap = 0;
	struct imap_arg *args = NULL;
	for (;;) {
		if (close == ')' && ps->pos < ps->len && ps->d[ps->pos] == ')') {
			ps->pos++;
			break;
		}
		if (close == '\0' && at_eol(ps))
			break;
		if (close == ')' && at_eol(ps))
			return perr(ps, NULL, "unterminated list");
		if (count > 0 || close == '\0') {
			if (ps->d[ps->pos] != ' ')
				return perr(ps, NULL, "space expected between arguments");
			ps->pos++;
			if (ps->pos >= ps->len || ps->d[ps->pos] == ' ' || at_eol(ps))
				return perr(ps, NULL, "argument expected");
		}
		if (count == cap) {
			unsigned ncap = cap == 0 ? 8 : cap * 2;
			struct imap_arg *n = gn_pool_alloc(ps->pool, ncap * sizeof(*n));
			if (count > 0)
				memcpy(n, args, count * sizeof(*n));
			args = n;
			cap = ncap;
		}
		memset(&args[count], 0, sizeof(args[count]));
		if (parse_arg(ps, &args[count], depth) < 0)
			return -1;
		count++;
	}
	*args_r = args;
	*count_r = count;
	return 0;
}

int imap_parse(struct gn_pool *pool, const struct imap_limits *lim, const char *data, size_t len,
	       struct imap_command *cmd, const char **code_r, const char **error_r)
{
	struct pstate ps = { .pool = pool, .lim = lim, .d = data, .len = len };
	memset(cmd, 0, sizeof(*cmd));
	*code_r = NULL;
	/* tag: 1*<any ASTRING-CHAR except "+"> */
	size_t i = 0;
	while (i < len && data[i] > ' ' && data[i] < 0x7f && data[i] != '+' &&
	       strchr("(){%*\"\\", data[i]) == NULL)
		i++;
	if (i == 0 || i > 63 || i >= len || data[i] != ' ') {
		*error_r = i == 0 || i >= len || data[i] != ' ' ? "tag expected" : "tag too long";
		return -1;
	}
	cmd->tag = gn_pool_strndup(pool, data, i);
	ps.pos = i + 1;
	size_t start = ps.pos;
	while (ps.pos < len && isalnum((unsigned char)data[ps.pos]) && ps.pos - start < 32)
		ps.pos++;
	if (ps.pos == start || (ps.pos < len && !at_eol(&ps) && data[ps.pos] != ' ')) {
		*error_r = "command name expected";
		return -1;
	}
	char *name = gn_pool_strndup(pool, data + start, ps.pos - start);
	for (char *p = name; *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	cmd->name = name;
	if (parse_list(&ps, &cmd->args, &cmd->count, 0, '\0') < 0) {
		*code_r = ps.code;
		*error_r = ps.error;
		return -1;
	}
	/* The line end, and nothing after it. */
	if (ps.pos < len && data[ps.pos] == '\r')
		ps.pos++;
	if (ps.pos >= len || data[ps.pos] != '\n' || ps.pos + 1 != len) {
		*error_r = ps.pos < len && data[ps.pos] != '\n' ? "bare CR" : "line end expected";
		return -1;
	}
	return 0;
}

int imap_parse_args(struct gn_pool *pool, const struct imap_limits *lim, const char *data, size_t len,
		    struct imap_arg **args_r, unsigned *count_r, const char **code_r,
		    const char **error_r)
{
	struct pstate ps = { .pool = pool, .lim = lim, .d = data, .len = len };
	*code_r = NULL;
	*args_r = NULL;
	*count_r = 0;
	if (parse_list(&ps, args_r, count_r, 0, '\0') < 0) {
		*code_r = ps.code;
		*error_r = ps.error;
		return -1;
	}
	if (ps.pos != len) {
		*error_r = "unexpected line end";
		return -1;
	}
	return 0;
}

bool imap_arg_string(const struct imap_arg *arg, const char **s_r, size_t *len_r)
{
	if (arg->type != IMAP_ARG_STRING && arg->type != IMAP_ARG_LITERAL)
		return false;
	*s_r = arg->str;
	*len_r = arg->len;
	return true;
}

bool imap_arg_astring(const struct imap_arg *arg, const char **s_r, size_t *len_r)
{
	if (arg->type == IMAP_ARG_ATOM) {
		/* ASTRING-CHAR: atom chars and "]"; not a section or a
		 * wildcard. */
		for (size_t i = 0; i < arg->len; i++)
			if (strchr("%*[", arg->str[i]) != NULL || (i == 0 && arg->str[i] == '\\'))
				return false;
		*s_r = arg->str;
		*len_r = arg->len;
		return true;
	}
	if (arg->type == IMAP_ARG_NIL) {
		/* "NIL" is a valid astring (an atom); the parser calls it NIL
		 * for nstring's sake. */
		*s_r = arg->str;
		*len_r = arg->len;
		return true;
	}
	return imap_arg_string(arg, s_r, len_r);
}

bool imap_arg_atom_is(const struct imap_arg *arg, const char *word)
{
	return arg->type == IMAP_ARG_ATOM && strcasecmp(arg->str, word) == 0;
}
