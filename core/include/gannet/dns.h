/*
 * gannet/dns.h: asynchronous DNS lookups on the process's event loop.
 *
 * The resolver is the core's (libunbound, validating where a trust anchor
 * is configured; core/dns/README).  A lookup never blocks: it returns a
 * handle at once and its callback runs later from the loop, exactly once,
 * unless the handle is cancelled first; after gn_dns_cancel() the callback
 * is never called.  Every outcome comes through the callback, also the
 * ones known at once (a bad name, too many queries in flight): a caller
 * has one path for answers and failures, and is never re-entered from
 * gn_dns_lookup().
 *
 * The settings are the core's (gannet.conf, dns { ... }): resolvers,
 * trust_anchor, local_data, timeout, max_queries.  Each process has its
 * own resolver, made at its first lookup.  Call from start onwards, in the
 * process that runs the loop (a worker, the runner, a CLI command).
 */
#ifndef GANNET_DNS_H
#define GANNET_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <gannet/module.h>
#include <gannet/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Record types gn_dns_lookup() parses (RFC 1035, 3596, 6698). */
enum gn_dns_type {
	GN_DNS_A = 1,
	GN_DNS_CNAME = 5,
	GN_DNS_PTR = 12,
	GN_DNS_MX = 15,
	GN_DNS_TXT = 16,
	GN_DNS_AAAA = 28,
	GN_DNS_TLSA = 52,
};

/* What became of a lookup.  NOERROR with records is GN_DNS_OK; NOERROR
 * without records of the type is GN_DNS_NODATA, a separate answer
 * (RFC 2308 2.2), as NXDOMAIN is.  The first four are answers from the
 * DNS (rcode says which); the rest are failures to get one. */
enum gn_dns_status {
	GN_DNS_OK = 0,		/* records (n > 0) */
	GN_DNS_NODATA,		/* the name exists, no records of the type */
	GN_DNS_NXDOMAIN,	/* the name does not exist */
	GN_DNS_SERVFAIL,	/* the server failed, or validation did (bogus) */
	GN_DNS_RCODE,		/* another error rcode (REFUSED, ...): see rcode */
	GN_DNS_TIMEOUT,		/* no answer within dns.timeout */
	GN_DNS_LIMIT,		/* dns.max_queries lookups already in flight */
	GN_DNS_BADNAME,		/* the name is not a valid DNS name (not sent) */
	GN_DNS_ERROR,		/* the resolver failed (see error) */
};

/* DNSSEC (RFC 4035 4.3): secure only when the answer validated from a
 * trust anchor; bogus when it should have and did not (the status is
 * then GN_DNS_SERVFAIL and no records are given); insecure otherwise,
 * also when validation is off. */
enum gn_dns_security {
	GN_DNS_INSECURE = 0,
	GN_DNS_SECURE,
	GN_DNS_BOGUS,
};

/* The records: frozen (they come as arrays, a member added would change
 * the stride); more about a record would be a new array in the result. */
struct gn_dns_mx {
	unsigned preference;
	const char *host;	/* lower case, no trailing dot; "" for "." (null MX, RFC 7505) */
};

struct gn_dns_txt {
	const char *text;	/* the record's strings joined (RFC 7208 3.3,
				 * RFC 6376 3.6.2.2); may hold NULs: use len */
	size_t len;
};

struct gn_dns_tlsa {
	uint8_t usage, selector, matching_type;
	const uint8_t *data;
	size_t len;
};

/* A lookup's outcome.  Read-only, and valid only during the callback:
 * copy what is kept.  Only the array of the looked-up type is set (the
 * others are NULL); each holds n records.  Grows only at the end. */
struct gn_dns_result {
	const char *name;	/* the name asked for, in A-label form, no trailing dot */
	int type;		/* enum gn_dns_type */
	int status;		/* enum gn_dns_status */
	int rcode;		/* the DNS rcode (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN), -1 without an answer */
	int security;		/* enum gn_dns_security */
	unsigned ttl;		/* seconds the answer may be kept (0 for failures) */
	const char *canonical;	/* the name after CNAMEs; NULL when none was followed */
	const char *error;	/* why, for status >= GN_DNS_SERVFAIL (why_bogus for
				 * bogus answers); NULL otherwise */
	size_t n;
	const struct in_addr *a;
	const struct in6_addr *aaaa;
	const struct gn_dns_mx *mx;	/* sorted by preference, then host */
	const struct gn_dns_txt *txt;
	const char *const *names;	/* PTR and CNAME targets */
	const struct gn_dns_tlsa *tlsa;
};

struct gn_dns_query;
typedef void gn_dns_fn(const struct gn_dns_result *result, void *data);

/* Looks name up (UTF-8 or A-labels; a trailing dot is allowed) for records
 * of type.  Returns the query's handle, owned by the resolver until the
 * callback returns or the query is cancelled; fn runs once, from the
 * loop, never from inside this call. */
struct gn_dns_query *gn_dns_lookup(const char *name, enum gn_dns_type type,
				   gn_dns_fn *fn, void *data);

/* Cancels a query whose callback has not run: the callback will not run.
 * Sets *query to NULL; accepts NULL and *query == NULL.  Do not call it
 * from the query's own callback (the handle is gone then). */
void gn_dns_cancel(struct gn_dns_query **query);

/* Checks a name as gn_dns_lookup() does before it sends one: IDNA U-labels
 * to A-labels (libidn2), then at most 253 characters, labels of 1 to 63
 * letters, digits, '-' and '_' (RFC 1035 2.3.4; '_' for service names,
 * RFC 8552).  Returns 0 with *ascii_r (lower case, no trailing dot, from
 * pool), or -1 with *error_r. */
int gn_dns_name_check(struct gn_pool *pool, const char *name,
		      const char **ascii_r, const char **error_r);

/* "A", "MX", ... and "OK", "NXDOMAIN", ... and "secure", "insecure",
 * "bogus"; "?" for unknown values. */
const char *gn_dns_type_name(int type);
const char *gn_dns_status_name(int status);
const char *gn_dns_security_name(int security);

#ifdef __cplusplus
}
#endif
#endif
