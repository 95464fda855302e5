/*
 * gannet/sasl.h: the SASL server (RFC 4422) that every protocol shares.
 *
 * The core runs the mechanisms; a protocol (IMAP AUTHENTICATE, SMTP AUTH,
 * an HTTP login) only carries their challenges and responses in its own
 * framing, and turns a failure into its own reply (the helpers at the end
 * give RFC 4954's SMTP codes and RFC 5530's IMAP response codes).  So each
 * mechanism, its limits, the failed-login limiter and the record of
 * attempts (gannet/auth.h) exist once.
 *
 * Mechanisms, strongest first, as gn_sasl_mechanisms() lists them:
 *   EXTERNAL            (RFC 4422 A) a TLS client certificate whose public
 *                       key is registered (gannet/tlspubkey.h); listed
 *                       only when the client sent a certificate;
 *   SCRAM-SHA-256-PLUS, SCRAM-SHA-256, SCRAM-SHA-1-PLUS, SCRAM-SHA-1
 *                       (RFC 5802, RFC 7677); -PLUS only over TLS, with the
 *                       channel binding of its version: "tls-unique" for
 *                       TLS 1.2 (RFC 5929), "tls-exporter" for TLS 1.3
 *                       (RFC 9266);
 *   CRAM-MD5            (RFC 2195) listed only when the auth setting
 *                       cram_md5 is on and some account opted in
 *                       (gn_auth_cram_md5_set()); an account without
 *                       CRAM-MD5 state fails like a wrong password;
 *   PLAIN, LOGIN        (RFC 4616; LOGIN as drafted in
 *                       draft-murchison-sasl-login) only over TLS, unless
 *                       the protocol allows cleartext (GN_SASL_CLEARTEXT_OK).
 *
 * One exchange:
 *
 *   sasl = gn_sasl_new(conn, "imap", flags);
 *   st = gn_sasl_start64(sasl, "SCRAM-SHA-256", initial_response_or_NULL, n);
 *   while (st == GN_SASL_CONTINUE) {
 *           send gn_sasl_challenge64(sasl) ("+ ..." / "334 ...");
 *           st = gn_sasl_step64(sasl, client_line, len);   ("*" cancels)
 *   }
 *   GN_SASL_OK: gn_sasl_account_id(), gn_sasl_login();
 *   GN_SASL_FAIL: gn_sasl_failure(), gn_sasl_failure_text().
 *
 * Data the mechanism sends with its success (SCRAM's server signature)
 * comes as one more challenge that the client answers with an empty
 * response (RFC 4954 4, RFC 9051 6.2.2), unless the protocol can carry it
 * with the success (GN_SASL_FINAL_DATA_OK): then gn_sasl_challenge()
 * holds it when gn_sasl_start/step return GN_SASL_OK.
 *
 * Every exchange is one attempt (gn_auth_begin() at start, gn_auth_end()
 * at the end): it counts against the client's limits from the start, and
 * is recorded with protocol and mechanism.  A protocol that drops an
 * exchange midway (connection closed, another command) calls
 * gn_sasl_cancel(); an exchange never ended stays counted as a failure.
 * A gn_sasl object runs one exchange after another; starting a new one
 * cancels one still open, and so does gn_sasl_free().
 *
 * Limits: a decoded response of at most sasl_max_response bytes (auth
 * setting, 8192), at most sasl_max_steps responses (8).  Login names are
 * NFC-normalised addresses (gannet/auth.h).  An authorization identity,
 * when a mechanism carries one and it is not empty, must be an address of
 * the authenticated account; it then becomes gn_sasl_login().
 *
 * Processes and phases: workers (and any process with a database
 * connection), from the start phase on.  Not thread-safe.  Memory: the
 * caller owns the object (gn_sasl_free()); challenges and strings it
 * returns stay valid until the next gn_sasl_start*() or gn_sasl_free().
 */
#ifndef GANNET_SASL_H
#define GANNET_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <gannet/mem.h>
#include <gannet/conn.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gn_sasl;

enum gn_sasl_status {
	GN_SASL_FAIL = 0,	/* see gn_sasl_failure() */
	GN_SASL_CONTINUE = 1,	/* send gn_sasl_challenge(), then gn_sasl_step() */
	GN_SASL_OK = 2,		/* authenticated */
};

/* Why an exchange failed.  New values are only appended; a protocol
 * treats an unknown one as GN_SASL_FAILURE_CREDENTIALS. */
enum gn_sasl_failure {
	GN_SASL_FAILURE_NONE = 0,
	GN_SASL_FAILURE_CREDENTIALS,	/* unknown user, wrong password, proof or
					 * channel binding, unknown key */
	GN_SASL_FAILURE_AUTHZ,		/* not allowed to act as the authzid */
	GN_SASL_FAILURE_DISABLED,	/* the account may not log in (the text
					 * says why) */
	GN_SASL_FAILURE_MECHANISM,	/* unknown, or not offered here */
	GN_SASL_FAILURE_ENCRYPTION,	/* the mechanism needs TLS */
	GN_SASL_FAILURE_MALFORMED,	/* bad base64 or a bad message */
	GN_SASL_FAILURE_CANCELLED,	/* the client sent "*" or the protocol
					 * called gn_sasl_cancel() */
	GN_SASL_FAILURE_LIMIT,		/* a response too long, too many steps */
	GN_SASL_FAILURE_RATELIMITED,	/* too many failures from this client
					 * (temporary) */
	GN_SASL_FAILURE_TEMPORARY,	/* a database error (temporary) */
};

/* gn_sasl_new() flags. */
/* PLAIN and LOGIN also without TLS (a trusted network, a test). */
#define GN_SASL_CLEARTEXT_OK 0x1u
/* Do not offer LOGIN (IMAP has its own LOGIN command). */
#define GN_SASL_NO_LOGIN 0x2u
/* The protocol carries data with its success reply (RFC 4422 3.6):
 * no extra empty round trip. */
#define GN_SASL_FINAL_DATA_OK 0x4u

/* A SASL server for conn (its TLS state, client certificate, channel
 * binding and client IP are read at each start; conn must outlive the
 * object), recording attempts with protocol ("imap", "submission", ...:
 * a short lower-case word).  Never NULL. */
struct gn_sasl *gn_sasl_new(struct gn_conn *conn, const char *protocol,
			    unsigned flags);
/* Cancels an open exchange (gn_sasl_cancel()), frees, sets *sasl to
 * NULL; accepts NULL. */
void gn_sasl_free(struct gn_sasl **sasl);

/* The mechanisms this connection may use now, strongest first, separated
 * by single spaces ("SCRAM-SHA-256 SCRAM-SHA-1 ..."); valid until the
 * next call of this or gn_sasl_free(). */
const char *gn_sasl_mechanisms(struct gn_sasl *sasl);
/* Whether mech (any case) is in that list. */
bool gn_sasl_mechanism_offered(struct gn_sasl *sasl, const char *mech);

/* Starts an exchange with mechanism mech (any case).  ir: the client's
 * initial response, NULL when it sent none (an empty one is ir != NULL,
 * len 0).  A mechanism not offered on this connection fails
 * (MECHANISM, or ENCRYPTION for PLAIN and LOGIN without TLS). */
enum gn_sasl_status gn_sasl_start(struct gn_sasl *sasl, const char *mech,
				  const void *ir, size_t len);
/* The same with the initial response in base64 as IMAP's SASL-IR and
 * SMTP AUTH carry it: NULL none, "=" empty (RFC 4959, RFC 4954 4). */
enum gn_sasl_status gn_sasl_start64(struct gn_sasl *sasl, const char *mech,
				    const char *ir64, size_t len);

/* The client's response to the last challenge. */
enum gn_sasl_status gn_sasl_step(struct gn_sasl *sasl, const void *response,
				 size_t len);
/* The same in base64 (without the line end); "*" cancels (RFC 4954 4,
 * RFC 9051 6.2.2). */
enum gn_sasl_status gn_sasl_step64(struct gn_sasl *sasl, const char *line,
				   size_t len);

/* Ends an open exchange as cancelled (nothing checked: the attempt is
 * taken back).  Does nothing when none is open. */
void gn_sasl_cancel(struct gn_sasl *sasl);

/* The challenge to send after GN_SASL_CONTINUE (or the final data after
 * GN_SASL_OK with GN_SASL_FINAL_DATA_OK; length 0 when none): raw, or in
 * base64 ("" for none).  Valid until the next call on sasl. */
void gn_sasl_challenge(const struct gn_sasl *sasl, const unsigned char **data_r,
		       size_t *len_r);
const char *gn_sasl_challenge64(struct gn_sasl *sasl);

/* After GN_SASL_OK: the account, its name, the address it logged in as
 * (the authorization identity when one was given, else the login name
 * or the key's login address), and the mechanism used ("SCRAM-SHA-256").
 * 0 / NULL before. */
int64_t gn_sasl_account_id(const struct gn_sasl *sasl);
const char *gn_sasl_account_name(const struct gn_sasl *sasl);
const char *gn_sasl_login(const struct gn_sasl *sasl);
const char *gn_sasl_mechanism(const struct gn_sasl *sasl);

/* After GN_SASL_FAIL: why, whether to say it as a temporary failure, and
 * a short text for the client (never secrets; for DISABLED the account's
 * message). */
enum gn_sasl_failure gn_sasl_failure(const struct gn_sasl *sasl);
bool gn_sasl_failure_temporary(const struct gn_sasl *sasl);
const char *gn_sasl_failure_text(const struct gn_sasl *sasl);

/* A failure in SMTP's terms (RFC 4954 4 and 6, RFC 3463, RFC 5248): the
 * reply code (535, 538, 504, 501, 500, 454, 525) and the enhanced code
 * ("5.7.8"). */
void gn_sasl_failure_smtp(enum gn_sasl_failure failure, int *code_r,
			  const char **enhanced_r);
/* A failure in IMAP's terms (RFC 9051 6.2.2, RFC 5530): returns "NO" or
 * "BAD" and the response code ("AUTHENTICATIONFAILED") or NULL. */
const char *gn_sasl_failure_imap(enum gn_sasl_failure failure,
				 const char **code_r);
/* "credentials", "authz", "disabled", "mechanism", "encryption",
 * "malformed", "cancelled", "limit", "ratelimited", "temporary", "none". */
const char *gn_sasl_failure_name(enum gn_sasl_failure failure);

#ifdef __cplusplus
}
#endif
#endif
