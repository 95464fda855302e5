/*
 * contrib/bench/load-common.h: what the load generators send-load.c and
 * webapi-load.c share (each is one file built by its script with cc; this
 * header is found beside it): the first error texts kept for the report,
 * a monotonic clock in seconds, base64.  Include after the system headers
 * (pthread.h, stdarg.h, stdio.h, time.h).
 */
#ifndef BENCH_LOAD_COMMON_H
#define BENCH_LOAD_COMMON_H

#define ERRORS_KEPT	10		/* error texts printed */

static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned n_texts;
static char texts[ERRORS_KEPT][300];

/* Keeps one of the first ERRORS_KEPT error texts, on one line. */
static void error_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void error_text(const char *fmt, ...)
{
	char buf[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	for (char *p = buf; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	pthread_mutex_lock(&err_lock);
	if (n_texts < ERRORS_KEPT)
		snprintf(texts[n_texts++], sizeof(texts[0]), "%s", buf);
	pthread_mutex_unlock(&err_lock);
}

/* The kept texts, one "error TEXT" line each. */
static void error_texts_print(void)
{
	for (unsigned i = 0; i < n_texts; i++)
		printf("error %s\n", texts[i]);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* out: room for 4 * ((len + 2) / 3) + 1 octets. */
static void base64(const unsigned char *in, size_t len, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;
	for (i = 0; i + 2 < len; i += 3) {
		*out++ = tab[in[i] >> 2];
		*out++ = tab[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		*out++ = tab[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
		*out++ = tab[in[i + 2] & 63];
	}
	if (i < len) {
		*out++ = tab[in[i] >> 2];
		if (i + 1 < len) {
			*out++ = tab[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
			*out++ = tab[(in[i + 1] & 15) << 2];
		} else {
			*out++ = tab[(in[i] & 3) << 4];
			*out++ = '=';
		}
		*out++ = '=';
	}
	*out = '\0';
}

#endif
