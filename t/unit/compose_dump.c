/*
 * t/unit/compose_dump: composes a message (gn_compose()) from a JSON
 * description on stdin and prints the result as JSON on stdout; for
 * t/integration/071-compose-python.t.
 *
 * In: {"from": {"name": N, "address": A}, "to"|"cc"|"bcc"|"reply_to":
 * [{...}], "subject", "text", "html", "alternative_files"|"inline_files"|
 * "attached_files": [{"name", "content_type", "content_id", "data"
 * (base64)}], "headers": [[name, value]], "references": [...],
 * "message_id", "host", "date" (seconds), "user_agent", "max_size"}.
 * Out: {"ok": true, "message_id", "smtputf8", "message" (base64)} or
 * {"ok": false, "error" (enum gn_compose_error), "text"}.  Exit 0, or 1
 * when the input is not such JSON.
 */
#include "mail/internal.h"

#include <stdio.h>
#include <string.h>
#include <json-c/json.h>

#include <gannet/compose.h>

static struct gn_pool *pool;

static const char *str(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || json_object_get_type(v) != json_type_string)
		return NULL;
	return gn_pool_strdup(pool, json_object_get_string(v));
}

static struct json_object *arr(struct json_object *o, const char *key, size_t *n_r)
{
	struct json_object *v;
	*n_r = 0;
	if (!json_object_object_get_ex(o, key, &v) || json_object_get_type(v) != json_type_array)
		return NULL;
	*n_r = json_object_array_length(v);
	return v;
}

static struct gn_compose_address *addrs(struct json_object *o, const char *key, size_t *n_r)
{
	struct json_object *a = arr(o, key, n_r);
	struct gn_compose_address *v = gn_pool_alloc(pool, sizeof(*v) * (*n_r + 1));
	for (size_t i = 0; i < *n_r; i++) {
		struct json_object *e = json_object_array_get_idx(a, i);
		v[i].name = str(e, "name");
		v[i].address = str(e, "address");
	}
	return v;
}

static struct gn_compose_file *files(struct json_object *o, const char *key, size_t *n_r)
{
	struct json_object *a = arr(o, key, n_r);
	struct gn_compose_file *v = gn_pool_alloc(pool, sizeof(*v) * (*n_r + 1));
	for (size_t i = 0; i < *n_r; i++) {
		struct json_object *e = json_object_array_get_idx(a, i);
		v[i].name = str(e, "name");
		v[i].content_type = str(e, "content_type");
		v[i].content_id = str(e, "content_id");
		const char *d = str(e, "data");
		struct gn_buf *b = gn_buf_new(0);
		if (d != NULL)
			mime_b64_decode(b, d, strlen(d));
		v[i].len = gn_buf_len(b);
		char *d2 = gn_pool_alloc(pool, gn_buf_len(b) + 1);
		if (gn_buf_len(b) > 0)
			memcpy(d2, gn_buf_data(b), gn_buf_len(b));
		v[i].data = d2;
		gn_buf_free(&b);
	}
	return v;
}

int main(void)
{
	pool = gn_pool_new();
	struct gn_buf *in = gn_buf_new(0);
	char tmp[65536];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), stdin)) > 0)
		gn_buf_append(in, tmp, n);
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = json_tokener_parse_ex(tok, gn_buf_data(in), (int)gn_buf_len(in));
	json_tokener_free(tok);
	gn_buf_free(&in);
	if (o == NULL || json_object_get_type(o) != json_type_object) {
		fprintf(stderr, "compose_dump: the input is not a JSON object\n");
		return 1;
	}

	struct gn_compose c;
	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	struct json_object *v;
	if (json_object_object_get_ex(o, "from", &v) && json_object_get_type(v) == json_type_object) {
		struct gn_compose_address *f = gn_pool_alloc(pool, sizeof(*f));
		f->name = str(v, "name");
		f->address = str(v, "address");
		c.from = f;
	}
	c.to = addrs(o, "to", &c.n_to);
	c.cc = addrs(o, "cc", &c.n_cc);
	c.bcc = addrs(o, "bcc", &c.n_bcc);
	c.reply_to = addrs(o, "reply_to", &c.n_reply_to);
	c.subject = str(o, "subject");
	c.text = str(o, "text");
	c.html = str(o, "html");
	c.alternative_files = files(o, "alternative_files", &c.n_alternative_files);
	c.inline_files = files(o, "inline_files", &c.n_inline_files);
	c.attached_files = files(o, "attached_files", &c.n_attached_files);
	struct json_object *a = arr(o, "headers", &c.n_headers);
	struct gn_compose_header *h = gn_pool_alloc(pool, sizeof(*h) * (c.n_headers + 1));
	for (size_t i = 0; i < c.n_headers; i++) {
		struct json_object *e = json_object_array_get_idx(a, i);
		h[i].name = gn_pool_strdup(pool, json_object_get_string(json_object_array_get_idx(e, 0)));
		h[i].value = gn_pool_strdup(pool, json_object_get_string(json_object_array_get_idx(e, 1)));
	}
	c.headers = h;
	a = arr(o, "references", &c.n_references);
	const char **refs = gn_pool_alloc(pool, sizeof(*refs) * (c.n_references + 1));
	for (size_t i = 0; i < c.n_references; i++)
		refs[i] = gn_pool_strdup(pool, json_object_get_string(json_object_array_get_idx(a, i)));
	c.references = refs;
	c.message_id = str(o, "message_id");
	c.host = str(o, "host");
	c.user_agent = str(o, "user_agent");
	if (json_object_object_get_ex(o, "date", &v))
		c.date = (time_t)json_object_get_int64(v);
	if (json_object_object_get_ex(o, "max_size", &v))
		c.max_size = (size_t)json_object_get_int64(v);

	struct gn_compose_result r;
	memset(&r, 0, sizeof(r));
	r.size = sizeof(r);
	struct json_object *out = json_object_new_object();
	if (gn_compose(pool, &c, &r) == 0) {
		char *b64 = mime_b64_encode((const unsigned char *)r.data, r.len);
		json_object_object_add(out, "ok", json_object_new_boolean(1));
		json_object_object_add(out, "message_id", json_object_new_string(r.message_id));
		json_object_object_add(out, "smtputf8", json_object_new_boolean(r.smtputf8));
		json_object_object_add(out, "message", json_object_new_string(b64));
		gn_free(b64);
		gn_free(r.data);
	} else {
		json_object_object_add(out, "ok", json_object_new_boolean(0));
		json_object_object_add(out, "error", json_object_new_int((int)r.error));
		json_object_object_add(out, "text", json_object_new_string(r.error_text));
	}
	printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
	json_object_put(out);
	json_object_put(o);
	gn_pool_free(&pool);
	return 0;
}
