/*
 * modules/imap/service.c: the "imap.v1" service (gannet/imap.h): commands,
 * capabilities and STATUS items that other modules add, and what their
 * handlers may do with a session.
 *
 * The tables fill in the register phase and are fixed from the start
 * phase on (registering then is refused), so the workers read them without
 * locks.  The module registers ID through the same calls, so the path a
 * third party takes is the one the module itself uses.
 */
#include "imap.h"

#include <gannet/imap.h>
#include <gannet/service.h>

#include <stdarg.h>
#include <string.h>

#define MAX_EXTENSIONS 64

struct ext_command {
	char *name;
	unsigned states;	/* GN_IMAP_STATE_* */
	gn_imap_command_fn *fn;
	void *data;
	const char *module;
};

struct ext_capability {
	char *name;
	unsigned states;
};

struct ext_status {
	char *name;
	gn_imap_status_fn *fn;
	void *data;
};

static struct ext_command commands[MAX_EXTENSIONS];
static size_t n_commands;
static struct ext_capability capabilities[MAX_EXTENSIONS];
static size_t n_capabilities;
static struct ext_status status_items[MAX_EXTENSIONS];
static size_t n_status_items;
static struct {
	gn_imap_store_check_fn *fn;
	void *data;
	const char *module;
} store_checks[8];
static size_t n_store_checks;
static bool tables_fixed;

/* RFC 9051 atom: what a command name or an item may be here (upper-case
 * letters, digits, "-", "." and "="; "=" for capabilities only). */
static bool valid_word(const char *w, bool capability)
{
	if (w == NULL || *w == '\0' || strlen(w) > 64)
		return false;
	for (const char *p = w; *p != '\0'; p++) {
		bool ok = (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
			  *p == '.' || (capability && (*p == '=' || *p == '+'));
		if (!ok)
			return false;
	}
	return true;
}

static bool can_register(const char *name, bool capability, unsigned states,
			 size_t count, const char **error_r)
{
	if (tables_fixed) {
		*error_r = "imap.v1: register in the register phase";
		return false;
	}
	if (!valid_word(name, capability)) {
		*error_r = capability ? "imap.v1: invalid capability (an upper-case atom)"
				      : "imap.v1: invalid name (an upper-case atom)";
		return false;
	}
	if (states != 0 && (states & ~(GN_IMAP_STATE_NOTAUTH | GN_IMAP_STATE_AUTH |
				       GN_IMAP_STATE_SELECTED)) != 0) {
		*error_r = "imap.v1: unknown state bits";
		return false;
	}
	if (count >= MAX_EXTENSIONS) {
		*error_r = "imap.v1: too many registrations (at most 64 of each kind)";
		return false;
	}
	return true;
}

static unsigned to_imap_states(unsigned states)
{
	return ((states & GN_IMAP_STATE_NOTAUTH) ? IMAP_S(IMAP_NOTAUTH) : 0) |
	       ((states & GN_IMAP_STATE_AUTH) ? IMAP_S(IMAP_AUTH) : 0) |
	       ((states & GN_IMAP_STATE_SELECTED) ? IMAP_S(IMAP_SELECTED) : 0);
}

static int command_register(struct gn_module_ctx *ctx, const char *name, unsigned states,
			    gn_imap_command_fn *fn, void *data, const char **error_r)
{
	if (!can_register(name, false, states, n_commands, error_r))
		return -1;
	if (fn == NULL || states == 0) {
		*error_r = "imap.v1: a command needs a handler and states";
		return -1;
	}
	if (imap_command_builtin(name) || imap_service_command(name, NULL) != NULL) {
		*error_r = "imap.v1: the command exists already";
		return -1;
	}
	commands[n_commands++] = (struct ext_command){
		.name = gn_strdup(name), .states = to_imap_states(states), .fn = fn, .data = data,
		.module = gn_module_name(ctx),
	};
	return 0;
}

static int capability_add(struct gn_module_ctx *ctx, const char *name, unsigned states,
			  const char **error_r)
{
	(void)ctx;
	if (!can_register(name, true, states, n_capabilities, error_r))
		return -1;
	for (size_t i = 0; i < n_capabilities; i++)
		if (strcmp(capabilities[i].name, name) == 0) {
			*error_r = "imap.v1: capability listed already";
			return -1;
		}
	capabilities[n_capabilities++] = (struct ext_capability){
		.name = gn_strdup(name), .states = to_imap_states(states),
	};
	return 0;
}

static int status_item_register(struct gn_module_ctx *ctx, const char *name, gn_imap_status_fn *fn,
				void *data, const char **error_r)
{
	(void)ctx;
	if (!can_register(name, false, 0, n_status_items, error_r))
		return -1;
	if (fn == NULL || imap_status_item_builtin(name) || imap_service_status_item(name) != NULL) {
		*error_r = "imap.v1: a STATUS item needs a handler and a name of its own";
		return -1;
	}
	status_items[n_status_items++] = (struct ext_status){
		.name = gn_strdup(name), .fn = fn, .data = data,
	};
	return 0;
}

static int store_check_register(struct gn_module_ctx *ctx, gn_imap_store_check_fn *fn, void *data,
				const char **error_r)
{
	if (tables_fixed) {
		*error_r = "imap.v1: register in the register phase";
		return -1;
	}
	if (fn == NULL) {
		*error_r = "imap.v1: a store check needs a function";
		return -1;
	}
	if (n_store_checks >= sizeof(store_checks) / sizeof(store_checks[0])) {
		*error_r = "imap.v1: too many store checks (at most 8)";
		return -1;
	}
	store_checks[n_store_checks].fn = fn;
	store_checks[n_store_checks].data = data;
	store_checks[n_store_checks].module = gn_module_name(ctx);
	n_store_checks++;
	return 0;
}

/* The messages of the store check running now (a worker runs one command
 * at a time, and a check runs to its end without yielding). */
static uint64_t checking_messages;

static uint64_t store_check_messages(const struct gn_imap_session *s)
{
	(void)s;
	return checking_messages;
}

/* ---- sessions: struct gn_imap_session is struct imap_session ---- */

static struct imap_session *S(struct gn_imap_session *s)
{
	return (struct imap_session *)s;
}

static const struct imap_session *CS(const struct gn_imap_session *s)
{
	return (const struct imap_session *)s;
}

static int64_t session_account_id(const struct gn_imap_session *s)
{
	return CS(s)->state == IMAP_NOTAUTH ? 0 : CS(s)->account_id;
}

static const char *session_account_name(const struct gn_imap_session *s)
{
	return CS(s)->account_name;
}

static const char *session_login(const struct gn_imap_session *s)
{
	return CS(s)->login;
}

static struct gn_conn *session_conn(struct gn_imap_session *s)
{
	return S(s)->conn;
}

static struct gn_pool *session_pool(struct gn_imap_session *s)
{
	return S(s)->cmd_pool;
}

static int64_t session_selected(const struct gn_imap_session *s, bool *readonly_r)
{
	const struct imap_view *v = CS(s)->sel;
	if (readonly_r != NULL)
		*readonly_r = v != NULL && v->readonly;
	return v != NULL ? v->id : 0;
}

static void untagged(struct gn_imap_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void untagged(struct gn_imap_session *s, const char *fmt, ...)
{
	struct gn_buf *b = gn_buf_new(0);
	va_list ap;
	va_start(ap, fmt);
	(void)gn_buf_vprintf(b, fmt, ap);
	va_end(ap);
	imap_untagged(S(s), "%s", gn_buf_data(b));
	gn_buf_free(&b);
}

static void tagged(struct gn_imap_session *s, const char *status, const char *code, const char *text)
{
	struct imap_session *is = S(s);
	if (is->cur_tag == NULL)
		return;	/* answered already */
	if (strcmp(status, "OK") != 0 && strcmp(status, "NO") != 0 && strcmp(status, "BAD") != 0)
		status = "BAD";
	imap_tagged(is, is->cur_tag, status, code, "%s", text != NULL ? text : "");
	is->cur_tag = NULL;
}

static const char *mailbox_from_wire(struct gn_imap_session *s, const char *wire)
{
	return imap_name_from_wire(S(s), S(s)->cmd_pool, wire);
}

static const char *mailbox_to_wire(struct gn_imap_session *s, const char *name)
{
	return imap_name_to_wire(S(s), S(s)->cmd_pool, name);
}

/* ---- arguments: struct gn_imap_args is an imap_arg of type LIST,
 * struct gn_imap_arg an imap_arg ---- */

static unsigned args_count(const struct gn_imap_args *args)
{
	return ((const struct imap_arg *)args)->count;
}

static const struct gn_imap_arg *args_get(const struct gn_imap_args *args, unsigned i)
{
	const struct imap_arg *l = (const struct imap_arg *)args;
	return i < l->count ? (const struct gn_imap_arg *)&l->list[i] : NULL;
}

static enum gn_imap_arg_type arg_type(const struct gn_imap_arg *arg)
{
	switch (((const struct imap_arg *)arg)->type) {
	case IMAP_ARG_ATOM:
		return GN_IMAP_ARG_ATOM;
	case IMAP_ARG_STRING:
		return GN_IMAP_ARG_STRING;
	case IMAP_ARG_LITERAL:
		return GN_IMAP_ARG_LITERAL;
	case IMAP_ARG_NIL:
		return GN_IMAP_ARG_NIL;
	case IMAP_ARG_LIST:
	default:
		return GN_IMAP_ARG_LIST;
	}
}

static const char *arg_str(const struct gn_imap_arg *arg, size_t *len_r)
{
	const struct imap_arg *a = (const struct imap_arg *)arg;
	if (a->type == IMAP_ARG_NIL || a->type == IMAP_ARG_LIST)
		return NULL;
	if (len_r != NULL)
		*len_r = a->len;
	return a->str;
}

static const struct gn_imap_args *arg_list(const struct gn_imap_arg *arg)
{
	const struct imap_arg *a = (const struct imap_arg *)arg;
	return a->type == IMAP_ARG_LIST ? (const struct gn_imap_args *)a : NULL;
}

static const struct gn_imap_v1 imap_v1 = {
	.size = sizeof(struct gn_imap_v1),
	.command_register = command_register,
	.capability_add = capability_add,
	.status_item_register = status_item_register,
	.session_account_id = session_account_id,
	.session_account_name = session_account_name,
	.session_login = session_login,
	.session_conn = session_conn,
	.session_pool = session_pool,
	.session_selected = session_selected,
	.untagged = untagged,
	.tagged = tagged,
	.append_string = imap_append_string,
	.mailbox_from_wire = mailbox_from_wire,
	.mailbox_to_wire = mailbox_to_wire,
	.args_count = args_count,
	.args_get = args_get,
	.arg_type = arg_type,
	.arg_str = arg_str,
	.arg_list = arg_list,
	.store_check_register = store_check_register,
	.store_check_messages = store_check_messages,
};

/* ---- the module's side ---- */

int imap_service_provide(struct gn_module_ctx *ctx, const char **error_r)
{
	return gn_service_provide(ctx, GN_IMAP_V1, &imap_v1, error_r);
}

const struct gn_imap_v1 *imap_service_ops(void)
{
	return &imap_v1;
}

void imap_service_fix(void)
{
	tables_fixed = true;
}

const struct ext_command *imap_service_command(const char *name, unsigned *states_r)
{
	for (size_t i = 0; i < n_commands; i++)
		if (strcmp(commands[i].name, name) == 0) {
			if (states_r != NULL)
				*states_r = commands[i].states;
			return &commands[i];
		}
	return NULL;
}

void imap_service_run(struct imap_session *s, const struct ext_command *c, struct imap_command *cmd)
{
	struct imap_arg args = { .type = IMAP_ARG_LIST, .list = cmd->args, .count = cmd->count };
	s->cur_tag = cmd->tag;
	c->fn((struct gn_imap_session *)s, cmd->name, (const struct gn_imap_args *)&args, c->data);
	if (s->cur_tag != NULL) {
		/* Fail closed: a handler that did not answer gets NO for it,
		 * and a log line names the module. */
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=command_unanswered command=%s module=%s", c->name,
		       c->module != NULL ? c->module : "-");
		imap_tagged(s, cmd->tag, "NO", "SERVERBUG", "%s was not answered", c->name);
		s->cur_tag = NULL;
	}
}

void imap_service_capabilities(struct imap_session *s, struct gn_buf *b)
{
	for (size_t i = 0; i < n_capabilities; i++)
		if (capabilities[i].states & IMAP_S(s->state))
			(void)gn_buf_printf(b, " %s", capabilities[i].name);
}

const struct ext_status *imap_service_status_item(const char *name)
{
	for (size_t i = 0; i < n_status_items; i++)
		if (strcmp(status_items[i].name, name) == 0)
			return &status_items[i];
	return NULL;
}

int imap_service_status_value(struct imap_session *s, const struct ext_status *item, int64_t mailbox_id,
			      uint64_t *value_r)
{
	*value_r = 0;
	return item->fn((struct gn_imap_session *)s, mailbox_id, value_r, item->data);
}

const char *imap_service_status_name(const struct ext_status *item)
{
	return item->name;
}

bool imap_service_store_checked(void)
{
	return n_store_checks > 0;
}

int imap_service_store_check(struct imap_session *s, const char *command, uint64_t bytes,
			     uint64_t messages, const char **code_r, const char **text_r)
{
	int ret = 0;
	checking_messages = messages;
	for (size_t i = 0; i < n_store_checks; i++) {
		*code_r = NULL;
		*text_r = NULL;
		int r = store_checks[i].fn((struct gn_imap_session *)s, command, bytes, code_r, text_r,
					   store_checks[i].data);
		if (r < 0) {
			ret = -1;
			break;
		}
		if (r > 0) {
			if (*text_r == NULL)
				*text_r = "refused";
			gn_log(GN_LOG_INFO, IMAP_AREA, "event=store_refused conn=%s command=%s bytes=%llu "
			       "messages=%llu module=%s code=%s", gn_conn_id(s->conn), command,
			       (unsigned long long)bytes, (unsigned long long)messages,
			       store_checks[i].module != NULL ? store_checks[i].module : "-",
			       *code_r != NULL ? *code_r : "-");
			ret = 1;
			break;
		}
	}
	checking_messages = 0;
	return ret;
}
