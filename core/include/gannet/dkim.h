/*
 * gannet/dkim.h: DKIM (RFC 6376) canonical forms, tag lists, and signing
 * with RSA-SHA256 and Ed25519-SHA256 (RFC 8463).
 *
 * Pure code, no I/O (core/mail/dkim.c, core/mail/dkim-sign.c,
 * core/mail/dkim-verify.c): the submission path signs with it, the
 * verifier (RFC 6376 6) checks with the same canonical forms, the same
 * tag-list parser and the same data hash.  Only gn_dkim_verify_start()
 * does I/O: it looks the keys up with the core's resolver
 * (core/dns/dkim.c, gannet/dns.h).  The
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
 * 3.2) or over 8192. */
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

/* ---- verifying a message (RFC 6376 6) ---- */

/* A signature's result, with the names of RFC 8601 2.7.1 (and the
 * Authentication-Results "dkim=" values):
 *   pass       it verified;
 *   fail       it did not: b= or bh= do not match, or the key was revoked
 *              (an empty p=);
 *   policy     it may verify but is not accepted: rsa-sha1 or an RSA key
 *              under 1024 bits (RFC 8301), x= past (RFC 6376 6.1.1), t=
 *              more than 5 minutes ahead;
 *   neutral    not evaluated: past the verifier's max_signatures;
 *   temperror  the key could not be looked up now (DNS failure, timeout);
 *   permerror  it cannot be verified: a malformed signature or key record,
 *              a missing required tag, an unknown algorithm or
 *              canonicalisation, i= outside d=, From not signed, h= of
 *              more than GN_DKIM_MAX_FIELDS names, no key in the DNS, a
 *              key of another type, not for email, or an RSA key over
 *              8192 bits.
 * GN_DKIM_NONE is for a message without signatures (the caller writes it:
 * a verifier has no result then). */
enum gn_dkim_status {
	GN_DKIM_NONE = 0,
	GN_DKIM_PASS,
	GN_DKIM_FAIL,
	GN_DKIM_POLICY,
	GN_DKIM_NEUTRAL,
	GN_DKIM_TEMPERROR,
	GN_DKIM_PERMERROR,
};

/* "none", "pass", "fail", "policy", "neutral", "temperror", "permerror";
 * "?" for another value. */
const char *gn_dkim_status_name(int status);

/* Signatures evaluated per message unless the caller says otherwise (the
 * core's setting dkim.max_signatures), and the most a caller may ask. */
#define GN_DKIM_MAX_SIGNATURES_DEFAULT 5
#define GN_DKIM_MAX_SIGNATURES 100

/* The core's setting dkim.max_signatures (GN_DKIM_MAX_SIGNATURES_DEFAULT
 * before the config is read), for callers of gn_dkim_verifier_new() that
 * follow it (mailauth, `gannet dkim verify`).  Since ABI 1.1. */
unsigned gn_dkim_max_signatures(void);

/* A key record longer than this is refused (permerror): an RSA key of
 * 8192 bits needs about 1,400. */
#define GN_DKIM_MAX_KEY_RECORD 8192

/* One signature's outcome.  Read-only, owned by the verifier, valid until
 * gn_dkim_verifier_free().  Grows only at the end. */
struct gn_dkim_verify_result {
	int status;		/* enum gn_dkim_status */
	const char *domain;	/* d=, lower case; NULL when unreadable */
	const char *identity;	/* i= as written, else "@" and d= (RFC 6376 3.5) */
	const char *identity_domain;	/* the domain of identity, lower case */
	const char *selector;	/* s=; NULL when unreadable */
	const char *algorithm;	/* a= as written; NULL when absent */
	unsigned key_bits;	/* the public key's size (Ed25519: 256); 0 when not read */
	int key_testing;	/* the key record has t=y (RFC 6376 3.6.1) */
	long long body_length;	/* l=, or -1 without */
	int body_truncated;	/* l= hashed less than the whole canonical body:
				 * the rest is not covered by the signature */
	long long timestamp;	/* t=, or -1 */
	long long expires;	/* x=, or -1 */
	const char *header_b;	/* the shortest prefix of b= (at least 8
				 * characters) that tells this signature from the
				 * message's others: Authentication-Results
				 * header.b (RFC 6008) */
	const char *reason;	/* why, in a few words; NULL for pass */
};

struct gn_dkim_verifier;

/* A verifier for one message: evaluates its first max_signatures
 * DKIM-Signature fields (from the top; 0: GN_DKIM_MAX_SIGNATURES_DEFAULT,
 * more than GN_DKIM_MAX_SIGNATURES: that many), the others are reported
 * neutral.  now is the time x= and t= are compared with.  Owned by the
 * caller: gn_dkim_verifier_free(). */
struct gn_dkim_verifier *gn_dkim_verifier_new(unsigned max_signatures, time_t now);
/* Feeds the next piece of the message (transfer form, as above): 0, or -1
 * with *error_r (static) when the header passes GN_DKIM_MAX_HEADER or the
 * message was ended. */
int gn_dkim_verifier_update(struct gn_dkim_verifier *v, const void *data, size_t len,
			    const char **error_r);
/* Ends the message: hashes are computed and every signature that needs no
 * key has its result.  0, or -1 with *error_r (static) when the header
 * cannot be split or passes a limit (no signature is then evaluated: the
 * message's DKIM result is permerror). */
int gn_dkim_verifier_finish(struct gn_dkim_verifier *v, const char **error_r);
/* The number of DKIM-Signature fields, known once the header section has
 * been fed (its empty line; else at gn_dkim_verifier_finish()): 0 before,
 * and after a header that cannot be read. */
size_t gn_dkim_verifier_count(const struct gn_dkim_verifier *v);
/* The name whose TXT records signature i needs, "SELECTOR._domainkey.
 * DOMAIN" (from the verifier), or NULL when its result is known without
 * a key; known with gn_dkim_verifier_count(), so the key can be looked up
 * while the body arrives.  Until gn_dkim_verifier_key() gives it the
 * answer, such a signature's result is temperror ("key not looked up"). */
const char *gn_dkim_verifier_key_name(const struct gn_dkim_verifier *v, size_t i);

/* What the key lookup of a signature found. */
enum gn_dkim_key_answer {
	GN_DKIM_KEY_RECORDS = 0,	/* TXT records (maybe none: as NONE) */
	GN_DKIM_KEY_NONE,		/* NXDOMAIN or no TXT records: permerror */
	GN_DKIM_KEY_TEMPFAIL,		/* no answer now: temperror */
};

/* Gives signature i the answer to its key lookup and decides its result
 * (before gn_dkim_verifier_finish(): the answer is copied and kept, and
 * the result decided there; a second answer is ignored):
 * for GN_DKIM_KEY_RECORDS the n TXT records (each with its strings joined,
 * texts[k] of lens[k] octets); the first that reads as a DKIM key record
 * is used (RFC 6376 6.1.2).  why: the DNS's reason for NONE and TEMPFAIL
 * (copied; may be NULL).  Pure: no I/O. */
void gn_dkim_verifier_key(struct gn_dkim_verifier *v, size_t i, enum gn_dkim_key_answer answer,
			  const char *const *texts, const size_t *lens, size_t n, const char *why);
/* Signature i's outcome (i < gn_dkim_verifier_count()), in the order of
 * the fields from the top; NULL for another i. */
const struct gn_dkim_verify_result *gn_dkim_verifier_result(const struct gn_dkim_verifier *v,
							     size_t i);
void gn_dkim_verifier_free(struct gn_dkim_verifier **v);	/* accepts NULL */

/* ---- the key lookups, on the loop (core/dns/dkim.c) ---- */

struct gn_dkim_verify;
/* Called once, from the loop, when every key was looked up and given to
 * the verifier (gn_dkim_verifier_result() then has every result). */
typedef void gn_dkim_verify_fn(struct gn_dkim_verifier *v, void *data);

/* After gn_dkim_verifier_finish(), or before it once the header section
 * was fed (gn_dkim_verifier_count() > 0: the lookups then run while the
 * body arrives, and the verifier keeps the answers until its end): looks
 * up the keys of every signature that needs one, in parallel, with
 * gn_dns_lookup() (gannet/dns.h: its settings, timeout and limits), gives
 * each answer to the verifier, then calls fn (which may thus come before
 * gn_dkim_verifier_finish(); the results are there after both).  fn runs from the loop, never from inside this call, also
 * when no lookup is needed.  Returns a handle owned by the core until fn
 * returns or gn_dkim_verify_cancel(); v stays the caller's and must live
 * until then.  Call where gn_dns_lookup() may be called. */
struct gn_dkim_verify *gn_dkim_verify_start(struct gn_dkim_verifier *v, gn_dkim_verify_fn *fn,
					    void *data);
/* Cancels the lookups; fn is not called.  Sets *op to NULL; accepts NULL
 * and *op == NULL.  Not from within fn. */
void gn_dkim_verify_cancel(struct gn_dkim_verify **op);

#ifdef __cplusplus
}
#endif
#endif
