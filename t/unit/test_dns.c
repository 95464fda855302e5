/*
 * t/unit/test_dns.c: the resolver (gannet/dns.h, core/dns/): names checked
 * before they go out, libunbound results parsed into plain C values, and
 * on the loop: answers from local data, cancel (no callback afterwards),
 * the cap on queries in flight and the timeout, against a loopback UDP
 * socket that never answers (no network).
 */
#include "dns/internal.h"
#include "tap.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unbound.h>
#include <unistd.h>

/* ---- names ---- */

static void test_names(void)
{
	struct gn_pool *pool = gn_pool_new();
	const char *a, *err;

	ok(gn_dns_name_check(pool, "Mail.Example.ORG.", &a, &err) == 0 &&
	   strcmp(a, "mail.example.org") == 0, "a name: lower case, no trailing dot");
	ok(gn_dns_name_check(pool, "_dmarc.example.org", &a, &err) == 0,
	   "underscore labels pass (_dmarc, _domainkey)");
	ok(gn_dns_name_check(pool, "b\xc3\xbc" "cher.example", &a, &err) == 0 &&
	   strcmp(a, "xn--bcher-kva.example") == 0, "a U-label goes out as its A-label");
	ok(gn_dns_name_check(pool, "a..example", &a, &err) < 0 &&
	   strstr(err, "empty label") != NULL, "an empty label is refused");
	ok(gn_dns_name_check(pool, "", &a, &err) < 0, "an empty name is refused");
	ok(gn_dns_name_check(pool, ".", &a, &err) < 0, "the root alone is refused");
	ok(gn_dns_name_check(pool, "a b.example", &a, &err) < 0 &&
	   strstr(err, "0x20") != NULL, "a space is refused");
	ok(gn_dns_name_check(pool, "a\\.b.example", &a, &err) < 0,
	   "a backslash is refused");

	char label[80], name[512];
	memset(label, 'x', 63);
	label[63] = '\0';
	snprintf(name, sizeof(name), "%s.example", label);
	ok(gn_dns_name_check(pool, name, &a, &err) == 0, "a label of 63 passes");
	memset(label, 'x', 64);
	label[64] = '\0';
	snprintf(name, sizeof(name), "%s.example", label);
	ok(gn_dns_name_check(pool, name, &a, &err) < 0 && strstr(err, "label") != NULL,
	   "a label of 64 is refused");
	/* 4 labels of 62 and their dots: 251, then "a.b" -> 255. */
	memset(label, 'y', 62);
	label[62] = '\0';
	snprintf(name, sizeof(name), "%s.%s.%s.%s.a", label, label, label, label);
	ok(gn_dns_name_check(pool, name, &a, &err) == 0, "a name of 253 passes");
	snprintf(name, sizeof(name), "%s.%s.%s.%s.ab", label, label, label, label);
	ok(gn_dns_name_check(pool, name, &a, &err) < 0 && strstr(err, "253") != NULL,
	   "a name of 254 is refused");

	is_str(dns_reverse_name(pool, "192.0.2.10"), "10.2.0.192.in-addr.arpa",
	       "the reverse name of an IPv4 address");
	is_str(dns_reverse_name(pool, "2001:db8::1"),
	       "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
	       "the reverse name of an IPv6 address");
	ok(dns_reverse_name(pool, "example.org") == NULL, "a name has no reverse name");

	is_int(dns_type_parse("mx"), GN_DNS_MX, "type names are case-insensitive");
	is_int(dns_type_parse("SOA"), -1, "an unsupported type is unknown");
	gn_pool_free(&pool);
}

/* ---- results ---- */

/* A ub_result with the given rdata (NULL-terminated arrays). */
struct fake {
	struct ub_result r;
	char *data[8];
	int len[8];
};

static void fake_init(struct fake *f, int rcode, int havedata)
{
	memset(f, 0, sizeof(*f));
	f->r.qname = (char *)"example.org.";
	f->r.rcode = rcode;
	f->r.havedata = havedata;
	f->r.nxdomain = rcode == 3;
	f->r.ttl = 300;
	f->r.data = f->data;
	f->r.len = f->len;
}

static void fake_add(struct fake *f, const void *d, int len)
{
	size_t i = 0;
	while (f->data[i] != NULL)
		i++;
	f->data[i] = (char *)d;
	f->len[i] = len;
}

static void test_results(void)
{
	struct gn_pool *pool = gn_pool_new();
	struct gn_dns_result res;
	struct fake f;
	char ip[INET6_ADDRSTRLEN];

	/* MX in the wrong order; one host in upper case. */
	static const unsigned char mx20[] = "\x00\x14\x02mx\x07" "example\x03org";
	static const unsigned char mx10[] = "\x00\x0a\x03" "MX1\x07" "example\x03org";
	static const unsigned char mx10b[] = "\x00\x0a\x03" "aaa\x07" "example\x03org";
	fake_init(&f, 0, 1);
	fake_add(&f, mx20, sizeof(mx20));
	fake_add(&f, mx10, sizeof(mx10));
	fake_add(&f, mx10b, sizeof(mx10b));
	dns_result_parse(pool, "example.org", GN_DNS_MX, 0, &f.r, &res);
	ok(res.status == GN_DNS_OK && res.n == 3 && res.mx != NULL, "MX: three records");
	ok(res.n == 3 && res.mx[0].preference == 10 && strcmp(res.mx[0].host, "aaa.example.org") == 0 &&
	   res.mx[1].preference == 10 && strcmp(res.mx[1].host, "mx1.example.org") == 0 &&
	   res.mx[2].preference == 20 && strcmp(res.mx[2].host, "mx.example.org") == 0,
	   "MX: sorted by preference then host, lower case, no trailing dot");
	is_int(res.ttl, 300, "the TTL is the answer's");
	ok(res.a == NULL && res.txt == NULL && res.names == NULL,
	   "only the looked-up type's array is set");

	/* Null MX (RFC 7505). */
	static const unsigned char nullmx[] = "\x00\x00";
	fake_init(&f, 0, 1);
	fake_add(&f, nullmx, 3);
	dns_result_parse(pool, "example.org", GN_DNS_MX, 0, &f.r, &res);
	ok(res.status == GN_DNS_OK && res.n == 1 && res.mx[0].preference == 0 &&
	   strcmp(res.mx[0].host, "") == 0, "a null MX has the host \"\"");

	/* A compression pointer is malformed in a result. */
	static const unsigned char mxptr[] = "\x00\x0a\xc0\x0c";
	fake_init(&f, 0, 1);
	fake_add(&f, mxptr, 4);
	dns_result_parse(pool, "example.org", GN_DNS_MX, 0, &f.r, &res);
	ok(res.status == GN_DNS_ERROR && res.n == 0 && strstr(res.error, "malformed") != NULL,
	   "an MX with a compression pointer fails the answer");
	/* A name that runs past the rdata. */
	fake_init(&f, 0, 1);
	fake_add(&f, "\x00\x0a\x05" "ab", 5);
	dns_result_parse(pool, "example.org", GN_DNS_MX, 0, &f.r, &res);
	is_int(res.status, GN_DNS_ERROR, "an MX name longer than its rdata fails the answer");
	/* A label with a dot in it. */
	fake_init(&f, 0, 1);
	fake_add(&f, "\x03" "a.b\x00", 5);
	dns_result_parse(pool, "example.org", GN_DNS_PTR, 0, &f.r, &res);
	is_int(res.status, GN_DNS_ERROR, "a PTR label holding a dot fails the answer");

	/* TXT: strings of one record joined, records kept apart. */
	static const unsigned char txt1[] = "\x08v=spf1 i\x0fp4:192.0.2.0/24\x05 -all";
	static const unsigned char txt2[] = "\x03" "a\0b";
	fake_init(&f, 0, 1);
	fake_add(&f, txt1, sizeof(txt1) - 1);
	fake_add(&f, txt2, sizeof(txt2) - 1);
	dns_result_parse(pool, "example.org", GN_DNS_TXT, 0, &f.r, &res);
	ok(res.status == GN_DNS_OK && res.n == 2, "TXT: two records");
	ok(res.n == 2 && res.txt[0].len == 28 &&
	   memcmp(res.txt[0].text, "v=spf1 ip4:192.0.2.0/24 -all", 28) == 0,
	   "TXT: a record's strings are joined");
	ok(res.n == 2 && res.txt[1].len == 3 && memcmp(res.txt[1].text, "a\0b", 3) == 0,
	   "TXT: a NUL inside is kept, with the length");
	fake_init(&f, 0, 1);
	fake_add(&f, "\x09short", 6);
	dns_result_parse(pool, "example.org", GN_DNS_TXT, 0, &f.r, &res);
	is_int(res.status, GN_DNS_ERROR, "TXT: a string longer than the rdata fails the answer");

	/* A and AAAA. */
	static const unsigned char a1[] = { 192, 0, 2, 1 };
	static const unsigned char aaaa1[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	fake_init(&f, 0, 1);
	fake_add(&f, a1, 4);
	dns_result_parse(pool, "example.org", GN_DNS_A, 0, &f.r, &res);
	ok(res.n == 1 && strcmp(inet_ntop(AF_INET, &res.a[0], ip, sizeof(ip)), "192.0.2.1") == 0,
	   "A: an in_addr");
	fake_init(&f, 0, 1);
	fake_add(&f, a1, 3);
	dns_result_parse(pool, "example.org", GN_DNS_A, 0, &f.r, &res);
	is_int(res.status, GN_DNS_ERROR, "A: three bytes fail the answer");
	fake_init(&f, 0, 1);
	fake_add(&f, aaaa1, 16);
	dns_result_parse(pool, "example.org", GN_DNS_AAAA, 0, &f.r, &res);
	ok(res.n == 1 && strcmp(inet_ntop(AF_INET6, &res.aaaa[0], ip, sizeof(ip)), "2001:db8::1") == 0,
	   "AAAA: an in6_addr");

	/* PTR and TLSA. */
	fake_init(&f, 0, 1);
	fake_add(&f, "\x04mail\x07" "example\x03org", 18);
	dns_result_parse(pool, "1.2.0.192.in-addr.arpa", GN_DNS_PTR, 0, &f.r, &res);
	ok(res.n == 1 && strcmp(res.names[0], "mail.example.org") == 0, "PTR: the name");
	fake_init(&f, 0, 1);
	fake_add(&f, "\x03\x01\x01\xab\xcd", 5);
	dns_result_parse(pool, "_25._tcp.mx.example.org", GN_DNS_TLSA, 0, &f.r, &res);
	ok(res.n == 1 && res.tlsa[0].usage == 3 && res.tlsa[0].selector == 1 &&
	   res.tlsa[0].matching_type == 1 && res.tlsa[0].len == 2 && res.tlsa[0].data[0] == 0xab,
	   "TLSA: usage, selector, matching type, data");

	/* rcodes, NODATA, DNSSEC. */
	fake_init(&f, 3, 0);
	dns_result_parse(pool, "example.org", GN_DNS_A, 0, &f.r, &res);
	ok(res.status == GN_DNS_NXDOMAIN && res.rcode == 3 && res.n == 0, "NXDOMAIN");
	fake_init(&f, 0, 0);
	dns_result_parse(pool, "example.org", GN_DNS_A, 0, &f.r, &res);
	ok(res.status == GN_DNS_NODATA && res.rcode == 0, "NOERROR without data is NODATA");
	fake_init(&f, 2, 0);
	dns_result_parse(pool, "example.org", GN_DNS_A, 0, &f.r, &res);
	ok(res.status == GN_DNS_SERVFAIL && res.rcode == 2 && res.error != NULL, "SERVFAIL");
	fake_init(&f, 5, 0);
	dns_result_parse(pool, "example.org", GN_DNS_A, 0, &f.r, &res);
	ok(res.status == GN_DNS_RCODE && res.rcode == 5, "REFUSED is another rcode");
	fake_init(&f, 0, 1);
	fake_add(&f, a1, 4);
	f.r.secure = 1;
	dns_result_parse(pool, "example.org", GN_DNS_A, 0, &f.r, &res);
	ok(res.status == GN_DNS_OK && res.security == GN_DNS_SECURE, "a validated answer is secure");
	fake_init(&f, 2, 1);
	fake_add(&f, a1, 4);
	f.r.bogus = 1;
	f.r.why_bogus = (char *)"signature expired";
	dns_result_parse(pool, "example.org", GN_DNS_A, 0, &f.r, &res);
	ok(res.status == GN_DNS_SERVFAIL && res.security == GN_DNS_BOGUS && res.n == 0 &&
	   res.a == NULL && strcmp(res.error, "signature expired") == 0,
	   "a bogus answer gives no records, SERVFAIL and why");
	fake_init(&f, 0, 1);
	fake_add(&f, a1, 4);
	f.r.canonname = (char *)"Target.Example.NET.";
	dns_result_parse(pool, "example.org", GN_DNS_A, 0, &f.r, &res);
	is_str(res.canonical, "target.example.net", "the name after a CNAME");
	fake_init(&f, 0, 1);
	fake_add(&f, a1, 4);
	f.r.canonname = (char *)"EXAMPLE.org.";
	dns_result_parse(pool, "example.org", GN_DNS_A, 0, &f.r, &res);
	ok(res.canonical == NULL, "no canonical name when no CNAME was followed");
	dns_result_parse(pool, "example.org", GN_DNS_A, UB_SERVFAIL, NULL, &res);
	ok(res.status == GN_DNS_ERROR && res.rcode == -1 && strstr(res.error, "resolver") != NULL,
	   "a libunbound error is GN_DNS_ERROR");
	gn_pool_free(&pool);
}

/* ---- on the loop ---- */

struct got {
	int calls;
	int status;
	int security;
	size_t n;
	unsigned ttl;
	char first[64];
};

static struct got got[8];
static int expected_calls, total_calls;

static void stop_cb(void *data)
{
	(void)data;
	ev_break(core_loop, EVBREAK_ALL);
}

static void on_result(const struct gn_dns_result *r, void *data)
{
	struct got *g = data;
	g->calls++;
	g->status = r->status;
	g->security = r->security;
	g->n = r->n;
	g->ttl = r->ttl;
	if (r->type == GN_DNS_A && r->n > 0)
		inet_ntop(AF_INET, &r->a[0], g->first, sizeof(g->first));
	if (++total_calls == expected_calls)
		ev_break(core_loop, EVBREAK_ALL);
}

/* Runs the loop until n more callbacks ran (a guard timer of 30 s stops a
 * test that would hang; it is not what the checks measure). */
static void run_until(int n)
{
	expected_calls = total_calls + n;
	struct gn_timer *guard = gn_timer_new(30000, false, stop_cb, NULL);
	ev_run(core_loop, 0);
	gn_timer_free(&guard);
}

/* Runs the loop through ms of waiting (for "nothing happens" checks). */
static void run_for(unsigned long ms)
{
	struct gn_timer *t = gn_timer_new(ms, false, stop_cb, NULL);
	expected_calls = -1;
	ev_run(core_loop, 0);
	gn_timer_free(&t);
}

/* A caller that cancels its own query from its callback (the header says
 * not to; the resolver must still not free it twice or lose the others). */
struct self_cancel {
	struct gn_dns_query *q;
	int calls;
};

static void on_result_cancel_self(const struct gn_dns_result *r, void *data)
{
	(void)r;
	struct self_cancel *sc = data;
	sc->calls++;
	gn_dns_cancel(&sc->q);
	if (++total_calls == expected_calls)
		ev_break(core_loop, EVBREAK_ALL);
}

static void test_local_data(void)
{
	ok(conf_load_string("test", "dns = { local_data = [ \"a.example. 120 IN A 192.0.2.7\", "
			    "\"a.example. 120 IN MX 5 a.example.\" ]; trust_anchor = \"\"; };") == 0 &&
	   conf_error_count() == 0, "a config with local data");
	memset(got, 0, sizeof(got));
	struct gn_dns_query *q = gn_dns_lookup("A.EXAMPLE.", GN_DNS_A, on_result, &got[0]);
	ok(q != NULL && got[0].calls == 0, "the callback does not run inside gn_dns_lookup()");
	(void)gn_dns_lookup("nx.example", GN_DNS_A, on_result, &got[1]);
	(void)gn_dns_lookup("a.example", GN_DNS_AAAA, on_result, &got[2]);
	(void)gn_dns_lookup("bad..example", GN_DNS_A, on_result, &got[3]);
	run_until(4);
	ok(got[0].calls == 1 && got[0].status == GN_DNS_OK && got[0].n == 1 &&
	   strcmp(got[0].first, "192.0.2.7") == 0 && got[0].security == GN_DNS_INSECURE,
	   "local data answers, insecure");
	ok(got[1].calls == 1 && got[1].status == GN_DNS_NXDOMAIN,
	   "with local data only, another name is NXDOMAIN");
	ok(got[2].calls == 1 && got[2].status == GN_DNS_NODATA, "another type is NODATA");
	ok(got[3].calls == 1 && got[3].status == GN_DNS_BADNAME, "a bad name fails, from the loop");

	/* Cancelled before the loop runs: neither an answer nor a failure. */
	memset(got, 0, sizeof(got));
	q = gn_dns_lookup("a.example", GN_DNS_A, on_result, &got[0]);
	struct gn_dns_query *q2 = gn_dns_lookup("bad..example", GN_DNS_A, on_result, &got[1]);
	gn_dns_cancel(&q);
	gn_dns_cancel(&q2);
	ok(q == NULL && q2 == NULL, "gn_dns_cancel() clears the handle");
	gn_dns_cancel(&q);
	gn_dns_cancel(NULL);
	run_for(300);
	ok(got[0].calls == 0 && got[1].calls == 0, "no callback after cancel");
	is_int(dns_outstanding(), 0, "nothing in flight after cancel");

	struct self_cancel sc[3] = { { NULL, 0 }, { NULL, 0 }, { NULL, 0 } };
	sc[0].q = gn_dns_lookup("a.example", GN_DNS_A, on_result_cancel_self, &sc[0]);
	sc[1].q = gn_dns_lookup("a.example", GN_DNS_MX, on_result_cancel_self, &sc[1]);
	sc[2].q = gn_dns_lookup("nx.example", GN_DNS_A, on_result_cancel_self, &sc[2]);
	run_until(3);
	ok(sc[0].calls == 1 && sc[1].calls == 1 && sc[2].calls == 1 &&
	   sc[0].q == NULL && sc[1].q == NULL && sc[2].q == NULL,
	   "a callback that cancels its own query: each answers once, the others still answer");
	is_int(dns_outstanding(), 0, "and nothing is left in flight");

	/* The answer cache: a.example's A came before; asked again (in
	 * another case) it is not sent to libunbound, and comes from the
	 * loop, the same answer with what is left of its TTL. */
	memset(got, 0, sizeof(got));
	q = gn_dns_lookup("A.Example", GN_DNS_A, on_result, &got[0]);
	is_int(dns_outstanding(), 0, "an answer kept: nothing sent to libunbound");
	ok(q != NULL && got[0].calls == 0, "and no callback inside gn_dns_lookup()");
	(void)gn_dns_lookup("nx.example", GN_DNS_A, on_result, &got[1]);
	(void)gn_dns_lookup("a.example", GN_DNS_AAAA, on_result, &got[2]);
	is_int(dns_outstanding(), 0, "NXDOMAIN and NODATA are kept too (RFC 2308): nothing sent");
	(void)gn_dns_lookup("nx2.example", GN_DNS_A, on_result, &got[3]);
	is_int(dns_outstanding(), 1, "a name not asked before is sent");
	run_until(4);
	ok(got[0].calls == 1 && got[0].status == GN_DNS_OK && got[0].n == 1 &&
	   strcmp(got[0].first, "192.0.2.7") == 0 && got[0].security == GN_DNS_INSECURE &&
	   got[0].ttl > 60 && got[0].ttl <= 120,
	   "the kept answer: the same, its TTL counting down (%u)", got[0].ttl);
	ok(got[1].calls == 1 && got[1].status == GN_DNS_NXDOMAIN && got[1].n == 0 &&
	   got[1].security == GN_DNS_INSECURE && got[1].ttl > 0 && got[1].ttl <= 300 &&
	   got[2].calls == 1 && got[2].status == GN_DNS_NODATA && got[2].n == 0 &&
	   got[2].ttl > 0 && got[2].ttl <= 300,
	   "the kept NXDOMAIN and NODATA: the same, for at most 300 s (%u, %u)",
	   got[1].ttl, got[2].ttl);
	ok(got[3].calls == 1 && got[3].status == GN_DNS_NXDOMAIN, "the new name: NXDOMAIN");
	memset(got, 0, sizeof(got));
	(void)gn_dns_lookup("nx2.example", GN_DNS_A, on_result, &got[0]);
	is_int(dns_outstanding(), 0, "and kept once answered");
	run_until(1);
	ok(got[0].calls == 1 && got[0].status == GN_DNS_NXDOMAIN, "answered from the cache");
	q = gn_dns_lookup("a.example", GN_DNS_A, on_result, &got[0]);
	gn_dns_cancel(&q);
	run_for(100);
	ok(got[0].calls == 1, "a kept answer cancelled: no callback");
	dns_shutdown();
	memset(got, 0, sizeof(got));
	(void)gn_dns_lookup("a.example", GN_DNS_A, on_result, &got[0]);
	is_int(dns_outstanding(), 1, "after dns_shutdown() nothing is kept");
	run_until(1);
	ok(got[0].calls == 1 && got[0].status == GN_DNS_OK, "and it is asked again");

	/* A child of fork() makes a context of its own: the parent's
	 * libunbound thread is not in it (the resolver learns of the fork
	 * from base_pid(), not from getpid() at every lookup). */
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		ev_loop_fork(core_loop);
		memset(got, 0, sizeof(got));
		(void)gn_dns_lookup("fork.example", GN_DNS_A, on_result, &got[0]);
		bool sent = dns_outstanding() == 1;
		run_until(1);
		_exit(sent && got[0].calls == 1 && got[0].status == GN_DNS_NXDOMAIN ? 0 : 1);
	}
	int st = -1;
	ok(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "a child of fork() resolves with a context of its own");
	memset(got, 0, sizeof(got));
	(void)gn_dns_lookup("parent.example", GN_DNS_A, on_result, &got[0]);
	run_until(1);
	ok(got[0].calls == 1 && got[0].status == GN_DNS_NXDOMAIN, "and the parent's still answers");
	dns_shutdown();
	conf_free();
}

static void test_limit_timeout(void)
{
	/* A resolver that never answers: a UDP socket nobody reads. */
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	   getsockname(fd, (struct sockaddr *)&sin, &sl) == 0, "a silent resolver on loopback");
	char conf[256];
	snprintf(conf, sizeof(conf), "dns = { resolvers = [ \"127.0.0.1@%u\" ]; "
		 "trust_anchor = \"\"; timeout = \"500ms\"; max_queries = 2; };",
		 ntohs(sin.sin_port));
	ok(conf_load_string("test", conf) == 0 && conf_error_count() == 0,
	   "a config with max_queries 2 and a timeout");
	memset(got, 0, sizeof(got));
	struct gn_dns_query *q0 = gn_dns_lookup("one.example", GN_DNS_A, on_result, &got[0]);
	(void)gn_dns_lookup("two.example", GN_DNS_A, on_result, &got[1]);
	(void)gn_dns_lookup("three.example", GN_DNS_A, on_result, &got[2]);
	is_int(dns_outstanding(), 2, "two queries in flight");
	gn_dns_cancel(&q0);
	is_int(dns_outstanding(), 1, "one after a cancel");
	run_until(2);
	ok(got[2].calls == 1 && got[2].status == GN_DNS_LIMIT,
	   "a third query in flight fails with LIMIT");
	ok(got[1].calls == 1 && got[1].status == GN_DNS_TIMEOUT,
	   "a query without an answer fails with TIMEOUT");
	ok(got[0].calls == 0, "the cancelled one never calls back");
	is_int(dns_outstanding(), 0, "nothing in flight afterwards");
	/* After the cap was reached, queries go out again. */
	(void)gn_dns_lookup("four.example", GN_DNS_A, on_result, &got[3]);
	is_int(dns_outstanding(), 1, "a new query goes out");
	run_until(1);
	is_int(got[3].status, GN_DNS_TIMEOUT, "and times out too");
	dns_shutdown();
	conf_free();
	close(fd);
}

static void test_bad_config(void)
{
	conf_load_string("test", "dns = { resolvers = [ \"192.0.2.1@99999\", \"nowhere\" ]; "
			 "timeout = 0; max_queries = 0; };");
	is_int((long long)conf_error_count(), 4, "bad resolvers, timeout and max_queries are errors");
	FILE *out = tmpfile();
	conf_errors_print(out);
	char buf[2048] = "";
	rewind(out);
	size_t n = fread(buf, 1, sizeof(buf) - 1, out);
	buf[n] = '\0';
	fclose(out);
	like(buf, "\"nowhere\" is not an IP address", "the error names the resolver");
	conf_free();
	conf_load_string("test", "dns = { local_data = [ \"a.example. IN A 192.0.2.1\",\n"
			 "\"a.example. IN BOGUSTYPE x\" ]; };");
	is_int((long long)conf_error_count(), 0, "local data is checked by the dns layer");
	ok(dns_conf_check() < 0 && conf_error_count() == 1, "dns_conf_check() refuses the bad entry");
	out = tmpfile();
	conf_errors_print(out);
	rewind(out);
	n = fread(buf, 1, sizeof(buf) - 1, out);
	buf[n] = '\0';
	fclose(out);
	like(buf, "dns.local_data[1] at test:2", "the error names the entry, its file and line");
	conf_free();
}

int main(void)
{
	log_init("test_dns");
	log_set_ceiling(GN_LOG_ERROR);
	loop_init();
	test_names();
	test_results();
	test_local_data();
	test_limit_timeout();
	test_bad_config();
	return done_testing();
}
