/*
 * modules/imap/imap.c: the imap module.  Serves IMAP (RFC 9051, RFC 3501)
 * on the listeners whose protocol is "imap": port 143 with STARTTLS, 993
 * with implicit TLS.  The files and what each holds: imap.h.
 *
 * Settings, section imap:
 *
 *   imap = {
 *     cleartext_ok = false;       # LOGIN and PLAIN without TLS (tests only)
 *     max_bad = 20;               # BAD answers in a row before BYE
 *     timeout_notauth = "60s";    # idle before logging in
 *     timeout_auth = "30m";       # idle after (RFC 9051 5.4: at least 30 min)
 *     max_line = "64k";           # one line of a command
 *     max_command = "64k";        # a whole command with its literals
 *     max_literal = "64k";        # one literal (APPEND's message aside)
 *     max_message = "50M";        # one APPEND message (APPENDLIMIT)
 *     max_append_messages = 1000; # messages in one MULTIAPPEND
 *     max_append_total = "1G";    # their total size
 *     literal_plus = true;        # LITERAL+; false: LITERAL- (RFC 7888)
 *     search_scan_limit = "64M";  # message bytes one SEARCH may read
 *     sort_limit = 100000;        # messages one SORT or THREAD may process
 *   };
 */
#include "imap.h"

struct imap_settings imap_settings;

static int read_size(struct gn_config *sect, const char *name, size_t def, size_t min, size_t max,
		     size_t *value_r)
{
	unsigned long long v;
	int r = gn_config_size(sect, name, def, &v);
	if (r > 0 && (v < min || v > max)) {
		gn_config_error(sect, name, "%s.%s must be between %zu and %zu bytes", gn_config_path(sect),
				name, min, max);
		v = def;
	}
	*value_r = (size_t)v;
	return r;
}

static int imap_register(struct gn_module_ctx *ctx, const char **error_r)
{
	struct gn_config *sect = gn_module_config(ctx);
	struct imap_settings *st = &imap_settings;
	long long v;

	imap_limits_init(&st->limits);
	(void)gn_config_bool(sect, "cleartext_ok", false, &st->cleartext_ok);
	(void)gn_config_int(sect, "max_bad", 20, 1, 1000, &v);
	st->max_bad = (unsigned)v;
	(void)gn_config_duration_ms(sect, "timeout_notauth", 60 * 1000, &v);
	st->timeout_notauth_ms = v > 0 ? (unsigned long)v : 60 * 1000;
	/* RFC 9051 5.4: an autologout timer of at least 30 minutes. */
	if (gn_config_duration_ms(sect, "timeout_auth", 30 * 60 * 1000, &v) > 0 && v < 30 * 60 * 1000)
		gn_config_error(sect, "timeout_auth", "%s.timeout_auth must be at least 30m (RFC 9051 5.4)",
				gn_config_path(sect));
	st->timeout_auth_ms = v >= 30 * 60 * 1000 ? (unsigned long)v : 30 * 60 * 1000;
	(void)read_size(sect, "max_line", st->limits.max_line, 1024, 16 * 1024 * 1024, &st->limits.max_line);
	(void)read_size(sect, "max_command", st->limits.max_command, 1024, 64 * 1024 * 1024,
			&st->limits.max_command);
	(void)read_size(sect, "max_literal", st->limits.max_literal, 0, 64 * 1024 * 1024,
			&st->limits.max_literal);
	/* Past it, SEARCH with BODY, TEXT or HEADER answers NO [LIMIT]. */
	(void)read_size(sect, "search_scan_limit", 64 * 1024 * 1024, 0, (size_t)1 << 40,
			&st->search_scan_limit);
	/* Past it, SORT and THREAD answer NO [LIMIT]. */
	(void)gn_config_int(sect, "sort_limit", 100000, 1, 10000000, &v);
	st->sort_limit = (unsigned)v;
	/* The core has no message size limit of its own (a delivery's is
	 * 0: none); 50 MiB is what the SMTP servers default to
	 * (gn_smtp_settings_init()), so what arrives by mail can be
	 * appended.  RFC 7889's APPENDLIMIT is a 32-bit number. */
	size_t size;
	(void)read_size(sect, "max_message", 50 * 1024 * 1024, 1024, 0xffffffffu, &size);
	st->max_message = size;
	(void)gn_config_int(sect, "max_append_messages", 1000, 1, 100000, &v);
	st->max_append_messages = (unsigned)v;
	(void)read_size(sect, "max_append_total", 1024 * 1024 * 1024, 1024, SIZE_MAX, &size);
	st->max_append_total = size;
	(void)gn_config_bool(sect, "literal_plus", true, &st->literal_plus);
	/* RFC 7888 4: LITERAL- takes non-synchronising literals up to 4096
	 * octets. */
	st->limits.max_nonsync = st->literal_plus ? 0 : 4096;
	if (imap_service_provide(ctx, error_r) < 0 || imap_id_register(ctx, error_r) < 0)
		return -1;
	return imap_protocol_register(ctx, error_r);
}

static int imap_start(struct gn_module_ctx *ctx, const char **error_r)
{
	(void)ctx;
	imap_service_fix();
	return imap_idle_start(error_r);
}

GN_EXPORT const struct gn_module gannet_module_v1 = {
	GN_MODULE_HEADER,
	.name = "imap",
	.version = "0.1",
	.register_fn = imap_register,
	.start_fn = imap_start,
};
