/*
 * t/fuzz/fuzz_imap_thread.c: libFuzzer target for what THREAD and SORT
 * make of header fields a sender chose (modules/imap/thread.c,
 * modules/imap/base-subject.c): base subjects, msg-ids, and both
 * threading algorithms over them.
 *
 * The input is messages, one a line, each "subject TAB Message-ID TAB
 * References TAB In-Reply-To" (missing fields are absent), sent dates
 * from the line's first byte so that ties happen.  Besides not crashing
 * (under AddressSanitizer and UBSan), every message must appear exactly
 * once in each algorithm's answer, and a base subject is never longer
 * than its subject.  Build and run: t/fuzz/build.sh, t/fuzz/README.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/imap/sort.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Messages a run threads at most: enough for any shape. */
#define MAX_MSGS 64

/* Whether each of 1..n appears once among the numbers of s. */
static bool each_once(const char *s, size_t n)
{
	unsigned seen[MAX_MSGS + 1] = { 0 };
	for (const char *p = s; *p != '\0';) {
		if (*p < '0' || *p > '9') {
			p++;
			continue;
		}
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		if (v == 0 || v > n || seen[v]++ > 0)
			return false;
		p = end;
	}
	for (size_t i = 1; i <= n; i++)
		if (seen[i] != 1)
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gn_pool *pool = gn_pool_new();
	char *text = gn_pool_strndup(pool, (const char *)data, size);
	struct thread_msg *msgs = gn_pool_alloc(pool, (MAX_MSGS + 1) * sizeof(*msgs));
	size_t n = 0;
	for (char *line = text; line != NULL && n < MAX_MSGS;) {
		char *next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		const char *f[4] = { NULL, NULL, NULL, NULL };
		char *p = line;
		for (int k = 0; k < 4 && p != NULL; k++) {
			f[k] = p;
			p = strchr(p, '\t');
			if (p != NULL)
				*p++ = '\0';
		}
		struct thread_msg *m = &msgs[n];
		m->num = (uint32_t)(n + 1);
		m->msn = n + 1;
		m->sent = (time_t)(line[0] & 7);
		m->base = imap_base_subject(pool, f[0], &m->refwd);
		if (strlen(m->base) > strlen(f[0]))
			abort();
		m->message_id = f[1];
		m->references = f[2];
		m->in_reply_to = f[3];
		size_t k;
		(void)thread_msgids(pool, f[2], &k);
		n++;
		line = next;
	}
	struct gn_buf *b = gn_buf_new(0);
	thread_references(pool, msgs, n, b);
	if (!each_once(gn_buf_data(b), n))
		abort();
	gn_buf_clear(b);
	thread_orderedsubject(pool, msgs, n, b);
	if (!each_once(gn_buf_data(b), n))
		abort();
	gn_buf_free(&b);
	gn_pool_free(&pool);
	return 0;
}
