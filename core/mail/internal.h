/*
 * core/mail/internal.h: the mail layer's internals.
 *
 * Pure parsers and writers, no I/O: addresses and PRECIS (addr.c,
 * gannet/addr.h) and MIME (mime.c, gannet/mime.h).  Uses the base layer
 * only.  The MIME structure's JSON is public only as text; the core's own
 * code may work on json-c objects through the functions below.
 */
#ifndef GANNET_MAIL_INTERNAL_H
#define GANNET_MAIL_INTERNAL_H

#include "base/internal.h"

#include <gannet/addr.h>
#include <gannet/mime.h>

struct json_object;	/* json-c */

/* gn_mime_to_json_string() as a json-c object, owned by the caller
 * (json_object_put()). */
struct json_object *mime_to_json(const struct gn_mime_message *msg);
/* gn_mime_from_json_string() from a json-c object. */
int mime_from_json(const struct json_object *obj, struct gn_mime_message **msg_r,
		   const char **error_r);

#endif
