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
 *               so that every worker counts the same;
 *   compress.c  a connection's DEFLATE layer (gn_conn_compress_start());
 *   http.c      the "http" protocol: connections handed to libmicrohttpd,
 *               the mounts of gannet/http.h.
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

/* A client session (outbound STARTTLS) with SNI for server_name when it
 * is a host name, presenting id's certificate when id is not NULL.  0, or
 * -1 with *error_r (static string). */
int tls_client_session_new(gnutls_session_t *session_r, const char *server_name,
			   const struct gn_tls_identity *id, const char **error_r);
/* Tests: the DER of an identity's (first) certificate, from GnuTLS's
 * memory (gnutls_free() it).  0, or -1. */
int tls_identity_cert_der(const struct gn_tls_identity *id, unsigned char **der_r,
			  size_t *len_r);
/* Frees the client credentials (made again on next use). */
void tls_client_deinit(void);

/* compress.c -> conn.c: raw DEFLATE both ways (RFC 1951).  net_zlib_new():
 * compressed input waits in a buffer of raw_limit bytes (at least 16 KiB);
 * level is deflate's (0-9, or Z_DEFAULT_COMPRESSION); NULL with *error_r
 * when zlib refuses. */
struct net_zlib;
struct net_zlib *net_zlib_new(size_t raw_limit, int level, const char **error_r);
void net_zlib_free(struct net_zlib **z);
/* Room for compressed input, and adding some (-1: past the room). */
size_t net_zlib_input_room(const struct net_zlib *z);
int net_zlib_input_add(struct net_zlib *z, const void *data, size_t len);
/* Whether inflating may give more without new input. */
bool net_zlib_input_pending(const struct net_zlib *z);
/* Inflates buffered input, appending at most max bytes to dst (which
 * must have room for them); *got_r: how many.  0, or -1 with *error_r
 * (a corrupt stream, or one the peer ended). */
int net_zlib_inflate(struct net_zlib *z, struct gn_buf *dst, size_t max, size_t *got_r,
		     const char **error_r);
/* Deflates data into out; net_zlib_flush() ends a batch (Z_SYNC_FLUSH)
 * when anything was deflated since the last.  0, or -1 when out's limit
 * would be passed. */
int net_zlib_deflate(struct net_zlib *z, const void *data, size_t len, struct gn_buf *out);
int net_zlib_flush(struct net_zlib *z, struct gn_buf *out);
/* Deflated since the last flush, and how many uncompressed bytes. */
bool net_zlib_output_dirty(const struct net_zlib *z);
size_t net_zlib_output_plain(const struct net_zlib *z);
/* What the layer holds: zlib's allocations and the input buffer. */
size_t net_zlib_memory(const struct net_zlib *z);

/* listener.c -> conn.c: an accepted nonblocking, close-on-exec socket.
 * conn.c owns fd from here on (closes it when refusing). */
void conn_accepted(struct net_listener *l, int fd,
		   const struct sockaddr *peer, socklen_t peer_len);

/* http.c: registers the core's "http" protocol handler (unless a module
 * did) and closes gn_http_mount(); listeners_check_protocols() calls it. */
void http_protocol_register(void);

/* Registered protocol handler by name; NULL if none (listener.c). */
const struct gn_protocol *protocol_find(const char *name, void **data_r);

#endif
