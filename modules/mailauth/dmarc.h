/*
 * modules/mailauth/dmarc.h: the mailauth module's DMARC (RFC 7489), inside
 * the module only.
 *
 * Three parts, in dmarc.c but for the records (dmarc-record.c):
 *
 *   the public suffix list  organisational domains (RFC 7489 3.2) from the
 *                 PSL file (Debian's publicsuffix package), read once when
 *                 the module registers;
 *   records       "v=DMARC1; p=..." text -> struct dmarc_record
 *                 (dmarc_record_parse()): pure, driven by t/unit/test_dmarc.c
 *                 and t/fuzz/fuzz_dmarc.c;
 *   policy        the lookup of _dmarc.FROM-DOMAIN, then of the
 *                 organisational domain's (RFC 7489 6.6.3), on the loop
 *                 through the core's resolver like spf.c (dmarc_lookup(),
 *                 dmarc_lookup_cancel()), and the evaluation
 *                 (dmarc_evaluate()), pure: alignment of the SPF and DKIM
 *                 results with the RFC5322.From domain, the result, the
 *                 policy that applies (p or sp) and the disposition after
 *                 pct sampling.
 *
 * struct dmarc_result carries what an Authentication-Results writer needs
 * (RFC 7489 11.2, RFC 8601 2.2: dmarc=RESULT header.from=DOMAIN, and
 * policy.* / disposition as comments or properties).
 */
#ifndef MAILAUTH_DMARC_H
#define MAILAUTH_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include <gannet/mem.h>

/* ---- organisational domains (RFC 7489 3.2, the PSL algorithm) ---- */

#define DMARC_PSL_PATH "/usr/share/publicsuffix/public_suffix_list.dat"
/* The PSL file is the admin's, but still bounded: Debian's is ~250 KB. */
#define DMARC_PSL_MAX_SIZE (16u * 1024 * 1024)

struct dmarc_psl;

/* Reads a PSL file: one rule a line ("com", "*.ck", "!www.ck"), "//"
 * comments, the ICANN and the private sections both used (RFC 7489 3.2
 * names the list as a whole; both sections are "public suffixes" to the
 * PSL algorithm).  U-labels become A-labels.  Returns 0 with *psl_r, or
 * -1 with *error_r (static or from strerror) when the file cannot be read
 * or holds no rule. */
int dmarc_psl_load(const char *path, struct dmarc_psl **psl_r, const char **error_r);
/* The same from text in memory (unit tests).  Lines that are not rules
 * (bad labels) are skipped. */
int dmarc_psl_parse(const char *text, size_t len, struct dmarc_psl **psl_r, const char **error_r);
void dmarc_psl_free(struct dmarc_psl **psl);	/* accepts NULL */
size_t dmarc_psl_count(const struct dmarc_psl *psl);

/* The organisational domain of domain (A-labels, any case, a trailing dot
 * allowed), lower case, from pool: the public suffix by the PSL algorithm
 * (the longest matching rule, an exception rule first, "*" when none
 * matches) plus one label.  A domain that is itself a public suffix is its
 * own organisational domain.  NULL for an empty or malformed name. */
const char *dmarc_org_domain(const struct dmarc_psl *psl, struct gn_pool *pool,
			     const char *domain);

/* The module's list (mailauth.c loads it at register); NULL before. */
extern struct dmarc_psl *mailauth_psl;

/* ---- records (RFC 7489 6.3, 6.4) ---- */

enum dmarc_policy {
	DMARC_POLICY_UNSET = 0,
	DMARC_POLICY_NONE,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};
const char *dmarc_policy_name(int policy);	/* "none", ...; "" unset */

/* Our own bounds on what a domain's owner writes. */
#define DMARC_MAX_RECORD 4096	/* bytes of a selected record */
#define DMARC_MAX_TAGS 64	/* tags of a record */

struct dmarc_tag {
	const char *name;	/* as written */
	const char *value;	/* white space around it removed */
	bool known;		/* one of the tags of RFC 7489 6.3 */
};

struct dmarc_record {
	int p;			/* enum dmarc_policy */
	int sp;			/* DMARC_POLICY_UNSET: as p */
	unsigned pct;		/* 0..100; 100 when absent or invalid */
	char adkim, aspf;	/* 'r' or 's' */
	const char *rua, *ruf;	/* parsed, not used (no reports yet) */
	bool p_from_rua;	/* p missing or invalid, a valid rua: p=none
				 * (RFC 7489 6.6.3) */
	const char *ignored;	/* the first value replaced by a default
				 * (RFC 7489 6.3), for tools; NULL when none */
	struct dmarc_tag *tags;
	size_t n_tags;
};

/* Whether a TXT record is a DMARC record: "v" *WSP "=" *WSP "DMARC1" then
 * *WSP and ";" or the end (RFC 7489 6.4; "DMARC1" is case-sensitive). */
bool dmarc_record_is_dmarc(const char *text, size_t len);

/* Parses a record selected by dmarc_record_is_dmarc() into *rec_r (from
 * pool).  Returns 0, or -1 with *error_r (from pool) when it is not a
 * tag-list (RFC 6376 3.2: a part without "=", a bad tag name, a tag
 * twice), past the limits above, or when p (or sp) is missing or invalid
 * and no valid rua URI makes it p=none (RFC 7489 6.6.3): permerror.
 * Other invalid values take their defaults (RFC 7489 6.3), unknown tags
 * are ignored. */
int dmarc_record_parse(struct gn_pool *pool, const char *text, size_t len,
		       struct dmarc_record **rec_r, const char **error_r);

/* ---- results (RFC 7489 4.2, 6.6, 11.2) ---- */

enum dmarc_result_code {
	DMARC_NONE = 0,		/* no policy published (or no From domain) */
	DMARC_PASS,
	DMARC_FAIL,
	DMARC_TEMPERROR,
	DMARC_PERMERROR,
};
const char *dmarc_result_name(int result);

/* ---- the policy lookup, on the loop ---- */

struct dmarc_lookup_result {
	int status;		/* DMARC_PASS: a record was found (rec);
				 * DMARC_NONE, DMARC_TEMPERROR,
				 * DMARC_PERMERROR as the result would be */
	const char *domain;	/* the From domain asked for, lower case */
	const char *org_domain;	/* its organisational domain */
	const char *record_domain;	/* where the record was: domain or
					 * org_domain; NULL when none */
	const char *text;	/* the record as published */
	struct dmarc_record *rec;
	const char *problem;	/* why, for none, temperror, permerror */
};

struct dmarc_lookup;
typedef void dmarc_lookup_fn(const struct dmarc_lookup_result *r, void *data);
/* Each query and record as they happen, for tools. */
typedef void dmarc_trace_fn(const char *what, const char *detail, void *data);

/* Looks up the policy of from_domain (RFC 7489 6.6.3): TXT of
 * _dmarc.FROM, and when it has no DMARC record (NXDOMAIN, no TXT, none
 * starting v=DMARC1) TXT of _dmarc.ORG.  Several records: none, no
 * fallback.  A DNS error: temperror.  done runs once from the loop, never
 * from inside this call, unless dmarc_lookup_cancel() comes first; strings
 * and the result are from pool.  trace may be NULL. */
struct dmarc_lookup *dmarc_lookup(struct gn_pool *pool, const struct dmarc_psl *psl,
				  const char *from_domain, dmarc_lookup_fn *done,
				  dmarc_trace_fn *trace, void *data);
/* Sets *op to NULL; accepts NULL.  Not from the callback. */
void dmarc_lookup_cancel(struct dmarc_lookup **op);

/* ---- the evaluation (RFC 7489 3.1, 6.6.2, 6.6.4) ---- */

struct dmarc_dkim {
	const char *domain;	/* d= */
	int status;		/* enum gn_dkim_status (gannet/dkim.h) */
};

struct dmarc_input {
	const char *from_domain;	/* RFC5322.From's domain */
	int spf_result;		/* enum spf_result_code (spf.h) */
	const char *spf_domain;	/* the domain SPF checked (MAIL FROM's, or
				 * HELO's for <>) */
	const struct dmarc_dkim *dkim;
	size_t n_dkim;
	/* pct sampling (RFC 7489 6.6.4): a number 0..99, the message is
	 * sampled in when it is below pct; -1: a random one. */
	int sample;
};

struct dmarc_result {
	int result;		/* enum dmarc_result_code */
	const char *header_from;	/* RFC 8601 header.from */
	const char *org_domain;
	const char *record_domain;	/* NULL when no record */
	int policy;		/* the published policy that applies: p, or
				 * sp for a subdomain of the record's
				 * domain; UNSET without a record */
	bool subdomain;		/* sp (or p for want of it) was used */
	int disposition;	/* what to do: none for pass and the
				 * errors, else policy after sampling */
	bool sampled_out;	/* pct left the message out: one step
				 * milder (RFC 7489 6.6.4) */
	bool spf_aligned, dkim_aligned;	/* an aligned pass */
	const char *dkim_domain;	/* the aligned passing d=, or NULL */
	const char *reason;	/* a few words, for tools and comments */
};

/* Computes the result from the policy lookup's answer (NULL: none).
 * Strings from pool. */
void dmarc_evaluate(struct gn_pool *pool, const struct dmarc_psl *psl,
		    const struct dmarc_input *in, const struct dmarc_lookup_result *lk,
		    struct dmarc_result *out);

/* Whether a and b are aligned (RFC 7489 3.1): strict ('s') equal, relaxed
 * ('r') the same organisational domain.  Any case, trailing dots ignored. */
bool dmarc_aligned(const struct dmarc_psl *psl, struct gn_pool *pool, const char *a,
		   const char *b, char mode);

/* RFC 7489 6.6.1: the RFC5322.From domain of a message (msg: its header
 * section at least, CRLF or LF lines).  A message without a From, with
 * several From fields, several addresses in one or none with a domain has
 * none we can use: NULL with *why_r (static or from pool), for a "none"
 * result with that reason.  The domain is from pool. */
const char *dmarc_from_domain(struct gn_pool *pool, const char *msg, size_t len,
			      const char **why_r);

#endif
