/*
 * core/mail/dkim.c: the canonical forms and the text of DKIM (RFC 6376),
 * gannet/dkim.h, shared by the signer (dkim-sign.c) and an inbound
 * verifier:
 *
 *   - a header cut into its fields, bounded (GN_DKIM_MAX_FIELDS,
 *     GN_DKIM_MAX_HEADER);
 *   - the simple and relaxed forms of a header field (3.4.1, 3.4.2) and
 *     the data hash over the fields of h= and the signature itself (3.7);
 *   - the simple and relaxed forms of the body (3.4.3, 3.4.4) as a state
 *     machine fed in pieces of any size, straight into SHA-256, so a body
 *     of any size is hashed in constant memory;
 *   - tag lists (3.2) and the DNS key record (3.6.1).
 *
 * Nothing here allocates more than its input's size, nothing recurses.
 */
#include "mail/internal.h"

#include <gnutls/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TAGS 64

const char *gn_dkim_algorithm_name(enum gn_dkim_algorithm alg)
{
	return alg == GN_DKIM_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}

const char *gn_dkim_algorithm_key_type(enum gn_dkim_algorithm alg)
{
	return alg == GN_DKIM_ED25519_SHA256 ? "ed25519" : "rsa";
}

int gn_dkim_algorithm_parse(const char *name, enum gn_dkim_algorithm *alg_r)
{
	if (name == NULL)
		return -1;
	if (strcmp(name, "rsa") == 0 || strcmp(name, "rsa-sha256") == 0)
		*alg_r = GN_DKIM_RSA_SHA256;
	else if (strcmp(name, "ed25519") == 0 || strcmp(name, "ed25519-sha256") == 0)
		*alg_r = GN_DKIM_ED25519_SHA256;
	else
		return -1;
	return 0;
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ---- header fields ---- */

int gn_dkim_header_split(struct gn_pool *pool, const char *header, size_t len,
			 struct gn_dkim_field **fields_r, size_t *count_r,
			 const char **error_r)
{
	if (len > GN_DKIM_MAX_HEADER) {
		*error_r = "message header too large for DKIM (over 1 MiB)";
		return -1;
	}
	/* Count first (up to the empty line), so the array is allocated
	 * once. */
	size_t n = 0;
	for (size_t i = 0; i < len && n <= GN_DKIM_MAX_FIELDS; i++) {
		if (i > 0 && header[i - 1] != '\n')
			continue;
		if (header[i] == '\n' || (header[i] == '\r' && (i + 1 == len || header[i + 1] == '\n')))
			break;
		if (!is_wsp(header[i]))
			n++;
	}
	if (n > GN_DKIM_MAX_FIELDS) {
		*error_r = "message header has too many fields for DKIM (over 1000)";
		return -1;
	}
	struct gn_dkim_field *f = gn_pool_alloc(pool, (n + 1) * sizeof(*f));
	size_t count = 0, pos = 0;
	while (pos < len) {
		/* The line from pos to its LF (or the end). */
		const char *nl = memchr(header + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - header) : len;
		size_t text_end = end > pos && header[end - 1] == '\r' ? end - 1 : end;
		if (text_end == pos) {
			/* The empty line: the header ends here. */
			break;
		}
		if (is_wsp(header[pos])) {
			if (count == 0) {
				*error_r = "message header starts with a continuation line";
				return -1;
			}
			f[count - 1].len = text_end - (size_t)(f[count - 1].data - header);
		} else {
			const char *colon = memchr(header + pos, ':', text_end - pos);
			if (colon == NULL || colon == header + pos) {
				*error_r = "message header has a line that is no header field";
				return -1;
			}
			for (const char *p = header + pos; p < colon; p++)
				if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
					/* RFC 5322 2.2 field names; white space before
					 * the colon (obsolete syntax) is allowed. */
					const char *q = p;
					while (q < colon && is_wsp(*q))
						q++;
					if (q != colon) {
						*error_r = "message header has a field name with a bad character";
						return -1;
					}
					break;
				}
			if (count == GN_DKIM_MAX_FIELDS) {
				*error_r = "message header has too many fields for DKIM (over 1000)";
				return -1;
			}
			f[count].data = header + pos;
			f[count].len = text_end - pos;
			count++;
		}
		pos = end + 1;
	}
	*fields_r = f;
	*count_r = count;
	return 0;
}

/* The length of field's name (without white space before the colon). */
static size_t field_name_len(const char *data, size_t len)
{
	const char *colon = memchr(data, ':', len);
	size_t n = colon ? (size_t)(colon - data) : len;
	while (n > 0 && is_wsp(data[n - 1]))
		n--;
	return n;
}

static bool name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

int gn_dkim_field_is(const struct gn_dkim_field *field, const char *name)
{
	return name_eq(field->data, field_name_len(field->data, field->len), name, strlen(name));
}

int gn_dkim_canon_header(struct gn_buf *out, enum gn_dkim_canon canon,
			 const char *field, size_t len)
{
	if (canon == GN_DKIM_SIMPLE)
		return gn_buf_append(out, field, len);
	/* RFC 6376 3.4.2: the name in lower case, no white space around the
	 * colon, the value unfolded with every run of WSP one SP and none at
	 * its start or end. */
	const char *colon = memchr(field, ':', len);
	size_t nlen = field_name_len(field, len);
	char low[64];	/* the name in lower case, in pieces */
	for (size_t i = 0; i < nlen; i += sizeof(low)) {
		size_t k = nlen - i < sizeof(low) ? nlen - i : sizeof(low);
		for (size_t j = 0; j < k; j++)
			low[j] = lower(field[i + j]);
		if (gn_buf_append(out, low, k) < 0)
			return -1;
	}
	if (gn_buf_append(out, ":", 1) < 0)
		return -1;
	if (colon == NULL)
		return 0;
	size_t i = (size_t)(colon - field) + 1;
	bool space = false, started = false;
	while (i < len) {
		char c = field[i];
		if (c == '\r' || c == '\n' || is_wsp(c)) {
			/* Unfolding drops CRLF; the WSP after it is a run. */
			if (c != '\r' && c != '\n')
				space = true;
			i++;
			continue;
		}
		if (space && started && gn_buf_append(out, " ", 1) < 0)
			return -1;
		space = false;
		started = true;
		/* The run up to the next white space or line end, at once. */
		size_t run = i;
		while (i < len && field[i] != '\r' && field[i] != '\n' && !is_wsp(field[i]))
			i++;
		if (gn_buf_append(out, field + run, i - run) < 0)
			return -1;
	}
	return 0;
}

/* The offsets of the b= tag's value in a DKIM-Signature field: 0 with
 * [*start_r, *end_r), or -1 when it has none. */
static int find_b_value(const char *s, size_t len, size_t *start_r, size_t *end_r)
{
	const char *colon = memchr(s, ':', len);
	if (colon == NULL)
		return -1;
	size_t i = (size_t)(colon - s) + 1;
	while (i < len) {
		size_t spec_end = i;
		while (spec_end < len && s[spec_end] != ';')
			spec_end++;
		size_t a = i;
		while (a < spec_end && (is_wsp(s[a]) || s[a] == '\r' || s[a] == '\n'))
			a++;
		if (a < spec_end && s[a] == 'b') {
			size_t b = a + 1;
			while (b < spec_end && (is_wsp(s[b]) || s[b] == '\r' || s[b] == '\n'))
				b++;
			if (b < spec_end && s[b] == '=') {
				/* RFC 6376 3.5 b=: the value with all surrounding
				 * white space is taken as empty. */
				*start_r = b + 1;
				*end_r = spec_end;
				return 0;
			}
		}
		i = spec_end + 1;
	}
	return -1;
}

int gn_dkim_header_hash(enum gn_dkim_canon canon, const struct gn_dkim_field *fields,
			size_t n_fields, const char *const *names, size_t n_names,
			const char *sig_field, size_t sig_len,
			unsigned char hash_r[GN_DKIM_HASH_SIZE], const char **error_r)
{
	size_t bstart, bend;
	if (find_b_value(sig_field, sig_len, &bstart, &bend) < 0) {
		*error_r = "DKIM-Signature has no b= tag";
		return -1;
	}
	/* Fields used so far, so that a name listed twice takes the next one
	 * up (RFC 6376 5.4.2). */
	bool *used = gn_calloc(n_fields + 1, sizeof(*used));
	struct gn_buf *b = gn_buf_new(0);
	gnutls_hash_hd_t h;
	if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0) {
		gn_free(used);
		gn_buf_free(&b);
		*error_r = "SHA-256 not available";
		return -1;
	}
	for (size_t k = 0; k < n_names; k++) {
		size_t nlen = strlen(names[k]);
		for (size_t i = n_fields; i-- > 0;) {
			if (used[i])
				continue;
			const struct gn_dkim_field *f = &fields[i];
			if (!name_eq(f->data, field_name_len(f->data, f->len), names[k], nlen))
				continue;
			used[i] = true;
			gn_buf_clear(b);
			gn_dkim_canon_header(b, canon, f->data, f->len);
			gn_buf_append(b, "\r\n", 2);
			gnutls_hash(h, gn_buf_data(b), gn_buf_len(b));
			break;
		}
	}
	/* The signature without its b= value, and without a CRLF. */
	struct gn_buf *sig = gn_buf_new(0);
	gn_buf_append(sig, sig_field, bstart);
	gn_buf_append(sig, sig_field + bend, sig_len - bend);
	gn_buf_clear(b);
	gn_dkim_canon_header(b, canon, gn_buf_data(sig), gn_buf_len(sig));
	gnutls_hash(h, gn_buf_data(b), gn_buf_len(b));
	gnutls_hash_deinit(h, hash_r);
	gn_buf_free(&sig);
	gn_buf_free(&b);
	gn_free(used);
	return 0;
}

/* ---- the body ---- */

struct gn_dkim_body {
	enum gn_dkim_canon canon;
	gnutls_hash_hd_t hash;
	struct gn_buf *out;	/* dkim_body_new_buf(): the form itself */
	size_t crlfs;		/* line ends seen, not yet written */
	bool wsp;		/* relaxed: white space seen in the line */
	bool cr;		/* a CR seen, maybe of a CRLF */
	bool any;		/* anything written */
	uint64_t limit;		/* octets of the form hashed (l=); UINT64_MAX: all */
	uint64_t total;		/* octets of the form produced */
	/* Pending output, written in batches. */
	char pend[4096];
	size_t npend;
};

/* Octets of the canonical form, to the hash or the buffer. */
static void body_emit(struct gn_dkim_body *b, const char *data, size_t len)
{
	if (b->out != NULL) {
		gn_buf_append(b->out, data, len);
	} else if (b->total < b->limit) {
		/* RFC 6376 3.4.5, 3.5 l=: only the first l octets of the
		 * canonical body are hashed. */
		uint64_t n = b->limit - b->total;
		gnutls_hash(b->hash, data, n < len ? (size_t)n : len);
	}
	b->total += len;
}

static void body_flush(struct gn_dkim_body *b)
{
	if (b->npend == 0)
		return;
	body_emit(b, b->pend, b->npend);
	b->npend = 0;
}

static void body_put(struct gn_dkim_body *b, char c)
{
	if (b->npend == sizeof(b->pend))
		body_flush(b);
	b->pend[b->npend++] = c;
}

/* A run of octets that are text as they are (no line end, no white space
 * for relaxed), with nothing held back before them. */
static void body_run(struct gn_dkim_body *b, const char *data, size_t len)
{
	if (b->npend + len > sizeof(b->pend)) {
		body_flush(b);
		if (len >= sizeof(b->pend)) {
			body_emit(b, data, len);
			b->any = true;
			return;
		}
	}
	memcpy(b->pend + b->npend, data, len);
	b->npend += len;
	b->any = true;
}

/* Octets that are not text as they are: 1 line ends (both
 * canonicalisations), 2 white space (relaxed only). */
static const unsigned char body_special[256] = {
	['\r'] = 1, ['\n'] = 1, [' '] = 2, ['\t'] = 2,
};

/* Writes the line ends held back: text follows them. */
static void body_text(struct gn_dkim_body *b, char c)
{
	for (; b->crlfs > 0; b->crlfs--) {
		body_put(b, '\r');
		body_put(b, '\n');
	}
	if (b->wsp) {
		body_put(b, ' ');
		b->wsp = false;
	}
	body_put(b, c);
	b->any = true;
}

static struct gn_dkim_body *body_new(enum gn_dkim_canon canon, struct gn_buf *out)
{
	struct gn_dkim_body *b = gn_calloc(1, sizeof(*b));
	b->canon = canon;
	b->out = out;
	b->limit = UINT64_MAX;
	if (out == NULL && gnutls_hash_init(&b->hash, GNUTLS_DIG_SHA256) < 0) {
		/* Only without memory: fatal, as in the allocator. */
		fputs("fatal: dkim: SHA-256 hash could not be set up\n", stderr);
		abort();
	}
	return b;
}

struct gn_dkim_body *gn_dkim_body_new(enum gn_dkim_canon canon)
{
	return body_new(canon, NULL);
}

struct gn_dkim_body *dkim_body_new_buf(enum gn_dkim_canon canon, struct gn_buf *out)
{
	return body_new(canon, out);
}

struct gn_dkim_body *dkim_body_new_limit(enum gn_dkim_canon canon, uint64_t limit)
{
	struct gn_dkim_body *b = body_new(canon, NULL);
	b->limit = limit;
	return b;
}

uint64_t dkim_body_length(const struct gn_dkim_body *b)
{
	return b->total + b->npend;
}

void gn_dkim_body_update(struct gn_dkim_body *b, const void *data, size_t len)
{
	const char *s = data;
	/* Which of body_special's octets end a run of text. */
	unsigned char stop = b->canon == GN_DKIM_RELAXED ? 3 : 1;
	for (size_t i = 0; i < len; i++) {
		if (!b->cr && b->crlfs == 0 && !b->wsp) {
			/* Nothing held back: text as it is goes out in one
			 * piece (most of a body; the loop below is for the
			 * octets around line ends and white space). */
			size_t j = i;
			while (j < len) {
				/* Eight octets at a time while none is under
				 * 0x21: every special octet is (SP, HTAB, CR,
				 * LF).  A word with one goes octet by octet. */
				uint64_t w;
				if (j + 8 <= len) {
					memcpy(&w, s + j, 8);
					if (((w - 0x2121212121212121ULL) & ~w & 0x8080808080808080ULL) == 0) {
						j += 8;
						continue;
					}
				}
				if ((body_special[(unsigned char)s[j]] & stop) == 0) {
					j++;
				} else if (s[j] == ' ' && stop == 3 && j + 1 < len &&
					   (body_special[(unsigned char)s[j + 1]] & stop) == 0) {
					/* One SP between text stays as it is. */
					j += 2;
				} else {
					break;
				}
			}
			if (j > i) {
				body_run(b, s + i, j - i);
				i = j;
				if (i == len)
					break;
			}
		}
		char c = s[i];
		if (b->cr) {
			b->cr = false;
			if (c == '\n') {
				/* RFC 6376 3.4.3, 3.4.4: a line end, held back
				 * until text follows (empty lines at the end are
				 * ignored); white space before it is dropped. */
				b->wsp = false;
				b->crlfs++;
				continue;
			}
			body_text(b, '\r');
		}
		if (c == '\r') {
			b->cr = true;
		} else if (c == '\n') {
			b->wsp = false;
			b->crlfs++;
		} else if (b->canon == GN_DKIM_RELAXED && is_wsp(c)) {
			b->wsp = true;
		} else {
			body_text(b, c);
		}
	}
}

void gn_dkim_body_finish(struct gn_dkim_body *b, unsigned char hash_r[GN_DKIM_HASH_SIZE])
{
	if (b->cr) {
		b->cr = false;
		body_text(b, '\r');
	}
	/* Trailing white space of the last line goes (relaxed); the last
	 * line of text gets its CRLF; an empty body is "" relaxed and CRLF
	 * simple. */
	b->wsp = false;
	if (b->any || b->canon == GN_DKIM_SIMPLE) {
		body_put(b, '\r');
		body_put(b, '\n');
	}
	body_flush(b);
	if (b->out == NULL) {
		gnutls_hash_deinit(b->hash, hash_r);
		b->hash = NULL;
	} else if (hash_r != NULL) {
		memset(hash_r, 0, GN_DKIM_HASH_SIZE);
	}
}

void gn_dkim_body_free(struct gn_dkim_body **body)
{
	if (body == NULL || *body == NULL)
		return;
	if ((*body)->hash != NULL)
		gnutls_hash_deinit((*body)->hash, NULL);
	gn_free(*body);
	*body = NULL;
}

/* ---- tag lists ---- */

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_fws(char c)
{
	return is_wsp(c) || c == '\r' || c == '\n';
}

int gn_dkim_tags_parse(struct gn_pool *pool, const char *s, size_t len,
		       struct gn_dkim_tag **tags_r, size_t *count_r, const char **error_r)
{
	struct gn_dkim_tag *tags = gn_pool_alloc(pool, (MAX_TAGS + 1) * sizeof(*tags));
	size_t n = 0, i = 0;
	for (size_t k = 0; k < len; k++) {
		unsigned char c = (unsigned char)s[k];
		if ((c < 0x20 && !is_fws((char)c)) || c == 0x7f) {
			*error_r = gn_pool_printf(pool, "control character 0x%02x in tag list", c);
			return -1;
		}
	}
	while (i < len) {
		size_t end = i;
		while (end < len && s[end] != ';')
			end++;
		size_t a = i, z = end;
		while (a < z && is_fws(s[a]))
			a++;
		while (z > a && is_fws(s[z - 1]))
			z--;
		if (a == z) {
			/* RFC 6376 3.2: only the last tag-spec may be empty
			 * (a trailing ";", or an empty list). */
			if (end < len) {
				*error_r = "empty tag in tag list";
				return -1;
			}
			break;
		}
		const char *eq = memchr(s + a, '=', z - a);
		if (eq == NULL) {
			*error_r = gn_pool_printf(pool, "tag without \"=\": \"%s\"",
						  gn_pool_strndup(pool, s + a, z - a > 40 ? 40 : z - a));
			return -1;
		}
		size_t ne = (size_t)(eq - s);
		while (ne > a && is_fws(s[ne - 1]))
			ne--;
		/* tag-name = ALPHA *ALNUMPUNC */
		bool good = ne > a && is_alpha(s[a]);
		for (size_t k = a; good && k < ne; k++)
			good = is_alpha(s[k]) || (s[k] >= '0' && s[k] <= '9') || s[k] == '_';
		if (!good) {
			*error_r = gn_pool_printf(pool, "bad tag name \"%s\"",
						  gn_pool_strndup(pool, s + a, ne - a > 40 ? 40 : ne - a));
			return -1;
		}
		size_t va = (size_t)(eq - s) + 1;
		while (va < z && is_fws(s[va]))
			va++;
		const char *name = gn_pool_strndup(pool, s + a, ne - a);
		for (size_t t = 0; t < n; t++)
			if (strcmp(tags[t].name, name) == 0) {
				*error_r = gn_pool_printf(pool, "duplicate tag \"%s\"", name);
				return -1;
			}
		if (n == MAX_TAGS) {
			*error_r = "more than 64 tags in tag list";
			return -1;
		}
		tags[n].name = name;
		tags[n].value = gn_pool_strndup(pool, s + va, z - va);
		n++;
		i = end + 1;
	}
	*tags_r = tags;
	*count_r = n;
	return 0;
}

const char *gn_dkim_tags_get(const struct gn_dkim_tag *tags, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(tags[i].name, name) == 0)
			return tags[i].value;
	return NULL;
}

/* Decodes base64 with folding white space in it: 0, or -1 when another
 * character is there. */
int dkim_b64_decode(struct gn_pool *pool, const char *s, const unsigned char **out_r,
		    size_t *len_r)
{
	size_t len = strlen(s), pads = 0, chars = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (is_fws(c))
			continue;
		if (c == '=') {
			pads++;
			continue;
		}
		if (pads > 0 || !(is_alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return -1;
		chars++;
	}
	if (pads > 2 || (chars + pads) % 4 != 0)
		return -1;
	unsigned char *out = gn_pool_alloc(pool, chars / 4 * 3 + 3);
	*len_r = mime_b64_decode_to(out, s, len);
	*out_r = out;
	return 0;
}

/* Whether the colon-separated list contains want (or "*" when star). */
static bool list_has(const char *list, const char *want, bool star)
{
	const char *p = list;
	while (*p != '\0') {
		while (is_fws(*p) || *p == ':')
			p++;
		const char *e = p;
		while (*e != '\0' && *e != ':' && !is_fws(*e))
			e++;
		size_t n = (size_t)(e - p);
		if (n > 0 && ((n == strlen(want) && strncmp(p, want, n) == 0) ||
			      (star && n == 1 && *p == '*')))
			return true;
		p = e;
	}
	return false;
}

int gn_dkim_key_record_parse(struct gn_pool *pool, const char *record, size_t len,
			     enum gn_dkim_algorithm *alg_r, const unsigned char **key_r,
			     size_t *key_len_r, const char **error_r)
{
	struct gn_dkim_tag *tags;
	size_t n;
	if (gn_dkim_tags_parse(pool, record, len, &tags, &n, error_r) < 0)
		return -1;
	/* RFC 6376 3.6.1: v=, when there, is first and DKIM1. */
	const char *v = gn_dkim_tags_get(tags, n, "v");
	if (v != NULL && (strcmp(tags[0].name, "v") != 0 || strcmp(v, "DKIM1") != 0)) {
		*error_r = "key record: v= must come first and be DKIM1";
		return -1;
	}
	const char *k = gn_dkim_tags_get(tags, n, "k");
	if (k == NULL || strcmp(k, "rsa") == 0) {
		*alg_r = GN_DKIM_RSA_SHA256;
	} else if (strcmp(k, "ed25519") == 0) {
		*alg_r = GN_DKIM_ED25519_SHA256;
	} else {
		*error_r = gn_pool_printf(pool, "key record: unknown key type k=%s", k);
		return -1;
	}
	const char *h = gn_dkim_tags_get(tags, n, "h");
	if (h != NULL && !list_has(h, "sha256", false)) {
		*error_r = "key record: h= does not allow sha256";
		return -1;
	}
	const char *s = gn_dkim_tags_get(tags, n, "s");
	if (s != NULL && !list_has(s, "email", true)) {
		*error_r = "key record: s= does not allow email";
		return -1;
	}
	const char *p = gn_dkim_tags_get(tags, n, "p");
	if (p == NULL) {
		*error_r = "key record: no p= tag";
		return -1;
	}
	const unsigned char *key;
	size_t klen;
	if (dkim_b64_decode(pool, p, &key, &klen) < 0) {
		*error_r = "key record: p= is not base64";
		return -1;
	}
	if (klen == 0)
		return 0;
	if (*alg_r == GN_DKIM_ED25519_SHA256 && klen != 32) {
		*error_r = "key record: an Ed25519 key has 32 octets";
		return -1;
	}
	*key_r = key;
	*key_len_r = klen;
	return 1;
}
