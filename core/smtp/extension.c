/*
 * core/smtp/extension.c: what the engine's users add (gannet/smtp.h):
 * EHLO keywords, MAIL and RCPT parameters, and commands that may read
 * continuation lines before they answer.
 *
 * Registration copies each description into the server (fixed tables of
 * SMTP_MAX_EXT) after checking its names by RFC 5321's grammar, so that
 * nothing a module registers can put a malformed line into an EHLO reply
 * or shadow one of the engine's commands.  A session remembers which added
 * keywords its last EHLO reply offered (a bit each): a parameter or command
 * tied to a keyword exists only when the client was told about it (after
 * STARTTLS, say, for AUTH on submission).
 *
 * An added command runs like a policy call: pending (GN_SMTP_STAGE_COMMAND,
 * input paused) until gn_smtp_answer() ends it or gn_smtp_answer_more()
 * (answer.c) sends a 3xx and moves the session to ST_MORE, where the next
 * line goes to the command (smtp_ext_command_line()), under the command's
 * line length and line count limits.
 */
#include "smtp/internal.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

/* The engine's own EHLO keywords (answer.c's ehlo_reply()). */
static const char *const engine_keywords[] = {
	"PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
	"STARTTLS", "CHUNKING", "HELP",
};

/* RFC 5321 4.1.1.1 ehlo-keyword and 4.1.2 esmtp-keyword: (ALPHA / DIGIT)
 * *(ALPHA / DIGIT / "-"), here at most max octets. */
bool smtp_esmtp_keyword_valid(const char *k, size_t max)
{
	size_t n = 0;

	if (k == NULL)
		return false;
	for (const char *p = k; *p != '\0'; p++, n++) {
		char c = *p;
		bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     (c >= '0' && c <= '9');
		if (!alnum && (c != '-' || p == k))
			return false;
	}
	return n > 0 && n <= max;
}

/* ehlo-params: words of %d33-126 separated by single spaces. */
static bool ehlo_params_valid(const char *p, size_t len)
{
	if (len == 0 || len > 400 || p[0] == ' ' || p[len - 1] == ' ')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == ' ' ? p[i + 1] == ' ' : (c < 33 || c > 126))
			return false;
	}
	return true;
}

static int keyword_index(const struct gn_smtp_server *srv, const char *name)
{
	for (size_t i = 0; i < srv->n_keywords; i++)
		if (strcasecmp(srv->keywords[i].keyword, name) == 0)
			return (int)i;
	return -1;
}

/* The keyword an extension names: its index, -1 for none, -2 unknown. */
static int extension_index(const struct gn_smtp_server *srv, const char *name)
{
	int i;

	if (name == NULL)
		return -1;
	i = keyword_index(srv, name);
	return i >= 0 ? i : -2;
}

/* Copies a versioned description: at least its fields up to min_end (all
 * of ABI 1.0's), more when the module knows a later version. */
static bool copy_desc(void *dst, size_t dst_size, const void *src, size_t min_end)
{
	size_t size;

	memset(dst, 0, dst_size);
	if (src == NULL)
		return false;
	memcpy(&size, src, sizeof(size));
	if (size < min_end)
		return false;
	memcpy(dst, src, size < dst_size ? size : dst_size);
	return true;
}

/* ---- registration ---- */

int gn_smtp_server_add_keyword(struct gn_smtp_server *srv,
			       const struct gn_smtp_keyword *keyword,
			       const char **error_r)
{
	struct gn_smtp_keyword k;
	struct smtp_keyword *out;

	if (!copy_desc(&k, sizeof(k), keyword, offsetof(struct gn_smtp_keyword, data) +
		       sizeof(k.data))) {
		*error_r = "SMTP keyword: no description or size too small";
		return -1;
	}
	if (!smtp_esmtp_keyword_valid(k.keyword, 64)) {
		*error_r = "SMTP keyword: not an ehlo-keyword (RFC 5321 4.1.1.1)";
		return -1;
	}
	for (size_t i = 0; i < sizeof(engine_keywords) / sizeof(engine_keywords[0]); i++) {
		if (strcasecmp(engine_keywords[i], k.keyword) == 0) {
			*error_r = "SMTP keyword: the engine's own";
			return -1;
		}
	}
	if (keyword_index(srv, k.keyword) >= 0) {
		*error_r = "SMTP keyword: added already";
		return -1;
	}
	if (k.params != NULL && !ehlo_params_valid(k.params, strlen(k.params))) {
		*error_r = "SMTP keyword: parameters not printable words separated by spaces";
		return -1;
	}
	if ((k.flags & ~GN_SMTP_KEYWORD_TLS) != 0) {
		*error_r = "SMTP keyword: unknown flags";
		return -1;
	}
	if (srv->n_keywords >= SMTP_MAX_EXT) {
		*error_r = "SMTP keyword: too many keywords";
		return -1;
	}
	out = &srv->keywords[srv->n_keywords++];
	out->keyword = gn_strdup(k.keyword);
	out->params = k.params != NULL ? gn_strdup(k.params) : NULL;
	out->flags = k.flags;
	out->offer = k.offer;
	out->data = k.data;
	return 0;
}

int gn_smtp_server_add_param(struct gn_smtp_server *srv,
			     const struct gn_smtp_param *param,
			     const char **error_r)
{
	static const char *const mail_own[] = { "SIZE", "BODY", "SMTPUTF8" };
	struct gn_smtp_param p;
	struct smtp_param *out;
	int ext;

	if (!copy_desc(&p, sizeof(p), param, offsetof(struct gn_smtp_param, data) +
		       sizeof(p.data))) {
		*error_r = "SMTP parameter: no description or size too small";
		return -1;
	}
	if (p.cmd != GN_SMTP_PARAM_MAIL && p.cmd != GN_SMTP_PARAM_RCPT) {
		*error_r = "SMTP parameter: neither MAIL nor RCPT";
		return -1;
	}
	if (!smtp_esmtp_keyword_valid(p.keyword, 64)) {
		*error_r = "SMTP parameter: not an esmtp-keyword (RFC 5321 4.1.2)";
		return -1;
	}
	for (size_t i = 0; p.cmd == GN_SMTP_PARAM_MAIL && i < 3; i++) {
		if (strcasecmp(mail_own[i], p.keyword) == 0) {
			*error_r = "SMTP parameter: the engine's own";
			return -1;
		}
	}
	if (smtp_ext_param_find(srv, p.cmd, p.keyword) != NULL) {
		*error_r = "SMTP parameter: added already";
		return -1;
	}
	ext = extension_index(srv, p.extension);
	if (ext == -2) {
		*error_r = "SMTP parameter: its extension is no keyword of this server";
		return -1;
	}
	if ((p.flags & ~(GN_SMTP_PARAM_VALUE | GN_SMTP_PARAM_NO_VALUE | GN_SMTP_PARAM_XTEXT)) ||
	    ((p.flags & GN_SMTP_PARAM_VALUE) && (p.flags & GN_SMTP_PARAM_NO_VALUE))) {
		*error_r = "SMTP parameter: bad flags";
		return -1;
	}
	if (p.max_length > SMTP_CMD_LINE_MAX) {
		*error_r = "SMTP parameter: max_length too large";
		return -1;
	}
	if (srv->n_params >= SMTP_MAX_EXT) {
		*error_r = "SMTP parameter: too many parameters";
		return -1;
	}
	out = &srv->params[srv->n_params++];
	out->cmd = p.cmd;
	out->keyword = gn_strdup(p.keyword);
	out->ext = ext;
	out->flags = p.flags;
	out->max_length = p.max_length > 0 ? p.max_length : 500;
	out->check = p.check;
	out->data = p.data;
	return 0;
}

int gn_smtp_server_add_command(struct gn_smtp_server *srv,
			       const struct gn_smtp_command *command,
			       const char **error_r)
{
	const unsigned all_states = GN_SMTP_STATE_INIT | GN_SMTP_STATE_HELO |
				    GN_SMTP_STATE_MAIL;
	const unsigned all_flags = GN_SMTP_CMD_NOARGS | GN_SMTP_CMD_ARGS | GN_SMTP_CMD_RESTART;
	struct gn_smtp_command c;
	struct smtp_command *out;
	int ext;

	if (!copy_desc(&c, sizeof(c), command, offsetof(struct gn_smtp_command, data) +
		       sizeof(c.data))) {
		*error_r = "SMTP command: no description or size too small";
		return -1;
	}
	if (!smtp_esmtp_keyword_valid(c.verb, 32)) {
		*error_r = "SMTP command: the verb is not letters, digits and \"-\"";
		return -1;
	}
	if (smtp_verb_reserved(c.verb, strlen(c.verb))) {
		*error_r = "SMTP command: the engine's own verb, or an HTTP method";
		return -1;
	}
	if (smtp_ext_command_find(srv, c.verb, strlen(c.verb)) != NULL) {
		*error_r = "SMTP command: added already";
		return -1;
	}
	ext = extension_index(srv, c.extension);
	if (ext == -2) {
		*error_r = "SMTP command: its extension is no keyword of this server";
		return -1;
	}
	if (c.states == 0 || (c.states & ~all_states) != 0 || (c.flags & ~all_flags) != 0 ||
	    ((c.flags & GN_SMTP_CMD_NOARGS) && (c.flags & GN_SMTP_CMD_ARGS))) {
		*error_r = "SMTP command: bad states or flags";
		return -1;
	}
	if (c.max_line_length != 0 && (c.max_line_length < 512 ||
				       c.max_line_length > SMTP_CMD_LINE_MAX)) {
		*error_r = "SMTP command: max_line_length must be between 512 and 32768";
		return -1;
	}
	if (c.start == NULL || c.max_lines > 1000) {
		*error_r = "SMTP command: no start callback, or max_lines over 1000";
		return -1;
	}
	if (srv->n_commands >= SMTP_MAX_EXT) {
		*error_r = "SMTP command: too many commands";
		return -1;
	}
	out = &srv->commands[srv->n_commands++];
	out->verb = gn_strdup(c.verb);
	for (char *v = out->verb; *v != '\0'; v++)
		if (*v >= 'a' && *v <= 'z')
			*v = (char)(*v - 'a' + 'A');
	out->ext = ext;
	out->states = ((c.states & GN_SMTP_STATE_INIT) ? SB(ST_INIT) : 0) |
		      ((c.states & GN_SMTP_STATE_HELO) ? SB(ST_HELO) : 0) |
		      ((c.states & GN_SMTP_STATE_MAIL) ? SB(ST_MAIL) | SB(ST_RCPT) : 0);
	out->flags = c.flags;
	out->max_line_length = c.max_line_length != 0 ? c.max_line_length :
			       srv->set.max_line_length;
	out->max_lines = c.max_lines != 0 ? c.max_lines : 16;
	out->start = c.start;
	out->line = c.line;
	out->cancel = c.cancel;
	out->data = c.data;
	if (out->max_line_length > srv->max_read_line)
		srv->max_read_line = out->max_line_length;
	return 0;
}

/* ---- lookups ---- */

const struct smtp_command *smtp_ext_command_find(const struct gn_smtp_server *srv,
						 const char *verb, size_t len)
{
	for (size_t i = 0; i < srv->n_commands; i++)
		if (strlen(srv->commands[i].verb) == len &&
		    strncasecmp(srv->commands[i].verb, verb, len) == 0)
			return &srv->commands[i];
	return NULL;
}

const struct smtp_param *smtp_ext_param_find(const struct gn_smtp_server *srv,
					     enum gn_smtp_param_cmd cmd, const char *keyword)
{
	for (size_t i = 0; i < srv->n_params; i++)
		if (srv->params[i].cmd == cmd && strcasecmp(srv->params[i].keyword, keyword) == 0)
			return &srv->params[i];
	return NULL;
}

int smtp_pval_find(const struct smtp_pval *v, size_t n, const char *keyword,
		   const char **value_r)
{
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(v[i].keyword, keyword) == 0) {
			if (value_r != NULL)
				*value_r = v[i].value;
			return 1;
		}
	}
	return 0;
}

/* Whether the keyword ext (-1: none) was offered in the last EHLO reply. */
bool smtp_ext_offered(const struct gn_smtp_session *s, int ext)
{
	return ext < 0 || (s->offered & ((uint64_t)1 << ext)) != 0;
}

/* The added keywords of an EHLO reply, one a line, each remembered as
 * offered. */
void smtp_ext_ehlo_keywords(struct gn_smtp_session *s, struct gn_buf *b)
{
	const struct gn_smtp_server *srv = s->srv;

	s->offered = 0;
	for (size_t i = 0; i < srv->n_keywords; i++) {
		const struct smtp_keyword *k = &srv->keywords[i];
		struct gn_buf *pb = NULL;
		const char *params = k->params;

		if ((k->flags & GN_SMTP_KEYWORD_TLS) && !gn_conn_is_tls(s->conn))
			continue;
		if (k->offer != NULL) {
			pb = gn_buf_new(400);
			if (!k->offer(s, pb, k->data)) {
				gn_buf_free(&pb);
				continue;
			}
			if (gn_buf_len(pb) > 0) {
				if (!ehlo_params_valid(gn_buf_data(pb), gn_buf_len(pb))) {
					gn_log(GN_LOG_WARN, smtp_area(s), "event=smtp_bad_keyword "
					       "id=%s keyword=%s", gn_conn_id(s->conn), k->keyword);
					gn_buf_free(&pb);
					continue;
				}
				gn_buf_append(pb, "", 1);	/* NUL-terminated */
				params = gn_buf_data(pb);
			}
		}
		gn_buf_printf(b, "%s%s%s\n", k->keyword, params != NULL ? " " : "",
			      params != NULL ? params : "");
		gn_buf_free(&pb);
		s->offered |= (uint64_t)1 << i;
	}
}

/* ---- commands at work ---- */

void smtp_ext_command_start(struct gn_smtp_session *s, const struct smtp_command *cmd,
			    const char *args)
{
	gn_log(GN_LOG_DEBUG, smtp_area(s), "event=smtp_command id=%s state=%s verb=%s",
	       gn_conn_id(s->conn), smtp_state_names[s->state], cmd->verb);
	if (!smtp_ext_offered(s, cmd->ext)) {
		/* RFC 5321 4.2.4: not implemented here (this session was not
		 * offered its extension). */
		smtp_reply(s, 502, "5.5.1", "Command not implemented");
		return;
	}
	if ((cmd->flags & GN_SMTP_CMD_NOARGS) && *args != '\0') {
		smtp_reply(s, 501, "5.5.4", "Syntax: %s takes no parameters", cmd->verb);
		return;
	}
	if ((cmd->flags & GN_SMTP_CMD_ARGS) && *args == '\0') {
		smtp_reply(s, 501, "5.5.4", "Syntax: %s needs a parameter", cmd->verb);
		return;
	}
	if (!(cmd->states & SB(s->state))) {
		smtp_reply(s, 503, "5.5.1", "%s", s->state == ST_INIT ? "Send EHLO or HELO first" :
			   "Bad sequence of commands");
		return;
	}
	s->cmd = cmd;
	s->cmd_return = s->state;
	s->cmd_lines = 0;
	s->pending = GN_SMTP_STAGE_COMMAND;
	cmd->start(s, args, cmd->data);
	smtp_input_update(s);
}

/* A continuation line for the command (ST_MORE). */
void smtp_ext_command_line(struct gn_smtp_session *s, const char *line)
{
	const struct smtp_command *cmd = s->cmd;

	s->cmd_lines++;
	smtp_set_state(s, s->cmd_return);
	s->pending = GN_SMTP_STAGE_COMMAND;
	cmd->line(s, line, cmd->data);
	smtp_input_update(s);
}

/* The engine ends the command without its answer; with cancel, tells the
 * command. */
void smtp_ext_command_end(struct gn_smtp_session *s, bool cancel)
{
	const struct smtp_command *cmd = s->cmd;

	if (cmd == NULL)
		return;
	s->cmd = NULL;
	if (s->pending == GN_SMTP_STAGE_COMMAND)
		s->pending = GN_SMTP_STAGE_NONE;
	if (s->state == ST_MORE)
		smtp_set_state(s, s->cmd_return);
	if (cancel && cmd->cancel != NULL)
		cmd->cancel(s, cmd->data);
}

/* The command answered (answer.c): a 2xx of a GN_SMTP_CMD_RESTART command
 * starts the session over. */
void smtp_ext_command_answered(struct gn_smtp_session *s, bool ok)
{
	const struct smtp_command *cmd = s->cmd;

	s->cmd = NULL;
	if (cmd != NULL && ok && (cmd->flags & GN_SMTP_CMD_RESTART)) {
		smtp_forget_client(s);
		smtp_set_state(s, ST_INIT);
	}
}
