/*
 * modules/imap/sort.h: what SORT and THREAD (RFC 5256) share:
 * cmd-sort.c (the commands, the messages' keys), base-subject.c (the
 * base subject and the comparator) and thread.c (the two threading
 * algorithms).
 */
#ifndef GANNET_IMAP_SORT_H
#define GANNET_IMAP_SORT_H

#include "imap.h"

#include <time.h>

/* ---- base-subject.c ---- */

/* RFC 5256 2.1: the base subject of a subject already decoded to UTF-8
 * (step 1's RFC 2047 part; the subject may be NULL: ""), from pool.
 * *refwd_r (may be NULL): whether the message counts as a reply or
 * forward (RFC 5256 3, REFERENCES): a subj-refwd, a "(fwd)" trailer or a
 * "[fwd: ...]" wrapper was removed. */
char *imap_base_subject(struct gn_pool *pool, const char *subject, bool *refwd_r);

/* The i;ascii-casemap comparator (RFC 4790 9.2, which RFC 5256 names):
 * ASCII letters mapped to upper case, then octet by octet.  <0, 0, >0. */
int imap_casemap_cmp(const char *a, const char *b);

/* ---- thread.c ---- */

/* A message as the threading algorithms see it. */
struct thread_msg {
	uint32_t num;		/* what the answer shows: a sequence number or UID */
	size_t msn;		/* the tie-breaker (RFC 5256 2.2) */
	time_t sent;		/* RFC 5256 2.2: Date, else INTERNALDATE */
	const char *base;	/* base subject */
	bool refwd;		/* a reply or forward (imap_base_subject()) */
	/* REFERENCES: the Message-ID, References and In-Reply-To fields as
	 * sent (unfolded), each may be NULL. */
	const char *message_id;
	const char *references;
	const char *in_reply_to;
};

/* RFC 5256 3: the threads of msgs[0..n) (in sequence order) as
 * thread-data wants them after "THREAD": " (1 2)(3 (4)(5))", appended to
 * out; pool for the work.  ORDEREDSUBJECT, and REFERENCES. */
void thread_orderedsubject(struct gn_pool *pool, const struct thread_msg *msgs, size_t n, struct gn_buf *out);
void thread_references(struct gn_pool *pool, const struct thread_msg *msgs, size_t n, struct gn_buf *out);

/* The msg-ids of a Message-ID, References or In-Reply-To field
 * (RFC 5322 3.6.4), normalised (RFC 5256 3: quoting removed, so
 * <"a"@b> and <a@b> are one id) as "left@right", *n_r of them, from pool;
 * what does not parse as a msg-id is skipped. */
const char **thread_msgids(struct gn_pool *pool, const char *field, size_t *n_r);

#endif
