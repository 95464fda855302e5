/*
 * modules/mailauth/cli-spf.c: `gannet dns spf DOMAIN [IP [SENDER [HELO]]]`,
 * SPF as the server evaluates it, for admins debugging mail and for tests.
 *
 * Output, one item a line:
 *   domain NAME
 *   status OK|NXDOMAIN|NODATA|SERVFAIL|...    (the TXT lookup of DOMAIN)
 *   record "TEXT"                             (each SPF record seen)
 *   error TEXT                                (a record that does not parse)
 *   term N KIND QUALIFIER TEXT                (parsed terms of a single record)
 *   with IP:
 *   trace WHAT DETAIL                         (each query and record, in order)
 *   identity mailfrom|helo
 *   sender ADDRESS
 *   result none|neutral|pass|fail|softfail|temperror|permerror
 *   mechanism TERM                            (when one matched)
 *   in DOMAIN                                 (the record it was in)
 *   explanation TEXT                          (exp= of a fail)
 *   problem TEXT                              (why, for the errors)
 *   lookups N / void N / queries N
 *
 * SENDER "" is the null reverse path: the evaluation then checks
 * postmaster@HELO, and it is the HELO identity (RFC 7208 2.3) when DOMAIN
 * is HELO.  Exit 0 when the DNS answered (also NXDOMAIN) or an evaluation
 * ran, 1 when the record lookup failed, 2 on usage errors.
 */
#include "mailauth.h"
#include "spf.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <gannet/cli.h>
#include <gannet/dns.h>
#include <gannet/loop.h>

struct cli_state {
	struct gn_pool *pool;
	int exit_code;
	bool done;
};

static void print_quoted(const char *s, size_t len)
{
	putchar('"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\%03u", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* "KEY [WORD ]TEXT": records, names and texts come from the DNS and the
 * peer, so nothing unprintable reaches the terminal (\DDD, as RFC 1035
 * 5.1 writes it). */
static void print_line(const char *key, const char *word, const char *text)
{
	printf("%s ", key);
	if (word != NULL)
		printf("%s ", word);
	for (const char *p = text; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c >= 0x7f)
			printf("\\%03u", c);
		else
			putchar(c);
	}
	putchar('\n');
}

static const char *kind_name(const struct spf_term *t)
{
	static const char *const mech[] = {
		"?", "all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists",
	};
	switch (t->kind) {
	case SPF_TERM_MECHANISM: return mech[t->mechanism];
	case SPF_TERM_REDIRECT: return "redirect";
	case SPF_TERM_EXP: return "exp";
	default: return "modifier";
	}
}

static void on_records(const struct gn_dns_result *r, void *data)
{
	struct cli_state *st = data;
	printf("domain %s\nstatus %s\n", r->name, gn_dns_status_name(r->status));
	if (r->error != NULL)
		print_line("error", NULL, r->error);
	size_t n = 0;
	const struct gn_dns_txt *one = NULL;
	for (size_t i = 0; r->status == GN_DNS_OK && i < r->n; i++) {
		if (!spf_record_is_spf(r->txt[i].text, r->txt[i].len))
			continue;
		printf("record ");
		print_quoted(r->txt[i].text, r->txt[i].len);
		putchar('\n');
		one = &r->txt[i];
		n++;
	}
	if (n == 1) {
		struct spf_record *rec;
		const char *err;
		if (memchr(one->text, '\0', one->len) != NULL)
			printf("error the record holds a NUL byte\n");
		else if (spf_record_parse(st->pool, one->text, one->len, &rec, &err) < 0)
			print_line("error", NULL, err);
		else
			for (size_t i = 0; i < rec->n; i++)
				printf("term %zu %s %s %s\n", i + 1, kind_name(&rec->terms[i]),
				       rec->terms[i].kind == SPF_TERM_MECHANISM ?
				       spf_result_name(rec->terms[i].qualifier) : "-",
				       rec->terms[i].text);
	}
	st->exit_code = r->status <= GN_DNS_NXDOMAIN ? 0 : 1;
	st->done = true;
	fflush(stdout);
	gn_loop_break();
}

static void on_trace(const char *what, const char *detail, void *data)
{
	(void)data;
	print_line("trace", what, detail);
}

static void on_result(const struct spf_result *r, void *data)
{
	struct cli_state *st = data;
	printf("identity %s\n", r->identity);
	print_line("sender", NULL, r->sender);
	printf("result %s\n", spf_result_name(r->result));
	if (r->mechanism != NULL) {
		printf("mechanism %s\n", r->mechanism);	/* visible ASCII: parsed */
		print_line("in", NULL, r->matched_domain);
	}
	if (r->explanation != NULL)
		print_line("explanation", NULL, r->explanation);
	if (r->problem != NULL)
		print_line("problem", NULL, r->problem);
	printf("lookups %u\nvoid %u\nqueries %u\n", r->lookups, r->void_lookups, r->queries);
	fflush(stdout);
	st->exit_code = 0;
	st->done = true;
	gn_loop_break();
}

static int cli_spf(int argc, char **argv, void *data)
{
	(void)data;
	struct spf_request req = { 0 };
	if (argc > 2) {
		if (inet_pton(AF_INET, argv[2], req.ip) == 1) {
			req.family = 4;
		} else if (inet_pton(AF_INET6, argv[2], req.ip) == 1) {
			req.family = 6;
		} else {
			fprintf(stderr, "gannet: dns spf: \"%s\" is not an IP address\n", argv[2]);
			return 2;
		}
	}
	struct cli_state st = { .pool = gn_pool_new(), .exit_code = 1 };
	struct gn_dns_query *q = gn_dns_lookup(argv[1], GN_DNS_TXT, on_records, &st);
	(void)q;	/* the resolver's until on_records() */
	if (gn_loop_run() < 0 || !st.done) {
		fprintf(stderr, "gannet: dns spf: the loop ended without an answer\n");
		gn_pool_free(&st.pool);
		return 1;
	}
	if (argc > 2) {
		req.domain = argv[1];
		req.timeout_ms = mailauth_settings.spf_timeout_ms;
		req.sender = argc > 3 ? argv[3] : NULL;
		req.helo = argc > 4 ? argv[4] : NULL;
		if (argc > 3 && argv[3][0] == '\0' && req.helo != NULL &&
		    strcasecmp(req.helo, argv[1]) == 0)
			req.check_helo = true;
		if (req.sender == NULL)
			req.sender = gn_pool_printf(st.pool, "postmaster@%s", argv[1]);
		st.done = false;
		struct spf_eval *e = spf_check(st.pool, &req, on_result, &st);
		spf_set_trace(e, on_trace, NULL);
		if (gn_loop_run() < 0 || !st.done) {
			fprintf(stderr, "gannet: dns spf: the loop ended without a result\n");
			spf_cancel(&e);
			st.exit_code = 1;
		}
	}
	int rc = st.exit_code;
	gn_pool_free(&st.pool);
	return rc;
}

int mailauth_cli_spf_register(struct gn_module_ctx *ctx, const char **error_r)
{
	static const struct gn_cli_command cmd = {
		sizeof(struct gn_cli_command), "dns spf", "DOMAIN [IP [SENDER [HELO]]]",
		"Prints the SPF records the resolver sees for DOMAIN and their terms;\n"
		"with IP, evaluates SPF (RFC 7208) for a client at IP sending as SENDER\n"
		"(default postmaster@DOMAIN; \"\" for <>) after HELO, and prints the\n"
		"result, the matching term, the explanation and the lookups used.",
		1, 4, cli_spf, NULL,
	};
	return gn_cli_command_register(ctx, &cmd, error_r);
}
