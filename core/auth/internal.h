/*
 * core/auth/internal.h: the auth layer's internals.
 *
 *   auth.c       credentials, password logins, the failed-auth limiter
 *                and the record of attempts (gannet/auth.h), and the CLI
 *                `gannet setpassword`;
 *   tlspubkey.c  TLS public keys for client-certificate login
 *                (gannet/tlspubkey.h) and `gannet config tlspubkey`.
 *
 * Uses the mail (addresses, PRECIS), db, net (the peer's certificate),
 * runtime and base layers.
 */
#ifndef GANNET_AUTH_INTERNAL_H
#define GANNET_AUTH_INTERNAL_H

#include "db/internal.h"
#include "mail/internal.h"
#include "net/internal.h"

#include <gannet/auth.h>
#include <gannet/tlspubkey.h>

/* The core's register phase (core/main.c): settings, runner jobs, CLI
 * commands.  Each returns 0 or -1 (error recorded with conf_error()). */
int auth_register(void);
int tlspubkey_register(void);

#endif
