/*
 * core/dns/cli-dns.c: `gannet dns lookup TYPE NAME`, the resolver as the
 * server would use it (same settings, same checks), for admins and tests.
 *
 * Output, one item a line:
 *   name NAME
 *   type TYPE
 *   rcode NOERROR|NXDOMAIN|SERVFAIL|<number>|none
 *   status OK|NODATA|NXDOMAIN|SERVFAIL|TIMEOUT|...
 *   security secure|insecure|bogus
 *   ttl SECONDS
 *   canonical NAME          (when CNAMEs were followed)
 *   error TEXT              (for failures)
 *   TYPE DATA               (one a record: "MX 10 mx.example.org",
 *                            "TXT \"v=spf1 -all\"", "A 192.0.2.1")
 */
#include "dns/internal.h"

#include <arpa/inet.h>
#include <stdio.h>

static bool done;
static int exit_code;

static const char *rcode_name(int rcode)
{
	switch (rcode) {
	case -1: return "none";
	case 0: return "NOERROR";
	case 1: return "FORMERR";
	case 2: return "SERVFAIL";
	case 3: return "NXDOMAIN";
	case 4: return "NOTIMP";
	case 5: return "REFUSED";
	default: return NULL;
	}
}

/* TXT data quoted, with \" \\ and \DDD for what is not printable ASCII
 * (RFC 1035 5.1's escapes). */
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

static void print_result(const struct gn_dns_result *r, void *data)
{
	(void)data;
	const char *rc = rcode_name(r->rcode);
	const char *type = gn_dns_type_name(r->type);
	char ip[INET6_ADDRSTRLEN];

	printf("name %s\ntype %s\n", r->name, type);
	if (rc != NULL)
		printf("rcode %s\n", rc);
	else
		printf("rcode %d\n", r->rcode);
	printf("status %s\nsecurity %s\nttl %u\n", gn_dns_status_name(r->status),
	       gn_dns_security_name(r->security), r->ttl);
	if (r->canonical != NULL)
		printf("canonical %s\n", r->canonical);
	if (r->error != NULL)
		printf("error %s\n", r->error);
	for (size_t i = 0; i < r->n; i++) {
		printf("%s ", type);
		switch (r->type) {
		case GN_DNS_A:
			printf("%s", inet_ntop(AF_INET, &r->a[i], ip, sizeof(ip)));
			break;
		case GN_DNS_AAAA:
			printf("%s", inet_ntop(AF_INET6, &r->aaaa[i], ip, sizeof(ip)));
			break;
		case GN_DNS_MX:
			printf("%u %s", r->mx[i].preference,
			       r->mx[i].host[0] != '\0' ? r->mx[i].host : ".");
			break;
		case GN_DNS_TXT:
			print_quoted(r->txt[i].text, r->txt[i].len);
			break;
		case GN_DNS_PTR: case GN_DNS_CNAME:
			printf("%s", r->names[i]);
			break;
		case GN_DNS_TLSA:
			printf("%u %u %u ", r->tlsa[i].usage, r->tlsa[i].selector,
			       r->tlsa[i].matching_type);
			for (size_t j = 0; j < r->tlsa[i].len; j++)
				printf("%02x", r->tlsa[i].data[j]);
			break;
		}
		putchar('\n');
	}
	fflush(stdout);
	exit_code = r->status <= GN_DNS_NXDOMAIN ? 0 : 1;
	done = true;
	ev_break(core_loop, EVBREAK_ALL);
}

int dns_cli_lookup(int argc, char **argv, void *data)
{
	(void)argc;
	(void)data;
	int type = dns_type_parse(argv[1]);
	if (type < 0) {
		fprintf(stderr, "gannet: dns lookup: unknown record type \"%s\" "
			"(A, AAAA, MX, TXT, PTR, CNAME, TLSA)\n", argv[1]);
		return 2;
	}
	struct gn_pool *pool = gn_pool_new();
	const char *name = argv[2];
	if (type == GN_DNS_PTR) {
		const char *rev = dns_reverse_name(pool, name);
		if (rev != NULL)
			name = rev;
	}
	loop_init();
	done = false;
	exit_code = 1;
	struct gn_dns_query *q = gn_dns_lookup(name, (enum gn_dns_type)type,
					       print_result, NULL);
	(void)q;	/* owned by the resolver until print_result() */
	ev_run(core_loop, 0);	/* print_result() breaks it */
	if (!done)
		fprintf(stderr, "gannet: dns lookup: the loop ended without an answer\n");
	dns_shutdown();
	gn_pool_free(&pool);
	return exit_code;
}
