/*
 * t/modules/sasltest/sasltest.c: the core's SASL server (gannet/sasl.h)
 * over real sockets, for t/integration/125-sasl.t.  Built like any module:
 * <gannet/gannet.h> only, one exported symbol.
 *
 * The framing is a small IMAP-like subset, enough for `gsasl --imap` and
 * for the test's own clients (the test protocol carries the SASL server;
 * it is not the IMAP module):
 *
 *   greeting            "* OK sasltest ready"
 *   T CAPABILITY        "* CAPABILITY IMAP4rev1 SASL-IR [STARTTLS] AUTH=..."
 *                       then "T OK done"
 *   T STARTTLS          "T OK begin TLS", then the handshake
 *   T AUTHENTICATE M [IR]
 *                       "+ <base64 challenge>" lines, each answered by one
 *                       client line (base64, or "*"); then
 *                       "T OK [AUTHENTICATED] <account> <login> <mech>", or
 *                       "T NO|BAD [<code>] failure=<name> smtp=<code>/<enh>
 *                       temporary=<0|1> <text>"
 *   T WHOAMI            "* WHOAMI <account> <login>" or "* WHOAMI none"
 *   T LOGOUT            "* BYE", "T OK", close
 *
 * Protocols: "sasl-test" (PLAIN and LOGIN only over TLS) and
 * "sasl-test-cleartext" (GN_SASL_CLEARTEXT_OK).  Both ask for client
 * certificates (EXTERNAL).
 */
#include <gannet/gannet.h>

#include <string.h>

struct sess {
	struct gn_sasl *sasl;
	char *tag;		/* of the AUTHENTICATE running, or NULL */
	char *account, *login;	/* after a success */
};

static unsigned cleartext_flag = GN_SASL_CLEARTEXT_OK;
static unsigned no_flag = 0;

static void finish(struct gn_conn *conn, struct sess *s, enum gn_sasl_status st)
{
	if (st == GN_SASL_CONTINUE) {
		gn_conn_printf(conn, "+ %s\r\n", gn_sasl_challenge64(s->sasl));
		return;
	}
	if (st == GN_SASL_OK) {
		gn_free(s->account);
		gn_free(s->login);
		s->account = gn_strdup(gn_sasl_account_name(s->sasl));
		s->login = gn_strdup(gn_sasl_login(s->sasl));
		gn_conn_printf(conn, "%s OK [AUTHENTICATED] %s %s %s\r\n", s->tag, s->account,
			       s->login, gn_sasl_mechanism(s->sasl));
	} else {
		enum gn_sasl_failure f = gn_sasl_failure(s->sasl);
		const char *code, *enh;
		int smtp;
		const char *kind = gn_sasl_failure_imap(f, &code);
		gn_sasl_failure_smtp(f, &smtp, &enh);
		gn_conn_printf(conn, "%s %s %s%s%sfailure=%s smtp=%d/%s temporary=%d %s\r\n",
			       s->tag, kind, code != NULL ? "[" : "", code != NULL ? code : "",
			       code != NULL ? "] " : "", gn_sasl_failure_name(f), smtp, enh,
			       gn_sasl_failure_temporary(s->sasl) ? 1 : 0,
			       gn_sasl_failure_text(s->sasl));
	}
	gn_free(s->tag);
	s->tag = NULL;
}

static int t_open(struct gn_conn *conn, void *data)
{
	struct sess *s = gn_calloc(1, sizeof(*s));
	s->sasl = gn_sasl_new(conn, "sasltest", *(const unsigned *)data);
	gn_conn_set_data(conn, s);
	gn_conn_printf(conn, "* OK sasltest ready\r\n");
	return 0;
}

static void command(struct gn_conn *conn, struct sess *s, char *line)
{
	char *tag = line, *sp = strchr(line, ' ');
	if (sp == NULL) {
		gn_conn_printf(conn, "* BAD no command\r\n");
		return;
	}
	*sp = '\0';
	char *cmd = sp + 1, *arg = strchr(cmd, ' ');
	if (arg != NULL)
		*arg++ = '\0';
	if (strcmp(cmd, "CAPABILITY") == 0) {
		const char *mechs = gn_sasl_mechanisms(s->sasl);
		struct gn_buf *b = gn_buf_new(0);
		for (const char *p = mechs; *p != '\0';) {
			const char *e = strchr(p, ' ');
			size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
			gn_buf_printf(b, " AUTH=%.*s", (int)n, p);
			p += n;
			if (*p == ' ')
				p++;
		}
		gn_conn_printf(conn, "* CAPABILITY IMAP4rev1 SASL-IR%s%s\r\n%s OK done\r\n",
			       gn_conn_can_starttls(conn) ? " STARTTLS" : "", gn_buf_data(b), tag);
		gn_buf_free(&b);
	} else if (strcmp(cmd, "STARTTLS") == 0 && gn_conn_can_starttls(conn)) {
		gn_conn_printf(conn, "%s OK begin TLS\r\n", tag);
		if (gn_conn_starttls(conn) < 0)
			gn_conn_close(conn, "starttls failed");
	} else if (strcmp(cmd, "AUTHENTICATE") == 0 && arg != NULL) {
		char *ir = strchr(arg, ' ');
		if (ir != NULL)
			*ir++ = '\0';
		s->tag = gn_strdup(tag);
		finish(conn, s, gn_sasl_start64(s->sasl, arg, ir, ir != NULL ? strlen(ir) : 0));
	} else if (strcmp(cmd, "WHOAMI") == 0) {
		if (s->account != NULL)
			gn_conn_printf(conn, "* WHOAMI %s %s\r\n%s OK\r\n", s->account, s->login, tag);
		else
			gn_conn_printf(conn, "* WHOAMI none\r\n%s OK\r\n", tag);
	} else if (strcmp(cmd, "LOGOUT") == 0) {
		gn_conn_printf(conn, "* BYE\r\n%s OK\r\n", tag);
		gn_conn_close(conn, "logout");
	} else {
		gn_conn_printf(conn, "%s BAD unknown command\r\n", tag);
	}
}

static void t_input(struct gn_conn *conn, void *data)
{
	struct sess *s = gn_conn_data(conn);
	const char *line;
	size_t len;
	(void)data;
	while (!gn_conn_is_closed(conn) && gn_conn_read_line(conn, &line, &len) > 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		if (s->tag != NULL) {
			finish(conn, s, gn_sasl_step64(s->sasl, line, len));
			continue;
		}
		char *copy = gn_strndup(line, len);
		bool starttls = strstr(copy, " STARTTLS") != NULL;
		command(conn, s, copy);
		gn_free(copy);
		if (starttls)
			return;	/* the rest of the input was dropped */
	}
}

static void t_input_full(struct gn_conn *conn, void *data)
{
	(void)data;
	gn_conn_printf(conn, "* BAD line too long\r\n");
	gn_conn_close(conn, "line too long");
}

static void t_close(struct gn_conn *conn, void *data)
{
	struct sess *s = gn_conn_data(conn);
	(void)data;
	if (s == NULL)
		return;
	/* An exchange still open is cancelled, so it is not left counted. */
	gn_sasl_free(&s->sasl);
	gn_free(s->tag);
	gn_free(s->account);
	gn_free(s->login);
	gn_free(s);
	gn_conn_set_data(conn, NULL);
}

static const struct gn_protocol proto_tls = {
	.size = sizeof(struct gn_protocol),
	.name = "sasl-test",
	.flags = GN_PROTO_CLIENT_CERT,
	.max_input = 16384,
	.open = t_open,
	.input = t_input,
	.input_full = t_input_full,
	.close = t_close,
};

static const struct gn_protocol proto_clear = {
	.size = sizeof(struct gn_protocol),
	.name = "sasl-test-cleartext",
	.flags = GN_PROTO_CLIENT_CERT,
	.max_input = 16384,
	.open = t_open,
	.input = t_input,
	.input_full = t_input_full,
	.close = t_close,
};

static int sasltest_register(struct gn_module_ctx *ctx, const char **error_r)
{
	if (gn_protocol_register(ctx, &proto_tls, &no_flag, error_r) < 0)
		return -1;
	return gn_protocol_register(ctx, &proto_clear, &cleartext_flag, error_r);
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "sasltest",
	.version = "1.0",
	.register_fn = sasltest_register,
};
