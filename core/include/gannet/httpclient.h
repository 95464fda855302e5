/*
 * gannet/httpclient.h: an asynchronous HTTPS client on the process's loop
 * (ABI 1.1).
 *
 * One request a call: GET or POST (any method token), over TLS (unless the
 * request asks for plain HTTP, plain_http), with
 * the server's certificate verified (PKIX: a chain to the system's trust
 * store or a file given to gn_conn_tls_client_trust(), the host name as
 * RFC 6125 says); a certificate that does not verify fails the request
 * before anything is sent.  HTTP/1.1 (RFC 9112) with "Connection: close":
 * one request a connection.  The response body is delimited by
 * Content-Length, by chunked transfer coding, or by the end of the
 * connection; its size and the size of the header are limited.  Redirects
 * are never followed: a 3xx is a response like any other (MTA-STS forbids
 * following them, RFC 8461 3.3).  One timeout covers the whole exchange.
 *
 * The caller resolves the host name (gn_dns_lookup(), A then AAAA) and
 * gives the addresses: the network layer sits below the resolver.  Each
 * address is tried in order until one connects; a TLS or HTTP failure on
 * a connected address ends the request.
 *
 * The callback runs once, from the loop, never from inside
 * gn_httpclient_start(), unless the request is cancelled first.  Call
 * from start onwards in the process that runs the loop.
 */
#ifndef GANNET_HTTPCLIENT_H
#define GANNET_HTTPCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <gannet/module.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Defaults of the limits (0 in the request). */
#define GN_HTTPCLIENT_MAX_HEADER_DEFAULT (16 * 1024)
#define GN_HTTPCLIENT_MAX_BODY_DEFAULT (1024 * 1024)
#define GN_HTTPCLIENT_TIMEOUT_DEFAULT_MS 30000UL
/* Most addresses and request header lines a request takes. */
#define GN_HTTPCLIENT_MAX_ADDRS 16
#define GN_HTTPCLIENT_MAX_HEADERS 64

/* What to send.  Filled by the caller (gn_httpclient_request_init()
 * first), read during gn_httpclient_start() only: the client copies
 * what it keeps.  Grows only at the end. */
struct gn_httpclient_request {
	size_t size;		/* sizeof(struct gn_httpclient_request) */
	const char *method;	/* "GET" (NULL), "POST", ... */
	const char *host;	/* the server's name: Host, SNI, certificate check */
	unsigned port;		/* 0: 443 */
	const char *path;	/* "/..." (origin form), no CR, LF or space */
	const char *const *addrs;	/* IPv4/IPv6 text, tried in order */
	size_t n_addrs;
	const char *const *headers;	/* "Name: value", without CRLF */
	size_t n_headers;
	const void *body;	/* sent with Content-Length (POST) */
	size_t body_len;
	size_t max_header;	/* the response's status line and header; 0: default */
	size_t max_body;	/* the response's body (decoded); 0: default */
	unsigned long timeout_ms;	/* the whole exchange; 0: default */
	/* Plain HTTP, no TLS (port 0: 80), for the callers that allow it
	 * (webhooks: http:// URLs as mox takes them); never MTA-STS. */
	bool plain_http;
};

/* The outcome.  Read-only, valid only during the callback.  error is
 * NULL when a whole response came (status then is the server's, 100 to
 * 599, whatever it is); otherwise why not ("connect: Connection refused",
 * "TLS: certificate does not verify for mta-sts.example: ...", "timeout",
 * "response body larger than 65536 bytes", ...), and status is 0. */
struct gn_httpclient_response {
	const char *error;
	int status;
	const char *reason;		/* the status line's text */
	const char *const *header_names;	/* as received (case kept) */
	const char *const *header_values;	/* trimmed */
	size_t n_headers;
	const char *body;		/* NUL-terminated after body_len */
	size_t body_len;
	const char *ip;			/* the address that answered, or NULL */
	const char *tls_version;	/* "TLS1.3", or NULL */
};

struct gn_httpclient;
typedef void gn_httpclient_fn(const struct gn_httpclient_response *response, void *data);

void gn_httpclient_request_init(struct gn_httpclient_request *req);

/* Starts a request.  Returns its handle (owned by the client until the
 * callback returns or the request is cancelled), or NULL with *error_r
 * (static) when the request itself is wrong (no host, no address, a bad
 * path or header, more than the limits above): nothing is sent then and
 * fn is not called. */
struct gn_httpclient *gn_httpclient_start(const struct gn_httpclient_request *req,
					      gn_httpclient_fn *fn, void *data,
					      const char **error_r);

/* Cancels a request whose callback has not run: it will not run.  Sets
 * *client to NULL; accepts NULL and *client == NULL.  Not from the
 * request's own callback. */
void gn_httpclient_cancel(struct gn_httpclient **client);

/* The value of the response's first header field called name (case-
 * insensitive), or NULL. */
const char *gn_httpclient_header(const struct gn_httpclient_response *response,
				  const char *name);

#ifdef __cplusplus
}
#endif
#endif
