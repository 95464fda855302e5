/*
 * core/tls.h: what core/tls.c, core/listener.c and core/conn.c share.
 *
 * Private to those three files (and their unit tests).  The rest of the core
 * uses the functions declared in core.h; modules use gannet/conn.h.
 *
 *   listener.c  binds and accepts; hands each accepted socket to
 *               conn_accepted() together with its net_listener.
 *   conn.c      drives the connection; asks tls.c for a server session.
 *   tls.c       owns the GnuTLS credentials and priority cache.
 */
#ifndef GANNET_CORE_TLS_H
#define GANNET_CORE_TLS_H

#include "core.h"

#include <sys/socket.h>
#include <gnutls/gnutls.h>

/* A bound listener, as the connections of it see it. */
struct net_listener {
	char *name;
	enum tls_mode tls;
	const struct gn_protocol *proto;	/* NULL until resolved */
	void *proto_data;
	const struct listener_conf *conf;
	int fd;			/* -1 when closed */
	ev_io io;
	bool started;
};

/* Whether tls_init() loaded credentials. */
bool tls_ready(void);
/* A server session using the loaded credentials and priorities; asks for a
 * client certificate (never requires one) when client_cert.  Returns 0, or
 * -1 with *error_r set (static string). */
int tls_session_new(gnutls_session_t *session_r, bool client_cert,
		    const char **error_r);

/* listener.c -> conn.c: an accepted nonblocking, close-on-exec socket.
 * conn.c owns fd from here on (closes it when refusing). */
void conn_accepted(struct net_listener *l, int fd,
		   const struct sockaddr *peer, socklen_t peer_len);

/* Registered protocol handler by name; NULL if none (listener.c). */
const struct gn_protocol *protocol_find(const char *name, void **data_r);

#endif
