/*
 * core/mail/internal.h: the mail layer's internals.
 *
 * Pure parsers and writers, no I/O: addresses and PRECIS (addr.c,
 * gannet/addr.h) and MIME (gannet/mime.h), whose files share what is
 * below:
 *
 *   mime.c           the streaming parser and the parsed message (its
 *                    parts, problems and accessors);
 *   mime-charset.c   UTF-8 checks and charset conversion to UTF-8;
 *   mime-encoding.c  base64, and the decoded size of base64 and
 *                    quoted-printable bodies;
 *   mime-rfc2047.c   encoded words in header values;
 *   mime-rfc2231.c   the structured-field lexer and Content-Type and
 *                    Content-Disposition parameters;
 *   mime-date.c      dates (gn_mime_parse_date);
 *   mime-json.c      the structure as JSON and back (the only user of
 *                    json-c here);
 *   compose.c        a message composed from its parts
 *                    (gannet/compose.h), written with the encoders here;
 *   dkim.c           DKIM canonical forms, tag lists, key records
 *                    (gannet/dkim.h);
 *   dkim-sign.c      DKIM keys and signatures with GnuTLS, the signer;
 *   dkim-verify.c    the verifier: signatures and key records read and
 *                    checked, results (the key lookups are the dns
 *                    layer's, core/dns/dkim.c).
 *
 * Uses the base layer only.  The MIME structure's JSON is public only as
 * text; the core's own code may work on json-c objects through
 * mime_to_json() and mime_from_json() below.
 */
#ifndef GANNET_MAIL_INTERNAL_H
#define GANNET_MAIL_INTERNAL_H

#include "base/internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <gannet/addr.h>
#include <gannet/mime.h>
#include <gannet/dkim.h>

/* ---- the parsed message (mime.c builds it, mime-json.c too) ---- */

/* A header value longer than this is cut (memory stays bounded per part). */
#define MIME_MAX_VALUE (64 * 1024)

/* The envelope fields of a message part, in enum gn_mime_field order. */
#define MIME_N_FIELDS 12
extern const char *const mime_field_names[MIME_N_FIELDS];

struct mime_param {
	char *name;
	char *value;
};

struct mime_envelope {
	char *raw[MIME_N_FIELDS];
	char *decoded[MIME_N_FIELDS];
	bool has_date;
	time_t date;
};

struct gn_mime_part {
	struct gn_mime_part *parent;
	struct gn_mime_part **children;
	size_t n_children;
	/* While parsing: the children as a list. */
	struct gn_mime_part *first_child, *last_child, *next;
	size_t index;		/* pre-order number, for problems */

	size_t header_offset, header_size, body_offset, body_size;
	size_t body_lines, decoded_size;
	char *type, *subtype;
	struct mime_param *params;
	size_t n_params;
	char *disposition;
	struct mime_param *disp_params;
	size_t n_disp_params;
	char *filename, *content_id, *description, *encoding;
	char *language, *location, *md5;
	struct mime_envelope *envelope;	/* messages only */
};

struct gn_mime_message {
	struct gn_pool *pool;	/* the parts and every string */
	struct gn_mime_part *root;
	size_t size;
	char **problems;	/* gn_malloc'd array of pool strings */
	size_t n_problems;
};

/* Records a problem of msg (NULL: none is kept); at most 100, then one
 * that says more were not recorded. */
void mime_problem(struct gn_mime_message *msg, const char *fmt, ...) GN_PRINTF(2, 3);
/* Turns the children lists below part into arrays, once the tree is
 * complete. */
void mime_tree_finish(struct gn_pool *pool, struct gn_mime_part *part);

/* ---- JSON (mime-json.c) ---- */

struct json_object;	/* json-c */

/* gn_mime_to_json_string() as a json-c object, owned by the caller
 * (json_object_put()). */
struct json_object *mime_to_json(const struct gn_mime_message *msg);
/* gn_mime_from_json_string() from a json-c object. */
int mime_from_json(const struct json_object *obj, struct gn_mime_message **msg_r,
		   const char **error_r);

/* ---- UTF-8 and charsets (mime-charset.c) ---- */

bool mime_utf8_valid(const char *s, size_t len);
/* Appends s, keeping valid UTF-8 and replacing every other byte (and NUL)
 * by U+FFFD; returns whether something was replaced. */
bool mime_utf8_append(struct gn_buf *out, const char *s, size_t len);
/* The same into a NUL-terminated string from pool. */
char *mime_utf8_pool(struct gn_pool *pool, const char *s, size_t len);
/* Appends s converted from charset to UTF-8; an unknown charset is a
 * problem of msg (may be NULL). */
void mime_charset_convert(struct gn_buf *out, const char *charset, const char *s,
			  size_t len, struct gn_mime_message *msg);

/* ---- transfer encodings (mime-encoding.c) ---- */

/* Lenient base64 decoding (characters outside the alphabet are skipped,
 * padding may be missing); appends to out. */
void mime_b64_decode(struct gn_buf *out, const char *s, size_t len);
/* The same into out, which has room for len / 4 * 3 + 3 octets (at most
 * that many are written, fewer where s has characters outside the
 * alphabet); returns the octets written. */
size_t mime_b64_decode_to(unsigned char *out, const char *s, size_t len);
/* A NUL-terminated string, gn_malloc'd (gn_free it). */
char *mime_b64_encode(const unsigned char *s, size_t len);

/* Counts the decoded size of a body as it streams by. */
enum mime_dec_kind { MIME_DEC_IDENTITY, MIME_DEC_BASE64, MIME_DEC_QP };

enum mime_qp_state { MIME_QP_TEXT, MIME_QP_CR, MIME_QP_EQ, MIME_QP_EQ1, MIME_QP_EQCR, MIME_QP_EQWS };

struct mime_decoder {
	enum mime_dec_kind kind;
	size_t out;
	/* base64 */
	unsigned quad, pads;
	bool b64_done;
	/* quoted-printable */
	enum mime_qp_state qs;
	size_t ws;		/* white space seen, not yet known to be kept */
};

/* encoding: the part's Content-Transfer-Encoding, lower case (NULL: none). */
void mime_decoder_init(struct mime_decoder *d, const char *encoding);
void mime_decoder_feed(struct mime_decoder *d, const char *s, size_t len);
/* The decoded size of everything fed. */
size_t mime_decoder_finish(struct mime_decoder *d);

/* ---- RFC 2047 encoded words (mime-rfc2047.c) ---- */

/* Appends s with its encoded words decoded and the rest checked as UTF-8,
 * unfolded; problems go to msg (may be NULL). */
void mime_decode_words(struct gn_buf *out, const char *s, size_t len,
		       struct gn_mime_message *msg);
/* The same into a NUL-terminated string from pool. */
char *mime_decode_header(struct gn_pool *pool, const char *value, size_t len,
			 struct gn_mime_message *msg);

/* ---- structured fields and parameters (mime-rfc2231.c) ---- */

struct mime_lex {
	const char *s, *end;
};

/* Skips white space and comments, which may nest (RFC 5322 3.2.2). */
void mime_lex_cfws(struct mime_lex *l);
/* A token (RFC 2045 5.1), lower case, from pool ("" when there is none). */
char *mime_lex_token_lower(struct gn_pool *pool, struct mime_lex *l);
/* Reads the "; name=value" parameters up to the end of l into an array
 * from msg's pool: RFC 2231 sections joined, values decoded to UTF-8. */
void mime_params_read(struct gn_mime_message *msg, struct mime_lex *l,
		      struct mime_param **params_r, size_t *n_r);
/* The value of the parameter name (lower case), or NULL. */
const char *mime_param_find(const struct mime_param *v, size_t n, const char *name);

/* ---- DKIM (dkim.c) ---- */

/* A body canonicaliser that appends the canonical form to out instead of
 * hashing it (for tests); gn_dkim_body_finish() then gives zeros. */
struct gn_dkim_body *dkim_body_new_buf(enum gn_dkim_canon canon, struct gn_buf *out);
/* A body canonicaliser that hashes only the first limit octets of the
 * canonical form (RFC 6376 3.5 l=); dkim_body_length() is the length of
 * the whole form, so that a verifier sees what l= left out. */
struct gn_dkim_body *dkim_body_new_limit(enum gn_dkim_canon canon, uint64_t limit);
uint64_t dkim_body_length(const struct gn_dkim_body *b);
/* Strict base64 with folding white space in it (b=, bh=, p=): 0 with the
 * octets (from pool), or -1 for any other character or bad padding. */
int dkim_b64_decode(struct gn_pool *pool, const char *s, const unsigned char **out_r,
		    size_t *len_r);

/* ---- DKIM (dkim-sign.c) ---- */

/* Whether s is a domain or selector as d= and s= take them: 1 to 253
 * characters, dot-separated labels of 1 to 63 letters, digits, '-', '_'. */
bool dkim_name_ok(const char *s);

/* gn_dkim_verify_hash() with the key's size in *bits_r (set once the key
 * was read), and -2 (not -1) for an RSA key under 1024 bits, which a
 * verifier reports as policy rather than as a broken key. */
int dkim_verify_hash_bits(enum gn_dkim_algorithm alg, const unsigned char *pub, size_t pub_len,
			  const unsigned char hash[GN_DKIM_HASH_SIZE], const unsigned char *sig,
			  size_t sig_len, unsigned *bits_r, const char **error_r);

#endif
