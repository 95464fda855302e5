/*
 * modules/webapi/webapi.h: the module's parts between its files.
 */
#ifndef WEBAPI_H
#define WEBAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <gannet/gannet.h>
#include <gannet/http.h>

struct json_object;
struct call;

/* A request field's JSON type, checked as Go's decoder would. */
enum webapi_ftype {
	WF_STRING = 1,
	WF_BOOL,
	WF_INT,		/* int64 */
	WF_INTS,	/* []int */
	WF_STRINGS,	/* []string */
	WF_TIME,	/* RFC 3339 string or null */
	WF_ARRAY,	/* an array (items: schema) */
	WF_OBJECT,	/* an object (schema) */
};

struct webapi_field {
	const char *name;
	enum webapi_ftype type;
	const char *schema;	/* JSON Schema text, NULL: made from type */
};

/* One method of the dispatch table: the server, the pages and the OpenAPI
 * description all read it. */
struct webapi_method {
	const char *name;
	const struct webapi_field *fields;	/* the request, NULL-terminated */
	const char *response;	/* JSON Schema text; NULL: bytes */
	const char *example;	/* an example request */
	const char *doc;
	void (*fn)(struct call *c);
};

extern const struct webapi_method webapi_methods[];

/* schema.c: the request JSON checked against the method's fields as mox's
 * decoder does (an object, no unknown field, names matched
 * case-insensitively, types).  Returns the object, or NULL with *error_r
 * (gn_free()). */
struct json_object *webapi_parse_request(const struct webapi_method *m, const char *text,
					 size_t len, char **error_r);
/* The value of field name (as declared) in a parsed request. */
bool webapi_arg(struct json_object *args, const char *name, struct json_object **v_r);
void webapi_openapi(struct gn_http_request *req);
void webapi_page_index(struct gn_http_request *req);
void webapi_page_method(struct gn_http_request *req, const struct webapi_method *m);

/* cli.c */
int webapi_cli_register(struct gn_module_ctx *ctx, const char **error_r);

#endif
