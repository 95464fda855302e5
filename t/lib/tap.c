/* t/lib/tap.c: see tap.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "tap.h"

static int tap_count, tap_failed;

static bool tap_result(bool cond, const char *fmt, va_list ap) TAP_PRINTF(2, 0);

static bool tap_result(bool cond, const char *fmt, va_list ap)
{
	tap_count++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_count);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

bool ok(bool cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tap_result(cond, fmt, ap);
	va_end(ap);
	return cond;
}

bool is_int(long long got, long long want, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tap_result(got == want, fmt, ap);
	va_end(ap);
	if (got != want)
		diag("got %lld, want %lld", got, want);
	return got == want;
}

bool is_str(const char *got, const char *want, const char *fmt, ...)
{
	bool same = (got == NULL && want == NULL) ||
		(got != NULL && want != NULL && strcmp(got, want) == 0);
	va_list ap;
	va_start(ap, fmt);
	tap_result(same, fmt, ap);
	va_end(ap);
	if (!same)
		diag("got '%s', want '%s'", got ? got : "(null)", want ? want : "(null)");
	return same;
}

bool like(const char *haystack, const char *needle, const char *fmt, ...)
{
	bool found = haystack != NULL && strstr(haystack, needle) != NULL;
	va_list ap;
	va_start(ap, fmt);
	tap_result(found, fmt, ap);
	va_end(ap);
	if (!found)
		diag("'%s' does not contain '%s'", haystack ? haystack : "(null)", needle);
	return found;
}

void diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("# ", stdout);
	vprintf(fmt, ap);
	fputs("\n", stdout);
	va_end(ap);
	fflush(stdout);
}

int done_testing(void)
{
	printf("1..%d\n", tap_count);
	fflush(stdout);
	return tap_failed == 0 && tap_count > 0 ? 0 : 1;
}
