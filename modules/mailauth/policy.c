/*
 * modules/mailauth/policy.c: per-recipient-domain settings for mail that
 * fails DMARC or SPF, and the allow list of sender domains that skip them
 * (issue 10 item 1: "per-domain settings for what to do with failures,
 * and an allow list").
 *
 *   mailauth = {
 *     domain_policies = [
 *       "example.com dmarc_reject=junk dmarc_quarantine=accept spf_fail=junk",
 *       "* dmarc_reject=reject allow=lists.example"
 *     ];
 *     allow_senders = [ "partner.example" ];
 *   };
 *
 * One string a recipient domain: the domain ("*" for every domain not
 * listed), then key=value words: dmarc_reject, dmarc_quarantine,
 * spf_fail with reject|junk|accept, allow= a comma-separated list of
 * sender domains for this recipient domain only.  A key not given keeps
 * its default (reject, junk, accept: the published DMARC policy applied,
 * SPF only reported).  allow_senders applies to every recipient domain.
 *
 * An allowed sender is a VALIDATED domain, never the From field's alone
 * (that one is what a forger writes): MAIL FROM's (or HELO's) domain when
 * SPF passed, or the d= of a DKIM signature that passed, equal to an
 * entry or a subdomain of it (mox's ListAllowDomain).  Such mail skips the
 * policy (accept) and still gets its Authentication-Results.
 */
#include "policy.h"

#include <string.h>
#include <strings.h>

#include <gannet/gannet.h>

static struct policy_domain *domains;
static size_t n_domains;
static const char **allow_all;
static size_t n_allow_all;
static const struct policy_domain defaults = {
	.domain = "*", .dmarc_reject = POLICY_REJECT, .dmarc_quarantine = POLICY_JUNK,
	.spf_fail = POLICY_ACCEPT,
};

const char *policy_action_name(int action)
{
	switch (action) {
	case POLICY_ACCEPT: return "accept";
	case POLICY_JUNK: return "junk";
	case POLICY_REJECT: return "reject";
	}
	return "?";
}

static int action_parse(const char *v, size_t n)
{
	for (int a = POLICY_ACCEPT; a <= POLICY_REJECT; a++)
		if (strlen(policy_action_name(a)) == n && strncmp(v, policy_action_name(a), n) == 0)
			return a;
	return -1;
}

/* A domain name as the config may give it: LDH labels and dots, at most
 * 253 octets (RFC 1035 2.3.4); lower-cased copy, or NULL. */
static char *domain_copy(const char *s, size_t n)
{
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || s[0] == '.')
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			c == '-' || c == '_' || (c == '.' && s[i - 1] != '.');
		if (!ok)
			return NULL;
	}
	char *d = gn_malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		d[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	d[n] = '\0';
	return d;
}

/* "a.example,b.example" -> *list_r; false on a bad name or too many. */
static bool allow_parse(const char *v, size_t n, const char ***list_r, size_t *count_r)
{
	size_t i = 0;
	while (i < n) {
		size_t e = i;
		while (e < n && v[e] != ',')
			e++;
		char *d = domain_copy(v + i, e - i);
		if (d == NULL || *count_r >= POLICY_MAX_ALLOW) {
			gn_free(d);
			return false;
		}
		*list_r = gn_realloc(*list_r, (*count_r + 1) * sizeof(**list_r));
		(*list_r)[(*count_r)++] = d;
		i = e + 1;
	}
	return n > 0;
}

static bool entry_parse(const char *s, struct policy_domain *p, const char **why_r)
{
	const char *sp = " \t";
	size_t i = strspn(s, sp), n = strcspn(s + i, sp);
	memset(p, 0, sizeof(*p));
	*p = defaults;
	p->allow = NULL;
	p->n_allow = 0;
	if (n == 1 && s[i] == '*') {
		p->domain = gn_strdup("*");
	} else if ((p->domain = domain_copy(s + i, n)) == NULL) {
		*why_r = "the first word is not a domain name or \"*\"";
		return false;
	}
	for (i += n; s[i += strspn(s + i, sp)] != '\0'; i += n) {
		n = strcspn(s + i, sp);
		const char *w = s + i, *eq = memchr(w, '=', n);
		if (eq == NULL) {
			*why_r = "a word is not key=value";
			return false;
		}
		size_t kl = (size_t)(eq - w), vl = n - kl - 1;
		int *slot = NULL;
		if (kl == 12 && strncmp(w, "dmarc_reject", kl) == 0)
			slot = &p->dmarc_reject;
		else if (kl == 16 && strncmp(w, "dmarc_quarantine", kl) == 0)
			slot = &p->dmarc_quarantine;
		else if (kl == 8 && strncmp(w, "spf_fail", kl) == 0)
			slot = &p->spf_fail;
		if (slot != NULL) {
			int a = action_parse(eq + 1, vl);
			if (a < 0) {
				*why_r = "an action is not reject, junk or accept";
				return false;
			}
			*slot = a;
		} else if (kl == 5 && strncmp(w, "allow", kl) == 0) {
			if (!allow_parse(eq + 1, vl, &p->allow, &p->n_allow)) {
				*why_r = "allow= is not a comma-separated list of domain names";
				return false;
			}
		} else {
			*why_r = "unknown key (dmarc_reject, dmarc_quarantine, spf_fail, allow)";
			return false;
		}
	}
	return true;
}

static void policy_free(void)
{
	for (size_t i = 0; i < n_domains; i++) {
		gn_free((char *)domains[i].domain);
		for (size_t j = 0; j < domains[i].n_allow; j++)
			gn_free((char *)domains[i].allow[j]);
		gn_free(domains[i].allow);
	}
	gn_free(domains);
	domains = NULL;
	n_domains = 0;
	for (size_t j = 0; j < n_allow_all; j++)
		gn_free((char *)allow_all[j]);
	gn_free(allow_all);
	allow_all = NULL;
	n_allow_all = 0;
}

void policy_load(struct gn_config *sect)
{
	const char *const *v;
	size_t n = 0;
	policy_free();
	if (gn_config_strings(sect, "domain_policies", &v, &n) > 0) {
		if (n > POLICY_MAX_DOMAINS) {
			gn_config_error(sect, "domain_policies", "%s.domain_policies: more than %d "
					"domains", gn_config_path(sect), POLICY_MAX_DOMAINS);
			n = 0;
		}
		domains = gn_calloc(n > 0 ? n : 1, sizeof(*domains));
		for (size_t i = 0; i < n; i++) {
			const char *why = NULL;
			struct policy_domain p;
			if (!entry_parse(v[i], &p, &why)) {
				gn_free((char *)p.domain);
				for (size_t j = 0; j < p.n_allow; j++)
					gn_free((char *)p.allow[j]);
				gn_free(p.allow);
				gn_config_error(sect, "domain_policies", "%s.domain_policies entry %zu "
						"\"%s\": %s", gn_config_path(sect), i + 1, v[i], why);
				continue;
			}
			bool dup = false;
			for (size_t j = 0; j < n_domains && !dup; j++)
				dup = strcmp(domains[j].domain, p.domain) == 0;
			if (dup) {
				gn_config_error(sect, "domain_policies", "%s.domain_policies: %s given "
						"twice", gn_config_path(sect), p.domain);
				gn_free((char *)p.domain);
				for (size_t j = 0; j < p.n_allow; j++)
					gn_free((char *)p.allow[j]);
				gn_free(p.allow);
				continue;
			}
			domains[n_domains++] = p;
		}
	}
	if (gn_config_strings(sect, "allow_senders", &v, &n) > 0) {
		for (size_t i = 0; i < n; i++)
			if (!allow_parse(v[i], strlen(v[i]), &allow_all, &n_allow_all))
				gn_config_error(sect, "allow_senders", "%s.allow_senders: \"%s\" is not "
						"a domain name (or past %d entries)",
						gn_config_path(sect), v[i], POLICY_MAX_ALLOW);
	}
}

const struct policy_domain *policy_for(const char *rcpt_domain)
{
	const struct policy_domain *star = NULL;
	for (size_t i = 0; i < n_domains; i++) {
		if (rcpt_domain != NULL && strcasecmp(domains[i].domain, rcpt_domain) == 0)
			return &domains[i];
		if (strcmp(domains[i].domain, "*") == 0)
			star = &domains[i];
	}
	return star != NULL ? star : &defaults;
}

/* domain equals entry or ends in "." entry; any case, a trailing dot
 * of domain ignored. */
static bool under(const char *domain, const char *entry)
{
	size_t n = strlen(domain), e = strlen(entry);
	if (n > 0 && domain[n - 1] == '.')
		n--;
	if (n < e || strncasecmp(domain + n - e, entry, e) != 0)
		return false;
	return n == e || domain[n - e - 1] == '.';
}

bool policy_allowed(const struct policy_domain *p, const char *domain)
{
	if (domain == NULL || domain[0] == '\0')
		return false;
	for (size_t i = 0; i < n_allow_all; i++)
		if (under(domain, allow_all[i]))
			return true;
	for (size_t i = 0; p != NULL && i < p->n_allow; i++)
		if (under(domain, p->allow[i]))
			return true;
	return false;
}
