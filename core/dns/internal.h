/*
 * core/dns/internal.h: the DNS layer's internals (gannet/dns.h).
 *
 *   resolver.c  the process's libunbound context on the loop: settings,
 *               queries, their timeouts, the cap and cancel;
 *   result.c    names (checks, IDNA, reverse names) and a libunbound
 *               result parsed into struct gn_dns_result;
 *   cli-dns.c   `gannet dns lookup TYPE NAME`;
 *   dkim.c      the DKIM verifier's key lookups (gn_dkim_verify_start(),
 *               gannet/dkim.h; the verifier itself is core/mail/);
 *   cli-dkim.c  `gannet dkim verify [FILE]`, `gannet dns dkim SELECTOR DOMAIN`.
 *
 * Uses the runtime layer (loop, config) and the mail layer (IDNA through
 * gn_addr_parse_domain()).  core/dns/README has the design.
 */
#ifndef GANNET_DNS_INTERNAL_H
#define GANNET_DNS_INTERNAL_H

#include "mail/internal.h"
#include "runtime/internal.h"

#include <gannet/dns.h>

struct ub_result;

/* ---- resolver.c ---- */

/* Register phase of the core (core/main.c): checks the dns settings that
 * only libunbound can check (dns.local_data, dns.trust_anchor), recording
 * config errors with file and line, and registers `gannet dns lookup`.
 * Returns 0 or -1. */
int dns_register(void);
/* The part of dns_register() that checks the settings: 0, or -1 with
 * the errors recorded. */
int dns_conf_check(void);
/* Cancels every query (no callback runs) and frees this process's
 * resolver; the next lookup makes a new one.  For the end of a process
 * and for tests. */
void dns_shutdown(void);
/* Queries in flight in this process (submitted to libunbound). */
unsigned dns_outstanding(void);

/* ---- result.c ---- */

/* Fills *res from r (err: libunbound's error code) with memory from pool.
 * name: the name asked for (A-labels). */
void dns_result_parse(struct gn_pool *pool, const char *name, int type, int err,
		      struct ub_result *r, struct gn_dns_result *res);
/* A result that is only a failure (status >= GN_DNS_TIMEOUT). */
void dns_result_fail(struct gn_dns_result *res, const char *name, int type,
		     enum gn_dns_status status, const char *error);
/* "A" -> GN_DNS_A (case-insensitive); -1 for an unknown name. */
int dns_type_parse(const char *s);
/* The reverse-lookup name of an IPv4 or IPv6 address ("1.0.0.127.in-addr.arpa"),
 * from pool; NULL when ip is not an address. */
const char *dns_reverse_name(struct gn_pool *pool, const char *ip);

/* ---- cli-dns.c, cli-dkim.c ---- */

int dns_cli_lookup(int argc, char **argv, void *data);
int dns_cli_dkim_verify(int argc, char **argv, void *data);
int dns_cli_dkim_key(int argc, char **argv, void *data);
int dns_cli_tlsa(int argc, char **argv, void *data);

/* ---- dane.c: DANE for SMTP (RFC 7672), a chain against TLSA records ---- */

/* TLSA certificate usages (RFC 6698 2.1.1, RFC 7218 names). */
#define DNS_DANE_TA 2
#define DNS_DANE_EE 3
/* Most certificates of a server's chain looked at (RFC 8446 and GnuTLS
 * allow longer; no sane mail server sends more). */
#define DNS_DANE_MAX_CHAIN 10

/* Whether a record is usable for SMTP (RFC 7672 3.1.3): usage 2 or 3,
 * selector 0 or 1, matching 0, 1 (32 bytes) or 2 (64 bytes). */
bool dns_dane_usable(const struct gn_dns_tlsa *r);
size_t dns_dane_count_usable(const struct gn_dns_tlsa *recs, size_t n);
/* Whether the chain (DER certificates, leaf first, as the server sent
 * them) matches a usable record.  names are DANE-TA's reference
 * identifiers (RFC 7672 3.2.2: the MX host name, its CNAME expansion,
 * the next-hop domain; NULL entries are skipped).  1 with *usage_r
 * (DNS_DANE_EE or _TA), or 0 with *error_r (static text). */
int dns_dane_match(const struct gn_dns_tlsa *recs, size_t n_recs, const unsigned char *const *certs,
		   const size_t *lens, size_t n_certs, const char *const *names, size_t n_names,
		   int *usage_r, const char **error_r);

#endif
