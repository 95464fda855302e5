/*
 * modules/imap/base-subject.c: the "base subject" of RFC 5256 2.1, which
 * SORT SUBJECT orders by and THREAD groups by, and the i;ascii-casemap
 * comparator (RFC 4790 9.2) both compare with.
 *
 * The grammar (RFC 5256 5), matched without case:
 *
 *   subj-refwd   = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
 *   subj-blob    = "[" *BLOBCHAR "]" *WSP
 *   subj-fwd-hdr = "[fwd:"
 *   subj-fwd-trl = "]"
 *   subj-leader  = (*subj-blob subj-refwd) / WSP
 *   subj-trailer = "(fwd)" / WSP
 *   BLOBCHAR     = %x01-5a / %x5c / %x5e-ff   ; not "[" or "]"
 *
 * and the steps of 2.1, each marked below.  The text is worked on as a
 * window [start, end) of one copy; nothing is allocated per step.
 */
#include "sort.h"

#include <string.h>

static unsigned char upper(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? (unsigned char)(c - 32) : c;
}

int imap_casemap_cmp(const char *a, const char *b)
{
	const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
	while (*p != '\0' && upper(*p) == upper(*q)) {
		p++;
		q++;
	}
	return (int)upper(*p) - (int)upper(*q);
}

static bool wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Whether s[i..end) starts with the lower-case ASCII word w, any case. */
static bool starts(const char *s, size_t i, size_t end, const char *w)
{
	size_t n = strlen(w);
	if (end - i < n)
		return false;
	for (size_t k = 0; k < n; k++)
		if (upper((unsigned char)s[i + k]) != upper((unsigned char)w[k]))
			return false;
	return true;
}

/* subj-blob at s[i..end): the index after it (its white space too), or 0
 * when there is none (a blob never ends at 0). */
static size_t blob(const char *s, size_t i, size_t end)
{
	if (i >= end || s[i] != '[')
		return 0;
	size_t k = i + 1;
	while (k < end && s[k] != '[' && s[k] != ']' && s[k] != '\0')
		k++;
	if (k >= end || s[k] != ']')
		return 0;
	k++;
	while (k < end && wsp(s[k]))
		k++;
	return k;
}

/* subj-refwd at s[i..end): the index after it, or 0. */
static size_t refwd(const char *s, size_t i, size_t end)
{
	size_t k;
	if (starts(s, i, end, "re"))
		k = i + 2;
	else if (starts(s, i, end, "fwd"))
		k = i + 3;
	else if (starts(s, i, end, "fw"))
		k = i + 2;
	else
		return 0;
	while (k < end && wsp(s[k]))
		k++;
	size_t b = blob(s, k, end);
	if (b != 0)
		k = b;
	return k < end && s[k] == ':' ? k + 1 : 0;
}

/* subj-leader at s[i..end): the index after it, or 0; *refwd_r when it
 * was the subj-refwd form. */
static size_t leader(const char *s, size_t i, size_t end, bool *refwd_r)
{
	if (i < end && wsp(s[i]))
		return i + 1;
	size_t k = i, b;
	while ((b = blob(s, k, end)) != 0)
		k = b;
	size_t r = refwd(s, k, end);
	if (r != 0)
		*refwd_r = true;
	return r;
}

char *imap_base_subject(struct gn_pool *pool, const char *subject, bool *refwd_r)
{
	bool is_refwd = false;
	if (subject == NULL)
		subject = "";
	/* (1) The text is decoded already (RFC 2047, to UTF-8); tabs and
	 * line breaks become spaces, runs of spaces one. */
	size_t len = strlen(subject);
	char *s = gn_pool_alloc(pool, len + 1);
	size_t end = 0;
	for (size_t i = 0; i < len; i++) {
		char c = subject[i] == '\t' || subject[i] == '\r' || subject[i] == '\n' ? ' ' : subject[i];
		if (c == ' ' && end > 0 && s[end - 1] == ' ')
			continue;
		s[end++] = c;
	}
	size_t start = 0;
	for (;;) {
		/* (2) Trailers, as long as there are. */
		for (;;) {
			if (end > start && wsp(s[end - 1])) {
				end--;
			} else if (end - start >= 5 && starts(s, end - 5, end, "(fwd)")) {
				end -= 5;
				is_refwd = true;
			} else {
				break;
			}
		}
		/* (3), (4), (5): leaders, and a blob before a non-empty
		 * rest, until neither is left. */
		for (;;) {
			size_t k = leader(s, start, end, &is_refwd);
			if (k != 0) {
				start = k;
				continue;
			}
			k = blob(s, start, end);
			/* The blob takes its white space, so what is left starts
			 * with a NONWSP, and trailers are gone: a non-empty rest
			 * is a subj-base. */
			if (k != 0 && k < end) {
				start = k;
				continue;
			}
			break;
		}
		/* (6) A "[fwd: ...]" wrapper: off, and again from (2). */
		if (end - start >= 6 && starts(s, start, end, "[fwd:") && s[end - 1] == ']') {
			start += 5;
			end--;
			is_refwd = true;
			continue;
		}
		break;
	}
	/* (7) */
	if (refwd_r != NULL)
		*refwd_r = is_refwd;
	s[end] = '\0';
	return s + start;
}
