/*
 * modules/imap/cmd-fetch.c: FETCH and STORE (RFC 9051 6.4.5, 6.4.6) and
 * the UID command that prefixes them (6.4.9).
 *
 * FETCH answers from the store's message list: UID, FLAGS, INTERNALDATE,
 * RFC822.SIZE, MODSEQ (RFC 7162), SAVEDATE (RFC 8514) and the FAST macro,
 * the CHANGEDSINCE and VANISHED modifiers (RFC 7162 3.1.4.1, 3.2.6);
 * STORE takes UNCHANGEDSINCE (3.1.3); from the message's part tree (ENVELOPE,
 * BODYSTRUCTURE, BODY, the ALL and FULL macros; bodystructure.c); and from
 * the message itself: BODY[] and its sections, of the message and of its
 * parts (BODY[1.2], [1.MIME], [2.HEADER] ...; fetch-section.c says which
 * bytes), their PEEK forms and partial <offset.count>, RFC822,
 * RFC822.HEADER, RFC822.TEXT, and BINARY[], BINARY.PEEK[] and
 * BINARY.SIZE[] with the transfer encoding undone as the bytes stream.
 * Message contents are streamed: the command becomes a job
 * that writes while the connection's output stays under FETCH_HIGH_WATER
 * and goes on when it drained (the protocol's writable callback), with the
 * client's input paused meanwhile, so a large message never sits whole in
 * memory or in the output buffer.
 */
#include "imap.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum {
	F_UID = 1 << 0,
	F_FLAGS = 1 << 1,
	F_INTERNALDATE = 1 << 2,
	F_SIZE = 1 << 3,
	F_BODY = 1 << 4,	/* some body item: the job reads messages */
	F_SETS_SEEN = 1 << 5,	/* some item without .PEEK */
	F_ENVELOPE = 1 << 6,
	F_BODYSTRUCTURE = 1 << 7,
	F_BODYSHORT = 1 << 8,	/* BODY without a section */
	F_MIME = 1 << 9,	/* some item needs the part tree */
	F_MODSEQ = 1 << 10,	/* RFC 7162 3.1.4.2 */
	F_SAVEDATE = 1 << 11,	/* RFC 8514 4.2 */
};

/* Output is written while less than this is pending. */
#define FETCH_HIGH_WATER (256u * 1024u)
#define FETCH_READ (64u * 1024u)
/* Messages opened with body items in one query (their first FETCH_READ
 * bytes each: at most 512 KiB held ahead). */
#define FETCH_BATCH 8
/* The header is looked for in this much of a message at most. */
#define FETCH_HEADER_MAX (1024u * 1024u)

enum body_part {
	PART_ALL = 0,
	PART_HEADER,
	PART_TEXT,
	PART_FIELDS,
	PART_FIELDS_NOT,
	PART_MIME,		/* [n.MIME] */
};

/* A body item as asked for. */
struct body_item {
	const char *name;	/* in the response: "BODY[HEADER]", "RFC822" */
	enum body_part part;
	const char **fields;	/* HEADER.FIELDS (.NOT) */
	size_t n_fields;
	bool partial;
	uint64_t offset, count;
	/* The part numbers of the section (BODY[1.2.TEXT]): none for the
	 * message itself. */
	uint32_t *nums;
	size_t depth;
	bool binary;		/* BINARY[]: the transfer encoding undone */
	bool size_only;		/* BINARY.SIZE[] */
};

/* A FETCH being answered. */
struct imap_fetch_job {
	struct gn_pool *pool;
	char *tag;
	bool uid;
	int bits;
	struct body_item *items;
	size_t n_items;
	size_t *msns;
	struct gn_store_message **msgs;
	size_t n, next;		/* messages; the one being written */
	/* Bodies opened ahead, by message index (FETCH_BATCH at a time):
	 * those below opened_to not yet taken. */
	struct gn_store_body **opened;
	size_t opened_to;
	/* The message being written. */
	struct gn_store_body *body;
	uint64_t header_len;
	size_t item;		/* the body item being written */
	uint64_t pos, end;	/* bytes of a literal still to stream */
	bool streaming;
	bool line_items;	/* the message's line has items before the body items */
	/* The part tree of the message being written (F_MIME), and memory
	 * for the message. */
	struct gn_mime_message *mime;
	uint64_t prefix_len;
	struct gn_pool *msg_pool;
	/* BINARY: after the raw bytes (pos, end), the decoded bytes of the
	 * stored range [rpos, rend): dskip dropped, then dleft written. */
	struct imap_decoder dec;
	uint64_t rpos, rend, dskip, dleft;
	bool dfinished;
	/* A message whose BINARY item cannot be answered was left out: the
	 * tagged NO's response code and text. */
	const char *refusal_code, *refusal_text;
};

/* The field names of "HEADER.FIELDS (A "B" C)": -1 when malformed. */
static int parse_fields(struct gn_pool *pool, const char *list, struct body_item *it)
{
	if (*list != '(')
		return -1;
	const char *end = strchr(list, ')');
	if (end == NULL || end[1] != '\0')
		return -1;
	size_t cap = 1;
	for (const char *p = list; p < end; p++)
		cap += *p == ' ';
	it->fields = gn_pool_alloc(pool, cap * sizeof(*it->fields));
	it->n_fields = 0;
	const char *p = list + 1;
	while (p < end) {
		const char *w = p;
		while (p < end && *p != ' ')
			p++;
		size_t n = (size_t)(p - w);
		if (n >= 2 && w[0] == '"' && w[n - 1] == '"') {
			w++;
			n -= 2;
		}
		if (n == 0)
			return -1;
		for (size_t k = 0; k < n; k++)
			if (w[k] <= ' ' || w[k] >= 0x7f || w[k] == ':')
				return -1;
		it->fields[it->n_fields++] = gn_pool_strndup(pool, w, n);
		if (p < end)
			p++;
	}
	return it->n_fields > 0 ? 0 : -1;
}

/* A body item: BODY[...] and BODY.PEEK[...] with an optional partial,
 * RFC822, RFC822.HEADER, RFC822.TEXT.  0, 1 when it is no body item, -1
 * when malformed or not served yet (*why_r). */
static int parse_body_item(struct gn_pool *pool, const char *atom, struct body_item *it, bool *peek_r,
			   const char **why_r)
{
	memset(it, 0, sizeof(*it));
	*peek_r = false;
	if (strcasecmp(atom, "RFC822") == 0 || strcasecmp(atom, "RFC822.HEADER") == 0 ||
	    strcasecmp(atom, "RFC822.TEXT") == 0) {
		it->part = atom[6] == '\0' ? PART_ALL : (atom[7] == 'H' || atom[7] == 'h') ? PART_HEADER : PART_TEXT;
		it->name = it->part == PART_ALL ? "RFC822" : it->part == PART_HEADER ? "RFC822.HEADER" : "RFC822.TEXT";
		*peek_r = it->part == PART_HEADER;	/* RFC 3501 6.4.5 */
		return 0;
	}
	const char *p, *kind = "BODY";
	if (strncasecmp(atom, "BODY.PEEK[", 10) == 0) {
		p = atom + 10;
		*peek_r = true;
	} else if (strncasecmp(atom, "BODY[", 5) == 0) {
		p = atom + 5;
	} else if (strncasecmp(atom, "BINARY.PEEK[", 12) == 0) {
		p = atom + 12;
		*peek_r = true;
		it->binary = true;
	} else if (strncasecmp(atom, "BINARY[", 7) == 0) {
		p = atom + 7;
		it->binary = true;
	} else if (strncasecmp(atom, "BINARY.SIZE[", 12) == 0) {
		p = atom + 12;
		*peek_r = true;
		it->binary = it->size_only = true;
	} else {
		return 1;
	}
	if (it->binary)
		kind = it->size_only ? "BINARY.SIZE" : "BINARY";
	const char *close = strrchr(p, ']');
	if (close == NULL) {
		*why_r = "section without ']'";
		return -1;
	}
	char *section = gn_pool_strndup(pool, p, (size_t)(close - p));
	/* RFC 9051 6.4.5: section-part ["." section-text] / section-text;
	 * BINARY takes part numbers only (section-binary). */
	const char *text;
	if (imap_section_parse_path(pool, section, &it->nums, &it->depth, &text) < 0) {
		*why_r = "bad part number in the section";
		return -1;
	}
	if (*text == '\0') {
		it->part = PART_ALL;
	} else if (it->binary) {
		*why_r = "BINARY takes part numbers only";
		return -1;
	} else if (strcasecmp(text, "HEADER") == 0) {
		it->part = PART_HEADER;
	} else if (strcasecmp(text, "TEXT") == 0) {
		it->part = PART_TEXT;
	} else if (strcasecmp(text, "MIME") == 0 && it->depth > 0) {
		it->part = PART_MIME;
	} else if (strncasecmp(text, "HEADER.FIELDS.NOT ", 18) == 0) {
		it->part = PART_FIELDS_NOT;
		if (parse_fields(pool, text + 18, it) < 0) {
			*why_r = "bad HEADER.FIELDS.NOT list";
			return -1;
		}
	} else if (strncasecmp(text, "HEADER.FIELDS ", 14) == 0) {
		it->part = PART_FIELDS;
		if (parse_fields(pool, text + 14, it) < 0) {
			*why_r = "bad HEADER.FIELDS list";
			return -1;
		}
	} else {
		*why_r = "unknown section";
		return -1;
	}
	const char *q = close + 1;
	if (*q == '<' && it->size_only) {
		*why_r = "BINARY.SIZE takes no partial";
		return -1;
	}
	if (*q == '<') {
		char *e;
		unsigned long long o = strtoull(q + 1, &e, 10);
		if (e == q + 1 || *e != '.') {
			*why_r = "bad partial";
			return -1;
		}
		const char *c = e + 1;
		unsigned long long n = strtoull(c, &e, 10);
		if (e == c || *e != '>' || e[1] != '\0' || n == 0) {
			*why_r = "bad partial";
			return -1;
		}
		it->partial = true;
		it->offset = o;
		it->count = n;
	} else if (*q != '\0') {
		*why_r = "bad item after the section";
		return -1;
	}
	/* In the response: BODY[section] as asked, without .PEEK. */
	char *name = gn_pool_printf(pool, "%s[%s]", kind, section);
	for (char *k = name; *k != '\0' && *k != ' '; k++)
		*k = (char)(*k >= 'a' && *k <= 'z' ? *k - 32 : *k);
	it->name = name;
	return 0;
}

/* The items of a FETCH: a macro, one item, or a list of items.  Returns
 * the F_* bits (body items into job), or -1 after answering BAD. */
static int fetch_items(struct imap_session *s, struct imap_command *cmd, const struct imap_arg *arg,
		       struct imap_fetch_job *job)
{
	const struct imap_arg *items = arg;
	unsigned n = 1;
	if (arg->type == IMAP_ARG_LIST) {
		items = arg->list;
		n = arg->count;
	}
	int bits = 0;
	job->items = gn_pool_alloc(job->pool, (n + 1) * sizeof(*job->items));
	for (unsigned i = 0; i < n; i++) {
		const struct imap_arg *a = &items[i];
		bool peek;
		const char *why = NULL;
		int b = a->type == IMAP_ARG_ATOM ?
			parse_body_item(job->pool, a->str, &job->items[job->n_items], &peek, &why) : 1;
		if (b < 0) {
			imap_tagged(s, cmd->tag, "BAD", NULL, "FETCH %s: %s", a->str, why);
			return -1;
		}
		if (b == 0) {
			const struct body_item *it = &job->items[job->n_items++];
			bits |= F_BODY | (peek ? 0 : F_SETS_SEEN) | (it->depth > 0 || it->binary ? F_MIME : 0);
			continue;
		}
		if (imap_arg_atom_is(a, "UID"))
			bits |= F_UID;
		else if (imap_arg_atom_is(a, "FLAGS"))
			bits |= F_FLAGS;
		else if (imap_arg_atom_is(a, "INTERNALDATE"))
			bits |= F_INTERNALDATE;
		else if (imap_arg_atom_is(a, "RFC822.SIZE"))
			bits |= F_SIZE;
		else if (imap_arg_atom_is(a, "MODSEQ"))
			bits |= F_MODSEQ;
		else if (imap_arg_atom_is(a, "SAVEDATE"))
			bits |= F_SAVEDATE;
		else if (imap_arg_atom_is(a, "ENVELOPE"))
			bits |= F_ENVELOPE | F_BODY | F_MIME;
		else if (imap_arg_atom_is(a, "BODYSTRUCTURE"))
			bits |= F_BODYSTRUCTURE | F_BODY | F_MIME;
		else if (imap_arg_atom_is(a, "BODY"))
			bits |= F_BODYSHORT | F_BODY | F_MIME;
		else if (arg->type != IMAP_ARG_LIST && imap_arg_atom_is(a, "FAST"))
			bits |= F_FLAGS | F_INTERNALDATE | F_SIZE;
		/* RFC 9051 6.4.5: the macros ALL and FULL. */
		else if (arg->type != IMAP_ARG_LIST && imap_arg_atom_is(a, "ALL"))
			bits |= F_FLAGS | F_INTERNALDATE | F_SIZE | F_ENVELOPE | F_BODY | F_MIME;
		else if (arg->type != IMAP_ARG_LIST && imap_arg_atom_is(a, "FULL"))
			bits |= F_FLAGS | F_INTERNALDATE | F_SIZE | F_ENVELOPE | F_BODYSHORT | F_BODY | F_MIME;
		else {
			imap_tagged(s, cmd->tag, "BAD", NULL, "FETCH item not supported (yet): %s",
				    a->type == IMAP_ARG_ATOM ? a->str : "?");
			return -1;
		}
	}
	if (n == 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "FETCH takes one or more items");
		return -1;
	}
	return bits;
}

/* The store's messages for msns (by UID), index-aligned with msns; NULL
 * entries for messages gone meanwhile.  -1 on a database failure. */
static int load_messages(struct imap_session *s, struct gn_pool *pool, const size_t *msns, size_t n,
			 struct gn_store_message ***out_r)
{
	struct gn_store_message **out = gn_pool_alloc(pool, (n + 1) * sizeof(*out));
	*out_r = out;
	if (n == 0)
		return 0;
	struct gn_store_message **list;
	size_t count;
	const char *err;
	const struct imap_view *v = s->sel;
	if (gn_store_message_list(pool, s->account_id, v->id, v->uids[msns[0] - 1],
				  v->uids[msns[n - 1] - 1], &list, &count, &err) < 0) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=fetch_failed conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, err));
		return -1;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t uid = v->uids[msns[i] - 1];
		while (k < count && gn_store_message_uid(list[k]) < uid)
			k++;
		out[i] = k < count && gn_store_message_uid(list[k]) == uid ? list[k] : NULL;
	}
	return 0;
}

static void append_internaldate(struct gn_buf *b, time_t t)
{
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	gmtime_r(&t, &tm);
	(void)gn_buf_printf(b, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday, months[tm.tm_mon],
			    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The simple items of message m, after "* msn FETCH (" was written:
 * "UID 7 FLAGS (...) ...", into b.  Returns whether anything was added. */
static bool simple_items(struct imap_session *s, struct gn_buf *b, const struct gn_store_message *m, int bits)
{
	const char *sep = "";
	if (bits & F_UID) {
		(void)gn_buf_printf(b, "UID %u", (unsigned)gn_store_message_uid(m));
		sep = " ";
	}
	if (bits & F_FLAGS) {
		size_t nk;
		const char *const *kw = gn_store_message_keywords(m, &nk);
		(void)gn_buf_printf(b, "%sFLAGS ", sep);
		imap_append_flags(b, gn_store_message_flags(m), kw, nk);
		sep = " ";
	}
	if (bits & F_INTERNALDATE) {
		(void)gn_buf_printf(b, "%sINTERNALDATE ", sep);
		append_internaldate(b, gn_store_message_internal_date(m));
		sep = " ";
	}
	if (bits & F_SIZE) {
		(void)gn_buf_printf(b, "%sRFC822.SIZE %llu", sep, (unsigned long long)gn_store_message_size(m));
		sep = " ";
	}
	if (bits & F_MODSEQ) {
		(void)gn_buf_append_str(b, sep);
		imap_append_modseq(s, b, gn_store_message_modseq(m));
		sep = " ";
	}
	if (bits & F_SAVEDATE) {
		/* RFC 8514 4.2: date-time, NIL when the store has none. */
		(void)gn_buf_printf(b, "%sSAVEDATE ", sep);
		if (gn_store_message_save_date(m) != 0)
			append_internaldate(b, gn_store_message_save_date(m));
		else
			(void)gn_buf_append_str(b, "NIL");
		sep = " ";
	}
	return *sep != '\0';
}

static void fetch_line(struct imap_session *s, size_t msn, const struct gn_store_message *m, int bits)
{
	struct gn_buf *b = gn_buf_new(0);
	(void)gn_buf_printf(b, "%zu FETCH (", msn);
	(void)simple_items(s, b, m, bits);
	(void)gn_buf_append(b, ")", 1);
	imap_untagged(s, "%s", gn_buf_data(b));
	gn_buf_free(&b);
}

/* ---- streaming message contents ---- */

/* The length of the message's header, its blank line included: found in
 * the first FETCH_HEADER_MAX bytes, else all of those (or the whole
 * message when it is shorter and has no body).  -1 on a read error. */
static int find_header(struct gn_store_body *body, uint64_t *len_r, const char **err_r)
{
	uint64_t size = gn_store_body_size(body);
	uint64_t limit = size < FETCH_HEADER_MAX ? size : FETCH_HEADER_MAX;
	char *buf = gn_malloc(FETCH_READ + 4);
	uint64_t off = 0;
	/* The last bytes of the previous read; at the start, as if after a
	 * line end, so that a message that starts with its blank line has an
	 * empty header. */
	char prev[3] = { '\n', '\n', '\n' };
	while (off < limit) {
		size_t want = limit - off < FETCH_READ ? (size_t)(limit - off) : FETCH_READ, got;
		if (gn_store_body_read(body, off, buf + 3, want, &got, err_r) < 0) {
			gn_free(buf);
			return -1;
		}
		if (got == 0)
			break;
		memcpy(buf, prev, 3);
		for (size_t i = 3; i < got + 3; i++) {
			if (buf[i] != '\n')
				continue;
			bool lf = buf[i - 1] == '\n';
			bool crlf = buf[i - 1] == '\r' && buf[i - 2] == '\n';
			uint64_t at = off + (i - 3) + 1;
			if (lf || crlf) {
				*len_r = at;
				gn_free(buf);
				return 0;
			}
		}
		memcpy(prev, buf + got, 3);
		off += got;
	}
	gn_free(buf);
	*len_r = limit;
	return 0;
}

/* Whether a header field line (name: ...) is one of names. */
static bool field_listed(const char *line, size_t len, const char *const *names, size_t n)
{
	const char *colon = memchr(line, ':', len);
	if (colon == NULL)
		return false;
	size_t nl = (size_t)(colon - line);
	while (nl > 0 && (line[nl - 1] == ' ' || line[nl - 1] == '\t'))
		nl--;
	for (size_t i = 0; i < n; i++)
		if (strlen(names[i]) == nl && strncasecmp(line, names[i], nl) == 0)
			return true;
	return false;
}

/* HEADER.FIELDS (.NOT): the fields of the header at header_start kept or
 * dropped, and the blank line, into out.  0 or -1. */
static int filter_fields(struct gn_store_body *body, uint64_t header_start, uint64_t header_len,
			 const struct body_item *it, struct gn_buf *out, const char **err_r)
{
	char *h = gn_malloc(header_len + 1);
	size_t got;
	if (gn_store_body_read(body, header_start, h, header_len, &got, err_r) < 0) {
		gn_free(h);
		return -1;
	}
	size_t i = 0;
	while (i < got) {
		/* One field: its line and the continuation lines. */
		size_t start = i;
		do {
			const char *nl = memchr(h + i, '\n', got - i);
			i = nl != NULL ? (size_t)(nl - h) + 1 : got;
		} while (i < got && (h[i] == ' ' || h[i] == '\t'));
		size_t len = i - start;
		if (len <= 2 && (h[start] == '\r' || h[start] == '\n'))
			break;	/* the blank line */
		bool listed = field_listed(h + start, len, it->fields, it->n_fields);
		if (listed == (it->part == PART_FIELDS))
			(void)gn_buf_append(out, h + start, len);
	}
	(void)gn_buf_append(out, "\r\n", 2);
	gn_free(h);
	return 0;
}

static void job_free(struct imap_session *s)
{
	struct imap_fetch_job *job = s->fetch;
	if (job == NULL)
		return;
	gn_store_body_free(&job->body);
	if (job->opened != NULL)
		for (size_t i = job->next; i < job->opened_to && i < job->n; i++)
			gn_store_body_free(&job->opened[i]);
	gn_free(job->opened);
	gn_mime_message_free(&job->mime);
	gn_pool_free(&job->msg_pool);
	gn_pool_free(&job->pool);
	gn_free(job);
	s->fetch = NULL;
}

/* Ends the job with its tagged reply (or NO for a failure midway: the
 * responses sent stand, RFC 9051 7.4.2 lets them). */
static void job_end(struct imap_session *s, const char *failure)
{
	struct imap_fetch_job *job = s->fetch;
	if (failure != NULL) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=fetch_failed conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, failure));
		imap_tagged(s, job->tag, "NO", "UNAVAILABLE", "Temporary failure, try again later");
	} else if (job->refusal_code != NULL) {
		imap_condstore_after(s);
		imap_tagged(s, job->tag, "NO", job->refusal_code, "%s", job->refusal_text);
	} else {
		imap_condstore_after(s);
		imap_tagged(s, job->tag, "OK", NULL, "%sFETCH completed", job->uid ? "UID " : "");
	}
	job_free(s);
	gn_conn_input_resume(s->conn);
}

/* The stored range [start, start + len) clamped to the message: a stored
 * structure is trusted no further than the bytes there are. */
static void clamp(uint64_t size, uint64_t *start, uint64_t *len)
{
	if (*start > size)
		*start = size;
	if (*len > size - *start)
		*len = size - *start;
}

/* The header (the blank line included) and the body of a part, as ranges
 * of the stored message: the top level's header begins with the prefix. */
static void part_ranges(const struct imap_fetch_job *job, const struct gn_mime_part *part, uint64_t *hstart,
			uint64_t *hlen, uint64_t *bstart, uint64_t *blen)
{
	uint64_t pl = job->prefix_len, size = gn_store_body_size(job->body);
	if (part == gn_mime_message_root(job->mime)) {
		*hstart = 0;
		*hlen = pl + gn_mime_part_header_size(part);
	} else {
		*hstart = pl + gn_mime_part_header_offset(part);
		*hlen = gn_mime_part_header_size(part);
	}
	*bstart = pl + gn_mime_part_body_offset(part);
	*blen = gn_mime_part_body_size(part);
	clamp(size, hstart, hlen);
	clamp(size, bstart, blen);
}

/* A section of a part (BODY[1.2], [1.MIME], [2.HEADER] ...): the stored
 * range it covers (*len_r 0 for a part the message does not have, as
 * RFC 9051 and Dovecot answer), or for HEADER.FIELDS the header range to
 * filter, with *filter_r set. */
static void part_section(const struct imap_fetch_job *job, const struct body_item *it, uint64_t *start_r,
			 uint64_t *len_r, bool *filter_r)
{
	const struct gn_mime_part *part = imap_section_part(job->mime, it->nums, it->depth);
	uint64_t hs, hl, bs, bl;
	*start_r = *len_r = 0;
	*filter_r = false;
	if (part == NULL)
		return;
	if (it->part == PART_ALL || it->part == PART_MIME) {
		part_ranges(job, part, &hs, &hl, &bs, &bl);
		*start_r = it->part == PART_ALL ? bs : hs;
		*len_r = it->part == PART_ALL ? bl : hl;
		return;
	}
	/* HEADER, TEXT, HEADER.FIELDS: of the message a MESSAGE/RFC822
	 * part holds; other parts have none. */
	const struct gn_mime_part *inner = imap_section_rfc822_message(part);
	if (inner == NULL)
		return;
	part_ranges(job, inner, &hs, &hl, &bs, &bl);
	*start_r = it->part == PART_TEXT ? bs : hs;
	*len_r = it->part == PART_TEXT ? bl : hl;
	*filter_r = it->part == PART_FIELDS || it->part == PART_FIELDS_NOT;
}

/* BINARY[section] and BINARY.SIZE (RFC 9051 6.4.5): the part's body with
 * its transfer encoding undone; BINARY[] of a single-part message is its
 * header as stored and its decoded body.  Sets up the raw header range
 * (job->pos, end) and the decoded stream; *total_r is the decoded size of
 * the whole section, *len_r what goes out, *nul_r whether that holds a
 * NUL (literal8).  0 or -1. */
static int binary_section(struct imap_fetch_job *job, const struct body_item *it, uint64_t *total_r,
			  uint64_t *len_r, bool *nul_r, const char **err_r)
{
	const struct gn_mime_part *part = imap_section_part(job->mime, it->nums, it->depth);
	job->pos = job->end = job->rpos = job->rend = job->dskip = job->dleft = 0;
	job->dfinished = false;
	*total_r = *len_r = 0;
	*nul_r = false;
	if (part == NULL)
		return 0;
	uint64_t hs, hl, bs, bl;
	part_ranges(job, part, &hs, &hl, &bs, &bl);
	if (it->depth > 0)
		hl = 0;		/* a part: its body only */
	enum imap_cte cte = imap_cte_of(part);
	/* The window of the section that goes out, in decoded positions. */
	uint64_t wfrom = it->partial ? it->offset : 0;
	uint64_t wto = it->partial && it->count <= UINT64_MAX - wfrom ? wfrom + it->count : UINT64_MAX;
	uint64_t dsize = bl;
	bool nul = false;
	if (!(it->size_only && cte == IMAP_CTE_IDENTITY) &&
	    imap_decoded_scan(job->body, bs, bl, cte, wfrom > hl ? wfrom - hl : 0, wto > hl ? wto - hl : 0, &dsize,
			 &nul, err_r) < 0)
		return -1;
	if (!it->size_only && !nul && wfrom < hl &&
	    imap_raw_has_nul(job->body, hs + wfrom, hs + (wto < hl ? wto : hl), &nul, err_r) < 0)
		return -1;
	uint64_t total = hl + dsize;
	uint64_t from = wfrom < total ? wfrom : total, to = wto < total ? wto : total;
	*total_r = total;
	*len_r = to - from;
	*nul_r = nul;
	/* The raw header's share, then the decoded body's. */
	job->pos = hs + (from < hl ? from : hl);
	job->end = hs + (to < hl ? to : hl);
	imap_decoder_init(&job->dec, cte);
	job->rpos = bs;
	job->rend = bs + bl;
	job->dskip = from > hl ? from - hl : 0;
	job->dleft = (to - from) - (job->end - job->pos);
	return 0;
}

/* Starts body item job->item of the current message: its name and the
 * literal's size; small ones (HEADER.FIELDS) are written at once, the
 * rest set pos and end for streaming.  0 or -1. */
static int item_start(struct imap_session *s, const char **err_r)
{
	struct imap_fetch_job *job = s->fetch;
	const struct body_item *it = &job->items[job->item];
	uint64_t size = gn_store_body_size(job->body), start = 0, len = size;
	struct gn_buf *fields = NULL;
	bool filter = false, nul = false;
	const char *sp = job->item > 0 || job->line_items ? " " : "";
	job->dleft = 0;
	if (it->binary) {
		uint64_t total;
		if (binary_section(job, it, &total, &len, &nul, err_r) < 0)
			return -1;
		if (it->size_only) {
			struct gn_buf *b = gn_buf_new(0);
			(void)gn_buf_printf(b, "%s%s %llu", sp, it->name, (unsigned long long)total);
			(void)gn_conn_write(s->conn, gn_buf_data(b), gn_buf_len(b));
			gn_buf_free(&b);
			job->pos = job->end = 0;
			job->dleft = 0;
			job->streaming = true;
			return 0;
		}
		/* Without the partial's <origin>: the ABNF has none for
		 * BINARY (msg-att-static, RFC 9051 9 and RFC 3516 6), where
		 * the prose of 7.5.2 shows one (RFC 9051 errata 7246). */
		struct gn_buf *b = gn_buf_new(0);
		(void)gn_buf_printf(b, "%s%s", sp, it->name);
		/* RFC 9051 6.4.5: literal8 when the data holds a NUL, a
		 * string otherwise. */
		(void)gn_buf_printf(b, " %s{%llu}\r\n", nul ? "~" : "", (unsigned long long)len);
		(void)gn_conn_write(s->conn, gn_buf_data(b), gn_buf_len(b));
		gn_buf_free(&b);
		job->streaming = true;
		return 0;
	}
	if (it->depth > 0) {
		part_section(job, it, &start, &len, &filter);
	} else {
		if (it->part != PART_ALL && job->header_len == UINT64_MAX &&
		    find_header(job->body, &job->header_len, err_r) < 0)
			return -1;
		if (it->part == PART_HEADER) {
			len = job->header_len;
		} else if (it->part == PART_TEXT) {
			start = job->header_len;
			len = size - job->header_len;
		} else if (it->part == PART_FIELDS || it->part == PART_FIELDS_NOT) {
			len = job->header_len;
			filter = true;
		}
	}
	if (filter) {
		fields = gn_buf_new(0);
		if (len > FETCH_HEADER_MAX + job->prefix_len)
			len = FETCH_HEADER_MAX + job->prefix_len;
		if (filter_fields(job->body, start, len, it, fields, err_r) < 0) {
			gn_buf_free(&fields);
			return -1;
		}
		len = gn_buf_len(fields);
	}
	uint64_t skip = 0;
	if (it->partial) {
		skip = it->offset < len ? it->offset : len;
		len = len - skip < it->count ? len - skip : it->count;
	}
	struct gn_buf *b = gn_buf_new(0);
	(void)gn_buf_printf(b, "%s%s", sp, it->name);
	if (it->partial)
		(void)gn_buf_printf(b, "<%llu>", (unsigned long long)it->offset);
	(void)gn_buf_printf(b, " {%llu}\r\n", (unsigned long long)len);
	if (fields != NULL)
		(void)gn_buf_append(b, gn_buf_data(fields) + skip, (size_t)len);
	(void)gn_conn_write(s->conn, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	/* Fields were written with the name; the rest streams. */
	job->pos = start + skip;
	job->end = fields != NULL ? job->pos : start + skip + len;
	gn_buf_free(&fields);
	job->streaming = true;
	return 0;
}

/* Writes the next piece of a BINARY item's decoded body.  0 or -1. */
static int decode_step(struct imap_session *s, char *buf, const char **err_r)
{
	struct imap_fetch_job *job = s->fetch;
	struct gn_buf *out = gn_buf_new(0);
	if (job->rpos < job->rend) {
		size_t want = job->rend - job->rpos < FETCH_READ ? (size_t)(job->rend - job->rpos) : FETCH_READ;
		size_t got;
		if (gn_store_body_read(job->body, job->rpos, buf, want, &got, err_r) < 0) {
			gn_buf_free(&out);
			return -1;
		}
		if (got == 0)
			job->rend = job->rpos;
		imap_decode(&job->dec, buf, got, out);
		job->rpos += got;
	} else if (!job->dfinished) {
		imap_decode_finish(&job->dec, out);
		job->dfinished = true;
	} else {
		gn_buf_free(&out);
		*err_r = "the decoded part is shorter than it was";
		return -1;
	}
	const char *d = gn_buf_data(out);
	uint64_t n = gn_buf_len(out);
	uint64_t skip = job->dskip < n ? job->dskip : n;
	job->dskip -= skip;
	d += skip;
	n -= skip;
	if (n > job->dleft)
		n = job->dleft;
	if (n > 0)
		(void)gn_conn_write(s->conn, d, (size_t)n);
	job->dleft -= n;
	gn_buf_free(&out);
	return 0;
}

/* The current message's part tree and prefix length (F_MIME).  1, 0 when
 * the message is gone, -1 on a failure. */
static int load_mime(struct imap_session *s, const struct gn_store_message *m, const char **err_r)
{
	struct imap_fetch_job *job = s->fetch;
	struct gn_store_message *full;
	int r = gn_store_message_get(job->msg_pool, s->account_id, s->sel->id, gn_store_message_uid(m), &full,
				     err_r);
	if (r <= 0)
		return r;
	job->prefix_len = gn_store_message_prefix_len(full);
	if (imap_fetch_mime(job->body, job->prefix_len, gn_store_message_mime_json(full), &job->mime, err_r) < 0)
		return -1;
	return 1;
}

/* Whether every BINARY item can be answered for the current message: the
 * part's transfer encoding is one we undo (else RFC 9051 6.4.5: NO
 * [UNKNOWN-CTE]), and it is no multipart, which has no encoding of its
 * own to undo while its parts keep theirs (NO [CANNOT]).  A part the
 * message does not have is answerable (empty). */
static bool binary_answerable(struct imap_session *s, const struct gn_store_message *m)
{
	struct imap_fetch_job *job = s->fetch;
	for (size_t i = 0; i < job->n_items; i++) {
		const struct body_item *it = &job->items[i];
		if (!it->binary)
			continue;
		const struct gn_mime_part *part = imap_section_part(job->mime, it->nums, it->depth);
		if (part == NULL)
			continue;
		const char *code = NULL, *text = NULL;
		if (strcmp(gn_mime_part_type(part), "multipart") == 0) {
			code = "CANNOT";
			text = "BINARY of a multipart: ask for its parts";
		} else if (imap_cte_of(part) == IMAP_CTE_UNKNOWN) {
			code = "UNKNOWN-CTE";
			text = "Unknown Content-Transfer-Encoding";
		}
		if (code == NULL)
			continue;
		gn_log(GN_LOG_INFO, IMAP_AREA, "event=fetch_refused conn=%s uid=%u item=%s code=%s encoding=%s",
		       gn_conn_id(s->conn), (unsigned)gn_store_message_uid(m), it->name, code,
		       gn_log_quote(0, gn_mime_part_encoding(part) != NULL ? gn_mime_part_encoding(part) : ""));
		job->refusal_code = code;
		job->refusal_text = gn_pool_printf(job->pool, "%s (%s); other messages were sent", text, it->name);
		return false;
	}
	return true;
}

/* ENVELOPE, BODYSTRUCTURE, BODY of the current message into b, after the
 * simple items (sep: something was written before).  Returns whether
 * anything was added. */
static bool structure_items(struct gn_buf *b, struct gn_pool *pool, const struct gn_mime_message *mime, bool sep,
			    int bits)
{
	if (mime == NULL)
		return false;
	const struct gn_mime_part *root = gn_mime_message_root(mime);
	bool wrote = false;
	if (bits & F_ENVELOPE) {
		(void)gn_buf_append_str(b, sep || wrote ? " ENVELOPE " : "ENVELOPE ");
		imap_append_envelope(b, pool, root);
		wrote = true;
	}
	if (bits & F_BODYSTRUCTURE) {
		(void)gn_buf_append_str(b, sep || wrote ? " BODYSTRUCTURE " : "BODYSTRUCTURE ");
		imap_append_body(b, pool, root, true);
		wrote = true;
	}
	if (bits & F_BODYSHORT) {
		(void)gn_buf_append_str(b, sep || wrote ? " BODY " : "BODY ");
		imap_append_body(b, pool, root, false);
		wrote = true;
	}
	return wrote;
}

/* Writes until the output is full or the job is done. */
static void job_run(struct imap_session *s)
{
	struct imap_fetch_job *job = s->fetch;
	const char *err = NULL;
	char *buf = NULL;
	while (job != NULL && gn_conn_output_pending(s->conn) < FETCH_HIGH_WATER) {
		if (job->streaming && job->pos < job->end) {
			size_t want = job->end - job->pos < FETCH_READ ? (size_t)(job->end - job->pos) : FETCH_READ;
			size_t got;
			if (buf == NULL)
				buf = gn_malloc(FETCH_READ);
			if (gn_store_body_read(job->body, job->pos, buf, want, &got, &err) < 0)
				break;
			if (got == 0) {
				err = "the message is shorter than its size";
				break;
			}
			(void)gn_conn_write(s->conn, buf, got);
			job->pos += got;
			continue;
		}
		if (job->streaming && job->dleft > 0) {
			if (buf == NULL)
				buf = gn_malloc(FETCH_READ);
			if (decode_step(s, buf, &err) < 0)
				break;
			continue;
		}
		if (job->streaming) {
			/* The literal is complete: the next item. */
			job->streaming = false;
			job->item++;
		}
		if (job->body != NULL && job->item < job->n_items) {
			if (item_start(s, &err) < 0)
				break;
			continue;
		}
		if (job->body != NULL) {
			/* The message is complete. */
			(void)gn_conn_write(s->conn, ")\r\n", 3);
			gn_store_body_free(&job->body);
			gn_mime_message_free(&job->mime);
			gn_pool_free(&job->msg_pool);
			job->next++;
		}
		while (job->next < job->n && job->msgs[job->next] == NULL)
			job->next++;
		if (job->next >= job->n) {
			job_end(s, NULL);
			job = NULL;
			break;
		}
		/* The next message: its simple items, then its body items. */
		const struct gn_store_message *m = job->msgs[job->next];
		/* Body items read the message's start (its header, a small
		 * message whole): it comes with the query that opens it, and
		 * the store keeps it for the reads that follow. */
		int r;
		if (job->n_items > 0) {
			/* The next FETCH_BATCH messages in one query. */
			if (job->next >= job->opened_to) {
				if (job->opened == NULL)
					job->opened = gn_calloc(job->n, sizeof(*job->opened));
				uint32_t uids[FETCH_BATCH];
				size_t idx[FETCH_BATCH], k = 0, i;
				for (i = job->next; i < job->n && k < FETCH_BATCH; i++)
					if (job->msgs[i] != NULL) {
						idx[k] = i;
						uids[k++] = gn_store_message_uid(job->msgs[i]);
					}
				struct gn_store_body *bodies[FETCH_BATCH];
				if (gn_store_message_open_batch(s->account_id, s->sel->id, uids, k, FETCH_READ,
								bodies, &err) < 0)
					break;
				for (size_t b = 0; b < k; b++)
					job->opened[idx[b]] = bodies[b];
				job->opened_to = i;
			}
			job->body = job->opened[job->next];
			job->opened[job->next] = NULL;
			r = job->body != NULL;
		} else {
			r = gn_store_message_open_prefetch(s->account_id, s->sel->id, gn_store_message_uid(m), 0,
							   &job->body, &err);
		}
		if (r <= 0) {
			if (r == 0) {
				job->next++;	/* expunged meanwhile */
				continue;
			}
			break;
		}
		job->header_len = UINT64_MAX;
		job->item = 0;
		job->msg_pool = gn_pool_new();
		if ((job->bits & F_MIME) != 0) {
			r = load_mime(s, m, &err);
			if (r < 0)
				break;
			if (r == 0 || !binary_answerable(s, m)) {
				/* Expunged meanwhile, or left out (NO at
				 * the end). */
				gn_store_body_free(&job->body);
				gn_mime_message_free(&job->mime);
				gn_pool_free(&job->msg_pool);
				job->next++;
				continue;
			}
		}
		struct gn_buf *b = gn_buf_new(0);
		(void)gn_buf_printf(b, "* %zu FETCH (", job->msns[job->next]);
		job->line_items = simple_items(s, b, m, job->bits);
		job->line_items |= structure_items(b, job->msg_pool, job->mime, job->line_items, job->bits);
		(void)gn_conn_write(s->conn, gn_buf_data(b), gn_buf_len(b));
		gn_buf_free(&b);
	}
	gn_free(buf);
	if (job != NULL && err != NULL) {
		/* Midway through a literal nothing can be said: the connection
		 * ends.  Between messages, NO. */
		if (job->streaming) {
			gn_log(GN_LOG_ERROR, IMAP_AREA, "event=fetch_failed conn=%s error=%s", gn_conn_id(s->conn),
			       gn_log_quote(0, err));
			job_free(s);
			s->state = IMAP_LOGOUT;
			gn_conn_close(s->conn, "fetch_failed");
			return;
		}
		job_end(s, err);
	}
}

void imap_fetch_writable(struct imap_session *s)
{
	if (s->fetch != NULL)
		job_run(s);
}

void imap_fetch_cancel(struct imap_session *s)
{
	job_free(s);
}

/* Sets \Seen on the messages a FETCH without .PEEK reads (RFC 9051
 * 6.4.5), and reloads them so that their FLAGS go with the response. */
static int set_seen(struct imap_session *s, struct imap_fetch_job *job)
{
	uint32_t *uids = gn_pool_alloc(job->pool, (job->n + 1) * sizeof(*uids));
	size_t n = 0;
	for (size_t i = 0; i < job->n; i++)
		if (job->msgs[i] != NULL && (gn_store_message_flags(job->msgs[i]) & GN_STORE_SEEN) == 0)
			uids[n++] = gn_store_message_uid(job->msgs[i]);
	if (n == 0)
		return 0;
	const char *err;
	if (gn_store_message_set_flags(job->pool, s->account_id, s->sel->id, uids, n, GN_STORE_FLAGS_ADD,
				       GN_STORE_SEEN, NULL, 0, 0, NULL, NULL, NULL, &err) < 0 ||
	    load_messages(s, job->pool, job->msns, job->n, &job->msgs) < 0)
		return -1;
	for (size_t i = 0; i < job->n; i++)
		if (job->msgs[i] != NULL)
			s->sel->modseqs[job->msns[i] - 1] = gn_store_message_modseq(job->msgs[i]);
	job->bits |= F_FLAGS;
	return 0;
}

/* RFC 7162 3.1.4.1, 3.2.6: fetch-modifiers "(CHANGEDSINCE n [VANISHED])",
 * in any order.  NULL, or the BAD text. */
static const char *fetch_modifiers(struct imap_session *s, const struct imap_arg *l, bool uid,
				   uint64_t *changedsince_r, bool *vanished_r)
{
	*changedsince_r = 0;
	*vanished_r = false;
	if (l->type != IMAP_ARG_LIST || l->count == 0)
		return "FETCH modifiers are a parenthesised list";
	for (unsigned i = 0; i < l->count; i++) {
		const struct imap_arg *a = &l->list[i];
		if (imap_arg_atom_is(a, "CHANGEDSINCE") && *changedsince_r == 0) {
			/* mod-sequence-value: 0 is not one. */
			if (++i == l->count || !imap_modseq_parse(&l->list[i], false, changedsince_r))
				return "CHANGEDSINCE takes a modseq from 1 to 9223372036854775807";
		} else if (imap_arg_atom_is(a, "VANISHED") && !*vanished_r) {
			if (!uid)
				return "VANISHED is a UID FETCH modifier";
			if (!s->qresync)
				return "VANISHED needs QRESYNC (ENABLE QRESYNC first)";
			*vanished_r = true;
		} else {
			return "Unknown or repeated FETCH modifier";
		}
	}
	if (*vanished_r && *changedsince_r == 0)
		return "VANISHED goes with CHANGEDSINCE";
	return NULL;
}

/* CHANGEDSINCE: only the messages with a greater modseq stay. */
static void keep_changed(struct imap_fetch_job *job, uint64_t since)
{
	size_t kept = 0;
	for (size_t i = 0; i < job->n; i++) {
		if (job->msgs[i] == NULL || gn_store_message_modseq(job->msgs[i]) <= since)
			continue;
		job->msns[kept] = job->msns[i];
		job->msgs[kept] = job->msgs[i];
		kept++;
	}
	job->n = kept;
}

static void fetch(struct imap_session *s, struct imap_command *cmd, const struct imap_arg *args,
		  unsigned count, bool uid)
{
	if (count != 2 && count != 3) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "FETCH takes a sequence set, items and modifiers");
		return;
	}
	uint64_t changedsince = 0;
	bool vanished = false;
	const char *bad = count == 3 ? fetch_modifiers(s, &args[2], uid, &changedsince, &vanished) : NULL;
	if (bad != NULL) {
		gn_log(GN_LOG_INFO, IMAP_AREA, "event=fetch_refused conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, bad));
		imap_tagged(s, cmd->tag, "BAD", NULL, "%s", bad);
		return;
	}
	struct imap_fetch_job *job = gn_calloc(1, sizeof(*job));
	job->pool = gn_pool_new();
	s->fetch = job;
	int bits = fetch_items(s, cmd, &args[1], job);
	if (bits < 0) {
		job_free(s);
		return;
	}
	if (uid)
		bits |= F_UID;
	/* RFC 7162 3.1.4.1: CHANGEDSINCE implies MODSEQ. */
	if (changedsince > 0)
		bits |= F_MODSEQ;
	job->bits = bits;
	job->uid = uid;
	job->tag = gn_pool_strdup(job->pool, cmd->tag);
	job->msns = imap_select_msns(s, job->pool, cmd, &args[0], uid, &job->n);
	if (job->msns == NULL) {
		job_free(s);
		return;
	}
	/* RFC 7162 3.1: MODSEQ and CHANGEDSINCE enable CONDSTORE; 3.2.4: a
	 * FETCH that sets \Seen then answers with UID and MODSEQ. */
	if (bits & F_MODSEQ)
		imap_condstore_enable(s);
	if (s->condstore && (bits & F_SETS_SEEN) && !s->sel->readonly)
		job->bits = bits = bits | F_UID | F_MODSEQ;
	if (load_messages(s, job->pool, job->msns, job->n, &job->msgs) < 0 ||
	    (vanished && imap_vanished_earlier(s, &args[0], changedsince) < 0)) {
		job_free(s);
		imap_tagged(s, cmd->tag, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		return;
	}
	if (changedsince > 0)
		keep_changed(job, changedsince);
	if ((bits & F_SETS_SEEN) && !s->sel->readonly && set_seen(s, job) < 0) {
		job_free(s);
		imap_tagged(s, cmd->tag, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		return;
	}
	if ((job->bits & F_BODY) == 0) {
		for (size_t i = 0; i < job->n; i++)
			if (job->msgs[i] != NULL)
				fetch_line(s, job->msns[i], job->msgs[i], job->bits);
		imap_condstore_after(s);
		imap_tagged(s, cmd->tag, "OK", NULL, "%sFETCH completed", uid ? "UID " : "");
		job_free(s);
		return;
	}
	/* Message contents: the job goes on when the output drains, and no
	 * other command is read meanwhile. */
	gn_conn_input_pause(s->conn);
	job_run(s);
}

void imap_cmd_fetch(struct imap_session *s, struct imap_command *cmd)
{
	fetch(s, cmd, cmd->args, cmd->count, false);
}

/* A flag list or a single flag: system flag bits and keywords (from
 * pool).  0, or -1 with *error_r. */
int imap_flags_parse(struct gn_pool *pool, const struct imap_arg *arg, unsigned *flags_r,
		     const char ***kw_r, size_t *nkw_r, const char **error_r)
{
	static const struct {
		const char *name;
		unsigned bit;
	} sys[] = {
		{ "\\Seen", GN_STORE_SEEN }, { "\\Answered", GN_STORE_ANSWERED },
		{ "\\Flagged", GN_STORE_FLAGGED }, { "\\Deleted", GN_STORE_DELETED },
		{ "\\Draft", GN_STORE_DRAFT },
	};
	const struct imap_arg *items = arg;
	unsigned n = 1;
	if (arg->type == IMAP_ARG_LIST) {
		items = arg->list;
		n = arg->count;
	}
	const char **kw = gn_pool_alloc(pool, (n + 1) * sizeof(*kw));
	size_t nkw = 0;
	*flags_r = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct imap_arg *a = &items[i];
		if (a->type != IMAP_ARG_ATOM || strpbrk(a->str, "[%*") != NULL) {
			*error_r = "Flag expected";
			return -1;
		}
		bool found = false;
		for (size_t k = 0; k < sizeof(sys) / sizeof(sys[0]); k++) {
			if (strcasecmp(a->str, sys[k].name) == 0) {
				*flags_r |= sys[k].bit;
				found = true;
			}
		}
		if (found || strcasecmp(a->str, "\\Recent") == 0)
			continue;
		if (a->str[0] == '\\') {
			*error_r = gn_pool_printf(pool, "Unknown system flag %s", a->str);
			return -1;
		}
		kw[nkw++] = a->str;
	}
	*kw_r = kw;
	*nkw_r = nkw;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* RFC 7162 3.1.3: store-modifiers "(UNCHANGEDSINCE n)", one only.  NULL,
 * or the BAD text. */
static const char *store_modifiers(const struct imap_arg *l, uint64_t *unchanged_r)
{
	if (l->count != 2 || !imap_arg_atom_is(&l->list[0], "UNCHANGEDSINCE"))
		return "The STORE modifier is (UNCHANGEDSINCE modseq)";
	if (!imap_modseq_parse(&l->list[1], true, unchanged_r))
		return "UNCHANGEDSINCE takes a modseq from 0 to 9223372036854775807";
	return NULL;
}

static void store(struct imap_session *s, struct imap_command *cmd, const struct imap_arg *args,
		  unsigned count, bool uid)
{
	/* store = "STORE" SP sequence-set [SP store-modifiers] SP
	 * store-att-flags (RFC 4466 2.5). */
	bool conditional = count == 4 && args[1].type == IMAP_ARG_LIST;
	uint64_t unchanged = 0;
	const struct imap_arg *item_arg = &args[conditional ? 2 : 1];
	if ((count != 3 && !conditional) || item_arg->type != IMAP_ARG_ATOM) {
		imap_tagged(s, cmd->tag, "BAD", NULL,
			    "STORE takes a sequence set, (UNCHANGEDSINCE modseq), an item and flags");
		return;
	}
	const char *bad = conditional ? store_modifiers(&args[1], &unchanged) : NULL;
	if (bad != NULL) {
		gn_log(GN_LOG_INFO, IMAP_AREA, "event=store_refused conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, bad));
		imap_tagged(s, cmd->tag, "BAD", NULL, "%s", bad);
		return;
	}
	const char *item = item_arg->str;
	enum gn_store_flag_op op = GN_STORE_FLAGS_SET;
	if (*item == '+' || *item == '-') {
		op = *item == '+' ? GN_STORE_FLAGS_ADD : GN_STORE_FLAGS_REMOVE;
		item++;
	}
	bool silent = strcasecmp(item, "FLAGS.SILENT") == 0;
	if (!silent && strcasecmp(item, "FLAGS") != 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "STORE item must be FLAGS, +FLAGS or -FLAGS (.SILENT)");
		return;
	}
	unsigned flags;
	const char **kw;
	size_t nkw;
	if (imap_flags_parse(s->cmd_pool, item_arg + 1, &flags, &kw, &nkw, &bad) < 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "%s", bad);
		return;
	}
	size_t n;
	size_t *msns = imap_select_msns(s, s->cmd_pool, cmd, &args[0], uid, &n);
	if (msns == NULL)
		return;
	if (s->sel->readonly) {
		imap_tagged(s, cmd->tag, "NO", "READ-ONLY", "The mailbox is read-only (EXAMINE)");
		return;
	}
	/* RFC 7162 3.1: UNCHANGEDSINCE enables CONDSTORE. */
	if (conditional)
		imap_condstore_enable(s);
	uint32_t *uids = gn_pool_alloc(s->cmd_pool, (n + 1) * sizeof(*uids));
	for (size_t i = 0; i < n; i++)
		uids[i] = s->sel->uids[msns[i] - 1];
	const char *err;
	uint32_t *failed = NULL;
	size_t n_failed = 0;
	if (conditional && unchanged == 0) {
		/* RFC 7162 3.1.3: UNCHANGEDSINCE 0 always fails (every
		 * message has a modseq, flags always exist). */
		failed = uids;
		n_failed = n;
	} else if (n > 0 && gn_store_message_set_flags(s->cmd_pool, s->account_id, s->sel->id, uids, n, op, flags,
						       kw, nkw, unchanged, NULL, &failed, &n_failed, &err) < 0) {
		if (gn_db_error_is_temporary()) {
			gn_log(GN_LOG_ERROR, IMAP_AREA, "event=store_failed conn=%s error=%s",
			       gn_conn_id(s->conn), gn_log_quote(0, err));
			imap_tagged(s, cmd->tag, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		} else {
			imap_tagged(s, cmd->tag, "NO", "CANNOT", "%s", err);
		}
		return;
	}
	if (failed != NULL && n_failed > 0) {
		uint32_t *sorted = gn_pool_alloc(s->cmd_pool, n_failed * sizeof(*sorted));
		memcpy(sorted, failed, n_failed * sizeof(*sorted));
		qsort(sorted, n_failed, sizeof(*sorted), cmp_u32);
		failed = sorted;
	} else {
		n_failed = 0;
	}
	/* The new flags of the messages stored to, unless .SILENT; with
	 * CONDSTORE UID and MODSEQ, .SILENT or not (RFC 7162 3.1.3, 3.2.4);
	 * and the current state of those that failed UNCHANGEDSINCE, as
	 * 3.1.3 recommends.  Changes made by others show at the next NOOP. */
	struct gn_store_message **msgs;
	uint32_t *modified = gn_pool_alloc(s->cmd_pool, (n_failed + 1) * sizeof(*modified));
	size_t n_modified = 0;
	if (load_messages(s, s->cmd_pool, msns, n, &msgs) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (msgs[i] == NULL)
				continue;
			bool fail = n_failed > 0 && bsearch(&uids[i], failed, n_failed, sizeof(*failed), cmp_u32) != NULL;
			bool changed = gn_store_message_modseq(msgs[i]) > s->sel->modseqs[msns[i] - 1];
			s->sel->modseqs[msns[i] - 1] = gn_store_message_modseq(msgs[i]);
			if (fail)
				modified[n_modified++] = uid ? uids[i] : (uint32_t)msns[i];
			int bits = s->condstore ? F_UID | F_MODSEQ : uid ? F_UID : 0;
			if (fail || !silent)
				fetch_line(s, msns[i], msgs[i], bits | F_FLAGS);
			else if (s->condstore && (changed || conditional))
				fetch_line(s, msns[i], msgs[i], bits);
		}
	}
	imap_condstore_after(s);
	if (n_modified > 0) {
		/* RFC 7162 7: "MODIFIED" SP sequence-set, of message numbers
		 * for STORE and of UIDs for UID STORE. */
		struct gn_buf *code = gn_buf_new(0);
		(void)gn_buf_append_str(code, "MODIFIED ");
		imap_append_uid_set(code, modified, n_modified);
		imap_tagged(s, cmd->tag, "OK", gn_buf_data(code), "Conditional %sSTORE failed for some messages",
			    uid ? "UID " : "");
		gn_buf_free(&code);
		return;
	}
	imap_tagged(s, cmd->tag, "OK", NULL, "%sSTORE completed", uid ? "UID " : "");
}

void imap_cmd_store(struct imap_session *s, struct imap_command *cmd)
{
	store(s, cmd, cmd->args, cmd->count, false);
}

void imap_cmd_uid(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count < 1 || cmd->args[0].type != IMAP_ARG_ATOM) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "UID takes a command");
		return;
	}
	if (imap_arg_atom_is(&cmd->args[0], "FETCH"))
		fetch(s, cmd, cmd->args + 1, cmd->count - 1, true);
	else if (imap_arg_atom_is(&cmd->args[0], "STORE"))
		store(s, cmd, cmd->args + 1, cmd->count - 1, true);
	else if (imap_arg_atom_is(&cmd->args[0], "COPY") || imap_arg_atom_is(&cmd->args[0], "MOVE"))
		imap_uid_copy(s, cmd, imap_arg_atom_is(&cmd->args[0], "MOVE"));
	else if (imap_arg_atom_is(&cmd->args[0], "EXPUNGE"))
		imap_uid_expunge(s, cmd);
	else if (imap_arg_atom_is(&cmd->args[0], "SEARCH"))
		imap_uid_search(s, cmd);
	else if (imap_arg_atom_is(&cmd->args[0], "SORT") || imap_arg_atom_is(&cmd->args[0], "THREAD"))
		imap_uid_sort(s, cmd);
	else if (imap_arg_atom_is(&cmd->args[0], "REPLACE"))
		imap_cmd_replace(s, cmd);
	else
		imap_tagged(s, cmd->tag, "BAD", NULL, "UID %s is not supported (yet)", cmd->args[0].str);
}
