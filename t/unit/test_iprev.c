/*
 * t/unit/test_iprev.c: the iprev check (modules/mailauth/iprev.c, RFC
 * 8601 3.2) on the loop with the core's real resolver: pass, fail, no
 * PTR, IPv6, a PTR answer without a usable name (permerror), the callback
 * once and never from inside iprev_check(), the limit of 10 names (the
 * forward queries in flight counted in the resolver), and iprev_cancel()
 * while they are.  Over SMTP: t/integration/322-mailauth-iprev.t.
 */
#include "dns/internal.h"
#include "tap.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iprev.h"

struct got {
	int calls;
	int status;
	const char *name;
	const char *reason;
	unsigned names;
};

static bool in_check;
static bool called_inside;

static void stop_cb(void *data)
{
	(void)data;
	ev_break(core_loop, EVBREAK_ALL);
}

static void on_done(const struct iprev_result *r, void *data)
{
	struct got *g = data;
	if (in_check)
		called_inside = true;
	g->calls++;
	g->status = r->status;
	g->name = r->name;
	g->reason = r->reason;
	g->names = r->names;
	ev_break(core_loop, EVBREAK_ALL);
}

static void run_for(unsigned long ms)
{
	struct gn_timer *t = gn_timer_new(ms, false, stop_cb, NULL);
	ev_run(core_loop, 0);
	gn_timer_free(&t);
}

static struct iprev_eval *check(struct gn_pool *pool, const char *ip, struct got *g)
{
	uint8_t bytes[16];
	int family = strchr(ip, ':') != NULL ? 6 : 4;
	memset(g, 0, sizeof(*g));
	inet_pton(family == 4 ? AF_INET : AF_INET6, ip, bytes);
	in_check = true;
	struct iprev_eval *e = iprev_check(pool, family, bytes, ip, on_done, g);
	in_check = false;
	return e;
}

static void test_local(void)
{
	ok(conf_load_string("test", "dns = { trust_anchor = \"\"; local_data = [\n"
			    "\"10.2.0.192.in-addr.arpa. IN PTR other.example.\",\n"
			    "\"10.2.0.192.in-addr.arpa. IN PTR mail.example.\",\n"
			    "\"mail.example. IN A 192.0.2.10\",\n"
			    "\"other.example. IN A 198.51.100.1\",\n"
			    "\"11.2.0.192.in-addr.arpa. IN PTR other.example.\",\n"
			    "\"12.2.0.192.in-addr.arpa. IN PTR v6only.example.\",\n"
			    "\"v6only.example. IN AAAA 2001:db8::12\",\n"
			    "\"13.2.0.192.in-addr.arpa. IN PTR bad\\\\033name.example.\",\n"
			    "\"5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. "
			    "IN PTR v6.example.\",\n"
			    "\"v6.example. IN AAAA 2001:db8::5\" ]; };") == 0 &&
	   conf_error_count() == 0, "a config with local data");
	struct gn_pool *pool = gn_pool_new();
	struct got g;

	struct iprev_eval *e = check(pool, "192.0.2.10", &g);
	ok(e != NULL && g.calls == 0, "iprev_check() returns at once");
	run_for(10000);
	ok(!called_inside, "the callback never runs inside iprev_check()");
	is_int(g.calls, 1, "the callback ran once");
	is_int(g.status, IPREV_PASS, "two PTR names, one maps back: pass");
	is_str(g.name, "mail.example", "the name that maps back");
	run_for(100);
	is_int(g.calls, 1, "and never again");

	(void)check(pool, "192.0.2.11", &g);
	run_for(10000);
	ok(g.calls == 1 && g.status == IPREV_FAIL && g.name == NULL, "the name maps elsewhere: fail");
	ok(g.reason != NULL && strstr(g.reason, "none of the 1 PTR names") != NULL,
	   "saying so: %s", g.reason ? g.reason : "(null)");

	(void)check(pool, "192.0.2.12", &g);
	run_for(10000);
	is_int(g.status, IPREV_FAIL, "an IPv4 client, the name has only AAAA: fail");

	(void)check(pool, "192.0.2.99", &g);
	run_for(10000);
	ok(g.calls == 1 && g.status == IPREV_FAIL, "no PTR (NXDOMAIN): fail");
	ok(g.reason != NULL && strstr(g.reason, "no PTR for 192.0.2.99") != NULL, "saying so: %s",
	   g.reason ? g.reason : "(null)");

	(void)check(pool, "192.0.2.13", &g);
	run_for(10000);
	ok(g.calls == 1 && g.status == IPREV_PERMERROR,
	   "a PTR name that is no host name (a \"!\" in a label): permerror");
	ok(g.reason != NULL && strstr(g.reason, "no valid name") != NULL, "saying so: %s",
	   g.reason ? g.reason : "(null)");

	(void)check(pool, "2001:db8::5", &g);
	run_for(10000);
	ok(g.calls == 1 && g.status == IPREV_PASS, "IPv6: ip6.arpa, then AAAA: pass");
	is_str(g.name, "v6.example", "the IPv6 name");

	e = check(pool, "192.0.2.10", &g);
	iprev_cancel(&e);
	ok(e == NULL, "iprev_cancel() sets the handle to NULL");
	run_for(300);
	is_int(g.calls, 0, "cancelled before the loop ran: no callback");
	iprev_cancel(&e);
	iprev_cancel(NULL);
	ok(true, "iprev_cancel() accepts NULL and a NULL handle");
	gn_pool_free(&pool);
	dns_shutdown();
	conf_free();
}

static void test_silent(void)
{
	/* A resolver that never answers: a UDP socket nobody reads. */
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	   getsockname(fd, (struct sockaddr *)&sin, &sl) == 0, "a silent resolver on loopback");
	char conf[4096];
	int off = snprintf(conf, sizeof(conf), "dns = { resolvers = [ \"127.0.0.1@%u\" ]; "
			   "trust_anchor = \"\"; timeout = \"10s\"; local_data = [\n",
			   ntohs(sin.sin_port));
	for (int i = 1; i <= 12; i++)
		off += snprintf(conf + off, sizeof(conf) - (size_t)off,
				"\"20.2.0.192.in-addr.arpa. IN PTR h%d.slow.example.\"%s\n", i,
				i < 12 ? "," : " ]; };");
	ok(conf_load_string("test", conf) == 0 && conf_error_count() == 0, "a config with it");

	struct gn_pool *pool = gn_pool_new();
	struct got g;
	struct iprev_eval *e = check(pool, "192.0.2.20", &g);
	run_for(300);
	is_int((long long)dns_outstanding(), 10,
	       "12 PTR names: the A of the first 10 only, in flight together");
	iprev_cancel(&e);
	is_int((long long)dns_outstanding(), 0, "iprev_cancel() cancels all ten");
	run_for(200);
	is_int(g.calls, 0, "and the callback never runs");
	gn_pool_free(&pool);
	dns_shutdown();
	conf_free();
	close(fd);
}

int main(void)
{
	log_init("test_iprev");
	log_set_ceiling(GN_LOG_ERROR);
	loop_init();
	test_local();
	test_silent();
	return done_testing();
}
