/*
 * modules/imap/ext-id.c: the ID command (RFC 2971), registered through the
 * imap.v1 service (gannet/imap.h) and written only against it, as another
 * module would write an extension: it proves the service's path.
 */
#include "imap.h"

#include <gannet/imap.h>

#include <string.h>
#include <strings.h>

/* RFC 2971 3.3: at most 30 pairs, names of at most 30 octets, values of
 * at most 1024. */
#define ID_MAX_PAIRS 30
#define ID_MAX_NAME 30
#define ID_MAX_VALUE 1024

static bool is_string(const struct gn_imap_v1 *imap, const struct gn_imap_arg *a)
{
	enum gn_imap_arg_type t = imap->arg_type(a);
	return t == GN_IMAP_ARG_STRING || t == GN_IMAP_ARG_LITERAL;
}

static void id_command(struct gn_imap_session *s, const char *name, const struct gn_imap_args *args,
		       void *data)
{
	(void)name;
	const struct gn_imap_v1 *imap = data;
	const struct gn_imap_arg *a = imap->args_count(args) == 1 ? imap->args_get(args, 0) : NULL;
	const struct gn_imap_args *l = a != NULL ? imap->arg_list(a) : NULL;
	if (a == NULL || (l == NULL && imap->arg_type(a) != GN_IMAP_ARG_NIL)) {
		imap->tagged(s, "BAD", NULL, "ID takes NIL or a list of names and values");
		return;
	}
	if (l != NULL) {
		unsigned n = imap->args_count(l);
		if (n % 2 != 0 || n / 2 > ID_MAX_PAIRS) {
			imap->tagged(s, "BAD", NULL, "ID takes up to 30 pairs of names and values");
			return;
		}
		struct gn_buf *b = gn_buf_new(0);
		for (unsigned i = 0; i < n; i += 2) {
			const struct gn_imap_arg *k = imap->args_get(l, i), *v = imap->args_get(l, i + 1);
			size_t klen = 0, vlen = 0;
			const char *key = is_string(imap, k) ? imap->arg_str(k, &klen) : NULL;
			const char *value = is_string(imap, v) ? imap->arg_str(v, &vlen) : NULL;
			if (key == NULL || klen > ID_MAX_NAME ||
			    (imap->arg_type(v) != GN_IMAP_ARG_NIL && (value == NULL || vlen > ID_MAX_VALUE))) {
				gn_buf_free(&b);
				imap->tagged(s, "BAD", NULL, "ID: names are strings of up to 30 octets, "
					     "values strings of up to 1024 or NIL");
				return;
			}
			if (strcasecmp(key, "name") == 0 || strcasecmp(key, "version") == 0 ||
			    strcasecmp(key, "os") == 0 || strcasecmp(key, "vendor") == 0)
				(void)gn_buf_printf(b, " %s=%s", key, gn_log_quote(0, value != NULL ? value : ""));
		}
		gn_log(GN_LOG_INFO, IMAP_AREA, "event=client_id conn=%s%s", gn_conn_id(imap->session_conn(s)),
		       gn_buf_data(b));
		gn_buf_free(&b);
	}
	/* No version: what runs here is nobody's business but the admin's. */
	imap->untagged(s, "ID (\"name\" \"Gannet\")");
	imap->tagged(s, "OK", NULL, "ID completed");
}

int imap_id_register(struct gn_module_ctx *ctx, const char **error_r)
{
	const struct gn_imap_v1 *imap = imap_service_ops();
	const unsigned any = GN_IMAP_STATE_NOTAUTH | GN_IMAP_STATE_AUTH | GN_IMAP_STATE_SELECTED;
	if (imap->command_register(ctx, "ID", any, id_command, (void *)imap, error_r) < 0)
		return -1;
	return imap->capability_add(ctx, "ID", any, error_r);
}
