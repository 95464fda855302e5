/*
 * modules/imap/cmd-sort.c: SORT, UID SORT, THREAD and UID THREAD
 * (RFC 5256) with the DISPLAYFROM and DISPLAYTO keys (RFC 5957,
 * SORT=DISPLAY), without ESORT (RFC 5267): the answers are "* SORT" and
 * "* THREAD".
 *
 * The search criteria are SEARCH's (search-parse.c) and run the way
 * SEARCH runs them (search_execute(), cmd-search.c), so only the messages
 * that match are read.  Then each is given its keys:
 *
 *   - from the message list (gn_store_message_list(), one query): the
 *     internal date (ARRIVAL), the size, the Subject (stored decoded, as
 *     RFC 5256 2.1 step 1 wants it) and the Date (DATE, RFC 5256 2.2);
 *   - from the stored MIME structure, one message at a time, only when a
 *     key needs it: From, To, Cc (the addr-mailbox of the first address,
 *     as FETCH ENVELOPE shows it, or its display name for DISPLAYFROM
 *     and DISPLAYTO), and Message-ID, References and
 *     In-Reply-To for THREAD=REFERENCES.
 *
 * A command may process at most imap.sort_limit messages (NO [LIMIT]
 * past it): each takes a query when its structure is read.  Strings are
 * compared with i;ascii-casemap (base-subject.c); ties go to the lower
 * sequence number (RFC 5256 3).  The threading itself is thread.c.
 */
#include "search.h"
#include "sort.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum sort_key {
	KEY_ARRIVAL = 0,
	KEY_CC,
	KEY_DATE,
	KEY_FROM,
	KEY_SIZE,
	KEY_SUBJECT,
	KEY_TO,
	KEY_DISPLAYFROM,	/* RFC 5957 */
	KEY_DISPLAYTO,
};

/* Criteria in one SORT: more than the nine keys would never change an
 * answer. */
#define SORT_CRITERIA_MAX 16

struct sort_criterion {
	enum sort_key key;
	bool reverse;
};

/* What the keys need besides the message list. */
enum {
	NEED_ADDR = 1 << 0,	/* From, To, Cc */
	NEED_REFS = 1 << 1,	/* Message-ID, References, In-Reply-To */
};

struct sort_item {
	uint32_t uid;
	size_t msn;
	time_t arrival, sent;
	uint64_t size;
	const char *base;	/* base subject */
	bool refwd;
	const char *from, *to, *cc;	/* addr-mailbox, "" when none */
	const char *dfrom, *dto;	/* RFC 5957 3: the DISPLAY value */
	const char *message_id, *references, *in_reply_to;
};

/* ---- the messages' keys ---- */

/* RFC 5256 3 (SORT FROM, TO, CC): the [IMAP] addr-mailbox of the first
 * address, as FETCH ENVELOPE has it (bodystructure.c): a group's name
 * for a group, the text of a mailbox that does not parse; "" when the
 * field is absent or empty. */
static const char *first_mailbox(struct gn_pool *pool, struct gn_pool *tmp, const char *value)
{
	if (value == NULL)
		return "";
	struct gn_addr_list list;
	const char *err;
	(void)gn_addr_parse_header(tmp, value, strlen(value), &list, &err);
	if (list.count == 0)
		return "";
	const struct gn_addr_item *it = list.items[0];
	const char *mbox = it->kind == GN_ADDR_GROUP_START ? it->name_raw :
			   it->addr != NULL ? it->addr->localpart : it->text;
	return gn_pool_strdup(pool, mbox != NULL ? mbox : "");
}

/* RFC 5957 3: the DISPLAY sort value of the first address: its display
 * name decoded (RFC 2047) when not empty, else addr-mailbox "@"
 * addr-host, else addr-mailbox (a group's name; the text of a mailbox
 * that does not parse, which ENVELOPE shows with a made-up host that
 * sorting has no use for); "" when there is no address. */
static const char *first_display(struct gn_pool *pool, struct gn_pool *tmp, const char *value)
{
	if (value == NULL)
		return "";
	struct gn_addr_list list;
	const char *err;
	(void)gn_addr_parse_header(tmp, value, strlen(value), &list, &err);
	if (list.count == 0)
		return "";
	const struct gn_addr_item *it = list.items[0];
	const char *v;
	if (it->kind == GN_ADDR_GROUP_START)
		v = it->name_raw;
	else if (it->name != NULL && *it->name != '\0')
		v = it->name;
	else if (it->addr != NULL)
		v = gn_pool_printf(tmp, "%s@%s", it->addr->localpart, imap_addr_host(tmp, it));
	else
		v = it->text;
	return gn_pool_strdup(pool, v != NULL ? v : "");
}

static const char *dup_or_null(struct gn_pool *pool, const char *s)
{
	return s != NULL ? gn_pool_strdup(pool, s) : NULL;
}

/* The fields of the stored structure (or, without one, of a parse of
 * the body) the keys need.  0, or -1 with *error_r; a message expunged
 * meanwhile keeps empty fields. */
static int load_fields(struct imap_session *s, struct gn_pool *pool, struct gn_pool *tmp, struct sort_item *it,
		       unsigned need, const char **error_r)
{
	struct gn_store_message *m;
	int r = gn_store_message_get(tmp, s->account_id, s->sel->id, it->uid, &m, error_r);
	if (r <= 0)
		return r;
	const char *json = gn_store_message_mime_json(m);
	struct gn_store_body *body = NULL;
	if (json == NULL) {
		r = gn_store_message_open(s->account_id, s->sel->id, it->uid, &body, error_r);
		if (r <= 0)
			return r;
	}
	struct gn_mime_message *mime;
	r = imap_fetch_mime(body, gn_store_message_prefix_len(m), json, &mime, error_r);
	gn_store_body_free(&body);
	if (r < 0)
		return -1;
	const struct gn_mime_part *root = gn_mime_message_root(mime);
	if (need & NEED_ADDR) {
		it->from = first_mailbox(pool, tmp, gn_mime_part_field_raw(root, GN_MIME_FROM));
		it->to = first_mailbox(pool, tmp, gn_mime_part_field_raw(root, GN_MIME_TO));
		it->cc = first_mailbox(pool, tmp, gn_mime_part_field_raw(root, GN_MIME_CC));
		it->dfrom = first_display(pool, tmp, gn_mime_part_field_raw(root, GN_MIME_FROM));
		it->dto = first_display(pool, tmp, gn_mime_part_field_raw(root, GN_MIME_TO));
	}
	if (need & NEED_REFS) {
		it->message_id = dup_or_null(pool, gn_mime_part_field_raw(root, GN_MIME_MESSAGE_ID));
		it->references = dup_or_null(pool, gn_mime_part_field_raw(root, GN_MIME_REFERENCES));
		it->in_reply_to = dup_or_null(pool, gn_mime_part_field_raw(root, GN_MIME_IN_REPLY_TO));
	}
	gn_mime_message_free(&mime);
	return 0;
}

/* The keys of the messages uids[0..n) (ascending, all in the view).
 * *items_r from pool; 0, or -1 with *error_r. */
static int load_items(struct imap_session *s, struct gn_pool *pool, const uint32_t *uids, size_t n,
		      unsigned need, struct sort_item **items_r, const char **error_r)
{
	struct sort_item *items = gn_pool_alloc(pool, (n + 1) * sizeof(*items));
	*items_r = items;
	if (n == 0)
		return 0;
	struct gn_pool *tmp = gn_pool_new();
	struct gn_store_message **list;
	size_t n_list;
	if (gn_store_message_list(tmp, s->account_id, s->sel->id, uids[0], uids[n - 1], &list, &n_list,
				  error_r) < 0) {
		gn_pool_free(&tmp);
		return -1;
	}
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		struct sort_item *it = &items[i];
		it->uid = uids[i];
		it->msn = imap_view_msn(s->sel, uids[i]);
		it->from = it->to = it->cc = it->dfrom = it->dto = "";
		while (j < n_list && gn_store_message_uid(list[j]) < uids[i])
			j++;
		const struct gn_store_message *m = j < n_list && gn_store_message_uid(list[j]) == uids[i] ?
						   list[j] : NULL;
		if (m != NULL) {
			it->arrival = gn_store_message_internal_date(m);
			it->size = gn_store_message_size(m);
			/* RFC 5256 2.2: the Date, else the INTERNALDATE. */
			it->sent = gn_store_message_date(m) != 0 ? gn_store_message_date(m) : it->arrival;
		}
		it->base = imap_base_subject(pool, m != NULL ? gn_store_message_subject(m) : NULL, &it->refwd);
	}
	/* The list goes before the structures are read: its memory is the
	 * mailbox's range, theirs one message at a time. */
	gn_pool_clear(tmp);
	for (size_t i = 0; need != 0 && i < n; i++) {
		if (load_fields(s, pool, tmp, &items[i], need, error_r) < 0) {
			gn_pool_free(&tmp);
			return -1;
		}
		gn_pool_clear(tmp);
	}
	gn_pool_free(&tmp);
	return 0;
}

/* ---- SORT ---- */

static int cmp_time(time_t a, time_t b)
{
	return a < b ? -1 : a > b;
}

static int compare(const void *pa, const void *pb, void *arg)
{
	const struct sort_item *a = *(const struct sort_item *const *)pa, *b = *(const struct sort_item *const *)pb;
	for (const struct sort_criterion *c = arg; c->key != (enum sort_key)-1; c++) {
		int r = 0;
		switch (c->key) {
		case KEY_ARRIVAL:
			r = cmp_time(a->arrival, b->arrival);
			break;
		case KEY_DATE:
			r = cmp_time(a->sent, b->sent);
			break;
		case KEY_SIZE:
			r = a->size < b->size ? -1 : a->size > b->size;
			break;
		case KEY_SUBJECT:
			r = imap_casemap_cmp(a->base, b->base);
			break;
		case KEY_FROM:
			r = imap_casemap_cmp(a->from, b->from);
			break;
		case KEY_TO:
			r = imap_casemap_cmp(a->to, b->to);
			break;
		case KEY_CC:
			r = imap_casemap_cmp(a->cc, b->cc);
			break;
		case KEY_DISPLAYFROM:
			r = imap_casemap_cmp(a->dfrom, b->dfrom);
			break;
		case KEY_DISPLAYTO:
			r = imap_casemap_cmp(a->dto, b->dto);
			break;
		}
		if (r != 0)
			return c->reverse ? -r : r;
	}
	/* RFC 5256 3: the implicit last criterion, never reversed. */
	return a->msn < b->msn ? -1 : a->msn > b->msn;
}

/* sort-criteria = "(" sort-criterion *(SP sort-criterion) ")",
 * sort-criterion = ["REVERSE" SP] sort-key.  The criteria, ended by a
 * key of -1, and what they need; NULL with *code_r and *error_r. */
static struct sort_criterion *parse_criteria(struct gn_pool *pool, const struct imap_arg *l, unsigned *need_r,
					     const char **code_r, const char **error_r)
{
	static const struct {
		const char *name;
		enum sort_key key;
		unsigned need;
	} keys[] = {
		{ "ARRIVAL", KEY_ARRIVAL, 0 }, { "CC", KEY_CC, NEED_ADDR }, { "DATE", KEY_DATE, 0 },
		{ "FROM", KEY_FROM, NEED_ADDR }, { "SIZE", KEY_SIZE, 0 }, { "SUBJECT", KEY_SUBJECT, 0 },
		{ "TO", KEY_TO, NEED_ADDR }, { "DISPLAYFROM", KEY_DISPLAYFROM, NEED_ADDR },
		{ "DISPLAYTO", KEY_DISPLAYTO, NEED_ADDR },
	};
	*code_r = NULL;
	if (l->type != IMAP_ARG_LIST || l->count == 0) {
		*error_r = "A list of sort criteria expected";
		return NULL;
	}
	if (l->count > 2 * SORT_CRITERIA_MAX) {
		*code_r = "LIMIT";
		*error_r = "Too many sort criteria";
		return NULL;
	}
	struct sort_criterion *crit = gn_pool_alloc(pool, (l->count + 1) * sizeof(*crit));
	size_t n = 0;
	*need_r = 0;
	for (unsigned i = 0; i < l->count; i++) {
		bool reverse = false;
		if (imap_arg_atom_is(&l->list[i], "REVERSE")) {
			reverse = true;
			if (++i == l->count) {
				*error_r = "A sort key expected after REVERSE";
				return NULL;
			}
		}
		size_t k = 0;
		while (k < sizeof(keys) / sizeof(keys[0]) && !imap_arg_atom_is(&l->list[i], keys[k].name))
			k++;
		if (k == sizeof(keys) / sizeof(keys[0])) {
			*error_r = "Unknown sort key";
			return NULL;
		}
		if (n == SORT_CRITERIA_MAX) {
			*code_r = "LIMIT";
			*error_r = "Too many sort criteria";
			return NULL;
		}
		crit[n].key = keys[k].key;
		crit[n].reverse = reverse;
		*need_r |= keys[k].need;
		n++;
	}
	crit[n].key = (enum sort_key)-1;
	return crit;
}

/* ---- both commands ---- */

enum thread_alg {
	ALG_NONE = 0,		/* SORT */
	ALG_ORDEREDSUBJECT,
	ALG_REFERENCES,
};

/* The parts both commands share: the charset, the search, the messages
 * with their keys.  The count with *items_r, or -1 when it answered.
 * *modseq_r: 0, or with a MODSEQ search key the highest modseq of the
 * messages found (RFC 7162 3.1.5). */
static long prepare(struct imap_session *s, struct imap_command *cmd, const struct imap_arg *args, size_t n,
		    const char *what, unsigned need, struct sort_item **items_r, uint64_t *modseq_r)
{
	*modseq_r = 0;
	struct gn_pool *pool = s->cmd_pool;
	const char *code = NULL, *error = NULL, *cs;
	size_t len;
	/* search-criteria = charset 1*(SP search-key) */
	if (n < 2 || !imap_arg_astring(&args[0], &cs, &len) || strlen(cs) != len) {
		error = "A charset and search criteria expected";
		goto bad;
	}
	if (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0) {
		gn_log(GN_LOG_INFO, IMAP_AREA, "event=sort_refused conn=%s command=%s error=%s", gn_conn_id(s->conn),
		       what, gn_log_quote(0, "unsupported charset"));
		imap_tagged(s, cmd->tag, "NO", "BADCHARSET (UTF-8 US-ASCII)", "Only UTF-8 and US-ASCII are supported");
		return -1;
	}
	struct search_program prog;
	if (search_parse(pool, s->sel, args + 1, n - 1, time(NULL), &prog, &code, &error) < 0)
		goto bad;
	uint32_t *uids;
	uint64_t *modseqs;
	bool answered;
	const char *err;
	int found = search_execute(s, pool, &prog, cmd->tag, &uids, &modseqs, &answered, &err);
	if (answered)
		return -1;
	if (found >= 0 && (size_t)found > imap_settings.sort_limit) {
		gn_log(GN_LOG_INFO, IMAP_AREA, "event=sort_limit conn=%s command=%s messages=%d limit=%u",
		       gn_conn_id(s->conn), what, found, imap_settings.sort_limit);
		imap_tagged(s, cmd->tag, "NO", "LIMIT",
			    "%s of %d messages, more than the %u allowed: narrow the search down", what, found,
			    imap_settings.sort_limit);
		return -1;
	}
	if (found < 0 || load_items(s, pool, uids, (size_t)found, need, items_r, &err) < 0) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=sort_failed conn=%s command=%s error=%s", gn_conn_id(s->conn),
		       what, gn_log_quote(0, err));
		imap_tagged(s, cmd->tag, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		return -1;
	}
	for (int i = 0; prog.has_modseq && i < found; i++)
		if (modseqs[i] > *modseq_r)
			*modseq_r = modseqs[i];
	return found;
bad:
	gn_log(GN_LOG_INFO, IMAP_AREA, "event=sort_refused conn=%s command=%s error=%s", gn_conn_id(s->conn), what,
	       gn_log_quote(0, error));
	imap_tagged(s, cmd->tag, "BAD", code, "%s", error);
	return -1;
}

static void finish(struct imap_session *s, struct imap_command *cmd, bool uid, const char *what)
{
	/* RFC 9051 7.5.1 as for SEARCH: no EXPUNGE during the command; the
	 * UID form may tell. */
	if (uid)
		(void)imap_refresh(s);
	imap_tagged(s, cmd->tag, "OK", NULL, "%s%s completed", uid ? "UID " : "", what);
}

static void sort(struct imap_session *s, struct imap_command *cmd, const struct imap_arg *args, size_t n,
		 bool uid)
{
	const char *code, *error;
	unsigned need;
	if (n == 0) {
		imap_tagged(s, cmd->tag, "BAD", NULL, "Sort criteria expected");
		return;
	}
	struct sort_criterion *crit = parse_criteria(s->cmd_pool, &args[0], &need, &code, &error);
	if (crit == NULL) {
		gn_log(GN_LOG_INFO, IMAP_AREA, "event=sort_refused conn=%s command=SORT error=%s",
		       gn_conn_id(s->conn), gn_log_quote(0, error));
		imap_tagged(s, cmd->tag, "BAD", code, "%s", error);
		return;
	}
	struct sort_item *items;
	uint64_t modseq;
	long found = prepare(s, cmd, args + 1, n - 1, "SORT", need, &items, &modseq);
	if (found < 0)
		return;
	struct sort_item **order = gn_pool_alloc(s->cmd_pool, ((size_t)found + 1) * sizeof(*order));
	for (long i = 0; i < found; i++)
		order[i] = &items[i];
	qsort_r(order, (size_t)found, sizeof(*order), compare, crit);
	/* sort-data = "SORT" *(SP nz-number) [SP search-sort-mod-seq]
	 * (RFC 5256, RFC 7162 7) */
	struct gn_buf *b = gn_buf_new(0);
	(void)gn_buf_append_str(b, "SORT");
	for (long i = 0; i < found; i++)
		(void)gn_buf_printf(b, " %zu", uid ? (size_t)order[i]->uid : order[i]->msn);
	if (modseq != 0)
		(void)gn_buf_printf(b, " (MODSEQ %llu)", (unsigned long long)modseq);
	imap_untagged(s, "%s", gn_buf_data(b));
	gn_buf_free(&b);
	finish(s, cmd, uid, "SORT");
}

static void thread(struct imap_session *s, struct imap_command *cmd, const struct imap_arg *args, size_t n,
		   bool uid)
{
	enum thread_alg alg = ALG_NONE;
	if (n > 0 && imap_arg_atom_is(&args[0], "ORDEREDSUBJECT"))
		alg = ALG_ORDEREDSUBJECT;
	else if (n > 0 && imap_arg_atom_is(&args[0], "REFERENCES"))
		alg = ALG_REFERENCES;
	if (alg == ALG_NONE) {
		const char *error = n == 0 ? "A threading algorithm expected" : "Unknown threading algorithm";
		gn_log(GN_LOG_INFO, IMAP_AREA, "event=sort_refused conn=%s command=THREAD error=%s",
		       gn_conn_id(s->conn), gn_log_quote(0, error));
		imap_tagged(s, cmd->tag, "BAD", NULL, "%s", error);
		return;
	}
	struct sort_item *items;
	uint64_t modseq;	/* THREAD's answer has no place for it */
	long found = prepare(s, cmd, args + 1, n - 1, "THREAD", alg == ALG_REFERENCES ? NEED_REFS : 0, &items,
			     &modseq);
	if (found < 0)
		return;
	struct thread_msg *msgs = gn_pool_alloc(s->cmd_pool, ((size_t)found + 1) * sizeof(*msgs));
	for (long i = 0; i < found; i++) {
		const struct sort_item *it = &items[i];
		msgs[i] = (struct thread_msg){
			.num = uid ? it->uid : (uint32_t)it->msn,
			.msn = it->msn,
			.sent = it->sent,
			.base = it->base,
			.refwd = it->refwd,
			.message_id = it->message_id,
			.references = it->references,
			.in_reply_to = it->in_reply_to,
		};
	}
	/* thread-data = "THREAD" [SP 1*thread-list] */
	struct gn_buf *b = gn_buf_new(0);
	(void)gn_buf_append_str(b, "THREAD");
	if (alg == ALG_ORDEREDSUBJECT)
		thread_orderedsubject(s->cmd_pool, msgs, (size_t)found, b);
	else
		thread_references(s->cmd_pool, msgs, (size_t)found, b);
	imap_untagged(s, "%s", gn_buf_data(b));
	gn_buf_free(&b);
	finish(s, cmd, uid, "THREAD");
}

void imap_cmd_sort(struct imap_session *s, struct imap_command *cmd)
{
	sort(s, cmd, cmd->args, cmd->count, false);
}

void imap_cmd_thread(struct imap_session *s, struct imap_command *cmd)
{
	thread(s, cmd, cmd->args, cmd->count, false);
}

void imap_uid_sort(struct imap_session *s, struct imap_command *cmd)
{
	if (imap_arg_atom_is(&cmd->args[0], "SORT"))
		sort(s, cmd, cmd->args + 1, cmd->count - 1, true);
	else
		thread(s, cmd, cmd->args + 1, cmd->count - 1, true);
}
