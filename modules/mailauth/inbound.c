/*
 * modules/mailauth/inbound.c: SPF, DKIM and iprev on mail that arrives over SMTP
 * (the smtp module's server), recorded in the stored prefix of every copy
 * as one Authentication-Results field (RFC 8601) and a Received-SPF field
 * (RFC 7208 9.1).
 *
 * How it fits (gannet/smtp.h, "the end of data"):
 *
 *   tap chunk()       the first chunk starts SPF (spf_check(): MAIL
 *                     FROM's identity, HELO's when MAIL FROM is <>)
 *                     and iprev (iprev.h: the client's PTR names mapped
 *                     back, RFC 8601 3.2), which need nothing from the
 *                     message (inbound_start()); each chunk goes to a
 *                     DKIM verifier (gannet/dkim.h) as it arrives, and
 *                     the header section (up to INBOUND_MAX_HEADER) is
 *                     kept to look for forged Authentication-Results
 *                     fields; at the header's end the DKIM key lookups
 *                     (gn_dkim_verify_start()) and the DMARC policy
 *                     lookup start, and run while the body arrives;
 *   "smtp.data_end"   the hook: the verifier is finished (it gives the
 *                     signatures the keys that came), what is still
 *                     under way goes on; the hook returns PENDING;
 *   both done         DMARC (dmarc.h): the policy of the From domain
 *                     (dmarc_lookup()) and dmarc_evaluate();
 *   all done          the fields are written (gn_smtp_tx_add_header())
 *                     and the hook completes: REJECT (550 5.7.26) for a
 *                     DMARC fail whose disposition is reject, CONTINUE
 *                     otherwise, with the mailbox Junk for quarantine
 *                     (gn_smtp_tx_set_mailbox());
 *   tap tx_end()      frees what the transaction had.
 *
 * Every wait is bounded: past mailauth.inbound_timeout what has not come
 * is temperror (SPF, iprev, DMARC), and a signature whose key did not come stays
 * temperror (the verifier's answer until it gets one).  Only a DMARC
 * policy refuses a message, and only on a fail: a DNS outage must not
 * bounce mail.
 *
 * Forged fields (RFC 8601 5): a field in the incoming header that carries
 * our authserv-id (the SMTP host name) was not written by us.  The smtp
 * module stores it renamed (modules/smtp/forged.c); here, where the tap
 * sees the bytes as they came, the forged ones are logged
 * (event=authres_forged).
 *
 * The decision (dmarc_decide()) goes through the recipient domains'
 * settings and allow lists (policy.h); two From fields are refused.  The
 * results are kept with the stored copies (keep_results(),
 * gn_smtp_tx_set_auth()).
 */
#include "mailauth.h"
#include "authres.h"
#include "dmarc.h"
#include "header.h"
#include "iprev.h"
#include "policy.h"
#include "spf.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <gannet/gannet.h>

#define AREA "mailauth"
/* The header section kept to look for forged fields. */
#define INBOUND_MAX_HEADER (256 * 1024)
/* Where a DMARC quarantine puts the message (the special-use \Junk
 * every account has, gannet/store.h). */
#define INBOUND_QUARANTINE_MAILBOX "Junk"

struct inbound {
	struct gn_smtp_session *s;
	struct gn_pool *pool;		/* the transaction's */
	struct gn_dkim_verifier *dkim;
	const char *dkim_error;		/* the message could not be read for DKIM */
	struct gn_buf *header;		/* the header section, to INBOUND_MAX_HEADER */
	bool header_done;
	bool header_cut;		/* past INBOUND_MAX_HEADER */
	/* At the end of data. */
	struct gn_hook_call *call;
	struct spf_eval *spf;
	struct gn_dkim_verify *verify;
	struct gn_timer *timer;
	const struct spf_result *spf_result;	/* NULL until SPF is done */
	struct iprev_eval *iprev;
	const struct iprev_result *iprev_result; /* NULL until iprev is done */
	bool iprev_done;		/* also without a client address (no result) */
	bool spf_timed_out;
	bool keys_started;		/* the DKIM key lookups (in->verify) */
	bool keys_in;			/* ... have all answered */
	bool data_ended;		/* the verifier has the whole message */
	bool dkim_done;
	struct dmarc_lookup *dmarc_lk;
	/* The policy, looked up once the header section is complete;
	 * evaluated (dmarc_apply()) once SPF and DKIM are done. */
	const struct dmarc_lookup_result *dmarc_policy;
	bool dmarc_started, dmarc_done;
	bool started;			/* SPF and iprev started (inbound_start()) */
	bool pending;			/* the hook returned PENDING */
	bool finished;			/* the fields are written */
	size_t dkim_signatures;		/* ... with this many DKIM results */
	/* The kept header's forged Authentication-Results fields and its
	 * From fields (count_fields(), once, when all is done). */
	unsigned forged, froms;
	enum gn_hook_result final;
	/* DMARC (RFC 7489): valid once dmarc_done, for the rest of the
	 * transaction (mailauth_inbound_dmarc()). */
	struct dmarc_result dmarc;
	const char *ip;
	const char *helo;
};

static unsigned slot;

static struct inbound *inbound_get(struct gn_smtp_session *s, bool create)
{
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	if (tx == NULL)
		return NULL;
	struct inbound *in = gn_smtp_tx_slot_get(tx, slot);
	if (in == NULL && create) {
		in = gn_calloc(1, sizeof(*in));
		in->s = s;
		in->pool = gn_smtp_tx_pool(tx);
		in->dkim = gn_dkim_verifier_new(gn_dkim_max_signatures(), time(NULL));
		in->header = gn_buf_new(INBOUND_MAX_HEADER);
		gn_smtp_tx_slot_set(tx, slot, in);
	}
	return in;
}

/* Stops what is under way; the hook is not completed. */
static void inbound_stop(struct inbound *in)
{
	spf_cancel(&in->spf);
	iprev_cancel(&in->iprev);
	gn_dkim_verify_cancel(&in->verify);
	dmarc_lookup_cancel(&in->dmarc_lk);
	gn_timer_free(&in->timer);
}

static void inbound_start(struct inbound *in, struct gn_smtp_session *s);
static void dmarc_start(struct inbound *in);
static void dkim_done(struct gn_dkim_verifier *v, void *data);

static void tap_chunk(struct gn_smtp_session *s, const char *buf, size_t len, void *data)
{
	struct inbound *in = inbound_get(s, true);
	const char *err;
	(void)data;
	if (in == NULL)
		return;
	inbound_start(in, s);
	if (in->dkim_error == NULL && gn_dkim_verifier_update(in->dkim, buf, len, &err) < 0)
		in->dkim_error = err;
	/* The signatures are known at the end of the header section: their
	 * keys are looked up while the body arrives (RFC 6376 6.1.2). */
	if (!in->keys_started && in->dkim_error == NULL && gn_dkim_verifier_count(in->dkim) > 0) {
		in->keys_started = true;
		in->verify = gn_dkim_verify_start(in->dkim, dkim_done, in);
	}
	if (!in->header_done) {
		/* The header ends at the first empty line (RFC 5322 2.1),
		 * looked for in the kept bytes and the new ones as one; only
		 * the header's bytes are kept (not the body's of the chunk
		 * that holds its end: a chunk may be the whole message). */
		size_t before = gn_buf_len(in->header);
		size_t room = INBOUND_MAX_HEADER - before;
		size_t take = len < room ? len : room;
		size_t end = mailauth_header_end(gn_buf_data(in->header), before, buf, take);
		if (end != SIZE_MAX) {
			if (end > before)
				(void)gn_buf_append(in->header, buf, end - before);
			else
				gn_buf_truncate(in->header, end);
			in->header_done = true;
		} else {
			(void)gn_buf_append(in->header, buf, take);
			if (before + take == INBOUND_MAX_HEADER) {
				in->header_done = true;
				in->header_cut = true;
			}
		}
		/* The From field is known: the policy lookup runs while
		 * the body arrives. */
		if (in->header_done && !in->dmarc_started)
			dmarc_start(in);
	}
}

static void tap_tx_end(struct gn_smtp_session *s, void *data)
{
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	struct inbound *in = tx != NULL ? gn_smtp_tx_slot_get(tx, slot) : NULL;
	(void)data;
	if (in == NULL)
		return;
	inbound_stop(in);
	gn_dkim_verifier_free(&in->dkim);
	gn_buf_free(&in->header);
	gn_smtp_tx_slot_set(tx, slot, NULL);
	gn_free(in);
}

/* ---- the message's own Authentication-Results fields ---- */

/* Counts, in one pass over the kept header section, the
 * Authentication-Results fields that name authserv_id (forged, RFC 8601
 * 5) and the From fields; a field's name in any case, with white space
 * before the colon too (RFC 5322 4.5's obsolete syntax, as
 * dmarc_from_domain() reads it). */
static void count_fields(const struct inbound *in, const char *authserv_id,
			 unsigned *forged_r, unsigned *froms_r)
{
	static const char ar[] = "Authentication-Results", from[] = "From";
	const char *h = gn_buf_data(in->header);
	size_t n = gn_buf_len(in->header), i = 0;
	*forged_r = *froms_r = 0;
	while (i < n) {
		size_t start = i;
		/* A field: its first line and its continuation lines. */
		do {
			const char *nl = memchr(h + i, '\n', n - i);
			i = nl != NULL ? (size_t)(nl - h) + 1 : n;
		} while (i < n && (h[i] == ' ' || h[i] == '\t'));
		size_t nlen;
		if (i - start > sizeof(ar) - 1 && strncasecmp(h + start, ar, sizeof(ar) - 1) == 0)
			nlen = sizeof(ar) - 1;
		else if (i - start > sizeof(from) - 1 &&
			 strncasecmp(h + start, from, sizeof(from) - 1) == 0)
			nlen = sizeof(from) - 1;
		else
			continue;
		size_t k = start + nlen;
		while (k < i && (h[k] == ' ' || h[k] == '\t'))
			k++;
		if (k >= i || h[k] != ':')
			continue;
		if (nlen == sizeof(from) - 1)
			(*froms_r)++;
		else if (authres_names(h + k + 1, i - k - 1, authserv_id))
			(*forged_r)++;
	}
}

/* ---- the results ---- */

static const char *spf_method_result(const struct spf_result *r)
{
	/* RFC 8601 2.7.2 names are RFC 7208's. */
	return spf_result_name(r->result);
}

/* DMARC (RFC 7489 11.2, RFC 8601 2.7): after SPF and DKIM, with the
 * published policy and what was done in a comment. */
static void add_dmarc_result(struct inbound *in, struct authres *ar)
{
	const struct dmarc_result *d = &in->dmarc;
	const char *reason = d->result == DMARC_NONE || d->result == DMARC_TEMPERROR ||
		d->result == DMARC_PERMERROR ? d->reason : NULL;
	struct authres_result *r = authres_add(ar, "dmarc", dmarc_result_name(d->result), reason);
	if (r == NULL)
		return;
	if (d->policy != DMARC_POLICY_UNSET)
		r->comment = gn_pool_printf(in->pool, "p=%s dis=%s", dmarc_policy_name(d->policy),
					    dmarc_policy_name(d->disposition != DMARC_POLICY_UNSET ?
							      d->disposition : DMARC_POLICY_NONE));
	authres_prop(r, "header.from", d->header_from);
}

static void write_fields(struct inbound *in)
{
	struct gn_smtp_session *s = in->s;
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	const char *id = gn_smtp_session_hostname(s);
	struct authres ar;
	const struct spf_result *sr = in->spf_result;
	const char *err = NULL;

	authres_init(&ar, in->pool, id);
	struct authres_result *r = authres_add(&ar, "spf", spf_method_result(sr),
					       sr->result == SPF_TEMPERROR ||
					       sr->result == SPF_PERMERROR ? sr->problem : NULL);
	/* RFC 8601 2.7.2: smtp.mailfrom, or smtp.helo for the HELO check. */
	if (strcmp(sr->identity != NULL ? sr->identity : "", "helo") == 0)
		authres_prop(r, "smtp.helo", in->helo);
	else
		authres_prop(r, "smtp.mailfrom", sr->sender);

	size_t n = in->dkim_error == NULL ? gn_dkim_verifier_count(in->dkim) : 0;
	if (in->dkim_error != NULL) {
		/* The header could not be read: no signature was evaluated. */
		(void)authres_add(&ar, "dkim", "permerror", in->dkim_error);
	} else if (n == 0) {
		(void)authres_add(&ar, "dkim", "none", NULL);
	}
	for (size_t i = 0; i < n; i++) {
		const struct gn_dkim_verify_result *v = gn_dkim_verifier_result(in->dkim, i);
		if (v == NULL)
			continue;
		/* RFC 8601 2.7.1 and RFC 6008: one result per signature. */
		r = authres_add(&ar, "dkim", gn_dkim_status_name(v->status), v->reason);
		authres_prop(r, "header.d", v->domain);
		authres_prop(r, "header.i", v->identity);
		authres_prop(r, "header.s", v->selector);
		authres_prop(r, "header.a", v->algorithm);
		authres_prop(r, "header.b", v->header_b);
	}
	add_dmarc_result(in, &ar);
	const struct iprev_result *ir = in->iprev_result;
	if (ir != NULL) {
		/* RFC 8601 2.7.3: policy.iprev is the address, the name that
		 * mapped back in a comment; a reason unless pass. */
		r = authres_add(&ar, "iprev", iprev_status_name(ir->status),
				ir->status != IPREV_PASS ? ir->reason : NULL);
		authres_prop(r, "policy.iprev", ir->ip);
		if (ir->name != NULL)
			authres_prop_comment(r, ir->name);
	}

	/* Both fields in one buffer, added at once. */
	struct gn_buf *b = gn_buf_new(0);
	authres_format_to(&ar, b);
	authres_received_spf_to(b, sr, id, in->ip, in->helo);
	int added = gn_smtp_tx_add_header(tx, gn_buf_data(b), gn_buf_len(b), &err);
	gn_buf_free(&b);
	if (added < 0)
		gn_log(GN_LOG_ERROR, AREA, "event=authres_not_added id=%s error=%s",
		       gn_conn_id(gn_smtp_session_conn(s)), gn_log_quote(0, err));

	if (in->forged > 0)
		gn_log(GN_LOG_WARN, AREA, "event=authres_forged id=%s tx=%s fields=%u",
		       gn_conn_id(gn_smtp_session_conn(s)), gn_smtp_tx_id(tx), in->forged);
	in->dkim_signatures = n;
}

/* What the decision's log line says besides DMARC: the DKIM signatures
 * looked at and iprev (one line a message, dmarc_decide()); made only
 * when that line is written. */
static const char *checked_fields(struct inbound *in)
{
	if (!gn_log_enabled(GN_LOG_INFO, AREA))
		return "";
	const struct iprev_result *ir = in->iprev_result;
	return gn_pool_printf(in->pool, "dkim_signatures=%zu iprev=%s iprev_name=%s iprev_reason=%s",
			      in->dkim_signatures, ir != NULL ? iprev_status_name(ir->status) : "-",
			      gn_log_quote(0, ir != NULL && ir->name != NULL ? ir->name : "-"),
			      gn_log_quote(1, ir != NULL && ir->reason != NULL ? ir->reason : "-"));
}

static bool same_domain(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return false;
	size_t na = strlen(a), nb = strlen(b);
	if (na > 0 && a[na - 1] == '.')
		na--;
	if (nb > 0 && b[nb - 1] == '.')
		nb--;
	return na == nb && strncasecmp(a, b, na) == 0;
}

/* A value the store takes (gannet/store.h: printable ASCII, 255 octets
 * at most), else NULL: a value it would refuse must not fail the
 * delivery. */
static const char *storable(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;
	if (n == 0 || n > 255)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return NULL;
	return s;
}

/* The results kept with each stored copy (gannet/store.h struct
 * gn_store_message_auth, ABI 1.1), for the HTTP API and webhooks: mox's
 * MailFromValidated (the SPF identity passed), MsgFromValidated (DMARC
 * passed: "strict" when a pass is for the From domain itself, "relaxed"
 * for another of its organisational domain), DKIMVerifiedDomains. */
static void keep_results(struct inbound *in)
{
	struct gn_smtp_tx *tx = gn_smtp_session_tx(in->s);
	const struct spf_result *sr = in->spf_result;
	const struct dmarc_result *d = &in->dmarc;
	struct gn_store_message_auth a;
	const char *domains[GN_STORE_MAX_AUTH_DKIM_DOMAINS], *err = NULL;
	size_t n = 0;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.mail_from_validated = sr->result == SPF_PASS;
	a.mail_from_validation = spf_result_name(sr->result);
	a.msg_from_domain = storable(d->header_from);
	a.msg_from_validated = d->result == DMARC_PASS;
	if (d->result == DMARC_PASS)
		a.msg_from_validation =
			(d->spf_aligned && same_domain(sr->domain, d->header_from)) ||
			(d->dkim_aligned && same_domain(d->dkim_domain, d->header_from)) ?
			"strict" : "relaxed";
	else
		a.msg_from_validation = dmarc_result_name(d->result);
	size_t count = in->dkim_error == NULL ? gn_dkim_verifier_count(in->dkim) : 0;
	for (size_t i = 0; i < count && n < GN_STORE_MAX_AUTH_DKIM_DOMAINS; i++) {
		const struct gn_dkim_verify_result *v = gn_dkim_verifier_result(in->dkim, i);
		if (v == NULL || v->status != GN_DKIM_PASS || storable(v->domain) == NULL)
			continue;
		bool seen = false;
		for (size_t j = 0; j < n && !seen; j++)
			seen = same_domain(domains[j], v->domain);
		if (!seen)
			domains[n++] = v->domain;
	}
	a.dkim_domains = domains;
	a.n_dkim_domains = n;
	a.remote_ip = storable(in->ip);
	if (gn_smtp_tx_set_auth(tx, &a, &err) < 0)
		gn_log(GN_LOG_ERROR, AREA, "event=auth_not_kept id=%s error=%s",
		       gn_conn_id(gn_smtp_session_conn(in->s)), gn_log_quote(0, err));
}

/* Whether a domain that passed (SPF's, or a DKIM d=) is on an allow list
 * of the recipient domain's settings: *which_r is that domain. */
static bool sender_allowed(const struct inbound *in, const struct policy_domain *p,
			   const char **which_r)
{
	const struct spf_result *sr = in->spf_result;
	if (sr->result == SPF_PASS && policy_allowed(p, sr->domain)) {
		*which_r = sr->domain;
		return true;
	}
	size_t n = in->dkim_error == NULL ? gn_dkim_verifier_count(in->dkim) : 0;
	for (size_t i = 0; i < n; i++) {
		const struct gn_dkim_verify_result *v = gn_dkim_verifier_result(in->dkim, i);
		if (v != NULL && v->status == GN_DKIM_PASS && policy_allowed(p, v->domain)) {
			*which_r = v->domain;
			return true;
		}
	}
	return false;
}

/* What the settings of one recipient domain say (policy.h). */
static int rcpt_action(const struct inbound *in, const struct policy_domain *p,
		       const char **reason_r)
{
	const struct dmarc_result *d = &in->dmarc;
	const char *which = NULL;
	bool dmarc_fail = d->result == DMARC_FAIL && (d->disposition == DMARC_POLICY_REJECT ||
						       d->disposition == DMARC_POLICY_QUARANTINE);
	bool spf_fail = in->spf_result->result == SPF_FAIL;
	if (!dmarc_fail && !spf_fail)
		return POLICY_ACCEPT;
	if (sender_allowed(in, p, &which)) {
		*reason_r = gn_pool_printf(in->pool, "allowed:%s", which);
		return POLICY_ACCEPT;
	}
	if (dmarc_fail) {
		*reason_r = "dmarc";
		return d->disposition == DMARC_POLICY_REJECT ? p->dmarc_reject : p->dmarc_quarantine;
	}
	*reason_r = "spf";
	return p->spf_fail;
}

/* The decision (RFC 7489 6.6.4's disposition after pct, and SPF's fail,
 * through the recipient domains' settings, policy.h): the strictest
 * recipient's action applies to the transaction (one message, one
 * answer).  reject refuses the message at the end of data, junk sends it
 * to the recipients' Junk, accept delivers; each decision is logged. */
static enum gn_hook_result dmarc_decide(struct inbound *in)
{
	struct gn_smtp_session *s = in->s;
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	const struct dmarc_result *d = &in->dmarc;
	enum gn_hook_result res = GN_HOOK_CONTINUE;
	const char *why = "-", *err = NULL, *rdomain = "-";
	int action = POLICY_ACCEPT;
	size_t n = gn_smtp_tx_rcpt_count(tx);

	/* RFC 5322 3.6: one From field.  With two, which one is the author
	 * (DMARC's RFC5322.From, RFC 7489 6.6.1) is a guess, and DKIM signs
	 * the last one (RFC 6376 5.4.2) where readers show the first: a
	 * forger's trick.  RFC 7489 6.6.1 lets us reject, as mox does;
	 * no setting and no allow list changes that. */
	unsigned froms = in->header_cut ? 0 : in->froms;
	if (froms > 1) {
		if (in->call != NULL)
			gn_hook_call_reply(in->call, 550, "5.7.1", "The message has %u From fields, "
					   "RFC 5322 allows one", froms);
		const char *checked = checked_fields(in);
		gn_log(GN_LOG_INFO, AREA, "event=dmarc id=%s tx=%s result=%s action=reject "
		       "why=from_fields from_fields=%u spf=%s %s", gn_conn_id(gn_smtp_session_conn(s)),
		       gn_smtp_tx_id(tx), dmarc_result_name(d->result), froms,
		       spf_result_name(in->spf_result->result), checked);
		return GN_HOOK_REJECT;
	}
	for (size_t i = 0; i < n; i++) {
		const struct gn_addr *a = gn_smtp_rcpt_addr(gn_smtp_tx_rcpt(tx, i));
		const char *r = NULL;
		int act = rcpt_action(in, policy_for(a != NULL ? a->domain : NULL), &r);
		if (i == 0 || act > action) {
			action = act;
			why = r;
			rdomain = a != NULL && a->domain[0] != '\0' ? a->domain : "-";
		}
	}
	if (n == 0)
		action = rcpt_action(in, policy_for(NULL), &why);
	if (why == NULL)
		why = "-";
	if (action == POLICY_REJECT) {
		if (in->call != NULL) {
			if (strcmp(why, "dmarc") == 0)
				gn_hook_call_reply(in->call, 550, "5.7.26", "DMARC policy of %s: rejected",
						   d->header_from);
			else	/* RFC 7372 3.2: SPF validation failed */
				gn_hook_call_reply(in->call, 550, "5.7.23", "SPF of %s: fail, rejected",
						   in->spf_result->domain != NULL ?
						   in->spf_result->domain : "the sender");
		}
		res = GN_HOOK_REJECT;
	} else if (action == POLICY_JUNK) {
		if (gn_smtp_tx_set_mailbox(tx, INBOUND_QUARANTINE_MAILBOX, &err) < 0) {
			/* Cannot happen with our constant; say so and deliver. */
			gn_log(GN_LOG_ERROR, AREA, "event=dmarc_junk_failed id=%s error=%s",
			       gn_conn_id(gn_smtp_session_conn(s)), gn_log_quote(0, err));
			action = POLICY_ACCEPT;
		}
	}
	const char *checked = checked_fields(in);
	gn_log(GN_LOG_INFO, AREA,
	       "event=dmarc id=%s tx=%s result=%s header_from=%s record=%s policy=%s "
	       "disposition=%s sampled_out=%s spf_aligned=%s dkim_aligned=%s spf=%s "
	       "rcpt_domain=%s action=%s why=%s reason=%s %s",
	       gn_conn_id(gn_smtp_session_conn(s)), gn_smtp_tx_id(tx), dmarc_result_name(d->result),
	       gn_log_quote(0, d->header_from != NULL ? d->header_from : "-"),
	       gn_log_quote(1, d->record_domain != NULL ? d->record_domain : "-"),
	       d->policy != DMARC_POLICY_UNSET ? dmarc_policy_name(d->policy) : "-",
	       dmarc_policy_name(d->disposition), d->sampled_out ? "yes" : "no",
	       d->spf_aligned ? "yes" : "no", d->dkim_aligned ? "yes" : "no",
	       spf_result_name(in->spf_result->result), rdomain,
	       action == POLICY_REJECT ? "reject" : action == POLICY_JUNK ? "junk" : "deliver",
	       gn_log_quote(2, why), gn_log_quote(3, d->reason != NULL ? d->reason : "-"), checked);
	return res;
}

static void dmarc_set_error(struct inbound *in, int result, const char *header_from,
			    const char *reason)
{
	memset(&in->dmarc, 0, sizeof(in->dmarc));
	in->dmarc.result = result;
	in->dmarc.header_from = header_from;
	in->dmarc.disposition = DMARC_POLICY_NONE;
	in->dmarc.reason = reason;
	in->dmarc_done = true;
}

static void dmarc_done_cb(const struct dmarc_lookup_result *lk, void *data);
static void dmarc_apply(struct inbound *in);

/* The policy lookup for the From domain: once the header section is
 * complete (tap_chunk()), else when SPF and DKIM are done (step()). */
static void dmarc_start(struct inbound *in)
{
	const char *why = NULL, *domain = NULL;
	in->dmarc_started = true;
	if (in->header_cut) {
		dmarc_set_error(in, DMARC_PERMERROR, NULL,
				"the header section is too long to find its From field");
		return;
	}
	domain = dmarc_from_domain(in->pool, gn_buf_data(in->header), gn_buf_len(in->header), &why);
	if (domain == NULL) {
		dmarc_set_error(in, DMARC_NONE, NULL, why);
		return;
	}
	if (mailauth_psl == NULL) {
		dmarc_set_error(in, DMARC_TEMPERROR, domain, "no public suffix list");
		return;
	}
	in->dmarc_lk = dmarc_lookup(in->pool, mailauth_psl, domain, dmarc_done_cb, NULL, in);
	if (in->dmarc_lk == NULL)
		dmarc_set_error(in, DMARC_TEMPERROR, domain, "the policy lookup did not start");
}

/* Moves on when what runs is done: SPF and DKIM, then DMARC, then the
 * fields and the hook's answer. */
static void step(struct inbound *in)
{
	if (in->finished || in->spf_result == NULL || !in->dkim_done)
		return;
	if (!in->dmarc_started)
		dmarc_start(in);
	if (!in->dmarc_done && in->dmarc_policy != NULL)
		dmarc_apply(in);
	if (!in->dmarc_done || !in->iprev_done)
		return;
	in->finished = true;
	inbound_stop(in);
	count_fields(in, gn_smtp_session_hostname(in->s), &in->forged, &in->froms);
	write_fields(in);
	keep_results(in);
	in->final = dmarc_decide(in);
	if (in->pending && in->call != NULL) {
		struct gn_hook_call *call = in->call;
		in->call = NULL;
		gn_hook_complete(call, in->final);
	}
}

static void dmarc_done_cb(const struct dmarc_lookup_result *lk, void *data)
{
	struct inbound *in = data;
	in->dmarc_lk = NULL;
	in->dmarc_policy = lk;
	step(in);
}

/* The policy has come, SPF and DKIM are done: the evaluation. */
static void dmarc_apply(struct inbound *in)
{
	const struct dmarc_lookup_result *lk = in->dmarc_policy;
	struct dmarc_dkim *dk = NULL;
	size_t n = 0;
	if (in->dkim_error == NULL && gn_dkim_verifier_count(in->dkim) > 0) {
		size_t count = gn_dkim_verifier_count(in->dkim);
		dk = gn_pool_alloc(in->pool, count * sizeof(*dk));
		for (size_t i = 0; i < count; i++) {
			const struct gn_dkim_verify_result *v = gn_dkim_verifier_result(in->dkim, i);
			if (v == NULL)
				continue;
			dk[n].domain = v->domain;
			dk[n].status = v->status;
			n++;
		}
	}
	const struct spf_result *sr = in->spf_result;
	struct dmarc_input din = {
		.from_domain = lk->domain,
		.spf_result = sr->result,
		.spf_domain = sr->domain,
		.dkim = dk,
		.n_dkim = n,
		.sample = -1,
	};
	dmarc_evaluate(in->pool, mailauth_psl, &din, lk, &in->dmarc);
	in->dmarc_done = true;
}

static void spf_done(const struct spf_result *result, void *data)
{
	struct inbound *in = data;
	in->spf = NULL;
	in->spf_result = result;
	step(in);
}

static void iprev_done(const struct iprev_result *result, void *data)
{
	struct inbound *in = data;
	in->iprev = NULL;
	in->iprev_result = result;
	in->iprev_done = true;
	step(in);
}

/* iprev's result when it has none of its own: a failure to start, the
 * deadline. */
static void iprev_set_error(struct inbound *in, const char *reason)
{
	struct iprev_result *r = gn_pool_alloc(in->pool, sizeof(*r));
	r->status = IPREV_TEMPERROR;
	r->ip = in->ip;
	r->reason = reason;
	in->iprev_result = r;
	in->iprev_done = true;
}

/* The key lookups are done; the verifier has the results once it has
 * the whole message too (the lookups may start before its end). */
static void dkim_done(struct gn_dkim_verifier *v, void *data)
{
	struct inbound *in = data;
	(void)v;
	in->verify = NULL;
	in->keys_in = true;
	if (!in->data_ended)
		return;
	in->dkim_done = true;
	step(in);
}

/* Past mailauth.inbound_timeout: what has not come is temperror, DMARC
 * too when it has not been decided (the mail is accepted). */
static void timeout_cb(void *data)
{
	struct inbound *in = data;
	gn_timer_free(&in->timer);
	if (in->spf_result == NULL) {
		spf_cancel(&in->spf);
		struct spf_result *r = gn_pool_alloc(in->pool, sizeof(*r));
		memset(r, 0, sizeof(*r));
		r->result = SPF_TEMPERROR;
		r->problem = "timeout";
		r->identity = gn_smtp_tx_from(gn_smtp_session_tx(in->s)) != NULL ? "mailfrom" : "helo";
		const struct gn_addr *from = gn_smtp_tx_from(gn_smtp_session_tx(in->s));
		r->sender = from != NULL ? gn_addr_to_string(in->pool, from) : NULL;
		r->domain = from != NULL ? from->domain : in->helo;
		in->spf_result = r;
	}
	if (!in->iprev_done) {
		iprev_cancel(&in->iprev);
		iprev_set_error(in, "timeout");
	}
	if (!in->dkim_done) {
		/* The signatures without their key keep the verifier's
		 * temperror. */
		gn_dkim_verify_cancel(&in->verify);
		in->dkim_done = true;
	}
	if (!in->dmarc_done && in->dmarc_policy == NULL) {
		dmarc_lookup_cancel(&in->dmarc_lk);
		in->dmarc_started = true;
		dmarc_set_error(in, DMARC_TEMPERROR, NULL, "timeout");
		/* The From domain, for header.from, when there is one. */
		const char *why;
		if (!in->header_cut)
			in->dmarc.header_from = dmarc_from_domain(in->pool, gn_buf_data(in->header),
								  gn_buf_len(in->header), &why);
	}
	gn_log(GN_LOG_INFO, AREA, "event=inbound_timeout id=%s",
	       gn_conn_id(gn_smtp_session_conn(in->s)));
	step(in);
}

static void hook_cancel(struct gn_hook_call *call, void *data)
{
	struct inbound *in = data;
	(void)call;
	inbound_stop(in);
	in->call = NULL;
	in->finished = true;
}

/* The client's address for SPF; false when it is not one (a Unix socket). */
static bool client_ip(const char *text, struct spf_request *req)
{
	struct in6_addr a6;
	if (text == NULL)
		return false;
	if (inet_pton(AF_INET, text, req->ip) == 1) {
		req->family = 4;
		return true;
	}
	if (inet_pton(AF_INET6, text, &a6) != 1)
		return false;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		req->family = 4;
		memcpy(req->ip, a6.s6_addr + 12, 4);
	} else {
		req->family = 6;
		memcpy(req->ip, a6.s6_addr, 16);
	}
	return true;
}

/* SPF and iprev need only the client's address, HELO and MAIL FROM, all
 * known once the message starts: they start at its first chunk (or at the
 * end of data when no chunk came through the tap) and run while the rest
 * of the message arrives.  Their callbacks only record the result until
 * the hook has run (step() waits for the DKIM verifier, finished by the
 * hook); a transaction that ends before (a reset, a closed connection, a
 * refused message) cancels them in tap_tx_end(). */
static void inbound_start(struct inbound *in, struct gn_smtp_session *s)
{
	struct spf_request req;
	if (in->started)
		return;
	in->started = true;
	const struct gn_addr *from = gn_smtp_tx_from(gn_smtp_session_tx(s));
	in->helo = gn_smtp_session_helo(s);
	in->ip = gn_pool_strdup(in->pool, gn_conn_remote_ip(gn_smtp_session_conn(s)) ?
				gn_conn_remote_ip(gn_smtp_session_conn(s)) : "");

	memset(&req, 0, sizeof(req));
	if (!client_ip(in->ip, &req)) {
		struct spf_result *r = gn_pool_alloc(in->pool, sizeof(*r));
		memset(r, 0, sizeof(*r));
		r->result = SPF_NONE;
		r->identity = from != NULL ? "mailfrom" : "helo";
		r->sender = from != NULL ? gn_addr_to_string(in->pool, from) : NULL;
		r->problem = "no client address";
		in->spf_result = r;
		/* iprev needs an address: no result at all. */
		in->iprev_done = true;
	} else {
		req.sender = from != NULL ? gn_addr_to_string(in->pool, from) : NULL;
		req.helo = in->helo;
		req.receiver = gn_smtp_session_hostname(s);
		/* RFC 7208 2.4: with MAIL FROM <>, the HELO identity. */
		req.check_helo = from == NULL;
		req.timeout_ms = mailauth_settings.spf_timeout_ms;
		in->spf = spf_check(in->pool, &req, spf_done, in);
		/* iprev (RFC 8601 3.2) in parallel, under the same deadline;
		 * loopback and private addresses too. */
		in->iprev = iprev_check(in->pool, req.family, req.ip, in->ip, iprev_done, in);
		if (in->iprev == NULL)
			iprev_set_error(in, "the lookup did not start");
	}
}

static enum gn_hook_result inbound_hook(struct gn_hook_call *call, void *data)
{
	struct gn_smtp_session *s = gn_hook_call_context(call);
	struct gn_smtp_tx *tx;
	struct inbound *in;
	const char *err;
	(void)data;

	/* Only the inbound MX: the point's context is its session. */
	if (s == NULL || (tx = gn_smtp_session_tx(s)) == NULL ||
	    (in = inbound_get(s, true)) == NULL)
		return GN_HOOK_CONTINUE;
	inbound_start(in, s);

	if (in->dkim_error == NULL && gn_dkim_verifier_finish(in->dkim, &err) < 0)
		in->dkim_error = err;
	in->data_ended = true;
	in->call = call;
	gn_hook_call_on_cancel(call, hook_cancel, in);

	if (in->dkim_error != NULL) {
		gn_dkim_verify_cancel(&in->verify);
		in->dkim_done = true;
	} else if (in->keys_in) {
		/* The keys came while the body arrived. */
		in->dkim_done = true;
	} else if (!in->keys_started) {
		/* No header end seen before (a message without a body). */
		in->keys_started = true;
		in->verify = gn_dkim_verify_start(in->dkim, dkim_done, in);
	}
	/* Nothing to wait for (a client without an address, a header
	 * that cannot be read, no From to look up): complete now. */
	step(in);
	if (in->finished) {
		in->call = NULL;
		return in->final;
	}
	in->pending = true;
	in->timer = gn_timer_new(mailauth_settings.inbound_timeout_ms, false, timeout_cb, in);
	return GN_HOOK_PENDING;
}

int mailauth_inbound_register(struct gn_module_ctx *ctx, const char **error_r)
{
	const struct gn_smtp_tap tap = {
		.size = sizeof(tap),
		.server = "smtp",
		.chunk = tap_chunk,
		.tx_end = tap_tx_end,
	};
	slot = gn_module_slot(ctx);
	if (gn_smtp_tap_register(ctx, &tap, error_r) < 0)
		return -1;
	return gn_hook_register(ctx, GN_SMTP_DATA_END, 100, 0, inbound_hook, NULL, error_r);
}
