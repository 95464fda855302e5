/*
 * core/queue/transport-smtp.c: the queue's own transport (gannet/queue.h):
 * SMTP to the recipients' mail servers, the one every runner uses unless
 * a module sets another.
 *
 * One delivery is the recipients of one domain of one message:
 *
 *   MX        gn_dns_lookup(domain, MX) (RFC 5321 5.1): a null MX (".",
 *             RFC 7505) fails them for good (556 5.1.10); NXDOMAIN, or a
 *             name that is no DNS name, for good (550 5.1.2); NODATA is the
 *             implicit MX, the domain itself; any other outcome (SERVFAIL,
 *             timeout, no resolver) is temporary: nothing is ever dropped
 *             because the DNS did not answer.  Hosts by preference, in
 *             random order among equal ones.  An address literal
 *             ("[192.0.2.1]") is its own and only host.
 *   address   each host's A, then AAAA records, in that order.
 *   TLSA      DANE (RFC 7672), only when the MX answer (or its NODATA,
 *             for the implicit MX) and both address answers of the host
 *             validated (secure): TLSA _PORT._tcp.HOST; when the host
 *             name is an alias (the address answers followed CNAMEs,
 *             securely), _PORT._tcp.EXPANDED first and, when that has no
 *             records (or only insecure ones), _PORT._tcp.HOST (RFC 7672
 *             2.2.2).  DANE-TA's reference identifiers: the host name,
 *             its expansion and the next-hop domain (RFC 7672 3.2.2).
 *             Secure records
 *             with a usable one (DANE-TA 2, DANE-EE 3; core/dns/dane.c):
 *             TLS required and the chain must match (client handler
 *             tls_check, before EHLO); secure records none usable (PKIX
 *             usages, RFC 7672 3.1.3): TLS required, not authenticated;
 *             insecure records or none (NODATA, NXDOMAIN): opportunistic
 *             as below.  TLSA bogus or not answered (SERVFAIL, timeout):
 *             the host is not used (RFC 7672 2.1.1), and under a secure
 *             MX answer neither is a host whose A or AAAA lookup fails
 *             so.  Each such failure, and no STARTTLS, a failed handshake
 *             (no plain-text fallback) or no match, fails only that host
 *             (4.7.5, temporary): the next host then.
 *   SMTP      gn_smtp_client over the host's addresses (it falls through
 *             them itself on a connection failure or a 4xx/5xx greeting),
 *             STARTTLS as the host's policy says; without DANE
 *             opportunistic (the certificate is checked against the host
 *             name but not required to verify; MTA-STS will say when it
 *             must); a REQUIRETLS message requires TLS, verified (PKIX, or
 *             DANE), and REQUIRETLS offered: requiretls.c; when no
 *             address of a host works, the next host.  Then one
 *             transaction with every recipient;
 *             each recipient's outcome, with the host and IP that gave it,
 *             goes to gn_queue_delivery_report().  SMTPUTF8 is asked for
 *             when the message needs it, and a server that does not offer
 *             it fails the message for good (554 5.6.7, the client's
 *             refusal, RFC 6531 3.2).  BODY=8BITMIME is declared whenever
 *             the server offers 8BITMIME (the queue does not record whether
 *             the body is 8-bit; declaring it for 7-bit data is harmless,
 *             RFC 6152 2); to a server without it the message goes as it
 *             is.  With each outcome the transport security goes to
 *             gn_queue_delivery_report_tls(): TLS version and cipher,
 *             policy "dane", "dane-unauthenticated", "opportunistic" or
 *             "none" (plain text, also after a failed handshake); for a
 *             message that requires TLS "requiretls" (PKIX) or
 *             "dane+requiretls"; under MTA-STS enforce (a host without
 *             DANE) "mta-sts" and "mta-sts+requiretls".
 *
 * Reuse.  The queue hands over one message a delivery, so a batch to
 * one server is many deliveries; after a transaction the connection, when
 * still usable, is parked in this process's cache (keyed by the server's
 * IP, port, the TLS mode and policy it was opened with and, for DANE, the
 * host name its chain matched, with the next-hop domain for DANE-TA)
 * instead of QUIT, and the
 * next delivery whose host resolves to that IP takes it (RSET, then MAIL)
 * before connecting anew.  Bounded: at most queue.smtp_reuse_max parked
 * in all (0: no reuse), queue.smtp_reuse_per_host to one IP and port,
 * each for queue.smtp_reuse_idle (then QUIT: a server's own idle timeout
 * is 5 min, RFC 5321 4.5.3.2.7, many close sooner) and for at most
 * queue.smtp_reuse_transactions transactions.  A parked connection is
 * what a new one would be: opened with the same TLS mode and policy
 * (opportunistic STARTTLS, so TLS when the server offered it; or DANE,
 * verified for the same host: a connection opened under a weaker policy
 * never serves a delivery that needs DANE); a mode that requires TLS
 * never parks a plaintext one.  A parked connection the server has
 * closed meanwhile is dropped silently; one that fails before MAIL is
 * accepted (lost, timed out, or 421) counts for nothing: the delivery
 * goes on with a new connection, no attempt recorded for it.  Whatever
 * is parked is dropped when the process ends (queue_smtp_shutdown()).
 *
 * MTA-STS (RFC 8461, mtasts.c) before the MX lookup: the domain's
 * policy, fetched or cached.  enforce: MX hosts that match no mx pattern
 * of the policy are not used, and STARTTLS is required with a
 * certificate that verifies (PKIX) for the MX host's name; a host that
 * fails that is a temporary failure of that host (the next one, then
 * the message stays queued); a parked connection is taken only when its
 * certificate verified for the same MX host name.  testing: delivered as
 * without a policy, with a log line for each thing enforce would have
 * refused.  none, or no policy: as above.  DANE comes first (RFC 8461 2):
 * a host with secure TLSA records is verified by DANE, not by PKIX, also
 * under an enforce policy (whose mx patterns still choose the hosts).
 * Attempts record policy "mta-sts" for a host that enforce verified.
 * The relay and address literals have no policy.
 *
 * Settings (core config, queue { ... }): smtp_port (25; tests and
 * localserve use another), relay (an IP address: every message goes
 * there instead of MX hosts; localserve's own SMTP listener), and the
 * smtp_reuse_* above.
 */
#include "queue/internal.h"
#include "dns/internal.h"

#include <arpa/inet.h>
#include <string.h>
#include <gnutls/crypto.h>
#include <gannet/dns.h>
#include <gannet/loop.h>
#include <gannet/smtp.h>

/* MX hosts tried in one attempt, and addresses a host (RFC 5321 5.1 asks
 * for a configurable limit; Postfix tries 5 hosts and 10 addresses). */
#define TX_MAX_HOSTS 10
#define TX_MAX_ADDRS 10
#define TX_CHUNK (64 * 1024)

struct tx_host {
	const char *name;
	unsigned pref;
};

struct tx;

/* The transport security of a host (RFC 7672 2.2, 3.1.3). */
enum tx_policy {
	POL_UNKNOWN = -1,		/* not decided yet (no report) */
	POL_OPPORTUNISTIC = 0,		/* STARTTLS when offered, not verified */
	POL_DANE,			/* TLS required, the chain must match a TLSA record */
	POL_DANE_UNAUTH,		/* secure TLSA records, none usable: TLS required */
};

/* A connection: the handler's data, so that it can move from one
 * delivery to the next.  Parked (in reuse_list, t NULL) between them. */
struct tx_conn {
	struct gn_smtp_client *client;
	struct tx *t;			/* the delivery using it, or NULL */
	enum gn_smtp_client_tls mode;	/* the TLS mode it was opened with */
	enum tx_policy policy;		/* ... and the policy */
	/* POL_DANE: what its chain matched for: the host name (DANE-EE),
	 * or the host name, a space and the next-hop domain (DANE-TA: the
	 * leaf may name only the domain, RFC 7672 3.2.2). */
	char *dane_name;
	char *verified_name;		/* the host name its certificate verified
					 * for (PKIX: MTA-STS enforce), or NULL */
	char *ip;			/* while in reuse_list */
	unsigned port;
	unsigned transactions;
	bool parked;			/* else in reuse_list: closing (QUIT) */
	struct gn_timer *idle;
	struct tx_conn *prev, *next;
};

/* Parked and closing connections of this process; how many parked. */
static struct tx_conn *reuse_list;
static unsigned reuse_parked;

struct tx {
	struct gn_pool *pool;
	struct gn_queue_delivery *qd;
	const char *domain;
	struct tx_host *hosts;
	size_t n_hosts, host;
	bool implicit;			/* no MX: the domain itself (RFC 5321 5.1) */
	bool literal;			/* an address literal: hosts[0] is the IP */
	struct gn_dns_query *query;
	int a_status;			/* the A lookup's, while AAAA runs */
	int a_security;
	bool mx_secure;			/* the MX answer (or its NODATA) validated */
	enum tx_policy policy;		/* the current host's */
	struct gn_dns_tlsa *tlsa;	/* the current host's secure TLSA records */
	size_t n_tlsa;
	/* The current host's name after CNAMEs (its address answers'), or
	 * NULL; and the name its TLSA records are looked up under now:
	 * that one first, then the host's own (RFC 7672 2.2.2). */
	const char *canonical, *tlsa_base;
	const char **addrs;
	size_t n_addrs;
	struct tx_conn *conn;
	bool ready;			/* the client got past EHLO */
	bool reused;			/* conn came from the cache */
	bool stale;			/* ... and failed before MAIL was accepted */
	bool no_reuse;			/* a fresh connection after a stale one */
	struct gn_store_body *body;
	uint64_t offset;
	char *buf;			/* buf_len: TX_CHUNK, or less for a smaller body */
	size_t buf_len;
	size_t *sent_idx;		/* the transaction's recipients: queue index */
	bool *reported;
	struct gn_timer *finish;
	unsigned rt_refused;		/* hosts refused for REQUIRETLS (requiretls.c) */
	/* The last host's failure, for the recipients when no host worked. */
	int fail_code;
	const char *fail_enh, *fail_text, *fail_host, *fail_ip;
	enum tx_policy fail_policy;
	/* The session's transport security, from ready on (pool copies:
	 * the connection may be gone when the last outcome is reported). */
	const char *tls_version, *tls_cipher, *tls_policy;
	/* MTA-STS: the lookup under way, the policy that applies (a copy),
	 * and its mode. */
	struct queue_mtasts_lookup *mtasts;
	struct queue_mtasts_policy mtasts_policy;
	bool mtasts_have;
	const char *mtasts_mode;
};

static bool mtasts_enforce(const struct tx *t)
{
	return t->mtasts_have && t->mtasts_policy.mode == QUEUE_MTASTS_ENFORCE;
}

static bool mtasts_testing(const struct tx *t)
{
	return t->mtasts_have && t->mtasts_policy.mode == QUEUE_MTASTS_TESTING;
}

/* Whether MTA-STS enforce verifies the current host: an enforce policy
 * and no DANE for the host (RFC 8461 2: DANE first). */
static bool mtasts_verifies(const struct tx *t)
{
	return mtasts_enforce(t) && !t->literal && t->policy == POL_OPPORTUNISTIC;
}

static void next_host(struct tx *t);

static unsigned smtp_port(void)
{
	return core_conf != NULL && core_conf->queue_smtp_port > 0 ? core_conf->queue_smtp_port : 25;
}

/* ---- the connection cache ---- */

static void reuse_unlink(struct tx_conn *tc)
{
	if (tc->prev != NULL)
		tc->prev->next = tc->next;
	else if (reuse_list == tc)
		reuse_list = tc->next;
	if (tc->next != NULL)
		tc->next->prev = tc->prev;
	tc->prev = tc->next = NULL;
	if (tc->parked)
		reuse_parked--;
	tc->parked = false;
	gn_timer_free(&tc->idle);
}

static void conn_free(struct tx_conn **tcp)
{
	struct tx_conn *tc = *tcp;
	if (tc == NULL)
		return;
	*tcp = NULL;
	reuse_unlink(tc);
	gn_smtp_client_free(&tc->client);
	gn_free(tc->ip);
	gn_free(tc->dane_name);
	gn_free(tc->verified_name);
	gn_free(tc);
}

static void idle_cb(void *data)
{
	struct tx_conn *tc = data;
	gn_timer_free(&tc->idle);
	tc->parked = false;	/* closing: stays listed until closed() */
	reuse_parked--;
	gn_log(GN_LOG_DEBUG, "core", "event=queue_smtp_reuse_idle_close ip=%s port=%u transactions=%u",
	       tc->ip, tc->port, tc->transactions);
	gn_smtp_client_quit(tc->client);
}

/* After a transaction: parks tc (true) when reuse is on, the connection
 * can take another message and there is room; else the caller QUITs.
 * verified_name: the host name the delivery verified the certificate for
 * by PKIX (MTA-STS enforce), or NULL. */
static bool reuse_park(struct tx_conn *tc, const char *verified_name)
{
	const struct core_conf *cf = core_conf;
	const char *ip = gn_smtp_client_remote_ip(tc->client);
	unsigned port = gn_smtp_client_remote_port(tc->client), same = 0;
	if (cf == NULL || cf->queue_reuse_max == 0 || ip == NULL || !gn_smtp_client_usable(tc->client) ||
	    tc->transactions >= cf->queue_reuse_transactions || reuse_parked >= cf->queue_reuse_max)
		return false;
	/* Never keep what a new connection in this mode would refuse. */
	if (tc->mode == GN_SMTP_TLS_REQUIRE && !gn_smtp_client_is_tls(tc->client))
		return false;
	for (const struct tx_conn *e = reuse_list; e != NULL; e = e->next)
		if (e->parked && e->port == port && strcmp(e->ip, ip) == 0)
			same++;
	if (same >= cf->queue_reuse_per_host)
		return false;
	tc->t = NULL;
	gn_free(tc->ip);
	tc->ip = gn_strdup(ip);
	gn_free(tc->verified_name);
	tc->verified_name = verified_name != NULL && gn_smtp_client_tls_verified(tc->client)
			    ? gn_strdup(verified_name) : NULL;
	tc->port = port;
	tc->parked = true;
	reuse_parked++;
	tc->next = reuse_list;
	if (reuse_list != NULL)
		reuse_list->prev = tc;
	reuse_list = tc;
	tc->idle = gn_timer_new((unsigned long)cf->queue_reuse_idle_ms, false, idle_cb, tc);
	gn_log(GN_LOG_DEBUG, "core", "event=queue_smtp_reuse_park ip=%s port=%u tls=%s transactions=%u "
	       "parked=%u", tc->ip, tc->port, gn_smtp_client_is_tls(tc->client) ? "yes" : "no",
	       tc->transactions, reuse_parked);
	return true;
}

/* A parked connection to one of the addresses (in their order), opened
 * in mode under policy (for DANE: verified for host) and still usable,
 * and when verified_for is not NULL one whose certificate verified (PKIX)
 * for that host name; NULL when none.  One the server closed meanwhile
 * is dropped on the way. */
static struct tx_conn *reuse_take(const char *const *addrs, size_t n_addrs, unsigned port,
				  enum gn_smtp_client_tls mode, enum tx_policy policy, const char *host,
				  const char *domain, const char *verified_for)
{
	size_t hlen = strlen(host);
	for (size_t i = 0; i < n_addrs && reuse_parked > 0; i++) {
		struct tx_conn *tc = reuse_list, *next;
		for (; tc != NULL; tc = next) {
			next = tc->next;
			if (!tc->parked || tc->port != port || tc->mode != mode || strcmp(tc->ip, addrs[i]) != 0)
				continue;
			/* A connection is only as good as the policy it was
			 * opened under: a DANE delivery takes only one whose
			 * chain matched this host's TLSA records. */
			if (tc->policy != policy)
				continue;
			if (policy == POL_DANE &&
			    (tc->dane_name == NULL || strncmp(tc->dane_name, host, hlen) != 0 ||
			     (tc->dane_name[hlen] != '\0' &&
			      (tc->dane_name[hlen] != ' ' || strcmp(tc->dane_name + hlen + 1, domain) != 0))))
				continue;
			if (verified_for != NULL &&
			    (tc->verified_name == NULL || strcasecmp(tc->verified_name, verified_for) != 0))
				continue;
			reuse_unlink(tc);
			if (!gn_smtp_client_usable(tc->client)) {
				gn_log(GN_LOG_DEBUG, "core", "event=queue_smtp_reuse_drop ip=%s port=%u "
				       "reason=unusable", tc->ip, tc->port);
				conn_free(&tc);
				continue;
			}
			return tc;
		}
	}
	return NULL;
}

void queue_smtp_shutdown(void)
{
	while (reuse_list != NULL) {
		struct tx_conn *tc = reuse_list;
		conn_free(&tc);
	}
}

static void finish_cb(void *data)
{
	struct tx *t = data;
	gn_timer_free(&t->finish);
	gn_queue_delivery_done(t->qd);
	gn_pool_free(&t->pool);
	gn_free(t);
}

/* The delivery is over.  Recording it may wait on the loop (the DSNs go
 * through the delivery pipeline), so it happens from a timer of its own,
 * never from inside a resolver's or the client's callback. */
static void finish(struct tx *t)
{
	gn_dns_cancel(&t->query);
	queue_mtasts_cancel(&t->mtasts);
	conn_free(&t->conn);
	gn_store_body_free(&t->body);
	if (t->finish == NULL)
		t->finish = gn_timer_new(0, false, finish_cb, t);
}

static const char *policy_name(enum tx_policy policy, bool tls)
{
	switch (policy) {
	case POL_DANE:
		return "dane";
	case POL_DANE_UNAUTH:
		return "dane-unauthenticated";
	case POL_OPPORTUNISTIC:
		/* A plain-text session (no STARTTLS, or the fallback after a
		 * failed handshake) had no transport security. */
		return tls ? "opportunistic" : "none";
	default:
		return NULL;
	}
}

/* The policy recorded for t's attempt: the host's, and "requiretls" for a
 * message that requires TLS (RFC 8689; verified by PKIX: "requiretls",
 * by DANE: "dane+requiretls"). */
static const char *attempt_policy(const struct tx *t, enum tx_policy policy, bool tls)
{
	/* MTA-STS enforce verified a host without DANE (mtasts_verifies()). */
	bool sts = mtasts_enforce(t) && !t->literal && policy == POL_OPPORTUNISTIC;
	const char *name = sts ? "mta-sts" : policy_name(policy, tls);
	if (!queue_requiretls(t->qd))
		return name;
	return policy == POL_DANE ? "dane+requiretls" : sts ? "mta-sts+requiretls" : "requiretls";
}

/* The outcome with the transport security it was had under: the
 * connection's when there is one, else the policy of the host whose
 * failure it is. */
static void report(struct tx *t, size_t i, int code, const char *enh, const char *text,
		   const char *host, const char *ip)
{
	t->reported[i] = true;
	gn_queue_delivery_report(t->qd, i, code, enh, text, host, ip);
	if (t->ready && t->tls_policy != NULL) {
		gn_queue_delivery_report_tls(t->qd, i, t->tls_version, t->tls_cipher, t->tls_policy);
	} else if (t->fail_policy != POL_UNKNOWN) {
		gn_queue_delivery_report_tls(t->qd, i, NULL, NULL, attempt_policy(t, t->fail_policy, false));
	}
}

/* Every recipient without an outcome gets this one, and the delivery
 * ends. */
static void fail_all(struct tx *t, int code, const char *enh, const char *text, const char *host,
		     const char *ip)
{
	size_t n = gn_queue_delivery_recipient_count(t->qd), k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!t->reported[i]) {
			report(t, i, code, enh, text, host, ip);
			k++;
		}
	}
	if (k > 0)
		gn_log(GN_LOG_INFO, "core", "event=queue_smtp_failed domain=%s recipients=%zu code=%d "
		       "enhanced=%s host=%s ip=%s reason=%s", gn_log_quote(0, t->domain), k, code,
		       enh != NULL ? enh : "-", host != NULL ? gn_log_quote(1, host) : "-",
		       ip != NULL ? ip : "-", gn_log_quote(2, text));
	finish(t);
}

static void set_failure(struct tx *t, int code, const char *enh, const char *text, const char *host,
			const char *ip)
{
	t->fail_code = code;
	t->fail_enh = enh != NULL ? gn_pool_strdup(t->pool, enh) : NULL;
	t->fail_text = gn_pool_strdup(t->pool, text != NULL ? text : "");
	t->fail_host = host;
	t->fail_ip = ip != NULL ? gn_pool_strdup(t->pool, ip) : NULL;
	t->fail_policy = t->policy;
}

/* ---- the message ---- */

static int body_read(void *data, const char **chunk_r, size_t *len_r, const char **error_r)
{
	struct tx *t = data;
	size_t got = 0;
	if (t->offset >= gn_store_body_size(t->body))
		return 0;
	if (gn_store_body_read(t->body, t->offset, t->buf, t->buf_len, &got, error_r) < 0)
		return -1;
	if (got == 0) {
		*error_r = "the message ended early";
		return -1;
	}
	t->offset += got;
	*chunk_r = t->buf;
	*len_r = got;
	return 1;
}

/* ---- the SMTP client ---- */

static void on_ready(struct gn_smtp_client *client, const struct gn_smtp_result *failure, void *data)
{
	struct tx_conn *tc = data;
	struct tx *t = tc->t;
	if (t == NULL)
		return;
	const char *host = t->hosts[t->host].name, *ip = gn_smtp_client_remote_ip(client);
	if (failure != NULL) {
		/* closed() follows: the next host then.  A host that DANE
		 * made TLS mandatory for and that did not give it (no
		 * STARTTLS, a failed handshake, no match): 4.7.5. */
		const char *enh = failure->enhanced[0] != '\0' ? failure->enhanced : NULL;
		if (failure->phase == GN_SMTP_PHASE_STARTTLS && t->policy != POL_OPPORTUNISTIC)
			enh = "4.7.5";
		set_failure(t, failure->code, enh, failure->text, host, ip);
		if (t->policy != POL_OPPORTUNISTIC)
			gn_log(GN_LOG_INFO, "core", "event=queue_smtp_dane_failed domain=%s host=%s ip=%s "
			       "reason=%s", gn_log_quote(0, t->domain), gn_log_quote(1, host), ip != NULL ? ip : "-",
			       gn_log_quote(2, failure->text));
		if (queue_requiretls_tls_failed(t->qd, failure)) {
			t->rt_refused++;
			set_failure(t, 554, "5.7.30", gn_pool_printf(t->pool, "REQUIRETLS: %s",
								     failure->text), host, ip);
		}
		return;
	}
	const char *rt = queue_requiretls_refusal(t->pool, t->qd, client, host, tc->policy == POL_DANE);
	if (rt != NULL) {
		/* RFC 8689: not to this host; closed() goes on. */
		t->rt_refused++;
		set_failure(t, 554, "5.7.30", rt, host, ip);
		gn_smtp_client_quit(client);
		return;
	}
	if (mtasts_testing(t) && t->policy == POL_OPPORTUNISTIC &&
	    (!gn_smtp_client_is_tls(client) || !gn_smtp_client_tls_verified(client)))
		gn_log(GN_LOG_INFO, "core", "event=mtasts_testing_would_refuse domain=%s host=%s ip=%s reason=%s",
		       gn_log_quote(0, t->domain), gn_log_quote(1, host), ip != NULL ? ip : "-",
		       gn_log_quote(2, !gn_smtp_client_is_tls(client) ? "no TLS"
				    : gn_pool_printf(t->pool, "certificate not verified: %s",
						     gn_smtp_client_tls_verify_error(client) != NULL
						     ? gn_smtp_client_tls_verify_error(client) : "?")));
	t->ready = true;
	bool tls = gn_smtp_client_is_tls(client);
	t->tls_version = tls && gn_smtp_client_tls_version(client) != NULL
			 ? gn_pool_strdup(t->pool, gn_smtp_client_tls_version(client)) : NULL;
	t->tls_cipher = tls && gn_smtp_client_tls_cipher(client) != NULL
			? gn_pool_strdup(t->pool, gn_smtp_client_tls_cipher(client)) : NULL;
	t->tls_policy = attempt_policy(t, tc->policy, tls);
	t->offset = 0;
	t->fail_code = 0;	/* an earlier host's failure is not this one's */
	t->fail_enh = t->fail_text = t->fail_host = t->fail_ip = NULL;
	t->fail_policy = POL_UNKNOWN;
	size_t n = gn_queue_delivery_recipient_count(t->qd);
	const char **rcpts = gn_pool_alloc(t->pool, (n + 1) * sizeof(*rcpts));
	t->sent_idx = gn_pool_alloc(t->pool, (n + 1) * sizeof(*t->sent_idx));
	unsigned k = 0;
	for (size_t i = 0; i < n; i++) {
		if (t->reported[i])
			continue;
		rcpts[k] = gn_addr_to_string(t->pool, gn_queue_delivery_recipient(t->qd, i));
		t->sent_idx[k++] = i;
	}
	const char *err;
	int r = gn_queue_delivery_open_body(t->qd, &t->body, &err);
	if (r <= 0) {
		set_failure(t, 0, "4.3.0", r == 0 ? "the queued message's body is missing" : err, host, ip);
		gn_log(GN_LOG_ERROR, "core", "event=queue_body_failed domain=%s error=%s",
		       gn_log_quote(0, t->domain), gn_log_quote(0, t->fail_text));
		gn_smtp_client_quit(client);
		return;
	}
	unsigned flags = 0;
	if (gn_queue_delivery_smtputf8(t->qd))
		flags |= GN_SMTP_SEND_SMTPUTF8;
	if (gn_smtp_client_has_extension(client, "8BITMIME", NULL))
		flags |= GN_SMTP_SEND_8BITMIME;
	if (queue_requiretls(t->qd))
		flags |= GN_SMTP_SEND_REQUIRETLS;
	const struct gn_addr *sender = gn_queue_delivery_sender(t->qd);
	/* The body's size when smaller than a chunk: a 64 KB buffer for a
	 * message of a few KB cost its page faults and zeroing every
	 * delivery. */
	uint64_t size = gn_store_body_size(t->body);
	t->buf_len = size > 0 && size < TX_CHUNK ? (size_t)size : TX_CHUNK;
	t->buf = gn_pool_alloc(t->pool, t->buf_len);
	if (k == 0 || gn_smtp_client_send(client, sender != NULL ? gn_addr_to_string(t->pool, sender) : "",
					  rcpts, k, gn_queue_delivery_size(t->qd), flags, body_read, t,
					  &err) < 0) {
		set_failure(t, 0, "4.3.0", k == 0 ? "no recipient to send to" : err, host, ip);
		gn_smtp_client_quit(client);
	}
}

static void on_rcpt(struct gn_smtp_client *client, unsigned index, const struct gn_smtp_result *r,
		    void *data)
{
	struct tx_conn *tc = data;
	struct tx *t = tc->t;
	if (t == NULL)
		return;
	/* A reused connection that fails before MAIL is accepted (the server
	 * closed or timed it out while it was parked; the RSET before MAIL
	 * counts as MAIL): nothing was delivered and nothing is recorded;
	 * on_closed() goes on with a new connection. */
	if (t->reused && r->phase == GN_SMTP_PHASE_MAIL && (r->local || r->code == 421) &&
	    r->code != 552 && r->code != 554) {
		t->stale = true;
		return;
	}
	/* A local refusal has the client's code (554 for SMTPUTF8 not
	 * offered, 552 too big) or 0 for a connection lost. */
	report(t, t->sent_idx[index], r->code, r->enhanced[0] != '\0' ? r->enhanced : NULL, r->text,
	       t->hosts[t->host].name, gn_smtp_client_remote_ip(client));
}

static void on_sent(struct gn_smtp_client *client, const struct gn_smtp_result *r, void *data)
{
	struct tx_conn *tc = data;
	struct tx *t = tc->t;
	(void)r;
	if (t == NULL)
		return;
	tc->transactions++;
	if (t->stale || !reuse_park(tc, mtasts_verifies(t) ? t->hosts[t->host].name : NULL)) {
		gn_smtp_client_quit(client);
		return;
	}
	/* Parked: the delivery is over without it. */
	t->conn = NULL;
	gn_store_body_free(&t->body);
	fail_all(t, t->fail_code, t->fail_enh != NULL ? t->fail_enh : "4.4.2",
		 t->fail_text != NULL ? t->fail_text : "the server gave no outcome",
		 t->fail_host != NULL ? t->fail_host : t->hosts[t->host].name, t->fail_ip);
}

static void connect_host(struct tx *t);

static void on_closed(struct gn_smtp_client *client, void *data)
{
	struct tx_conn *tc = data;
	struct tx *t = tc->t;
	(void)client;
	if (t == NULL) {
		/* Parked (the server closed it) or closing after its idle time. */
		gn_log(GN_LOG_DEBUG, "core", "event=queue_smtp_reuse_closed ip=%s port=%u parked=%s",
		       tc->ip != NULL ? tc->ip : "-", tc->port, tc->parked ? "yes" : "no");
		conn_free(&tc);
		return;
	}
	conn_free(&t->conn);
	gn_store_body_free(&t->body);
	if (t->stale) {
		gn_log(GN_LOG_DEBUG, "core", "event=queue_smtp_reuse_stale domain=%s host=%s",
		       gn_log_quote(0, t->domain), gn_log_quote(1, t->hosts[t->host].name));
		t->stale = false;
		t->no_reuse = true;
		t->ready = false;
		connect_host(t);
		return;
	}
	if (!t->ready) {
		t->host++;
		next_host(t);
		return;
	}
	/* Recipients the session ended without (a connection lost before
	 * their outcome): temporary. */
	fail_all(t, t->fail_code, t->fail_enh != NULL ? t->fail_enh : "4.4.2",
		 t->fail_text != NULL ? t->fail_text : "the connection ended before the outcome",
		 t->fail_host != NULL ? t->fail_host : t->hosts[t->host].name, t->fail_ip);
}

/* DANE (RFC 7672 2.2, 3): the chain the server sent must match one of
 * the host's usable TLSA records; else the address fails (temporary)
 * and the client goes on with the next. */
static int on_tls_check(struct gn_smtp_client *client, const unsigned char *const *certs,
			const size_t *lens, size_t n, void *data, const char **error_r)
{
	struct tx_conn *tc = data;
	struct tx *t = tc->t;
	int usage = 0;
	if (t == NULL) {
		*error_r = "DANE: no delivery for this connection";
		return -1;
	}
	/* RFC 7672 3.2.2: DANE-TA's reference identifiers are the MX host
	 * name, its CNAME expansion and the next-hop domain. */
	const char *host = t->hosts[t->host].name;
	const char *names[3] = { host, t->canonical, t->domain };
	if (dns_dane_match(t->tlsa, t->n_tlsa, certs, lens, n, names, 3, &usage, error_r) != 1)
		return -1;
	gn_free(tc->dane_name);
	tc->dane_name = usage == DNS_DANE_EE ? gn_strdup(host) : gn_strdup_printf("%s %s", host, t->domain);
	gn_log(GN_LOG_INFO, "core", "event=queue_smtp_dane_match domain=%s host=%s ip=%s usage=%s",
	       gn_log_quote(0, t->domain), gn_log_quote(1, host), gn_smtp_client_remote_ip(client) != NULL
	       ? gn_smtp_client_remote_ip(client) : "-", usage == DNS_DANE_EE ? "DANE-EE" : "DANE-TA");
	return 0;
}

static void connect_host(struct tx *t)
{
	const char *host = t->hosts[t->host].name, *err;
	struct gn_smtp_client_settings set;
	gn_smtp_client_settings_init(&set);
	if (t->policy == POL_UNKNOWN)
		t->policy = POL_OPPORTUNISTIC;
	/* RFC 7672 2.2: secure TLSA records, usable or not, make TLS
	 * mandatory; DANE checks the chain itself (no PKIX, no name
	 * check for DANE-EE). */
	set.tls = t->policy == POL_OPPORTUNISTIC ? GN_SMTP_TLS_OPPORTUNISTIC : GN_SMTP_TLS_REQUIRE;
	set.tls_name = t->literal ? NULL : host;
	set.tls_verify = false;
	if (mtasts_verifies(t)) {
		/* RFC 8461 4.2: TLS, with a certificate valid for the MX host. */
		set.tls = GN_SMTP_TLS_REQUIRE;
		set.tls_verify = true;
	}
	queue_requiretls_settings(t->qd, t->policy == POL_DANE, &set);
	static const struct gn_smtp_client_handler handler = {
		.size = sizeof(struct gn_smtp_client_handler),
		.ready = on_ready,
		.rcpt = on_rcpt,
		.sent = on_sent,
		.closed = on_closed,
	};
	static const struct gn_smtp_client_handler handler_dane = {
		.size = sizeof(struct gn_smtp_client_handler),
		.ready = on_ready,
		.rcpt = on_rcpt,
		.sent = on_sent,
		.closed = on_closed,
		.tls_check = on_tls_check,
	};
	t->ready = false;
	t->reused = false;
	if (!t->no_reuse && !queue_requiretls(t->qd)) {
		/* MTA-STS enforce: only a connection verified for this host. */
		struct tx_conn *tc = reuse_take(t->addrs, t->n_addrs, smtp_port(), set.tls, t->policy, host,
						 t->domain, mtasts_verifies(t) ? host : NULL);
		if (tc != NULL) {
			tc->t = t;
			t->conn = tc;
			t->reused = true;
			gn_log(GN_LOG_DEBUG, "core", "event=queue_smtp_reuse domain=%s host=%s ip=%s port=%u "
			       "tls=%s transactions=%u", gn_log_quote(0, t->domain), gn_log_quote(1, host),
			       tc->ip, tc->port, gn_smtp_client_is_tls(tc->client) ? "yes" : "no",
			       tc->transactions);
			on_ready(tc->client, NULL, tc);
			return;
		}
	}
	t->conn = gn_calloc(1, sizeof(*t->conn));
	t->conn->t = t;
	t->conn->mode = set.tls;
	t->conn->policy = t->policy;
	t->conn->client = gn_smtp_client_new(&set, t->policy == POL_DANE ? &handler_dane : &handler, t->conn,
					     &err);
	if (t->conn->client == NULL)
		goto fail;
	for (size_t i = 0; i < t->n_addrs; i++)
		if (gn_smtp_client_add_address(t->conn->client, t->addrs[i], smtp_port(), &err) < 0)
			goto fail;
	if (gn_smtp_client_connect(t->conn->client, &err) < 0)
		goto fail;
	return;
fail:
	conn_free(&t->conn);
	set_failure(t, 0, "4.3.0", err, host, NULL);
	t->host++;
	next_host(t);
}

/* ---- the DNS ---- */

static void add_addr(struct tx *t, int family, const void *bin)
{
	char text[INET6_ADDRSTRLEN];
	if (t->n_addrs < TX_MAX_ADDRS && inet_ntop(family, bin, text, sizeof(text)) != NULL)
		t->addrs[t->n_addrs++] = gn_pool_strdup(t->pool, text);
}

static bool no_such_name(int status)
{
	return status == GN_DNS_NXDOMAIN || status == GN_DNS_NODATA;
}

static void tlsa_cb(const struct gn_dns_result *res, void *data);

static void addr_cb(const struct gn_dns_result *res, void *data)
{
	struct tx *t = data;
	const char *host = t->hosts[t->host].name;
	t->query = NULL;
	if (res->type == GN_DNS_A) {
		if (res->status == GN_DNS_OK)
			for (size_t i = 0; i < res->n; i++)
				add_addr(t, AF_INET, &res->a[i]);
		t->a_status = res->status;
		t->a_security = res->security;
		if (res->canonical != NULL)
			t->canonical = gn_pool_strdup(t->pool, res->canonical);
		t->query = gn_dns_lookup(host, GN_DNS_AAAA, addr_cb, t);
		return;
	}
	if (res->status == GN_DNS_OK)
		for (size_t i = 0; i < res->n; i++)
			add_addr(t, AF_INET6, &res->aaaa[i]);
	if (t->canonical == NULL && res->canonical != NULL)
		t->canonical = gn_pool_strdup(t->pool, res->canonical);
	if (t->mx_secure && (t->a_status >= GN_DNS_SERVFAIL || res->status >= GN_DNS_SERVFAIL)) {
		/* RFC 7672 2.1.1: a host whose address records fail to
		 * validate (bogus) or do not come (SERVFAIL, timeout...)
		 * under a secure MX answer is not used: it may be one that
		 * DANE protects. */
		set_failure(t, 0, "4.4.3", gn_pool_printf(t->pool, "address lookup of the MX host %s "
							  "failed: A %s%s, AAAA %s%s", host,
							  gn_dns_status_name(t->a_status),
							  t->a_security == GN_DNS_BOGUS ? " (bogus)" : "",
							  gn_dns_status_name(res->status),
							  res->security == GN_DNS_BOGUS ? " (bogus)" : ""),
			    host, NULL);
		t->host++;
		next_host(t);
		return;
	}
	if (t->n_addrs > 0) {
		/* RFC 7672 2.2: TLSA records count only for a host reached
		 * through secure MX and address answers. */
		if (t->mx_secure && t->a_security == GN_DNS_SECURE && res->security == GN_DNS_SECURE) {
			/* RFC 7672 2.2.2: a host name that is an alias (its
			 * expansion secure, as the answers are): the
			 * expanded name's TLSA records first. */
			t->tlsa_base = t->canonical != NULL ? t->canonical : host;
			t->query = gn_dns_lookup(gn_pool_printf(t->pool, "_%u._tcp.%s", smtp_port(),
								t->tlsa_base), GN_DNS_TLSA, tlsa_cb, t);
			return;
		}
		connect_host(t);
		return;
	}
	if (t->implicit && no_such_name(t->a_status) && no_such_name(res->status)) {
		/* RFC 5321 5.1: no MX and no address: not a mail domain. */
		fail_all(t, 550, "5.1.2", gn_pool_printf(t->pool, "%s has no MX and no address records",
							  t->domain), NULL, NULL);
		return;
	}
	set_failure(t, 0, "4.4.4", gn_pool_printf(t->pool, "no address for the MX host %s: A %s, AAAA %s",
						  host, gn_dns_status_name(t->a_status),
						  gn_dns_status_name(res->status)), host, NULL);
	t->host++;
	next_host(t);
}

static void tlsa_cb(const struct gn_dns_result *res, void *data)
{
	struct tx *t = data;
	const char *host = t->hosts[t->host].name;
	t->query = NULL;
	/* RFC 7672 2.2.2: no (secure) records under the CNAME-expanded name:
	 * then under the host name as the MX gave it. */
	if (t->tlsa_base != host && (no_such_name(res->status) ||
				     (res->status == GN_DNS_OK && res->security != GN_DNS_SECURE))) {
		gn_log(GN_LOG_DEBUG, "core", "event=queue_smtp_tlsa_expanded domain=%s host=%s expanded=%s "
		       "status=%s security=%s", gn_log_quote(0, t->domain), gn_log_quote(1, host),
		       gn_log_quote(2, t->tlsa_base), gn_dns_status_name(res->status),
		       gn_dns_security_name(res->security));
		t->tlsa_base = host;
		t->query = gn_dns_lookup(gn_pool_printf(t->pool, "_%u._tcp.%s", smtp_port(), host), GN_DNS_TLSA,
					 tlsa_cb, t);
		return;
	}
	switch (res->status) {
	case GN_DNS_OK:
		if (res->security != GN_DNS_SECURE)
			break;	/* RFC 7672 2.2: insecure TLSA records are ignored */
		t->tlsa = gn_pool_alloc(t->pool, (res->n + 1) * sizeof(*t->tlsa));
		for (size_t i = 0; i < res->n; i++) {
			t->tlsa[i] = res->tlsa[i];
			uint8_t *copy = gn_pool_alloc(t->pool, res->tlsa[i].len + 1);
			memcpy(copy, res->tlsa[i].data, res->tlsa[i].len);
			t->tlsa[i].data = copy;
		}
		t->n_tlsa = res->n;
		t->policy = dns_dane_count_usable(t->tlsa, t->n_tlsa) > 0 ? POL_DANE : POL_DANE_UNAUTH;
		break;
	case GN_DNS_NODATA:
	case GN_DNS_NXDOMAIN:
		break;	/* no TLSA records (a secure denial, or an insecure one) */
	default:
		/* RFC 7672 2.1.1: TLSA records that do not validate (bogus),
		 * or no answer: the host may be DANE-protected and cannot be
		 * checked, so it is not used (temporary). */
		t->policy = POL_DANE;
		set_failure(t, 0, "4.7.5", gn_pool_printf(t->pool, "DANE: TLSA lookup of _%u._tcp.%s failed: "
							  "%s%s%s%s", smtp_port(), t->tlsa_base,
							  res->security == GN_DNS_BOGUS ? "bogus, " : "",
							  gn_dns_status_name(res->status),
							  res->error != NULL ? ": " : "",
							  res->error != NULL ? res->error : ""), host, NULL);
		gn_log(GN_LOG_INFO, "core", "event=queue_smtp_dane_skip domain=%s host=%s reason=%s",
		       gn_log_quote(0, t->domain), gn_log_quote(1, host), gn_log_quote(2, t->fail_text));
		t->host++;
		next_host(t);
		return;
	}
	gn_log(GN_LOG_DEBUG, "core", "event=queue_smtp_tlsa domain=%s host=%s base=%s status=%s security=%s "
	       "records=%zu usable=%zu policy=%s", gn_log_quote(0, t->domain), gn_log_quote(1, host),
	       gn_log_quote(2, t->tlsa_base),
	       gn_dns_status_name(res->status), gn_dns_security_name(res->security), t->n_tlsa,
	       dns_dane_count_usable(t->tlsa, t->n_tlsa), t->policy == POL_UNKNOWN ? "opportunistic"
	       : policy_name(t->policy, true));
	connect_host(t);
}

static void next_host(struct tx *t)
{
	if (t->host >= t->n_hosts) {
		queue_requiretls_final(t->qd, t->rt_refused, t->n_hosts, &t->fail_code, &t->fail_enh);
		fail_all(t, t->fail_code, t->fail_enh != NULL ? t->fail_enh : "4.4.1",
			 t->fail_text != NULL ? t->fail_text : "no MX host could be reached", t->fail_host,
			 t->fail_ip);
		return;
	}
	t->n_addrs = 0;
	t->policy = POL_UNKNOWN;
	t->tlsa = NULL;
	t->n_tlsa = 0;
	t->canonical = t->tlsa_base = NULL;
	if (t->literal) {
		t->addrs[t->n_addrs++] = t->hosts[t->host].name;
		connect_host(t);
		return;
	}
	t->query = gn_dns_lookup(t->hosts[t->host].name, GN_DNS_A, addr_cb, t);
}

/* Random order among hosts of equal preference (RFC 5321 5.1): a
 * Fisher-Yates shuffle of each run of equal preference. */
static void shuffle_equal(struct tx_host *h, size_t n)
{
	size_t start = 0;
	while (start < n) {
		size_t end = start + 1;
		while (end < n && h[end].pref == h[start].pref)
			end++;
		for (size_t i = end - 1; i > start; i--) {
			uint32_t rnd = 0;
			(void)gnutls_rnd(GNUTLS_RND_NONCE, &rnd, sizeof(rnd));
			size_t j = start + rnd % (i - start + 1);
			struct tx_host tmp = h[i];
			h[i] = h[j];
			h[j] = tmp;
		}
		start = end;
	}
}

/* RFC 8461 4.1: MX hosts that match no pattern of the policy are not
 * used in enforce mode (logged in testing mode).  -1 when none is left:
 * the delivery failed temporarily (ended). */
static int mtasts_filter(struct tx *t)
{
	if (!mtasts_enforce(t) && !mtasts_testing(t))
		return 0;
	size_t kept = 0;
	for (size_t i = 0; i < t->n_hosts; i++) {
		if (queue_mtasts_mx_match(&t->mtasts_policy, t->hosts[i].name)) {
			t->hosts[kept++] = t->hosts[i];
			continue;
		}
		gn_log(GN_LOG_INFO, "core", "event=%s domain=%s host=%s reason=%s",
		       mtasts_enforce(t) ? "mtasts_mx_refused" : "mtasts_testing_would_refuse",
		       gn_log_quote(0, t->domain), gn_log_quote(1, t->hosts[i].name),
		       gn_log_quote(2, "the MX host matches no mx pattern of the policy"));
		if (!mtasts_enforce(t))
			t->hosts[kept++] = t->hosts[i];
	}
	t->n_hosts = kept;
	if (kept == 0) {
		fail_all(t, 0, "4.7.5", gn_pool_printf(t->pool, "MTA-STS (enforce): no MX host of %s matches "
							"the policy", t->domain), NULL, NULL);
		return -1;
	}
	return 0;
}

static void mx_cb(const struct gn_dns_result *res, void *data)
{
	struct tx *t = data;
	t->query = NULL;
	/* RFC 7672 2.2.1: DANE only below a validated MX answer (or a
	 * validated denial for the implicit MX). */
	t->mx_secure = res->security == GN_DNS_SECURE;
	switch (res->status) {
	case GN_DNS_OK:
		for (size_t i = 0; i < res->n && t->n_hosts < TX_MAX_HOSTS; i++) {
			if (res->mx[i].host[0] == '\0')
				continue;
			t->hosts[t->n_hosts].name = gn_pool_strdup(t->pool, res->mx[i].host);
			t->hosts[t->n_hosts++].pref = res->mx[i].preference;
		}
		if (t->n_hosts == 0) {
			/* RFC 7505 3: the domain accepts no mail. */
			fail_all(t, 556, "5.1.10", gn_pool_printf(t->pool, "%s accepts no mail (null MX, "
								  "RFC 7505)", t->domain), NULL, NULL);
			return;
		}
		shuffle_equal(t->hosts, t->n_hosts);
		break;
	case GN_DNS_NODATA:
		/* RFC 5321 5.1: the implicit MX. */
		t->implicit = true;
		t->hosts[0].name = t->domain;
		t->n_hosts = 1;
		break;
	case GN_DNS_NXDOMAIN:
		fail_all(t, 550, "5.1.2", gn_pool_printf(t->pool, "no such domain: %s (NXDOMAIN)", t->domain),
			 NULL, NULL);
		return;
	case GN_DNS_BADNAME:
		fail_all(t, 550, "5.1.2", gn_pool_printf(t->pool, "%s is not a valid domain name", t->domain),
			 NULL, NULL);
		return;
	default:
		/* Fail closed: no answer is no answer, never "no such domain". */
		fail_all(t, 0, "4.4.3", gn_pool_printf(t->pool, "MX lookup of %s failed: %s%s%s", t->domain,
						       gn_dns_status_name(res->status),
						       res->error != NULL ? ": " : "",
						       res->error != NULL ? res->error : ""), NULL, NULL);
		return;
	}
	if (mtasts_filter(t) < 0)
		return;
	next_host(t);
}

/* "[192.0.2.1]" or "[IPv6:2001:db8::1]": the IP, or NULL. */
static const char *literal_ip(struct gn_pool *pool, const char *domain)
{
	size_t len = strlen(domain);
	if (len < 3 || domain[0] != '[' || domain[len - 1] != ']')
		return NULL;
	const char *s = domain + 1;
	len -= 2;
	if (len > 5 && strncasecmp(s, "IPv6:", 5) == 0) {
		s += 5;
		len -= 5;
	}
	return gn_pool_strndup(pool, s, len);
}

void queue_tls_trust_init(void)
{
	static bool loaded;
	const char *err;
	if (loaded || core_conf == NULL || core_conf->tls_client_ca_file == NULL)
		return;
	loaded = true;
	/* A CA file that does not load makes nothing verify that needed it
	 * (MTA-STS, REQUIRETLS): fail closed, said once. */
	if (gn_conn_tls_client_trust(core_conf->tls_client_ca_file, &err) < 0)
		gn_log(GN_LOG_ERROR, "core", "event=tls_client_ca_failed file=%s error=%s",
		       gn_log_quote(0, core_conf->tls_client_ca_file), gn_log_quote(1, err));
}

void gn_queue_tls_trust_init(void)
{
	queue_tls_trust_init();
}

/* The domain's MTA-STS policy is known: a copy for this delivery, then
 * the MX lookup. */
static void mtasts_cb(const struct queue_mtasts_result *res, void *data)
{
	struct tx *t = data;
	t->mtasts = NULL;
	queue_mtasts_log_applied(t->domain, res);
	if (res->policy != NULL) {
		t->mtasts_policy = *res->policy;
		t->mtasts_policy.mx = gn_pool_alloc(t->pool, (res->policy->n_mx + 1) * sizeof(char *));
		for (size_t i = 0; i < res->policy->n_mx; i++)
			t->mtasts_policy.mx[i] = gn_pool_strdup(t->pool, res->policy->mx[i]);
		t->mtasts_policy.id = res->policy->id != NULL ? gn_pool_strdup(t->pool, res->policy->id) : NULL;
		t->mtasts_policy.last_error = NULL;
		t->mtasts_have = true;
	}
	t->mtasts_mode = queue_mtasts_mode_name(t->mtasts_have ? t->mtasts_policy.mode : QUEUE_MTASTS_NONE);
	t->query = gn_dns_lookup(t->domain, GN_DNS_MX, mx_cb, t);
}

static void smtp_deliver(struct gn_queue_delivery *qd, void *data)
{
	(void)data;
	queue_tls_trust_init();
	struct tx *t = gn_calloc(1, sizeof(*t));
	t->pool = gn_pool_new();
	t->qd = qd;
	t->fail_policy = t->policy = POL_UNKNOWN;
	t->domain = gn_pool_strdup(t->pool, gn_queue_delivery_domain(qd));
	size_t n = gn_queue_delivery_recipient_count(qd);
	t->reported = gn_pool_alloc(t->pool, (n + 1) * sizeof(*t->reported));
	for (size_t i = 0; i < n; i++)
		/* The queue failed an unreadable address already. */
		t->reported[i] = gn_queue_delivery_recipient(qd, i) == NULL;
	size_t left = 0;
	for (size_t i = 0; i < n; i++)
		left += !t->reported[i];
	if (left == 0) {
		finish(t);
		return;
	}
	t->hosts = gn_pool_alloc(t->pool, TX_MAX_HOSTS * sizeof(*t->hosts));
	t->addrs = gn_pool_alloc(t->pool, TX_MAX_ADDRS * sizeof(*t->addrs));
	const char *relay = core_conf != NULL ? core_conf->queue_relay : NULL;
	const char *lit = literal_ip(t->pool, t->domain);
	if (relay != NULL || lit != NULL) {
		t->literal = true;
		t->hosts[0].name = relay != NULL ? relay : lit;
		t->n_hosts = 1;
		next_host(t);
		return;
	}
	t->mtasts = queue_mtasts_lookup(t->domain, 0, mtasts_cb, t);
}

const struct gn_queue_transport queue_transport_smtp = {
	sizeof(struct gn_queue_transport), "smtp", smtp_deliver, NULL,
};
