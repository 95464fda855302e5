/*
 * modules/mailauth/iprev.h: the "iprev" check (RFC 8601 3.2, RFC 5451
 * 3): the client's address has a PTR name whose A (or AAAA) records give
 * the address back.  Module-internal.
 *
 * iprev_check() returns at once; the callback runs later from the loop,
 * exactly once, unless iprev_cancel() comes first.  The PTR query goes
 * first, then the forward queries of its names, all at once; a name that
 * maps back ends the check (the other queries are cancelled).
 */
#ifndef MAILAUTH_IPREV_H
#define MAILAUTH_IPREV_H

#include <stdint.h>

#include <gannet/mem.h>

/* The PTR names looked up forward: the first 10, as RFC 7208 4.6.4 does
 * for its ptr mechanism (a peer's DNS must not make us ask without end). */
#define IPREV_MAX_NAMES 10

enum iprev_status {
	IPREV_PASS = 0,		/* a name maps back to the address */
	IPREV_FAIL,		/* no PTR (NXDOMAIN, no records), or none maps back */
	IPREV_TEMPERROR,	/* a DNS error or timeout, and no match */
	IPREV_PERMERROR,	/* the PTR answer holds no usable host name */
};

struct iprev_result {
	int status;		/* enum iprev_status */
	const char *ip;		/* the address, as text (policy.iprev) */
	const char *name;	/* pass: the name that maps back; NULL otherwise */
	const char *reason;	/* why, unless pass */
	unsigned names;		/* PTR names looked up forward */
};

struct iprev_eval;
typedef void iprev_fn(const struct iprev_result *result, void *data);

/* family 4 or 6, ip its 4 or 16 bytes, ip_text the address as text.
 * Everything lives in pool, which must outlive the check.  The result
 * given to fn lives in pool. */
struct iprev_eval *iprev_check(struct gn_pool *pool, int family, const uint8_t *ip,
			       const char *ip_text, iprev_fn *fn, void *data);
/* Stops a check whose callback has not run; sets *e to NULL; accepts
 * NULL and *e == NULL.  Not from the callback. */
void iprev_cancel(struct iprev_eval **e);

const char *iprev_status_name(int status);

#endif
