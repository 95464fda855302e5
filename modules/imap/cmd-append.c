/*
 * modules/imap/cmd-append.c: APPEND (RFC 9051 6.3.12, RFC 3501 6.3.11),
 * MULTIAPPEND (RFC 3502), APPENDUID (RFC 4315 3), APPENDLIMIT (RFC 7889),
 * the UTF8 form of a message (RFC 6855 4), and REPLACE / UID REPLACE (RFC
 * 8508): one message appended and the replaced one (in the selected
 * mailbox) expunged, in the same transaction.
 *
 * The message streams: the reader (parser.c) hands out each message's
 * literal in chunks as they arrive (IMAP_READ_MESSAGE, IMAP_READ_DATA),
 * and each chunk goes at once into a blob writer (gannet/store.h; chunks
 * of GN_STORE_CHUNK_SIZE reach the database as they fill, each in a
 * transaction of its own, like a delivery's body) and into the streaming
 * MIME parser.  Nothing holds a whole message.
 *
 *   message announced  the first one: the command so far is parsed
 *                      (mailbox, flags, date-time) and the mailbox looked
 *                      up; later ones (MULTIAPPEND): what came between.
 *                      Limits are checked before any octet is read: a
 *                      synchronising literal that is refused gets the
 *                      tagged answer instead of "+", a non-synchronising
 *                      one is read and dropped, then answered.
 *   chunks             blob writer and MIME parser; at the message's end
 *                      the blob is finished (its hash verified); the
 *                      first message's, when small, in the transaction
 *                      below (struct append_msg).
 *   the line's end     one transaction adds every message
 *                      (gn_store_message_add()): all or none.  OK
 *                      [APPENDUID] only after the commit.
 *
 * A command that fails leaves blobs no message refers to (those finished)
 * for gn_store_blob_cleanup(); an unfinished one is deleted with its
 * writer, also when the connection ends in the middle of a message.
 */
#include "imap.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A message read, waiting for the commit. */
struct append_msg {
	unsigned char hash[GN_STORE_HASH_SIZE];
	unsigned flags;
	const char **keywords;
	size_t n_keywords;
	time_t date;
	struct gn_mime_message *mime;
	/* The first message's blob when it fits in one chunk, finished in
	 * the transaction that adds the messages instead of one of its
	 * own: one commit (a WAL flush) less, and the blob's row, when the
	 * body existed, stays locked until the message holds its reference,
	 * so that an expunge of another message with the same body cannot
	 * delete it in between.  The transaction locks the account first
	 * (gn_store_account_lock()), as expunges do.  Later messages of a
	 * MULTIAPPEND, and larger ones (whose finish checks every chunk),
	 * finish at once: at most one small writer waits.  Their blobs are
	 * held for them from the finish (migration 010, store/blob.c). */
	struct gn_store_blob_writer *writer;
};

struct imap_append {
	struct gn_pool *pool;	/* the command's: its strings, the list */
	char *tag;
	int64_t mailbox_id;
	uint32_t uidvalidity;
	char *mailbox;		/* the store's name, for logs */
	/* The message being read. */
	struct gn_store_blob_writer *writer;
	struct gn_mime_parser *parser;
	bool literal8;
	/* The message came as UTF8 (~{n}...): its ")" is still due. */
	bool utf8;
	struct append_msg cur;
	/* The messages read. */
	struct append_msg *msgs;
	size_t count, cap;
	uint64_t total;
	size_t size;		/* of the message being read */
	bool blob_failed;	/* store_all(): a blob did not finish */
	/* store_all(): a module's store check refused (imap.v1). */
	const char *refused_code, *refused_text;
	/* REPLACE (RFC 8508): the UID of the message it replaces in the
	 * selected mailbox, and the command's name for answers. */
	bool replace;
	uint32_t replace_uid;
	const char *verb;
};

static void job_free(struct imap_append **jp)
{
	struct imap_append *j = *jp;
	if (j == NULL)
		return;
	gn_store_blob_writer_free(&j->writer);
	gn_mime_parser_free(&j->parser);
	gn_mime_message_free(&j->cur.mime);
	for (size_t i = 0; i < j->count; i++) {
		gn_mime_message_free(&j->msgs[i].mime);
		gn_store_blob_writer_free(&j->msgs[i].writer);
	}
	gn_free(j->msgs);
	gn_pool_free(&j->pool);
	gn_free(j);
	*jp = NULL;
}

void imap_append_cancel(struct imap_session *s)
{
	job_free(&s->append);
}

/* RFC 9051 9: date-time = DQUOTE date-day-fixed "-" date-month "-"
 * date-year SP time SP zone DQUOTE, date-day-fixed = (SP DIGIT) / 2DIGIT:
 * "dd-Mon-yyyy hh:mm:ss +zzzz", 26 octets inside the quotes.  0 with *t_r,
 * or -1 (not that form, or no such day). */
static int parse_date_time(const char *s, size_t len, time_t *t_r)
{
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	/* Which octets are digits: the day's first may be a space. */
	static const char shape[] = "Dd-mmm-dddd dd:dd:dd sdddd";
	if (len != sizeof(shape) - 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = s[i], want = shape[i];
		bool digit = c >= '0' && c <= '9';
		if ((want == 'd' && !digit) || (want == 'D' && !digit && c != ' ') ||
		    (want == 's' && c != '+' && c != '-') || ((want == '-' || want == ':' || want == ' ') && c != want))
			return -1;
	}
#define NUM2(p) (((p)[0] == ' ' ? 0 : (p)[0] - '0') * 10 + (p)[1] - '0')
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = NUM2(s);
	tm.tm_mon = -1;
	for (int m = 0; m < 12; m++)
		if (strncasecmp(s + 3, months[m], 3) == 0)
			tm.tm_mon = m;
	tm.tm_year = NUM2(s + 7) * 100 + NUM2(s + 9) - 1900;
	tm.tm_hour = NUM2(s + 12);
	tm.tm_min = NUM2(s + 15);
	tm.tm_sec = NUM2(s + 18);
	int zh = NUM2(s + 22), zm = NUM2(s + 24);
#undef NUM2
	if (tm.tm_mon < 0 || tm.tm_mday < 1 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60 ||
	    zm > 59)
		return -1;
	int mday = tm.tm_mday, mon = tm.tm_mon;
	time_t t = timegm(&tm);
	/* timegm() moves 31-Feb to March: no such day. */
	if (t == (time_t)-1 || tm.tm_mday != mday || tm.tm_mon != mon)
		return -1;
	long off = (zh * 60L + zm) * 60L;
	t = s[21] == '+' ? t - off : t + off;
	/* 0 would mean "now" to the store. */
	if (t <= 0)
		return -1;
	*t_r = t;
	return 0;
}

/* The optional flag list and date-time before a message: 0, or -1 with
 * *error_r. */
static int message_options(struct gn_pool *pool, const struct imap_arg *args, unsigned count,
			   struct append_msg *m, const char **error_r)
{
	unsigned i = 0;
	m->flags = 0;
	m->keywords = NULL;
	m->n_keywords = 0;
	m->date = 0;
	if (i < count && args[i].type == IMAP_ARG_LIST) {
		if (imap_flags_parse(pool, &args[i], &m->flags, &m->keywords, &m->n_keywords, error_r) < 0)
			return -1;
		for (size_t k = 0; k < m->n_keywords; k++) {
			if (strlen(m->keywords[k]) > 100) {
				*error_r = "Keyword longer than 100 octets";
				return -1;
			}
		}
		i++;
	}
	if (i < count && args[i].type == IMAP_ARG_STRING) {
		if (parse_date_time(args[i].str, args[i].len, &m->date) < 0) {
			*error_r = "Bad date-time (RFC 9051: \"dd-Mon-yyyy hh:mm:ss +zzzz\")";
			return -1;
		}
		i++;
	}
	if (i != count) {
		*error_r = "APPEND takes a mailbox, an optional flag list, an optional date-time "
			   "and a message literal";
		return -1;
	}
	return 0;
}

/* The announced message is refused with status, code (static) and text:
 * before "+" for a synchronising literal, else once it and the rest of
 * the command were read and dropped (the reader answers then,
 * IMAP_READ_ERROR).  The command ends. */
static void refuse(struct imap_session *s, const char *tag, bool sync, const char *status, const char *code,
		   const char *text)
{
	/* The text may come from the command's pool, freed here; the
	 * session's lives until the reader reports it (no command ends
	 * before). */
	text = gn_pool_strdup(s->cmd_pool, text);
	tag = gn_pool_strdup(s->cmd_pool, tag);
	gn_log(GN_LOG_INFO, IMAP_AREA, "event=append_refused conn=%s account=%s status=%s code=%s error=%s",
	       gn_conn_id(s->conn), gn_log_quote(0, s->account_name != NULL ? s->account_name : ""), status,
	       code != NULL ? code : "-", gn_log_quote(1, text));
	job_free(&s->append);
	if (sync) {
		imap_tagged(s, tag, status, code, "%s", text);
		imap_reader_reject(s->reader);
	} else if (!imap_reader_skip(s->reader, tag, status, code, text)) {
		/* RFC 7888 4: the client sends it anyway; too much to skip. */
		imap_tagged(s, tag, status, code, "%s", text);
		imap_bye(s, "input_refused", "Non-synchronising literal too large");
	}
}

/* A message being read fails: the rest of it and of the command is
 * dropped, then answered. */
static void fail_reading(struct imap_session *s, const char *status, const char *code, const char *text)
{
	struct imap_append *j = s->append;
	gn_log(GN_LOG_INFO, IMAP_AREA, "event=append_failed conn=%s account=%s mailbox=%s error=%s",
	       gn_conn_id(s->conn), gn_log_quote(0, s->account_name), gn_log_quote(1, j->mailbox),
	       gn_log_quote(2, text));
	const char *tag = gn_pool_strdup(s->cmd_pool, j->tag);
	job_free(&s->append);
	(void)imap_reader_skip(s->reader, tag, status, code, text);
}

/* The first message: the command up to it, parsed.  NULL after refusing. */
static struct imap_append *job_start(struct imap_session *s, const char *text, size_t len, bool sync)
{
	struct gn_pool *pool = s->cmd_pool;
	struct imap_command cmd;
	const char *code, *err;
	char *line = gn_pool_alloc(pool, len + 3);
	memcpy(line, text, len);
	memcpy(line + len, "\r\n", 3);
	if (imap_parse(pool, &imap_settings.limits, line, len + 2, &cmd, &code, &err) < 0) {
		refuse(s, cmd.tag != NULL ? cmd.tag : "*", sync, "BAD", code, err);
		return NULL;
	}
	if (s->state != IMAP_AUTH && s->state != IMAP_SELECTED) {
		refuse(s, cmd.tag, sync, "BAD", NULL, "APPEND is not valid before logging in");
		return NULL;
	}
	/* RFC 8508 3: REPLACE seq mailbox ..., UID REPLACE uid mailbox ...,
	 * in the selected state only. */
	bool replace = strcmp(cmd.name, "REPLACE") == 0, by_uid = false;
	if (strcmp(cmd.name, "UID") == 0) {
		replace = by_uid = true;
		cmd.args++;
		cmd.count--;
	}
	const char *verb = !replace ? "APPEND" : by_uid ? "UID REPLACE" : "REPLACE";
	uint32_t old_uid = 0;
	if (replace) {
		if (s->state != IMAP_SELECTED || s->sel == NULL) {
			refuse(s, cmd.tag, sync, "BAD", NULL, "REPLACE is valid only with a mailbox selected");
			return NULL;
		}
		uint64_t n = 0;
		const char *num = cmd.count >= 1 && cmd.args[0].type == IMAP_ARG_ATOM ? cmd.args[0].str : "";
		size_t k = 0;
		while (num[k] >= '0' && num[k] <= '9' && n <= UINT32_MAX)
			n = n * 10 + (uint64_t)(num[k++] - '0');
		if (k == 0 || num[k] != '\0' || n == 0 || n > UINT32_MAX) {
			refuse(s, cmd.tag, sync, "BAD", NULL, "REPLACE takes a message number, a mailbox, "
			       "optional flags and date-time, and a message literal");
			return NULL;
		}
		if (s->sel->readonly) {
			refuse(s, cmd.tag, sync, "NO", "READ-ONLY", "The mailbox is read-only (EXAMINE)");
			return NULL;
		}
		if (by_uid) {
			for (size_t i = 0; i < s->sel->count && old_uid == 0; i++)
				if (s->sel->uids[i] == n)
					old_uid = (uint32_t)n;
			if (old_uid == 0) {
				refuse(s, cmd.tag, sync, "NO", "NONEXISTENT", "No message with that UID");
				return NULL;
			}
		} else {
			if (n > s->sel->count) {
				/* RFC 9051 7.4.1: an invalid message number. */
				refuse(s, cmd.tag, sync, "BAD", NULL, "No message with that sequence number");
				return NULL;
			}
			old_uid = s->sel->uids[n - 1];
		}
		cmd.args++;
		cmd.count--;
	}
	const char *wire, *store, *name;
	size_t wire_len;
	if (cmd.count < 1 || !imap_arg_astring(&cmd.args[0], &wire, &wire_len) || strlen(wire) != wire_len) {
		refuse(s, cmd.tag, sync, "BAD", NULL, "APPEND takes a mailbox name first");
		return NULL;
	}
	struct append_msg first;
	memset(&first, 0, sizeof(first));
	if (message_options(pool, cmd.args + 1, cmd.count - 1, &first, &err) < 0) {
		refuse(s, cmd.tag, sync, "BAD", NULL, err);
		return NULL;
	}
	struct gn_store_mailbox *mb = NULL;
	store = imap_name_from_wire(s, pool, wire);
	int r = store == NULL || gn_store_mailbox_name_check(pool, store, &name, &err) < 0 ? 0 :
		gn_store_mailbox_find(pool, s->account_id, name, &mb, &err);
	if (r < 0) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=append_failed conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, err));
		refuse(s, cmd.tag, sync, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		return NULL;
	}
	if (r == 0) {
		/* RFC 9051 6.3.12: the client may CREATE it and try again. */
		refuse(s, cmd.tag, sync, "NO", "TRYCREATE", "No such mailbox");
		return NULL;
	}
	struct imap_append *j = gn_calloc(1, sizeof(*j));
	j->pool = gn_pool_new();
	j->tag = gn_pool_strdup(j->pool, cmd.tag);
	j->mailbox_id = gn_store_mailbox_id(mb);
	j->uidvalidity = gn_store_mailbox_uidvalidity(mb);
	j->mailbox = gn_pool_strdup(j->pool, gn_store_mailbox_name(mb));
	j->replace = replace;
	j->replace_uid = old_uid;
	j->verb = verb;
	j->cur = first;
	/* The keywords live as long as the command, not the pool cleared
	 * after it. */
	const char **kw = gn_pool_alloc(j->pool, (first.n_keywords + 1) * sizeof(*kw));
	for (size_t k = 0; k < first.n_keywords; k++)
		kw[k] = gn_pool_strdup(j->pool, first.keywords[k]);
	j->cur.keywords = kw;
	return j;
}

/* RFC 6855 4: append-data =/ "UTF8" SP "(" literal8 ")".  Whether the
 * text before a message's literal ends in "UTF8 (" (then cut off, leaving
 * the space before it). */
static bool utf8_form(const char *text, size_t *len)
{
	static const char word[] = " UTF8 (";
	size_t n = sizeof(word) - 1;
	if (*len < n || strncasecmp(text + *len - n, word, n) != 0)
		return false;
	*len -= n - 1;
	return true;
}

void imap_append_message(struct imap_session *s)
{
	const char *text, *err, *code;
	size_t len, size;
	bool sync, l8, utf8;
	imap_reader_message(s->reader, &text, &len, &size, &sync, &l8);
	struct imap_append *j = s->append;
	const char *tag = j != NULL ? gn_pool_strdup(s->cmd_pool, j->tag) : NULL;
	/* MULTIAPPEND: the ")" that ends the previous message's UTF8 form. */
	if (j != NULL && j->utf8) {
		if (len == 0 || text[0] != ')') {
			refuse(s, tag, sync, "BAD", NULL, "\")\" expected after a UTF8 message");
			return;
		}
		text++;
		len--;
	}
	utf8 = utf8_form(text, &len);
	/* A message's literal follows a space. */
	if (len == 0 || text[len - 1] != ' ') {
		refuse(s, tag != NULL ? tag : "*", sync, "BAD", NULL, "Space expected before the message");
		return;
	}
	len--;
	if (j == NULL) {
		if ((j = job_start(s, text, len, sync)) == NULL)
			return;
		s->append = j;
		tag = j->tag;
	} else if (j->replace) {
		refuse(s, tag, sync, "BAD", NULL, "REPLACE takes one message");
		return;
	} else {
		/* MULTIAPPEND (RFC 3502): options of the next message. */
		struct imap_arg *args;
		unsigned count;
		if (imap_parse_args(s->cmd_pool, &imap_settings.limits, text, len, &args, &count, &code, &err) < 0 ||
		    message_options(j->pool, args, count, &j->cur, &err) < 0) {
			refuse(s, tag, sync, "BAD", code, err);
			return;
		}
	}
	if (utf8 && !s->enabled_utf8) {
		refuse(s, tag, sync, "BAD", NULL, "APPEND UTF8 needs ENABLE UTF8=ACCEPT");
		return;
	}
	if (utf8 && !l8) {
		refuse(s, tag, sync, "BAD", NULL, "APPEND UTF8 takes a literal8 (~{n})");
		return;
	}
	/* RFC 7889: the limit is answered before the message is read. */
	if (size == 0) {
		refuse(s, tag, sync, "NO", NULL, "Empty message");
		return;
	}
	if (size > imap_settings.max_message) {
		refuse(s, tag, sync, "NO", "TOOBIG", "Message larger than the APPENDLIMIT");
		return;
	}
	if (j->count >= imap_settings.max_append_messages) {
		refuse(s, tag, sync, "NO", "LIMIT", "Too many messages in one APPEND");
		return;
	}
	if (j->total + size > imap_settings.max_append_total) {
		refuse(s, tag, sync, "NO", "TOOBIG", "The messages of this APPEND are too large together");
		return;
	}
	j->total += size;
	j->size = size;
	j->literal8 = l8;
	j->utf8 = utf8;
	j->writer = gn_store_blob_writer_new();
	j->parser = gn_mime_parser_new(NULL);
	if (sync)
		imap_continue(s, "Ready for the message");
	imap_reader_message_go(s->reader);
}

void imap_append_data(struct imap_session *s)
{
	struct imap_append *j = s->append;
	const char *data, *err;
	size_t len;
	bool last = imap_reader_data(s->reader, &data, &len);
	if (j == NULL || j->writer == NULL)
		return;
	/* RFC 9051 4.3: a literal holds no NUL; literal8 may (RFC 3516). */
	if (!j->literal8 && memchr(data, '\0', len) != NULL) {
		fail_reading(s, "BAD", NULL, "NUL in a message literal (use literal8)");
		return;
	}
	gn_mime_parser_feed(j->parser, data, len);
	if (gn_store_blob_write(j->writer, data, len, &err) < 0) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=append_blob_failed conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, err));
		fail_reading(s, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		return;
	}
	if (!last)
		return;
	if (j->count == 0 && j->size <= GN_STORE_CHUNK_SIZE) {
		j->cur.writer = j->writer;
		j->writer = NULL;
	} else if (gn_store_blob_finish(j->writer, j->cur.hash, NULL, &err) < 0) {
		gn_log(GN_LOG_ERROR, IMAP_AREA, "event=append_blob_failed conn=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, err));
		fail_reading(s, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		return;
	}
	gn_store_blob_writer_free(&j->writer);
	gn_mime_parser_finish(j->parser, &j->cur.mime);
	gn_mime_parser_free(&j->parser);
	if (j->count == j->cap) {
		j->cap = j->cap == 0 ? 4 : j->cap * 2;
		j->msgs = gn_realloc(j->msgs, j->cap * sizeof(*j->msgs));
	}
	j->msgs[j->count++] = j->cur;
	memset(&j->cur, 0, sizeof(j->cur));
}

/* All messages in one transaction: 0 with their UIDs, or -1. */
static int store_all(struct imap_session *s, struct imap_append *j, uint32_t *uids, const char **err_r)
{
	if (gn_db_begin(err_r) < 0)
		return -1;
	bool checked = imap_service_store_checked();
	if (j->count > 0 && (j->msgs[0].writer != NULL || checked || j->replace)) {
		int r = gn_store_account_lock(s->account_id, err_r);
		if (r <= 0) {
			if (r == 0)
				*err_r = "no such account";
			gn_db_rollback();
			return -1;
		}
	}
	/* REPLACE: the message it replaces is still there (read after the
	 * lock: an expunge by another session waits for it or came before),
	 * and its size, given back in the same transaction. */
	uint64_t old_size = 0;
	if (j->replace) {
		struct gn_store_message *old;
		int r = gn_store_message_get(j->pool, s->account_id, s->sel->id, j->replace_uid, &old, err_r);
		if (r <= 0) {
			if (r == 0) {
				j->refused_code = "EXPUNGEISSUED";
				j->refused_text = "The message to replace was expunged";
				*err_r = j->refused_text;
			}
			gn_db_rollback();
			return -1;
		}
		old_size = gn_store_message_size(old);
	}
	/* Modules' checks (quota): the whole MULTIAPPEND at once, with the
	 * account locked, before anything is added; a REPLACE for what it
	 * adds beyond the message it replaces (bytes, and no message). */
	if (j->count > 0 && checked) {
		uint64_t bytes = j->total > old_size ? j->total - old_size : 0;
		int r = imap_service_store_check(s, j->replace ? "REPLACE" : "APPEND", bytes,
						 j->replace ? 0 : (uint64_t)j->count, &j->refused_code,
						 &j->refused_text);
		if (r != 0) {
			if (r < 0)
				j->blob_failed = true;	/* answered as temporary */
			*err_r = r < 0 ? "store check failed" : j->refused_text;
			gn_db_rollback();
			return -1;
		}
	}
	for (size_t i = 0; i < j->count; i++) {
		if (j->msgs[i].writer != NULL &&
		    gn_store_blob_finish(j->msgs[i].writer, j->msgs[i].hash, NULL, err_r) < 0) {
			j->blob_failed = true;
			gn_db_rollback();
			return -1;
		}
		struct gn_store_message_new m;
		memset(&m, 0, sizeof(m));
		m.size = sizeof(m);
		m.account_id = s->account_id;
		m.mailbox_id = j->mailbox_id;
		memcpy(m.blob_hash, j->msgs[i].hash, sizeof(m.blob_hash));
		m.flags = j->msgs[i].flags;
		m.keywords = j->msgs[i].keywords;
		m.n_keywords = j->msgs[i].n_keywords;
		m.internal_date = j->msgs[i].date;
		m.mime = j->msgs[i].mime;
		struct gn_store_message *msg;
		if (gn_store_message_add(j->pool, &m, &msg, err_r) < 0) {
			gn_db_rollback();
			return -1;
		}
		uids[i] = gn_store_message_uid(msg);
	}
	/* RFC 8508 3.3: the replaced message is expunged as by UID EXPUNGE. */
	if (j->replace && gn_store_message_expunge(j->pool, s->account_id, s->sel->id, &j->replace_uid, 1, NULL,
						   NULL, err_r) != 1) {
		if (!gn_db_in_transaction() || *err_r == NULL)
			*err_r = "the message to replace could not be expunged";
		gn_db_rollback();
		return -1;
	}
	return gn_db_commit(err_r);
}

void imap_append_end(struct imap_session *s)
{
	struct imap_append *j = s->append;
	size_t len;
	const char *rest = imap_reader_command(s->reader, &len);
	if (j->utf8 && len > 0 && rest[0] == ')') {
		rest++;
		len--;
	} else if (j->utf8) {
		len = 0;	/* the ")" is missing */
	}
	/* After the last message: the line's end, nothing else. */
	if (!(len == 1 && rest[0] == '\n') && !(len == 2 && rest[0] == '\r' && rest[1] == '\n')) {
		imap_tagged(s, j->tag, "BAD", NULL, "Line end expected after the message");
		job_free(&s->append);
		return;
	}
	uint32_t *uids = gn_pool_alloc(j->pool, (j->count + 1) * sizeof(*uids));
	const char *err;
	if (store_all(s, j, uids, &err) < 0) {
		if (j->refused_text != NULL && !j->blob_failed) {
			imap_tagged(s, j->tag, "NO", j->refused_code, "%s", j->refused_text);
			job_free(&s->append);
			return;
		}
		bool temp = j->blob_failed || gn_db_error_is_temporary();
		gn_log(temp ? GN_LOG_ERROR : GN_LOG_INFO, IMAP_AREA,
		       "event=append_failed conn=%s account=%s mailbox=%s error=%s", gn_conn_id(s->conn),
		       gn_log_quote(0, s->account_name), gn_log_quote(1, j->mailbox), gn_log_quote(2, err));
		if (temp)
			imap_tagged(s, j->tag, "NO", "UNAVAILABLE", "Temporary failure, try again later");
		else
			imap_tagged(s, j->tag, "NO", "CANNOT", "%s", err);
		job_free(&s->append);
		return;
	}
	gn_log(GN_LOG_INFO, IMAP_AREA, "event=append conn=%s account=%s mailbox=%s messages=%zu size=%llu%s",
	       gn_conn_id(s->conn), gn_log_quote(0, s->account_name), gn_log_quote(1, j->mailbox), j->count,
	       (unsigned long long)j->total, j->replace ? " replace=yes" : "");
	if (j->replace) {
		/* RFC 8508 3.4: APPENDUID in an untagged OK, then the
		 * EXPUNGE (or VANISHED) of the old message and EXISTS when
		 * the new one is in the selected mailbox, then the tagged
		 * OK. */
		imap_untagged(s, "OK [APPENDUID %u %u] Replacement Message ready", (unsigned)j->uidvalidity,
			      (unsigned)uids[0]);
		(void)imap_refresh(s);
		imap_tagged(s, j->tag, "OK", NULL, "%s completed", j->verb);
		job_free(&s->append);
		return;
	}
	/* RFC 9051 6.3.12: appending to the selected mailbox, the client
	 * hears of the new message(s) (EXISTS) before the tagged OK. */
	if (s->sel != NULL && s->sel->id == j->mailbox_id)
		(void)imap_refresh(s);
	/* RFC 4315 3: APPENDUID uidvalidity uid (uid-set for MULTIAPPEND,
	 * RFC 4315 4). */
	struct gn_buf *code = gn_buf_new(0);
	(void)gn_buf_printf(code, "APPENDUID %u ", (unsigned)j->uidvalidity);
	imap_append_uid_set(code, uids, j->count);
	imap_tagged(s, j->tag, "OK", gn_buf_data(code), "APPEND completed");
	gn_buf_free(&code);
	job_free(&s->append);
}

/* REPLACE or UID REPLACE that reached the command table: no message
 * literal either. */
void imap_cmd_replace(struct imap_session *s, struct imap_command *cmd)
{
	imap_tagged(s, cmd->tag, "BAD", NULL, "REPLACE takes a message number, a mailbox, an optional flag list, "
		    "an optional date-time and a message literal");
}

/* APPEND that reached the command table: it has no message literal (the
 * reader hands those to imap_append_message()). */
void imap_cmd_append(struct imap_session *s, struct imap_command *cmd)
{
	imap_tagged(s, cmd->tag, "BAD", NULL,
		    "APPEND takes a mailbox, an optional flag list, an optional date-time and a message literal");
}
