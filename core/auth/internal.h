/*
 * core/auth/internal.h: the auth layer's internals.
 *
 *   crypto.c          pure computations: SCRAM keys (RFC 5802 3), the
 *                     HMAC-MD5 midstates of CRAM-MD5 (RFC 2195, RFC 2104)
 *                     with a small MD5, base64 for SASL (RFC 4648 4);
 *   credentials.c     the stored keys of an account (gn_credentials),
 *                     password set/verify, the CRAM-MD5 opt-in, the secret
 *                     behind the mock salts of unknown users;
 *   auth.c            logins, the failed-auth limiter (an attempt counts
 *                     when it begins, and is settled when it ends), the
 *                     record of attempts, settings (gannet/auth.h);
 *   sasl.c            the SASL server engine (gannet/sasl.h): mechanism
 *                     lists, limits, attempts, authorization identities;
 *   sasl-password.c   PLAIN (RFC 4616) and LOGIN;
 *   sasl-cram-md5.c   CRAM-MD5 (RFC 2195);
 *   sasl-scram.c      SCRAM-SHA-1/-256 and -PLUS (RFC 5802, 7677, 5929,
 *                     9266);
 *   sasl-external.c   EXTERNAL (RFC 4422 appendix A) with TLS public keys;
 *   sasl-client.c     the client side: PLAIN, EXTERNAL, SCRAM (-PLUS), for
 *                     the SMTP client's AUTH;
 *   tlspubkey.c       TLS public keys (gannet/tlspubkey.h);
 *   cli-password.c    `gannet setpassword`;
 *   cli-cram-md5.c    `gannet config account cram-md5`;
 *   cli-tlspubkey.c   `gannet config tlspubkey ...`.
 *
 * Uses the mail (addresses, PRECIS), db, net (the peer's certificate, TLS
 * channel bindings), runtime and base layers.
 */
#ifndef GANNET_AUTH_INTERNAL_H
#define GANNET_AUTH_INTERNAL_H

#include "db/internal.h"
#include "mail/internal.h"
#include "net/internal.h"

#include <gannet/auth.h>
#include <gannet/sasl.h>
#include <gannet/tlspubkey.h>

/* ---- settings (auth.c) ---- */

struct auth_settings {
	long long minute[3], day[3];	/* failures per window, per level */
	long long keep_ms;		/* attempt records */
	long long max_failures;		/* failure records per account */
	long long iter_sha256, iter_sha1;
	bool cram_md5;			/* offer CRAM-MD5 at all */
	long long sasl_max_response;	/* bytes of one decoded response */
	long long sasl_max_steps;	/* responses in one exchange */
};
extern struct auth_settings auth_set;

/* The core's register phase (core/main.c): settings, runner jobs, CLI
 * commands.  Each returns 0 or -1 (error recorded with conf_error()). */
int auth_register(void);
int tlspubkey_register(void);
/* The CLI files' halves of the above. */
int cli_password_register(void);
int cli_cram_md5_register(void);
int cli_tlspubkey_register(void);

/* Sets *error_r (when not NULL) to msg; returns -1. */
int auth_err(const char **error_r, const char *msg);

/* ---- crypto.c ---- */

enum scram_hash {
	SCRAM_SHA1 = 1,		/* 20-byte keys */
	SCRAM_SHA256 = 2,	/* 32-byte keys */
};

#define SCRAM_KEY_MAX 32
#define SCRAM_SALT_MAX 64
#define SCRAM_SALT_LEN 16	/* the salts we make */

struct auth_scram {
	enum scram_hash hash;
	unsigned char salt[SCRAM_SALT_MAX];
	size_t salt_len;
	unsigned iterations;
	size_t key_len;				/* 20 or 32 */
	unsigned char stored_key[SCRAM_KEY_MAX];	/* H(ClientKey) */
	unsigned char server_key[SCRAM_KEY_MAX];	/* HMAC(SaltedPassword, "Server Key") */
};

/* RFC 5802 3: SaltedPassword = Hi(password, salt, i), ClientKey, StoredKey
 * = H(ClientKey), ServerKey.  The password must be prepared (PRECIS).
 * Fills stored_key, server_key and key_len from hash, salt and
 * iterations; salted_r (may be NULL) receives SaltedPassword.  Returns 0,
 * or -1 with *error_r. */
int scram_derive(struct auth_scram *scram, const char *password,
		 size_t password_len, unsigned char *salted_r,
		 const char **error_r);
/* The key length of hash (20, 32), and its GnuTLS MAC and digest. */
size_t scram_key_len(enum scram_hash hash);
/* HMAC of hash over data with key (key_len(hash) bytes out). */
int scram_hmac(enum scram_hash hash, const unsigned char *key, size_t key_len,
	       const void *data, size_t len, unsigned char *out);
int scram_h(enum scram_hash hash, const void *data, size_t len,
	    unsigned char *out);

/* PBKDF2 derivations run by this process: every password check (right,
 * wrong, unknown user, account without credentials) costs exactly one, so
 * timing does not tell them apart; the unit test counts them. */
extern unsigned long auth_derivations;

/* The HMAC-MD5 (RFC 2104) states for a key: the four MD5 chaining words
 * after the block key XOR ipad (inner) and key XOR opad (outer), 16 bytes
 * little-endian each, as Dovecot's CRAM-MD5 scheme keeps them. */
struct auth_cram_md5 {
	unsigned char inner[16];
	unsigned char outer[16];
};
void cram_md5_prepare(const char *key, size_t key_len,
		      struct auth_cram_md5 *state_r);
/* HMAC-MD5(key, text) from the prepared state. */
void cram_md5_digest(const struct auth_cram_md5 *state, const void *text,
		     size_t text_len, unsigned char digest_r[16]);

/* RFC 4648 4 base64 with padding, as SASL carries it.  b64_decode is
 * strict: no whitespace, padding required, no bits left over; returns the
 * decoded length into a buffer from pool (NUL-terminated for convenience),
 * or -1. */
char *b64_encode(struct gn_pool *pool, const void *data, size_t len);
long b64_decode(struct gn_pool *pool, const char *in, size_t len,
		unsigned char **out_r);

/* ---- sasl-client.c: the client side (the SMTP client's AUTH) ---- */

enum sasl_client_mech {
	SASL_CLIENT_SCRAM = 1,	/* SCRAM-SHA-1/-256 [-PLUS] */
	SASL_CLIENT_PLAIN,
	SASL_CLIENT_EXTERNAL,
};
struct sasl_client;

/* The strongest mechanism of offered (the EHLO AUTH keyword's
 * space-separated list) for a password: SCRAM-SHA-256-PLUS (when cb: the
 * connection has a channel binding), SCRAM-SHA-256, SCRAM-SHA-1-PLUS,
 * SCRAM-SHA-1, then PLAIN only when tls.  NULL when none fits (or no
 * password). */
const char *sasl_client_choose(const char *offered, bool tls, bool cb, bool password);
/* Whether name is a word of offered (case-insensitive); offered may be
 * NULL. */
bool sasl_client_offered(const char *offered, const char *name);
/* A client for mech ("SCRAM-SHA-256-PLUS", "PLAIN", "EXTERNAL", ...):
 * authcid and password (not for EXTERNAL), authzid (may be NULL), the
 * connection's channel binding (cb_type NULL: none; needed for -PLUS,
 * and turns SCRAM's flag to "y" otherwise).  Everything is copied.  NULL
 * with *error_r. */
struct sasl_client *sasl_client_new(const char *mech, const char *authcid,
				    const char *authzid, const char *password,
				    const char *cb_type, const unsigned char *cb_data,
				    size_t cb_len, const char **error_r);
void sasl_client_free(struct sasl_client **c);
/* Tests: the client nonce (RFC 5802 and 7677 examples), before start. */
void sasl_client_set_nonce(struct sasl_client *c, const char *nonce);
/* The initial response (raw, may be empty): 0, or -1 with *error_r.
 * The bytes live as long as the client. */
int sasl_client_start(struct sasl_client *c, const unsigned char **out_r, size_t *len_r,
		      const char **error_r);
/* The response to a challenge (raw): 1 with the response, or -1 with
 * *error_r (malformed, a wrong server signature, a challenge the
 * mechanism does not expect). */
int sasl_client_step(struct sasl_client *c, const unsigned char *in, size_t len,
		     const unsigned char **out_r, size_t *len_r, const char **error_r);
/* Whether the exchange is complete on the client's side (for SCRAM: the
 * server's signature checked), so a success reply may be believed. */
bool sasl_client_done(const struct sasl_client *c);

/* ---- credentials.c ---- */

/* PRECIS OpaqueString (RFC 8265 4.2): for setting and checking alike. */
int password_prepare(const char *password, size_t len, char **out_r,
		     const char **error_r);
/* Wipes and frees a prepared password (NULL is fine). */
void secret_free(char *s);
/* The stored SCRAM keys of an account: 1, 0 none (no password), -1. */
int credentials_scram_get(int64_t account_id, enum scram_hash hash,
			  struct auth_scram *scram_r, const char **error_r);
/* The stored CRAM-MD5 state: 1, 0 none (no password, or the account has
 * not opted in), -1. */
int credentials_cram_md5_get(int64_t account_id, struct auth_cram_md5 *state_r,
			     const char **error_r);
/* Checks a prepared password against the SCRAM-SHA-256 keys: 1 match, 0
 * no (an account without credentials runs a dummy derivation first), -1. */
int credentials_verify_prepared(int64_t account_id, const char *prep,
				const char **error_r);
/* A derivation that matches nothing, as long as a real check. */
void credentials_dummy_check(const char *prep);
/* The salt and iterations shown for a login that has no SCRAM keys (no
 * such user, or no password): HMAC-SHA-256 of a per-installation secret
 * and the login, so the same name always gets the same salt (RFC 5802 9).
 * Returns 0 or -1. */
int credentials_mock_scram(const char *login, enum scram_hash hash,
			   struct auth_scram *scram_r, const char **error_r);
/* Whether any account has CRAM-MD5 state (so offering it can work):
 * 1, 0, -1. */
int credentials_cram_md5_any(const char **error_r);

/* ---- auth.c ---- */

struct gn_auth_account {
	int64_t id;
	const char *name;
	const char *address;
	const char *login_disabled;
};

/* A login's record name: the login as given, made storable. */
char *auth_login_for_record(struct gn_pool *pool, const char *login);

/* ---- tlspubkey.c ---- */

/* The DER SubjectPublicKeyInfo inside a DER certificate, exactly as it
 * appears there (RFC 5280 4.1).  Returns 0, or -1 when malformed. */
int tlspubkey_cert_spki(const unsigned char *der, size_t len,
			const unsigned char **spki_r, size_t *spki_len_r);
/* RFC 4648 5: base64url without padding, from pool. */
char *tlspubkey_base64url(struct gn_pool *pool, const unsigned char *in, size_t len);

/* ---- sasl.c: what the mechanisms see ---- */

/* The peer as the SASL server sees it: from the connection
 * (gn_sasl_new), or made by a test (sasl_new_peer). */
struct sasl_peer {
	const char *remote_ip;	/* NULL: only with local */
	bool local;		/* command line: no limiter */
	bool tls;
	/* The channel binding this connection offers (RFC 5929 for TLS
	 * 1.2: "tls-unique"; RFC 9266 for TLS 1.3: "tls-exporter"), NULL
	 * when none. */
	const char *cb_type;
	const unsigned char *cb_data;
	size_t cb_len;
	/* The client certificate's DER SubjectPublicKeyInfo, or NULL. */
	const unsigned char *spki;
	size_t spki_len;
	const char *hostname;	/* for the CRAM-MD5 challenge */
};

enum sasl_mech_flags {
	MECH_CLEARTEXT = 0x1,	/* the password crosses the wire */
	MECH_PLUS = 0x2,	/* channel binding: TLS with a binding */
	MECH_CERT = 0x4,	/* a client certificate */
	MECH_CRAM = 0x8,	/* needs CRAM-MD5 state */
};

struct sasl_mech {
	const char *name;	/* as advertised: "SCRAM-SHA-256-PLUS" */
	const char *record;	/* for attempt records: "scram-sha-256-plus" */
	unsigned flags;
	enum scram_hash hash;	/* SCRAM only */
	/* ir is NULL when the client sent no initial response.  Both return
	 * the engine's status through the sasl_* helpers below. */
	enum gn_sasl_status (*start)(struct gn_sasl *s, const unsigned char *ir,
				     size_t len);
	enum gn_sasl_status (*step)(struct gn_sasl *s, const unsigned char *in,
				    size_t len);
};

extern const struct sasl_mech sasl_mech_plain, sasl_mech_login,
	sasl_mech_cram_md5, sasl_mech_scram_sha1, sasl_mech_scram_sha1_plus,
	sasl_mech_scram_sha256, sasl_mech_scram_sha256_plus, sasl_mech_external;

/* The exchange's state, for the mechanisms: a pool that lives for the
 * exchange (and its results: until the next start). */
struct gn_pool *sasl_pool(struct gn_sasl *s);
const struct sasl_peer *sasl_peer(const struct gn_sasl *s);
const struct sasl_mech *sasl_mech(const struct gn_sasl *s);
/* The mechanism's own state (allocated by it from sasl_pool()). */
void *sasl_mech_state(struct gn_sasl *s);
void sasl_set_mech_state(struct gn_sasl *s, void *state);
/* Whether the server offered -PLUS variants on this connection (SCRAM's
 * "y" flag needs it, RFC 5802 6). */
bool sasl_plus_offered(const struct gn_sasl *s);

/* Sends a challenge: returns GN_SASL_CONTINUE. */
enum gn_sasl_status sasl_challenge(struct gn_sasl *s, const void *data,
				   size_t len);
/* The account of a login name (the test store when set): 1, 0 none, -1
 * (then the exchange fails temporarily: callers return sasl_error()). */
int sasl_lookup(struct gn_sasl *s, const char *login,
		struct gn_auth_account **account_r);
int sasl_scram_get(struct gn_sasl *s, int64_t account_id, enum scram_hash hash,
		   struct auth_scram *scram_r);
int sasl_cram_md5_get(struct gn_sasl *s, int64_t account_id,
		      struct auth_cram_md5 *state_r);
/* Password logins (PLAIN, LOGIN): lookup, PRECIS, one derivation, the
 * login-disabled flag and the authorization identity, then success or
 * failure.  authzid may be NULL or "". */
enum gn_sasl_status sasl_password(struct gn_sasl *s, const char *authzid,
				  const char *login, const char *password,
				  size_t password_len);
/* Ends with success for account (login: the address it authenticated
 * as, authzid: the identity asked for, may be NULL or "").  Checks the
 * login-disabled flag and the authorization identity (it must be an
 * address of the same account), settles the attempt.  final: data the
 * client must see with the success (SCRAM's server signature), or NULL. */
enum gn_sasl_status sasl_success(struct gn_sasl *s,
				 struct gn_auth_account *account,
				 const char *login, const char *authzid,
				 const void *final, size_t final_len);
/* Ends with failure: failure for the protocol, result for the record
 * and limiter; login and account (may be NULL) for the record; why goes
 * to the log only. */
enum gn_sasl_status sasl_fail(struct gn_sasl *s, enum gn_sasl_failure failure,
			      enum gn_auth_result result, const char *login,
			      const struct gn_auth_account *account,
			      const char *why);
/* A database error: temporary failure. */
enum gn_sasl_status sasl_error(struct gn_sasl *s, const char *login,
			       const char *error);
/* Random bytes (the test's fixed nonce when set), printable for SCRAM:
 * base64 of n random bytes. */
const char *sasl_nonce(struct gn_sasl *s, size_t n);

/* ---- test seams (t/unit/test_auth.c) ---- */

/* A SASL server on a made-up peer, without a connection. */
struct gn_sasl *sasl_new_peer(const struct sasl_peer *peer, const char *protocol,
			      unsigned flags);
/* Replaces the account lookup and the stored keys, so the RFC examples
 * (user "user", "tim") run through the whole engine; and fixes the
 * random parts (SCRAM's server nonce, CRAM-MD5's challenge).  NULL
 * members: the real thing.  NULL: all real. */
struct sasl_test_hooks {
	int (*lookup)(struct gn_pool *pool, const char *login,
		      struct gn_auth_account **account_r, const char **error_r);
	int (*scram_get)(int64_t account_id, enum scram_hash hash,
			 struct auth_scram *scram_r, const char **error_r);
	int (*cram_md5_get)(int64_t account_id, struct auth_cram_md5 *state_r,
			    const char **error_r);
	const char *nonce;		/* SCRAM server nonce part */
	const char *cram_challenge;	/* whole CRAM-MD5 challenge */
};
void sasl_set_test_hooks(const struct sasl_test_hooks *hooks);
/* The test's CRAM-MD5 challenge, or NULL. */
const char *sasl_test_cram_challenge(void);

#endif
