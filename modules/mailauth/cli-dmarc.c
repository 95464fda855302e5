/*
 * modules/mailauth/cli-dmarc.c: `gannet dns dmarc DOMAIN` and `gannet
 * dmarc check [options] [FILE]`, DMARC as the server evaluates it, for
 * admins debugging mail and for tests.
 *
 * `dns dmarc DOMAIN`, one item a line:
 *   domain NAME / org-domain NAME
 *   trace query|record DETAIL       (each query, each DMARC record seen)
 *   status found|none|temperror|permerror
 *   record "TEXT" / from NAME       (the record and the domain it was at)
 *   tag NAME VALUE [ignored]        (each tag; ignored: unknown to RFC 7489)
 *   policy P / subdomain-policy SP / pct N / adkim r|s / aspf r|s
 *   default TAG=VALUE               (a value replaced by its default)
 *   problem TEXT
 * Exit 0 when a record was found or there is none, 1 on errors.
 *
 * `dmarc check [--ip IP] [--mail-from ADDR] [--helo NAME] [--sample N]
 * [FILE]` reads a message (FILE or standard input), verifies its DKIM
 * signatures with the core's verifier, evaluates SPF (spf.c) when --ip is
 * given, then DMARC, and prints:
 *   from DOMAIN
 *   dkim STATUS DOMAIN [REASON]     (each signature)
 *   spf RESULT DOMAIN
 *   org-domain NAME / record "TEXT" / from-record NAME
 *   policy P, subdomain yes|no
 *   spf-aligned yes|no / dkim-aligned yes|no
 *   result pass|fail|none|temperror|permerror
 *   disposition none|quarantine|reject [sampled-out]
 *   reason TEXT
 * --sample N (0..99) fixes pct sampling (RFC 7489 6.6.4) for tests.  Exit 0
 * for a pass, 1 otherwise, 2 on usage errors.
 */
#include "mailauth.h"
#include "dmarc.h"
#include "spf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gannet/addr.h>
#include <gannet/cli.h>
#include <gannet/dkim.h>
#include <gannet/dns.h>
#include <gannet/loop.h>

/* The largest message `dmarc check` reads. */
#define CLI_MAX_MESSAGE (64u * 1024 * 1024)

struct cli_state {
	struct gn_pool *pool;
	bool done;
	struct dmarc_lookup_result lk;
	struct spf_result spf;
};

static void print_text(const char *key, const char *text)
{
	printf("%s ", key);
	for (const char *p = text; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c >= 0x7f)
			printf("\\%03u", c);
		else
			putchar(c);
	}
	putchar('\n');
}

static void print_quoted(const char *key, const char *s)
{
	printf("%s \"", key);
	for (const char *p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\%03u", c);
		else
			putchar(c);
	}
	printf("\"\n");
}

static void on_trace(const char *what, const char *detail, void *data)
{
	(void)data;
	char key[32];
	snprintf(key, sizeof(key), "trace %s", what);
	print_text(key, detail);
}

static void on_lookup(const struct dmarc_lookup_result *r, void *data)
{
	struct cli_state *st = data;
	st->lk = *r;
	st->done = true;
	gn_loop_break();
}

/* Runs the policy lookup to its end; false when the loop ended first. */
static bool run_lookup(struct cli_state *st, const char *domain, bool trace)
{
	st->done = false;
	struct dmarc_lookup *l = dmarc_lookup(st->pool, mailauth_psl, domain, on_lookup,
					      trace ? on_trace : NULL, st);
	if (gn_loop_run() < 0 || !st->done) {
		dmarc_lookup_cancel(&l);
		return false;
	}
	return true;
}

static void print_record(const struct dmarc_lookup_result *r)
{
	if (r->text != NULL)
		print_quoted("record", r->text);
	if (r->record_domain != NULL)
		print_text("from", r->record_domain);
}

static int cli_dns_dmarc(int argc, char **argv, void *data)
{
	(void)argc;
	(void)data;
	struct cli_state st = { .pool = gn_pool_new() };
	if (!run_lookup(&st, argv[1], true)) {
		fprintf(stderr, "gannet: dns dmarc: the loop ended without an answer\n");
		gn_pool_free(&st.pool);
		return 1;
	}
	const struct dmarc_lookup_result *r = &st.lk;
	/* The names as asked: A-labels, lower case. */
	print_text("domain", r->domain);
	if (r->org_domain != NULL)
		print_text("org-domain", r->org_domain);
	printf("status %s\n", r->status == DMARC_PASS ? "found" : dmarc_result_name(r->status));
	print_record(r);
	if (r->rec != NULL) {
		for (size_t i = 0; i < r->rec->n_tags; i++) {
			const char *key = gn_pool_printf(st.pool, "tag %s%s", r->rec->tags[i].name,
							 r->rec->tags[i].known ? "" : " [ignored]");
			print_text(key, r->rec->tags[i].value);
		}
		printf("policy %s\n", dmarc_policy_name(r->rec->p));
		printf("subdomain-policy %s\n", dmarc_policy_name(r->rec->sp != DMARC_POLICY_UNSET ?
								   r->rec->sp : r->rec->p));
		printf("pct %u\nadkim %c\naspf %c\n", r->rec->pct, r->rec->adkim, r->rec->aspf);
		if (r->rec->p_from_rua)
			printf("default p=none (no valid p=, a valid rua=: RFC 7489 6.6.3)\n");
		if (r->rec->ignored != NULL)
			print_text("default", r->rec->ignored);
	}
	if (r->problem != NULL)
		print_text("problem", r->problem);
	fflush(stdout);
	int rc = r->status == DMARC_PASS || r->status == DMARC_NONE ? 0 : 1;
	gn_pool_free(&st.pool);
	return rc;
}

/* ---- dmarc check ---- */

static char *read_all(FILE *f, size_t *len_r, const char **error_r)
{
	struct gn_buf *b = gn_buf_new(CLI_MAX_MESSAGE);
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (gn_buf_append(b, chunk, n) < 0) {
			gn_buf_free(&b);
			*error_r = "the message is larger than 64 MiB";
			return NULL;
		}
	}
	if (ferror(f)) {
		gn_buf_free(&b);
		*error_r = strerror(errno);
		return NULL;
	}
	*len_r = gn_buf_len(b);
	return gn_buf_steal(&b);
}

static void on_dkim(struct gn_dkim_verifier *v, void *data)
{
	(void)v;
	struct cli_state *st = data;
	st->done = true;
	gn_loop_break();
}

static void on_spf(const struct spf_result *r, void *data)
{
	struct cli_state *st = data;
	st->spf = *r;
	st->done = true;
	gn_loop_break();
}

static int usage(const char *fmt, ...) GN_PRINTF(1, 2);
static int usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "gannet: dmarc check: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	return 2;
}

static int cli_dmarc_check(int argc, char **argv, void *data)
{
	(void)data;
	const char *ip = NULL, *mail_from = NULL, *helo = NULL, *file = NULL;
	int sample = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if ((strcmp(a, "--ip") == 0 || strcmp(a, "--mail-from") == 0 ||
		     strcmp(a, "--helo") == 0 || strcmp(a, "--sample") == 0)) {
			if (i + 1 >= argc)
				return usage("%s needs a value", a);
			const char *v = argv[++i];
			if (a[2] == 'i')
				ip = v;
			else if (a[2] == 'm')
				mail_from = v;
			else if (a[2] == 'h')
				helo = v;
			else {
				char *end;
				long x = strtol(v, &end, 10);
				if (*v == '\0' || *end != '\0' || x < 0 || x > 99)
					return usage("--sample \"%s\" is not a number from 0 to 99", v);
				sample = (int)x;
			}
		} else if (a[0] == '-' && a[1] != '\0') {
			return usage("unknown option %s", a);
		} else if (file == NULL) {
			file = a;
		} else {
			return usage("one FILE only, not also \"%s\"", a);
		}
	}
	struct spf_request req = { 0 };
	if (ip != NULL) {
		if (inet_pton(AF_INET, ip, req.ip) == 1)
			req.family = 4;
		else if (inet_pton(AF_INET6, ip, req.ip) == 1)
			req.family = 6;
		else
			return usage("\"%s\" is not an IP address", ip);
	}
	FILE *f = stdin;
	if (file != NULL && strcmp(file, "-") != 0) {
		f = fopen(file, "rb");
		if (f == NULL) {
			fprintf(stderr, "gannet: dmarc check: %s: %s\n", file, strerror(errno));
			return 1;
		}
	}
	size_t len = 0;
	const char *err;
	char *msg = read_all(f, &len, &err);
	if (f != stdin)
		fclose(f);
	if (msg == NULL) {
		fprintf(stderr, "gannet: dmarc check: %s\n", err);
		return 1;
	}
	struct cli_state st = { .pool = gn_pool_new() };
	int rc = 1;
	const char *why = NULL;
	const char *from = dmarc_from_domain(st.pool, msg, len, &why);
	print_text("from", from != NULL ? from : "");

	/* DKIM, with the core's verifier. */
	struct gn_dkim_verifier *v = gn_dkim_verifier_new(0, time(NULL));
	size_t n_dkim = 0;
	struct dmarc_dkim *dk = NULL;
	if (gn_dkim_verifier_update(v, msg, len, &err) < 0 || gn_dkim_verifier_finish(v, &err) < 0) {
		/* No signature is evaluated: none can pass. */
		print_text("dkim permerror -", err);
	} else {
		st.done = false;
		struct gn_dkim_verify *op = gn_dkim_verify_start(v, on_dkim, &st);
		if (gn_loop_run() < 0 || !st.done) {
			gn_dkim_verify_cancel(&op);
			fprintf(stderr, "gannet: dmarc check: the loop ended without the DKIM keys\n");
			goto out;
		}
		n_dkim = gn_dkim_verifier_count(v);
		dk = gn_pool_alloc(st.pool, (n_dkim + 1) * sizeof(*dk));
		for (size_t i = 0; i < n_dkim; i++) {
			const struct gn_dkim_verify_result *r = gn_dkim_verifier_result(v, i);
			dk[i].domain = r->domain;
			dk[i].status = r->status;
			const char *key = gn_pool_printf(st.pool, "dkim %s %s",
							 gn_dkim_status_name(r->status),
							 r->domain != NULL ? r->domain : "-");
			if (r->reason != NULL)
				print_text(key, r->reason);
			else
				printf("%s\n", key);
		}
		if (n_dkim == 0)
			printf("dkim none\n");
	}

	/* SPF, when the client is known. */
	st.spf.result = SPF_NONE;
	if (ip != NULL) {
		req.sender = mail_from;
		req.helo = helo;
		req.timeout_ms = mailauth_settings.spf_timeout_ms;
		st.done = false;
		struct spf_eval *e = spf_check(st.pool, &req, on_spf, &st);
		if (gn_loop_run() < 0 || !st.done) {
			spf_cancel(&e);
			fprintf(stderr, "gannet: dmarc check: the loop ended without an SPF result\n");
			goto out;
		}
		printf("spf %s %s\n", spf_result_name(st.spf.result), st.spf.domain);
	} else {
		printf("spf none (no --ip)\n");
	}

	/* DMARC. */
	struct dmarc_input in = {
		.from_domain = from, .spf_result = st.spf.result,
		.spf_domain = ip != NULL ? st.spf.domain : NULL,
		.dkim = dk, .n_dkim = n_dkim, .sample = sample,
	};
	struct dmarc_result res;
	if (from == NULL) {
		dmarc_evaluate(st.pool, mailauth_psl, &in, NULL, &res);
		res.reason = why;
	} else {
		if (!run_lookup(&st, from, false)) {
			fprintf(stderr, "gannet: dmarc check: the loop ended without the policy\n");
			goto out;
		}
		dmarc_evaluate(st.pool, mailauth_psl, &in, &st.lk, &res);
		if (st.lk.org_domain != NULL)
			print_text("org-domain", st.lk.org_domain);
		if (st.lk.text != NULL)
			print_quoted("record", st.lk.text);
		if (st.lk.record_domain != NULL)
			print_text("from-record", st.lk.record_domain);
	}
	printf("policy %s\nsubdomain %s\n", res.policy != DMARC_POLICY_UNSET ?
	       dmarc_policy_name(res.policy) : "-", res.subdomain ? "yes" : "no");
	printf("spf-aligned %s\ndkim-aligned %s\n", res.spf_aligned ? "yes" : "no",
	       res.dkim_aligned ? "yes" : "no");
	printf("result %s\n", dmarc_result_name(res.result));
	printf("disposition %s%s\n", dmarc_policy_name(res.disposition),
	       res.sampled_out ? " sampled-out" : "");
	if (res.reason != NULL)
		print_text("reason", res.reason);
	rc = res.result == DMARC_PASS ? 0 : 1;
out:
	fflush(stdout);
	gn_dkim_verifier_free(&v);
	gn_free(msg);
	gn_pool_free(&st.pool);
	return rc;
}

int mailauth_cli_dmarc_register(struct gn_module_ctx *ctx, const char **error_r)
{
	static const struct gn_cli_command dns = {
		sizeof(struct gn_cli_command), "dns dmarc", "DOMAIN",
		"Prints the DMARC record (RFC 7489) that applies to mail From DOMAIN:\n"
		"_dmarc.DOMAIN, else its organisational domain's; where it was found,\n"
		"its tags and the organisational domain (public suffix list).",
		1, 1, cli_dns_dmarc, NULL,
	};
	static const struct gn_cli_command check = {
		sizeof(struct gn_cli_command), "dmarc check",
		"[--ip IP] [--mail-from ADDR] [--helo NAME] [--sample N] [FILE]",
		"Evaluates DMARC for a message (FILE or standard input): its From\n"
		"domain, its DKIM signatures, SPF for a client at IP (MAIL FROM ADDR,\n"
		"\"\" for <>; HELO NAME), the policy and the disposition.  --sample N\n"
		"(0-99) fixes pct sampling.  Exit 0 for a pass, 1 otherwise.",
		0, 9, cli_dmarc_check, NULL,
	};
	if (gn_cli_command_register(ctx, &dns, error_r) < 0)
		return -1;
	return gn_cli_command_register(ctx, &check, error_r);
}
