/*
 * gannet/mime.h: the MIME parser.
 *
 * A message is parsed once, at delivery, into a tree of parts that is stored
 * with it (as JSON, gn_mime_to_json_string()) so that IMAP FETCH, webhooks and the
 * API never re-parse a message for its structure.
 *
 * The parser streams: feed it the message in chunks of any size, with any
 * boundaries; it keeps only bounded state (the current header block, up to
 * the header size limit, the boundaries of the open multiparts, counters),
 * so a 50 MB message never needs 50 MB of memory.  Parsing never fails: a
 * malformed message degrades (a multipart without a usable boundary becomes
 * text/plain, a header past the size limit ends and the rest is body) and
 * every such problem is recorded as a string on the result.
 *
 *   struct gn_mime_parser *p = gn_mime_parser_new(NULL);
 *   while ((n = read(fd, buf, sizeof(buf))) > 0)
 *           gn_mime_parser_feed(p, buf, n);
 *   struct gn_mime_message *msg;
 *   gn_mime_parser_finish(p, &msg);
 *   gn_mime_parser_free(&p);
 *   ... gn_mime_message_root(msg) ...
 *   gn_mime_message_free(&msg);
 *
 * Offsets are byte offsets into the message exactly as fed (CRLF and bare LF
 * line endings are both accepted).  Every string a part returns is valid
 * UTF-8 (decoded where the standards say so, bytes that are not UTF-8
 * replaced by U+FFFD), except the raw envelope values, which are the header
 * bytes as sent.  Strings and parts belong to the message and live until
 * gn_mime_message_free().  Any process, any phase; a parser or a message is
 * used by one thread at a time.
 */
#ifndef GANNET_MIME_H
#define GANNET_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <gannet/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Decodes a header field value for display: unfolds it, decodes RFC 2047
 * encoded words (B and Q, any charset iconv knows) to UTF-8, and turns
 * bytes that are not valid UTF-8 into U+FFFD.  Never fails; the result is
 * NUL-terminated, allocated from pool. */
char *gn_mime_decode_header(struct gn_pool *pool, const char *value, size_t len);

/* ---- limits ---- */

/* Past a limit the parser stops descending or treats the rest as body of
 * the current part, and records a problem.  Fill with
 * gn_mime_limits_init() and change what you want; size lets the struct grow
 * at the end. */
struct gn_mime_limits {
	size_t size;		/* sizeof(struct gn_mime_limits) */
	unsigned max_depth;	/* nesting depth of parts (default 50) */
	size_t max_header_size;	/* bytes of one header block (default 1 MiB) */
	unsigned max_parts;	/* parts in a message (default 10000) */
	unsigned max_headers;	/* fields in one header block (default 10000) */
};

void gn_mime_limits_init(struct gn_mime_limits *limits);

/* ---- parsing ---- */

struct gn_mime_parser;
struct gn_mime_message;
struct gn_mime_part;

/* limits NULL: the defaults.  The limits are copied. */
struct gn_mime_parser *gn_mime_parser_new(const struct gn_mime_limits *limits);
/* Any number of times, with chunks of any size.  Ignored after finish. */
void gn_mime_parser_feed(struct gn_mime_parser *parser, const void *data, size_t len);
/* Ends the message and hands the result to the caller (free it with
 * gn_mime_message_free()).  Never fails.  The parser can then only be
 * freed. */
void gn_mime_parser_finish(struct gn_mime_parser *parser, struct gn_mime_message **msg_r);
void gn_mime_parser_free(struct gn_mime_parser **parser);	/* accepts NULL */

/* The whole message in memory at once; limits NULL: the defaults. */
struct gn_mime_message *gn_mime_parse(const void *data, size_t len,
				      const struct gn_mime_limits *limits);

void gn_mime_message_free(struct gn_mime_message **msg);	/* accepts NULL */

/* ---- the message ---- */

/* Header fields of a message (the top level, and each message/rfc822
 * part's child).  Values may be added at the end. */
enum gn_mime_field {
	GN_MIME_FROM = 0,
	GN_MIME_SENDER,
	GN_MIME_REPLY_TO,
	GN_MIME_TO,
	GN_MIME_CC,
	GN_MIME_BCC,
	GN_MIME_SUBJECT,
	GN_MIME_DATE,
	GN_MIME_MESSAGE_ID,
	GN_MIME_IN_REPLY_TO,
	GN_MIME_REFERENCES,
	GN_MIME_LIST_ID,
};

/* The top-level part (never NULL). */
const struct gn_mime_part *gn_mime_message_root(const struct gn_mime_message *msg);
/* Bytes fed. */
size_t gn_mime_message_size(const struct gn_mime_message *msg);
/* Problems found, in order (at most 100 are kept, then one that says
 * more were dropped). */
size_t gn_mime_message_problem_count(const struct gn_mime_message *msg);
const char *gn_mime_message_problem(const struct gn_mime_message *msg, size_t i);
/* Envelope fields of the top level: the same as the gn_mime_part_field*
 * functions on the root part. */
const char *gn_mime_message_field(const struct gn_mime_message *msg, enum gn_mime_field field);
const char *gn_mime_message_field_raw(const struct gn_mime_message *msg, enum gn_mime_field field);
int gn_mime_message_date(const struct gn_mime_message *msg, time_t *date_r);

/* ---- parts ---- */

/* The header block (the blank line that ends it included) and the body. */
size_t gn_mime_part_header_offset(const struct gn_mime_part *part);
size_t gn_mime_part_header_size(const struct gn_mime_part *part);
size_t gn_mime_part_body_offset(const struct gn_mime_part *part);
size_t gn_mime_part_body_size(const struct gn_mime_part *part);
/* Lines of the body: line feeds, plus one for a last line without one.
 * RFC 2046 5.1.1: the line break before a boundary belongs to the boundary,
 * not to the body. */
size_t gn_mime_part_body_lines(const struct gn_mime_part *part);
/* The body's size after the transfer encoding (base64, quoted-printable) is
 * undone; line endings counted as they are in the message. */
size_t gn_mime_part_decoded_size(const struct gn_mime_part *part);

/* Lower-cased, never NULL: "text", "plain" when the header has none or a
 * broken one (RFC 2045 5.2), "message", "rfc822" in multipart/digest. */
const char *gn_mime_part_type(const struct gn_mime_part *part);
const char *gn_mime_part_subtype(const struct gn_mime_part *part);
/* Content-Type parameters in header order: names lower-cased, values
 * decoded (RFC 2231 continuations and charsets, RFC 2047 encoded words in
 * quoted strings). */
size_t gn_mime_part_param_count(const struct gn_mime_part *part);
const char *gn_mime_part_param_name(const struct gn_mime_part *part, size_t i);
const char *gn_mime_part_param_value(const struct gn_mime_part *part, size_t i);
/* The value of a parameter by (lower-case) name, NULL when absent. */
const char *gn_mime_part_param(const struct gn_mime_part *part, const char *name);

/* Each NULL when the header is absent. */
const char *gn_mime_part_content_id(const struct gn_mime_part *part);
const char *gn_mime_part_description(const struct gn_mime_part *part);	/* decoded */
const char *gn_mime_part_encoding(const struct gn_mime_part *part);	/* lower-cased */
const char *gn_mime_part_language(const struct gn_mime_part *part);
const char *gn_mime_part_location(const struct gn_mime_part *part);
const char *gn_mime_part_md5(const struct gn_mime_part *part);
/* The Content-Disposition value without parameters, lower-cased. */
const char *gn_mime_part_disposition(const struct gn_mime_part *part);
size_t gn_mime_part_disposition_param_count(const struct gn_mime_part *part);
const char *gn_mime_part_disposition_param_name(const struct gn_mime_part *part, size_t i);
const char *gn_mime_part_disposition_param_value(const struct gn_mime_part *part, size_t i);
/* The disposition's filename, else the content type's name, decoded to
 * UTF-8; NULL when neither is there. */
const char *gn_mime_part_filename(const struct gn_mime_part *part);

/* Children: the parts of a multipart, the message of a message/rfc822 (one
 * child, whose header is the enclosed message's header). */
size_t gn_mime_part_child_count(const struct gn_mime_part *part);
const struct gn_mime_part *gn_mime_part_child(const struct gn_mime_part *part, size_t i);
const struct gn_mime_part *gn_mime_part_parent(const struct gn_mime_part *part);

/* Whether this part starts a message (the root, and the child of a
 * message/rfc822), and so has envelope fields. */
bool gn_mime_part_is_message(const struct gn_mime_part *part);
/* The field decoded for display (gn_mime_decode_header()), NULL when
 * absent or when the part is not a message.  The first field of each name
 * counts. */
const char *gn_mime_part_field(const struct gn_mime_part *part, enum gn_mime_field field);
/* The field unfolded and trimmed but otherwise as sent (NUL bytes become
 * spaces); for the address parser. */
const char *gn_mime_part_field_raw(const struct gn_mime_part *part, enum gn_mime_field field);
/* The Date field as a time (RFC 5322 3.3 and the obsolete forms of 4.3):
 * 1 with *date_r set, 0 when absent or not parseable. */
int gn_mime_part_date(const struct gn_mime_part *part, time_t *date_r);

/* Parses an RFC 5322 date-time (obsolete forms included): 1 with *date_r
 * set, 0 when it is not one. */
int gn_mime_parse_date(const char *value, size_t len, time_t *date_r);

/* ---- storage ---- */

/* ---- bodies (since ABI 1.1) ---- */

/* Part p's body with its Content-Transfer-Encoding (base64,
 * quoted-printable) decoded, leniently; text (and untyped) parts with bare
 * LF made CRLF.  raw is the message the part was parsed from (rawlen
 * bytes; offsets past it are cut).  From pool, NUL-terminated after
 * *len_r bytes. */
struct gn_pool;
char *gn_mime_part_body_decoded(struct gn_pool *pool, const struct gn_mime_part *p, const char *raw,
				size_t rawlen, size_t *len_r);
/* Valid UTF-8 of s in charset (NULL or unknown: taken as UTF-8), bytes
 * that are not replaced by U+FFFD.  From pool. */
char *gn_mime_to_utf8(struct gn_pool *pool, const char *charset, const char *s, size_t len,
		      size_t *len_r);
/* The first part under p (depth first) that is text/SUBTYPE (an untyped
 * part counts as text/plain) and not an attachment, or NULL. */
const struct gn_mime_part *gn_mime_first_text(const struct gn_mime_part *p, const char *subtype);
/* That part's text: decoded, at most max bytes of it converted to UTF-8,
 * CRLF made LF (mox's Text and HTML); "" when there is none.  From pool. */
char *gn_mime_text(struct gn_pool *pool, const struct gn_mime_part *root, const char *raw, size_t rawlen,
		   const char *subtype, size_t max, size_t *len_r);
/* mox's Structure of part p and its subparts (ContentType lower case,
 * ContentTypeParams with lower-case keys, ContentID, ContentDisposition,
 * Filename decoded, DecodedSize, Parts) as JSON text, owned by the caller
 * (gn_free()). */
char *gn_mime_structure_json(const struct gn_mime_part *p);

/* JSON is public only as text: a JSON library's types would tie every
 * module to its version. */

/* The whole result as JSON text, owned by the caller (gn_free()).  The
 * layout is versioned ("v"). */
char *gn_mime_to_json_string(const struct gn_mime_message *msg);
/* The reverse: 0 with *msg_r set, or -1 with *error_r (static) when the
 * text is not JSON of a stored structure. */
int gn_mime_from_json_string(const char *json, size_t len, struct gn_mime_message **msg_r,
			     const char **error_r);

#ifdef __cplusplus
}
#endif
#endif
