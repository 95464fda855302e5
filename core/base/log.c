/*
 * core/base/log.c: one line per event, key=value fields, to stderr or syslog
 * (see gannet/log.h).  Levels are global with per-area overrides.
 */
#include "base/internal.h"

#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LOG_MAX_AREAS 64
#define LOG_LINE_MAX 8192

static const char *level_names[] = { "error", "warn", "info", "debug" };

static struct {
	char area[32];
	enum gn_log_level level;
} area_levels[LOG_MAX_AREAS];
static size_t n_area_levels;
static enum gn_log_level global_level = GN_LOG_INFO;
static enum gn_log_level ceiling = GN_LOG_DEBUG;
static bool use_syslog;
static char log_ident[32] = "gannet";

void log_init(const char *ident)
{
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
}

void log_set_destination(const char *destination)
{
	bool want = destination != NULL && strcmp(destination, "syslog") == 0;
	if (want && !use_syslog)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	else if (!want && use_syslog)
		closelog();
	use_syslog = want;
}

int log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

void log_set_level(const char *area, enum gn_log_level level)
{
	if (area == NULL) {
		global_level = level;
		return;
	}
	for (size_t i = 0; i < n_area_levels; i++) {
		if (strcmp(area_levels[i].area, area) == 0) {
			area_levels[i].level = level;
			return;
		}
	}
	if (n_area_levels < LOG_MAX_AREAS) {
		snprintf(area_levels[n_area_levels].area, sizeof(area_levels[0].area), "%s", area);
		area_levels[n_area_levels++].level = level;
	}
}

void log_set_ceiling(enum gn_log_level level)
{
	ceiling = level;
}

int gn_log_enabled(enum gn_log_level level, const char *area)
{
	if (level > ceiling)
		return 0;
	if (area != NULL) {
		for (size_t i = 0; i < n_area_levels; i++)
			if (strcmp(area_levels[i].area, area) == 0)
				return level <= area_levels[i].level;
	}
	return level <= global_level;
}

void gn_logv(enum gn_log_level level, const char *area, const char *fmt, va_list ap)
{
	if ((int)level < 0 || level > GN_LOG_DEBUG)
		level = GN_LOG_ERROR;
	if (area == NULL)
		area = "core";
	if (!gn_log_enabled(level, area))
		return;

	char line[LOG_LINE_MAX];
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	/* One event, one line: control characters cannot split it. */
	for (char *p = line; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';

	if (use_syslog) {
		static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
		syslog(prio[level], "level=%s area=%s %s", level_names[level], area, line);
		return;
	}
	/* The second's text is made once a second (a thread each), the pid
	 * once a process: a busy worker writes a few lines a message, and
	 * getpid() is a system call. */
	static __thread time_t ts_sec = (time_t)-1;
	static __thread char ts[40];
	struct timeval tv;
	gettimeofday(&tv, NULL);
	if (tv.tv_sec != ts_sec) {
		struct tm tm;
		gmtime_r(&tv.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		ts_sec = tv.tv_sec;
	}
	/* One write per line so lines of concurrent processes do not mix. */
	char out[LOG_LINE_MAX + 128];
	int m = snprintf(out, sizeof(out), "%s.%03dZ level=%s area=%s pid=%d %s\n",
			 ts, (int)(tv.tv_usec / 1000), level_names[level], area,
			 (int)base_pid(), line);
	if (m > 0) {
		size_t len = (size_t)m < sizeof(out) ? (size_t)m : sizeof(out) - 1;
		if (len == sizeof(out) - 1)
			out[len - 1] = '\n';
		(void)!write(2, out, len);
	}
}

void gn_log(enum gn_log_level level, const char *area, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	gn_logv(level, area, fmt, ap);
	va_end(ap);
}

const char *gn_log_quote(unsigned slot, const char *s)
{
	static __thread char bufs[4][512];
	if (s == NULL)
		return "-";
	bool quote = *s == '\0';
	for (const char *p = s; *p != '\0' && !quote; p++)
		if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' ||
		    (unsigned char)*p < 0x20 || *p == 0x7f)
			quote = true;
	if (!quote)
		return s;
	char *b = bufs[slot & 3];
	size_t o = 0, cap = sizeof(bufs[0]);
	b[o++] = '"';
	for (const char *p = s; *p != '\0' && o + 6 < cap; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			b[o++] = '\\';
			b[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(b + o, cap - o, "\\x%02x", c);
		} else {
			b[o++] = (char)c;
		}
	}
	b[o++] = '"';
	b[o] = '\0';
	return b;
}
