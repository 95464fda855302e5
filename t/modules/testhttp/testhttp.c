/*
 * t/modules/testhttp/testhttp.c: HTTP mounts for t/integration/280-http.t,
 * built like any module: <gannet/gannet.h> and json-c only, one exported
 * symbol.
 *
 *   /t/        GET POST: a JSON echo of what the core parsed: method, path,
 *              query, the query argument "a", the header X-Test, the body
 *              (length and, up to 4 KiB, text), the form fields (name,
 *              length, value up to 4 KiB, filename, content type), Basic
 *              credentials, client IP, TLS.  ?status=N answers with that
 *              status; ?error=CODE answers 400 {"Code": CODE, ...};
 *              ?size=N answers N bytes, byte i being i % 251.
 *   /t/async/  GET: answers from a timer after ?ms= milliseconds (default
 *              200), {"async": true, "ms": N}: the connection waits
 *              suspended in between.
 *   /t/any/    any method: text/plain "any <METHOD>\n".
 */
#include <gannet/gannet.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct json_object *str_or_null(const char *s)
{
	return s != NULL ? json_object_new_string(s) : NULL;
}

static void echo(struct gn_http_request *req, void *data)
{
	const char *status = gn_http_request_arg(req, "status");
	const char *error = gn_http_request_arg(req, "error");
	const char *size = gn_http_request_arg(req, "size");
	if (size != NULL) {
		/* A big answer: bytes i % 251, for the client to check. */
		size_t n = (size_t)strtoul(size, NULL, 10);
		if (n > 64u << 20)
			n = 64u << 20;
		unsigned char *b = gn_malloc(n > 0 ? n : 1);
		for (size_t i = 0; i < n; i++)
			b[i] = (unsigned char)(i % 251);
		gn_http_respond(req, 200, "application/octet-stream", b, n);
		gn_free(b);
		return;
	}
	if (error != NULL) {
		gn_http_respond_error(req, 400, error, "asked for an error");
		return;
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "method", json_object_new_string(gn_http_request_method(req)));
	json_object_object_add(o, "path", json_object_new_string(gn_http_request_path(req)));
	json_object_object_add(o, "query", json_object_new_string(gn_http_request_query(req)));
	json_object_object_add(o, "a", str_or_null(gn_http_request_arg(req, "a")));
	json_object_object_add(o, "x_test", str_or_null(gn_http_request_header(req, "x-test")));
	const char *body;
	size_t len;
	gn_http_request_body(req, &body, &len);
	json_object_object_add(o, "body_len", json_object_new_int64((int64_t)len));
	if (len <= 4096)
		json_object_object_add(o, "body", json_object_new_string_len(body, (int)len));
	struct json_object *fields = json_object_new_array();
	for (size_t i = 0; i < gn_http_request_field_count(req); i++) {
		const char *name, *value, *filename, *ctype;
		size_t vlen;
		gn_http_request_field(req, i, &name, &value, &vlen, &filename, &ctype);
		struct json_object *f = json_object_new_object();
		json_object_object_add(f, "name", json_object_new_string(name));
		json_object_object_add(f, "len", json_object_new_int64((int64_t)vlen));
		if (vlen <= 4096)
			json_object_object_add(f, "value", json_object_new_string_len(value, (int)vlen));
		json_object_object_add(f, "filename", str_or_null(filename));
		json_object_object_add(f, "ctype", str_or_null(ctype));
		json_object_array_add(fields, f);
	}
	json_object_object_add(o, "fields", fields);
	size_t flen = 0;
	const char *first = gn_http_request_form(req, "first", &flen);
	json_object_object_add(o, "form_first", str_or_null(first));
	const char *user = NULL, *password = NULL;
	int auth = gn_http_request_basic_auth(req, &user, &password);
	json_object_object_add(o, "auth", json_object_new_int(auth));
	json_object_object_add(o, "user", str_or_null(auth == 1 ? user : NULL));
	json_object_object_add(o, "password", str_or_null(auth == 1 ? password : NULL));
	json_object_object_add(o, "ip", json_object_new_string(gn_http_request_remote_ip(req)));
	json_object_object_add(o, "tls", json_object_new_boolean(gn_http_request_is_tls(req)));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	gn_http_response_header(req, "X-Echo", "1");
	gn_http_respond_json(req, status != NULL ? (unsigned)atoi(status) : 200, o);
	json_object_put(o);
}

struct pending {
	struct gn_http_request *req;
	struct gn_timer *timer;
	long ms;
};

static void async_fire(void *data)
{
	struct pending *p = data;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "async", json_object_new_boolean(1));
	json_object_object_add(o, "ms", json_object_new_int64(p->ms));
	gn_http_respond_json(p->req, 200, o);
	json_object_put(o);
	gn_timer_free(&p->timer);
	gn_free(p);
}

static void async_start(struct gn_http_request *req, void *data)
{
	const char *ms = gn_http_request_arg(req, "ms");
	struct pending *p = gn_calloc(1, sizeof(*p));
	p->req = req;
	p->ms = ms != NULL ? strtol(ms, NULL, 10) : 200;
	if (p->ms < 1 || p->ms > 60000)
		p->ms = 200;
	p->timer = gn_timer_new((unsigned long)p->ms, false, async_fire, p);
}

static void any(struct gn_http_request *req, void *data)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "any %s\n", gn_http_request_method(req));
	gn_http_respond(req, 200, "text/plain", buf, (size_t)n);
}

static int testhttp_register(struct gn_module_ctx *ctx, const char **error_r)
{
	if (gn_http_mount(ctx, "/t/", "GET POST", echo, NULL, error_r) < 0 ||
	    gn_http_mount(ctx, "/t/async/", "GET", async_start, NULL, error_r) < 0 ||
	    gn_http_mount(ctx, "/t/any/", NULL, any, NULL, error_r) < 0)
		return -1;
	/* The same prefix twice is refused. */
	const char *e;
	if (gn_http_mount(ctx, "/t/", NULL, any, NULL, &e) == 0) {
		*error_r = "a prefix mounted twice was accepted";
		return -1;
	}
	return 0;
}

/* A mount after the register phase is refused; the log says so (the test
 * reads it). */
static int testhttp_start(struct gn_module_ctx *ctx, const char **error_r)
{
	const char *e = NULL;
	int r = gn_http_mount(ctx, "/late/", NULL, any, NULL, &e);
	gn_log(GN_LOG_INFO, "testhttp", "event=late_mount result=%d error=%s", r,
	       gn_log_quote(0, e != NULL ? e : "none"));
	return 0;
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "testhttp",
	.version = "1.0",
	.register_fn = testhttp_register,
	.start_fn = testhttp_start,
};
