/*
 * modules/imap/cmd-search.c: SEARCH and UID SEARCH (RFC 9051 6.4.4,
 * RFC 3501 6.4.4) with ESEARCH (RFC 4731), SEARCHRES (RFC 5182), WITHIN
 * (RFC 5032), the SAVEDATE keys (RFC 8514) and CONDSTORE's MODSEQ key
 * (RFC 7162 3.1.5).
 *
 * A command is parsed into a tree of keys, then answered by the store in
 * SQL (gannet/store.h, gn_store_query_*): flags, keywords, sizes, dates,
 * UIDs and sequence sets, and the header fields the store keeps as
 * columns (Subject, From, Message-ID).  Keys SQL cannot answer (BODY,
 * TEXT, HEADER of other fields, TO, CC, BCC: "scan keys") take two
 * queries:
 *
 *   1. the candidates: the tree with each scan key taken as matching
 *      where that can only widen the result (TRUE where it is under an
 *      even number of NOTs, FALSE under an odd one), so every message
 *      that matches is among them;
 *   2. the candidates are read (search-scan.c), at most
 *      imap.search_scan_limit bytes of them in all (NO [LIMIT] past it),
 *      and each scan key becomes the set of candidates it matched;
 *   3. the tree runs again with those sets in place of the scan keys,
 *      which is exact: the answer is among the candidates.
 *
 * Results are the messages of the session's view (a message delivered
 * since the client last heard has no number yet and is left out).  No
 * EXPUNGE is sent during SEARCH (RFC 9051 7.5.1); UID SEARCH reports
 * changes after its result, as UID commands may.
 *
 * Dates (BEFORE, ON, SINCE, SENT*, SAVED*) compare days in UTC, see
 * gannet/store.h.
 */
#include "search.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Nesting of keys (parentheses, NOT, OR) a search may have: far more
 * than a client writes, and the store's limit is above it. */
#define SEARCH_DEPTH_MAX 50
/* Scan keys in one search. */
#define SEARCH_SCAN_KEYS_MAX 32

enum key_kind {
	K_ALL = 0,
	K_NONE,		/* RECENT, NEW: no \Recent is kept */
	K_AND,		/* a parenthesised list, or the top level */
	K_OR,
	K_NOT,
	K_FLAGS,	/* flags set (or not: neg) */
	K_KEYWORD,
	K_SIZE,
	K_DATE,
	K_TIME,		/* OLDER, YOUNGER */
	K_MODSEQ,
	K_COLUMN,	/* a header field the store keeps */
	K_UIDS,		/* UID ranges (sequence sets, UID, $) */
	K_SCAN,
};

struct key {
	enum key_kind kind;
	struct key **sub;	/* AND: any number; OR: 2; NOT: 1 */
	size_t n_sub;
	bool neg;		/* K_FLAGS, K_KEYWORD: not set; K_SIZE: smaller;
				   K_TIME: younger */
	unsigned flags;
	const char *text;	/* keyword, column text */
	uint64_t num;		/* size, modseq */
	time_t t;		/* date (00:00 UTC), time */
	enum gn_store_query_date date_which;
	enum gn_store_query_cmp date_cmp;
	enum gn_store_query_header column;
	uint32_t *ranges;	/* K_UIDS: pairs */
	size_t n_ranges;
	size_t scan;		/* K_SCAN: index into the scan keys */
};

/* RETURN options (RFC 4731 3.1, RFC 5182). */
enum {
	R_MIN = 1 << 0,
	R_MAX = 1 << 1,
	R_ALL = 1 << 2,
	R_COUNT = 1 << 3,
	R_SAVE = 1 << 4,
};

struct search {
	struct imap_session *s;
	struct gn_pool *pool;
	bool uid;
	const struct imap_arg *args;
	size_t n, pos;
	struct key *root;
	bool has_modseq;
	struct search_scan_key scan[SEARCH_SCAN_KEYS_MAX];
	size_t n_scan;
	/* After the candidate pass: for each scan key, the UIDs it matched. */
	uint32_t *scan_uids[SEARCH_SCAN_KEYS_MAX];
	size_t scan_n[SEARCH_SCAN_KEYS_MAX];
	/* A parse error: the response code (or NULL) and the text. */
	const char *code;
	const char *error;
};

static struct key *key_new(struct search *se, enum key_kind kind)
{
	struct key *k = gn_pool_alloc(se->pool, sizeof(*k));
	k->kind = kind;
	return k;
}

static bool fail(struct search *se, const char *code, const char *error)
{
	if (se->error == NULL) {
		se->code = code;
		se->error = error;
	}
	return false;
}

/* ---- arguments ---- */

static const struct imap_arg *next_arg(struct search *se, const char *what)
{
	if (se->pos >= se->n) {
		fail(se, NULL, gn_pool_printf(se->pool, "%s expected", what));
		return NULL;
	}
	return &se->args[se->pos++];
}

static bool arg_astring(struct search *se, const char *key, const char **s_r)
{
	const struct imap_arg *a = next_arg(se, gn_pool_printf(se->pool, "A string after %s", key));
	size_t len;
	if (a == NULL)
		return false;
	if (!imap_arg_astring(a, s_r, &len) || strlen(*s_r) != len)
		return fail(se, NULL, gn_pool_printf(se->pool, "A string expected after %s", key));
	return true;
}

/* number (RFC 9051 number64 for sizes and modseqs): digits only. */
static bool arg_number(struct search *se, const char *key, bool nonzero, uint64_t max, uint64_t *n_r)
{
	const struct imap_arg *a = next_arg(se, gn_pool_printf(se->pool, "A number after %s", key));
	if (a == NULL)
		return false;
	uint64_t n = 0;
	bool ok = a->type == IMAP_ARG_ATOM && a->len > 0 && a->len <= 20;
	for (size_t i = 0; ok && i < a->len; i++) {
		unsigned d = (unsigned)(a->str[i] - '0');
		ok = d <= 9 && n <= (max - d) / 10;
		n = n * 10 + d;
	}
	if (!ok || (nonzero && n == 0))
		return fail(se, NULL, gn_pool_printf(se->pool, "A number expected after %s", key));
	*n_r = n;
	return true;
}

/* RFC 9051 9: date = date-text / DQUOTE date-text DQUOTE,
 * date-text = date-day "-" date-month "-" date-year; the day's 00:00 UTC. */
static bool parse_date(const char *s, time_t *t_r)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	size_t dl = 0;
	while (s[dl] >= '0' && s[dl] <= '9')
		dl++;
	if (dl < 1 || dl > 2 || s[dl] != '-' || strlen(s + dl) != 9 || s[dl + 4] != '-')
		return false;
	int day = atoi(s);
	int mon = -1;
	for (int i = 0; i < 12; i++)
		if (strncasecmp(s + dl + 1, months + 3 * i, 3) == 0)
			mon = i;
	const char *y = s + dl + 5;
	for (int i = 0; i < 4; i++)
		if (y[i] < '0' || y[i] > '9')
			return false;
	if (mon < 0 || day < 1)
		return false;
	struct tm tm = { 0 };
	tm.tm_mday = day;
	tm.tm_mon = mon;
	tm.tm_year = atoi(y) - 1900;
	time_t t = timegm(&tm);
	/* timegm() normalises 31-Feb-2024 into March: refuse it. */
	struct tm back;
	if (gmtime_r(&t, &back) == NULL || back.tm_mday != day || back.tm_mon != mon)
		return false;
	*t_r = t;
	return true;
}

static bool arg_date(struct search *se, const char *key, time_t *t_r)
{
	const struct imap_arg *a = next_arg(se, gn_pool_printf(se->pool, "A date after %s", key));
	if (a == NULL)
		return false;
	if ((a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_STRING) || !parse_date(a->str, t_r))
		return fail(se, NULL, gn_pool_printf(se->pool, "A date (d-Mon-yyyy) expected after %s", key));
	return true;
}

/* ---- sets ---- */

/* Ranges of UIDs from the saved result ($, RFC 5182), sorted. */
static void saved_ranges(struct search *se, struct key *k)
{
	const struct imap_view *v = se->s->sel;
	k->ranges = gn_pool_alloc(se->pool, (2 * v->n_saved + 2) * sizeof(*k->ranges));
	k->n_ranges = 0;
	for (size_t i = 0; i < v->n_saved; i++) {
		uint32_t u = v->saved[i];
		if (k->n_ranges > 0 && k->ranges[2 * k->n_ranges - 1] + 1 == u) {
			k->ranges[2 * k->n_ranges - 1] = u;
			continue;
		}
		k->ranges[2 * k->n_ranges] = u;
		k->ranges[2 * k->n_ranges + 1] = u;
		k->n_ranges++;
	}
}

/* A sequence set (msn true) or a UID set as UID ranges.  A message number
 * maps to the UID at that position, so a range of numbers is the range of
 * UIDs between its ends' UIDs: the view holds every UID up to its last.
 * Numbers past the last message match nothing. */
static struct key *set_key(struct search *se, const char *str, bool msn)
{
	struct key *k = key_new(se, K_UIDS);
	if (strcmp(str, "$") == 0) {
		saved_ranges(se, k);
		return k;
	}
	const struct imap_view *v = se->s->sel;
	uint32_t star = v->count == 0 ? 0 : msn ? (uint32_t)v->count : v->uids[v->count - 1];
	struct imap_seqset set;
	if (imap_seqset_parse(se->pool, str, star, &set) < 0) {
		fail(se, NULL, msn ? "Bad sequence set" : "Bad UID set");
		return NULL;
	}
	k->ranges = gn_pool_alloc(se->pool, (2 * set.count + 2) * sizeof(*k->ranges));
	for (size_t i = 0; i < set.count; i++) {
		uint32_t lo = set.ranges[i].lo, hi = set.ranges[i].hi;
		if (msn) {
			if (lo == 0 || lo > v->count)
				continue;
			if (hi > v->count)
				hi = (uint32_t)v->count;
			lo = v->uids[lo - 1];
			hi = v->uids[hi - 1];
		}
		k->ranges[2 * k->n_ranges] = lo;
		k->ranges[2 * k->n_ranges + 1] = hi;
		k->n_ranges++;
	}
	return k;
}

static bool is_set(const struct imap_arg *a)
{
	if (a->type != IMAP_ARG_ATOM)
		return false;
	if (strcmp(a->str, "$") == 0)
		return true;
	return strspn(a->str, "0123456789:,*") == a->len && a->len > 0;
}

/* ---- keys ---- */

static struct key *parse_key(struct search *se, unsigned depth);

static struct key *parse_list(struct search *se, const struct imap_arg *list, unsigned count,
			      unsigned depth)
{
	struct key *k = key_new(se, K_AND);
	k->sub = gn_pool_alloc(se->pool, (count + 1) * sizeof(*k->sub));
	const struct imap_arg *args = se->args;
	size_t n = se->n, pos = se->pos;
	se->args = list;
	se->n = count;
	se->pos = 0;
	while (se->pos < se->n) {
		struct key *c = parse_key(se, depth + 1);
		if (c == NULL)
			return NULL;
		k->sub[k->n_sub++] = c;
	}
	se->args = args;
	se->n = n;
	se->pos = pos;
	if (k->n_sub == 0) {
		fail(se, NULL, "An empty list of search keys");
		return NULL;
	}
	return k;
}

static struct key *flags_key(struct search *se, unsigned flags, bool neg)
{
	struct key *k = key_new(se, K_FLAGS);
	k->flags = flags;
	k->neg = neg;
	return k;
}

static struct key *scan_key(struct search *se, enum search_scan_kind kind, const char *field,
			    const char *text)
{
	if (se->n_scan == SEARCH_SCAN_KEYS_MAX) {
		fail(se, "LIMIT", "Too many HEADER, BODY, TEXT, TO, CC, BCC keys in one search");
		return NULL;
	}
	struct key *k = key_new(se, K_SCAN);
	k->scan = se->n_scan;
	se->scan[se->n_scan].kind = kind;
	se->scan[se->n_scan].field = field;
	se->scan[se->n_scan].text = text;
	se->n_scan++;
	return k;
}

/* HEADER, and the keys that are HEADER of one field: a column when the
 * store keeps the field, else a scan key. */
static struct key *header_key(struct search *se, const char *field, const char *text)
{
	static const struct {
		const char *name;
		enum gn_store_query_header column;
	} columns[] = {
		{ "subject", GN_STORE_QUERY_SUBJECT },
		{ "from", GN_STORE_QUERY_FROM },
		{ "message-id", GN_STORE_QUERY_MESSAGE_ID },
	};
	for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++) {
		if (strcasecmp(field, columns[i].name) != 0)
			continue;
		struct key *k = key_new(se, K_COLUMN);
		k->column = columns[i].column;
		k->text = text;
		return k;
	}
	return scan_key(se, SCAN_HEADER, field, text);
}

static struct key *date_key(struct search *se, const char *name, enum gn_store_query_date which,
			    enum gn_store_query_cmp cmp)
{
	struct key *k = key_new(se, K_DATE);
	k->date_which = which;
	k->date_cmp = cmp;
	return arg_date(se, name, &k->t) ? k : NULL;
}

/* RFC 7162 3.1.5: "MODSEQ" SP [search-modseq-ext SP] mod-sequence-valzer,
 * search-modseq-ext = entry-name SP entry-type-req: the entry (one flag's
 * modseq) is accepted and the message's modseq used, which is never
 * smaller than any of its flags'. */
static struct key *modseq_key(struct search *se)
{
	if (se->pos + 2 < se->n && (se->args[se->pos].type == IMAP_ARG_STRING ||
				    se->args[se->pos].type == IMAP_ARG_LITERAL)) {
		const char *type = se->args[se->pos + 1].str;
		if (strncasecmp(se->args[se->pos].str, "/flags/", 7) != 0 || type == NULL ||
		    (strcasecmp(type, "priv") != 0 && strcasecmp(type, "shared") != 0 &&
		     strcasecmp(type, "all") != 0)) {
			fail(se, NULL, "MODSEQ takes an entry name \"/flags/...\" and priv, shared or all");
			return NULL;
		}
		se->pos += 2;
	}
	struct key *k = key_new(se, K_MODSEQ);
	if (!arg_number(se, "MODSEQ", false, INT64_MAX, &k->num))
		return NULL;
	se->has_modseq = true;
	return k;
}

static struct key *parse_key(struct search *se, unsigned depth)
{
	if (depth > SEARCH_DEPTH_MAX) {
		fail(se, "LIMIT", "Search keys nested too deeply");
		return NULL;
	}
	const struct imap_arg *a = next_arg(se, "A search key");
	if (a == NULL)
		return NULL;
	if (a->type == IMAP_ARG_LIST)
		return parse_list(se, a->list, a->count, depth);
	if (is_set(a))
		return set_key(se, a->str, true);
	if (a->type != IMAP_ARG_ATOM) {
		fail(se, NULL, "A search key expected");
		return NULL;
	}
	const char *w = a->str;
	const char *text;
	struct key *k;
	static const struct {
		const char *name;
		unsigned flag;
		bool neg;
	} flag_keys[] = {
		{ "ANSWERED", GN_STORE_ANSWERED, false }, { "DELETED", GN_STORE_DELETED, false },
		{ "DRAFT", GN_STORE_DRAFT, false },	  { "FLAGGED", GN_STORE_FLAGGED, false },
		{ "SEEN", GN_STORE_SEEN, false },	  { "UNANSWERED", GN_STORE_ANSWERED, true },
		{ "UNDELETED", GN_STORE_DELETED, true },  { "UNDRAFT", GN_STORE_DRAFT, true },
		{ "UNFLAGGED", GN_STORE_FLAGGED, true },  { "UNSEEN", GN_STORE_SEEN, true },
		/* RFC 3501: OLD is not \Recent, which no message is. */
		{ "OLD", 0, true },
	};
	for (size_t i = 0; i < sizeof(flag_keys) / sizeof(flag_keys[0]); i++)
		if (strcasecmp(w, flag_keys[i].name) == 0)
			return flag_keys[i].flag == 0 ? key_new(se, K_ALL) :
				flags_key(se, flag_keys[i].flag, flag_keys[i].neg);
	/* RFC 8514 4.3: the save date is kept for every mailbox. */
	if (strcasecmp(w, "ALL") == 0 || strcasecmp(w, "SAVEDATESUPPORTED") == 0)
		return key_new(se, K_ALL);
	/* RFC 3501: RECENT, and NEW (RECENT UNSEEN): no message is \Recent
	 * (IMAP4rev2 dropped it; the store keeps none). */
	if (strcasecmp(w, "RECENT") == 0 || strcasecmp(w, "NEW") == 0)
		return key_new(se, K_NONE);
	if (strcasecmp(w, "NOT") == 0) {
		k = key_new(se, K_NOT);
		k->sub = gn_pool_alloc(se->pool, sizeof(*k->sub));
		k->n_sub = 1;
		return (k->sub[0] = parse_key(se, depth + 1)) != NULL ? k : NULL;
	}
	if (strcasecmp(w, "OR") == 0) {
		k = key_new(se, K_OR);
		k->sub = gn_pool_alloc(se->pool, 2 * sizeof(*k->sub));
		k->n_sub = 2;
		if ((k->sub[0] = parse_key(se, depth + 1)) == NULL || (k->sub[1] = parse_key(se, depth + 1)) == NULL)
			return NULL;
		return k;
	}
	if (strcasecmp(w, "KEYWORD") == 0 || strcasecmp(w, "UNKEYWORD") == 0) {
		const struct imap_arg *f = next_arg(se, "A keyword");
		if (f == NULL)
			return NULL;
		/* flag-keyword is an atom: no "\", no list or quoted
		 * specials (the parser took those apart already). */
		if ((f->type != IMAP_ARG_ATOM && f->type != IMAP_ARG_NIL) || strchr(f->str, '\\') != NULL ||
		    strpbrk(f->str, "%*]") != NULL) {
			fail(se, NULL, "A keyword (an atom) expected");
			return NULL;
		}
		k = key_new(se, K_KEYWORD);
		k->text = f->str;
		k->neg = w[0] == 'U' || w[0] == 'u';
		return k;
	}
	if (strcasecmp(w, "LARGER") == 0 || strcasecmp(w, "SMALLER") == 0) {
		k = key_new(se, K_SIZE);
		k->neg = strcasecmp(w, "SMALLER") == 0;
		return arg_number(se, w, false, INT64_MAX, &k->num) ? k : NULL;
	}
	/* RFC 5032: OLDER and YOUNGER, in seconds from now. */
	if (strcasecmp(w, "OLDER") == 0 || strcasecmp(w, "YOUNGER") == 0) {
		k = key_new(se, K_TIME);
		uint64_t secs;
		if (!arg_number(se, w, true, UINT32_MAX, &secs))
			return NULL;
		k->neg = strcasecmp(w, "YOUNGER") == 0;
		k->t = time(NULL) - (time_t)secs;
		return k;
	}
	static const struct {
		const char *name;
		enum gn_store_query_date which;
		enum gn_store_query_cmp cmp;
	} date_keys[] = {
		{ "BEFORE", GN_STORE_QUERY_INTERNAL, GN_STORE_QUERY_BEFORE },
		{ "ON", GN_STORE_QUERY_INTERNAL, GN_STORE_QUERY_ON },
		{ "SINCE", GN_STORE_QUERY_INTERNAL, GN_STORE_QUERY_SINCE },
		{ "SENTBEFORE", GN_STORE_QUERY_SENT, GN_STORE_QUERY_BEFORE },
		{ "SENTON", GN_STORE_QUERY_SENT, GN_STORE_QUERY_ON },
		{ "SENTSINCE", GN_STORE_QUERY_SENT, GN_STORE_QUERY_SINCE },
		{ "SAVEDBEFORE", GN_STORE_QUERY_SAVED, GN_STORE_QUERY_BEFORE },
		{ "SAVEDON", GN_STORE_QUERY_SAVED, GN_STORE_QUERY_ON },
		{ "SAVEDSINCE", GN_STORE_QUERY_SAVED, GN_STORE_QUERY_SINCE },
	};
	for (size_t i = 0; i < sizeof(date_keys) / sizeof(date_keys[0]); i++)
		if (strcasecmp(w, date_keys[i].name) == 0)
			return date_key(se, date_keys[i].name, date_keys[i].which, date_keys[i].cmp);
	if (strcasecmp(w, "SUBJECT") == 0 || strcasecmp(w, "FROM") == 0 || strcasecmp(w, "TO") == 0 ||
	    strcasecmp(w, "CC") == 0 || strcasecmp(w, "BCC") == 0)
		return arg_astring(se, w, &text) ? header_key(se, gn_pool_strdup(se->pool, w), text) : NULL;
	if (strcasecmp(w, "HEADER") == 0) {
		const char *field;
		if (!arg_astring(se, "HEADER", &field) || !arg_astring(se, "HEADER field", &text))
			return NULL;
		return header_key(se, field, text);
	}
	if (strcasecmp(w, "BODY") == 0 || strcasecmp(w, "TEXT") == 0) {
		if (!arg_astring(se, w, &text))
			return NULL;
		return scan_key(se, strcasecmp(w, "BODY") == 0 ? SCAN_BODY : SCAN_TEXT, NULL, text);
	}
	if (strcasecmp(w, "UID") == 0) {
		const struct imap_arg *u = next_arg(se, "A UID set after UID");
		if (u == NULL)
			return NULL;
		if (!is_set(u)) {
			fail(se, NULL, "A UID set expected after UID");
			return NULL;
		}
		return set_key(se, u->str, false);
	}
	if (strcasecmp(w, "MODSEQ") == 0)
		return modseq_key(se);
	fail(se, NULL, gn_pool_printf(se->pool, "Unknown search key %s", w));
	return NULL;
}

/* ---- to the store ---- */

enum pass {
	PASS_PLAIN,		/* no scan keys */
	PASS_CANDIDATES,	/* scan keys as TRUE/FALSE, widening */
	PASS_FINAL,		/* scan keys as the UIDs they matched */
};

static void compile(struct search *se, struct gn_store_query *q, const struct key *k, enum pass pass,
		    bool negated)
{
	switch (k->kind) {
	case K_ALL:
		gn_store_query_and(q);
		gn_store_query_end(q);
		break;
	case K_NONE:
		gn_store_query_or(q);
		gn_store_query_end(q);
		break;
	case K_AND:
	case K_OR:
	case K_NOT:
		if (k->kind == K_AND)
			gn_store_query_and(q);
		else if (k->kind == K_OR)
			gn_store_query_or(q);
		else
			gn_store_query_not(q);
		for (size_t i = 0; i < k->n_sub; i++)
			compile(se, q, k->sub[i], pass, negated != (k->kind == K_NOT));
		gn_store_query_end(q);
		break;
	case K_FLAGS:
		gn_store_query_flags(q, k->flags, !k->neg);
		break;
	case K_KEYWORD:
		gn_store_query_keyword(q, k->text, !k->neg);
		break;
	case K_SIZE:
		gn_store_query_size(q, !k->neg, k->num);
		break;
	case K_DATE:
		gn_store_query_date(q, k->date_which, k->date_cmp, k->t);
		break;
	case K_TIME:
		gn_store_query_time(q, !k->neg, k->t);
		break;
	case K_MODSEQ:
		gn_store_query_modseq(q, k->num);
		break;
	case K_COLUMN:
		gn_store_query_header(q, k->column, k->text);
		break;
	case K_UIDS:
		gn_store_query_uids(q, k->ranges, k->n_ranges);
		break;
	case K_SCAN:
		if (pass == PASS_FINAL) {
			const uint32_t *u = se->scan_uids[k->scan];
			size_t n = se->scan_n[k->scan];
			uint32_t *r = gn_pool_alloc(se->pool, (2 * n + 2) * sizeof(*r));
			for (size_t i = 0; i < n; i++)
				r[2 * i] = r[2 * i + 1] = u[i];
			gn_store_query_uids(q, r, n);
		} else if (negated) {
			/* Under NOT: FALSE, so the NOT widens. */
			gn_store_query_or(q);
			gn_store_query_end(q);
		} else {
			gn_store_query_and(q);
			gn_store_query_end(q);
		}
		break;
	}
}

static int run_pass(struct search *se, enum pass pass, uint32_t **uids_r, uint64_t **modseqs_r,
		    const char **error_r)
{
	struct gn_store_query *q = gn_store_query_new(se->pool);
	compile(se, q, se->root, pass, false);
	return gn_store_query_run(se->pool, q, se->s->account_id, se->s->sel->id, uids_r, modseqs_r, error_r);
}

/* The candidates read for the scan keys: each key's matching UIDs.
 * 1 done, 0 answered NO (the limit), -1 database failure. */
static int scan_candidates(struct search *se, const uint32_t *cands, size_t n, const char *tag,
			   const char **error_r)
{
	struct imap_session *s = se->s;
	/* Their sizes: one list of the UID range they span. */
	struct gn_store_message **list = NULL;
	size_t n_list = 0;
	if (n > 0 && gn_store_message_list(se->pool, s->account_id, s->sel->id, cands[0], cands[n - 1], &list,
					   &n_list, error_r) < 0)
		return -1;
	uint64_t *sizes = gn_pool_alloc(se->pool, (n + 1) * sizeof(*sizes));
	uint64_t total = 0;
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		while (j < n_list && gn_store_message_uid(list[j]) < cands[i])
			j++;
		sizes[i] = j < n_list && gn_store_message_uid(list[j]) == cands[i] ? gn_store_message_size(list[j]) : 0;
		total += sizes[i];
	}
	if (total > imap_settings.search_scan_limit) {
		gn_log(GN_LOG_INFO, IMAP_AREA, "event=search_scan_limit conn=%s messages=%zu bytes=%llu limit=%zu",
		       gn_conn_id(s->conn), n, (unsigned long long)total, imap_settings.search_scan_limit);
		imap_tagged(s, tag, "NO", "LIMIT",
			    "This search would read %llu bytes of messages, more than the %zu allowed: "
			    "narrow it down with other keys", (unsigned long long)total,
			    imap_settings.search_scan_limit);
		return 0;
	}
	for (size_t k = 0; k < se->n_scan; k++) {
		se->scan_uids[k] = gn_pool_alloc(se->pool, (n + 1) * sizeof(uint32_t));
		se->scan_n[k] = 0;
	}
	bool matched[SEARCH_SCAN_KEYS_MAX];
	for (size_t i = 0; i < n; i++) {
		int r = search_scan_message(s, cands[i], sizes[i], se->scan, se->n_scan, matched, error_r);
		if (r < 0)
			return -1;
		for (size_t k = 0; r == 0 && k < se->n_scan; k++)
			if (matched[k])
				se->scan_uids[k][se->scan_n[k]++] = cands[i];
	}
	return 1;
}

/* ---- responses ---- */

/* A sorted list of numbers as a sequence-set: "1:3,7". */
static void append_set(struct gn_buf *b, const uint32_t *v, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		(void)gn_buf_printf(b, "%s%u", i > 0 ? "," : "", (unsigned)v[i]);
		if (j > i)
			(void)gn_buf_printf(b, ":%u", (unsigned)v[j]);
		i = j + 1;
	}
}

/* RFC 5182 2.1: SAVE keeps the UIDs; with MIN or MAX but neither ALL nor
 * COUNT, only those. */
static void save_result(struct imap_session *s, int ret, const uint32_t *uids, size_t n)
{
	struct imap_view *v = s->sel;
	gn_free(v->saved);
	v->saved = NULL;
	v->n_saved = 0;
	uint32_t pick[2];
	size_t np = 0;
	if ((ret & (R_ALL | R_COUNT)) == 0 && (ret & (R_MIN | R_MAX)) != 0 && n > 0) {
		if (ret & R_MIN)
			pick[np++] = uids[0];
		if ((ret & R_MAX) && (np == 0 || uids[n - 1] != uids[0]))
			pick[np++] = uids[n - 1];
		uids = pick;
		n = np;
	}
	if (n == 0)
		return;
	v->saved = gn_malloc(n * sizeof(*v->saved));
	memcpy(v->saved, uids, n * sizeof(*v->saved));
	v->n_saved = n;
}

static void respond(struct search *se, struct imap_command *cmd, int ret, bool esearch, const uint32_t *uids,
		    const uint64_t *modseqs, size_t n)
{
	struct imap_session *s = se->s;
	/* The numbers the client sees: UIDs, or message numbers. */
	uint32_t *nums = gn_pool_alloc(se->pool, (n + 1) * sizeof(*nums));
	uint64_t highest = 0;
	for (size_t i = 0; i < n; i++) {
		nums[i] = se->uid ? uids[i] : (uint32_t)imap_view_msn(s->sel, uids[i]);
		if (modseqs[i] > highest)
			highest = modseqs[i];
	}
	if (ret & R_SAVE)
		save_result(s, ret, uids, n);
	struct gn_buf *b = gn_buf_new(0);
	if (!esearch) {
		(void)gn_buf_append_str(b, "SEARCH");
		for (size_t i = 0; i < n; i++)
			(void)gn_buf_printf(b, " %u", (unsigned)nums[i]);
		/* RFC 7162 3.1.5: the highest modseq of the messages found. */
		if (se->has_modseq && n > 0)
			(void)gn_buf_printf(b, " (MODSEQ %llu)", (unsigned long long)highest);
		imap_untagged(s, "%s", gn_buf_data(b));
	} else if (ret != R_SAVE) {
		/* RFC 4731 3.1: no ESEARCH for RETURN (SAVE) alone (RFC 5182
		 * 2.4). */
		(void)gn_buf_append_str(b, "ESEARCH (TAG ");
		imap_append_string(b, cmd->tag, strlen(cmd->tag));
		(void)gn_buf_append_str(b, ")");
		if (se->uid)
			(void)gn_buf_append_str(b, " UID");
		if ((ret & R_MIN) && n > 0)
			(void)gn_buf_printf(b, " MIN %u", (unsigned)nums[0]);
		if ((ret & R_MAX) && n > 0)
			(void)gn_buf_printf(b, " MAX %u", (unsigned)nums[n - 1]);
		if (ret & R_COUNT)
			(void)gn_buf_printf(b, " COUNT %zu", n);
		if ((ret & R_ALL) && n > 0) {
			(void)gn_buf_append_str(b, " ALL ");
			append_set(b, nums, n);
		}
		if (se->has_modseq && n > 0)
			(void)gn_buf_printf(b, " MODSEQ %llu", (unsigned long long)highest);
		imap_untagged(s, "%s", gn_buf_data(b));
	}
	gn_buf_free(&b);
}

/* ---- the command ---- */

/* RFC 4731 3.1: RETURN (MIN MAX ALL COUNT SAVE); "RETURN ()" is ALL. */
static bool parse_return(struct search *se, int *ret_r)
{
	const struct imap_arg *l = next_arg(se, "A list after RETURN");
	if (l == NULL)
		return false;
	if (l->type != IMAP_ARG_LIST)
		return fail(se, NULL, "RETURN takes a list");
	static const struct {
		const char *name;
		int bit;
	} opts[] = {
		{ "MIN", R_MIN }, { "MAX", R_MAX }, { "ALL", R_ALL }, { "COUNT", R_COUNT }, { "SAVE", R_SAVE },
	};
	int ret = 0;
	for (unsigned i = 0; i < l->count; i++) {
		int bit = 0;
		for (size_t j = 0; j < sizeof(opts) / sizeof(opts[0]); j++)
			if (l->list[i].type == IMAP_ARG_ATOM && strcasecmp(l->list[i].str, opts[j].name) == 0)
				bit = opts[j].bit;
		if (bit == 0)
			return fail(se, NULL, "Unknown RETURN option");
		ret |= bit;
	}
	*ret_r = ret == 0 ? R_ALL : ret;
	return true;
}

static void search(struct imap_session *s, struct imap_command *cmd, const struct imap_arg *args, size_t n,
		   bool uid)
{
	struct search se = {
		.s = s, .pool = s->cmd_pool, .uid = uid, .args = args, .n = n,
	};
	const char *verb = uid ? "UID SEARCH" : "SEARCH";
	int ret = 0;
	/* RFC 9051 6.4.4: in IMAP4rev2 the answer is ESEARCH, as RETURN
	 * (ALL) would give. */
	bool esearch = s->enabled_rev2;
	if (se.pos < se.n && imap_arg_atom_is(&args[se.pos], "RETURN")) {
		se.pos++;
		if (!parse_return(&se, &ret))
			goto bad;
		esearch = true;
	} else if (esearch) {
		ret = R_ALL;
	}
	/* RFC 5182 2.1: a SAVE that fails leaves $ empty. */
	if (ret & R_SAVE) {
		gn_free(s->sel->saved);
		s->sel->saved = NULL;
		s->sel->n_saved = 0;
	}
	if (se.pos < se.n && imap_arg_atom_is(&args[se.pos], "CHARSET")) {
		se.pos++;
		const char *cs;
		if (!arg_astring(&se, "CHARSET", &cs))
			goto bad;
		if (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0) {
			imap_tagged(s, cmd->tag, "NO", "BADCHARSET (UTF-8 US-ASCII)",
				    "Only UTF-8 and US-ASCII are supported");
			return;
		}
	}
	struct key *root = key_new(&se, K_AND);
	root->sub = gn_pool_alloc(se.pool, (se.n + 1) * sizeof(*root->sub));
	while (se.pos < se.n) {
		struct key *k = parse_key(&se, 0);
		if (k == NULL)
			goto bad;
		root->sub[root->n_sub++] = k;
	}
	if (root->n_sub == 0) {
		fail(&se, NULL, "A search key expected");
		goto bad;
	}
	se.root = root;

	uint32_t *uids, *cands = NULL;
	uint64_t *modseqs;
	size_t n_cands = 0;
	const char *err;
	int found;
	if (se.n_scan == 0) {
		found = run_pass(&se, PASS_PLAIN, &uids, &modseqs, &err);
	} else {
		found = run_pass(&se, PASS_CANDIDATES, &cands, &modseqs, &err);
		if (found >= 0) {
			n_cands = (size_t)found;
			int r = scan_candidates(&se, cands, n_cands, cmd->tag, &err);
			if (r == 0)
				return;
			found = r < 0 ? -1 : run_pass(&se, PASS_FINAL, &uids, &modseqs, &err);
		}
	}
	if (found < 0) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=search_failed conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, err));
		imap_tagged(s, cmd->tag, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		return;
	}
	/* Only the messages the client knows of (the view); after a scan,
	 * only candidates: the final pass knows the scan keys' values for
	 * them alone (a NOT of one would take in any other message). */
	size_t kept = 0, c = 0;
	for (size_t i = 0; i < (size_t)found; i++) {
		if (imap_view_msn(s->sel, uids[i]) == 0)
			continue;
		if (se.n_scan > 0) {
			while (c < n_cands && cands[c] < uids[i])
				c++;
			if (c == n_cands || cands[c] != uids[i])
				continue;
		}
		uids[kept] = uids[i];
		modseqs[kept] = modseqs[i];
		kept++;
	}
	respond(&se, cmd, ret, esearch, uids, modseqs, kept);
	/* RFC 9051 7.5.1: no EXPUNGE during SEARCH; UID SEARCH may tell. */
	if (uid)
		(void)imap_refresh(s);
	imap_tagged(s, cmd->tag, "OK", NULL, "%s completed", verb);
	return;
bad:
	gn_log(GN_LOG_INFO, IMAP_AREA, "event=search_refused conn=%s error=%s", gn_conn_id(s->conn),
	       gn_log_quote(0, se.error != NULL ? se.error : "?"));
	imap_tagged(s, cmd->tag, "BAD", se.code, "%s", se.error != NULL ? se.error : "Bad search");
}

void imap_cmd_search(struct imap_session *s, struct imap_command *cmd)
{
	search(s, cmd, cmd->args, cmd->count, false);
}

void imap_uid_search(struct imap_session *s, struct imap_command *cmd)
{
	search(s, cmd, cmd->args + 1, cmd->count - 1, true);
}
