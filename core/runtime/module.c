/*
 * core/runtime/module.c: the module loader and the module's handle on the core.
 *
 * modules_load() turns the config's modules.load list into loaded modules:
 * for each name it opens <modules.directory>/<name>.so once (no symbolic
 * link), checks the directory and the file through their descriptors (a
 * regular file; both owned by root or the user gannet runs as, neither
 * writable by group or others), dlopen()s that very file through
 * /proc/self/fd/N with RTLD_NOW | RTLD_LOCAL (so it cannot be swapped
 * between check and load), finds the one exported symbol gannet_module_v1 and
 * checks the descriptor before calling anything in it: magic, size (at least
 * the ABI 1.0 descriptor), ABI major equal to the core's, minor not newer,
 * name equal to the file's.  Then it resolves requirements (a missing
 * non-optional one is an error) and sorts the modules topologically, ties
 * broken by name, so the order is the same on every run; a cycle is an
 * error naming its modules.  Every refusal is a config error that names the
 * file, what the module wants, what the core has and the config line to
 * change.
 *
 * Slots: the core is slot 0, modules 1..N in load order.  Phases: register
 * (modules_register), start in each process (modules_start, unwinding the
 * started modules in reverse when one fails), stop in reverse.  Modules are
 * never dlclose()d: their function pointers live in hook chains and tables
 * until the process exits.
 */
#include "runtime/internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The ABI 1.0 descriptor ends with stop_fn: anything smaller is refused. */
#define MODULE_SIZE_1_0 \
	(offsetof(struct gn_module, stop_fn) + sizeof(((struct gn_module *)0)->stop_fn))
/* A sanity bound on requirement lists. */
#define MODULE_MAX_REQUIRES 64

struct gn_module_ctx {
	const struct gn_module *desc;	/* NULL for the core */
	char *name;
	char *file;		/* NULL for the core */
	void *handle;		/* dlopen() handle */
	int conf_line;		/* line of modules.load */
	unsigned slot;
	void *data;		/* gn_module_set_data() */
	bool placed;		/* sorting */
	bool failed;		/* refused after loading (requirements) */
	bool register_failed;
	bool started;
};

enum module_phase {
	PHASE_LOAD = 0,		/* before and during register */
	PHASE_REGISTERED,	/* after modules_register() */
};

static struct gn_module_ctx core_ctx = { .name = (char *)"core", .slot = 0 };
static struct gn_module_ctx **modules;	/* load order */
static size_t n_modules;
static enum module_phase phase = PHASE_LOAD;
static const char *process_kind = "master";
static char error_buf[1024];

/* ---- the module's view ---- */

const char *gn_module_name(const struct gn_module_ctx *ctx)
{
	return ctx != NULL ? ctx->name : "core";
}

unsigned gn_module_slot(const struct gn_module_ctx *ctx)
{
	return ctx != NULL ? ctx->slot : 0;
}

void gn_module_set_data(struct gn_module_ctx *ctx, void *data)
{
	if (ctx != NULL)
		ctx->data = data;
}

void *gn_module_data(const struct gn_module_ctx *ctx)
{
	return ctx != NULL ? ctx->data : NULL;
}

const char *gn_module_process_kind(void)
{
	return process_kind;
}

int gn_module_is_loaded(const char *name)
{
	if (name == NULL)
		return 0;
	for (size_t i = 0; i < n_modules; i++)
		if (strcmp(modules[i]->name, name) == 0)
			return 1;
	return 0;
}

/* ---- the core's view ---- */

struct gn_module_ctx *modules_core_ctx(void)
{
	return &core_ctx;
}

unsigned modules_slot_count(void)
{
	return (unsigned)n_modules + 1;
}

struct gn_module_ctx *modules_at(size_t i)
{
	return i < n_modules ? modules[i] : NULL;
}

int modules_check_register(const char *what, const char **error_r)
{
	if (phase == PHASE_LOAD)
		return 0;
	return registry_fail(error_r, "%s called after the register phase: call it from the module's register function",
			     what);
}

/* ---- loading ---- */

/* What to change in the config: the modules.load line. */
static char *load_fix(const struct core_conf *conf, const char *name,
		      int line)
{
	const char *path = conf->path != NULL ? conf->path : "the config file";
	if (line > 0)
		return gn_strdup_printf("remove \"%s\" from modules.load at %s:%d",
					name, path, line);
	return gn_strdup_printf("remove \"%s\" from modules.load in %s", name, path);
}

static void refuse(const struct core_conf *conf, const char *name,
		   const char *file, int line, const char *fmt, ...) GN_PRINTF(5, 6);

/* Records "module NAME (FILE): WHY; remove "NAME" from modules.load at
 * CONF:LINE". */
static void refuse(const struct core_conf *conf, const char *name,
		   const char *file, int line, const char *fmt, ...)
{
	char why[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	char *fix = load_fix(conf, name, line);
	conf_error("module %s (%s): %s; %s", name, file, why, fix);
	/* The config error is the report (printed by whoever loads); the
	 * log line is a trace for -v, not a second copy of the error. */
	gn_log(GN_LOG_DEBUG, "core", "event=module_refused module=%s file=%s reason=%s",
	       gn_log_quote(0, name), gn_log_quote(1, file), gn_log_quote(2, why));
	gn_free(fix);
}

static bool valid_name(const char *name)
{
	if (name == NULL || *name == '\0' || strlen(name) > 64)
		return false;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return true;
}

static struct gn_module_ctx *find_module(const char *name)
{
	for (size_t i = 0; i < n_modules; i++)
		if (strcmp(modules[i]->name, name) == 0)
			return modules[i];
	return NULL;
}

/* The size of the object behind sym as the ELF symbol table says, or 0 when
 * unknown. */
static size_t symbol_size(const void *sym)
{
	Dl_info info;
	const ElfW(Sym) *elfsym = NULL;
	if (dladdr1(sym, &info, (void **)&elfsym, RTLD_DL_SYMENT) == 0 || elfsym == NULL)
		return 0;
	return (size_t)elfsym->st_size;
}

/* Checks the descriptor; returns NULL or the reason for refusing it. */
static const char *check_descriptor(const struct gn_module *d, const char *name,
				    char *buf, size_t bufsize)
{
	size_t symsize = symbol_size(d);
	if (symsize != 0 && symsize < offsetof(struct gn_module, abi_major)) {
		snprintf(buf, bufsize,
			 "gannet_module_v1 is %zu bytes, too small for a descriptor (ABI %d.%d's is %zu bytes)",
			 symsize, GN_ABI_MAJOR, GN_ABI_MINOR, sizeof(struct gn_module));
		return buf;
	}
	if (d->magic != GN_MODULE_MAGIC) {
		snprintf(buf, bufsize,
			 "gannet_module_v1 has magic 0x%08x, core wants 0x%08x (\"GNMD\"): not a gannet module descriptor",
			 (unsigned)d->magic, (unsigned)GN_MODULE_MAGIC);
		return buf;
	}
	if (d->size < MODULE_SIZE_1_0 || (symsize != 0 && symsize < MODULE_SIZE_1_0)) {
		snprintf(buf, bufsize,
			 "descriptor size %u (object %zu bytes) is smaller than ABI 1.0's %zu bytes, core has ABI %d.%d",
			 (unsigned)d->size, symsize, (size_t)MODULE_SIZE_1_0,
			 GN_ABI_MAJOR, GN_ABI_MINOR);
		return buf;
	}
	if (d->abi_major != GN_ABI_MAJOR) {
		snprintf(buf, bufsize, "built for ABI %u.%u, core has %d.%d%s",
			 (unsigned)d->abi_major, (unsigned)d->abi_minor,
			 GN_ABI_MAJOR, GN_ABI_MINOR,
			 d->abi_major > GN_ABI_MAJOR ? " (upgrade gannet or use a build of the module for this ABI)"
			 : " (rebuild the module against this gannet)");
		return buf;
	}
	if (d->abi_minor > GN_ABI_MINOR) {
		snprintf(buf, bufsize,
			 "built for ABI %u.%u, core has %d.%d (upgrade gannet or use a build of the module for ABI %d.%d)",
			 (unsigned)d->abi_major, (unsigned)d->abi_minor,
			 GN_ABI_MAJOR, GN_ABI_MINOR, GN_ABI_MAJOR, GN_ABI_MINOR);
		return buf;
	}
	if (d->name == NULL || strcmp(d->name, name) != 0) {
		if (d->name != NULL && valid_name(d->name))
			snprintf(buf, bufsize,
				 "its descriptor names the module \"%s\", the file is for \"%s\" (rename it to %s.so)",
				 d->name, name, d->name);
		else
			snprintf(buf, bufsize, "its descriptor has no valid module name, core wants \"%s\"", name);
		return buf;
	}
	size_t n = 0;
	for (const struct gn_module_require *r = d->requires; r != NULL && r->name != NULL; r++) {
		if (++n > MODULE_MAX_REQUIRES) {
			snprintf(buf, bufsize, "more than %d requirements", MODULE_MAX_REQUIRES);
			return buf;
		}
		if (!valid_name(r->name)) {
			snprintf(buf, bufsize, "requirement %zu has an invalid module name", n);
			return buf;
		}
	}
	return NULL;
}

/* A user for messages: "gannet (uid 101)", "root". */
static char *user_desc(uid_t uid)
{
	struct passwd *pw = getpwuid(uid);
	if (uid == 0)
		return gn_strdup("root");
	return pw != NULL ? gn_strdup_printf("%s (uid %u)", pw->pw_name, (unsigned)uid)
		: gn_strdup_printf("uid %u", (unsigned)uid);
}

/* Whoever can write a module file, or replace it in its directory, can run
 * code in gannet, as root in the master of `gannet serve`.  So both must
 * belong to root or to the user gannet runs as, and be writable by their
 * owner only.  what: "the file" or "its directory DIR"; path: for the fix.
 * Returns NULL, or the reason (in buf) with the fix. */
static const char *check_owner_mode(const struct stat *st, const char *what,
				    const char *path, char *buf, size_t bufsize)
{
	uid_t me = geteuid();
	if (st->st_uid != 0 && st->st_uid != me) {
		char *owner = user_desc(st->st_uid);
		char *runner = user_desc(me);
		if (me == 0)
			snprintf(buf, bufsize, "%s is owned by %s; core runs as root and wants it owned by root (chown root %s)",
				 what, owner, path);
		else
			snprintf(buf, bufsize, "%s is owned by %s; core runs as %s and wants it owned by root or by itself (chown root %s)",
				 what, owner, runner, path);
		gn_free(owner);
		gn_free(runner);
		return buf;
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		snprintf(buf, bufsize, "%s is writable by %s (mode %04o); core wants it writable by its owner only (chmod go-w %s)",
			 what, (st->st_mode & S_IWOTH) != 0 ? "others" : "its group",
			 (unsigned)(st->st_mode & 07777), path);
		return buf;
	}
	return NULL;
}

/* Test seam: t/unit/test_module.c replaces the file between the checks and
 * the load, to show that what is loaded is what was checked. */
#ifndef MODULE_AFTER_CHECK
#define MODULE_AFTER_CHECK(file) ((void)0)
#endif

/* Opens <dir>/<name>.so once, checks the directory and the file through
 * their descriptors, and loads the module from the file's descriptor
 * (/proc/self/fd/N): what is checked is what is loaded, whatever happens
 * to the paths meanwhile.  Returns the context, or NULL after recording
 * why not. */
static struct gn_module_ctx *load_one(const struct core_conf *conf,
				      const char *dir, const struct module_conf *mc)
{
	char why[768];
	char *file = gn_strdup_printf("%s/%s.so", dir, mc->name);
	char *base = gn_strdup_printf("%s.so", mc->name);
	int dfd = -1, fd = -1;
	bool fd_loaded = false;	/* dlopen() took it */
	struct stat st;
	const char *bad;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		int e = errno;
		refuse(conf, mc->name, file, mc->line, "cannot use its directory %s: %s%s", dir,
		       strerror(e), e == ENOENT ? " (is modules.directory right?)" : "");
		goto fail;
	}
	char *what = gn_strdup_printf("its directory %s", dir);
	bad = fstat(dfd, &st) < 0 ? strerror(errno)
		: check_owner_mode(&st, what, dir, why, sizeof(why));
	gn_free(what);
	if (bad != NULL) {
		refuse(conf, mc->name, file, mc->line, "%s", bad);
		goto fail;
	}

	/* O_NOFOLLOW: a link could point anywhere later; O_NONBLOCK: a FIFO
	 * must not hang the open (it is refused below). */
	fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			refuse(conf, mc->name, file, mc->line,
			       "the file is a symbolic link; core loads only a file in modules.directory itself (copy the module there instead of linking it)");
		else
			refuse(conf, mc->name, file, mc->line, "cannot use the file: %s%s", strerror(e),
			       e == ENOENT ? " (is modules.directory right?)" : "");
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		refuse(conf, mc->name, file, mc->line, "cannot use the file: %s", strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		refuse(conf, mc->name, file, mc->line, "not a regular file");
		goto fail;
	}
	if ((bad = check_owner_mode(&st, "the file", file, why, sizeof(why))) != NULL) {
		refuse(conf, mc->name, file, mc->line, "%s", bad);
		goto fail;
	}
	MODULE_AFTER_CHECK(file);

	/* The descriptor stays open while the process lives: dlopen() knows
	 * objects by name, and "/proc/self/fd/N" must never name another
	 * file later in this process. */
	char fdpath[64];
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
	if (access(fdpath, F_OK) != 0) {
		refuse(conf, mc->name, file, mc->line,
		       "cannot load it from its descriptor: %s: %s (is /proc mounted?)", fdpath,
		       strerror(errno));
		goto fail;
	}
	dlerror();
	void *handle = dlopen(fdpath, RTLD_NOW | RTLD_LOCAL);
	if (handle == NULL) {
		const char *e = dlerror();
		size_t plen = strlen(fdpath);
		/* dlerror() names the descriptor's path: the file says more. */
		if (e != NULL && strncmp(e, fdpath, plen) == 0 && strncmp(e + plen, ": ", 2) == 0)
			e += plen + 2;
		refuse(conf, mc->name, file, mc->line, "cannot load: %s", e != NULL ? e : "unknown error");
		goto fail;
	}
	fd_loaded = true;
	dlerror();
	const struct gn_module *d = dlsym(handle, "gannet_module_v1");
	if (d == NULL) {
		refuse(conf, mc->name, file, mc->line,
		       "no gannet_module_v1 descriptor: not a gannet module or built for another ABI generation, core has ABI %d.%d",
		       GN_ABI_MAJOR, GN_ABI_MINOR);
		dlclose(handle);
		goto fail;
	}
	bad = check_descriptor(d, mc->name, why, sizeof(why));
	if (bad != NULL) {
		refuse(conf, mc->name, file, mc->line, "%s", bad);
		dlclose(handle);
		goto fail;
	}

	struct gn_module_ctx *ctx = gn_calloc(1, sizeof(*ctx));
	ctx->desc = d;
	ctx->name = gn_strdup(mc->name);
	ctx->file = file;
	ctx->handle = handle;
	ctx->conf_line = mc->line;
	close(dfd);
	gn_free(base);
	return ctx;
fail:
	/* A descriptor dlopen() took stays open (see above). */
	if (fd >= 0 && !fd_loaded)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	gn_free(base);
	gn_free(file);
	return NULL;
}

static bool conf_names(const struct core_conf *conf, const char *name)
{
	for (size_t i = 0; i < conf->n_modules; i++)
		if (strcmp(conf->modules[i].name, name) == 0)
			return true;
	return false;
}

/* Drops modules whose non-optional requirements are not loaded, until none
 * is left to drop (a drop can orphan another module). */
static void drop_unmet(const struct core_conf *conf)
{
	bool changed = true;
	while (changed) {
		changed = false;
		for (size_t i = 0; i < n_modules; i++) {
			struct gn_module_ctx *m = modules[i];
			if (m->failed)
				continue;
			for (const struct gn_module_require *r = m->desc->requires;
			     r != NULL && r->name != NULL; r++) {
				if ((r->flags & GN_REQUIRE_OPTIONAL) != 0)
					continue;
				struct gn_module_ctx *dep = find_module(r->name);
				if (dep != NULL && !dep->failed)
					continue;
				char *fix = load_fix(conf, m->name, m->conf_line);
				if (dep != NULL || conf_names(conf, r->name))
					conf_error("module %s (%s): requires module %s, which could not be loaded (see above); %s",
						   m->name, m->file, r->name, fix);
				else
					conf_error("module %s (%s): requires module %s, which is not in modules.load; add \"%s\" to modules.load at %s:%d or %s",
						   m->name, m->file, r->name, r->name,
						   conf->path != NULL ? conf->path : "the config file",
						   m->conf_line, fix);
				gn_free(fix);
				m->failed = true;
				changed = true;
				break;
			}
		}
	}
}

/* Whether every loaded requirement of m (optional ones too: they order)
 * is placed. */
static bool ready(const struct gn_module_ctx *m)
{
	for (const struct gn_module_require *r = m->desc->requires;
	     r != NULL && r->name != NULL; r++) {
		struct gn_module_ctx *dep = find_module(r->name);
		if (dep != NULL && !dep->failed && !dep->placed)
			return false;
	}
	return true;
}

/* The first unplaced requirement of m (every unplaced module has one after
 * sorting stalls). */
static struct gn_module_ctx *unplaced_dep(const struct gn_module_ctx *m)
{
	for (const struct gn_module_require *r = m->desc->requires;
	     r != NULL && r->name != NULL; r++) {
		struct gn_module_ctx *dep = find_module(r->name);
		if (dep != NULL && !dep->failed && !dep->placed)
			return dep;
	}
	return NULL;
}

/* Reports the modules left unplaced: each cycle once, naming its modules,
 * and each module that waits on a cycle. */
static void report_cycles(const struct core_conf *conf, struct gn_module_ctx **left,
			  size_t n_left)
{
	/* 0 unvisited, 1 on the current path, 2 reported */
	unsigned char *state = gn_calloc(n_modules, 1);
	struct gn_module_ctx **path = gn_calloc(n_modules + 1, sizeof(*path));

	for (size_t s = 0; s < n_left; s++) {
		size_t len = 0;
		struct gn_module_ctx *m = left[s];
		size_t mi;
		for (;;) {
			for (mi = 0; modules[mi] != m; mi++)
				;
			if (state[mi] != 0)
				break;
			state[mi] = 1;
			path[len++] = m;
			m = unplaced_dep(m);
		}
		if (state[mi] == 1) {
			/* m is on the path: path[k..len) is a cycle. */
			size_t k = 0;
			while (path[k] != m)
				k++;
			struct gn_buf *b = gn_buf_new(0);
			for (size_t j = k; j < len; j++)
				gn_buf_printf(b, "%s -> ", path[j]->name);
			gn_buf_printf(b, "%s", m->name);
			struct gn_buf *fix = gn_buf_new(0);
			for (size_t j = k; j < len; j++)
				gn_buf_printf(fix, "%s\"%s\" (line %d)", j == k ? "" : ", ",
					      path[j]->name, path[j]->conf_line);
			conf_error("modules %s: requirement cycle, no load order possible; remove one of %s from modules.load in %s",
				   gn_buf_data(b), gn_buf_data(fix),
				   conf->path != NULL ? conf->path : "the config file");
			gn_buf_free(&b);
			gn_buf_free(&fix);
			len = k;
		}
		/* The rest of the path waits on a cycle. */
		for (size_t j = 0; j < len; j++) {
			struct gn_module_ctx *dep = unplaced_dep(path[j]);
			char *fix = load_fix(conf, path[j]->name, path[j]->conf_line);
			conf_error("module %s (%s): requires module %s, which is in a requirement cycle; %s",
				   path[j]->name, path[j]->file, dep->name, fix);
			gn_free(fix);
		}
		for (size_t i = 0; i < n_modules; i++)
			if (state[i] == 1)
				state[i] = 2;
	}
	gn_free(state);
	gn_free(path);
}

static int name_cmp(const void *a, const void *b)
{
	const struct gn_module_ctx *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

/* Kahn's algorithm, taking the smallest name among the ready modules. */
static int sort_modules(const struct core_conf *conf)
{
	struct gn_module_ctx **cand = gn_calloc(n_modules + 1, sizeof(*cand));
	struct gn_module_ctx **order = gn_calloc(n_modules + 1, sizeof(*order));
	size_t n_cand = 0, n_order = 0;
	int ret = 0;

	for (size_t i = 0; i < n_modules; i++)
		if (!modules[i]->failed)
			cand[n_cand++] = modules[i];
	qsort(cand, n_cand, sizeof(*cand), name_cmp);

	while (n_cand > 0) {
		size_t i;
		for (i = 0; i < n_cand && !ready(cand[i]); i++)
			;
		if (i == n_cand)
			break;
		cand[i]->placed = true;
		order[n_order++] = cand[i];
		memmove(&cand[i], &cand[i + 1], (n_cand - i - 1) * sizeof(*cand));
		n_cand--;
	}
	if (n_cand > 0) {
		report_cycles(conf, cand, n_cand);
		ret = -1;
	}
	/* Modules dropped for their requirements or a cycle: nothing of
	 * theirs was called, so they can go. */
	for (size_t i = 0; i < n_modules; i++) {
		struct gn_module_ctx *m = modules[i];
		if (m->placed)
			continue;
		if (m->handle != NULL)
			dlclose(m->handle);
		gn_free(m->name);
		gn_free(m->file);
		gn_free(m);
	}
	gn_free(cand);
	gn_free(modules);
	modules = order;
	n_modules = n_order;
	return ret;
}

int modules_load(const struct core_conf *conf)
{
	/* runtime/config.c resolved modules.directory, GANNET_MODULE_DIR and
	 * the built-in default. */
	const char *dir = conf->module_dir != NULL ? conf->module_dir : GN_MODULE_DIR;
	int ret = 0;

	if (n_modules > 0) {
		conf_error("modules are already loaded");
		return -1;
	}
	modules = gn_calloc(conf->n_modules + 1, sizeof(*modules));
	for (size_t i = 0; i < conf->n_modules; i++) {
		const struct module_conf *mc = &conf->modules[i];
		if (!valid_name(mc->name)) {
			char *fix = load_fix(conf, mc->name != NULL ? mc->name : "", mc->line);
			conf_error("module name \"%s\" is not valid (letters a-z, digits and _ only); %s",
				   mc->name != NULL ? mc->name : "", fix);
			gn_free(fix);
			ret = -1;
			continue;
		}
		size_t first;
		for (first = 0; first < i && strcmp(conf->modules[first].name, mc->name) != 0; first++)
			;
		if (first < i) {
			conf_error("module %s is listed twice in modules.load (%s:%d and line %d); remove one",
				   mc->name, conf->path != NULL ? conf->path : "the config file",
				   conf->modules[first].line, mc->line);
			ret = -1;
			continue;
		}
		struct gn_module_ctx *ctx = load_one(conf, dir, mc);
		if (ctx == NULL) {
			ret = -1;
			continue;
		}
		modules[n_modules++] = ctx;
	}
	drop_unmet(conf);
	for (size_t i = 0; i < n_modules; i++)
		if (modules[i]->failed)
			ret = -1;
	if (sort_modules(conf) < 0)
		ret = -1;
	for (size_t i = 0; i < n_modules; i++) {
		struct gn_module_ctx *m = modules[i];
		m->slot = (unsigned)i + 1;
		gn_log(GN_LOG_INFO, "core",
		       "event=module_loaded module=%s version=%s abi=%u.%u slot=%u file=%s",
		       m->name, gn_log_quote(0, m->desc->version != NULL ? m->desc->version : "-"),
		       (unsigned)m->desc->abi_major, (unsigned)m->desc->abi_minor, m->slot,
		       gn_log_quote(1, m->file));
	}
	return ret;
}

/* ---- phases ---- */

/* Whether a non-optional requirement of m failed to register. */
static const char *failed_requirement(const struct gn_module_ctx *m)
{
	for (const struct gn_module_require *r = m->desc->requires;
	     r != NULL && r->name != NULL; r++) {
		struct gn_module_ctx *dep = find_module(r->name);
		if (dep != NULL && dep->register_failed)
			return dep->name;
	}
	return NULL;
}

int modules_register(void)
{
	int ret = 0;
	for (size_t i = 0; i < n_modules; i++) {
		struct gn_module_ctx *m = modules[i];
		const char *dep = failed_requirement(m);
		if (dep != NULL) {
			/* It would find the services and hook points of dep
			 * missing; the failure of dep is the error to fix. */
			m->register_failed = true;
			ret = -1;
			continue;
		}
		if (m->desc->register_fn == NULL)
			continue;
		const char *error = NULL;
		if (m->desc->register_fn(m, &error) < 0) {
			conf_error("module %s (%s): register failed: %s", m->name, m->file,
				   error != NULL ? error : "no reason given");
			gn_log(GN_LOG_DEBUG, "core", "event=module_register_failed module=%s error=%s",
			       m->name, gn_log_quote(0, error != NULL ? error : "-"));
			m->register_failed = true;
			ret = -1;
		}
	}
	phase = PHASE_REGISTERED;
	return ret;
}

int modules_start(const char *kind, const char **error_r)
{
	process_kind = kind != NULL ? kind : "single";
	for (size_t i = 0; i < n_modules; i++) {
		struct gn_module_ctx *m = modules[i];
		if (m->started)
			continue;
		const char *error = NULL;
		if (m->desc->start_fn != NULL && m->desc->start_fn(m, &error) < 0) {
			snprintf(error_buf, sizeof(error_buf), "module %s: start failed in %s: %s",
				 m->name, process_kind, error != NULL ? error : "no reason given");
			/* Returned in *error_r: the caller reports it (the
			 * master's event=start_failed, the CLI's message). */
			gn_log(GN_LOG_DEBUG, "core", "event=module_start_failed module=%s process=%s error=%s",
			       m->name, process_kind, gn_log_quote(0, error != NULL ? error : "-"));
			modules_stop();
			if (error_r != NULL)
				*error_r = error_buf;
			return -1;
		}
		m->started = true;
		gn_log(GN_LOG_INFO, "core", "event=module_started module=%s process=%s",
		       m->name, process_kind);
	}
	return 0;
}

void modules_stop(void)
{
	for (size_t i = n_modules; i-- > 0;) {
		struct gn_module_ctx *m = modules[i];
		if (!m->started)
			continue;
		m->started = false;
		if (m->desc->stop_fn != NULL)
			m->desc->stop_fn(m);
		gn_log(GN_LOG_INFO, "core", "event=module_stopped module=%s process=%s",
		       m->name, process_kind);
	}
}

void modules_print(FILE *out)
{
	for (size_t i = 0; i < n_modules; i++) {
		const struct gn_module *d = modules[i]->desc;
		fprintf(out, "%s %s abi=%u.%u requires=", modules[i]->name,
			d->version != NULL ? d->version : "-",
			(unsigned)d->abi_major, (unsigned)d->abi_minor);
		const struct gn_module_require *r = d->requires;
		if (r == NULL || r->name == NULL)
			fputc('-', out);
		for (; r != NULL && r->name != NULL; r++)
			fprintf(out, "%s%s%s", r == d->requires ? "" : ",", r->name,
				(r->flags & GN_REQUIRE_OPTIONAL) != 0 ? "?" : "");
		fputc('\n', out);
	}
}
