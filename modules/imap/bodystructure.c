/*
 * modules/imap/bodystructure.c: the FETCH items that describe a message's
 * structure: ENVELOPE (RFC 9051 7.5.2, RFC 3501 7.4.2), BODYSTRUCTURE and
 * BODY without a section (RFC 9051 7.5.2, the body ABNF of section 9).
 *
 * They are written from the part tree the store keeps with each message
 * (gannet/mime.h), never from the message's bytes: envelope fields come
 * from the parser's raw header values and addresses from the core's
 * RFC 5322 address parser (gannet/addr.h), which never fails on garbage
 * but lists what did not parse.
 */
#include "imap.h"

#include <string.h>
#include <strings.h>

/* Deeper trees are not written in full (the MIME parser stops at 50
 * levels; a stored structure might claim more). */
#define BODY_MAX_DEPTH 100

/* An nstring: NIL for NULL; 8-bit text goes as a literal, since a quoted
 * string of IMAP4rev1 holds 7-bit characters only (RFC 3501 9,
 * QUOTED-CHAR). */
static void append_nstring(struct gn_buf *b, const char *s)
{
	if (s == NULL) {
		(void)gn_buf_append_str(b, "NIL");
		return;
	}
	size_t len = strlen(s);
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] >= 0x80) {
			(void)gn_buf_printf(b, "{%zu}\r\n", len);
			(void)gn_buf_append(b, s, len);
			return;
		}
	}
	imap_append_string(b, s, len);
}

/* The same, NIL also for "". */
static void append_nstring_nonempty(struct gn_buf *b, const char *s)
{
	append_nstring(b, s != NULL && *s != '\0' ? s : NULL);
}

/* A string in upper case (types, subtypes, encodings, parameter names:
 * the case the RFC's examples use; they compare case-insensitively). */
static void append_upper(struct gn_buf *b, struct gn_pool *pool, const char *s)
{
	char *u = gn_pool_strdup(pool, s);
	for (char *p = u; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	append_nstring(b, u);
}

/* ---- ENVELOPE ---- */

/* The domain as the header spelled it when the address's text holds it
 * (RFC 9051 7.5.2 shows the header's values); else the parser's form. */
const char *imap_addr_host(struct gn_pool *pool, const struct gn_addr_item *item)
{
	const struct gn_addr *a = item->addr;
	const char *at = item->text != NULL ? strrchr(item->text, '@') : NULL;
	if (at != NULL) {
		at++;
		size_t n = strcspn(at, "> \t(),;");
		if ((n == strlen(a->domain) && strncasecmp(at, a->domain, n) == 0) ||
		    (n == strlen(a->domain_utf8) && strncasecmp(at, a->domain_utf8, n) == 0))
			return gn_pool_strndup(pool, at, n);
	}
	return a->domain;
}

/* address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")";
 * a group is a start marker (NIL NIL name NIL) and an end marker (NIL NIL
 * NIL NIL), RFC 9051 7.5.2. */
static void append_address(struct gn_buf *b, struct gn_pool *pool, const struct gn_addr_item *item)
{
	switch (item->kind) {
	case GN_ADDR_GROUP_START:
		(void)gn_buf_append_str(b, "(NIL NIL ");
		append_nstring(b, item->name_raw != NULL ? item->name_raw : "");
		(void)gn_buf_append_str(b, " NIL)");
		return;
	case GN_ADDR_GROUP_END:
		(void)gn_buf_append_str(b, "(NIL NIL NIL NIL)");
		return;
	case GN_ADDR_MAILBOX:
		break;
	}
	(void)gn_buf_append_str(b, "(");
	append_nstring_nonempty(b, item->name_raw);
	(void)gn_buf_append_str(b, " NIL ");
	if (item->addr != NULL) {
		append_nstring(b, item->addr->localpart);
		(void)gn_buf_append_str(b, " ");
		append_nstring(b, imap_addr_host(pool, item));
	} else {
		/* A mailbox that does not parse: its text, and a host that
		 * says so, never NIL (which would mark a group). */
		append_nstring(b, item->text != NULL && *item->text != '\0' ? item->text : "MISSING_MAILBOX");
		(void)gn_buf_append_str(b, " \"MISSING_DOMAIN\"");
	}
	(void)gn_buf_append_str(b, ")");
}

/* An address list, or NIL when the header is absent or lists nobody.
 * Returns whether a list was written. */
static bool append_addresses(struct gn_buf *b, struct gn_pool *pool, const char *value)
{
	if (value == NULL)
		return false;
	struct gn_addr_list list;
	const char *err;
	(void)gn_addr_parse_header(pool, value, strlen(value), &list, &err);
	if (list.count == 0)
		return false;
	(void)gn_buf_append_str(b, "(");
	for (size_t i = 0; i < list.count; i++)
		append_address(b, pool, list.items[i]);
	(void)gn_buf_append_str(b, ")");
	return true;
}

void imap_append_envelope(struct gn_buf *b, struct gn_pool *pool, const struct gn_mime_part *msg)
{
	(void)gn_buf_append_str(b, "(");
	append_nstring(b, gn_mime_part_field_raw(msg, GN_MIME_DATE));
	(void)gn_buf_append_str(b, " ");
	append_nstring(b, gn_mime_part_field_raw(msg, GN_MIME_SUBJECT));
	/* RFC 3501 7.4.2: sender and reply-to default to from. */
	const char *from = gn_mime_part_field_raw(msg, GN_MIME_FROM);
	static const enum gn_mime_field addr_fields[] = {
		GN_MIME_FROM, GN_MIME_SENDER, GN_MIME_REPLY_TO, GN_MIME_TO, GN_MIME_CC, GN_MIME_BCC,
	};
	for (size_t i = 0; i < sizeof(addr_fields) / sizeof(addr_fields[0]); i++) {
		enum gn_mime_field f = addr_fields[i];
		(void)gn_buf_append_str(b, " ");
		if (append_addresses(b, pool, gn_mime_part_field_raw(msg, f)))
			continue;
		if ((f == GN_MIME_SENDER || f == GN_MIME_REPLY_TO) && append_addresses(b, pool, from))
			continue;
		(void)gn_buf_append_str(b, "NIL");
	}
	(void)gn_buf_append_str(b, " ");
	append_nstring(b, gn_mime_part_field_raw(msg, GN_MIME_IN_REPLY_TO));
	(void)gn_buf_append_str(b, " ");
	append_nstring(b, gn_mime_part_field_raw(msg, GN_MIME_MESSAGE_ID));
	(void)gn_buf_append_str(b, ")");
}

/* ---- BODY and BODYSTRUCTURE ---- */

/* body-fld-param: "(" name SP value ... ")" / nil. */
static void append_params(struct gn_buf *b, struct gn_pool *pool, size_t n,
			  const char *(*name)(const struct gn_mime_part *, size_t),
			  const char *(*value)(const struct gn_mime_part *, size_t),
			  const struct gn_mime_part *part)
{
	if (n == 0) {
		(void)gn_buf_append_str(b, "NIL");
		return;
	}
	(void)gn_buf_append_str(b, "(");
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			(void)gn_buf_append_str(b, " ");
		append_upper(b, pool, name(part, i));
		(void)gn_buf_append_str(b, " ");
		const char *v = value(part, i);
		append_nstring(b, v != NULL ? v : "");
	}
	(void)gn_buf_append_str(b, ")");
}

static void append_type_params(struct gn_buf *b, struct gn_pool *pool, const struct gn_mime_part *part)
{
	append_params(b, pool, gn_mime_part_param_count(part), gn_mime_part_param_name,
		      gn_mime_part_param_value, part);
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc: the extension data that
 * single parts and multiparts share (RFC 9051 7.5.2). */
static void append_dsp_lang_loc(struct gn_buf *b, struct gn_pool *pool, const struct gn_mime_part *part)
{
	const char *dsp = gn_mime_part_disposition(part);
	if (dsp != NULL) {
		(void)gn_buf_append_str(b, "(");
		append_upper(b, pool, dsp);
		(void)gn_buf_append_str(b, " ");
		append_params(b, pool, gn_mime_part_disposition_param_count(part),
			      gn_mime_part_disposition_param_name, gn_mime_part_disposition_param_value, part);
		(void)gn_buf_append_str(b, ")");
	} else {
		(void)gn_buf_append_str(b, "NIL");
	}
	/* body-fld-lang: one tag as a string, several (RFC 3282 "en, de")
	 * as a list. */
	(void)gn_buf_append_str(b, " ");
	const char *lang = gn_mime_part_language(part);
	if (lang != NULL && strchr(lang, ',') != NULL) {
		(void)gn_buf_append_str(b, "(");
		const char *p = lang, *sep = "";
		while (*p != '\0') {
			p += strspn(p, " \t,");
			size_t n = strcspn(p, ",");
			while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
				n--;
			if (n > 0) {
				(void)gn_buf_append_str(b, sep);
				append_nstring(b, gn_pool_strndup(pool, p, n));
				sep = " ";
			}
			p += n;
			p += strcspn(p, ",");
		}
		(void)gn_buf_append_str(b, ")");
	} else {
		append_nstring_nonempty(b, lang);
	}
	(void)gn_buf_append_str(b, " ");
	append_nstring_nonempty(b, gn_mime_part_location(part));
}

static void append_part(struct gn_buf *b, struct gn_pool *pool, const struct gn_mime_part *part, bool extended,
			unsigned depth);

static void append_multipart(struct gn_buf *b, struct gn_pool *pool, const struct gn_mime_part *part,
			     bool extended, unsigned depth)
{
	/* body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart] */
	(void)gn_buf_append_str(b, "(");
	size_t n = gn_mime_part_child_count(part);
	for (size_t i = 0; i < n; i++)
		append_part(b, pool, gn_mime_part_child(part, i), extended, depth + 1);
	if (n == 0) {
		/* A multipart in which no part was found: the ABNF wants one
		 * body, so an empty text part stands for it. */
		(void)gn_buf_append_str(b, "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
	}
	(void)gn_buf_append_str(b, " ");
	append_upper(b, pool, gn_mime_part_subtype(part));
	if (extended) {
		/* body-ext-mpart = body-fld-param [SP body-fld-dsp [SP
		 * body-fld-lang [SP body-fld-loc]]] */
		(void)gn_buf_append_str(b, " ");
		append_type_params(b, pool, part);
		(void)gn_buf_append_str(b, " ");
		append_dsp_lang_loc(b, pool, part);
	}
	(void)gn_buf_append_str(b, ")");
}

static void append_part(struct gn_buf *b, struct gn_pool *pool, const struct gn_mime_part *part, bool extended,
			unsigned depth)
{
	const char *type = gn_mime_part_type(part), *subtype = gn_mime_part_subtype(part);
	if (depth >= BODY_MAX_DEPTH) {
		(void)gn_buf_append_str(b, "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"7BIT\" 0)");
		return;
	}
	if (strcmp(type, "multipart") == 0) {
		append_multipart(b, pool, part, extended, depth);
		return;
	}
	/* body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP
	 * body-fld-enc SP body-fld-octets */
	(void)gn_buf_append_str(b, "(");
	append_upper(b, pool, type);
	(void)gn_buf_append_str(b, " ");
	append_upper(b, pool, subtype);
	(void)gn_buf_append_str(b, " ");
	append_type_params(b, pool, part);
	(void)gn_buf_append_str(b, " ");
	append_nstring_nonempty(b, gn_mime_part_content_id(part));
	(void)gn_buf_append_str(b, " ");
	append_nstring_nonempty(b, gn_mime_part_description(part));
	(void)gn_buf_append_str(b, " ");
	const char *enc = gn_mime_part_encoding(part);
	append_upper(b, pool, enc != NULL && *enc != '\0' ? enc : "7bit");	/* RFC 2045 6.1 */
	(void)gn_buf_printf(b, " %zu", gn_mime_part_body_size(part));
	bool rfc822 = strcmp(type, "message") == 0 &&
		      (strcmp(subtype, "rfc822") == 0 || strcmp(subtype, "global") == 0) &&
		      gn_mime_part_child_count(part) == 1;
	if (rfc822) {
		/* body-type-msg: SP envelope SP body SP body-fld-lines */
		const struct gn_mime_part *inner = gn_mime_part_child(part, 0);
		(void)gn_buf_append_str(b, " ");
		imap_append_envelope(b, pool, inner);
		(void)gn_buf_append_str(b, " ");
		append_part(b, pool, inner, extended, depth + 1);
		(void)gn_buf_printf(b, " %zu", gn_mime_part_body_lines(part));
	} else if (strcmp(type, "text") == 0) {
		(void)gn_buf_printf(b, " %zu", gn_mime_part_body_lines(part));
	}
	if (extended) {
		/* body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP
		 * body-fld-lang [SP body-fld-loc]]] */
		(void)gn_buf_append_str(b, " ");
		append_nstring_nonempty(b, gn_mime_part_md5(part));
		(void)gn_buf_append_str(b, " ");
		append_dsp_lang_loc(b, pool, part);
	}
	(void)gn_buf_append_str(b, ")");
}

void imap_append_body(struct gn_buf *b, struct gn_pool *pool, const struct gn_mime_part *part, bool extended)
{
	append_part(b, pool, part, extended, 0);
}
