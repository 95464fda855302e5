/*
 * modules/mailauth/policy.h: what to do with mail that fails DMARC or SPF,
 * per recipient domain, and the sender domains that skip it (policy.c).
 */
#ifndef MAILAUTH_POLICY_H
#define MAILAUTH_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include <gannet/config.h>

/* Ordered: the strictest of a transaction's recipients wins. */
enum policy_action {
	POLICY_ACCEPT = 0,	/* deliver (the decision is logged) */
	POLICY_JUNK,		/* into the recipients' Junk */
	POLICY_REJECT,		/* 550 at the end of data */
};

/* Our limits on what the config may list. */
#define POLICY_MAX_DOMAINS 1000
#define POLICY_MAX_ALLOW 1000

struct policy_domain {
	const char *domain;		/* lower case; "*": every other domain */
	int dmarc_reject;		/* a DMARC fail whose disposition is reject */
	int dmarc_quarantine;		/* ... is quarantine */
	int spf_fail;			/* SPF fail (RFC 7208 8.4), DMARC not failing */
	const char **allow;		/* sender domains that skip it, lower case */
	size_t n_allow;
};

/* Reads mailauth.domain_policies and mailauth.allow_senders (register
 * phase); errors are config errors with the file and line. */
void policy_load(struct gn_config *sect);

/* The settings of a recipient domain: its own, "*"'s, or the defaults
 * (reject, junk, accept: RFC 7489 6.6.4 as published, SPF reported only). */
const struct policy_domain *policy_for(const char *rcpt_domain);

/* Whether domain (a validated one: SPF's passing domain or a passing
 * DKIM d=) is on the global allow list or p's: the domain itself or a
 * subdomain of an entry (mox's ListAllowDomain). */
bool policy_allowed(const struct policy_domain *p, const char *domain);

const char *policy_action_name(int action);

#endif
