/*
 * t/fuzz/fuzz_dsn.c: libFuzzer target for the reader of a returned DSN's
 * delivery-status part (core/queue/dsn-read.c), whose bytes come from
 * whoever sent the DSN.
 *
 * Besides not crashing (under AddressSanitizer and UBSan): the action is
 * absent or one lower-case word without space or control character, the
 * code 0, 400, 500 or 200..599, the enhanced code absent or "4.x.y" /
 * "5.x.y" with digits, the recipients no more than the lines, and the
 * same input read twice gives the same.  Build and run: t/fuzz/build.sh,
 * t/fuzz/README.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_enhanced(const char *e)
{
	if (e == NULL)
		return;
	if ((e[0] != '4' && e[0] != '5') || e[1] != '.')
		abort();
	size_t dots = 0;
	for (const char *p = e + 2; *p != '\0'; p++) {
		if (*p == '.')
			dots++;
		else if (*p < '0' || *p > '9')
			abort();
	}
	if (dots != 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gn_pool *pool = gn_pool_new();
	struct queue_dsn_status a, b;
	queue_dsn_status_read(pool, (const char *)data, size, &a);
	queue_dsn_status_read(pool, (const char *)data, size, &b);
	size_t lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (a.recipients > lines)
		abort();
	if (a.action != NULL)
		for (const char *p = a.action; *p != '\0'; p++)
			if ((unsigned char)*p <= ' ' || *p == '(' || (*p >= 'A' && *p <= 'Z') || *p == 0x7f)
				abort();
	if (a.code != 0 && (a.code < 200 || a.code > 599))
		abort();
	check_enhanced(a.enhanced);
	if (a.recipients != b.recipients || a.code != b.code ||
	    (a.action == NULL) != (b.action == NULL) || (a.action != NULL && strcmp(a.action, b.action) != 0) ||
	    (a.enhanced == NULL) != (b.enhanced == NULL) ||
	    (a.enhanced != NULL && strcmp(a.enhanced, b.enhanced) != 0))
		abort();
	gn_pool_free(&pool);
	return 0;
}
