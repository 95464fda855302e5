/*
 * gannet/config.h: reading the module's section of the config file.
 *
 * The config file is libconfig syntax.  Each module has a section named
 * after it; it reads its settings in its register phase with the functions
 * below.  Every setting read is marked; when all modules have registered,
 * any setting nothing read is an error ("unknown setting imap.idle_timout
 * at gannet.conf:42"), so typos never pass silently.
 *
 * Getters return 1 when the setting was present and valid, 0 when absent
 * (the default was stored in *value_r), and -1 when present but invalid: then
 * an error naming file, line and setting is recorded and the core refuses to
 * start after register, so the caller may simply go on with the default.
 * Strings returned stay valid for the life of the process.
 *
 * Durations are integers of seconds or strings with a unit: "500ms", "30s",
 * "5m", "2h", "1d"; the value is in milliseconds.  Sizes are integers of
 * bytes or strings with "k", "M", "G" (powers of 1024).
 */
#ifndef GANNET_CONFIG_H
#define GANNET_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <gannet/module.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A section (libconfig group) of the config file.  Opaque.  The module's
 * own section: gn_module_config() (gannet/module.h). */
struct gn_config;

/* A subsection; NULL (after recording an error if present but not a group)
 * when absent.  Marks the name as read. */
struct gn_config *gn_config_section(struct gn_config *sect, const char *name);

int gn_config_string(struct gn_config *sect, const char *name,
		     const char *def, const char **value_r);
int gn_config_int(struct gn_config *sect, const char *name, long long def,
		  long long min, long long max, long long *value_r);
int gn_config_bool(struct gn_config *sect, const char *name, bool def,
		   bool *value_r);
int gn_config_duration_ms(struct gn_config *sect, const char *name,
			  long long def_ms, long long *value_r);
int gn_config_size(struct gn_config *sect, const char *name,
		   unsigned long long def, unsigned long long *value_r);
/* A list or array of strings.  *values_r is NULL-terminated. */
int gn_config_strings(struct gn_config *sect, const char *name,
		      const char *const **values_r, size_t *count_r);

/* Records an error about a setting of this section (name may be NULL for the
 * section itself); the message gets " at FILE:LINE" appended. */
void gn_config_error(struct gn_config *sect, const char *name,
		     const char *fmt, ...) GN_PRINTF(3, 4);

/* The dotted path of the section ("imap", "imap.limits"). */
const char *gn_config_path(const struct gn_config *sect);

/* Deployment-wide values from the core's part of the config. */
const char *gn_config_hostname(void);

#ifdef __cplusplus
}
#endif
#endif
