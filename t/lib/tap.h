/*
 * t/lib/tap.h: a small TAP producer for C unit tests run by prove.
 *
 *   ok(cond, "name %d", i);  is_int(got, want, "name");  is_str(...);
 *   return done_testing();
 */
#ifndef GANNET_TAP_H
#define GANNET_TAP_H

#include <stdbool.h>

#define TAP_PRINTF(f, a) __attribute__((format(printf, f, a)))

bool ok(bool cond, const char *fmt, ...) TAP_PRINTF(2, 3);
bool is_int(long long got, long long want, const char *fmt, ...) TAP_PRINTF(3, 4);
bool is_str(const char *got, const char *want, const char *fmt, ...) TAP_PRINTF(3, 4);
/* Whether haystack contains needle. */
bool like(const char *haystack, const char *needle, const char *fmt, ...) TAP_PRINTF(3, 4);
void diag(const char *fmt, ...) TAP_PRINTF(1, 2);
/* Prints the plan; returns the exit status (0 when everything passed). */
int done_testing(void);

#endif
