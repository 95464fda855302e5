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

/* ---- `gannet dns dkim SELECTOR DOMAIN` ----
 *
 * The key record of SELECTOR._domainkey.DOMAIN (RFC 6376 3.6.2.1) as the
 * resolver sees it, and how the verifier takes it (the order of mox's
 * `mox dkim lookup selector domain`):
 *
 *   name SELECTOR._domainkey.DOMAIN
 *   status OK|NXDOMAIN|NODATA|SERVFAIL|...   (dnssec STATE)
 *   record "TEXT"                  each TXT record, as the DNS has it
 *   tag NAME VALUE                 each tag of a record that parses
 *   error TEXT                     a record that does not
 *   key ALG BITS                   the key a signature would be checked with
 *   flags testing|strict           t=y, t=s (RFC 6376 3.6.1)
 *   result ok|revoked|policy|permerror|temperror[: REASON]
 *
 * As the verifier (core/mail/dkim-verify.c): the first record that
 * parses is the key; none, NXDOMAIN or NODATA: permerror; a failed
 * lookup: temperror; empty p=: revoked (a signature with it fails); RSA
 * under 1024 bits: policy (RFC 8301).  Exit 0 for ok, 1 otherwise, 2 for
 * bad usage. */

struct key_cli {
	int ret;
	bool done;
};

static void key_print_records(const struct gn_dns_result *r, struct key_cli *st)
{
	struct gn_pool *pool = gn_pool_new();
	const char *first_err = NULL;
	int found = -1;
	enum gn_dkim_algorithm alg = GN_DKIM_RSA_SHA256;
	const unsigned char *key = NULL;
	size_t klen = 0;
	const char *rec = NULL;
	size_t rec_len = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct gn_dns_txt *txt = &r->txt[i];
		printf("record \"");
		for (size_t k = 0; k < txt->len; k++) {
			unsigned char c = (unsigned char)txt->text[k];
			if (c == '"' || c == '\\')
				printf("\\%c", c);
			else if (c < 0x20 || c >= 0x7f)
				printf("\\%03o", c);
			else
				putchar(c);
		}
		printf("\"\n");
		const char *err = NULL;
		struct gn_dkim_tag *tags;
		size_t n;
		if (txt->len > GN_DKIM_MAX_KEY_RECORD) {
			err = "key record too long";
		} else if (memchr(txt->text, '\0', txt->len) != NULL) {
			err = "key record has a NUL";
		} else if (gn_dkim_tags_parse(pool, txt->text, txt->len, &tags, &n, &err) == 0) {
			for (size_t k = 0; k < n; k++)
				printf("tag %s %s\n", tags[k].name, tags[k].value);
			err = NULL;
		}
		int pr = -1;
		if (err == NULL) {
			enum gn_dkim_algorithm a;
			const unsigned char *kk;
			size_t kl;
			pr = gn_dkim_key_record_parse(pool, txt->text, txt->len, &a, &kk, &kl, &err);
			if (pr >= 0 && found < 0) {
				found = pr;
				alg = a;
				key = kk;
				klen = kl;
				rec = txt->text;
				rec_len = txt->len;
			}
		}
		if (pr < 0) {
			printf("error %s\n", err);
			if (first_err == NULL)
				first_err = err;
		}
	}
	st->ret = 1;
	if (found < 0) {
		printf("result permerror: %s\n", first_err != NULL ? first_err : "no key record");
	} else if (found == 0) {
		/* RFC 6376 3.6.1 p=: empty, the key was revoked. */
		printf("result revoked: empty p=\n");
	} else {
		/* The key's size, read as the verifier reads it: against a
		 * signature that cannot match, so only the key matters. */
		static const unsigned char hash[GN_DKIM_HASH_SIZE], sig[1];
		unsigned bits = 0;
		const char *err = NULL;
		int ok = dkim_verify_hash_bits(alg, key, klen, hash, sig, sizeof(sig), &bits, &err);
		printf("key %s %u\n", gn_dkim_algorithm_key_type(alg), bits);
		struct gn_dkim_tag *tags;
		size_t n;
		if (gn_dkim_tags_parse(pool, rec, rec_len, &tags, &n, &err) == 0) {
			const char *t = gn_dkim_tags_get(tags, n, "t");
			/* RFC 6376 3.6.1 t=: colon-separated flags. */
			for (const char *p = t; p != NULL && *p != '\0';) {
				size_t l = strcspn(p, ":");
				size_t b = 0, e = l;
				while (b < e && (p[b] == ' ' || p[b] == '\t'))
					b++;
				while (e > b && (p[e - 1] == ' ' || p[e - 1] == '\t'))
					e--;
				if (e - b == 1 && p[b] == 'y')
					printf("flags testing\n");
				else if (e - b == 1 && p[b] == 's')
					printf("flags strict\n");
				p += l + (p[l] == ':');
			}
		}
		if (ok == -2) {
			printf("result policy: RSA key of %u bits, under 1024 (RFC 8301)\n", bits);
		} else if (ok < 0) {
			printf("result permerror: key record: %s\n", err);
		} else {
			printf("result ok\n");
			st->ret = 0;
		}
	}
	gn_pool_free(&pool);
}

static void key_answered(const struct gn_dns_result *r, void *data)
{
	struct key_cli *st = data;
	printf("status %s dnssec %s\n", gn_dns_status_name(r->status),
	       gn_dns_security_name(r->security));
	if (r->status == GN_DNS_OK) {
		key_print_records(r, st);
	} else if (r->status == GN_DNS_NXDOMAIN || r->status == GN_DNS_NODATA ||
		   r->status == GN_DNS_BADNAME) {
		/* RFC 6376 6.1.2: no key for the signature, PERMFAIL. */
		printf("result permerror: no key for signature (%s)\n", gn_dns_status_name(r->status));
		st->ret = 1;
	} else {
		printf("result temperror: key lookup failed: %s%s%s\n", gn_dns_status_name(r->status),
		       r->error != NULL ? ": " : "", r->error != NULL ? r->error : "");
		st->ret = 1;
	}
	st->done = true;
	ev_break(core_loop, EVBREAK_ALL);
}

int dns_cli_dkim_key(int argc, char **argv, void *data)
{
	(void)data;
	(void)argc;
	if (!dkim_name_ok(argv[1]) || !dkim_name_ok(argv[2])) {
		fprintf(stderr, "gannet: dns dkim: \"%s\" \"%s\" is not a selector and a domain\n",
			argv[1], argv[2]);
		return 2;
	}
	struct gn_pool *pool = gn_pool_new();
	const char *name = gn_pool_printf(pool, "%s._domainkey.%s", argv[1], argv[2]);
	if (strlen(name) > 253) {
		fprintf(stderr, "gannet: dns dkim: %s is longer than 253 octets\n", name);
		gn_pool_free(&pool);
		return 2;
	}
	printf("name %s\n", name);
	struct key_cli st = { .ret = 1 };
	loop_init();
	struct gn_dns_query *q = gn_dns_lookup(name, GN_DNS_TXT, key_answered, &st);
	(void)q;	/* the resolver's until key_answered() */
	ev_run(core_loop, 0);
	dns_shutdown();
	gn_pool_free(&pool);
	if (!st.done) {
		fprintf(stderr, "gannet: dns dkim: the loop ended without an answer\n");
		return 1;
	}
	return fflush(stdout) == 0 ? st.ret : 1;
}
