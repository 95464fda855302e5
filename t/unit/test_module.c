/*
 * t/unit/test_module.c: the module loader (core/runtime/module.c), mostly
 * without shared objects: ordering, requirement and cycle errors, the file
 * and directory checks made before dlopen() (links, FIFOs, owners, modes),
 * that the file checked is the file loaded (a test module of t/abi/ swapped
 * for another between check and load), phases, start unwinding and
 * `gannet modules` output.
 * The refusals that need real shared objects are in
 * t/integration/020-modules.t with the zoo of t/abi/.
 */
#include <stdio.h>
#include <stdlib.h>

/* Between the loader's checks and its dlopen(), the race test replaces the
 * file it checked (see swap_after_check below). */
static void swap_after_check(const char *file);
#define MODULE_AFTER_CHECK(file) swap_after_check(file)

#include "../../core/runtime/module.c"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tap.h"

/* When set, swap_after_check() renames this file over the checked one. */
static const char *swap_from;

static void swap_after_check(const char *file)
{
	if (swap_from != NULL && rename(swap_from, file) != 0)
		diag("rename %s %s: %s", swap_from, file, strerror(errno));
	swap_from = NULL;
}

static const char *builddir(void)
{
	const char *b = getenv("GANNET_BUILDDIR");
	return b != NULL && *b != '\0' ? b : GN_TEST_BUILDDIR;
}

/* Copies src to dst with mode; returns 0 or -1. */
static int copy_file(const char *src, const char *dst, mode_t mode)
{
	char *cmd = gn_strdup_printf("cp '%s' '%s'", src, dst);
	int r = system(cmd);
	gn_free(cmd);
	return r == 0 && chmod(dst, mode) == 0 ? 0 : -1;
}

static struct module_conf conf_modules[16];
static struct core_conf conf = { .path = (char *)"test.conf" };

/* Forgets the modules of the last case (the loader never does). */
static void reset(void)
{
	for (size_t i = 0; i < n_modules; i++) {
		gn_free(modules[i]->name);
		gn_free(modules[i]->file);
		gn_free(modules[i]);
	}
	gn_free(modules);
	modules = NULL;
	n_modules = 0;
	conf.n_modules = 0;
	conf.modules = conf_modules;
}

static struct gn_module_ctx *fake(const struct gn_module *desc, int line)
{
	struct gn_module_ctx *ctx = gn_calloc(1, sizeof(*ctx));
	ctx->desc = desc;
	ctx->name = gn_strdup(desc->name);
	ctx->file = gn_strdup_printf("/m/%s.so", desc->name);
	ctx->conf_line = line;
	modules = gn_realloc(modules, (n_modules + 1) * sizeof(*modules));
	modules[n_modules++] = ctx;
	conf_modules[conf.n_modules++] = (struct module_conf){ ctx->name, line };
	return ctx;
}

static char *order(void)
{
	static char buf[256];
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n_modules; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? "," : "", modules[i]->name);
	return buf;
}

/* All config errors so far. */
static char *errors(void)
{
	static char *buf;
	size_t len;
	free(buf);
	buf = NULL;
	FILE *mem = open_memstream(&buf, &len);
	conf_errors_print(mem);
	fclose(mem);
	return buf;
}

/* Start and stop record their order here. */
static char events[512];

static void event(const char *what, struct gn_module_ctx *ctx)
{
	size_t n = strlen(events);
	snprintf(events + n, sizeof(events) - n, "%s%s:%s", n ? " " : "", what, gn_module_name(ctx));
}

static int start_ok(struct gn_module_ctx *ctx, const char **error_r)
{
	(void)error_r;
	event("start", ctx);
	return 0;
}

static int start_fail(struct gn_module_ctx *ctx, const char **error_r)
{
	event("start", ctx);
	*error_r = "no database";
	return -1;
}

static void stop_rec(struct gn_module_ctx *ctx)
{
	event("stop", ctx);
}

static int register_fail(struct gn_module_ctx *ctx, const char **error_r)
{
	(void)ctx;
	*error_r = "bad setting";
	return -1;
}

static int register_rec(struct gn_module_ctx *ctx, const char **error_r)
{
	(void)error_r;
	event("register", ctx);
	return 0;
}

#define REQ(n) { n, 0 }
#define OPT(n) { n, GN_REQUIRE_OPTIONAL }
#define END { NULL, 0 }

static const struct gn_module_require app_req[] = { REQ("base"), OPT("extra"), OPT("absent"), END };
static const struct gn_module d_base = { GN_MODULE_HEADER, .name = "base", .version = "1.0",
	.start_fn = start_ok, .stop_fn = stop_rec, .register_fn = register_rec };
static const struct gn_module d_extra = { GN_MODULE_HEADER, .name = "extra", .version = "0.1",
	.start_fn = start_ok, .stop_fn = stop_rec, .register_fn = register_rec };
static const struct gn_module d_app = { GN_MODULE_HEADER, .name = "app", .version = "2",
	.requires = app_req, .start_fn = start_ok, .stop_fn = stop_rec, .register_fn = register_rec };
static const struct gn_module d_zeta = { GN_MODULE_HEADER, .name = "zeta", .version = "3",
	.start_fn = start_fail, .stop_fn = stop_rec, .register_fn = register_rec };

static const struct gn_module_require c1_req[] = { REQ("c2"), END };
static const struct gn_module_require c2_req[] = { REQ("c1"), END };
static const struct gn_module_require d_req[] = { REQ("c1"), END };
static const struct gn_module d_c1 = { GN_MODULE_HEADER, .name = "c1", .version = "1", .requires = c1_req };
static const struct gn_module d_c2 = { GN_MODULE_HEADER, .name = "c2", .version = "1", .requires = c2_req };
static const struct gn_module d_d = { GN_MODULE_HEADER, .name = "d", .version = "1", .requires = d_req };
static const struct gn_module_require self_req[] = { REQ("selfish"), END };
static const struct gn_module d_self = { GN_MODULE_HEADER, .name = "selfish", .version = "1", .requires = self_req };
static const struct gn_module_require miss_req[] = { REQ("nope"), END };
static const struct gn_module d_miss = { GN_MODULE_HEADER, .name = "needy", .version = "1", .requires = miss_req };
static const struct gn_module_require orphan_req[] = { REQ("needy"), END };
static const struct gn_module d_orphan = { GN_MODULE_HEADER, .name = "orphan", .version = "1", .requires = orphan_req };

static const struct gn_module_require after_bad_req[] = { REQ("badreg"), END };
static const struct gn_module d_badreg = { GN_MODULE_HEADER, .name = "badreg", .version = "1",
	.register_fn = register_fail };
static const struct gn_module d_after_bad = { GN_MODULE_HEADER, .name = "afterbad", .version = "1",
	.requires = after_bad_req, .register_fn = register_rec };

static void write_file(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		(void)!write(fd, "not an ELF file\n", 16);
		close(fd);
	}
	chmod(path, mode);
}

int main(void)
{
	/* Topological order, ties by name. */
	reset();
	fake(&d_zeta, 1);
	fake(&d_app, 2);
	fake(&d_extra, 3);
	fake(&d_base, 4);
	drop_unmet(&conf);
	is_int(sort_modules(&conf), 0, "modules with satisfiable requirements sort");
	is_str(order(), "base,extra,app,zeta",
	       "requirements first (optional ones too when loaded), ties by name");
	is_int(conf_error_count(), 0, "an absent optional requirement is no error");

	/* Cycles. */
	reset();
	fake(&d_d, 5);
	fake(&d_c2, 6);
	fake(&d_c1, 7);
	fake(&d_base, 8);
	drop_unmet(&conf);
	is_int(sort_modules(&conf), -1, "a requirement cycle is an error");
	is_str(order(), "base", "modules outside the cycle still load");
	char *e = errors();
	like(e, "modules c1 -> c2 -> c1: requirement cycle", "the error names the modules of the cycle");
	like(e, "remove one of \"c1\" (line 7), \"c2\" (line 6) from modules.load in test.conf",
	     "and the config lines to change");
	like(e, "module d (/m/d.so): requires module c1, which is in a requirement cycle; remove \"d\" from modules.load at test.conf:5",
	     "a module waiting on a cycle is named too");
	reset();
	fake(&d_self, 9);
	size_t before = conf_error_count();
	drop_unmet(&conf);
	is_int(sort_modules(&conf), -1, "a module requiring itself is a cycle");
	is_int((long long)(conf_error_count() - before), 1, "reported once");
	like(errors(), "modules selfish -> selfish: requirement cycle", "naming it");

	/* Missing requirements, and modules left without theirs. */
	reset();
	fake(&d_orphan, 10);
	fake(&d_miss, 11);
	drop_unmet(&conf);
	is_int(sort_modules(&conf), 0, "sorting what is left works");
	is_str(order(), "", "a module missing a requirement is not loaded, nor what requires it");
	e = errors();
	like(e, "module needy (/m/needy.so): requires module nope, which is not in modules.load; add \"nope\" to modules.load at test.conf:11 or remove \"needy\" from modules.load at test.conf:11",
	     "a missing requirement names both modules and the config line");
	like(e, "module orphan (/m/orphan.so): requires module needy, which could not be loaded",
	     "a module whose requirement was dropped is named");

	/* File checks before dlopen(). */
	char dir[] = "/tmp/gannet-test-module-XXXXXX";
	ok(mkdtemp(dir) != NULL, "temp dir");
	char *p;
	p = gn_strdup_printf("%s/isdir.so", dir);
	mkdir(p, 0755);
	gn_free(p);
	p = gn_strdup_printf("%s/otherw.so", dir);
	write_file(p, 0646);
	gn_free(p);
	p = gn_strdup_printf("%s/groupw.so", dir);
	write_file(p, 0664);
	gn_free(p);
	p = gn_strdup_printf("%s/junk.so", dir);
	write_file(p, 0644);
	gn_free(p);
	reset();
	conf.module_dir = dir;
	const char *names[] = { "missing", "isdir", "otherw", "groupw", "junk", "../etc", "junk" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		conf_modules[conf.n_modules++] = (struct module_conf){ (char *)names[i], (int)(20 + i) };
	is_int(modules_load(&conf), -1, "bad module files are refused");
	is_int((long long)n_modules, 0, "none of them is loaded");
	e = errors();
	p = gn_strdup_printf("module missing (%s/missing.so): cannot use the file: No such file or directory", dir);
	like(e, p, "a missing file is refused, naming the file");
	gn_free(p);
	like(e, "remove \"missing\" from modules.load at test.conf:20", "with the config line");
	p = gn_strdup_printf("module isdir (%s/isdir.so): not a regular file; remove \"isdir\" from modules.load at test.conf:21", dir);
	like(e, p, "a directory is refused");
	gn_free(p);
	like(e, "module otherw", "a file writable by others is refused");
	like(e, "writable by others (mode 0646); core wants it writable by its owner only", "saying what is wrong");
	like(e, "writable by its group (mode 0664)", "a file writable by its group is refused");
	like(e, "module junk", "a file that is not a shared object is refused");
	like(e, "cannot load:", "with dlopen's reason");
	like(e, "module name \"../etc\" is not valid", "a name with a path is refused");
	like(e, "module junk is listed twice in modules.load (test.conf:24 and line 26)", "a name listed twice is refused");

	/* A symbolic link, a FIFO (refused without hanging in open()), a
	 * file of another user, a directory others or the group can write. */
	reset();
	p = gn_strdup_printf("%s/link.so", dir);
	ok(symlink("junk.so", p) == 0, "a symbolic link to a module file");
	gn_free(p);
	p = gn_strdup_printf("%s/fifo.so", dir);
	ok(mkfifo(p, 0644) == 0, "a FIFO named like a module");
	gn_free(p);
	p = gn_strdup_printf("%s/theirs.so", dir);
	write_file(p, 0644);
	bool root = geteuid() == 0;
	/* Only root can give a file away; the suite runs as root in CI. */
	if (root && chown(p, 65534, 65534) != 0)
		diag("chown nobody %s: %s", p, strerror(errno));
	gn_free(p);
	const char *names2[] = { "link", "fifo", "theirs" };
	for (size_t i = 0; i < sizeof(names2) / sizeof(names2[0]); i++)
		conf_modules[conf.n_modules++] = (struct module_conf){ (char *)names2[i], (int)(40 + i) };
	is_int(modules_load(&conf), -1, "a link, a FIFO and another user's file are refused");
	e = errors();
	p = gn_strdup_printf("module link (%s/link.so): the file is a symbolic link; core loads only a file in modules.directory itself", dir);
	like(e, p, "a symbolic link is refused, not followed");
	gn_free(p);
	p = gn_strdup_printf("module fifo (%s/fifo.so): not a regular file", dir);
	like(e, p, "a FIFO is refused");
	gn_free(p);
	if (root) {
		p = gn_strdup_printf("module theirs (%s/theirs.so): the file is owned by ", dir);
		like(e, p, "a file owned by another user is refused, naming the owner");
		gn_free(p);
		p = gn_strdup_printf("core runs as root and wants it owned by root (chown root %s/theirs.so)", dir);
		like(e, p, "with the fix");
		gn_free(p);
	} else {
		/* Not root: the file stays ours, and is refused as junk. */
		like(e, "module theirs", "a file that is not a module is refused");
	}

	for (int round = 0; round < 2; round++) {
		mode_t mode = round == 0 ? 0777 : 0775;
		char *sub = gn_strdup_printf("%s/open%o", dir, (unsigned)mode);
		mkdir(sub, 0755);
		chmod(sub, mode);
		p = gn_strdup_printf("%s/junk.so", sub);
		write_file(p, 0644);
		gn_free(p);
		reset();
		conf.module_dir = sub;
		conf_modules[conf.n_modules++] = (struct module_conf){ (char *)"junk", 50 };
		is_int(modules_load(&conf), -1, "a module in a directory writable by %s is refused",
		       round == 0 ? "others" : "its group");
		p = gn_strdup_printf("module junk (%s/junk.so): its directory %s is writable by %s (mode %04o); core wants it writable by its owner only (chmod go-w %s)",
				     sub, sub, round == 0 ? "others" : "its group", (unsigned)mode, sub);
		like(errors(), p, "naming the directory, its mode and the fix");
		gn_free(p);
		gn_free(sub);
	}
	conf.module_dir = dir;

	/* What is loaded is what was checked: the file is replaced after the
	 * checks (by another module that the loader would refuse), and the
	 * checked one still loads.  Loading by name would take the new file. */
	char *good = gn_strdup_printf("%s/t/abi/.libs/bad_name.so", builddir());
	char *swap = gn_strdup_printf("%s/t/abi/.libs/bad_magic.so", builddir());
	char *target = gn_strdup_printf("%s/other_name.so", dir);
	char *spare = gn_strdup_printf("%s/spare.tmp", dir);
	ok(copy_file(good, target, 0755) == 0 && copy_file(swap, spare, 0755) == 0,
	   "copies of two test modules from %s/t/abi/.libs", builddir());
	reset();
	conf_modules[conf.n_modules++] = (struct module_conf){ (char *)"other_name", 60 };
	swap_from = spare;
	size_t errs_before = conf_error_count();
	is_int(modules_load(&conf), 0, "a module replaced between its checks and its load still loads");
	ok(swap_from == NULL, "(the file was replaced after the checks)");
	is_int((long long)(conf_error_count() - errs_before), 0, "the replacement (a bad magic number) is not what was loaded");
	if (n_modules == 1) {
		is_str(modules[0]->desc->name, "other_name", "the module loaded is the one checked");
		Dl_info info;
		ok(dladdr(modules[0]->desc, &info) != 0 && strncmp(info.dli_fname, "/proc/self/fd/", 14) == 0,
		   "it was loaded from the descriptor that was checked");
	} else {
		ok(false, "the module loaded is the one checked (%zu loaded)", n_modules);
	}
	gn_free(good);
	gn_free(swap);
	gn_free(target);
	gn_free(spare);

	/* Slots, phases, start, stop. */
	reset();
	fake(&d_zeta, 1);
	fake(&d_app, 2);
	fake(&d_extra, 3);
	fake(&d_base, 4);
	drop_unmet(&conf);
	sort_modules(&conf);
	for (size_t i = 0; i < n_modules; i++)
		modules[i]->slot = (unsigned)i + 1;
	is_int(gn_module_slot(modules_core_ctx()), 0, "the core has slot 0");
	is_int(gn_module_slot(modules_at(0)), 1, "the first module has slot 1");
	is_int(gn_module_slot(modules_at(3)), 4, "the last module has slot N");
	ok(modules_at(4) == NULL, "modules_at past the end is NULL");
	is_int(modules_slot_count(), 5, "slot count is modules + 1");
	is_int(gn_module_is_loaded("extra"), 1, "gn_module_is_loaded sees a loaded module");
	is_int(gn_module_is_loaded("absent"), 0, "and not one that is not");
	gn_module_set_data(modules_at(1), &conf);
	ok(gn_module_data(modules_at(1)) == &conf, "module data is kept");
	is_str(gn_module_name(modules_at(2)), "app", "gn_module_name");

	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	modules_print(mem);
	fclose(mem);
	/* The test's modules are built with this tree's GN_MODULE_HEADER. */
	char *want = gn_strdup_printf("base 1.0 abi=%d.%d requires=-\n"
				      "extra 0.1 abi=%d.%d requires=-\n"
				      "app 2 abi=%d.%d requires=base,extra?,absent?\n"
				      "zeta 3 abi=%d.%d requires=-\n", GN_ABI_MAJOR, GN_ABI_MINOR,
				      GN_ABI_MAJOR, GN_ABI_MINOR, GN_ABI_MAJOR, GN_ABI_MINOR,
				      GN_ABI_MAJOR, GN_ABI_MINOR);
	is_str(buf, want, "gannet modules prints the order, versions, ABI and requirements");
	gn_free(want);
	free(buf);

	const char *error = NULL;
	is_int(modules_check_register("gn_x", &error), 0, "registering is allowed before register ends");
	events[0] = '\0';
	is_int(modules_register(), 0, "register runs");
	is_str(events, "register:base register:extra register:app register:zeta", "register runs in load order");
	is_int(modules_check_register("gn_x", &error), -1, "registering after register is refused");
	like(error, "gn_x called after the register phase", "with a message naming the function");

	is_str(gn_module_process_kind(), "master", "before start the process kind is master");
	events[0] = '\0';
	error = NULL;
	is_int(modules_start("worker", &error), -1, "a failing start fails modules_start");
	is_str(events, "start:base start:extra start:app start:zeta stop:app stop:extra stop:base",
	       "the modules started before it stop in reverse; the failed one is not stopped");
	like(error, "module zeta: start failed in worker: no database", "the error names the module and its reason");
	is_str(gn_module_process_kind(), "worker", "the process kind is set for start");
	events[0] = '\0';
	modules_stop();
	is_str(events, "", "after unwinding, stop has nothing left to stop");

	/* Without the failing module, stop runs in reverse. */
	n_modules = 3;
	events[0] = '\0';
	is_int(modules_start("single", &error), 0, "start succeeds");
	modules_stop();
	is_str(events, "start:base start:extra start:app stop:app stop:extra stop:base",
	       "start in order, stop in reverse");
	n_modules = 4;

	/* A failing register: recorded, and what requires it is skipped. */
	reset();
	phase = PHASE_LOAD;
	fake(&d_badreg, 30);
	fake(&d_after_bad, 31);
	fake(&d_base, 32);
	drop_unmet(&conf);
	sort_modules(&conf);
	events[0] = '\0';
	is_int(modules_register(), -1, "a failing register fails the phase");
	is_str(events, "register:base", "a module requiring a module whose register failed is not registered");
	like(errors(), "module badreg (/m/badreg.so): register failed: bad setting", "the failure is a config error naming the module");

	p = gn_strdup_printf("rm -rf '%s'", dir);
	(void)!system(p);
	gn_free(p);
	reset();
	return done_testing();
}
