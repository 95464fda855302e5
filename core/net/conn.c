/*
 * core/net/conn.c: connections (gannet/conn.h), driven by the worker's loop.
 *
 * A connection is a state machine around one nonblocking socket:
 *
 *   CONNECTING     outbound (gn_conn_connect()): the nonblocking connect
 *                  is under way, bounded by its timer
 *   HANDSHAKE      implicit-TLS listeners: TLS handshake before open()
 *   OPEN           open() was called; input() sees whole input, output is
 *                  flushed as the socket allows
 *   STARTTLS_FLUSH gn_conn_starttls(): buffered input was dropped, the
 *                  output (the "go ahead" reply) is being flushed
 *   STARTTLS       the STARTTLS handshake; then OPEN again and tls_done()
 *   CLOSING        gn_conn_close(): flushing output (bounded by a timer)
 *   LINGER         closed for the protocol (close() was called, the per-IP
 *                  slot released): the write side is shut and unread input
 *                  is drained for a moment, so that the kernel does not
 *                  answer it with a RST that would destroy the last reply
 *                  before the client read it
 *   DONE           the socket is closed; the struct lives while referenced
 *
 * Handlers' calls (gn_conn_close, gn_conn_write, gn_conn_starttls,
 * gn_conn_input_resume) never re-enter the handler: they record what to do
 * and put the connection on the loop's "soon" queue (loop_soon(), worked
 * through before the loop next blocks).  So close() is never called
 * from inside the handler's own input().
 *
 * Buffers: the input buffer's limit is the protocol's max_input; the output
 * buffer's is 1 MiB.  Bytes are counted at the application level (inside
 * TLS; the compressed bytes when compressing).
 *
 * Compression (gn_conn_compress_start(), compress.c) sits between the
 * buffers and TLS: the input buffer holds inflated bytes, never more than
 * its limit; written bytes are deflated into the output buffer at once and
 * each batch ends with a sync flush just before the output is sent
 * (conn_flush()), so that one flush covers what a handler wrote in one
 * turn of the loop.
 *
 * Outbound connections (gn_conn_connect()) are the same state machine
 * with a connect in front: they belong to a pseudo-listener "outbound",
 * count against no per-IP or per-worker limit, and their close() is
 * called whatever happens once gn_conn_connect() succeeded (also when the
 * connect fails: open() was then never called), so the handler learns of
 * every outcome from the loop.  STARTTLS as the client
 * (gn_conn_starttls_client()) takes the same STARTTLS states with a
 * client session (tls.c) and checks the server's certificate against the
 * name given, recording the result (gn_conn_tls_verified()) for the
 * protocol to decide on.
 *
 * One line per connection open and close, and per TLS failure, goes to the
 * log; the listener's connection counts follow from them.
 */
#include "net/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>
#include <gnutls/abstract.h>
#include <zlib.h>

#define CONN_OUTPUT_LIMIT (1024u * 1024u)
#define CONN_DEFAULT_INPUT (64u * 1024u)
#define CONN_DEFAULT_IDLE_MS 300000ul
/* Longest wait for the output to drain after gn_conn_close(). */
#define CONN_CLOSE_FLUSH_S 5.0
/* Longest wait for the peer to close after we shut our side. */
#define CONN_LINGER_S 2.0
/* Longest TLS handshake (also bounded by the idle timeout). */
#define CONN_HANDSHAKE_MS 60000ul
#define CONN_CHUNK 16384u

enum conn_state {
	CS_CONNECTING,
	CS_HANDSHAKE,
	CS_OPEN,
	CS_STARTTLS_FLUSH,
	CS_STARTTLS,
	CS_CLOSING,
	CS_LINGER,
	CS_DONE,
};

struct gn_conn {
	struct gn_conn *prev, *next;	/* all connections of the process */
	struct loop_soon soon;		/* deferred progress */
	unsigned refs;
	enum conn_state state;
	int fd;
	ev_io io;
	ev_timer timer;		/* handshake, idle, flush or linger */
	struct net_listener *l;
	const struct gn_protocol *proto;
	void *proto_data;
	void *data;
	void **slots;
	unsigned n_slots;
	struct gn_pool *pool;

	struct gn_buf *in;
	size_t in_off;		/* consumed prefix of in, dropped later */
	size_t in_limit;
	struct gn_buf *out;
	size_t tls_send_pending;	/* size of a record send to repeat */
	struct net_zlib *z;		/* compressing (compress.c) */

	gnutls_session_t tls;
	bool is_tls;		/* handshake done */
	bool outbound;		/* gn_conn_connect() */
	bool tls_client;	/* our side of TLS is the client */
	bool tls_verified;	/* the server's certificate is valid for tls_name */
	char *tls_name;		/* the name to verify against, or NULL */
	const char *tls_verify_error;
	int connect_error;	/* errno of a connect that failed at once */
	const char *tls_version, *tls_cipher;
	char *sni;
	unsigned char *peer_cert, *spki;
	size_t peer_cert_len, spki_len;

	bool opened;		/* open() was called: close() will be */
	bool closing;		/* gn_conn_close() was called */
	bool paused;
	bool pause_felt;	/* input came while paused: read interest dropped */
	bool input_pending;	/* call input() from the loop */
	bool eof;
	bool shutdown_req;
	bool iplimit_held;
	bool counted;		/* in conns_active */

	double started;
	unsigned long long bytes_in, bytes_out;
	unsigned long idle_ms;
	char *reason;
	char id[32];
	char remote_ip[INET6_ADDRSTRLEN];
	char local_ip[INET6_ADDRSTRLEN];
	unsigned remote_port, local_port;
};

static struct gn_conn *conns;		/* list of all */
static unsigned conns_active;		/* not yet closed for the protocol */
static unsigned conn_counter;
/* The listener outbound connections belong to (names in log lines). */
static struct net_listener outbound_listener = {
	.name = (char *)"outbound", .tls = TLS_MODE_NONE, .fd = -1,
};

static void conn_progress(struct gn_conn *c);
static void conn_input(struct gn_conn *c);
static void conn_finish(struct gn_conn *c, bool linger);
static void addr_text(const struct sockaddr *sa, char *ip, size_t size, unsigned *port_r);

/* ---- helpers ---- */

static struct ev_loop *lp(void)
{
	if (core_loop == NULL)
		loop_init();
	return core_loop;
}

static size_t in_avail(const struct gn_conn *c)
{
	return gn_buf_len(c->in) - c->in_off;
}

static bool out_pending(const struct gn_conn *c)
{
	return gn_buf_len(c->out) > 0 || c->tls_send_pending > 0 ||
	       (c->z != NULL && net_zlib_output_dirty(c->z));
}

static bool input_allowed(const struct gn_conn *c)
{
	return c->state == CS_OPEN && !c->closing && !c->paused;
}

static void compact(struct gn_conn *c)
{
	if (c->in_off > 0) {
		gn_buf_consume(c->in, c->in_off);
		c->in_off = 0;
	}
}

static void set_reason(struct gn_conn *c, const char *reason)
{
	if (c->reason == NULL)
		c->reason = gn_strdup(reason != NULL ? reason : "closed");
}

static void timer_set(struct gn_conn *c, double seconds)
{
	c->timer.repeat = seconds;
	ev_timer_again(lp(), &c->timer);
}

static unsigned long idle_ms(const struct gn_conn *c)
{
	if (c->idle_ms > 0)
		return c->idle_ms;
	if (c->proto->idle_timeout_ms > 0)
		return c->proto->idle_timeout_ms;
	if (core_conf != NULL && core_conf->idle_timeout_ms > 0)
		return (unsigned long)core_conf->idle_timeout_ms;
	return CONN_DEFAULT_IDLE_MS;
}

static void idle_reset(struct gn_conn *c)
{
	if (c->state == CS_OPEN || c->state == CS_STARTTLS_FLUSH)
		timer_set(c, (double)idle_ms(c) / 1000.0);
}

static void conn_update_io(struct gn_conn *c)
{
	int ev = 0;

	switch (c->state) {
	case CS_CONNECTING:
		ev = EV_WRITE;
		break;
	case CS_HANDSHAKE:
	case CS_STARTTLS:
		ev = gnutls_record_get_direction(c->tls) ? EV_WRITE : EV_READ;
		break;
	case CS_OPEN:
		/* A pause keeps the read interest until input comes while
		 * paused (conn_io_cb()): a client mostly waits for the
		 * answer the pause waits for, and dropping the interest and
		 * taking it up again is an epoll_ctl() each time. */
		if (!c->closing && !c->eof && in_avail(c) < c->in_limit &&
		    (!c->paused || (!c->pause_felt && ev_is_active(&c->io) &&
				    (c->io.events & EV_READ))))
			ev |= EV_READ;
		if (out_pending(c))
			ev |= EV_WRITE;
		break;
	case CS_STARTTLS_FLUSH:
	case CS_CLOSING:
		if (out_pending(c))
			ev |= EV_WRITE;
		break;
	case CS_LINGER:
		ev = EV_READ;
		break;
	case CS_DONE:
		break;
	}
	if (ev_is_active(&c->io) && (c->io.events & (EV_READ | EV_WRITE)) == ev)
		return;
	ev_io_stop(lp(), &c->io);
	if (ev != 0 && c->fd >= 0) {
		ev_io_set(&c->io, c->fd, ev);
		ev_io_start(lp(), &c->io);
	}
}

/* ---- deferred work ---- */

static void deferred_cb(void *data)
{
	struct gn_conn *c = data;
	conn_progress(c);
	gn_conn_unref(&c);
}

static void conn_defer(struct gn_conn *c)
{
	if (c->soon.queued || c->state == CS_DONE)
		return;
	c->refs++;
	loop_soon(&c->soon, deferred_cb, c);
}

/* ---- lifetime ---- */

static void conn_free(struct gn_conn *c)
{
	if (c->tls != NULL)
		gnutls_deinit(c->tls);
	gn_buf_free(&c->in);
	gn_buf_free(&c->out);
	net_zlib_free(&c->z);
	gn_pool_free(&c->pool);
	gn_free(c->slots);
	gn_free(c->reason);
	gn_free(c);
}

void gn_conn_ref(struct gn_conn *c)
{
	c->refs++;
}

void gn_conn_unref(struct gn_conn **cp)
{
	struct gn_conn *c;
	if (cp == NULL || *cp == NULL)
		return;
	c = *cp;
	*cp = NULL;
	if (c->refs == 0) {
		gn_log(GN_LOG_ERROR, "core", "event=bug reason=\"connection unreferenced "
		       "too often\" id=%s", c->id);
		return;
	}
	if (--c->refs == 0)
		conn_free(c);
}

static void conn_destroy(struct gn_conn *c)
{
	if (c->state == CS_DONE)
		return;
	c->state = CS_DONE;
	ev_io_stop(lp(), &c->io);
	ev_timer_stop(lp(), &c->timer);
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->iplimit_held) {
		iplimit_release(c->remote_ip);
		c->iplimit_held = false;
	}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	gn_conn_unref(&c);	/* the list's reference */
}

static const char *remote_str(const struct gn_conn *c, char *buf, size_t size)
{
	bool v6 = strchr(c->remote_ip, ':') != NULL;
	snprintf(buf, size, "%s%s%s:%u", v6 ? "[" : "", c->remote_ip, v6 ? "]" : "",
		 c->remote_port);
	return buf;
}

/* Ends the connection for the protocol: the log line, close(), then either
 * a lingering close or at once. */
static void conn_finish(struct gn_conn *c, bool linger)
{
	char rbuf[INET6_ADDRSTRLEN + 16];

	if (c->state == CS_LINGER || c->state == CS_DONE)
		return;
	set_reason(c, "closed");
	c->closing = true;
	ev_timer_stop(lp(), &c->timer);
	if (linger && c->is_tls)
		(void)gnutls_bye(c->tls, GNUTLS_SHUT_WR);	/* best effort */
	/* Released before the log line, so "conn_close" means the slot is
	 * free again. */
	if (c->iplimit_held) {
		iplimit_release(c->remote_ip);
		c->iplimit_held = false;
	}
	gn_log(GN_LOG_INFO, "core", "event=conn_close id=%s listener=%s remote=%s "
	       "duration=%.3f bytes_in=%llu bytes_out=%llu tls=%s reason=%s",
	       c->id, c->l->name, remote_str(c, rbuf, sizeof(rbuf)),
	       ev_now(lp()) - c->started, c->bytes_in, c->bytes_out,
	       c->is_tls ? c->tls_version : "none", gn_log_quote(0, c->reason));
	if (c->counted) {
		c->counted = false;
		conns_active--;
	}
	c->state = CS_LINGER;
	c->refs++;
	if (c->opened) {
		c->opened = false;
		if (c->proto->close != NULL)
			c->proto->close(c, c->proto_data);
	}
	if (linger && c->state == CS_LINGER && c->fd >= 0 &&
	    shutdown(c->fd, SHUT_WR) == 0) {
		timer_set(c, CONN_LINGER_S);
		conn_update_io(c);
	} else {
		conn_destroy(c);
	}
	gn_conn_unref(&c);
}

/* A fatal error: no flushing. */
static void conn_abort(struct gn_conn *c, const char *reason)
{
	set_reason(c, reason);
	conn_finish(c, false);
}

/* ---- TLS ---- */

static void tls_failed(struct gn_conn *c, const char *reason)
{
	char rbuf[INET6_ADDRSTRLEN + 16];
	gn_log(GN_LOG_INFO, "core", "event=tls_failed id=%s listener=%s remote=%s "
	       "mode=%s reason=%s", c->id, c->l->name, remote_str(c, rbuf, sizeof(rbuf)),
	       c->tls_client ? "client" :
	       c->l->tls == TLS_MODE_STARTTLS ? "starttls" : "implicit",
	       gn_log_quote(0, reason));
}

static unsigned char *pool_dup(struct gn_pool *pool, const void *data, size_t len)
{
	unsigned char *p = gn_pool_alloc(pool, len ? len : 1);
	memcpy(p, data, len);
	return p;
}

static void tls_established(struct gn_conn *c)
{
	char name[256];
	size_t len = sizeof(name) - 1;
	unsigned type = 0, n = 0;
	const gnutls_datum_t *peers;

	c->is_tls = true;
	c->tls_version = gnutls_protocol_get_name(gnutls_protocol_get_version(c->tls));
	c->tls_cipher = gnutls_cipher_get_name(gnutls_cipher_get(c->tls));
	/* RFC 6066 3: the host name the client asked for. */
	if (gnutls_server_name_get(c->tls, name, &len, &type, 0) == 0 &&
	    type == GNUTLS_NAME_DNS) {
		name[len < sizeof(name) ? len : sizeof(name) - 1] = '\0';
		c->sni = gn_pool_strdup(c->pool, name);
	}
	if (c->tls_client && c->tls_name != NULL) {
		/* RFC 6125 through GnuTLS: the chain up to a trusted CA, and
		 * the name among the certificate's identities. */
		unsigned status = 0;
		int r = gnutls_certificate_verify_peers3(c->tls, c->tls_name, &status);
		c->tls_verified = r == 0 && status == 0;
		if (!c->tls_verified) {
			gnutls_datum_t out = { NULL, 0 };
			if (r < 0)
				c->tls_verify_error = gn_pool_strdup(c->pool, gnutls_strerror(r));
			else if (gnutls_certificate_verification_status_print(
					 status, GNUTLS_CRT_X509, &out, 0) == 0 && out.data != NULL) {
				size_t vl = strlen((const char *)out.data);
				while (vl > 0 && out.data[vl - 1] == ' ')
					vl--;	/* GnuTLS ends each sentence with one */
				c->tls_verify_error = gn_pool_strndup(c->pool, (const char *)out.data, vl);
			} else {
				c->tls_verify_error = "certificate not verified";
			}
			gnutls_free(out.data);
		}
	}
	peers = gnutls_certificate_get_peers(c->tls, &n);
	if (peers != NULL && n > 0) {
		gnutls_pubkey_t pk;
		gnutls_datum_t der = { NULL, 0 };
		c->peer_cert = pool_dup(c->pool, peers[0].data, peers[0].size);
		c->peer_cert_len = peers[0].size;
		if (gnutls_pubkey_init(&pk) == 0) {
			if (gnutls_pubkey_import_x509_raw(pk, &peers[0], GNUTLS_X509_FMT_DER, 0) == 0 &&
			    gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &der) == 0) {
				c->spki = pool_dup(c->pool, der.data, der.size);
				c->spki_len = der.size;
				gnutls_free(der.data);
			}
			gnutls_pubkey_deinit(pk);
		}
	}
	gn_log(GN_LOG_DEBUG, "core", "event=tls_established id=%s version=%s cipher=%s "
	       "sni=%s client_cert=%s", c->id, c->tls_version ? c->tls_version : "?",
	       c->tls_cipher ? c->tls_cipher : "?", c->sni ? gn_log_quote(0, c->sni) : "-",
	       c->spki ? "yes" : "no");
	if (c->tls_client)
		gn_log(GN_LOG_INFO, "core", "event=tls_client id=%s version=%s name=%s "
		       "verified=%s%s%s", c->id, c->tls_version ? c->tls_version : "?",
		       c->tls_name != NULL ? gn_log_quote(0, c->tls_name) : "-",
		       c->tls_name == NULL ? "not-checked" : c->tls_verified ? "yes" : "no",
		       c->tls_verify_error != NULL ? " error=" : "",
		       c->tls_verify_error != NULL ? gn_log_quote(1, c->tls_verify_error) : "");
}

static void conn_open_proto(struct gn_conn *c)
{
	c->state = CS_OPEN;
	idle_reset(c);
	c->opened = true;
	if (c->proto->open(c, c->proto_data) < 0) {
		gn_conn_close(c, "refused by protocol");
		return;
	}
	c->input_pending = true;	/* input that came with the handshake */
}

static void conn_handshake(struct gn_conn *c)
{
	int r;

	do {
		r = gnutls_handshake(c->tls);
	} while (r < 0 && r != GNUTLS_E_AGAIN && !gnutls_error_is_fatal(r));
	if (r == GNUTLS_E_AGAIN)
		return;
	if (r < 0) {
		bool starttls = c->state == CS_STARTTLS;
		tls_failed(c, gnutls_strerror(r));
		set_reason(c, "tls handshake failed");
		if (starttls && c->proto->tls_done != NULL && c->opened) {
			c->closing = true;
			c->proto->tls_done(c, 0, c->proto_data);
		}
		conn_abort(c, "tls handshake failed");
		return;
	}
	tls_established(c);
	if (c->state == CS_HANDSHAKE) {
		conn_open_proto(c);
	} else {
		c->state = CS_OPEN;
		idle_reset(c);
		if (c->proto->tls_done != NULL)
			c->proto->tls_done(c, 1, c->proto_data);
		c->input_pending = true;
	}
}

static int conn_tls_start(struct gn_conn *c)
{
	const char *error;
	bool cc = (c->proto->flags & GN_PROTO_CLIENT_CERT) != 0;
	if (tls_session_new(&c->tls, cc, &error) < 0) {
		c->tls = NULL;
		tls_failed(c, error);
		return -1;
	}
	gnutls_transport_set_int(c->tls, c->fd);
	return 0;
}

/* ---- I/O ---- */

/* Writes what the socket takes.  Returns 1 when the output is drained, 0
 * when the socket is full, -1 when the connection was aborted. */
static int conn_flush(struct gn_conn *c)
{
	/* RFC 4978 4: the end of a batch; the peer can decode all of it. */
	if (c->z != NULL && net_zlib_flush(c->z, c->out) < 0) {
		gn_log(GN_LOG_WARN, "core", "event=output_full id=%s limit=%u", c->id,
		       CONN_OUTPUT_LIMIT);
		conn_abort(c, "output buffer full");
		return -1;
	}
	while (out_pending(c)) {
		const char *data = gn_buf_data(c->out);
		size_t len = gn_buf_len(c->out);
		ssize_t r;

		if (c->tls != NULL && c->is_tls) {
			size_t n = c->tls_send_pending ? c->tls_send_pending
				 : (len > CONN_CHUNK ? CONN_CHUNK : len);
			r = gnutls_record_send(c->tls, data, n);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
				/* GnuTLS wants the very same call repeated. */
				c->tls_send_pending = n;
				return 0;
			}
			c->tls_send_pending = 0;
			if (r < 0) {
				conn_abort(c, gnutls_strerror((int)r));
				return -1;
			}
		} else {
			r = send(c->fd, data, len, MSG_NOSIGNAL);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return 0;
				conn_abort(c, strerror(errno));
				return -1;
			}
		}
		gn_buf_consume(c->out, (size_t)r);
		c->bytes_out += (unsigned long long)r;
	}
	return 1;
}

/* Reads at most want bytes from the socket (or TLS) into buf.  Returns 1
 * with *n_r > 0, 0 when nothing is there now or at the end of input (eof
 * set), -1 when the connection was aborted. */
static int conn_recv(struct gn_conn *c, char *buf, size_t want, size_t *n_r)
{
	*n_r = 0;
	for (;;) {
		ssize_t r;

		if (c->is_tls) {
			r = gnutls_record_recv(c->tls, buf, want);
			if (r == GNUTLS_E_AGAIN)
				return 0;
			if (r == GNUTLS_E_INTERRUPTED)
				continue;
			if (r == 0 || r == GNUTLS_E_PREMATURE_TERMINATION) {
				c->eof = true;
				return 0;
			}
			if (r < 0) {
				if (!gnutls_error_is_fatal((int)r))
					continue;	/* warning alert */
				conn_abort(c, gnutls_strerror((int)r));
				return -1;
			}
		} else {
			r = recv(c->fd, buf, want, 0);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return 0;
				conn_abort(c, strerror(errno));
				return -1;
			}
			if (r == 0) {
				c->eof = true;
				return 0;
			}
		}
		c->bytes_in += (unsigned long long)r;
		*n_r = (size_t)r;
		return 1;
	}
}

/* Compressed input: inflates what is buffered into the room the input
 * buffer has, and reads more from the socket only while there is room.
 * The input buffer's limit so bounds what a few compressed bytes can
 * become. */
static int conn_fill_compressed(struct gn_conn *c, size_t *got_r)
{
	char buf[CONN_CHUNK];

	for (;;) {
		size_t room = c->in_limit - in_avail(c), made = 0, zroom, n;
		const char *error;
		int r;

		if (room > 0 && net_zlib_inflate(c->z, c->in, room, &made, &error) < 0) {
			gn_log(GN_LOG_INFO, "core", "event=inflate_failed id=%s error=%s", c->id,
			       gn_log_quote(0, error));
			conn_abort(c, "corrupt compressed input");
			return -1;
		}
		*got_r += made;
		if (in_avail(c) >= c->in_limit || c->eof)
			return 0;
		zroom = net_zlib_input_room(c->z);
		if (zroom == 0)
			return 0;
		r = conn_recv(c, buf, zroom < sizeof(buf) ? zroom : sizeof(buf), &n);
		if (r <= 0)
			return r;
		(void)net_zlib_input_add(c->z, buf, n);	/* n <= zroom */
	}
}

/* Reads what fits into the input buffer.  Returns -1 when the connection
 * was aborted, else 0; *got_r: bytes read (inflated: the bytes the input
 * buffer gained). */
static int conn_fill(struct gn_conn *c, size_t *got_r)
{
	char buf[CONN_CHUNK];

	*got_r = 0;
	if (c->z != NULL)
		return conn_fill_compressed(c, got_r);
	while (!c->eof && in_avail(c) < c->in_limit) {
		size_t room = c->in_limit - in_avail(c);
		size_t want = room < sizeof(buf) ? room : sizeof(buf);
		size_t n;
		int r = conn_recv(c, buf, want, &n);

		if (r < 0)
			return -1;
		if (r == 0)
			break;
		/* Cannot fail: want <= room. */
		(void)gn_buf_append(c->in, buf, n);
		*got_r += n;
		if (!c->is_tls && n < want)
			break;	/* the socket is empty: spare a syscall */
	}
	return 0;
}

/* Feeds input() until it has nothing new to see. */
static void conn_input(struct gn_conn *c)
{
	for (int round = 0; round < 64; round++) {
		size_t got, before;

		if (!input_allowed(c))
			return;
		compact(c);
		if (conn_fill(c, &got) < 0)
			return;
		if (got > 0)
			idle_reset(c);
		if (got == 0 && !c->input_pending) {
			if (c->eof)
				gn_conn_close(c, "client closed");
			return;
		}
		c->input_pending = false;
		before = in_avail(c);
		c->proto->input(c, c->proto_data);
		if (!input_allowed(c))
			return;
		if (in_avail(c) >= c->in_limit) {
			/* Full, and the handler made no room. */
			if (c->proto->input_full != NULL)
				c->proto->input_full(c, c->proto_data);
			if (!input_allowed(c))
				return;
			if (in_avail(c) >= c->in_limit) {
				gn_conn_close(c, "input too long");
				return;
			}
		}
		if (got == 0 && in_avail(c) == before && !c->eof)
			return;
	}
	/* More may be waiting inside GnuTLS where the socket cannot signal
	 * it: come back from the loop. */
	c->input_pending = true;
	conn_defer(c);
}

/* ---- outbound ---- */

static void conn_connect_failed(struct gn_conn *c, int err)
{
	char reason[160];
	snprintf(reason, sizeof(reason), "connect: %s", strerror(err));
	gn_log(GN_LOG_INFO, "core", "event=connect_failed id=%s remote=%s port=%u "
	       "reason=%s", c->id, c->remote_ip, c->remote_port, gn_log_quote(0, strerror(err)));
	conn_abort(c, reason);
}

/* The socket became writable: the connect finished, one way or the other. */
static void conn_connected(struct gn_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int err = 0, one = 1;
	socklen_t elen = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		err = errno;
	if (err != 0) {
		conn_connect_failed(c, err);
		return;
	}
	if (getsockname(c->fd, (struct sockaddr *)&ss, &len) == 0)
		addr_text((struct sockaddr *)&ss, c->local_ip, sizeof(c->local_ip),
			  &c->local_port);
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	gn_log(GN_LOG_INFO, "core", "event=conn_connected id=%s remote=%s port=%u "
	       "local=%s duration=%.3f", c->id, c->remote_ip, c->remote_port, c->local_ip,
	       ev_now(lp()) - c->started);
	c->state = CS_OPEN;
	idle_reset(c);
	if (c->proto->open(c, c->proto_data) < 0)
		gn_conn_close(c, "refused by protocol");
}

/* Everything that needs no event: flushing, the next step of STARTTLS or
 * of closing, deferred input. */
static void conn_progress(struct gn_conn *c)
{
	if (c->state == CS_DONE || c->state == CS_LINGER)
		return;
	c->refs++;
	if (c->closing && (c->state == CS_HANDSHAKE || c->state == CS_STARTTLS ||
			   c->state == CS_CONNECTING)) {
		conn_abort(c, NULL);
		goto out;
	}
	if (c->state == CS_CONNECTING && c->connect_error != 0) {
		conn_connect_failed(c, c->connect_error);
		goto out;
	}
	if ((c->state == CS_OPEN || c->state == CS_STARTTLS_FLUSH ||
	     c->state == CS_CLOSING) && out_pending(c)) {
		int r = conn_flush(c);
		if (r < 0)
			goto out;
		if (r > 0 && c->state == CS_OPEN && !c->closing &&
		    c->proto->writable != NULL)
			c->proto->writable(c, c->proto_data);
	}
	if (c->state == CS_STARTTLS_FLUSH && !out_pending(c)) {
		c->state = CS_STARTTLS;
		timer_set(c, (double)(idle_ms(c) < CONN_HANDSHAKE_MS ? idle_ms(c)
						     : CONN_HANDSHAKE_MS) / 1000.0);
		conn_handshake(c);
	}
	if (c->state == CS_CLOSING && !out_pending(c)) {
		conn_finish(c, true);
		goto out;
	}
	if (c->input_pending && input_allowed(c))
		conn_input(c);
	if (c->state == CS_CLOSING && !out_pending(c)) {
		conn_finish(c, true);
		goto out;
	}
	if (c->state != CS_DONE && c->state != CS_LINGER)
		conn_update_io(c);
out:
	gn_conn_unref(&c);
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gn_conn *c = w->data;
	(void)loop;

	c->refs++;
	switch (c->state) {
	case CS_CONNECTING:
		conn_connected(c);
		break;
	case CS_HANDSHAKE:
	case CS_STARTTLS:
		conn_handshake(c);
		break;
	case CS_OPEN:
	case CS_STARTTLS_FLUSH:
	case CS_CLOSING:
		if ((revents & EV_WRITE) && out_pending(c)) {
			int r = conn_flush(c);
			if (r > 0 && c->state == CS_OPEN && !c->closing) {
				idle_reset(c);
				if (c->proto->writable != NULL)
					c->proto->writable(c, c->proto_data);
			}
		}
		if ((revents & EV_READ) && input_allowed(c))
			conn_input(c);
		else if ((revents & EV_READ) && c->paused)
			c->pause_felt = true;	/* conn_progress() drops the interest */
		break;
	case CS_LINGER: {
		char buf[4096];
		ssize_t r;
		do
			r = recv(c->fd, buf, sizeof(buf), 0);
		while (r > 0);
		if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			conn_destroy(c);
		break;
	}
	case CS_DONE:
		break;
	}
	conn_progress(c);
	gn_conn_unref(&c);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct gn_conn *c = w->data;
	(void)revents;

	ev_timer_stop(loop, w);
	c->refs++;
	switch (c->state) {
	case CS_CONNECTING:
		gn_log(GN_LOG_INFO, "core", "event=connect_failed id=%s remote=%s port=%u "
		       "reason=timeout", c->id, c->remote_ip, c->remote_port);
		conn_abort(c, "connect timeout");
		break;
	case CS_HANDSHAKE:
	case CS_STARTTLS:
		tls_failed(c, "handshake timeout");
		if (c->state == CS_STARTTLS && c->opened && c->proto->tls_done != NULL) {
			c->closing = true;
			c->proto->tls_done(c, 0, c->proto_data);
		}
		conn_abort(c, "tls handshake timeout");
		break;
	case CS_OPEN:
	case CS_STARTTLS_FLUSH:
		if (!c->closing && c->state == CS_OPEN && c->proto->timeout != NULL)
			c->proto->timeout(c, c->proto_data);
		gn_conn_close(c, "idle timeout");
		break;
	case CS_CLOSING:
		/* The peer does not read: give up on the rest. */
		conn_abort(c, NULL);
		break;
	case CS_LINGER:
		conn_destroy(c);
		break;
	case CS_DONE:
		break;
	}
	conn_progress(c);
	gn_conn_unref(&c);
}

/* ---- accepting ---- */

static void addr_text(const struct sockaddr *sa, char *ip, size_t size, unsigned *port_r)
{
	ip[0] = '\0';
	*port_r = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, ip, (socklen_t)size);
		*port_r = ntohs(s4->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip, (socklen_t)size);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, ip, (socklen_t)size);
		*port_r = ntohs(s6->sin6_port);
	}
}

/* Closes a connection refused before it opened, saying why where the
 * protocol has words for it and the listener speaks plain text first.  The
 * socket is nonblocking and fresh: one send fits, or the reply is lost. */
static void refuse(const struct net_listener *l, int fd)
{
	const struct gn_protocol *p = l->proto;
	if (l->tls != TLS_MODE_IMPLICIT &&
	    p->size >= offsetof(struct gn_protocol, busy_reply) + sizeof(p->busy_reply) &&
	    p->busy_reply != NULL)
		(void)!send(fd, p->busy_reply, strlen(p->busy_reply), MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

void conn_accepted(struct net_listener *l, int fd, const struct sockaddr *peer,
		   socklen_t peer_len)
{
	char ip[INET6_ADDRSTRLEN];
	unsigned port;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct gn_conn *c;
	int one = 1;
	(void)peer_len;

	addr_text(peer, ip, sizeof(ip), &port);
	if (core_conf != NULL && core_conf->max_conns > 0 &&
	    conns_active >= core_conf->max_conns) {
		gn_log(GN_LOG_WARN, "core", "event=conn_refused listener=%s remote=%s "
		       "port=%u reason=max_connections limit=%u", l->name, ip, port,
		       core_conf->max_conns);
		refuse(l, fd);
		return;
	}
	int ipl = iplimit_acquire(ip);
	if (ipl <= 0) {
		/* IPv6 clients count per network: say which. */
		char group[16] = "";
		if (strchr(ip, ':') != NULL)
			snprintf(group, sizeof(group), " prefix=/%u", iplimit_ipv6_prefix());
		if (ipl == 0)
			gn_log(GN_LOG_WARN, "core", "event=conn_refused listener=%s remote=%s "
			       "port=%u reason=connections_per_ip limit=%u%s", l->name, ip, port,
			       core_conf != NULL ? core_conf->max_conns_per_ip : 0, group);
		else
			gn_log(GN_LOG_WARN, "core", "event=conn_refused listener=%s remote=%s "
			       "port=%u reason=iplimit_table_full%s", l->name, ip, port, group);
		refuse(l, fd);
		return;
	}

	c = gn_calloc(1, sizeof(*c));
	c->refs = 1;		/* the list's */
	c->fd = fd;
	c->l = l;
	c->proto = l->proto;
	c->proto_data = l->proto_data;
	c->iplimit_held = true;
	c->pool = gn_pool_new();
	c->in_limit = c->proto->max_input > 0 ? c->proto->max_input : CONN_DEFAULT_INPUT;
	c->in = gn_buf_new(c->in_limit);
	c->out = gn_buf_new(CONN_OUTPUT_LIMIT);
	c->n_slots = modules_slot_count();
	c->slots = gn_calloc(c->n_slots ? c->n_slots : 1, sizeof(void *));
	c->started = ev_now(lp());
	snprintf(c->id, sizeof(c->id), "%x-%u", (unsigned)base_pid(), ++conn_counter);
	memcpy(c->remote_ip, ip, sizeof(ip));
	c->remote_port = port;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		addr_text((struct sockaddr *)&ss, c->local_ip, sizeof(c->local_ip),
			  &c->local_port);
	/* Line protocols write small replies; do not let Nagle hold them. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	c->next = conns;
	if (conns != NULL)
		conns->prev = c;
	conns = c;
	c->counted = true;
	conns_active++;
	ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
	c->io.data = c;
	ev_init(&c->timer, conn_timer_cb);
	c->timer.data = c;

	{
		char rbuf[INET6_ADDRSTRLEN + 16];
		bool v6 = strchr(c->local_ip, ':') != NULL;
		gn_log(GN_LOG_INFO, "core", "event=conn_open id=%s listener=%s remote=%s "
		       "local=%s%s%s:%u tls=%s conns=%u", c->id, l->name,
		       remote_str(c, rbuf, sizeof(rbuf)), v6 ? "[" : "", c->local_ip,
		       v6 ? "]" : "", c->local_port,
		       l->tls == TLS_MODE_IMPLICIT ? "implicit" :
		       l->tls == TLS_MODE_STARTTLS ? "starttls" : "none", conns_active);
	}

	c->refs++;
	if (l->tls == TLS_MODE_IMPLICIT) {
		c->state = CS_HANDSHAKE;
		if (conn_tls_start(c) < 0) {
			conn_abort(c, "tls not available");
		} else {
			unsigned long ms = idle_ms(c);
			timer_set(c, (double)(ms < CONN_HANDSHAKE_MS ? ms : CONN_HANDSHAKE_MS) / 1000.0);
			conn_handshake(c);
		}
	} else {
		conn_open_proto(c);
	}
	conn_progress(c);
	gn_conn_unref(&c);
}

/* ---- outbound connections ---- */

int gn_conn_connect(const char *ip, unsigned port, const struct gn_protocol *proto,
		    void *data, unsigned long timeout_ms, struct gn_conn **conn_r,
		    const char **error_r)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct gn_conn *c;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (ip == NULL || port == 0 || port > 65535) {
		*error_r = "no address or port to connect to";
		return -1;
	}
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		len = sizeof(*s6);
	} else {
		*error_r = "not an IPv4 or IPv6 address";
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = strerror(errno);
		return -1;
	}

	c = gn_calloc(1, sizeof(*c));
	c->refs = 1;		/* the list's */
	c->fd = fd;
	c->l = &outbound_listener;
	c->proto = proto;
	c->proto_data = data;
	c->outbound = true;
	c->opened = true;	/* close() follows whatever happens */
	c->pool = gn_pool_new();
	c->in_limit = proto->max_input > 0 ? proto->max_input : CONN_DEFAULT_INPUT;
	c->in = gn_buf_new(c->in_limit);
	c->out = gn_buf_new(CONN_OUTPUT_LIMIT);
	c->n_slots = modules_slot_count();
	c->slots = gn_calloc(c->n_slots ? c->n_slots : 1, sizeof(void *));
	c->started = ev_now(lp());
	snprintf(c->id, sizeof(c->id), "%x-%u", (unsigned)base_pid(), ++conn_counter);
	snprintf(c->remote_ip, sizeof(c->remote_ip), "%s", ip);
	c->remote_port = port;
	c->state = CS_CONNECTING;
	c->next = conns;
	if (conns != NULL)
		conns->prev = c;
	conns = c;
	ev_io_init(&c->io, conn_io_cb, fd, EV_WRITE);
	c->io.data = c;
	ev_init(&c->timer, conn_timer_cb);
	c->timer.data = c;
	gn_log(GN_LOG_INFO, "core", "event=conn_connect id=%s remote=%s port=%u "
	       "timeout_ms=%lu", c->id, ip, port, timeout_ms);

	/* Connected at once (loopback may) or refused at once: either way
	 * the handler hears of it from the loop, never from here. */
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS)
		c->connect_error = errno != 0 ? errno : ECONNREFUSED;
	timer_set(c, (double)(timeout_ms > 0 ? timeout_ms : CONN_HANDSHAKE_MS) / 1000.0);
	conn_defer(c);
	if (conn_r != NULL)
		*conn_r = c;
	return 0;
}

int gn_conn_starttls_client(struct gn_conn *c, const char *server_name,
			    const char **error_r)
{
	return gn_conn_starttls_client_identity(c, server_name, NULL, error_r);
}

int gn_conn_starttls_client_identity(struct gn_conn *c, const char *server_name,
				     const struct gn_tls_identity *id, const char **error_r)
{
	const char *error;

	if (!c->outbound || c->tls != NULL || c->z != NULL || c->state != CS_OPEN ||
	    c->closing) {
		*error_r = "TLS cannot start on this connection now";
		return -1;
	}
	if (tls_client_session_new(&c->tls, server_name, id, &error) < 0) {
		c->tls = NULL;
		tls_failed(c, error);
		*error_r = error;
		return -1;
	}
	gnutls_transport_set_int(c->tls, c->fd);
	c->tls_client = true;
	if (server_name != NULL && server_name[0] != '\0')
		c->tls_name = gn_pool_strdup(c->pool, server_name);
	/* The mirror of RFC 3207 5 on the server's side: what the server
	 * sent after its "go ahead" came in the clear and must not be read
	 * as if it came over TLS. */
	gn_buf_clear(c->in);
	c->in_off = 0;
	c->input_pending = false;
	c->state = CS_STARTTLS_FLUSH;
	conn_defer(c);
	return 0;
}

bool gn_conn_tls_verified(const struct gn_conn *c)
{
	return c->is_tls && c->tls_verified;
}

const char *gn_conn_tls_verify_error(const struct gn_conn *c)
{
	return c->tls_verify_error;
}

const char *gn_conn_close_reason(const struct gn_conn *c)
{
	return c->reason;
}

/* ---- the handler's API ---- */

void gn_conn_set_data(struct gn_conn *c, void *data)
{
	c->data = data;
}

void *gn_conn_data(const struct gn_conn *c)
{
	return c->data;
}

void gn_conn_slot_set(struct gn_conn *c, unsigned slot, void *value)
{
	if (slot >= c->n_slots) {
		gn_log(GN_LOG_ERROR, "core", "event=bug reason=\"connection slot %u out of "
		       "range\" id=%s", slot, c->id);
		return;
	}
	c->slots[slot] = value;
}

void *gn_conn_slot_get(const struct gn_conn *c, unsigned slot)
{
	return slot < c->n_slots ? c->slots[slot] : NULL;
}

struct gn_pool *gn_conn_pool(struct gn_conn *c)
{
	return c->pool;
}

int gn_conn_read_line(struct gn_conn *c, const char **line_r, size_t *len_r)
{
	const char *data = gn_buf_data(c->in) + c->in_off;
	size_t avail = in_avail(c);
	const char *nl = memchr(data, '\n', avail);

	if (nl == NULL) {
		*line_r = NULL;
		*len_r = 0;
		return avail >= c->in_limit ? -1 : 0;
	}
	*line_r = data;
	*len_r = (size_t)(nl - data) + 1;
	c->in_off += *len_r;
	return 1;
}

void gn_conn_input_peek(struct gn_conn *c, const char **data_r, size_t *len_r)
{
	*data_r = gn_buf_data(c->in) + c->in_off;
	*len_r = in_avail(c);
}

void gn_conn_input_consume(struct gn_conn *c, size_t n)
{
	size_t avail = in_avail(c);
	c->in_off += n < avail ? n : avail;
}

void gn_conn_input_pause(struct gn_conn *c)
{
	c->paused = true;
	if (c->state != CS_DONE && c->state != CS_LINGER)
		conn_update_io(c);
}

void gn_conn_input_resume(struct gn_conn *c)
{
	if (!c->paused)
		return;
	c->paused = false;
	c->pause_felt = false;
	if (c->state != CS_OPEN || c->closing)
		return;
	if (c->shutdown_req && c->proto->shutdown == NULL) {
		gn_conn_close(c, "shutdown");
		return;
	}
	/* Also when GnuTLS holds decrypted input (a record longer than the
	 * room that was left) or the peer closed meanwhile: the socket will
	 * not signal either. */
	c->input_pending = in_avail(c) > 0 || c->eof ||
			   (c->is_tls && gnutls_record_check_pending(c->tls) > 0) ||
			   (c->z != NULL && net_zlib_input_pending(c->z));
	conn_defer(c);
}

/* Into the output buffer, deflated when compressing. */
static int out_append(struct gn_conn *c, const void *data, size_t len)
{
	if (c->z != NULL)
		return net_zlib_deflate(c->z, data, len, c->out);
	return gn_buf_append(c->out, data, len);
}

int gn_conn_write(struct gn_conn *c, const void *data, size_t len)
{
	if (c->state == CS_LINGER || c->state == CS_DONE || c->state == CS_HANDSHAKE)
		return -1;
	if (out_append(c, data, len) < 0) {
		gn_log(GN_LOG_WARN, "core", "event=output_full id=%s limit=%u", c->id,
		       CONN_OUTPUT_LIMIT);
		gn_conn_close(c, "output buffer full");
		return -1;
	}
	conn_defer(c);
	return 0;
}

int gn_conn_printf(struct gn_conn *c, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (c->state == CS_LINGER || c->state == CS_DONE || c->state == CS_HANDSHAKE)
		return -1;
	va_start(ap, fmt);
	if (c->z != NULL) {
		struct gn_buf *b = gn_buf_new(CONN_OUTPUT_LIMIT);
		r = gn_buf_vprintf(b, fmt, ap);
		if (r >= 0)
			r = out_append(c, gn_buf_data(b), gn_buf_len(b));
		gn_buf_free(&b);
	} else {
		r = gn_buf_vprintf(c->out, fmt, ap);
	}
	va_end(ap);
	if (r < 0) {
		gn_log(GN_LOG_WARN, "core", "event=output_full id=%s limit=%u", c->id,
		       CONN_OUTPUT_LIMIT);
		gn_conn_close(c, "output buffer full");
		return -1;
	}
	conn_defer(c);
	return 0;
}

size_t gn_conn_output_pending(const struct gn_conn *c)
{
	size_t n = gn_buf_len(c->out);
	if (c->z != NULL)
		n += net_zlib_output_plain(c->z);
	return n;
}

int gn_conn_compress_start(struct gn_conn *c, const char **error_r)
{
	const char *error;
	size_t avail;

	if (c->z != NULL) {
		*error_r = "compression is already active";
		return -1;
	}
	if (c->state != CS_OPEN || c->closing) {
		*error_r = "the connection is not open";
		return -1;
	}
	/* What the peer sent after the command that asked for compression
	 * is compressed already: it is inflated from now on. */
	avail = in_avail(c);
	c->z = net_zlib_new(avail, Z_DEFAULT_COMPRESSION, &error);
	if (c->z == NULL) {
		gn_log(GN_LOG_ERROR, "core", "event=compress_failed id=%s error=%s", c->id,
		       gn_log_quote(0, error));
		*error_r = error;
		return -1;
	}
	if (avail > 0) {
		(void)net_zlib_input_add(c->z, gn_buf_data(c->in) + c->in_off, avail);
		c->in_off += avail;
		c->input_pending = true;
		conn_defer(c);
	}
	gn_log(GN_LOG_DEBUG, "core", "event=compress_start id=%s algorithm=deflate memory=%zu",
	       c->id, net_zlib_memory(c->z));
	return 0;
}

bool gn_conn_is_compressed(const struct gn_conn *c)
{
	return c->z != NULL;
}

void gn_conn_close(struct gn_conn *c, const char *reason)
{
	if (c->closing || c->state == CS_LINGER || c->state == CS_DONE)
		return;
	c->closing = true;
	set_reason(c, reason);
	if (c->state == CS_OPEN || c->state == CS_STARTTLS_FLUSH) {
		c->state = CS_CLOSING;
		timer_set(c, CONN_CLOSE_FLUSH_S);
	}
	/* HANDSHAKE and STARTTLS: conn_progress() aborts. */
	conn_defer(c);
}

bool gn_conn_is_closed(const struct gn_conn *c)
{
	return c->closing || c->state == CS_LINGER || c->state == CS_DONE;
}

void gn_conn_set_idle_timeout(struct gn_conn *c, unsigned long ms)
{
	c->idle_ms = ms;
	if (!c->closing)
		idle_reset(c);
}

bool gn_conn_can_starttls(const struct gn_conn *c)
{
	/* Not under compression: TLS goes below it, not above. */
	return c->l->tls == TLS_MODE_STARTTLS && c->tls == NULL && c->z == NULL &&
	       c->state == CS_OPEN && !c->closing && tls_ready();
}

int gn_conn_starttls(struct gn_conn *c)
{
	if (!gn_conn_can_starttls(c))
		return -1;
	if (conn_tls_start(c) < 0)
		return -1;
	/* RFC 3207 5 (and CVE-2011-0411): commands the client pipelined after
	 * STARTTLS came in the clear; they must not be run as if they came
	 * over TLS.  Drop them. */
	gn_buf_clear(c->in);
	c->in_off = 0;
	c->input_pending = false;
	c->state = CS_STARTTLS_FLUSH;
	conn_defer(c);
	return 0;
}

bool gn_conn_is_tls(const struct gn_conn *c)
{
	return c->is_tls;
}

const char *gn_conn_tls_version(const struct gn_conn *c)
{
	return c->is_tls ? c->tls_version : NULL;
}

const char *gn_conn_tls_cipher(const struct gn_conn *c)
{
	return c->is_tls ? c->tls_cipher : NULL;
}

const char *gn_conn_tls_sni(const struct gn_conn *c)
{
	return c->sni;
}

int gn_conn_peer_spki(const struct gn_conn *c, const unsigned char **der_r,
		      size_t *len_r)
{
	if (c->spki == NULL)
		return 0;
	*der_r = c->spki;
	*len_r = c->spki_len;
	return 1;
}

int gn_conn_peer_cert(const struct gn_conn *c, const unsigned char **der_r,
		      size_t *len_r)
{
	if (c->peer_cert == NULL)
		return 0;
	*der_r = c->peer_cert;
	*len_r = c->peer_cert_len;
	return 1;
}

int gn_conn_peer_chain_cert(const struct gn_conn *c, size_t index,
			    const unsigned char **der_r, size_t *len_r)
{
	const gnutls_datum_t *peers;
	unsigned n = 0;

	if (!c->is_tls || c->tls == NULL)
		return 0;
	peers = gnutls_certificate_get_peers(c->tls, &n);
	if (peers == NULL || index >= n)
		return 0;
	*der_r = peers[index].data;
	*len_r = peers[index].size;
	return 1;
}

int gn_conn_tls_channel_binding(struct gn_conn *c, const char *type,
				const unsigned char **data_r, size_t *len_r)
{
	gnutls_channel_binding_t cbtype;
	gnutls_datum_t d = { NULL, 0 };

	if (!c->is_tls || c->state == CS_DONE)
		return 0;
	/* RFC 5929 (tls-unique, tls-server-end-point), RFC 9266
	 * (tls-exporter, the one defined for TLS 1.3). */
	if (strcmp(type, "tls-unique") == 0)
		cbtype = GNUTLS_CB_TLS_UNIQUE;
	else if (strcmp(type, "tls-server-end-point") == 0)
		cbtype = GNUTLS_CB_TLS_SERVER_END_POINT;
	else if (strcmp(type, "tls-exporter") == 0)
		cbtype = GNUTLS_CB_TLS_EXPORTER;
	else
		return 0;
	if (gnutls_session_channel_binding(c->tls, cbtype, &d) < 0 || d.data == NULL)
		return 0;
	*data_r = pool_dup(c->pool, d.data, d.size);
	*len_r = d.size;
	gnutls_free(d.data);
	return 1;
}

const char *gn_conn_remote_ip(const struct gn_conn *c)
{
	return c->remote_ip;
}

unsigned gn_conn_remote_port(const struct gn_conn *c)
{
	return c->remote_port;
}

const char *gn_conn_local_ip(const struct gn_conn *c)
{
	return c->local_ip;
}

unsigned gn_conn_local_port(const struct gn_conn *c)
{
	return c->local_port;
}

const char *gn_conn_listener(const struct gn_conn *c)
{
	return c->l->name;
}

const char *gn_conn_id(const struct gn_conn *c)
{
	return c->id;
}

/* ---- the process's connections ---- */

void conns_shutdown(void)
{
	for (struct gn_conn *c = conns; c != NULL; c = c->next) {
		if (c->state == CS_LINGER || c->state == CS_DONE || c->closing)
			continue;
		c->shutdown_req = true;
		c->refs++;
		if (c->state != CS_OPEN) {
			gn_conn_close(c, "shutdown");
		} else if (c->proto->shutdown != NULL) {
			c->proto->shutdown(c, c->proto_data);
		} else if (!c->paused) {
			gn_conn_close(c, "shutdown");
		}
		/* The list may not have changed under us: closing is deferred. */
		c->refs--;
	}
}

void conns_close_all(const char *reason)
{
	/* Closed connections leave the list, so take the head until empty. */
	while (conns != NULL) {
		struct gn_conn *c = conns;
		c->refs++;
		if (c->state != CS_LINGER && c->state != CS_DONE) {
			set_reason(c, reason);
			conn_finish(c, false);
		}
		conn_destroy(c);
		gn_conn_unref(&c);
	}
}

unsigned conns_count(void)
{
	return conns_active;
}
