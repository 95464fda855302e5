/*
 * modules/mailauth/authres.c: Authentication-Results (RFC 8601) and
 * Received-SPF (RFC 7208 9.1) writers, and the authserv-id reader that
 * tells a forged field.  authres.h says how they are used.
 */
#include "authres.h"

#include <string.h>
#include <strings.h>

void authres_init(struct authres *ar, struct gn_pool *pool, const char *authserv_id)
{
	/* Not the whole struct: its results are set as they are added
	 * (128 of them, 23 KB to zero for every message). */
	ar->n = 0;
	ar->pool = pool;
	ar->authserv_id = authserv_id;
}

struct authres_result *authres_add(struct authres *ar, const char *method,
				   const char *result, const char *reason)
{
	if (ar->n == AUTHRES_MAX_RESULTS)
		return NULL;
	struct authres_result *r = &ar->results[ar->n++];
	memset(r, 0, sizeof(*r));
	r->method = method;
	r->result = result;
	r->reason = reason;
	return r;
}

void authres_prop(struct authres_result *r, const char *name, const char *value)
{
	if (r == NULL || value == NULL || r->n_props == AUTHRES_MAX_PROPS)
		return;
	r->props[r->n_props].name = name;
	r->props[r->n_props].value = value;
	r->props[r->n_props].comment = NULL;
	r->n_props++;
}

void authres_prop_comment(struct authres_result *r, const char *comment)
{
	if (r == NULL || r->n_props == 0)
		return;
	r->props[r->n_props - 1].comment = comment;
}

/* RFC 2045 5.1 token: printable ASCII but space and tspecials. */
static bool is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= ' ' || c >= 127 || strchr("()<>@,;:\\\"/[]?=", c) != NULL)
			return false;
	}
	return true;
}

/* RFC 5322 3.2.3 atext, for a pvalue local-part@domain (RFC 8601 2.2):
 * the len octets of s, each atext or one of also. */
static bool is_atext_or(const char *s, size_t len, const char *also)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c != '\0' && (strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL ||
				     strchr(also, c) != NULL))))
			return false;
	}
	return true;
}

/* A dot-atom (RFC 5322 3.2.3) of len octets: atext runs joined by
 * single dots. */
static bool is_dot_atom(const char *s, size_t len)
{
	if (!is_atext_or(s, len, ".") || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 1; i < len; i++)
		if (s[i] == '.' && s[i - 1] == '.')
			return false;
	return true;
}

/* An RFC 5321 Domain in ASCII: letters, digits, "-", dot-separated
 * labels. */
static bool is_domain(const char *s)
{
	size_t label = 0;
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || c == '-') {
			label++;
		} else {
			return false;
		}
	}
	return label > 0;
}

/* A mailbox or domain as RFC 8601's pvalue takes it unquoted: a dot-atom
 * local-part, "@", a domain; or a domain alone. */
static bool is_pvalue(const char *s)
{
	const char *at = strrchr(s, '@');
	if (at == NULL)
		return is_domain(s);
	size_t llen = (size_t)(at - s);
	return (llen == 0 || is_dot_atom(s, llen)) && is_domain(at + 1);
}

/* A quoted-string (RFC 5322 3.2.4): '"' and '\' escaped; control
 * characters, CR and LF above all, become "?". */
/* Appends at most max octets of s, with each octet in special escaped by
 * a backslash and control characters "?"; runs of plain octets at once. */
static void put_escaped(struct gn_buf *b, const char *s, size_t max, const char *special)
{
	size_t n = 0, run = 0;
	for (; s[n] != '\0' && n < max; n++) {
		unsigned char c = (unsigned char)s[n];
		bool ctl = c < ' ' || c == 127;
		if (!ctl && strchr(special, c) == NULL)
			continue;
		gn_buf_append(b, s + run, n - run);
		if (ctl) {
			gn_buf_append(b, "?", 1);
		} else {
			gn_buf_append(b, "\\", 1);
			gn_buf_append(b, s + n, 1);
		}
		run = n + 1;
	}
	gn_buf_append(b, s + run, n - run);
}

static void put_quoted(struct gn_buf *b, const char *s, size_t max)
{
	gn_buf_append(b, "\"", 1);
	put_escaped(b, s, max, "\"\\");
	gn_buf_append(b, "\"", 1);
}

static void put_value(struct gn_buf *b, const char *s, bool pvalue)
{
	if (is_token(s) || (pvalue && is_pvalue(s)))
		gn_buf_append_str(b, s);
	else
		put_quoted(b, s, AUTHRES_MAX_REASON);
}

static char *buf_to_pool(struct gn_pool *pool, struct gn_buf **b)
{
	char *p = gn_pool_strndup(pool, gn_buf_data(*b), gn_buf_len(*b));
	gn_buf_free(b);
	return p;
}

/* A comment's text (RFC 5322 3.2.2): "(", ")" and "\" escaped, control
 * characters "?". */
static void put_comment_text(struct gn_buf *b, const char *s)
{
	put_escaped(b, s, AUTHRES_MAX_REASON, "()\\");
}

char *authres_format(const struct authres *ar)
{
	struct gn_buf *b = gn_buf_new(0);
	authres_format_to(ar, b);
	return buf_to_pool(ar->pool, &b);
}

void authres_format_to(const struct authres *ar, struct gn_buf *b)
{
	gn_buf_append_str(b, "Authentication-Results: ");
	/* RFC 8601 2.5: authserv-id is a value; ours is a host name. */
	put_value(b, ar->authserv_id, false);
	if (ar->n == 0) {
		gn_buf_append_str(b, "; none\r\n");
		return;
	}
	for (size_t i = 0; i < ar->n; i++) {
		const struct authres_result *r = &ar->results[i];
		gn_buf_append_str(b, ";\r\n\t");
		gn_buf_append_str(b, r->method);
		gn_buf_append(b, "=", 1);
		gn_buf_append_str(b, r->result);
		if (r->comment != NULL) {
			gn_buf_append_str(b, " (");
			put_comment_text(b, r->comment);
			gn_buf_append_str(b, ")");
		}
		if (r->reason != NULL) {
			gn_buf_append_str(b, " reason=");
			put_quoted(b, r->reason, AUTHRES_MAX_REASON);
		}
		for (size_t k = 0; k < r->n_props; k++) {
			gn_buf_append(b, " ", 1);
			gn_buf_append_str(b, r->props[k].name);
			gn_buf_append(b, "=", 1);
			put_value(b, r->props[k].value, true);
			if (r->props[k].comment != NULL) {
				gn_buf_append_str(b, " (");
				put_comment_text(b, r->props[k].comment);
				gn_buf_append_str(b, ")");
			}
		}
	}
	gn_buf_append_str(b, "\r\n");
}

/* RFC 7208 9.1: a value is a dot-atom or a quoted-string. */
static void put_quoted_or_atom(struct gn_buf *b, const char *value)
{
	if (is_dot_atom(value, strlen(value)))
		gn_buf_append_str(b, value);
	else
		put_quoted(b, value, AUTHRES_MAX_REASON);
}

/* RFC 7208 9.1: key "=" ( dot-atom / quoted-string ). */
static void put_kv(struct gn_buf *b, const char *key, const char *value)
{
	if (value == NULL)
		return;
	gn_buf_append_str(b, ";\r\n\t");
	gn_buf_append_str(b, key);
	gn_buf_append(b, "=", 1);
	put_quoted_or_atom(b, value);
}

char *authres_received_spf(struct gn_pool *pool, const struct spf_result *r,
			   const char *receiver, const char *ip, const char *helo)
{
	struct gn_buf *b = gn_buf_new(0);
	authres_received_spf_to(b, r, receiver, ip, helo);
	return buf_to_pool(pool, &b);
}

void authres_received_spf_to(struct gn_buf *b, const struct spf_result *r,
			     const char *receiver, const char *ip, const char *helo)
{
	const char *name = spf_result_name(r->result);
	const char *who = r->sender != NULL ? r->sender : r->domain;

	gn_buf_append_str(b, "Received-SPF: ");
	gn_buf_append_str(b, name);
	gn_buf_append_str(b, " (");
	/* RFC 7208 9.1: the comment says who judged what; wording ours. */
	put_comment_text(b, receiver);
	gn_buf_append_str(b, ": ");
	switch (r->result) {
	case SPF_PASS:
		gn_buf_append_str(b, "domain of ");
		put_comment_text(b, who != NULL ? who : "?");
		gn_buf_append_str(b, " designates ");
		put_comment_text(b, ip);
		gn_buf_append_str(b, " as permitted sender");
		break;
	case SPF_FAIL:
	case SPF_SOFTFAIL:
		gn_buf_append_str(b, "domain of ");
		put_comment_text(b, who != NULL ? who : "?");
		gn_buf_append_str(b, " does not designate ");
		put_comment_text(b, ip);
		gn_buf_append_str(b, " as permitted sender");
		break;
	case SPF_NONE:
		gn_buf_append_str(b, "no SPF record for ");
		put_comment_text(b, r->domain != NULL ? r->domain : "?");
		break;
	case SPF_TEMPERROR:
	case SPF_PERMERROR:
		gn_buf_append_str(b, "error in processing: ");
		put_comment_text(b, r->problem != NULL ? r->problem : name);
		break;
	default:
		put_comment_text(b, ip);
		gn_buf_append_str(b, " is neither permitted nor denied by ");
		put_comment_text(b, r->domain != NULL ? r->domain : "?");
		break;
	}
	gn_buf_append_str(b, ")");
	/* The keys of RFC 7208 9.1, all that apply. */
	/* RFC 7208 9.1's order: receiver first; no client-ip without an
	 * address (a local socket). */
	gn_buf_append_str(b, " receiver=");
	put_quoted_or_atom(b, receiver);
	if (ip != NULL && ip[0] != '\0')
		put_kv(b, "client-ip", ip);
	if (strcmp(r->identity != NULL ? r->identity : "", "mailfrom") == 0)
		put_kv(b, "envelope-from", r->sender);
	put_kv(b, "helo", helo);
	put_kv(b, "identity", r->identity);
	put_kv(b, "mechanism", r->mechanism);
	if (r->result == SPF_TEMPERROR || r->result == SPF_PERMERROR)
		put_kv(b, "problem", r->problem);
	gn_buf_append_str(b, "\r\n");
}

bool authres_names(const char *value, size_t len, const char *authserv_id)
{
	size_t i = 0, idlen = strlen(authserv_id);
	/* [CFWS] first: folding white space and comments. */
	for (;;) {
		while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == '\r' ||
				   value[i] == '\n'))
			i++;
		if (i < len && value[i] == '(') {
			int depth = 0;
			for (; i < len; i++) {
				if (value[i] == '\\' && i + 1 < len) {
					i++;
					continue;
				}
				if (value[i] == '(')
					depth++;
				else if (value[i] == ')' && --depth == 0) {
					i++;
					break;
				}
			}
			continue;
		}
		break;
	}
	size_t start = i;
	if (i < len && value[i] == '"') {
		/* A quoted authserv-id. */
		start = ++i;
		while (i < len && value[i] != '"')
			i++;
	} else {
		while (i < len && value[i] != ';' && value[i] != ' ' && value[i] != '\t' &&
		       value[i] != '\r' && value[i] != '\n' && value[i] != '(')
			i++;
	}
	return i - start == idlen && strncasecmp(value + start, authserv_id, idlen) == 0;
}
