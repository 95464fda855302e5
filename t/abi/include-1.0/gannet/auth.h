/*
 * gannet/auth.h: credentials, password logins, the failed-auth limiter, the
 * record of auth attempts.  SASL: gannet/sasl.h.  TLS public keys:
 * gannet/tlspubkey.h.
 *
 * Passwords are never stored.  Setting a password (PRECIS OpaqueString,
 * RFC 8265 4.2, at least 8 bytes after preparation) stores, per account:
 *   - SCRAM-SHA-256 (RFC 7677) and SCRAM-SHA-1 (RFC 5802): a random salt,
 *     the iteration count, StoredKey and ServerKey;
 *   - CRAM-MD5 (RFC 2195), only for accounts that opted in
 *     (gn_auth_cram_md5_set(), `gannet config account cram-md5`): the MD5
 *     states after the HMAC key XOR ipad and XOR opad blocks (RFC 2104).
 *     That state is unsalted and as good as the password to whoever reads
 *     it, and can be attacked at MD5 speed, so it is off by default.
 * PLAIN and LOGIN are verified against the SCRAM-SHA-256 keys.
 *
 * A login name is an address; it is NFC-normalised and looked up in the
 * account addresses (case-insensitively in the localpart, like delivery).
 * Protocols authenticate through the SASL server (gannet/sasl.h), which
 * runs every mechanism, or, for a plain user name and password (HTTP
 * Basic, web forms), through gn_auth_login().  A protocol that checks
 * something else itself (a TLS client certificate at the handshake)
 * brackets the check with gn_auth_begin() and gn_auth_end().
 *
 * The limiter counts failures per client IP and network in PostgreSQL, so
 * every protocol and every node share it: per minute and per day, at three
 * levels (IPv4: the address, /26, /21; IPv6: /64, /48, /32).  Defaults are
 * mox's: 10/30/90 per minute and 50/150/450 per day.  An attempt counts as
 * a failure from the moment it begins, so parallel attempts cannot pass
 * together; when it ends, a success clears the counters of the client's IP
 * and its networks, and an attempt that checked nothing (aborted,
 * temporary error, refused by the limiter) is taken back.  The numbers
 * are settings of the config section `auth = { ... }`:
 *
 *   auth = {
 *     failures_per_minute = 10;   failures_per_day = 50;    # address / IPv6 /64
 *     failures_per_minute_net = 30;  failures_per_day_net = 150;   # /26, /48
 *     failures_per_minute_wide = 90; failures_per_day_wide = 450;  # /21, /32
 *     attempts_keep = "30d";           # how long attempt records are kept
 *     attempts_max_failures = 10000;   # failure records kept per account
 *     scram_sha256_iterations = 4096; scram_sha1_iterations = 8192;
 *     cram_md5 = true;         # offer CRAM-MD5 (to accounts that opted in)
 *     sasl_max_response = 8192;        # bytes of one decoded SASL response
 *     sasl_max_steps = 8;              # responses in one SASL exchange
 *   };
 *
 * Memory: strings and objects returned come from the caller's pool.  All
 * functions that touch the database run in a process with a database
 * connection (workers, runner, CLI) from the start phase on.
 */
#ifndef GANNET_AUTH_H
#define GANNET_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <gannet/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Minimum password length in bytes after PRECIS preparation (as mox). */
#define GN_AUTH_PASSWORD_MIN 8

/* The outcome of an authentication attempt, as recorded.  New values are
 * only appended. */
enum gn_auth_result {
	GN_AUTH_OK = 0,
	GN_AUTH_BADUSER,	/* no account has this login name */
	GN_AUTH_BADPASSWORD,	/* wrong password or proof */
	GN_AUTH_LOGINDISABLED,	/* the account may not log in */
	GN_AUTH_RATELIMITED,	/* too many failures from this IP or network */
	GN_AUTH_ERROR,		/* database or other temporary failure */
	GN_AUTH_ABORTED,	/* the client gave up before anything was checked */
	GN_AUTH_BADPROTOCOL,	/* malformed messages */
	GN_AUTH_BADCHANBIND,	/* SCRAM channel binding mismatch or downgrade */
	GN_AUTH_BADAUTHZ,	/* authenticated, but not as the identity asked for */
};

/* "ok", "baduser", "badpassword", "logindisabled", "ratelimited", "error",
 * "aborted", "badprotocol", "badchanbind", "badauthz". */
const char *gn_auth_result_name(enum gn_auth_result result);

/* Who is trying: for the limiter and the record.  Modules fill it, so it
 * starts with its size (set it to sizeof(struct gn_auth_client)); the
 * core refuses a size smaller than ABI 1.0's and reads only what the
 * module's size covers, so members are only ever appended. */
struct gn_auth_client {
	size_t size;
	/* The client's IP address as text.  An address that does not parse
	 * is refused (GN_AUTH_RATELIMITED is not claimed: GN_AUTH_ERROR), and
	 * so is NULL, unless flags has GN_AUTH_CLIENT_LOCAL. */
	const char *remote_ip;
	/* Short lower-case words: protocol "imap", "submission", "webmail";
	 * mechanism "plain", "login", "cram-md5", "scram-sha-256",
	 * "tlsclientauth", "password". */
	const char *protocol;
	const char *mechanism;
	unsigned flags;		/* GN_AUTH_CLIENT_* */
};

/* The attempt comes from the command line or another local process that
 * has no client IP: no limiter.  Must be said explicitly. */
#define GN_AUTH_CLIENT_LOCAL 0x1u

/* An account found for a login name: opaque, from the caller's pool. */
struct gn_auth_account;

int64_t gn_auth_account_id(const struct gn_auth_account *account);
/* The account's name. */
const char *gn_auth_account_name(const struct gn_auth_account *account);
/* The login address in canonical form (gannet/addr.h), with the
 * localpart as configured. */
const char *gn_auth_account_address(const struct gn_auth_account *account);
/* NULL when the account may log in; otherwise the message to show. */
const char *gn_auth_account_login_disabled(const struct gn_auth_account *account);

/* ---- looking up, verifying, recording ---- */

/* The account whose address is login (NFC-normalised here; localpart
 * case-insensitive, no catchall separators).  Returns 1 and *account_r, 0
 * when there is none (also when login is no address), -1 on a database error
 * with *error_r.  The login-disabled flag is reported, not acted on. */
int gn_auth_lookup(struct gn_pool *pool, const char *login,
		   struct gn_auth_account **account_r, const char **error_r);

/* One attempt, from gn_auth_begin() to gn_auth_end(); from pool. */
struct gn_auth_attempt;

/* Begins an attempt by client: counts it against the limits of the
 * client's IP and networks now, before anything is checked, so parallel
 * attempts cannot all pass.  Returns 1 with *attempt_r: go on, then call
 * gn_auth_end(); 0 with *attempt_r: too many failures, the caller refuses
 * and still calls gn_auth_end() with GN_AUTH_RATELIMITED; -1 with
 * *error_r: database error, or a client without a parsable IP that is not
 * GN_AUTH_CLIENT_LOCAL, or a client struct of an unknown size (nothing to
 * end). */
int gn_auth_begin(struct gn_pool *pool, const struct gn_auth_client *client,
		  struct gn_auth_attempt **attempt_r, const char **error_r);

/* Ends an attempt: records it (account may be NULL when unknown; login is
 * the name as the client gave it) and settles the limiter: GN_AUTH_OK
 * clears the client's counters; BADUSER, BADPASSWORD, BADPROTOCOL,
 * BADCHANBIND and BADAUTHZ stay counted; the others are taken back.  A
 * second call does nothing.  Returns 0 or -1. */
int gn_auth_end(struct gn_auth_attempt *attempt,
		const struct gn_auth_account *account, const char *login,
		enum gn_auth_result result, const char **error_r);

/* A password login (HTTP Basic, web forms): begins an attempt, looks the
 * login up, verifies password[0..len) (PRECIS-prepared here) against the
 * stored SCRAM-SHA-256 keys in constant time, checks the login-disabled
 * flag, ends the attempt.  Every outcome but GN_AUTH_RATELIMITED and
 * GN_AUTH_ERROR costs one key derivation, whether the user exists or
 * has a password or not.  Returns the result; for GN_AUTH_OK and
 * GN_AUTH_LOGINDISABLED *account_r is set (the message is
 * gn_auth_account_login_disabled()).  GN_AUTH_ERROR sets *error_r. */
enum gn_auth_result gn_auth_login(struct gn_pool *pool,
				  const struct gn_auth_client *client,
				  const char *login, const char *password,
				  size_t password_len,
				  struct gn_auth_account **account_r,
				  const char **error_r);

/* Verifies a password for an account without limiter or record (the caller
 * does both, e.g. a password change that asks for the old one).  Returns 1
 * when it matches, 0 when not (also when the account has no password),
 * -1 on a database error. */
int gn_auth_password_verify(int64_t account_id, const char *password,
			    size_t password_len, const char **error_r);

/* Sets the account's password: PRECIS OpaqueString, at least
 * GN_AUTH_PASSWORD_MIN bytes, then new salts and keys for every mechanism
 * (CRAM-MD5 state only when the account opted in), replacing the old
 * ones in one statement.  Returns 0, or -1 with *error_r ("password too
 * short", a PRECIS error, a database error). */
int gn_auth_password_set(int64_t account_id, const char *password,
			 size_t password_len, const char **error_r);

/* Removes the account's password (it can then only log in with a TLS
 * public key).  Returns 1 removed, 0 there was none, -1 error. */
int gn_auth_password_clear(int64_t account_id, const char **error_r);

/* CRAM-MD5 opt-in.  on: CRAM-MD5 state is stored from the next
 * gn_auth_password_set() on (there is no password to make it from
 * now); off: the stored state is removed at once.  Returns 0 or -1. */
int gn_auth_cram_md5_set(int64_t account_id, bool on, const char **error_r);
/* Whether the account opted in (*on_r) and has CRAM-MD5 state now
 * (*stored_r; either may be NULL).  Returns 0 or -1. */
int gn_auth_cram_md5_get(int64_t account_id, bool *on_r, bool *stored_r,
			 const char **error_r);

/* ---- helpers ---- */

/* Compares len bytes in time that depends on len only. */
bool gn_auth_mem_equal(const void *a, const void *b, size_t len);

/* Deletes attempt records older than attempts_keep, failure records beyond
 * attempts_max_failures per account (oldest first; unknown accounts count
 * as one), and expired limiter counters.  Runs hourly as the runner job
 * "auth-prune".  Returns the number of rows deleted, or -1. */
long gn_auth_prune(const char **error_r);

#ifdef __cplusplus
}
#endif
#endif
