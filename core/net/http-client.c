/*
 * core/net/http-client.c: the HTTPS client (gannet/httpclient.h).
 *
 * A request is a small state machine over one outbound connection
 * (gn_conn_connect()): connected -> TLS handshake (gn_conn_starttls_client(),
 * the certificate must verify for the host name) -> the request written in
 * one piece -> the response read incrementally: status line, header fields
 * (bounded by max_header in all), then the body by Content-Length, chunked
 * (RFC 9112 7.1) or up to the end of the connection (bounded by max_body).
 * A connect that fails moves to the next address; every other failure ends
 * the request.  One timer bounds the whole exchange.  The outcome goes to
 * the caller from a timer of its own (never from inside a connection
 * callback or gn_httpclient_start()), after the connection is closed.
 */
#include "net/internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <gannet/httpclient.h>
#include <gannet/loop.h>

enum hc_state {
	HC_CONNECTING,
	HC_TLS,
	HC_STATUS,
	HC_HEADER,
	HC_BODY_LENGTH,
	HC_BODY_EOF,
	HC_CHUNK_SIZE,
	HC_CHUNK_DATA,
	HC_CHUNK_CRLF,
	HC_TRAILER,
	HC_DONE,
};

struct gn_httpclient {
	struct gn_pool *pool;
	gn_httpclient_fn *fn;
	void *data;
	char *host;
	unsigned port;
	char **addrs;
	size_t n_addrs, addr;
	struct gn_buf *request;
	size_t max_header, max_body;
	struct gn_conn *conn;
	struct gn_timer *deadline, *finish;
	enum hc_state state;
	size_t header_bytes;
	uint64_t remaining;		/* Content-Length or chunk bytes left */
	bool chunked, have_length;
	struct gn_buf *body;
	struct gn_httpclient_response resp;
	const char **names, **values;
	size_t n_alloc;
	char *error;
	bool cancelled;
	bool plain;		/* no TLS */
};

#define HC_MAX_FIELDS 100

void gn_httpclient_request_init(struct gn_httpclient_request *req)
{
	memset(req, 0, sizeof(*req));
	req->size = sizeof(*req);
}

static void connect_next(struct gn_httpclient *c);

static void finish_cb(void *data)
{
	struct gn_httpclient *c = data;
	gn_timer_free(&c->finish);
	if (c->error != NULL) {
		c->resp.error = c->error;
		c->resp.status = 0;
	} else {
		c->resp.body_len = gn_buf_len(c->body);
		c->resp.body = c->resp.body_len > 0 ? gn_pool_strndup(c->pool, gn_buf_data(c->body), c->resp.body_len)
						    : "";
	}
	c->resp.header_names = c->names;
	c->resp.header_values = c->values;
	c->fn(&c->resp, c->data);
	gn_buf_free(&c->body);
	gn_buf_free(&c->request);
	gn_pool_free(&c->pool);
	gn_free(c);
}

/* The request is over: with error (NULL: a whole response).  The
 * connection closes; the callback follows from the loop. */
static void hc_end(struct gn_httpclient *c, const char *error)
{
	if (c->state == HC_DONE)
		return;
	c->state = HC_DONE;
	if (error != NULL && c->error == NULL)
		c->error = gn_pool_strdup(c->pool, error);
	gn_timer_free(&c->deadline);
	if (c->conn != NULL) {
		if (c->resp.ip == NULL && gn_conn_remote_ip(c->conn) != NULL)
			c->resp.ip = gn_pool_strdup(c->pool, gn_conn_remote_ip(c->conn));
		if (gn_conn_tls_version(c->conn) != NULL)
			c->resp.tls_version = gn_pool_strdup(c->pool, gn_conn_tls_version(c->conn));
		gn_conn_close(c->conn, error != NULL ? error : "http response complete");
	}
	if (c->conn == NULL && c->finish == NULL && !c->cancelled)
		c->finish = gn_timer_new(0, false, finish_cb, c);
}

static void hc_fail(struct gn_httpclient *c, const char *fmt, ...) GN_PRINTF(2, 3);

static void hc_fail(struct gn_httpclient *c, const char *fmt, ...)
{
	va_list ap;
	char buf[512];
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	hc_end(c, buf);
}

static void deadline_cb(void *data)
{
	struct gn_httpclient *c = data;
	gn_timer_free(&c->deadline);
	hc_end(c, "timeout");
}

/* ---- the response ---- */

static int add_field(struct gn_httpclient *c, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	if (colon == NULL || colon == line)
		return -1;
	for (const char *p = line; p < colon; p++)
		/* RFC 9110 5.1: a token, no space before the colon (RFC 9112 5.1). */
		if (!isgraph((unsigned char)*p))
			return -1;
	if (c->resp.n_headers >= HC_MAX_FIELDS)
		return -1;
	if (c->resp.n_headers == c->n_alloc) {
		c->n_alloc = c->n_alloc == 0 ? 16 : c->n_alloc * 2;
		const char **nn = gn_pool_alloc(c->pool, c->n_alloc * sizeof(*nn));
		const char **nv = gn_pool_alloc(c->pool, c->n_alloc * sizeof(*nv));
		if (c->resp.n_headers > 0) {
			memcpy(nn, c->names, c->resp.n_headers * sizeof(*nn));
			memcpy(nv, c->values, c->resp.n_headers * sizeof(*nv));
		}
		c->names = nn;
		c->values = nv;
		c->resp.header_names = nn;
		c->resp.header_values = nv;
	}
	const char *v = colon + 1, *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	c->names[c->resp.n_headers] = gn_pool_strndup(c->pool, line, (size_t)(colon - line));
	c->values[c->resp.n_headers] = gn_pool_strndup(c->pool, v, (size_t)(end - v));
	c->resp.n_headers++;
	return 0;
}

const char *gn_httpclient_header(const struct gn_httpclient_response *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcasecmp(r->header_names[i], name) == 0)
			return r->header_values[i];
	return NULL;
}

/* The header is complete: how the body is delimited (RFC 9112 6.3). */
static void header_done(struct gn_httpclient *c)
{
	const char *te = gn_httpclient_header(&c->resp, "Transfer-Encoding");
	const char *cl = gn_httpclient_header(&c->resp, "Content-Length");
	if (c->resp.status == 204 || c->resp.status == 304 || (c->resp.status >= 100 && c->resp.status < 200)) {
		hc_end(c, NULL);
		return;
	}
	if (te != NULL) {
		/* Chunked must be the last coding; we ask for no other. */
		if (strcasecmp(te, "chunked") != 0) {
			hc_fail(c, "unsupported Transfer-Encoding: %.100s", te);
			return;
		}
		c->chunked = true;
		c->state = HC_CHUNK_SIZE;
		return;
	}
	if (cl != NULL) {
		char *end;
		errno = 0;
		if (!isdigit((unsigned char)cl[0])) {
			hc_fail(c, "bad Content-Length: %.100s", cl);
			return;
		}
		unsigned long long n = strtoull(cl, &end, 10);
		if (errno != 0 || *end != '\0') {
			hc_fail(c, "bad Content-Length: %.100s", cl);
			return;
		}
		/* Two Content-Length fields that differ: RFC 9112 6.3 (5). */
		for (size_t i = 0; i < c->resp.n_headers; i++)
			if (strcasecmp(c->names[i], "Content-Length") == 0 && strcmp(c->values[i], cl) != 0) {
				hc_fail(c, "conflicting Content-Length fields");
				return;
			}
		if (n > c->max_body) {
			hc_fail(c, "response body larger than %zu bytes (Content-Length %llu)", c->max_body, n);
			return;
		}
		c->remaining = n;
		c->have_length = true;
		c->state = HC_BODY_LENGTH;
		if (n == 0)
			hc_end(c, NULL);
		return;
	}
	c->state = HC_BODY_EOF;
}

static int parse_status(struct gn_httpclient *c, const char *line, size_t len)
{
	/* RFC 9112 4: HTTP/1.x SP 3DIGIT SP [reason] */
	if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)line[7]) || line[8] != ' ' ||
	    !isdigit((unsigned char)line[9]) || !isdigit((unsigned char)line[10]) ||
	    !isdigit((unsigned char)line[11]) || (len > 12 && line[12] != ' '))
		return -1;
	c->resp.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	if (c->resp.status < 100 || c->resp.status > 599)
		return -1;
	c->resp.reason = len > 13 ? gn_pool_strndup(c->pool, line + 13, len - 13) : "";
	return 0;
}

static int body_add(struct gn_httpclient *c, const char *data, size_t len)
{
	if (gn_buf_len(c->body) + len > c->max_body || gn_buf_append(c->body, data, len) < 0) {
		hc_fail(c, "response body larger than %zu bytes", c->max_body);
		return -1;
	}
	return 0;
}

/* One line from the input (without its CRLF or LF): 1, 0 not yet, -1
 * failed (ended). */
static int take_line(struct gn_httpclient *c, const char **line_r, size_t *len_r)
{
	const char *data;
	size_t len;
	gn_conn_input_peek(c->conn, &data, &len);
	const char *nl = memchr(data, '\n', len);
	if (nl == NULL) {
		if (c->header_bytes + len > c->max_header) {
			hc_fail(c, "response header larger than %zu bytes", c->max_header);
			return -1;
		}
		return 0;
	}
	size_t n = (size_t)(nl - data) + 1;
	c->header_bytes += n;
	if (c->header_bytes > c->max_header) {
		hc_fail(c, "response header larger than %zu bytes", c->max_header);
		return -1;
	}
	size_t l = n - 1;
	if (l > 0 && data[l - 1] == '\r')
		l--;
	*line_r = gn_pool_strndup(c->pool, data, l);
	*len_r = l;
	gn_conn_input_consume(c->conn, n);
	return 1;
}

static void hc_input(struct gn_conn *conn, void *data)
{
	struct gn_httpclient *c = data;
	(void)conn;
	const char *line, *in;
	size_t len, avail;
	int r;
	while (c->state != HC_DONE) {
		switch (c->state) {
		case HC_STATUS:
			if ((r = take_line(c, &line, &len)) <= 0)
				return;
			if (parse_status(c, line, len) < 0) {
				hc_fail(c, "not an HTTP/1.x status line: %.100s", line);
				return;
			}
			c->state = HC_HEADER;
			break;
		case HC_HEADER:
			if ((r = take_line(c, &line, &len)) <= 0)
				return;
			if (len == 0) {
				if (c->resp.status >= 100 && c->resp.status < 200) {
					/* An interim response (RFC 9110 15.2): the real one follows. */
					c->resp.n_headers = 0;
					c->state = HC_STATUS;
					break;
				}
				header_done(c);
				break;
			}
			if (add_field(c, line, len) < 0) {
				hc_fail(c, "bad or too many header fields: %.100s", line);
				return;
			}
			break;
		case HC_BODY_LENGTH:
		case HC_BODY_EOF:
		case HC_CHUNK_DATA:
			gn_conn_input_peek(c->conn, &in, &avail);
			if (avail == 0)
				return;
			if (c->state != HC_BODY_EOF && avail > c->remaining)
				avail = (size_t)c->remaining;
			if (body_add(c, in, avail) < 0)
				return;
			gn_conn_input_consume(c->conn, avail);
			if (c->state == HC_BODY_EOF)
				break;
			c->remaining -= avail;
			if (c->remaining == 0) {
				if (c->state == HC_BODY_LENGTH)
					hc_end(c, NULL);
				else
					c->state = HC_CHUNK_CRLF;
			}
			break;
		case HC_CHUNK_SIZE: {
			/* The chunk lines count against the header limit too: a
			 * peer cannot send endless empty chunks' extensions. */
			c->header_bytes = 0;
			if ((r = take_line(c, &line, &len)) <= 0)
				return;
			size_t i = 0;
			uint64_t n = 0;
			while (i < len && isxdigit((unsigned char)line[i]) && i < 16) {
				int d = isdigit((unsigned char)line[i]) ? line[i] - '0'
								     : tolower((unsigned char)line[i]) - 'a' + 10;
				n = n * 16 + (uint64_t)d;
				i++;
			}
			if (i == 0 || (i < len && line[i] != ';' && line[i] != ' ' && line[i] != '\t')) {
				hc_fail(c, "bad chunk size line: %.100s", line);
				return;
			}
			if (n > c->max_body - gn_buf_len(c->body)) {
				hc_fail(c, "response body larger than %zu bytes", c->max_body);
				return;
			}
			c->remaining = n;
			c->state = n == 0 ? HC_TRAILER : HC_CHUNK_DATA;
			break;
		}
		case HC_CHUNK_CRLF:
			c->header_bytes = 0;
			if ((r = take_line(c, &line, &len)) <= 0)
				return;
			if (len != 0) {
				hc_fail(c, "chunk data not followed by CRLF");
				return;
			}
			c->state = HC_CHUNK_SIZE;
			break;
		case HC_TRAILER:
			if ((r = take_line(c, &line, &len)) <= 0)
				return;
			if (len == 0)
				hc_end(c, NULL);
			/* Trailer fields are ignored (RFC 9112 7.1.2). */
			break;
		default:
			return;
		}
	}
}

static void hc_input_full(struct gn_conn *conn, void *data)
{
	/* Only lines can fill the buffer (bodies are consumed as they come). */
	struct gn_httpclient *c = data;
	(void)conn;
	hc_fail(c, "response header larger than %zu bytes", c->max_header);
}

/* ---- the connection ---- */

static int hc_open(struct gn_conn *conn, void *data)
{
	struct gn_httpclient *c = data;
	const char *err;
	c->error = NULL;	/* an earlier address's connect failure is not this one's */
	if (c->plain) {
		c->state = HC_STATUS;
		if (gn_conn_write(conn, gn_buf_data(c->request), gn_buf_len(c->request)) < 0)
			hc_fail(c, "the request does not fit the output buffer");
		return 0;
	}
	c->state = HC_TLS;
	if (gn_conn_starttls_client(conn, c->host, &err) < 0) {
		hc_fail(c, "TLS: %s", err);
		return 0;
	}
	return 0;
}

static void hc_tls_done(struct gn_conn *conn, int ok, void *data)
{
	struct gn_httpclient *c = data;
	if (!ok) {
		hc_fail(c, "TLS handshake with %s failed", c->host);
		return;
	}
	/* PKIX: no certificate that fails to verify for the name. */
	if (!gn_conn_tls_verified(conn)) {
		const char *why = gn_conn_tls_verify_error(conn);
		hc_fail(c, "TLS: certificate does not verify for %s: %s", c->host,
			why != NULL ? why : "unknown reason");
		return;
	}
	c->state = HC_STATUS;
	if (gn_conn_write(conn, gn_buf_data(c->request), gn_buf_len(c->request)) < 0)
		hc_fail(c, "the request does not fit the output buffer");
}

static void hc_timeout(struct gn_conn *conn, void *data)
{
	(void)conn;
	hc_end(data, "timeout");
}

static void hc_close(struct gn_conn *conn, void *data)
{
	struct gn_httpclient *c = data;
	const char *why = gn_conn_close_reason(conn);
	enum hc_state was = c->state;
	c->conn = NULL;
	if (c->cancelled) {
		gn_buf_free(&c->body);
		gn_buf_free(&c->request);
		gn_timer_free(&c->deadline);
		gn_timer_free(&c->finish);
		gn_pool_free(&c->pool);
		gn_free(c);
		return;
	}
	switch (was) {
	case HC_CONNECTING:
		/* Never opened: the next address. */
		c->error = gn_pool_printf(c->pool, "%s port %u: %s", c->addrs[c->addr], c->port,
					  why != NULL ? why : "connection failed");
		c->addr++;
		if (c->addr < c->n_addrs) {
			connect_next(c);
			return;
		}
		hc_end(c, NULL);
		break;
	case HC_BODY_EOF:
		/* RFC 9112 6.3 (8): the body ends with the connection. */
		hc_end(c, NULL);
		break;
	case HC_DONE:
		/* Ended (hc_end() closed it): the callback now. */
		if (c->finish == NULL)
			c->finish = gn_timer_new(0, false, finish_cb, c);
		break;
	default:
		hc_end(c, gn_pool_printf(c->pool, "connection closed before the response was complete%s%s",
					 why != NULL ? ": " : "", why != NULL ? why : ""));
		break;
	}
}

static const struct gn_protocol hc_proto = {
	.size = sizeof(struct gn_protocol),
	.name = "https-client",
	.max_input = 64 * 1024,
	.open = hc_open,
	.input = hc_input,
	.input_full = hc_input_full,
	.tls_done = hc_tls_done,
	.timeout = hc_timeout,
	.close = hc_close,
};

static void connect_next(struct gn_httpclient *c)
{
	const char *err;
	while (c->addr < c->n_addrs) {
		c->state = HC_CONNECTING;
		if (gn_conn_connect(c->addrs[c->addr], c->port, &hc_proto, c, 0, &c->conn, &err) == 0)
			return;
		c->conn = NULL;
		c->error = gn_pool_printf(c->pool, "%s: %s", c->addrs[c->addr], err);
		c->addr++;
	}
	c->state = HC_CONNECTING;
	hc_end(c, NULL);
}

/* ---- requests ---- */

static bool clean_text(const char *s, bool spaces)
{
	for (; *s != '\0'; s++)
		if (*s == '\r' || *s == '\n' || (!spaces && *s == ' ') || (unsigned char)*s < 0x20)
			if (!(spaces && *s == '\t'))
				return false;
	return true;
}

struct gn_httpclient *gn_httpclient_start(const struct gn_httpclient_request *req,
					      gn_httpclient_fn *fn, void *data,
					      const char **error_r)
{
	struct gn_httpclient_request r;
	gn_httpclient_request_init(&r);
	memcpy(&r, req, req->size < sizeof(r) ? req->size : sizeof(r));
	const char *method = r.method != NULL ? r.method : "GET";
	if (fn == NULL || r.host == NULL || r.host[0] == '\0' || !clean_text(r.host, false) ||
	    strlen(r.host) > 253) {
		*error_r = "no valid host name";
		return NULL;
	}
	if (r.path == NULL || r.path[0] != '/' || !clean_text(r.path, false) || strlen(r.path) > 8192) {
		*error_r = "the path must start with / and hold no space or control character";
		return NULL;
	}
	if (method[0] == '\0' || !clean_text(method, false) || strlen(method) > 32) {
		*error_r = "bad method";
		return NULL;
	}
	if (r.n_addrs == 0 || r.n_addrs > GN_HTTPCLIENT_MAX_ADDRS || r.addrs == NULL) {
		*error_r = "no address to connect to (or too many)";
		return NULL;
	}
	if (r.n_headers > GN_HTTPCLIENT_MAX_HEADERS) {
		*error_r = "too many request header fields";
		return NULL;
	}
	for (size_t i = 0; i < r.n_headers; i++)
		if (r.headers[i] == NULL || strchr(r.headers[i], ':') == NULL || !clean_text(r.headers[i], true)) {
			*error_r = "a request header field is not \"Name: value\" on one line";
			return NULL;
		}
	struct gn_httpclient *c = gn_calloc(1, sizeof(*c));
	c->pool = gn_pool_new();
	c->fn = fn;
	c->data = data;
	c->host = gn_pool_strdup(c->pool, r.host);
	c->plain = r.plain_http;
	c->port = r.port != 0 ? r.port : c->plain ? 80 : 443;
	c->addrs = gn_pool_alloc(c->pool, r.n_addrs * sizeof(*c->addrs));
	for (size_t i = 0; i < r.n_addrs; i++)
		c->addrs[i] = gn_pool_strdup(c->pool, r.addrs[i]);
	c->n_addrs = r.n_addrs;
	c->max_header = r.max_header != 0 ? r.max_header : GN_HTTPCLIENT_MAX_HEADER_DEFAULT;
	c->max_body = r.max_body != 0 ? r.max_body : GN_HTTPCLIENT_MAX_BODY_DEFAULT;
	c->body = gn_buf_new(c->max_body + 1);
	c->request = gn_buf_new(1024 * 1024 + r.body_len);
	/* RFC 9112 3.2: Host, with the port when it is not the default. */
	int bad = gn_buf_printf(c->request, "%s %s HTTP/1.1\r\nHost: %s", method, r.path, c->host);
	if (c->port != (c->plain ? 80u : 443u))
		bad |= gn_buf_printf(c->request, ":%u", c->port);
	bad |= gn_buf_append_str(c->request, "\r\nConnection: close\r\nUser-Agent: gannet\r\n");
	for (size_t i = 0; i < r.n_headers; i++)
		bad |= gn_buf_printf(c->request, "%s\r\n", r.headers[i]);
	if (r.body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0)
		bad |= gn_buf_printf(c->request, "Content-Length: %zu\r\n", r.body_len);
	bad |= gn_buf_append_str(c->request, "\r\n");
	if (bad < 0 || (r.body_len > 0 && gn_buf_append(c->request, r.body, r.body_len) < 0)) {
		*error_r = "the request is too large";
		gn_buf_free(&c->body);
		gn_buf_free(&c->request);
		gn_pool_free(&c->pool);
		gn_free(c);
		return NULL;
	}
	c->deadline = gn_timer_new(r.timeout_ms != 0 ? r.timeout_ms : GN_HTTPCLIENT_TIMEOUT_DEFAULT_MS, false,
				   deadline_cb, c);
	connect_next(c);
	return c;
}

void gn_httpclient_cancel(struct gn_httpclient **cp)
{
	struct gn_httpclient *c = *cp;
	if (c == NULL)
		return;
	*cp = NULL;
	c->cancelled = true;
	gn_timer_free(&c->deadline);
	gn_timer_free(&c->finish);
	if (c->conn != NULL) {
		c->state = HC_DONE;
		gn_conn_close(c->conn, "http request cancelled");
		return;		/* hc_close() frees it */
	}
	gn_buf_free(&c->body);
	gn_buf_free(&c->request);
	gn_pool_free(&c->pool);
	gn_free(c);
}
