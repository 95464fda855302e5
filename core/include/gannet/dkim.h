/*
 * gannet/dkim.h: DKIM (RFC 6376) canonical forms, tag lists, and signing
 * with RSA-SHA256 and Ed25519-SHA256 (RFC 8463).
 *
 * Pure code, no I/O (core/mail/dkim.c, core/mail/dkim-sign.c): the
 * submission path signs with it, an inbound verifier checks with the same
 * canonical forms, the same tag-list parser and the same data hash.  The
 * keys a deployment signs with live in the database (gn_store_dkim_sign()
 * in gannet/store.h picks them); this header only takes them as
 * parameters.
 *
 * Message text is in its transfer form: lines end in CRLF.  A bare LF is
 * taken as a line end too (a message read from a Unix file), a bare CR is
 * text.  Every function may be called from any process and phase.
 */
#ifndef GANNET_DKIM_H
#define GANNET_DKIM_H

#include <stddef.h>
#include <time.h>
#include <gannet/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

/* SHA-256, the only hash gannet signs or accepts (RFC 8301 3.1). */
#define GN_DKIM_HASH_SIZE 32

/* RFC 6376 3.4. */
enum gn_dkim_canon {
	GN_DKIM_SIMPLE = 0,
	GN_DKIM_RELAXED = 1,
};

enum gn_dkim_algorithm {
	GN_DKIM_RSA_SHA256 = 1,		/* "rsa-sha256", k=rsa */
	GN_DKIM_ED25519_SHA256 = 2,	/* "ed25519-sha256", k=ed25519 */
};

/* Limits on a header that is signed or split: more fields, or more bytes,
 * and it is refused with an error that says which. */
#define GN_DKIM_MAX_FIELDS 1000
#define GN_DKIM_MAX_HEADER (1024 * 1024)

/* "rsa-sha256" / "ed25519-sha256"; the key type "rsa" / "ed25519". */
const char *gn_dkim_algorithm_name(enum gn_dkim_algorithm alg);
const char *gn_dkim_algorithm_key_type(enum gn_dkim_algorithm alg);
/* By either name ("rsa", "rsa-sha256", "ed25519", "ed25519-sha256"):
 * 0 with *alg_r, or -1 when unknown. */
int gn_dkim_algorithm_parse(const char *name, enum gn_dkim_algorithm *alg_r);

/* ---- header fields ---- */

/* One header field as it stands in the message: name, colon, value and
 * its folding, without the CRLF that ends it.  Frozen: a view, never
 * grown. */
struct gn_dkim_field {
	const char *data;
	size_t len;
};

/* Splits a message's header (everything before the empty line; the empty
 * line itself may be included or not) into its fields, in order: 0 with
 * *fields_r (from pool, pointing into header) and *count_r, or -1 with
 * *error_r (static text) when a line is neither a field nor a
 * continuation, or the header passes GN_DKIM_MAX_FIELDS or
 * GN_DKIM_MAX_HEADER. */
int gn_dkim_header_split(struct gn_pool *pool, const char *header, size_t len,
			 struct gn_dkim_field **fields_r, size_t *count_r,
			 const char **error_r);

/* Whether field's name is name (ASCII case-insensitive). */
int gn_dkim_field_is(const struct gn_dkim_field *field, const char *name);

/* Appends field's canonical form (RFC 6376 3.4.1 simple, 3.4.2 relaxed)
 * to out, without a final CRLF; -1 when out's limit is reached, else 0. */
int gn_dkim_canon_header(struct gn_buf *out, enum gn_dkim_canon canon,
			 const char *field, size_t len);

/* The data hash of RFC 6376 3.7: for each name of names (the h= tag, in
 * order) the last field of that name not yet used, from the bottom (a name
 * that occurs fewer times than it is listed adds nothing, which is what
 * oversigning relies on), canonicalised with CRLF; then sig_field (the
 * whole DKIM-Signature field) with the value of its b= tag removed,
 * canonicalised without CRLF.  0, or -1 with *error_r when sig_field has
 * no b= tag. */
int gn_dkim_header_hash(enum gn_dkim_canon canon, const struct gn_dkim_field *fields,
			size_t n_fields, const char *const *names, size_t n_names,
			const char *sig_field, size_t sig_len,
			unsigned char hash_r[GN_DKIM_HASH_SIZE], const char **error_r);

/* ---- the body hash, streamed ---- */

struct gn_dkim_body;

/* Hashes a body fed in pieces of any size (RFC 6376 3.4.3, 3.4.4, 3.7;
 * no l= limit).  Owned by the caller: gn_dkim_body_free(). */
struct gn_dkim_body *gn_dkim_body_new(enum gn_dkim_canon canon);
void gn_dkim_body_update(struct gn_dkim_body *body, const void *data, size_t len);
/* Ends the body; the body hash goes to hash_r.  Call once. */
void gn_dkim_body_finish(struct gn_dkim_body *body, unsigned char hash_r[GN_DKIM_HASH_SIZE]);
void gn_dkim_body_free(struct gn_dkim_body **body);	/* accepts NULL */

/* ---- tag lists (DKIM-Signature values, key records) ---- */

/* Frozen: a view, never grown. */
struct gn_dkim_tag {
	const char *name;
	const char *value;	/* surrounding white space removed, inner kept */
};

/* Parses an RFC 6376 3.2 tag list: 0 with *tags_r and *count_r (from
 * pool), or -1 with *error_r (from pool) naming what is wrong: a tag
 * without "=", a bad tag name, a control character, a duplicate tag,
 * more than 64 tags. */
int gn_dkim_tags_parse(struct gn_pool *pool, const char *s, size_t len,
		       struct gn_dkim_tag **tags_r, size_t *count_r, const char **error_r);
/* The value of tag name, or NULL. */
const char *gn_dkim_tags_get(const struct gn_dkim_tag *tags, size_t count, const char *name);

/* Reads a DNS key record ("v=DKIM1; k=ed25519; p=..."): 1 with *alg_r and
 * the public key in *key_r (from pool; SubjectPublicKeyInfo or RSAPublicKey
 * DER for RSA, the 32 raw octets for Ed25519) and *key_len_r; 0 when the
 * key was revoked (empty p=); -1 with *error_r (from pool) when it is
 * malformed or not for email signatures with SHA-256. */
int gn_dkim_key_record_parse(struct gn_pool *pool, const char *record, size_t len,
			     enum gn_dkim_algorithm *alg_r, const unsigned char **key_r,
			     size_t *key_len_r, const char **error_r);

/* ---- keys and signatures (GnuTLS) ---- */

struct gn_dkim_key;

/* A new private key as PKCS#8 PEM in *pem_r (gn_malloc'd; the caller
 * wipes and frees it): RSA of bits (0: 2048; less than 2048 is refused),
 * or Ed25519 (bits ignored).  0, or -1 with *error_r (static). */
int gn_dkim_key_generate(enum gn_dkim_algorithm alg, unsigned bits, char **pem_r,
			 const char **error_r);
/* Reads a PEM private key (PKCS#8 or PKCS#1): 0 with *key_r (the caller's;
 * gn_dkim_key_free()), or -1 with *error_r (static) for a bad key, an RSA
 * key under 2048 bits or another key type. */
int gn_dkim_key_load(const char *pem, size_t len, struct gn_dkim_key **key_r,
		     const char **error_r);
/* An Ed25519 key from its 32-octet seed (RFC 8032 private key). */
int gn_dkim_key_from_ed25519_seed(const unsigned char seed[32], struct gn_dkim_key **key_r,
				  const char **error_r);
void gn_dkim_key_free(struct gn_dkim_key **key);	/* accepts NULL */
enum gn_dkim_algorithm gn_dkim_key_algorithm(const struct gn_dkim_key *key);
/* The DNS TXT record's text for the key, "v=DKIM1; k=rsa; p=...", from
 * pool (RSA: SubjectPublicKeyInfo; Ed25519: the raw public key). */
const char *gn_dkim_key_record(struct gn_pool *pool, const struct gn_dkim_key *key);

/* Signs a data hash: RSASSA-PKCS1-v1_5 with SHA-256, or Ed25519 over the
 * 32 octets of the hash (RFC 8463 3).  0 with the base64 signature in
 * *b64_r (from pool), or -1 with *error_r (static). */
int gn_dkim_key_sign(struct gn_pool *pool, const struct gn_dkim_key *key,
		     const unsigned char hash[GN_DKIM_HASH_SIZE], const char **b64_r,
		     const char **error_r);
/* Checks a signature of a data hash with a public key as
 * gn_dkim_key_record_parse() returns it (for RSA a SubjectPublicKeyInfo,
 * as most records hold, or the RSAPublicKey that RFC 6376 3.6.1 names):
 * 1 valid, 0 not valid, -1 with *error_r (static) when the key cannot be
 * read, is of another type, or is an RSA key under 1024 bits (RFC 8301
 * 3.2). */
int gn_dkim_verify_hash(enum gn_dkim_algorithm alg, const unsigned char *pub, size_t pub_len,
			const unsigned char hash[GN_DKIM_HASH_SIZE], const unsigned char *sig,
			size_t sig_len, const char **error_r);

/* ---- signing a message ---- */

struct gn_dkim_signer;

/* Takes a message in pieces, then signs it with any number of keys, all
 * relaxed/relaxed with the same header fields.  Owned by the caller:
 * gn_dkim_signer_free(). */
struct gn_dkim_signer *gn_dkim_signer_new(void);
/* Feeds the next piece of the message: 0, or -1 with *error_r (static)
 * when the header passes GN_DKIM_MAX_HEADER. */
int gn_dkim_signer_update(struct gn_dkim_signer *s, const void *data, size_t len,
			  const char **error_r);
/* Ends the message: 0, or -1 with *error_r (static): the header could not
 * be split, passes a limit, or has no From field or more than one. */
int gn_dkim_signer_finish(struct gn_dkim_signer *s, const char **error_r);
/* After gn_dkim_signer_finish(): appends one DKIM-Signature field (folded,
 * with its CRLF) for domain (A-labels) and selector to out: t= is now,
 * x= expires when not 0, no l=.  0, or -1 with *error_r (static). */
int gn_dkim_signer_sign(struct gn_dkim_signer *s, const char *domain, const char *selector,
			const struct gn_dkim_key *key, time_t now, time_t expires,
			struct gn_buf *out, const char **error_r);
void gn_dkim_signer_free(struct gn_dkim_signer **s);	/* accepts NULL */

#ifdef __cplusplus
}
#endif
#endif
