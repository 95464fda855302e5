/*
 * core/smtp/client-reply.c: the SMTP client's pure parts, no I/O:
 *
 *   the reply parser   resumable: fed whatever the socket gave, it keeps a
 *                      partial line between calls and returns each whole
 *                      reply (RFC 5321 4.2: "code SP text" or, on all lines
 *                      but the last, "code - text"), with its enhanced
 *                      status code (RFC 2034, RFC 3463) taken off the text;
 *                      limits on the line length and on the lines of a
 *                      reply, since the server controls both;
 *   EHLO keywords      the lines after the first of a 250 EHLO reply
 *                      (RFC 5321 4.1.1.1), and SIZE's value (RFC 1870);
 *   the DATA encoder   a message given in chunks of any size goes out with
 *                      CRLF line ends (bare LF and bare CR become CRLF) and
 *                      dot-stuffed (RFC 5321 4.5.2), then ends with
 *                      CRLF.CRLF.
 *
 * client.c drives them; t/unit/test_smtp_client.c and
 * t/fuzz/fuzz_smtp_reply.c test them.
 */
#include "smtp/internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void smtp_reply_parser_init(struct smtp_reply_parser *p, size_t max_line,
			    unsigned max_lines)
{
	memset(p, 0, sizeof(*p));
	p->max_line = max_line > 0 ? max_line : SMTP_CLIENT_REPLY_LINE;
	p->max_lines = max_lines > 0 ? max_lines : SMTP_CLIENT_REPLY_LINES;
	p->line = gn_buf_new(p->max_line + 1);
	/* Every line's text, joined by LF: bounded by the two limits. */
	p->text = gn_buf_new(p->max_line * p->max_lines + 1);
}

void smtp_reply_parser_deinit(struct smtp_reply_parser *p)
{
	gn_buf_free(&p->line);
	gn_buf_free(&p->text);
}

static void reply_reset(struct smtp_reply_parser *p)
{
	gn_buf_clear(p->text);
	p->lines = 0;
	p->code = 0;
	p->enhanced[0] = '\0';
}

/* RFC 3463 2: class "." subject "." detail, class 2, 4 or 5, subject and
 * detail 1 to 3 digits; it must agree with the reply code's first digit
 * (RFC 2034 4).  Returns its length (followed by SP or the end), or 0. */
static size_t enhanced_len(const char *s, size_t len, int code)
{
	size_t i = 0;
	if (len < 5 || s[0] != (char)('0' + code / 100) || s[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		size_t start = i;
		while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 4)
			i++;
		if (i == start || i - start > 3)
			return 0;
		if (part == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ')
		return 0;
	return i;
}

/* One whole line, its CRLF (or LF) removed.  Returns 1 when it was the
 * last line of the reply, 0 when more follow, -1 with *error_r. */
static int reply_line(struct smtp_reply_parser *p, const char *s, size_t len,
		      const char **error_r)
{
	int code;
	bool last;
	size_t off;

	/* RFC 5321 4.2: Reply-line = *( Reply-code "-" [ textstring ] CRLF )
	 * Reply-code [ SP textstring ] CRLF, the code 2yz to 5yz. */
	if (len < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '9' ||
	    s[2] < '0' || s[2] > '9') {
		*error_r = "reply line does not start with a reply code";
		return -1;
	}
	if (len > 3 && s[3] != ' ' && s[3] != '-') {
		*error_r = "reply code not followed by a space or a hyphen";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\0' || s[i] == '\r') {
			*error_r = "reply line with a NUL or a bare CR";
			return -1;
		}
	}
	code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (p->lines > 0 && code != p->code) {
		*error_r = "reply lines with different codes";
		return -1;
	}
	if (++p->lines > p->max_lines) {
		*error_r = "reply has too many lines";
		return -1;
	}
	p->code = code;
	last = len == 3 || s[3] == ' ';
	off = len > 3 ? 4 : 3;
	/* The enhanced code, taken from the first line and off every line
	 * that repeats it (RFC 2034 4: each line carries it). */
	{
		size_t el = enhanced_len(s + off, len - off, code);
		if (el > 0 && el < sizeof(p->enhanced)) {
			if (p->lines == 1) {
				memcpy(p->enhanced, s + off, el);
				p->enhanced[el] = '\0';
			}
			off += el;
			if (off < len)
				off++;	/* its SP */
		}
	}
	if (p->lines > 1)
		(void)gn_buf_append(p->text, "\n", 1);
	/* Cannot fail: each line's text is under max_line and the lines
	 * under max_lines. */
	(void)gn_buf_append(p->text, s + off, len - off);
	return last ? 1 : 0;
}

int smtp_reply_parse(struct smtp_reply_parser *p, const char *data, size_t len,
		     size_t *used_r, const char **error_r)
{
	size_t i = 0;

	*used_r = 0;
	if (p->done) {
		reply_reset(p);
		p->done = false;
	}
	while (i < len) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t n = nl != NULL ? (size_t)(nl - (data + i)) + 1 : len - i;
		const char *line;
		size_t llen;
		int r;

		/* RFC 5321 4.5.3.1.5: 512 octets a reply line with its CRLF;
		 * max_line is that with slack. */
		if (gn_buf_len(p->line) + n > p->max_line) {
			*used_r = i;
			*error_r = "reply line too long";
			return -1;
		}
		(void)gn_buf_append(p->line, data + i, n);
		i += n;
		if (nl == NULL)
			break;
		line = gn_buf_data(p->line);
		llen = gn_buf_len(p->line) - 1;
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		r = reply_line(p, line, llen, error_r);
		gn_buf_clear(p->line);
		if (r < 0) {
			*used_r = i;
			return -1;
		}
		if (r > 0) {
			p->done = true;
			*used_r = i;
			return 1;
		}
	}
	*used_r = i;
	return 0;
}

/* ---- EHLO ---- */

bool smtp_ehlo_keyword(const char *text, const char *keyword, const char **params_r)
{
	size_t klen = strlen(keyword);
	const char *line = text;

	if (params_r != NULL)
		*params_r = NULL;
	if (text == NULL)
		return false;	/* HELO: no keywords */
	/* The first line is the greeting ("name text"): keywords follow. */
	line = strchr(line, '\n');
	while (line != NULL) {
		const char *end;
		line++;
		end = strchr(line, '\n');
		if (end == NULL)
			end = line + strlen(line);
		if ((size_t)(end - line) >= klen && strncasecmp(line, keyword, klen) == 0 &&
		    (line + klen == end || line[klen] == ' ')) {
			if (params_r != NULL && line + klen < end)
				*params_r = line + klen + 1;
			return true;
		}
		line = *end != '\0' ? end : NULL;
	}
	return false;
}

unsigned long long smtp_ehlo_size(const char *params)
{
	unsigned long long v = 0;
	/* RFC 1870 4: "SIZE" [SP number]; 0 or none: no fixed limit. */
	if (params == NULL)
		return 0;
	for (const char *p = params; *p >= '0' && *p <= '9'; p++) {
		if (v > (~0ULL - 9) / 10)
			return 0;
		v = v * 10 + (unsigned)(*p - '0');
	}
	return v;
}

/* ---- DATA ---- */

/* Appends to out; the caller gives out room for 2 * len + 2 bytes. */
void smtp_dot_encode(struct smtp_dot *d, const char *in, size_t len, struct gn_buf *out)
{
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = in[i];

		if (d->state == SMTP_DOT_CR) {
			/* CR seen: a CRLF either way, LF or not. */
			(void)gn_buf_append(out, "\r\n", 2);
			d->state = SMTP_DOT_BOL;
			if (ch == '\n') {
				start = i + 1;
				continue;
			}
			start = i;
		}
		if (ch == '\r' || ch == '\n') {
			(void)gn_buf_append(out, in + start, i - start);
			if (ch == '\r') {
				d->state = SMTP_DOT_CR;
			} else {
				(void)gn_buf_append(out, "\r\n", 2);
				d->state = SMTP_DOT_BOL;
			}
			start = i + 1;
			continue;
		}
		if (d->state == SMTP_DOT_BOL) {
			if (ch == '.') {
				/* RFC 5321 4.5.2: a line that starts with a
				 * period gets one more. */
				(void)gn_buf_append(out, in + start, i - start);
				(void)gn_buf_append(out, ".", 1);
				start = i;
			}
			d->state = SMTP_DOT_TEXT;
		}
	}
	/* A CR at the end is not written: what follows decides. */
	(void)gn_buf_append(out, in + start, len - start);
	d->bytes_in += len;
}

void smtp_dot_finish(struct smtp_dot *d, struct gn_buf *out)
{
	/* A message that does not end in a line end gets one: the dot must
	 * stand on a line of its own. */
	if (d->state == SMTP_DOT_TEXT || d->state == SMTP_DOT_CR)
		(void)gn_buf_append(out, "\r\n", 2);
	(void)gn_buf_append(out, ".\r\n", 3);
	d->state = SMTP_DOT_BOL;
}
