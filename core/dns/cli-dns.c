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
 *
 * `gannet dns tlsa HOST [PORT]` looks up _PORT._tcp.HOST (25 by default)
 * and prints the same, each TLSA record followed by "usable DANE-EE",
 * "usable DANE-TA" or "unusable (...)" (RFC 7672 3.1.3), then a last line
 *   dane yes|tls-required|no|host-skipped: WHY
 * saying what the queue does with the host when its MX and address
 * answers are secure (RFC 7672 2.1.1, 2.2): yes, the certificate must
 * match; tls-required, secure records but none usable; no, insecure or
 * no records (opportunistic TLS); host-skipped, bogus or failed.
 */
#include "dns/internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

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

static const char *tlsa_usage_name(unsigned usage)
{
	static const char *const names[] = { "PKIX-TA", "PKIX-EE", "DANE-TA", "DANE-EE" };
	return usage < 4 ? names[usage] : "unknown usage";
}

static bool tlsa_mode;

/* After print_result(): what each record and the set mean for SMTP. */
static void print_tlsa_verdict(const struct gn_dns_result *r)
{
	size_t usable = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct gn_dns_tlsa *t = &r->tlsa[i];
		if (dns_dane_usable(t)) {
			usable++;
			printf("record %zu usable %s\n", i + 1, tlsa_usage_name(t->usage));
		} else {
			printf("record %zu unusable (%s%s)\n", i + 1, tlsa_usage_name(t->usage),
			       t->usage < 2 ? ": not for SMTP, RFC 7672 3.1.3"
			       : ": unknown selector or matching type, or a digest of the wrong length");
		}
	}
	if (r->status == GN_DNS_OK && r->security == GN_DNS_SECURE && usable > 0)
		printf("dane yes: %zu usable record%s: TLS required, the certificate must match\n", usable,
		       usable == 1 ? "" : "s");
	else if (r->status == GN_DNS_OK && r->security == GN_DNS_SECURE)
		printf("dane tls-required: secure records, none usable: TLS required, not authenticated\n");
	else if (r->status == GN_DNS_OK)
		printf("dane no: the records are insecure (not DNSSEC-validated): opportunistic TLS\n");
	else if (r->status == GN_DNS_NODATA || r->status == GN_DNS_NXDOMAIN)
		printf("dane no: no TLSA records (%s denial): opportunistic TLS\n",
		       r->security == GN_DNS_SECURE ? "a secure" : "an insecure");
	else
		printf("dane host-skipped: the lookup failed (%s%s): the host is not used, RFC 7672 2.1.1\n",
		       r->security == GN_DNS_BOGUS ? "bogus, " : "", gn_dns_status_name(r->status));
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
	if (tlsa_mode)
		print_tlsa_verdict(r);
	fflush(stdout);
	exit_code = r->status <= GN_DNS_NXDOMAIN ? 0 : 1;
	done = true;
	ev_break(core_loop, EVBREAK_ALL);
}

int dns_cli_tlsa(int argc, char **argv, void *data)
{
	(void)data;
	unsigned long port = 25;
	if (argc == 3) {
		char *end;
		port = strtoul(argv[2], &end, 10);
		if (argv[2][0] < '0' || argv[2][0] > '9' || *end != '\0' || port == 0 || port > 65535) {
			fprintf(stderr, "gannet: dns tlsa: \"%s\" is no port (1 to 65535)\n", argv[2]);
			return 2;
		}
	}
	struct gn_pool *pool = gn_pool_new();
	loop_init();
	done = false;
	exit_code = 1;
	tlsa_mode = true;
	struct gn_dns_query *q = gn_dns_lookup(gn_pool_printf(pool, "_%lu._tcp.%s", port, argv[1]),
					       GN_DNS_TLSA, print_result, NULL);
	(void)q;	/* owned by the resolver until print_result() */
	ev_run(core_loop, 0);
	if (!done)
		fprintf(stderr, "gannet: dns tlsa: the loop ended without an answer\n");
	dns_shutdown();
	gn_pool_free(&pool);
	return exit_code;
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
