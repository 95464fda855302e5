/*
 * core/net/internal.h: the network layer's internals.
 *
 *   listener.c  binds and accepts; hands each accepted socket to
 *               conn_accepted() together with its net_listener;
 *   conn.c      drives the connection (buffers, TLS, timeouts) for its
 *               protocol handler (gannet/conn.h); asks tls.c for a server
 *               session;
 *   tls.c       owns the GnuTLS credentials and priority cache;
 *   iplimit.c   the table of connections per client IP, in shared memory
 *               so that every worker counts the same.
 *
 * Uses the runtime and base layers.
 */
#ifndef GANNET_NET_INTERNAL_H
#define GANNET_NET_INTERNAL_H

#include "runtime/internal.h"

#include <sys/socket.h>
#include <gnutls/gnutls.h>
#include <gannet/conn.h>

/* ---- for the layers above (the serve wiring) ---- */

/* Loads the certificates; master, before fork. */
int tls_init(const struct core_conf *conf, const char **error_r);
void tls_deinit(void);
/* Binds every listener; master, before dropping privileges. */
int listeners_bind(const struct core_conf *conf, const char **error_r);
/* After register: every listener's protocol has a handler (else config
 * error with file and line). */
int listeners_check_protocols(void);
/* In a worker: accept connections from the loop. */
void listeners_start(void);
/* Stop accepting (graceful stop) and close the listening sockets. */
void listeners_stop(void);
/* Close the listening sockets in a process that never accepts (runner). */
void listeners_close(void);
/* Graceful stop: tell every connection's protocol (shutdown()). */
void conns_shutdown(void);
/* Close everything now. */
void conns_close_all(const char *reason);
unsigned conns_count(void);
/* Shared-memory table of connections per client (limits.connections_per_ip,
 * IPv6 grouped by limits.ipv6_prefix), sized for every connection the
 * workers of conf may hold; master, before fork. */
int iplimit_init(const struct core_conf *conf);
/* Unmaps this process's view of the table (the others keep theirs). */
void iplimit_deinit(void);
/* 1 acquired (release it), 0 over the limit, -1 refused because the
 * table is full.  An address that does not parse is not limited (1). */
int iplimit_acquire(const char *ip);
void iplimit_release(const char *ip);
/* The prefix length IPv6 clients are grouped by (for log lines). */
unsigned iplimit_ipv6_prefix(void);

/* ---- between the files of this layer ---- */

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
