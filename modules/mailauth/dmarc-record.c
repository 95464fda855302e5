/*
 * modules/mailauth/dmarc-record.c: DMARC records (RFC 7489 6.3, 6.4): the
 * selection test (dmarc_record_is_dmarc()) and the tag-list parser
 * (dmarc_record_parse()).  Pure: no DNS, no loop; t/unit/test_dmarc.c and
 * t/fuzz/fuzz_dmarc.c drive it directly, dmarc.c uses it on what the DNS
 * answers.
 */
#include "dmarc.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* ---- records ---- */

const char *dmarc_policy_name(int policy)
{
	switch (policy) {
	case DMARC_POLICY_NONE: return "none";
	case DMARC_POLICY_QUARANTINE: return "quarantine";
	case DMARC_POLICY_REJECT: return "reject";
	default: return "";
	}
}

const char *dmarc_result_name(int result)
{
	static const char *const names[] = { "none", "pass", "fail", "temperror", "permerror" };
	return result >= 0 && result <= DMARC_PERMERROR ? names[result] : "?";
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 6376 3.2 FWS: folding within a record read from a file is taken as
 * white space too. */
static bool is_fws(char c)
{
	return is_wsp(c) || c == '\r' || c == '\n';
}

bool dmarc_record_is_dmarc(const char *s, size_t len)
{
	size_t i = 0;
	if (len < 1 || (s[0] != 'v' && s[0] != 'V'))
		return false;
	i = 1;
	while (i < len && is_wsp(s[i]))
		i++;
	if (i >= len || s[i] != '=')
		return false;
	i++;
	while (i < len && is_wsp(s[i]))
		i++;
	/* RFC 7489 6.4: dmarc-version = "v" *WSP "=" *WSP %x44 %x4d %x41 %x52
	 * %x43 %x31: "DMARC1" in upper case only. */
	if (len - i < 6 || memcmp(s + i, "DMARC1", 6) != 0)
		return false;
	i += 6;
	while (i < len && is_wsp(s[i]))
		i++;
	return i == len || s[i] == ';';
}

static int policy_value(const char *v)
{
	/* RFC 7489 6.4: the values are literals, case-insensitive as ABNF
	 * strings are. */
	if (strcasecmp(v, "none") == 0)
		return DMARC_POLICY_NONE;
	if (strcasecmp(v, "quarantine") == 0)
		return DMARC_POLICY_QUARANTINE;
	if (strcasecmp(v, "reject") == 0)
		return DMARC_POLICY_REJECT;
	return DMARC_POLICY_UNSET;
}

/* RFC 7489 6.4: dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ],
 * a comma-separated list.  Valid here: at least one element with a scheme
 * (ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":") and something after it. */
static bool valid_uri_list(const char *v)
{
	const char *p = v;
	while (*p != '\0') {
		const char *e = strchr(p, ',');
		size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
		while (n > 0 && is_wsp(*p)) {
			p++;
			n--;
		}
		size_t i = 0;
		if (n > 0 && isalpha((unsigned char)p[0])) {
			for (i = 1; i < n && (isalnum((unsigned char)p[i]) || p[i] == '+' ||
					      p[i] == '-' || p[i] == '.'); i++)
				;
			if (i < n && p[i] == ':' && i + 1 < n && !is_wsp(p[i + 1]))
				return true;
		}
		if (e == NULL)
			break;
		p = e + 1;
	}
	return false;
}

static bool valid_tag_name(const char *s, size_t n)
{
	/* RFC 6376 3.2: tag-name = ALPHA *ALNUMPUNC. */
	if (n == 0 || !isalpha((unsigned char)s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

int dmarc_record_parse(struct gn_pool *pool, const char *text, size_t len,
		       struct dmarc_record **rec_r, const char **error_r)
{
	if (len > DMARC_MAX_RECORD) {
		*error_r = gn_pool_printf(pool, "the record is longer than %d bytes", DMARC_MAX_RECORD);
		return -1;
	}
	if (memchr(text, '\0', len) != NULL) {
		*error_r = "the record holds a NUL byte";
		return -1;
	}
	struct dmarc_record *rec = gn_pool_alloc(pool, sizeof(*rec));
	rec->pct = 100;
	rec->adkim = rec->aspf = 'r';
	rec->tags = gn_pool_alloc(pool, DMARC_MAX_TAGS * sizeof(*rec->tags));
	const char *p_value = NULL, *sp_value = NULL;
	size_t i = 0;
	while (i < len) {
		size_t start = i;
		while (i < len && text[i] != ';')
			i++;
		size_t s = start, e = i;
		if (i < len)
			i++;	/* the ';' */
		while (s < e && is_fws(text[s]))
			s++;
		while (e > s && is_fws(text[e - 1]))
			e--;
		if (s == e)
			continue;	/* RFC 6376 3.2: a trailing ";" (or an empty spec) */
		const char *eq = memchr(text + s, '=', e - s);
		if (eq == NULL) {
			*error_r = gn_pool_printf(pool, "\"%.*s\" is not tag=value", (int)(e - s), text + s);
			return -1;
		}
		size_t ne = (size_t)(eq - text);
		size_t vs = ne + 1;
		while (ne > s && is_fws(text[ne - 1]))
			ne--;
		while (vs < e && is_fws(text[vs]))
			vs++;
		if (!valid_tag_name(text + s, ne - s)) {
			*error_r = gn_pool_printf(pool, "\"%.*s\": a bad tag name", (int)(e - s), text + s);
			return -1;
		}
		if (rec->n_tags == DMARC_MAX_TAGS) {
			*error_r = gn_pool_printf(pool, "more than %d tags", DMARC_MAX_TAGS);
			return -1;
		}
		const char *name = gn_pool_strndup(pool, text + s, ne - s);
		for (size_t k = 0; k < rec->n_tags; k++) {
			if (strcmp(rec->tags[k].name, name) == 0) {
				/* RFC 6376 3.2: a tag twice makes the list invalid. */
				*error_r = gn_pool_printf(pool, "the tag %s is there twice", name);
				return -1;
			}
		}
		struct dmarc_tag *t = &rec->tags[rec->n_tags++];
		t->name = name;
		t->value = gn_pool_strndup(pool, text + vs, e - vs);
		t->known = true;
		const char *v = t->value;
		/* RFC 7489 6.3: tag names are case-sensitive ("v", "p", ...). */
		if (strcmp(name, "v") == 0) {
			if (rec->n_tags != 1 || strcmp(v, "DMARC1") != 0) {
				*error_r = "v=DMARC1 is not the first tag";
				return -1;
			}
		} else if (strcmp(name, "p") == 0) {
			p_value = v;
			rec->p = policy_value(v);
		} else if (strcmp(name, "sp") == 0) {
			sp_value = v;
			rec->sp = policy_value(v);
		} else if (strcmp(name, "pct") == 0) {
			/* RFC 7489 6.3: an integer 0-100; invalid: the default. */
			size_t n = strlen(v);
			unsigned long x = 0;
			bool ok = n > 0 && n <= 3;
			for (size_t k = 0; ok && k < n; k++) {
				if (!isdigit((unsigned char)v[k]))
					ok = false;
				else
					x = x * 10 + (unsigned long)(v[k] - '0');
			}
			if (ok && x <= 100)
				rec->pct = (unsigned)x;
			else if (rec->ignored == NULL)
				rec->ignored = gn_pool_printf(pool, "pct=%s", v);
		} else if (strcmp(name, "adkim") == 0 || strcmp(name, "aspf") == 0) {
			char *mode = name[1] == 'd' ? &rec->adkim : &rec->aspf;
			if (strcmp(v, "r") == 0 || strcmp(v, "s") == 0)
				*mode = v[0];
			else if (rec->ignored == NULL)
				rec->ignored = gn_pool_printf(pool, "%s=%s", name, v);
		} else if (strcmp(name, "rua") == 0) {
			rec->rua = v;
		} else if (strcmp(name, "ruf") == 0) {
			rec->ruf = v;
		} else if (strcmp(name, "fo") != 0 && strcmp(name, "rf") != 0 &&
			   strcmp(name, "ri") != 0) {
			t->known = false;	/* RFC 7489 6.3: ignored */
		}
	}
	if (rec->n_tags == 0 || strcmp(rec->tags[0].name, "v") != 0) {
		*error_r = "v=DMARC1 is not the first tag";
		return -1;
	}
	/* RFC 7489 6.6.3 step 6: p missing or invalid, or sp invalid: with a
	 * valid rua, as if "v=DMARC1; p=none"; without, no policy. */
	bool bad_p = rec->p == DMARC_POLICY_UNSET;
	bool bad_sp = sp_value != NULL && rec->sp == DMARC_POLICY_UNSET;
	if (bad_p || bad_sp) {
		if (rec->rua == NULL || !valid_uri_list(rec->rua)) {
			*error_r = bad_p ? (p_value == NULL ? "no p= tag (and no valid rua=)" :
					    gn_pool_printf(pool, "p=%s is not none, quarantine or reject "
							   "(and no valid rua=)", p_value)) :
				gn_pool_printf(pool, "sp=%s is not none, quarantine or reject "
					       "(and no valid rua=)", sp_value);
			return -1;
		}
		rec->p = DMARC_POLICY_NONE;
		rec->sp = DMARC_POLICY_UNSET;
		rec->pct = 100;
		rec->adkim = rec->aspf = 'r';
		rec->p_from_rua = true;
	}
	*rec_r = rec;
	return 0;
}

