/*
 * modules/submission/submission.c: message submission (RFC 6409) on port
 * 587 with STARTTLS (RFC 3207) and on 465 with implicit TLS (RFC 8314),
 * protocol "submission".  Mail from logged-in users of the hosted domains,
 * for any recipient, to the outbound queue.
 *
 * The protocol is the core's SMTP engine (gannet/smtp.h), as for the
 * smtp module; this file is the policy on it and its extensions:
 *
 *   TLS first   without TLS, AUTH and MAIL get 530 5.7.0 (RFC 3207 4,
 *               RFC 4954 4: no password in the clear, ever).
 *   AUTH        (RFC 4954) an added command on the core's SASL server
 *               (gannet/sasl.h): the mechanisms it offers on this
 *               connection (SCRAM-SHA-256(-PLUS), SCRAM-SHA-1(-PLUS),
 *               CRAM-MD5 for accounts that opted in, PLAIN, LOGIN, and
 *               EXTERNAL with a client certificate), the initial response,
 *               334 challenges, "*" to cancel (501 5.7.0, RFC 4954 6), 535
 *               5.7.8 on failure; every exchange is a login attempt with
 *               protocol "submission".  After auth_max_failures failed
 *               exchanges in one session: 421 4.7.0 and the connection
 *               closes.  Once per session (503 5.5.1 after).
 *   Certificate a TLS client certificate whose public key is registered
 *               (gannet/tlspubkey.h) authenticates the connection right
 *               after the handshake (mox.md 4.4): MAIL works without AUTH.
 *               AUTH stays possible once, and only for the key's account
 *               (the core's SASL server refuses another: 535 5.7.8).
 *   MAIL        needs an authenticated session (530 5.7.0); the reverse
 *               path must be an address of the account, found as
 *               delivery finds it (catchall separators cut off, as mox's
 *               lookup does), or one the core's "account.send_as" hooks
 *               allow (gn_store_send_as_check(): an alias with
 *               AllowMsgFrom), else 550 5.7.1; "<>" is refused the same way.
 *               HOLDFOR/HOLDUNTIL (RFC 4865, FUTURERELEASE): at most 60
 *               days ahead (554 5.5.4 beyond; both at once 501 5.5.4).
 *               FromIDs (mox.md 2.5) when the login is one of the
 *               account's FromID login addresses: MAIL FROM local+ID
 *               gives the FromID, refused (554 5.1.7) when used before.
 *   RCPT        any address (this is the relay for logged-in users); the
 *               bare <Postmaster> has no domain to send to: 550 5.1.3.
 *               A FromID given in MAIL FROM: one recipient (554 5.1.7).
 *   end of data message.c (From, headers, extra data), limits.c (per
 *               day), then enqueue.c.
 */
#include "submission.h"

#include <gannet/sasl.h>
#include <gannet/tlspubkey.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct submission_settings submission_settings;

struct sub_session {
	struct gn_smtp_session *s;
	struct gn_conn *conn;
	struct gn_sasl *sasl;
	struct gn_pool *pool;		/* the session's: identities */
	/* The logged-in account (by AUTH or by the certificate), 0 none. */
	int64_t account_id;
	const char *account;
	const char *login;
	/* The registered key of the client certificate, 0 none. */
	int64_t cert_account_id;
	bool tls_checked;		/* the certificate was looked at */
	bool auth_done;			/* AUTH succeeded once */
	long long auth_failures;
	/* The transaction. */
	struct gn_buf *msg;
	bool too_big;
	time_t hold_until;
	/* FromIDs (mox.md 2.5): the login is one of the account's FromID
	 * login addresses and MAIL FROM's domain has a catchall separator;
	 * the envelope sender without its tag; the FromID MAIL FROM gave
	 * (NULL: a random one per recipient).  From the transaction's pool. */
	bool fromid_use;
	const struct gn_addr *fromid_base;
	const char *fromid_given;
	/* What the session asked the database already (SESSION_CACHE_S at
	 * most): addresses the account may send as, and whether its login
	 * uses FromIDs.  A client that sends a batch over one connection
	 * asks once, not for every MAIL and every From. */
	struct {
		char *addr;		/* canonical; from malloc */
		time_t at;
	} send_as[SEND_AS_CACHE];
	int fromid_login;		/* -1 not asked */
	time_t fromid_login_at;
};

static struct sub_session *session(struct gn_smtp_session *s)
{
	return gn_smtp_session_data(s);
}

int submission_send_as(struct gn_smtp_session *s, struct gn_pool *pool, const struct gn_addr *addr,
		       const char **error_r)
{
	struct sub_session *ss = session(s);
	const char *key = gn_addr_to_string(pool, addr);
	time_t now = time(NULL);
	size_t oldest = 0;
	for (size_t i = 0; i < SEND_AS_CACHE; i++) {
		if (ss->send_as[i].addr != NULL && strcmp(ss->send_as[i].addr, key) == 0 &&
		    now - ss->send_as[i].at < SESSION_CACHE_S && now >= ss->send_as[i].at)
			return 1;
		if (ss->send_as[i].addr == NULL || ss->send_as[i].at < ss->send_as[oldest].at)
			oldest = i;
	}
	int r = gn_store_send_as_check(pool, ss->account_id, addr, error_r);
	if (r > 0) {
		gn_free(ss->send_as[oldest].addr);
		ss->send_as[oldest].addr = gn_strdup(key);
		ss->send_as[oldest].at = now;
	}
	return r;
}

static void logged_in(struct sub_session *ss, int64_t account_id, const char *account,
		      const char *login, const char *mech)
{
	ss->account_id = account_id;
	ss->account = gn_pool_strdup(ss->pool, account);
	ss->login = gn_pool_strdup(ss->pool, login);
	gn_smtp_session_set_authenticated(ss->s, true);
	gn_log(GN_LOG_INFO, SUBMISSION_AREA, "event=login id=%s ip=%s account=%s login=%s "
	       "mechanism=%s", gn_conn_id(ss->conn), gn_conn_remote_ip(ss->conn),
	       gn_log_quote(0, account), gn_log_quote(1, login), mech);
}

/* ---- TLS client certificates (mox.md 4.2, 4.4) ---- */

/* Right after the handshake (connect on 465, the EHLO after STARTTLS on
 * 587): a registered key logs the session in as its login address, one
 * attempt through the limiter and the record (mechanism
 * "tlsclientauth", as mox records it).  Fails closed: a database error
 * leaves the session without the key's identity. */
static void cert_identify(struct sub_session *ss)
{
	struct gn_tlspubkey *key;
	const char *error = NULL;
	int r;

	ss->tls_checked = true;
	r = gn_tlspubkey_lookup_conn(ss->pool, ss->conn, &key, &error);
	if (r < 0) {
		gn_log(GN_LOG_ERROR, SUBMISSION_AREA, "event=tlspubkey_lookup_failed id=%s error=%s",
		       gn_conn_id(ss->conn), gn_log_quote(0, error != NULL ? error : "unknown"));
		return;
	}
	if (r == 0)
		return;
	ss->cert_account_id = gn_tlspubkey_account_id(key);
	const char *login = gn_tlspubkey_login_address(key);
	struct gn_auth_client client = {
		.size = sizeof(client),
		.remote_ip = gn_conn_remote_ip(ss->conn),
		.protocol = "submission",
		.mechanism = "tlsclientauth",
	};
	struct gn_auth_attempt *attempt;
	struct gn_auth_account *account = NULL;
	r = gn_auth_begin(ss->pool, &client, &attempt, &error);
	if (r < 0) {
		gn_log(GN_LOG_ERROR, SUBMISSION_AREA, "event=tlsclientauth_error id=%s error=%s",
		       gn_conn_id(ss->conn), gn_log_quote(0, error != NULL ? error : "unknown"));
		return;
	}
	enum gn_auth_result result = GN_AUTH_RATELIMITED;
	if (r == 1) {
		r = gn_auth_lookup(ss->pool, login, &account, &error);
		if (r < 0)
			result = GN_AUTH_ERROR;
		else if (r == 0 || gn_auth_account_id(account) != ss->cert_account_id)
			result = GN_AUTH_BADUSER;	/* the address moved since the lookup */
		else if (gn_auth_account_login_disabled(account) != NULL)
			result = GN_AUTH_LOGINDISABLED;
		else
			result = GN_AUTH_OK;
	}
	(void)gn_auth_end(attempt, account, login, result, NULL);
	if (result != GN_AUTH_OK) {
		gn_log(GN_LOG_INFO, SUBMISSION_AREA, "event=tlsclientauth_refused id=%s ip=%s "
		       "login=%s result=%s", gn_conn_id(ss->conn), gn_conn_remote_ip(ss->conn),
		       gn_log_quote(0, login), gn_auth_result_name(result));
		return;
	}
	logged_in(ss, gn_auth_account_id(account), gn_auth_account_name(account),
		  gn_auth_account_address(account), "tlsclientauth");
}

/* ---- AUTH (RFC 4954) ---- */

static void auth_failed(struct sub_session *ss, enum gn_sasl_failure f)
{
	int code;
	const char *enhanced, *text = gn_sasl_failure_text(ss->sasl);
	const char *mech = gn_sasl_mechanism(ss->sasl);

	gn_sasl_failure_smtp(f, &code, &enhanced);
	gn_log(GN_LOG_INFO, SUBMISSION_AREA, "event=login_failed id=%s ip=%s mechanism=%s reason=%s",
	       gn_conn_id(ss->conn), gn_conn_remote_ip(ss->conn), mech != NULL ? mech : "none",
	       gn_sasl_failure_name(f));
	if (f != GN_SASL_FAILURE_CANCELLED &&
	    ++ss->auth_failures >= submission_settings.auth_max_failures) {
		gn_log(GN_LOG_INFO, SUBMISSION_AREA, "event=auth_failures_limit id=%s ip=%s failures=%lld",
		       gn_conn_id(ss->conn), gn_conn_remote_ip(ss->conn), ss->auth_failures);
		gn_smtp_answer(ss->s, 421, "4.7.0", "Too many failed authentications, closing connection");
		return;
	}
	gn_smtp_answer(ss->s, code, enhanced, "%s", text != NULL && *text != '\0' ? text :
		       "Authentication failed");
}

static void auth_next(struct sub_session *ss, enum gn_sasl_status st)
{
	switch (st) {
	case GN_SASL_CONTINUE:
		gn_smtp_answer_more(ss->s, 334, "%s", gn_sasl_challenge64(ss->sasl));
		return;
	case GN_SASL_OK:
		/* The core's SASL server ties every mechanism to the
		 * certificate's account (mox.md 4.5); checked again here, as
		 * the rule is this module's promise. */
		if (ss->cert_account_id != 0 && gn_sasl_account_id(ss->sasl) != ss->cert_account_id) {
			auth_failed(ss, GN_SASL_FAILURE_CREDENTIALS);
			return;
		}
		ss->auth_done = true;
		logged_in(ss, gn_sasl_account_id(ss->sasl), gn_sasl_account_name(ss->sasl),
			  gn_sasl_login(ss->sasl), gn_sasl_mechanism(ss->sasl));
		gn_smtp_answer(ss->s, 235, "2.7.0", "Authentication successful");
		return;
	case GN_SASL_FAIL:
	default:
		auth_failed(ss, gn_sasl_failure(ss->sasl));
		return;
	}
}

static void auth_start(struct gn_smtp_session *s, const char *args, void *data)
{
	struct sub_session *ss = session(s);
	const char *sp, *ir = NULL;
	char *mech;
	(void)data;

	if (!gn_conn_is_tls(ss->conn)) {
		gn_smtp_answer(s, 530, "5.7.0", "Must issue a STARTTLS command first");
		return;
	}
	if (ss->auth_done) {
		/* RFC 4954 4: one successful AUTH a session. */
		gn_smtp_answer(s, 503, "5.5.1", "Already authenticated");
		return;
	}
	sp = strchr(args, ' ');
	mech = sp != NULL ? gn_pool_strndup(ss->pool, args, (size_t)(sp - args))
			  : gn_pool_strdup(ss->pool, args);
	if (sp != NULL) {
		ir = sp + 1;
		if (*ir == '\0' || strchr(ir, ' ') != NULL) {
			gn_smtp_answer(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
			return;
		}
	}
	auth_next(ss, gn_sasl_start64(ss->sasl, mech, ir, ir != NULL ? strlen(ir) : 0));
}

static void auth_line(struct gn_smtp_session *s, const char *line, void *data)
{
	struct sub_session *ss = session(s);
	(void)data;
	/* "*" cancels: the SASL server says so (501 5.7.0). */
	auth_next(ss, gn_sasl_step64(ss->sasl, line, strlen(line)));
}

static void auth_cancel(struct gn_smtp_session *s, void *data)
{
	struct sub_session *ss = session(s);
	(void)data;
	if (ss != NULL)
		gn_sasl_cancel(ss->sasl);
}

/* EHLO AUTH: over TLS only, the SASL server's list for this connection
 * (EXTERNAL first when a certificate came). */
static bool auth_offer(struct gn_smtp_session *s, struct gn_buf *params, void *data)
{
	struct sub_session *ss = session(s);
	const char *mechs;
	(void)data;
	if (ss == NULL || !gn_conn_is_tls(ss->conn))
		return false;
	mechs = gn_sasl_mechanisms(ss->sasl);
	if (mechs == NULL || *mechs == '\0')
		return false;
	return gn_buf_append_str(params, mechs) == 0;
}

/* ---- FUTURERELEASE (RFC 4865) ---- */

/* RFC 4865 4: max-future-release-interval and max-future-release-date-time
 * (RFC 3339, UTC). */
static bool futurerelease_offer(struct gn_smtp_session *s, struct gn_buf *params, void *data)
{
	time_t t = time(NULL) + SUBMISSION_MAX_HOLD_SECONDS;
	struct tm tm;
	(void)s;
	(void)data;
	gmtime_r(&t, &tm);
	return gn_buf_printf(params, "%lld %04d-%02d-%02dT%02d:%02d:%02dZ",
			     SUBMISSION_MAX_HOLD_SECONDS, tm.tm_year + 1900, tm.tm_mon + 1,
			     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec) == 0;
}

static bool all_digits(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)p[i]))
			return false;
	return n > 0;
}

static int num(const char *p, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (p[i] - '0');
	return v;
}

/* RFC 3339 5.6 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm).
 * Returns 0 and *t_r, -1 when it is none. */
static int parse_rfc3339(const char *v, time_t *t_r)
{
	size_t len = strlen(v), i;
	struct tm tm;
	long off = 0;

	if (len < 20 || !all_digits(v, 4) || v[4] != '-' || !all_digits(v + 5, 2) || v[7] != '-' ||
	    !all_digits(v + 8, 2) || (v[10] != 'T' && v[10] != 't') || !all_digits(v + 11, 2) ||
	    v[13] != ':' || !all_digits(v + 14, 2) || v[16] != ':' || !all_digits(v + 17, 2))
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = num(v, 4) - 1900;
	tm.tm_mon = num(v + 5, 2) - 1;
	tm.tm_mday = num(v + 8, 2);
	tm.tm_hour = num(v + 11, 2);
	tm.tm_min = num(v + 14, 2);
	tm.tm_sec = num(v + 17, 2);
	if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	i = 19;
	if (v[i] == '.') {
		i++;
		size_t start = i;
		while (i < len && isdigit((unsigned char)v[i]) && i - start < 9)
			i++;
		if (i == start)
			return -1;
	}
	if ((v[i] == 'Z' || v[i] == 'z') && i + 1 == len) {
		off = 0;
	} else if ((v[i] == '+' || v[i] == '-') && i + 6 == len && all_digits(v + i + 1, 2) &&
		   v[i + 3] == ':' && all_digits(v + i + 4, 2)) {
		off = (long)num(v + i + 1, 2) * 3600 + (long)num(v + i + 4, 2) * 60;
		if (v[i] == '-')
			off = -off;
	} else {
		return -1;
	}
	*t_r = timegm(&tm) - off;
	return 0;
}

/* The hold a parameter asks for: 0 and *until_r (0 for "now"), or -1 with
 * *reply. */
static int hold_value(const char *keyword, const char *value, time_t *until_r,
		      struct gn_hook_reply *reply)
{
	time_t now = time(NULL), until;

	reply->code = 501;
	reply->enhanced = "5.5.4";
	if (value == NULL)
		return -1;
	if (strcmp(keyword, "HOLDFOR") == 0) {
		size_t n = strlen(value);
		if (!all_digits(value, n) || n > 12) {
			reply->text = "HOLDFOR takes a number of seconds";
			return -1;
		}
		long long secs = strtoll(value, NULL, 10);
		if (secs > SUBMISSION_MAX_HOLD_SECONDS) {
			reply->code = 554;
			reply->text = "HOLDFOR beyond the maximum of 5184000 seconds (60 days)";
			return -1;
		}
		*until_r = secs > 0 ? now + (time_t)secs : 0;
		return 0;
	}
	if (parse_rfc3339(value, &until) < 0) {
		reply->text = "HOLDUNTIL takes an RFC 3339 date-time";
		return -1;
	}
	if (until > now + SUBMISSION_MAX_HOLD_SECONDS) {
		reply->code = 554;
		reply->text = "HOLDUNTIL beyond the maximum of 60 days";
		return -1;
	}
	/* RFC 4865 3: a time in the past releases at once. */
	*until_r = until > now ? until : 0;
	return 0;
}

static int hold_check(struct gn_smtp_session *s, const char *value, struct gn_hook_reply *reply,
		      void *data)
{
	time_t until;
	(void)s;
	return hold_value(data, value, &until, reply);
}

/* ---- the policy ---- */

static void sub_connect(struct gn_smtp_session *s, void *data)
{
	struct sub_session *ss = gn_calloc(1, sizeof(*ss));
	(void)data;
	ss->s = s;
	ss->conn = gn_smtp_session_conn(s);
	ss->pool = gn_pool_new();
	ss->fromid_login = -1;
	ss->sasl = gn_sasl_new(ss->conn, "submission", 0);
	gn_smtp_session_set_data(s, ss);
	/* Implicit TLS (465): the handshake is done, the certificate known. */
	if (gn_conn_is_tls(ss->conn))
		cert_identify(ss);
	gn_smtp_answer(s, 220, NULL, NULL);
}

static void sub_helo(struct gn_smtp_session *s, const char *name, bool ehlo, void *data)
{
	struct sub_session *ss = session(s);
	(void)name;
	(void)ehlo;
	(void)data;
	/* The first EHLO after STARTTLS (RFC 3207 4.2): the handshake's
	 * certificate. */
	if (gn_conn_is_tls(ss->conn) && !ss->tls_checked)
		cert_identify(ss);
	gn_smtp_answer(s, 250, NULL, NULL);
}

static void tx_end(struct sub_session *ss)
{
	gn_buf_free(&ss->msg);
	ss->too_big = false;
	ss->hold_until = 0;
	ss->fromid_use = false;
	ss->fromid_base = NULL;
	ss->fromid_given = NULL;
}

/* ---- FromIDs (mox.md 2.5) ---- */

/* The queue's FromID alphabet: base64url, 1 to GN_QUEUE_FROMID_MAX. */
static bool fromid_valid(const char *id)
{
	size_t n = strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
	return n == strlen(id) && n >= 1 && n <= GN_QUEUE_FROMID_MAX;
}

/* At MAIL, from an address of the account: whether this transaction uses
 * FromIDs, and the one from's localpart gives after its first catchall
 * separator.  0 fine, 1 a given FromID that is not usable (554 5.1.7
 * answered), -1 database error. */
static int fromid_mail(struct sub_session *ss, struct gn_pool *pool, const struct gn_addr *from,
		       const char **error_r)
{
	time_t now = time(NULL);
	int r = ss->fromid_login;
	if (r < 0 || now - ss->fromid_login_at >= SESSION_CACHE_S || now < ss->fromid_login_at) {
		r = gn_store_fromid_login_is(ss->account_id, ss->login, error_r);
		if (r < 0)
			return -1;
		ss->fromid_login = r;
		ss->fromid_login_at = now;
	}
	if (r == 0)
		return 0;
	const struct gn_addr *base = NULL;
	r = submission_fromid_base(pool, from, &base, error_r);
	if (r < 0)
		return -1;
	if (r == 0) {
		/* Another domain of the account, without a separator: a
		 * FromID cannot be put anywhere. */
		gn_log(GN_LOG_DEBUG, SUBMISSION_AREA, "event=fromid_none id=%s domain=%s "
		       "reason=\"no catchall separator\"", gn_conn_id(ss->conn),
		       gn_log_quote(0, from->domain));
		return 0;
	}
	ss->fromid_use = true;
	ss->fromid_base = base;
	if (base == from)
		return 0;
	/* The tag after the separator (one code point) is the FromID. */
	const char *tag = from->localpart + strlen(base->localpart);
	size_t sl = 1;
	while (((unsigned char)tag[sl] & 0xc0) == 0x80)
		sl++;
	tag += sl;
	r = fromid_valid(tag) ? gn_queue_fromid_find(pool, tag, NULL, NULL, NULL, NULL, error_r) : 1;
	if (r < 0)
		return -1;
	if (r > 0) {
		gn_log(GN_LOG_INFO, SUBMISSION_AREA, "event=fromid_refused id=%s account=%s fromid=%s "
		       "reason=%s", gn_conn_id(ss->conn), gn_log_quote(0, ss->account),
		       gn_log_quote(1, tag), fromid_valid(tag) ? "used" : "invalid");
		gn_smtp_answer(ss->s, 554, "5.1.7", "Bad FromID in MAIL FROM address: %s",
			       fromid_valid(tag) ? "used before" : "not 1 to 64 of A-Z a-z 0-9 - _");
		return 1;
	}
	ss->fromid_given = tag;
	return 0;
}

static void sub_mail(struct gn_smtp_session *s, const struct gn_addr *from, void *data)
{
	struct sub_session *ss = session(s);
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	struct gn_pool *pool = gn_smtp_tx_pool(tx);
	const char *holdfor = NULL, *holduntil = NULL, *err = NULL;
	bool has_for, has_until;
	struct gn_hook_reply reply = { 0 };
	(void)data;

	tx_end(ss);
	if (!gn_conn_is_tls(ss->conn)) {
		gn_smtp_answer(s, 530, "5.7.0", "Must issue a STARTTLS command first");
		return;
	}
	if (ss->account_id == 0) {
		gn_smtp_answer(s, 530, "5.7.0", "Authentication required");
		return;
	}
	has_for = gn_smtp_tx_param(tx, "HOLDFOR", &holdfor) == 1;
	has_until = gn_smtp_tx_param(tx, "HOLDUNTIL", &holduntil) == 1;
	if (has_for && has_until) {
		/* RFC 4865 3: one or the other. */
		gn_smtp_answer(s, 501, "5.5.4", "HOLDFOR and HOLDUNTIL are exclusive");
		return;
	}
	if ((has_for || has_until) &&
	    hold_value(has_for ? "HOLDFOR" : "HOLDUNTIL", has_for ? holdfor : holduntil,
		       &ss->hold_until, &reply) < 0) {
		gn_smtp_answer(s, reply.code, reply.enhanced, "%s", reply.text);
		return;
	}
	if (from == NULL) {
		gn_smtp_answer(s, 550, "5.7.1", "Must match authenticated user: "
			       "the null sender is not submitted");
		return;
	}
	/* The account's own addresses, and those the core's send-as hooks
	 * allow (an alias with AllowMsgFrom the account is a member of). */
	int r = submission_send_as(s, pool, from, &err);
	if (r < 0) {
		gn_log(GN_LOG_WARN, SUBMISSION_AREA, "event=mail_tempfail id=%s error=%s",
		       gn_conn_id(ss->conn), gn_log_quote(0, err != NULL ? err : "?"));
		gn_smtp_answer(s, 451, "4.3.0", "Temporary failure, please try again later");
		return;
	}
	if (r == 0) {
		gn_log(GN_LOG_INFO, SUBMISSION_AREA, "event=mail_from_refused id=%s account=%s from=%s",
		       gn_conn_id(ss->conn), gn_log_quote(0, ss->account),
		       gn_log_quote(1, gn_addr_to_string(pool, from)));
		gn_smtp_answer(s, 550, "5.7.1", "Must match authenticated user");
		return;
	}
	r = fromid_mail(ss, pool, from, &err);
	if (r < 0) {
		gn_log(GN_LOG_WARN, SUBMISSION_AREA, "event=mail_tempfail id=%s error=%s",
		       gn_conn_id(ss->conn), gn_log_quote(0, err != NULL ? err : "?"));
		gn_smtp_answer(s, 451, "4.3.0", "Temporary failure, please try again later");
		return;
	}
	if (r > 0) {
		tx_end(ss);
		return;
	}
	gn_smtp_answer(s, 250, "2.1.0", "Sender OK");
}

static void sub_rcpt(struct gn_smtp_session *s, struct gn_smtp_rcpt *rcpt, void *data)
{
	const struct gn_addr *addr = gn_smtp_rcpt_addr(rcpt);
	struct sub_session *ss = session(s);
	(void)data;
	if (addr->domain[0] == '\0') {
		gn_smtp_answer(s, 550, "5.1.3", "A recipient needs a domain");
		return;
	}
	if (ss->fromid_given != NULL && gn_smtp_tx_rcpt_count(gn_smtp_session_tx(s)) > 0) {
		/* A FromID is unique: it names one message to one recipient. */
		gn_smtp_answer(s, 554, "5.1.7", "Cannot send to multiple recipients with a FromID "
			       "given in MAIL FROM");
		return;
	}
	gn_smtp_answer(s, 250, "2.1.5", "Recipient OK");
}

static int sub_data_chunk(struct gn_smtp_session *s, const char *buf, size_t len, void *data)
{
	struct sub_session *ss = session(s);
	(void)data;
	if (ss->msg == NULL)
		ss->msg = gn_buf_new(submission_settings.smtp.max_message_size);
	if (gn_buf_append(ss->msg, buf, len) < 0) {
		ss->too_big = true;
		return -1;
	}
	return 0;
}

static void sub_data_end(struct gn_smtp_session *s, void *data)
{
	struct sub_session *ss = session(s);
	struct gn_smtp_tx *tx = gn_smtp_session_tx(s);
	struct gn_pool *pool = gn_smtp_tx_pool(tx);
	struct submission_message msg;
	struct submission_refusal refusal = { 0 };
	const char *err = NULL;
	const struct gn_addr **rcpts;
	size_t n = gn_smtp_tx_rcpt_count(tx);
	int r;
	(void)data;

	if (ss->too_big) {
		gn_smtp_answer(s, 552, "5.3.4", "Message too big");
		return;
	}
	if (ss->account_id == 0) {	/* cannot happen: MAIL checked */
		gn_smtp_answer(s, 530, "5.7.0", "Authentication required");
		return;
	}
	memset(&msg, 0, sizeof(msg));
	msg.account_id = ss->account_id;
	msg.account = ss->account;
	msg.login = ss->login;
	msg.mail_from = gn_smtp_tx_from(tx);
	rcpts = gn_pool_alloc(pool, (n > 0 ? n : 1) * sizeof(*rcpts));
	for (size_t i = 0; i < n; i++)
		rcpts[i] = gn_smtp_rcpt_addr(gn_smtp_tx_rcpt(tx, i));
	msg.rcpts = rcpts;
	msg.rcpt_count = n;
	msg.hold_until = ss->hold_until;
	msg.smtputf8 = gn_smtp_tx_smtputf8(tx);
	msg.body_8bit = gn_smtp_tx_body(tx) == GN_SMTP_BODY_8BITMIME;
	msg.tx_id = gn_smtp_tx_id(tx);
	msg.sender = msg.mail_from;
	msg.requiretls = gn_smtp_tx_param(tx, "REQUIRETLS", NULL) == 1;
	if (ss->fromid_use) {
		const char **ids = gn_pool_alloc(pool, (n > 0 ? n : 1) * sizeof(*ids));
		for (size_t i = 0; i < n; i++) {
			ids[i] = ss->fromid_given != NULL ? ss->fromid_given : submission_fromid_random(pool, &err);
			if (ids[i] == NULL) {
				gn_log(GN_LOG_WARN, SUBMISSION_AREA, "event=message_tempfail id=%s tx=%s "
				       "error=%s", gn_conn_id(ss->conn), msg.tx_id, gn_log_quote(0, err));
				gn_smtp_answer(s, 451, "4.3.0", "Temporary failure, please try again later");
				return;
			}
		}
		msg.from_ids = ids;
		msg.sender = ss->fromid_base;
	}

	r = submission_message_prepare(s, pool, ss->msg != NULL ? gn_buf_data(ss->msg) : "",
				       ss->msg != NULL ? gn_buf_len(ss->msg) : 0, ss->account_id,
				       &msg, &refusal, &err);
	if (r == 0)
		r = submission_limits_check(pool, &msg, &refusal, &err);
	if (r < 0) {
		gn_log(GN_LOG_WARN, SUBMISSION_AREA, "event=message_tempfail id=%s tx=%s error=%s",
		       gn_conn_id(ss->conn), msg.tx_id, gn_log_quote(0, err != NULL ? err : "?"));
		gn_smtp_answer(s, 451, "4.3.0", "Temporary failure, please try again later");
		return;
	}
	if (r > 0) {
		gn_log(GN_LOG_INFO, SUBMISSION_AREA, "event=message_refused id=%s tx=%s account=%s "
		       "code=%d enhanced=%s text=%s", gn_conn_id(ss->conn), msg.tx_id,
		       gn_log_quote(0, ss->account), refusal.code, refusal.enhanced,
		       gn_log_quote(1, refusal.text));
		gn_smtp_answer(s, refusal.code, refusal.enhanced, "%s", refusal.text);
		return;
	}
	submission_enqueue(s, &msg);
}

static void sub_reset(struct gn_smtp_session *s, void *data)
{
	struct sub_session *ss = session(s);
	(void)data;
	submission_enqueue_cancel(s);
	if (ss != NULL)
		tx_end(ss);
}

static void sub_disconnect(struct gn_smtp_session *s, void *data)
{
	struct sub_session *ss = session(s);
	(void)data;
	submission_enqueue_cancel(s);
	if (ss == NULL)
		return;
	tx_end(ss);
	gn_sasl_free(&ss->sasl);
	for (size_t i = 0; i < SEND_AS_CACHE; i++)
		gn_free(ss->send_as[i].addr);
	gn_pool_free(&ss->pool);
	gn_free(ss);
	gn_smtp_session_set_data(s, NULL);
}

static const struct gn_smtp_policy sub_policy = {
	.size = sizeof(struct gn_smtp_policy),
	.connect = sub_connect,
	.helo = sub_helo,
	.mail = sub_mail,
	.rcpt = sub_rcpt,
	.data_chunk = sub_data_chunk,
	.data_end = sub_data_end,
	.reset = sub_reset,
	.disconnect = sub_disconnect,
};

/* ---- REQUIRETLS (RFC 8689) ---- */

/* RFC 8689 (and mox): the parameter only over TLS.  It is known in
 * every EHLO session (the keyword only shows over TLS), so that a client
 * that gives it in the clear hears why. */
static int requiretls_check(struct gn_smtp_session *s, const char *value,
			    struct gn_hook_reply *reply, void *data)
{
	(void)value;
	(void)data;
	if (gn_conn_is_tls(gn_smtp_session_conn(s)))
		return 0;
	reply->code = 530;
	reply->enhanced = "5.7.10";
	reply->text = "REQUIRETLS only over TLS: issue STARTTLS first";
	return -1;
}

/* ---- register ---- */

static int add_extensions(struct gn_smtp_server *srv, const char **error_r)
{
	static const struct gn_smtp_keyword auth_kw = {
		.size = sizeof(struct gn_smtp_keyword),
		.keyword = "AUTH",
		.flags = GN_SMTP_KEYWORD_TLS,
		.offer = auth_offer,
	};
	static const struct gn_smtp_keyword future_kw = {
		.size = sizeof(struct gn_smtp_keyword),
		.keyword = "FUTURERELEASE",
		.offer = futurerelease_offer,
	};
	/* Always there, so that AUTH without TLS hears 530 5.7.0 rather than
	 * "not implemented". */
	static const struct gn_smtp_command auth_cmd = {
		.size = sizeof(struct gn_smtp_command),
		.verb = "AUTH",
		.states = GN_SMTP_STATE_HELO,
		.flags = GN_SMTP_CMD_ARGS,
		.max_line_length = 12288,	/* RFC 4954 4 */
		.start = auth_start,
		.line = auth_line,
		.cancel = auth_cancel,
	};
	/* RFC 4954 5: MAIL FROM's AUTH= is taken and ignored (the session's
	 * login is what counts). */
	static const struct gn_smtp_param auth_param = {
		.size = sizeof(struct gn_smtp_param),
		.cmd = GN_SMTP_PARAM_MAIL,
		.keyword = "AUTH",
		.extension = "AUTH",
		.flags = GN_SMTP_PARAM_VALUE | GN_SMTP_PARAM_XTEXT,
	};
	static const struct gn_smtp_param holdfor = {
		.size = sizeof(struct gn_smtp_param),
		.cmd = GN_SMTP_PARAM_MAIL,
		.keyword = "HOLDFOR",
		.extension = "FUTURERELEASE",
		.flags = GN_SMTP_PARAM_VALUE,
		.max_length = 32,
		.check = hold_check,
		.data = (void *)"HOLDFOR",
	};
	static const struct gn_smtp_param holduntil = {
		.size = sizeof(struct gn_smtp_param),
		.cmd = GN_SMTP_PARAM_MAIL,
		.keyword = "HOLDUNTIL",
		.extension = "FUTURERELEASE",
		.flags = GN_SMTP_PARAM_VALUE,
		.max_length = 64,
		.check = hold_check,
		.data = (void *)"HOLDUNTIL",
	};
	static const struct gn_smtp_keyword requiretls_kw = {
		.size = sizeof(struct gn_smtp_keyword),
		.keyword = "REQUIRETLS",
		.flags = GN_SMTP_KEYWORD_TLS,
	};
	static const struct gn_smtp_param requiretls = {
		.size = sizeof(struct gn_smtp_param),
		.cmd = GN_SMTP_PARAM_MAIL,
		.keyword = "REQUIRETLS",
		.flags = GN_SMTP_PARAM_NO_VALUE,
		.check = requiretls_check,
	};
	if (gn_smtp_server_add_keyword(srv, &auth_kw, error_r) < 0 ||
	    gn_smtp_server_add_keyword(srv, &requiretls_kw, error_r) < 0 ||
	    gn_smtp_server_add_param(srv, &requiretls, error_r) < 0 ||
	    gn_smtp_server_add_keyword(srv, &future_kw, error_r) < 0 ||
	    gn_smtp_server_add_command(srv, &auth_cmd, error_r) < 0 ||
	    gn_smtp_server_add_param(srv, &auth_param, error_r) < 0 ||
	    gn_smtp_server_add_param(srv, &holdfor, error_r) < 0 ||
	    gn_smtp_server_add_param(srv, &holduntil, error_r) < 0)
		return -1;
	return 0;
}

extern const struct gn_migration submission_migrations[];
extern const size_t submission_migrations_count;

static int sub_register(struct gn_module_ctx *ctx, const char **error_r)
{
	struct gn_config *sect = gn_module_config(ctx);
	struct submission_settings *set = &submission_settings;
	struct gn_smtp_server *srv;

	gn_smtp_settings_init(&set->smtp);
	gn_smtp_settings_read(sect, &set->smtp);
	set->smtp.client_cert = true;	/* mox.md 4.2, 4.4 */
	/* mox.md 11: MaxOutgoingMessagesPerDay 1000,
	 * MaxFirstTimeRecipientsPerDay 200. */
	gn_config_int(sect, "max_messages_per_day", 1000, 0, 100000000,
		      &set->max_messages_per_day);
	gn_config_int(sect, "max_first_time_recipients_per_day", 200, 0, 100000000,
		      &set->max_first_time_recipients_per_day);
	gn_config_int(sect, "auth_max_failures", 3, 1, 1000, &set->auth_max_failures);
	gn_config_int(sect, "max_extra", 64, 0, 1000, &set->max_extra);
	gn_config_int(sect, "group_commit_ms", 0, 0, 1000, &set->group_commit_ms);
	if (gn_migrate_register(ctx, submission_migrations, submission_migrations_count,
				error_r) < 0)
		return -1;
	srv = gn_smtp_server_register(ctx, "submission", &set->smtp, &sub_policy, NULL, error_r);
	if (srv == NULL)
		return -1;
	if (gn_service_provide(ctx, GN_SUBMIT_SERVICE, &submission_service_ops, error_r) < 0)
		return -1;
	return add_extensions(srv, error_r);
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "submission",
	.version = "0.1.0",
	.register_fn = sub_register,
};
