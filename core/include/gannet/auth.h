/*
 * gannet/auth.h: credentials, password logins, the failed-auth limiter, the
 * record of auth attempts.  TLS public keys: gannet/tlspubkey.h.
 *
 * Passwords are never stored.  Setting a password (PRECIS OpaqueString,
 * RFC 8265 4.2, at least 8 bytes after preparation) stores, per account:
 *   - SCRAM-SHA-256 (RFC 7677) and SCRAM-SHA-1 (RFC 5802): a random salt,
 *     the iteration count, StoredKey and ServerKey;
 *   - CRAM-MD5 (RFC 2195): the MD5 states after the HMAC key XOR ipad and
 *     XOR opad blocks (RFC 2104), as Dovecot's CRAM-MD5 scheme does, so a
 *     response can be checked without the password.
 * PLAIN and LOGIN are verified against the SCRAM-SHA-256 keys.
 *
 * A login name is an address; it is NFC-normalised and looked up in the
 * account addresses (case-insensitively in the localpart, like delivery).
 * Every protocol goes through the same few calls:
 *
 *   gn_auth_login()          PLAIN / LOGIN / web logins: everything at once
 *                            (limiter, lookup, verify, record).
 *   gn_auth_lookup()         the account of a login name (SCRAM, CRAM-MD5,
 *                            EXTERNAL start here), then
 *   gn_auth_scram_get() /    the stored keys, the protocol runs the exchange,
 *   gn_auth_cram_md5_verify()
 *   gn_auth_finish()         records the outcome and feeds the limiter.
 *   gn_auth_allowed()        whether a client IP may try at all now.
 *
 * The limiter counts failures per client IP and network in PostgreSQL, so
 * every protocol and every node share it: per minute and per day, at three
 * levels (IPv4: the address, /26, /21; IPv6: /64, /48, /32).  Defaults are
 * mox's: 10/30/90 per minute and 50/150/450 per day.  A success clears the
 * counters of the client's IP and its networks.  The numbers are settings of
 * the config section `auth = { ... }`:
 *
 *   auth = {
 *     failures_per_minute = 10;   failures_per_day = 50;    # address / IPv6 /64
 *     failures_per_minute_net = 30;  failures_per_day_net = 150;   # /26, /48
 *     failures_per_minute_wide = 90; failures_per_day_wide = 450;  # /21, /32
 *     attempts_keep = "30d";           # how long attempt records are kept
 *     attempts_max_failures = 10000;   # failure records kept per account
 *     scram_sha256_iterations = 4096; scram_sha1_iterations = 8192;
 *   };
 *
 * Memory: strings and structs returned come from the caller's pool.  All
 * functions that touch the database run in a process with a database
 * connection (workers, runner, CLI) from the start phase on; the pure
 * computations (gn_auth_scram_derive, gn_auth_cram_md5_*, gn_auth_mem_equal)
 * run anywhere.
 */
#ifndef GANNET_AUTH_H
#define GANNET_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <gannet/mem.h>
#include <gannet/conn.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Minimum password length in bytes after PRECIS preparation (as mox). */
#define GN_AUTH_PASSWORD_MIN 8

/* The outcome of an authentication attempt, as recorded. */
enum gn_auth_result {
	GN_AUTH_OK = 0,
	GN_AUTH_BADUSER,	/* no account has this login name */
	GN_AUTH_BADPASSWORD,	/* wrong password or proof */
	GN_AUTH_LOGINDISABLED,	/* the account may not log in */
	GN_AUTH_RATELIMITED,	/* too many failures from this IP or network */
	GN_AUTH_ERROR,		/* database or other temporary failure */
};

/* "ok", "baduser", "badpassword", "logindisabled", "ratelimited", "error". */
const char *gn_auth_result_name(enum gn_auth_result result);

/* Who is trying: for the limiter and the record.  remote_ip may be NULL
 * (command line: no limiter); protocol ("imap", "submission", "webmail")
 * and mechanism ("plain", "login", "cram-md5", "scram-sha-256",
 * "tlsclientauth", "password") are short lower-case words. */
struct gn_auth_client {
	const char *remote_ip;
	const char *protocol;
	const char *mechanism;
};

/* An account found for a login name. */
struct gn_auth_account {
	int64_t id;
	const char *name;		/* the account's name */
	/* The login address in canonical form (gannet/addr.h), with the
	 * localpart as configured. */
	const char *address;
	/* NULL when the account may log in; otherwise the message to show. */
	const char *login_disabled;
};

/* ---- looking up, verifying, recording ---- */

/* The account whose address is login (NFC-normalised here; localpart
 * case-insensitive, no catchall separators).  Returns 1 and *account_r, 0
 * when there is none (also when login is no address), -1 on a database error
 * with *error_r.  The login-disabled flag is reported, not acted on. */
int gn_auth_lookup(struct gn_pool *pool, const char *login,
		   struct gn_auth_account **account_r, const char **error_r);

/* Whether client IP ip may try to authenticate now (the limiter).  Returns 1
 * yes, 0 no (too many failures), -1 on a database error (*error_r; callers
 * answer with a temporary error).  NULL or unparsable ip: always 1. */
int gn_auth_allowed(const char *ip, const char **error_r);

/* Records the outcome of an attempt that the caller ran itself (SCRAM,
 * CRAM-MD5, EXTERNAL) and feeds the limiter: a success clears the client's
 * counters, BADUSER and BADPASSWORD count as failures.  account may be NULL
 * (unknown); login is the name as the client gave it.  Returns 0 or -1. */
int gn_auth_finish(const struct gn_auth_client *client,
		   const struct gn_auth_account *account, const char *login,
		   enum gn_auth_result result, const char **error_r);

/* A password login (PLAIN, LOGIN, web): checks the limiter, looks the login
 * up, verifies password[0..len) (PRECIS-prepared here) against the stored
 * SCRAM-SHA-256 keys in constant time, checks the login-disabled flag,
 * records the attempt and feeds the limiter.  Returns the result; for
 * GN_AUTH_OK and GN_AUTH_LOGINDISABLED *account_r is set (the message is in
 * account->login_disabled).  GN_AUTH_ERROR sets *error_r. */
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
 * GN_AUTH_PASSWORD_MIN bytes, then new salts and keys for every mechanism,
 * replacing the old ones in one statement.  Returns 0, or -1 with *error_r
 * ("password too short", a PRECIS error, a database error). */
int gn_auth_password_set(int64_t account_id, const char *password,
			 size_t password_len, const char **error_r);

/* Removes the account's password (it can then only log in with a TLS
 * public key).  Returns 1 removed, 0 there was none, -1 error. */
int gn_auth_password_clear(int64_t account_id, const char **error_r);

/* ---- SCRAM (RFC 5802, RFC 7677) ---- */

enum gn_auth_scram_hash {
	GN_SCRAM_SHA1 = 1,	/* SCRAM-SHA-1: 20-byte keys */
	GN_SCRAM_SHA256 = 2,	/* SCRAM-SHA-256: 32-byte keys */
};

#define GN_SCRAM_KEY_MAX 32
#define GN_SCRAM_SALT_MAX 64

struct gn_auth_scram {
	enum gn_auth_scram_hash hash;
	unsigned char salt[GN_SCRAM_SALT_MAX];
	size_t salt_len;
	unsigned iterations;
	size_t key_len;			/* 20 or 32 */
	unsigned char stored_key[GN_SCRAM_KEY_MAX];	/* H(ClientKey) */
	unsigned char server_key[GN_SCRAM_KEY_MAX];	/* HMAC(SaltedPassword, "Server Key") */
};

/* The stored SCRAM parameters of an account for hash.  Returns 1 and fills
 * *scram_r, 0 when the account has no password, -1 on error. */
int gn_auth_scram_get(int64_t account_id, enum gn_auth_scram_hash hash,
		      struct gn_auth_scram *scram_r, const char **error_r);

/* RFC 5802 3: SaltedPassword = Hi(password, salt, i) (PBKDF2 with HMAC of
 * hash), ClientKey = HMAC(SaltedPassword, "Client Key"), StoredKey =
 * H(ClientKey), ServerKey = HMAC(SaltedPassword, "Server Key").  The
 * password must already be prepared (PRECIS).  Fills scram->stored_key,
 * server_key and key_len from scram->hash, salt, salt_len and iterations;
 * salted_r (may be NULL) receives SaltedPassword (key_len bytes).  Returns
 * 0, or -1 with *error_r. */
int gn_auth_scram_derive(struct gn_auth_scram *scram, const char *password,
			 size_t password_len, unsigned char *salted_r,
			 const char **error_r);

/* ---- CRAM-MD5 (RFC 2195) ---- */

/* The HMAC-MD5 (RFC 2104) states for key: the four MD5 chaining words after
 * the block key XOR ipad (inner) and after key XOR opad (outer), each as 16
 * bytes little-endian, as Dovecot's CRAM-MD5 scheme keeps them. */
struct gn_auth_cram_md5 {
	unsigned char inner[16];
	unsigned char outer[16];
};

void gn_auth_cram_md5_prepare(const char *key, size_t key_len,
			      struct gn_auth_cram_md5 *state_r);

/* HMAC-MD5(key, text) from the prepared state: 16 bytes into digest_r. */
void gn_auth_cram_md5_digest(const struct gn_auth_cram_md5 *state,
			     const char *text, size_t text_len,
			     unsigned char digest_r[16]);

/* Checks a CRAM-MD5 response: hex_digest (32 hex digits, either case) is
 * HMAC-MD5(password, challenge) with the account's stored state.  Returns 1
 * when it matches, 0 when not (or no password), -1 on error. */
int gn_auth_cram_md5_verify(int64_t account_id, const char *challenge,
			    size_t challenge_len, const char *hex_digest,
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
