/*
 * modules/imap/cmd-auth.c: the not-authenticated state: STARTTLS, LOGIN
 * and AUTHENTICATE (RFC 9051 6.2, SASL-IR RFC 4959).
 *
 * Passwords travel only over TLS: without it LOGIN answers
 * NO [PRIVACYREQUIRED] and the capabilities say LOGINDISABLED, and the
 * SASL server offers no plain-text mechanism (imap.cleartext_ok lifts
 * both, for tests and trusted networks).  Every attempt goes through the
 * core's failed-login limiter and record (gannet/auth.h, gannet/sasl.h).
 *
 * A TLS client certificate whose public key is registered
 * (gannet/tlspubkey.h) identifies the session's account, as mox does
 * (mox.md 4.3): on implicit TLS the greeting is PREAUTH, unless the key
 * says no-IMAP-preauth; then, and after STARTTLS, the client logs in with
 * EXTERNAL or with any login of the same account.
 */
#include "imap.h"

#include <gannet/tlspubkey.h>

#include <string.h>

static bool cert_allows(const struct imap_session *s, int64_t account_id);

void imap_cmd_starttls(struct imap_session *s, struct imap_command *cmd)
{
	if (cmd->count != 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "STARTTLS takes no arguments");
		return;
	}
	if (!gn_conn_can_starttls(s->conn)) {
		imap_tagged(s, cmd->tag, "BAD", NULL, gn_conn_is_tls(s->conn) ? "TLS is already active" :
			    "STARTTLS is not offered here");
		return;
	}
	imap_tagged(s, cmd->tag, "OK", NULL, "Begin TLS negotiation now");
	if (gn_conn_starttls(s->conn) < 0)
		imap_bye(s, "starttls_failed", "TLS is not available");
}

/* A login that worked: the tagged OK carries the new capabilities
 * (RFC 9051 6.2.2, 6.2.3). */
static void login_ok(struct imap_session *s, const char *tag, int64_t account_id,
		     const char *account_name, const char *login, const char *mech)
{
	imap_logged_in(s, account_id, account_name, login);
	gn_log(GN_LOG_INFO, IMAP_AREA, "event=login conn=%s ip=%s account=%s login=%s mechanism=%s tls=%s",
	       gn_conn_id(s->conn), gn_conn_remote_ip(s->conn), gn_log_quote(0, account_name),
	       gn_log_quote(1, login), mech, gn_conn_is_tls(s->conn) ? "yes" : "no");
	imap_tagged(s, tag, "OK", gn_pool_printf(s->cmd_pool, "CAPABILITY %s",
						  imap_capabilities(s, s->cmd_pool)), "Logged in");
}

static void login_failed(struct imap_session *s, const char *tag, enum gn_sasl_failure f,
			 const char *text, const char *mech)
{
	const char *code;
	const char *status = gn_sasl_failure_imap(f, &code);
	gn_log(GN_LOG_INFO, IMAP_AREA, "event=login_failed conn=%s ip=%s mechanism=%s reason=%s",
	       gn_conn_id(s->conn), gn_conn_remote_ip(s->conn), gn_log_quote(0, mech),
	       gn_sasl_failure_name(f));
	imap_tagged(s, tag, status, code, "%s", text != NULL && *text != '\0' ? text : "Authentication failed");
}

void imap_cmd_login(struct imap_session *s, struct imap_command *cmd)
{
	const char *user, *pass;
	size_t ulen, plen;
	if (cmd->count != 2 || !imap_arg_astring(&cmd->args[0], &user, &ulen) ||
	    !imap_arg_astring(&cmd->args[1], &pass, &plen)) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "LOGIN takes a user name and a password");
		return;
	}
	if (!gn_conn_is_tls(s->conn) && !imap_settings.cleartext_ok) {
		imap_tagged(s, cmd->tag, "NO", "PRIVACYREQUIRED", "Log in after STARTTLS or on the TLS port");
		return;
	}
	struct gn_auth_client client = {
		.size = sizeof(client),
		.remote_ip = gn_conn_remote_ip(s->conn),
		.protocol = "imap",
		.mechanism = "login",
	};
	struct gn_auth_account *account = NULL;
	const char *error = NULL;
	enum gn_auth_result r = gn_auth_login(s->cmd_pool, &client, user, pass, plen, &account, &error);
	switch (r) {
	case GN_AUTH_OK:
		if (!cert_allows(s, gn_auth_account_id(account))) {
			login_failed(s, cmd->tag, GN_SASL_FAILURE_CREDENTIALS,
				     "The client certificate belongs to another account", "LOGIN");
			return;
		}
		login_ok(s, cmd->tag, gn_auth_account_id(account), gn_auth_account_name(account),
			 gn_auth_account_address(account), "LOGIN");
		return;
	case GN_AUTH_LOGINDISABLED:
		login_failed(s, cmd->tag, GN_SASL_FAILURE_DISABLED,
			     account != NULL ? gn_auth_account_login_disabled(account) : NULL, "LOGIN");
		return;
	case GN_AUTH_RATELIMITED:
		login_failed(s, cmd->tag, GN_SASL_FAILURE_RATELIMITED, "Too many failed logins, try later",
			     "LOGIN");
		return;
	case GN_AUTH_ERROR:
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=login_error conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, error != NULL ? error : "unknown"));
		login_failed(s, cmd->tag, GN_SASL_FAILURE_TEMPORARY, "Temporary failure, try again later",
			     "LOGIN");
		return;
	default:
		login_failed(s, cmd->tag, GN_SASL_FAILURE_CREDENTIALS, NULL, "LOGIN");
		return;
	}
}

/* Where an exchange stands after a start or a step. */
static void sasl_next(struct imap_session *s, const char *tag, enum gn_sasl_status st)
{
	switch (st) {
	case GN_SASL_CONTINUE:
		s->in_sasl = true;
		if (s->sasl_tag == NULL)
			s->sasl_tag = gn_strdup(tag);
		imap_continue(s, gn_sasl_challenge64(s->sasl));
		return;
	case GN_SASL_OK:
		s->in_sasl = false;
		login_ok(s, tag, gn_sasl_account_id(s->sasl), gn_sasl_account_name(s->sasl),
			 gn_sasl_login(s->sasl), gn_sasl_mechanism(s->sasl));
		return;
	case GN_SASL_FAIL:
	default:
		s->in_sasl = false;
		login_failed(s, tag, gn_sasl_failure(s->sasl), gn_sasl_failure_text(s->sasl),
			     s->sasl_mech != NULL ? s->sasl_mech : "none");
		return;
	}
}

void imap_cmd_authenticate(struct imap_session *s, struct imap_command *cmd)
{
	const char *ir = NULL;
	size_t irlen = 0;
	if (cmd->count < 1 || cmd->count > 2 || cmd->args[0].type != IMAP_ARG_ATOM ||
	    (cmd->count == 2 && cmd->args[1].type != IMAP_ARG_ATOM)) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "AUTHENTICATE takes a mechanism and an initial response");
		return;
	}
	if (cmd->count == 2) {
		ir = cmd->args[1].str;
		irlen = cmd->args[1].len;
	}
	gn_free(s->sasl_tag);
	s->sasl_tag = NULL;
	/* Upper case, as the log names the mechanisms elsewhere; the name
	 * is the client's, so the log quotes it. */
	gn_free(s->sasl_mech);
	s->sasl_mech = gn_strdup(cmd->args[0].str);
	for (char *p = s->sasl_mech; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	sasl_next(s, cmd->tag, gn_sasl_start64(s->sasl, cmd->args[0].str, ir, irlen));
}

void imap_sasl_response(struct imap_session *s, const char *line, size_t len)
{
	/* sasl_next() takes a copy of the tag when the exchange goes on. */
	char *tag = s->sasl_tag;
	s->sasl_tag = NULL;
	sasl_next(s, tag, gn_sasl_step64(s->sasl, line, len));
	gn_free(tag);
}

/* ---- TLS client certificates (mox.md 4.2, 4.3) ---- */

/* Whether a login as account_id may go on: a session whose certificate
 * is registered logs in only as that key's account (mox.md 4.5; the
 * core's SASL server checks its own mechanisms the same way). */
static bool cert_allows(const struct imap_session *s, int64_t account_id)
{
	return s->cert_account_id == 0 || s->cert_account_id == account_id;
}

void imap_cert_identify(struct imap_session *s)
{
	s->cert_account_id = 0;
	s->cert_preauth = false;
	gn_free(s->cert_login);
	s->cert_login = NULL;
	if (!gn_conn_is_tls(s->conn))
		return;
	struct gn_tlspubkey *key;
	const char *error;
	int r = gn_tlspubkey_lookup_conn(s->cmd_pool, s->conn, &key, &error);
	if (r < 0) {
		/* Fail closed: the session goes on without the key's
		 * identity, so no preauthentication and no EXTERNAL login
		 * succeeds while the database is away. */
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=tlspubkey_lookup_failed conn=%s error=%s",
		       gn_conn_id(s->conn), gn_log_quote(0, error));
		return;
	}
	if (r == 0)
		return;
	s->cert_account_id = gn_tlspubkey_account_id(key);
	s->cert_login = gn_strdup(gn_tlspubkey_login_address(key));
	s->cert_preauth = !gn_tlspubkey_no_imap_preauth(key);
}

bool imap_cert_preauth(struct imap_session *s)
{
	if (!s->cert_preauth || s->cert_account_id == 0)
		return false;
	/* One attempt as any login: the limiter has its say, the record
	 * shows it (mechanism "tlsclientauth", as mox records it). */
	struct gn_auth_client client = {
		.size = sizeof(client),
		.remote_ip = gn_conn_remote_ip(s->conn),
		.protocol = "imap",
		.mechanism = "tlsclientauth",
	};
	struct gn_auth_attempt *attempt;
	struct gn_auth_account *account = NULL;
	const char *error = NULL;
	int r = gn_auth_begin(s->cmd_pool, &client, &attempt, &error);
	if (r < 0) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=preauth_error conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, error != NULL ? error : "unknown"));
		return false;
	}
	enum gn_auth_result result = GN_AUTH_RATELIMITED;
	if (r == 1) {
		r = gn_auth_lookup(s->cmd_pool, s->cert_login, &account, &error);
		if (r < 0)
			result = GN_AUTH_ERROR;
		else if (r == 0 || gn_auth_account_id(account) != s->cert_account_id)
			result = GN_AUTH_BADUSER;	/* the address moved since the lookup */
		else if (gn_auth_account_login_disabled(account) != NULL)
			result = GN_AUTH_LOGINDISABLED;
		else
			result = GN_AUTH_OK;
	}
	(void)gn_auth_end(attempt, account, s->cert_login, result, NULL);
	gn_log(GN_LOG_INFO, IMAP_AREA, "event=%s conn=%s ip=%s login=%s result=%s",
	       result == GN_AUTH_OK ? "login" : "preauth_refused", gn_conn_id(s->conn),
	       gn_conn_remote_ip(s->conn), gn_log_quote(1, s->cert_login), gn_auth_result_name(result));
	if (result != GN_AUTH_OK)
		return false;
	imap_logged_in(s, gn_auth_account_id(account), gn_auth_account_name(account),
		       gn_auth_account_address(account));
	return true;
}
