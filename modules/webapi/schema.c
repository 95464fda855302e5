/*
 * modules/webapi/schema.c: what the dispatch table says about requests:
 * checking a request's JSON as mox's decoder does (Go's encoding/json
 * with DisallowUnknownFields: names matched case-insensitively, an
 * unknown name refused, types checked, null leaves the zero value), the
 * OpenAPI 3 description, the index page and the example pages.
 */
#include "webapi.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *go_type(enum webapi_ftype t)
{
	switch (t) {
	case WF_STRING: return "string";
	case WF_BOOL: return "bool";
	case WF_INT: return "int64";
	case WF_INTS: return "[]int";
	case WF_STRINGS: return "[]string";
	case WF_TIME: return "time.Time";
	case WF_ARRAY: return "[]";
	case WF_OBJECT: return "map";
	}
	return "?";
}

static const char *json_kind(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "bool";
	case json_type_double: return "number";
	case json_type_int: return "number";
	case json_type_object: return "object";
	case json_type_array: return "array";
	case json_type_string: return "string";
	}
	return "value";
}

static bool all_of(struct json_object *a, json_type t)
{
	for (size_t i = 0; i < json_object_array_length(a); i++)
		if (!json_object_is_type(json_object_array_get_idx(a, i), t))
			return false;
	return true;
}

static bool type_ok(enum webapi_ftype t, struct json_object *v)
{
	if (v == NULL)
		return true;	/* null: the zero value */
	switch (t) {
	case WF_STRING:
	case WF_TIME:
		return json_object_is_type(v, json_type_string);
	case WF_BOOL:
		return json_object_is_type(v, json_type_boolean);
	case WF_INT:
		return json_object_is_type(v, json_type_int);
	case WF_INTS:
		return json_object_is_type(v, json_type_array) && all_of(v, json_type_int);
	case WF_STRINGS:
		return json_object_is_type(v, json_type_array) && all_of(v, json_type_string);
	case WF_ARRAY:
		return json_object_is_type(v, json_type_array);
	case WF_OBJECT:
		return json_object_is_type(v, json_type_object);
	}
	return false;
}

struct json_object *webapi_parse_request(const struct webapi_method *m, const char *text,
					 size_t len, char **error_r)
{
	struct json_tokener *tok = json_tokener_new();
	/* text is NUL-terminated: the NUL ends a value that could go on
	 * ("null", a number) */
	struct json_object *in = json_tokener_parse_ex(tok, text, (int)len + 1);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t used = (size_t)json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (in == NULL && jerr == json_tokener_success)
		in = json_object_new_object();	/* null: Go leaves the zero value */
	if (jerr != json_tokener_success) {
		json_object_put(in);
		*error_r = gn_strdup_printf("invalid character or unexpected end of JSON input (%s)",
					    json_tokener_error_desc(jerr));
		return NULL;
	}
	if (used > 0 && used <= len && text[used - 1] == '\0')
		used--;
	for (; used < len; used++)
		if (strchr(" \t\r\n", text[used]) == NULL) {
			json_object_put(in);
			*error_r = gn_strdup("invalid character after top-level value");
			return NULL;
		}
	if (!json_object_is_type(in, json_type_object)) {
		*error_r = gn_strdup_printf("json: cannot unmarshal %s into Go value of type webapi.%sRequest",
					    json_kind(in), m->name);
		json_object_put(in);
		return NULL;
	}
	struct json_object *out = json_object_new_object();
	json_object_object_foreach(in, key, val) {
		const struct webapi_field *f = NULL;
		for (const struct webapi_field *x = m->fields; x->name != NULL; x++)
			if (strcasecmp(x->name, key) == 0)
				f = x;
		if (f == NULL) {
			*error_r = gn_strdup_printf("json: unknown field \"%s\"", key);
			goto bad;
		}
		if (!type_ok(f->type, val)) {
			*error_r = gn_strdup_printf("json: cannot unmarshal %s into Go struct field "
						    "%sRequest.%s of type %s", json_kind(val), m->name,
						    f->name, go_type(f->type));
			goto bad;
		}
		json_object_object_add(out, f->name, json_object_get(val));
	}
	json_object_put(in);
	return out;
bad:
	json_object_put(in);
	json_object_put(out);
	return NULL;
}

bool webapi_arg(struct json_object *args, const char *name, struct json_object **v_r)
{
	return json_object_object_get_ex(args, name, v_r);
}

/* ---- OpenAPI ---- */

static const char COMPONENTS[] =
	"{"
	"\"Error\":{\"type\":\"object\",\"properties\":{\"Code\":{\"type\":\"string\",\"enum\":["
	"\"protocol\",\"server\",\"user\",\"error\",\"badAddress\",\"missingBody\",\"multipleFrom\","
	"\"domainDisabled\",\"badFrom\",\"noRecipients\",\"messageLimitReached\","
	"\"recipientLimitReached\",\"messageTooLarge\",\"malformedMessageID\",\"sentOverQuota\","
	"\"messageNotFound\",\"partNotFound\"]},\"Message\":{\"type\":\"string\"}}},"
	"\"NameAddress\":{\"type\":\"object\",\"properties\":{\"Name\":{\"type\":\"string\"},"
	"\"Address\":{\"type\":\"string\"}}},"
	"\"File\":{\"type\":\"object\",\"properties\":{\"Name\":{\"type\":\"string\"},"
	"\"ContentType\":{\"type\":\"string\"},\"ContentID\":{\"type\":\"string\"},"
	"\"Data\":{\"type\":\"string\",\"format\":\"byte\"}}},"
	"\"Submission\":{\"type\":\"object\",\"properties\":{\"Address\":{\"type\":\"string\"},"
	"\"QueueMsgID\":{\"type\":\"integer\",\"format\":\"int64\"},\"FromID\":{\"type\":\"string\"}}},"
	"\"Suppression\":{\"type\":\"object\",\"properties\":{\"ID\":{\"type\":\"integer\",\"format\":\"int64\"},"
	"\"Created\":{\"type\":\"string\",\"format\":\"date-time\"},\"Account\":{\"type\":\"string\"},"
	"\"BaseAddress\":{\"type\":\"string\"},\"OriginalAddress\":{\"type\":\"string\"},"
	"\"Manual\":{\"type\":\"boolean\"},\"Reason\":{\"type\":\"string\"}}},"
	"\"Message\":{\"type\":\"object\",\"properties\":{"
	"\"From\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/NameAddress\"}},"
	"\"To\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/NameAddress\"}},"
	"\"CC\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/NameAddress\"}},"
	"\"BCC\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/NameAddress\"}},"
	"\"ReplyTo\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/NameAddress\"}},"
	"\"MessageID\":{\"type\":\"string\"},\"References\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
	"\"Date\":{\"type\":\"string\",\"format\":\"date-time\",\"nullable\":true},"
	"\"Subject\":{\"type\":\"string\"},\"Text\":{\"type\":\"string\"},\"HTML\":{\"type\":\"string\"}}},"
	"\"Structure\":{\"type\":\"object\",\"properties\":{\"ContentType\":{\"type\":\"string\"},"
	"\"ContentTypeParams\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}},"
	"\"ContentID\":{\"type\":\"string\"},\"ContentDisposition\":{\"type\":\"string\"},"
	"\"Filename\":{\"type\":\"string\"},\"DecodedSize\":{\"type\":\"integer\",\"format\":\"int64\"},"
	"\"Parts\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/Structure\"}}}},"
	"\"MessageMeta\":{\"type\":\"object\",\"properties\":{\"Size\":{\"type\":\"integer\",\"format\":\"int64\"},"
	"\"DSN\":{\"type\":\"boolean\"},\"Flags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
	"\"MailFrom\":{\"type\":\"string\"},\"MailFromValidated\":{\"type\":\"boolean\"},"
	"\"RcptTo\":{\"type\":\"string\"},\"MsgFrom\":{\"type\":\"string\"},"
	"\"MsgFromValidated\":{\"type\":\"boolean\"},"
	"\"DKIMVerifiedDomains\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
	"\"RemoteIP\":{\"type\":\"string\"},\"MailboxName\":{\"type\":\"string\"}}}"
	"}";

static struct json_object *field_schema(const struct webapi_field *f)
{
	if (f->schema != NULL)
		return json_tokener_parse(f->schema);
	const char *s = "{}";
	switch (f->type) {
	case WF_STRING: s = "{\"type\":\"string\"}"; break;
	case WF_BOOL: s = "{\"type\":\"boolean\",\"nullable\":true}"; break;
	case WF_INT: s = "{\"type\":\"integer\",\"format\":\"int64\"}"; break;
	case WF_INTS: s = "{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}"; break;
	case WF_STRINGS: s = "{\"type\":\"array\",\"items\":{\"type\":\"string\"}}"; break;
	case WF_TIME: s = "{\"type\":\"string\",\"format\":\"date-time\",\"nullable\":true}"; break;
	case WF_ARRAY: s = "{\"type\":\"array\"}"; break;
	case WF_OBJECT: s = "{\"type\":\"object\"}"; break;
	}
	return json_tokener_parse(s);
}

static struct json_object *openapi_doc(void)
{
	struct json_object *doc = json_object_new_object();
	json_object_object_add(doc, "openapi", json_object_new_string("3.0.3"));
	struct json_object *info = json_object_new_object();
	json_object_object_add(info, "title", json_object_new_string("Gannet webapi (mox webapi v0)"));
	json_object_object_add(info, "version", json_object_new_string("v0"));
	json_object_object_add(info, "description", json_object_new_string(
		"POST a form (application/x-www-form-urlencoded or multipart/form-data) with the "
		"field \"request\" holding the JSON request object; HTTP Basic auth with an address "
		"of the account and its password.  200 with the JSON result (bytes for MessageRawGet "
		"and MessagePartGet), 400 with an Error."));
	json_object_object_add(doc, "info", info);
	json_object_object_add(doc, "servers", json_tokener_parse("[{\"url\":\"/webapi/v0\"}]"));
	json_object_object_add(doc, "security", json_tokener_parse("[{\"basic\":[]}]"));
	struct json_object *schemas = json_tokener_parse(COMPONENTS);
	struct json_object *paths = json_object_new_object();
	for (const struct webapi_method *m = webapi_methods; m->name != NULL; m++) {
		struct json_object *req = json_object_new_object();
		json_object_object_add(req, "type", json_object_new_string("object"));
		json_object_object_add(req, "additionalProperties", json_object_new_boolean(0));
		struct json_object *props = json_object_new_object();
		for (const struct webapi_field *f = m->fields; f->name != NULL; f++)
			json_object_object_add(props, f->name, field_schema(f));
		json_object_object_add(req, "properties", props);
		char name[128];
		snprintf(name, sizeof(name), "%sRequest", m->name);
		json_object_object_add(schemas, name, req);
		char *body = gn_strdup_printf(
			"{\"required\":true,\"content\":{\"application/x-www-form-urlencoded\":{\"schema\":"
			"{\"type\":\"object\",\"required\":[\"request\"],\"properties\":{\"request\":"
			"{\"type\":\"string\",\"description\":\"JSON of #/components/schemas/%s\"}}}},"
			"\"multipart/form-data\":{\"schema\":{\"type\":\"object\",\"required\":[\"request\"],"
			"\"properties\":{\"request\":{\"type\":\"string\",\"description\":"
			"\"JSON of #/components/schemas/%s\"}}}}}}", name, name);
		struct json_object *op = json_object_new_object();
		json_object_object_add(op, "operationId", json_object_new_string(m->name));
		json_object_object_add(op, "summary", json_object_new_string(m->doc));
		json_object_object_add(op, "requestBody", json_tokener_parse(body));
		gn_free(body);
		struct json_object *responses = json_object_new_object();
		struct json_object *r200 = json_object_new_object();
		json_object_object_add(r200, "description", json_object_new_string("the result"));
		struct json_object *content = json_object_new_object();
		if (m->response != NULL) {
			snprintf(name, sizeof(name), "%sResult", m->name);
			json_object_object_add(schemas, name, json_tokener_parse(m->response));
			char *ref = gn_strdup_printf("{\"schema\":{\"$ref\":\"#/components/schemas/%s\"}}", name);
			json_object_object_add(content, "application/json", json_tokener_parse(ref));
			gn_free(ref);
		} else {
			json_object_object_add(content, "application/octet-stream", json_tokener_parse(
				"{\"schema\":{\"type\":\"string\",\"format\":\"binary\"}}"));
		}
		json_object_object_add(r200, "content", content);
		json_object_object_add(responses, "200", r200);
		json_object_object_add(responses, "400", json_tokener_parse(
			"{\"description\":\"an API error\",\"content\":{\"application/json\":{\"schema\":"
			"{\"$ref\":\"#/components/schemas/Error\"}}}}"));
		json_object_object_add(responses, "401", json_tokener_parse(
			"{\"description\":\"missing or bad Basic auth\"}"));
		json_object_object_add(responses, "429", json_tokener_parse(
			"{\"description\":\"too many failed authentication attempts\"}"));
		json_object_object_add(op, "responses", responses);
		struct json_object *item = json_object_new_object();
		json_object_object_add(item, "post", op);
		snprintf(name, sizeof(name), "/%s", m->name);
		json_object_object_add(paths, name, item);
	}
	json_object_object_add(doc, "paths", paths);
	struct json_object *components = json_object_new_object();
	json_object_object_add(components, "schemas", schemas);
	json_object_object_add(components, "securitySchemes", json_tokener_parse(
		"{\"basic\":{\"type\":\"http\",\"scheme\":\"basic\"}}"));
	json_object_object_add(doc, "components", components);
	return doc;
}

void webapi_openapi(struct gn_http_request *req)
{
	struct json_object *doc = openapi_doc();
	gn_http_respond_json(req, 200, doc);
	json_object_put(doc);
}

/* ---- pages ---- */

static void html_escape(struct gn_buf *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': gn_buf_append_str(out, "&lt;"); break;
		case '>': gn_buf_append_str(out, "&gt;"); break;
		case '&': gn_buf_append_str(out, "&amp;"); break;
		case '"': gn_buf_append_str(out, "&quot;"); break;
		default: gn_buf_append(out, s, 1); break;
		}
	}
}

static void respond_html(struct gn_http_request *req, struct gn_buf *h)
{
	gn_http_respond(req, 200, "text/html; charset=utf-8", gn_buf_data(h), gn_buf_len(h));
	gn_buf_free(&h);
}

void webapi_page_index(struct gn_http_request *req)
{
	struct gn_buf *h = gn_buf_new(0);
	gn_buf_append_str(h,
		"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>webapi</title></head><body>\n"
		"<h1>Webapi</h1>\n<p>This is a simple HTTP/JSON-based API (compatible with mox's webapi "
		"v0).  POST a form with a field \"request\" holding the JSON request, with HTTP Basic "
		"auth.  Machine-readable description: <a href=\"openapi.json\">openapi.json</a>.</p>\n"
		"<h2>Methods</h2>\n<ul>\n");
	for (const struct webapi_method *m = webapi_methods; m->name != NULL; m++)
		gn_buf_printf(h, "<li><a href=\"%s\">%s</a></li>\n", m->name, m->name);
	gn_buf_append_str(h, "</ul>\n</body></html>\n");
	respond_html(req, h);
}

void webapi_page_method(struct gn_http_request *req, const struct webapi_method *m)
{
	struct json_object *ex = json_tokener_parse(m->example);
	const char *pretty = json_object_to_json_string_ext(ex, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_NOSLASHESCAPE);
	struct gn_buf *h = gn_buf_new(0);
	gn_buf_printf(h, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>webapi - %s</title>"
		      "</head><body>\n<h1><a href=\"./\">webapi</a> - %s</h1>\n<p>", m->name, m->name);
	html_escape(h, m->doc);
	gn_buf_append_str(h, "</p>\n<h2>Example request</h2>\n<pre>");
	html_escape(h, pretty);
	gn_buf_printf(h, "</pre>\n<h2>Call</h2>\n<form method=\"POST\" action=\"%s\">\n"
		      "<textarea name=\"request\" rows=\"10\" cols=\"80\">", m->name);
	html_escape(h, pretty);
	gn_buf_printf(h, "</textarea><br>\n<button type=\"submit\">Call %s</button>\n"
		      "</form>\n</body></html>\n", m->name);
	json_object_put(ex);
	respond_html(req, h);
}
