/*
 * core/queue/mtasts-policy.c: MTA-STS's pure parts (RFC 8461), apart from
 * the discovery in mtasts.c so that t/fuzz/fuzz_mtasts.c builds them alone:
 * the _mta-sts TXT record (3.1), the policy text (3.2) with its limits, and
 * the MX host names matched against the policy's patterns (4.1).  No I/O;
 * memory from the caller's pool.
 */
#include "queue/internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *queue_mtasts_mode_name(int mode)
{
	switch (mode) {
	case QUEUE_MTASTS_ENFORCE: return "enforce";
	case QUEUE_MTASTS_TESTING: return "testing";
	default: return "none";
	}
}

int queue_mtasts_mode_parse(const char *s)
{
	if (strcmp(s, "enforce") == 0)
		return QUEUE_MTASTS_ENFORCE;
	if (strcmp(s, "testing") == 0)
		return QUEUE_MTASTS_TESTING;
	if (strcmp(s, "none") == 0)
		return QUEUE_MTASTS_NONE;
	return -1;
}

/* ---- parsing ---- */

static const char *trim(struct gn_pool *pool, const char *s, size_t len)
{
	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	return gn_pool_strndup(pool, s, len);
}

int queue_mtasts_txt_parse(struct gn_pool *pool, const char *text, size_t len, const char **id_r,
			   const char **error_r)
{
	/* RFC 8461 3.1: "v=STSv1;" first, then fields name=value separated
	 * by ";", one of them id=1*32(ALPHA / DIGIT). */
	if (len < 7 || memcmp(text, "v=STSv1", 7) != 0)
		return 0;
	if (memchr(text, '\0', len) != NULL) {
		*error_r = "the record holds a NUL byte";
		return -1;
	}
	const char *id = NULL;
	size_t pos = 7, n = 0;
	while (pos < len && (text[pos] == ' ' || text[pos] == '\t'))
		pos++;
	if (pos < len && text[pos] != ';') {
		*error_r = "v=STSv1 is not followed by \";\"";
		return -1;
	}
	while (pos < len) {
		pos++;	/* the ';' */
		const char *semi = memchr(text + pos, ';', len - pos);
		size_t end = semi != NULL ? (size_t)(semi - text) : len;
		const char *field = trim(pool, text + pos, end - pos);
		pos = end;
		if (field[0] == '\0')
			continue;
		if (++n > 20) {
			*error_r = "too many fields";
			return -1;
		}
		const char *eq = strchr(field, '=');
		if (eq == NULL || eq == field) {
			*error_r = gn_pool_printf(pool, "not a name=value field: %.60s", field);
			return -1;
		}
		if ((size_t)(eq - field) == 2 && strncmp(field, "id", 2) == 0) {
			const char *v = eq + 1;
			size_t vl = strlen(v);
			if (id != NULL) {
				*error_r = "more than one id";
				return -1;
			}
			if (vl == 0 || vl > QUEUE_MTASTS_ID_MAX) {
				*error_r = "the id must have 1 to 32 letters and digits";
				return -1;
			}
			for (size_t i = 0; i < vl; i++)
				if (!isalnum((unsigned char)v[i])) {
					*error_r = "the id must have 1 to 32 letters and digits";
					return -1;
				}
			id = v;
		}
	}
	if (id == NULL) {
		*error_r = "no id";
		return -1;
	}
	*id_r = id;
	return 1;
}

/* RFC 8461 3.2: an mx pattern is a domain name, or "*." and one. */
static bool mx_pattern_valid(const char *p)
{
	if (strncmp(p, "*.", 2) == 0)
		p += 2;
	size_t len = strlen(p), label = 0;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char ch = p[i];
		if (ch == '.' || ch == '\0') {
			if (label == 0 || label > 63)
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)ch) && ch != '-' && ch != '_')
			return false;
		label++;
	}
	return true;
}

int queue_mtasts_policy_parse(struct gn_pool *pool, const char *text, size_t len,
			      struct queue_mtasts_policy *p, const char **error_r)
{
	memset(p, 0, sizeof(*p));
	p->mode = -1;
	p->max_age = -1;
	bool version = false;
	size_t pos = 0, lines = 0;
	p->mx = gn_pool_alloc(pool, QUEUE_MTASTS_MAX_MX * sizeof(*p->mx));
	if (len > QUEUE_MTASTS_BODY_MAX) {
		*error_r = "the policy is larger than 64 KiB";
		return -1;
	}
	if (memchr(text, '\0', len) != NULL) {
		*error_r = "the policy holds a NUL byte";
		return -1;
	}
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - text) : len, l = end - pos;
		const char *line = text + pos;
		pos = nl != NULL ? end + 1 : len;
		if (l > 0 && line[l - 1] == '\r')
			l--;
		if (++lines > QUEUE_MTASTS_MAX_LINES) {
			*error_r = "the policy has too many lines";
			return -1;
		}
		if (l == 0)
			continue;	/* a trailing empty line */
		const char *colon = memchr(line, ':', l);
		if (colon == NULL || colon == line) {
			*error_r = gn_pool_printf(pool, "line %zu is not \"key: value\"", lines);
			return -1;
		}
		size_t kl = (size_t)(colon - line);
		for (size_t i = 0; i < kl; i++)
			/* sts-policy-field-name = 1*32(ALPHA / DIGIT / "_" / "-" / ".") */
			if (!isalnum((unsigned char)line[i]) && line[i] != '_' && line[i] != '-' && line[i] != '.') {
				*error_r = gn_pool_printf(pool, "line %zu: a bad key", lines);
				return -1;
			}
		const char *key = gn_pool_strndup(pool, line, kl);
		const char *val = trim(pool, colon + 1, l - kl - 1);
		if (strcmp(key, "version") == 0) {
			if (version || strcmp(val, "STSv1") != 0) {
				*error_r = version ? "version given twice" : "the version is not STSv1";
				return -1;
			}
			version = true;
		} else if (strcmp(key, "mode") == 0) {
			if (p->mode >= 0) {
				*error_r = "mode given twice";
				return -1;
			}
			if ((p->mode = queue_mtasts_mode_parse(val)) < 0) {
				*error_r = gn_pool_printf(pool, "unknown mode \"%.40s\" (enforce, testing, none)", val);
				return -1;
			}
		} else if (strcmp(key, "max_age") == 0) {
			size_t vl = strlen(val);
			if (p->max_age >= 0) {
				*error_r = "max_age given twice";
				return -1;
			}
			/* 1*10DIGIT, at most 31557600 */
			bool digits = vl > 0 && vl <= 10;
			for (size_t i = 0; digits && i < vl; i++)
				digits = isdigit((unsigned char)val[i]) != 0;
			if (!digits || (p->max_age = strtoll(val, NULL, 10)) > QUEUE_MTASTS_MAX_AGE_MAX) {
				p->max_age = -1;
				*error_r = "max_age must be a number of seconds up to 31557600";
				return -1;
			}
		} else if (strcmp(key, "mx") == 0) {
			if (!mx_pattern_valid(val)) {
				*error_r = gn_pool_printf(pool, "not an mx pattern: \"%.80s\"", val);
				return -1;
			}
			if (p->n_mx >= QUEUE_MTASTS_MAX_MX) {
				*error_r = "more than 100 mx patterns";
				return -1;
			}
			char *lower = gn_pool_strdup(pool, val);
			for (char *c = lower; *c != '\0'; c++)
				*c = (char)tolower((unsigned char)*c);
			p->mx[p->n_mx++] = lower;
		}
		/* Other keys: extensions, ignored (RFC 8461 3.2). */
	}
	if (!version) {
		*error_r = "no version";
		return -1;
	}
	if (p->mode < 0) {
		*error_r = "no mode";
		return -1;
	}
	if (p->max_age < 0) {
		*error_r = "no max_age";
		return -1;
	}
	if (p->n_mx == 0 && p->mode != QUEUE_MTASTS_NONE) {
		*error_r = "no mx pattern";
		return -1;
	}
	return 0;
}

bool queue_mtasts_mx_match(const struct queue_mtasts_policy *p, const char *host)
{
	size_t hl = strlen(host);
	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	for (size_t i = 0; i < p->n_mx; i++) {
		const char *pat = p->mx[i];
		if (strncmp(pat, "*.", 2) == 0) {
			/* RFC 8461 4.1: the wildcard is the leftmost label only
			 * ("*.example.com" matches "mx.example.com", not
			 * "a.mx.example.com" nor "example.com"). */
			size_t rl = strlen(pat + 1);	/* ".example.com" */
			if (hl <= rl || strncasecmp(host + hl - rl, pat + 1, rl) != 0)
				continue;
			if (memchr(host, '.', hl - rl) == NULL)
				return true;
		} else if (strlen(pat) == hl && strncasecmp(host, pat, hl) == 0) {
			return true;
		}
	}
	return false;
}
