/*
 * core/mail/mime.c: the streaming MIME parser (gannet/mime.h) and the
 * message it makes.
 *
 * How it fits together:
 *
 * - The parser: a byte-at-a-time-safe state machine over lines.  A stack of
 *   open parts runs from the root to the innermost part; each is in its
 *   header, a leaf body, a multipart's preamble / child / epilogue, or the
 *   body of a message/rfc822 (whose one child is open above it).  The
 *   boundaries of the open multiparts are checked against every line that
 *   starts with "--" and is short enough to be one, whatever part the line
 *   is in (RFC 2046 5.1.1: a boundary of an enclosing multipart ends the
 *   inner parts too).  Only the current header block and the first bytes
 *   of the current line are kept; body bytes stream through a counter of
 *   their decoded size (base64, quoted-printable) and are then forgotten.
 *   The line break before a boundary belongs to the boundary (RFC 2046
 *   5.1.1), so a body line's line break is held back until the next line
 *   is known not to be a boundary.
 * - A complete header block is read into its part with the helpers of the
 *   other mime-*.c files (core/mail/internal.h): Content-Type and
 *   Content-Disposition parameters (mime-rfc2231.c), encoded words in the
 *   envelope fields (mime-rfc2047.c), UTF-8 (mime-charset.c), dates
 *   (mime-date.c).
 * - The result: parts and strings live in one pool owned by the message;
 *   the accessors of gannet/mime.h are at the end; mime-json.c stores it.
 */
#include "mail/internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

/* A longest boundary we accept: RFC 2046 5.1.1 allows 70 characters; real
 * mail sometimes has a little more. */
#define MAX_BOUNDARY 200
/* Bytes of a line kept while it may still be a boundary delimiter: "--",
 * the boundary, "--", and some transport padding (RFC 2046 5.1.1). */
#define LINE_PREFIX (2 + MAX_BOUNDARY + 2 + 98)
#define MAX_PROBLEMS 100

const char *const mime_field_names[MIME_N_FIELDS] = {
	"from", "sender", "reply-to", "to", "cc", "bcc", "subject", "date",
	"message-id", "in-reply-to", "references", "list-id",
};

/* ---- problems ---- */

void mime_problem(struct gn_mime_message *msg, const char *fmt, ...)
{
	if (msg == NULL || msg->n_problems > MAX_PROBLEMS)
		return;
	if (msg->n_problems % 16 == 0)
		msg->problems = gn_realloc(msg->problems,
					   (msg->n_problems + 16) * sizeof(*msg->problems));
	if (msg->n_problems == MAX_PROBLEMS) {
		msg->problems[msg->n_problems++] =
			gn_pool_strdup(msg->pool, "more problems were not recorded");
		return;
	}
	struct gn_buf *b = gn_buf_new(0);
	va_list ap;
	va_start(ap, fmt);
	(void)gn_buf_vprintf(b, fmt, ap);
	va_end(ap);
	msg->problems[msg->n_problems++] = gn_pool_strndup(msg->pool, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
}

/* ---- the parser ---- */

enum op_state {
	OP_HEADER,		/* in the header block */
	OP_LEAF,		/* in a body without parts */
	OP_PREAMBLE,		/* multipart, before the first boundary */
	OP_CHILD,		/* multipart, a child is open above */
	OP_SKIP,		/* multipart past the part limit: no more children */
	OP_EPILOGUE,		/* multipart after its close delimiter */
	OP_MESSAGE,		/* message/rfc822: its child is open above */
};

struct open_part {
	struct gn_mime_part *part;
	enum op_state state;
	char *boundary;		/* multipart */
	size_t boundary_len;
	size_t lf_at_body;	/* line feeds before the body */
	struct mime_decoder dec;	/* OP_LEAF */
};

struct gn_mime_parser {
	struct gn_mime_limits lim;
	struct gn_mime_message *msg;
	struct open_part *stack;
	size_t depth, stack_cap;
	size_t n_parts;
	bool parts_reported, finished;

	size_t pos;		/* bytes consumed */
	size_t lf_count;	/* line feeds in [0, pos) */
	size_t line_start, lf_at_line, prev_line_start;
	bool at_line_start;
	bool any_boundary;	/* some multipart on the stack has one open */

	/* Header mode: the block so far; hdr_line is where the current line
	 * starts in it; hdr_eol the line break length of the last line. */
	struct gn_buf *hdr;
	size_t hdr_line, hdr_eol;
	unsigned n_fields;
	struct gn_buf *refeed;	/* bytes to parse again in a new state */

	/* Body mode: the held line break of the previous line, a held CR,
	 * and the start of the current line while it may be a boundary. */
	size_t pending_eol;
	bool pending_cr;
	bool prefix_active;
	size_t prefix_len;
	char prefix[LINE_PREFIX];
};

static struct open_part *top(struct gn_mime_parser *p)
{
	return &p->stack[p->depth - 1];
}

static void update_boundaries(struct gn_mime_parser *p)
{
	p->any_boundary = false;
	for (size_t i = 0; i < p->depth; i++) {
		enum op_state s = p->stack[i].state;
		if (s == OP_PREAMBLE || s == OP_CHILD || s == OP_SKIP)
			p->any_boundary = true;
	}
}

static void set_text_plain(struct gn_mime_message *msg, struct gn_mime_part *part)
{
	part->type = gn_pool_strdup(msg->pool, "text");
	part->subtype = gn_pool_strdup(msg->pool, "plain");
	part->params = NULL;
	part->n_params = 0;
}

/* Opens a part whose header starts at offset. */
static void start_part(struct gn_mime_parser *p, struct gn_mime_part *parent, size_t offset,
		       bool is_message)
{
	struct gn_mime_message *msg = p->msg;
	struct gn_mime_part *part = gn_pool_alloc(msg->pool, sizeof(*part));
	part->index = p->n_parts++;
	part->parent = parent;
	part->header_offset = offset;
	part->body_offset = offset;
	if (is_message)
		part->envelope = gn_pool_alloc(msg->pool, sizeof(*part->envelope));
	if (parent == NULL) {
		msg->root = part;
	} else {
		if (parent->last_child != NULL)
			parent->last_child->next = part;
		else
			parent->first_child = part;
		parent->last_child = part;
		parent->n_children++;
	}
	if (p->depth == p->stack_cap) {
		p->stack_cap = p->stack_cap ? p->stack_cap * 2 : 8;
		p->stack = gn_realloc(p->stack, p->stack_cap * sizeof(*p->stack));
	}
	struct open_part *e = &p->stack[p->depth++];
	memset(e, 0, sizeof(*e));
	e->part = part;
	e->state = OP_HEADER;
	gn_buf_clear(p->hdr);
	p->hdr_line = 0;
	p->hdr_eol = 0;
	p->n_fields = 0;
}

/* Copies a header value: unfolded (CR and LF removed), NUL made a space,
 * trimmed, cut at MIME_MAX_VALUE. */
static char *field_value(struct gn_pool *pool, const char *s, size_t len, size_t *len_r)
{
	while (len > 0 && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
		s++;
		len--;
	}
	char *v = gn_pool_alloc(pool, (len < MIME_MAX_VALUE ? len : MIME_MAX_VALUE) + 1);
	size_t n = 0;
	for (size_t i = 0; i < len && n < MIME_MAX_VALUE; i++) {
		if (s[i] == '\r' || s[i] == '\n')
			continue;
		v[n++] = s[i] == '\0' ? ' ' : s[i];
	}
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	v[n] = '\0';
	*len_r = n;
	return v;
}

struct header_raw {
	const char *ct, *cte, *cd, *id, *desc, *lang, *loc, *md5;
	size_t ct_len, cte_len, cd_len, id_len, desc_len, lang_len, loc_len, md5_len;
};

/* One field of a header block (name: value, folded lines included). */
static void header_field(struct gn_mime_parser *p, struct gn_mime_part *part,
			 struct header_raw *h, const char *f, size_t len)
{
	struct gn_pool *pool = p->msg->pool;
	const char *colon = memchr(f, ':', len);
	if (colon == NULL)
		return;
	size_t nl = (size_t)(colon - f);
	while (nl > 0 && (f[nl - 1] == ' ' || f[nl - 1] == '\t'))
		nl--;	/* RFC 5322 4.5: obs-optional white space */
	const char *v = colon + 1;
	size_t vlen = len - (size_t)(v - f);
	char name[32];
	if (nl == 0 || nl >= sizeof(name))
		return;
	for (size_t i = 0; i < nl; i++)
		name[i] = (char)((f[i] >= 'A' && f[i] <= 'Z') ? f[i] + 32 : f[i]);
	name[nl] = '\0';

#define TAKE(member, lenmember)                                                  \
	do {                                                                     \
		if (h->member == NULL)                                           \
			h->member = field_value(pool, v, vlen, &h->lenmember);   \
	} while (0)
	if (strncmp(name, "content-", 8) == 0) {
		const char *n8 = name + 8;
		if (strcmp(n8, "type") == 0)
			TAKE(ct, ct_len);
		else if (strcmp(n8, "transfer-encoding") == 0)
			TAKE(cte, cte_len);
		else if (strcmp(n8, "disposition") == 0)
			TAKE(cd, cd_len);
		else if (strcmp(n8, "id") == 0)
			TAKE(id, id_len);
		else if (strcmp(n8, "description") == 0)
			TAKE(desc, desc_len);
		else if (strcmp(n8, "language") == 0)
			TAKE(lang, lang_len);
		else if (strcmp(n8, "location") == 0)
			TAKE(loc, loc_len);
		else if (strcmp(n8, "md5") == 0)
			TAKE(md5, md5_len);
		return;
	}
#undef TAKE
	if (part->envelope == NULL)
		return;
	for (int i = 0; i < MIME_N_FIELDS; i++) {
		if (strcmp(name, mime_field_names[i]) != 0)
			continue;
		if (part->envelope->raw[i] != NULL)
			return;	/* the first one counts */
		size_t rl;
		char *raw = field_value(pool, v, vlen, &rl);
		part->envelope->raw[i] = raw;
		part->envelope->decoded[i] = mime_decode_header(pool, raw, rl, p->msg);
		if (i == GN_MIME_DATE) {
			time_t t;
			if (gn_mime_parse_date(raw, rl, &t) > 0) {
				part->envelope->has_date = true;
				part->envelope->date = t;
			} else {
				mime_problem(p->msg, "part %zu: Date not understood", part->index);
			}
		}
		return;
	}
}

static void parse_content_type(struct gn_mime_parser *p, struct gn_mime_part *part,
			       const struct header_raw *h)
{
	struct gn_mime_message *msg = p->msg;
	bool digest = part->parent != NULL && strcmp(part->parent->type, "multipart") == 0 &&
		      strcmp(part->parent->subtype, "digest") == 0;
	if (h->ct != NULL) {
		struct mime_lex l = { h->ct, h->ct + h->ct_len };
		mime_lex_cfws(&l);
		char *type = mime_lex_token_lower(msg->pool, &l);
		mime_lex_cfws(&l);
		char *subtype = NULL;
		if (l.s < l.end && *l.s == '/') {
			l.s++;
			mime_lex_cfws(&l);
			subtype = mime_lex_token_lower(msg->pool, &l);
		}
		if (type[0] != '\0' && subtype != NULL && subtype[0] != '\0') {
			part->type = type;
			part->subtype = subtype;
			mime_params_read(msg, &l, &part->params, &part->n_params);
			return;
		}
		/* RFC 2045 5.2: a broken Content-Type means text/plain. */
		mime_problem(msg, "part %zu: Content-Type not understood, taken as text/plain",
			part->index);
	}
	/* RFC 2046 5.1.5: in a digest, the default is message/rfc822. */
	part->type = gn_pool_strdup(msg->pool, digest && h->ct == NULL ? "message" : "text");
	part->subtype = gn_pool_strdup(msg->pool, digest && h->ct == NULL ? "rfc822" : "plain");
}

/* The header block is complete (block: its fields, without the blank
 * line): fill in the part.  closing: the part ends here (no body). */
static void parse_header_block(struct gn_mime_parser *p, struct gn_mime_part *part,
			       const char *block, size_t len)
{
	struct gn_mime_message *msg = p->msg;
	struct header_raw h;
	memset(&h, 0, sizeof(h));
	size_t i = 0;
	/* An mbox "From " line before the first field is not a field. */
	if (part->parent == NULL && len >= 5 && memcmp(block, "From ", 5) == 0) {
		const char *nl = memchr(block, '\n', len);
		i = nl != NULL ? (size_t)(nl - block) + 1 : len;
	}
	while (i < len) {
		size_t start = i;
		/* A field runs until a line that does not start with white
		 * space (RFC 5322 2.2.3). */
		for (;;) {
			const char *nl = memchr(block + i, '\n', len - i);
			i = nl != NULL ? (size_t)(nl - block) + 1 : len;
			if (i >= len || (block[i] != ' ' && block[i] != '\t'))
				break;
		}
		header_field(p, part, &h, block + start, i - start);
	}
	parse_content_type(p, part, &h);
	if (h.cte != NULL) {
		struct mime_lex l = { h.cte, h.cte + h.cte_len };
		mime_lex_cfws(&l);
		part->encoding = mime_lex_token_lower(msg->pool, &l);
	}
	if (h.cd != NULL) {
		struct mime_lex l = { h.cd, h.cd + h.cd_len };
		mime_lex_cfws(&l);
		part->disposition = mime_lex_token_lower(msg->pool, &l);
		mime_params_read(msg, &l, &part->disp_params, &part->n_disp_params);
	}
	if (h.id != NULL)
		part->content_id = mime_utf8_pool(msg->pool, h.id, h.id_len);
	if (h.desc != NULL)
		part->description = mime_decode_header(msg->pool, h.desc, h.desc_len, msg);
	if (h.lang != NULL)
		part->language = mime_utf8_pool(msg->pool, h.lang, h.lang_len);
	if (h.loc != NULL)
		part->location = mime_utf8_pool(msg->pool, h.loc, h.loc_len);
	if (h.md5 != NULL)
		part->md5 = mime_utf8_pool(msg->pool, h.md5, h.md5_len);
	const char *fn = mime_param_find(part->disp_params, part->n_disp_params, "filename");
	if (fn == NULL)
		fn = mime_param_find(part->params, part->n_params, "name");
	if (fn != NULL)
		part->filename = gn_pool_strdup(msg->pool, fn);
}

static bool encoding_is_identity(const char *enc)
{
	/* RFC 2045 6.4: composite types allow only these. */
	return enc == NULL || strcmp(enc, "7bit") == 0 || strcmp(enc, "8bit") == 0 ||
	       strcmp(enc, "binary") == 0 || enc[0] == '\0';
}

/* The header of the top part ended: header up to header_end, body from
 * body_offset (lf: line feeds before it).  Decides what the body is and
 * opens a child for message/rfc822.  no_descend: why the part may not
 * have children (NULL: it may). */
static void end_header(struct gn_mime_parser *p, size_t header_end, size_t body_offset, size_t lf,
		       const char *block, size_t len, const char *no_descend)
{
	struct gn_mime_message *msg = p->msg;
	struct open_part *e = top(p);
	struct gn_mime_part *part = e->part;
	part->header_size = header_end - part->header_offset;
	part->body_offset = body_offset;
	e->lf_at_body = lf;
	parse_header_block(p, part, block, len);
	gn_buf_clear(p->hdr);
	p->hdr_line = 0;
	p->n_fields = 0;
	p->pending_eol = 0;
	p->pending_cr = false;
	p->prefix_active = false;
	p->at_line_start = true;

	bool multipart = strcmp(part->type, "multipart") == 0;
	bool message = strcmp(part->type, "message") == 0 &&
		       (strcmp(part->subtype, "rfc822") == 0 || strcmp(part->subtype, "global") == 0);
	if (message && !encoding_is_identity(part->encoding)) {
		/* RFC 2046 5.2.1: no encoding but 7bit, 8bit or binary; an
		 * encoded message is read as an opaque body. */
		mime_problem(msg, "part %zu: message/%s with Content-Transfer-Encoding %s is not parsed",
			part->index, part->subtype, part->encoding);
		message = false;
	}
	if (multipart || message) {
		const char *why = NULL;
		const char *boundary = multipart ? mime_param_find(part->params, part->n_params, "boundary") : NULL;
		if (no_descend != NULL)
			why = no_descend;
		else if (p->depth >= p->lim.max_depth)
			why = "it is nested too deep";
		else if (p->n_parts >= p->lim.max_parts)
			why = "the message has too many parts";
		else if (multipart && (boundary == NULL || boundary[0] == '\0'))
			why = "it has no boundary";
		else if (multipart && strlen(boundary) > MAX_BOUNDARY)
			why = "its boundary is too long";
		if (why != NULL) {
			mime_problem(msg, "part %zu: %s/%s not parsed because %s; taken as text/plain",
				part->index, part->type, part->subtype, why);
			set_text_plain(msg, part);
			multipart = message = false;
		} else if (multipart) {
			e->state = OP_PREAMBLE;
			e->boundary = gn_pool_strdup(msg->pool, boundary);
			e->boundary_len = strlen(boundary);
			p->any_boundary = true;
			return;
		} else {
			e->state = OP_MESSAGE;
			start_part(p, part, body_offset, true);
			return;
		}
	}
	e->state = OP_LEAF;
	mime_decoder_init(&e->dec, part->encoding);
}

/* Closes the open part e: its body ends at cut; lf: line feeds before cut;
 * after_lf: the byte before cut is a line feed. */
static void close_part(struct gn_mime_parser *p, struct open_part *e, size_t cut, size_t lf,
		       bool after_lf)
{
	struct gn_mime_message *msg = p->msg;
	struct gn_mime_part *part = e->part;
	if (e->state == OP_HEADER) {
		/* Ended inside its header: what is there is the header. */
		size_t blen = gn_buf_len(p->hdr);
		if (cut < part->header_offset)
			cut = part->header_offset;
		end_header(p, cut, cut, lf, gn_buf_data(p->hdr), blen, "it ends inside its header");
	}
	size_t size = cut > part->body_offset ? cut - part->body_offset : 0;
	part->body_size = size;
	part->body_lines = size == 0 ? 0 : lf - e->lf_at_body + (after_lf ? 0 : 1);
	switch (e->state) {
	case OP_LEAF:
		part->decoded_size = mime_decoder_finish(&e->dec);
		break;
	case OP_PREAMBLE:
		mime_problem(msg, "part %zu: multipart/%s boundary never found; taken as text/plain",
			part->index, part->subtype);
		set_text_plain(msg, part);
		part->decoded_size = size;
		break;
	case OP_CHILD:
	case OP_SKIP:
		mime_problem(msg, "part %zu: multipart/%s has no close delimiter", part->index,
			part->subtype);
		part->decoded_size = size;
		break;
	default:
		part->decoded_size = size;
		break;
	}
	if (strcmp(part->type, "multipart") == 0 && part->n_children == 0) {
		mime_problem(msg, "part %zu: multipart/%s has no parts; taken as text/plain", part->index,
			part->subtype);
		set_text_plain(msg, part);
	}
}

/* A boundary of the multipart at stack index k: everything above it ends
 * at the line break before the line; then a new child opens, or the
 * multipart's epilogue starts. */
static void boundary_event(struct gn_mime_parser *p, size_t k, bool close, size_t eol_before)
{
	size_t cut = p->line_start - eol_before;
	size_t lf = p->lf_at_line - (eol_before > 0 ? 1 : 0);
	bool after_lf = eol_before > 0 ? p->prev_line_start == cut : p->line_start > 0;
	while (p->depth > k + 1) {
		close_part(p, top(p), cut, lf, after_lf);
		p->depth--;
	}
	struct open_part *owner = top(p);
	p->pending_eol = 0;
	p->pending_cr = false;
	p->prefix_active = false;
	p->at_line_start = true;
	if (close) {
		owner->state = OP_EPILOGUE;
	} else if (owner->state != OP_SKIP) {
		if (p->n_parts >= p->lim.max_parts) {
			mime_problem(p->msg, "message has more than %u parts; the rest is not parsed",
				p->lim.max_parts);
			owner->state = OP_SKIP;
		} else {
			owner->state = OP_CHILD;
			start_part(p, owner->part, p->pos, false);
		}
	}
	update_boundaries(p);
}

/* Whether line (without its line break) is a boundary delimiter of an open
 * multipart (RFC 2046 5.1.1: "--" boundary ["--"] transport-padding); the
 * innermost wins. */
static bool match_boundary(struct gn_mime_parser *p, const char *line, size_t len, size_t *k_r,
			   bool *close_r)
{
	if (len < 3 || line[0] != '-' || line[1] != '-')
		return false;
	for (size_t i = p->depth; i-- > 0;) {
		const struct open_part *e = &p->stack[i];
		if (e->state != OP_PREAMBLE && e->state != OP_CHILD && e->state != OP_SKIP)
			continue;
		size_t bl = e->boundary_len;
		if (len < 2 + bl || memcmp(line + 2, e->boundary, bl) != 0)
			continue;
		size_t j = 2 + bl;
		bool close = false;
		if (j + 2 <= len && line[j] == '-' && line[j + 1] == '-') {
			close = true;
			j += 2;
		}
		while (j < len && (line[j] == ' ' || line[j] == '\t'))
			j++;
		if (j != len)
			continue;
		*k_r = i;
		*close_r = close;
		return true;
	}
	return false;
}

/* Body bytes of the innermost part. */
static void body_bytes(struct gn_mime_parser *p, const char *s, size_t len)
{
	struct open_part *e = top(p);
	if (e->state == OP_LEAF && len > 0)
		mime_decoder_feed(&e->dec, s, len);
}

static void flush_eol(struct gn_mime_parser *p)
{
	if (p->pending_eol > 0)
		body_bytes(p, p->pending_eol == 2 ? "\r\n" : "\n", p->pending_eol);
	p->pending_eol = 0;
}

static void new_line(struct gn_mime_parser *p)
{
	p->prev_line_start = p->line_start;
	p->line_start = p->pos;
	p->lf_at_line = p->lf_count;
	p->at_line_start = true;
}

static void feed_bytes(struct gn_mime_parser *p, const char *d, size_t len);

/* Parses again, in the state the parser is now in, the current line that
 * was consumed in header mode (which ended the header). */
static void refeed_line(struct gn_mime_parser *p, const char *line, size_t len, bool had_lf)
{
	p->pos -= len;
	if (had_lf)
		p->lf_count--;
	struct gn_buf *b = gn_buf_new(0);
	(void)gn_buf_append(b, line, len);
	p->refeed = b;
}

/* Header mode: consumes up to one line. */
static size_t feed_header(struct gn_mime_parser *p, const char *d, size_t len)
{
	const char *nl = memchr(d, '\n', len);
	size_t n = nl != NULL ? (size_t)(nl - d) + 1 : len;
	struct open_part *e = top(p);
	if (gn_buf_len(p->hdr) + n > p->lim.max_header_size) {
		/* The header ends before this line; the line and the rest are
		 * body. */
		mime_problem(p->msg, "part %zu: header larger than %zu bytes; the rest is taken as body",
			e->part->index, p->lim.max_header_size);
		size_t partial = gn_buf_len(p->hdr) - p->hdr_line;
		char *copy = gn_malloc(partial + 1);
		memcpy(copy, gn_buf_data(p->hdr) + p->hdr_line, partial);
		size_t lf = p->lf_at_line;
		end_header(p, p->line_start, p->line_start, lf, gn_buf_data(p->hdr), p->hdr_line,
			   "its header is too large");
		p->pos -= partial;
		struct gn_buf *b = gn_buf_new(0);
		(void)gn_buf_append(b, copy, partial);
		gn_free(copy);
		p->refeed = b;
		return 0;
	}
	(void)gn_buf_append(p->hdr, d, n);
	p->pos += n;
	if (nl == NULL)
		return n;
	p->lf_count++;
	const char *line = gn_buf_data(p->hdr) + p->hdr_line;
	size_t llen = gn_buf_len(p->hdr) - p->hdr_line;
	size_t eol = llen >= 2 && line[llen - 2] == '\r' ? 2 : 1;
	size_t clen = llen - eol;
	size_t k;
	bool close;
	if (p->any_boundary && match_boundary(p, line, clen, &k, &close)) {
		gn_buf_truncate(p->hdr, p->hdr_line);
		boundary_event(p, k, close, p->hdr_eol);
		new_line(p);
		return n;
	}
	if (clen == 0) {
		/* The blank line: the header ends (RFC 5322 2.1). */
		end_header(p, p->pos, p->pos, p->lf_count, gn_buf_data(p->hdr), p->hdr_line, NULL);
		new_line(p);
		return n;
	}
	bool field;
	if (line[0] == ' ' || line[0] == '\t') {
		field = true;	/* a folded line */
	} else if (e->part->parent == NULL && p->hdr_line == 0 && clen >= 5 &&
		   memcmp(line, "From ", 5) == 0) {
		field = true;	/* mbox separator */
	} else {
		size_t i = 0;
		while (i < clen && line[i] > 32 && line[i] < 127 && line[i] != ':')
			i++;
		size_t name_end = i;
		while (i < clen && (line[i] == ' ' || line[i] == '\t'))
			i++;
		field = name_end > 0 && i < clen && line[i] == ':';
		if (field && ++p->n_fields > p->lim.max_headers) {
			mime_problem(p->msg, "part %zu: more than %u header fields; the rest is taken as body",
				e->part->index, p->lim.max_headers);
			char *copy = gn_malloc(llen);
			memcpy(copy, line, llen);
			end_header(p, p->line_start, p->line_start, p->lf_at_line,
				   gn_buf_data(p->hdr), p->hdr_line, "its header has too many fields");
			refeed_line(p, copy, llen, true);
			gn_free(copy);
			return n;
		}
	}
	if (!field) {
		/* Not a field: the header ends without a blank line and this
		 * line is the first of the body. */
		mime_problem(p->msg, "part %zu: header not ended by a blank line", e->part->index);
		char *copy = gn_malloc(llen);
		memcpy(copy, line, llen);
		end_header(p, p->line_start, p->line_start, p->lf_at_line, gn_buf_data(p->hdr),
			   p->hdr_line, NULL);
		refeed_line(p, copy, llen, true);
		gn_free(copy);
		return n;
	}
	p->hdr_line = gn_buf_len(p->hdr);
	p->hdr_eol = eol;
	new_line(p);
	return n;
}

/* The current body line is not a boundary: what was held back is body.
 * complete: the whole line (without its line break) is in the prefix; else
 * a CR at its end may still start the line break and is held. */
static void prefix_is_body(struct gn_mime_parser *p, bool complete)
{
	flush_eol(p);
	size_t n = p->prefix_len;
	if (!complete && n > 0 && p->prefix[n - 1] == '\r') {
		n--;
		p->pending_cr = true;
	}
	body_bytes(p, p->prefix, n);
	p->prefix_active = false;
	p->prefix_len = 0;
}

/* Body mode: consumes up to one line. */
static size_t feed_body(struct gn_mime_parser *p, const char *d, size_t len)
{
	if (p->at_line_start) {
		p->at_line_start = false;
		p->prefix_active = p->any_boundary;
		p->prefix_len = 0;
		if (!p->prefix_active)
			flush_eol(p);
	}
	const char *nl = memchr(d, '\n', len);
	size_t n = nl != NULL ? (size_t)(nl - d) + 1 : len;
	size_t content = nl != NULL ? n - 1 : n;	/* bytes before the LF */
	size_t i = 0;
	if (p->prefix_active) {
		size_t take = content < LINE_PREFIX - p->prefix_len ? content : LINE_PREFIX - p->prefix_len;
		memcpy(p->prefix + p->prefix_len, d, take);
		p->prefix_len += take;
		i = take;
		if (p->prefix_len > 0 &&
		    (p->prefix[0] != '-' || (p->prefix_len >= 2 && p->prefix[1] != '-') ||
		     i < content || (p->prefix_len == LINE_PREFIX && nl == NULL)))
			prefix_is_body(p, false);
	}
	if (!p->prefix_active && i < content) {
		if (p->pending_cr) {
			p->pending_cr = false;
			body_bytes(p, "\r", 1);
		}
		size_t m = content - i;
		if (d[i + m - 1] == '\r') {
			m--;
			p->pending_cr = true;
		}
		body_bytes(p, d + i, m);
	}
	p->pos += n;
	if (nl == NULL)
		return n;
	p->lf_count++;
	size_t eol = 1;
	if (p->prefix_active) {
		size_t clen = p->prefix_len;
		if (clen > 0 && p->prefix[clen - 1] == '\r') {
			clen--;
			eol = 2;
		}
		size_t k;
		bool close;
		if (match_boundary(p, p->prefix, clen, &k, &close)) {
			boundary_event(p, k, close, p->pending_eol);
			new_line(p);
			return n;
		}
		p->prefix_len = clen;
		prefix_is_body(p, true);
	} else if (p->pending_cr) {
		p->pending_cr = false;
		eol = 2;
	}
	p->pending_eol = eol;
	new_line(p);
	return n;
}

static void feed_bytes(struct gn_mime_parser *p, const char *d, size_t len)
{
	while (len > 0) {
		size_t n = top(p)->state == OP_HEADER ? feed_header(p, d, len) : feed_body(p, d, len);
		d += n;
		len -= n;
		while (p->refeed != NULL) {
			struct gn_buf *b = p->refeed;
			p->refeed = NULL;
			feed_bytes(p, gn_buf_data(b), gn_buf_len(b));
			gn_buf_free(&b);
		}
	}
}

void gn_mime_limits_init(struct gn_mime_limits *limits)
{
	memset(limits, 0, sizeof(*limits));
	limits->size = sizeof(*limits);
	limits->max_depth = 50;
	limits->max_header_size = 1024 * 1024;
	limits->max_parts = 10000;
	limits->max_headers = 10000;
}

struct gn_mime_parser *gn_mime_parser_new(const struct gn_mime_limits *limits)
{
	struct gn_mime_parser *p = gn_calloc(1, sizeof(*p));
	gn_mime_limits_init(&p->lim);
	if (limits != NULL) {
		size_t n = limits->size < sizeof(p->lim) ? limits->size : sizeof(p->lim);
		if (n >= offsetof(struct gn_mime_limits, max_depth) + sizeof(unsigned))
			memcpy(&p->lim, limits, n);
		p->lim.size = sizeof(p->lim);
	}
	if (p->lim.max_depth < 1)
		p->lim.max_depth = 1;
	if (p->lim.max_parts < 1)
		p->lim.max_parts = 1;
	if (p->lim.max_header_size < 2)
		p->lim.max_header_size = 2;
	p->msg = gn_calloc(1, sizeof(*p->msg));
	p->msg->pool = gn_pool_new();
	p->hdr = gn_buf_new(0);
	start_part(p, NULL, 0, true);
	p->at_line_start = true;
	return p;
}

void gn_mime_parser_feed(struct gn_mime_parser *p, const void *data, size_t len)
{
	if (p->finished || len == 0)
		return;
	feed_bytes(p, data, len);
}

/* Turns the children lists into arrays. */
void mime_tree_finish(struct gn_pool *pool, struct gn_mime_part *part)
{
	/* Iterative pre-order walk: the tree may be deep. */
	struct gn_mime_part *cur = part;
	while (cur != NULL) {
		if (cur->n_children > 0 && cur->children == NULL) {
			cur->children = gn_pool_alloc(pool, cur->n_children * sizeof(*cur->children));
			size_t i = 0;
			for (struct gn_mime_part *c = cur->first_child; c != NULL; c = c->next)
				cur->children[i++] = c;
		}
		if (cur->first_child != NULL) {
			cur = cur->first_child;
			continue;
		}
		while (cur != NULL && cur != part && cur->next == NULL)
			cur = cur->parent;
		if (cur == NULL || cur == part)
			break;
		cur = cur->next;
	}
}

void gn_mime_parser_finish(struct gn_mime_parser *p, struct gn_mime_message **msg_r)
{
	*msg_r = NULL;
	if (p->finished || p->msg == NULL)
		return;
	/* The last line, if it has no line break. */
	if (top(p)->state == OP_HEADER) {
		const char *line = gn_buf_data(p->hdr) + p->hdr_line;
		size_t clen = gn_buf_len(p->hdr) - p->hdr_line;
		if (clen > 0 && line[clen - 1] == '\r')
			clen--;
		size_t k;
		bool close;
		if (clen > 0 && p->any_boundary && match_boundary(p, line, clen, &k, &close)) {
			gn_buf_truncate(p->hdr, p->hdr_line);
			boundary_event(p, k, close, p->hdr_eol);
		}
	} else if (p->prefix_active) {
		size_t clen = p->prefix_len;
		if (clen > 0 && p->prefix[clen - 1] == '\r')
			clen--;
		size_t k;
		bool close;
		if (match_boundary(p, p->prefix, clen, &k, &close))
			boundary_event(p, k, close, p->pending_eol);
		else
			prefix_is_body(p, true);
	}
	if (p->pending_cr) {
		flush_eol(p);
		body_bytes(p, "\r", 1);
		p->pending_cr = false;
	}
	/* At the end of the message the last line break is body. */
	if (top(p)->state != OP_HEADER)
		flush_eol(p);
	bool after_lf = p->pos > 0 && p->line_start == p->pos;
	while (p->depth > 0) {
		close_part(p, top(p), p->pos, p->lf_count, after_lf);
		p->depth--;
	}
	struct gn_mime_message *msg = p->msg;
	msg->size = p->pos;
	mime_tree_finish(msg->pool, msg->root);
	p->msg = NULL;
	p->finished = true;
	*msg_r = msg;
}

void gn_mime_parser_free(struct gn_mime_parser **parser)
{
	if (parser == NULL || *parser == NULL)
		return;
	struct gn_mime_parser *p = *parser;
	gn_mime_message_free(&p->msg);
	gn_buf_free(&p->hdr);
	gn_buf_free(&p->refeed);
	gn_free(p->stack);
	gn_free(p);
	*parser = NULL;
}

struct gn_mime_message *gn_mime_parse(const void *data, size_t len,
				      const struct gn_mime_limits *limits)
{
	struct gn_mime_parser *p = gn_mime_parser_new(limits);
	struct gn_mime_message *msg;
	gn_mime_parser_feed(p, data, len);
	gn_mime_parser_finish(p, &msg);
	gn_mime_parser_free(&p);
	return msg;
}

void gn_mime_message_free(struct gn_mime_message **msg)
{
	if (msg == NULL || *msg == NULL)
		return;
	gn_pool_free(&(*msg)->pool);
	gn_free((*msg)->problems);
	gn_free(*msg);
	*msg = NULL;
}

/* ---- accessors ---- */

const struct gn_mime_part *gn_mime_message_root(const struct gn_mime_message *msg)
{
	return msg->root;
}

size_t gn_mime_message_size(const struct gn_mime_message *msg)
{
	return msg->size;
}

size_t gn_mime_message_problem_count(const struct gn_mime_message *msg)
{
	return msg->n_problems;
}

const char *gn_mime_message_problem(const struct gn_mime_message *msg, size_t i)
{
	return i < msg->n_problems ? msg->problems[i] : NULL;
}

const char *gn_mime_message_field(const struct gn_mime_message *msg, enum gn_mime_field field)
{
	return gn_mime_part_field(msg->root, field);
}

const char *gn_mime_message_field_raw(const struct gn_mime_message *msg, enum gn_mime_field field)
{
	return gn_mime_part_field_raw(msg->root, field);
}

int gn_mime_message_date(const struct gn_mime_message *msg, time_t *date_r)
{
	return gn_mime_part_date(msg->root, date_r);
}

size_t gn_mime_part_header_offset(const struct gn_mime_part *part) { return part->header_offset; }
size_t gn_mime_part_header_size(const struct gn_mime_part *part) { return part->header_size; }
size_t gn_mime_part_body_offset(const struct gn_mime_part *part) { return part->body_offset; }
size_t gn_mime_part_body_size(const struct gn_mime_part *part) { return part->body_size; }
size_t gn_mime_part_body_lines(const struct gn_mime_part *part) { return part->body_lines; }
size_t gn_mime_part_decoded_size(const struct gn_mime_part *part) { return part->decoded_size; }
const char *gn_mime_part_type(const struct gn_mime_part *part) { return part->type; }
const char *gn_mime_part_subtype(const struct gn_mime_part *part) { return part->subtype; }
size_t gn_mime_part_param_count(const struct gn_mime_part *part) { return part->n_params; }
const char *gn_mime_part_content_id(const struct gn_mime_part *part) { return part->content_id; }
const char *gn_mime_part_description(const struct gn_mime_part *part) { return part->description; }
const char *gn_mime_part_encoding(const struct gn_mime_part *part) { return part->encoding; }
const char *gn_mime_part_language(const struct gn_mime_part *part) { return part->language; }
const char *gn_mime_part_location(const struct gn_mime_part *part) { return part->location; }
const char *gn_mime_part_md5(const struct gn_mime_part *part) { return part->md5; }
const char *gn_mime_part_disposition(const struct gn_mime_part *part) { return part->disposition; }
const char *gn_mime_part_filename(const struct gn_mime_part *part) { return part->filename; }
size_t gn_mime_part_child_count(const struct gn_mime_part *part) { return part->n_children; }
const struct gn_mime_part *gn_mime_part_parent(const struct gn_mime_part *part) { return part->parent; }
bool gn_mime_part_is_message(const struct gn_mime_part *part) { return part->envelope != NULL; }

const char *gn_mime_part_param_name(const struct gn_mime_part *part, size_t i)
{
	return i < part->n_params ? part->params[i].name : NULL;
}

const char *gn_mime_part_param_value(const struct gn_mime_part *part, size_t i)
{
	return i < part->n_params ? part->params[i].value : NULL;
}

const char *gn_mime_part_param(const struct gn_mime_part *part, const char *name)
{
	return mime_param_find(part->params, part->n_params, name);
}

size_t gn_mime_part_disposition_param_count(const struct gn_mime_part *part)
{
	return part->n_disp_params;
}

const char *gn_mime_part_disposition_param_name(const struct gn_mime_part *part, size_t i)
{
	return i < part->n_disp_params ? part->disp_params[i].name : NULL;
}

const char *gn_mime_part_disposition_param_value(const struct gn_mime_part *part, size_t i)
{
	return i < part->n_disp_params ? part->disp_params[i].value : NULL;
}

const struct gn_mime_part *gn_mime_part_child(const struct gn_mime_part *part, size_t i)
{
	return i < part->n_children ? part->children[i] : NULL;
}

const char *gn_mime_part_field(const struct gn_mime_part *part, enum gn_mime_field field)
{
	if (part->envelope == NULL || (unsigned)field >= MIME_N_FIELDS)
		return NULL;
	return part->envelope->decoded[field];
}

const char *gn_mime_part_field_raw(const struct gn_mime_part *part, enum gn_mime_field field)
{
	if (part->envelope == NULL || (unsigned)field >= MIME_N_FIELDS)
		return NULL;
	return part->envelope->raw[field];
}

int gn_mime_part_date(const struct gn_mime_part *part, time_t *date_r)
{
	if (part->envelope == NULL || !part->envelope->has_date)
		return 0;
	*date_r = part->envelope->date;
	return 1;
}
