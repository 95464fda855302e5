/*
 * modules/mailauth/authres.h: writing Authentication-Results (RFC 8601)
 * and Received-SPF (RFC 7208 9.1) header fields, inside the module only.
 *
 * Pure: no I/O, no loop; t/unit/test_authres.c drives it.  A caller
 * collects method results (authres_add(), authres_prop()) in the order
 * they are to appear, spf, then dkim (one per signature), then dmarc,
 * then iprev, and formats them once
 * (authres_format()).  Every value is written as a token when it is one,
 * else as a quoted-string (RFC 8601 2.2, RFC 2045 5.1); control
 * characters never reach the header (a peer controls most values).
 */
#ifndef MAILAUTH_AUTHRES_H
#define MAILAUTH_AUTHRES_H

#include <stdbool.h>
#include <stddef.h>

#include <gannet/mem.h>

#include "spf.h"

/* Properties of one method result: smtp.mailfrom, header.d, ... */
#define AUTHRES_MAX_PROPS 6
/* A reason longer than this is cut (a peer's DNS or message writes it). */
#define AUTHRES_MAX_REASON 200
/* Method results in one field: spf, max 100 dkim, dmarc, and room. */
#define AUTHRES_MAX_RESULTS 128

struct authres_prop {
	const char *name;	/* ptype.property: "smtp.mailfrom" */
	const char *value;
	const char *comment;	/* after the value, "(...)"; NULL: none */
};

struct authres_result {
	const char *method;	/* "spf", "dkim", "dmarc", "iprev" */
	const char *result;	/* RFC 8601 2.7 names: "pass", "fail", ... */
	const char *reason;	/* NULL: none */
	const char *comment;	/* after the result, "(...)"; NULL: none */
	struct authres_prop props[AUTHRES_MAX_PROPS];
	size_t n_props;
};

struct authres {
	struct gn_pool *pool;
	const char *authserv_id;	/* our host name (RFC 8601 2.5) */
	struct authres_result results[AUTHRES_MAX_RESULTS];
	size_t n;
};

/* authserv_id and every string given later must live as long as pool. */
void authres_init(struct authres *ar, struct gn_pool *pool, const char *authserv_id);
/* Adds a method result; NULL past AUTHRES_MAX_RESULTS (then ignored). */
struct authres_result *authres_add(struct authres *ar, const char *method,
				   const char *result, const char *reason);
/* Adds a property to r (NULL r or value: nothing; past
 * AUTHRES_MAX_PROPS: ignored). */
void authres_prop(struct authres_result *r, const char *name, const char *value);
/* A comment after the last property of r (RFC 8601 2.7.3's
 * "policy.iprev=IP (NAME)"); nothing without a property. */
void authres_prop_comment(struct authres_result *r, const char *comment);
/* The whole field, "Authentication-Results: ID;\r\n\tspf=...;\r\n\tdkim=...\r\n"
 * (folded before each result), or "Authentication-Results: ID; none\r\n"
 * without results (RFC 8601 2.2).  From the pool. */
char *authres_format(const struct authres *ar);
/* The same, appended to b. */
void authres_format_to(const struct authres *ar, struct gn_buf *b);

/* RFC 7208 9.1: "Received-SPF: RESULT (COMMENT) key=value; ...\r\n",
 * folded, from pool.  ip is the client's address as text. */
char *authres_received_spf(struct gn_pool *pool, const struct spf_result *r,
			   const char *receiver, const char *ip, const char *helo);
/* The same, appended to b. */
void authres_received_spf_to(struct gn_buf *b, const struct spf_result *r,
			     const char *receiver, const char *ip, const char *helo);

/* Whether an Authentication-Results field's value (what follows its
 * colon, unfolded or not) names authserv_id, compared without case
 * (RFC 8601 5: a field with our id that we did not write is forged). */
bool authres_names(const char *value, size_t len, const char *authserv_id);

#endif
