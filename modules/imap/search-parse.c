/*
 * modules/imap/search-parse.c: search keys (RFC 9051 6.4.4 and 9,
 * search-key; RFC 3501's NEW, OLD, RECENT; RFC 5032 OLDER, YOUNGER;
 * RFC 5182 "$"; RFC 7162 MODSEQ; RFC 8514 SAVED*) into a tree
 * (search.h) that cmd-search.c hands to the store.
 *
 * The arguments come from the command parser (parser.c) already split
 * into atoms, strings and lists; this file checks each key's arguments
 * against the grammar and bounds what the client controls: the nesting
 * of keys (SEARCH_DEPTH_MAX) and the keys that read messages
 * (SEARCH_SCAN_KEYS_MAX), both BAD [LIMIT] past them.  Message sequence
 * numbers and "$" are turned into UID ranges of the session's view here,
 * so the store never sees a message number.
 */
#include "search.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct search_parser {
	struct gn_pool *pool;
	const struct imap_view *view;
	const struct imap_arg *args;
	size_t n, pos;
	time_t now;
	struct search_program *prog;
	/* The first error: the response code (or NULL) and the text. */
	const char *code;
	const char *error;
};

static struct search_key *key_new(struct search_parser *se, enum search_key_kind kind)
{
	struct search_key *k = gn_pool_alloc(se->pool, sizeof(*k));
	k->kind = kind;
	return k;
}

static bool fail(struct search_parser *se, const char *code, const char *error)
{
	if (se->error == NULL) {
		se->code = code;
		se->error = error;
	}
	return false;
}

/* ---- arguments ---- */

static const struct imap_arg *next_arg(struct search_parser *se, const char *what)
{
	if (se->pos >= se->n) {
		fail(se, NULL, gn_pool_printf(se->pool, "%s expected", what));
		return NULL;
	}
	return &se->args[se->pos++];
}

static bool arg_astring(struct search_parser *se, const char *key, const char **s_r)
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
static bool arg_number(struct search_parser *se, const char *key, bool nonzero, uint64_t max, uint64_t *n_r)
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

static bool arg_date(struct search_parser *se, const char *key, time_t *t_r)
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
static void saved_ranges(struct search_parser *se, struct search_key *k)
{
	const struct imap_view *v = se->view;
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
static struct search_key *set_key(struct search_parser *se, const char *str, bool msn)
{
	struct search_key *k = key_new(se, SK_UIDS);
	if (strcmp(str, "$") == 0) {
		saved_ranges(se, k);
		return k;
	}
	const struct imap_view *v = se->view;
	se->prog->has_msn |= msn;
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

static struct search_key *parse_key(struct search_parser *se, unsigned depth);

static struct search_key *parse_list(struct search_parser *se, const struct imap_arg *list, unsigned count,
			      unsigned depth)
{
	struct search_key *k = key_new(se, SK_AND);
	k->sub = gn_pool_alloc(se->pool, (count + 1) * sizeof(*k->sub));
	const struct imap_arg *args = se->args;
	size_t n = se->n, pos = se->pos;
	se->args = list;
	se->n = count;
	se->pos = 0;
	while (se->pos < se->n) {
		struct search_key *c = parse_key(se, depth + 1);
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

static struct search_key *flags_key(struct search_parser *se, unsigned flags, bool neg)
{
	struct search_key *k = key_new(se, SK_FLAGS);
	k->flags = flags;
	k->neg = neg;
	return k;
}

static struct search_key *scan_key(struct search_parser *se, enum search_scan_kind kind, const char *field,
			    const char *text)
{
	if (se->prog->n_scan == SEARCH_SCAN_KEYS_MAX) {
		fail(se, "LIMIT", "Too many HEADER, BODY, TEXT, TO, CC, BCC keys in one search");
		return NULL;
	}
	struct search_key *k = key_new(se, SK_SCAN);
	k->scan = se->prog->n_scan;
	se->prog->scan[se->prog->n_scan].kind = kind;
	se->prog->scan[se->prog->n_scan].field = field;
	se->prog->scan[se->prog->n_scan].text = text;
	se->prog->n_scan++;
	return k;
}

/* HEADER, and the keys that are HEADER of one field: a column when the
 * store keeps the field, else a scan key. */
static struct search_key *header_key(struct search_parser *se, const char *field, const char *text)
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
		struct search_key *k = key_new(se, SK_COLUMN);
		k->column = columns[i].column;
		k->text = text;
		return k;
	}
	return scan_key(se, SCAN_HEADER, field, text);
}

static struct search_key *date_key(struct search_parser *se, const char *name, enum gn_store_query_date which,
			    enum gn_store_query_cmp cmp)
{
	struct search_key *k = key_new(se, SK_DATE);
	k->date_which = which;
	k->date_cmp = cmp;
	return arg_date(se, name, &k->t) ? k : NULL;
}

/* RFC 7162 3.1.5: "MODSEQ" SP [search-modseq-ext SP] mod-sequence-valzer,
 * search-modseq-ext = entry-name SP entry-type-req: the entry (one flag's
 * modseq) is accepted and the message's modseq used, which is never
 * smaller than any of its flags'. */
static struct search_key *modseq_key(struct search_parser *se)
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
	struct search_key *k = key_new(se, SK_MODSEQ);
	if (!arg_number(se, "MODSEQ", false, INT64_MAX, &k->num))
		return NULL;
	se->prog->has_modseq = true;
	return k;
}

static struct search_key *parse_key(struct search_parser *se, unsigned depth)
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
	struct search_key *k;
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
			return flag_keys[i].flag == 0 ? key_new(se, SK_ALL) :
				flags_key(se, flag_keys[i].flag, flag_keys[i].neg);
	/* RFC 8514 4.3: the save date is kept for every mailbox. */
	if (strcasecmp(w, "ALL") == 0 || strcasecmp(w, "SAVEDATESUPPORTED") == 0)
		return key_new(se, SK_ALL);
	/* RFC 3501: RECENT, and NEW (RECENT UNSEEN): no message is \Recent
	 * (IMAP4rev2 dropped it; the store keeps none). */
	if (strcasecmp(w, "RECENT") == 0 || strcasecmp(w, "NEW") == 0)
		return key_new(se, SK_NONE);
	if (strcasecmp(w, "NOT") == 0) {
		k = key_new(se, SK_NOT);
		k->sub = gn_pool_alloc(se->pool, sizeof(*k->sub));
		k->n_sub = 1;
		return (k->sub[0] = parse_key(se, depth + 1)) != NULL ? k : NULL;
	}
	if (strcasecmp(w, "OR") == 0) {
		k = key_new(se, SK_OR);
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
		k = key_new(se, SK_KEYWORD);
		k->text = f->str;
		k->neg = w[0] == 'U' || w[0] == 'u';
		return k;
	}
	if (strcasecmp(w, "LARGER") == 0 || strcasecmp(w, "SMALLER") == 0) {
		k = key_new(se, SK_SIZE);
		k->neg = strcasecmp(w, "SMALLER") == 0;
		return arg_number(se, w, false, INT64_MAX, &k->num) ? k : NULL;
	}
	/* RFC 5032: OLDER and YOUNGER, in seconds from now. */
	if (strcasecmp(w, "OLDER") == 0 || strcasecmp(w, "YOUNGER") == 0) {
		k = key_new(se, SK_TIME);
		uint64_t secs;
		if (!arg_number(se, w, true, UINT32_MAX, &secs))
			return NULL;
		k->neg = strcasecmp(w, "YOUNGER") == 0;
		k->t = se->now - (time_t)secs;
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

int search_parse(struct gn_pool *pool, const struct imap_view *view, const struct imap_arg *args,
		 size_t n, time_t now, struct search_program *prog, const char **code_r,
		 const char **error_r)
{
	struct search_parser se = {
		.pool = pool, .view = view, .args = args, .n = n, .now = now, .prog = prog,
	};
	memset(prog, 0, sizeof(*prog));
	struct search_key *root = key_new(&se, SK_AND);
	root->sub = gn_pool_alloc(pool, (n + 1) * sizeof(*root->sub));
	while (se.pos < se.n) {
		struct search_key *k = parse_key(&se, 0);
		if (k == NULL)
			break;
		root->sub[root->n_sub++] = k;
	}
	if (se.error == NULL && root->n_sub == 0)
		fail(&se, NULL, "A search key expected");
	if (se.error != NULL) {
		*code_r = se.code;
		*error_r = se.error;
		return -1;
	}
	prog->root = root;
	return 0;
}
