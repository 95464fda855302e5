/*
 * gannet/compose.h: composing a message from its parts (the webapi's Send,
 * later webmail).
 *
 * The caller describes the message (addresses, subject, text and HTML
 * bodies, files, extra header fields); gn_compose() writes it as a
 * complete RFC 5322 message with CRLF line endings, nested the way mox's
 * webapi nests it (mox.md 1.3):
 *
 *   multipart/mixed            when there are attached files
 *     multipart/related        when there are inline files
 *       multipart/alternative  when there are text and HTML, or alternative files
 *         text/plain, text/html, alternative files
 *       inline files
 *     attached files
 *
 * with each level left out when it would hold a single part, so a message
 * with only text is a single text/plain part.  Text and HTML are written
 * 7bit when they are ASCII with lines of at most 78 octets, else
 * quoted-printable (charset utf-8); files are base64 in lines of 76.  Every
 * line of the result is at most 78 octets, except a header line that
 * holds an address or message id longer than that (never more than 998,
 * RFC 5322 2.1.1).  Non-ASCII in display names, the subject and extra
 * fields is written as RFC 2047 encoded words, non-ASCII filenames as RFC
 * 2231 parameters.  Bcc is never written.  The result needs SMTPUTF8 (RFC
 * 6531) only when an address's localpart is not ASCII; it says so.
 *
 * Any process, any phase; no I/O.  Since ABI 1.1.
 */
#ifndef GANNET_COMPOSE_H
#define GANNET_COMPOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <gannet/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An address as a person gives it: name optional (UTF-8), address
 * "localpart@domain" (UTF-8 localpart and U-labels allowed). */
struct gn_compose_address {
	const char *name;	/* NULL or "": none */
	const char *address;
};

/* A file.  content_type NULL or "": sniffed from the data
 * (gn_compose_sniff()).  content_id: "<id>" for cid: references (inline
 * and alternative files), NULL for none.  name: the filename (UTF-8),
 * NULL or "": none. */
struct gn_compose_file {
	const char *name;
	const char *content_type;
	const char *content_id;
	const void *data;
	size_t len;
};

/* An extra header field, written after the composer's own in the order
 * given.  The fields the composer writes itself (From, To, Cc, Bcc,
 * Reply-To, Subject, Date, Message-ID, In-Reply-To, References,
 * MIME-Version, Content-*) are refused: they are the message's structure,
 * not extras (mox allows them; gannet fails closed rather than write a
 * message with two Froms). */
struct gn_compose_header {
	const char *name;
	const char *value;	/* UTF-8, no control characters but tab */
};

/* What to compose.  Zero it, set size = sizeof(struct gn_compose) and the
 * fields wanted; the struct grows only at the end.  Strings are UTF-8
 * and NUL-terminated; nothing is kept after gn_compose() returns. */
struct gn_compose {
	size_t size;
	const struct gn_compose_address *from;	/* exactly one */
	const struct gn_compose_address *to, *cc, *bcc, *reply_to;
	size_t n_to, n_cc, n_bcc, n_reply_to;
	const char *subject;	/* NULL or "": no Subject field */
	const char *text;	/* lines end in "\n" (a "\r\n" is taken as "\n") */
	const char *html;	/* at least one of text and html */
	const struct gn_compose_file *alternative_files, *inline_files, *attached_files;
	size_t n_alternative_files, n_inline_files, n_attached_files;
	const struct gn_compose_header *headers;
	size_t n_headers;
	/* "<id>" each; In-Reply-To is the last. */
	const char *const *references;
	size_t n_references;
	const char *message_id;	/* "<id>", NULL: generated as <32 hex digits@host> */
	const char *host;	/* for a generated Message-ID */
	time_t date;		/* 0: now */
	/* Written as User-Agent unless an extra field is User-Agent or
	 * X-Mailer (mox writes "mox/<version>"); NULL: none. */
	const char *user_agent;
	/* The composed message may be at most this many octets; 0: the
	 * default, GN_COMPOSE_MAX_SIZE.  Larger: GN_COMPOSE_TOO_LARGE. */
	size_t max_size;
};

/* Limits on what a caller (and so a peer of the webapi) controls. */
#define GN_COMPOSE_MAX_SIZE (100u * 1024 * 1024)
#define GN_COMPOSE_MAX_ADDRESSES 1000	/* To + Cc + Bcc + Reply-To */
#define GN_COMPOSE_MAX_FILES 100	/* all three kinds together */
#define GN_COMPOSE_MAX_HEADERS 100
#define GN_COMPOSE_MAX_REFERENCES 100
#define GN_COMPOSE_MAX_FIELD 4096	/* octets of a name, subject, filename, field value */
#define GN_COMPOSE_MAX_ID 250		/* octets of a message or content id */
#define GN_COMPOSE_MAX_FILENAME 255	/* octets of a filename */

/* Why gn_compose() refused; the webapi maps these to mox's codes. */
enum gn_compose_error {
	GN_COMPOSE_OK = 0,
	GN_COMPOSE_USER,		/* bad input in general ("user") */
	GN_COMPOSE_BAD_ADDRESS,		/* "badAddress" */
	GN_COMPOSE_MISSING_BODY,	/* neither text nor HTML ("missingBody") */
	GN_COMPOSE_MULTIPLE_FROM,	/* not exactly one From ("multipleFrom") */
	GN_COMPOSE_TOO_LARGE,		/* "messageTooLarge" */
	GN_COMPOSE_MALFORMED_MESSAGE_ID,/* "malformedMessageID" */
	GN_COMPOSE_SERVER,		/* no random bytes ("server") */
};

/* The composed message.  Zero it and set size = sizeof(struct
 * gn_compose_result); the struct grows only at the end. */
struct gn_compose_result {
	size_t size;
	char *data;		/* gn_malloc'd, the caller gn_free()s it */
	size_t len;
	const char *message_id;	/* "<id>", from pool */
	bool smtputf8;		/* an address needs SMTPUTF8 */
	enum gn_compose_error error;
	const char *error_text;	/* static or from pool, for the person */
};

/* Composes c into *r.  pool: for r's strings (the caller's).  Returns 0,
 * or -1 with r->error and r->error_text set and r->data NULL. */
int gn_compose(struct gn_pool *pool, const struct gn_compose *c, struct gn_compose_result *r);

/* A content type for data from its first 512 octets: common document,
 * image, audio, video and archive formats by their magic numbers, HTML
 * and XML by their start, other valid UTF-8 without control characters
 * as "text/plain; charset=utf-8", else "application/octet-stream".  A
 * static string. */
const char *gn_compose_sniff(const void *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif
