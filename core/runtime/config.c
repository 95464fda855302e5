/*
 * core/runtime/config.c: the config file (libconfig syntax), the core's settings and
 * the section getters modules use (see gannet/config.h and runtime/internal.h).
 *
 * How it fits together:
 *   - conf_load() / conf_load_string() parse the whole file with libconfig
 *     and keep the tree (config_t) alive until conf_free().  The core reads
 *     its own settings through the same getters modules use, fills
 *     core_conf, validates it and applies the log settings.
 *   - Every read marks the setting: libconfig gives each setting a "hook"
 *     pointer, which is NULL until something reads the setting; then it
 *     points at `marker`, or, for a group that was opened as a section, at
 *     its struct gn_config handle (so a section opened twice is one handle).
 *   - conf_check_unused(), after every module registered, walks the tree
 *     and turns every unmarked setting into "unknown setting PATH at
 *     FILE:LINE".  Elements of lists and arrays count as read with their
 *     parent; groups inside lists (listeners, certificates) are walked.
 *   - Errors are collected (conf_error*) and printed at once, so an admin
 *     sees every mistake in one run.  Locations use the base name of the
 *     file as in "at gannet.conf:42".
 *
 * Memory: strings handed to callers (getter results, paths, string arrays)
 * come from keep_pool, which is never freed, so they live for the process
 * even across conf_free().  Section handles live in load_pool, freed by
 * conf_free() together with the libconfig tree.
 */
#include "runtime/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_TLS_PRIORITY \
	"NORMAL:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1:%SERVER_PRECEDENCE"

struct gn_config {
	config_setting_t *s;	/* the group; NULL for an empty section */
	const char *path;	/* dotted path ("" for the root), keep_pool */
};

struct core_conf *core_conf;

static config_t cfg;
static bool cfg_loaded;
static bool unused_checked;
static const char *display_name;	/* base name of the file, keep_pool */
static struct gn_pool *load_pool;
static struct gn_pool *keep_pool;
static int marker;

static char **errors;
static size_t n_errors, errors_alloc;

/* ---- helpers ---- */

static struct gn_pool *keep(void)
{
	if (keep_pool == NULL)
		keep_pool = gn_pool_new();
	return keep_pool;
}

static struct gn_pool *loadp(void)
{
	if (load_pool == NULL)
		load_pool = gn_pool_new();
	return load_pool;
}

static char *vformat(const char *fmt, va_list ap) GN_PRINTF(1, 0);
static char *vformat(const char *fmt, va_list ap)
{
	struct gn_buf *b = gn_buf_new(0);
	(void)gn_buf_vprintf(b, fmt, ap);
	return gn_buf_steal(&b);
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash != NULL && slash[1] != '\0' ? slash + 1 : path;
}

static const char *setting_file(const config_setting_t *s)
{
	if (s != NULL && config_setting_source_file(s) != NULL)
		return gn_pool_strdup(keep(), base_name(config_setting_source_file(s)));
	return display_name != NULL ? display_name : "gannet.conf";
}

static int setting_line(const config_setting_t *s)
{
	while (s != NULL) {
		if (config_setting_source_line(s) > 0)
			return (int)config_setting_source_line(s);
		s = config_setting_parent(s);
	}
	return 0;
}

/* Appends " at FILE:LINE" (or " at FILE" without a line) to b. */
static void append_location(struct gn_buf *b, const config_setting_t *s)
{
	int line = setting_line(s);
	if (line > 0)
		(void)gn_buf_printf(b, " at %s:%d", setting_file(s), line);
	else
		(void)gn_buf_printf(b, " at %s", setting_file(s));
}

static void add_error(char *msg)
{
	if (n_errors == errors_alloc) {
		errors_alloc = errors_alloc ? errors_alloc * 2 : 16;
		errors = gn_realloc(errors, errors_alloc * sizeof(*errors));
	}
	errors[n_errors++] = msg;
}

static void verror_at(const config_setting_t *s, const char *fmt, va_list ap) GN_PRINTF(2, 0);
static void verror_at(const config_setting_t *s, const char *fmt, va_list ap)
{
	struct gn_buf *b = gn_buf_new(0);
	(void)gn_buf_vprintf(b, fmt, ap);
	append_location(b, s);
	add_error(gn_buf_steal(&b));
}

static void error_at(const config_setting_t *s, const char *fmt, ...) GN_PRINTF(2, 3);
static void error_at(const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verror_at(s, fmt, ap);
	va_end(ap);
}

static void path_append(struct gn_buf *b, const config_setting_t *s)
{
	if (s == NULL || config_setting_is_root(s))
		return;
	path_append(b, config_setting_parent(s));
	if (config_setting_name(s) != NULL) {
		if (gn_buf_len(b) > 0)
			(void)gn_buf_append_str(b, ".");
		(void)gn_buf_append_str(b, config_setting_name(s));
	} else {
		(void)gn_buf_printf(b, "[%d]", config_setting_index(s));
	}
}

/* The dotted path of a setting ("imap.limits.max", "listeners[0].port"),
 * in keep_pool. */
static const char *setting_path(const config_setting_t *s)
{
	struct gn_buf *b = gn_buf_new(0);
	path_append(b, s);
	char *tmp = gn_buf_steal(&b);
	const char *p = gn_pool_strdup(keep(), tmp);
	gn_free(tmp);
	return p;
}

static bool is_marked(const config_setting_t *s)
{
	return config_setting_get_hook(s) != NULL;
}

static void mark(config_setting_t *s)
{
	if (s != NULL && !config_setting_is_root(s) && !is_marked(s))
		config_setting_set_hook(s, &marker);
}

/* The section handle of a group (one per group, kept in its hook). */
static struct gn_config *handle(config_setting_t *s)
{
	void *h = config_setting_get_hook(s);
	if (h != NULL && h != &marker)
		return h;
	struct gn_config *c = gn_pool_alloc(loadp(), sizeof(*c));
	c->s = s;
	c->path = setting_path(s);
	if (!config_setting_is_root(s))
		config_setting_set_hook(s, c);
	return c;
}

static struct gn_config *empty_section(const char *path)
{
	struct gn_config *c = gn_pool_alloc(loadp(), sizeof(*c));
	c->s = NULL;
	c->path = gn_pool_strdup(keep(), path);
	return c;
}

/* Finds name (which may be dotted: "limits.max") in the section and marks
 * every part of it as read. */
static config_setting_t *lookup(struct gn_config *sect, const char *name)
{
	if (sect == NULL || sect->s == NULL || name == NULL)
		return NULL;
	config_setting_t *s = sect->s;
	const char *p = name;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);
		char *part = gn_strndup(p, len);
		config_setting_t *m = config_setting_is_group(s) ?
			config_setting_get_member(s, part) : NULL;
		gn_free(part);
		if (m == NULL)
			return NULL;
		mark(m);
		if (dot == NULL)
			return m;
		s = m;
		p = dot + 1;
	}
}

/* "<path> <problem> at FILE:LINE" about a setting. */
static void bad(const config_setting_t *s, const char *fmt, ...) GN_PRINTF(2, 3);
static void bad(const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = vformat(fmt, ap);
	va_end(ap);
	error_at(s, "%s: %s", setting_path(s), msg);
	gn_free(msg);
}

static bool is_integer(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_INT ||
	       config_setting_type(s) == CONFIG_TYPE_INT64;
}

/* Digits only, into *v_r; 0 on success, -1 on no digits or overflow.
 * *end_r points past the digits. */
static int parse_digits(const char *s, unsigned long long *v_r, const char **end_r)
{
	unsigned long long v = 0;
	const char *p = s;
	while (*p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		p++;
	}
	if (p == s)
		return -1;
	*v_r = v;
	*end_r = p;
	return 0;
}

/* ---- durations and sizes ---- */

/* "500ms", "30s", "5m", "2h", "1d" -> milliseconds.  0 or -1. */
static int parse_duration(const char *str, long long *ms_r)
{
	static const struct {
		const char *unit;
		long long ms;
	} units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
		{ "d", 86400000 },
	};
	unsigned long long v;
	const char *end;
	if (parse_digits(str, &v, &end) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) != 0)
			continue;
		if (v > (unsigned long long)(LLONG_MAX / units[i].ms))
			return -1;
		*ms_r = (long long)v * units[i].ms;
		return 0;
	}
	return -1;
}

/* "123", "10k", "5M", "1G" (powers of 1024) -> bytes.  0 or -1. */
static int parse_size(const char *str, unsigned long long *bytes_r)
{
	unsigned long long v, mult;
	const char *end;
	if (parse_digits(str, &v, &end) < 0)
		return -1;
	switch (end[0]) {
	case '\0': mult = 1; break;
	case 'k': case 'K': mult = 1024ULL; break;
	case 'm': case 'M': mult = 1024ULL * 1024; break;
	case 'g': case 'G': mult = 1024ULL * 1024 * 1024; break;
	default: return -1;
	}
	if (end[0] != '\0' && end[1] != '\0')
		return -1;
	if (v > ULLONG_MAX / mult)
		return -1;
	*bytes_r = v * mult;
	return 0;
}

/* ---- the public getters (gannet/config.h) ---- */

struct gn_config *gn_config_section(struct gn_config *sect, const char *name)
{
	config_setting_t *s = lookup(sect, name);
	if (s == NULL)
		return NULL;
	if (!config_setting_is_group(s)) {
		bad(s, "must be a group ({ ... })");
		return NULL;
	}
	return handle(s);
}

int gn_config_string(struct gn_config *sect, const char *name,
		     const char *def, const char **value_r)
{
	*value_r = def;
	config_setting_t *s = lookup(sect, name);
	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		bad(s, "must be a string");
		return -1;
	}
	*value_r = gn_pool_strdup(keep(), config_setting_get_string(s));
	return 1;
}

int gn_config_int(struct gn_config *sect, const char *name, long long def,
		  long long min, long long max, long long *value_r)
{
	*value_r = def;
	config_setting_t *s = lookup(sect, name);
	if (s == NULL)
		return 0;
	if (!is_integer(s)) {
		bad(s, "must be an integer");
		return -1;
	}
	long long v = config_setting_get_int64(s);
	if (v < min || v > max) {
		bad(s, "%lld is not between %lld and %lld", v, min, max);
		return -1;
	}
	*value_r = v;
	return 1;
}

int gn_config_bool(struct gn_config *sect, const char *name, bool def,
		   bool *value_r)
{
	*value_r = def;
	config_setting_t *s = lookup(sect, name);
	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		bad(s, "must be true or false");
		return -1;
	}
	*value_r = config_setting_get_bool(s) != 0;
	return 1;
}

int gn_config_duration_ms(struct gn_config *sect, const char *name,
			  long long def_ms, long long *value_r)
{
	*value_r = def_ms;
	config_setting_t *s = lookup(sect, name);
	if (s == NULL)
		return 0;
	if (is_integer(s)) {
		long long v = config_setting_get_int64(s);
		if (v < 0 || v > LLONG_MAX / 1000) {
			bad(s, "%lld is not a valid number of seconds", v);
			return -1;
		}
		*value_r = v * 1000;
		return 1;
	}
	long long ms;
	if (config_setting_type(s) != CONFIG_TYPE_STRING ||
	    parse_duration(config_setting_get_string(s), &ms) < 0) {
		bad(s, "must be a duration: seconds or a string like \"500ms\", "
		    "\"30s\", \"5m\", \"2h\", \"1d\"");
		return -1;
	}
	*value_r = ms;
	return 1;
}

int gn_config_size(struct gn_config *sect, const char *name,
		   unsigned long long def, unsigned long long *value_r)
{
	*value_r = def;
	config_setting_t *s = lookup(sect, name);
	if (s == NULL)
		return 0;
	if (is_integer(s)) {
		long long v = config_setting_get_int64(s);
		if (v < 0) {
			bad(s, "%lld is not a valid size", v);
			return -1;
		}
		*value_r = (unsigned long long)v;
		return 1;
	}
	unsigned long long bytes;
	if (config_setting_type(s) != CONFIG_TYPE_STRING ||
	    parse_size(config_setting_get_string(s), &bytes) < 0) {
		bad(s, "must be a size: bytes or a string like \"64k\", \"10M\", \"1G\"");
		return -1;
	}
	*value_r = bytes;
	return 1;
}

int gn_config_strings(struct gn_config *sect, const char *name,
		      const char *const **values_r, size_t *count_r)
{
	static const char *const none[] = { NULL };
	*values_r = none;
	if (count_r != NULL)
		*count_r = 0;
	config_setting_t *s = lookup(sect, name);
	if (s == NULL)
		return 0;
	if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
		bad(s, "must be a list of strings ([ \"a\", \"b\" ])");
		return -1;
	}
	int n = config_setting_length(s);
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			bad(e, "must be a string");
			return -1;
		}
	}
	const char **v = gn_pool_alloc(keep(), ((size_t)n + 1) * sizeof(*v));
	for (int i = 0; i < n; i++)
		v[i] = gn_pool_strdup(keep(), config_setting_get_string_elem(s, i));
	v[n] = NULL;
	*values_r = v;
	if (count_r != NULL)
		*count_r = (size_t)n;
	return 1;
}

void gn_config_error(struct gn_config *sect, const char *name,
		     const char *fmt, ...)
{
	const config_setting_t *where = NULL;
	if (sect != NULL && sect->s != NULL) {
		where = sect->s;
		if (name != NULL) {
			config_setting_t *m = lookup(sect, name);
			if (m != NULL)
				where = m;
		}
	}
	va_list ap;
	va_start(ap, fmt);
	verror_at(where, fmt, ap);
	va_end(ap);
}

const char *gn_config_path(const struct gn_config *sect)
{
	return sect != NULL ? sect->path : "";
}

static const char *system_hostname(void)
{
	static const char *name;
	if (name == NULL) {
		char buf[256];
		if (gethostname(buf, sizeof(buf)) < 0 || buf[0] == '\0')
			name = "localhost";
		else {
			buf[sizeof(buf) - 1] = '\0';
			name = gn_pool_strdup(keep(), buf);
		}
	}
	return name;
}

const char *gn_config_hostname(void)
{
	if (core_conf != NULL && core_conf->hostname != NULL)
		return core_conf->hostname;
	return system_hostname();
}

struct gn_config *gn_module_config(struct gn_module_ctx *ctx)
{
	return conf_module_section(gn_module_name(ctx));
}

/* ---- errors (core.h) ---- */

void conf_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add_error(vformat(fmt, ap));
	va_end(ap);
}

size_t conf_error_count(void)
{
	return n_errors;
}

void conf_errors_print(FILE *out)
{
	for (size_t i = 0; i < n_errors; i++)
		fprintf(out, "gannet: config: %s\n", errors[i]);
}

/* ---- module sections and unknown settings ---- */

struct gn_config *conf_module_section(const char *module)
{
	if (!cfg_loaded || module == NULL)
		return empty_section(module != NULL ? module : "");
	config_setting_t *s = config_setting_get_member(config_root_setting(&cfg), module);
	if (s == NULL)
		return empty_section(module);
	if (!config_setting_is_group(s)) {
		if (!is_marked(s)) {
			mark(s);
			error_at(s, "module section %s must be a group (%s = { ... };)",
				 module, module);
		}
		return empty_section(module);
	}
	return handle(s);
}

static void check_group(const config_setting_t *g);

static void check_elements(const config_setting_t *list)
{
	int n = config_setting_length(list);
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
		if (config_setting_is_group(e))
			check_group(e);
		else if (config_setting_is_list(e) || config_setting_is_array(e))
			check_elements(e);
	}
}

static void check_group(const config_setting_t *g)
{
	int n = config_setting_length(g);
	for (int i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
		if (!is_marked(m))
			error_at(m, "unknown setting %s", setting_path(m));
		else if (config_setting_is_group(m))
			check_group(m);
		else if (config_setting_is_list(m) || config_setting_is_array(m))
			check_elements(m);
	}
}

void conf_check_unused(void)
{
	if (!cfg_loaded || unused_checked)
		return;
	unused_checked = true;
	check_group(config_root_setting(&cfg));
}

/* ---- the core's own settings ---- */

static bool valid_hostname(const char *s)
{
	/* RFC 1123 2.1: letters, digits, hyphens; labels of 1-63 octets. */
	size_t len = strlen(s), label = 0;
	if (len == 0 || len > 253)
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

static bool valid_name(const char *s, const char *extra)
{
	if (*s == '\0')
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
			continue;
		if (extra != NULL && strchr(extra, *p) != NULL)
			continue;
		return false;
	}
	return true;
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? gn_strdup(s) : NULL;
}

/* A required string of a group inside a list (listeners, certificates). */
static const char *required_string(struct gn_config *sect, const char *name)
{
	const char *v = NULL;
	int r = gn_config_string(sect, name, NULL, &v);
	if (r == 0)
		error_at(sect->s, "%s: %s is required", sect->path, name);
	if (r == 1 && v[0] == '\0') {
		bad(config_setting_get_member(sect->s, name), "must not be empty");
		v = NULL;
	}
	return r == 1 ? v : NULL;
}

/* A list of groups (listeners, tls.certificates); NULL when absent or
 * wrong (error recorded). */
static config_setting_t *group_list(struct gn_config *sect, const char *name,
				    const char *example)
{
	config_setting_t *s = lookup(sect, name);
	if (s == NULL)
		return NULL;
	if (!config_setting_is_list(s)) {
		bad(s, "must be a list of groups: %s", example);
		return NULL;
	}
	int n = config_setting_length(s);
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		if (!config_setting_is_group(e)) {
			bad(e, "must be a group: %s", example);
			return NULL;
		}
	}
	return s;
}

static void read_log(struct gn_config *root, struct core_conf *c)
{
	struct gn_config *log = gn_config_section(root, "log");
	const char *dest = "stderr", *level = "info";
	int global = GN_LOG_INFO;

	if (gn_config_string(log, "destination", "stderr", &dest) > 0 &&
	    strcmp(dest, "stderr") != 0 && strcmp(dest, "syslog") != 0) {
		bad(lookup(log, "destination"), "must be \"stderr\" or \"syslog\"");
		dest = "stderr";
	}
	if (gn_config_string(log, "level", "info", &level) > 0) {
		global = log_level_parse(level);
		if (global < 0) {
			bad(lookup(log, "level"),
			    "must be \"error\", \"warn\", \"info\" or \"debug\"");
			global = GN_LOG_INFO;
		}
	}
	c->log_destination = gn_strdup(dest);
	log_set_destination(dest);
	log_set_level(NULL, (enum gn_log_level)global);

	struct gn_config *levels = gn_config_section(log, "levels");
	if (levels == NULL)
		return;
	int n = config_setting_length(levels->s);
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(levels->s, (unsigned)i);
		const char *area = config_setting_name(e), *v;
		if (gn_config_string(levels, area, NULL, &v) < 0)
			continue;
		int l = log_level_parse(v);
		if (l < 0) {
			bad(e, "must be \"error\", \"warn\", \"info\" or \"debug\"");
			continue;
		}
		log_set_level(area, (enum gn_log_level)l);
	}
}

static void read_tls(struct gn_config *root, struct core_conf *c)
{
	struct gn_config *tls = gn_config_section(root, "tls");
	const char *prio;
	if (gn_config_string(tls, "priority", DEFAULT_TLS_PRIORITY, &prio) > 0 &&
	    prio[0] == '\0') {
		bad(lookup(tls, "priority"), "must not be empty");
		prio = DEFAULT_TLS_PRIORITY;
	}
	c->tls_priority = gn_strdup(prio);
	/* Trusted by outbound TLS (the HTTPS client, the queue's SMTP client
	 * where a policy asks for verification) besides the system's store:
	 * a private CA, or a test's. */
	const char *ca;
	if (gn_config_string(tls, "client_ca_file", NULL, &ca) > 0 && ca[0] != '\0')
		c->tls_client_ca_file = gn_strdup(ca);

	config_setting_t *list = group_list(tls, "certificates",
		"( { cert = \"a.pem\"; key = \"a.key\"; } )");
	if (list == NULL)
		return;
	size_t n = (size_t)config_setting_length(list);
	c->certs = gn_calloc(n ? n : 1, sizeof(*c->certs));
	for (size_t i = 0; i < n; i++) {
		struct gn_config *e = handle(config_setting_get_elem(list, (unsigned)i));
		const char *cert = required_string(e, "cert");
		const char *key = required_string(e, "key");
		if (cert == NULL || key == NULL)
			continue;
		c->certs[c->n_certs].cert_file = gn_strdup(cert);
		c->certs[c->n_certs].key_file = gn_strdup(key);
		c->n_certs++;
	}
}

static void read_listeners(struct gn_config *root, struct core_conf *c)
{
	config_setting_t *list = group_list(root, "listeners",
		"( { address = \"::\"; port = 25; protocol = \"smtp\"; } )");
	if (list == NULL)
		return;
	size_t n = (size_t)config_setting_length(list);
	c->listeners = gn_calloc(n ? n : 1, sizeof(*c->listeners));
	for (size_t i = 0; i < n; i++) {
		config_setting_t *es = config_setting_get_elem(list, (unsigned)i);
		struct gn_config *e = handle(es);
		struct listener_conf *l = &c->listeners[c->n_listeners];
		bool ok = true;
		const char *name, *address, *protocol, *tls;
		long long port;

		int r = gn_config_int(e, "port", 0, 1, 65535, &port);
		if (r == 0)
			error_at(es, "%s: port is required", e->path);
		ok &= r > 0;

		protocol = required_string(e, "protocol");
		if (protocol != NULL && !valid_name(protocol, "-")) {
			bad(lookup(e, "protocol"), "\"%s\" is not a protocol name", protocol);
			protocol = NULL;
		}
		ok &= protocol != NULL;

		unsigned char bin[16];
		char norm[INET6_ADDRSTRLEN];
		r = gn_config_string(e, "address", "0.0.0.0", &address);
		if (inet_pton(AF_INET, address, bin) == 1)
			inet_ntop(AF_INET, bin, norm, sizeof(norm));
		else if (inet_pton(AF_INET6, address, bin) == 1)
			inet_ntop(AF_INET6, bin, norm, sizeof(norm));
		else {
			if (r > 0)
				bad(lookup(e, "address"), "\"%s\" is not an IPv4 or IPv6 address",
				    address);
			ok = false;
		}

		l->tls = TLS_MODE_NONE;
		if (gn_config_string(e, "tls", "none", &tls) > 0) {
			if (strcmp(tls, "none") == 0)
				l->tls = TLS_MODE_NONE;
			else if (strcmp(tls, "starttls") == 0)
				l->tls = TLS_MODE_STARTTLS;
			else if (strcmp(tls, "implicit") == 0)
				l->tls = TLS_MODE_IMPLICIT;
			else {
				bad(lookup(e, "tls"),
				    "\"%s\" is not a TLS mode (\"none\", \"starttls\" or \"implicit\")",
				    tls);
				ok = false;
			}
		}

		r = gn_config_string(e, "name", NULL, &name);
		if (r > 0 && !valid_name(name, "-.ABCDEFGHIJKLMNOPQRSTUVWXYZ")) {
			bad(lookup(e, "name"), "\"%s\" is not a valid listener name", name);
			ok = false;
		}
		if (!ok)
			continue;

		char *lname = name != NULL ? gn_strdup(name)
			: gn_strdup_printf("%s-%lld", protocol, port);
		bool dup = false;
		for (size_t j = 0; j < c->n_listeners && !dup; j++) {
			struct listener_conf *o = &c->listeners[j];
			if (strcmp(o->name, lname) == 0) {
				error_at(es, "%s: duplicate listener name %s (first at %s:%d)",
					 e->path, lname, o->file, o->line);
				dup = true;
			} else if (o->port == (unsigned)port && strcmp(o->address, norm) == 0) {
				error_at(es, "%s: %s port %lld is already used by listener %s "
					 "(at %s:%d)", e->path, norm, port, o->name, o->file,
					 o->line);
				dup = true;
			}
		}
		if (dup) {
			gn_free(lname);
			continue;
		}
		l->name = lname;
		l->address = gn_strdup(norm);
		l->port = (unsigned)port;
		l->protocol = gn_strdup(protocol);
		l->file = setting_file(es);
		l->line = setting_line(es);
		c->n_listeners++;
	}
}

/* "IP" or "IP@port" (an IPv6 address without brackets: "::1@5353"). */
static bool valid_resolver(const char *s)
{
	struct in6_addr a6;
	const char *at = strchr(s, '@');
	size_t len = at != NULL ? (size_t)(at - s) : strlen(s);
	if (len == 0 || len >= INET6_ADDRSTRLEN)
		return false;
	char ip[INET6_ADDRSTRLEN];
	memcpy(ip, s, len);
	ip[len] = '\0';
	if (inet_pton(AF_INET, ip, &a6) != 1 && inet_pton(AF_INET6, ip, &a6) != 1)
		return false;
	if (at == NULL)
		return true;
	unsigned long long port;
	const char *end;
	return parse_digits(at + 1, &port, &end) == 0 && *end == '\0' &&
		port >= 1 && port <= 65535;
}

/* http { ... }: the core's HTTP server (core/net/http.c, gannet/http.h). */
static void read_http(struct gn_config *root, struct core_conf *c)
{
	struct gn_config *http = gn_config_section(root, "http");
	unsigned long long size;
	long long v;

	if (gn_config_size(http, "max_body", 10 << 20, &size) > 0 &&
	    (size == 0 || size > (1ULL << 30))) {
		bad(lookup(http, "max_body"), "must be between 1 and 1G");
		size = 10 << 20;
	}
	c->http_max_body = (size_t)size;
	if (gn_config_size(http, "max_header", 16384, &size) > 0 &&
	    (size < 1024 || size > (1 << 20))) {
		bad(lookup(http, "max_header"), "must be between 1k and 1M");
		size = 16384;
	}
	c->http_max_header = (size_t)size;
	if (gn_config_duration_ms(http, "request_timeout", 30000, &c->http_timeout_ms) > 0 &&
	    (c->http_timeout_ms < 1000 || c->http_timeout_ms > 3600000)) {
		bad(lookup(http, "request_timeout"), "must be between 1s and 1h");
		c->http_timeout_ms = 30000;
	}
	gn_config_int(http, "connections", 1000, 1, 1000000, &v);
	c->http_max_conns = (unsigned)v;
}

static void read_dns(struct gn_config *root, struct core_conf *c)
{
	struct gn_config *dns = gn_config_section(root, "dns");
	struct dns_conf *d = &c->dns;
	const char *const *v;
	size_t n;
	long long ll;

	if (gn_config_strings(dns, "resolvers", &v, &n) > 0) {
		config_setting_t *list = lookup(dns, "resolvers");
		d->resolvers = gn_calloc(n + 1, sizeof(*d->resolvers));
		for (size_t i = 0; i < n; i++) {
			if (!valid_resolver(v[i])) {
				bad(config_setting_get_elem(list, (unsigned)i),
				    "\"%s\" is not an IP address or IP@port", v[i]);
				continue;
			}
			d->resolvers[d->n_resolvers++] = gn_strdup(v[i]);
		}
	}
	const char *s;
	if (gn_config_string(dns, "trust_anchor", NULL, &s) > 0) {
		if (s[0] != '\0' && access(s, R_OK) != 0)
			bad(lookup(dns, "trust_anchor"), "cannot read %s: %s", s,
			    strerror(errno));
		else
			d->trust_anchor = gn_strdup(s);
	}
	if (gn_config_strings(dns, "local_data", &v, &n) > 0) {
		config_setting_t *list = lookup(dns, "local_data");
		d->local_data = gn_calloc(n + 1, sizeof(*d->local_data));
		d->local_data_at = gn_calloc(n + 1, sizeof(*d->local_data_at));
		for (size_t i = 0; i < n; i++) {
			config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
			d->local_data[i] = gn_strdup(v[i]);
			d->local_data_at[i] = gn_strdup_printf("%s[%zu] at %s:%d",
				setting_path(list), i, setting_file(e), setting_line(e));
		}
		d->n_local_data = n;
	}
	if (gn_config_duration_ms(dns, "timeout", 10000, &d->timeout_ms) > 0 &&
	    d->timeout_ms == 0) {
		bad(lookup(dns, "timeout"), "must be longer than 0");
		d->timeout_ms = 10000;
	}
	gn_config_int(dns, "max_queries", 1000, 1, 1000000, &ll);
	d->max_queries = (unsigned)ll;
}

static void read_modules(struct gn_config *root, struct core_conf *c)
{
	struct gn_config *mods = gn_config_section(root, "modules");
	const char *env = getenv("GANNET_MODULE_DIR");
	const char *dir = env != NULL && env[0] != '\0' ? env : GN_MODULE_DIR;
	if (gn_config_string(mods, "directory", dir, &dir) > 0 && dir[0] == '\0') {
		bad(lookup(mods, "directory"), "must not be empty");
		dir = GN_MODULE_DIR;
	}
	c->module_dir = gn_strdup(dir);

	const char *const *names;
	size_t n;
	if (gn_config_strings(mods, "load", &names, &n) <= 0)
		return;
	config_setting_t *load = lookup(mods, "load");
	c->modules = gn_calloc(n ? n : 1, sizeof(*c->modules));
	for (size_t i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(load, (unsigned)i);
		if (!valid_name(names[i], NULL)) {
			bad(e, "\"%s\" is not a module name ([a-z0-9_]+)", names[i]);
			continue;
		}
		bool dup = false;
		for (size_t j = 0; j < c->n_modules && !dup; j++)
			dup = strcmp(c->modules[j].name, names[i]) == 0;
		if (dup) {
			bad(e, "module %s is listed twice", names[i]);
			continue;
		}
		c->modules[c->n_modules].name = gn_strdup(names[i]);
		c->modules[c->n_modules].line = setting_line(e);
		c->n_modules++;

		/* The module's section belongs to the module: the section itself
		 * counts as read, its settings are up to the module. */
		(void)conf_module_section(names[i]);
	}
}

static void read_core(struct core_conf *c, bool from_file)
{
	struct gn_config *root = handle(config_root_setting(&cfg));
	const char *s;
	long long v;

	if (gn_config_string(root, "hostname", NULL, &s) > 0 && !valid_hostname(s)) {
		bad(lookup(root, "hostname"), "\"%s\" is not a valid host name", s);
		s = NULL;
	}
	c->hostname = gn_strdup(s != NULL ? s : system_hostname());

	if (gn_config_string(root, "user", NULL, &s) > 0) {
		if (s[0] == '\0') {
			bad(lookup(root, "user"), "must not be empty");
			s = NULL;
		} else if (getpwnam(s) == NULL) {
			bad(lookup(root, "user"), "no such user \"%s\"", s);
		}
	}
	c->user = dup_or_null(s);
	if (from_file && c->user == NULL && geteuid() == 0)
		conf_error("user must be set when gannet starts as root at %s",
			   display_name);

	if (gn_config_string(root, "pid_file", NULL, &s) > 0 && s[0] == '\0') {
		bad(lookup(root, "pid_file"), "must not be empty");
		s = NULL;
	}
	c->pid_file = dup_or_null(s);

	gn_config_int(root, "workers", 0, 0, 1024, &v);
	c->workers = (unsigned)v;
	gn_config_duration_ms(root, "grace_period", 30000, &c->grace_ms);

	struct gn_config *db = gn_config_section(root, "database");
	gn_config_string(db, "conninfo", NULL, &s);
	c->database = dup_or_null(s);

	read_log(root, c);
	read_tls(root, c);

	struct gn_config *limits = gn_config_section(root, "limits");
	gn_config_int(limits, "connections_per_ip", 20, 1, 1000000, &v);
	c->max_conns_per_ip = (unsigned)v;
	gn_config_int(limits, "ipv6_prefix", 64, 32, 128, &v);
	c->ipv6_prefix = (unsigned)v;
	gn_config_int(limits, "connections", 1000, 1, 1000000, &v);
	c->max_conns = (unsigned)v;
	if (gn_config_duration_ms(limits, "idle_timeout", 300000, &c->idle_timeout_ms) > 0 &&
	    c->idle_timeout_ms == 0) {
		bad(lookup(limits, "idle_timeout"), "must be longer than 0");
		c->idle_timeout_ms = 300000;
	}

	read_dns(root, c);
	/* DKIM verification (gannet/dkim.h): signatures evaluated per
	 * message, RFC 6376 6.1 lets a verifier limit them; the default and
	 * the most are GN_DKIM_MAX_SIGNATURES_DEFAULT and _MAX_SIGNATURES
	 * (the mail layer's, above this one). */
	struct gn_config *dkim = gn_config_section(root, "dkim");
	gn_config_int(dkim, "max_signatures", 5, 1, 100, &v);
	c->dkim_max_signatures = (unsigned)v;
	/* The outbound queue (gannet/queue.h). */
	struct gn_config *queue = gn_config_section(root, "queue");
	gn_config_int(queue, "max_attempts", 8, 1, 100, &v);
	c->queue_max_attempts = (unsigned)v;
	/* Deliveries the runner has under way at once (Postfix's
	 * default_destination_concurrency_limit is 20). */
	gn_config_int(queue, "concurrency", 20, 1, 1000, &v);
	c->queue_concurrency = (unsigned)v;
	/* The transport when no module sets one: "smtp" (the core's, to the
	 * MX hosts), or "none" (every attempt fails temporarily; a node that
	 * must not send, and tests of the queue alone). */
	const char *tr;
	if (gn_config_string(queue, "transport", "smtp", &tr) > 0) {
		if (strcmp(tr, "none") == 0)
			c->queue_no_transport = true;
		else if (strcmp(tr, "smtp") != 0)
			bad(lookup(queue, "transport"), "\"%s\" is not a transport (smtp, none)", tr);
	}
	/* The port of the receiving servers: 25 (RFC 5321 4.5.4.2); another
	 * one for tests and localserve. */
	gn_config_int(queue, "smtp_port", 25, 1, 65535, &v);
	c->queue_smtp_port = (unsigned)v;
	/* Every message to this address instead of the recipients' MX hosts
	 * (localserve: its own SMTP listener). */
	const char *relay;
	if (gn_config_string(queue, "relay", NULL, &relay) > 0 && relay[0] != '\0') {
		struct in6_addr a6;
		struct in_addr a4;
		if (inet_pton(AF_INET, relay, &a4) != 1 && inet_pton(AF_INET6, relay, &a6) != 1)
			bad(lookup(queue, "relay"), "\"%s\" is not an IP address", relay);
		else
			c->queue_relay = gn_strdup(relay);
	}
	/* How long the retired records of an account without a setting of
	 * its own are kept (mox's KeepRetiredMessagePeriod, default 0: not
	 * kept); whole seconds, as the column is, at most 100 years, as
	 * `gannet queue retired keep` takes. */
	long long keep_ms;
	if (gn_config_duration_ms(queue, "retired_keep", 0, &keep_ms) > 0 &&
	    (keep_ms % 1000 != 0 || keep_ms / 1000 > 100LL * 365 * 86400)) {
		bad(lookup(queue, "retired_keep"), "must be whole seconds, at most 100 years");
		keep_ms = 0;
	}
	c->queue_retired_keep_s = keep_ms / 1000;
	/* CA certificates (a PEM file) the queue trusts besides the system's
	 * when it verifies a receiving server (REQUIRETLS, RFC 8689): a
	 * private CA, or a test's. */

	/* Connections reused across deliveries (transport-smtp.c): idle ones
	 * kept at most this many in all and to one server, this long (a
	 * server's own timeout is 5 min, RFC 5321 4.5.3.2.7, but many close
	 * sooner: at most 60 s), for at most this many transactions each. */
	gn_config_int(queue, "smtp_reuse_max", 20, 0, 1000, &v);
	c->queue_reuse_max = (unsigned)v;
	gn_config_int(queue, "smtp_reuse_per_host", 20, 1, 100, &v);
	c->queue_reuse_per_host = (unsigned)v;
	gn_config_int(queue, "smtp_reuse_transactions", 100, 1, 100000, &v);
	c->queue_reuse_transactions = (unsigned)v;
	if (gn_config_duration_ms(queue, "smtp_reuse_idle", 30000, &c->queue_reuse_idle_ms) > 0 &&
	    (c->queue_reuse_idle_ms == 0 || c->queue_reuse_idle_ms > 60000)) {
		bad(lookup(queue, "smtp_reuse_idle"), "must be longer than 0 and at most 60s");
		c->queue_reuse_idle_ms = 30000;
	}

	read_http(root, c);
	/* MTA-STS policy hosts are asked on 443 (RFC 8461 3.3); another
	 * port is for tests only. */
	gn_config_int(queue, "mta_sts_port", 443, 1, 65535, &v);
	c->queue_mta_sts_port = (unsigned)v;
	/* The whole policy fetch (connect, TLS, response). */
	if (gn_config_duration_ms(queue, "mta_sts_timeout", 30000, &c->queue_mta_sts_timeout_ms) > 0 &&
	    (c->queue_mta_sts_timeout_ms < 100 || c->queue_mta_sts_timeout_ms > 300000)) {
		bad(lookup(queue, "mta_sts_timeout"), "must be from 100ms to 5min");
		c->queue_mta_sts_timeout_ms = 30000;
	}

	read_listeners(root, c);
	read_modules(root, c);
}

/* ---- loading ---- */

static int load(const char *name, const char *text, bool from_file)
{
	conf_free();
	config_init(&cfg);
	cfg_loaded = true;
	display_name = gn_pool_strdup(keep(), base_name(name));

	char *dir = NULL;
	if (from_file) {
		const char *slash = strrchr(name, '/');
		dir = slash != NULL ? gn_strndup(name, (size_t)(slash - name) + 1)
			: gn_strdup(".");
		config_set_include_dir(&cfg, dir);
	}

	errno = 0;
	int ok = from_file ? config_read_file(&cfg, name)
		: config_read_string(&cfg, text);
	int saved_errno = errno;
	int ret = 0;
	if (ok != CONFIG_TRUE) {
		if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
			conf_error("cannot read %s: %s", name,
				   saved_errno != 0 ? strerror(saved_errno)
				   : config_error_text(&cfg));
		else
			conf_error("syntax error: %s at %s:%d",
				   config_error_text(&cfg),
				   config_error_file(&cfg) != NULL ?
				   base_name(config_error_file(&cfg)) : display_name,
				   config_error_line(&cfg));
		/* Go on with an empty tree, so core_conf holds the defaults. */
		config_destroy(&cfg);
		config_init(&cfg);
		ret = -1;
	}
	gn_free(dir);

	core_conf = gn_calloc(1, sizeof(*core_conf));
	core_conf->path = gn_strdup(name);
	read_core(core_conf, from_file && ret == 0);
	return ret;
}

int conf_load(const char *path)
{
	return load(path, NULL, true);
}

int conf_load_string(const char *name, const char *text)
{
	return load(name, text, false);
}

void conf_free(void)
{
	if (core_conf != NULL) {
		struct core_conf *c = core_conf;
		gn_free(c->path);
		gn_free(c->hostname);
		gn_free(c->user);
		gn_free(c->database);
		gn_free(c->module_dir);
		for (size_t i = 0; i < c->n_modules; i++)
			gn_free(c->modules[i].name);
		gn_free(c->modules);
		gn_free(c->log_destination);
		gn_free(c->pid_file);
		gn_free(c->queue_relay);
		gn_free(c->tls_client_ca_file);
		gn_free(c->tls_priority);
		for (size_t i = 0; i < c->n_certs; i++) {
			gn_free(c->certs[i].cert_file);
			gn_free(c->certs[i].key_file);
		}
		gn_free(c->certs);
		for (size_t i = 0; i < c->n_listeners; i++) {
			gn_free(c->listeners[i].name);
			gn_free(c->listeners[i].address);
			gn_free(c->listeners[i].protocol);
		}
		gn_free(c->listeners);
		for (size_t i = 0; i < c->dns.n_resolvers; i++)
			gn_free(c->dns.resolvers[i]);
		gn_free(c->dns.resolvers);
		gn_free(c->dns.trust_anchor);
		for (size_t i = 0; i < c->dns.n_local_data; i++) {
			gn_free(c->dns.local_data[i]);
			gn_free(c->dns.local_data_at[i]);
		}
		gn_free(c->dns.local_data);
		gn_free(c->dns.local_data_at);
		gn_free(c);
		core_conf = NULL;
	}
	if (cfg_loaded) {
		config_destroy(&cfg);
		cfg_loaded = false;
	}
	gn_pool_free(&load_pool);
	for (size_t i = 0; i < n_errors; i++)
		gn_free(errors[i]);
	gn_free(errors);
	errors = NULL;
	n_errors = errors_alloc = 0;
	unused_checked = false;
	display_name = NULL;
}
