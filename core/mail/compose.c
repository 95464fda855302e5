/*
 * core/mail/compose.c: a message composed from its parts (gannet/compose.h).
 *
 * The header fields go first into the output buffer, each folded at its
 * spaces to lines of at most 78 octets (fold()); then the body, whose
 * structure (mixed > related > alternative, each level only when it holds
 * more than one part) is written by write_body() from a flat list of the
 * leaf parts.  Each leaf is encoded once: text and HTML 7bit or
 * quoted-printable (RFC 2045 6.7), files base64 (RFC 2045 6.8).  The
 * output buffer's limit is the size limit: an append that fails means the
 * message is too large.
 */
#include "mail/internal.h"

#include <gannet/addr.h>
#include <gannet/compose.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define LINE_MAX_SOFT 78	/* RFC 5322 2.1.1 SHOULD */

struct composer {
	struct gn_pool *pool;
	struct gn_buf *out;
	struct gn_compose_result *r;
	char boundary_base[40];
	unsigned n_boundaries;
};

static int fail(struct composer *cp, enum gn_compose_error e, const char *text)
{
	if (cp->r->error == GN_COMPOSE_OK) {
		cp->r->error = e;
		cp->r->error_text = text;
	}
	return -1;
}

static int put(struct composer *cp, const void *data, size_t len)
{
	if (gn_buf_append(cp->out, data, len) < 0)
		return fail(cp, GN_COMPOSE_TOO_LARGE, "message too large");
	return 0;
}

static int puts_(struct composer *cp, const char *s)
{
	return put(cp, s, strlen(s));
}

static bool is_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

/* No control character but tab (no header injection), valid UTF-8. */
static bool field_ok(const char *s)
{
	size_t n = strlen(s);
	if (n > GN_COMPOSE_MAX_FIELD || !mime_utf8_valid(s, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* ---- header fields ---- */

/* Writes "name: value\r\n", folding before a space wherever the line
 * would pass 78 octets (RFC 5322 2.2.3: unfolding removes only the CRLF,
 * so the value is unchanged).  A run without spaces longer than a line
 * stays whole (the callers keep such runs short: encoded words, ids). */
static int fold(struct composer *cp, const char *name, const char *value)
{
	size_t line = strlen(name) + 1;
	if (puts_(cp, name) < 0 || put(cp, ":", 1) < 0)
		return -1;
	const char *p = value;
	bool first = true;
	while (*p != '\0') {
		/* A segment: one space (except the first) and what follows up to the next space. */
		const char *e = p + 1;
		while (*e != '\0' && *e != ' ')
			e++;
		size_t seg = (size_t)(e - p);
		if (first) {
			/* A long name and a long first word: the value starts on the next line. */
			bool wrap = line + 1 + seg > LINE_MAX_SOFT;
			if (put(cp, wrap ? "\r\n " : " ", wrap ? 3 : 1) < 0)
				return -1;
			line = wrap ? 1 : line + 1;
		} else if (line + seg > LINE_MAX_SOFT) {
			if (put(cp, "\r\n", 2) < 0)
				return -1;
			line = 0;
		}
		if (put(cp, p, seg) < 0)
			return -1;
		line += seg;
		first = false;
		p = e;
	}
	return put(cp, "\r\n", 2);
}

/* RFC 2047 B encoded words of s, each at most 75 octets (2), split only
 * between UTF-8 characters, separated by spaces (which decoders drop
 * between adjacent encoded words, 6.2). */
static void encode_words(struct gn_buf *b, const char *s)
{
	size_t n = strlen(s), i = 0;
	bool first = true;
	while (i < n) {
		/* 39 octets give 52 base64 characters: 12 + 52 <= 75, and
		 * "Subject: " and a word fit in a line of 78. */
		size_t j = i + 39 < n ? i + 39 : n;
		while (j > i && j < n && ((unsigned char)s[j] & 0xc0) == 0x80)
			j--;
		char *enc = mime_b64_encode((const unsigned char *)s + i, j - i);
		gn_buf_printf(b, "%s=?utf-8?b?%s?=", first ? "" : " ", enc);
		gn_free(enc);
		first = false;
		i = j;
	}
}

/* An unstructured value (Subject, extra fields): as it is when it is
 * ASCII without "=?" and without a run of more than 70 octets that could
 * not be folded; else encoded words throughout. */
static char *unstructured(struct composer *cp, const char *s)
{
	size_t n = strlen(s), run = 0;
	bool plain = is_ascii(s, n) && strstr(s, "=?") == NULL;
	for (size_t i = 0; plain && i < n; i++) {
		run = s[i] == ' ' ? 0 : run + 1;
		if (run > 70)
			plain = false;
	}
	if (plain)
		return gn_pool_strdup(cp->pool, s);
	struct gn_buf *b = gn_buf_new(0);
	encode_words(b, s);
	char *v = gn_pool_strndup(cp->pool, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	return v;
}

/* RFC 5322 3.2.3 atext. */
static bool is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* A display name as a phrase (RFC 5322 3.2.5): atoms, a quoted string, or
 * encoded words (RFC 2047 5(3)) when it is not ASCII. */
static void phrase(struct gn_buf *b, const char *name)
{
	size_t n = strlen(name), run = 0;
	bool plain = is_ascii(name, n) && strstr(name, "=?") == NULL;
	/* A run without spaces that could not be folded: encoded words,
	 * which can be (a quoted string needs 2 more octets per line). */
	for (size_t i = 0; plain && i < n; i++) {
		/* Counted as written: '"' and '\\' get a backslash. */
		run = name[i] == ' ' ? 0 : run + (name[i] == '"' || name[i] == '\\' ? 2 : 1);
		if (run > 60)
			plain = false;
	}
	if (!plain) {
		encode_words(b, name);
		return;
	}
	bool atoms = n > 0 && name[0] != ' ' && name[n - 1] != ' ';
	for (size_t i = 0; atoms && i < n; i++)
		if (!is_atext((unsigned char)name[i]) && !(name[i] == ' ' && name[i + 1] != ' '))
			atoms = false;
	if (atoms) {
		gn_buf_append(b, name, n);
		return;
	}
	gn_buf_append(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		if (name[i] == '"' || name[i] == '\\')
			gn_buf_append(b, "\\", 1);
		gn_buf_append(b, name + i, 1);
	}
	gn_buf_append(b, "\"", 1);
}

/* Appends the addresses to b as a header's address list; sets smtputf8
 * for a non-ASCII localpart. */
static int address_list(struct composer *cp, struct gn_buf *b, const struct gn_compose_address *v,
			size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *error;
		struct gn_addr *a;
		if (v[i].address == NULL ||
		    gn_addr_parse(cp->pool, v[i].address, strlen(v[i].address), &a, &error) < 0) {
			cp->r->error_text = gn_pool_printf(cp->pool, "bad address %s: %s",
							   v[i].address != NULL ? v[i].address : "(none)",
							   v[i].address != NULL ? error : "missing");
			cp->r->error = GN_COMPOSE_BAD_ADDRESS;
			return -1;
		}
		if (v[i].name != NULL && !field_ok(v[i].name))
			return fail(cp, GN_COMPOSE_USER, "bad display name (control characters, not UTF-8 or too long)");
		bool utf8 = gn_addr_needs_smtputf8(a);
		if (utf8)
			cp->r->smtputf8 = true;
		if (i > 0)
			gn_buf_append(b, ", ", 2);
		/* RFC 6532 3.2: with SMTPUTF8 the domain may be written as U-labels too. */
		const char *s = utf8 ? gn_addr_to_display(cp->pool, a) : gn_addr_to_string(cp->pool, a);
		if (v[i].name != NULL && v[i].name[0] != '\0') {
			phrase(b, v[i].name);
			gn_buf_printf(b, " <%s>", s);
		} else {
			gn_buf_append_str(b, s);
		}
	}
	return 0;
}

static int address_field(struct composer *cp, const char *name, const struct gn_compose_address *v,
			 size_t n)
{
	if (n == 0)
		return 0;
	struct gn_buf *b = gn_buf_new(0);
	int ret = address_list(cp, b, v, n);
	if (ret == 0) {
		char *s = gn_pool_strndup(cp->pool, gn_buf_data(b), gn_buf_len(b));
		ret = fold(cp, name, s);
	}
	gn_buf_free(&b);
	return ret;
}

/* "<id>": RFC 5322 3.6.4 msg-id, checked loosely (printable ASCII, no
 * space, one "@" not required: mox accepts any text between brackets). */
static bool msgid_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 3 || n > GN_COMPOSE_MAX_ID || s[0] != '<' || s[n - 1] != '>')
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (s[i] <= ' ' || s[i] >= 0x7f || s[i] == '<' || s[i] == '>')
			return false;
	return true;
}

static char *date_string(struct gn_pool *pool, time_t t)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	gmtime_r(&t, &tm);
	return gn_pool_printf(pool, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
			      tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
			      tm.tm_min, tm.tm_sec);
}

static int random_hex(char *out, size_t bytes)
{
	unsigned char rnd[32];
	if (bytes > sizeof(rnd) || getrandom(rnd, bytes, 0) != (ssize_t)bytes)
		return -1;
	for (size_t i = 0; i < bytes; i++)
		snprintf(out + 2 * i, 3, "%02x", rnd[i]);
	return 0;
}

/* Fields the composer writes itself, refused as extras. */
static bool reserved_field(const char *name)
{
	static const char *const names[] = {
		"From", "To", "Cc", "Bcc", "Reply-To", "Subject", "Date", "Message-ID",
		"In-Reply-To", "References", "MIME-Version", "Sender",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i]) == 0)
			return true;
	return strncasecmp(name, "Content-", 8) == 0;
}

/* RFC 5322 2.2 field name: printable ASCII but ":". */
static bool field_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 76)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] >= 0x7f || s[i] == ':')
			return false;
	return true;
}

/* ---- the leaf parts ---- */

struct leaf {
	const char *content_type;	/* full value, parameters included */
	const char *disposition;	/* full value or NULL */
	const char *content_id;
	const char *encoding;		/* "7bit", "quoted-printable", "base64" */
	const char *text;		/* text or HTML: converted when written */
	const struct gn_compose_file *file;
};

/* Whether text can go as 7bit: ASCII, no NUL or lone CR, lines of at most
 * 78 octets once "\n" became CRLF (RFC 2045 2.7). */
static bool text_7bit(const char *s)
{
	size_t line = 0;
	if (strstr(s, "=_") != NULL)	/* could look like our boundaries: quoted-printable writes "=3D_" */
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '\r' && p[1] == '\n')
			continue;
		if (c == '\n') {
			line = 0;
			continue;
		}
		if (c >= 0x80 || c == '\r' || ++line > LINE_MAX_SOFT)
			return false;
	}
	return true;
}

static int write_text(struct composer *cp, const struct leaf *l)
{
	const char *p = l->text;
	if (strcmp(l->encoding, "7bit") == 0) {
		while (*p != '\0') {
			const char *e = strchr(p, '\n');
			size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
			if (n > 0 && p[n - 1] == '\r')
				n--;
			if (put(cp, p, n) < 0 || put(cp, "\r\n", 2) < 0)
				return -1;
			p = e != NULL ? e + 1 : p + strlen(p);
		}
		return 0;
	}
	/* RFC 2045 6.7: quoted-printable, lines of at most 76 with "=" soft breaks. */
	while (*p != '\0') {
		const char *e = strchr(p, '\n');
		size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		size_t col = 0;
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)p[i];
			char tok[4];
			size_t tl;
			bool last = i + 1 == n;
			if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last)) {
				tok[0] = (char)c;
				tl = 1;
			} else {
				snprintf(tok, sizeof(tok), "=%02X", c);
				tl = 3;
			}
			/* Keep room for the soft break's "=" unless this is the line's end. */
			if (col + tl > (last ? 76 : 75)) {
				if (put(cp, "=\r\n", 3) < 0)
					return -1;
				col = 0;
			}
			if (put(cp, tok, tl) < 0)
				return -1;
			col += tl;
		}
		if (put(cp, "\r\n", 2) < 0)
			return -1;
		p = e != NULL ? e + 1 : p + strlen(p);
	}
	return 0;
}

static int write_base64(struct composer *cp, const unsigned char *d, size_t n)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char line[80];
	size_t col = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)d[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)d[i + 1] << 8;
		if (i + 2 < n)
			v |= d[i + 2];
		line[col++] = alphabet[(v >> 18) & 63];
		line[col++] = alphabet[(v >> 12) & 63];
		line[col++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
		line[col++] = i + 2 < n ? alphabet[v & 63] : '=';
		if (col == 76) {
			line[col++] = '\r';
			line[col++] = '\n';
			if (put(cp, line, col) < 0)
				return -1;
			col = 0;
		}
	}
	if (col > 0) {
		line[col++] = '\r';
		line[col++] = '\n';
		if (put(cp, line, col) < 0)
			return -1;
	}
	return 0;
}

static int write_leaf(struct composer *cp, const struct leaf *l)
{
	if (fold(cp, "Content-Type", l->content_type) < 0 ||
	    fold(cp, "Content-Transfer-Encoding", l->encoding) < 0)
		return -1;
	if (l->content_id != NULL && fold(cp, "Content-ID", l->content_id) < 0)
		return -1;
	if (l->disposition != NULL && fold(cp, "Content-Disposition", l->disposition) < 0)
		return -1;
	if (put(cp, "\r\n", 2) < 0)
		return -1;
	size_t before = gn_buf_len(cp->out);
	if ((l->file != NULL ? write_base64(cp, l->file->data, l->file->len) : write_text(cp, l)) < 0)
		return -1;
	/* An empty body is one empty line, so that the CRLF before a
	 * boundary (RFC 2046 5.1.1) is not the header's blank line. */
	if (gn_buf_len(cp->out) == before && put(cp, "\r\n", 2) < 0)
		return -1;
	return 0;
}

/* RFC 2045 5.1 tspecials excluded: a token. */
static bool is_token_char(unsigned char c)
{
	return c > ' ' && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* type "/" subtype, then optionally ";" and parameters: checked for the
 * tokens and for control characters only (the caller's parameters are
 * written as given). */
static bool content_type_ok(const char *s)
{
	size_t n = strlen(s), i = 0, t = 0, st = 0;
	/* Short enough that a parameter without spaces stays far below
	 * 998 octets on its line. */
	if (n > 256 || !is_ascii(s, n))
		return false;
	for (size_t k = 0; k < n; k++)
		if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f)
			return false;
	while (i < n && is_token_char((unsigned char)s[i]))
		i++, t++;
	if (t == 0 || i >= n || s[i] != '/')
		return false;
	i++;
	while (i < n && is_token_char((unsigned char)s[i]))
		i++, st++;
	if (st == 0)
		return false;
	while (i < n && s[i] == ' ')
		i++;
	return i == n || s[i] == ';';
}

/* RFC 2231 filename parameter(s): a plain quoted string when short and
 * ASCII (and without "=?"), else filename*0*=utf-8''... sections of at most 50 octets. */
static char *disposition(struct composer *cp, const char *kind, const char *name)
{
	if (name == NULL || name[0] == '\0')
		return gn_pool_strdup(cp->pool, kind);
	size_t n = strlen(name);
	struct gn_buf *b = gn_buf_new(0);
	gn_buf_append_str(b, kind);
	size_t quoted = n;
	for (size_t i = 0; i < n; i++)
		quoted += name[i] == '"' || name[i] == '\\';
	/* Readers decode RFC 2047 words in quoted filenames (as Outlook
	 * writes them): a name that looks like one goes as RFC 2231. */
	if (is_ascii(name, n) && quoted <= 60 && strstr(name, "=?") == NULL) {
		gn_buf_append_str(b, "; filename=\"");
		for (size_t i = 0; i < n; i++) {
			if (name[i] == '"' || name[i] == '\\')
				gn_buf_append(b, "\\", 1);
			gn_buf_append(b, name + i, 1);
		}
		gn_buf_append(b, "\"", 1);
	} else {
		/* RFC 2231 4: attribute-char is a token char but "*", "'", "%". */
		struct gn_buf *enc = gn_buf_new(0);
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)name[i];
			if (is_token_char(c) && c != '*' && c != '\'' && c != '%')
				gn_buf_append(enc, name + i, 1);
			else
				gn_buf_printf(enc, "%%%02X", c);
		}
		const char *e = gn_buf_data(enc);
		size_t el = gn_buf_len(enc), i = 0;
		for (unsigned sec = 0; i < el; sec++) {
			/* " filename*NN*=utf-8''" and ";" leave 50 for a line of 78. */
			size_t j = i + 50 < el ? i + 50 : el;
			/* Not inside a %XX. */
			if (j < el && j >= i + 1 && e[j - 1] == '%')
				j -= 1;
			else if (j < el && j >= i + 2 && e[j - 2] == '%')
				j -= 2;
			gn_buf_printf(b, "; filename*%u*=%s%.*s", sec, sec == 0 ? "utf-8''" : "",
				      (int)(j - i), e + i);
			i = j;
		}
		gn_buf_free(&enc);
	}
	char *s = gn_pool_strndup(cp->pool, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	return s;
}

static int file_leaf(struct composer *cp, const struct gn_compose_file *f, const char *kind,
		     struct leaf *l)
{
	memset(l, 0, sizeof(*l));
	if (f->data == NULL && f->len > 0)
		return fail(cp, GN_COMPOSE_USER, "file without data");
	if (f->name != NULL && !field_ok(f->name))
		return fail(cp, GN_COMPOSE_USER, "bad filename (control characters, not UTF-8 or too long)");
	/* NAME_MAX of file systems; also keeps the RFC 2231 sections few
	 * (at most 16), where readers stop at some number of parameters. */
	if (f->name != NULL && strlen(f->name) > GN_COMPOSE_MAX_FILENAME)
		return fail(cp, GN_COMPOSE_USER, "filename longer than 255 octets");
	const char *ct = f->content_type;
	if (ct == NULL || ct[0] == '\0')
		ct = gn_compose_sniff(f->data, f->len);
	else if (!content_type_ok(ct))
		return fail(cp, GN_COMPOSE_USER, "bad content type of a file");
	if (f->content_id != NULL && f->content_id[0] != '\0') {
		if (!msgid_ok(f->content_id))
			return fail(cp, GN_COMPOSE_USER, "bad content id of a file (must be <id>)");
		l->content_id = f->content_id;
	}
	l->content_type = ct;
	l->encoding = "base64";
	l->disposition = disposition(cp, kind, f->name);
	l->file = f;
	return 0;
}

static void new_boundary(struct composer *cp, char *out, size_t size)
{
	snprintf(out, size, "%s-%u", cp->boundary_base, cp->n_boundaries++);
}

/* Writes a multipart's header and its parts: each part is either a leaf
 * or (sub) the nested multipart written by the callback. */
struct level {
	const char *subtype;
	const struct leaf *leaves;
	size_t n;
	const struct level *first;	/* a nested multipart before the leaves, or NULL */
	const struct leaf *first_leaf;	/* or a single leaf before them */
};

static int write_level(struct composer *cp, const struct level *lv)
{
	char boundary[64];
	new_boundary(cp, boundary, sizeof(boundary));
	char *ct = gn_pool_printf(cp->pool, "multipart/%s; boundary=\"%s\"", lv->subtype, boundary);
	if (fold(cp, "Content-Type", ct) < 0 || put(cp, "\r\n", 2) < 0)
		return -1;
	if (lv->first != NULL || lv->first_leaf != NULL) {
		if (puts_(cp, "--") < 0 || puts_(cp, boundary) < 0 || put(cp, "\r\n", 2) < 0)
			return -1;
		if (lv->first != NULL ? write_level(cp, lv->first) < 0 : write_leaf(cp, lv->first_leaf) < 0)
			return -1;
	}
	for (size_t i = 0; i < lv->n; i++) {
		if (puts_(cp, "--") < 0 || puts_(cp, boundary) < 0 || put(cp, "\r\n", 2) < 0)
			return -1;
		if (write_leaf(cp, &lv->leaves[i]) < 0)
			return -1;
	}
	if (puts_(cp, "--") < 0 || puts_(cp, boundary) < 0 || put(cp, "--\r\n", 4) < 0)
		return -1;
	return 0;
}

static int text_leaf(struct composer *cp, const char *text, const char *subtype, struct leaf *l)
{
	memset(l, 0, sizeof(*l));
	size_t n = strlen(text);
	if (n > GN_COMPOSE_MAX_SIZE || !mime_utf8_valid(text, n))
		return fail(cp, GN_COMPOSE_USER, "text or HTML is not valid UTF-8");
	l->content_type = gn_pool_printf(cp->pool, "text/%s; charset=%s", subtype,
					 is_ascii(text, n) ? "us-ascii" : "utf-8");
	l->encoding = text_7bit(text) ? "7bit" : "quoted-printable";
	l->text = text;
	return 0;
}

static int compose_body(struct composer *cp, const struct gn_compose *c)
{
	size_t n_alt = (c->text != NULL) + (c->html != NULL) + c->n_alternative_files;
	struct leaf *alt = gn_pool_alloc(cp->pool, sizeof(*alt) * (n_alt + 1));
	struct leaf *inl = gn_pool_alloc(cp->pool, sizeof(*inl) * (c->n_inline_files + 1));
	struct leaf *att = gn_pool_alloc(cp->pool, sizeof(*att) * (c->n_attached_files + 1));
	size_t k = 0;
	if (c->text != NULL && text_leaf(cp, c->text, "plain", &alt[k++]) < 0)
		return -1;
	if (c->html != NULL && text_leaf(cp, c->html, "html", &alt[k++]) < 0)
		return -1;
	for (size_t i = 0; i < c->n_alternative_files; i++)
		if (file_leaf(cp, &c->alternative_files[i], "inline", &alt[k++]) < 0)
			return -1;
	for (size_t i = 0; i < c->n_inline_files; i++)
		if (file_leaf(cp, &c->inline_files[i], "inline", &inl[i]) < 0)
			return -1;
	for (size_t i = 0; i < c->n_attached_files; i++)
		if (file_leaf(cp, &c->attached_files[i], "attachment", &att[i]) < 0)
			return -1;

	struct level lalt = { "alternative", alt, n_alt, NULL, NULL };
	struct level lrel = { "related", inl, c->n_inline_files, NULL, NULL };
	struct level lmix = { "mixed", att, c->n_attached_files, NULL, NULL };
	const struct level *inner = NULL;	/* what goes first in the next level */
	const struct leaf *inner_leaf = NULL;
	if (n_alt > 1)
		inner = &lalt;
	else
		inner_leaf = &alt[0];
	if (c->n_inline_files > 0) {
		lrel.first = inner;
		lrel.first_leaf = inner_leaf;
		inner = &lrel;
		inner_leaf = NULL;
	}
	if (c->n_attached_files > 0) {
		lmix.first = inner;
		lmix.first_leaf = inner_leaf;
		inner = &lmix;
		inner_leaf = NULL;
	}
	if (inner != NULL)
		return write_level(cp, inner);
	return write_leaf(cp, inner_leaf);
}

static int compose_headers(struct composer *cp, const struct gn_compose *c)
{
	if (address_field(cp, "From", c->from, 1) < 0 ||
	    address_field(cp, "Reply-To", c->reply_to, c->n_reply_to) < 0 ||
	    address_field(cp, "To", c->to, c->n_to) < 0 ||
	    address_field(cp, "Cc", c->cc, c->n_cc) < 0)
		return -1;
	/* Bcc is checked like the others (and may need SMTPUTF8), never written. */
	struct gn_buf *bcc = gn_buf_new(0);
	int ret = address_list(cp, bcc, c->bcc, c->n_bcc);
	gn_buf_free(&bcc);
	if (ret < 0)
		return -1;
	if (c->subject != NULL && c->subject[0] != '\0') {
		if (!field_ok(c->subject))
			return fail(cp, GN_COMPOSE_USER, "bad subject (control characters, not UTF-8 or too long)");
		if (fold(cp, "Subject", unstructured(cp, c->subject)) < 0)
			return -1;
	}
	if (fold(cp, "Date", date_string(cp->pool, c->date != 0 ? c->date : time(NULL))) < 0)
		return -1;
	const char *msgid = c->message_id;
	if (msgid != NULL && msgid[0] != '\0') {
		if (!msgid_ok(msgid))
			return fail(cp, GN_COMPOSE_MALFORMED_MESSAGE_ID, "malformed message id (must be <id>)");
	} else {
		char hex[33];
		if (c->host == NULL || c->host[0] == '\0' || strlen(c->host) > 200)
			return fail(cp, GN_COMPOSE_USER, "no host name for a message id");
		if (random_hex(hex, 16) < 0)
			return fail(cp, GN_COMPOSE_SERVER, "no random bytes for a message id");
		msgid = gn_pool_printf(cp->pool, "<%s@%s>", hex, c->host);
		if (!msgid_ok(msgid))
			return fail(cp, GN_COMPOSE_USER, "bad host name for a message id");
	}
	cp->r->message_id = gn_pool_strdup(cp->pool, msgid);
	if (fold(cp, "Message-ID", msgid) < 0)
		return -1;
	if (c->n_references > 0) {
		struct gn_buf *b = gn_buf_new(0);
		for (size_t i = 0; i < c->n_references; i++) {
			if (c->references[i] == NULL || !msgid_ok(c->references[i])) {
				gn_buf_free(&b);
				return fail(cp, GN_COMPOSE_USER, "bad reference (must be <id>)");
			}
			gn_buf_printf(b, "%s%s", i > 0 ? " " : "", c->references[i]);
		}
		char *refs = gn_pool_strndup(cp->pool, gn_buf_data(b), gn_buf_len(b));
		gn_buf_free(&b);
		if (fold(cp, "References", refs) < 0 ||
		    fold(cp, "In-Reply-To", c->references[c->n_references - 1]) < 0)
			return -1;
	}
	if (fold(cp, "MIME-Version", "1.0") < 0)
		return -1;
	bool agent = c->user_agent != NULL && c->user_agent[0] != '\0';
	for (size_t i = 0; i < c->n_headers; i++) {
		const struct gn_compose_header *h = &c->headers[i];
		if (h->name == NULL || !field_name_ok(h->name))
			return fail(cp, GN_COMPOSE_USER, "bad header field name");
		if (reserved_field(h->name))
			return fail(cp, GN_COMPOSE_USER,
				    gn_pool_printf(cp->pool, "header field %s is written by the composer", h->name));
		if (h->value == NULL || !field_ok(h->value))
			return fail(cp, GN_COMPOSE_USER,
				    "bad header field value (control characters, not UTF-8 or too long)");
		if (strcasecmp(h->name, "User-Agent") == 0 || strcasecmp(h->name, "X-Mailer") == 0)
			agent = false;
		if (fold(cp, h->name, unstructured(cp, h->value)) < 0)
			return -1;
	}
	if (agent) {
		if (!field_ok(c->user_agent))
			return fail(cp, GN_COMPOSE_USER, "bad user agent");
		if (fold(cp, "User-Agent", unstructured(cp, c->user_agent)) < 0)
			return -1;
	}
	return 0;
}

int gn_compose(struct gn_pool *pool, const struct gn_compose *in, struct gn_compose_result *out)
{
	struct gn_compose c;
	struct gn_compose_result r;
	memset(&c, 0, sizeof(c));
	memset(&r, 0, sizeof(r));
	struct composer cp = { .pool = pool, .r = &r };
	int ret = -1;

	if (in->size < offsetof(struct gn_compose, max_size) + sizeof(in->max_size)) {
		fail(&cp, GN_COMPOSE_USER, "struct gn_compose too small");
		goto done;
	}
	memcpy(&c, in, in->size < sizeof(c) ? in->size : sizeof(c));

	if (c.from == NULL) {
		fail(&cp, GN_COMPOSE_MULTIPLE_FROM, "a message needs exactly one From address");
		goto done;
	}
	if (c.text == NULL && c.html == NULL) {
		fail(&cp, GN_COMPOSE_MISSING_BODY, "a message needs text or HTML");
		goto done;
	}
	if (c.n_to + c.n_cc + c.n_bcc + c.n_reply_to > GN_COMPOSE_MAX_ADDRESSES ||
	    c.n_to > GN_COMPOSE_MAX_ADDRESSES || c.n_cc > GN_COMPOSE_MAX_ADDRESSES ||
	    c.n_bcc > GN_COMPOSE_MAX_ADDRESSES || c.n_reply_to > GN_COMPOSE_MAX_ADDRESSES) {
		fail(&cp, GN_COMPOSE_USER, "too many addresses");
		goto done;
	}
	if (c.n_alternative_files > GN_COMPOSE_MAX_FILES || c.n_inline_files > GN_COMPOSE_MAX_FILES ||
	    c.n_attached_files > GN_COMPOSE_MAX_FILES ||
	    c.n_alternative_files + c.n_inline_files + c.n_attached_files > GN_COMPOSE_MAX_FILES) {
		fail(&cp, GN_COMPOSE_USER, "too many files");
		goto done;
	}
	if (c.n_headers > GN_COMPOSE_MAX_HEADERS) {
		fail(&cp, GN_COMPOSE_USER, "too many header fields");
		goto done;
	}
	if (c.n_references > GN_COMPOSE_MAX_REFERENCES) {
		fail(&cp, GN_COMPOSE_USER, "too many references");
		goto done;
	}
	size_t limit = c.max_size != 0 ? c.max_size : GN_COMPOSE_MAX_SIZE;
	if (limit > GN_COMPOSE_MAX_SIZE)
		limit = GN_COMPOSE_MAX_SIZE;
	char hex[25];
	if (random_hex(hex, 12) < 0) {
		fail(&cp, GN_COMPOSE_SERVER, "no random bytes for a boundary");
		goto done;
	}
	/* "=_" cannot appear in base64 and starts no quoted-printable escape
	 * a text could make ("=5F" is how "_" after "=" would be written),
	 * so no part's content can hold the boundary (RFC 2045 6.7 note). */
	snprintf(cp.boundary_base, sizeof(cp.boundary_base), "=_gannet-%s", hex);
	cp.out = gn_buf_new(limit);
	if (compose_headers(&cp, &c) < 0 || compose_body(&cp, &c) < 0)
		goto done;
	/* RFC 5322 2.1.1: 998 octets a line at most.  The writers keep far
	 * below it; checked once more so that a mistake fails closed. */
	const char *d = gn_buf_data(cp.out), *end = d + gn_buf_len(cp.out);
	for (const char *p = d; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if ((nl != NULL ? nl : end) - p > 998 + 1) {
			fail(&cp, GN_COMPOSE_USER, "a line of the message would be longer than 998 octets");
			goto done;
		}
		p = nl != NULL ? nl + 1 : end;
	}
	r.len = gn_buf_len(cp.out);
	r.data = gn_buf_steal(&cp.out);
	ret = 0;
done:
	gn_buf_free(&cp.out);
	/* Copy back only what the caller's struct has room for. */
	size_t n = out->size < sizeof(r) ? out->size : sizeof(r);
	if (n > sizeof(r.size)) {
		r.size = out->size;
		memcpy(out, &r, n);
	} else {
		gn_free(r.data);
		ret = -1;
	}
	return ret;
}

/* ---- content-type sniffing ---- */

struct magic {
	size_t offset;
	const char *bytes;
	size_t len;
	const char *type;
};

const char *gn_compose_sniff(const void *data, size_t len)
{
	static const struct magic magics[] = {
		{ 0, "%PDF-", 5, "application/pdf" },
		{ 0, "\x89PNG\r\n\x1a\n", 8, "image/png" },
		{ 0, "\xff\xd8\xff", 3, "image/jpeg" },
		{ 0, "GIF87a", 6, "image/gif" },
		{ 0, "GIF89a", 6, "image/gif" },
		{ 8, "WEBP", 4, "image/webp" },
		{ 8, "WAVE", 4, "audio/wave" },
		{ 8, "AVI ", 4, "video/avi" },
		{ 0, "BM", 2, "image/bmp" },
		{ 0, "\x00\x00\x01\x00", 4, "image/x-icon" },
		{ 0, "ID3", 3, "audio/mpeg" },
		{ 0, "OggS\x00", 5, "application/ogg" },
		{ 4, "ftyp", 4, "video/mp4" },
		{ 0, "\x1a\x45\xdf\xa3", 4, "video/webm" },
		{ 0, "PK\x03\x04", 4, "application/zip" },
		{ 0, "\x1f\x8b\x08", 3, "application/x-gzip" },
		{ 0, "Rar!\x1a\x07", 6, "application/x-rar-compressed" },
		{ 0, "%!PS-Adobe-", 11, "application/postscript" },
		{ 0, "wOFF", 4, "font/woff" },
		{ 0, "wOF2", 4, "font/woff2" },
	};
	const unsigned char *d = data;
	if (len > 512)
		len = 512;
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
		const struct magic *m = &magics[i];
		if (len >= m->offset + m->len && memcmp(d + m->offset, m->bytes, m->len) == 0) {
			/* RIFF containers: the type is at 8 only after "RIFF". */
			if (m->offset == 8 && memcmp(d, "RIFF", 4) != 0)
				continue;
			return m->type;
		}
	}
	/* Markup after leading white space (and a UTF-8 BOM). */
	size_t i = 0;
	if (len >= 3 && memcmp(d, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < len && (d[i] == ' ' || d[i] == '\t' || d[i] == '\r' || d[i] == '\n'))
		i++;
	static const char *const html[] = { "<!doctype html", "<html", "<head", "<body",
					    "<script", "<iframe", "<h1", "<div", "<font",
					    "<table", "<a", "<style", "<title", "<b", "<br",
					    "<p", "<!--" };
	for (size_t k = 0; k < sizeof(html) / sizeof(html[0]); k++) {
		size_t hl = strlen(html[k]);
		/* The tag ends with a space or ">" (or is a comment). */
		if (len >= i + hl + 1 && strncasecmp((const char *)d + i, html[k], hl) == 0 &&
		    (k == sizeof(html) / sizeof(html[0]) - 1 || d[i + hl] == ' ' || d[i + hl] == '>'))
			return "text/html; charset=utf-8";
	}
	if (len >= i + 5 && memcmp(d + i, "<?xml", 5) == 0)
		return "text/xml; charset=utf-8";
	/* Text: valid UTF-8 (a character cut at 512 octets does not count)
	 * and no control characters but the usual white space. */
	size_t tl = len;
	size_t back = 0;
	while (back < 3 && back < tl && (d[tl - 1 - back] & 0xc0) == 0x80)
		back++;
	if (back < tl && d[tl - 1 - back] >= 0xc0)
		tl -= back + 1;
	if (len == 0 || !mime_utf8_valid((const char *)d, tl))
		return "application/octet-stream";
	for (size_t k = 0; k < tl; k++)
		if ((d[k] < 0x20 && d[k] != '\t' && d[k] != '\n' && d[k] != '\r' && d[k] != '\f' &&
		     d[k] != 0x1b) ||
		    d[k] == 0x7f)
			return "application/octet-stream";
	return "text/plain; charset=utf-8";
}
