/*
 * core/store/import.c: `gannet import mbox|maildir` and `gannet export maildir`.
 *
 * Readers first, then the commands.
 *
 * The mbox reader (struct mbox_reader) is a resumable state machine: feed
 * it the file in chunks of any size; it calls back at each message's start
 * (with its From_ line), for each piece of the message, and at its end, and
 * never holds more than one line start in memory.  The format is mboxrd
 * (https://www.loc.gov/preservation/digital/formats/fdd/fdd000385.shtml,
 * and RFC 4155 for the From_ line):
 *   - a message starts at a line "From " at the start of the file or after
 *     an empty line (requiring the empty line as well keeps unquoted
 *     "From " lines of mboxo files inside their message);
 *   - the empty line before a From_ line (and at the end of the file) is
 *     the separator the writer added, not part of the message;
 *   - a line ">From ", ">>From " ... loses one ">" (mboxrd unquoting; for
 *     mboxo files this also unquotes what was quoted once, which is what
 *     every reader does);
 *   - Content-Length headers are ignored (they are wrong too often).
 *
 * The maildir reader lists cur/ and new/ (never tmp/), and decodes the
 * info part of each file name (":2,FLAGS", also with ";" or "!" as the
 * separator some systems use on file systems without ":"), see
 * https://cr.yp.to/proto/maildir.html: S \Seen, R \Answered, F \Flagged,
 * T \Deleted, D \Draft, P (passed) has no IMAP flag; lower-case letters
 * are keywords, a = 0 ... z = 25, named by Dovecot's dovecot-keywords file
 * ("N name" per line).  The internal date is the file's mtime, as Dovecot
 * does.  Files sort by mtime then name, so import keeps the mailbox order.
 *
 * Messages go into the store through the delivery pipeline (gannet/deliver.h)
 * with line endings made CRLF (as SMTP delivers them); export writes maildir
 * files with LF line endings, the maildir convention, so an LF file
 * imported and exported comes back byte for byte.
 */
#include "store/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


/* ---- flags ---- */

/* The maildir letters are the store's flags (gannet/store.h). */
#define IMPORT_SEEN GN_STORE_SEEN
#define IMPORT_ANSWERED GN_STORE_ANSWERED
#define IMPORT_FLAGGED GN_STORE_FLAGGED
#define IMPORT_DELETED GN_STORE_DELETED
#define IMPORT_DRAFT GN_STORE_DRAFT

/* Maildir info letters, in the order maildir wants them (ASCII). */
static const struct {
	char letter;
	unsigned flag;
	const char *imap;
} maildir_flags[] = {
	{ 'D', IMPORT_DRAFT, "\\Draft" },
	{ 'F', IMPORT_FLAGGED, "\\Flagged" },
	{ 'R', IMPORT_ANSWERED, "\\Answered" },
	{ 'S', IMPORT_SEEN, "\\Seen" },
	{ 'T', IMPORT_DELETED, "\\Deleted" },
};

#define N_MAILDIR_FLAGS (sizeof(maildir_flags) / sizeof(maildir_flags[0]))
#define MAILDIR_MAX_KEYWORDS 26

/* ---- mbox ---- */

/* The longest line start kept while deciding whether a line is a From_
 * line or a quoted one; longer runs of '>' are passed through as they are. */
#define MBOX_LINE_START_MAX 1024
/* A From_ line is kept whole up to this length (the rest is dropped). */
#define MBOX_FROM_LINE_MAX 1024

struct mbox_reader_ops {
	/* A message starts; from_line is the From_ line without "From " and
	 * the line ending. */
	void (*begin)(const char *from_line, void *data);
	void (*body)(const void *chunk, size_t len, void *data);
	void (*end)(void *data);
};

enum mbox_state {
	MBOX_LINE_START = 0,	/* at the start of a line: collecting its start */
	MBOX_IN_LINE,		/* inside a line already passed on */
	MBOX_FROM_LINE,		/* inside a From_ line: collecting it */
};

struct mbox_reader {
	const struct mbox_reader_ops *ops;
	void *data;
	enum mbox_state state;
	bool in_message;
	bool prev_empty;	/* the previous line was empty (or start of file) */
	bool blank_held;	/* an empty line waits: separator or content? */
	char blank[2];		/* its bytes: "\n" or "\r\n" */
	size_t blank_len;
	char start[MBOX_LINE_START_MAX];	/* the line start being decided */
	size_t start_len;
	char from[MBOX_FROM_LINE_MAX + 1];
	size_t from_len;
	size_t garbage;		/* bytes before the first From_ line */
	size_t messages;
};

static void mbox_reader_init(struct mbox_reader *r, const struct mbox_reader_ops *ops,
			     void *data)
{
	memset(r, 0, sizeof(*r));
	r->ops = ops;
	r->data = data;
	r->prev_empty = true;
}

static void mbox_emit(struct mbox_reader *r, const void *p, size_t len)
{
	if (len == 0)
		return;
	if (!r->in_message) {
		r->garbage += len;
		return;
	}
	r->ops->body(p, len, r->data);
}

static void mbox_flush_blank(struct mbox_reader *r)
{
	if (r->blank_held) {
		r->blank_held = false;
		mbox_emit(r, r->blank, r->blank_len);
	}
}

static void mbox_end_message(struct mbox_reader *r)
{
	if (r->in_message) {
		r->ops->end(r->data);
		r->in_message = false;
	}
}

static void mbox_from_done(struct mbox_reader *r);

/* What the collected line start is, once known. */
enum start_kind { START_UNDECIDED, START_FROM, START_QUOTED, START_OTHER };

static enum start_kind mbox_classify(const struct mbox_reader *r, bool complete)
{
	const char *s = r->start;
	size_t n = r->start_len, q = 0;
	while (q < n && s[q] == '>')
		q++;
	size_t rest = n - q;
	static const char from[] = "From ";
	size_t cmp = rest < 5 ? rest : 5;
	if (memcmp(s + q, from, cmp) != 0)
		return START_OTHER;
	if (rest < 5)
		return complete || n >= sizeof(r->start) ? START_OTHER : START_UNDECIDED;
	if (q == 0)
		return START_FROM;
	return START_QUOTED;
}

/* The line start is decided (kind): act on it.  complete: the start holds
 * the whole line, its line feed included. */
static void mbox_decided(struct mbox_reader *r, enum start_kind kind, bool complete)
{
	if (kind == START_FROM && r->prev_empty) {
		/* RFC 4155: a new message; the held empty line separated. */
		r->blank_held = false;
		mbox_end_message(r);
		size_t n = r->start_len - 5;
		if (n > MBOX_FROM_LINE_MAX)
			n = MBOX_FROM_LINE_MAX;
		memcpy(r->from, r->start + 5, n);
		r->from_len = n;
		r->start_len = 0;
		r->state = MBOX_FROM_LINE;
		if (complete)
			mbox_from_done(r);
		return;
	}
	mbox_flush_blank(r);
	if (kind == START_QUOTED)
		mbox_emit(r, r->start + 1, r->start_len - 1);	/* mboxrd: drop one '>' */
	else
		mbox_emit(r, r->start, r->start_len);
	r->start_len = 0;
	r->prev_empty = false;
	r->state = complete ? MBOX_LINE_START : MBOX_IN_LINE;
}

static void mbox_from_done(struct mbox_reader *r)
{
	size_t n = r->from_len;
	while (n > 0 && (r->from[n - 1] == '\r' || r->from[n - 1] == '\n'))
		n--;
	r->from[n] = '\0';
	r->in_message = true;
	r->messages++;
	r->ops->begin(r->from, r->data);
	r->prev_empty = false;
	r->state = MBOX_LINE_START;
}

/* One byte at the start of a line. */
static void mbox_line_start_byte(struct mbox_reader *r, char c)
{
	r->start[r->start_len++] = c;
	if (c == '\n') {
		if (r->start_len == 1 || (r->start_len == 2 && r->start[0] == '\r')) {
			/* An empty line: hold it (separator or content?). */
			mbox_flush_blank(r);
			memcpy(r->blank, r->start, r->start_len);
			r->blank_len = r->start_len;
			r->blank_held = true;
			r->prev_empty = true;
			r->start_len = 0;
			return;
		}
		mbox_decided(r, mbox_classify(r, true), true);
		return;
	}
	if (r->start_len == 1 && c == '\r')
		return;		/* maybe an empty CRLF line */
	enum start_kind kind = mbox_classify(r, false);
	if (kind != START_UNDECIDED)
		mbox_decided(r, kind, false);
}

static void mbox_reader_feed(struct mbox_reader *r, const char *p, size_t len)
{
	while (len > 0) {
		switch (r->state) {
		case MBOX_LINE_START:
			mbox_line_start_byte(r, *p);
			p++;
			len--;
			break;
		case MBOX_IN_LINE: {
			const char *nl = memchr(p, '\n', len);
			size_t n = nl != NULL ? (size_t)(nl - p) + 1 : len;
			mbox_emit(r, p, n);
			p += n;
			len -= n;
			if (nl != NULL)
				r->state = MBOX_LINE_START;
			break;
		}
		case MBOX_FROM_LINE: {
			const char *nl = memchr(p, '\n', len);
			size_t n = nl != NULL ? (size_t)(nl - p) + 1 : len;
			size_t room = MBOX_FROM_LINE_MAX - r->from_len;
			size_t take = n < room ? n : room;
			memcpy(r->from + r->from_len, p, take);
			r->from_len += take;
			p += n;
			len -= n;
			if (nl != NULL)
				mbox_from_done(r);
			break;
		}
		}
	}
}

/* End of input. */
static void mbox_reader_finish(struct mbox_reader *r)
{
	if (r->state == MBOX_FROM_LINE) {
		mbox_from_done(r);
	} else if (r->state == MBOX_LINE_START && r->start_len > 0) {
		enum start_kind kind = mbox_classify(r, true);
		mbox_decided(r, kind == START_UNDECIDED ? START_OTHER : kind, true);
		if (r->state == MBOX_FROM_LINE)
			mbox_from_done(r);
	}
	/* A held empty line at the end is the last separator. */
	r->blank_held = false;
	mbox_end_message(r);
}

/* The date of a From_ line "sender Thu Jan  1 00:00:00 2024" (asctime
 * form, RFC 4155; some writers add a zone): 1 with *t_r, 0 when none. */
static int mbox_from_date(const char *from_line, time_t *t_r)
{
	const char *sp = strchr(from_line, ' ');
	if (sp == NULL)
		return 0;
	while (*sp == ' ')
		sp++;
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = strptime(sp, "%a %b %d %H:%M:%S %Y", &tm);
	if (end == NULL)
		return 0;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return 0;
	*t_r = t;
	return 1;
}

/* ---- maildir ---- */

struct maildir_entry {
	char *path;		/* full path */
	char *name;		/* file name */
	time_t mtime;
	unsigned flags;		/* IMPORT_* */
	unsigned keywords;	/* bit i: keyword letter 'a' + i */
	bool is_new;		/* from new/ */
};

struct maildir_list {
	struct maildir_entry *entries;
	size_t count;
	char *keywords[MAILDIR_MAX_KEYWORDS];	/* from dovecot-keywords; NULL when unnamed */
};

/* Decodes the info of a maildir file name; returns the flags, keywords in
 * *keywords_r. */
static unsigned maildir_parse_info(const char *name, unsigned *keywords_r)
{
	unsigned flags = 0, keywords = 0;
	const char *info = NULL;
	for (const char *s = name; *s != '\0'; s++)
		if ((*s == ':' || *s == ';' || *s == '!') && s[1] == '2' && s[2] == ',')
			info = s + 3;
	if (info != NULL) {
		for (const char *s = info; *s != '\0'; s++) {
			if (*s >= 'a' && *s <= 'z') {
				keywords |= 1u << (*s - 'a');
				continue;
			}
			for (size_t i = 0; i < N_MAILDIR_FLAGS; i++)
				if (maildir_flags[i].letter == *s)
					flags |= maildir_flags[i].flag;
		}
	}
	*keywords_r = keywords;
	return flags;
}

/* Reads Dovecot's dovecot-keywords: lines "N name", N in 0..25. */
static void maildir_read_keywords(const char *dir, char **keywords)
{
	char *path = gn_strdup_printf("%s/dovecot-keywords", dir);
	FILE *f = fopen(path, "r");
	gn_free(path);
	if (f == NULL)
		return;
	char line[1024];
	while (fgets(line, sizeof(line), f) != NULL) {
		char *end;
		errno = 0;
		long n = strtol(line, &end, 10);
		if (errno != 0 || end == line || *end != ' ' || n < 0 || n >= MAILDIR_MAX_KEYWORDS)
			continue;
		char *name = end + 1;
		name[strcspn(name, "\r\n")] = '\0';
		if (*name == '\0')
			continue;
		gn_free(keywords[n]);
		keywords[n] = gn_strdup(name);
	}
	fclose(f);
}

static int maildir_entry_cmp(const void *a, const void *b)
{
	const struct maildir_entry *x = a, *y = b;
	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void maildir_list_free(struct maildir_list *list)
{
	for (size_t i = 0; i < list->count; i++) {
		gn_free(list->entries[i].path);
		gn_free(list->entries[i].name);
	}
	gn_free(list->entries);
	for (size_t i = 0; i < MAILDIR_MAX_KEYWORDS; i++)
		gn_free(list->keywords[i]);
	memset(list, 0, sizeof(*list));
}

/* Lists the messages of the maildir dir.  Returns 0, or -1 with *error_r
 * (allocated, the caller gn_free()s it) when dir is no maildir. */
static int maildir_list(const char *dir, struct maildir_list *list, char **error_r)
{
	memset(list, 0, sizeof(*list));
	static const char *const subs[] = { "cur", "new" };
	size_t alloc = 0;
	bool any = false;
	for (size_t s = 0; s < 2; s++) {
		char *sub = gn_strdup_printf("%s/%s", dir, subs[s]);
		DIR *d = opendir(sub);
		if (d == NULL) {
			gn_free(sub);
			continue;
		}
		any = true;
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			char *path = gn_strdup_printf("%s/%s", sub, de->d_name);
			struct stat st;
			if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
				gn_free(path);
				continue;
			}
			if (list->count == alloc) {
				alloc = alloc ? alloc * 2 : 64;
				list->entries = gn_realloc(list->entries, alloc * sizeof(*list->entries));
			}
			struct maildir_entry *e = &list->entries[list->count++];
			e->path = path;
			e->name = gn_strdup(de->d_name);
			e->mtime = st.st_mtime;
			e->is_new = s == 1;
			e->flags = maildir_parse_info(e->name, &e->keywords);
		}
		closedir(d);
		gn_free(sub);
	}
	if (!any) {
		*error_r = gn_strdup_printf("%s: not a maildir (no cur/ or new/)", dir);
		return -1;
	}
	if (list->count > 1)
		qsort(list->entries, list->count, sizeof(*list->entries), maildir_entry_cmp);
	maildir_read_keywords(dir, list->keywords);
	return 0;
}

/* ---- line endings ---- */

/* Bare LF becomes CRLF on the way in (the store keeps messages as SMTP
 * delivers them); batched into writes of up to IO_SIZE bytes. */
#define IO_SIZE (64 * 1024)

struct crlf_writer {
	struct gn_delivery *d;
	char buf[IO_SIZE + 2];
	size_t len;
	bool prev_cr;
	bool failed;
};

static void crlf_flush(struct crlf_writer *w)
{
	if (w->len > 0 && gn_delivery_write(w->d, w->buf, w->len) < 0)
		w->failed = true;
	w->len = 0;
}

static void crlf_write(struct crlf_writer *w, const char *p, size_t len)
{
	while (len > 0) {
		/* Copy up to the next LF (or as much as fits) at once. */
		size_t room = IO_SIZE - w->len;
		size_t n = len < room ? len : room;
		const char *nl = memchr(p, '\n', n);
		size_t run = nl != NULL ? (size_t)(nl - p) : n;
		if (run > 0) {
			memcpy(w->buf + w->len, p, run);
			w->len += run;
			w->prev_cr = p[run - 1] == '\r';
			p += run;
			len -= run;
		}
		if (nl != NULL) {
			/* buf has IO_SIZE + 2 bytes: room for CR LF past IO_SIZE. */
			if (!w->prev_cr)
				w->buf[w->len++] = '\r';
			w->buf[w->len++] = '\n';
			w->prev_cr = false;
			p++;
			len--;
		}
		if (w->len >= IO_SIZE)
			crlf_flush(w);
	}
}

/* ---- importing ---- */

struct importer {
	struct gn_store_account *account;
	const char *mailbox;
	struct gn_delivery *d;
	struct crlf_writer w;
	size_t imported;
	size_t failed;
	const char *what;	/* the file, for messages */
};

static void importer_begin(struct importer *im, time_t date, unsigned flags,
			   const char *const *keywords, size_t n_keywords)
{
	im->d = gn_delivery_new("import", NULL);
	gn_delivery_add_account(im->d, im->account->id, NULL, 0);
	gn_delivery_set_mailbox_default(im->d, im->mailbox, GN_DELIVERY_FIXED_MAILBOX);
	gn_delivery_set_internal_date(im->d, date);
	gn_delivery_set_flags(im->d, flags, keywords, n_keywords);
	im->w.d = im->d;
	im->w.len = 0;
	im->w.prev_cr = false;
	im->w.failed = false;
}

/* Returns 0, or -1 when the message was not stored. */
static int importer_end(struct importer *im)
{
	crlf_flush(&im->w);
	int n = gn_delivery_run_sync(im->d);
	const struct gn_delivery_result *r = gn_delivery_result(im->d, 0);
	int ret = 0;
	if (n == 1) {
		im->imported++;
	} else {
		fprintf(stderr, "gannet: %s: message %zu not imported: %d %s %s\n", im->what,
			im->imported + im->failed + 1, r ? r->code : 0,
			r && r->enhanced ? r->enhanced : "", r && r->text ? r->text : "");
		im->failed++;
		ret = -1;
	}
	gn_delivery_free(&im->d);
	return ret;
}

/* Looks up the account and makes sure the mailbox exists.  Returns 0, or
 * the exit code. */
static int importer_init(struct importer *im, struct gn_pool *pool, const char *account,
			 const char *mailbox, const char *what)
{
	const char *error = NULL;
	memset(im, 0, sizeof(*im));
	im->what = what;
	int r = gn_store_account_find(pool, account, &im->account, &error);
	if (r <= 0) {
		fprintf(stderr, "gannet: %s%s\n", r == 0 ? "unknown account: " : "", r == 0 ? account : error);
		return 1;
	}
	struct gn_store_mailbox *mb = NULL;
	if (gn_store_mailbox_create(pool, im->account->id, mailbox, GN_STORE_SPECIAL_NONE,
				    &mb, &error) < 0) {
		fprintf(stderr, "gannet: mailbox %s: %s\n", mailbox, error);
		return 1;
	}
	im->mailbox = mb->name;
	return 0;
}

/* mbox */

struct mbox_import {
	struct importer im;
	bool stop;
};

static void mi_begin(const char *from_line, void *data)
{
	struct mbox_import *mi = data;
	time_t date = 0;
	mbox_from_date(from_line, &date);
	if (!mi->stop)
		importer_begin(&mi->im, date, 0, NULL, 0);
}

static void mi_body(const void *chunk, size_t len, void *data)
{
	struct mbox_import *mi = data;
	if (mi->im.d != NULL)
		crlf_write(&mi->im.w, chunk, len);
}

static void mi_end(void *data)
{
	struct mbox_import *mi = data;
	if (mi->im.d != NULL && importer_end(&mi->im) < 0)
		mi->stop = true;	/* the store fails: no use going on */
}

static const struct mbox_reader_ops mi_ops = { mi_begin, mi_body, mi_end };

static int cmd_import_mbox(int argc, char **argv, void *data)
{
	(void)data;
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: gannet import mbox ACCOUNT PATH [MAILBOX]\n");
		return 2;
	}
	const char *path = argv[2], *mailbox = argc > 3 ? argv[3] : "Inbox";
	struct gn_pool *pool = gn_pool_new();
	struct mbox_import mi;
	int rc = importer_init(&mi.im, pool, argv[1], mailbox, path);
	mi.stop = false;
	if (rc != 0)
		goto out;
	int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "gannet: %s: %s\n", path, strerror(errno));
		rc = 1;
		goto out;
	}
	struct mbox_reader r;
	mbox_reader_init(&r, &mi_ops, &mi);
	char *buf = gn_malloc(IO_SIZE);
	ssize_t n;
	while (!mi.stop && (n = read(fd, buf, IO_SIZE)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "gannet: %s: %s\n", path, strerror(errno));
			mi.stop = true;
			mi.im.failed++;
			break;
		}
		mbox_reader_feed(&r, buf, (size_t)n);
	}
	if (!mi.stop)
		mbox_reader_finish(&r);
	gn_delivery_free(&mi.im.d);
	gn_free(buf);
	if (fd != 0)
		close(fd);
	if (r.garbage > 0)
		fprintf(stderr, "gannet: %s: %zu bytes before the first From_ line ignored\n",
			path, r.garbage);
	printf("imported %zu messages into %s/%s\n", mi.im.imported, mi.im.account->name,
	       mi.im.mailbox);
	rc = mi.im.failed > 0 ? 1 : 0;
out:
	gn_pool_free(&pool);
	return rc;
}

/* maildir */

static int cmd_import_maildir(int argc, char **argv, void *data)
{
	(void)data;
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: gannet import maildir ACCOUNT PATH [MAILBOX]\n");
		return 2;
	}
	const char *path = argv[2], *mailbox = argc > 3 ? argv[3] : "Inbox";
	struct gn_pool *pool = gn_pool_new();
	struct importer im;
	struct maildir_list list;
	memset(&list, 0, sizeof(list));
	int rc = importer_init(&im, pool, argv[1], mailbox, path);
	if (rc != 0)
		goto out;
	char *error = NULL;
	if (maildir_list(path, &list, &error) < 0) {
		fprintf(stderr, "gannet: %s\n", error);
		gn_free(error);
		rc = 1;
		goto out;
	}
	char *buf = gn_malloc(IO_SIZE);
	for (size_t i = 0; i < list.count; i++) {
		const struct maildir_entry *e = &list.entries[i];
		const char *keywords[MAILDIR_MAX_KEYWORDS];
		size_t n_keywords = 0;
		for (unsigned k = 0; k < MAILDIR_MAX_KEYWORDS; k++) {
			if ((e->keywords & (1u << k)) == 0)
				continue;
			if (list.keywords[k] == NULL)
				fprintf(stderr, "gannet: %s: keyword letter %c has no name in dovecot-keywords: dropped\n",
					e->path, 'a' + k);
			else
				keywords[n_keywords++] = list.keywords[k];
		}
		int fd = open(e->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "gannet: %s: %s\n", e->path, strerror(errno));
			im.failed++;
			continue;
		}
		im.what = e->path;
		importer_begin(&im, e->mtime, e->flags, keywords, n_keywords);
		ssize_t n;
		while ((n = read(fd, buf, IO_SIZE)) != 0) {
			if (n < 0) {
				if (errno == EINTR)
					continue;
				fprintf(stderr, "gannet: %s: %s\n", e->path, strerror(errno));
				break;
			}
			crlf_write(&im.w, buf, (size_t)n);
		}
		close(fd);
		if (n < 0) {
			gn_delivery_free(&im.d);
			im.failed++;
			continue;
		}
		if (importer_end(&im) < 0)
			break;
	}
	gn_free(buf);
	printf("imported %zu messages into %s/%s\n", im.imported, im.account->name, im.mailbox);
	rc = im.failed > 0 ? 1 : 0;
out:
	maildir_list_free(&list);
	gn_pool_free(&pool);
	return rc;
}

/* ---- export ---- */

static int mkdir_p(const char *path)
{
	char *p = gn_strdup(path);
	for (char *s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			gn_free(p);
			return -1;
		}
		*s = '/';
	}
	int r = mkdir(p, 0700) < 0 && errno != EEXIST ? -1 : 0;
	gn_free(p);
	return r;
}

/* The maildir of a mailbox: Inbox is dir itself, others Maildir++
 * folders (dir/.a.b for "a/b"), as Dovecot lays them out. */
static char *export_dir(const char *dir, const char *name)
{
	if (strcmp(name, "Inbox") == 0)
		return gn_strdup(dir);
	char *folder = gn_strdup_printf("%s/.%s", dir, name);
	for (char *s = folder + strlen(dir) + 2; *s != '\0'; s++)
		if (*s == GN_STORE_MAILBOX_SEP)
			*s = '.';
	return folder;
}

/* Writes one message to tmp/ then renames it into cur/ (the maildir way:
 * a reader never sees a partial file).  Returns 0 or -1 (printed). */
static int export_message(int64_t account_id, const struct gn_store_message *m,
			  const char *mdir, const char *name, char *buf)
{
	const char *error;
	struct gn_store_body *body = NULL;
	int r = gn_store_message_open(account_id, m->mailbox_id, m->uid, &body, &error);
	if (r <= 0) {
		fprintf(stderr, "gannet: message %u: %s\n", m->uid, r == 0 ? "gone" : error);
		return -1;
	}
	char *tmp = gn_strdup_printf("%s/tmp/%s", mdir, name);
	char *dst = gn_strdup_printf("%s/cur/%s", mdir, name);
	int ret = -1;
	FILE *f = fopen(tmp, "w");
	if (f == NULL) {
		fprintf(stderr, "gannet: %s: %s\n", tmp, strerror(errno));
		goto out;
	}
	uint64_t off = 0;
	bool cr_held = false;
	for (;;) {
		size_t got = 0;
		if (gn_store_body_read(body, off, buf, IO_SIZE, &got, &error) < 0) {
			fprintf(stderr, "gannet: message %u: %s\n", m->uid, error);
			fclose(f);
			unlink(tmp);
			goto out;
		}
		if (got == 0)
			break;
		off += got;
		/* CRLF -> LF; a CR at the end of a chunk waits for the next. */
		for (size_t i = 0; i < got; i++) {
			char c = buf[i];
			if (cr_held) {
				cr_held = false;
				if (c != '\n')
					putc('\r', f);
			}
			if (c == '\r') {
				cr_held = true;
				continue;
			}
			putc(c, f);
		}
	}
	if (cr_held)
		putc('\r', f);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0 || fclose(f) != 0) {
		fprintf(stderr, "gannet: %s: %s\n", tmp, strerror(errno));
		unlink(tmp);
		goto out;
	}
	struct timespec ts[2] = { { m->internal_date, 0 }, { m->internal_date, 0 } };
	utimensat(AT_FDCWD, tmp, ts, 0);
	if (rename(tmp, dst) < 0) {
		fprintf(stderr, "gannet: %s: %s\n", dst, strerror(errno));
		unlink(tmp);
		goto out;
	}
	ret = 0;
out:
	gn_store_body_free(&body);
	gn_free(tmp);
	gn_free(dst);
	return ret;
}

static int export_mailbox(struct gn_pool *pool, int64_t account_id,
			  const struct gn_store_mailbox *mb, const char *dir, char *buf,
			  size_t *count_r)
{
	const char *error;
	char *mdir = export_dir(dir, mb->name);
	int ret = -1;
	static const char *const subs[] = { "cur", "new", "tmp" };
	for (size_t i = 0; i < 3; i++) {
		char *sub = gn_strdup_printf("%s/%s", mdir, subs[i]);
		int r = mkdir_p(sub);
		if (r < 0)
			fprintf(stderr, "gannet: %s: %s\n", sub, strerror(errno));
		gn_free(sub);
		if (r < 0)
			goto out;
	}
	struct gn_store_message **msgs = NULL;
	size_t n = 0;
	if (gn_store_message_list(pool, account_id, mb->id, 1, 0, &msgs, &n, &error) < 0) {
		fprintf(stderr, "gannet: mailbox %s: %s\n", mb->name, error);
		goto out;
	}
	/* Keyword letters in order of first use (at most 26: maildir). */
	const char *letters[MAILDIR_MAX_KEYWORDS];
	size_t n_letters = 0;
	for (size_t i = 0; i < n; i++) {
		const struct gn_store_message *m = msgs[i];
		char info[N_MAILDIR_FLAGS + MAILDIR_MAX_KEYWORDS + 1];
		size_t il = 0;
		for (size_t f = 0; f < N_MAILDIR_FLAGS; f++)
			if (m->flags & maildir_flags[f].flag)
				info[il++] = maildir_flags[f].letter;
		bool used[MAILDIR_MAX_KEYWORDS] = { false };
		for (size_t k = 0; k < m->n_keywords; k++) {
			size_t l = 0;
			while (l < n_letters && strcasecmp(letters[l], m->keywords[k]) != 0)
				l++;
			if (l == n_letters) {
				if (n_letters == MAILDIR_MAX_KEYWORDS) {
					fprintf(stderr, "gannet: mailbox %s: more than 26 keywords, %s not exported\n",
						mb->name, m->keywords[k]);
					continue;
				}
				letters[n_letters++] = m->keywords[k];
			}
			used[l] = true;
		}
		for (size_t l = 0; l < MAILDIR_MAX_KEYWORDS; l++)
			if (used[l])
				info[il++] = (char)('a' + l);
		info[il] = '\0';
		char *name = gn_strdup_printf("%lld.G%u.%s:2,%s", (long long)m->internal_date,
					      m->uid, core_conf && core_conf->hostname ? core_conf->hostname : "gannet",
					      info);
		int r = export_message(account_id, m, mdir, name, buf);
		gn_free(name);
		if (r < 0)
			goto out;
		(*count_r)++;
	}
	if (n_letters > 0) {
		char *kp = gn_strdup_printf("%s/dovecot-keywords", mdir);
		FILE *f = fopen(kp, "w");
		if (f != NULL) {
			for (size_t l = 0; l < n_letters; l++)
				fprintf(f, "%zu %s\n", l, letters[l]);
			if (fclose(f) != 0)
				f = NULL;
		}
		if (f == NULL)
			fprintf(stderr, "gannet: %s: %s\n", kp, strerror(errno));
		gn_free(kp);
	}
	ret = 0;
out:
	gn_free(mdir);
	return ret;
}

static int cmd_export_maildir(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 3) {
		fprintf(stderr, "usage: gannet export maildir ACCOUNT DIR\n");
		return 2;
	}
	const char *error = NULL, *dir = argv[2];
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_account *acct = NULL;
	int rc = 1;
	int r = gn_store_account_find(pool, argv[1], &acct, &error);
	if (r <= 0) {
		fprintf(stderr, "gannet: %s%s\n", r == 0 ? "unknown account: " : "", r == 0 ? argv[1] : error);
		goto out;
	}
	if (mkdir_p(dir) < 0) {
		fprintf(stderr, "gannet: %s: %s\n", dir, strerror(errno));
		goto out;
	}
	struct gn_store_mailbox **mbs = NULL;
	size_t n = 0, count = 0;
	if (gn_store_mailbox_list(pool, acct->id, &mbs, &n, &error) < 0) {
		fprintf(stderr, "gannet: %s\n", error);
		goto out;
	}
	char *buf = gn_malloc(IO_SIZE);
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		if (export_mailbox(pool, acct->id, mbs[i], dir, buf, &count) < 0)
			rc = 1;
	gn_free(buf);
	printf("exported %zu messages from %zu mailboxes of %s to %s\n", count, n, acct->name, dir);
out:
	gn_pool_free(&pool);
	return rc;
}

/* ---- register ---- */

int import_register(void)
{
	static const struct {
		const char *words, *usage;
		gn_cli_fn *fn;
	} cmds[] = {
		{ "import mbox", "ACCOUNT PATH [MAILBOX]   (PATH - reads stdin)", cmd_import_mbox },
		{ "import maildir", "ACCOUNT PATH [MAILBOX]", cmd_import_maildir },
		{ "export maildir", "ACCOUNT DIR", cmd_export_maildir },
	};
	int ret = 0;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *error;
		if (gn_cli_register(modules_core_ctx(), cmds[i].words, cmds[i].usage, cmds[i].fn,
				    NULL, &error) < 0) {
			conf_error("%s", error);
			ret = -1;
		}
	}
	return ret;
}
