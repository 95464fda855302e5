/*
 * gannet/tlspubkey.h: TLS public keys, for client-certificate login.
 *
 * Only the public key identifies the account: the fingerprint is the
 * SHA-256 of the certificate's DER SubjectPublicKeyInfo in base64url
 * without padding (43 characters).  Issuer, dates and names are not
 * checked.
 *
 * Memory: what is returned comes from the caller's pool.  The lookups and
 * changes run in a process with a database connection (workers, runner,
 * CLI) from the start phase on; the accessors and
 * gn_tlspubkey_spki_fingerprint run anywhere.
 */
#ifndef GANNET_TLSPUBKEY_H
#define GANNET_TLSPUBKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <gannet/mem.h>
#include <gannet/conn.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A registered key: opaque, from the caller's pool. */
struct gn_tlspubkey;

/* base64url(SHA-256(SubjectPublicKeyInfo)), 43 characters. */
const char *gn_tlspubkey_fingerprint(const struct gn_tlspubkey *key);
int64_t gn_tlspubkey_account_id(const struct gn_tlspubkey *key);
/* The account's name. */
const char *gn_tlspubkey_account(const struct gn_tlspubkey *key);
/* The address a key logs in as, in canonical form. */
const char *gn_tlspubkey_login_address(const struct gn_tlspubkey *key);
const char *gn_tlspubkey_name(const struct gn_tlspubkey *key);
/* "rsa-2048", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "ed25519". */
const char *gn_tlspubkey_type(const struct gn_tlspubkey *key);
/* A key match does not preauthenticate IMAP (RFC 9051 7.1.4): the
 * client still authenticates, with EXTERNAL or another mechanism. */
bool gn_tlspubkey_no_imap_preauth(const struct gn_tlspubkey *key);
/* The certificate as registered, in DER. */
void gn_tlspubkey_cert(const struct gn_tlspubkey *key,
		       const unsigned char **der_r, size_t *len_r);
time_t gn_tlspubkey_created(const struct gn_tlspubkey *key);
/* Set by the lookups (gn_tlspubkey_lookup*): NULL when the account may
 * log in, else the message a login gets; NULL from the others. */
const char *gn_tlspubkey_login_disabled(const struct gn_tlspubkey *key);

/* The fingerprint of a DER SubjectPublicKeyInfo, from pool. */
const char *gn_tlspubkey_spki_fingerprint(struct gn_pool *pool,
					  const unsigned char *spki, size_t len);

/* The key registered for spki (gn_conn_peer_spki()).  The key's login
 * address must still be an address of its account (else the key is
 * ignored, with a warning in the log).  Returns 1 and *key_r, 0 when none,
 * -1 on a database error. */
int gn_tlspubkey_lookup(struct gn_pool *pool, const unsigned char *spki,
			size_t spki_len, struct gn_tlspubkey **key_r,
			const char **error_r);

/* The same for a connection's peer certificate (its SubjectPublicKeyInfo
 * exactly as in the certificate): 0 also when the peer sent none. */
int gn_tlspubkey_lookup_conn(struct gn_pool *pool, const struct gn_conn *conn,
			     struct gn_tlspubkey **key_r, const char **error_r);

/* The key with this fingerprint: 1, 0 none, -1 error. */
int gn_tlspubkey_get(struct gn_pool *pool, const char *fingerprint,
		     struct gn_tlspubkey **key_r, const char **error_r);

/* Keys of one account (account_id > 0) or of all (0), ordered by account
 * name and key name.  Returns the count n, with *keys_r an array of n
 * key pointers from pool, or -1. */
int gn_tlspubkey_list(struct gn_pool *pool, int64_t account_id,
		      struct gn_tlspubkey ***keys_r, const char **error_r);

/* Registers the certificate cert_der: login_address must be an address of
 * an account in canonical form; name NULL or "" takes the certificate's
 * CN, else "serial <hex>"; the key type must be one of those above (RSA at
 * least 2048 bits).  Returns 0 with *key_r (may be NULL), or -1 with
 * *error_r (bad certificate, refused key type, unknown address, key already
 * registered). */
int gn_tlspubkey_add(struct gn_pool *pool, const char *login_address,
		     const char *name, bool no_imap_preauth,
		     const unsigned char *cert_der, size_t cert_len,
		     struct gn_tlspubkey **key_r, const char **error_r);

/* Removes a key: 1 removed, 0 no such key, -1 error. */
int gn_tlspubkey_remove(const char *fingerprint, const char **error_r);

#ifdef __cplusplus
}
#endif
#endif
