/*
 * modules/imap/search.h: what cmd-search.c (the SEARCH command),
 * search-parse.c (its keys) and search-scan.c (the keys the store's SQL
 * cannot answer) share.
 */
#ifndef GANNET_IMAP_SEARCH_H
#define GANNET_IMAP_SEARCH_H

#include "imap.h"

/* A key answered by reading the message (RFC 9051 6.4.4): HEADER of a
 * field the store keeps no column for (TO, CC, BCC are HEADER keys too),
 * BODY, TEXT. */
enum search_scan_kind {
	SCAN_HEADER = 0,
	SCAN_BODY,
	SCAN_TEXT,
};

struct search_scan_key {
	enum search_scan_kind kind;
	const char *field;	/* SCAN_HEADER: the field name */
	const char *text;	/* the string looked for (UTF-8) */
};

/* Nesting of keys (parentheses, NOT, OR) a search may have: far more
 * than a client writes, and the store's limit is above it. */
#define SEARCH_DEPTH_MAX 50
/* Scan keys in one search. */
#define SEARCH_SCAN_KEYS_MAX 32

/* A parsed search key: a tree. */
enum search_key_kind {
	SK_ALL = 0,
	SK_NONE,		/* RECENT, NEW: no \Recent is kept */
	SK_AND,		/* a parenthesised list, or the top level */
	SK_OR,
	SK_NOT,
	SK_FLAGS,	/* flags set (or not: neg) */
	SK_KEYWORD,
	SK_SIZE,
	SK_DATE,
	SK_TIME,		/* OLDER, YOUNGER */
	SK_MODSEQ,
	SK_COLUMN,	/* a header field the store keeps */
	SK_UIDS,		/* UID ranges (sequence sets, UID, $) */
	SK_SCAN,
};

struct search_key {
	enum search_key_kind kind;
	struct search_key **sub;	/* AND: any number; OR: 2; NOT: 1 */
	size_t n_sub;
	bool neg;		/* SK_FLAGS, SK_KEYWORD: not set; SK_SIZE: smaller;
				   SK_TIME: younger */
	unsigned flags;
	const char *text;	/* keyword, column text */
	uint64_t num;		/* size, modseq */
	time_t t;		/* date (00:00 UTC), time */
	enum gn_store_query_date date_which;
	enum gn_store_query_cmp date_cmp;
	enum gn_store_query_header column;
	uint32_t *ranges;	/* SK_UIDS: pairs */
	size_t n_ranges;
	size_t scan;		/* SK_SCAN: index into the scan keys */
};

/* A parsed search: the keys (an AND of them) and the scan keys among
 * them (SK_SCAN's index). */
struct search_program {
	struct search_key *root;
	struct search_scan_key scan[SEARCH_SCAN_KEYS_MAX];
	size_t n_scan;
	bool has_modseq;	/* MODSEQ used: (MODSEQ n) in the answer */
	bool has_msn;		/* a message number set: no VANISHED (RFC 7162 3.2.10.2) */
};

/* Parses the search keys args[0..n) (RFC 9051 search-key, with the keys
 * of RFC 5032, 5182, 7162 and 8514) for the selected view (sequence sets
 * and "$" become UID ranges in it; OLDER and YOUNGER count back from
 * now), from pool.  0, or -1 with *code_r (NULL, or "LIMIT" for a limit
 * of this file) and *error_r: the command's BAD. */
int search_parse(struct gn_pool *pool, const struct imap_view *view, const struct imap_arg *args,
		 size_t n, time_t now, struct search_program *prog, const char **code_r,
		 const char **error_r);

/* Runs a parsed search on the selected view as SEARCH does
 * (cmd-search.c), for the commands that search first (SORT, THREAD):
 * the UIDs that match, ascending, in *uids_r, and their modseqs in
 * *modseqs_r (both from pool).  The count; 0 with *answered_r when it
 * answered NO [LIMIT] under tag (the scan limit); -1 with *error_r (a
 * database failure). */
int search_execute(struct imap_session *s, struct gn_pool *pool, const struct search_program *prog,
		   const char *tag, uint32_t **uids_r, uint64_t **modseqs_r, bool *answered_r,
		   const char **error_r);

/* Whether needle occurs in hay[0..len), ASCII letters compared without
 * case (RFC 9051 6.4.4: "case-insensitive"; letters beyond ASCII are
 * compared as they are). */
bool search_contains(const char *hay, size_t len, const char *needle);

/* Reads the message uid of the selected mailbox whole (size bytes) and
 * tests each of the n keys on it: matched_r[i].  Header values are
 * decoded (RFC 2047); body text is searched in the text parts with their
 * transfer encoding and charset undone.  0, 1 when the message is gone
 * (expunged meanwhile: it matches nothing), or -1 with *error_r (a
 * database failure). */
int search_scan_message(struct imap_session *s, uint32_t uid, uint64_t size,
			const struct search_scan_key *keys, size_t n, bool *matched_r,
			const char **error_r);

#endif
