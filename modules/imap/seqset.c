/*
 * modules/imap/seqset.c: sequence sets (RFC 9051 9: sequence-set).
 *
 * "1:3,7,10:*" is parsed into ranges, "*" standing for the largest number
 * in use (the last message's number, or its UID for UID commands); a range
 * may be written backwards ("5:2").  The ranges are sorted and merged, so
 * that a membership test is a binary search however the client wrote the
 * set.
 */
#include "imap.h"

#include <stdlib.h>
#include <string.h>

static int cmp_range(const void *a, const void *b)
{
	const struct imap_range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* One number (nz-number) or "*" (star), at *p. */
static bool seq_number(const char **p, uint32_t star, uint32_t *n_r)
{
	if (**p == '*') {
		(*p)++;
		*n_r = star;
		return true;
	}
	if (**p < '1' || **p > '9')
		return false;
	uint64_t n = 0;
	while (**p >= '0' && **p <= '9') {
		n = n * 10 + (uint64_t)(**p - '0');
		if (n > UINT32_MAX)
			return false;
		(*p)++;
	}
	*n_r = (uint32_t)n;
	return true;
}

int imap_seqset_parse(struct gn_pool *pool, const char *s, uint32_t star, struct imap_seqset *set)
{
	size_t cap = 1;
	for (const char *p = s; *p != '\0'; p++)
		cap += *p == ',';
	set->ranges = gn_pool_alloc(pool, cap * sizeof(*set->ranges));
	set->count = 0;
	const char *p = s;
	for (;;) {
		uint32_t a, b;
		if (!seq_number(&p, star, &a))
			return -1;
		b = a;
		if (*p == ':') {
			p++;
			if (!seq_number(&p, star, &b))
				return -1;
		}
		set->ranges[set->count].lo = a < b ? a : b;
		set->ranges[set->count].hi = a < b ? b : a;
		set->count++;
		if (*p == '\0')
			break;
		if (*p != ',')
			return -1;
		p++;
	}
	qsort(set->ranges, set->count, sizeof(*set->ranges), cmp_range);
	size_t out = 0;
	for (size_t i = 0; i < set->count; i++) {
		if (out > 0 && set->ranges[i].lo <= (uint64_t)set->ranges[out - 1].hi + 1) {
			if (set->ranges[i].hi > set->ranges[out - 1].hi)
				set->ranges[out - 1].hi = set->ranges[i].hi;
			continue;
		}
		set->ranges[out++] = set->ranges[i];
	}
	set->count = out;
	return 0;
}

bool imap_seqset_has(const struct imap_seqset *set, uint32_t n)
{
	size_t lo = 0, hi = set->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (n < set->ranges[mid].lo)
			hi = mid;
		else if (n > set->ranges[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}
