/*
 * modules/imap/search.h: what cmd-search.c (the SEARCH command) and
 * search-scan.c (the keys the store's SQL cannot answer) share.
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
