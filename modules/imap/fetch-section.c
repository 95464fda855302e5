/*
 * modules/imap/fetch-section.c: what FETCH needs to answer for the parts
 * of a message (RFC 9051 6.4.5): the part tree of a message, the part a
 * section's numbers name, the transfer encoding BINARY undoes (RFC 3516
 * as included in RFC 9051; the decoders are in decode.c), and scans of
 * stored ranges (decoded size, NUL bytes).
 *
 * cmd-fetch.c streams the bytes; this file says which bytes.
 */
#include "imap.h"

#include <string.h>
#include <strings.h>

/* ---- the part tree ---- */

#define SECTION_READ (64u * 1024u)

int imap_fetch_mime(struct gn_store_body *body, uint64_t prefix_len, const char *json,
		    struct gn_mime_message **mime_r, const char **err_r)
{
	*mime_r = NULL;
	if (json != NULL) {
		const char *why;
		if (gn_mime_from_json_string(json, strlen(json), mime_r, &why) == 0)
			return 0;
		/* A stored structure that does not load: parse the body
		 * instead, and say so. */
		gn_log(GN_LOG_WARN, IMAP_AREA, "event=mime_json_unreadable error=%s", gn_log_quote(0, why));
	}
	/* No stored structure: the body (after the prefix, as the stored
	 * offsets count) through the streaming parser. */
	struct gn_mime_parser *p = gn_mime_parser_new(NULL);
	char *buf = gn_malloc(SECTION_READ);
	uint64_t off = prefix_len, size = gn_store_body_size(body);
	while (off < size) {
		size_t got;
		if (gn_store_body_read(body, off, buf, SECTION_READ, &got, err_r) < 0) {
			gn_free(buf);
			gn_mime_parser_free(&p);
			return -1;
		}
		if (got == 0)
			break;
		gn_mime_parser_feed(p, buf, got);
		off += got;
	}
	gn_free(buf);
	gn_mime_parser_finish(p, mime_r);
	gn_mime_parser_free(&p);
	return 0;
}

int imap_section_parse_path(struct gn_pool *pool, const char *section, uint32_t **nums_r, size_t *depth_r,
			    const char **rest_r)
{
	size_t cap = 1;
	for (const char *p = section; *p != '\0'; p++)
		cap += *p == '.';
	uint32_t *nums = gn_pool_alloc(pool, cap * sizeof(*nums));
	size_t depth = 0;
	const char *p = section;
	/* section-part = nz-number *("." nz-number) */
	while (*p >= '0' && *p <= '9') {
		if (*p == '0' || depth >= IMAP_SECTION_MAX_DEPTH)
			return -1;
		uint64_t n = 0;
		while (*p >= '0' && *p <= '9') {
			n = n * 10 + (uint64_t)(*p - '0');
			if (n > UINT32_MAX)
				return -1;
			p++;
		}
		nums[depth++] = (uint32_t)n;
		if (*p != '.')
			break;
		if (p[1] == '\0')
			return -1;	/* "1." */
		if (p[1] < '0' || p[1] > '9') {
			p++;	/* the section-text after the numbers */
			break;
		}
		p++;
	}
	*nums_r = nums;
	*depth_r = depth;
	*rest_r = p;
	return 0;
}

static bool is_multipart(const struct gn_mime_part *part)
{
	return strcmp(gn_mime_part_type(part), "multipart") == 0;
}

const struct gn_mime_part *imap_section_rfc822_message(const struct gn_mime_part *part)
{
	const char *sub = gn_mime_part_subtype(part);
	if (strcmp(gn_mime_part_type(part), "message") != 0 ||
	    (strcmp(sub, "rfc822") != 0 && strcmp(sub, "global") != 0) || gn_mime_part_child_count(part) != 1)
		return NULL;
	return gn_mime_part_child(part, 0);
}

/* RFC 9051 6.4.5: every part has a part number; the parts of a multipart
 * are numbered 1, 2, ...; a message that is not multipart has part 1, its
 * body; the message inside a MESSAGE/RFC822 part n has its parts numbered
 * n.1, n.2 ... by the same rules. */
const struct gn_mime_part *imap_section_part(const struct gn_mime_message *mime, const uint32_t *nums,
					     size_t depth)
{
	const struct gn_mime_part *part = gn_mime_message_root(mime);
	bool at_message = true;	/* part starts a message: the root, an enclosed one */
	for (size_t i = 0; i < depth; i++) {
		if (!at_message) {
			/* Inside a MESSAGE/RFC822 part, the numbers go on in
			 * the message it holds. */
			const struct gn_mime_part *inner = imap_section_rfc822_message(part);
			if (inner != NULL)
				part = inner;
			else if (!is_multipart(part))
				return NULL;
		}
		if (is_multipart(part)) {
			if (nums[i] > gn_mime_part_child_count(part))
				return NULL;
			part = gn_mime_part_child(part, nums[i] - 1);
		} else if (nums[i] != 1) {
			return NULL;	/* a single-part message has part 1 only */
		}
		at_message = false;
	}
	return part;
}

/* ---- transfer decoding ---- */

enum imap_cte imap_cte_of(const struct gn_mime_part *part)
{
	const char *e = gn_mime_part_encoding(part);
	/* RFC 2045 6.1: none means 7bit; 7bit, 8bit and binary say what
	 * the bytes are, not how they were changed. */
	if (e == NULL || *e == '\0' || strcasecmp(e, "7bit") == 0 || strcasecmp(e, "8bit") == 0 ||
	    strcasecmp(e, "binary") == 0)
		return IMAP_CTE_IDENTITY;
	if (strcasecmp(e, "base64") == 0)
		return IMAP_CTE_BASE64;
	if (strcasecmp(e, "quoted-printable") == 0)
		return IMAP_CTE_QP;
	return IMAP_CTE_UNKNOWN;
}

/* ---- scanning a stored range ---- */

int imap_raw_has_nul(struct gn_store_body *body, uint64_t from, uint64_t to, bool *nul_r, const char **err_r)
{
	char *buf = gn_malloc(SECTION_READ);
	*nul_r = false;
	while (from < to && !*nul_r) {
		size_t want = to - from < SECTION_READ ? (size_t)(to - from) : SECTION_READ, got;
		if (gn_store_body_read(body, from, buf, want, &got, err_r) < 0) {
			gn_free(buf);
			return -1;
		}
		if (got == 0)
			break;
		*nul_r = memchr(buf, '\0', got) != NULL;
		from += got;
	}
	gn_free(buf);
	return 0;
}

/* Decodes the stored bytes [from, from + len) without keeping them: their
 * decoded size, and whether decoded bytes in [wfrom, wto) hold a NUL.  The
 * same decoder as the stream, so that the literal's size is exact. */
int imap_decoded_scan(struct gn_store_body *body, uint64_t from, uint64_t len, enum imap_cte cte,
			uint64_t wfrom, uint64_t wto, uint64_t *size_r, bool *nul_r, const char **err_r)
{
	struct imap_decoder dec;
	imap_decoder_init(&dec, cte);
	char *buf = gn_malloc(SECTION_READ);
	struct gn_buf *out = gn_buf_new(0);
	uint64_t pos = 0, end = from + len;
	*nul_r = false;
	for (bool last = false; !last;) {
		gn_buf_clear(out);
		if (from < end) {
			size_t want = end - from < SECTION_READ ? (size_t)(end - from) : SECTION_READ, got;
			if (gn_store_body_read(body, from, buf, want, &got, err_r) < 0) {
				gn_free(buf);
				gn_buf_free(&out);
				return -1;
			}
			if (got == 0)
				end = from;	/* shorter than its structure says */
			imap_decode(&dec, buf, got, out);
			from += got;
		} else {
			imap_decode_finish(&dec, out);
			last = true;
		}
		/* The part of this chunk inside the window. */
		uint64_t n = gn_buf_len(out);
		uint64_t lo = wfrom > pos ? wfrom - pos : 0, hi = wto > pos ? wto - pos : 0;
		if (hi > n)
			hi = n;
		if (lo < hi && memchr(gn_buf_data(out) + lo, '\0', (size_t)(hi - lo)) != NULL)
			*nul_r = true;
		pos += n;
	}
	gn_free(buf);
	gn_buf_free(&out);
	*size_r = pos;
	return 0;
}
