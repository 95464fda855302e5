/*
 * t/unit/test_config.c: the config file (core/runtime/config.c): the core's
 * settings and their defaults, every getter of gannet/config.h (present,
 * absent, invalid), durations and sizes, unknown settings and syntax errors
 * with their exact lines, listener validation, loading from a file.
 */
#include "runtime/internal.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Everything conf_errors_print() would print, as one string (static). */
static const char *errors_text(void)
{
	static char *text;
	size_t len;
	free(text);
	text = NULL;
	FILE *f = open_memstream(&text, &len);
	conf_errors_print(f);
	fclose(f);
	return text;
}

static int load(const char *text)
{
	return conf_load_string("gannet.conf", text);
}

static void test_defaults(void)
{
	unsetenv("GANNET_MODULE_DIR");
	is_int(load(""), 0, "an empty config loads");
	is_int((long long)conf_error_count(), 0, "an empty config has no errors");
	char host[256] = "";
	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	is_str(core_conf->hostname, host, "hostname defaults to the system host name");
	is_str(gn_config_hostname(), host, "gn_config_hostname() gives the default");
	ok(core_conf->user == NULL, "user has no default");
	ok(core_conf->pid_file == NULL, "pid_file has no default");
	ok(core_conf->database == NULL, "database has no default");
	is_int(core_conf->workers, 0, "workers defaults to 0 (two per CPU)");
	is_int(core_conf->grace_ms, 30000, "grace_period defaults to 30s");
	is_int(core_conf->max_conns_per_ip, 20, "limits.connections_per_ip defaults to 20");
	is_int(core_conf->max_conns, 1000, "limits.connections defaults to 1000");
	is_int(core_conf->idle_timeout_ms, 300000, "limits.idle_timeout defaults to 5m");
	is_str(core_conf->log_destination, "stderr", "log.destination defaults to stderr");
	ok(gn_log_enabled(GN_LOG_INFO, NULL) && !gn_log_enabled(GN_LOG_DEBUG, NULL),
	   "log.level defaults to info");
	is_str(core_conf->tls_priority,
	       "NORMAL:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1:%SERVER_PRECEDENCE",
	       "tls.priority has a secure default");
	is_str(core_conf->module_dir, GN_MODULE_DIR, "modules.directory defaults to the build's");
	is_int((long long)core_conf->n_modules, 0, "no modules by default");
	is_int((long long)core_conf->n_listeners, 0, "no listeners by default");
	is_int((long long)core_conf->n_certs, 0, "no certificates by default");
	is_str(core_conf->path, "gannet.conf", "path is the name given");

	setenv("GANNET_MODULE_DIR", "/tmp/mods", 1);
	load("");
	is_str(core_conf->module_dir, "/tmp/mods", "GANNET_MODULE_DIR overrides the default");
	load("modules = { directory = \"/opt/m\"; };");
	is_str(core_conf->module_dir, "/opt/m", "modules.directory in the file wins");
	unsetenv("GANNET_MODULE_DIR");
	conf_free();
	ok(core_conf == NULL, "conf_free() clears core_conf");
	is_int((long long)conf_error_count(), 0, "conf_free() clears the errors");
}

static void test_full(void)
{
	const char *text =
		"hostname = \"mail.example.com\";\n"
		"user = \"nobody\";\n"
		"pid_file = \"/run/gannet.pid\";\n"
		"workers = 8;\n"
		"grace_period = \"2m\";\n"
		"database = { conninfo = \"host=/run/postgresql dbname=gannet\"; };\n"
		"log = { destination = \"stderr\"; level = \"warn\"; levels = { imap = \"debug\"; }; };\n"
		"tls = { priority = \"SECURE128\";\n"
		"  certificates = ( { cert = \"/a.pem\"; key = \"/a.key\"; },\n"
		"                   { cert = \"/b.pem\"; key = \"/b.key\"; } ); };\n"
		"limits = { connections_per_ip = 5; connections = 50; idle_timeout = 90; };\n"
		"listeners = (\n"
		"  { name = \"mx\"; address = \"127.0.0.1\"; port = 25; protocol = \"smtp\"; tls = \"starttls\"; },\n"
		"  { address = \"::1\"; port = 993; protocol = \"imap\"; tls = \"implicit\"; },\n"
		"  { address = \"::1\"; port = 143; protocol = \"imap\"; }\n"
		");\n"
		"modules = { load = [ \"imap\",\n"
		"  \"smtp\" ]; };\n";
	is_int(load(text), 0, "a full config loads");
	is_int((long long)conf_error_count(), 0, "a full config has no errors");
	if (conf_error_count() > 0)
		diag("%s", errors_text());
	is_str(core_conf->hostname, "mail.example.com", "hostname");
	is_str(gn_config_hostname(), "mail.example.com", "gn_config_hostname()");
	is_str(core_conf->user, "nobody", "user");
	is_str(core_conf->pid_file, "/run/gannet.pid", "pid_file");
	is_int(core_conf->workers, 8, "workers");
	is_int(core_conf->grace_ms, 120000, "grace_period \"2m\"");
	is_str(core_conf->database, "host=/run/postgresql dbname=gannet", "database.conninfo");
	ok(gn_log_enabled(GN_LOG_WARN, NULL) && !gn_log_enabled(GN_LOG_INFO, NULL),
	   "log.level warn is applied");
	ok(gn_log_enabled(GN_LOG_DEBUG, "imap"), "log.levels.imap debug is applied");
	is_str(core_conf->tls_priority, "SECURE128", "tls.priority");
	is_int((long long)core_conf->n_certs, 2, "two certificates");
	is_str(core_conf->certs[1].cert_file, "/b.pem", "second certificate");
	is_str(core_conf->certs[1].key_file, "/b.key", "second key");
	is_int(core_conf->max_conns_per_ip, 5, "limits.connections_per_ip");
	is_int(core_conf->max_conns, 50, "limits.connections");
	is_int(core_conf->idle_timeout_ms, 90000, "limits.idle_timeout as integer seconds");
	is_int((long long)core_conf->n_listeners, 3, "three listeners");
	struct listener_conf *l = core_conf->listeners;
	is_str(l[0].name, "mx", "listener name given");
	is_str(l[0].address, "127.0.0.1", "listener address");
	is_int(l[0].port, 25, "listener port");
	is_str(l[0].protocol, "smtp", "listener protocol");
	is_int(l[0].tls, TLS_MODE_STARTTLS, "listener tls starttls");
	is_str(l[0].file, "gannet.conf", "listener file");
	is_int(l[0].line, 13, "listener line");
	is_str(l[1].name, "imap-993", "listener name defaults to protocol-port");
	is_int(l[1].tls, TLS_MODE_IMPLICIT, "listener tls implicit");
	is_int(l[1].line, 14, "second listener line");
	is_int(l[2].tls, TLS_MODE_NONE, "listener tls defaults to none");
	is_int((long long)core_conf->n_modules, 2, "two modules");
	is_str(core_conf->modules[0].name, "imap", "first module");
	is_int(core_conf->modules[0].line, 17, "line of the first module");
	is_str(core_conf->modules[1].name, "smtp", "second module");
	is_int(core_conf->modules[1].line, 18, "line of the second module");
	conf_check_unused();
	is_int((long long)conf_error_count(), 0, "every core setting counts as read");
	if (conf_error_count() > 0)
		diag("%s", errors_text());
	log_set_level(NULL, GN_LOG_INFO);
	log_set_level("imap", GN_LOG_INFO);
	conf_free();
}

static void test_getters(void)
{
	const char *text =
		"modules = { load = [ \"m\" ]; };\n"	/* 1 */
		"m = {\n"				/* 2 */
		"  s = \"str\";\n"			/* 3 */
		"  i = 42;\n"				/* 4 */
		"  big = 5000000000L;\n"		/* 5 */
		"  neg = -7;\n"				/* 6 */
		"  b = true;\n"				/* 7 */
		"  f = 1.5;\n"				/* 8 */
		"  d1 = \"500ms\"; d2 = \"30s\"; d3 = \"5m\"; d4 = \"2h\"; d5 = \"1d\"; d6 = 10;\n" /* 9 */
		"  z1 = 100; z2 = \"10k\"; z3 = \"5M\"; z4 = \"1G\"; z5 = \"12\";\n" /* 10 */
		"  arr = [ \"a\", \"b\" ];\n"		/* 11 */
		"  lst = ( \"x\", \"y\", \"z\" );\n"	/* 12 */
		"  mixed = ( \"x\", 1 );\n"		/* 13 */
		"  empty = [];\n"			/* 14 */
		"  sub = { k = \"v\"; n = { deep = 1; }; };\n"	/* 15 */
		"  bd1 = \"5x\"; bd2 = \"1.5s\"; bd3 = -1; bd4 = \"s\"; bd5 = \"30\";\n" /* 16 */
		"  bz1 = \"3T\"; bz2 = \"k\"; bz3 = -5; bz4 = \"10kk\"; bz5 = true;\n" /* 17 */
		"};\n";
	is_int(load(text), 0, "the getters' config loads");
	struct gn_config *m = conf_module_section("m");
	ok(m != NULL, "conf_module_section() finds the section");
	is_str(gn_config_path(m), "m", "section path");

	const char *s;
	long long i;
	bool b;
	unsigned long long z;
	const char *const *v;
	size_t n;

	/* strings */
	is_int(gn_config_string(m, "s", "def", &s), 1, "string present");
	is_str(s, "str", "string value");
	is_int(gn_config_string(m, "nope", "def", &s), 0, "string absent");
	is_str(s, "def", "string default");
	is_int(gn_config_string(m, "nope", NULL, &s), 0, "string absent, NULL default");
	ok(s == NULL, "string default NULL");
	is_int(gn_config_string(m, "i", "def", &s), -1, "string invalid (an integer)");
	is_str(s, "def", "invalid string gives the default");
	like(errors_text(), "gannet: config: m.i: must be a string at gannet.conf:4",
	     "invalid string error names setting, file and line");

	/* integers */
	is_int(gn_config_int(m, "i", 1, 0, 100, &i), 1, "int present");
	is_int(i, 42, "int value");
	is_int(gn_config_int(m, "big", 1, 0, 10000000000LL, &i), 1, "int64 present");
	is_int(i, 5000000000LL, "int64 value");
	is_int(gn_config_int(m, "neg", 1, -10, 10, &i), 1, "negative int in range");
	is_int(i, -7, "negative int value");
	is_int(gn_config_int(m, "nope", 17, 0, 100, &i), 0, "int absent");
	is_int(i, 17, "int default");
	is_int(gn_config_int(m, "i", 17, 0, 10, &i), -1, "int out of range");
	is_int(i, 17, "out of range int gives the default");
	like(errors_text(), "m.i: 42 is not between 0 and 10 at gannet.conf:4",
	     "out of range error");
	is_int(gn_config_int(m, "s", 17, 0, 10, &i), -1, "int invalid (a string)");
	is_int(gn_config_int(m, "f", 17, 0, 10, &i), -1, "int invalid (a float)");
	like(errors_text(), "m.f: must be an integer at gannet.conf:8", "float is not an int");

	/* booleans */
	is_int(gn_config_bool(m, "b", false, &b), 1, "bool present");
	ok(b, "bool value");
	is_int(gn_config_bool(m, "nope", true, &b), 0, "bool absent");
	ok(b, "bool default");
	b = false;
	is_int(gn_config_bool(m, "i", true, &b), -1, "bool invalid");
	ok(b, "invalid bool gives the default");
	like(errors_text(), "m.i: must be true or false at gannet.conf:4", "bool error");

	/* durations */
	static const struct { const char *name; long long ms; } durs[] = {
		{ "d1", 500 }, { "d2", 30000 }, { "d3", 300000 }, { "d4", 7200000 },
		{ "d5", 86400000 }, { "d6", 10000 },
	};
	for (size_t k = 0; k < sizeof(durs) / sizeof(durs[0]); k++) {
		is_int(gn_config_duration_ms(m, durs[k].name, 1, &i), 1, "duration %s present",
		       durs[k].name);
		is_int(i, durs[k].ms, "duration %s value", durs[k].name);
	}
	is_int(gn_config_duration_ms(m, "nope", 1234, &i), 0, "duration absent");
	is_int(i, 1234, "duration default");
	const char *bad_durs[] = { "bd1", "bd2", "bd3", "bd4", "bd5", "b" };
	for (size_t k = 0; k < sizeof(bad_durs) / sizeof(bad_durs[0]); k++) {
		i = 0;
		is_int(gn_config_duration_ms(m, bad_durs[k], 99, &i), -1, "duration %s invalid",
		       bad_durs[k]);
		is_int(i, 99, "invalid duration %s gives the default", bad_durs[k]);
	}
	like(errors_text(), "m.bd1: must be a duration", "duration error text");
	like(errors_text(), "at gannet.conf:16", "duration error line");

	/* sizes */
	static const struct { const char *name; unsigned long long bytes; } sizes[] = {
		{ "z1", 100 }, { "z2", 10240 }, { "z3", 5242880 }, { "z4", 1073741824 },
		{ "z5", 12 },
	};
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		is_int(gn_config_size(m, sizes[k].name, 1, &z), 1, "size %s present", sizes[k].name);
		is_int((long long)z, (long long)sizes[k].bytes, "size %s value", sizes[k].name);
	}
	is_int(gn_config_size(m, "nope", 4096, &z), 0, "size absent");
	is_int((long long)z, 4096, "size default");
	const char *bad_sizes[] = { "bz1", "bz2", "bz3", "bz4", "bz5" };
	for (size_t k = 0; k < sizeof(bad_sizes) / sizeof(bad_sizes[0]); k++) {
		z = 0;
		is_int(gn_config_size(m, bad_sizes[k], 77, &z), -1, "size %s invalid", bad_sizes[k]);
		is_int((long long)z, 77, "invalid size %s gives the default", bad_sizes[k]);
	}
	like(errors_text(), "m.bz1: must be a size", "size error text");

	/* string lists */
	is_int(gn_config_strings(m, "arr", &v, &n), 1, "strings from an array");
	is_int((long long)n, 2, "array count");
	ok(v[0] && v[1] && !v[2] && strcmp(v[0], "a") == 0 && strcmp(v[1], "b") == 0,
	   "array values, NULL-terminated");
	is_int(gn_config_strings(m, "lst", &v, &n), 1, "strings from a list");
	is_int((long long)n, 3, "list count");
	is_str(v[2], "z", "list value");
	ok(v[3] == NULL, "list NULL-terminated");
	is_int(gn_config_strings(m, "empty", &v, &n), 1, "empty array");
	ok(n == 0 && v[0] == NULL, "empty array gives no strings");
	is_int(gn_config_strings(m, "nope", &v, &n), 0, "strings absent");
	ok(n == 0 && v != NULL && v[0] == NULL, "absent strings give an empty array");
	is_int(gn_config_strings(m, "mixed", &v, &n), -1, "list with a non-string");
	ok(n == 0 && v[0] == NULL, "invalid list gives an empty array");
	like(errors_text(), "m.mixed[1]: must be a string at gannet.conf:13",
	     "non-string element error names the element");
	is_int(gn_config_strings(m, "s", &v, &n), -1, "a string is not a list");

	/* sections */
	struct gn_config *sub = gn_config_section(m, "sub");
	ok(sub != NULL, "subsection present");
	is_str(gn_config_path(sub), "m.sub", "subsection path");
	ok(gn_config_section(m, "sub") == sub, "the same subsection twice is one handle");
	is_int(gn_config_string(sub, "k", NULL, &s), 1, "string in subsection");
	is_str(s, "v", "string in subsection value");
	is_int(gn_config_int(m, "sub.n.deep", 0, 0, 9, &i), 1, "dotted name reaches deeper");
	is_int(i, 1, "dotted name value");
	ok(gn_config_section(m, "nope") == NULL, "absent subsection is NULL");
	size_t before = conf_error_count();
	ok(gn_config_section(m, "s") == NULL, "a string is not a subsection");
	is_int((long long)(conf_error_count() - before), 1, "... and that is an error");
	like(errors_text(), "m.s: must be a group", "subsection error text");

	/* gn_config_error */
	gn_config_error(m, "lst", "needs %d entries", 4);
	like(errors_text(), "gannet: config: needs 4 entries at gannet.conf:12",
	     "gn_config_error() appends the setting's location");
	gn_config_error(m, NULL, "section problem");
	like(errors_text(), "section problem at gannet.conf:2",
	     "gn_config_error() with no name uses the section's line");
	gn_config_error(m, "nope", "absent problem");
	like(errors_text(), "absent problem at gannet.conf:2",
	     "gn_config_error() for an absent setting uses the section's line");

	/* an empty section */
	struct gn_config *e = conf_module_section("absent");
	ok(e != NULL, "a module without a section gets an empty one");
	is_str(gn_config_path(e), "absent", "empty section path");
	is_int(gn_config_int(e, "x", 5, 0, 9, &i), 0, "getter on empty section: absent");
	is_int(i, 5, "getter on empty section: default");
	ok(gn_config_section(e, "x") == NULL, "no subsections in an empty section");
	gn_config_error(e, "x", "empty problem");
	like(errors_text(), "empty problem at gannet.conf", "error about an empty section");

	/* conf_error */
	conf_error("module %s at %s:%d", "foo", "gannet.conf", 7);
	like(errors_text(), "gannet: config: module foo at gannet.conf:7\n",
	     "conf_error() records a free-form error");
	conf_free();
}

static void test_unknown(void)
{
	const char *text =
		"hostname = \"mail.test\";\n"			/* 1 */
		"limits = { conections = 5; };\n"		/* 2 */
		"foo = { a = 1; b = 2; };\n"			/* 3 */
		"modules = { load = [ \"imap\", \"quiet\" ]; };\n"	/* 4 */
		"imap = {\n"					/* 5 */
		"  idle_timeout = \"30m\";\n"			/* 6 */
		"  idle_timout = \"30m\";\n"			/* 7 */
		"  limits = { read = 1; unread = 2; };\n"	/* 8 */
		"  names = [ \"a\", \"b\" ];\n"			/* 9 */
		"};\n"						/* 10 */
		"quiet = { };\n"				/* 11 */
		"listeners = ( { port = 25; protocol = \"smtp\";\n"	/* 12 */
		"  bogus = 1; } );\n"				/* 13 */
		"tls = { certificates = ( { cert = \"a\"; key = \"b\"; kye = \"c\"; } ); };\n" /* 14 */
		"workers = 1;\n";				/* 15 */
	is_int(load(text), 0, "config with unknown settings parses");
	is_int((long long)conf_error_count(), 0, "no errors before the check");
	struct gn_config *imap = conf_module_section("imap");
	long long v;
	const char *const *names;
	gn_config_duration_ms(imap, "idle_timeout", 0, &v);
	gn_config_int(imap, "limits.read", 0, 0, 9, &v);
	gn_config_strings(imap, "names", &names, NULL);
	conf_check_unused();
	const char *t = errors_text();
	like(t, "gannet: config: unknown setting limits.conections at gannet.conf:2\n",
	     "a typo in a core group");
	like(t, "gannet: config: unknown setting foo at gannet.conf:3\n",
	     "a group nothing claims is one error");
	ok(strstr(t, "foo.a") == NULL, "... not one per setting inside it");
	like(t, "gannet: config: unknown setting imap.idle_timout at gannet.conf:7\n",
	     "a typo in a module section");
	like(t, "gannet: config: unknown setting imap.limits.unread at gannet.conf:8\n",
	     "a setting the module did not read in its subsection");
	like(t, "gannet: config: unknown setting listeners[0].bogus at gannet.conf:13\n",
	     "an unknown listener setting");
	like(t, "gannet: config: unknown setting tls.certificates[0].kye at gannet.conf:14\n",
	     "an unknown certificate setting");
	ok(strstr(t, "quiet") == NULL, "a loaded module's empty section is fine");
	ok(strstr(t, "names") == NULL, "list elements count as read with the list");
	ok(strstr(t, "idle_timeout ") == NULL && strstr(t, "imap.limits.read ") == NULL,
	   "settings that were read are not reported");
	is_int((long long)conf_error_count(), 6, "exactly six unknown settings");
	if (conf_error_count() != 6)
		diag("%s", t);
	conf_check_unused();
	is_int((long long)conf_error_count(), 6, "checking twice reports once");

	/* A module section that is not a group. */
	load("modules = { load = [ \"imap\" ]; };\nimap = 5;\n");
	like(errors_text(), "module section imap must be a group (imap = { ... };) at gannet.conf:2",
	     "a module section that is not a group is an error");
	conf_free();
}

static void test_syntax(void)
{
	is_int(load("a = 1;\nb = { c = 2; };\nd = ;\n"), -1, "syntax error fails the load");
	is_int((long long)conf_error_count(), 1, "one error");
	const char *t = errors_text();
	like(t, "gannet: config: syntax error: ", "syntax error prefix");
	like(t, " at gannet.conf:3\n", "syntax error names the line");
	ok(core_conf != NULL && core_conf->workers == 0 && core_conf->max_conns == 1000,
	   "after a syntax error core_conf holds the defaults");
	conf_check_unused();
	is_int((long long)conf_error_count(), 1, "nothing else is reported after a syntax error");

	is_int(load("hostname = \"a\";\nlimits = {\n  connections = 1 2;\n};\n"), -1,
	       "two values for one setting");
	like(errors_text(), "at gannet.conf:3\n", "syntax error inside a group names its line");
	conf_free();
}

static void test_core_validation(void)
{
	static const struct { const char *text, *want; } cases[] = {
		{ "workers = 2000;", "workers: 2000 is not between 0 and 1024 at gannet.conf:1" },
		{ "workers = \"2\";", "workers: must be an integer at gannet.conf:1" },
		{ "hostname = \"a b\";", "hostname: \"a b\" is not a valid host name at gannet.conf:1" },
		{ "hostname = 5;", "hostname: must be a string at gannet.conf:1" },
		{ "user = \"no-such-user-gannet\";", "user: no such user \"no-such-user-gannet\"" },
		{ "grace_period = \"soon\";", "grace_period: must be a duration" },
		{ "log = { level = \"loud\"; };", "log.level: must be \"error\", \"warn\", \"info\" or \"debug\" at gannet.conf:1" },
		{ "log = { destination = \"file\"; };", "log.destination: must be \"stderr\" or \"syslog\"" },
		{ "log = { levels = { imap = \"chatty\"; }; };", "log.levels.imap: must be" },
		{ "log = \"debug\";", "log: must be a group" },
		{ "database = \"x\";", "database: must be a group" },
		{ "limits = { connections_per_ip = 0; };", "limits.connections_per_ip: 0 is not between 1 and" },
		{ "limits = { idle_timeout = 0; };", "limits.idle_timeout: must be longer than 0" },
		{ "tls = { certificates = ( { cert = \"a\"; } ); };", "tls.certificates[0]: key is required at gannet.conf:1" },
		{ "tls = { certificates = { cert = \"a\"; key = \"b\"; }; };", "tls.certificates: must be a list of groups" },
		{ "modules = { load = [ \"Imap\" ]; };", "modules.load[0]: \"Imap\" is not a module name" },
		{ "modules = { load = [ \"a\", \"a\" ]; };", "modules.load[1]: module a is listed twice" },
		{ "modules = { load = \"imap\"; };", "modules.load: must be a list of strings" },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		load(cases[k].text);
		ok(conf_error_count() >= 1, "error for %s", cases[k].text);
		like(errors_text(), cases[k].want, "message for %s", cases[k].text);
	}
	load("log = { level = \"loud\"; };");
	ok(gn_log_enabled(GN_LOG_INFO, NULL) && !gn_log_enabled(GN_LOG_DEBUG, NULL),
	   "a bad log level leaves info");
	conf_free();
}

static void test_listeners(void)
{
	static const struct { const char *text, *want; } cases[] = {
		{ "listeners = ( { port = 70000; protocol = \"smtp\"; } );",
		  "listeners[0].port: 70000 is not between 1 and 65535 at gannet.conf:1" },
		{ "listeners = ( { port = 0; protocol = \"smtp\"; } );",
		  "listeners[0].port: 0 is not between 1 and 65535" },
		{ "listeners = ( { protocol = \"smtp\"; } );",
		  "listeners[0]: port is required at gannet.conf:1" },
		{ "listeners = ( { port = 25; } );",
		  "listeners[0]: protocol is required at gannet.conf:1" },
		{ "listeners = ( { port = 25; protocol = \"smtp\"; tls = \"sometimes\"; } );",
		  "listeners[0].tls: \"sometimes\" is not a TLS mode (\"none\", \"starttls\" or \"implicit\") at gannet.conf:1" },
		{ "listeners = ( { port = 25; protocol = \"smtp\"; address = \"localhost\"; } );",
		  "listeners[0].address: \"localhost\" is not an IPv4 or IPv6 address" },
		{ "listeners = (\n { name = \"a\"; port = 25; protocol = \"smtp\"; },\n"
		  " { name = \"a\"; port = 26; protocol = \"smtp\"; } );",
		  "listeners[1]: duplicate listener name a (first at gannet.conf:2) at gannet.conf:3" },
		{ "listeners = (\n { port = 25; protocol = \"smtp\"; address = \"::1\"; },\n"
		  " { port = 25; protocol = \"submission\"; address = \"0:0::1\"; } );",
		  "listeners[1]: ::1 port 25 is already used by listener smtp-25 (at gannet.conf:2) at gannet.conf:3" },
		{ "listeners = (\n { port = 25; protocol = \"smtp\"; },\n"
		  " { port = 25; protocol = \"smtp\"; address = \"::\"; } );",
		  "listeners[1]: duplicate listener name smtp-25" },
		{ "listeners = { port = 25; protocol = \"smtp\"; };",
		  "listeners: must be a list of groups" },
		{ "listeners = ( 25 );", "listeners[0]: must be a group" },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		load(cases[k].text);
		ok(conf_error_count() >= 1, "listener error %zu", k);
		like(errors_text(), cases[k].want, "listener message %zu", k);
	}
	load("listeners = (\n { port = 25; protocol = \"smtp\"; address = \"127.0.0.1\"; },\n"
	     " { port = 25; protocol = \"smtp\"; address = \"::1\"; name = \"smtp6\"; } );");
	is_int((long long)conf_error_count(), 0, "same port on two addresses is fine");
	is_int((long long)core_conf->n_listeners, 2, "two listeners");
	conf_free();
}

static void test_file(void)
{
	char dir[] = "/tmp/gannet-test-config-XXXXXX";
	if (mkdtemp(dir) == NULL) {
		ok(false, "mkdtemp");
		return;
	}
	char *path = gn_strdup_printf("%s/gannet.conf", dir);
	char *inc = gn_strdup_printf("%s/extra.conf", dir);
	FILE *f = fopen(inc, "w");
	fputs("workers = 3;\n\nbogus = 1;\n", f);
	fclose(f);
	f = fopen(path, "w");
	fputs("user = \"nobody\";\n"
	      "@include \"extra.conf\"\n"
	      "limits = {\n"
	      "  idle_timout = 5;\n"
	      "};\n", f);
	fclose(f);
	is_int(conf_load(path), 0, "conf_load() reads a file");
	is_str(core_conf->path, path, "core_conf->path is the path given");
	is_int(core_conf->workers, 3, "@include is relative to the file's directory");
	conf_check_unused();
	const char *t = errors_text();
	like(t, "unknown setting limits.idle_timout at gannet.conf:4\n",
	     "unknown setting in a file: base name and line");
	like(t, "unknown setting bogus at extra.conf:3\n",
	     "unknown setting in an included file names that file");

	f = fopen(path, "w");
	fputs("workers = 1;\n\n\nlimits = { connections = ; };\n", f);
	fclose(f);
	is_int(conf_load(path), -1, "a file with a syntax error");
	like(errors_text(), " at gannet.conf:4\n", "syntax error in a file names its line");

	f = fopen(path, "w");
	fputs("workers = 1;\n", f);
	fclose(f);
	conf_load(path);
	if (geteuid() == 0)
		like(errors_text(), "user must be set when gannet starts as root",
		     "as root, user is required");
	else
		is_int((long long)conf_error_count(), 0, "not as root, user is optional");
	conf_load_string("gannet.conf", "workers = 1;");
	is_int((long long)conf_error_count(), 0, "conf_load_string() does not require user");

	is_int(conf_load("/nonexistent/gannet.conf"), -1, "a missing file fails");
	like(errors_text(), "cannot read /nonexistent/gannet.conf: No such file or directory",
	     "a missing file is reported with its path");
	ok(core_conf != NULL, "core_conf is set even then");

	unlink(path);
	unlink(inc);
	rmdir(dir);
	gn_free(path);
	gn_free(inc);
	conf_free();
}

static void test_lifetime(void)
{
	const char *s;
	const char *const *v;
	load("modules = { load = [ \"m\" ]; };\nm = { s = \"kept\"; l = [ \"x\" ]; };\n");
	struct gn_config *m = conf_module_section("m");
	gn_config_string(m, "s", NULL, &s);
	gn_config_strings(m, "l", &v, NULL);
	const char *path = gn_config_path(m);
	conf_free();
	load("other = 1;");
	is_str(s, "kept", "strings outlive conf_free() and a reload");
	is_str(v[0], "x", "string lists outlive conf_free()");
	is_str(path, "m", "section paths outlive conf_free()");
	conf_free();
}

/* contrib/gannet.conf.sample documents every core setting: it must load
 * and every setting in it must be one the core reads. */
static void test_sample(void)
{
	const char *srcdir = getenv("GANNET_SRCDIR");
	char *path = gn_strdup_printf("%s/contrib/gannet.conf.sample",
				      srcdir != NULL ? srcdir : ".");
	is_int(conf_load(path), 0, "the sample config parses");
	conf_check_unused();
	const char *t = errors_text();
	size_t expected = 0;
	if (strstr(t, "user: no such user \"gannet\"") != NULL)
		expected++;	/* the sample's user need not exist here */
	is_int((long long)conf_error_count(), (long long)expected,
	       "the sample config has no errors and no unknown settings");
	if (conf_error_count() != expected)
		diag("%s", t);
	is_int((long long)core_conf->n_listeners, 5, "the sample's listeners");
	is_int((long long)core_conf->n_modules, 3, "the sample's modules");
	log_set_level(NULL, GN_LOG_INFO);
	gn_free(path);
	conf_free();
}

int main(void)
{
	log_init("test_config");
	test_defaults();
	test_full();
	test_getters();
	test_unknown();
	test_syntax();
	test_core_validation();
	test_listeners();
	test_file();
	test_lifetime();
	test_sample();
	return done_testing();
}
