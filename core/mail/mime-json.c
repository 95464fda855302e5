/*
 * core/mail/mime-json.c: a parsed message's structure as JSON and back
 * (gn_mime_to_json_string, gn_mime_from_json_string; mime_to_json and
 * mime_from_json for the core's own json-c users), as it is stored with
 * the message, so that nothing parses a message twice for its structure.
 * The only file of the mail layer that speaks json-c.
 */
#include "mail/internal.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <json-c/json.h>

/* ---- JSON (stored with the message) ----
 *
 * {"v": 1, "size": N, "problems": [...], "parts": [ {...}, ... ]}: the parts
 * in pre-order, each with "parent" (its index, -1 for the root), so the
 * JSON stays flat however deep the message is.  Absent values are left
 * out.  A raw envelope value that is not UTF-8 (8-bit headers) is kept as
 * "raw_b64". */

#define JSON_VERSION 1

static void json_add_str(struct json_object *o, const char *key, const char *v)
{
	if (v != NULL)
		json_object_object_add(o, key, json_object_new_string(v));
}

static void json_add_size(struct json_object *o, const char *key, size_t v)
{
	json_object_object_add(o, key, json_object_new_int64((int64_t)v));
}

static struct json_object *json_params(const struct mime_param *v, size_t n)
{
	struct json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		struct json_object *pair = json_object_new_array();
		json_object_array_add(pair, json_object_new_string(v[i].name));
		json_object_array_add(pair, json_object_new_string(v[i].value));
		json_object_array_add(a, pair);
	}
	return a;
}

static struct json_object *json_part(const struct gn_mime_part *part, long parent)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "parent", json_object_new_int64(parent));
	json_add_size(o, "header_offset", part->header_offset);
	json_add_size(o, "header_size", part->header_size);
	json_add_size(o, "body_offset", part->body_offset);
	json_add_size(o, "body_size", part->body_size);
	json_add_size(o, "body_lines", part->body_lines);
	json_add_size(o, "decoded_size", part->decoded_size);
	json_add_str(o, "type", part->type);
	json_add_str(o, "subtype", part->subtype);
	if (part->n_params > 0)
		json_object_object_add(o, "params", json_params(part->params, part->n_params));
	json_add_str(o, "disposition", part->disposition);
	if (part->n_disp_params > 0)
		json_object_object_add(o, "disposition_params",
				       json_params(part->disp_params, part->n_disp_params));
	json_add_str(o, "filename", part->filename);
	json_add_str(o, "id", part->content_id);
	json_add_str(o, "description", part->description);
	json_add_str(o, "encoding", part->encoding);
	json_add_str(o, "language", part->language);
	json_add_str(o, "location", part->location);
	json_add_str(o, "md5", part->md5);
	if (part->envelope != NULL) {
		const struct mime_envelope *env = part->envelope;
		struct json_object *eo = json_object_new_object();
		for (int i = 0; i < MIME_N_FIELDS; i++) {
			if (env->raw[i] == NULL)
				continue;
			struct json_object *f = json_object_new_object();
			const char *raw = env->raw[i];
			if (mime_utf8_valid(raw, strlen(raw))) {
				json_add_str(f, "raw", raw);
			} else {
				char *b = mime_b64_encode((const unsigned char *)raw, strlen(raw));
				json_add_str(f, "raw_b64", b);
				gn_free(b);
			}
			json_add_str(f, "decoded", env->decoded[i]);
			json_object_object_add(eo, mime_field_names[i], f);
		}
		if (env->has_date)
			json_object_object_add(eo, "date_time", json_object_new_int64((int64_t)env->date));
		json_object_object_add(o, "envelope", eo);
	}
	return o;
}

struct json_object *mime_to_json(const struct gn_mime_message *msg)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "v", json_object_new_int(JSON_VERSION));
	json_add_size(o, "size", msg->size);
	struct json_object *pr = json_object_new_array();
	for (size_t i = 0; i < msg->n_problems; i++)
		json_object_array_add(pr, json_object_new_string(msg->problems[i]));
	json_object_object_add(o, "problems", pr);
	struct json_object *parts = json_object_new_array();
	/* Pre-order without recursion (the tree may be deep); a part's index
	 * is its position in the array. */
	struct walk {
		const struct gn_mime_part *part;
		long index;
		size_t next;	/* the next child to visit */
	} *stack = NULL;
	size_t depth = 0, cap = 0;
	long next_index = 0;
	const struct gn_mime_part *cur = msg->root;
	long parent = -1;
	for (;;) {
		if (cur != NULL) {
			json_object_array_add(parts, json_part(cur, parent));
			if (depth == cap) {
				cap = cap ? cap * 2 : 16;
				stack = gn_realloc(stack, cap * sizeof(*stack));
			}
			stack[depth].part = cur;
			stack[depth].index = next_index++;
			stack[depth].next = 0;
			depth++;
		}
		if (depth == 0)
			break;
		struct walk *w = &stack[depth - 1];
		if (w->next < w->part->n_children) {
			parent = w->index;
			cur = w->part->children[w->next++];
		} else {
			depth--;
			cur = NULL;
		}
	}
	gn_free(stack);
	json_object_object_add(o, "parts", parts);
	return o;
}

char *gn_mime_to_json_string(const struct gn_mime_message *msg)
{
	struct json_object *o = mime_to_json(msg);
	char *s = gn_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

static bool json_get_size(struct json_object *o, const char *key, size_t *v_r)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	int64_t n = json_object_get_int64(v);
	if (n < 0)
		return false;
	*v_r = (size_t)n;
	return true;
}

/* An optional string: true when absent or a string. */
static bool json_get_str(struct gn_pool *pool, struct json_object *o, const char *key, char **v_r)
{
	struct json_object *v;
	*v_r = NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return true;
	if (!json_object_is_type(v, json_type_string))
		return false;
	*v_r = gn_pool_strndup(pool, json_object_get_string(v), (size_t)json_object_get_string_len(v));
	return true;
}

static bool json_get_params(struct gn_pool *pool, struct json_object *o, const char *key,
			    struct mime_param **v_r, size_t *n_r)
{
	struct json_object *a;
	*v_r = NULL;
	*n_r = 0;
	if (!json_object_object_get_ex(o, key, &a))
		return true;
	if (!json_object_is_type(a, json_type_array))
		return false;
	size_t n = json_object_array_length(a);
	struct mime_param *v = gn_pool_alloc(pool, (n ? n : 1) * sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		struct json_object *pair = json_object_array_get_idx(a, i);
		if (!json_object_is_type(pair, json_type_array) || json_object_array_length(pair) != 2)
			return false;
		struct json_object *k = json_object_array_get_idx(pair, 0);
		struct json_object *val = json_object_array_get_idx(pair, 1);
		if (!json_object_is_type(k, json_type_string) || !json_object_is_type(val, json_type_string))
			return false;
		v[i].name = gn_pool_strdup(pool, json_object_get_string(k));
		v[i].value = gn_pool_strdup(pool, json_object_get_string(val));
	}
	*v_r = v;
	*n_r = n;
	return true;
}

static bool json_envelope(struct gn_pool *pool, struct json_object *eo, struct mime_envelope *env)
{
	if (!json_object_is_type(eo, json_type_object))
		return false;
	for (int i = 0; i < MIME_N_FIELDS; i++) {
		struct json_object *f;
		if (!json_object_object_get_ex(eo, mime_field_names[i], &f))
			continue;
		if (!json_object_is_type(f, json_type_object))
			return false;
		char *raw, *raw_b64;
		if (!json_get_str(pool, f, "raw", &raw) || !json_get_str(pool, f, "raw_b64", &raw_b64) ||
		    !json_get_str(pool, f, "decoded", &env->decoded[i]))
			return false;
		if (raw == NULL && raw_b64 != NULL) {
			struct gn_buf *b = gn_buf_new(0);
			mime_b64_decode(b, raw_b64, strlen(raw_b64));
			raw = gn_pool_strndup(pool, gn_buf_data(b), gn_buf_len(b));
			gn_buf_free(&b);
		}
		if (raw == NULL || env->decoded[i] == NULL)
			return false;
		env->raw[i] = raw;
	}
	struct json_object *d;
	if (json_object_object_get_ex(eo, "date_time", &d)) {
		if (!json_object_is_type(d, json_type_int))
			return false;
		env->has_date = true;
		env->date = (time_t)json_object_get_int64(d);
	}
	return true;
}

int mime_from_json(const struct json_object *cobj, struct gn_mime_message **msg_r,
		   const char **error_r)
{
	struct json_object *obj = (struct json_object *)cobj, *v, *parts, *problems;
	*msg_r = NULL;
	if (!json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, "v", &v) || !json_object_is_type(v, json_type_int)) {
		*error_r = "not a stored MIME structure";
		return -1;
	}
	if (json_object_get_int(v) != JSON_VERSION) {
		*error_r = "unknown MIME structure version";
		return -1;
	}
	if (!json_object_object_get_ex(obj, "parts", &parts) ||
	    !json_object_is_type(parts, json_type_array) || json_object_array_length(parts) == 0 ||
	    !json_object_object_get_ex(obj, "problems", &problems) ||
	    !json_object_is_type(problems, json_type_array)) {
		*error_r = "MIME structure without parts or problems";
		return -1;
	}
	struct gn_mime_message *msg = gn_calloc(1, sizeof(*msg));
	msg->pool = gn_pool_new();
	struct gn_pool *pool = msg->pool;
	const char *err = NULL;
	if (!json_get_size(obj, "size", &msg->size))
		err = "MIME structure without size";
	size_t np = json_object_array_length(problems);
	if (err == NULL && np > 0) {
		msg->problems = gn_calloc(np, sizeof(*msg->problems));
		for (size_t i = 0; i < np && err == NULL; i++) {
			struct json_object *s = json_object_array_get_idx(problems, i);
			if (!json_object_is_type(s, json_type_string))
				err = "MIME problem is not a string";
			else
				msg->problems[msg->n_problems++] = gn_pool_strdup(pool, json_object_get_string(s));
		}
	}
	size_t n = json_object_array_length(parts);
	struct gn_mime_part **all = gn_calloc(n, sizeof(*all));
	for (size_t i = 0; i < n && err == NULL; i++) {
		struct json_object *po = json_object_array_get_idx(parts, i), *pv, *eo;
		struct gn_mime_part *part = gn_pool_alloc(pool, sizeof(*part));
		all[i] = part;
		part->index = i;
		if (!json_object_is_type(po, json_type_object) ||
		    !json_object_object_get_ex(po, "parent", &pv) || !json_object_is_type(pv, json_type_int)) {
			err = "MIME part without parent";
			break;
		}
		int64_t parent = json_object_get_int64(pv);
		if ((i == 0 && parent != -1) || (i > 0 && (parent < 0 || (uint64_t)parent >= i))) {
			err = "MIME part with a bad parent";
			break;
		}
		if (!json_get_size(po, "header_offset", &part->header_offset) ||
		    !json_get_size(po, "header_size", &part->header_size) ||
		    !json_get_size(po, "body_offset", &part->body_offset) ||
		    !json_get_size(po, "body_size", &part->body_size) ||
		    !json_get_size(po, "body_lines", &part->body_lines) ||
		    !json_get_size(po, "decoded_size", &part->decoded_size)) {
			err = "MIME part without offsets and sizes";
			break;
		}
		if (!json_get_str(pool, po, "type", &part->type) ||
		    !json_get_str(pool, po, "subtype", &part->subtype) || part->type == NULL ||
		    part->subtype == NULL || !json_get_str(pool, po, "disposition", &part->disposition) ||
		    !json_get_str(pool, po, "filename", &part->filename) ||
		    !json_get_str(pool, po, "id", &part->content_id) ||
		    !json_get_str(pool, po, "description", &part->description) ||
		    !json_get_str(pool, po, "encoding", &part->encoding) ||
		    !json_get_str(pool, po, "language", &part->language) ||
		    !json_get_str(pool, po, "location", &part->location) ||
		    !json_get_str(pool, po, "md5", &part->md5) ||
		    !json_get_params(pool, po, "params", &part->params, &part->n_params) ||
		    !json_get_params(pool, po, "disposition_params", &part->disp_params,
				     &part->n_disp_params)) {
			err = "MIME part with a bad value";
			break;
		}
		if (json_object_object_get_ex(po, "envelope", &eo)) {
			part->envelope = gn_pool_alloc(pool, sizeof(*part->envelope));
			if (!json_envelope(pool, eo, part->envelope)) {
				err = "MIME part with a bad envelope";
				break;
			}
		}
		if (i > 0) {
			struct gn_mime_part *par = all[parent];
			part->parent = par;
			if (par->last_child != NULL)
				par->last_child->next = part;
			else
				par->first_child = part;
			par->last_child = part;
			par->n_children++;
		}
	}
	if (err == NULL) {
		msg->root = all[0];
		mime_tree_finish(pool, msg->root);
	}
	gn_free(all);
	if (err != NULL) {
		gn_mime_message_free(&msg);
		*error_r = err;
		return -1;
	}
	*msg_r = msg;
	return 0;
}

int gn_mime_from_json_string(const char *json, size_t len, struct gn_mime_message **msg_r,
			     const char **error_r)
{
	*msg_r = NULL;
	if (len > INT_MAX) {
		*error_r = "MIME structure too large";
		return -1;
	}
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = json_tokener_parse_ex(tok, json, (int)len);
	bool complete = json_tokener_get_error(tok) == json_tokener_success;
	json_tokener_free(tok);
	if (o == NULL || !complete) {
		json_object_put(o);
		*error_r = "MIME structure is not JSON";
		return -1;
	}
	int r = mime_from_json(o, msg_r, error_r);
	json_object_put(o);
	return r;
}

/* ---- mox's Structure (gn_mime_structure_json) ---- */

static char *lower_dup(struct gn_pool *pool, const char *s)
{
	char *r = gn_pool_strdup(pool, s != NULL ? s : "");
	for (char *p = r; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return r;
}

static struct json_object *structure(struct gn_pool *pool, const struct gn_mime_part *p, unsigned depth)
{
	struct json_object *o = json_object_new_object();
	const char *t = gn_mime_part_type(p), *st = gn_mime_part_subtype(p);
	json_object_object_add(o, "ContentType", json_object_new_string(
		t == NULL || st == NULL ? "text/plain" : lower_dup(pool, gn_pool_printf(pool, "%s/%s", t, st))));
	struct json_object *params = json_object_new_object();
	for (size_t i = 0; i < gn_mime_part_param_count(p); i++)
		json_object_object_add(params, lower_dup(pool, gn_mime_part_param_name(p, i)),
				       json_object_new_string(gn_mime_part_param_value(p, i)));
	json_object_object_add(o, "ContentTypeParams", params);
	const char *cid = gn_mime_part_content_id(p);
	json_object_object_add(o, "ContentID", json_object_new_string(cid != NULL ? cid : ""));
	json_object_object_add(o, "ContentDisposition",
			       json_object_new_string(lower_dup(pool, gn_mime_part_disposition(p))));
	const char *fn = gn_mime_part_filename(p);
	json_object_object_add(o, "Filename", json_object_new_string(fn != NULL ? fn : ""));
	json_object_object_add(o, "DecodedSize", json_object_new_int64((int64_t)gn_mime_part_decoded_size(p)));
	struct json_object *parts = json_object_new_array();
	/* The parser's depth limit bounds the recursion; multipart only,
	 * as mox (a message/rfc822 part has no Parts). */
	if (t != NULL && strcasecmp(t, "multipart") == 0 && depth < 1000)
		for (size_t i = 0; i < gn_mime_part_child_count(p); i++)
			json_object_array_add(parts, structure(pool, gn_mime_part_child(p, i), depth + 1));
	json_object_object_add(o, "Parts", parts);
	return o;
}

char *gn_mime_structure_json(const struct gn_mime_part *p)
{
	struct gn_pool *pool = gn_pool_new();
	struct json_object *o = structure(pool, p, 0);
	char *s = gn_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	gn_pool_free(&pool);
	return s;
}
