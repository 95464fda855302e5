/*
 * core/mail/internal.h: the mail layer's internals.
 *
 * Pure parsers and writers, no I/O: addresses and PRECIS (addr.c,
 * gannet/addr.h) and MIME (mime.c, gannet/mime.h).  Uses the base layer
 * only.
 */
#ifndef GANNET_MAIL_INTERNAL_H
#define GANNET_MAIL_INTERNAL_H

#include "base/internal.h"

#include <gannet/addr.h>
#include <gannet/mime.h>

#endif
