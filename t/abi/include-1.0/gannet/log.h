/*
 * gannet/log.h: one way to report events.
 *
 * One line per event with key=value fields:
 *   2026-11-28T10:00:00.123Z level=info area=imap pid=42 event=login user=a@b
 * The area is "core" or a module name; the level is set globally and per
 * area in the config file (log.level, log.levels.<area>).  Lines go to stderr
 * or syslog (log.destination).  Secrets are never logged: callers pass
 * values through gn_log_quote() only when they are safe to show.
 */
#ifndef GANNET_LOG_H
#define GANNET_LOG_H

#include <stdarg.h>
#include <gannet/module.h>

#ifdef __cplusplus
extern "C" {
#endif

enum gn_log_level {
	GN_LOG_ERROR = 0,
	GN_LOG_WARN = 1,
	GN_LOG_INFO = 2,
	GN_LOG_DEBUG = 3,
};

/* fmt produces the fields after area and pid, e.g. "event=x peer=%s". */
void gn_log(enum gn_log_level level, const char *area, const char *fmt, ...) GN_PRINTF(3, 4);
void gn_logv(enum gn_log_level level, const char *area, const char *fmt, va_list ap) GN_PRINTF(3, 0);
/* Whether a line at this level for this area would be written. */
int gn_log_enabled(enum gn_log_level level, const char *area);

/* Returns s quoted for a log field value when it contains spaces, quotes,
 * '=' or control characters ("a b" -> "\"a b\""); otherwise s itself.
 * The result lives until the next call from the same thread with the same
 * slot (0..3), so one log line can quote up to four values. */
const char *gn_log_quote(unsigned slot, const char *s);

#ifdef __cplusplus
}
#endif
#endif
