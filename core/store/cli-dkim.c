/*
 * core/store/cli-dkim.c: `gannet config dkim add|rm|list|export|enable|
 * disable` and `gannet dkim sign` over dkim.c.
 *
 * add and export print the DNS record to publish, in zone-file form with
 * the text cut into strings of at most 255 octets (RFC 1035 3.3.14, RFC
 * 6376 3.6.2.2).  add makes an RSA key of 2048 bits unless told
 * "ed25519": every verifier knows RSA, while Ed25519 (RFC 8463) is not
 * yet checked everywhere; a domain that wants both adds two selectors, as
 * mox's quickstart does.  sign prints the message read from stdin with a
 * DKIM-Signature field per enabled key of the domain on top, its lines
 * ending in CRLF (a bare LF read becomes CRLF).
 */
#include "store/internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The largest message `gannet dkim sign` reads (mox's default message
 * size limit). */
#define SIGN_MAX (100 * 1024 * 1024)

static void print_record(struct gn_pool *pool, const struct store_dkim_key *k)
{
	printf("%s TXT", store_dkim_dns_name(pool, k->domain, k->selector));
	const char *r = k->record;
	size_t len = strlen(r);
	for (size_t i = 0; i < len; i += 255)
		printf(" \"%.*s\"", (int)(len - i < 255 ? len - i : 255), r + i);
	printf("\n");
}

int store_cli_dkim_add(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 3 && argc != 4)
		return store_cli_usage("config dkim add DOMAIN SELECTOR [rsa|ed25519]");
	enum gn_dkim_algorithm alg = GN_DKIM_RSA_SHA256;
	if (argc == 4 && (gn_dkim_algorithm_parse(argv[3], &alg) < 0)) {
		fprintf(stderr, "gannet: unknown key type \"%s\": rsa or ed25519\n", argv[3]);
		return 2;
	}
	struct gn_pool *pool = gn_pool_new();
	struct store_dkim_key *k;
	const char *err;
	int r = store_dkim_add(pool, argv[1], argv[2], alg, &k, &err);
	if (r < 0) {
		gn_pool_free(&pool);
		return store_cli_fail(err);
	}
	printf("# publish this record, then messages from %s are signed with %s (%s):\n",
	       k->domain, k->selector, gn_dkim_algorithm_name(alg));
	print_record(pool, k);
	gn_pool_free(&pool);
	return 0;
}

static int selector_cmd(int argc, char **argv, const char *usage,
			int (*fn)(const char *, const char *, const char **))
{
	if (argc != 3)
		return store_cli_usage(usage);
	const char *err;
	int r = fn(argv[1], argv[2], &err);
	if (r < 0)
		return store_cli_fail(err);
	if (r == 0)
		return store_cli_fail(store_errf("no DKIM selector %s for %s", argv[2], argv[1]));
	return 0;
}

int store_cli_dkim_rm(int argc, char **argv, void *data)
{
	(void)data;
	return selector_cmd(argc, argv, "config dkim rm DOMAIN SELECTOR", store_dkim_remove);
}

static int enable(const char *d, const char *s, const char **e)
{
	return store_dkim_set_enabled(d, s, true, e);
}

static int disable(const char *d, const char *s, const char **e)
{
	return store_dkim_set_enabled(d, s, false, e);
}

int store_cli_dkim_enable(int argc, char **argv, void *data)
{
	(void)data;
	return selector_cmd(argc, argv, "config dkim enable DOMAIN SELECTOR", enable);
}

int store_cli_dkim_disable(int argc, char **argv, void *data)
{
	(void)data;
	return selector_cmd(argc, argv, "config dkim disable DOMAIN SELECTOR", disable);
}

int store_cli_dkim_list(int argc, char **argv, void *data)
{
	(void)data;
	if (argc > 2)
		return store_cli_usage("config dkim list [DOMAIN]");
	struct gn_pool *pool = gn_pool_new();
	struct store_dkim_key **list;
	size_t n;
	const char *err;
	if (store_dkim_list(pool, argc == 2 ? argv[1] : NULL, NULL, false, &list, &n, &err) < 0) {
		gn_pool_free(&pool);
		return store_cli_fail(err);
	}
	for (size_t i = 0; i < n; i++) {
		char when[32];
		struct tm tm;
		gmtime_r(&list[i]->created, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("%s %s %s %s %s\n", list[i]->domain, list[i]->selector,
		       gn_dkim_algorithm_name(list[i]->alg),
		       list[i]->enabled ? "enabled" : "disabled", when);
	}
	gn_pool_free(&pool);
	return 0;
}

int store_cli_dkim_export(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 3)
		return store_cli_usage("config dkim export DOMAIN SELECTOR");
	struct gn_pool *pool = gn_pool_new();
	struct store_dkim_key **list;
	size_t n;
	const char *err;
	int ret = 0;
	if (store_dkim_list(pool, argv[1], argv[2], true, &list, &n, &err) < 0) {
		ret = store_cli_fail(err);
	} else if (n == 0) {
		ret = store_cli_fail(store_errf("no DKIM selector %s for %s", argv[2], argv[1]));
	} else {
		print_record(pool, list[0]);
		store_dkim_keys_free(list, n);
	}
	gn_pool_free(&pool);
	return ret;
}

int store_cli_dkim_sign(int argc, char **argv, void *data)
{
	(void)data;
	if (argc != 2)
		return store_cli_usage("dkim sign DOMAIN < MESSAGE");
	/* The message with CRLF line ends, read in chunks; the signer is fed
	 * as it comes. */
	struct gn_buf *msg = gn_buf_new(SIGN_MAX + SIGN_MAX / 8);
	struct gn_dkim_signer *s = gn_dkim_signer_new();
	const char *err = NULL;
	char in[65536];
	bool cr = false;
	ssize_t got;
	int ret = 1;
	while ((got = read(STDIN_FILENO, in, sizeof(in))) != 0) {
		if (got < 0) {
			perror("gannet: reading the message");
			goto out;
		}
		size_t start = gn_buf_len(msg);
		for (ssize_t i = 0; i < got; i++) {
			if (in[i] == '\n' && !cr)
				gn_buf_append(msg, "\r", 1);
			cr = in[i] == '\r';
			if (gn_buf_append(msg, &in[i], 1) < 0)
				break;
		}
		if (gn_buf_len(msg) > SIGN_MAX) {
			fprintf(stderr, "gannet: message larger than %d MiB\n", SIGN_MAX / 1024 / 1024);
			goto out;
		}
		if (gn_dkim_signer_update(s, gn_buf_data(msg) + start, gn_buf_len(msg) - start, &err) < 0)
			goto fail;
	}
	if (gn_dkim_signer_finish(s, &err) < 0)
		goto fail;
	struct gn_buf *sigs = gn_buf_new(0);
	int r = gn_store_dkim_sign(s, argv[1], time(NULL), sigs, &err);
	if (r <= 0) {
		gn_buf_free(&sigs);
		if (r == 0)
			err = store_errf("no enabled DKIM key for %s", argv[1]);
		goto fail;
	}
	fwrite(gn_buf_data(sigs), 1, gn_buf_len(sigs), stdout);
	fwrite(gn_buf_data(msg), 1, gn_buf_len(msg), stdout);
	gn_buf_free(&sigs);
	ret = fflush(stdout) == 0 ? 0 : 1;
	goto out;
fail:
	fprintf(stderr, "gannet: cannot sign: %s\n", err);
out:
	gn_dkim_signer_free(&s);
	gn_buf_free(&msg);
	return ret;
}
