/*
 * modules/imap/cmd-search.c: SEARCH and UID SEARCH (RFC 9051 6.4.4,
 * RFC 3501 6.4.4) with ESEARCH (RFC 4731), SEARCHRES (RFC 5182), WITHIN
 * (RFC 5032), the SAVEDATE keys (RFC 8514) and CONDSTORE's MODSEQ key
 * (RFC 7162 3.1.5).
 *
 * A command's keys are parsed into a tree (search-parse.c), then answered
 * by the store in SQL (gannet/store.h, gn_store_query_*): flags,
 * keywords, sizes, dates, UIDs and sequence sets, and the header fields
 * the store keeps as columns (Subject, From, Message-ID).  Keys SQL cannot answer (BODY,
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
	struct search_program prog;
	/* After the candidate pass: for each scan key, the UIDs it matched. */
	uint32_t *scan_uids[SEARCH_SCAN_KEYS_MAX];
	size_t scan_n[SEARCH_SCAN_KEYS_MAX];
};

/* ---- to the store ---- */

enum pass {
	PASS_PLAIN,		/* no scan keys */
	PASS_CANDIDATES,	/* scan keys as TRUE/FALSE, widening */
	PASS_FINAL,		/* scan keys as the UIDs they matched */
};

static void compile(struct search *se, struct gn_store_query *q, const struct search_key *k, enum pass pass,
		    bool negated)
{
	switch (k->kind) {
	case SK_ALL:
		gn_store_query_and(q);
		gn_store_query_end(q);
		break;
	case SK_NONE:
		gn_store_query_or(q);
		gn_store_query_end(q);
		break;
	case SK_AND:
	case SK_OR:
	case SK_NOT:
		if (k->kind == SK_AND)
			gn_store_query_and(q);
		else if (k->kind == SK_OR)
			gn_store_query_or(q);
		else
			gn_store_query_not(q);
		for (size_t i = 0; i < k->n_sub; i++)
			compile(se, q, k->sub[i], pass, negated != (k->kind == SK_NOT));
		gn_store_query_end(q);
		break;
	case SK_FLAGS:
		gn_store_query_flags(q, k->flags, !k->neg);
		break;
	case SK_KEYWORD:
		gn_store_query_keyword(q, k->text, !k->neg);
		break;
	case SK_SIZE:
		gn_store_query_size(q, !k->neg, k->num);
		break;
	case SK_DATE:
		gn_store_query_date(q, k->date_which, k->date_cmp, k->t);
		break;
	case SK_TIME:
		gn_store_query_time(q, !k->neg, k->t);
		break;
	case SK_MODSEQ:
		gn_store_query_modseq(q, k->num);
		break;
	case SK_COLUMN:
		gn_store_query_header(q, k->column, k->text);
		break;
	case SK_UIDS:
		gn_store_query_uids(q, k->ranges, k->n_ranges);
		break;
	case SK_SCAN:
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
	compile(se, q, se->prog.root, pass, false);
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
	for (size_t k = 0; k < se->prog.n_scan; k++) {
		se->scan_uids[k] = gn_pool_alloc(se->pool, (n + 1) * sizeof(uint32_t));
		se->scan_n[k] = 0;
	}
	bool matched[SEARCH_SCAN_KEYS_MAX];
	for (size_t i = 0; i < n; i++) {
		int r = search_scan_message(s, cands[i], sizes[i], se->prog.scan, se->prog.n_scan, matched, error_r);
		if (r < 0)
			return -1;
		for (size_t k = 0; r == 0 && k < se->prog.n_scan; k++)
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
		if (se->prog.has_modseq && n > 0)
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
		/* RFC 4731 3.2: with MIN or MAX alone, the modseq of those. */
		if ((ret & (R_ALL | R_COUNT)) == 0 && n > 0)
			highest = (ret & R_MIN) && (!(ret & R_MAX) || modseqs[0] > modseqs[n - 1]) ?
				  modseqs[0] : modseqs[n - 1];
		if (se->prog.has_modseq && n > 0)
			(void)gn_buf_printf(b, " MODSEQ %llu", (unsigned long long)highest);
		imap_untagged(s, "%s", gn_buf_data(b));
	}
	gn_buf_free(&b);
}

/* ---- the command ---- */

/* RFC 4731 3.1: RETURN (MIN MAX ALL COUNT SAVE); "RETURN ()" is ALL.
 * NULL, or the error. */
static const char *parse_return(const struct imap_arg *l, int *ret_r)
{
	if (l->type != IMAP_ARG_LIST)
		return "RETURN takes a list";
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
			return "Unknown RETURN option";
		ret |= bit;
	}
	*ret_r = ret == 0 ? R_ALL : ret;
	return NULL;
}

/* Runs the parsed search: the matching UIDs of the view, ascending, with
 * their modseqs.  The count, 0 and *answered_r when it answered NO (the
 * scan limit), or -1 (a database failure, *error_r). */
static int execute(struct search *se, const char *tag, uint32_t **uids_r, uint64_t **modseqs_r,
		   bool *answered_r, const char **error_r)
{
	struct imap_session *s = se->s;
	uint32_t *uids, *cands = NULL;
	uint64_t *modseqs;
	size_t n_cands = 0;
	int found;
	*answered_r = false;
	if (se->prog.n_scan == 0) {
		found = run_pass(se, PASS_PLAIN, &uids, &modseqs, error_r);
	} else {
		found = run_pass(se, PASS_CANDIDATES, &cands, &modseqs, error_r);
		if (found < 0)
			return -1;
		n_cands = (size_t)found;
		int r = scan_candidates(se, cands, n_cands, tag, error_r);
		if (r == 0) {
			*answered_r = true;
			return 0;
		}
		found = r < 0 ? -1 : run_pass(se, PASS_FINAL, &uids, &modseqs, error_r);
	}
	if (found < 0)
		return -1;
	/* Only the messages the client knows of (the view); after a scan,
	 * only candidates: the final pass knows the scan keys' values for
	 * them alone (a NOT of one would take in any other message). */
	size_t kept = 0, c = 0;
	for (size_t i = 0; i < (size_t)found; i++) {
		if (imap_view_msn(s->sel, uids[i]) == 0)
			continue;
		if (se->prog.n_scan > 0) {
			while (c < n_cands && cands[c] < uids[i])
				c++;
			if (c == n_cands || cands[c] != uids[i])
				continue;
		}
		uids[kept] = uids[i];
		modseqs[kept] = modseqs[i];
		kept++;
	}
	*uids_r = uids;
	*modseqs_r = modseqs;
	return (int)kept;
}

int search_execute(struct imap_session *s, struct gn_pool *pool, const struct search_program *prog,
		   const char *tag, uint32_t **uids_r, uint64_t **modseqs_r, bool *answered_r,
		   const char **error_r)
{
	struct search se = { .s = s, .pool = pool, .prog = *prog };
	return execute(&se, tag, uids_r, modseqs_r, answered_r, error_r);
}

static void search(struct imap_session *s, struct imap_command *cmd, const struct imap_arg *args, size_t n,
		   bool uid)
{
	struct search se = { .s = s, .pool = s->cmd_pool, .uid = uid };
	const char *code = NULL, *error = NULL;
	size_t pos = 0;
	int ret = 0;
	/* RFC 9051 6.4.4: in IMAP4rev2 the answer is ESEARCH, as RETURN
	 * (ALL) would give. */
	bool esearch = s->enabled_rev2;
	if (pos < n && imap_arg_atom_is(&args[pos], "RETURN")) {
		pos++;
		error = pos < n ? parse_return(&args[pos++], &ret) : "A list after RETURN expected";
		if (error != NULL)
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
	if (pos < n && imap_arg_atom_is(&args[pos], "CHARSET")) {
		const char *cs;
		size_t len;
		/* RFC 6855 3: once UTF8=ACCEPT is enabled, a charset label
		 * conflicts with the UTF-8 the strings are in. */
		if (s->enabled_utf8) {
			error = "No CHARSET after ENABLE UTF8=ACCEPT";
			goto bad;
		}
		if (++pos == n || !imap_arg_astring(&args[pos], &cs, &len) || strlen(cs) != len) {
			error = "A charset expected after CHARSET";
			goto bad;
		}
		pos++;
		if (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0) {
			imap_tagged(s, cmd->tag, "NO", "BADCHARSET (UTF-8 US-ASCII)",
				    "Only UTF-8 and US-ASCII are supported");
			return;
		}
	}
	if (search_parse(se.pool, s->sel, args + pos, n - pos, time(NULL), &se.prog, &code, &error) < 0)
		goto bad;
	/* RFC 7162 3.1: the MODSEQ key enables CONDSTORE. */
	if (se.prog.has_modseq)
		imap_condstore_enable(s);

	uint32_t *uids;
	uint64_t *modseqs;
	bool answered;
	const char *err;
	int found = execute(&se, cmd->tag, &uids, &modseqs, &answered, &err);
	if (answered)
		return;
	if (found < 0) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=search_failed conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, err));
		imap_tagged(s, cmd->tag, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		return;
	}
	respond(&se, cmd, ret, esearch, uids, modseqs, (size_t)found);
	/* RFC 9051 7.5.1: no EXPUNGE during SEARCH; UID SEARCH may tell,
	 * but no VANISHED when its keys have message numbers (RFC 7162
	 * 3.2.10.2). */
	if (uid && s->qresync && se.prog.has_msn)
		(void)imap_refresh_no_expunge(s);
	else if (uid)
		(void)imap_refresh(s);
	imap_tagged(s, cmd->tag, "OK", NULL, "%s completed", uid ? "UID SEARCH" : "SEARCH");
	return;
bad:
	gn_log(GN_LOG_INFO, IMAP_AREA, "event=search_refused conn=%s error=%s", gn_conn_id(s->conn),
	       gn_log_quote(0, error));
	imap_tagged(s, cmd->tag, "BAD", code, "%s", error);
}

void imap_cmd_search(struct imap_session *s, struct imap_command *cmd)
{
	search(s, cmd, cmd->args, cmd->count, false);
}

void imap_uid_search(struct imap_session *s, struct imap_command *cmd)
{
	search(s, cmd, cmd->args + 1, cmd->count - 1, true);
}
