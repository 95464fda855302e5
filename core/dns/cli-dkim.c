/*
 * core/dns/cli-dkim.c: `gannet dkim verify [FILE]`, the DKIM verifier as
 * the server would run it (the config's dns settings and
 * dkim.max_signatures), for admins debugging mail and for tests.
 *
 * Reads the message from FILE, or stdin without one (a bare LF is taken
 * as CRLF, as `gannet dkim sign` does), and prints one line a signature,
 * in the order of the fields from the top:
 *
 *   N RESULT d=DOMAIN s=SELECTOR a=ALGORITHM bits=N [i=IDENTITY]
 *     [l=N [body-truncated]] [key-testing] header.b=PREFIX[: REASON]
 *
 * (one line; "-" for what the signature does not say), or "none: no
 * DKIM-Signature field" for a message without one.  Exits 0 when at least
 * one signature passed, 1 otherwise, 2 for bad usage.
 */
#include "dns/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The largest message read (as `gannet dkim sign`). */
#define VERIFY_MAX (100 * 1024 * 1024)

static bool done;

static void verified(struct gn_dkim_verifier *v, void *data)
{
	(void)v;
	(void)data;
	done = true;
	ev_break(core_loop, EVBREAK_ALL);
}

static const char *or_dash(const char *s)
{
	return s != NULL ? s : "-";
}

/* Prints the results: 0 when one passed, else 1. */
static int print_results(const struct gn_dkim_verifier *v)
{
	size_t n = gn_dkim_verifier_count(v);
	int ret = 1;
	if (n == 0)
		printf("none: no DKIM-Signature field\n");
	for (size_t i = 0; i < n; i++) {
		const struct gn_dkim_verify_result *r = gn_dkim_verifier_result(v, i);
		printf("%zu %s d=%s s=%s a=%s bits=%u", i + 1, gn_dkim_status_name(r->status),
		       or_dash(r->domain), or_dash(r->selector), or_dash(r->algorithm), r->key_bits);
		if (r->identity != NULL && r->domain != NULL &&
		    !(r->identity[0] == '@' && strcmp(r->identity + 1, r->domain) == 0))
			printf(" i=%s", r->identity);
		if (r->body_length >= 0)
			printf(" l=%lld%s", r->body_length, r->body_truncated ? " body-truncated" : "");
		if (r->key_testing)
			printf(" key-testing");
		printf(" header.b=%s", or_dash(r->header_b));
		if (r->reason != NULL)
			printf(": %s", r->reason);
		printf("\n");
		if (r->status == GN_DKIM_PASS)
			ret = 0;
	}
	return fflush(stdout) == 0 ? ret : 1;
}

int dns_cli_dkim_verify(int argc, char **argv, void *data)
{
	(void)data;
	int fd = STDIN_FILENO;
	if (argc == 2) {
		fd = open(argv[1], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "gannet: dkim verify: %s: %s\n", argv[1], strerror(errno));
			return 1;
		}
	}
	struct gn_dkim_verifier *v =
		gn_dkim_verifier_new(core_conf != NULL ? core_conf->dkim_max_signatures : 0, time(NULL));
	struct gn_buf *line = gn_buf_new(0);
	char in[65536];
	bool cr = false;
	size_t total = 0;
	ssize_t got;
	const char *err;
	int ret = 1;
	while ((got = read(fd, in, sizeof(in))) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "gannet: dkim verify: reading the message: %s\n", strerror(errno));
			goto out;
		}
		total += (size_t)got;
		if (total > VERIFY_MAX) {
			fprintf(stderr, "gannet: dkim verify: message larger than %d MiB\n",
				VERIFY_MAX / 1024 / 1024);
			goto out;
		}
		gn_buf_clear(line);
		for (ssize_t i = 0; i < got; i++) {
			if (in[i] == '\n' && !cr)
				gn_buf_append(line, "\r", 1);
			cr = in[i] == '\r';
			gn_buf_append(line, &in[i], 1);
		}
		if (gn_dkim_verifier_update(v, gn_buf_data(line), gn_buf_len(line), &err) < 0)
			goto fail;
	}
	if (gn_dkim_verifier_finish(v, &err) < 0)
		goto fail;
	loop_init();
	done = false;
	struct gn_dkim_verify *op = gn_dkim_verify_start(v, verified, NULL);
	(void)op;	/* the core's until verified() */
	ev_run(core_loop, 0);	/* verified() breaks it */
	dns_shutdown();
	if (!done) {
		fprintf(stderr, "gannet: dkim verify: the loop ended without the keys\n");
		goto out;
	}
	ret = print_results(v);
	goto out;
fail:
	fprintf(stderr, "gannet: dkim verify: %s\n", err);
	printf("permerror: %s\n", err);
out:
	if (fd != STDIN_FILENO)
		close(fd);
	gn_buf_free(&line);
	gn_dkim_verifier_free(&v);
	return ret;
}
