/*
 * gannet/http.h: HTTP served by the core (ABI 1.1).
 *
 * Listeners with protocol "http" in the config (plain, or tls = "implicit"
 * with the deployment's certificates, SNI as for every protocol) are served
 * by the core: the connection layer accepts, counts the connection against
 * limits.connections_per_ip and limits.connections, terminates TLS, and
 * feeds the bytes to libmicrohttpd, which the worker drives from its loop.
 * Modules mount path prefixes with a handler; the core answers what no
 * mount takes (404), methods a mount does not take (405), bodies over the
 * limit (413), headers over the limit (431) and malformed requests (400),
 * all with a JSON body {"Code": ..., "Message": ...}.
 *
 * Settings, in the core's part of the config:
 *   http = { max_body = "10M";        request body limit (413 past it)
 *            max_header = "16k";      request line and header fields (431)
 *            request_timeout = "30s"; a connection silent this long closes
 *            connections = 1000; };   HTTP connections per worker
 *
 * A handler is called once per request, from the worker's loop, when the
 * whole body has arrived.  It answers with exactly one gn_http_respond*()
 * call, either before it returns or later from the loop (after a database
 * query, a hook, a timer): the request stays valid until then and is freed
 * by the core after the response went out.  Every wait must have a
 * timeout (STYLE.md 8), shorter than http.request_timeout: a request
 * never answered holds its connection until the client gives up, and the
 * connection layer closes a connection silent for 1.5 times
 * request_timeout even while its answer is pending.  When the client went away meanwhile
 * (gn_http_request_gone()), the answer is still required and is dropped.
 *
 * Strings returned by the accessors belong to the request and stay valid
 * until it is answered.  Nothing here may be called from another thread.
 */
#ifndef GANNET_HTTP_H
#define GANNET_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <gannet/module.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gn_http_request;
struct json_object;	/* json-c */

typedef void gn_http_handler_fn(struct gn_http_request *req, void *data);

/* Register phase: requests whose path starts with prefix ("/webapi/",
 * which must start with "/") go to handler; the longest matching prefix
 * wins.  methods: the methods taken, separated by spaces ("GET POST"), or
 * NULL for any; another method gets 405 with an Allow header.  HEAD is
 * taken where GET is (the handler sees "HEAD"; the body it gives is not
 * sent).  Returns 0,
 * or -1 with *error_r (a prefix already mounted, a bad prefix, after the
 * register phase). */
int gn_http_mount(struct gn_module_ctx *ctx, const char *prefix, const char *methods,
		  gn_http_handler_fn *handler, void *data, const char **error_r);

/* ---- the request ---- */

const char *gn_http_request_method(const struct gn_http_request *req);	/* "GET" */
/* The path as sent (percent-encoding kept), without the query. */
const char *gn_http_request_path(const struct gn_http_request *req);
/* The query after "?", as sent (percent-encoding kept), or "" when none. */
const char *gn_http_request_query(const struct gn_http_request *req);
/* A query parameter, decoded, or NULL. */
const char *gn_http_request_arg(const struct gn_http_request *req, const char *name);
/* A header field's value (name in any case; the first when repeated), or
 * NULL. */
const char *gn_http_request_header(const struct gn_http_request *req, const char *name);
/* The body as received (at most http.max_body bytes; NUL-terminated after
 * len for convenience). */
void gn_http_request_body(const struct gn_http_request *req, const char **data_r,
			  size_t *len_r);

/* Form fields of an application/x-www-form-urlencoded or
 * multipart/form-data body (at most 1000 fields), in order.  count() is 0
 * for other bodies.  field(): i < count; filename_r and ctype_r (NULL when
 * the part had none) may be NULL. */
size_t gn_http_request_field_count(const struct gn_http_request *req);
void gn_http_request_field(const struct gn_http_request *req, size_t i, const char **name_r,
			   const char **value_r, size_t *len_r, const char **filename_r,
			   const char **ctype_r);
/* The first field named name: its value (NUL-terminated) or NULL. */
const char *gn_http_request_form(const struct gn_http_request *req, const char *name,
				 size_t *len_r);

/* HTTP Basic credentials (RFC 7617) from the Authorization header.
 * Returns 1 with both set, 0 when the request has none, -1 when the header
 * says Basic but does not decode to "user:password". */
int gn_http_request_basic_auth(const struct gn_http_request *req, const char **user_r,
			       const char **password_r);

const char *gn_http_request_remote_ip(const struct gn_http_request *req);
bool gn_http_request_is_tls(const struct gn_http_request *req);
/* The connection's id, for log lines ("c1a2b3-17"). */
const char *gn_http_request_conn_id(const struct gn_http_request *req);
/* The client's connection closed while the request waited. */
bool gn_http_request_gone(const struct gn_http_request *req);

/* ---- the response: exactly one gn_http_respond*() per request ---- */

/* A header field for the response (before gn_http_respond*()).  0, or -1
 * when the name or value is not allowed (CR, LF, empty name) or after the
 * response. */
int gn_http_response_header(struct gn_http_request *req, const char *name,
			    const char *value);
/* Copies body.  content_type NULL: none.  0, or -1 when already answered. */
int gn_http_respond(struct gn_http_request *req, unsigned status, const char *content_type,
		    const void *body, size_t len);
/* obj serialised (plain, compact) as application/json; the caller keeps its
 * reference to obj. */
int gn_http_respond_json(struct gn_http_request *req, unsigned status,
			 struct json_object *obj);
/* {"Code": code, "Message": message} as application/json. */
int gn_http_respond_error(struct gn_http_request *req, unsigned status, const char *code,
			  const char *message);

#ifdef __cplusplus
}
#endif
#endif
