/*
 * core/net/http.c: HTTP served by the core (gannet/http.h).
 *
 * The core's protocol handler "http" sits on the connection layer like any
 * other: the listener accepts (per-IP and per-worker limits counted in one
 * place, iplimit.c), conn.c terminates TLS with the deployment's
 * certificates (SNI, priorities, logging as for SMTP and IMAP), and this
 * file hands the plain bytes to libmicrohttpd through a socketpair: one end
 * is ours, the other goes to MHD_add_connection() with the client's
 * address.  So MHD never listens and never sees TLS; it parses HTTP/1.1
 * (chunked bodies, keep-alive, pipelining, 100-continue, its own 400s) and
 * calls the access handler below.  The price is one socketpair and one
 * copy per connection, paid for keeping accept, limits and TLS single.
 *
 * MHD runs in each worker with no thread of its own (MHD_USE_EPOLL without
 * an internal thread): its epoll descriptor is watched from the libev loop
 * and MHD_run() called when it is readable or when MHD_get_timeout() says;
 * the daemon is made on the first HTTP connection of the process, after
 * the fork.
 *
 * A request: the URI-log callback makes it (raw URI kept: path and query as
 * sent), the first call of the access handler checks header size, mount,
 * method and Content-Length, the next ones collect the body (http.max_body),
 * the last parses forms and calls the mount's handler.  A handler that has
 * not answered when it returns gets its connection suspended
 * (MHD_suspend_connection) until gn_http_respond*() resumes it.
 */
#include "net/internal.h"

#include <gannet/http.h>

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define HTTP_MAX_FIELDS 1000
/* What our end of a socketpair reads at a time, and the output a client
 * may leave unread before we stop reading MHD's answer.  We read again
 * when the client took all of it (gn_protocol.writable): small, so that a
 * slow but steady reader shows MHD progress well within its timeout
 * (http.request_timeout counts from MHD's last successful write). */
#define HTTP_CHUNK 16384
#define HTTP_OUT_HIGH (64 * 1024)
/* A chunked body over http.max_body is read on, to answer 413 at its end,
 * for this many more bytes; past them the connection closes. */
#define HTTP_DISCARD_MAX (1024 * 1024)

/* ---- mounts (register phase, then read-only) ---- */

struct http_mount {
	char *prefix;
	size_t prefix_len;
	char *methods;		/* " GET POST " or NULL */
	gn_http_handler_fn *handler;
	void *data;
	char *module;
};

static struct http_mount *mounts;
static size_t n_mounts;
/* Closed with the protocol registry, at the end of the register phase. */
static bool mounts_closed;

int gn_http_mount(struct gn_module_ctx *ctx, const char *prefix, const char *methods,
		  gn_http_handler_fn *handler, void *data, const char **error_r)
{
	if (mounts_closed) {
		*error_r = "HTTP paths can only be mounted in the register phase";
		return -1;
	}
	if (prefix == NULL || prefix[0] != '/' || handler == NULL) {
		*error_r = "an HTTP mount needs a prefix starting with \"/\" and a handler";
		return -1;
	}
	for (const char *p = prefix; *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#' || *p == 0x7f) {
			*error_r = "an HTTP mount's prefix has a space, control character, ? or #";
			return -1;
		}
	}
	for (size_t i = 0; i < n_mounts; i++) {
		if (strcmp(mounts[i].prefix, prefix) == 0) {
			*error_r = "this HTTP prefix is already mounted";
			return -1;
		}
	}
	mounts = gn_realloc(mounts, (n_mounts + 1) * sizeof(*mounts));
	struct http_mount *m = &mounts[n_mounts++];
	m->prefix = gn_strdup(prefix);
	m->prefix_len = strlen(prefix);
	m->methods = methods != NULL ? gn_strdup_printf(" %s ", methods) : NULL;
	m->handler = handler;
	m->data = data;
	m->module = gn_strdup(ctx != NULL ? gn_module_name(ctx) : "core");
	gn_log(GN_LOG_DEBUG, "http", "event=mounted prefix=%s module=%s", prefix, m->module);
	return 0;
}

static const struct http_mount *mount_find(const char *path)
{
	const struct http_mount *best = NULL;
	for (size_t i = 0; i < n_mounts; i++) {
		const struct http_mount *m = &mounts[i];
		if (strncmp(path, m->prefix, m->prefix_len) == 0 &&
		    (best == NULL || m->prefix_len > best->prefix_len))
			best = m;
	}
	return best;
}

static bool mount_allows(const struct http_mount *m, const char *method)
{
	if (m->methods == NULL)
		return true;
	/* RFC 9110 9.3.2: HEAD is GET without the content (MHD leaves it
	 * out). */
	if (strcmp(method, "HEAD") == 0)
		method = "GET";
	size_t n = strlen(method);
	for (const char *p = strstr(m->methods, method); p != NULL;
	     p = strstr(p + 1, method)) {
		if (p[-1] == ' ' && p[n] == ' ')
			return true;
	}
	return false;
}

/* ---- the process's daemon ---- */

struct http_bridge;

static struct MHD_Daemon *daemon_;
static struct gn_io *daemon_io;
static ev_timer daemon_timer;
/* Bridges by the descriptor of MHD's end, to find them from MHD's
 * connection-started notification. */
static struct http_bridge **by_fd;
static size_t n_by_fd;

static void daemon_run(void);

static void daemon_schedule(void)
{
	MHD_UNSIGNED_LONG_LONG ms;

	ev_timer_stop(core_loop, &daemon_timer);
	if (daemon_ == NULL || MHD_get_timeout(daemon_, &ms) != MHD_YES)
		return;
	/* 0: MHD has work buffered; the timer then fires on the next turn of
	 * the loop (an idle watcher would starve while other connections
	 * keep the worker busy). */
	ev_timer_set(&daemon_timer, (ev_tstamp)ms / 1000.0, 0.0);
	ev_timer_start(core_loop, &daemon_timer);
}

static void daemon_run(void)
{
	if (daemon_ == NULL)
		return;
	MHD_run(daemon_);
	daemon_schedule();
}

/* Run MHD once the current callback returns (after a resume, a new
 * connection, bytes written to it): never from inside its own callbacks. */
static void daemon_kick_soon(void)
{
	if (daemon_ == NULL)
		return;
	ev_timer_stop(core_loop, &daemon_timer);
	ev_timer_set(&daemon_timer, 0.0, 0.0);
	ev_timer_start(core_loop, &daemon_timer);
}

static void daemon_io_cb(int fd, unsigned events, void *data)
{
	daemon_run();
}

static void daemon_timer_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	daemon_run();
}


/* ---- requests ---- */

struct http_field {
	char *name, *filename, *ctype;
	struct gn_buf *value;
};

struct http_header {
	char *name, *value;
};

struct gn_http_request {
	struct MHD_Connection *mc;
	struct http_bridge *br;
	const struct http_mount *mount;
	struct gn_pool *pool;
	char *method;
	char *path;		/* raw */
	char *query;		/* raw, "" when none */
	char *path_decoded;	/* MHD's url */
	struct gn_buf *body;
	bool body_too_big;
	size_t discarded;	/* body bytes past the limit, dropped */
	struct http_field *fields;
	size_t n_fields;
	bool fields_failed;
	int auth;		/* 0 not parsed, 1 parsed */
	int auth_result;
	char *user, *password;

	bool started;		/* first access-handler call done */
	bool handled;		/* handler called */
	bool in_handler;
	bool suspended;
	bool answered;		/* a gn_http_respond*() call */
	bool queued;		/* given to MHD */
	bool completed;		/* MHD is done with it */
	unsigned status;
	char *resp_ctype;
	void *resp_body;
	size_t resp_len;
	struct http_header *resp_headers;
	size_t n_resp_headers;
};

/* ---- connections: the bridge between gn_conn and MHD ---- */

struct http_bridge {
	struct gn_conn *conn;	/* NULL once closed */
	int fd;			/* our end; -1 once closed */
	int mhd_fd;		/* MHD's end (MHD owns it) */
	struct gn_io *io;
	unsigned refs;		/* gn_conn side, MHD side */
	unsigned active;	/* requests MHD has under way */
	bool write_blocked;	/* input paused until fd is writable */
	bool read_paused;	/* client too slow: MHD's output waits */
	bool shutdown;
	bool mhd_closed;	/* MHD's end refused a write: input is dropped */
	bool tls;
	char ip[INET6_ADDRSTRLEN];
	char id[32];
};

static void bridge_unref(struct http_bridge *br)
{
	if (--br->refs > 0)
		return;
	gn_free(br);
}

static void bridge_set_events(struct http_bridge *br)
{
	if (br->io == NULL)
		return;
	unsigned ev = 0;
	if (!br->read_paused)
		ev |= GN_IO_READ;
	if (br->write_blocked)
		ev |= GN_IO_WRITE;
	gn_io_set_events(br->io, ev);
}

/* Stop sending requests to MHD's end (graceful stop, between requests):
 * MHD finishes and closes, and our read sees the end. */
static void bridge_half_close(struct http_bridge *br)
{
	if (br->fd >= 0)
		shutdown(br->fd, SHUT_WR);
	daemon_kick_soon();
}

static void bridge_io_cb(int fd, unsigned events, void *data)
{
	struct http_bridge *br = data;

	if ((events & GN_IO_WRITE) && br->write_blocked) {
		br->write_blocked = false;
		bridge_set_events(br);
		if (br->conn != NULL)
			gn_conn_input_resume(br->conn);
	}
	if (!(events & GN_IO_READ) || br->conn == NULL)
		return;
	char buf[HTTP_CHUNK];
	while (gn_conn_output_pending(br->conn) < HTTP_OUT_HIGH) {
		ssize_t n = read(br->fd, buf, sizeof(buf));
		if (n > 0) {
			if (gn_conn_write(br->conn, buf, (size_t)n) < 0)
				return;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		/* MHD closed its end: the connection is over (output
		 * already queued is flushed by gn_conn_close()). */
		gn_conn_close(br->conn, n == 0 ? "http: closed" : "http: read error");
		return;
	}
	br->read_paused = true;
	bridge_set_events(br);
}

static int http_open(struct gn_conn *conn, void *data);
static void http_input(struct gn_conn *conn, void *data);
static void http_writable(struct gn_conn *conn, void *data);
static void http_shutdown(struct gn_conn *conn, void *data);
static void http_close(struct gn_conn *conn, void *data);

static void http_input(struct gn_conn *conn, void *data)
{
	struct http_bridge *br = gn_conn_data(conn);
	const char *in;
	size_t len;

	if (br == NULL || br->fd < 0)
		return;
	gn_conn_input_peek(conn, &in, &len);
	if (br->mhd_closed) {
		gn_conn_input_consume(conn, len);
		return;
	}
	while (len > 0) {
		ssize_t n = write(br->fd, in, len);
		if (n > 0) {
			gn_conn_input_consume(conn, (size_t)n);
			in += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			gn_conn_input_pause(conn);
			br->write_blocked = true;
			bridge_set_events(br);
			break;
		}
		/* MHD closed its end: it answered without reading the rest
		 * (413 for a Content-Length over http.max_body) and closed.
		 * Its answer may still wait on our end: closing now would
		 * lose it (the client saw the connection end without a
		 * response, in t/integration/290's 413 when its body came
		 * before our read of the answer).  The client's bytes are
		 * dropped from now on, and the read of our end passes the
		 * answer on and closes at its end of file. */
		br->mhd_closed = true;
		gn_conn_input_consume(conn, len);
		bridge_io_cb(br->fd, GN_IO_READ, br);
		return;
	}
	daemon_kick_soon();
}

static void http_writable(struct gn_conn *conn, void *data)
{
	struct http_bridge *br = gn_conn_data(conn);
	if (br != NULL && br->read_paused) {
		br->read_paused = false;
		bridge_set_events(br);
		bridge_io_cb(br->fd, GN_IO_READ, br);
	}
}

static void http_shutdown(struct gn_conn *conn, void *data)
{
	struct http_bridge *br = gn_conn_data(conn);
	if (br == NULL) {
		gn_conn_close(conn, "shutdown");
		return;
	}
	br->shutdown = true;
	if (br->active == 0)
		bridge_half_close(br);
}

static void http_close(struct gn_conn *conn, void *data)
{
	struct http_bridge *br = gn_conn_data(conn);
	if (br == NULL)
		return;
	gn_conn_set_data(conn, NULL);
	br->conn = NULL;
	gn_io_free(&br->io);
	if (br->fd >= 0)
		close(br->fd);	/* MHD reads the end and lets go */
	br->fd = -1;
	daemon_kick_soon();
	bridge_unref(br);
}

static const struct gn_protocol http_protocol = {
	.size = sizeof(struct gn_protocol),
	.name = "http",
	.max_input = 64 * 1024,
	.open = http_open,
	.input = http_input,
	.writable = http_writable,
	.shutdown = http_shutdown,
	.close = http_close,
	.busy_reply = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
		      "Content-Type: application/json\r\nContent-Length: 68\r\n\r\n"
		      "{\"Code\":\"server\",\"Message\":\"too many connections, try again later\"}\n",
};

/* ---- MHD's callbacks ---- */

/* MHD's messages, at debug level.  It tries TCP options on every socket
 * it gets (TCP_NODELAY, TCP_CORK, and a "push" after each answer): on the
 * socketpair they fail harmlessly, and are not logged. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (strstr(buf, "TCP_NODELAY") != NULL || strstr(buf, "TCP_CORK") != NULL ||
	    strstr(buf, "push the data") != NULL)
		return;
	size_t n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	gn_log(GN_LOG_DEBUG, "http", "event=mhd msg=%s", gn_log_quote(0, buf));
}

static void mhd_notify_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
				  enum MHD_ConnectionNotificationCode toe)
{
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
		int fd = ci != NULL ? ci->connect_fd : -1;
		if (fd >= 0 && (size_t)fd < n_by_fd)
			*socket_context = by_fd[fd];
		return;
	}
	struct http_bridge *br = *socket_context;
	if (br == NULL)
		return;
	*socket_context = NULL;
	if (br->mhd_fd >= 0 && (size_t)br->mhd_fd < n_by_fd && by_fd[br->mhd_fd] == br)
		by_fd[br->mhd_fd] = NULL;
	bridge_unref(br);
}

static struct http_bridge *conn_bridge(struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

static void *mhd_uri_log(void *cls, const char *uri, struct MHD_Connection *mc)
{
	struct gn_pool *pool = gn_pool_new();
	struct gn_http_request *req = gn_pool_alloc(pool, sizeof(*req));
	req->pool = pool;
	req->mc = mc;
	req->br = conn_bridge(mc);
	if (req->br != NULL)
		req->br->active++;
	const char *q = strchr(uri, '?');
	req->path = q != NULL ? gn_pool_strndup(pool, uri, (size_t)(q - uri))
			      : gn_pool_strdup(pool, uri);
	req->query = gn_pool_strdup(pool, q != NULL ? q + 1 : "");
	return req;
}

static void request_free(struct gn_http_request *req)
{
	for (size_t i = 0; i < req->n_fields; i++)
		gn_buf_free(&req->fields[i].value);
	gn_free(req->fields);
	gn_buf_free(&req->body);
	gn_free(req->resp_body);
	struct gn_pool *pool = req->pool;
	gn_pool_free(&pool);
}

static void mhd_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
			  enum MHD_RequestTerminationCode toe)
{
	struct gn_http_request *req = *con_cls;
	if (req == NULL)
		return;
	*con_cls = NULL;
	struct http_bridge *br = req->br;
	if (br != NULL) {
		if (br->active > 0)
			br->active--;
		if (br->shutdown && br->active == 0)
			bridge_half_close(br);
	}
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		gn_log(GN_LOG_DEBUG, "http", "event=request_ended conn=%s path=%s code=%d",
		       br != NULL ? br->id : "-", gn_log_quote(0, req->path), (int)toe);
	req->completed = true;
	req->mc = NULL;
	req->br = NULL;		/* MHD lets go of the bridge after this */
	/* A handler still holds it (the daemon went away under it): freed
	 * when it answers. */
	if (req->handled && !req->answered)
		return;
	request_free(req);
}

static enum MHD_Result queue_response(struct gn_http_request *req)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(req->resp_len, req->resp_body,
								 MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	for (size_t i = 0; i < req->n_resp_headers; i++)
		MHD_add_response_header(r, req->resp_headers[i].name, req->resp_headers[i].value);
	if (req->resp_ctype != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, req->resp_ctype);
	if (req->br != NULL && req->br->shutdown)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result ret = MHD_queue_response(req->mc, req->status, r);
	MHD_destroy_response(r);
	req->queued = true;
	gn_log(GN_LOG_INFO, "http", "event=request conn=%s method=%s path=%s status=%u bytes=%zu",
	       req->br != NULL ? req->br->id : "-", gn_log_quote(0, req->method),
	       gn_log_quote(1, req->path), req->status, req->resp_len);
	return ret;
}

/* The core's own answers (404, 405, 413, ...). */
static enum MHD_Result answer_error(struct gn_http_request *req, unsigned status,
				    const char *code, const char *message)
{
	req->handled = true;
	gn_http_respond_error(req, status, code, message);
	return queue_response(req);
}

struct header_sum {
	size_t n;
};

static enum MHD_Result header_size_cb(void *cls, enum MHD_ValueKind kind, const char *key,
				      const char *value)
{
	struct header_sum *s = cls;
	s->n += strlen(key) + (value != NULL ? strlen(value) : 0) + 4;
	return MHD_YES;
}

/* ---- forms ---- */

static struct http_field *field_add(struct gn_http_request *req, const char *name, size_t nlen)
{
	if (req->n_fields >= HTTP_MAX_FIELDS) {
		req->fields_failed = true;
		return NULL;
	}
	req->fields = gn_realloc(req->fields, (req->n_fields + 1) * sizeof(*req->fields));
	struct http_field *f = &req->fields[req->n_fields++];
	memset(f, 0, sizeof(*f));
	f->name = gn_pool_strndup(req->pool, name, nlen);
	f->value = gn_buf_new(core_conf != NULL ? core_conf->http_max_body + 1 : SIZE_MAX);
	return f;
}

/* application/x-www-form-urlencoded (WHATWG URL 5.1): '+' is a space,
 * %XX a byte; a bad escape is kept as it is, as browsers do. */
static void url_decode_into(struct gn_buf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%' && i + 2 < len + 0 && hex_digit(s[i + 1]) >= 0 &&
			   hex_digit(s[i + 2]) >= 0) {
			c = (char)(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
			i += 2;
		}
		gn_buf_append(out, &c, 1);
	}
}

static void parse_urlencoded(struct gn_http_request *req, const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t end = i;
		while (end < len && s[end] != '&')
			end++;
		if (end > i) {
			const char *eq = memchr(s + i, '=', end - i);
			size_t klen = eq != NULL ? (size_t)(eq - (s + i)) : end - i;
			struct gn_buf *name = gn_buf_new(klen + 1);
			url_decode_into(name, s + i, klen);
			struct http_field *f = field_add(req, gn_buf_data(name), gn_buf_len(name));
			gn_buf_free(&name);
			if (f == NULL)
				return;
			if (eq != NULL)
				url_decode_into(f->value, eq + 1, (size_t)(s + end - eq - 1));
		}
		i = end + 1;
	}
}

static enum MHD_Result post_field_cb(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *filename, const char *content_type,
				     const char *transfer_encoding, const char *data,
				     uint64_t off, size_t size)
{
	struct gn_http_request *req = cls;
	struct http_field *f = req->n_fields > 0 ? &req->fields[req->n_fields - 1] : NULL;

	if (key == NULL)
		return MHD_YES;
	if (f == NULL || off == 0 || strcmp(f->name, key) != 0) {
		f = field_add(req, key, strlen(key));
		if (f == NULL)
			return MHD_NO;
		if (filename != NULL)
			f->filename = gn_pool_strdup(req->pool, filename);
		if (content_type != NULL)
			f->ctype = gn_pool_strdup(req->pool, content_type);
	}
	if (size > 0 && gn_buf_append(f->value, data, size) < 0) {
		req->fields_failed = true;
		return MHD_NO;
	}
	return MHD_YES;
}

static bool ctype_is(const char *ctype, const char *want)
{
	size_t n = strlen(want);
	return ctype != NULL && strncasecmp(ctype, want, n) == 0 &&
	       (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

/* 0, or -1 when a multipart body does not parse. */
static int parse_form(struct gn_http_request *req)
{
	const char *ctype = MHD_lookup_connection_value(req->mc, MHD_HEADER_KIND,
							MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *body = req->body != NULL ? gn_buf_data(req->body) : "";
	size_t len = req->body != NULL ? gn_buf_len(req->body) : 0;

	if (ctype_is(ctype, "application/x-www-form-urlencoded")) {
		parse_urlencoded(req, body, len);
	} else if (ctype_is(ctype, "multipart/form-data")) {
		struct MHD_PostProcessor *pp =
			MHD_create_post_processor(req->mc, 16384, post_field_cb, req);
		if (pp == NULL)
			return -1;	/* no boundary */
		enum MHD_Result r = len > 0 ? MHD_post_process(pp, body, len) : MHD_YES;
		if (MHD_destroy_post_processor(pp) != MHD_YES || r != MHD_YES)
			return -1;
	}
	return req->fields_failed ? -1 : 0;
}

/* ---- the access handler ---- */

static enum MHD_Result mhd_access(void *cls, struct MHD_Connection *mc, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct gn_http_request *req = *con_cls;
	size_t max_body = core_conf->http_max_body;

	if (req == NULL) {
		req = mhd_uri_log(NULL, url, mc);
		*con_cls = req;
	}
	if (req->queued) {
		*upload_size = 0;
		return MHD_YES;
	}
	if (!req->started) {
		req->started = true;
		req->method = gn_pool_strdup(req->pool, method);
		req->path_decoded = gn_pool_strdup(req->pool, url);
		struct header_sum hs = { strlen(method) + strlen(req->path) +
					 strlen(req->query) + 12 };
		MHD_get_connection_values(mc, MHD_HEADER_KIND, header_size_cb, &hs);
		if (hs.n > core_conf->http_max_header)
			return answer_error(req, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE,
					    "headerTooLarge",
					    "request line and header fields too large");
		/* RFC 9112 3.2: a request of HTTP/1.1 without Host is answered
		 * 400 (MHD lets it through). */
		if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
		    MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST) == NULL)
			return answer_error(req, MHD_HTTP_BAD_REQUEST, "badRequest",
					    "HTTP/1.1 request without Host");
		req->mount = mount_find(req->path);
		if (req->mount == NULL)
			return answer_error(req, MHD_HTTP_NOT_FOUND, "notFound", "no such path");
		if (!mount_allows(req->mount, method)) {
			gn_http_response_header(req, MHD_HTTP_HEADER_ALLOW,
						gn_pool_strndup(req->pool, req->mount->methods + 1,
								strlen(req->mount->methods) - 2));
			return answer_error(req, MHD_HTTP_METHOD_NOT_ALLOWED, "methodNotAllowed",
					    "method not allowed here");
		}
		const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && strtoull(cl, NULL, 10) > max_body)
			return answer_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "requestTooLarge",
					    "request body too large");
		return MHD_YES;
	}
	if (*upload_size > 0) {
		size_t n = *upload_size;
		*upload_size = 0;
		if (req->body_too_big) {
			/* ... for at most HTTP_DISCARD_MAX more bytes: then
			 * the connection closes without an answer. */
			req->discarded += n;
			if (req->discarded > HTTP_DISCARD_MAX) {
				gn_log(GN_LOG_INFO, "http", "event=body_too_large conn=%s "
				       "path=%s discarded=%zu", req->br != NULL ? req->br->id : "-",
				       gn_log_quote(0, req->path), req->discarded);
				return MHD_NO;
			}
			return MHD_YES;
		}
		if (req->body == NULL)
			req->body = gn_buf_new(max_body + 1);
		if (gn_buf_len(req->body) + n > max_body) {
			/* A chunked body past the limit (a declared length
			 * was refused above): stop collecting; 413 when it
			 * ends (MHD cannot answer in the middle of a body). */
			req->body_too_big = true;
			gn_buf_free(&req->body);
			req->discarded = n;
			return MHD_YES;
		}
		gn_buf_append(req->body, upload_data, n);
		return MHD_YES;
	}
	if (req->answered && !req->queued) {
		/* Resumed after an asynchronous answer. */
		return queue_response(req);
	}
	if (req->handled)
		return MHD_YES;
	if (req->body_too_big)
		return answer_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "requestTooLarge",
				    "request body too large");
	if (parse_form(req) < 0)
		return answer_error(req, MHD_HTTP_BAD_REQUEST, "badRequest",
				    "malformed form data (or more than 1000 fields)");
	req->handled = true;
	req->in_handler = true;
	req->mount->handler(req, req->mount->data);
	req->in_handler = false;
	if (req->answered)
		return queue_response(req);
	MHD_suspend_connection(mc);
	req->suspended = true;
	return MHD_YES;
}

static int daemon_start(const char **error_r)
{
	if (daemon_ != NULL)
		return 0;
	unsigned timeout_s = (unsigned)((core_conf->http_timeout_ms + 999) / 1000);
	/* MHD's memory pool per connection holds the read buffer and the
	 * request's header fields: room for max_header and the rest. */
	size_t pool = core_conf->http_max_header * 2 + 32768;
	daemon_ = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET | MHD_USE_EPOLL |
				   MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
				   0, NULL, NULL, mhd_access, NULL,
				   MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				   MHD_OPTION_URI_LOG_CALLBACK, mhd_uri_log, NULL,
				   MHD_OPTION_NOTIFY_COMPLETED, mhd_completed, NULL,
				   MHD_OPTION_NOTIFY_CONNECTION, mhd_notify_connection, NULL,
				   MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
				   MHD_OPTION_CONNECTION_LIMIT, core_conf->http_max_conns,
				   MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
				   MHD_OPTION_END);
	if (daemon_ == NULL) {
		*error_r = "libmicrohttpd: MHD_start_daemon failed";
		return -1;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_EPOLL_FD);
	if (di == NULL || di->epoll_fd < 0) {
		MHD_stop_daemon(daemon_);
		daemon_ = NULL;
		*error_r = "libmicrohttpd: no epoll descriptor";
		return -1;
	}
	daemon_io = gn_io_new(di->epoll_fd, GN_IO_READ, daemon_io_cb, NULL);
	ev_timer_init(&daemon_timer, daemon_timer_cb, 1.0, 0.0);
	gn_log(GN_LOG_DEBUG, "http", "event=daemon_started timeout=%us max_body=%zu",
	       timeout_s, core_conf->http_max_body);
	return 0;
}

static int http_open(struct gn_conn *conn, void *data)
{
	const char *error;
	int sv[2];

	if (daemon_start(&error) < 0) {
		gn_log(GN_LOG_ERROR, "http", "event=daemon_failed reason=%s",
		       gn_log_quote(0, error));
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
		gn_log(GN_LOG_ERROR, "http", "event=socketpair_failed errno=%d", errno);
		return -1;
	}
	struct http_bridge *br = gn_calloc(1, sizeof(*br));
	br->conn = conn;
	br->fd = sv[0];
	br->mhd_fd = sv[1];
	br->tls = gn_conn_is_tls(conn);
	snprintf(br->ip, sizeof(br->ip), "%s", gn_conn_remote_ip(conn));
	snprintf(br->id, sizeof(br->id), "%s", gn_conn_id(conn));
	if ((size_t)sv[1] >= n_by_fd) {
		size_t n = (size_t)sv[1] + 64;
		by_fd = gn_realloc(by_fd, n * sizeof(*by_fd));
		memset(by_fd + n_by_fd, 0, (n - n_by_fd) * sizeof(*by_fd));
		n_by_fd = n;
	}
	by_fd[sv[1]] = br;
	br->refs = 2;	/* ours until close(), MHD's until it lets go */

	/* MHD is told the truth about its socket (a local stream): it then
	 * leaves TCP options alone.  The client's address is ours to give
	 * (gn_http_request_remote_ip()). */
	struct sockaddr_un su;
	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	if (MHD_add_connection(daemon_, sv[1], (struct sockaddr *)&su, sizeof(su)) != MHD_YES) {
		/* MHD closed its end already. */
		gn_log(GN_LOG_INFO, "http", "event=refused conn=%s reason=\"connection limit\"",
		       br->id);
		by_fd[sv[1]] = NULL;
		close(sv[0]);
		gn_free(br);
		return -1;
	}
	br->io = gn_io_new(br->fd, GN_IO_READ, bridge_io_cb, br);
	gn_conn_set_data(conn, br);
	gn_conn_set_idle_timeout(conn, (unsigned long)core_conf->http_timeout_ms +
				 (unsigned long)core_conf->http_timeout_ms / 2);
	daemon_kick_soon();
	return 0;
}

void http_protocol_register(void)
{
	const char *error;
	mounts_closed = true;
	if (protocol_find("http", NULL) != NULL)
		return;
	/* HTTP has no STARTTLS (RFC 2817's Upgrade is not used by clients):
	 * a listener asking for it would serve plain text. */
	for (size_t i = 0; core_conf != NULL && i < core_conf->n_listeners; i++) {
		const struct listener_conf *l = &core_conf->listeners[i];
		if (strcmp(l->protocol, "http") == 0 && l->tls == TLS_MODE_STARTTLS)
			conf_error("listener %s: protocol http has no STARTTLS: tls = \"implicit\" "
				   "or none (at %s:%d)", l->name, l->file, l->line);
	}
	if (gn_protocol_register(NULL, &http_protocol, NULL, &error) < 0)
		gn_log(GN_LOG_ERROR, "http", "event=register_failed reason=%s",
		       gn_log_quote(0, error));
}

/* ---- the request's accessors ---- */

const char *gn_http_request_method(const struct gn_http_request *req)
{
	return req->method;
}

const char *gn_http_request_path(const struct gn_http_request *req)
{
	return req->path;
}

const char *gn_http_request_query(const struct gn_http_request *req)
{
	return req->query;
}

const char *gn_http_request_arg(const struct gn_http_request *req, const char *name)
{
	if (req->mc == NULL)
		return NULL;
	return MHD_lookup_connection_value(req->mc, MHD_GET_ARGUMENT_KIND, name);
}

const char *gn_http_request_header(const struct gn_http_request *req, const char *name)
{
	if (req->mc == NULL)
		return NULL;
	return MHD_lookup_connection_value(req->mc, MHD_HEADER_KIND, name);
}

void gn_http_request_body(const struct gn_http_request *req, const char **data_r,
			  size_t *len_r)
{
	*data_r = req->body != NULL ? gn_buf_data(req->body) : "";
	*len_r = req->body != NULL ? gn_buf_len(req->body) : 0;
}

size_t gn_http_request_field_count(const struct gn_http_request *req)
{
	return req->n_fields;
}

void gn_http_request_field(const struct gn_http_request *req, size_t i, const char **name_r,
			   const char **value_r, size_t *len_r, const char **filename_r,
			   const char **ctype_r)
{
	const struct http_field *f = &req->fields[i];
	if (name_r != NULL)
		*name_r = f->name;
	if (value_r != NULL)
		*value_r = gn_buf_data(f->value);
	if (len_r != NULL)
		*len_r = gn_buf_len(f->value);
	if (filename_r != NULL)
		*filename_r = f->filename;
	if (ctype_r != NULL)
		*ctype_r = f->ctype;
}

const char *gn_http_request_form(const struct gn_http_request *req, const char *name,
				 size_t *len_r)
{
	for (size_t i = 0; i < req->n_fields; i++) {
		if (strcmp(req->fields[i].name, name) == 0) {
			if (len_r != NULL)
				*len_r = gn_buf_len(req->fields[i].value);
			return gn_buf_data(req->fields[i].value);
		}
	}
	return NULL;
}

int gn_http_request_basic_auth(const struct gn_http_request *req, const char **user_r,
			       const char **password_r)
{
	struct gn_http_request *r = (struct gn_http_request *)req;
	if (r->auth == 0) {
		r->auth = 1;
		r->auth_result = 0;
		const char *h = gn_http_request_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
		if (h != NULL && strncasecmp(h, "Basic", 5) == 0 &&
		    (h[5] == ' ' || h[5] == '\0')) {
			/* RFC 7617 2: "Basic" SP token68 (user-id ":" password). */
			r->auth_result = -1;
			h += 5;
			while (*h == ' ')
				h++;
			gnutls_datum_t in = { (unsigned char *)h, (unsigned)strlen(h) };
			gnutls_datum_t out = { NULL, 0 };
			if (in.size > 0 && in.size < 4096 &&
			    gnutls_base64_decode2(&in, &out) == 0) {
				char *colon = memchr(out.data, ':', out.size);
				if (colon != NULL && memchr(out.data, '\0', out.size) == NULL) {
					r->user = gn_pool_strndup(r->pool, (char *)out.data,
								  (size_t)(colon - (char *)out.data));
					r->password = gn_pool_strndup(
						r->pool, colon + 1,
						out.size - (size_t)(colon - (char *)out.data) - 1);
					r->auth_result = 1;
				}
				gnutls_memset(out.data, 0, out.size);
				gnutls_free(out.data);
			}
		}
	}
	if (r->auth_result == 1) {
		*user_r = r->user;
		*password_r = r->password;
	}
	return r->auth_result;
}

const char *gn_http_request_remote_ip(const struct gn_http_request *req)
{
	return req->br != NULL ? req->br->ip : "";
}

bool gn_http_request_is_tls(const struct gn_http_request *req)
{
	return req->br != NULL && req->br->tls;
}

const char *gn_http_request_conn_id(const struct gn_http_request *req)
{
	return req->br != NULL ? req->br->id : "-";
}

bool gn_http_request_gone(const struct gn_http_request *req)
{
	return req->completed || req->br == NULL || req->br->conn == NULL;
}

/* ---- answers ---- */

static bool header_text_ok(const char *s, bool name)
{
	if (s == NULL || (name && *s == '\0'))
		return false;
	for (; *s != '\0'; s++) {
		if (*s == '\r' || *s == '\n' || (name && (*s == ':' || *s == ' ')))
			return false;
	}
	return true;
}

int gn_http_response_header(struct gn_http_request *req, const char *name, const char *value)
{
	if (req->answered || !header_text_ok(name, true) || !header_text_ok(value, false))
		return -1;
	struct http_header *h = gn_pool_alloc(req->pool,
					      (req->n_resp_headers + 1) * sizeof(*h));
	if (req->n_resp_headers > 0)
		memcpy(h, req->resp_headers, req->n_resp_headers * sizeof(*h));
	h[req->n_resp_headers].name = gn_pool_strdup(req->pool, name);
	h[req->n_resp_headers].value = gn_pool_strdup(req->pool, value);
	req->resp_headers = h;
	req->n_resp_headers++;
	return 0;
}

int gn_http_respond(struct gn_http_request *req, unsigned status, const char *content_type,
		    const void *body, size_t len)
{
	if (req->answered)
		return -1;
	req->answered = true;
	req->status = status >= 100 && status <= 999 ? status : 500;
	if (content_type != NULL && header_text_ok(content_type, false))
		req->resp_ctype = gn_pool_strdup(req->pool, content_type);
	req->resp_body = gn_malloc(len > 0 ? len : 1);
	if (len > 0)
		memcpy(req->resp_body, body, len);
	req->resp_len = len;
	if (req->completed) {
		/* Nobody to send it to. */
		request_free(req);
		return 0;
	}
	if (req->suspended && !req->in_handler) {
		req->suspended = false;
		MHD_resume_connection(req->mc);
		daemon_kick_soon();
	}
	return 0;
}

int gn_http_respond_json(struct gn_http_request *req, unsigned status, struct json_object *obj)
{
	size_t len;
	const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
	struct gn_buf *b = gn_buf_new(len + 2);
	gn_buf_append(b, s, len);
	gn_buf_append(b, "\n", 1);
	int r = gn_http_respond(req, status, "application/json; charset=utf-8", gn_buf_data(b),
				gn_buf_len(b));
	gn_buf_free(&b);
	return r;
}

int gn_http_respond_error(struct gn_http_request *req, unsigned status, const char *code,
			  const char *message)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "Code", json_object_new_string(code != NULL ? code : "server"));
	json_object_object_add(o, "Message",
			       json_object_new_string(message != NULL ? message : ""));
	int r = gn_http_respond_json(req, status, o);
	json_object_put(o);
	return r;
}
