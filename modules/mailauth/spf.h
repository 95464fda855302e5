/*
 * modules/mailauth/spf.h: the mailauth module's SPF (RFC 7208), inside
 * the module only.
 *
 * Two parts:
 *
 *   spf-record.c  pure: record text -> terms (spf_record_parse()), and
 *                 macro expansion (spf_macro_check(), spf_macro_expand()).
 *                 No DNS, no loop: the unit tests and the fuzz target
 *                 drive it directly.
 *   spf.c         check_host() (RFC 7208 4) as a state machine on the
 *                 loop through the core's resolver (gannet/dns.h):
 *                 spf_check() returns at once, the callback runs later,
 *                 exactly once, unless spf_cancel() comes first.
 *
 * The result (struct spf_result) carries what a Received-SPF or an
 * Authentication-Results writer needs (RFC 7208 9.1, RFC 8601 2.7.2):
 * the result, the identity checked (mailfrom or helo) and its domain, the
 * term that matched, the explanation of a fail, the reason of an error.
 */
#ifndef MAILAUTH_SPF_H
#define MAILAUTH_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <gannet/mem.h>

/* RFC 7208 2.6.  The order is the one of the RFC's section. */
enum spf_result_code {
	SPF_NONE = 0,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};

/* "none", "neutral", ... as RFC 7208 2.6 spells them. */
const char *spf_result_name(int result);

/* ---- records (spf-record.c) ---- */

/* Limits on what a domain's owner controls.  The RFC has none for the
 * record's size (a TXT record may be up to 64 KiB); these are far above
 * what a record that fits in a UDP answer (RFC 7208 3.4) can hold. */
#define SPF_MAX_RECORD 4096	/* bytes of a selected record */
#define SPF_MAX_TERMS 256	/* terms of a record */
#define SPF_MAX_EXPANSION 4096	/* bytes of an expanded macro-string */

enum spf_mechanism {
	SPF_MECH_ALL = 1,
	SPF_MECH_INCLUDE,
	SPF_MECH_A,
	SPF_MECH_MX,
	SPF_MECH_PTR,
	SPF_MECH_IP4,
	SPF_MECH_IP6,
	SPF_MECH_EXISTS,
};

enum spf_term_kind {
	SPF_TERM_MECHANISM = 1,
	SPF_TERM_REDIRECT,	/* redirect= (RFC 7208 6.1) */
	SPF_TERM_EXP,		/* exp= (RFC 7208 6.2) */
	SPF_TERM_UNKNOWN,	/* another modifier: ignored (RFC 7208 6) */
};

struct spf_term {
	int kind;		/* enum spf_term_kind */
	int mechanism;		/* enum spf_mechanism, for mechanisms */
	int qualifier;		/* the result when it matches: SPF_PASS,
				 * SPF_FAIL, SPF_SOFTFAIL, SPF_NEUTRAL */
	const char *text;	/* the term as written */
	const char *name;	/* a modifier's name as written */
	/* The domain-spec (include, a, mx, ptr, exists; redirect, exp) or an
	 * unknown modifier's value, unexpanded; NULL when not given. */
	const char *spec;
	int cidr4, cidr6;	/* prefix lengths; 32 and 128 when not given */
	uint8_t ip[16];		/* ip4 (4 bytes) and ip6 networks */
};

struct spf_record {
	struct spf_term *terms;
	size_t n;
	const struct spf_term *redirect;	/* NULL when none */
	const struct spf_term *exp;		/* NULL when none */
	bool has_all;		/* an "all" anywhere: redirect is ignored */
};

/* Whether a TXT record is an SPF record: "v=spf1" (any case) followed by
 * a space or its end (RFC 7208 4.5). */
bool spf_record_is_spf(const char *text, size_t len);

/* Parses a record (its text after selection, "v=spf1 ...") into terms
 * from pool.  Returns 0 with *rec_r, or -1 with *error_r (from pool) for
 * any syntax error anywhere (RFC 7208 4.6: permerror before any
 * evaluation): an unknown mechanism, a bad qualifier, CIDR lengths or
 * address, an invalid macro, a missing or bad domain-spec, redirect= or
 * exp= twice, a record or term count past the limits above. */
int spf_record_parse(struct gn_pool *pool, const char *text, size_t len,
		     struct spf_record **rec_r, const char **error_r);

/* What macros expand to (RFC 7208 7.2).  Strings are as given; NULL
 * members expand as the RFC says for unknown values. */
struct spf_macro_env {
	const char *sender;	/* s: "local@domain" */
	const char *local;	/* l */
	const char *sender_domain;	/* o */
	const char *domain;	/* d: the current domain */
	int family;		/* 4 or 6 */
	uint8_t ip[16];		/* i, c, v */
	const char *validated;	/* p: NULL -> "unknown" */
	const char *helo;	/* h */
	const char *receiver;	/* r: NULL -> "unknown" */
	time_t now;		/* t */
};

/* Flags of spf_macro_check() and spf_macro_expand(). */
#define SPF_MACRO_EXP 0x1u	/* explanation text: c, r, t allowed, spaces
				 * allowed (RFC 7208 6.2, 7.1) */
#define SPF_MACRO_DOMAIN 0x2u	/* a domain-spec: must end in a macro or
				 * "." toplabel (RFC 7208 7.1 domain-end) */

/* Checks a macro-string's syntax (RFC 7208 7.1).  Returns 0, or -1 with
 * *error_r (static).  *uses_p_r (may be NULL) says whether %{p} occurs. */
int spf_macro_check(const char *s, size_t len, unsigned flags,
		    bool *uses_p_r, const char **error_r);

/* Expands a macro-string that passed spf_macro_check() with the same
 * flags.  With SPF_MACRO_DOMAIN, a trailing dot is dropped and a result
 * longer than 253 is cut at the left by whole labels (RFC 7208 7.3).
 * Returns the result from pool, or NULL with *error_r when it is longer
 * than SPF_MAX_EXPANSION or the string is invalid. */
char *spf_macro_expand(struct gn_pool *pool, const char *s, size_t len,
		       unsigned flags, const struct spf_macro_env *env,
		       const char **error_r);

/* ---- evaluation (spf.c) ---- */

/* RFC 7208 4.6.4. */
#define SPF_MAX_LOOKUPS 10	/* terms that query the DNS */
#define SPF_MAX_VOID 2		/* lookups answered NXDOMAIN or empty */
#define SPF_MAX_MX_NAMES 10	/* names of an mx mechanism */
#define SPF_MAX_PTR_NAMES 10	/* names of a ptr mechanism or %{p} */
#define SPF_TIMEOUT_MS 20000	/* a whole evaluation (4.6.4: "at least 20
				 * seconds"); past it, temperror */

struct spf_request {
	int family;		/* 4 or 6 */
	uint8_t ip[16];		/* the client's address (4 bytes for 4) */
	const char *sender;	/* MAIL FROM address; NULL or "" for <> */
	const char *helo;	/* the HELO/EHLO domain; may be NULL */
	const char *receiver;	/* our host name, for %{r}; may be NULL */
	const char *domain;	/* the domain to check; NULL: the identity's */
	bool check_helo;	/* check the HELO identity (RFC 7208 2.3) */
	unsigned timeout_ms;	/* the whole evaluation; 0: SPF_TIMEOUT_MS */
};

struct spf_result {
	int result;		/* enum spf_result_code */
	const char *identity;	/* "mailfrom" or "helo" (RFC 8601 2.7.2) */
	const char *domain;	/* the domain checked: MAIL FROM's or HELO's */
	const char *sender;	/* the sender the macros saw (postmaster@HELO
				 * for HELO and for <>) */
	const char *mechanism;	/* the matching term as written; NULL when
				 * none matched (default neutral, none, errors) */
	const char *matched_domain; /* the record's domain it was in */
	const char *explanation; /* exp= of a fail, expanded; NULL when none */
	const char *problem;	/* why, for permerror and temperror */
	unsigned lookups;	/* DNS-querying terms counted (<= 10 unless
				 * the 11th made it a permerror) */
	unsigned void_lookups;
	unsigned queries;	/* DNS queries sent in all */
};

struct spf_eval;

/* Called once with the result, valid until the pool given to spf_check()
 * is freed. */
typedef void spf_done_fn(const struct spf_result *result, void *data);

/* check_host() (RFC 7208 4) for the request: with check_helo the HELO
 * identity, else MAIL FROM's (postmaster@HELO for "<>", RFC 7208 2.4).
 * Every string and the result are from pool, which must outlive the
 * evaluation.  Returns the handle; done runs from the loop later, never
 * from inside this call.  Call from start onwards in a process with a
 * loop. */
struct spf_eval *spf_check(struct gn_pool *pool, const struct spf_request *req,
			   spf_done_fn *done, void *data);

/* Stops an evaluation whose callback has not run: the callback will not
 * run.  Sets *eval to NULL; accepts NULL.  Not from the callback. */
void spf_cancel(struct spf_eval **eval);

/* One observation for tools (`gannet dns spf`): each record fetched and
 * each DNS query, as they happen. */
typedef void spf_trace_fn(const char *what, const char *detail, void *data);
void spf_set_trace(struct spf_eval *eval, spf_trace_fn *fn, void *data);

#endif
