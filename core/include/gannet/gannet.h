/*
 * gannet/gannet.h: the whole public API of libgannet.
 *
 * A module includes this (or the single headers) and nothing else of the
 * core.  Link with `pkg-config --cflags --libs gannet`.
 */
#ifndef GANNET_GANNET_H
#define GANNET_GANNET_H

#include <gannet/module.h>
#include <gannet/mem.h>
#include <gannet/log.h>
#include <gannet/config.h>
#include <gannet/hook.h>
#include <gannet/service.h>
#include <gannet/loop.h>
#include <gannet/conn.h>
#include <gannet/httpclient.h>
#include <gannet/db.h>
#include <gannet/migrate.h>
#include <gannet/runner.h>
#include <gannet/cli.h>
#include <gannet/addr.h>
#include <gannet/mime.h>
#include <gannet/compose.h>
#include <gannet/dkim.h>
#include <gannet/store.h>
#include <gannet/auth.h>
#include <gannet/tlspubkey.h>
#include <gannet/sasl.h>
#include <gannet/deliver.h>
#include <gannet/smtp.h>
#include <gannet/dns.h>
#include <gannet/queue.h>
#include <gannet/http.h>
#include <gannet/suppression.h>
#include <gannet/submit.h>
#include <gannet/webhook.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The entry point of the gannet binary (not for modules). */
int gn_main(int argc, char **argv);

/* The product version, "0.1.0". */
const char *gn_version(void);

#ifdef __cplusplus
}
#endif
#endif
