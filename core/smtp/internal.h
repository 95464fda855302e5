/*
 * core/smtp/internal.h: the SMTP layer's internals.
 *
 *   server.c  the SMTP server engine (gannet/smtp.h), shared by the smtp
 *             and submission modules.
 *
 * Uses the mail (paths), net (connections), runtime and base layers.
 */
#ifndef GANNET_SMTP_INTERNAL_H
#define GANNET_SMTP_INTERNAL_H

#include "net/internal.h"
#include "mail/internal.h"

#include <gannet/smtp.h>

#endif
