/*
 * core/auth/cli-password.c: `gannet setpassword ACCOUNT`: reads the new
 * password from the terminal (twice, without echo) or from the first
 * line of stdin, and sets it with gn_auth_password_set().
 */
#include "auth/internal.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define PASSWORD_READ_MAX 4096

/* Reads one line from fd 0 into buf (without the line end).  Returns its
 * length, or -1 at end of input without data or when it is too long. */
static ssize_t read_line(char *buf, size_t size)
{
	size_t n = 0;
	for (;;) {
		char c;
		ssize_t r = read(0, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return n > 0 ? (ssize_t)n : -1;
		if (c == '\n')
			break;
		if (n + 1 >= size)
			return -1;
		buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (ssize_t)n;
}

static ssize_t prompt_secret(const char *prompt, char *buf, size_t size)
{
	struct termios old, quiet;
	/* Echo goes off before the prompt shows, so nothing typed after
	 * the prompt is ever echoed. */
	bool restore = tcgetattr(0, &old) == 0;
	if (restore) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		tcsetattr(0, TCSAFLUSH, &quiet);
	}
	fputs(prompt, stderr);
	fflush(stderr);
	ssize_t n = read_line(buf, size);
	if (restore)
		tcsetattr(0, TCSANOW, &old);
	return n;
}

static int cmd_setpassword(int argc, char **argv, void *data)
{
	(void)data;
	const char *error;
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: gannet setpassword ACCOUNT\n");
		return 2;
	}
	const char *params[] = { argv[1] };
	PGresult *res = db_query("SELECT id FROM gn_accounts WHERE name = $1",
				 1, params, &error);
	if (res == NULL) {
		fprintf(stderr, "gannet: database: %s\n", error);
		return 1;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		fprintf(stderr, "gannet: no such account: %s\n", argv[1]);
		return 1;
	}
	int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);

	char *pw = gn_malloc(PASSWORD_READ_MAX), *again = gn_malloc(PASSWORD_READ_MAX);
	ssize_t n;
	int ret = 1;
	if (isatty(0)) {
		n = prompt_secret("New password: ", pw, PASSWORD_READ_MAX);
		ssize_t n2 = n < 0 ? -1 : prompt_secret("Repeat password: ", again, PASSWORD_READ_MAX);
		if (n < 0 || n2 < 0) {
			fprintf(stderr, "gannet: no password given\n");
			goto out;
		}
		if (n != n2 || memcmp(pw, again, (size_t)n) != 0) {
			fprintf(stderr, "gannet: the passwords do not match\n");
			goto out;
		}
	} else {
		/* Not a terminal: the first line of stdin. */
		n = read_line(pw, PASSWORD_READ_MAX);
		if (n < 0) {
			fprintf(stderr, "gannet: no password on stdin (or longer than %d bytes)\n",
				PASSWORD_READ_MAX - 1);
			goto out;
		}
	}
	if (gn_auth_password_set(id, pw, (size_t)n, &error) < 0) {
		fprintf(stderr, "gannet: password for %s: %s\n", argv[1], error);
		goto out;
	}
	bool cram = false;
	(void)gn_auth_cram_md5_get(id, NULL, &cram, NULL);
	fprintf(stderr, "gannet: password of %s set%s\n", argv[1],
		cram ? " (with CRAM-MD5 state: the account opted in)" : "");
	ret = 0;
out:
	gnutls_memset(pw, 0, PASSWORD_READ_MAX);
	gnutls_memset(again, 0, PASSWORD_READ_MAX);
	gn_free(pw);
	gn_free(again);
	return ret;
}

int cli_password_register(void)
{
	const char *error;
	if (gn_cli_register(modules_core_ctx(), "setpassword",
			    "ACCOUNT  (reads the password from the terminal or stdin)",
			    cmd_setpassword, NULL, &error) < 0) {
		conf_error("%s", error);
		return -1;
	}
	return 0;
}
