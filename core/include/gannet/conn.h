/*
 * gannet/conn.h: protocol handlers and the connections they serve.
 *
 * A module registers a protocol handler by name in its register phase; the
 * config file attaches handlers to listeners (listeners = ({ port = 25;
 * protocol = "smtp"; tls = "starttls"; })).  Workers accept connections and
 * drive each one from the event loop: the core owns the socket, the TLS
 * session and two buffers with hard limits; the handler sees whole input in
 * the input buffer and queues output, and never blocks.
 *
 * Lifetime: open() is called once the connection is ready (after the TLS
 * handshake on implicit-TLS listeners); close() exactly once at the end,
 * whatever the reason.  After gn_conn_close() no more input() is called.
 * A handler that keeps a connection pointer across the loop (a pending hook,
 * a timer) takes a reference with gn_conn_ref() and checks
 * gn_conn_is_closed() when it comes back.
 */
#ifndef GANNET_CONN_H
#define GANNET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <gannet/module.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gn_conn;
struct gn_pool;

/* Request a client certificate during TLS handshakes (never required). */
#define GN_PROTO_CLIENT_CERT 0x1u

struct gn_protocol {
	size_t size;		/* sizeof(struct gn_protocol) */
	const char *name;	/* matched against listeners' protocol */
	unsigned flags;		/* GN_PROTO_* */
	/* Input buffer limit: the longest line or chunk the handler needs to
	 * see whole.  0: 64 KiB. */
	size_t max_input;
	/* Idle timeout; 0: the core default (5 minutes).  The handler may
	 * change it per connection with gn_conn_set_idle_timeout(). */
	unsigned long idle_timeout_ms;

	/* The connection is ready: send the greeting.  -1 closes it. */
	int (*open)(struct gn_conn *conn, void *data);
	/* New input is in the input buffer. */
	void (*input)(struct gn_conn *conn, void *data);
	/* The input buffer is full (limit reached) with no room to read: the
	 * handler must consume or close.  NULL: the core closes. */
	void (*input_full)(struct gn_conn *conn, void *data);
	/* The output buffer drained (used to stream large responses). May be
	 * NULL. */
	void (*writable)(struct gn_conn *conn, void *data);
	/* A STARTTLS handshake finished: ok 1, or 0 (the connection then
	 * closes). May be NULL. */
	void (*tls_done)(struct gn_conn *conn, int ok, void *data);
	/* Idle timeout: the handler may write a last line; the connection
	 * then closes.  May be NULL. */
	void (*timeout)(struct gn_conn *conn, void *data);
	/* The server is stopping: the handler ends the session at the next
	 * point where that is clean (or now).  Sessions still open when the
	 * grace period ends are closed.  May be NULL: closed at once when
	 * idle. */
	void (*shutdown)(struct gn_conn *conn, void *data);
	/* The connection is gone; free the session. */
	void (*close)(struct gn_conn *conn, void *data);

	/* Written, best effort, to a connection the core refuses before it
	 * opens (connections per IP, connections per worker) on a listener
	 * without implicit TLS, so the peer learns why ("421 4.7.0 too many
	 * connections\r\n"); NULL: closed silently. */
	const char *busy_reply;
};

/* Register phase.  proto must stay valid for the life of the process. */
int gn_protocol_register(struct gn_module_ctx *ctx,
			 const struct gn_protocol *proto, void *data,
			 const char **error_r);

/* Session data owned by the handler. */
void gn_conn_set_data(struct gn_conn *conn, void *data);
void *gn_conn_data(const struct gn_conn *conn);
/* Per-module slots (gn_module_slot()). */
void gn_conn_slot_set(struct gn_conn *conn, unsigned slot, void *value);
void *gn_conn_slot_get(const struct gn_conn *conn, unsigned slot);
/* A pool freed when the connection is freed. */
struct gn_pool *gn_conn_pool(struct gn_conn *conn);

/* Input.  gn_conn_read_line() returns 1 with the next line including its
 * terminator (LF, or CRLF) in *line_r/ *len_r and consumes it; 0 when no
 * whole line is buffered; -1 when the buffer is full without a line end.
 * The pointer stays valid until the handler returns to the loop. */
int gn_conn_read_line(struct gn_conn *conn, const char **line_r, size_t *len_r);
/* Raw view of the buffered input and explicit consumption. */
void gn_conn_input_peek(struct gn_conn *conn, const char **data_r, size_t *len_r);
void gn_conn_input_consume(struct gn_conn *conn, size_t n);
/* Stop and resume calling input() (while a hook or a query is pending).
 * Resuming with input buffered calls input() from the loop. */
void gn_conn_input_pause(struct gn_conn *conn);
void gn_conn_input_resume(struct gn_conn *conn);

/* Output.  Returns 0, or -1 when the output buffer limit (1 MiB) would be
 * passed: then the connection closes. */
int gn_conn_write(struct gn_conn *conn, const void *data, size_t len);
int gn_conn_printf(struct gn_conn *conn, const char *fmt, ...) GN_PRINTF(2, 3);
/* Bytes written and not yet sent.  With compression: the compressed bytes
 * waiting for the socket plus the uncompressed size of what was written
 * since the last flush (the end of the previous turn of the loop), so
 * that a handler streaming a response in one turn sees it grow by what it
 * writes even while zlib holds it back. */
size_t gn_conn_output_pending(const struct gn_conn *conn);

/* Compression (ABI 1.1): from now on both directions are raw DEFLATE
 * streams (RFC 1951, as IMAP COMPRESS=DEFLATE, RFC 4978, has them).  Output
 * already queued (the reply that accepted compression) goes out as it is;
 * what is written after is compressed, and each turn of the loop ends with
 * a sync flush, so the peer can decode every response when it arrives.
 * Input still buffered is taken as compressed (the peer's first bytes
 * after its request).  Inflated input is bounded by the input buffer's
 * limit (max_input) like any other: what a few compressed bytes expand to
 * fills the buffer and then input_full() (or the close) follows.  Costs
 * about 205 KiB per connection: zlib's windows and buffers (measured by
 * t/unit/test_compress).  Corrupt
 * compressed input closes the connection (logged).  Returns 0, or -1 with
 * *error_r when already compressing or the connection is closing.  Call
 * from the handler (input()); STARTTLS is no longer possible after. */
int gn_conn_compress_start(struct gn_conn *conn, const char **error_r);
bool gn_conn_is_compressed(const struct gn_conn *conn);

/* Closes after the output is flushed (bounded by a short timeout).  reason
 * goes to the log. */
void gn_conn_close(struct gn_conn *conn, const char *reason);
bool gn_conn_is_closed(const struct gn_conn *conn);
void gn_conn_ref(struct gn_conn *conn);
void gn_conn_unref(struct gn_conn **conn);

void gn_conn_set_idle_timeout(struct gn_conn *conn, unsigned long ms);

/* TLS.  gn_conn_can_starttls(): the listener offers STARTTLS and the
 * connection is not yet encrypted.  gn_conn_starttls() discards buffered
 * input (RFC 3207 5: no commands pipelined past STARTTLS), flushes output,
 * and starts the handshake; tls_done() follows.  Returns -1 when TLS is not
 * possible here. */
bool gn_conn_can_starttls(const struct gn_conn *conn);
int gn_conn_starttls(struct gn_conn *conn);
bool gn_conn_is_tls(const struct gn_conn *conn);
const char *gn_conn_tls_version(const struct gn_conn *conn);	/* "TLS1.3" or NULL */
const char *gn_conn_tls_cipher(const struct gn_conn *conn);	/* "AES-256-GCM" or NULL */
const char *gn_conn_tls_sni(const struct gn_conn *conn);	/* or NULL */
/* The peer certificate's DER SubjectPublicKeyInfo, when the peer sent a
 * certificate.  Returns 1 and sets the pointer (valid while the connection
 * lives), or 0 when there is none. */
int gn_conn_peer_spki(const struct gn_conn *conn, const unsigned char **der_r,
		      size_t *len_r);
/* The peer's whole certificate in DER; same contract. */
int gn_conn_peer_cert(const struct gn_conn *conn, const unsigned char **der_r,
		      size_t *len_r);
/* ABI 1.1: certificate index of the chain the peer sent (0 the leaf,
 * then as the peer ordered them), in DER: 1 with the pointer (valid
 * while the connection lives), or 0 when there is no such certificate.
 * For DANE (RFC 7672), which looks at the chain itself. */
int gn_conn_peer_chain_cert(const struct gn_conn *conn, size_t index,
			    const unsigned char **der_r, size_t *len_r);
/* Channel binding data ("tls-unique", "tls-server-end-point",
 * "tls-exporter") allocated from the connection's pool.  Returns 1, or 0
 * when not available. */
int gn_conn_tls_channel_binding(struct gn_conn *conn, const char *type,
				const unsigned char **data_r, size_t *len_r);

/* ---- outbound connections (ABI 1.1) ----
 *
 * gn_conn_connect() starts a nonblocking connect to ip (IPv4 or IPv6
 * text) and port for a protocol handler, and returns at once.  From the
 * loop follows open() when connected (idle timeouts apply from then on),
 * or, when the connect fails or takes longer than timeout_ms (0: 60 s),
 * close() without open(); gn_conn_close_reason() then says why
 * ("connect: Connection refused", "connect timeout").  close() is called
 * exactly once either way, never from inside gn_conn_connect().  *conn_r
 * (may be NULL) is valid until close() returns; take a reference to keep
 * it longer.  The handler's max_input, idle_timeout_ms, input(),
 * writable(), tls_done() and timeout() work as for accepted connections;
 * outbound connections count against no connection limit.  Returns 0, or
 * -1 with *error_r (not an address, no socket). */
int gn_conn_connect(const char *ip, unsigned port, const struct gn_protocol *proto,
		    void *data, unsigned long timeout_ms, struct gn_conn **conn_r,
		    const char **error_r);
/* STARTTLS as the client on an outbound connection: buffered input is
 * dropped (what the server sent after its go-ahead came in the clear),
 * output is flushed, then the handshake; tls_done() follows.  SNI carries
 * server_name when it is a host name (RFC 6066 3).  When server_name is
 * not NULL the server's certificate is verified for it (chain to a trusted
 * CA: the system's store and gn_conn_tls_client_trust(); the name as RFC
 * 6125 says): the result is recorded, not enforced, so the protocol
 * decides (opportunistic TLS goes on unverified).  Returns 0, or -1 with
 * *error_r when TLS cannot start (not outbound, already TLS, closing). */
int gn_conn_starttls_client(struct gn_conn *conn, const char *server_name,
			    const char **error_r);
/* A client certificate to present in the handshake (ABI 1.1): the
 * server identifies the client by its public key (SASL EXTERNAL, or a
 * login right after the handshake).  From a PEM text holding one
 * unencrypted private key and its certificate (chain), or from a raw
 * 32-byte Ed25519 seed, for which a minimal self-signed certificate is
 * made in memory.  The caller owns the identity; it must outlive the
 * connections it is given to.  0, or -1 with *error_r (valid until the
 * next call). */
struct gn_tls_identity;
int gn_conn_tls_identity_pem(const char *pem, size_t len, struct gn_tls_identity **id_r,
			     const char **error_r);
int gn_conn_tls_identity_ed25519(const unsigned char *seed, size_t seed_len,
				 struct gn_tls_identity **id_r, const char **error_r);
/* Accepts NULL; sets *id to NULL. */
void gn_conn_tls_identity_free(struct gn_tls_identity **id);
/* gn_conn_starttls_client() presenting id's certificate (NULL: none). */
int gn_conn_starttls_client_identity(struct gn_conn *conn, const char *server_name,
				     const struct gn_tls_identity *id, const char **error_r);
/* Whether the server's certificate verified for the name given to
 * gn_conn_starttls_client(); why not (a GnuTLS text) or NULL. */
bool gn_conn_tls_verified(const struct gn_conn *conn);
const char *gn_conn_tls_verify_error(const struct gn_conn *conn);
/* Adds the CA certificates of a PEM file to what client sessions trust,
 * for the life of the process.  0, or -1 with *error_r. */
int gn_conn_tls_client_trust(const char *path, const char **error_r);
/* Why the connection closed (the reason given to gn_conn_close() or the
 * core's own), or NULL while it is open; valid until the connection is
 * freed. */
const char *gn_conn_close_reason(const struct gn_conn *conn);

/* Endpoints, as text. */
const char *gn_conn_remote_ip(const struct gn_conn *conn);
unsigned gn_conn_remote_port(const struct gn_conn *conn);
const char *gn_conn_local_ip(const struct gn_conn *conn);
unsigned gn_conn_local_port(const struct gn_conn *conn);
const char *gn_conn_listener(const struct gn_conn *conn);	/* listener name */
/* Short unique id for log lines ("c1a2b3-17"). */
const char *gn_conn_id(const struct gn_conn *conn);

#ifdef __cplusplus
}
#endif
#endif
