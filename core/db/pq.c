/*
 * core/db/pq.c: libpq, loaded when the first connection is opened.
 *
 * libgannet does not link libpq: PostgreSQL's client library brings some
 * twenty more (OpenSSL, Kerberos, LDAP, SASL...), and mapping and
 * relocating them was most of the start of every gannet process, also of
 * those that never touch the database (version, help, config check,
 * modules).  So db_init() calls db_pq_load(), which dlopen()s libpq once
 * per process and resolves every function the core calls into db_pq;
 * internal.h maps the names (PQexecParams...) onto that table, so that
 * the call sites read as plain libpq and <libpq-fe.h> stays a compile-time
 * include for the types and prototypes.
 *
 * A missing library or function is an error that fails the command or
 * the child's start, never a crash: the table is filled only once every
 * function is found.  Before that no connection or result can exist, so
 * the only calls that can come are frees of NULL (cleanup paths), which
 * libpq ignores: the table starts with stubs that do the same.
 */
#define DB_PQ_LOADER	/* the names, not the table: see internal.h */
#include "db/internal.h"

#include <dlfcn.h>
#include <stddef.h>
#include <string.h>

/* libpq's soname: 5 since PostgreSQL 8.0, kept across every release since
 * (PostgreSQL adds functions to libpq, it never changes existing ones). */
#define PQ_SONAME "libpq.so.5"
#define PQ_PACKAGE "Debian package libpq5"

static void clear_unloaded(PGresult *res)
{
	(void)res;
}

static void freemem_unloaded(void *ptr)
{
	(void)ptr;
}

static void finish_unloaded(PGconn *conn)
{
	(void)conn;
}

struct db_pq db_pq = {
	.PQclear = clear_unloaded,
	.PQfreemem = freemem_unloaded,
	.PQfinish = finish_unloaded,
};

static bool loaded;

static const struct {
	const char *name;
	size_t offset;
} functions[] = {
#define DB_PQ_ENTRY(name) { #name, offsetof(struct db_pq, name) },
	DB_PQ_FUNCTIONS(DB_PQ_ENTRY)
#undef DB_PQ_ENTRY
};

int db_pq_load(const char **error_r)
{
	static char msg[600];
	struct db_pq table;

	if (loaded)
		return 0;
	dlerror();
	void *handle = dlopen(PQ_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (handle == NULL) {
		const char *e = dlerror();
		/* dlerror() names the file: "libpq.so.5: cannot open shared
		 * object file: No such file or directory". */
		snprintf(msg, sizeof(msg), "cannot load PostgreSQL's client library "
			 "(" PQ_PACKAGE "): %.400s", e != NULL ? e : PQ_SONAME);
		*error_r = msg;
		return -1;
	}
	for (size_t i = 0; i < sizeof(functions) / sizeof(functions[0]); i++) {
		dlerror();
		void *fn = dlsym(handle, functions[i].name);
		if (fn == NULL) {
			const char *e = dlerror();
			snprintf(msg, sizeof(msg), "PostgreSQL's client library " PQ_SONAME
				 " lacks %s, which gannet needs (libpq 13 or newer, "
				 PQ_PACKAGE "): %.300s", functions[i].name,
				 e != NULL ? e : "no such symbol");
			dlclose(handle);
			*error_r = msg;
			return -1;
		}
		/* POSIX: a pointer from dlsym() converts to a function pointer. */
		memcpy((char *)&table + functions[i].offset, &fn, sizeof(fn));
	}
	/* Kept loaded for the life of the process: never dlclose()d. */
	db_pq = table;
	loaded = true;
	return 0;
}
