/*
 * modules/imap/session.c: an IMAP connection (imap.h).
 *
 * The input loop takes the client's bytes into the command reader
 * (parser.c), answers "+" for synchronising literals, and runs each whole
 * command through the command table in turn: a command is answered before
 * the next one is read, so responses keep the order of the commands.
 * During AUTHENTICATE the client's lines are SASL responses, not commands.
 *
 * A client that keeps sending what earns BAD (another protocol, garbage)
 * is told BYE after imap.max_bad of them in a row.
 */
#include "imap.h"

#include <stdarg.h>
#include <string.h>

struct imap_cmd_def {
	const char *name;
	unsigned states;
	imap_cmd_fn *fn;
};

/* RFC 9051 6: the commands and the states they are valid in.  ENABLE is
 * valid only once authenticated (RFC 5161 3.1). */
static const struct imap_cmd_def commands[] = {
	{ "CAPABILITY", IMAP_S_ANY, imap_cmd_capability },
	{ "NOOP", IMAP_S_ANY, imap_cmd_noop },
	{ "LOGOUT", IMAP_S_ANY, imap_cmd_logout },
	{ "ENABLE", IMAP_S(IMAP_AUTH), imap_cmd_enable },
	{ "STARTTLS", IMAP_S(IMAP_NOTAUTH), imap_cmd_starttls },
	{ "LOGIN", IMAP_S(IMAP_NOTAUTH), imap_cmd_login },
	{ "AUTHENTICATE", IMAP_S(IMAP_NOTAUTH), imap_cmd_authenticate },
	{ "NAMESPACE", IMAP_S(IMAP_AUTH) | IMAP_S(IMAP_SELECTED), imap_cmd_namespace },
	{ "CREATE", IMAP_S(IMAP_AUTH) | IMAP_S(IMAP_SELECTED), imap_cmd_create },
	{ "DELETE", IMAP_S(IMAP_AUTH) | IMAP_S(IMAP_SELECTED), imap_cmd_delete },
	{ "RENAME", IMAP_S(IMAP_AUTH) | IMAP_S(IMAP_SELECTED), imap_cmd_rename },
	{ "SUBSCRIBE", IMAP_S(IMAP_AUTH) | IMAP_S(IMAP_SELECTED), imap_cmd_subscribe },
	{ "UNSUBSCRIBE", IMAP_S(IMAP_AUTH) | IMAP_S(IMAP_SELECTED), imap_cmd_unsubscribe },
	{ "LIST", IMAP_S(IMAP_AUTH) | IMAP_S(IMAP_SELECTED), imap_cmd_list },
	{ "LSUB", IMAP_S(IMAP_AUTH) | IMAP_S(IMAP_SELECTED), imap_cmd_lsub },
	{ "STATUS", IMAP_S(IMAP_AUTH) | IMAP_S(IMAP_SELECTED), imap_cmd_status },
	{ "SELECT", IMAP_S(IMAP_AUTH) | IMAP_S(IMAP_SELECTED), imap_cmd_select },
	{ "EXAMINE", IMAP_S(IMAP_AUTH) | IMAP_S(IMAP_SELECTED), imap_cmd_examine },
	{ "CLOSE", IMAP_S(IMAP_SELECTED), imap_cmd_close },
	{ "UNSELECT", IMAP_S(IMAP_SELECTED), imap_cmd_unselect },
	{ "EXPUNGE", IMAP_S(IMAP_SELECTED), imap_cmd_expunge },
	{ "CHECK", IMAP_S(IMAP_SELECTED), imap_cmd_check },
	{ "FETCH", IMAP_S(IMAP_SELECTED), imap_cmd_fetch },
	{ "STORE", IMAP_S(IMAP_SELECTED), imap_cmd_store },
	{ "UID", IMAP_S(IMAP_SELECTED), imap_cmd_uid },
	{ "COPY", IMAP_S(IMAP_SELECTED), imap_cmd_copy },
	{ "MOVE", IMAP_S(IMAP_SELECTED), imap_cmd_move },
	{ "SEARCH", IMAP_S(IMAP_SELECTED), imap_cmd_search },
	{ "SORT", IMAP_S(IMAP_SELECTED), imap_cmd_sort },
	{ "THREAD", IMAP_S(IMAP_SELECTED), imap_cmd_thread },
	{ "IDLE", IMAP_S(IMAP_AUTH) | IMAP_S(IMAP_SELECTED), imap_cmd_idle },
	{ "APPEND", IMAP_S(IMAP_AUTH) | IMAP_S(IMAP_SELECTED), imap_cmd_append },
	{ "REPLACE", IMAP_S(IMAP_SELECTED), imap_cmd_replace },
	{ "COMPRESS", IMAP_S(IMAP_AUTH) | IMAP_S(IMAP_SELECTED), imap_cmd_compress },
};

/* ---- responses ---- */

/* Control characters never reach the client inside a response's text. */
static void append_text(struct gn_buf *b, const char *text)
{
	for (const char *p = text; *p != '\0'; p++) {
		char c = (unsigned char)*p < ' ' || *p == 0x7f ? ' ' : *p;
		(void)gn_buf_append(b, &c, 1);
	}
}

static void send_buf(struct imap_session *s, struct gn_buf *b)
{
	(void)gn_buf_append(b, "\r\n", 2);
	(void)gn_conn_write(s->conn, gn_buf_data(b), gn_buf_len(b));
}

void imap_untagged(struct imap_session *s, const char *fmt, ...)
{
	struct gn_buf *b = gn_buf_new(0);
	va_list ap;
	(void)gn_buf_append(b, "* ", 2);
	va_start(ap, fmt);
	(void)gn_buf_vprintf(b, fmt, ap);
	va_end(ap);
	send_buf(s, b);
	gn_buf_free(&b);
}

void imap_tagged(struct imap_session *s, const char *tag, const char *status,
		 const char *code, const char *fmt, ...)
{
	struct gn_buf *b = gn_buf_new(0);
	struct gn_buf *text = gn_buf_new(0);
	va_list ap;
	va_start(ap, fmt);
	(void)gn_buf_vprintf(text, fmt, ap);
	va_end(ap);
	(void)gn_buf_printf(b, "%s %s ", tag, status);
	if (code != NULL)
		(void)gn_buf_printf(b, "[%s] ", code);
	append_text(b, gn_buf_data(text));
	send_buf(s, b);
	gn_buf_free(&text);
	gn_buf_free(&b);
	if (strcmp(status, "BAD") == 0)
		s->bad_count++;
	else
		s->bad_count = 0;
}

void imap_continue(struct imap_session *s, const char *text)
{
	(void)gn_conn_printf(s->conn, "+ %s\r\n", text);
}

/* A quoted string holds no CR, LF or NUL (RFC 9051 9: QUOTED-CHAR), and
 * 8-bit octets only as UTF-8 where the session speaks it: IMAP4rev1's
 * QUOTED-CHAR is 7-bit (RFC 3501 9: TEXT-CHAR), RFC 6855 3 (UTF8=ACCEPT)
 * and IMAP4rev2 (RFC 9051 9) add UTF8-2 / UTF8-3 / UTF8-4.  Anything else
 * goes as a literal, valid wherever a string is. */
static void append_string(struct gn_buf *b, const char *str, size_t len, bool utf8)
{
	bool quotable = len <= 1024, eight_bit = false;
	for (size_t i = 0; quotable && i < len; i++) {
		quotable = str[i] != '\r' && str[i] != '\n' && str[i] != '\0';
		eight_bit |= (unsigned char)str[i] >= 0x80;
	}
	if (quotable && eight_bit)
		quotable = utf8 && imap_utf8_valid(str, len);
	if (!quotable) {
		(void)gn_buf_printf(b, "{%zu}\r\n", len);
		(void)gn_buf_append(b, str, len);
		return;
	}
	(void)gn_buf_append(b, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		if (str[i] == '"' || str[i] == '\\')
			(void)gn_buf_append(b, "\\", 1);
		(void)gn_buf_append(b, str + i, 1);
	}
	(void)gn_buf_append(b, "\"", 1);
}

void imap_append_string(struct gn_buf *b, const char *str, size_t len)
{
	append_string(b, str, len, false);
}

void imap_append_session_string(struct imap_session *s, struct gn_buf *b, const char *str, size_t len)
{
	append_string(b, str, len, s->enabled_utf8 || s->enabled_rev2);
}

void imap_bye(struct imap_session *s, const char *reason, const char *text)
{
	if (s->state == IMAP_LOGOUT)
		return;
	imap_untagged(s, "BYE %s", text);
	s->state = IMAP_LOGOUT;
	gn_conn_close(s->conn, reason);
}

char *imap_upper(struct gn_pool *pool, const char *s)
{
	char *u = gn_pool_strdup(pool, s);
	for (char *p = u; *p != '\0'; p++)
		*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	return u;
}

/* ---- capabilities ---- */

const char *imap_capabilities(struct imap_session *s, struct gn_pool *pool)
{
	struct gn_buf *b = gn_buf_new(0);
	(void)gn_buf_append_str(b, "IMAP4rev2 IMAP4rev1 ENABLE NAMESPACE STATUS=SIZE UNSELECT MOVE IDLE "
				 "LIST-EXTENDED LIST-STATUS SPECIAL-USE CREATE-SPECIAL-USE CHILDREN BINARY "
				 "ESEARCH SEARCHRES WITHIN SAVEDATE CONDSTORE QRESYNC UTF8=ACCEPT");
	(void)gn_buf_append_str(b, " SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES");
	(void)gn_buf_append_str(b, imap_settings.literal_plus ? " LITERAL+" : " LITERAL-");
	(void)gn_buf_printf(b, " UIDPLUS MULTIAPPEND REPLACE APPENDLIMIT=%llu",
			    (unsigned long long)imap_settings.max_message);
	imap_service_capabilities(s, b);
	if (s->state != IMAP_NOTAUTH)
		(void)gn_buf_append_str(b, " COMPRESS=DEFLATE");
	if (s->state == IMAP_NOTAUTH) {
		bool tls = gn_conn_is_tls(s->conn);
		(void)gn_buf_append_str(b, " SASL-IR");
		if (gn_conn_can_starttls(s->conn))
			(void)gn_buf_append_str(b, " STARTTLS");
		if (!tls && !imap_settings.cleartext_ok)
			(void)gn_buf_append_str(b, " LOGINDISABLED");
		const char *mechs = gn_sasl_mechanisms(s->sasl);
		while (*mechs != '\0') {
			size_t n = strcspn(mechs, " ");
			(void)gn_buf_printf(b, " AUTH=%.*s", (int)n, mechs);
			mechs += n;
			while (*mechs == ' ')
				mechs++;
		}
	}
	char *r = gn_pool_strdup(pool, gn_buf_data(b));
	gn_buf_free(&b);
	return r;
}

/* ---- states ---- */

void imap_logged_in(struct imap_session *s, int64_t account_id, const char *account_name,
		    const char *login)
{
	s->state = IMAP_AUTH;
	s->account_id = account_id;
	gn_free(s->account_name);
	gn_free(s->login);
	s->account_name = gn_strdup(account_name != NULL ? account_name : "");
	s->login = gn_strdup(login != NULL ? login : "");
	gn_conn_set_idle_timeout(s->conn, imap_settings.timeout_auth_ms);
}

/* ---- commands ---- */

static const struct imap_cmd_def *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

bool imap_command_builtin(const char *name)
{
	return find_command(name) != NULL;
}

static void run_command(struct imap_session *s)
{
	size_t len;
	const char *data = imap_reader_command(s->reader, &len);
	struct imap_command cmd;
	const char *code, *error;
	if (imap_parse(s->cmd_pool, &imap_settings.limits, data, len, &cmd, &code, &error) < 0) {
		imap_tagged(s, cmd.tag != NULL ? cmd.tag : "*", "BAD", code, "%s", error);
		return;
	}
	const struct imap_cmd_def *def = find_command(cmd.name);
	const struct ext_command *ext = NULL;
	unsigned states = 0;
	if (def != NULL)
		states = def->states;
	else
		ext = imap_service_command(cmd.name, &states);
	if (def == NULL && ext == NULL) {
		imap_tagged(s, cmd.tag, "BAD", NULL, "Unknown command");
		return;
	}
	if ((states & IMAP_S(s->state)) == 0) {
		imap_tagged(s, cmd.tag, "BAD", NULL, "%s is not valid %s", cmd.name,
			    s->state == IMAP_NOTAUTH ? "before logging in" :
			    s->state == IMAP_AUTH ? "without a selected mailbox" :
			    s->state == IMAP_SELECTED && (states & IMAP_S(IMAP_AUTH)) ? "with a mailbox selected" :
			    "once logged in");
		return;
	}
	if (ext != NULL)
		imap_service_run(s, ext, &cmd);
	else
		def->fn(s, &cmd);
}

/* ---- the connection ---- */

static int imap_open(struct gn_conn *conn, void *data)
{
	(void)data;
	struct imap_session *s = gn_calloc(1, sizeof(*s));
	s->conn = conn;
	s->reader = imap_reader_new(&imap_settings.limits);
	s->cmd_pool = gn_pool_new();
	s->state = IMAP_NOTAUTH;
	s->sasl = gn_sasl_new(conn, "imap", GN_SASL_NO_LOGIN |
			      (imap_settings.cleartext_ok ? GN_SASL_CLEARTEXT_OK : 0));
	gn_conn_set_data(conn, s);
	gn_conn_set_idle_timeout(conn, imap_settings.timeout_notauth_ms);
	/* Implicit TLS: the handshake is done, the certificate known. */
	imap_cert_identify(s);
	struct gn_buf *b = gn_buf_new(0);
	if (imap_cert_preauth(s))
		(void)gn_buf_printf(b, "* PREAUTH [CAPABILITY %s] Gannet IMAP, logged in as ",
				    imap_capabilities(s, s->cmd_pool));
	else
		(void)gn_buf_printf(b, "* OK [CAPABILITY %s] Gannet IMAP ready.",
				    imap_capabilities(s, s->cmd_pool));
	if (s->state == IMAP_AUTH)
		append_text(b, s->login);
	(void)gn_buf_append(b, "\r\n", 2);
	(void)gn_conn_write(conn, gn_buf_data(b), gn_buf_len(b));
	gn_buf_free(&b);
	gn_pool_clear(s->cmd_pool);
	return 0;
}

/* A line that is no command (a SASL response, DONE while idling), taken
 * whole from the connection's input without its line end, for fn.
 * Returns false when none is complete yet (or the buffer filled: BYE). */
static bool line_input(struct imap_session *s, void (*fn)(struct imap_session *, const char *, size_t))
{
	const char *line;
	size_t len;
	int r = gn_conn_read_line(s->conn, &line, &len);
	if (r == 0)
		return false;
	if (r < 0) {
		imap_bye(s, "line_too_long", "Line too long");
		return false;
	}
	len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	fn(s, line, len);
	return true;
}

static void imap_input(struct gn_conn *conn, void *data)
{
	(void)data;
	struct imap_session *s = gn_conn_data(conn);
	while (!gn_conn_is_closed(conn) && s->state != IMAP_LOGOUT && s->fetch == NULL) {
		if (s->in_sasl || s->idle_tag != NULL) {
			if (!line_input(s, s->in_sasl ? imap_sasl_response : imap_idle_line))
				return;
			continue;
		}
		const char *d;
		size_t len, used = 0;
		gn_conn_input_peek(conn, &d, &len);
		if (len == 0)
			return;
		enum imap_read rd = imap_reader_feed(s->reader, d, len, &used);
		/* A chunk of an APPEND message points into the input. */
		if (rd == IMAP_READ_DATA)
			imap_append_data(s);
		gn_conn_input_consume(conn, used);
		switch (rd) {
		case IMAP_READ_MORE:
		case IMAP_READ_DATA:
			break;
		case IMAP_READ_MESSAGE:
			imap_append_message(s);
			break;
		case IMAP_READ_LITERAL:
			imap_continue(s, "Ready for literal data");
			imap_reader_literal_go(s->reader);
			break;
		case IMAP_READ_COMMAND:
			if (s->append != NULL)
				imap_append_end(s);
			else
				run_command(s);
			gn_pool_clear(s->cmd_pool);
			imap_reader_next(s->reader);
			break;
		case IMAP_READ_ERROR:
			imap_append_cancel(s);
			imap_tagged(s, imap_reader_error_tag(s->reader), imap_reader_error_status(s->reader),
				    imap_reader_error_code(s->reader), "%s", imap_reader_error(s->reader));
			imap_reader_next(s->reader);
			break;
		case IMAP_READ_FATAL:
			gn_log(GN_LOG_INFO, IMAP_AREA, "event=input_refused conn=%s error=%s",
			       gn_conn_id(conn), gn_log_quote(0, imap_reader_error(s->reader)));
			imap_bye(s, "input_refused", imap_reader_error(s->reader));
			return;
		}
		if (imap_settings.max_bad > 0 && s->bad_count >= imap_settings.max_bad) {
			gn_log(GN_LOG_INFO, IMAP_AREA, "event=too_many_bad conn=%s ip=%s", gn_conn_id(conn),
			       gn_conn_remote_ip(conn));
			imap_bye(s, "too_many_bad", "Too many invalid commands");
			return;
		}
	}
}

/* The input buffer is full: only a SASL line can do that (commands are
 * copied out as they come). */
static void imap_input_full(struct gn_conn *conn, void *data)
{
	(void)data;
	struct imap_session *s = gn_conn_data(conn);
	imap_bye(s, "input_full", "Line too long");
}

static void imap_writable(struct gn_conn *conn, void *data)
{
	(void)data;
	struct imap_session *s = gn_conn_data(conn);
	if (s != NULL)
		imap_fetch_writable(s);
}

static void imap_tls_done(struct gn_conn *conn, int ok, void *data)
{
	(void)data;
	struct imap_session *s = gn_conn_data(conn);
	/* Nothing the client sent before the handshake counts (RFC 9051
	 * 6.2.1); the mechanisms on offer changed. */
	imap_reader_next(s->reader);
	if (!ok) {
		s->state = IMAP_LOGOUT;
		return;
	}
	/* After STARTTLS a registered key never preauthenticates (mox.md
	 * 4.3): it allows EXTERNAL and ties logins to its account. */
	imap_cert_identify(s);
}

static void imap_timeout(struct gn_conn *conn, void *data)
{
	(void)data;
	struct imap_session *s = gn_conn_data(conn);
	if (s->state != IMAP_LOGOUT) {
		gn_log(GN_LOG_INFO, IMAP_AREA, "event=autologout conn=%s logged_in=%s", gn_conn_id(conn),
		       s->state == IMAP_NOTAUTH ? "no" : "yes");
		imap_untagged(s, "BYE Autologout; idle for too long");
	}
	s->state = IMAP_LOGOUT;
}

static void imap_shutdown(struct gn_conn *conn, void *data)
{
	(void)data;
	struct imap_session *s = gn_conn_data(conn);
	imap_bye(s, "shutdown", "Server shutting down");
}

static void imap_close(struct gn_conn *conn, void *data)
{
	(void)data;
	struct imap_session *s = gn_conn_data(conn);
	if (s == NULL)
		return;
	gn_sasl_free(&s->sasl);
	imap_fetch_cancel(s);
	imap_idle_cancel(s);
	imap_append_cancel(s);
	imap_deselect(s);
	imap_reader_free(&s->reader);
	gn_pool_free(&s->cmd_pool);
	gn_free(s->sasl_tag);
	gn_free(s->sasl_mech);
	gn_free(s->account_name);
	gn_free(s->login);
	gn_free(s->cert_login);
	gn_free(s);
	gn_conn_set_data(conn, NULL);
}

static const struct gn_protocol imap_protocol = {
	.size = sizeof(struct gn_protocol),
	.name = "imap",
	.flags = GN_PROTO_CLIENT_CERT,
	/* SASL response lines are the only input kept in the buffer. */
	.max_input = 64 * 1024,
	.open = imap_open,
	.input = imap_input,
	.input_full = imap_input_full,
	.writable = imap_writable,
	.tls_done = imap_tls_done,
	.timeout = imap_timeout,
	.shutdown = imap_shutdown,
	.close = imap_close,
	.busy_reply = "* BYE Too many connections, try again later\r\n",
};

int imap_protocol_register(struct gn_module_ctx *ctx, const char **error_r)
{
	return gn_protocol_register(ctx, &imap_protocol, NULL, error_r);
}
