/*
 * t/lib/pgtest.c: a fresh PostgreSQL database for a C unit test (see
 * pgtest.h).  The same approach as t/unit/test_db.c, shared.
 */
#include "main.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pgtest.h"
#include "tap.h"

#ifndef GN_TEST_SRCDIR
#define GN_TEST_SRCDIR "."
#endif

static char pgdir[256];		/* our own cluster, or "" */
static char *base_conninfo;	/* the cluster, dbname=postgres */
static char *conninfo;		/* our fresh database */
static char dbname[64];

static const char *srcdir(void)
{
	const char *s = getenv("GANNET_SRCDIR");
	return s && *s ? s : GN_TEST_SRCDIR;
}

static int pgtmp(const char *cmd)
{
	char *line = gn_strdup_printf("sh '%s/t/lib/pgtmp' %s '%s' >/dev/null", srcdir(), cmd, pgdir);
	int r = system(line);
	gn_free(line);
	return r;
}

static void drop_db(void)
{
	if (pgdir[0] != '\0') {
		pgtmp("destroy");	/* the whole cluster goes */
		pgdir[0] = '\0';
		return;
	}
	if (base_conninfo == NULL || dbname[0] == '\0')
		return;
	PGconn *c = PQconnectdb(base_conninfo);
	if (PQstatus(c) == CONNECTION_OK) {
		char *sql = gn_strdup_printf("DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
		PQclear(PQexec(c, sql));
		gn_free(sql);
	}
	PQfinish(c);
}

bool pgtest_setup(const char *prefix)
{
	const char *ci = getenv("GANNET_TEST_CONNINFO");
	const char *host = getenv("GANNET_TEST_PGHOST");
	const char *port = getenv("GANNET_TEST_PGPORT");
	const char *err;

	/* The admin connections below use libpq before db_init() loads it. */
	if (db_pq_load(&err) < 0) {
		diag("%s", err);
		return false;
	}
	if (ci != NULL && *ci != '\0') {
		base_conninfo = gn_strdup(ci);
	} else if (host != NULL && *host != '\0' && port != NULL && *port != '\0') {
		base_conninfo = gn_strdup_printf("host=%s port=%s user=gannet dbname=postgres",
						 host, port);
	} else {
		snprintf(pgdir, sizeof(pgdir), "/tmp/gannet-pgtmp-XXXXXX");
		if (mkdtemp(pgdir) == NULL) {
			diag("mkdtemp: %s", strerror(errno));
			pgdir[0] = '\0';
			return false;
		}
		if (pgtmp("start") != 0) {
			diag("t/lib/pgtmp start failed");
			pgtmp("destroy");
			pgdir[0] = '\0';
			return false;
		}
		base_conninfo = gn_strdup_printf("host=%s port=5432 user=gannet dbname=postgres",
						 pgdir);
	}
	atexit(drop_db);
	snprintf(dbname, sizeof(dbname), "t_%.20s_%ld_%ld", prefix, (long)getpid(), (long)time(NULL));
	PGconn *c = PQconnectdb(base_conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		diag("connection failed: %s", PQerrorMessage(c));
		PQfinish(c);
		dbname[0] = '\0';
		return false;
	}
	char *sql = gn_strdup_printf("CREATE DATABASE %s", dbname);
	PGresult *r = PQexec(c, sql);
	gn_free(sql);
	bool okay = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!okay)
		diag("CREATE DATABASE: %s", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
	/* Later keywords win in a key=value conninfo. */
	conninfo = gn_strdup_printf("%s dbname=%s", base_conninfo, dbname);
	return okay;
}

const char *pgtest_conninfo(void)
{
	return conninfo;
}

const char *pgtest_dbname(void)
{
	return dbname;
}

bool pgtest_own_cluster(void)
{
	return pgdir[0] != '\0';
}
