/*
 * core/queue/requiretls.c: REQUIRETLS (RFC 8689) in the queue's own SMTP
 * transport (transport-smtp.c calls these at four places, so that the
 * rules live here and the transport stays small).
 *
 * A message queued with GN_QUEUE_TLS_REQUIRED (gannet/queue.h) goes to a
 * host only when (RFC 8689):
 *
 *   - the connection is TLS: the client requires STARTTLS
 *     (GN_SMTP_TLS_REQUIRE; no fallback to plain text);
 *   - the certificate verifies for the MX host name: PKIX (the system's
 *     CAs and the setting tls.client_ca_file) through the client's
 *     tls_verify.
 *     An address literal or queue.relay has no name to verify for, so it
 *     never takes such a message.  Or DANE (RFC 7672), the other way of
 *     verifying that RFC 8689 allows: a host whose TLSA records are
 *     usable is verified by them and not by PKIX (a self-signed DANE-EE
 *     certificate qualifies); queue_requiretls_verified() is the one
 *     place that says what counts as verified;
 *   - the server offers REQUIRETLS after STARTTLS; MAIL FROM then carries
 *     REQUIRETLS (GN_SMTP_SEND_REQUIRETLS).
 *
 * A host that fails any of these is skipped like an unreachable one;
 * when every host of the attempt was skipped for it, the recipients fail
 * for good with 554 5.7.30 ("REQUIRETLS support required", RFC 8689;
 * mox uses the same code), and the sender gets a DSN.  When some host
 * could not be reached at all, the attempt is temporary (that host may
 * qualify later).  The DSN itself is delivered into the sender's own
 * account (dsn.c) and does not require TLS.
 *
 * A REQUIRETLS delivery never takes a parked connection: the cache is
 * keyed by IP, and a connection verified for one host name proves
 * nothing for another name at the same address.
 *
 * GN_QUEUE_TLS_RELAXED ("TLS-Required: No", RFC 8689) changes nothing
 * here: the transport is opportunistic already; DANE and MTA-STS read it
 * with gn_queue_delivery_require_tls() and do not enforce for it.
 */
#include "queue/internal.h"

#include <string.h>
#include <gannet/conn.h>
#include <gannet/smtp.h>

/* RFC 8689: X.7.30 REQUIRETLS support required. */
#define RT_CODE 554
#define RT_ENHANCED "5.7.30"

bool queue_requiretls(const struct gn_queue_delivery *qd)
{
	return gn_queue_delivery_require_tls(qd) == GN_QUEUE_TLS_REQUIRED;
}


void queue_requiretls_settings(const struct gn_queue_delivery *qd, bool dane,
			       struct gn_smtp_client_settings *set)
{
	if (!queue_requiretls(qd))
		return;
	set->tls = GN_SMTP_TLS_REQUIRE;
	/* DANE checks the chain itself (the handler's tls_check fails the
	 * handshake when no TLSA record matches); else PKIX.  With tls_name
	 * NULL (an address literal) the client fails the handshake: nothing
	 * to verify is not verified. */
	set->tls_verify = !dane;
}

bool queue_requiretls_verified(const struct gn_smtp_client *client, bool dane)
{
	/* PKIX for the MX host name, or DANE: a connection under the DANE
	 * policy reached ready() only when its chain matched a usable TLSA
	 * record (an unauthenticated DANE connection, secure records none
	 * usable, is not one: it needs PKIX like any other). */
	return gn_smtp_client_is_tls(client) && (dane || gn_smtp_client_tls_verified(client));
}

bool queue_requiretls_tls_failed(const struct gn_queue_delivery *qd,
				 const struct gn_smtp_result *failure)
{
	/* The client's own refusals at STARTTLS: not offered, the handshake
	 * failed, the certificate did not verify.  A server's 4xx to
	 * STARTTLS is its answer, kept as it is. */
	return queue_requiretls(qd) && failure->phase == GN_SMTP_PHASE_STARTTLS && failure->local;
}

const char *queue_requiretls_refusal(struct gn_pool *pool, const struct gn_queue_delivery *qd,
				     const struct gn_smtp_client *client, const char *host, bool dane)
{
	if (!queue_requiretls(qd))
		return NULL;
	if (!gn_smtp_client_is_tls(client))
		return gn_pool_printf(pool, "REQUIRETLS: no TLS with %s", host);
	if (!queue_requiretls_verified(client, dane)) {
		const char *why = gn_smtp_client_tls_verify_error(client);
		return gn_pool_printf(pool, "REQUIRETLS: the TLS certificate of %s does not verify%s%s",
				      host, why != NULL ? ": " : "", why != NULL ? why : "");
	}
	if (!gn_smtp_client_has_extension(client, "REQUIRETLS", NULL))
		return gn_pool_printf(pool, "REQUIRETLS: %s does not offer REQUIRETLS", host);
	return NULL;
}

void queue_requiretls_final(const struct gn_queue_delivery *qd, unsigned refused,
			    size_t n_hosts, int *code_r, const char **enhanced_r)
{
	if (!queue_requiretls(qd) || refused == 0)
		return;
	if (refused >= n_hosts) {
		*code_r = RT_CODE;
		*enhanced_r = RT_ENHANCED;
	} else if (*code_r == RT_CODE && *enhanced_r != NULL && strcmp(*enhanced_r, RT_ENHANCED) == 0) {
		/* The last host refused, an earlier one was not reached: that
		 * one may take the message later. */
		*code_r = 0;
		*enhanced_r = "4.7.30";
	}
}
