/*
 * core/localserve.c: `gannet localserve`, a complete local setup for
 * development on a private PostgreSQL cluster.
 *
 * The data directory (--dir, $GANNET_LOCALSERVE_DIR, else
 * /var/lib/gannet-localserve for root and ~/.local/share/gannet-localserve
 * for others) holds:
 *   pgdata/         the cluster (initdb on first run; Debian's binaries)
 *   run/            its unix socket; it listens on no TCP port
 *   localhost.pem   a self-signed certificate for localhost, and .key
 *   password        the password of the account gannet (address
 *                   gannet@localhost, domain localhost with catchall
 *                   separator "+"), made on the first run
 *   gannet.conf     written anew at every start: loopback listeners for the
 *                   modules that are installed, and those modules; the
 *                   queue sends to its own SMTP listener, which fails
 *                   what addresses ask for (modules/smtp/localserve.c);
 *                   retired queue records and webhooks kept 72 h
 * The ports are mox's (SMTP 1025, submission 1587, ...);
 * $GANNET_LOCALSERVE_PORT_SHIFT adds to each, so that two can run at once
 * (tests do).
 * PostgreSQL refuses to run as root: as root, the cluster and gannet itself
 * run as the user "gannet" when it exists, else "nobody".  Gannet then runs
 * in one process (serve --foreground); on SIGINT or SIGTERM it stops, and
 * localserve stops the cluster.  A second run reuses everything.
 */
#include "main.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

/* The ports of localserve (as mox's), each served once its module exists. */
static const struct {
	const char *module, *protocol, *tls;
	unsigned port;
} local_listeners[] = {
	{ "smtp", "smtp", "starttls", 1025 },
	{ "submission", "submission", "starttls", 1587 },
	{ "submission", "submission", "implicit", 1465 },
	{ "imap", "imap", "starttls", 1143 },
	{ "imap", "imap", "implicit", 1993 },
	{ "webapi", "http", "none", 1080 },
	{ "webapi", "http", "implicit", 1443 },
};

/* How long retired queue records and webhooks are kept (mox's
 * localserve: 72 h). */
#define LOCAL_RETIRED_KEEP "72h"

/* First-party modules localserve enables when their file is installed. */
static const char *local_modules[] = {
	"aliases", "quota", "suppression", "mailauth", "smtp", "submission",
	"imap", "webhooks", "webapi", "webmail", "webaccount", "webadmin",
};

struct runas {
	bool drop;
	uid_t uid;
	gid_t gid;
	char name[64];
};

static int runas_init(struct runas *r)
{
	memset(r, 0, sizeof(*r));
	if (geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam("gannet");
	if (pw == NULL)
		pw = getpwnam("nobody");
	if (pw == NULL) {
		fprintf(stderr, "gannet localserve: running as root needs a user \"gannet\" or \"nobody\" to run PostgreSQL\n");
		return -1;
	}
	r->drop = true;
	r->uid = pw->pw_uid;
	r->gid = pw->pw_gid;
	snprintf(r->name, sizeof(r->name), "%s", pw->pw_name);
	return 0;
}

/* Runs argv (a PostgreSQL tool) as the unprivileged user; output goes to
 * logfile when not NULL.  Returns the exit status, -1 when it could not
 * run. */
static int run_tool(const struct runas *r, char *const argv[], const char *logfile)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (r->drop && (setgroups(0, NULL) < 0 || setgid(r->gid) < 0 || setuid(r->uid) < 0))
			_exit(126);
		if (logfile != NULL) {
			int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
		}
		execv(argv[0], argv);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *pg_bindir(void)
{
	static char dir[256];
	static const char *versions[] = { "17", "16", "15" };
	const char *env = getenv("GANNET_PG_BINDIR");
	if (env != NULL && *env != '\0')
		return env;
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		snprintf(dir, sizeof(dir), "/usr/lib/postgresql/%s/bin", versions[i]);
		char path[300];
		snprintf(path, sizeof(path), "%s/pg_ctl", dir);
		if (access(path, X_OK) == 0)
			return dir;
	}
	return NULL;
}

static int make_dir(const char *path, mode_t mode, const struct runas *r)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST) {
		fprintf(stderr, "gannet localserve: mkdir %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (r->drop && chown(path, r->uid, r->gid) < 0) {
		fprintf(stderr, "gannet localserve: chown %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return close(fd);
}

/* A self-signed ECDSA P-256 certificate for localhost, valid four years. */
static int make_certificate(const char *cert_path, const char *key_path)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t out = { NULL, 0 };
	unsigned char serial[16];
	int ret = -1;

	if (gnutls_x509_privkey_init(&key) < 0 || gnutls_x509_crt_init(&crt) < 0)
		goto done;
	if (gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
					 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0)
		goto done;
	if (gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial)) < 0)
		goto done;
	serial[0] &= 0x7f;
	time_t now = time(NULL);
	if (gnutls_x509_crt_set_version(crt, 3) < 0 ||
	    gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, now - 3600) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, now + 4 * 365 * 86400L) < 0 ||
	    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "localhost", 9) < 0 ||
	    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost", 9, GNUTLS_FSAN_SET) < 0 ||
	    gnutls_x509_crt_set_key(crt, key) < 0 ||
	    gnutls_x509_crt_set_basic_constraints(crt, 0, -1) < 0 ||
	    gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE) < 0 ||
	    gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0) < 0 ||
	    gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0)
		goto done;
	if (gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &out) < 0 ||
	    write_file(key_path, out.data, out.size, 0600) < 0)
		goto done;
	gnutls_free(out.data);
	out.data = NULL;
	if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out) < 0 ||
	    write_file(cert_path, out.data, out.size, 0644) < 0)
		goto done;
	ret = 0;
done:
	gnutls_free(out.data);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	return ret;
}

/* 16 characters from an alphabet without look-alikes. */
static int make_password(char *out, size_t size)
{
	static const char alphabet[] = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	unsigned char rnd[16];
	if (size < sizeof(rnd) + 1 || gnutls_rnd(GNUTLS_RND_KEY, rnd, sizeof(rnd)) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(rnd); i++)
		out[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
	out[sizeof(rnd)] = '\0';
	return 0;
}

static int read_small_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

static const char *module_dir(void)
{
	const char *env = getenv("GANNET_MODULE_DIR");
	return env != NULL && *env != '\0' ? env : GN_MODULE_DIR;
}

static bool module_installed(const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.so", module_dir(), name);
	return access(path, R_OK) == 0;
}

static bool listener_wanted(const char *module)
{
	return module_installed(module);
}

static unsigned port_shift(void)
{
	const char *env = getenv("GANNET_LOCALSERVE_PORT_SHIFT");
	long v = env != NULL ? strtol(env, NULL, 10) : 0;
	return v > 0 && v < 60000 ? (unsigned)v : 0;
}

static int write_config(const char *dir, const struct runas *r, struct gn_buf *summary)
{
	unsigned shift = port_shift();
	struct gn_buf *c = gn_buf_new(0);
	gn_buf_printf(c,
		"# Written by `gannet localserve` at every start: edits are lost.\n"
		"# Copy it elsewhere to start from it for a real deployment.\n"
		"hostname = \"localhost\";\n");
	if (r->drop)
		gn_buf_printf(c, "user = \"%s\";\n", r->name);
	gn_buf_printf(c,
		"workers = 1;\n"
		"grace_period = \"5s\";\n"
		"database = { conninfo = \"host=%s/run dbname=gannet user=gannet application_name=gannet\"; };\n"
		"log = { level = \"info\"; };\n"
		"tls = { certificates = ( { cert = \"%s/localhost.pem\"; key = \"%s/localhost.key\"; } ); };\n",
		dir, dir, dir);
	gn_buf_append_str(c, "modules = { directory = \"");
	gn_buf_append_str(c, module_dir());
	gn_buf_append_str(c, "\"; load = [");
	bool first = true;
	for (size_t i = 0; i < sizeof(local_modules) / sizeof(local_modules[0]); i++) {
		if (!module_installed(local_modules[i]))
			continue;
		gn_buf_printf(c, "%s\"%s\"", first ? " " : ", ", local_modules[i]);
		first = false;
	}
	gn_buf_append_str(c, " ]; };\n");
	/* RFC 5321 4.5.1: postmaster's mail must be accepted; here it is the
	 * one account's. */
	/* The queue delivers everything to localserve's own SMTP listener,
	 * where the smtp module simulates the failures addresses ask for
	 * (modules/smtp/localserve.c; mox.md 3); other mail lands in the one
	 * account. */
	/* Retired queue records and webhooks are kept 72 h (as mox's
	 * localserve), so that a developer can look at what became of the
	 * mail an application sent (`gannet queue retired list`, `gannet
	 * queue webhook retired list`); accounts without a period of their
	 * own take these. */
	gn_buf_append_str(c, "queue = { ");
	if (module_installed("smtp"))
		gn_buf_printf(c, "relay = \"127.0.0.1\"; smtp_port = %u; ", 1025 + shift);
	gn_buf_printf(c, "retired_keep = \"%s\"; };\n", LOCAL_RETIRED_KEEP);
	if (module_installed("smtp"))
		gn_buf_append_str(c, "smtp = { postmaster = \"gannet\"; localserve = true; };\n");
	if (module_installed("webhooks"))
		gn_buf_printf(c, "webhooks = { retired_keep = \"%s\"; };\n", LOCAL_RETIRED_KEEP);
	first = true;
	for (size_t i = 0; i < sizeof(local_listeners) / sizeof(local_listeners[0]); i++) {
		if (!listener_wanted(local_listeners[i].module))
			continue;
		gn_buf_printf(c, "%s  { address = \"127.0.0.1\"; port = %u; protocol = \"%s\"; tls = \"%s\"; }",
			      first ? "listeners = (\n" : ",\n", local_listeners[i].port + shift,
			      local_listeners[i].protocol, local_listeners[i].tls);
		gn_buf_printf(summary, "  %-11s 127.0.0.1:%u (%s)\n", local_listeners[i].protocol,
			      local_listeners[i].port + shift,
			      strcmp(local_listeners[i].tls, "none") == 0 ? "plain" : local_listeners[i].tls);
		first = false;
	}
	if (!first)
		gn_buf_append_str(c, "\n);\n");
	else
		gn_buf_append_str(summary, "  (no protocol modules installed yet: nothing listens)\n");
	/* What an application is pointed at (mox's webapi v0 URL layout),
	 * with the login it authenticates with. */
	if (listener_wanted("webapi"))
		gn_buf_printf(summary, "  webapi      http://127.0.0.1:%u/webapi/v0/ (Basic auth: gannet@localhost "
			      "and the password)\n", 1080 + shift);
	gn_buf_printf(summary, "  retired     queue records%s kept %s (gannet queue retired list%s)\n",
		      module_installed("webhooks") ? " and webhooks" : "", LOCAL_RETIRED_KEEP,
		      module_installed("webhooks") ? ", gannet queue webhook retired list" : "");

	char path[4096];
	snprintf(path, sizeof(path), "%s/gannet.conf", dir);
	int ret = write_file(path, gn_buf_data(c), gn_buf_len(c), 0644);
	if (ret < 0)
		fprintf(stderr, "gannet localserve: writing %s: %s\n", path, strerror(errno));
	gn_buf_free(&c);
	return ret;
}

static int pg_start(const struct runas *r, const char *bindir, const char *dir)
{
	char pg_ctl[300], data[4096], sock[4096], logf[4096], opts[4200];
	snprintf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", bindir);
	snprintf(data, sizeof(data), "%s/pgdata", dir);
	snprintf(sock, sizeof(sock), "%s/run", dir);
	snprintf(logf, sizeof(logf), "%s/postgresql.log", dir);
	snprintf(opts, sizeof(opts), "-k %s -c listen_addresses=''", sock);
	char *argv[] = { pg_ctl, "-D", data, "-o", opts, "-l", logf, "-w", "-s", "start", NULL };
	if (run_tool(r, argv, NULL) != 0) {
		fprintf(stderr, "gannet localserve: PostgreSQL did not start: see %s\n", logf);
		return -1;
	}
	return 0;
}

static void pg_stop(const struct runas *r, const char *bindir, const char *dir)
{
	char pg_ctl[300], data[4096];
	snprintf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", bindir);
	snprintf(data, sizeof(data), "%s/pgdata", dir);
	char *argv[] = { pg_ctl, "-D", data, "-m", "fast", "-w", "-s", "stop", NULL };
	/* After gannet dropped privileges we already are the cluster's user. */
	struct runas self = *r;
	if (geteuid() != 0)
		self.drop = false;
	if (run_tool(&self, argv, NULL) != 0)
		fprintf(stderr, "gannet localserve: pg_ctl stop failed\n");
}

static int pg_init(const struct runas *r, const char *bindir, const char *dir)
{
	char initdb[300], data[4096], logf[4096], path[4096];
	snprintf(initdb, sizeof(initdb), "%s/initdb", bindir);
	snprintf(data, sizeof(data), "%s/pgdata", dir);
	snprintf(logf, sizeof(logf), "%s/initdb.log", dir);
	char *argv[] = { initdb, "-D", data, "-U", "gannet", "--auth=trust", "-E", "UTF8",
			 "--locale=C.UTF-8", NULL };
	if (run_tool(r, argv, logf) != 0) {
		fprintf(stderr, "gannet localserve: initdb failed: see %s\n", logf);
		return -1;
	}
	if (pg_start(r, bindir, dir) < 0)
		return -1;
	char createdb[300], sock[4096];
	snprintf(createdb, sizeof(createdb), "%s/createdb", bindir);
	snprintf(sock, sizeof(sock), "%s/run", dir);
	char *cargv[] = { createdb, "-h", sock, "-U", "gannet", "gannet", NULL };
	int rc = run_tool(r, cargv, logf);
	pg_stop(r, bindir, dir);
	if (rc != 0) {
		fprintf(stderr, "gannet localserve: createdb failed: see %s\n", logf);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/pgdata/.gannet-ready", dir);
	return write_file(path, "", 0, 0600);
}

/* The domain localhost (catchall separator "+", as mox's localserve) and the
 * account gannet with the address gannet@localhost and the password, made
 * once.  Runs before gannet serves, on its own connection to the cluster.
 * Returns 1 when it created the account, 0 when it existed, -1 on error. */
static int setup_account(const char *dir, const char *password)
{
	char conninfo[4200];
	const char *err;
	int ret = -1;
	struct gn_pool *pool = gn_pool_new();
	struct gn_store_account *acct;

	snprintf(conninfo, sizeof(conninfo), "host=%s/run dbname=gannet user=gannet", dir);
	if (db_init(conninfo, &err) < 0) {
		fprintf(stderr, "gannet localserve: database: %s\n", err);
		goto out;
	}
	/* The core's tables; modules migrate theirs when gannet starts. */
	if (db_migrate(NULL, &err) < 0) {
		fprintf(stderr, "gannet localserve: migrate: %s\n", err);
		goto out;
	}
	int found = gn_store_account_find(pool, "gannet", &acct, &err);
	if (found < 0) {
		fprintf(stderr, "gannet localserve: %s\n", err);
		goto out;
	}
	if (found > 0) {
		ret = 0;
		goto out;
	}
	if (gn_db_begin(&err) < 0)
		goto fail;
	struct gn_store_domain *dom;
	int have_domain = gn_store_domain_find(pool, "localhost", &dom, &err);
	if (have_domain < 0 ||
	    (have_domain == 0 && gn_store_domain_add(pool, "localhost", "+", NULL, &err) < 0) ||
	    gn_store_account_add(pool, "gannet", "gannet@localhost", "Gannet Localserve", &acct, &err) < 0 ||
	    gn_auth_password_set(acct->id, password, strlen(password), &err) < 0 ||
	    gn_db_commit(&err) < 0) {
		gn_db_rollback();
		goto fail;
	}
	ret = 1;
	goto out;
fail:
	fprintf(stderr, "gannet localserve: creating the account gannet@localhost: %s\n", err);
out:
	db_close();
	gn_pool_free(&pool);
	return ret;
}

static void localserve_usage(FILE *out)
{
	fprintf(out, "usage: gannet localserve [--dir DIR]\n");
}

int localserve_main(int argc, char **argv)
{
	const char *dir_arg = getenv("GANNET_LOCALSERVE_DIR");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
			dir_arg = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			localserve_usage(stdout);
			return 0;
		} else {
			localserve_usage(stderr);
			return 2;
		}
	}

	struct runas r;
	if (runas_init(&r) < 0)
		return 1;
	char dir[2048];
	if (dir_arg != NULL && *dir_arg != '\0') {
		snprintf(dir, sizeof(dir), "%s", dir_arg);
	} else if (geteuid() == 0) {
		snprintf(dir, sizeof(dir), "/var/lib/gannet-localserve");
	} else {
		const char *home = getenv("HOME");
		if (home == NULL) {
			fprintf(stderr, "gannet localserve: HOME is not set: use --dir\n");
			return 1;
		}
		char parent[2048];
		snprintf(parent, sizeof(parent), "%s/.local", home);
		mkdir(parent, 0700);
		snprintf(parent, sizeof(parent), "%s/.local/share", home);
		mkdir(parent, 0700);
		snprintf(dir, sizeof(dir), "%s/.local/share/gannet-localserve", home);
	}
	if (dir[0] != '/') {
		char *abs = realpath(dir, NULL);
		if (abs == NULL && mkdir(dir, 0750) == 0)
			abs = realpath(dir, NULL);
		if (abs == NULL || strlen(abs) >= sizeof(dir)) {
			fprintf(stderr, "gannet localserve: %s: %s\n", dir, strerror(errno));
			free(abs);
			return 1;
		}
		snprintf(dir, sizeof(dir), "%s", abs);
		free(abs);
	}

	const char *bindir = pg_bindir();
	if (bindir == NULL) {
		fprintf(stderr, "gannet localserve: PostgreSQL not found: install the Debian package postgresql (or set GANNET_PG_BINDIR)\n");
		return 1;
	}
	char path[4096], sub[4096];
	if (make_dir(dir, 0750, &r) < 0)
		return 1;
	snprintf(sub, sizeof(sub), "%s/run", dir);
	if (make_dir(sub, 0700, &r) < 0)
		return 1;

	bool fresh = false;
	snprintf(path, sizeof(path), "%s/pgdata/.gannet-ready", dir);
	if (access(path, F_OK) != 0) {
		snprintf(sub, sizeof(sub), "%s/pgdata", dir);
		if (access(sub, F_OK) == 0) {
			fprintf(stderr, "gannet localserve: %s exists but was not set up completely: remove it and run again\n", sub);
			return 1;
		}
		printf("gannet localserve: creating a PostgreSQL cluster in %s/pgdata\n", dir);
		fflush(stdout);
		if (pg_init(&r, bindir, dir) < 0)
			return 1;
		fresh = true;
	}

	char cert[4096], key[4096];
	snprintf(cert, sizeof(cert), "%s/localhost.pem", dir);
	snprintf(key, sizeof(key), "%s/localhost.key", dir);
	if (access(cert, R_OK) != 0 || access(key, R_OK) != 0) {
		if (make_certificate(cert, key) < 0) {
			fprintf(stderr, "gannet localserve: could not create a certificate in %s\n", dir);
			return 1;
		}
	}

	char password[64];
	snprintf(path, sizeof(path), "%s/password", dir);
	if (read_small_file(path, password, sizeof(password)) < 0 || password[0] == '\0') {
		if (make_password(password, sizeof(password)) < 0 ||
		    write_file(path, password, strlen(password), 0600) < 0) {
			fprintf(stderr, "gannet localserve: could not write %s\n", path);
			return 1;
		}
	}

	struct gn_buf *summary = gn_buf_new(0);
	if (write_config(dir, &r, summary) < 0) {
		gn_buf_free(&summary);
		return 1;
	}
	if (pg_start(&r, bindir, dir) < 0) {
		gn_buf_free(&summary);
		return 1;
	}
	int made = setup_account(dir, password);
	if (made < 0) {
		gn_buf_free(&summary);
		pg_stop(&r, bindir, dir);
		return 1;
	}

	printf("gannet localserve: %s setup in %s\n"
	       "  config      %s/gannet.conf (written anew at every start)\n"
	       "  database    PostgreSQL in %s/pgdata, socket %s/run (no TCP port)\n"
	       "  TLS         %s (self-signed for localhost)\n"
	       "  account     gannet (address gannet@localhost, catchall gannet+tag@localhost)%s\n"
	       "              password %s (kept in %s/password)\n"
	       "%s"
	       "Stop with Ctrl-C.\n",
	       fresh ? "new" : "existing", dir, dir, dir, dir, cert,
	       made > 0 ? ", created now" : "", password, dir,
	       gn_buf_data(summary));
	fflush(stdout);
	gn_buf_free(&summary);

	snprintf(path, sizeof(path), "%s/gannet.conf", dir);
	/* PostgreSQL ignores our SIGINT (it runs in its own session after
	 * pg_ctl), so Ctrl-C reaches gannet, which stops; then the cluster. */
	int rc = main_serve(path, true);
	pg_stop(&r, bindir, dir);
	printf("gannet localserve: stopped\n");
	return rc;
}
